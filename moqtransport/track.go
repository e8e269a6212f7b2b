package moqtransport

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
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
	// ErrEndGroupPassed is what a TrackReader whose filter has an end
	// group returns once the track has gone past it: nothing more can
	// pass the filter.
	ErrEndGroupPassed = errors.New("moqt: the track is past the reader's end group")
	ErrMalformedTrack = errors.New("moqt: malformed track")
	ErrInvalidObject  = errors.New("moqt: invalid object")
)

// Object is one object of a track. Payload and Extensions are shared by
// every reader and must not be modified after the object is written.
type Object struct {
	Group, Subgroup, ID uint64
	PublisherPriority   uint8
	Status              ObjectStatus // StatusNormal for a payload object
	Extensions          Extensions
	Payload             []byte
	// EndOfGroup is for datagram objects only: the object is the last of
	// its group (the OBJECT_DATAGRAM End Of Group bit). Subgroup objects
	// leave it false; Event.EndOfGroup describes their stream.
	EndOfGroup bool
	Received   time.Time // when the track got it (set by the track on write)
}

// Location returns the object's location.
func (o *Object) Location() Location { return Location{Group: o.Group, Object: o.ID} }

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
	// events are dropped (the group is then truncated, see
	// TrackCache.Truncated),
	// always keeping the event just written.
	MaxBytes int64
	// MaxAge drops groups whose first object arrived longer ago (the
	// newest group excepted); 0 means no age limit. A relay sets it from
	// MAX_CACHE_DURATION.
	MaxAge time.Duration
	// GroupOrder is the publisher's preferred order; default Ascending.
	GroupOrder GroupOrder
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
	// Budget, when set, bounds the bytes cached by every track that
	// shares it, evicting from the least recently read tracks first (see
	// CacheBudget).
	Budget *CacheBudget
	// DeliveryTimeout and MaxCacheDuration are the publisher's DELIVERY
	// TIMEOUT and MAX_CACHE_DURATION (zero: none), sent to subscribers in
	// SUBSCRIBE_OK and PUBLISH and applied when objects are forwarded
	// (§9.2.1.2, §9.2.1.3). A track received from a peer takes the peer's.
	DeliveryTimeout, MaxCacheDuration time.Duration
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

	// mu guards the cache and the readers' positions. Writers (the
	// producer, evictions, readers' SetFilter, SkipTo and Close) take it
	// exclusively; TrackReader.Next, which a thousand dispatchers of one
	// relayed track call for every object, only reads the track and its
	// own reader, and takes it shared, so that they do not queue behind
	// one another.
	mu sync.RWMutex
	// log holds the cached events in arrival order, by increasing seq.
	// Evicted events are tombstoned (gone) and trimmed from the front;
	// the log is compacted when tombstones are the majority.
	log     []trackEntry
	logBase []trackEntry // log's array, from its start (makeLogRoom)
	tombs   int
	nextSeq uint64
	// evictedMax is the largest group ID the cache evicted (hasEvicted:
	// any). Evicting by age goes by arrival, so a group can be evicted
	// while one with a smaller ID stays: a range that reaches down to
	// evictedMax may cross it (cachedRange refuses it).
	evictedMax uint64
	hasEvicted bool
	// groups is the cache's group index, sorted by group ID.
	groups       []*cachedGroup
	bytes        int64
	objects      int
	nextAgeCheck time.Time
	// notify is closed by the next write (broadcast); nil when nobody
	// waits. Readers holding mu shared create it (waitChan), so it is an
	// atomic; writers take it under mu and close it after letting go of
	// mu (wakeup, unlock): the readers it wakes then find mu free.
	notify      atomic.Pointer[chan struct{}]
	wakeup      chan struct{}
	readers     map[*TrackReader]struct{}
	nreaders    atomic.Int32 // len(readers), read without mu (readerCount)
	writers     map[*SubgroupWriter]struct{}
	justWritten bool // enforceLimits runs for the object last logged

	largest wire.Location

	// The CacheBudget, when there is one (cachebudget.go).
	budget   *CacheBudget
	share    *budgetShare
	lastRead atomic.Uint64

	// The publisher's timeouts (TrackConfig, setTimeouts), read without t.mu by every
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

type trackSubgroupKey struct{ group, subgroup uint64 }

// NewTrack returns an empty track.
func NewTrack(name FullTrackName, cfg TrackConfig) *Track {
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
	t.setTimeouts(cfg.DeliveryTimeout, cfg.MaxCacheDuration)
	if cfg.Budget != nil {
		t.budget, t.share = cfg.Budget, &budgetShare{}
		cfg.Budget.add(t)
	}
	return t
}

// Name returns the track's full name.
func (t *Track) Name() FullTrackName { return t.name }

// GroupOrder returns the publisher's preferred group order (never
// GroupOrderPublisher).
func (t *Track) GroupOrder() GroupOrder { return t.groupOrder }

// Forwarding returns the track's forwarding preference: set by the first
// OpenSubgroup or WriteDatagram, ForwardSubgroup before either.
func (t *Track) Forwarding() ForwardingPreference {
	t.mu.RLock()
	defer t.mu.RUnlock()
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
func (t *Track) Largest() (Location, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.largest, t.hasLargest
}

// noteLargest records that the track's source has published objects up to
// loc (the Largest Location of a SUBSCRIBE_OK or PUBLISH), so that Largest
// reports it before those objects arrive here. It never lowers Largest.
func (t *Track) noteLargest(loc wire.Location) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.hasLargest || t.largest.Less(loc) {
		t.largest, t.hasLargest = loc, true
	}
}

// Done is closed by Close.
func (t *Track) Done() <-chan struct{} { return t.done }

// setTimeouts records the track's DELIVERY TIMEOUT and MAX_CACHE_DURATION,
// as a peer's SUBSCRIBE_OK or PUBLISH gave them. A relay passes them on to
// its subscribers and applies them when it forwards.
func (t *Track) setTimeouts(delivery, maxCache time.Duration) {
	t.deliveryTimeout.Store(int64(delivery))
	t.maxCacheDuration.Store(int64(maxCache))
}

// Timeouts returns the track's DELIVERY TIMEOUT and MAX_CACHE_DURATION:
// TrackConfig's, or for a track received from a peer, the peer's.
func (t *Track) Timeouts() (delivery, maxCache time.Duration) {
	return time.Duration(t.deliveryTimeout.Load()), time.Duration(t.maxCacheDuration.Load())
}

// clock reads the track's clock (TrackConfig.Now).
func (t *Track) clock() time.Time { return t.now() }

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
	t.mu.RLock()
	defer t.mu.RUnlock()
	if t.closeErr == io.EOF {
		return nil
	}
	return t.closeErr
}

// Close ends the track: no more objects. err == nil means the track ended
// normally (readers get io.EOF after the last event); a non-nil err is a
// failure that readers get instead. Subgroups still open are aborted, with
// ResetCancelled after a normal end or a PublishDoneError other than
// INTERNAL_ERROR (the publisher ended it, §10.4.3: PUBLISH_DONE says why),
// and ResetInternalError otherwise. Close is idempotent; the first call
// decides.
func (t *Track) Close(err error) {
	t.mu.Lock()
	defer t.unlock()
	if t.closed {
		return
	}
	code := uint64(wire.ResetCancelled)
	if err == nil {
		err = io.EOF
	} else {
		code = uint64(closeResetCode(err))
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

// closeResetCode is the reset code of the open streams of a track closed
// with err (not nil): CANCELLED for a PublishDoneError other than
// INTERNAL_ERROR, since the publisher ended it and PUBLISH_DONE says why
// (§10.4.3), INTERNAL_ERROR for a failure.
func closeResetCode(err error) wire.StreamResetCode {
	var re *RequestError
	if errors.As(err, &re) && re.Message == wire.TypePublishDone && re.Code != uint64(wire.DoneInternalError) {
		return wire.ResetCancelled
	}
	return wire.ResetInternalError
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

// WriteObject adds a Normal object with payload and extension headers
// (ext, nil for none) to the subgroup. The track keeps payload and shares
// it with every subscriber and reader, without copying it: do not modify
// payload after the call.
//
// An object the cache already holds (the same group and object ID, sent
// again on another stream after a reset, §2.3) is a duplicate: it returns
// nil and the object is dropped, neither cached nor given to readers
// again, so that the stream carrying it goes on; a duplicate that
// differs from the cached object makes the track malformed (§8.1, see
// Track.addObject).
func (w *SubgroupWriter) WriteObject(id uint64, payload []byte, ext Extensions) error {
	return w.write(id, wire.StatusNormal, ext, payload)
}

// WriteStatus writes a zero-length object with status: Normal, Does Not
// Exist (which carries no extensions), End of Group or End of Track.
func (w *SubgroupWriter) WriteStatus(id uint64, status ObjectStatus, ext Extensions) error {
	return w.write(id, status, ext, nil)
}

func (w *SubgroupWriter) write(id uint64, status wire.ObjectStatus, ext wire.Extensions, payload []byte) error {
	if err := checkObject(status, ext, payload); err != nil {
		return err
	}
	if err := ext.CheckRules(wire.Location{Group: w.group, Object: id}); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedTrack, err)
	}
	t := w.t
	defer t.settle()
	t.mu.Lock()
	defer t.unlock()
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
	added, err := t.addObject(o, Event{Kind: EventObject, Object: o, Group: w.group, Subgroup: w.subgroup, EndOfGroup: w.endOfGroup, Extensions: ext0})
	if err != nil {
		return err
	}
	w.lastID, w.hasLast = id, true
	if added {
		w.logged, w.extensions = true, ext0
	}
	return nil
}

// Close says that the subgroup is complete (FIN on the wire). Readers that
// got an object of it get EventSubgroupEnd.
func (w *SubgroupWriter) Close() error {
	t := w.t
	defer t.settle()
	t.mu.Lock()
	defer t.unlock()
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
// ResetCancelled or ResetDeliveryTimeout). Readers that got an
// object of it get EventSubgroupAbort with code. Abort after Close does
// nothing.
func (w *SubgroupWriter) Abort(code uint64) {
	t := w.t
	defer t.settle()
	t.mu.Lock()
	defer t.unlock()
	if w.done {
		return
	}
	t.endSubgroup(w, EventSubgroupAbort, code)
	t.enforceLimits()
	t.broadcast()
}

// endSubgroup retires w and logs its end for the readers that saw it.
// A subgroup whose objects were all duplicates (dropped, nothing logged)
// still tells its group's end. Called with t.mu held.
func (t *Track) endSubgroup(w *SubgroupWriter, kind EventKind, code uint64) {
	w.done = true
	delete(t.writers, w)
	var g *cachedGroup
	if w.logged {
		g = t.group(w.group, true)
	} else if g = t.group(w.group, false); g == nil || !w.hasLast {
		return // no reader can have a stream open for it
	}
	if kind == EventSubgroupEnd && w.endOfGroup {
		// §10.4.2: with Contains End of Group, the last object before
		// the FIN is the group's last (an End of Group object, when it
		// is one, already set g.endID to its ID).
		end := w.lastID + 1
		if g.hasEnd && g.endID == w.lastID {
			end = w.lastID
		}
		g.declareEnd(end)
	}
	if w.logged {
		t.appendEntry(g, Event{Kind: kind, Group: w.group, Subgroup: w.subgroup, EndOfGroup: w.endOfGroup, Code: code}, CacheEntryOverhead)
	}
}

// WriteDatagram records a datagram object. o.Subgroup is set to o.ID (the
// value a FETCH carries for datagram objects); o.Received is set too. A
// datagram whose object the cache holds already is dropped and returns nil,
// or makes the track malformed if it differs (§8.1, see
// SubgroupWriter.WriteObject).
func (t *Track) WriteDatagram(o Object) error {
	if err := checkObject(o.Status, o.Extensions, o.Payload); err != nil {
		return err
	}
	if err := o.Extensions.CheckRules(o.Location()); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformedTrack, err)
	}
	defer t.settle()
	t.mu.Lock()
	defer t.unlock()
	if t.closed {
		return ErrTrackClosed
	}
	if err := t.setForwarding(ForwardDatagram); err != nil {
		return err
	}
	p := new(Object)
	*p = o
	p.Subgroup = p.ID
	_, err := t.addObject(p, Event{Kind: EventObject, Object: p, Group: p.Group, Subgroup: p.Subgroup, EndOfGroup: p.EndOfGroup, Datagram: true})
	return err
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
// caches and logs it, and reports that it did; added is false for a
// duplicate of a cached object, which is dropped (§8.1: a relay MAY ignore
// an object received again). A duplicate that differs from the cached
// object (sameObject) makes the track malformed. Only an object whose ID
// is at or below the largest of its group can be a duplicate: the objects
// of one subgroup stream arrive with rising IDs, so a group written one
// subgroup after another never looks one up. The check sees the objects
// still cached: one evicted, or dropped from a truncated group, is taken
// as new. Called with t.mu held.
func (t *Track) addObject(o *Object, ev Event) (added bool, err error) {
	loc := o.Location()
	g := t.group(o.Group, false)
	if g != nil && g.hasObject && o.ID <= g.maxID {
		// Before the checks against the group's and the track's end:
		// the End of Group or End of Track object sent again is not
		// past itself.
		if c := g.lookup(o.ID); c != nil {
			return false, sameObject(c, o)
		}
	}
	if eot := t.endOfTrack; eot != nil && loc.Compare(*eot) >= 0 {
		return false, fmt.Errorf("%w: object %v at or past End of Track %v", ErrMalformedTrack, loc, *eot)
	}
	if g != nil && g.hasEnd && o.ID >= g.endID {
		return false, fmt.Errorf("%w: object %v at or past the end of group %d (object %d)", ErrMalformedTrack, loc, o.Group, g.endID)
	}
	switch o.Status {
	case wire.StatusEndOfTrack:
		if t.hasLargest && t.largest.Compare(loc) >= 0 {
			return false, fmt.Errorf("%w: End of Track %v is not past the largest object %v", ErrMalformedTrack, loc, t.largest)
		}
	case wire.StatusEndOfGroup:
		if g != nil && g.hasObject && g.maxID >= o.ID {
			return false, fmt.Errorf("%w: End of Group %v is not past object %d", ErrMalformedTrack, loc, g.maxID)
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
	case wire.StatusNormal:
		if ev.Datagram && o.EndOfGroup {
			g.declareEnd(o.ID + 1)
		}
	}
	if !t.hasLargest || t.largest.Less(loc) {
		t.largest, t.hasLargest = loc, true
	}
	// Kept in arrival order and sorted when read (groupObjects): objects
	// arrive mostly in ID order, and a peer interleaving subgroups with
	// falling IDs must not make each insertion a scan of the group.
	if n := len(g.objects); n > 0 && g.objects[n-1].ID > o.ID {
		g.unsorted = true
	}
	g.objects = append(g.objects, o)
	if g.byID != nil {
		g.byID[o.ID] = o
	}
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
	return true, nil
}

// sameObject judges o, received again with the ID of the cached object c
// (§8.1). A Subgroup ID, Publisher Priority, Payload or Object Status that
// differs makes the track malformed, except that the status may change
// to Object Does Not Exist (the object is no longer available), and a
// Normal, End of Group or End of Track object may arrive after an Object
// Does Not Exist (reordering), which is not to be cached or forwarded.
// Extension headers may be added, removed or updated: the cached ones
// are kept. The forwarding preference was checked already
// (setForwarding). nil means o is dropped.
func sameObject(c, o *Object) error {
	var what string
	switch {
	case c.Subgroup != o.Subgroup:
		what = fmt.Sprintf("in subgroup %d", o.Subgroup)
	case c.PublisherPriority != o.PublisherPriority:
		what = fmt.Sprintf("with publisher priority %d", o.PublisherPriority)
	case c.Status == wire.StatusDoesNotExist || o.Status == wire.StatusDoesNotExist:
		return nil
	case c.Status != o.Status:
		what = "with status " + o.Status.String()
	case !bytes.Equal(c.Payload, o.Payload):
		what = "with another payload"
	default:
		return nil
	}
	return fmt.Errorf("%w: object %v received again %s (cached: subgroup %d, priority %d, status %s, %d payload bytes)",
		ErrMalformedTrack, o.Location(), what, c.Subgroup, c.PublisherPriority, c.Status, len(c.Payload))
}
