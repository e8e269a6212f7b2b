package main

// A late joiner through relays that do not behave like moq-go's: one that
// refuses FETCH, one that answers FETCH_OK with group order 0 (imquic
// 0.0.1), and one whose SERVER_SETUP grants no request IDs (the xquic
// draft-14 relay). The first is a moqtransport session with a handler that
// refuses FETCH; the other two are raw servers that write draft-14
// messages with the wire codec. All run on real loopback QUIC.

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/clock"
	"github.com/moqgo/moq/internal/moqtest"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// noFetch serves tracks and refuses every FETCH with NOT_SUPPORTED.
type noFetch struct{ moqtransport.Tracks }

func (n *noFetch) Handler() moqtransport.Handler {
	h := n.Tracks.Handler()
	h.Fetch = func(context.Context, *moqtransport.Session, *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
		return nil, moqtransport.FetchError(wire.FetchNotSupported, "this relay does not support FETCH")
	}
	return h
}

// TestJoinWithoutFetch: through a relay that refuses FETCH, a subscriber
// that joins mid-minute says so and starts with the next minute.
func TestJoinWithoutFetch(t *testing.T) {
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"clock"}, Name: "now"}, moqtransport.TrackConfig{})
	defer tr.Close(nil)
	h := &noFetch{}
	h.Add(tr)
	srv := moqtest.Serve(t, moqnative.ServerConfig{}, h.Handler())
	url, fp := srv.URL, srv.Fingerprint

	w37, err := tr.OpenSubgroup(37, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write := func(w *moqtransport.SubgroupWriter, id uint64, s string) {
		t.Helper()
		if err := w.WriteObject(id, []byte(s), nil); err != nil {
			t.Fatal(err)
		}
	}
	write(w37, 0, clock.Base(at(18, 37, 0, 0)))
	write(w37, 1, "57")

	sub := start(t, "subscriber", config{}, "--fingerprint", fp, url)
	sub.waitReady(t)
	sub.stderr.waitFor(t, "subscriber log", "no joining FETCH: starting at the next group")
	for _, s := range []string{"group=38", "NOT_SUPPORTED", "this relay does not support FETCH"} {
		if !strings.Contains(sub.stderr.String(), s) {
			t.Errorf("no %q in the log:\n%s", s, sub.stderr.String())
		}
	}
	// The rest of minute 37 cannot be printed without its date; minute 38
	// is.
	write(w37, 2, "58")
	if err := w37.Close(); err != nil {
		t.Fatal(err)
	}
	w38, err := tr.OpenSubgroup(38, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write(w38, 0, clock.Base(at(18, 38, 0, 0)))
	write(w38, 1, "00")
	sub.stdout.waitFor(t, "subscriber", "2026-04-13 18:38:00\n")
	if got := sub.stdout.String(); got != "2026-04-13 18:38:00\n" {
		t.Errorf("printed %q, want only minute 38", got)
	}
}

// rawRelay is a relay written by hand with the wire codec: it answers
// CLIENT_SETUP with setup, and then each SUBSCRIBE to clock/now with
// SUBSCRIBE_OK (largest {37,1}) and each FETCH with FETCH_OK group order
// 0x0 and objects 0 and 1 of group 37.
func rawRelay(t *testing.T, setup *wire.ServerSetup, refuseFirstFetch bool) (url, fingerprint string) {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := serveRaw(ctx, srv, setup, refuseFirstFetch); err != nil {
			t.Logf("raw relay: %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		wg.Wait()
	})
	fp, _ := srv.Fingerprint()
	return "moqt://" + srv.Addr().String() + "/", hex.EncodeToString(fp[:])
}

// serveRaw serves one connection and returns how the client closed it.
func serveRaw(ctx context.Context, srv *moqnative.Server, setup *wire.ServerSetup, refuseFirstFetch bool) error {
	in, err := srv.Accept(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = in.Conn.CloseWithError(0, "") }()
	ctrl, err := in.Conn.AcceptStream(ctx)
	if err != nil {
		return err
	}
	r := wire.NewControlReader(ctrl)
	send := func(m wire.Message) error {
		b, err := wire.AppendMessage(nil, m)
		if err != nil {
			return err
		}
		_, err = ctrl.Write(b)
		return err
	}
	if m, err := r.ReadMessage(); err != nil {
		return err
	} else if _, ok := m.(*wire.ClientSetup); !ok {
		return fmt.Errorf("first message %s", m.Type())
	}
	if err := send(setup); err != nil {
		return err
	}
	base := []byte(clock.Base(at(18, 37, 0, 0)))
	for {
		m, err := r.ReadMessage()
		if err != nil {
			// The client's CONNECTION_CLOSE: how it ended.
			_, err := in.Conn.AcceptStream(ctx)
			return err
		}
		switch m := m.(type) {
		case *wire.Subscribe:
			err = send(&wire.SubscribeOK{RequestID: m.RequestID, TrackAlias: 9, GroupOrder: wire.GroupOrderAscending,
				ContentExists: true, Largest: wire.Location{Group: 37, Object: 1}})
		case *wire.Fetch:
			if refuseFirstFetch {
				// As a relay that ties a joining FETCH only to a
				// SUBSCRIBE it has answered before the FETCH came.
				refuseFirstFetch = false
				err = send(&wire.FetchError{RequestID: m.RequestID, Code: wire.FetchInvalidJoiningRequestID, Reason: "not yet"})
				break
			}
			// Group order 0x0: what imquic 0.0.1 answers.
			if err = send(&wire.FetchOK{RequestID: m.RequestID, End: wire.Location{Group: 37, Object: 2}}); err != nil {
				return err
			}
			str, err := in.Conn.OpenUniStreamSync(ctx)
			if err != nil {
				return err
			}
			b, _ := wire.AppendFetchHeader(nil, m.RequestID)
			b, _ = wire.AppendFetchObject(b, &wire.ObjectHeader{Group: 37, ID: 0, PayloadLength: uint64(len(base))})
			b = append(b, base...)
			b, _ = wire.AppendFetchObject(b, &wire.ObjectHeader{Group: 37, ID: 1, PayloadLength: 2})
			b = append(b, "57"...)
			if _, err := str.Write(b); err != nil {
				return err
			}
			err = str.Close()
		}
		if err != nil {
			return err
		}
	}
}

// TestJoinFetchOKGroupOrderZero: a relay that answers the joining FETCH
// with FETCH_OK group order 0x0 is tolerated with a warning; the subscriber
// prints the current second at once.
func TestJoinFetchOKGroupOrderZero(t *testing.T) {
	url, fp := rawRelay(t, &wire.ServerSetup{Version: wire.Draft14, Params: wire.Parameters{{Type: wire.SetupParamMaxRequestID, Value: 100}}}, false)
	sub := start(t, "subscriber", config{}, "--fingerprint", fp, url)
	sub.waitReady(t)
	sub.stdout.waitFor(t, "subscriber", "2026-04-13 18:37:57\n")
	for _, s := range []string{"level=WARN", "the peer deviates from draft-14; tolerated", "FETCH_OK group order 0x0", "joined the current group with FETCH"} {
		if !strings.Contains(sub.stderr.String(), s) {
			t.Errorf("no %q in the log:\n%s", s, sub.stderr.String())
		}
	}
	sub.cancel()
	if err := sub.wait(t); err != nil {
		t.Errorf("subscriber: %v", err)
	}
}

// TestNoRequestIDs: a relay whose SERVER_SETUP has no MAX_REQUEST_ID and
// never sends one: the subscriber does not wait silently but fails with a
// message that says why, after the request-ID timeout.
func TestNoRequestIDs(t *testing.T) {
	url, fp := rawRelay(t, &wire.ServerSetup{Version: wire.Draft14}, false)
	p := start(t, "subscriber", config{requestIDTimeout: 300 * time.Millisecond}, "--fingerprint", fp, url)
	err := p.wait(t)
	if !errors.Is(err, moqtransport.ErrRequestsBlocked) {
		t.Fatalf("subscriber: %v, want ErrRequestsBlocked\n%s", err, p.stderr.String())
	}
	for _, s := range []string{"subscribing to clock/now", "its SETUP had no MAX_REQUEST_ID", "the peer cannot take requests from this session"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	if !strings.Contains(p.stderr.String(), "the peer granted no request IDs") {
		t.Errorf("no warning in the log:\n%s", p.stderr.String())
	}
}

// TestJoinFetchAskedAgain: a relay that refuses the joining FETCH sent
// alongside the SUBSCRIBE with INVALID_JOINING_REQUEST_ID (it ties joining
// FETCHes only to answered SUBSCRIBEs) gets it again, and serves it.
func TestJoinFetchAskedAgain(t *testing.T) {
	url, fp := rawRelay(t, &wire.ServerSetup{Version: wire.Draft14, Params: wire.Parameters{{Type: wire.SetupParamMaxRequestID, Value: 100}}}, true)
	sub := start(t, "subscriber", config{}, "--fingerprint", fp, url)
	sub.waitReady(t)
	sub.stdout.waitFor(t, "subscriber", "2026-04-13 18:37:57\n")
	if log := sub.stderr.String(); !strings.Contains(log, "joined the current group with FETCH") || strings.Contains(log, "no joining FETCH") {
		t.Errorf("log:\n%s", log)
	}
	sub.cancel()
	if err := sub.wait(t); err != nil {
		t.Errorf("subscriber: %v", err)
	}
}
