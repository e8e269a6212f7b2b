package moqtransport

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// The control stream has one writer: a goroutine of the session that takes
// what send queued and writes it, each write bounded by
// Config.ControlWriteTimeout. Nothing else touches the stream's sending
// side, so no lock is ever held while the network waits: a peer that stops
// reading its control stream stalls only that goroutine, and only until the
// deadline closes the session with CONTROL_MESSAGE_TIMEOUT (§3.3, §13.1.1
// of draft-14: the peer "took too long to respond").

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
	writing  bool          // the writer holds a chunk it has not written yet
	overflow bool          // a push went past the backlog limit
	closed   bool          // the writer has stopped: nothing more is written
	wake     chan struct{} // signalled when buf grows or overflow is set
	idle     chan struct{} // closed while nothing is queued or being written
}

func (q *controlQueue) init() {
	q.wake = make(chan struct{}, 1)
	q.idle = make(chan struct{})
	close(q.idle)
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
		q.signal()
		return fmt.Errorf("%w: %d bytes of control messages are waiting", errControlBacklog, queued)
	}
	if queued == 0 && !q.writing {
		q.idle = make(chan struct{})
		q.buf, q.off = q.buf[:0], 0
	}
	q.buf = append(q.buf, b...)
	sent()
	q.signal()
	return nil
}

func (q *controlQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take waits for queued bytes and hands the writer up to controlChunk of
// them. overflow reports that the backlog went past its limit.
func (q *controlQueue) take(ctx context.Context) (b []byte, overflow bool, err error) {
	for {
		q.mu.Lock()
		if q.overflow {
			q.mu.Unlock()
			return nil, true, nil
		}
		if queued := len(q.buf) - q.off; queued > 0 {
			n := min(queued, controlChunk)
			// Later pushes append past len(q.buf): they never touch
			// this chunk, even when append reuses the array.
			b = q.buf[q.off : q.off+n : q.off+n]
			q.off += n
			q.writing = true
			q.mu.Unlock()
			return b, false, nil
		}
		q.mu.Unlock()
		select {
		case <-q.wake:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
}

// wrote tells that the chunk the writer took is written.
func (q *controlQueue) wrote() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.writing = false
	switch {
	case q.off == len(q.buf):
		q.buf, q.off = q.buf[:0], 0
		if cap(q.buf) > 4*controlChunk {
			q.buf = nil // a burst is over: give its memory back
		}
		close(q.idle)
	case q.off >= 4*controlChunk && 2*q.off >= len(q.buf):
		// Keep the written prefix from growing without bound.
		n := copy(q.buf, q.buf[q.off:])
		q.buf, q.off = q.buf[:n], 0
	}
}

// stop marks the writer gone: later pushes fail, flush returns.
func (q *controlQueue) stop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	q.buf = nil
}

// flush waits until everything queued is written, the session ends, or
// timeout passes.
func (q *controlQueue) flush(closed <-chan struct{}, timeout time.Duration) {
	q.mu.Lock()
	idle, stopped := q.idle, q.closed
	q.mu.Unlock()
	if stopped || q.wake == nil {
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

// writeControl is the control stream's writer; it runs from setup until
// the session ends.
func (s *Session) writeControl() {
	defer s.out.stop()
	timeout := s.cfg.ControlWriteTimeout
	for {
		b, overflow, err := s.out.take(s.ctx)
		if err != nil {
			return
		}
		if overflow {
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
		_, err = s.control.Write(b)
		timer.Stop()
		if err != nil {
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
