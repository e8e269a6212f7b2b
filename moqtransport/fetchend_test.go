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

// A fetch that fails after its stream came (§9.16: FETCH_ERROR, like
// FETCH_OK, can come at any time relative to the objects) stops the
// stream: the goroutine reading it ends, and the peer learns it with
// STOP_SENDING. The reader used to stay blocked on its full channel (16
// objects) until the session ended, holding the stream, its objects and
// a place among the peer's streams.
func TestFetchErrorAfterStreamStopsStream(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		for _, tc := range []struct {
			name   string
			answer func(rs *hostileServer, req *wire.Fetch)
			gaveUp bool // the caller's context ended first
		}{
			{"FETCH_ERROR", func(rs *hostileServer, req *wire.Fetch) {
				rs.send(&wire.FetchError{RequestID: req.RequestID, Code: wire.FetchInternalError, Reason: "late"})
			}, false},
			{"no answer", func(rs *hostileServer, req *wire.Fetch) {}, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				rs := newHostileServer(t, scheme, moqtransport.Config{})
				rs.connect()
				opts := moqtransport.FetchOptions{Namespace: heldNS, Name: "t", End: wire.Location{Group: 1}}
				var req *wire.Fetch
				var ch chan error
				if tc.gaveUp {
					req, ch = rs.fetchFor(opts, 500*time.Millisecond)
				} else {
					req, ch = rs.fetch(opts)
				}
				hdr, _ := wire.AppendFetchHeader(nil, req.RequestID)
				obj := func(id uint64) []byte {
					b, _ := wire.AppendFetchObject(nil, &wire.ObjectHeader{ID: id, PayloadLength: 1})
					return append(b, 'x')
				}
				bs := [][]byte{hdr}
				for id := range uint64(20) { // more than the fetch's channel holds
					bs = append(bs, obj(id))
				}
				str := openUni(t, rs.conn, bs...)
				tc.answer(rs, req)
				select {
				case err := <-ch:
					ch <- err
					if err == nil {
						t.Fatal("Fetch succeeded, want an error")
					}
				case <-time.After(hostileWait):
					t.Fatal("Fetch did not return")
				}
				if tc.gaveUp {
					if m, ok := rs.next().(*wire.FetchCancel); !ok || m.RequestID != req.RequestID {
						t.Fatalf("got %v, want FETCH_CANCEL for request %d", m, req.RequestID)
					}
				}
				// The publisher goes on sending: its writes fail once the
				// subscriber stops the stream; they blocked on flow
				// control, the stream unread.
				dl, ok := str.(interface{ SetWriteDeadline(time.Time) error })
				if !ok {
					t.Fatalf("%T has no SetWriteDeadline", str)
				}
				_ = dl.SetWriteDeadline(time.Now().Add(hostileWait))
				var err error
				for id := uint64(20); err == nil; id++ {
					_, err = str.Write(obj(id))
				}
				var se *moqtransport.StreamError
				if !errors.As(err, &se) || se.Code != uint64(wire.ResetCancelled) {
					t.Fatalf("the publisher's fetch stream after the fetch failed: %v, want STOP_SENDING CANCELLED", err)
				}
			})
		}
	})
}

// A Fetch handler that answers with Next and no End would send FETCH_OK
// {0, 0}, which ends before a range starting past group 0: the peer closes
// the session for that (§9.17). The FETCH is refused instead, and the
// session goes on.
func TestFetchHandlerEndBeforeStartRefused(t *testing.T) {
	h := moqtransport.Handler{
		Fetch: func(context.Context, *moqtransport.Session, *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			return &moqtransport.FetchResponse{Next: func(context.Context) (*moqtransport.Object, error) { return nil, io.EOF }}, nil
		},
	}
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: h})
	client, _ := e.dial(nil)
	ctx := timeout(t)
	_, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"n"}, Name: "t", Start: wire.Location{Group: 5}, End: wire.Location{Group: 6}})
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != uint64(wire.FetchInternalError) {
		t.Fatalf("FETCH answered by a handler with no End: %v, want FETCH_ERROR INTERNAL_ERROR", err)
	}
	if err := client.Context().Err(); err != nil {
		t.Fatalf("the session ended: %v", err)
	}
}
