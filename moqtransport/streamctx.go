package moqtransport

import (
	"context"
	"sync"
	"time"
)

// A subgroup stream (outStream) holds no context of its own: a served
// subscription opens a stream per group and subscriber, and a context per
// stream (with its cancel hook on the subscription's, an AfterFunc to cut
// a blocked write, and a deadline context around the open) cost about a
// dozen allocations and two timers per stream. Instead:
//
//   - the subscription's end reaches a waiting writer through sv.ctx
//     (outStream.next), and a blocked write through sv.cutStreams, one
//     context.AfterFunc per subscription;
//   - an abandon wakes the writer (kickLocked) and resets the stream
//     itself (outStream.abandon);
//   - the open waits, if the peer's stream limit makes it wait, on an
//     openCtx, whose channel, timer and hook exist only once the
//     transport asks for Done: quic-go asks only when it has to wait, so
//     an open that finds a stream free allocates nothing.

// cutStreams resets the streams of sv that are still open, cutting writes
// blocked in the transport, once sv.ctx ends: the subscription or the
// session ended. A stream still opening then sees sv.ctx ended once it has
// opened (outStream.open).
func (sv *servedSubscription) cutStreams() {
	for _, st := range sv.s.sched.streamsOf(sv) {
		st.mu.Lock()
		str, code := st.str, st.stopCode
		if !st.stopped {
			code = sv.endCode()
		}
		st.mu.Unlock()
		if str != nil {
			str.CancelWrite(uint64(code))
		}
	}
}

// streamsOf returns a copy of the live streams of sv.
func (p *prioSched) streamsOf(sv *servedSubscription) []*outStream {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*outStream(nil), p.subs[sv]...)
}

// openCtx is the context of a subgroup stream's open (outStream.open): it
// ends when the subscription ends (sv.ctx), when the stream is abandoned
// (cancel), or at deadline, the first object's delivery deadline (zero for
// none). Its Done channel, and the hook and timer that close it, are made
// on the first call to Done and stopped by release.
type openCtx struct {
	st       *outStream
	deadline time.Time // set before the open, read-only during it

	mu         sync.Mutex
	err        error
	done       chan struct{}
	stopParent func() bool
	timer      *time.Timer
}

var _ context.Context = (*openCtx)(nil)

func (c *openCtx) Deadline() (time.Time, bool) { return c.deadline, !c.deadline.IsZero() }

func (c *openCtx) Value(key any) any { return c.st.sv.ctx.Value(key) }

// Err reports why the open must stop, if it must. An end it finds (the
// subscription's, or the deadline passed) also closes Done, so that Err
// and Done agree.
func (c *openCtx) Err() error {
	c.mu.Lock()
	err := c.err
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := c.st.sv.ctx.Err(); err != nil {
		c.cancel(err)
	} else if !c.deadline.IsZero() && !time.Now().Before(c.deadline) {
		c.cancel(context.DeadlineExceeded)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done returns the channel closed when the open must stop, starting what
// closes it: a hook on the subscription's context and a deadline timer.
func (c *openCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.err != nil {
		close(c.done)
		return c.done
	}
	parent := c.st.sv.ctx
	c.stopParent = context.AfterFunc(parent, func() { c.cancel(parent.Err()) })
	if !c.deadline.IsZero() {
		c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.cancel(context.DeadlineExceeded) })
	}
	return c.done
}

// cancel ends the context with err, unless it has ended already.
func (c *openCtx) cancel(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	if c.done != nil {
		close(c.done)
	}
}

// release stops the hook and the timer Done started, once the open is
// over.
func (c *openCtx) release() {
	c.mu.Lock()
	stop, t := c.stopParent, c.timer
	c.stopParent, c.timer = nil, nil
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
	if t != nil {
		t.Stop()
	}
}
