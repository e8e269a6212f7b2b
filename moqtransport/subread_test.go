package moqtransport_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// readAll reads a subscription with Objects until it stops, sorted by
// location (groups travel on streams of their own), and the error that
// stopped it (nil after a normal end).
func readAll(ctx context.Context, sub *moqtransport.Subscription) ([]moqtransport.Location, error) {
	var got []moqtransport.Location
	for o, err := range sub.Objects(ctx) {
		if err != nil {
			return got, err
		}
		got = append(got, o.Location())
	}
	slices.SortFunc(got, moqtransport.Location.Compare)
	return got, nil
}

// TestReadObjectEnds: ReadObject yields every object, those received
// before its first call included, then io.EOF for a normal end, the
// PUBLISH_DONE error for another, the session's error when the session
// ends first; ctx ending returns ctx's error and reading goes on after it.
func TestReadObjectEnds(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		t.Run("track ended", func(t *testing.T) {
			tr, _, sub, ctx := servedSub(t, scheme)
			short, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := sub.ReadObject(short); !errors.Is(err, context.Canceled) {
				t.Fatalf("ReadObject with a cancelled context and nothing to read: %v, want context.Canceled", err)
			}
			publishObjects(t, tr, 0, 2, 3)
			// Wait until everything has arrived before reading the first.
			r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
			defer r.Close()
			waitObjects(ctx, t, r, 6)
			tr.Close(nil)
			got, err := readAll(ctx, sub)
			var want []moqtransport.Location
			for g := range uint64(2) {
				for _, id := range []uint64{0, 2, 4} {
					want = append(want, moqtransport.Location{Group: g, Object: id})
				}
			}
			if err != nil || !slices.Equal(got, want) {
				t.Fatalf("Objects: %v, %v; want %v and a normal end", got, err, want)
			}
			if _, err := sub.ReadObject(ctx); err != io.EOF {
				t.Fatalf("ReadObject after the end: %v, want io.EOF", err)
			}
		})
		t.Run("publish done error", func(t *testing.T) {
			tr, _, sub, ctx := servedSub(t, scheme)
			publishObjects(t, tr, 0, 1, 2)
			tr.Close(moqtransport.PublishDoneError(moqtransport.DoneTooFarBehind, "slow"))
			got, err := readAll(ctx, sub)
			if len(got) != 2 {
				t.Errorf("read %v before the end, want the 2 objects sent before PUBLISH_DONE", got)
			}
			var re *moqtransport.RequestError
			if !errors.As(err, &re) || re.Message != wire.TypePublishDone || re.Code != uint64(moqtransport.DoneTooFarBehind) || re.Reason != "slow" {
				t.Fatalf("Objects ended with %v, want PUBLISH_DONE TOO_FAR_BEHIND", err)
			}
			if !errors.Is(err, moqtransport.PublishDoneError(moqtransport.DoneTooFarBehind, "")) || errors.Is(err, moqtransport.ErrTrackNotFound) {
				t.Errorf("errors.Is on %v does not go by the PUBLISH_DONE code", err)
			}
		})
		t.Run("session ended", func(t *testing.T) {
			tr, client, sub, ctx := servedSub(t, scheme)
			publishObjects(t, tr, 0, 1, 2)
			if err := client.CloseWithError(moqtransport.ProtocolViolation, "test"); err != nil {
				t.Fatalf("CloseWithError on a running session: %v", err)
			}
			var err2 error
			for _, err2 = range sub.Objects(ctx) {
				if err2 != nil {
					break
				}
			}
			var ce *moqtransport.ConnError
			if !errors.As(err2, &ce) || ce.Code != moqtransport.ProtocolViolation || ce.Remote {
				t.Fatalf("reading after the session closed: %v, want the local ConnError PROTOCOL_VIOLATION", err2)
			}
		})
		t.Run("track closed by the application", func(t *testing.T) {
			_, _, sub, ctx := servedSub(t, scheme)
			mine := errors.New("closed here")
			sub.Track().Close(mine)
			if _, err := sub.ReadObject(ctx); err != mine {
				t.Fatalf("ReadObject of a track closed by the application: %v, want its error", err)
			}
		})
	})
}

// TestUpdateAfterEnd: Update on an ended subscription sends nothing and
// says so.
func TestUpdateAfterEnd(t *testing.T) {
	_, _, sub, ctx := servedSub(t, "moqt")
	_ = sub.Unsubscribe()
	if err := sub.Update(ctx, moqtransport.UpdateOptions{Priority: 3}); !errors.Is(err, moqtransport.ErrSubscriptionEnded) {
		t.Fatalf("Update after Unsubscribe: %v, want ErrSubscriptionEnded", err)
	}
}

// TestRequestErrorIs: errors.Is matches request errors by what their
// codes mean.
func TestRequestErrorIs(t *testing.T) {
	re := func(m wire.MessageType, code uint64) error {
		return &moqtransport.RequestError{Message: m, Code: code, Reason: "r"}
	}
	for _, c := range []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same code", re(wire.TypeSubscribeError, 4), moqtransport.ErrTrackNotFound, true},
		{"track status shares the subscribe registry", re(wire.TypeTrackStatusError, 4), moqtransport.ErrTrackNotFound, true},
		{"FETCH_ERROR TRACK_DOES_NOT_EXIST", re(wire.TypeFetchError, 4), moqtransport.ErrTrackNotFound, true},
		{"PUBLISH_DONE 0x4 is GOING_AWAY", re(wire.TypePublishDone, 4), moqtransport.ErrTrackNotFound, false},
		{"PUBLISH_ERROR 0x4 is UNINTERESTED", re(wire.TypePublishError, 4), moqtransport.ErrTrackNotFound, false},
		{"other code", re(wire.TypeSubscribeError, 5), moqtransport.ErrTrackNotFound, false},
		{"wrapped", errors.Join(errors.New("x"), re(wire.TypeSubscribeError, 4)), moqtransport.ErrTrackNotFound, true},
		{"unauthorized subscribe", re(wire.TypeSubscribeError, 1), moqtransport.ErrUnauthorized, true},
		{"unauthorized namespace", re(wire.TypePublishNamespaceError, 1), moqtransport.ErrUnauthorized, true},
		{"unauthorized publish done", re(wire.TypePublishDone, 1), moqtransport.ErrUnauthorized, true},
		{"expired token", re(wire.TypeSubscribeNamespaceError, 0x12), moqtransport.ErrExpiredToken, true},
		{"malformed token", re(wire.TypeFetchError, 0x10), moqtransport.ErrMalformedToken, true},
		{"not a token code", re(wire.TypeFetchError, 0x12), moqtransport.ErrMalformedToken, false},
		{"malformed track", re(wire.TypePublishDone, 7), moqtransport.ErrMalformedTrack, true},
		{"fetch malformed track", re(wire.TypeFetchError, 9), moqtransport.ErrMalformedTrack, true},
		{"unknown code, same registry", re(wire.TypeFetchError, 0x99), re(wire.TypeFetchError, 0x99), true},
		{"unknown code, other registry", re(wire.TypeFetchError, 0x99), re(wire.TypeSubscribeError, 0x99), false},
		{"namespace cancel shares the registry", re(wire.TypePublishNamespaceCancel, 4), moqtransport.NamespaceError(moqtransport.NamespaceUninterested, ""), true},
		{"session error", re(wire.TypeSubscribeError, 3), &moqtransport.SessionError{Code: moqtransport.ProtocolViolation}, false},
	} {
		if got := errors.Is(c.err, c.target); got != c.want {
			t.Errorf("%s: errors.Is(%v, %v) = %v, want %v", c.name, c.err, c.target, got, c.want)
		}
	}
}

// TestCloseErrors: Session.Err is a *ConnError whichever side closed and
// why; Close returns nil for a session it closes, one the application
// already closed, or one the peer closed with NO_ERROR, and the error
// otherwise.
func TestCloseErrors(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := newEnv(t, scheme, nil)

		// The peer closes with a code: our Close reports it.
		client, server := e.dial(nil)
		if err := server.CloseWithError(moqtransport.TooManyRequests, "enough"); err != nil {
			t.Fatalf("server CloseWithError: %v", err)
		}
		<-client.Done()
		var ce *moqtransport.ConnError
		if err := client.Err(); !errors.As(err, &ce) || ce.Code != moqtransport.TooManyRequests || !ce.Remote || ce.Reason != "enough" {
			t.Fatalf("client Err: %v, want the peer's TOO_MANY_REQUESTS", err)
		}
		if !errors.Is(client.Err(), &moqtransport.SessionError{Code: moqtransport.TooManyRequests}) || errors.Is(client.Err(), &moqtransport.SessionError{Code: moqtransport.NoError}) {
			t.Errorf("errors.Is does not match %v by its code", client.Err())
		}
		if err := client.Close(); !errors.As(err, &ce) || ce.Code != moqtransport.TooManyRequests {
			t.Errorf("Close after the peer closed with an error: %v, want that error", err)
		}
		if err := server.Close(); err != nil {
			t.Errorf("Close after the application's own CloseWithError: %v, want nil", err)
		}

		// A clean close by the peer: Close returns nil.
		client, server = e.dial(nil)
		if err := server.Close(); err != nil {
			t.Fatalf("server Close: %v", err)
		}
		<-client.Done()
		if err := client.Close(); err != nil {
			t.Errorf("Close after the peer closed with NO_ERROR: %v, want nil", err)
		}

		// We close because the peer broke a rule: Err wraps the cause.
		rs := newHostileServer(t, scheme, moqtransport.Config{})
		client = rs.connect()
		rs.send(&wire.GoAway{}, &wire.GoAway{})
		rs.expectClose(wire.ProtocolViolation)
		<-client.Done()
		var se *moqtransport.SessionError
		if err := client.Err(); !errors.As(err, &ce) || ce.Code != moqtransport.ProtocolViolation || ce.Remote || !errors.As(err, &se) {
			t.Fatalf("client Err after a malformed SUBSCRIBE: %v, want a local ConnError PROTOCOL_VIOLATION wrapping the SessionError", err)
		}
		if err := client.Close(); !errors.Is(err, &moqtransport.SessionError{Code: moqtransport.ProtocolViolation}) {
			t.Errorf("Close after closing for a violation: %v, want the violation", err)
		}
	})
}

// TestNamespaceSubscriptionNext: the default Handler accepts the
// namespaces under a prefix the session subscribed to and refuses others;
// Next reports them and their withdrawal, skips a namespace withdrawn
// before it was reported, and ends with the session.
func TestNamespaceSubscriptionNext(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{})
		client := rs.connect()
		ctx := timeout(t)
		type result struct {
			n   *moqtransport.NamespaceSubscription
			err error
		}
		ch := make(chan result, 1)
		go func() {
			n, err := client.SubscribeNamespace(ctx, moqtransport.NewNamespace("p"), nil)
			ch <- result{n, err}
		}()
		sn, ok := rs.next().(*wire.SubscribeNamespace)
		if !ok {
			t.Fatal("no SUBSCRIBE_NAMESPACE")
		}
		rs.send(&wire.SubscribeNamespaceOK{RequestID: sn.RequestID})
		r := <-ch
		if r.err != nil {
			t.Fatal(r.err)
		}
		announce := func(id uint64, ns wire.Namespace) wire.Message {
			t.Helper()
			rs.send(&wire.PublishNamespace{RequestID: id, Namespace: ns})
			return rs.next()
		}
		if m, ok := announce(1, wire.Namespace{"p", "a"}).(*wire.PublishNamespaceOK); !ok || m.RequestID != 1 {
			t.Fatalf("PUBLISH_NAMESPACE under the prefix: got %#v, want PUBLISH_NAMESPACE_OK", m)
		}
		if m, ok := announce(3, wire.Namespace{"q"}).(*wire.PublishNamespaceError); !ok || m.Code != wire.NamespaceNotSupported {
			t.Fatalf("PUBLISH_NAMESPACE outside the prefix: got %#v, want NOT_SUPPORTED", m)
		}
		if ev, err := r.n.Next(ctx); err != nil || !ev.Namespace.Equal(wire.Namespace{"p", "a"}) || !ev.Active {
			t.Fatalf("Next: %+v, %v; want p/a published", ev, err)
		}
		// Published and withdrawn before Next looks: not reported.
		if _, ok := announce(5, wire.Namespace{"p", "b"}).(*wire.PublishNamespaceOK); !ok {
			t.Fatal("p/b refused")
		}
		rs.send(&wire.PublishNamespaceDone{Namespace: wire.Namespace{"p", "b"}}, &wire.PublishNamespaceDone{Namespace: wire.Namespace{"p", "a"}})
		// The session reads its control stream in order: once this is
		// answered, the withdrawals have been handled.
		if _, ok := announce(7, wire.Namespace{"q"}).(*wire.PublishNamespaceError); !ok {
			t.Fatal("no answer to a PUBLISH_NAMESPACE behind the withdrawals")
		}
		if ev, err := r.n.Next(ctx); err != nil || !ev.Namespace.Equal(wire.Namespace{"p", "a"}) || ev.Active {
			t.Fatalf("Next: %+v, %v; want p/a withdrawn", ev, err)
		}
		_ = client.CloseWithError(moqtransport.NoError, "done")
		if _, err := r.n.Next(ctx); !errors.Is(err, moqtransport.ErrSessionClosed) {
			t.Fatalf("Next after the session ended: %v, want ErrSessionClosed", err)
		}
	})
}
