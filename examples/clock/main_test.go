package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/relay"
)

// TestClockThroughRelay runs the publisher and the subscriber of this
// program against an in-process relay on loopback: the subscriber must print
// three timestamps the publisher wrote, in increasing groups.
func TestClockThroughRelay(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	base, _ := startRelay(t, ctx)

	pubCtx, stopPub := context.WithCancel(ctx)
	announced := make(chan struct{})
	pubDone := make(chan error, 1)
	pub := base
	pub.publish = true
	pub.announced = func() { close(announced) }
	go func() { pubDone <- run(pubCtx, pub, nil) }()
	select {
	case <-announced:
	case err := <-pubDone:
		t.Fatalf("publisher ended before announcing: %v", err)
	}

	var out bytes.Buffer
	sub := base
	sub.count = 3
	if err := run(ctx, sub, &out); err != nil {
		t.Fatalf("subscriber: %v (printed %q)", err, out.String())
	}
	stopPub()
	if err := <-pubDone; err != context.Canceled {
		t.Errorf("publisher ended with %v, want context.Canceled", err)
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("subscriber printed %d lines, want 3: %q", len(lines), out.String())
	}
	prev := -1
	for _, l := range lines {
		g, ts, ok := strings.Cut(l, " ")
		if !ok {
			t.Fatalf("line %q: want \"GROUP TIME\"", l)
		}
		group, err := strconv.Atoi(g)
		if err != nil || group <= prev {
			t.Errorf("line %q: group %q not after %d", l, g, prev)
		}
		prev = group
		if _, err := time.Parse(time.RFC3339Nano, ts); err != nil {
			t.Errorf("line %q: payload is not a timestamp: %v", l, err)
		}
	}
}

// A bad fingerprint is refused with an error that names the flag.
func TestClockBadFingerprint(t *testing.T) {
	err := run(context.Background(), options{url: "moqt://127.0.0.1:1/", fingerprint: "zz"}, nil)
	if err == nil || !strings.Contains(err.Error(), "-fingerprint") {
		t.Fatalf("got %v, want an error naming -fingerprint", err)
	}
}

// startRelay serves an in-process relay on loopback and returns the options
// that reach it, and what stops the relay (once; later calls do nothing).
func startRelay(t *testing.T, ctx context.Context) (options, func()) {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rs := relay.NewServer(relay.New(relay.Config{}), srv)
	serving := make(chan error, 1)
	go func() { serving <- rs.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			rs.Close()
			_ = srv.Close()
			<-serving
		})
	}
	t.Cleanup(stop)
	fp, _ := srv.Fingerprint()
	return options{
		url:         "moqt://" + srv.Addr().String() + "/",
		namespace:   "test/clock",
		track:       "now",
		interval:    20 * time.Millisecond,
		fingerprint: hex.EncodeToString(fp[:]),
	}, stop
}

// A publisher whose relay goes away returns an error saying so, instead of
// writing to nobody until interrupted.
func TestClockPublisherRelayStops(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pub, stopRelay := startRelay(t, ctx)
	pub.publish = true
	announced := make(chan struct{})
	pub.announced = func() { close(announced) }
	pubDone := make(chan error, 1)
	go func() { pubDone <- run(ctx, pub, nil) }()
	select {
	case <-announced:
	case err := <-pubDone:
		t.Fatalf("publisher ended before announcing: %v", err)
	}
	stopRelay()
	select {
	case err := <-pubDone:
		if err == nil || errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "session with") {
			t.Fatalf("publisher ended with %v, want the session's end", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("publisher still running 3 s after the relay stopped")
	}
}

// -interval 0 or negative is refused before anything is announced
// (time.NewTicker would panic on it).
func TestClockBadInterval(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		err := run(context.Background(), options{url: "moqt://127.0.0.1:1/", publish: true, interval: d}, nil)
		if err == nil || !strings.Contains(err.Error(), "-interval") {
			t.Errorf("interval %v: got %v, want an error naming -interval", d, err)
		}
	}
}
