package main

import (
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/clock"
)

// stalledOut is a stdout whose reader stopped reading: Write blocks until
// the test ends.
type stalledOut struct {
	started chan struct{} // gets a value when a Write starts
	release chan struct{}
}

func (s *stalledOut) Write(p []byte) (int, error) {
	select {
	case s.started <- struct{}{}:
	default:
	}
	<-s.release
	return len(p), nil
}

// brokenPipe is a stdout whose reader went away.
type brokenPipe struct{}

func (brokenPipe) Write([]byte) (int, error) {
	return 0, &fs.PathError{Op: "write", Path: "/dev/stdout", Err: syscall.EPIPE}
}

// TestStdoutStalledOrGone: a subscriber whose stdout stopped reading still
// ends on an interrupt (within its grace), and a subscriber or publisher
// whose stdout's reader went away stops by itself, cleanly, and says why.
func TestStdoutStalledOrGone(t *testing.T) {
	r := startRelay(t)
	url := fmt.Sprintf("moqt://%s/", r.addr)
	clk := clock.NewManual(at(9, 5, 0, 0))
	pub := start(t, "publisher", config{now: clk.Now, newTicker: clk.NewTicker}, "--fingerprint", r.fingerprint, "--publish", url)
	pub.stdout.waitFor(t, "publisher", "2026-04-13 09:05:00\n")

	stalled := &stalledOut{started: make(chan struct{}, 1), release: make(chan struct{})}
	t.Cleanup(func() { close(stalled.release) }) // after the command ended
	sub := startOut(t, "stalled subscriber", config{}, stalled, "--fingerprint", r.fingerprint, url)
	gone := startOut(t, "subscriber with no reader", config{}, brokenPipe{}, "--fingerprint", r.fingerprint, url)
	sub.waitReady(t)
	gone.waitReady(t)
	tick(t, clk, at(9, 5, 1, 0))
	tick(t, clk, at(9, 5, 2, 0))
	<-stalled.started // the writer is stuck in a line

	if err := gone.wait(t); err != nil {
		t.Errorf("subscriber with no reader: %v", err)
	}
	gone.stderr.waitFor(t, "subscriber with no reader", "stopped: stdout's reader went away (broken pipe)")

	sub.cancel()
	start := time.Now()
	if err := sub.wait(t); err != nil {
		t.Errorf("stalled subscriber: %v", err)
	}
	t.Logf("the stalled subscriber ended %v after the interrupt", time.Since(start))
	sub.stderr.waitFor(t, "stalled subscriber", "stdout did not take the rest of the output")

	// A publisher whose stdout's reader is gone ends its track and stops.
	pub2 := startOut(t, "publisher with no reader", config{now: clk.Now, newTicker: clk.NewTicker}, brokenPipe{}, "--fingerprint", r.fingerprint, "--publish", "--namespace", "clock2", url)
	if err := pub2.wait(t); err != nil {
		t.Errorf("publisher with no reader: %v", err)
	}
	log := pub2.stderr.String()
	if !strings.Contains(log, "ending the track") || !strings.Contains(log, "stopped: stdout's reader went away (broken pipe)") {
		t.Errorf("publisher with no reader:\n%s", log)
	}
}
