package moqtransport

import "time"

// coalesceBytes is the payload that ends a Config.WriteCoalesce hold: a
// write of this much fills several packets already. Objects this large or
// larger are never held.
const coalesceBytes = 8 << 10

// hold waits, for Config.WriteCoalesce (w), for the objects that follow o
// on its stream, so that they go in o's write (writeFramed), and returns
// how long it waited (0: it did not hold o). It holds o
// only on a stream whose objects come closer together than w, and only if
// the next one is due within w of o's arrival; push then releases it at an
// arrival, inside the wakeup that brings the object (a release by timer
// would add one): when the write is full (coalesceBytes), or when the
// object after the one just pushed would come too late for o. The
// subgroup's end, an abandon and the subscription's end release it too,
// and a timer at o's arrival plus w, should the next object not come.
func (st *outStream) hold(o *Object, w time.Duration) time.Duration {
	sv := st.sv
	n := o.size()
	if n >= coalesceBytes || o.Received.IsZero() || sv.track == nil || !sv.track.realClock {
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
	start := time.Now()
	st.held, st.heldRecv = n, recv
	st.mu.Unlock()
	d := time.Until(o.Received.Add(w))
	if st.holdTimer == nil {
		st.holdTimer = time.NewTimer(d)
	} else {
		st.holdTimer.Reset(d)
	}
	select {
	case <-st.wake:
	case <-st.holdTimer.C:
	case <-sv.ctx.Done():
	}
	st.holdTimer.Stop()
	st.mu.Lock()
	st.held = 0
	st.mu.Unlock()
	return time.Since(start)
}

// releaseLocked says whether push wakes a holding writer: the write is
// full, or the object after the one just pushed (as far apart as the last
// two, with half that again for jitter) would come more than w after the
// held one arrived. The margin keeps the release at an arrival rather than
// at hold's timer, which would wake the process once more. Called with
// st.mu held.
func (st *outStream) releaseLocked(w time.Duration) bool {
	gap := st.lastRecv - st.prevRecv
	return st.held+st.qbytes >= coalesceBytes || st.lastRecv+gap+gap/2-st.heldRecv > int64(w)
}
