package moqtransport_test

// The peer-deviation policy (package doc, "Peer deviations"), against a raw
// server that writes draft-14 messages with the wire codec over a real
// moqnative connection.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// logBuffer collects a session's logs.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// fetchOKOrderZero has the raw server answer a joining-less FETCH with
// FETCH_OK group order 0x0 (as imquic 0.0.1 does) and a fetch stream with
// one object, and returns the client's Fetch result.
func fetchOKOrderZero(t *testing.T, rs *hostileServer, asked wire.GroupOrder) (*moqtransport.Fetch, error) {
	t.Helper()
	rs.connect()
	ch := make(chan error, 1)
	var f *moqtransport.Fetch
	go func() {
		var err error
		f, err = rs.client.Fetch(timeout(t), moqtransport.FetchOptions{Namespace: heldNS, Name: "t", GroupOrder: asked, End: wire.Location{Group: 1}})
		ch <- err
	}()
	req, ok := rs.next().(*wire.Fetch)
	if !ok {
		t.Fatal("no FETCH")
	}
	rs.send(&wire.FetchOK{RequestID: req.RequestID, GroupOrder: wire.GroupOrderPublisher, End: wire.Location{Group: 1}})
	var err error
	select {
	case err = <-ch:
	case <-time.After(hostileWait):
		t.Fatal("Fetch did not return")
	}
	if err != nil {
		return nil, err
	}
	hdr, _ := wire.AppendFetchHeader(nil, req.RequestID)
	obj, _ := wire.AppendFetchObject(nil, &wire.ObjectHeader{Group: 0, ID: 0, PayloadLength: 2})
	str := openUni(t, rs.conn, hdr, obj, []byte("hi"))
	finishStream(t, str)
	return f, nil
}

// TestDeviationFetchOKGroupOrderZero: by default the fetch goes on, read in
// the order asked for (ascending for the publisher's), with one warning per
// session; with StrictPeer the session closes with PROTOCOL_VIOLATION.
func TestDeviationFetchOKGroupOrderZero(t *testing.T) {
	for _, c := range []struct {
		asked, want wire.GroupOrder
	}{{wire.GroupOrderPublisher, wire.GroupOrderAscending}, {wire.GroupOrderDescending, wire.GroupOrderDescending}} {
		t.Run("asked "+c.asked.String(), func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, scheme string) {
				var logs logBuffer
				rs := newHostileServer(t, scheme, moqtransport.Config{Logger: logs.logger()})
				f, err := fetchOKOrderZero(t, rs, c.asked)
				if err != nil {
					t.Fatalf("Fetch: %v", err)
				}
				if got := f.OK().GroupOrder; got != c.want {
					t.Errorf("FETCH_OK group order read as %s, want %s", got, c.want)
				}
				o, err := f.ReadObject(timeout(t))
				if err != nil || string(o.Payload) != "hi" {
					t.Fatalf("fetched object %+v, %v", o, err)
				}
				if _, err := f.ReadObject(timeout(t)); err != io.EOF {
					t.Errorf("after the object: %v, want EOF", err)
				}
				if rs.client.Err() != nil {
					t.Fatalf("session ended: %v", rs.client.Err())
				}
				log := logs.String()
				if !strings.Contains(log, "level=WARN") || !strings.Contains(log, `deviation="FETCH_OK group order 0x0"`) {
					t.Errorf("no warning about the deviation:\n%s", log)
				}
				// A second one is tolerated without a second warning.
				ch := make(chan error, 1)
				go func() {
					_, err := rs.client.Fetch(timeout(t), moqtransport.FetchOptions{Namespace: heldNS, Name: "t", End: wire.Location{Group: 1}})
					ch <- err
				}()
				req := rs.next().(*wire.Fetch)
				rs.send(&wire.FetchOK{RequestID: req.RequestID, End: wire.Location{Group: 1}})
				if err := <-ch; err != nil {
					t.Fatalf("second Fetch: %v", err)
				}
				if n := strings.Count(logs.String(), "deviates"); n != 1 {
					t.Errorf("%d warnings, want 1:\n%s", n, logs.String())
				}
			})
		})
	}
	t.Run("strict", func(t *testing.T) {
		forEachTransport(t, func(t *testing.T, scheme string) {
			rs := newHostileServer(t, scheme, moqtransport.Config{StrictPeer: true})
			_, err := fetchOKOrderZero(t, rs, wire.GroupOrderPublisher)
			if wire.SessionCode(err) != wire.ProtocolViolation {
				t.Errorf("Fetch: %v, want PROTOCOL_VIOLATION", err)
			}
			rs.expectClose(wire.ProtocolViolation)
		})
	})
}

// TestNoMaxRequestID: a SERVER_SETUP without MAX_REQUEST_ID (as the xquic
// draft-14 relay sends) grants no request IDs. A request is not sent; the
// client says REQUESTS_BLOCKED, warns, and with RequestIDTimeout fails with
// ErrRequestsBlocked and a message that says why. A later MAX_REQUEST_ID
// lets requests through.
func TestNoMaxRequestID(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		var logs logBuffer
		rs := newHostileServer(t, scheme, moqtransport.Config{Logger: logs.logger(), RequestIDTimeout: 300 * time.Millisecond})
		rs.send(&wire.ServerSetup{Version: wire.Draft14})
		select {
		case <-rs.conned:
		case <-time.After(hostileWait):
			t.Fatal("Connect did not return")
		}
		if rs.cErr != nil {
			t.Fatalf("Connect: %v", rs.cErr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
		defer cancel()
		_, err := rs.client.Subscribe(ctx, heldNS, heldName, moqtransport.SubscribeOptions{})
		if !errors.Is(err, moqtransport.ErrRequestsBlocked) || !strings.Contains(err.Error(), "SETUP had no MAX_REQUEST_ID") {
			t.Fatalf("Subscribe: %v, want ErrRequestsBlocked saying the SETUP had no MAX_REQUEST_ID", err)
		}
		if ctx.Err() != nil {
			t.Fatal("Subscribe waited for its context, not RequestIDTimeout")
		}
		if m, ok := rs.next().(*wire.RequestsBlocked); !ok || m.Max != 0 {
			t.Errorf("got %v, want REQUESTS_BLOCKED 0", m)
		}
		if !strings.Contains(logs.String(), "its SETUP had no MAX_REQUEST_ID") {
			t.Errorf("no warning:\n%s", logs.String())
		}
		// A grant lets the next request through.
		rs.send(&wire.MaxRequestID{Max: 10})
		ch := make(chan subResult, 1)
		go func() {
			sub, err := rs.client.Subscribe(ctx, heldNS, heldName, moqtransport.SubscribeOptions{})
			ch <- subResult{sub, err}
		}()
		req, ok := rs.next().(*wire.Subscribe)
		if !ok {
			t.Fatal("no SUBSCRIBE after MAX_REQUEST_ID")
		}
		rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 1, GroupOrder: wire.GroupOrderAscending})
		if r := <-ch; r.err != nil {
			t.Fatalf("Subscribe after the grant: %v", r.err)
		}
	})
}
