package relay_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// gatedTracks serves tracks, but holds each SUBSCRIBE until the test
// opens the gate: the relay's upstream SUBSCRIBE stays unanswered for as
// long as the test needs. asked receives each SUBSCRIBE's context as it
// arrives.
type gatedTracks struct {
	moqtransport.Tracks
	asked chan context.Context
	gate  chan struct{}
}

func newGatedTracks(ns wire.Namespace, name string) (*gatedTracks, *moqtransport.Track) {
	g := &gatedTracks{asked: make(chan context.Context, 4), gate: make(chan struct{})}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: name}, moqtransport.TrackConfig{})
	g.Add(tr)
	return g, tr
}

func (g *gatedTracks) Handler() moqtransport.Handler {
	h := g.Tracks.Handler()
	subscribe := h.Subscribe
	h.Subscribe = func(ctx context.Context, s *moqtransport.Session, req *wire.Subscribe) (*moqtransport.Track, error) {
		g.asked <- ctx
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return subscribe(ctx, s, req)
	}
	return h
}

type subscribeResult struct {
	sub *moqtransport.Subscription
	err error
}

func subscribeAsync(ctx context.Context, s *moqtransport.Session, ns wire.Namespace, name string) <-chan subscribeResult {
	c := make(chan subscribeResult, 1)
	go func() {
		sub, err := s.Subscribe(ctx, ns, name, moqtransport.SubscribeOptions{})
		c <- subscribeResult{sub, err}
	}()
	return c
}

func wantAsked(t *testing.T, ctx context.Context, g *gatedTracks) context.Context {
	t.Helper()
	select {
	case c := <-g.asked:
		return c
	case <-ctx.Done():
		t.Fatal("the publisher got no upstream SUBSCRIBE")
		return nil
	}
}

// The shared upstream SUBSCRIBE belongs to the track, not to the
// subscriber that asked first: when that one leaves before the
// publisher answers, the others still get the track from the same
// upstream request.
func TestUpstreamSubscribeOutlivesFirstSubscriber(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"live"}
		g, tr := newGatedTracks(ns, "video")
		if _, err := e.connect("/", g).PublishNamespace(ctxFor(t), ns, nil); err != nil {
			t.Fatal(err)
		}
		ctx := ctxFor(t)
		firstCtx, leave := context.WithCancel(ctx)
		defer leave()
		first := subscribeAsync(firstCtx, e.connect("/", nil), ns, "video")
		upCtx := wantAsked(t, ctx, g)
		second := subscribeAsync(ctx, e.connect("/", nil), ns, "video")
		waitFor(t, "the second subscriber to wait for the track", func() bool {
			return relay.TrackRefs(e.rs.Relay, "", ns, "video") == 2
		})
		leave()
		if r := <-first; r.err == nil {
			t.Fatal("the first subscriber's SUBSCRIBE succeeded after it gave up")
		}
		waitFor(t, "the first subscriber to leave", func() bool {
			return relay.TrackRefs(e.rs.Relay, "", ns, "video") <= 1
		})
		if upCtx.Err() != nil {
			t.Fatal("the upstream SUBSCRIBE was cancelled when its first subscriber left")
		}
		close(g.gate)
		var r subscribeResult
		select {
		case r = <-second:
		case <-ctx.Done():
			t.Fatal("the second subscriber got no answer")
		}
		if r.err != nil {
			t.Fatalf("the second subscriber: %v, want the track", r.err)
		}
		got := readAsync(ctx, r.sub.Track())
		write(t, tr, 0, 2, 2)
		tr.Close(nil)
		wantObjects(t, "the second subscriber", got, expected(0, 2, 2))
		select {
		case <-g.asked:
			t.Error("the relay subscribed upstream twice")
		default:
		}
	})
}

// When the last waiting subscriber leaves, the upstream SUBSCRIBE ends
// with it (UNSUBSCRIBE reaches the publisher), and nothing of the track
// stays: a later subscriber subscribes upstream again.
func TestUpstreamSubscribeEndsWithLastWaiter(t *testing.T) {
	e := startRelay(t, "moqt")
	ns := wire.Namespace{"live"}
	g, _ := newGatedTracks(ns, "video")
	if _, err := e.connect("/", g).PublishNamespace(ctxFor(t), ns, nil); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	subCtx, leave := context.WithCancel(ctx)
	sess := e.connect("/", nil)
	first := subscribeAsync(subCtx, sess, ns, "video")
	upCtx := wantAsked(t, ctx, g)
	leave()
	<-first
	select {
	case <-upCtx.Done():
	case <-ctx.Done():
		t.Fatal("the upstream SUBSCRIBE outlived its last subscriber")
	}
	waitFor(t, "the track to go", func() bool { return relay.TrackRefs(e.rs.Relay, "", ns, "video") == -1 })
	close(g.gate)
	again := subscribeAsync(ctx, sess, ns, "video")
	wantAsked(t, ctx, g)
	if r := <-again; r.err != nil {
		t.Fatalf("subscribing again: %v", r.err)
	}
}

// An upstream SUBSCRIBE ends with its upstream session, and at
// UpstreamTimeout with TIMEOUT: either way every waiting subscriber gets
// an answer.
func TestUpstreamSubscribeBounded(t *testing.T) {
	t.Run("publisher leaves", func(t *testing.T) {
		e := startRelayWith(t, "moqt", relay.Config{UpstreamTimeout: time.Minute})
		ns := wire.Namespace{"live"}
		g, _ := newGatedTracks(ns, "video")
		pub := e.connect("/", g)
		if _, err := pub.PublishNamespace(ctxFor(t), ns, nil); err != nil {
			t.Fatal(err)
		}
		ctx := ctxFor(t)
		a := subscribeAsync(ctx, e.connect("/", nil), ns, "video")
		wantAsked(t, ctx, g)
		b := subscribeAsync(ctx, e.connect("/", nil), ns, "video")
		waitFor(t, "both subscribers to wait", func() bool { return relay.TrackRefs(e.rs.Relay, "", ns, "video") == 2 })
		_ = pub.Close()
		for i, c := range []<-chan subscribeResult{a, b} {
			r := <-c
			if !errors.Is(r.err, moqtransport.SubscribeError(wire.SubscribeInternalError, "")) {
				t.Errorf("subscriber %d: %v, want INTERNAL_ERROR", i, r.err)
			}
		}
		waitFor(t, "the track to go", func() bool { return relay.TrackRefs(e.rs.Relay, "", ns, "video") == -1 })
	})
	t.Run("timeout", func(t *testing.T) {
		e := startRelayWith(t, "moqt", relay.Config{UpstreamTimeout: 300 * time.Millisecond})
		ns := wire.Namespace{"live"}
		g, _ := newGatedTracks(ns, "video")
		if _, err := e.connect("/", g).PublishNamespace(ctxFor(t), ns, nil); err != nil {
			t.Fatal(err)
		}
		ctx := ctxFor(t)
		r := <-subscribeAsync(ctx, e.connect("/", nil), ns, "video")
		if !errors.Is(r.err, moqtransport.SubscribeError(wire.SubscribeTimeout, "")) {
			t.Errorf("an unanswered upstream SUBSCRIBE: %v, want TIMEOUT", r.err)
		}
		upCtx := wantAsked(t, ctx, g)
		select {
		case <-upCtx.Done():
		case <-ctx.Done():
			t.Fatal("the timed-out upstream SUBSCRIBE was not cancelled upstream")
		}
	})
}

// The last subscriber leaving and a new one arriving at once: the
// relay's new upstream SUBSCRIBE for the track waits until the old one's
// UNSUBSCRIBE is sent, so the publisher never sees two SUBSCRIBEs for one
// track in one session (a protocol violation that would close it).
func TestUpstreamResubscribeAfterLastLeaves(t *testing.T) {
	e := startRelay(t, "moqt")
	ns := wire.Namespace{"live"}
	pub, _, h := e.publisher("/", ns, "video")
	ctx := ctxFor(t)
	a, b := e.connect("/", nil), e.connect("/", nil)
	sub, err := a.Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	const rounds = 30
	for i := range rounds {
		next := b
		if i%2 == 1 {
			next = a
		}
		// The unsubscribe and the next subscribe race to the relay.
		c := subscribeAsync(ctx, next, ns, "video")
		_ = sub.Unsubscribe()
		r := <-c
		if r.err != nil {
			t.Fatalf("round %d: %v (publisher: %v)", i, r.err, pub.Err())
		}
		sub = r.sub
	}
	if pub.Context().Err() != nil {
		t.Fatalf("the publisher's session ended: %v", pub.Err())
	}
	_ = sub.Unsubscribe()
	waitFor(t, "every upstream subscription to end", func() bool { return h.ended.Load() == h.subscribes.Load() })
}
