package moqtransport_test

import (
	"context"
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

		req, ch := rs.subscribe("t")
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
		for {
			ev, err := rd.Next(ctx)
			if err != nil {
				t.Fatalf("the object that came before SUBSCRIBE_OK never reached the track: %v", err)
			}
			if ev.Kind == moqtransport.EventObject {
				if o := ev.Object; o.Location() != (wire.Location{Group: 3}) || string(o.Payload) != "early" {
					t.Errorf("got object %v %q, want {3,0} \"early\"", o.Location(), o.Payload)
				}
				break
			}
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
