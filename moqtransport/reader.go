package moqtransport

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

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
	// the subgroup no longer passes (code ResetCancelled). Sent only to
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
	Start    Location // objects at or after Start
	EndGroup uint64   // objects in groups <= EndGroup, when HasEnd
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
	// idle is the channel the next write closes, kept by a Next that
	// read every event; used by Next's goroutine alone.
	idle <-chan struct{}
	// waitHook, when set (by tests), is called as Next is about to wait.
	waitHook func()

	// Guarded by t.mu: written by Next (holding it shared: only Next's
	// goroutine touches them then) and by those holding it exclusively.
	pos     uint64 // seq of the next event to look at
	filter  ReaderFilter
	open    map[trackSubgroupKey]bool // subgroups it got an object of → EndOfGroup
	pending []Event                   // aborts made by SetFilter
	skipped bool                      // an event it wanted, at skipAt, was evicted
	skipAt  uint64
	floor   uint64 // objects of groups below floor are ignored (after a skip, SkipTo)
	closed  bool
	// maxGroup: the largest group of an object it looked at, filter or
	// not (0 before any: past no end group).
	maxGroup uint64
}

// NewReader starts a reader that yields events in the order the track
// received them, from now on or, with f.FromCache, from the oldest cached
// event.
func (t *Track) NewReader(f ReaderFilter) *TrackReader {
	r, _, _ := t.newReaderAt(func(Location, bool) (ReaderFilter, bool) { return f, true })
	return r
}

// newReaderAt starts a reader of the events written from now on (or from
// the cache, with FromCache) whose filter filterOf derives from the track's
// largest location, and returns that location. Both happen under one hold
// of the lock: an object written between them would pass neither a
// SUBSCRIBE's Largest Object filter (which starts after the largest
// location SUBSCRIBE_OK names) nor the joining FETCH that ends at it, and
// the subscriber would miss it. filterOf runs with t.mu held; when it says
// no, there is no reader (nil).
func (t *Track) newReaderAt(filterOf func(largest Location, exists bool) (ReaderFilter, bool)) (r *TrackReader, largest Location, exists bool) {
	t.touch()
	t.mu.Lock()
	defer t.mu.Unlock()
	largest, exists = t.largest, t.hasLargest
	f, ok := filterOf(largest, exists)
	if !ok {
		return nil, largest, exists
	}
	r = &TrackReader{t: t, wake: make(chan struct{}, 1), filter: f, open: map[trackSubgroupKey]bool{}}
	t.expire()
	r.pos = t.nextSeq
	if f.FromCache && len(t.log) > 0 {
		r.pos = t.log[0].seq
	}
	t.readers[r] = struct{}{}
	t.nreaders.Add(1)
	return r, largest, exists
}

// readerCount returns how many readers the track has.
func (t *Track) readerCount() int { return int(t.nreaders.Load()) }

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
// it returns ErrTrackReaderClosed. A reader whose filter has an end group
// returns ErrEndGroupPassed once an object of a later group came and its
// subgroups open in the range have ended: a subscription with an end
// group ends there (PUBLISH_DONE SUBSCRIPTION_ENDED), not at the track's
// end. (A subgroup of the range that starts after that is not waited for.)
//
// Next holds the track's lock shared: a thousand readers woken by one
// write read it side by side. A reader that has read every event keeps the
// channel the next write closes (idle), so that it waits for that write
// without taking the lock again.
func (r *TrackReader) Next(ctx context.Context) (Event, error) {
	t := r.t
	t.touch()
	if ch := r.idle; ch != nil {
		// Only a write (which closes ch), or SetFilter, SkipTo or Close
		// on r (which nudge r.wake), can give r an event: not an
		// eviction, which only takes events r has not reached.
		r.idle = nil
		if err := r.wait(ctx, ch); err != nil {
			return Event{}, err
		}
	}
	t.mu.RLock()
	expired := false // MaxAge applied since the last wait
	for {
		if r.closed {
			t.mu.RUnlock()
			return Event{}, ErrTrackReaderClosed
		}
		if len(r.pending) > 0 {
			ev := r.pending[0]
			r.pending = slices.Delete(r.pending, 0, 1)
			t.mu.RUnlock()
			return ev, nil
		}
		if r.pastEndLocked() {
			t.mu.RUnlock()
			return Event{}, ErrEndGroupPassed
		}
		if !expired && t.expireDue() {
			// Evicting needs the lock exclusively; what it changed is
			// looked at again.
			expired = true
			t.mu.RUnlock()
			t.mu.Lock()
			t.expire()
			t.mu.Unlock()
			t.mu.RLock()
			continue
		}
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
				if r.pos == t.nextSeq && !r.skipped && !t.closed && !r.pastEndLocked() {
					r.idle = t.waitChan()
				}
				t.mu.RUnlock()
				return ev, nil
			}
		}
		r.pos = t.nextSeq
		if r.skipped {
			return r.skip()
		}
		if r.pastEndLocked() {
			t.mu.RUnlock()
			return Event{}, ErrEndGroupPassed
		}
		if t.closed {
			err := t.closeErr
			t.mu.RUnlock()
			return Event{}, err
		}
		ch := t.waitChan()
		t.mu.RUnlock()
		if err := r.wait(ctx, ch); err != nil {
			return Event{}, err
		}
		t.mu.RLock()
		expired = false
	}
}

// pastEndLocked reports whether nothing more can pass r's filter: it has
// an end group, an object of a later group came, and the subgroups of the
// range r yielded objects of have ended. Called with t.mu held.
func (r *TrackReader) pastEndLocked() bool {
	return r.filter.HasEnd && r.maxGroup > r.filter.EndGroup && len(r.open) == 0
}

// wait returns once ch, the channel the track's next write closes, is
// closed, r is nudged (SetFilter, SkipTo, Close), or ctx is done
// (ctx.Err()). Called without the track's lock.
func (r *TrackReader) wait(ctx context.Context, ch <-chan struct{}) error {
	select {
	case <-ch:
		return nil
	case <-r.wake:
		return nil
	default:
	}
	if r.waitHook != nil {
		r.waitHook()
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
	case <-r.wake:
	}
	return nil
}

// skip returns EventSkipped, forgets the reader's open subgroups, and
// moves the reader to the start of the newest cached group its filter
// passes; older groups are ignored from then on. Called with t.mu held
// shared; unlocks it.
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
	t.mu.RUnlock()
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
		if ev.Group > r.maxGroup {
			// Past an end group, Next ends once the range's open
			// subgroups have.
			r.maxGroup = ev.Group
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
			return Event{Kind: EventSubgroupAbort, Group: ev.Group, Subgroup: ev.Subgroup, EndOfGroup: eog, Code: uint64(ResetCancelled)}, true
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
// passes are aborted (EventSubgroupAbort, ResetCancelled) by the next
// Next. The FromCache field is ignored.
func (r *TrackReader) SetFilter(f ReaderFilter) {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.closed {
		return
	}
	r.filter = f
	r.abortOpenLocked(func(key trackSubgroupKey) bool { return !f.groupCanPass(key.group) })
}

// SkipTo makes the reader ignore the groups before group from now on: its
// open subgroups of them end with EventSubgroupAbort (ResetCancelled)
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
	r.abortOpenLocked(func(key trackSubgroupKey) bool { return key.group < group })
}

// abortOpenLocked ends the open subgroups that drop selects: the next Next
// yields their EventSubgroupAbort (ResetCancelled), in group and subgroup
// order. Called with t.mu held.
func (r *TrackReader) abortOpenLocked(drop func(trackSubgroupKey) bool) {
	for key, eog := range r.open {
		if drop(key) {
			delete(r.open, key)
			r.pending = append(r.pending, Event{Kind: EventSubgroupAbort, Group: key.group, Subgroup: key.subgroup, EndOfGroup: eog, Code: uint64(ResetCancelled)})
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
	t.nreaders.Add(-1)
	r.nudge()
}
