package moqtransport

import (
	"container/heap"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Write-ahead: what a session's subgroup writers hold inside the transport.
//
// A subgroup writer copies the headers and payloads of a write into a
// pooled buffer (writeFramed) and hands it to the transport, which takes
// it as the connection sends: quic-go's Write returns once all but the last
// packet of it is packed. Until then the write holds its buffer, a copy of
// objects the track's cache holds anyway. A subscriber that does not keep
// up (a slow link, a peer that stops reading, a relay short of CPU) would
// hold such a copy, up to maxBatchedPayload each, for every stream with
// work: up to maxOpenSubgroups of them. At 1:1000 under overload that was
// 47-89 MB of the relay's heap.
//
// writeAhead bounds the buffer bytes a session's writes hold at once
// (Config.MaxWriteAhead). Past it, a writer waits before it takes a buffer,
// holding only its queue, whose objects are the cache's, not copies; when
// a write returns, the most urgent waiting stream (prioSched's urgency,
// then the longest waiting) goes next. The transport needs no more: it
// sends what it has been given while the next writer copies its objects,
// and a write is admitted whenever the session has none in progress, so
// one larger than the bound still goes. Payloads written straight from the
// cache (larger than maxBatchedPayload) count only their header buffer.
//
// A write held up by its own stream (the peer does not read that stream,
// so its flow control stops it) must not hold up the others. quic-go sends
// the most urgent stream with data first (moqnative: strict priority
// between urgencies, by stream ID within one), so a write that returns
// before one more urgent, or as urgent on a stream opened before it, that
// was inside the transport before it was admitted shows that the earlier
// one is not moving: passed twice so, it stops counting (stalled). A
// write on a stream of the same urgency opened later going first is the
// transport's order, not a pass.
// It still holds its buffer, as every blocked write did before the bound:
// at most maxOpenSubgroups per subscription, until the stream is abandoned
// or its delivery deadline resets it.
//
// Passing needs a write at least as urgent to return. When the writes that
// fill the bound are all stuck on less urgent streams the peer does not
// read, none does: a writer waits at most a probe timeout, then goes over
// the bound (acquire), so a stalled stream delays the others, never stops
// them.
//
// The bound never makes a write wait for less urgent ones. The transport
// sends the most urgent data it holds, so a writer more urgent than every
// write that counts (and every one waiting) that was held back would leave
// the link to less urgent bytes until one of those writes returned: on a
// slow link, in descending group order, an older group's write of up to
// maxBatchedPayload, hundreds of milliseconds, while the newest group's
// first object (its key frame) waited and missed its delivery timeout
// (TestLiveSlowViewerWithDeliveryTimeout lost up to 7 of 22 key frames so,
// TestWriteAheadMoreUrgentFirst). Such a writer is admitted past the
// bound. While the ranks stay put, that is at most one write per urgency
// (seven) past it; when each new group demotes the older ones (descending
// order), at most one write per stream, as the fallback above allows.
//
// A writer waiting here gives up as it would inside a blocked write: when
// its stream is abandoned (abandon wakes it), when the subscription ends,
// and at the delivery deadline of its object (the stream's expire timer
// resets the stream and wakes it: expireDue).
type writeAhead struct {
	limit int64 // 0: no bound

	mu      sync.Mutex
	used    int64
	seq     atomic.Uint64 // written under mu; read by entered
	waiting aheadLine     // in line for write-ahead: a heap, most urgent first
	active  []*outStream  // with a counted write admitted and not returned
	// opened numbers the session's subgroup streams in the order they
	// were opened (outStream.aheadOpened), the transport's order within
	// an urgency.
	opened atomic.Uint64
}

// DefaultMaxWriteAhead is Config.MaxWriteAhead's default: two full batched
// writes, so the transport has the next one while a writer prepares the
// one after.
const DefaultMaxWriteAhead = 2 * (maxBatchedPayload + writeBufHeadroom)

// stallPasses is how many times a write must be passed (see writeAhead)
// to stop counting: once can be a writer that was admitted first but
// reached the transport second.
const stallPasses = 2

// errWriteAheadEnded is a wait for write-ahead that ended because the
// stream was abandoned, the subscription ended or the object's delivery
// deadline passed; failCode turns it into the stream's reset code.
var errWriteAheadEnded = errors.New("moqtransport: stream ended while waiting to write")

// acquire reserves n bytes of write-ahead for st's next write, waiting
// while the session's writes hold the bound and for the streams that
// waited before st or are more urgent. deadline (zero: none) is the
// object's delivery deadline. A nil error must be followed by release;
// waited says whether st waited.
func (w *writeAhead) acquire(st *outStream, n int64, deadline time.Time) (waited bool, err error) {
	if w.limit <= 0 {
		return false, nil
	}
	w.mu.Lock()
	if w.admitsNowLocked(st, n) {
		w.admitLocked(st, n)
		w.mu.Unlock()
		return false, nil
	}
	w.enqueueLocked(st, n)
	w.mu.Unlock()
	sv := st.sv
	// The writes that fill the bound may all be stuck behind streams the
	// peer does not read but less urgent than st (nothing more urgent
	// returns to pass them): st waits at most a probe timeout, then goes
	// over the bound. Memory stays bounded as without write-ahead (one
	// write per stream); the bound only delays.
	patience := time.NewTimer(sv.s.probeTimeout())
	defer patience.Stop()
	impatient := false
	for {
		// Checked before the first wait too: an abandon whose wakeup
		// was taken before st lined up (hold drains it) is seen now,
		// not after a probe timeout.
		over := st.dead() || sv.ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline))
		w.mu.Lock()
		if st.aheadGranted {
			w.mu.Unlock()
			return true, nil
		}
		if over || impatient {
			// st leaves the line: the one behind it may go now.
			w.leaveLocked(st)
			if impatient {
				w.admitLocked(st, n)
			}
			w.grantAndUnlock()
			if over {
				return true, errWriteAheadEnded
			}
			return true, nil
		}
		w.mu.Unlock()
		select {
		case <-st.wake: // granted (release), abandoned, expired, or a push
		case <-sv.ctx.Done():
		case <-patience.C:
			impatient = true
		}
	}
}

// admitsNowLocked says whether a write of n bytes on st goes at once: no
// one waits and the bound has room (or no write is in progress), or st is
// more urgent than every write in progress and every waiting one (see
// writeAhead). Called with w.mu held.
func (w *writeAhead) admitsNowLocked(st *outStream, n int64) bool {
	return (len(w.waiting) == 0 && (w.used == 0 || w.used+n <= w.limit)) ||
		(noneAsUrgent(w.active, st) && (len(w.waiting) == 0 || urgencyOf(st) < w.waiting[0].aheadUrgency))
}

// enqueueLocked puts st in line for n bytes of write-ahead. Called with
// w.mu held.
func (w *writeAhead) enqueueLocked(st *outStream, n int64) {
	st.aheadWant, st.aheadSeq, st.aheadGranted = n, w.seq.Add(1), false
	// In line before its urgency is read: a ranking that changes it
	// meanwhile finds it there (reurge).
	st.aheadWaiting.Store(true)
	st.aheadUrgency = urgencyOf(st)
	heap.Push(&w.waiting, st)
}

// leaveLocked takes st, which waits, out of line. Called with w.mu held.
func (w *writeAhead) leaveLocked(st *outStream) {
	heap.Remove(&w.waiting, st.aheadIdx)
}

// reurge moves st to its place in line for the urgency the scheduler
// ranked for it last (urgeLocked stores it; setUrgenciesDue calls reurge
// after, if st waits). enqueueLocked marks st waiting before it reads the
// urgency and setUrgenciesDue reads the mark after the urgency was stored,
// so every change is either read when st lines up or followed by a reurge:
// the line keeps the order of the waiting streams' ranked urgencies, as a
// scan of them would find it (a grant between the store and reurge goes as
// it would have just before the change).
func (w *writeAhead) reurge(st *outStream) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !st.aheadWaiting.Load() {
		return
	}
	if u := urgencyOf(st); u != st.aheadUrgency {
		st.aheadUrgency = u
		heap.Fix(&w.waiting, st.aheadIdx)
	}
}

// regrant admits the waiting streams a ranking made admissible: one it
// promoted, or whose writes in progress it demoted, may now be more urgent
// than every write in progress, and goes past the bound at once, as it
// would have had it lined up now (acquire). Left for the next write to
// return, it would wait behind less urgent bytes, on a slow link for as
// long as the live case in writeAhead's comment describes.
func (w *writeAhead) regrant() {
	if w.limit <= 0 {
		return
	}
	w.mu.Lock()
	if len(w.waiting) == 0 {
		w.mu.Unlock()
		return
	}
	w.grantAndUnlock()
}

// admitLocked counts st's write of n bytes. Called with w.mu held.
func (w *writeAhead) admitLocked(st *outStream, n int64) {
	w.used += n
	st.aheadHeld, st.aheadSeq, st.aheadPassed = n, w.seq.Add(1), 0
	st.aheadEntered.Store(0)
	w.active = append(w.active, st)
}

// release ends st's write: its bytes, if they still count, are given back,
// the earlier writes it passed are marked (see writeAhead), and the waiting
// streams that now fit are admitted, most urgent first.
func (w *writeAhead) release(st *outStream) {
	if w.limit <= 0 {
		return
	}
	w.mu.Lock()
	w.used -= st.aheadHeld
	st.aheadHeld = 0
	u := urgencyOf(st)
	// One pass over the active writes: st leaves, the ones it passed are
	// marked, and the stalled ones leave too, so that no write scans them
	// (their own release finds nothing to give back).
	w.active = slices.DeleteFunc(w.active, func(o *outStream) bool {
		if o == st {
			return true
		}
		// o was inside the transport before st was admitted: st did not
		// merely reach the transport first.
		if e := o.aheadEntered.Load(); e != 0 && e < st.aheadSeq && passes(st, u, o) {
			if o.aheadPassed++; o.aheadPassed >= stallPasses {
				w.used -= o.aheadHeld
				o.aheadHeld = 0
				return true
			}
		}
		return false
	})
	w.grantAndUnlock()
}

// passes reports whether st, of urgency u, returning while o's write is
// still in the transport means the transport sent st's data before o's
// out of order: o is more urgent, or as urgent on a stream opened before
// st's (the transport's order within an urgency).
func passes(st *outStream, u int32, o *outStream) bool {
	uo := urgencyOf(o)
	return uo < u || (uo == u && o.aheadOpened < st.aheadOpened)
}

// grantLocked admits the waiting streams that now fit, most urgent first,
// appending them to granted; the caller nudges them once it has unlocked
// (nudgeAll). Called with w.mu held, whenever the line's head may have
// become admissible: a write returned, a waiting stream left the line or
// was admitted over the bound, or a ranking changed urgencies (regrant).
func (w *writeAhead) grantLocked(granted []*outStream) []*outStream {
	for len(w.waiting) > 0 {
		o := w.waiting[0] // the most urgent, then the longest waiting
		if w.used > 0 && w.used+o.aheadWant > w.limit && !noneAsUrgent(w.active, o) {
			break
		}
		heap.Pop(&w.waiting)
		w.admitLocked(o, o.aheadWant)
		o.aheadGranted = true
		granted = append(granted, o)
	}
	return granted
}

// grantAndUnlock admits what grantLocked admits, lets go of w.mu and
// nudges the admitted writers. Called with w.mu held.
func (w *writeAhead) grantAndUnlock() {
	var buf [4]*outStream
	granted := w.grantLocked(buf[:0])
	w.mu.Unlock()
	nudgeAll(granted)
}

func nudgeAll(granted []*outStream) {
	for _, o := range granted {
		o.nudge()
	}
}

// entered notes that st's admitted write is entering the transport: later
// admissions can pass it from now on.
func (w *writeAhead) entered(st *outStream) {
	if w.limit > 0 {
		st.aheadEntered.Store(w.seq.Load())
	}
}

// urgencyOf is st's ranked urgency, 0 (the most urgent) to 7; a stream not
// ranked yet counts as the least urgent.
func urgencyOf(st *outStream) int32 {
	if u := st.due.Load() - 1; u >= 0 {
		return u
	}
	return dataUrgencies + 1
}

// aheadLine is the streams waiting for write-ahead, a container/heap
// ordered by the order they go in: the most urgent (aheadUrgency, the
// urgency ranked when it lined up or last reurged), then the one that has
// waited longest (aheadSeq). A grant takes the first in O(log n) under the
// session's write-ahead lock, however many streams wait (a relay-to-relay
// session carrying hundreds of tracks).
type aheadLine []*outStream

func (l aheadLine) Len() int { return len(l) }

func (l aheadLine) Less(i, j int) bool {
	a, b := l[i], l[j]
	return a.aheadUrgency < b.aheadUrgency || (a.aheadUrgency == b.aheadUrgency && a.aheadSeq < b.aheadSeq)
}

func (l aheadLine) Swap(i, j int) {
	l[i], l[j] = l[j], l[i]
	l[i].aheadIdx, l[j].aheadIdx = i, j
}

func (l *aheadLine) Push(x any) {
	st := x.(*outStream)
	st.aheadIdx = len(*l)
	*l = append(*l, st)
}

func (l *aheadLine) Pop() any {
	old := *l
	n := len(old) - 1
	st := old[n]
	old[n] = nil
	*l = old[:n]
	st.aheadIdx = -1
	st.aheadWaiting.Store(false)
	return st
}

// noneAsUrgent reports whether every stream of list other than st is less
// urgent than st. For w.active: no write that counts would go before st's
// in the transport, and st is admitted even past the bound (see
// writeAhead), unless a stream at least as urgent waits in line before it.
// Called with w.mu held.
func noneAsUrgent(list []*outStream, st *outStream) bool {
	u := urgencyOf(st)
	for _, o := range list {
		if o != st && urgencyOf(o) <= u {
			return false
		}
	}
	return true
}

// held returns the bytes the session's writes hold and count, and how many
// streams wait for write-ahead.
func (w *writeAhead) held() (used int64, waiting int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.used, len(w.waiting)
}

// nudge wakes the stream's writer if it waits (next, hold, acquire).
func (st *outStream) nudge() {
	select {
	case st.wake <- struct{}{}:
	default:
	}
}
