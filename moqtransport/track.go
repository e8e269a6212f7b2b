package moqtransport

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// The track model.
//
// A Track is written by one producer (a local publisher, or the upstream
// subscription of a relay) and read by any number of TrackReaders, one per
// downstream subscription. Everything the producer writes becomes an event
// in one arrival-ordered log: objects, and the end or abort of each
// subgroup (stream) that carried at least one object. Every event has a
// sequence number; a reader is nothing but a position in that log, a
// filter and the set of subgroups it has seen an object of, so a reader
// that falls behind holds no memory, and a write never waits for a reader.
//
// The log and the per-group index of objects form the track's cache. It is
// bounded by TrackConfig (groups, bytes, age): over a limit, whole groups
// are evicted, smallest group ID first, never the newest (largest ID)
// group. A reader that had not yet read an event that it would have got
// from an evicted group gets EventSkipped once, where that event was, and
// then continues at the start of the newest cached group (the largest ID
// its filter passes): a reader that fell behind catches up at the live
// edge, where a decoder can start, and ignores the older groups from then
// on.
//
// Payloads and extensions are never copied: every reader gets the same
// *Object.

// Default cache limits. MaxBytes is the memory bound; the group limit is
// generous because a subscriber's groups arrive on streams of their own and
// can arrive out of order: a group older than every cached one is dropped
// on arrival, so a small limit would lose groups that were merely late.
const (
	DefaultTrackMaxGroups       = 64
	DefaultTrackMaxBytes  int64 = 32 << 20
)

// CacheEntryOverhead is what each cached event (an object, or the end or
// abort of a subgroup) counts against TrackConfig.MaxBytes on top of its
// payload and extension bytes, so that a flood of empty objects is bounded
// too.
const CacheEntryOverhead = 64

// Errors of the track model. Writes that break a draft-14 rule wrap
// ErrMalformedTrack (§2.5: a relay ends its downstream subscriptions with
// PUBLISH_DONE MALFORMED_TRACK) or ErrInvalidObject.
var (
	ErrTrackClosed       = errors.New("moqt: track closed")
	ErrSubgroupClosed    = errors.New("moqt: subgroup closed")
	ErrTrackReaderClosed = errors.New("moqt: track reader closed")
	ErrMalformedTrack    = errors.New("moqt: malformed track")
	ErrInvalidObject     = errors.New("moqt: invalid object")
)

// Object is one object of a track. Payload and Extensions are shared by
// every reader and must not be modified after the object is written.
type Object struct {
	Group, Subgroup, ID uint64
	PublisherPriority   uint8
	Status              wire.ObjectStatus // StatusNormal for a payload object
	Extensions          wire.Extensions
	Payload             []byte
	// EndOfGroup is for datagram objects only: the object is the last of
	// its group (the OBJECT_DATAGRAM End Of Group bit). Subgroup objects
	// leave it false; Event.EndOfGroup describes their stream.
	EndOfGroup bool
	Received   time.Time // when the track got it (set by the track on write)
}

// Location returns the object's location.
func (o *Object) Location() wire.Location { return wire.Location{Group: o.Group, Object: o.ID} }

// size is what the object counts against the cache's byte limit.
func (o *Object) size() int64 {
	return int64(len(o.Payload)+len(o.Extensions)) + CacheEntryOverhead
}

// ForwardingPreference is how a track's objects travel (§2.3): on subgroup
// streams or as datagrams. A track has one; mixing them is malformed.
type ForwardingPreference uint8

// Forwarding preferences.
const (
	ForwardSubgroup ForwardingPreference = iota // the default
	ForwardDatagram
)

func (f ForwardingPreference) String() string {
	switch f {
	case ForwardSubgroup:
		return "subgroup"
	case ForwardDatagram:
		return "datagram"
	}
	return fmt.Sprintf("forwarding(%d)", uint8(f))
}

// TrackConfig bounds a track's cache and describes the track. The zero
// value is usable.
type TrackConfig struct {
	// MaxGroups is how many groups the cache keeps; default
	// DefaultTrackMaxGroups (64).
	MaxGroups int
	// MaxBytes bounds the cached payload and extension bytes, plus
	// CacheEntryOverhead per cached event; default 32 MiB. The newest
	// group is never evicted; if it alone outgrows MaxBytes, its oldest
	// events are dropped (the group is then truncated, see GroupTruncated),
	// always keeping the event just written.
	MaxBytes int64
	// MaxAge drops groups whose first object arrived longer ago (the
	// newest group excepted); 0 means no age limit. A relay sets it from
	// MAX_CACHE_DURATION.
	MaxAge time.Duration
	// GroupOrder is the publisher's preferred order; default Ascending.
	GroupOrder wire.GroupOrder
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
	// Budget, when set, bounds the bytes cached by every track that
	// shares it, evicting from the least recently read tracks first (see
	// CacheBudget).
	Budget *CacheBudget
}

// Track is one track: written once, read by any number of readers. All its
// methods are safe for concurrent use; a SubgroupWriter is used by one
// goroutine at a time.
type Track struct {
	name       wire.FullTrackName
	groupOrder wire.GroupOrder
	maxGroups  int
	maxBytes   int64
	maxAge     time.Duration
	now        func() time.Time
	realClock  bool // now is time.Now (no TrackConfig.Now)
	done       chan struct{}

	mu sync.Mutex
	// log holds the cached events in arrival order, by increasing seq.
	// Evicted events are tombstoned (gone) and trimmed from the front;
	// the log is compacted when tombstones are the majority.
	log     []trackEntry
	logBase []trackEntry // log's array, from its start (makeLogRoom)
	tombs   int
	nextSeq uint64
	// groups is the cache's group index, sorted by group ID.
	groups       []*cachedGroup
	bytes        int64
	objects      int
	nextAgeCheck time.Time
	notify       chan struct{} // closed and cleared by the next write; nil when nobody waits
	readers      map[*TrackReader]struct{}
	writers      map[*SubgroupWriter]struct{}
	justWritten  bool // enforceLimits runs for the object last logged

	largest wire.Location

	// The CacheBudget, when there is one (cachebudget.go).
	budget   *CacheBudget
	share    *budgetShare
	lastRead atomic.Uint64

	// The publisher's timeouts (SetTimeouts), read without t.mu by every
	// served subscription's writers for every object they write.
	deliveryTimeout  atomic.Int64 // time.Duration
	maxCacheDuration atomic.Int64 // time.Duration
	hasLargest       bool
	endOfTrack       *wire.Location
	fwd              ForwardingPreference
	fwdSet           bool
	closed           bool
	closeErr         error
}

// trackEntry is one event of the log.
type trackEntry struct {
	seq  uint64
	ev   Event
	gone bool
}

// cachedGroup is the cache's record of one group.
type cachedGroup struct {
	id        uint64
	objects   []*Object // by object ID; arrival order among equal IDs
	bytes     int64
	entries   int // live log entries
	firstSeq  uint64
	lastSeq   uint64
	first     time.Time // arrival of its first event
	maxID     uint64
	hasObject bool
	endID     uint64 // End of Group (or End of Track) object ID
	hasEnd    bool
	truncated bool
}

type trackSubgroupKey struct{ group, subgroup uint64 }

// NewTrack returns an empty track.
func NewTrack(name wire.FullTrackName, cfg TrackConfig) *Track {
	t := &Track{
		name:       name,
		groupOrder: cfg.GroupOrder,
		maxGroups:  cfg.MaxGroups,
		maxBytes:   cfg.MaxBytes,
		maxAge:     cfg.MaxAge,
		now:        cfg.Now,
		done:       make(chan struct{}),
		readers:    map[*TrackReader]struct{}{},
		writers:    map[*SubgroupWriter]struct{}{},
	}
	if t.groupOrder == wire.GroupOrderPublisher {
		t.groupOrder = wire.GroupOrderAscending
	}
	if t.maxGroups <= 0 {
		t.maxGroups = DefaultTrackMaxGroups
	}
	if t.maxBytes <= 0 {
		t.maxBytes = DefaultTrackMaxBytes
	}
	if t.now == nil {
		t.now, t.realClock = time.Now, true
	}
	if cfg.Budget != nil {
		t.budget, t.share = cfg.Budget, &budgetShare{}
		cfg.Budget.add(t)
	}
	return t
}

// Name returns the track's full name.
func (t *Track) Name() wire.FullTrackName { return t.name }

// GroupOrder returns the publisher's preferred group order (never
// GroupOrderPublisher).
func (t *Track) GroupOrder() wire.GroupOrder { return t.groupOrder }

// Forwarding returns the track's forwarding preference: set by the first
// OpenSubgroup or WriteDatagram, ForwardSubgroup before either.
func (t *Track) Forwarding() ForwardingPreference {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.fwd
}

// Largest returns the largest location written so far and whether any
// object exists. Status objects count (Does Not Exist, End of Group, End
// of Track): they are objects with a location on the wire, and §9.7 moves
// Largest on "the first byte of an Object with a larger Location". So after
// an End of Group at {g, n}, Largest is {g, n}, one past the group's last
// payload object: a Joining FETCH that ends at Largest then carries the
// End of Group, and a Largest Object filter starts at {g, n+1}, which
// loses nothing.
func (t *Track) Largest() (wire.Location, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.largest, t.hasLargest
}

// NoteLargest records that the track's source has published objects up to
// loc (the Largest Location of a SUBSCRIBE_OK), so that Largest reports it
// before those objects arrive here. It never lowers Largest.
func (t *Track) NoteLargest(loc wire.Location) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.hasLargest || t.largest.Less(loc) {
		t.largest, t.hasLargest = loc, true
	}
}

// Done is closed by Close.
func (t *Track) Done() <-chan struct{} { return t.done }

// SetTimeouts records the track's DELIVERY TIMEOUT and MAX_CACHE_DURATION
// (zero: none), as a publisher gave them in SUBSCRIBE_OK or PUBLISH. A
// relay passes them on to its subscribers and applies them when it
// forwards (§9.2.1.2, §9.2.1.3).
func (t *Track) SetTimeouts(delivery, maxCache time.Duration) {
	t.deliveryTimeout.Store(int64(delivery))
	t.maxCacheDuration.Store(int64(maxCache))
}

// Timeouts returns what SetTimeouts recorded.
func (t *Track) Timeouts() (delivery, maxCache time.Duration) {
	return time.Duration(t.deliveryTimeout.Load()), time.Duration(t.maxCacheDuration.Load())
}

// Now is the track's clock (TrackConfig.Now).
func (t *Track) Now() time.Time { return t.now() }

// Closed reports whether Close has been called.
func (t *Track) Closed() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

// Err returns the error the track was closed with: nil while it is open or
// after a normal end.
func (t *Track) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closeErr == io.EOF {
		return nil
	}
	return t.closeErr
}

// Close ends the track: no more objects. err == nil means the track ended
// normally (readers get io.EOF after the last event); a non-nil err is a
// failure that readers get instead. Subgroups still open are aborted, with
// wire.ResetCancelled after a normal end and wire.ResetInternalError
// otherwise. Close is idempotent; the first call decides.
func (t *Track) Close(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	code := uint64(wire.ResetCancelled)
	if err == nil {
		err = io.EOF
	} else {
		code = uint64(wire.ResetInternalError)
	}
	open := make([]*SubgroupWriter, 0, len(t.writers))
	for w := range t.writers {
		open = append(open, w)
	}
	slices.SortFunc(open, func(a, b *SubgroupWriter) int {
		if c := cmp.Compare(a.group, b.group); c != 0 {
			return c
		}
		return cmp.Compare(a.subgroup, b.subgroup)
	})
	for _, w := range open {
		t.endSubgroup(w, EventSubgroupAbort, code)
	}
	t.closed = true
	t.closeErr = err
	close(t.done)
	t.uncharge()
	t.enforceLimits()
	t.broadcast()
}

// SubgroupWriter writes the objects of one subgroup, in increasing object
// ID order. It is used by one goroutine at a time.
type SubgroupWriter struct {
	t          *Track
	group      uint64
	subgroup   uint64
	priority   uint8
	endOfGroup bool
	extensions bool // declared at open, or an object of it had extensions
	lastID     uint64
	hasLast    bool
	logged     bool // an object of it is in the log, so its end is too
	done       bool
}

// SubgroupOptions describe a subgroup when it opens, so that the delivery
// code can pick its stream header type before the first object.
type SubgroupOptions struct {
	// Priority is the publisher priority of the subgroup's objects.
	Priority uint8
	// EndOfGroup says that the subgroup's last object will be the last
	// object of its group (the draft-14 "contains End of Group" stream
	// types 0x18-0x1D).
	EndOfGroup bool
	// Extensions says that objects of the subgroup may carry extension
	// headers (the stream types with extensions). A subgroup that did not
	// declare it and then writes an object with extensions makes the
	// delivery code restart the subgroup on a new stream, which can lose
	// objects in flight: declare it when extensions are possible.
	Extensions bool
}

// OpenSubgroup starts a subgroup (one stream on the wire).
func (t *Track) OpenSubgroup(group, subgroup uint64, opts SubgroupOptions) (*SubgroupWriter, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, ErrTrackClosed
	}
	if err := t.setForwarding(ForwardSubgroup); err != nil {
		return nil, err
	}
	w := &SubgroupWriter{t: t, group: group, subgroup: subgroup, priority: opts.Priority, endOfGroup: opts.EndOfGroup, extensions: opts.Extensions}
	t.writers[w] = struct{}{}
	return w, nil
}

// Write writes a Normal object.
func (w *SubgroupWriter) Write(id uint64, ext wire.Extensions, payload []byte) error {
	return w.write(id, wire.StatusNormal, ext, payload)
}

// WriteStatus writes a zero-length object with status: Normal, Does Not
// Exist (which carries no extensions), End of Group or End of Track.
func (w *SubgroupWriter) WriteStatus(id uint64, status wire.ObjectStatus, ext wire.Extensions) error {
	return w.write(id, status, ext, nil)
}

func (w *SubgroupWriter) write(id uint64, status wire.ObjectStatus, ext wire.Extensions, payload []byte) error {
	if err := checkObject(status, ext, payload); err != nil {
		return err
	}
	t := w.t
	defer t.settle()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.closed:
		return ErrTrackClosed
	case w.done:
		return ErrSubgroupClosed
	case w.hasLast && id <= w.lastID:
		return fmt.Errorf("%w: object ID %d after %d in subgroup %d of group %d", ErrMalformedTrack, id, w.lastID, w.subgroup, w.group)
	}
	o := &Object{
		Group: w.group, Subgroup: w.subgroup, ID: id,
		PublisherPriority: w.priority,
		Status:            status,
		Extensions:        ext,
		Payload:           payload,
	}
	ext0 := w.extensions || len(ext) > 0
	if err := t.addObject(o, Event{Kind: EventObject, Object: o, Group: w.group, Subgroup: w.subgroup, EndOfGroup: w.endOfGroup, Extensions: ext0}); err != nil {
		return err
	}
	w.lastID, w.hasLast, w.logged, w.extensions = id, true, true, ext0
	return nil
}

// Close says that the subgroup is complete (FIN on the wire). Readers that
// got an object of it get EventSubgroupEnd.
func (w *SubgroupWriter) Close() error {
	t := w.t
	defer t.settle()
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.done {
		if t.closed {
			return ErrTrackClosed
		}
		return ErrSubgroupClosed
	}
	t.endSubgroup(w, EventSubgroupEnd, 0)
	t.enforceLimits()
	t.broadcast()
	return nil
}

// Abort says that the subgroup ended early (a reset on the wire, e.g.
// wire.ResetCancelled or wire.ResetDeliveryTimeout). Readers that got an
// object of it get EventSubgroupAbort with code. Abort after Close does
// nothing.
func (w *SubgroupWriter) Abort(code uint64) {
	t := w.t
	defer t.settle()
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.done {
		return
	}
	t.endSubgroup(w, EventSubgroupAbort, code)
	t.enforceLimits()
	t.broadcast()
}

// endSubgroup retires w and logs its end for the readers that saw it.
// Called with t.mu held.
func (t *Track) endSubgroup(w *SubgroupWriter, kind EventKind, code uint64) {
	w.done = true
	delete(t.writers, w)
	if !w.logged {
		return // no reader can have a stream open for it
	}
	g := t.group(w.group, true)
	t.appendEntry(g, Event{Kind: kind, Group: w.group, Subgroup: w.subgroup, EndOfGroup: w.endOfGroup, Code: code}, CacheEntryOverhead)
}

// WriteDatagram records a datagram object. o.Subgroup is set to o.ID (the
// value a FETCH carries for datagram objects); o.Received is set too.
func (t *Track) WriteDatagram(o Object) error {
	if err := checkObject(o.Status, o.Extensions, o.Payload); err != nil {
		return err
	}
	defer t.settle()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrTrackClosed
	}
	if err := t.setForwarding(ForwardDatagram); err != nil {
		return err
	}
	p := new(Object)
	*p = o
	p.Subgroup = p.ID
	return t.addObject(p, Event{Kind: EventObject, Object: p, Group: p.Group, Subgroup: p.Subgroup, EndOfGroup: p.EndOfGroup, Datagram: true})
}

// checkObject applies the rules that need no track state.
func checkObject(status wire.ObjectStatus, ext wire.Extensions, payload []byte) error {
	switch {
	case !status.Valid():
		return fmt.Errorf("%w: unknown status %s", ErrInvalidObject, status)
	case status != wire.StatusNormal && len(payload) > 0:
		return fmt.Errorf("%w: a %s object has a payload", ErrInvalidObject, status)
	case status == wire.StatusDoesNotExist && len(ext) > 0:
		return fmt.Errorf("%w: an Object Does Not Exist has extensions", ErrInvalidObject)
	}
	return nil
}

// setForwarding latches the track's forwarding preference. Called with
// t.mu held.
func (t *Track) setForwarding(f ForwardingPreference) error {
	if t.fwdSet && t.fwd != f {
		return fmt.Errorf("%w: %s object on a %s track", ErrMalformedTrack, f, t.fwd)
	}
	t.fwd, t.fwdSet = f, true
	return nil
}

// addObject checks o against the end of its group and of the track, then
// caches and logs it. Called with t.mu held.
func (t *Track) addObject(o *Object, ev Event) error {
	loc := o.Location()
	if eot := t.endOfTrack; eot != nil && loc.Compare(*eot) >= 0 {
		return fmt.Errorf("%w: object %v at or past End of Track %v", ErrMalformedTrack, loc, *eot)
	}
	g := t.group(o.Group, false)
	if g != nil && g.hasEnd && o.ID >= g.endID {
		return fmt.Errorf("%w: object %v at or past the end of group %d (object %d)", ErrMalformedTrack, loc, o.Group, g.endID)
	}
	switch o.Status {
	case wire.StatusEndOfTrack:
		if t.hasLargest && t.largest.Compare(loc) >= 0 {
			return fmt.Errorf("%w: End of Track %v is not past the largest object %v", ErrMalformedTrack, loc, t.largest)
		}
	case wire.StatusEndOfGroup:
		if g != nil && g.hasObject && g.maxID >= o.ID {
			return fmt.Errorf("%w: End of Group %v is not past object %d", ErrMalformedTrack, loc, g.maxID)
		}
	}
	if g == nil {
		g = t.group(o.Group, true)
	}
	o.Received = t.now()
	switch o.Status {
	case wire.StatusEndOfTrack:
		eot := loc
		t.endOfTrack = &eot
		g.endID, g.hasEnd = o.ID, true
	case wire.StatusEndOfGroup:
		g.endID, g.hasEnd = o.ID, true
	}
	if !t.hasLargest || t.largest.Less(loc) {
		t.largest, t.hasLargest = loc, true
	}
	// Objects arrive mostly in ID order: search from the end.
	i := len(g.objects)
	for i > 0 && g.objects[i-1].ID > o.ID {
		i--
	}
	g.objects = slices.Insert(g.objects, i, o)
	if !g.hasObject || o.ID > g.maxID {
		g.maxID = o.ID
	}
	g.hasObject = true
	t.objects++
	t.appendEntry(g, ev, o.size())
	t.justWritten = true
	t.enforceLimits()
	t.justWritten = false
	t.broadcast()
	return nil
}

// group returns the cache's record of group id, creating it if create.
// Called with t.mu held.
func (t *Track) group(id uint64, create bool) *cachedGroup {
	n := len(t.groups)
	if n > 0 && t.groups[n-1].id == id {
		return t.groups[n-1]
	}
	i := sort.Search(n, func(i int) bool { return t.groups[i].id >= id })
	if i < n && t.groups[i].id == id {
		return t.groups[i]
	}
	if !create {
		return nil
	}
	g := &cachedGroup{id: id, first: t.now()}
	t.groups = slices.Insert(t.groups, i, g)
	t.nextAgeCheck = time.Time{} // a group that was the newest may now be evictable
	return g
}

// appendEntry logs ev as part of group g. Called with t.mu held.
func (t *Track) appendEntry(g *cachedGroup, ev Event, size int64) {
	seq := t.nextSeq
	t.nextSeq++
	if len(t.log) == cap(t.log) {
		t.makeLogRoom()
	}
	t.log = append(t.log, trackEntry{seq: seq, ev: ev})
	if g.entries == 0 {
		g.firstSeq = seq
	}
	g.lastSeq = seq
	g.entries++
	g.bytes += size
	t.bytes += size
	t.charge(size)
}

// broadcast wakes the readers waiting for an event. Called with t.mu held.
func (t *Track) broadcast() {
	if t.notify != nil {
		close(t.notify)
		t.notify = nil
	}
}

// waitChan returns a channel that the next write closes. Called with t.mu
// held.
func (t *Track) waitChan() <-chan struct{} {
	if t.notify == nil {
		t.notify = make(chan struct{})
	}
	return t.notify
}

// enforceLimits evicts groups, smallest ID first and never the newest,
// until the cache is within its limits; then, if the newest group alone is
// over MaxBytes, drops its oldest events. Called with t.mu held.
func (t *Track) enforceLimits() {
	for len(t.groups) > 1 && (len(t.groups) > t.maxGroups || t.bytes > t.maxBytes) {
		t.evictGroup(0)
	}
	if t.maxAge > 0 && len(t.groups) > 1 {
		now := t.now()
		if !now.Before(t.nextAgeCheck) {
			var next time.Time
			for i := 0; i < len(t.groups)-1; {
				g := t.groups[i]
				expiry := g.first.Add(t.maxAge)
				if now.After(expiry) {
					t.evictGroup(i)
					continue
				}
				if next.IsZero() || expiry.Before(next) {
					next = expiry
				}
				i++
			}
			if next.IsZero() {
				next = now.Add(t.maxAge) // only the newest group is left
			}
			t.nextAgeCheck = next
		}
	}
	if len(t.groups) == 1 && t.bytes > t.maxBytes {
		t.truncate(t.groups[0], t.maxBytes)
	}
	t.trimLog()
}

// evictGroup drops group i from the cache. Called with t.mu held.
func (t *Track) evictGroup(i int) {
	g := t.groups[i]
	t.groups = slices.Delete(t.groups, i, i+1)
	if g.entries > 0 {
		behind := t.readersBehind(g.firstSeq, g.lastSeq)
		for j := t.index(g.firstSeq); j < len(t.log) && t.log[j].seq <= g.lastSeq; j++ {
			if e := &t.log[j]; !e.gone && e.ev.Group == g.id {
				t.kill(e, behind)
			}
		}
	}
	t.bytes -= g.bytes
	t.charge(-g.bytes)
	t.objects -= len(g.objects)
	clear(g.objects)
	g.objects = nil
}

// truncate drops the oldest events of g, the only cached group, until the
// cache is within limit bytes, keeping at least the event last written. It
// reports whether it dropped any. Called with t.mu held.
func (t *Track) truncate(g *cachedGroup, limit int64) bool {
	dropped := false
	behind := t.readersBehind(g.firstSeq, g.lastSeq)
	for j := t.index(g.firstSeq); j < len(t.log) && t.bytes > limit && g.entries > 1; j++ {
		e := &t.log[j]
		if e.gone || e.ev.Group != g.id {
			continue
		}
		size := int64(CacheEntryOverhead)
		if o := e.ev.Object; o != nil {
			size = o.size()
			if k := slices.Index(g.objects, o); k >= 0 {
				g.objects = slices.Delete(g.objects, k, k+1)
				t.objects--
			}
		}
		t.kill(e, behind)
		dropped = true
		g.entries--
		g.bytes -= size
		t.bytes -= size
		t.charge(-size)
		g.truncated = true
		if g.entries > 0 {
			g.firstSeq = e.seq + 1
		}
	}
	return dropped
}

// readersBehind returns the readers that may still want an event in
// [first, last]. Called with t.mu held.
func (t *Track) readersBehind(first, last uint64) []*TrackReader {
	var rs []*TrackReader
	for r := range t.readers {
		if r.pos <= last {
			rs = append(rs, r)
		}
	}
	return rs
}

// kill tombstones e, first marking the readers that would have got it as
// skipped. An event evicted by the write that made it (an object of a
// group older than every cached group, in a full cache) was never visible:
// it only matters to the readers that have its subgroup open, whose stream
// would otherwise miss an object; for the others it is quietly dropped.
// Called with t.mu held.
func (t *Track) kill(e *trackEntry, behind []*TrackReader) {
	fresh := t.justWritten && e.seq+1 == t.nextSeq
	for _, r := range behind {
		if r.pos <= e.seq && (!r.skipped || e.seq < r.skipAt) && r.wants(&e.ev, fresh) {
			r.skipped, r.skipAt = true, e.seq
		}
	}
	e.gone = true
	e.ev.Object = nil
	t.tombs++
}

// makeLogRoom makes room at the end of a full log. trimLog drops entries
// from the front, so a log whose array is at least half free slides back
// to the array's start instead of growing into a new one: a live track's
// log then reuses one array instead of reallocating every few groups.
// Called with t.mu held.
func (t *Track) makeLogRoom() {
	n := len(t.log)
	if n > 0 && cap(t.logBase) >= 2*n {
		copy(t.logBase[:n], t.log)
		clear(t.logBase[n:cap(t.logBase)])
		t.log = t.logBase[:n]
		return
	}
	grown := make([]trackEntry, n, max(2*n, 16))
	copy(grown, t.log)
	t.log, t.logBase = grown, grown
}

// trimLog drops tombstones from the front of the log, and compacts it when
// most of it is tombstones. Called with t.mu held.
func (t *Track) trimLog() {
	n := 0
	for n < len(t.log) && t.log[n].gone {
		n++
	}
	if n > 0 {
		clear(t.log[:n])
		t.log = t.log[n:]
		t.tombs -= n
	}
	if t.tombs > 32 && t.tombs > len(t.log)/2 {
		live := make([]trackEntry, 0, 2*(len(t.log)-t.tombs))
		for _, e := range t.log {
			if !e.gone {
				live = append(live, e)
			}
		}
		t.log, t.logBase = live, live
		t.tombs = 0
	}
}

// index returns the index of the first log entry with seq >= seq. Called
// with t.mu held.
func (t *Track) index(seq uint64) int {
	if len(t.log) == 0 {
		return 0
	}
	if base := t.log[0].seq; seq >= base && seq-base < uint64(len(t.log)) && t.log[seq-base].seq == seq {
		return int(seq - base) // no compaction below seq: the fast path
	}
	return sort.Search(len(t.log), func(i int) bool { return t.log[i].seq >= seq })
}

// GroupObjects returns the cached objects of group in object ID order (nil
// if it is not cached). The slice is the caller's; the objects are shared
// and read-only. For a truncated group (GroupTruncated) the oldest objects
// are missing.
func (t *Track) GroupObjects(group uint64) []*Object {
	t.touch()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	g := t.group(group, false)
	if g == nil || len(g.objects) == 0 {
		return nil
	}
	return slices.Clone(g.objects)
}

// GroupTruncated reports whether the cached group lost objects because it
// alone outgrew MaxBytes: its objects cannot answer a FETCH.
func (t *Track) GroupTruncated(group uint64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	g := t.group(group, false)
	return g != nil && g.truncated
}

// CachedGroups returns the smallest and largest cached group IDs. Groups in
// between may be missing (never written, or written late and evicted).
func (t *Track) CachedGroups() (oldest, newest uint64, ok bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	if len(t.groups) == 0 {
		return 0, 0, false
	}
	return t.groups[0].id, t.groups[len(t.groups)-1].id, true
}

// CacheStats describes what a track's cache holds.
type CacheStats struct {
	Groups  int
	Objects int
	Events  int   // live events in the log (objects, subgroup ends and aborts)
	Bytes   int64 // counted against MaxBytes
}

// CacheStats returns what the cache holds now.
func (t *Track) CacheStats() CacheStats {
	t.mu.Lock()
	defer t.mu.Unlock()
	return CacheStats{Groups: len(t.groups), Objects: t.objects, Events: len(t.log) - t.tombs, Bytes: t.bytes}
}

// expire applies MaxAge when nothing is being written. Called with t.mu
// held.
func (t *Track) expire() {
	if t.maxAge > 0 && len(t.groups) > 1 && !t.now().Before(t.nextAgeCheck) {
		t.enforceLimits()
	}
}

// EventKind says what an Event is.
type EventKind uint8

// Event kinds.
const (
	// EventObject is an object (Event.Object).
	EventObject EventKind = iota + 1
	// EventSubgroupEnd: the subgroup completed (FIN on the wire). Sent
	// only to readers that got an object of the subgroup.
	EventSubgroupEnd
	// EventSubgroupAbort: the subgroup ended early (a reset with
	// Event.Code), or the reader's filter was narrowed so that the rest of
	// the subgroup no longer passes (code wire.ResetCancelled). Sent only to
	// readers that got an object of the subgroup.
	EventSubgroupAbort
	// EventSkipped: the reader fell behind and events it would have got
	// were evicted. It continues at the start of the newest cached group
	// (see Track) and ignores older groups from then on. The delivery
	// code resets every stream it has open; the reader forgets them, so
	// no end or abort follows for them.
	EventSkipped
)

func (k EventKind) String() string {
	switch k {
	case EventObject:
		return "object"
	case EventSubgroupEnd:
		return "subgroup-end"
	case EventSubgroupAbort:
		return "subgroup-abort"
	case EventSkipped:
		return "skipped"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Event is what a TrackReader yields.
type Event struct {
	Kind            EventKind
	Object          *Object // for EventObject (shared, read-only)
	Group, Subgroup uint64  // for subgroup events, and set for objects too
	// EndOfGroup: the subgroup was opened with endOfGroup (so the delivery
	// code picks the header type); set on every event of that subgroup.
	// For a datagram it is the object's End Of Group bit.
	EndOfGroup bool
	// Extensions: objects of the subgroup may carry extensions (declared
	// when it opened, or seen on one of its objects so far).
	Extensions bool
	Code       uint64 // for EventSubgroupAbort
	Datagram   bool   // the object was written with WriteDatagram
}

// ReaderFilter selects the objects a reader gets (§9.7 filters).
type ReaderFilter struct {
	Start    wire.Location // objects at or after Start
	EndGroup uint64        // objects in groups <= EndGroup, when HasEnd
	HasEnd   bool
	// FromCache also yields the cached objects (already written) that pass
	// the filter; false yields only objects written after NewReader.
	FromCache bool
}

func (f *ReaderFilter) passes(o *Object) bool {
	return o.Location().Compare(f.Start) >= 0 && (!f.HasEnd || o.Group <= f.EndGroup)
}

// groupCanPass reports whether objects of group g that come after those
// already delivered can still pass.
func (f *ReaderFilter) groupCanPass(g uint64) bool {
	return g >= f.Start.Group && (!f.HasEnd || g <= f.EndGroup)
}

// TrackReader reads a track's events at its own pace. Next is called by one
// goroutine at a time; SetFilter and Close may be called from others.
type TrackReader struct {
	t    *Track
	wake chan struct{} // SetFilter and Close nudge a waiting Next

	// Guarded by t.mu.
	pos     uint64 // seq of the next event to look at
	filter  ReaderFilter
	open    map[trackSubgroupKey]bool // subgroups it got an object of → EndOfGroup
	pending []Event                   // aborts made by SetFilter
	skipped bool                      // an event it wanted, at skipAt, was evicted
	skipAt  uint64
	floor   uint64 // objects of groups below floor are ignored (after a skip, SkipTo)
	closed  bool
}

// NewReader starts a reader that yields events in the order the track
// received them, from now on or, with f.FromCache, from the oldest cached
// event.
func (t *Track) NewReader(f ReaderFilter) *TrackReader {
	r := &TrackReader{t: t, wake: make(chan struct{}, 1), filter: f, open: map[trackSubgroupKey]bool{}}
	t.touch()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	r.pos = t.nextSeq
	if f.FromCache && len(t.log) > 0 {
		r.pos = t.log[0].seq
	}
	t.readers[r] = struct{}{}
	return r
}

// wants reports whether ev would be (or make) an event for r; for a fresh
// event, only whether r has its subgroup open. Called with t.mu held.
func (r *TrackReader) wants(ev *Event, fresh bool) bool {
	_, open := r.open[trackSubgroupKey{ev.Group, ev.Subgroup}]
	if ev.Kind != EventObject {
		return open
	}
	if ev.Group < r.floor {
		return false
	}
	if ev.Datagram {
		return !fresh && r.filter.passes(ev.Object)
	}
	return open || (!fresh && r.filter.passes(ev.Object))
}

// Next returns the next event. It blocks until there is one, ctx is done
// (ctx.Err()), or the track has ended and every event was delivered (then
// io.EOF for a normal end, the track's Close error otherwise). After Close
// it returns ErrTrackReaderClosed.
func (r *TrackReader) Next(ctx context.Context) (Event, error) {
	t := r.t
	t.touch()
	t.mu.Lock()
	for {
		if r.closed {
			t.mu.Unlock()
			return Event{}, ErrTrackReaderClosed
		}
		if len(r.pending) > 0 {
			ev := r.pending[0]
			r.pending = slices.Delete(r.pending, 0, 1)
			t.mu.Unlock()
			return ev, nil
		}
		t.expire()
		for i := t.index(r.pos); i < len(t.log); i++ {
			e := &t.log[i]
			if e.gone {
				continue
			}
			if r.skipped && e.seq > r.skipAt {
				r.pos = e.seq
				return r.skip()
			}
			r.pos = e.seq + 1
			if ev, ok := r.deliver(&e.ev); ok {
				t.mu.Unlock()
				return ev, nil
			}
		}
		r.pos = t.nextSeq
		if r.skipped {
			return r.skip()
		}
		if t.closed {
			err := t.closeErr
			t.mu.Unlock()
			return Event{}, err
		}
		ch := t.waitChan()
		t.mu.Unlock()
		select {
		case <-ctx.Done():
			return Event{}, ctx.Err()
		case <-ch:
		case <-r.wake:
		}
		t.mu.Lock()
	}
}

// skip returns EventSkipped, forgets the reader's open subgroups, and
// moves the reader to the start of the newest cached group its filter
// passes; older groups are ignored from then on. Called with t.mu held;
// unlocks it.
func (r *TrackReader) skip() (Event, error) {
	t := r.t
	r.skipped = false
	clear(r.open)
	for i := len(t.groups) - 1; i >= 0; i-- {
		g := t.groups[i]
		if g.entries == 0 || !r.filter.groupCanPass(g.id) {
			continue
		}
		r.floor = max(r.floor, g.id)
		if g.firstSeq > r.pos {
			r.pos = g.firstSeq
		}
		break
	}
	t.mu.Unlock()
	return Event{Kind: EventSkipped}, nil
}

// deliver applies r's filter and subgroup state to a logged event. Called
// with t.mu held.
func (r *TrackReader) deliver(ev *Event) (Event, bool) {
	key := trackSubgroupKey{ev.Group, ev.Subgroup}
	switch ev.Kind {
	case EventObject:
		if ev.Group < r.floor {
			return Event{}, false // older than where a skip moved the reader
		}
		if r.filter.passes(ev.Object) {
			if !ev.Datagram {
				r.open[key] = ev.EndOfGroup
			}
			return *ev, true
		}
		if eog, open := r.open[key]; open && !ev.Datagram {
			// The filter was narrowed under an open subgroup: the rest
			// of its stream will not be sent.
			delete(r.open, key)
			return Event{Kind: EventSubgroupAbort, Group: ev.Group, Subgroup: ev.Subgroup, EndOfGroup: eog, Code: uint64(wire.ResetCancelled)}, true
		}
	case EventSubgroupEnd, EventSubgroupAbort:
		if _, open := r.open[key]; open {
			delete(r.open, key)
			return *ev, true
		}
	}
	return Event{}, false
}

// SetFilter changes the reader's filter (SUBSCRIBE_UPDATE narrows it). It
// applies to the events not yet read. Open subgroups whose group no longer
// passes are aborted (EventSubgroupAbort, wire.ResetCancelled) by the next
// Next. The FromCache field is ignored.
func (r *TrackReader) SetFilter(f ReaderFilter) {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.closed {
		return
	}
	r.filter = f
	for key, eog := range r.open {
		if !f.groupCanPass(key.group) {
			delete(r.open, key)
			r.pending = append(r.pending, Event{Kind: EventSubgroupAbort, Group: key.group, Subgroup: key.subgroup, EndOfGroup: eog, Code: uint64(wire.ResetCancelled)})
		}
	}
	slices.SortFunc(r.pending, func(a, b Event) int {
		if c := cmp.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return cmp.Compare(a.Subgroup, b.Subgroup)
	})
	if len(r.pending) > 0 {
		r.nudge()
	}
}

// SkipTo makes the reader ignore the groups before group from now on: its
// open subgroups of them end with EventSubgroupAbort (wire.ResetCancelled)
// at the next Next, and their later objects are not yielded. A player that
// falls behind calls it to continue at a newer group (see
// Subscription.SkipTo). Groups only move forward.
func (r *TrackReader) SkipTo(group uint64) {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.closed || group <= r.floor {
		return
	}
	r.floor = group
	for key, eog := range r.open {
		if key.group < group {
			delete(r.open, key)
			r.pending = append(r.pending, Event{Kind: EventSubgroupAbort, Group: key.group, Subgroup: key.subgroup, EndOfGroup: eog, Code: uint64(wire.ResetCancelled)})
		}
	}
	slices.SortFunc(r.pending, func(a, b Event) int {
		if c := cmp.Compare(a.Group, b.Group); c != 0 {
			return c
		}
		return cmp.Compare(a.Subgroup, b.Subgroup)
	})
	if len(r.pending) > 0 {
		r.nudge()
	}
}

func (r *TrackReader) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Close releases the reader; a blocked Next returns ErrTrackReaderClosed.
func (r *TrackReader) Close() {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	r.open = nil
	r.pending = nil
	delete(t.readers, r)
	r.nudge()
}
