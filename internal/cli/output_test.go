package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// stalledWriter blocks every Write until it gets a value from release (or
// release is closed), and records what it was given.
type stalledWriter struct {
	release chan struct{}
	started chan struct{} // gets a value when a Write starts
	wrote   chan struct{} // gets a value when a Write ends
	mu      sync.Mutex
	b       bytes.Buffer
}

func newStalledWriter() *stalledWriter {
	return &stalledWriter{release: make(chan struct{}), started: make(chan struct{}, 1), wrote: make(chan struct{}, 100)}
}

func (w *stalledWriter) Write(p []byte) (int, error) {
	select {
	case w.started <- struct{}{}:
	default:
	}
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	defer func() {
		select {
		case w.wrote <- struct{}{}:
		default:
		}
	}()
	return w.b.Write(p)
}

func (w *stalledWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// TestOutputStalledReader: a writer that never returns does not block
// TryWrite or Write, the queue stays within its limit, Write drops whole
// chunks and logs once per episode, and Close returns after its grace once
// ctx has ended.
func TestOutputStalledReader(t *testing.T) {
	w := newStalledWriter()
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	const limit = 64 * 1000 // 64 chunks, then no room for a line either
	o := NewOutput(w, limit, log)
	defer func() {
		close(w.release)
		<-o.done
	}()

	chunk := bytes.Repeat([]byte("x"), 1000)
	if ok, err := o.TryWrite(chunk); !ok || err != nil {
		t.Fatalf("first chunk: %v, %v", ok, err)
	}
	<-w.started // the writer holds the first chunk and is stalled
	accepted := 1
	// 100 MB offered: none of it waits, and at most limit is held.
	for range 100_000 {
		ok, err := o.TryWrite(chunk)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			accepted++
		}
	}
	if want := limit / len(chunk); accepted != want {
		t.Errorf("accepted %d chunks, want %d (the limit)", accepted, want)
	}
	_, queued, peak := o.Stats()
	if queued > limit || peak > limit {
		t.Errorf("queued %d, peak %d: over the limit %d", queued, peak, limit)
	}
	for i := range 3 {
		if n, err := fmt.Fprintf(o, "line %d\n", i); err != nil || n != 7 {
			t.Fatalf("Write: %d, %v", n, err)
		}
	}
	if got := strings.Count(logs.String(), "not keeping up"); got != 1 {
		t.Errorf("%d drop lines, want 1:\n%s", got, logs.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	err := o.Close(ctx, 50*time.Millisecond)
	if !errors.Is(err, ErrUnwritten) {
		t.Errorf("Close = %v, want ErrUnwritten", err)
	}
	t.Logf("Close: %v after %v", err, time.Since(start))
}

// TestOutputDrains: Close without an interrupt waits for everything, in
// order, and Write logs when the output caught up again.
func TestOutputDrains(t *testing.T) {
	w := newStalledWriter()
	var logs bytes.Buffer
	o := NewOutput(w, 20, slog.New(slog.NewTextHandler(&logs, nil)))
	_, _ = o.Write([]byte("0123456789")) // taken by the writer, stalled
	<-w.started
	_, _ = o.Write([]byte("abcdefghij")) // queued: the limit
	_, _ = o.Write([]byte("dropped"))
	// Once the writer has written both, a chunk fits again.
	for range 2 {
		w.release <- struct{}{}
		<-w.wrote
	}
	_, _ = o.Write([]byte("klm"))
	close(w.release)
	if err := o.Close(context.Background(), time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, want := w.String(), "0123456789abcdefghijklm"; got != want {
		t.Errorf("wrote %q, want %q", got, want)
	}
	if !strings.Contains(logs.String(), "caught up") || !strings.Contains(logs.String(), "dropped_writes=1") {
		t.Errorf("log:\n%s", logs.String())
	}
	if written, _, _ := o.Stats(); written != 23 {
		t.Errorf("written %d", written)
	}
}

// errWriter fails every write with err.
type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// TestOutputErrors: EPIPE becomes ErrReaderGone, other errors name stdout;
// both close Failed, make later writes fail, and are Close's result.
func TestOutputErrors(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{&fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}, ErrReaderGone.Error()},
		{&fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.ENOSPC}, "writing stdout: write /dev/stdout: no space left on device"},
	} {
		o := NewOutput(errWriter{c.err}, 100, nil)
		if ok, err := o.TryWrite([]byte("x")); !ok || err != nil {
			t.Fatalf("TryWrite: %v, %v", ok, err)
		}
		select {
		case <-o.Failed():
		case <-time.After(10 * time.Second):
			t.Fatal("Failed not closed")
		}
		if _, err := o.Write([]byte("y")); err == nil || err.Error() != c.want {
			t.Errorf("Write after the failure: %v, want %q", err, c.want)
		}
		if err := o.Close(context.Background(), time.Second); err == nil || err.Error() != c.want {
			t.Errorf("Close: %v, want %q", err, c.want)
		}
		if errors.Is(c.err, syscall.EPIPE) != errors.Is(o.Err(), ErrReaderGone) {
			t.Errorf("%v: Err %v", c.err, o.Err())
		}
	}
}
