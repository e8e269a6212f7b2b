package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"time"
)

// ErrReaderGone is the error of an Output whose reader went away (EPIPE: the
// read end of the pipe was closed, e.g. the player quit). A command ends
// cleanly on it: the viewer chose to stop.
var ErrReaderGone = errors.New("stdout's reader went away (broken pipe)")

// ErrUnwritten is the error of Close when the queue was not written within
// the grace after an interrupt.
var ErrUnwritten = errors.New("stdout did not take the rest of the output")

// DefaultCloseGrace is how long Close gives the queue to be written once
// the command was interrupted.
const DefaultCloseGrace = time.Second

// Output writes to a writer, normally stdout, from one goroutine fed by a
// queue of at most limit bytes, so that a reader that stops reading (a
// paused or hung player at the other end of a pipe) never blocks the
// command: TryWrite and Write never wait for the writer. A chunk that
// does not fit is refused (TryWrite) or dropped (Write), whole; the
// caller decides what to skip next (moq-sub skips to the next group
// start, moq-clock drops lines).
//
// Closing os.Stdout does not unblock a write to a blocking pipe or FIFO
// (Go only puts a descriptor that is already non-blocking in its poller),
// so Close does not wait for a blocked write once interrupted: the
// command exits and the exit ends the write.
type Output struct {
	w     io.Writer
	limit int
	log   *slog.Logger

	mu      sync.Mutex
	queue   [][]byte
	queued  int // bytes in queue
	peak    int // the most bytes queued
	closed  bool
	err     error // the writer's error; sticky
	written int64
	// drops counts the chunks Write dropped in the current episode (a
	// run of drops with no accepted chunk between them).
	drops  int
	wake   chan struct{} // the writer waits on it for work
	failed chan struct{} // closed when the writer failed
	done   chan struct{} // closed when the writer goroutine ended
}

// NewOutput returns an Output writing to w with a queue of at most limit
// bytes (a chunk larger than limit is taken when the queue is empty). log
// gets one line per episode of drops by Write. Close must be called.
func NewOutput(w io.Writer, limit int, log *slog.Logger) *Output {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Output{w: w, limit: limit, log: log,
		wake: make(chan struct{}, 1), failed: make(chan struct{}), done: make(chan struct{})}
	go o.writer()
	return o
}

// writer owns the writes to w; it ends when the queue is closed and empty
// or a write failed.
func (o *Output) writer() {
	defer close(o.done)
	for {
		o.mu.Lock()
		for len(o.queue) == 0 && !o.closed {
			o.mu.Unlock()
			<-o.wake
			o.mu.Lock()
		}
		if len(o.queue) == 0 { // closed and written
			o.mu.Unlock()
			return
		}
		b := o.queue[0]
		o.queue[0] = nil
		o.queue = o.queue[1:]
		o.mu.Unlock()

		n, err := o.w.Write(b)

		o.mu.Lock()
		o.queued -= len(b)
		o.written += int64(n)
		if err != nil {
			if errors.Is(err, syscall.EPIPE) {
				err = ErrReaderGone
			} else {
				err = fmt.Errorf("writing stdout: %w", err)
			}
			o.err = err
			o.queue, o.queued = nil, 0
			o.mu.Unlock()
			close(o.failed)
			return
		}
		o.mu.Unlock()
	}
}

// TryWrite queues b, which the Output keeps (the caller must not change it),
// unless the queue has no room for it: then it returns false. The error is
// the writer's, once a write failed (ErrReaderGone when the reader went
// away), and then nothing is queued any more.
func (o *Output) TryWrite(b []byte) (bool, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return false, o.err
	}
	if o.closed {
		return false, errors.New("the output is closed")
	}
	if o.queued > 0 && o.queued+len(b) > o.limit {
		return false, nil
	}
	o.queue = append(o.queue, b)
	o.queued += len(b)
	o.peak = max(o.peak, o.queued)
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return true, nil
}

// Write is io.Writer for line-oriented output: it queues a copy of p, or
// drops p whole when the queue has no room for it (and logs once per
// episode of drops). It returns the writer's error once a write failed.
func (o *Output) Write(p []byte) (int, error) {
	ok, err := o.TryWrite(append([]byte(nil), p...))
	if err != nil {
		return 0, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case !ok && o.drops == 0:
		o.drops++
		o.log.Warn("stdout is not keeping up: dropping output until it does", "queued_bytes", o.queued)
	case !ok:
		o.drops++
	case o.drops > 0:
		o.log.Info("stdout caught up", "dropped_writes", o.drops)
		o.drops = 0
	}
	return len(p), nil
}

// Failed is closed when a write failed; Err then says why.
func (o *Output) Failed() <-chan struct{} { return o.failed }

// Err is the writer's error: nil while it writes, ErrReaderGone when the
// reader went away.
func (o *Output) Err() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// Stats returns the bytes written, queued now, and queued at most.
func (o *Output) Stats() (written int64, queued, peak int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.written, o.queued, o.peak
}

// Close stops taking chunks and waits until the queue is written, or, once
// ctx has ended (an interrupt), at most grace longer: a reader that never
// reads again does not keep the command from exiting. It returns the
// writer's error, or an error saying how much was left unwritten.
func (o *Output) Close(ctx context.Context, grace time.Duration) error {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	select {
	case <-o.done:
		return o.Err()
	case <-ctx.Done():
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-o.done:
		return o.Err()
	case <-t.C:
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return fmt.Errorf("%w within %v of the interrupt: exiting with %d bytes unwritten", ErrUnwritten, grace, o.queued)
}
