package relay_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// What a request's own token grants ends at that token's exp, while the
// session goes on: a subscription with PUBLISH_DONE UNAUTHORIZED, a
// namespace with PUBLISH_NAMESPACE_CANCEL EXPIRED_AUTH_TOKEN (and its
// coordinator registration), a pushed track with UNSUBSCRIBE (and its
// registration). The sessions have no token of their own.
func TestRequestTokenExpiry(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		t.Parallel()
		coord := &recordingCoordinator{}
		e := startRelayWith(t, scheme, relay.Config{Auth: hmacAuth(t), Coordinator: coord})
		ctx := ctxFor(t)
		hour := time.Now().Add(time.Hour)
		// JWT exp has a precision of a second. Five dials and four
		// requests use the short tokens before they expire: at least
		// three seconds ahead, so a busy machine (load 15+ on two
		// cores) does not expire one before its request arrives.
		exp := time.Now().Add(4 * time.Second).Truncate(time.Second)
		if time.Until(exp) < 3*time.Second {
			exp = exp.Add(time.Second)
		}

		// A long-lived publisher of live/v, and a short-lived
		// subscription to it.
		h := &countingTracks{}
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"live"}, Name: "v"}, moqtransport.TrackConfig{})
		h.Add(tr)
		pubSess, _, err := e.dialCfg("/", moqtransport.Config{Handler: h.Handler()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pubSess.PublishNamespace(ctx, wire.Namespace{"live"}, userToken(t, []string{"live"}, nil, hour)); err != nil {
			t.Fatal(err)
		}
		subSess, _, err := e.dialCfg("/", moqtransport.Config{})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := subSess.Subscribe(ctx, wire.Namespace{"live"}, "v", moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{"live"}, exp)})
		if err != nil {
			t.Fatalf("SUBSCRIBE with its own token: %v", err)
		}

		// A short-lived namespace.
		nsSess, _, err := e.dialCfg("/", moqtransport.Config{Handler: (&countingTracks{}).Handler()})
		if err != nil {
			t.Fatal(err)
		}
		nsPub, err := nsSess.PublishNamespace(ctx, wire.Namespace{"short"}, userToken(t, []string{"short"}, nil, exp))
		if err != nil {
			t.Fatalf("PUBLISH_NAMESPACE with its own token: %v", err)
		}

		// A short-lived pushed track.
		pushSess, _, err := e.dialCfg("/", moqtransport.Config{})
		if err != nil {
			t.Fatal(err)
		}
		pushTrack := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"pushed"}, Name: "t"}, moqtransport.TrackConfig{})
		publication, err := pushSess.Publish(ctx, pushTrack, moqtransport.PublishOptions{Params: userToken(t, []string{"pushed"}, nil, exp)})
		if err != nil {
			t.Fatalf("PUBLISH with its own token: %v", err)
		}
		// A long-lived pushed track, forwarded to a short-lived namespace
		// subscription.
		fwd := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"fwd", "b"}, Name: "t"}, moqtransport.TrackConfig{})
		fwdPub, err := pubSess.Publish(ctx, fwd, moqtransport.PublishOptions{Params: userToken(t, []string{"fwd"}, nil, hour)})
		if err != nil {
			t.Fatal(err)
		}
		p := &pushed{subs: make(chan *moqtransport.Subscription, 2)}
		watcher, _, err := e.dialCfg("/", moqtransport.Config{Handler: p.Handler()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := watcher.SubscribeNamespace(ctx, wire.Namespace{"fwd"}, userToken(t, nil, []string{"fwd"}, exp)); err != nil {
			t.Fatalf("SUBSCRIBE_NAMESPACE with its own token: %v", err)
		}
		var forwarded *moqtransport.Subscription
		select {
		case forwarded = <-p.subs:
		case <-ctx.Done():
			t.Fatal("the namespace subscriber got no PUBLISH")
		}
		if got := coord.registered(); got["|live"] != 1 || got["|short"] != 1 || got["|pushed"] != 1 {
			t.Fatalf("registered before exp: %v", got)
		}

		wait := func(what string, done <-chan struct{}) {
			t.Helper()
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatalf("%s outlived its token", what)
			}
			if now := time.Now(); now.Before(exp) {
				t.Errorf("%s ended %v before its token's exp", what, exp.Sub(now))
			}
		}
		wait("the subscription", sub.Done())
		wantRequestCode(t, "the expired subscription", sub.Err(), uint64(wire.DoneUnauthorized))
		wait("the namespace", nsPub.Done())
		wantRequestCode(t, "the expired namespace", nsPub.Err(), uint64(wire.NamespaceExpiredAuthToken))
		wait("the pushed track", publication.Done())
		wait("the track forwarded to the namespace subscription", forwarded.Done())
		wantRequestCode(t, "the track forwarded to the expired namespace subscription", forwarded.Err(), uint64(wire.DoneUnauthorized))
		select {
		case <-fwdPub.Done():
			t.Error("the forwarded track's own publication ended with the namespace subscription's token")
		default:
		}

		// Nothing granted under the expired tokens stays: not the
		// registrations, not the upstream subscription, not the routes.
		waitFor(t, "the expired registrations to go", func() bool {
			got := coord.registered()
			return len(got) == 2 && got["|live"] == 1 && got["|fwd/b"] == 1
		})
		waitFor(t, "the relay to unsubscribe upstream", func() bool { return h.ended.Load() == 1 })
		for _, ns := range []string{"short", "pushed"} {
			sub2, err := subSess.Subscribe(ctx, wire.Namespace{ns}, "t", moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{""}, hour)})
			if err == nil {
				_ = sub2.Unsubscribe()
			}
			wantRequestCode(t, "a track under the expired "+ns, err, uint64(wire.SubscribeTrackDoesNotExist))
		}
		// The sessions go on, and a new token grants again.
		for i, s := range []*moqtransport.Session{pubSess, subSess, nsSess, pushSess, watcher} {
			if s.Context().Err() != nil {
				t.Fatalf("session %d ended with its request's token: %v", i, s.Err())
			}
		}
		if _, err := nsSess.PublishNamespace(ctx, wire.Namespace{"short"}, userToken(t, []string{"short"}, nil, hour)); err != nil {
			t.Errorf("PUBLISH_NAMESPACE again with a new token: %v", err)
		}
		again, err := subSess.Subscribe(ctx, wire.Namespace{"live"}, "v", moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{"live"}, hour)})
		if err != nil {
			t.Fatalf("SUBSCRIBE again with a new token: %v", err)
		}
		_ = again.Unsubscribe()
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatal("timed out")
		}
	})
}

// A subscription's expiry timer goes with the subscription: many
// subscriptions with tokens of their own leave nothing once they end.
func TestRequestTokenTimersStop(t *testing.T) {
	e := startRelayWith(t, "moqt", relay.Config{Auth: hmacAuth(t)})
	ctx := ctxFor(t)
	hour := time.Now().Add(time.Hour)
	h := &countingTracks{}
	const n = 50
	for i := range n {
		h.Add(moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"live"}, Name: fmt.Sprint(i)}, moqtransport.TrackConfig{}))
	}
	pubSess, _, err := e.dialCfg("/", moqtransport.Config{Handler: h.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pubSess.PublishNamespace(ctx, wire.Namespace{"live"}, userToken(t, []string{"live"}, nil, hour)); err != nil {
		t.Fatal(err)
	}
	subSess, _, err := e.dialCfg("/", moqtransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var subs []*moqtransport.Subscription
	for i := range n {
		sub, err := subSess.Subscribe(ctx, wire.Namespace{"live"}, fmt.Sprint(i), moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{"live"}, hour)})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	if got := relay.PendingGrants(e.rs.Relay); got != n {
		t.Errorf("%d expiry timers for %d subscriptions with their own token", got, n)
	}
	for _, sub := range subs {
		_ = sub.Unsubscribe()
	}
	waitFor(t, "every subscription to end upstream", func() bool { return h.ended.Load() == n })
	waitFor(t, "the expiry timers to go", func() bool { return relay.PendingGrants(e.rs.Relay) == 0 })
}

// A SUBSCRIBE_NAMESPACE the session refuses itself (its prefix overlaps
// one of the peer's others) never reaches the relay's handler, so the
// relay must not note a grant for it: repeated, such requests would
// otherwise pile up notes for the session's life.
func TestRequestTokenOverlapNotesNothing(t *testing.T) {
	e := startRelayWith(t, "moqt", relay.Config{Auth: hmacAuth(t)})
	ctx := ctxFor(t)
	hour := time.Now().Add(time.Hour)
	s, _, err := e.dialCfg("/", moqtransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SubscribeNamespace(ctx, wire.Namespace{"live"}, userToken(t, nil, []string{"live"}, hour)); err != nil {
		t.Fatal(err)
	}
	base := relay.PendingGrants(e.rs.Relay)
	for range 20 {
		var re *moqtransport.RequestError
		if _, err := s.SubscribeNamespace(ctx, wire.Namespace{"live", "a"}, userToken(t, nil, []string{"live"}, hour)); !errors.As(err, &re) || re.Code != uint64(wire.NamespacePrefixOverlap) {
			t.Fatalf("overlapping SUBSCRIBE_NAMESPACE: %v, want NAMESPACE_PREFIX_OVERLAP", err)
		}
	}
	if got := relay.PendingGrants(e.rs.Relay); got != base {
		t.Errorf("%d grants noted after 20 refused overlapping SUBSCRIBE_NAMESPACEs, want %d", got, base)
	}
}

// slowFetches answers FETCH for the relay: "undecided" never (until the
// request ends), anything else with one object and then nothing more
// until the fetch ends.
func slowFetches() moqtransport.Handler {
	return moqtransport.Handler{Fetch: func(ctx context.Context, _ *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
		if req.Name == "undecided" {
			<-ctx.Done()
			return nil, ctx.Err()
		}
		sent := false
		return &moqtransport.FetchResponse{End: req.End, Next: func(ctx context.Context) (*moqtransport.Object, error) {
			if !sent {
				sent = true
				return &moqtransport.Object{Group: req.Start.Group, ID: 0, Payload: []byte("first")}, nil
			}
			<-ctx.Done()
			return nil, ctx.Err()
		}}, nil
	}}
}

// A FETCH granted by its own token ends at that token's exp: one still
// waiting for the publisher's answer with FETCH_ERROR EXPIRED_AUTH_TOKEN,
// one whose objects are being sent with its stream reset (CANCELLED). The
// session goes on, and nothing of the grants stays.
func TestRequestTokenExpiryFetch(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		t.Parallel()
		e := startRelayWith(t, scheme, relay.Config{Auth: hmacAuth(t), UpstreamTimeout: time.Minute})
		ctx := ctxFor(t)
		hour := time.Now().Add(time.Hour)
		exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
		if time.Until(exp) < time.Second {
			exp = exp.Add(time.Second)
		}
		ns := wire.Namespace{"vod"}
		pubSess, _, err := e.dialCfg("/", moqtransport.Config{Handler: slowFetches()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pubSess.PublishNamespace(ctx, ns, userToken(t, []string{"vod"}, nil, hour)); err != nil {
			t.Fatal(err)
		}
		subSess, _, err := e.dialCfg("/", moqtransport.Config{})
		if err != nil {
			t.Fatal(err)
		}
		opts := func(name string) moqtransport.FetchOptions {
			return moqtransport.FetchOptions{Namespace: ns, Name: name, Start: wire.Location{Group: 1}, End: wire.Location{Group: 5},
				Params: userToken(t, nil, []string{"vod"}, exp)}
		}
		undecided := make(chan error, 1)
		go func() {
			_, err := subSess.Fetch(ctx, opts("undecided"))
			undecided <- err
		}()
		f, err := subSess.Fetch(ctx, opts("slow"))
		if err != nil {
			t.Fatalf("FETCH with its own token: %v", err)
		}
		if o, err := f.ReadObject(ctx); err != nil || string(o.Payload) != "first" {
			t.Fatalf("the first fetched object: %v, %v", o, err)
		}
		_, err = f.ReadObject(ctx)
		if now := time.Now(); now.Before(exp) {
			t.Errorf("the fetch ended %v before its token's exp", exp.Sub(now))
		}
		var se *moqtransport.StreamError
		if !errors.As(err, &se) || se.Code != uint64(wire.ResetCancelled) {
			t.Fatalf("a fetch sending objects at its token's exp: %v, want its stream reset with CANCELLED", err)
		}
		select {
		case err = <-undecided:
		case <-ctx.Done():
			t.Fatal("the undecided fetch outlived its token")
		}
		wantRequestCode(t, "a fetch undecided at its token's exp", err, uint64(wire.FetchExpiredAuthToken))
		if subSess.Context().Err() != nil {
			t.Fatalf("the session ended with its fetches' token: %v", subSess.Err())
		}
		// A new token fetches again.
		again := opts("slow")
		again.Params = userToken(t, nil, []string{"vod"}, hour)
		f2, err := subSess.Fetch(ctx, again)
		if err != nil {
			t.Fatalf("FETCH again with a new token: %v", err)
		}
		_ = f2.Cancel()
		waitFor(t, "the grants to go", func() bool { return relay.PendingGrants(e.rs.Relay) == 0 })
	})
}

// A FETCH the session refuses itself (a range that ends before it starts)
// never reaches the relay's handler, so its token's grant is not noted.
func TestRequestTokenInvalidFetchNotesNothing(t *testing.T) {
	e := startRelayWith(t, "moqt", relay.Config{Auth: hmacAuth(t)})
	ctx := ctxFor(t)
	hour := time.Now().Add(time.Hour)
	s, _, err := e.dialCfg("/", moqtransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		_, err := s.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"vod"}, Name: "t",
			Start: wire.Location{Group: 5}, End: wire.Location{Group: 2}, Params: userToken(t, nil, []string{"vod"}, hour)})
		wantRequestCode(t, "a FETCH whose range ends before it starts", err, uint64(wire.FetchInvalidRange))
	}
	if got := relay.PendingGrants(e.rs.Relay); got != 0 {
		t.Errorf("%d grants noted after 20 FETCHes refused for their range, want 0", got)
	}
}

// A namespace subscription that ends at its token's exp frees its prefix
// in the session: the subscriber can subscribe to it again with a new
// token (it was refused with NAMESPACE_PREFIX_OVERLAP until it sent
// UNSUBSCRIBE_NAMESPACE), and is announced the namespaces again.
func TestRequestTokenExpiryFreesPrefix(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		t.Parallel()
		e := startRelayWith(t, scheme, relay.Config{Auth: hmacAuth(t)})
		ctx := ctxFor(t)
		hour := time.Now().Add(time.Hour)
		exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
		if time.Until(exp) < time.Second {
			exp = exp.Add(time.Second)
		}
		pubSess, _, err := e.dialCfg("/", moqtransport.Config{Handler: (&countingTracks{}).Handler()})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pubSess.PublishNamespace(ctx, wire.Namespace{"live", "a"}, userToken(t, []string{"live"}, nil, hour)); err != nil {
			t.Fatal(err)
		}
		watcher, _, err := e.dialCfg("/", moqtransport.Config{})
		if err != nil {
			t.Fatal(err)
		}
		next := func(n *moqtransport.NamespaceSubscription, active bool) {
			t.Helper()
			ev, err := n.Next(ctx)
			if err != nil || ev.Namespace.String() != "live/a" || ev.Active != active {
				t.Fatalf("namespace event %+v, %v; want live/a active=%v", ev, err, active)
			}
		}
		short, err := watcher.SubscribeNamespace(ctx, wire.Namespace{"live"}, userToken(t, nil, []string{"live"}, exp))
		if err != nil {
			t.Fatal(err)
		}
		next(short, true)
		next(short, false) // withdrawn at exp
		if now := time.Now(); now.Before(exp) {
			t.Errorf("the namespace subscription ended %v before its token's exp", exp.Sub(now))
		}
		again, err := watcher.SubscribeNamespace(ctx, wire.Namespace{"live"}, userToken(t, nil, []string{"live"}, hour))
		if err != nil {
			t.Fatalf("SUBSCRIBE_NAMESPACE of the expired prefix with a new token: %v", err)
		}
		// The relay announces again, to the new subscription, which took
		// over from the old one in the watcher's session.
		next(again, true)
		if _, err := short.Next(ctx); !errors.Is(err, moqtransport.ErrNamespaceSubscriptionReplaced) {
			t.Errorf("the expired subscription's Next: %v, want ErrNamespaceSubscriptionReplaced", err)
		}
	})
}
