package moqtransport_test

import (
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestSubscribeJoin: the joining FETCH goes right behind the SUBSCRIBE,
// before SUBSCRIBE_OK, and names it; its answer comes through Wait. A peer
// that refuses it, and a SUBSCRIBE that is refused, are reported.
func TestSubscribeJoin(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{})
		client := rs.connect()
		type result struct {
			sub  *moqtransport.Subscription
			join *moqtransport.JoiningFetch
			err  error
		}
		subscribeJoin := func(name string) (*wire.Subscribe, *wire.Fetch, chan result) {
			t.Helper()
			ch := make(chan result, 1)
			go func() {
				sub, j, err := client.SubscribeJoin(timeout(t), heldNS, name, moqtransport.SubscribeOptions{Priority: 7}, moqtransport.FetchOptions{Priority: 7})
				ch <- result{sub, j, err}
			}()
			sm, ok := rs.next().(*wire.Subscribe)
			if !ok {
				t.Fatal("no SUBSCRIBE")
			}
			// Nothing answered yet, and the FETCH is already here.
			fm, ok := rs.next().(*wire.Fetch)
			if !ok {
				t.Fatal("no FETCH before SUBSCRIBE_OK")
			}
			if fm.FetchType != wire.FetchRelativeJoining || fm.JoiningRequestID != sm.RequestID || fm.JoiningStart != 0 || fm.SubscriberPriority != 7 {
				t.Errorf("FETCH %+v for SUBSCRIBE %d", fm, sm.RequestID)
			}
			return sm, fm, ch
		}

		// Served: objects 0 and 1 of group 3, the subscription from {3,2}.
		sm, fm, ch := subscribeJoin("a")
		rs.send(&wire.SubscribeOK{RequestID: sm.RequestID, TrackAlias: 1, GroupOrder: wire.GroupOrderAscending,
			ContentExists: true, Largest: wire.Location{Group: 3, Object: 1}})
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		rs.send(&wire.FetchOK{RequestID: fm.RequestID, GroupOrder: wire.GroupOrderAscending, End: wire.Location{Group: 3, Object: 2}})
		hdr, _ := wire.AppendFetchHeader(nil, fm.RequestID)
		o0, _ := wire.AppendFetchObject(nil, &wire.ObjectHeader{Group: 3, ID: 0, PayloadLength: 1})
		o1, _ := wire.AppendFetchObject(nil, &wire.ObjectHeader{Group: 3, ID: 1, PayloadLength: 1})
		finishStream(t, openUni(t, rs.conn, hdr, o0, []byte("a"), o1, []byte("b")))
		f, err := r.join.Wait(timeout(t))
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
		var got []string
		for {
			o, err := f.ReadObject(timeout(t))
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, o.Location().String()+string(o.Payload))
		}
		if strings.Join(got, " ") != "{3,0}a {3,1}b" {
			t.Errorf("fetched %v", got)
		}
		r.join.Cancel()

		// Refused: the FETCH_ERROR comes through Wait.
		sm, fm, ch = subscribeJoin("b")
		rs.send(&wire.SubscribeOK{RequestID: sm.RequestID, TrackAlias: 2, GroupOrder: wire.GroupOrderAscending,
			ContentExists: true, Largest: wire.Location{Group: 3, Object: 1}},
			&wire.FetchError{RequestID: fm.RequestID, Code: wire.FetchNotSupported, Reason: "no"})
		r = <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		var re *moqtransport.RequestError
		if _, err := r.join.Wait(timeout(t)); !errors.As(err, &re) || wire.FetchErrorCode(re.Code) != wire.FetchNotSupported {
			t.Errorf("Wait after FETCH_ERROR: %v", err)
		}
		r.join.Cancel()

		// A refused SUBSCRIBE: its error, and the FETCH is given up.
		sm, _, ch = subscribeJoin("c")
		rs.send(&wire.SubscribeError{RequestID: sm.RequestID, Code: wire.SubscribeTrackDoesNotExist, Reason: "none"})
		if r := <-ch; r.err == nil || r.sub != nil || r.join != nil {
			t.Errorf("a refused SUBSCRIBE: %+v", r)
		}
		if client.Err() != nil {
			t.Fatalf("session ended: %v", client.Err())
		}
		// Another filter is refused before anything is sent.
		if _, _, err := client.SubscribeJoin(timeout(t), heldNS, "d", moqtransport.SubscribeOptions{Filter: wire.Filter{Type: wire.FilterNextGroupStart}}, moqtransport.FetchOptions{}); err == nil {
			t.Error("SubscribeJoin with Next Group Start")
		}
	})
}
