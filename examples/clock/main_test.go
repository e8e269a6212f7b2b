package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"strconv"
	"strings"
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

	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rs := relay.NewServer(relay.New(relay.Config{}), srv)
	serving := make(chan error, 1)
	go func() { serving <- rs.Serve(ctx) }()
	defer func() {
		rs.Close()
		_ = srv.Close()
		<-serving
	}()
	fp, _ := srv.Fingerprint()
	base := options{
		url:         "moqt://" + srv.Addr().String() + "/",
		namespace:   "test/clock",
		track:       "now",
		interval:    20 * time.Millisecond,
		fingerprint: hex.EncodeToString(fp[:]),
	}

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
