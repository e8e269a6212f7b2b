package moqtransport_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// The publisher side ends a subscription it serves with a code of its
// choice; the session goes on.
func TestEndSubscription(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"e"}, Name: "t"}
		tracks.Add(moqtransport.NewTrack(name, moqtransport.TrackConfig{}))
		e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler()})
		client, server := e.dial(nil)
		ctx := timeout(t)
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if server.EndSubscription(sub.RequestID()+2, wire.DoneUnauthorized, "no such") {
			t.Error("EndSubscription of a request that is not a subscription reported true")
		}
		if !server.EndSubscription(sub.RequestID(), wire.DoneUnauthorized, "token expired") {
			t.Fatal("EndSubscription of a served subscription reported false")
		}
		select {
		case <-sub.Done():
		case <-ctx.Done():
			t.Fatal("the subscription did not end")
		}
		var re *moqtransport.RequestError
		if !errors.As(sub.Err(), &re) || re.Message != wire.TypePublishDone || re.Code != uint64(wire.DoneUnauthorized) || re.Reason != "token expired" {
			t.Fatalf("the subscription ended with %v, want PUBLISH_DONE UNAUTHORIZED \"token expired\"", sub.Err())
		}
		// The session goes on: the track can be subscribed again.
		again, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatalf("subscribing again: %v", err)
		}
		_ = again.Unsubscribe()
	})
}

// The receiver of a PUBLISH may UNSUBSCRIBE from it; the publisher's
// PUBLISH_DONE that follows is not a protocol violation.
func TestUnsubscribeFromPublish(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		h := &takesPublish{subs: make(chan *moqtransport.Subscription, 2)}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: moqtransport.Handler{Publish: h.Publish}})
		client, server := e.dial(nil)
		ctx := timeout(t)
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"ok"}, Name: "pushed"}, moqtransport.TrackConfig{})
		pub, err := client.Publish(ctx, tr, moqtransport.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := (<-h.subs).Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-pub.Done():
		case <-ctx.Done():
			t.Fatal("the publication did not end at UNSUBSCRIBE")
		}
		// The control stream is in order: the answer to a second PUBLISH
		// comes after the first one's PUBLISH_DONE was handled.
		second := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"ok"}, Name: "second"}, moqtransport.TrackConfig{})
		if _, err := client.Publish(ctx, second, moqtransport.PublishOptions{}); err != nil {
			t.Fatalf("a PUBLISH after the first one's PUBLISH_DONE: %v (server: %v)", err, server.Err())
		}
		<-h.subs
	})
}

// The publisher side ends a FETCH it serves: before its answer with
// FETCH_ERROR and the code given, while its objects are sent by resetting
// the fetch stream with CANCELLED; the session goes on. Over both
// transports the peer sees the stream of a FETCH ended before its first
// object, even one ended as its header is written (over WebTransport
// that failed: the reset overtook the header and the peer waited).
func TestEndFetch(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		deciding := make(chan uint64, 1)
		streaming := make(chan uint64, 1)
		h := moqtransport.Handler{Fetch: func(ctx context.Context, s *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			if req.Name == "undecided" {
				deciding <- req.RequestID
				<-ctx.Done() // ended by EndFetch
				return nil, moqtransport.FetchError(wire.FetchInternalError, "never sent")
			}
			sent := req.Name == "nothing yet" || req.Name == "ended at once"
			return &moqtransport.FetchResponse{End: wire.Location{Group: 9}, Next: func(ctx context.Context) (*moqtransport.Object, error) {
				if !sent {
					sent = true
					return &moqtransport.Object{Group: 1, ID: 0, Payload: []byte("first")}, nil
				}
				if req.Name == "ended at once" {
					// Ended as the header is written: the reset follows
					// it at once.
					s.EndFetch(req.RequestID, wire.FetchExpiredAuthToken, "token expired")
					<-ctx.Done()
					return nil, ctx.Err()
				}
				streaming <- req.RequestID
				<-ctx.Done() // the rest never comes: ended by EndFetch
				return nil, ctx.Err()
			}}, nil
		}}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: h})
		client, server := e.dial(nil)
		ctx := timeout(t)

		errc := make(chan error, 1)
		go func() {
			_, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"f"}, Name: "undecided", End: wire.Location{Group: 3}})
			errc <- err
		}()
		id := <-deciding
		if server.EndFetch(id+2, wire.FetchExpiredAuthToken, "no such") {
			t.Error("EndFetch of a request that is not a FETCH reported true")
		}
		if !server.EndFetch(id, wire.FetchExpiredAuthToken, "token expired") {
			t.Fatal("EndFetch of a FETCH being decided reported false")
		}
		var re *moqtransport.RequestError
		if err := <-errc; !errors.As(err, &re) || re.Message != wire.TypeFetchError || re.Code != uint64(wire.FetchExpiredAuthToken) || re.Reason != "token expired" {
			t.Fatalf("a FETCH ended before its answer: %v, want FETCH_ERROR EXPIRED_AUTH_TOKEN \"token expired\"", err)
		}

		f, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"f"}, Name: "slow", Start: wire.Location{Group: 1}, End: wire.Location{Group: 3}})
		if err != nil {
			t.Fatal(err)
		}
		if o, err := f.ReadObject(ctx); err != nil || string(o.Payload) != "first" {
			t.Fatalf("first object: %v %v", o, err)
		}
		if !server.EndFetch(<-streaming, wire.FetchExpiredAuthToken, "token expired") {
			t.Fatal("EndFetch of a FETCH sending objects reported false")
		}
		_, err = f.ReadObject(ctx)
		var se *moqtransport.StreamError
		if !errors.As(err, &se) || se.Code != uint64(wire.ResetCancelled) {
			t.Fatalf("a FETCH ended while streaming: %v, want its stream reset with CANCELLED", err)
		}
		// Ended before its first object: the stream still comes, its
		// header delivered, then reset (raw QUIC: the header marked
		// reliable with RESET_STREAM_AT; WebTransport, where
		// webtransport-go cannot mark it: reset once the header has
		// settled).
		f, err = client.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"f"}, Name: "nothing yet", Start: wire.Location{Group: 1}, End: wire.Location{Group: 3}})
		if err != nil {
			t.Fatal(err)
		}
		if !server.EndFetch(<-streaming, wire.FetchExpiredAuthToken, "token expired") {
			t.Fatal("EndFetch of a FETCH waiting for its first object reported false")
		}
		if _, err = f.ReadObject(ctx); !errors.As(err, &se) || se.Code != uint64(wire.ResetCancelled) {
			t.Fatalf("a FETCH ended before its first object: %v, want its stream reset with CANCELLED", err)
		}
		f, err = client.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"f"}, Name: "ended at once", Start: wire.Location{Group: 1}, End: wire.Location{Group: 3}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err = f.ReadObject(ctx); !errors.As(err, &se) || se.Code != uint64(wire.ResetCancelled) {
			t.Fatalf("a FETCH ended as its header was written: %v, want its stream reset with CANCELLED", err)
		}
		if client.Context().Err() != nil || server.Context().Err() != nil {
			t.Fatalf("the session ended: %v / %v", client.Err(), server.Err())
		}
	})
}

// The publisher side ends one of the peer's namespace subscriptions:
// an accepted one is forgotten, its prefix free for a new
// SUBSCRIBE_NAMESPACE, which takes over from the old one on the peer's
// side; one still being decided is refused with the code given once the
// handler returns.
func TestEndNamespaceSubscription(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		deciding := make(chan struct{}, 1)
		decide := make(chan struct{})
		unsubscribed := make(chan wire.Namespace, 4)
		h := moqtransport.Handler{
			SubscribeNamespace: func(_ context.Context, _ *moqtransport.Session, req *moqtransport.SubscribeNamespaceRequest) error {
				if req.Prefix.String() == "slow" {
					deciding <- struct{}{}
					<-decide
				}
				return nil
			},
			UnsubscribeNamespace: func(_ *moqtransport.Session, prefix moqtransport.Namespace) { unsubscribed <- prefix },
		}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: h})
		client, server := e.dial(nil)
		ctx := timeout(t)
		prefix := moqtransport.NewNamespace("live")
		first, err := client.SubscribeNamespace(ctx, prefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		held := moqtransport.NewNamespace("live", "a")
		heldPub, err := server.PublishNamespace(ctx, held, nil)
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := first.Next(ctx); err != nil || !ev.Namespace.Equal(held) || !ev.Active {
			t.Fatalf("first event %+v, %v; want live/a active", ev, err)
		}
		if server.EndNamespaceSubscription(moqtransport.NewNamespace("other"), wire.SubscribeNamespaceExpiredAuthToken, "no such") {
			t.Error("EndNamespaceSubscription of a prefix the peer did not subscribe to reported true")
		}
		if !server.EndNamespaceSubscription(prefix, wire.SubscribeNamespaceExpiredAuthToken, "token expired") {
			t.Fatal("EndNamespaceSubscription of an accepted namespace subscription reported false")
		}
		if server.EndNamespaceSubscription(prefix, wire.SubscribeNamespaceExpiredAuthToken, "token expired") {
			t.Error("EndNamespaceSubscription twice reported true")
		}
		// The prefix is free again: a new SUBSCRIBE_NAMESPACE of it is no
		// overlap, and takes over from the old one in the client's
		// session, whose Close then sends nothing.
		second, err := client.SubscribeNamespace(ctx, prefix, nil)
		if err != nil {
			t.Fatalf("subscribing to the prefix again: %v", err)
		}
		if _, err := first.Next(ctx); !errors.Is(err, moqtransport.ErrNamespaceSubscriptionReplaced) {
			t.Errorf("the ended subscription's Next: %v, want ErrNamespaceSubscriptionReplaced", err)
		}
		// The namespace the session holds under the prefix is the new
		// subscription's now.
		if ev, err := second.Next(ctx); err != nil || !ev.Namespace.Equal(held) || !ev.Active {
			t.Fatalf("the new subscription's first event %+v, %v; want live/a active", ev, err)
		}
		_ = heldPub.Close()
		if ev, err := second.Next(ctx); err != nil || !ev.Namespace.Equal(held) || ev.Active {
			t.Fatalf("the new subscription's event %+v, %v; want live/a withdrawn", ev, err)
		}
		if err := first.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := client.TrackStatus(ctx, prefix, "x"); err == nil { // a round trip behind the Close
			t.Fatal("TRACK_STATUS answered by a session that serves none")
		}
		select {
		case got := <-unsubscribed:
			t.Fatalf("the replaced subscription's Close unsubscribed %v", got)
		default:
		}
		// One still being decided is refused with the code given.
		errc := make(chan error, 1)
		go func() {
			_, err := client.SubscribeNamespace(ctx, moqtransport.NewNamespace("slow"), nil)
			errc <- err
		}()
		<-deciding
		if !server.EndNamespaceSubscription(moqtransport.NewNamespace("slow"), wire.SubscribeNamespaceExpiredAuthToken, "token expired") {
			t.Fatal("EndNamespaceSubscription of a namespace subscription being decided reported false")
		}
		close(decide)
		var re *moqtransport.RequestError
		if err := <-errc; !errors.As(err, &re) || re.Code != uint64(wire.SubscribeNamespaceExpiredAuthToken) || re.Reason != "token expired" {
			t.Fatalf("a namespace subscription ended while decided: %v, want SUBSCRIBE_NAMESPACE_ERROR EXPIRED_AUTH_TOKEN", err)
		}
		if got := <-unsubscribed; got.String() != "slow" {
			t.Errorf("the handler was told of the end of %v, want slow (it had accepted it)", got)
		}
		// The new subscription's Close ends it.
		_ = second.Close()
		if got := <-unsubscribed; got.String() != "live" {
			t.Errorf("UNSUBSCRIBE_NAMESPACE reached the handler for %v", got)
		}
		if client.Context().Err() != nil || server.Context().Err() != nil {
			t.Fatalf("the session ended: %v / %v", client.Err(), server.Err())
		}
	})
}

// After PUBLISH_DONE the peer may SUBSCRIBE to the track again at once,
// even while the ended subscription is still winding down on this side
// (here: its SubscriptionEnded callback has not returned). The new
// SUBSCRIBE is not "a second SUBSCRIBE for the track" (it closed the
// session with PROTOCOL_VIOLATION, 3 runs in 200, before).
func TestResubscribeRightAfterPublishDone(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"e"}, Name: "t"}
		tracks.Add(moqtransport.NewTrack(name, moqtransport.TrackConfig{}))
		winding := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		h := tracks.Handler()
		h.SubscriptionEnded = func(*moqtransport.Session, *moqtransport.SubscribeRequest, *moqtransport.Track) {
			once.Do(func() {
				close(winding)
				<-release
			})
		}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: h})
		client, server := e.dial(nil)
		ctx := timeout(t)
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !server.EndSubscription(sub.RequestID(), wire.DoneTrackEnded, "ended") {
			t.Fatal("EndSubscription of a served subscription reported false")
		}
		select {
		case <-sub.Done():
		case <-ctx.Done():
			t.Fatal("the subscription did not end")
		}
		select {
		case <-winding:
		case <-ctx.Done():
			t.Fatal("SubscriptionEnded was not called")
		}
		again, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
		close(release)
		if err != nil {
			t.Fatalf("subscribing again right after PUBLISH_DONE: %v", err)
		}
		if err := client.Context().Err(); err != nil {
			t.Fatalf("the session ended: %v", client.Err())
		}
		_ = again.Unsubscribe()
	})
}
