package moqtransport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestRawServerEarlyStreamNotCrowdedOut: a data stream that comes before
// its SUBSCRIBE_OK gets a place among the streams waiting for their alias
// even when streams for an alias that is gone fill every place: the one
// that has waited longest gives its place up. Those streams are what a
// publisher had in flight when the subscriber unsubscribed, and each waited
// the whole PendingStreamTimeout; the new stream was refused, and the first
// objects of a subscription made right after an UNSUBSCRIBE were lost (the
// flake of TestSubscribeLargestNoGap under load, which resubscribes 200
// times: "no object of group N came").
func TestRawServerEarlyStreamNotCrowdedOut(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		const places = 4
		rs := newHostileServer(t, scheme, moqtransport.Config{MaxPendingStreams: places, PendingStreamTimeout: hostileWait})
		rs.connect()
		// The SUBSCRIBE goes first: while it waits for its answer, a
		// stream for an alias no one named yet may be its and waits.
		req, ch := rs.subscribe("t")
		// Streams for alias 99, which no SUBSCRIBE_OK names: one more
		// than there are places, so that one of them is stopped once the
		// session has read every header and holds the others.
		stale, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 99, GroupID: 1})
		strs := make([]moqtransport.SendStream, places+1)
		for i := range strs {
			strs[i] = openUni(t, rs.conn, stale)
		}
		stopped := make([]bool, len(strs))
		waitStreamsStopped(t, strs, stopped, 1, "one of the streams for an unknown alias")

		h := wire.SubgroupHeader{TrackAlias: 9, GroupID: 3}
		b, _ := wire.AppendSubgroupHeader(nil, &h)
		st := wire.NewSubgroupState(h)
		b, err := st.AppendObject(b, &wire.ObjectHeader{ID: 0, PayloadLength: 5})
		if err != nil {
			t.Fatal(err)
		}
		early := openUni(t, rs.conn, b, []byte("early"))
		// The early stream takes the place of the stream for alias 99
		// that has waited longest. (It used to be refused itself.)
		waitStreamsStopped(t, strs, stopped, 2, "a second stream for the unknown alias, giving its place to the stream that came before its SUBSCRIBE_OK")
		rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 9, GroupOrder: wire.GroupOrderAscending})
		r := waitSubscribe(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
		defer cancel()
		rd := r.sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer rd.Close()
		// The object that came before SUBSCRIBE_OK reaches the track.
		if o := waitObjects(ctx, t, rd, 1)[0]; o.Location() != (wire.Location{Group: 3}) || string(o.Payload) != "early" {
			t.Errorf("got object %v %q, want {3,0} \"early\"", o.Location(), o.Payload)
		}
		finishStream(t, early)
		if err := rs.client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// waitStreamsStopped waits until at least n of strs were stopped by the
// peer (STOP_SENDING, seen as a failed write), for at most 3 s.
func waitStreamsStopped(t *testing.T, strs []moqtransport.SendStream, stopped []bool, n int, what string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for streamsStopped(strs, stopped) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%s was not stopped after 3 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// refusePublish is a Handler.Publish that refuses every PUBLISH: a session
// with it may still be named an alias by a PUBLISH to come.
func refusePublish(context.Context, *moqtransport.Session, *moqtransport.PublishRequest, *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
	return moqtransport.SubscribeOptions{}, moqtransport.PublishError(wire.PublishNotSupported, "test: no PUBLISH")
}

// earlyStream opens a subgroup stream for alias with one object, group 3
// object 0, whose payload is payload.
func earlyStream(t *testing.T, conn moqtransport.Conn, alias uint64, payload string) moqtransport.SendStream {
	t.Helper()
	h := wire.SubgroupHeader{TrackAlias: alias, GroupID: 3}
	b, _ := wire.AppendSubgroupHeader(nil, &h)
	st := wire.NewSubgroupState(h)
	b, err := st.AppendObject(b, &wire.ObjectHeader{ID: 0, PayloadLength: uint64(len(payload))})
	if err != nil {
		t.Fatal(err)
	}
	return openUni(t, conn, b, []byte(payload))
}

// expectFirstObject reads sub's track from its cache and checks that its
// first object is {3,0} with payload.
func expectFirstObject(t *testing.T, sub *moqtransport.Subscription, payload string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	rd := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer rd.Close()
	for {
		ev, err := rd.Next(ctx)
		if err != nil {
			t.Fatalf("the object %q never reached the track: %v", payload, err)
		}
		if ev.Kind == moqtransport.EventObject {
			if o := ev.Object; o.Location() != (wire.Location{Group: 3}) || string(o.Payload) != payload {
				t.Errorf("got object %v %q, want {3,0} %q", o.Location(), o.Payload, payload)
			}
			return
		}
	}
}

// expectCancelled checks that str was stopped with CANCELLED.
func expectCancelled(t *testing.T, str moqtransport.SendStream, what string) {
	t.Helper()
	_, err := str.Write([]byte{0})
	var se *moqtransport.StreamError
	if !errors.As(err, &se) || se.Code != uint64(wire.ResetCancelled) {
		t.Errorf("%s: writing after the stop: %v, want STOP_SENDING CANCELLED", what, err)
	}
}

// TestRawServerEndedAliasStreamsStoppedAtOnce: the streams a publisher
// sends for a subscription we ended are stopped at once, and take no place
// among the streams waiting for their alias (draft-14 §10.1: a subscriber
// keeps enough state to discard them quickly). Here they come after a new
// subscription's first stream, which waits for its SUBSCRIBE_OK, and are
// three times as many as the places: each used to wait for an alias that
// is gone, for the whole PendingStreamTimeout, and the new stream, the one
// that had waited longest, gave its place up and was lost.
func TestRawServerEndedAliasStreamsStoppedAtOnce(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		const places = 4
		rs := newHostileServer(t, scheme, moqtransport.Config{MaxPendingStreams: places, PendingStreamTimeout: hostileWait})
		rs.connect()
		old := rs.subscribed("old", 7)
		if err := old.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		if m, ok := rs.next().(*wire.Unsubscribe); !ok || m.RequestID != old.RequestID() {
			t.Fatalf("got %v, want UNSUBSCRIBE %d", m, old.RequestID())
		}
		req, ch := rs.subscribe("t")
		early := earlyStream(t, rs.conn, 9, "early")
		// The publisher had not read the UNSUBSCRIBE yet.
		stale, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 7, GroupID: 1})
		strs := make([]moqtransport.SendStream, 3*places)
		for i := range strs {
			strs[i] = openUni(t, rs.conn, stale)
		}
		// PendingStreamTimeout is hostileWait: stopped within 3 s is at once.
		waitStreamsStopped(t, strs, make([]bool, len(strs)), len(strs), "every stream of the ended subscription")
		expectCancelled(t, strs[0], "a stream of the ended subscription")
		rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 9, GroupOrder: wire.GroupOrderAscending})
		r := waitSubscribe(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		expectFirstObject(t, r.sub, "early")
		finishStream(t, early)
		if err := rs.client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// TestRawServerStreamNoRequestCanNameStoppedAtOnce: a stream for an alias
// no subscription holds waits only while a control message to come could
// name it. With every SUBSCRIBE of ours answered and PUBLISH not taken,
// it is stopped at once; one that waits for an unanswered SUBSCRIBE is
// stopped as soon as SUBSCRIBE_ERROR answers it.
func TestRawServerStreamNoRequestCanNameStoppedAtOnce(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{PendingStreamTimeout: hostileWait})
		rs.connect()
		rs.subscribed("t", 7)
		hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 99})
		str := openUni(t, rs.conn, hdr)
		waitStreamsStopped(t, []moqtransport.SendStream{str}, make([]bool, 1), 1, "a stream for alias 99 with no SUBSCRIBE waiting for its answer")
		expectCancelled(t, str, "the stream for alias 99")

		req, ch := rs.subscribe("u")
		hdr, _ = wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 98})
		str = openUni(t, rs.conn, hdr)
		rs.send(&wire.SubscribeError{RequestID: req.RequestID, Code: wire.SubscribeTrackDoesNotExist})
		if r := waitSubscribe(t, ch); r.err == nil {
			t.Fatal("Subscribe succeeded, want SUBSCRIBE_ERROR")
		}
		waitStreamsStopped(t, []moqtransport.SendStream{str}, make([]bool, 1), 1, "a stream for alias 98 after the only SUBSCRIBE was refused")
		if err := rs.client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// TestRawServerLateSubscribeOKAliasEnded: a SUBSCRIBE_OK that comes after
// we gave the SUBSCRIBE up names the alias of a subscription that is
// already over: its streams are stopped at once, though another SUBSCRIBE
// waits for its answer.
func TestRawServerLateSubscribeOKAliasEnded(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{PendingStreamTimeout: hostileWait})
		rs.connect()
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := rs.client.Subscribe(ctx, heldNS, "given-up", moqtransport.SubscribeOptions{})
			done <- err
		}()
		first, ok := rs.next().(*wire.Subscribe)
		if !ok {
			t.Fatal("no SUBSCRIBE")
		}
		cancel()
		if err := <-done; err == nil {
			t.Fatal("Subscribe succeeded after its context was cancelled")
		}
		if m, ok := rs.next().(*wire.Unsubscribe); !ok || m.RequestID != first.RequestID {
			t.Fatalf("got %v, want UNSUBSCRIBE %d", m, first.RequestID)
		}
		req, ch := rs.subscribe("t")
		rs.send(&wire.SubscribeOK{RequestID: first.RequestID, TrackAlias: 5, GroupOrder: wire.GroupOrderAscending})
		hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 5})
		str := openUni(t, rs.conn, hdr)
		waitStreamsStopped(t, []moqtransport.SendStream{str}, make([]bool, 1), 1, "a stream for the alias of the late SUBSCRIBE_OK")
		rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 6, GroupOrder: wire.GroupOrderAscending})
		if r := waitSubscribe(t, ch); r.err != nil {
			t.Fatal(r.err)
		}
		if err := rs.client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// TestRawServerEndedAliasReused: the draft forbids one alias for two
// tracks at the same time only, so a publisher may name an ended
// subscription's alias again; the new subscription gets its streams.
func TestRawServerEndedAliasReused(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{PendingStreamTimeout: hostileWait})
		rs.connect()
		old := rs.subscribed("a", 7)
		if err := old.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		if _, ok := rs.next().(*wire.Unsubscribe); !ok {
			t.Fatal("no UNSUBSCRIBE")
		}
		sub := rs.subscribed("b", 7)
		finishStream(t, earlyStream(t, rs.conn, 7, "again"))
		expectFirstObject(t, sub, "again")
		if err := rs.client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}
