package moqtransport_test

import (
	"sync"
	"sync/atomic"
	"testing"

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
