package moqtransport

import (
	"cmp"
	"slices"
	"sort"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// The track cache: groups, the event log, and eviction by groups, bytes,
// age and the shared CacheBudget.

// trackEntry is one event of the log.
type trackEntry struct {
	seq  uint64
	ev   Event
	gone bool
}

// cachedGroup is the cache's record of one group.
type cachedGroup struct {
	id        uint64
	objects   []*Object // in arrival order, unless reordered; by object ID unless unsorted
	unsorted  bool      // objects arrived out of ID order since the last sort
	reordered bool      // a sort put objects out of arrival order (truncate restores it)
	bytes     int64
	entries   int // live log entries
	firstSeq  uint64
	lastSeq   uint64
	first     time.Time // arrival of its first event
	maxID     uint64
	hasObject bool
	endID     uint64 // End of Group (or End of Track) object ID
	hasEnd    bool
	// lastEnd is one past the group's last object as a stream that
	// declared End of Group (subgroup header types 0x18-0x1D) and ended
	// with FIN told it, or a datagram with the End Of Group bit: the
	// group's end without an End of Group object (knownEnd). A reset
	// stream tells nothing (§10.4.2).
	lastEnd    uint64
	hasLastEnd bool
	endsDiffer bool // two declared ends disagree (knownEnd)
	truncated  bool
	// byID indexes objects by ID, for the duplicate check (lookup), from
	// the first lookup in a group whose objects are out of ID order; nil
	// before, and in a group written in ID order, which never needs it.
	byID map[uint64]*Object
}

// declareEnd records that the group ends before object ID end, as a FIN'd
// subgroup that declared End of Group or a datagram with the End Of Group
// bit says. Called with t.mu held.
func (g *cachedGroup) declareEnd(end uint64) {
	if g.hasLastEnd && g.lastEnd != end {
		g.endsDiffer = true
	}
	g.lastEnd, g.hasLastEnd = end, true
}

// knownEnd returns the last object ID that can exist in g, inclusive: an
// End of Group or End of Track object's ID, or the last object of a
// subgroup declared to end the group. ok is false when the group's end is
// unknown, or when two signals disagree (a malformed source: neither is
// trusted).
func (g *cachedGroup) knownEnd() (last uint64, ok bool) {
	switch {
	case g.endsDiffer || g.hasEnd && g.hasLastEnd && g.lastEnd != g.endID:
		return 0, false
	case g.hasEnd:
		return g.endID, true // the End of Group object itself is cached
	case g.hasLastEnd:
		if g.maxID >= g.lastEnd {
			return 0, false // an object past the declared end
		}
		return g.lastEnd - 1, true
	}
	return 0, false
}

// knows reports whether the cache holds every object of g with an ID in
// [lo, hi] that can exist: each ID from lo up to hi, or up to the group's
// known end when that comes first, is a cached object or declared not to
// exist by a cached object's Prior Object ID Gap. An ID not cached
// may be an object still on its way on another subgroup stream, or lost
// with a reset one: its status is unknown, not "does not exist" (§9.16).
// Called with t.mu held exclusively (the objects are sorted).
func (g *cachedGroup) knows(lo, hi uint64) bool {
	if end, ok := g.knownEnd(); ok && end < hi {
		hi = end
	}
	if lo > hi {
		return true // past the group's end: nothing there exists
	}
	next := lo
	for _, o := range g.sortedObjects() {
		switch {
		case o.ID < next:
			continue // before lo, or a duplicate
		case o.ID > next && priorGap(o.Extensions, wire.ExtPriorObjectIDGap) < o.ID-next:
			return false // IDs from next are missing, not declared nonexistent
		case o.ID >= hi:
			return true // [next, o.ID) is empty or declared nonexistent
		}
		next = o.ID + 1
	}
	return false
}

// priorGap returns the Prior Group ID Gap or Prior Object ID Gap (ext) an
// object's extensions declare (§11.1, §11.3: that many group or object IDs
// before it will never exist), 0 when none. It is read only where the
// cache lacks IDs, never on the write path. Trust: the publisher's word,
// as an End of Group is.
func priorGap(e wire.Extensions, ext uint64) uint64 {
	if len(e) == 0 {
		return 0
	}
	kv, _ := e.Get(ext)
	return kv.Value
}

// groupGap returns the Prior Group ID Gap g's objects declare, 0 when none
// does or when two declare different gaps (§11.1 makes that a malformed
// track: a source that contradicts itself is believed neither way).
func (g *cachedGroup) groupGap() uint64 {
	var gap uint64
	for _, o := range g.objects {
		if v := priorGap(o.Extensions, wire.ExtPriorGroupIDGap); v != 0 {
			if gap != 0 && v != gap {
				return 0
			}
			gap = v
		}
	}
	return gap
}

// lookup returns g's cached object with ID id, or nil. Objects in ID
// order are searched; out of order they are indexed once (byID), which
// addObject and truncate then keep up to date: no lookup scans the group.
// Called with t.mu held exclusively.
func (g *cachedGroup) lookup(id uint64) *Object {
	if g.byID == nil {
		if !g.unsorted {
			i, ok := slices.BinarySearchFunc(g.objects, id, func(o *Object, id uint64) int { return cmp.Compare(o.ID, id) })
			if ok {
				return g.objects[i]
			}
			return nil
		}
		g.byID = make(map[uint64]*Object, len(g.objects))
		for _, o := range g.objects {
			g.byID[o.ID] = o
		}
	}
	return g.byID[id]
}

// group returns the cache's record of group id, creating it if create.
// Called with t.mu held.
func (t *Track) group(id uint64, create bool) *cachedGroup {
	n := len(t.groups)
	if n > 0 && t.groups[n-1].id == id {
		return t.groups[n-1]
	}
	i := t.groupIndex(id)
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

// broadcast wakes the readers waiting for an event, once the caller lets
// go of t.mu (unlock): woken while the writer still held it, a thousand
// readers would queue for it. Called with t.mu held exclusively.
func (t *Track) broadcast() {
	if p := t.notify.Swap(nil); p != nil {
		if t.wakeup != nil {
			close(t.wakeup) // a second broadcast under one lock
		}
		t.wakeup = *p
	}
}

// unlock releases t.mu held exclusively, then wakes the readers a
// broadcast under it was for.
func (t *Track) unlock() {
	ch := t.wakeup
	t.wakeup = nil
	t.mu.Unlock()
	if ch != nil {
		close(ch)
	}
}

// waitChan returns a channel that the next write closes. Called with t.mu
// held, shared or exclusively: readers that wait at once share one
// channel.
func (t *Track) waitChan() <-chan struct{} {
	for {
		if p := t.notify.Load(); p != nil {
			return *p
		}
		ch := make(chan struct{})
		if t.notify.CompareAndSwap(nil, &ch) {
			return ch
		}
	}
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
	if !t.hasEvicted || g.id > t.evictedMax {
		t.evictedMax, t.hasEvicted = g.id, true
	}
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
	g.objects, g.byID = nil, nil
}

// truncate drops the oldest events of g, the only cached group, until the
// cache is within limit bytes, keeping at least the event last written. It
// reports whether it dropped any. An object dropped is the group's oldest
// by arrival, the first of g.objects, which is sliced off: in a full cache
// every write into one endless group (a telemetry track, or a peer that
// never starts a new group) drops one, and deleting it from the slice
// moved every object after it, O(objects cached) per write. Called with
// t.mu held.
func (t *Track) truncate(g *cachedGroup, limit int64) bool {
	if g.reordered {
		t.arrivalOrder(g)
	}
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
			if g.dropOldest(o) {
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

// dropOldest removes o, the oldest object of g by arrival, from g.objects,
// which is in arrival order (truncate), and reports whether it was there.
// Slicing it off leaves its slot (cleared) in the array, which the next
// append that needs room leaves behind: O(1) amortised. Called with t.mu
// held exclusively.
func (g *cachedGroup) dropOldest(o *Object) bool {
	switch {
	case len(g.objects) > 0 && g.objects[0] == o:
		g.objects[0] = nil
		g.objects = g.objects[1:]
	default: // not reached: o is the first
		k := slices.Index(g.objects, o)
		if k < 0 {
			return false
		}
		g.objects = slices.Delete(g.objects, k, k+1)
	}
	if g.byID != nil {
		delete(g.byID, o.ID)
	}
	return true
}

// arrivalOrder puts the objects of g, which a read sorted by ID
// (sortedObjects), back in arrival order, which the log keeps, for
// truncate. Called with t.mu held exclusively.
func (t *Track) arrivalOrder(g *cachedGroup) {
	n := 0
	for j := t.index(g.firstSeq); j < len(t.log) && t.log[j].seq <= g.lastSeq && n < len(g.objects); j++ {
		if e := &t.log[j]; !e.gone && e.ev.Group == g.id && e.ev.Object != nil {
			g.objects[n] = e.ev.Object
			n++
		}
	}
	g.reordered = false
	g.unsorted = true // it was sorted because it was not in ID order
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

// TrackCache is a view of what a track's cache holds, for relays and tools
// that serve or inspect cached objects themselves (FetchFromTrack is built
// on it). A publisher does not need it: subscribers, FETCH and readers are
// served from the cache without it.
type TrackCache struct{ t *Track }

// Cache returns the view of the track's cache.
func (t *Track) Cache() TrackCache { return TrackCache{t} }

// Objects returns the cached objects of group in object ID order (nil if
// it is not cached). The slice is the caller's; the objects are shared and
// read-only. For a truncated group (Truncated) the oldest objects are
// missing.
func (c TrackCache) Objects(group uint64) []*Object { return c.t.groupObjects(group) }

// Truncated reports whether the cached group lost objects because it alone
// outgrew TrackConfig.MaxBytes: its objects cannot answer a FETCH.
func (c TrackCache) Truncated(group uint64) bool { return c.t.groupTruncated(group) }

// Groups returns the smallest and largest cached group IDs. Groups in
// between may be missing (never written, or written late and evicted).
func (c TrackCache) Groups() (oldest, newest uint64, ok bool) { return c.t.cachedGroups() }

func (t *Track) groupObjects(group uint64) []*Object {
	t.touch()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	g := t.group(group, false)
	if g == nil || len(g.objects) == 0 {
		return nil
	}
	return slices.Clone(g.sortedObjects())
}

// sortedObjects returns g's objects in object ID order, sorting them in
// place once per change of order: stable, so equal IDs keep their arrival
// order. The slice is g's. Called with t.mu held exclusively.
func (g *cachedGroup) sortedObjects() []*Object {
	if g.unsorted {
		slices.SortStableFunc(g.objects, func(a, b *Object) int { return cmp.Compare(a.ID, b.ID) })
		g.unsorted, g.reordered = false, true
	}
	return g.objects
}

func (t *Track) groupTruncated(group uint64) bool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	g := t.group(group, false)
	return g != nil && g.truncated
}

func (t *Track) cachedGroups() (oldest, newest uint64, ok bool) {
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

// Stats returns what the cache holds now.
func (c TrackCache) Stats() CacheStats {
	t := c.t
	t.mu.RLock()
	defer t.mu.RUnlock()
	return CacheStats{Groups: len(t.groups), Objects: t.objects, Events: len(t.log) - t.tombs, Bytes: t.bytes}
}

// expire applies MaxAge when nothing is being written. Called with t.mu
// held exclusively.
func (t *Track) expire() {
	if t.expireDue() {
		t.enforceLimits()
	}
}

// expireDue reports whether a cached group may have outlived MaxAge.
// Called with t.mu held, shared or exclusively.
func (t *Track) expireDue() bool {
	return t.maxAge > 0 && len(t.groups) > 1 && !t.now().Before(t.nextAgeCheck)
}

// groupIndex is the index in t.groups of group id, or where it would go.
// Called with t.mu held.
func (t *Track) groupIndex(id uint64) int {
	return sort.Search(len(t.groups), func(i int) bool { return t.groups[i].id >= id })
}
