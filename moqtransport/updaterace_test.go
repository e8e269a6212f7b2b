package moqtransport_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestConcurrentUpdatesKeepTheirOrder: Subscription.Update called from two
// goroutines at once never sends the publisher a start that moves back.
// Update checked the new start against the subscription's under its lock,
// and sent SUBSCRIBE_UPDATE after taking a request ID in a second step: of
// two Updates that each passed the check, the later start could go out
// first, and the publisher closed the session for a start moved back
// (PROTOCOL_VIOLATION, §9.10).
func TestConcurrentUpdatesKeepTheirOrder(t *testing.T) {
	ns := wire.Namespace{"upd"}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
	h := &moqtransport.Tracks{}
	h.Add(tr)
	ctx := timeout(t)
	client, server := memSessions(t, ctx, &moqtransport.Config{Handler: h.Handler()})
	sub, err := client.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{Filter: wire.Filter{Type: wire.FilterAbsoluteStart}})
	if err != nil {
		t.Fatal(err)
	}
	// Several goroutines move the start forward at once, each to the
	// next number it draws: a start drawn later but checked first makes
	// the other refused (an error, nothing sent); what is sent only grows.
	var next atomic.Uint64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				g := next.Add(1)
				_ = sub.Update(ctx, moqtransport.UpdateOptions{Start: wire.Location{Group: g}})
				if server.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	// Every update reached the publisher: a TRACK_STATUS answered after
	// them finds the session open.
	if _, err := client.TrackStatus(ctx, ns, "t"); err != nil {
		t.Fatal(err)
	}
	if err := server.Err(); err != nil {
		t.Fatalf("the publisher closed the session: %v", err)
	}
}

// TestUpdateNotSentKeepsTheRange: an Update that sends nothing (no request
// ID granted before its context ended) leaves the range the next Update is
// checked against as the publisher has it. It used to store the unsent
// range first, so a later, legal start between the two was refused.
func TestUpdateNotSentKeepsTheRange(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs, sub := subscribedWithOneRequestID(t, scheme)
		ctx := timeout(t)
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		if err := sub.Update(short, moqtransport.UpdateOptions{Start: wire.Location{Group: 5}}); err == nil {
			t.Fatal("an Update with no request ID granted returned nil")
		}
		if _, ok := rs.next().(*wire.RequestsBlocked); !ok {
			t.Fatal("no REQUESTS_BLOCKED")
		}
		rs.send(&wire.MaxRequestID{Max: 10})
		if err := sub.Update(ctx, moqtransport.UpdateOptions{Start: wire.Location{Group: 3}}); err != nil {
			t.Fatalf("Update to start 3 after one to 5 that was never sent: %v", err)
		}
		if m, ok := rs.next().(*wire.SubscribeUpdate); !ok || m.Start != (wire.Location{Group: 3}) {
			t.Fatalf("got %v, want SUBSCRIBE_UPDATE from 3", m)
		}
	})
}

// TestUpdateWaitingHonoursItsContext: an Update waiting behind another
// (which waits for a request ID the peer does not grant) returns at its
// own context's end; it used to wait on a mutex for as long as the first
// one did, here forever.
func TestUpdateWaitingHonoursItsContext(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs, sub := subscribedWithOneRequestID(t, scheme)
		ctx := timeout(t)
		first := make(chan error, 1)
		go func() { first <- sub.Update(ctx, moqtransport.UpdateOptions{Start: wire.Location{Group: 5}}) }()
		if _, ok := rs.next().(*wire.RequestsBlocked); !ok {
			t.Fatal("no REQUESTS_BLOCKED: the first Update does not wait for a request ID")
		}
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		second := make(chan error, 1)
		go func() { second <- sub.Update(short, moqtransport.UpdateOptions{Start: wire.Location{Group: 6}}) }()
		select {
		case err := <-second:
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("the waiting Update returned %v, want its context's deadline", err)
			}
		case <-time.After(hostileWait):
			t.Fatal("the waiting Update did not return at its context's end")
		}
		rs.send(&wire.MaxRequestID{Max: 10})
		if err := <-first; err != nil {
			t.Fatalf("the first Update, once a request ID came: %v", err)
		}
		if m, ok := rs.next().(*wire.SubscribeUpdate); !ok || m.Start != (wire.Location{Group: 5}) {
			t.Fatalf("got %v, want SUBSCRIBE_UPDATE from 5", m)
		}
	})
}

// subscribedWithOneRequestID connects a moq-go client to a hostile server
// that grants it one request ID, and subscribes (absolute start) with it:
// the client has no request ID left.
func subscribedWithOneRequestID(t *testing.T, scheme string) (*hostileServer, *moqtransport.Subscription) {
	t.Helper()
	rs := newHostileServer(t, scheme, moqtransport.Config{})
	rs.send(&wire.ServerSetup{Version: wire.Draft14, Params: wire.Parameters{}.WithVarint(wire.SetupParamMaxRequestID, 1)})
	select {
	case <-rs.conned:
	case <-time.After(hostileWait):
		t.Fatal("Connect did not return")
	}
	if rs.cErr != nil {
		t.Fatalf("Connect: %v", rs.cErr)
	}
	ch := make(chan subResult, 1)
	go func() {
		sub, err := rs.client.Subscribe(timeout(t), heldNS, heldName, moqtransport.SubscribeOptions{Filter: wire.Filter{Type: wire.FilterAbsoluteStart}})
		ch <- subResult{sub, err}
	}()
	req, ok := rs.next().(*wire.Subscribe)
	if !ok {
		t.Fatal("no SUBSCRIBE")
	}
	rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 1, GroupOrder: wire.GroupOrderAscending})
	r := <-ch
	if r.err != nil {
		t.Fatalf("Subscribe: %v", r.err)
	}
	return rs, r.sub
}
