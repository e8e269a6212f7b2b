package moqtransport

import "time"

// coalesceBytes is the payload that ends a Config.WriteCoalesce hold: a
// write of this much fills several packets already. Objects this large or
// larger are never held.
const coalesceBytes = 8 << 10

// hold waits, for Config.WriteCoalesce (w), for the objects that follow o
// on its stream, so that they go in o's write (writeFramed), and returns
// how long it waited (0: it did not hold o). Holding costs o up to w of
// latency and saves a transport write (a send call, a wakeup of the
// connection's sender) for each object that joins; that saving only
// matters when a track is fanned out, so o is held only when all of these
// hold:
//   - o is small (under coalesceBytes) and arrived less than w ago (a
//     writer already behind batches what is queued without waiting);
//   - its track has more than one reader (one subscriber: the CPU saved
//     is one stream's, not worth its latency);
//   - its stream's objects come closer together than w: the next one is
//     due (the last gap between two, with half that again for jitter)
//     within w of o's arrival; a track slower than w is never held;
//   - o's delivery deadline, if it has one, is further than 2w away;
//   - the subgroup has not ended.
//
// push then releases o at an arrival, inside the wakeup that brings the
// object (a release by timer would add one): when the write is full
// (coalesceBytes), or when the object after the one just pushed would come
// too late for o. The subgroup's end (its last object is never kept
// waiting past the FIN's arrival), an abandon and the subscription's end
// release it too. A timer ends the hold when the stream's pace breaks (no
// object two gaps after the last one: the end of a burst, a pause) and at
// o's arrival plus w at the latest.
func (st *outStream) hold(o *Object, w time.Duration) time.Duration {
	sv := st.sv
	n := o.size()
	if n >= coalesceBytes || o.Received.IsZero() || sv.track == nil || !sv.track.realClock || sv.track.readerCount() < 2 {
		return 0
	}
	start := time.Now()
	age := start.Sub(o.Received)
	if age >= w {
		return 0
	}
	if remaining, _, _ := sv.remaining(o, start); remaining > 0 && remaining < 2*w {
		return 0
	}
	recv := monoOffset(o.Received)
	select {
	case <-st.wake: // a stale kick: the state is checked below
	default:
	}
	st.mu.Lock()
	gap := st.lastRecv - st.prevRecv // between the last two objects pushed
	if st.prevRecv == 0 || gap <= 0 || st.lastRecv+gap+gap/2-recv > int64(w) ||
		st.qbytes+n >= coalesceBytes || st.end || st.stopped {
		st.mu.Unlock()
		return 0
	}
	st.held, st.heldRecv = n, recv
	d := time.Duration(st.holdUntilLocked(w)) - time.Duration(monoOffset(start))
	if st.holdTimer == nil {
		st.holdTimer = time.NewTimer(d)
	} else {
		st.holdTimer.Reset(d)
	}
	t := st.holdTimer
	st.mu.Unlock()
	select {
	case <-st.wake:
	case <-t.C:
	case <-sv.ctx.Done():
	}
	st.mu.Lock()
	t.Stop() // under mu: push resets it only while held
	st.held = 0
	st.mu.Unlock()
	return time.Since(start)
}

// holdUntilLocked is when (a monoOffset) the hold of the object arrived at
// st.heldRecv ends at the latest, as the stream's arrivals stand: two gaps
// after the last arrival (the pace broke if nothing came by then), and w
// after the held object's. Called with st.mu held.
func (st *outStream) holdUntilLocked(w time.Duration) int64 {
	return min(st.lastRecv+2*(st.lastRecv-st.prevRecv), st.heldRecv+int64(w))
}

// releaseLocked says whether push wakes a holding writer: the write is
// full, or the object after the one just pushed (as far apart as the last
// two, with half that again for jitter) would come more than w after the
// held one arrived. The margin keeps the release at an arrival rather than
// at hold's timer, which would wake the process once more. When it keeps
// holding, it moves the hold's timer to the new pace (holdUntilLocked).
// Called with st.mu held.
func (st *outStream) releaseLocked(w time.Duration) bool {
	gap := st.lastRecv - st.prevRecv
	if st.held+st.qbytes >= coalesceBytes || gap <= 0 || st.lastRecv+gap+gap/2-st.heldRecv > int64(w) {
		return true
	}
	st.holdTimer.Reset(time.Duration(st.holdUntilLocked(w) - monoOffset(time.Now())))
	return false
}
