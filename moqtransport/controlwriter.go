package moqtransport

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// The control stream has one writer at a time: a goroutine of the session,
// started by the first message queued while none runs, that writes what
// send queued, each write bounded by Config.ControlWriteTimeout, and ends
// once the queue is empty (a relay's session writes a control message now
// and then: a goroutine parked per idle session would cost its stack).
// Nothing else touches the stream's sending side, so no lock is ever held
// while the network waits: a peer that stops reading its control stream
// stalls only that goroutine, and only until the deadline closes the
// session with CONTROL_MESSAGE_TIMEOUT (§3.3, §13.1.1 of draft-14: the peer
// "took too long to respond").

// errControlBacklog is what send returns once the peer let too many
// control bytes pile up; the writer closes the session for it.
var errControlBacklog = errors.New("moqt: the peer is not reading its control stream")

// controlQueue is the control messages waiting for the writer. The writer
// takes at most controlChunk bytes at a time, so the backlog limit counts
// nearly everything not yet handed to the stream.
type controlQueue struct {
	mu       sync.Mutex
	buf      []byte // buf[off:] is queued, in order; buf[:off] is written or being written
	off      int
	running  bool          // a writer goroutine runs: it takes what is queued before it ends
	overflow bool          // a push went past the backlog limit
	closed   bool          // the session ended: nothing more is written
	idle     chan struct{} // closed while nothing is queued or being written
	// start runs a writer (on a goroutine of the session); nil until
	// the control stream exists, so that pushes before it only queue.
	start func()
}

func (q *controlQueue) init() {
	q.idle = make(chan struct{})
	close(q.idle)
}

// enable sets how a writer is started, and starts one for anything
// already queued. Called once, when the control stream is open.
func (q *controlQueue) enable(start func()) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.start = start
	q.kickLocked()
}

// kickLocked starts a writer when something waits and none runs.
func (q *controlQueue) kickLocked() {
	if q.running || q.closed || q.start == nil || (len(q.buf) == q.off && !q.overflow) {
		return
	}
	q.running = true
	q.start()
}

// push queues b. sent runs under the queue's lock once b is queued, so that
// logs and traces list messages in wire order.
func (q *controlQueue) push(b []byte, limit int, sent func()) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	queued := len(q.buf) - q.off
	switch {
	case q.closed:
		return ErrSessionClosed
	case q.overflow:
		return errControlBacklog
	case queued+len(b) > limit && queued > 0:
		q.overflow = true
		q.kickLocked()
		return fmt.Errorf("%w: %d bytes of control messages are waiting", errControlBacklog, queued)
	}
	if queued == 0 && !q.running {
		q.idle = make(chan struct{})
		q.buf, q.off = q.buf[:0], 0
	}
	q.buf = append(q.buf, b...)
	sent()
	q.kickLocked()
	return nil
}

// take hands the writer up to controlChunk of the queued bytes. When
// nothing is queued it returns ok false, and the writer must end: a later
// push starts another. overflow reports that the backlog went past its
// limit.
func (q *controlQueue) take() (b []byte, overflow, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.overflow {
		return nil, true, true
	}
	queued := len(q.buf) - q.off
	if queued == 0 || q.closed {
		q.running = false
		q.buf, q.off = q.buf[:0], 0
		if cap(q.buf) > 4*controlChunk {
			q.buf = nil // a burst is over: give its memory back
		}
		if !q.closed {
			close(q.idle)
		}
		return nil, false, false
	}
	n := min(queued, controlChunk)
	// Later pushes append past len(q.buf): they never touch this chunk,
	// even when append reuses the array.
	b = q.buf[q.off : q.off+n : q.off+n]
	q.off += n
	return b, false, true
}

// wrote tells that the chunk the writer took is written.
func (q *controlQueue) wrote() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.off >= 4*controlChunk && 2*q.off >= len(q.buf) {
		// Keep the written prefix from growing without bound.
		n := copy(q.buf, q.buf[q.off:])
		q.buf, q.off = q.buf[:n], 0
	}
}

// stop marks the queue closed (the session ended, or its writer failed):
// later pushes fail, flush returns, no writer starts.
func (q *controlQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	q.running = false
	q.buf = nil
}

// flush waits until everything queued is written, the session ends, or
// timeout passes.
func (q *controlQueue) flush(closed <-chan struct{}, timeout time.Duration) {
	q.mu.Lock()
	idle, stopped, started := q.idle, q.closed, q.start != nil
	q.mu.Unlock()
	if stopped || !started {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
	case <-closed:
	case <-t.C:
	}
}

// writeControl is the control stream's writer: it writes what is queued
// and returns once the queue is empty or the session ends.
func (s *Session) writeControl() {
	timeout := s.cfg.ControlWriteTimeout
	for {
		if s.ctx.Err() != nil {
			s.out.stop()
			return
		}
		b, overflow, ok := s.out.take()
		if !ok {
			return
		}
		if overflow {
			s.out.stop()
			s.fail(&wire.SessionError{Code: wire.ControlMessageTimeout, Reason: fmt.Sprintf(
				"the peer is not reading its control stream: more than %d bytes of control messages are waiting", s.cfg.MaxControlBacklog)})
			return
		}
		// The deadline: past it, the session closes, which also ends
		// the blocked Write.
		timer := time.AfterFunc(timeout, func() {
			s.fail(&wire.SessionError{Code: wire.ControlMessageTimeout, Reason: fmt.Sprintf(
				"the peer took no control bytes for %v: it is not reading its control stream", timeout)})
		})
		_, err := s.control.Write(b)
		timer.Stop()
		if err != nil {
			s.out.stop()
			if s.ctx.Err() == nil {
				s.fail(controlStreamErr(err))
			}
			return
		}
		s.out.wrote()
	}
}

// controlChunk is the most the writer hands the stream at once: the
// deadline bounds the time without progress, so that a slow link that
// takes a large backlog bit by bit is not mistaken for a peer that stopped
// reading.
const controlChunk = 16 << 10

// units counts the session's goroutines for Close, which waits until none
// is busy. A goroutine that runs an application callback is not busy while
// the callback runs, so that Close called from a callback does not wait
// for itself.
type units struct {
	mu   sync.Mutex
	cond *sync.Cond
	busy int
}

func (u *units) change(d int) {
	u.mu.Lock()
	u.busy += d
	if u.cond != nil && u.busy <= 0 {
		u.cond.Broadcast()
	}
	u.mu.Unlock()
}

func (u *units) add()           { u.change(1) }
func (u *units) done()          { u.change(-1) }
func (u *units) enterCallback() { u.change(-1) }
func (u *units) leaveCallback() { u.change(1) }

// wait returns once no unit is busy.
func (u *units) wait() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.cond == nil {
		u.cond = sync.NewCond(&u.mu)
	}
	for u.busy > 0 {
		u.cond.Wait()
	}
}
