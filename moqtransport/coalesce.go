package moqtransport

import "time"

// coalesceBytes is the payload that ends a Config.WriteCoalesce hold: a
// write of this much fills several packets already. Objects this large or
// larger are never held.
const coalesceBytes = 8 << 10

// burstGap is the gap under which objects come as a burst: they queue
// behind the write under way and go in the next one (writeFramed) without
// a hold, so a burst's objects are not held, and one arriving during a
// hold releases it (the burst's last object would otherwise wait for the
// window).
const burstGap = 100 * time.Microsecond

// hold waits, for Config.WriteCoalesce (w), for the objects that follow o
// on its stream, so that they go in o's write (writeFramed), and returns
// how long it waited from at's reading (0: it did not hold o). Holding costs o up to w of
// latency and saves a transport write (a send call, a wakeup of the
// connection's sender) for each object that joins; that saving only
// matters when a track is fanned out, so o is held only when all of these
// hold:
//   - o is small (under coalesceBytes) and arrived less than w ago (a
//     writer already behind batches what is queued without waiting);
//   - its track has more than one reader (one subscriber: the CPU saved
//     is one stream's, not worth its latency);
//   - its stream's objects are paced closer together than w: the next one
//     is due (the larger of the last two gaps between arrivals, with half
//     that again for jitter) within w of o's arrival, so a track slower
//     than w is never held, not even after two of its objects came close
//     together once; and the last gap is not a burst's (burstGap);
//   - o's delivery deadline, if it has one, is further than 2w away;
//   - the subgroup has not ended;
//   - no objects are queued behind o that, with it, fill their packets
//     already (fillsPackets): a writer that lags adds no hold to objects
//     already late. (A lone o is held even if it fills its packets: the
//     next one shares its write, one send and wakeup for two.)
//
// push then releases o at an arrival, inside the wakeup that brings the
// object (a release by timer would add one): when the write is full
// (coalesceBytes) or fills its packets (fillsPackets), when the object
// after the one just pushed would come too late for o, or when a burst
// comes. The subgroup's end (its last
// object is never kept waiting past the FIN's arrival), an abandon and the
// subscription's end release it too, and a timer at o's arrival plus w,
// should the next object not come.
func (st *outStream) hold(o *Object, w time.Duration, at writeClock) time.Duration {
	sv := st.sv
	n := o.size()
	if n >= coalesceBytes || o.Received.IsZero() || sv.track == nil || !sv.track.realClock || sv.track.readerCount() < 2 {
		return 0
	}
	start := at.now
	if start.Sub(o.Received) >= w {
		return 0
	}
	if at.remaining > 0 && at.remaining < 2*w {
		return 0
	}
	recv := monoOffset(o.Received)
	select {
	case <-st.wake: // a stale kick: the state is checked below
	default:
	}
	st.mu.Lock()
	gap := st.lastRecv - st.prevRecv // between the last two objects pushed
	pace := max(gap, st.prevRecv-st.firstRecv)
	if st.firstRecv == 0 || gap < int64(burstGap) || st.lastRecv+pace+pace/2-recv > int64(w) ||
		st.qbytes+n >= coalesceBytes || st.end || st.stopped {
		st.mu.Unlock()
		return 0
	}
	st.held, st.heldRecv, st.heldWire = n, recv, wireSize(o)
	if st.head < len(st.queue) && st.fillsLocked() {
		st.held = 0 // o and those queued behind it fill their packets already
		st.mu.Unlock()
		return 0
	}
	st.mu.Unlock()
	d := o.Received.Add(w).Sub(start)
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
// full, or fills the packets it takes (fillsPackets), the object just
// pushed came in a burst (burstGap), or the object after it (as far apart
// as the last two, with half that again for jitter) would come more than w
// after the held one arrived. The margin keeps the release at an arrival
// rather than at hold's timer, which would wake the process once more.
// Called with st.mu held.
func (st *outStream) releaseLocked(w time.Duration) bool {
	gap := st.lastRecv - st.prevRecv
	if st.held+st.qbytes >= coalesceBytes || gap < int64(burstGap) || st.lastRecv+gap+gap/2-st.heldRecv > int64(w) {
		return true
	}
	return st.fillsLocked()
}

// fillsLocked says whether the held object and those queued behind it
// fill their packets (fillsPackets). Called with st.mu held.
func (st *outStream) fillsLocked() bool {
	// qbytes counts each queued object's size(), CacheEntryOverhead
	// more than its wireSize: no walk of the queue at each arrival.
	queued := int64(len(st.queue) - st.head)
	return fillsPackets(st.heldWire + st.qbytes - queued*(CacheEntryOverhead-objectHeaderBytes))
}

// packetStreamBytes is about what a full QUIC packet carries of a
// stream's bytes: quic-go's largest packet (1452 bytes, reached on most
// paths by its path MTU discovery) less a short header, the AEAD tag and
// a STREAM frame header (see leadPayload). A path with smaller packets
// only makes fillsPackets right less often: the window still bounds the
// hold.
const packetStreamBytes = 1452 - 9 - 16 - 7

// objectHeaderBytes is about what an object's header adds on a subgroup
// stream: its ID delta, extensions length and payload length (a payload
// under 16 KiB takes two bytes).
const objectHeaderBytes = 4

// wireSize is about how many bytes o takes on its subgroup stream.
func wireSize(o *Object) int64 {
	return int64(len(o.Payload)+len(o.Extensions)) + objectHeaderBytes
}

// fillsPackets says whether a write of n stream bytes ends close to a
// packet's end: two packets or more, the last missing at most an eighth
// of one. A held write that does goes at once: waiting for the next object would
// add its latency and, unless it fills the rest just as closely, a packet
// that leaves the link emptier. A held 1 KiB object at an object every 2
// ms goes with the three after it (4 objects in 3 full packets) rather
// than with two (3 objects in 3 packets, the last a sixth full): a
// quarter fewer packets, each costing the relay and the receiver a
// packet's CPU (packing, sealing, the kernel's path, the acknowledgment).
func fillsPackets(n int64) bool {
	if n < 2*packetStreamBytes-packetStreamBytes/8 {
		return false
	}
	return (packetStreamBytes-n%packetStreamBytes)%packetStreamBytes <= packetStreamBytes/8
}
