package moqtransport

import (
	"cmp"
	"context"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// Delivery to one subscriber is a scheduler, not a loop.
//
// A served subscription has one dispatcher (servedSubscription.deliver)
// that reads the track and never blocks on the network, and a writer
// goroutine per subgroup stream that has something to write. The
// dispatcher hands each object to its subgroup's writer through a queue; a
// writer blocked by flow control or a slow link therefore delays only its
// own stream. A writer exists only while its stream has work: one whose
// queue stays empty for writerIdle to 2*writerIdle ends, and the next
// object, the subgroup's end or the stream's abandonment starts one again
// (outStream.kickLocked). A stream that carries objects a few per second or
// more keeps its writer (starting a goroutine, and growing its stack, for
// every object costs more CPU than waking a parked one); an open stream
// that waits longer for its next object costs no goroutine. The bounds:
//
//   - at most maxOpenSubgroups writers per subscription: opening one more
//     abandons the stream of the oldest group (the stalest data);
//   - at most Config.MaxBacklogBytes of objects queued per subscription:
//     past it, streams of the oldest groups are abandoned, whole, and their
//     queues dropped. The queued objects are the track's cached ones, not
//     copies, so a subscriber that keeps up costs no memory of its own;
//   - at most Config.MaxWriteAhead bytes of write buffers (copies) held
//     inside the transport by a session's writes at once (writeahead.go).
//
// A writer abandons its subgroup before starting an object that is past the
// delivery timeout (§9.2.1.2) or MAX_CACHE_DURATION, and a write blocked
// past the object's delivery deadline is cut by the stream's one expire
// timer; the stream is reset (DELIVERY_TIMEOUT, or CANCELLED past
// MAX_CACHE_DURATION) and the rest of the subgroup is not sent: a group
// that cannot arrive whole is dropped, not trickled. The next group starts
// on a fresh stream.
//
// Priorities (§7) are set per stream, session-wide, by prioSched: streams
// are ranked by subscriber priority, then publisher priority, then the
// position of their group in the subscription's group order, and the ranks
// are mapped onto quic-go's urgencies. With only eight urgencies (0 is the
// control stream's), relative order is kept by re-ranking whenever a stream
// opens or ends, so that a newer group opening demotes the older ones
// (descending order) or queues behind them (ascending order).

const (
	// maxOpenSubgroups bounds the subgroup streams, and so the writer
	// goroutines, of one subscription. Sixteen covers a slow viewer's
	// groups within any sensible delivery timeout and layered tracks with
	// several subgroups per group.
	maxOpenSubgroups = 16
	// DefaultMaxBacklogBytes is Config.MaxBacklogBytes's default.
	DefaultMaxBacklogBytes int64 = 8 << 20
	// dataUrgencies is how many quic-go urgencies the data streams use:
	// 1 to 7; 0 is the control stream's.
	dataUrgencies = 7
	// initialQueue is the capacity a subgroup writer's queue starts with:
	// a writer that keeps up holds one or two objects, so it seldom grows.
	initialQueue = 4
)

// outStream is one subgroup stream of a served subscription, written by
// its own goroutine (run).
type outStream struct {
	sv      *servedSubscription
	key     subgroupKey
	pubPrio uint8
	hdrExt  bool // the header type carries extensions
	eog     bool // the header type says the subgroup ends the group
	// wake nudges a writer waiting for work, and one that must end
	// (abandon); the subscription's end wakes it through sv.ctx.
	wake chan struct{}
	// oc is the context the stream opens with (openCtx).
	oc openCtx
	// runFn is run, bound once: "go st.run()" would allocate the bound
	// method each time a writer starts (on the stream's first object, and
	// again after each idle spell: see next).
	runFn func()

	mu      sync.Mutex
	running bool // a writer goroutine (run) is on the stream
	// queue[head:] waits; the array is reused once empty. Only the
	// objects are queued (8 bytes each, not an Event's 56): the stream
	// knows the rest, and a lagging subscriber queues many.
	queue    []*Object
	qbuf     [initialQueue]*Object // queue's first array, with the stream
	head     int
	qbytes   int64
	end      bool // the subgroup ended: FIN (or reset with endCode) once the queue is written
	endReset bool
	endCode  wire.StreamResetCode
	stopped  bool // abandoned: no more objects; reset with stopCode
	stopCode wire.StreamResetCode
	exited   bool // run ended the stream: no writer is started again
	// For Config.WriteCoalesce (hold): the size and arrival (monoOffset)
	// of the object the writer holds, held 0 if none, its bytes on the
	// stream (heldWire, header included), and the arrivals of the last
	// three objects pushed (oldest first).
	held, heldRecv, heldWire      int64
	firstRecv, prevRecv, lastRecv int64
	str                           SendStream

	// Used by run only: by one writer goroutine at a time, each started
	// (kickLocked) after the last one let go of the stream under mu.
	holdTimer *time.Timer // hold's, made on the first hold
	wrote     int         // objects in the last write (writeFramed)
	state     wire.SubgroupState
	// headerDue: the subgroup header is not written yet; it goes out
	// with the first object, in the same write.
	headerDue bool
	hdr       wire.ObjectHeader // the object header being written
	// expire resets the stream at lastDeadline (a monoOffset): the
	// delivery deadline of the object being written, which cuts a write
	// blocked past it, and then of the last object written (see
	// writeObject), unless that object has most likely arrived by then
	// (settled). When it fires early because later objects moved the
	// deadline on, it is re-armed for the new one: one timer per stream,
	// not one per write. expire and expireArmed are guarded by mu. After
	// the FIN the subscription takes over (expireLater).
	expire       *time.Timer
	expireArmed  bool
	lastDeadline atomic.Int64
	// writing is set while run is inside a write to the stream; writtenAt
	// (a monoOffset) is when the last write returned, that is when the
	// transport had taken every byte written so far.
	writing   atomic.Bool
	writtenAt atomic.Int64
	// The stream's write as the session's write-ahead sees it
	// (writeahead.go), guarded by its lock: waiting, the bytes it wants
	// and whether release granted them; admitted, the bytes it counts
	// (0 once stalled), how often it was passed, and its place in line
	// or in admission order.
	aheadWant    int64
	aheadGranted bool
	aheadHeld    int64
	aheadPassed  int
	aheadSeq     uint64
	// aheadUrgency is the urgency the line is ordered by and aheadIdx
	// the stream's place in it; aheadWaiting (set under the lock, read
	// without it by setUrgenciesDue) says it is in line.
	aheadUrgency int32
	aheadIdx     int
	aheadWaiting atomic.Bool
	// aheadEntered is the session's admission count when the admitted
	// write entered the transport (0: not yet).
	aheadEntered atomic.Uint64
	// aheadOpened is the stream's place in the session's opening order
	// (writeAhead.opened), set when it opens, before its first write.
	aheadOpened uint64

	// Guarded by the session's prioSched.mu: the urgency ranked; the
	// rank it is in, and where in its list.
	urgency int8
	rank    *rank
	rankIdx int
	// due is urgency+1 (0: not ranked yet), for setUrgencyDue, which
	// sets it on the stream after the scheduler let go of its lock;
	// applied, guarded by prioMu, is the urgency set on the stream.
	due     atomic.Int32
	prioMu  sync.Mutex
	applied int8
}

// newStream starts the stream of ev's subgroup. A stream costs a few
// allocations (itself, its wake channel, its bound run method, its
// scheduler slot, its expire timer) and no context: the subscription's end
// reaches it through sv.ctx (next) and sv.cutStreams, an abandon through
// wake and oc.
func (sv *servedSubscription) newStream(ev Event) *outStream {
	st := &outStream{
		sv: sv, key: subgroupKey{ev.Group, ev.Subgroup}, pubPrio: ev.Object.PublisherPriority,
		hdrExt: ev.Extensions || len(ev.Object.Extensions) > 0, eog: ev.EndOfGroup,
		wake:    make(chan struct{}, 1),
		urgency: -1, applied: -1,
	}
	st.queue = st.qbuf[:0]
	st.oc.st = st
	st.runFn = st.run
	for _, victim := range sv.s.sched.add(st) {
		victim.abandon(wire.ResetCancelled)
	}
	return st
}

// kickLocked wakes the stream's writer, or starts one unless the stream
// has ended. The dispatcher calls it (push, finish, abandon) before its own
// end, which waits for the writers (sv.wg): a stream it finished or
// abandoned runs to its end. Called with st.mu held.
func (st *outStream) kickLocked() {
	if st.running {
		select {
		case st.wake <- struct{}{}:
		default:
		}
		return
	}
	if st.exited {
		return
	}
	st.running = true
	st.sv.wg.Add(1)
	go st.runFn()
}

// push queues an object. It returns false if the stream was abandoned.
func (st *outStream) push(ev Event) bool {
	n := ev.Object.size()
	st.mu.Lock()
	if st.stopped || st.exited {
		st.mu.Unlock()
		return false
	}
	st.queue = append(st.queue, ev.Object)
	st.qbytes += n
	st.sv.backlog.Add(n)
	if w := st.sv.s.cfg.WriteCoalesce; w > 0 {
		if !ev.Object.Received.IsZero() {
			st.firstRecv, st.prevRecv, st.lastRecv = st.prevRecv, st.lastRecv, monoOffset(ev.Object.Received)
		}
		if st.held > 0 && !st.releaseLocked(w) {
			st.mu.Unlock()
			return true // the holding writer waits for more (hold)
		}
	}
	st.kickLocked()
	st.mu.Unlock()
	return true
}

// finish ends the subgroup once its queue is written: with a FIN, or with
// a reset carrying code.
func (st *outStream) finish(reset bool, code wire.StreamResetCode) {
	st.mu.Lock()
	if !st.end {
		st.end, st.endReset, st.endCode = true, reset, code
	}
	st.kickLocked()
	st.mu.Unlock()
}

// abandon stops the stream now: its queue is dropped and the stream is
// reset with code, cutting a blocked write.
func (st *outStream) abandon(code wire.StreamResetCode) {
	st.mu.Lock()
	if st.stopped || st.exited {
		st.mu.Unlock()
		return
	}
	st.stopped, st.stopCode = true, code
	str := st.str
	st.dropQueueLocked()
	st.kickLocked() // to end the stream: run resets it and lets go of it
	st.mu.Unlock()
	st.oc.cancel(context.Canceled) // an open waiting for the peer's stream limit
	if str != nil {
		str.CancelWrite(uint64(code))
	}
}

// dead reports whether the stream was abandoned or gave up: the rest of
// its subgroup is not sent.
func (st *outStream) dead() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stopped || (st.exited && !st.end)
}

// gone reports whether the stream has nothing left to abandon: it was
// abandoned, or its writer has exited (with a FIN too, in which case it
// stays in the scheduler's list until exit removes it). The streams that
// make room (dispatch, add) are picked among the others: abandon does
// nothing to one that is gone, and picking it again and again spun the
// dispatcher until its writer's exit removed it.
func (st *outStream) gone() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.stopped || st.exited
}

func (st *outStream) dropQueueLocked() {
	st.sv.backlog.Add(-st.qbytes)
	clear(st.queue)
	st.queue, st.head, st.qbytes = nil, 0, 0
}

// next takes the stream's next object, waiting for one. ok is false when
// the stream is over; then reset says whether it must be reset, and with
// which code. idle says the queue stayed empty through two idle sweeps
// (writerIdle to 2*writerIdle): the writer lets go of the stream (running
// is false) and ends, and the next push or finish starts another.
func (st *outStream) next() (ev Event, ok, idle, reset bool, code wire.StreamResetCode) {
	st.mu.Lock()
	defer st.mu.Unlock()
	sweeps := 0
	for {
		if st.sv.ctx.Err() != nil && !st.stopped {
			st.stopped, st.stopCode = true, st.sv.endCode()
			st.dropQueueLocked()
		}
		switch {
		case st.stopped:
			return Event{}, false, false, true, st.stopCode
		case st.head < len(st.queue):
			return Event{Kind: EventObject, Object: st.popLocked(), Group: st.key.group, Subgroup: st.key.subgroup}, true, false, false, 0
		case st.end:
			return Event{}, false, false, st.endReset, st.endCode
		}
		if sweeps == 2 {
			st.running = false
			return Event{}, false, true, false, 0
		}
		sweep := idleSweep()
		st.mu.Unlock()
		select {
		case <-st.wake:
			sweeps = 0
		case <-st.sv.ctx.Done():
		case <-sweep:
			sweeps++
		}
		st.mu.Lock()
	}
}

// writerIdle is the period of the idle sweeps: a writer whose queue stays
// empty through two of them ends.
const writerIdle = time.Second

// sweepCh is closed, and cleared, every writerIdle while writers wait.
var (
	sweepCh atomic.Pointer[chan struct{}]
	sweepMu sync.Mutex
)

// idleSweep returns the channel the next idle sweep closes. The sweep's
// timer runs only while a writer waits for one.
func idleSweep() <-chan struct{} {
	if p := sweepCh.Load(); p != nil {
		return *p
	}
	sweepMu.Lock()
	defer sweepMu.Unlock()
	if p := sweepCh.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{})
	sweepCh.Store(&ch)
	time.AfterFunc(writerIdle, func() {
		sweepMu.Lock()
		sweepCh.Store(nil)
		sweepMu.Unlock()
		close(ch)
	})
	return ch
}

// popLocked takes the first queued object. Called with st.mu held and the
// queue not empty.
func (st *outStream) popLocked() *Object {
	o := st.queue[st.head]
	st.queue[st.head] = nil
	if st.head++; st.head == len(st.queue) {
		st.queue, st.head = st.queue[:0], 0
	}
	n := o.size()
	st.qbytes -= n
	st.sv.backlog.Add(-n)
	return o
}

// peekQueued returns the first queued object, or nil.
func (st *outStream) peekQueued() *Object {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped || st.head >= len(st.queue) {
		return nil
	}
	return st.queue[st.head]
}

// popQueuedIf takes the first queued object off the queue if there is one
// and join accepts it, under one lock; otherwise it returns nil.
func (st *outStream) popQueuedIf(join func(*Object) bool) *Object {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.stopped || st.head >= len(st.queue) || !join(st.queue[st.head]) {
		return nil
	}
	return st.popLocked()
}

// run writes the stream's queued objects, and ends the stream once its
// subgroup ends or it is abandoned; with nothing left to do it returns
// (see kickLocked).
func (st *outStream) run() {
	defer st.sv.wg.Done()
	for {
		ev, ok, idle, reset, code := st.next()
		if idle {
			return
		}
		if ok {
			// One clock reading per write, shared by hold and
			// writeObject; a hold that waited reads it once more.
			at := st.sv.clockAt(ev.Object, time.Now())
			var held time.Duration
			if w := st.sv.s.cfg.WriteCoalesce; w > 0 {
				if held = st.hold(ev.Object, w, at); held > 0 {
					at = st.sv.clockAt(ev.Object, at.now.Add(held))
				}
			}
			ok, code = st.writeObject(ev, at)
			reset = !ok
			if f := st.sv.s.cfg.ObserveHold; f != nil && held > 0 && ok {
				f(held, st.wrote)
			}
		}
		if !ok {
			st.exit(reset, code)
			return
		}
	}
}

// exit ends the stream: with a FIN, or reset with code.
func (st *outStream) exit(reset bool, code wire.StreamResetCode) {
	sv := st.sv
	st.mu.Lock()
	st.exited, st.running = true, false
	str, expire := st.str, st.expire
	st.dropQueueLocked()
	st.mu.Unlock()
	if expire != nil {
		expire.Stop()
	}
	if str != nil {
		if reset {
			str.CancelWrite(uint64(code))
		} else {
			_ = str.Close()
			if expire != nil {
				sv.expireLater(str, fromMonoOffset(st.lastDeadline.Load()), fromMonoOffset(st.writtenAt.Load()))
			}
		}
	}
	sv.s.sched.remove(st)
}

// writeClock is the clock as a stream's writer reads it for an object:
// now, and the object's time left to its delivery deadline then
// (servedSubscription.remaining).
type writeClock struct {
	now            time.Time
	remaining      time.Duration
	late, timedOut bool
}

// clockAt reads o's delivery deadline at now.
func (sv *servedSubscription) clockAt(o *Object, now time.Time) writeClock {
	c := writeClock{now: now}
	c.remaining, c.late, c.timedOut = sv.remaining(o, now)
	return c
}

// writeObject writes one object, opening the stream first if need be, at
// the clock reading at. It returns false, with the reset code, if the
// subgroup must be abandoned.
func (st *outStream) writeObject(ev Event, at writeClock) (bool, wire.StreamResetCode) {
	sv := st.sv
	o := ev.Object
	now, remaining := at.now, at.remaining
	if at.late {
		// §9.2.1.2: past the delivery timeout, the stream is reset; the
		// rest of the subgroup goes with it, before a byte of this
		// object is written.
		if at.timedOut {
			return false, wire.ResetDeliveryTimeout
		}
		return false, wire.ResetCancelled
	}
	var deadline time.Time
	if remaining > 0 {
		deadline = now.Add(remaining)
	}
	if st.str == nil {
		if err := st.open(ev, deadline); err != nil {
			return false, st.failCode(err, deadline)
		}
	}
	if !deadline.IsZero() {
		// A write blocked past o's deadline is cut: the expire timer
		// resets the stream then.
		st.lastDeadline.Store(monoOffset(deadline))
		st.armExpire(remaining)
	}
	timed := !deadline.IsZero()
	if timed { // for the expire timer only
		st.writing.Store(true)
	}
	last, err := st.writeFramed(o, now, deadline)
	if timed {
		st.writtenAt.Store(monoOffset(time.Now()))
		st.writing.Store(false)
	}
	if err != nil {
		return false, err.code(st, deadline)
	}
	if last != o {
		// Objects queued behind o went in the same write: the stream's
		// deadline is the last one's.
		if r, _, _ := sv.remaining(last, now); r > 0 {
			st.lastDeadline.Store(monoOffset(now.Add(r)))
		}
	}
	// The transport takes small writes at once and then keeps
	// retransmitting them under loss: a written object is not a
	// delivered one, and quic-go says nothing of what was acknowledged.
	// So at the last object's deadline (lastDeadline, as set above) the
	// expire timer resets the stream if that object may still be in
	// flight (settled), so that a stale group stops taking the link from
	// newer ones; an object handed over long enough before its deadline
	// has arrived, and the stream stays open for the subgroup's next
	// objects however far apart they come.
	return true, 0
}

// armExpire arms the stream's expire timer for d from now, unless it is
// armed already (it then re-arms itself for lastDeadline when it fires).
func (st *outStream) armExpire(d time.Duration) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.expireArmed {
		return
	}
	st.expireArmed = true
	if st.expire == nil {
		st.expire = time.AfterFunc(d, st.expireDue)
		return
	}
	st.expire.Reset(d)
}

// expireDue is the expire timer's function. Before the last object's
// deadline it waits for it. At it, it resets the stream (§9.2.1.2) if a
// write is still under way, or the last write may not have arrived yet;
// otherwise everything written has been delivered and the stream stays
// open, the timer disarmed until the next object is written. The decision
// and the re-arming in armExpire are both made under mu, so an object
// written meanwhile either moves the deadline seen here or arms the timer
// again.
func (st *outStream) expireDue() {
	st.mu.Lock()
	t, str, exited := st.expire, st.str, st.exited
	if exited || t == nil || str == nil {
		st.mu.Unlock()
		return // run stopped the timer; expireLater has the stream
	}
	now := monoOffset(time.Now())
	if left := time.Duration(st.lastDeadline.Load() - now); left > 0 {
		t.Reset(left)
		st.mu.Unlock()
		return
	}
	if !st.writing.Load() && st.sv.s.settled(time.Duration(now-st.writtenAt.Load())) {
		st.expireArmed = false
		st.mu.Unlock()
		return
	}
	st.mu.Unlock()
	str.CancelWrite(uint64(wire.ResetDeliveryTimeout))
	st.nudge() // a writer waiting for write-ahead gives up
}

// monoEpoch is the origin of monoOffset: deadlines kept in an atomic
// int64 still compare on the monotonic clock.
var monoEpoch = time.Now()

func monoOffset(t time.Time) int64       { return int64(t.Sub(monoEpoch)) }
func fromMonoOffset(off int64) time.Time { return monoEpoch.Add(time.Duration(off)) }

// maxBatchedPayload is the largest payload written in one stream write
// with its object header (and, for the first object, the subgroup
// header): a copy into a pooled buffer, held only for the write, costs far
// less than a second write through the transport (a lock, a wakeup of the
// connection's sender, a deadline timer when the write blocks). Larger
// payloads are written from the cache as they are, after their header:
// the copy would cost more memory than the write saves.
const maxBatchedPayload = 16 << 10

// leadPayload is how much of a larger payload goes in the write of its
// header: with it the header's write fills a packet (1452 bytes less
// QUIC's short header, AEAD tag and STREAM frame header, less our
// headers), where a header written alone went out in a small packet of its
// own whenever the connection packed it before the payload's write came:
// one packet and send more per object (BenchmarkObjectPackets: 16.04
// packets for a 20 KiB object, whose bytes fill 15).
const leadPayload = 1452 - 9 - 16 - 7 - 64

// writeBufs pools the buffers of batched writes, one pool per size class
// (writeBufSizes): a blocked write holds its buffer, so a buffer is not
// much larger than what it carries (4 KiB objects take 4.25 KiB buffers).
var writeBufs [len(writeBufSizes)]sync.Pool

const writeBufHeadroom = 256 // headers, and extensions up to this

var writeBufSizes = [...]int{
	2 << 10, 4<<10 + writeBufHeadroom, 8<<10 + writeBufHeadroom, maxBatchedPayload + writeBufHeadroom,
}

// writeBufClass returns the size class of a buffer of at least n bytes, n
// at most the largest class.
func writeBufClass(n int) int {
	i := 0
	for i < len(writeBufSizes)-1 && n > writeBufSizes[i] {
		i++
	}
	return i
}

// getWriteBuf returns an empty buffer of size class i (writeBufClass).
func getWriteBuf(i int) *[]byte {
	if p, ok := writeBufs[i].Get().(*[]byte); ok {
		return p
	}
	b := make([]byte, 0, writeBufSizes[i])
	return &b
}

// putWriteBuf returns a buffer to the pool of the largest class it holds;
// one grown past the largest class (extensions past the headroom) is
// dropped.
func putWriteBuf(p *[]byte) {
	c := cap(*p)
	for i := len(writeBufSizes) - 1; i >= 0; i-- {
		if c >= writeBufSizes[i] {
			if c <= 2*writeBufSizes[len(writeBufSizes)-1] {
				*p = (*p)[:0]
				writeBufs[i].Put(p)
			}
			return
		}
	}
}

// writeError is a failed writeFramed: an object not encodable, or a
// transport write that failed.
type writeError struct {
	encode bool
	err    error
}

func (e *writeError) code(st *outStream, deadline time.Time) wire.StreamResetCode {
	if e.encode {
		return wire.ResetInternalError
	}
	return st.failCode(e.err, deadline)
}

// writeFramed writes the subgroup header if it is due, the object header
// and the payload: in one stream write unless the payload is larger than
// maxBatchedPayload. Objects already queued behind o join the write while
// the payloads stay within maxBatchedPayload and none is late: a writer that
// lags (a busy relay) then makes one transport write, and wakes the
// connection's sender once, for several objects. It returns the last
// object written.
func (st *outStream) writeFramed(o *Object, now, deadline time.Time) (*Object, *writeError) {
	sv := st.sv
	batch := len(o.Payload) <= maxBatchedPayload
	n := writeBufHeadroom + len(o.Extensions)
	lead := 0 // of an unbatched payload, the bytes copied after its header
	if batch {
		n += len(o.Payload)
		if st.peekQueued() != nil {
			n = maxBatchedPayload + writeBufHeadroom // room for those queued
		}
	} else {
		lead = leadPayload
		n += lead
	}
	// The buffer's bytes count against the session's write-ahead until
	// the write returns; waiting for them holds no buffer.
	class := writeBufClass(n)
	held := int64(writeBufSizes[class])
	waited, err := sv.s.ahead.acquire(st, held, deadline)
	if err != nil {
		return o, &writeError{err: err}
	}
	if waited {
		// The wait is part of the objects' delivery (ObserveDelivery),
		// and the queued objects' lateness is judged after it.
		now = time.Now()
	}
	bp := getWriteBuf(class)
	released := false
	giveBack := func() {
		if !released {
			released = true
			putWriteBuf(bp)
			sv.s.ahead.release(st)
		}
	}
	defer giveBack()
	buf := (*bp)[:0]

	if st.headerDue {
		if buf, err = wire.AppendSubgroupHeader(buf, &st.state.Header); err != nil {
			sv.s.log.Debug("subgroup header not encodable", "request", sv.req.RequestID, "group", o.Group, "subgroup", o.Subgroup, "err", err)
			return o, &writeError{encode: true, err: err}
		}
		if tr := sv.s.cfg.Tracer; tr != nil {
			tr.SubgroupHeader(true, &st.state.Header)
		}
		st.headerDue = false
	}
	if buf, err = st.appendObject(buf, o, batch); err != nil {
		return o, &writeError{encode: true, err: err}
	}
	buf = append(buf, o.Payload[:lead]...)
	sv.observeDelivery(o, now)
	last, payload := o, len(o.Payload)
	st.wrote = 1
	// join says whether a queued object goes in this write: a late one
	// does not, it resets the stream (the next round does it).
	join := func(next *Object) bool {
		if payload+len(next.Payload) > maxBatchedPayload || len(buf)+len(next.Payload)+len(next.Extensions)+writeBufHeadroom > cap(buf) {
			return false
		}
		_, late, _ := sv.remaining(next, now)
		return !late
	}
	for batch {
		next := st.popQueuedIf(join)
		if next == nil {
			break
		}
		if buf, err = st.appendObject(buf, next, true); err != nil {
			return next, &writeError{encode: true, err: err}
		}
		sv.observeDelivery(next, now)
		last, payload = next, payload+len(next.Payload)
		st.wrote++
	}
	*bp = buf
	sv.s.ahead.entered(st)
	if _, err := st.str.Write(buf); err != nil {
		return last, &writeError{err: err}
	}
	giveBack() // the payload below is the cache's, not a copy
	if !batch {
		if _, err := st.str.Write(o.Payload[lead:]); err != nil {
			return o, &writeError{err: err}
		}
	}
	return last, nil
}

// appendObject appends o's object header, and its payload if withPayload.
func (st *outStream) appendObject(buf []byte, o *Object, withPayload bool) ([]byte, error) {
	st.hdr = wire.ObjectHeader{ID: o.ID, Status: o.Status, Extensions: o.Extensions, PayloadLength: uint64(len(o.Payload))}
	buf, err := st.state.AppendObject(buf, &st.hdr)
	if err != nil {
		st.sv.s.log.Debug("subgroup object not encodable", "request", st.sv.req.RequestID, "group", o.Group, "subgroup", o.Subgroup, "object", o.ID, "err", err)
		return buf, err
	}
	if tr := st.sv.s.cfg.Tracer; tr != nil {
		tr.SubgroupObject(true, &st.state.Header, &st.hdr)
	}
	if withPayload {
		buf = append(buf, o.Payload...)
	}
	return buf, nil
}

const (
	// initialRTT is RFC 9002's RTT estimate before any sample (§6.2.2),
	// used when the Conn does not report one.
	initialRTT = 333 * time.Millisecond
	// maxAckDelay is QUIC's default max_ack_delay (RFC 9000 §18.2).
	maxAckDelay = 25 * time.Millisecond
)

// settled reports whether bytes the transport took since ago have most
// likely reached the peer: it is at least a probe timeout (RFC 9002 §6.2.1)
// ago, so they were acknowledged, or declared lost and sent again, by now.
// See RTTConn.
func (s *Session) settled(since time.Duration) bool {
	return since >= s.probeTimeout()
}

// probeTimeout is RFC 9002's probe timeout on the session's path:
// smoothed RTT + 4 × its deviation + max_ack_delay.
func (s *Session) probeTimeout() time.Duration {
	srtt, dev := initialRTT, initialRTT/2
	if s.rtt != nil {
		if r, d := s.rtt.RTT(); r > 0 {
			srtt, dev = r, d
		}
	}
	return srtt + max(4*dev, time.Millisecond) + maxAckDelay
}

// maxExpiring bounds the finished streams a subscription keeps to reset at
// their deadline: past it, the oldest is forgotten (it has most likely
// arrived by then). Without a bound, a track with a group per object
// (audio) would hold a stream per object for a whole delivery timeout.
const maxExpiring = 16

// expiry is a finished stream to reset at its delivery deadline.
type expiry struct {
	str     SendStream
	at      time.Time
	written time.Time // when the transport took its last bytes
}

// expireLater resets str, which has sent its FIN, at its last object's
// delivery deadline if its data may still be in flight then, retransmitted
// (see Session.settled).
func (sv *servedSubscription) expireLater(str SendStream, at, written time.Time) {
	sv.expMu.Lock()
	defer sv.expMu.Unlock()
	if len(sv.expiring) >= maxExpiring {
		copy(sv.expiring, sv.expiring[1:])
		sv.expiring[len(sv.expiring)-1] = expiry{}
		sv.expiring = sv.expiring[:len(sv.expiring)-1]
	}
	sv.expiring = append(sv.expiring, expiry{str, at, written})
	sv.armExpiryLocked()
}

// armExpiryLocked sets the subscription's one timer for the earliest
// deadline. Called with sv.expMu held.
func (sv *servedSubscription) armExpiryLocked() {
	if len(sv.expiring) == 0 {
		return
	}
	next := sv.expiring[0].at
	for _, e := range sv.expiring[1:] {
		if e.at.Before(next) {
			next = e.at
		}
	}
	if sv.expTimer == nil {
		sv.expTimer = time.AfterFunc(time.Until(next), sv.expireDue)
	} else {
		sv.expTimer.Reset(time.Until(next))
	}
}

// expireDue resets the finished streams whose deadline has passed.
func (sv *servedSubscription) expireDue() {
	now := time.Now()
	sv.expMu.Lock()
	var due []SendStream
	kept := sv.expiring[:0]
	for _, e := range sv.expiring {
		switch {
		case e.at.After(now):
			kept = append(kept, e)
		case !sv.s.settled(now.Sub(e.written)):
			due = append(due, e.str)
		}
	}
	clear(sv.expiring[len(kept):])
	sv.expiring = kept
	sv.armExpiryLocked()
	sv.expMu.Unlock()
	for _, str := range due {
		str.CancelWrite(uint64(wire.ResetDeliveryTimeout))
	}
}

// failCode is the reset code for a failed open or write.
func (st *outStream) failCode(err error, deadline time.Time) wire.StreamResetCode {
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		return wire.ResetDeliveryTimeout
	}
	st.mu.Lock()
	stopped, code := st.stopped, st.stopCode
	st.mu.Unlock()
	if stopped {
		return code
	}
	if st.sv.ctx.Err() != nil {
		return st.sv.endCode()
	}
	st.sv.s.log.Debug("subgroup stream failed", "request", st.sv.req.RequestID, "group", st.key.group, "subgroup", st.key.subgroup, "err", err)
	return wire.ResetInternalError
}

// open opens the subgroup stream with the smallest header type that fits
// its first object.
func (st *outStream) open(ev Event, deadline time.Time) error {
	sv := st.sv
	o := ev.Object
	h := wire.SubgroupHeader{
		TrackAlias: sv.req.RequestID, GroupID: o.Group, SubgroupID: o.Subgroup,
		PublisherPriority: o.PublisherPriority, Extensions: st.hdrExt, EndOfGroup: st.eog,
	}
	switch o.Subgroup {
	case 0:
		h.IDMode = wire.SubgroupIDZero
	case o.ID:
		h.IDMode = wire.SubgroupIDFirstObject
	default:
		h.IDMode = wire.SubgroupIDExplicit
	}
	st.oc.deadline = deadline
	str, err := sv.s.conn.OpenUniStreamSync(&st.oc)
	st.oc.release()
	if err != nil {
		return err
	}
	st.aheadOpened = sv.s.ahead.opened.Add(1)
	st.mu.Lock()
	if st.stopped || sv.ctx.Err() != nil {
		// Abandoned, or the subscription ended (sv.cutStreams may have
		// looked at the stream before st.str was set): the stream goes.
		code := st.stopCode
		if !st.stopped {
			code = sv.endCode()
		}
		st.mu.Unlock()
		str.CancelWrite(uint64(code))
		return context.Canceled
	}
	st.str = str
	st.mu.Unlock()
	sv.mu.Lock()
	sv.opened++
	sv.mu.Unlock()
	st.setUrgencyDue()
	st.state = wire.SubgroupState{Header: h}
	st.headerDue = true // written with the first object: writeFramed
	return nil
}

// prioSched ranks a session's open subgroup streams and maps the ranks
// onto the transport's urgencies.
//
// Ranking is incremental: a stream opening or ending re-keys only the
// streams of its own subscription (their group ordinals move), and only
// the streams whose urgency changes are touched: those whose key changed,
// and those of the ranks whose position among the first dataUrgencies
// ranks moved because a rank appeared or emptied. A session that serves a
// thousand tracks pays for a group boundary what one subscription's streams
// cost, not a sort of every stream it has.
type prioSched struct {
	mu   sync.Mutex
	subs map[*servedSubscription][]*outStream
	// ranks are the distinct keys of the open streams, in §7 order, each
	// with its streams.
	ranks []*rank
	// Scratch for rankSubLocked, reused, and ranks that emptied, kept
	// for the next new ones: at every group boundary ranks appear and
	// empty again.
	groups []uint64
	moved  []*outStream
	spare  []*rank
}

// maxSpareRanks bounds prioSched.spare.
const maxSpareRanks = 4

// rank is the streams of one rank key.
type rank struct {
	key     rankKey
	streams []*outStream
}

// noShift is rankSubLocked's shift when no rank moved.
const noShift = math.MaxInt

// add registers st and returns the streams of its subscription to abandon
// to stay within maxOpenSubgroups: the oldest groups'.
func (p *prioSched) add(st *outStream) (victims []*outStream) {
	var buf [4]*outStream
	p.mu.Lock()
	if p.subs == nil {
		p.subs = map[*servedSubscription][]*outStream{}
	}
	list := append(p.subs[st.sv], st)
	p.subs[st.sv] = list
	if n := len(list) - maxOpenSubgroups; n > 0 {
		victims = oldestStreams(list, st, n)
	}
	due := p.rankSubLocked(st.sv, noShift, buf[:0])
	p.mu.Unlock()
	setUrgenciesDue(due)
	return victims
}

// oldest returns the live stream of sv with the oldest group, other than
// except (nil if none).
func (p *prioSched) oldest(sv *servedSubscription, except *outStream) *outStream {
	p.mu.Lock()
	defer p.mu.Unlock()
	if vs := oldestStreams(p.subs[sv], except, 1); len(vs) > 0 {
		return vs[0]
	}
	return nil
}

// oldestStreams returns up to n streams of list with the oldest groups,
// other than except and those gone (abandoned, or their writer exited).
func oldestStreams(list []*outStream, except *outStream, n int) []*outStream {
	cands := make([]*outStream, 0, len(list))
	for _, st := range list {
		if st != except && !st.gone() {
			cands = append(cands, st)
		}
	}
	slices.SortFunc(cands, func(a, b *outStream) int {
		if c := cmp.Compare(a.key.group, b.key.group); c != 0 {
			return c
		}
		return cmp.Compare(a.key.subgroup, b.key.subgroup)
	})
	return cands[:min(n, len(cands))]
}

func (p *prioSched) remove(st *outStream) {
	var buf [4]*outStream
	p.mu.Lock()
	list := p.subs[st.sv]
	i := slices.Index(list, st)
	if i < 0 {
		p.mu.Unlock()
		return
	}
	list = slices.Delete(list, i, i+1)
	if len(list) == 0 {
		delete(p.subs, st.sv)
	} else {
		p.subs[st.sv] = list
	}
	due := p.rankSubLocked(st.sv, p.leaveLocked(st), buf[:0])
	p.mu.Unlock()
	setUrgenciesDue(due)
}

// setOrder gives sv the group order a PUBLISH_OK chose (§9.14: it
// overwrites the PUBLISH's) and re-ranks its streams: objects may have
// gone out before the answer came. sv.order is read under p.mu
// (rankSubLocked) once streams exist.
func (p *prioSched) setOrder(sv *servedSubscription, order wire.GroupOrder) {
	var buf [4]*outStream
	p.mu.Lock()
	if sv.order == order {
		p.mu.Unlock()
		return
	}
	sv.order = order
	due := p.rankSubLocked(sv, noShift, buf[:0])
	p.mu.Unlock()
	setUrgenciesDue(due)
}

// rerank recomputes the urgencies of sv's streams, after its subscriber
// priority changed.
func (p *prioSched) rerank(sv *servedSubscription) {
	var buf [4]*outStream
	p.mu.Lock()
	due := p.rankSubLocked(sv, noShift, buf[:0])
	p.mu.Unlock()
	setUrgenciesDue(due)
}

// setUrgencyDue sets the urgency ranked for st on its stream, once it is
// open, if it is not set yet. It runs without the scheduler's lock: the
// transport's SetPriority takes the stream's own lock, which its sender
// holds while it packs the stream's data. Calls for one stream in any
// order leave its last ranked urgency set: each sets the latest one.
func (st *outStream) setUrgencyDue() {
	st.mu.Lock()
	str := st.str
	st.mu.Unlock()
	if str == nil {
		return // open sets it
	}
	st.prioMu.Lock()
	defer st.prioMu.Unlock()
	if u := int8(st.due.Load() - 1); u >= 0 && u != st.applied {
		setUrgency(str, u)
		st.applied = u
	}
}

// setUrgenciesDue sets the urgencies a ranking changed, after the
// scheduler let go of its lock, on the streams and in the line of writers
// waiting for write-ahead, and admits the writers the change made
// admissible (regrant). The streams are one session's (its scheduler's).
func setUrgenciesDue(due []*outStream) {
	for _, st := range due {
		st.setUrgencyDue()
		if st.aheadWaiting.Load() {
			st.sv.s.ahead.reurge(st)
		}
	}
	if len(due) > 0 {
		due[0].sv.s.ahead.regrant()
	}
}

// setUrgency gives str urgency u (0 to 7): SendStream.SetPriority maps
// 0-255 onto the transport's eight urgencies as p/32. It is the one place
// urgencies become priorities.
func setUrgency(str SendStream, u int8) {
	str.SetPriority(uint8(u) * 32)
}

// fetchUrgency is the urgency of a fetch stream with subscriber priority
// sub: the data urgencies 1 to 7 split evenly over 0-255 (0-36 take 1,
// 220-255 take 7), never 0, which is the control stream's alone. Fetch
// streams are not ranked with the subgroup streams: a fetch is one stream
// read once, and its subscriber priority is all §7 gives it.
func fetchUrgency(sub uint8) int8 {
	return int8(1 + int(sub)*dataUrgencies/256)
}

// rankKey orders streams as §7 schedules them.
type rankKey struct {
	sub, pub uint8
	ordinal  int // the group's position in its subscription's group order
}

func (k rankKey) compare(o rankKey) int {
	if c := cmp.Compare(k.sub, o.sub); c != 0 {
		return c
	}
	if c := cmp.Compare(k.pub, o.pub); c != 0 {
		return c
	}
	return cmp.Compare(k.ordinal, o.ordinal)
}

// rankSubLocked re-keys the streams of sv: subscriber priority, then
// publisher priority, then the group's position in the subscription's group
// order (descending: newest first). A rank takes urgency 1 + its position
// among the ranks, up to 7: the eighth and later share urgency 7, where
// quic-go sends them by stream ID (oldest first). shift is the first
// position whose rank changed before the call (noShift for none). Called
// with p.mu held.
func (p *prioSched) rankSubLocked(sv *servedSubscription, shift int, due []*outStream) []*outStream {
	list := p.subs[sv]
	sub := uint8(sv.subPrio.Load())
	desc := sv.order == wire.GroupOrderDescending
	groups := p.groups[:0]
	for _, st := range list {
		groups = append(groups, st.key.group)
	}
	slices.Sort(groups)
	groups = slices.Compact(groups)
	moved := p.moved[:0]
	created := 0 // ranks inserted: each moves those after it one down
	for _, st := range list {
		i, _ := slices.BinarySearch(groups, st.key.group)
		if desc {
			i = len(groups) - 1 - i
		}
		k := rankKey{sub: sub, pub: st.pubPrio, ordinal: i}
		if st.rank != nil && st.rank.key == k {
			continue
		}
		if st.rank != nil {
			shift = min(shift, p.leaveLocked(st))
		}
		if at := p.joinLocked(st, k); at != noShift {
			shift = min(shift, at)
			created++
		}
		moved = append(moved, st)
	}
	p.groups = groups[:0]
	// The ranks that moved from or to a position with an urgency of its
	// own (below dataUrgencies-1; the rest share the last one).
	for i := shift; i < min(len(p.ranks), dataUrgencies+created); i++ {
		for _, st := range p.ranks[i].streams {
			due = p.urgeLocked(st, i, due)
		}
	}
	for _, st := range moved {
		if st.rank != nil {
			i, _ := p.position(st.rank.key)
			due = p.urgeLocked(st, i, due)
		}
	}
	clear(moved)
	p.moved = moved[:0]
	return due
}

// position returns where the rank of key is, or would be, among p.ranks,
// and whether it is there.
func (p *prioSched) position(key rankKey) (int, bool) {
	return slices.BinarySearchFunc(p.ranks, key, func(r *rank, k rankKey) int { return r.key.compare(k) })
}

// joinLocked puts st in the rank of key k, and returns the position of
// that rank if it is new (the ranks from there on moved), else noShift.
// Called with p.mu held.
func (p *prioSched) joinLocked(st *outStream, k rankKey) int {
	shift := noShift
	var r *rank
	if i, ok := p.position(k); ok {
		r = p.ranks[i]
	} else {
		if n := len(p.spare); n > 0 {
			r = p.spare[n-1]
			p.spare[n-1] = nil
			p.spare = p.spare[:n-1]
		} else {
			r = &rank{}
		}
		r.key = k
		shift = i
		p.ranks = slices.Insert(p.ranks, i, r)
	}
	st.rank, st.rankIdx = r, len(r.streams)
	r.streams = append(r.streams, st)
	return shift
}

// leaveLocked takes st out of its rank, and returns the position of that
// rank if it emptied (the ranks after it moved), else noShift. Called with
// p.mu held.
func (p *prioSched) leaveLocked(st *outStream) int {
	r := st.rank
	if r == nil {
		return noShift
	}
	last := len(r.streams) - 1
	if st.rankIdx != last {
		r.streams[st.rankIdx] = r.streams[last]
		r.streams[st.rankIdx].rankIdx = st.rankIdx
	}
	r.streams[last] = nil
	r.streams = r.streams[:last]
	st.rank = nil
	if len(r.streams) > 0 {
		return noShift
	}
	i, _ := p.position(r.key)
	p.ranks = slices.Delete(p.ranks, i, i+1)
	if len(p.spare) < maxSpareRanks && cap(r.streams) <= maxOpenSubgroups {
		p.spare = append(p.spare, r)
	}
	return i
}

// urgeLocked gives st the urgency of the rank at position i, and adds st
// to due if that changed it (setUrgenciesDue sets it on the stream, after
// p.mu). Called with p.mu held.
func (p *prioSched) urgeLocked(st *outStream, i int, due []*outStream) []*outStream {
	u := int8(1 + min(i, dataUrgencies-1))
	if u == st.urgency {
		return due
	}
	st.urgency = u
	st.due.Store(int32(u) + 1)
	return append(due, st)
}
