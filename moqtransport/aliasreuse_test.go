package moqtransport_test

import (
	"context"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A publisher may name a track alias again once it ended the subscription
// that had it (PUBLISH_DONE), while that subscription still waits for a
// data stream the PUBLISH_DONE counts: the old one ends at once and the
// new one takes the alias. The reuse closed the session with
// DUPLICATE_TRACK_ALIAS until PendingStreamTimeout after the PUBLISH_DONE.
// Both ways a publisher names an alias: a PUBLISH, and a SUBSCRIBE_OK.
func TestAliasReusedAfterPublishDone(t *testing.T) {
	pushed := make(chan *moqtransport.Subscription, 2)
	cfg := moqtransport.Config{
		PendingStreamTimeout: time.Minute, // the old subscription would wait this long
		Handler: moqtransport.Handler{Publish: func(_ context.Context, _ *moqtransport.Session, _ *wire.Publish, sub *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
			pushed <- sub
			return moqtransport.SubscribeOptions{}, nil
		}},
	}
	rs := newHostileServer(t, "moqt", cfg)
	client := rs.connect()
	ended := func(what string, sub *moqtransport.Subscription) {
		t.Helper()
		select {
		case <-sub.Done():
		case <-time.After(hostileWait):
			t.Fatalf("%s did not end when its alias was named again", what)
		}
	}

	// PUBLISH, PUBLISH_DONE counting a stream that never comes, PUBLISH
	// of another track under the same alias.
	rs.send(&wire.Publish{RequestID: 1, Namespace: heldNS, Name: "p", TrackAlias: 4, GroupOrder: wire.GroupOrderAscending, Forward: true})
	if m, ok := rs.next().(*wire.PublishOK); !ok || m.RequestID != 1 {
		t.Fatalf("got %v, want PUBLISH_OK", m)
	}
	first := <-pushed
	rs.send(&wire.PublishDone{RequestID: 1, StatusCode: wire.DoneTrackEnded, StreamCount: 1})
	rs.send(&wire.Publish{RequestID: 3, Namespace: heldNS, Name: "q", TrackAlias: 4, GroupOrder: wire.GroupOrderAscending, Forward: true})
	if m, ok := rs.next().(*wire.PublishOK); !ok || m.RequestID != 3 {
		t.Fatalf("got %v (session: %v), want PUBLISH_OK for the PUBLISH reusing alias 4", m, client.Err())
	}
	ended("the first PUBLISH", first)

	// SUBSCRIBE_OK: the same with our subscriptions.
	a := rs.subscribed("a", 5)
	req, ch := rs.subscribe("b")
	rs.send(&wire.PublishDone{RequestID: a.RequestID(), StatusCode: wire.DoneSubscriptionEnded, StreamCount: 2})
	rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 5, GroupOrder: wire.GroupOrderAscending})
	b := waitSubscribe(t, ch)
	if b.err != nil {
		t.Fatalf("Subscribe reusing alias 5: %v", b.err)
	}
	ended("subscription a", a)
	// Alias 5 is b's: its objects arrive.
	hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 5, GroupID: 1})
	finishStream(t, openUni(t, rs.conn, hdr, putVarint(putVarint(nil, 0), 1), []byte("x")))
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	if o, err := b.sub.ReadObject(ctx); err != nil || o.Location() != (wire.Location{Group: 1}) {
		t.Errorf("b's first object: %v, %v; want {1,0}", o, err)
	}
	if err := client.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
}
