package moqtransport_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A fetch stream read to its end before its FETCH_OK is checked against
// the FETCH_OK's group order when that comes (§2.5: groups follow it): its
// groups were let through unchecked, the order not known yet. Groups 3
// then 1 are malformed in an ascending fetch, and right in a descending
// one.
func TestFetchOrderCheckedWhenFetchOKComesLate(t *testing.T) {
	for _, tc := range []struct {
		order     wire.GroupOrder
		malformed bool
	}{
		{wire.GroupOrderAscending, true},
		{wire.GroupOrderDescending, false},
	} {
		t.Run(tc.order.String(), func(t *testing.T) {
			rs := newHostileServer(t, "moqt", moqtransport.Config{})
			client := rs.connect()
			type result struct {
				f   *moqtransport.Fetch
				err error
			}
			ch := make(chan result, 1)
			ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
			defer cancel()
			go func() {
				f, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: heldNS, Name: "t", End: wire.Location{Group: 4}})
				ch <- result{f, err}
			}()
			req, ok := rs.next().(*wire.Fetch)
			if !ok {
				t.Fatal("no FETCH")
			}
			hdr, _ := wire.AppendFetchHeader(nil, req.RequestID)
			o3, _ := wire.AppendFetchObject(nil, &wire.ObjectHeader{Group: 3, PayloadLength: 1})
			o1, _ := wire.AppendFetchObject(nil, &wire.ObjectHeader{Group: 1, PayloadLength: 1})
			finishStream(t, openUni(t, rs.conn, hdr, o3, []byte("a"), o1, []byte("b")))
			// The client read the stream to its end: the fetch no longer
			// routes anything.
			deadline := time.Now().Add(hostileWait)
			for moqtransport.FetchRegistered(client, req.RequestID) {
				if time.Now().After(deadline) {
					t.Fatal("the fetch stream was not read to its end")
				}
				time.Sleep(time.Millisecond)
			}
			rs.send(&wire.FetchOK{RequestID: req.RequestID, GroupOrder: tc.order, End: wire.Location{Group: 4}})
			r := <-ch
			if r.err != nil {
				t.Fatal(r.err)
			}
			var n int
			var err error
			for {
				if _, err = r.f.ReadObject(ctx); err != nil {
					break
				}
				n++
			}
			if tc.malformed && !errors.Is(err, moqtransport.ErrMalformedTrack) {
				t.Errorf("groups 3, 1 in an ascending fetch: %d objects, then %v; want ErrMalformedTrack", n, err)
			}
			if !tc.malformed && (err != io.EOF || n != 2) {
				t.Errorf("groups 3, 1 in a descending fetch: %d objects, then %v; want 2 and EOF", n, err)
			}
			if client.Context().Err() != nil {
				t.Errorf("the session ended: %v", context.Cause(client.Context()))
			}
		})
	}
}
