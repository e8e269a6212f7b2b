package relay_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// New fills in the default timeouts and keeps the TRACK_STATUS wait at
// most the upstream one (moq-relay gives both flags as they are).
func TestTimeoutDefaults(t *testing.T) {
	for _, c := range []struct {
		cfg              relay.Config
		upstream, status time.Duration
	}{
		{relay.Config{}, relay.DefaultUpstreamTimeout, relay.DefaultTrackStatusTimeout},
		{relay.Config{UpstreamTimeout: 3 * time.Second}, 3 * time.Second, relay.DefaultTrackStatusTimeout},
		{relay.Config{UpstreamTimeout: 400 * time.Millisecond}, 400 * time.Millisecond, 400 * time.Millisecond},
		{relay.Config{UpstreamTimeout: 400 * time.Millisecond, TrackStatusTimeout: time.Second}, 400 * time.Millisecond, 400 * time.Millisecond},
		{relay.Config{TrackStatusTimeout: 250 * time.Millisecond}, relay.DefaultUpstreamTimeout, 250 * time.Millisecond},
	} {
		r := relay.New(c.cfg)
		if up, st := relay.Timeouts(r); up != c.upstream || st != c.status {
			t.Errorf("New(UpstreamTimeout %v, TrackStatusTimeout %v): %v, %v; want %v, %v",
				c.cfg.UpstreamTimeout, c.cfg.TrackStatusTimeout, up, st, c.upstream, c.status)
		}
		r.Close()
	}
}

// TRACK_STATUS for a track the relay does not relay is forwarded to the
// publisher as TRACK_STATUS (§9.20), its answer passed on: no upstream
// SUBSCRIBE is opened. For a track the relay relays live it is answered
// from the relay's own track, and the publisher sees nothing. The
// publisher's refusal passes through with its code.
func TestTrackStatusForwarded(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"live"}
		_, tr, h := e.publisher("/", ns, "video")
		write(t, tr, 0, 3, 2)
		ctx := ctxFor(t)
		client := e.connect("/", nil)

		st, err := client.TrackStatus(ctx, ns, "video")
		if err != nil {
			t.Fatal(err)
		}
		if !st.ContentExists || st.Largest != (wire.Location{Group: 2, Object: 1}) || st.TrackAlias != 0 {
			t.Errorf("forwarded TRACK_STATUS_OK %+v, want content up to {2 1}, alias 0", st)
		}
		if s, n := h.subscribes.Load(), h.statuses.Load(); s != 0 || n != 1 {
			t.Errorf("the publisher got %d SUBSCRIBEs and %d TRACK_STATUSes, want 0 and 1", s, n)
		}
		_, err = client.TrackStatus(ctx, ns, "missing")
		if !errors.Is(err, moqtransport.ErrTrackNotFound) {
			t.Errorf("TRACK_STATUS of a track the publisher lacks: %v, want TRACK_DOES_NOT_EXIST", err)
		}
		_, err = client.TrackStatus(ctx, wire.Namespace{"nobody"}, "x")
		if !errors.Is(err, moqtransport.ErrTrackNotFound) {
			t.Errorf("TRACK_STATUS of a namespace nobody publishes: %v, want TRACK_DOES_NOT_EXIST", err)
		}

		// Relayed live: from the relay's track.
		sub, err := e.connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		write(t, tr, 3, 4, 1)
		waitFor(t, "group 3 at the relay", func() bool {
			l, ok := sub.Track().Largest()
			return ok && l.Group == 3
		})
		before := h.statuses.Load()
		st, err = client.TrackStatus(ctx, ns, "video")
		if err != nil {
			t.Fatal(err)
		}
		if !st.ContentExists || st.Largest != (wire.Location{Group: 3, Object: 0}) {
			t.Errorf("TRACK_STATUS_OK of a relayed track %+v, want content up to {3 0}", st)
		}
		if n := h.statuses.Load(); n != before {
			t.Errorf("TRACK_STATUS of a track relayed live reached the publisher")
		}
		if s := h.subscribes.Load(); s != 1 {
			t.Errorf("the publisher got %d SUBSCRIBEs, want the subscriber's 1", s)
		}
	})
}

// A publisher that answers neither TRACK_STATUS nor the SUBSCRIBE the
// relay falls back to gets the requester TIMEOUT.
func TestTrackStatusTimeout(t *testing.T) {
	e := startRelayWith(t, "moqt", relay.Config{UpstreamTimeout: 300 * time.Millisecond})
	ns := wire.Namespace{"live"}
	asked := make(chan struct{}, 1)
	subscribed := make(chan struct{}, 1)
	h := moqtransport.Handler{
		TrackStatus: unanswered[*wire.TrackStatus, *moqtransport.TrackStatusOK](func() { asked <- struct{}{} }),
		Subscribe:   unanswered[*wire.Subscribe, *moqtransport.Track](func() { subscribed <- struct{}{} }),
	}
	pub := e.connect("/", handlerFunc(h))
	ctx := ctxFor(t)
	if _, err := pub.PublishNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	_, err := e.connect("/", nil).TrackStatus(ctx, ns, "video")
	if !errors.Is(err, moqtransport.SubscribeError(wire.SubscribeTimeout, "")) {
		t.Errorf("TRACK_STATUS the publisher never answers: %v, want TIMEOUT", err)
	}
	<-asked
	<-subscribed
}

// A publisher that does not answer TRACK_STATUS (moq-rs never does for a
// track it lacks) is asked with SUBSCRIBE after TrackStatusTimeout, and
// its SUBSCRIBE_OK or SUBSCRIBE_ERROR answers the requester, long before
// UpstreamTimeout (a minute here: the test's context ends first). The
// relay then asks that publisher with SUBSCRIBE directly, and
// UNSUBSCRIBEs once the status is read. The publisher's late answer to
// the first TRACK_STATUS is dropped; its session goes on.
func TestTrackStatusPublisherSilent(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelayWith(t, scheme, relay.Config{UpstreamTimeout: time.Minute, TrackStatusTimeout: 200 * time.Millisecond})
		ns := wire.Namespace{"live"}
		h := &countingTracks{}
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "video"}, moqtransport.TrackConfig{})
		h.Add(tr)
		write(t, tr, 0, 3, 2)
		hh := h.Handler()
		release, answered := make(chan struct{}), make(chan struct{})
		hh.TrackStatus = func(ctx context.Context, _ *moqtransport.Session, _ *wire.TrackStatus) (*moqtransport.TrackStatusOK, error) {
			h.statuses.Add(1)
			defer close(answered)
			select {
			case <-release: // late, after the relay asked with SUBSCRIBE
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			return moqtransport.TrackStatusOf(tr), nil
		}
		pub := e.connect("/", handlerFunc(hh))
		ctx := ctxFor(t)
		if _, err := pub.PublishNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
		client := e.connect("/", nil)

		st, err := client.TrackStatus(ctx, ns, "video")
		if err != nil {
			t.Fatalf("TRACK_STATUS of a track a silent publisher has: %v, want TRACK_STATUS_OK", err)
		}
		if !st.ContentExists || st.Largest != (wire.Location{Group: 2, Object: 1}) {
			t.Errorf("TRACK_STATUS_OK from the fallback SUBSCRIBE %+v, want content up to {2 1}", st)
		}
		waitFor(t, "the fallback subscription's UNSUBSCRIBE", func() bool { return h.ended.Load() == 1 })
		close(release)
		<-answered

		_, err = client.TrackStatus(ctx, ns, "missing")
		if !errors.Is(err, moqtransport.ErrTrackNotFound) {
			t.Errorf("TRACK_STATUS of a track a silent publisher lacks: %v, want TRACK_DOES_NOT_EXIST", err)
		}
		if s, n := h.subscribes.Load(), h.statuses.Load(); s != 2 || n != 1 {
			t.Errorf("the publisher got %d SUBSCRIBEs and %d TRACK_STATUSes, want 2 and 1 (asked with SUBSCRIBE after the first went unanswered)", s, n)
		}
		sub, err := e.connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatalf("SUBSCRIBE after the publisher's late TRACK_STATUS_OK: %v", err)
		}
		if l, ok := sub.Largest(); !ok || l != (wire.Location{Group: 2, Object: 1}) {
			t.Errorf("SUBSCRIBE_OK largest %v %v, want {2 1}", l, ok)
		}
		if pub.Context().Err() != nil {
			t.Errorf("the publisher's session ended after its late TRACK_STATUS_OK: %v", pub.Err())
		}
	})
}

// A TRACK_STATUS that waited for the publisher's MAX_REQUEST_ID and was
// never sent does not mark the publisher silent: once the publisher grants
// request IDs again, the relay asks it with TRACK_STATUS, not SUBSCRIBE.
func TestTrackStatusPublisherBlockedNotSilent(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelayWith(t, scheme, relay.Config{UpstreamTimeout: time.Second, TrackStatusTimeout: 200 * time.Millisecond})
		ns := wire.Namespace{"live"}
		h := &countingTracks{}
		for _, name := range []string{"video", "audio"} {
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: name}, moqtransport.TrackConfig{})
			h.Add(tr)
			write(t, tr, 0, 3, 2)
		}
		// The publisher lets the relay have one request open at a time.
		pub, _, err := e.dialCfg("/", moqtransport.Config{Handler: h.Handler(), MaxRequests: 1})
		if err != nil {
			t.Fatal(err)
		}
		ctx := ctxFor(t)
		if _, err := pub.PublishNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
		client := e.connect("/", nil)
		sub, err := client.Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The relay's upstream SUBSCRIBE holds the publisher's one request
		// ID: the TRACK_STATUS waits for another and is not sent, and the
		// fallback SUBSCRIBE waits as well until UpstreamTimeout.
		if _, err := client.TrackStatus(ctx, ns, "audio"); err == nil {
			t.Fatal("TRACK_STATUS while the publisher grants no request ID answered, want an error")
		}
		if n := h.statuses.Load(); n != 0 {
			t.Fatalf("the publisher got %d TRACK_STATUSes while it granted no request ID, want 0", n)
		}
		if err := sub.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the upstream subscription's UNSUBSCRIBE", func() bool { return h.ended.Load() == 1 })

		st, err := client.TrackStatus(ctx, ns, "audio")
		if err != nil {
			t.Fatalf("TRACK_STATUS once the publisher grants request IDs again: %v", err)
		}
		if !st.ContentExists || st.Largest != (wire.Location{Group: 2, Object: 1}) {
			t.Errorf("TRACK_STATUS_OK %+v, want content up to {2 1}", st)
		}
		if n := h.statuses.Load(); n != 1 {
			t.Errorf("the publisher got %d TRACK_STATUSes, want 1: it was marked silent though it never got the first", n)
		}
	})
}

// Downstream TRACK_STATUS requests for a track the relay does not relay,
// arriving while one is asked upstream, share that upstream request: the
// publisher gets one TRACK_STATUS per track, and every request gets the
// answer, TRACK_STATUS_OK or the error with its code. A requester that
// leaves (its session ends) while the publisher has not answered does not
// end the upstream request for the others.
func TestTrackStatusShared(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		// Long timeouts: the publisher answers when the test says so.
		e := startRelayWith(t, scheme, relay.Config{UpstreamTimeout: time.Minute, TrackStatusTimeout: time.Minute})
		ns := wire.Namespace{"live"}
		release := make(chan struct{})
		asked := make(chan string, 8)
		_, _, h := statusPublisher(t, e, ns, func(hh *moqtransport.Handler) {
			hh.TrackStatus = heldUntil(release, func(req *wire.TrackStatus) { asked <- req.Name }, hh.TrackStatus)
		})
		ctx := ctxFor(t)
		type answer struct {
			name string
			st   *moqtransport.TrackStatusOK
			err  error
		}
		answers := make(chan answer, 8)
		ask := func(s *moqtransport.Session, name string) {
			go func() {
				st, err := s.TrackStatus(ctx, ns, name)
				answers <- answer{name, st, err}
			}()
		}
		// The first requester's TRACK_STATUS reaches the publisher, then
		// more requesters of the same track, and of a track the publisher
		// lacks, ask while it is unanswered.
		first := e.connect("/", nil)
		ask(first, "video")
		if name := recv(t, ctx, asked, "the publisher's TRACK_STATUS"); name != "video" {
			t.Fatalf("the publisher was asked for %q, want video", name)
		}
		const videos, missings = 4, 3
		for range videos {
			ask(e.connect("/", nil), "video")
		}
		for range missings {
			ask(e.connect("/", nil), "missing")
		}
		r := e.rs.Relay
		waitFor(t, "every request waiting for the publisher's answer", func() bool {
			return relay.StatusWaiting(r) == 1+videos+missings
		})
		// The first requester leaves: the others still wait.
		_ = first.Close()
		if a := <-answers; a.err == nil || a.name != "video" {
			t.Fatalf("the requester whose session closed got %+v, want an error", a)
		}
		waitFor(t, "the first requester to stop waiting", func() bool {
			return relay.StatusWaiting(r) == videos+missings
		})
		close(release)
		for range videos + missings {
			a := <-answers
			switch {
			case a.name == "video" && a.err != nil:
				t.Errorf("TRACK_STATUS of video: %v, want TRACK_STATUS_OK", a.err)
			case a.name == "video" && (!a.st.ContentExists || a.st.Largest != (wire.Location{Group: 2, Object: 1})):
				t.Errorf("TRACK_STATUS_OK of video %+v, want content up to {2 1}", a.st)
			case a.name == "missing" && !errors.Is(a.err, moqtransport.ErrTrackNotFound):
				t.Errorf("TRACK_STATUS of a track the publisher lacks: %v, want TRACK_DOES_NOT_EXIST", a.err)
			}
		}
		var more []string
		for len(asked) > 0 {
			more = append(more, <-asked)
		}
		if len(more) != 1 || more[0] != "missing" {
			t.Errorf("the publisher was asked for video, then %q; want one TRACK_STATUS per track (video, missing)", more)
		}
		if s, n := h.subscribes.Load(), h.statuses.Load(); s != 0 || n != 2 {
			t.Errorf("the publisher answered %d SUBSCRIBEs and %d TRACK_STATUSes, want 0 and 2", s, n)
		}
		if n := relay.StatusWaiting(r); n != 0 {
			t.Errorf("%d requests still waiting after the answers", n)
		}
	})
}

// Behind a publisher that never answers TRACK_STATUS, requests asking at
// once share one TRACK_STATUS and then one fallback SUBSCRIBE, whose
// SUBSCRIBE_OK answers them all.
func TestTrackStatusSharedPublisherSilent(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelayWith(t, scheme, relay.Config{UpstreamTimeout: time.Minute, TrackStatusTimeout: 200 * time.Millisecond})
		ns := wire.Namespace{"live"}
		release, subscribed := make(chan struct{}), make(chan struct{}, 8)
		var statuses atomic.Int32 // the TRACK_STATUSes left unanswered
		_, _, h := statusPublisher(t, e, ns, func(hh *moqtransport.Handler) {
			hh.TrackStatus = unanswered[*wire.TrackStatus, *moqtransport.TrackStatusOK](func() { statuses.Add(1) })
			hh.Subscribe = heldUntil(release, func(*wire.Subscribe) { subscribed <- struct{}{} }, hh.Subscribe)
		})
		ctx := ctxFor(t)
		const n = 5
		errs := make(chan error, n)
		for range n {
			s := e.connect("/", nil)
			go func() {
				st, err := s.TrackStatus(ctx, ns, "video")
				if err == nil && (!st.ContentExists || st.Largest != (wire.Location{Group: 2, Object: 1})) {
					err = fmt.Errorf("TRACK_STATUS_OK %+v, want content up to {2 1}", st)
				}
				errs <- err
			}()
		}
		recv(t, ctx, subscribed, "the fallback SUBSCRIBE") // held until every request waits
		waitFor(t, "every request waiting for the fallback SUBSCRIBE", func() bool {
			return relay.StatusWaiting(e.rs.Relay) == n
		})
		close(release)
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("TRACK_STATUS behind a silent publisher: %v", err)
			}
		}
		if n := statuses.Load(); n != 1 {
			t.Errorf("the publisher got %d TRACK_STATUSes, want 1", n)
		}
		waitFor(t, "the fallback subscription's UNSUBSCRIBE", func() bool { return h.ended.Load() == h.subscribes.Load() })
		if s, st := h.subscribes.Load(), statuses.Load(); s != 1 || st != 1 {
			t.Errorf("the publisher got %d SUBSCRIBEs and %d TRACK_STATUSes, want 1 and 1", s, st)
		}
	})
}

// statusPublisher connects a publisher of ns whose track "video" holds
// groups 0-2 of two objects each; change, when set, alters the Handler it
// answers the relay with (h counts what the unaltered one answers).
func statusPublisher(t *testing.T, e *relayEnv, ns wire.Namespace, change func(*moqtransport.Handler)) (pub *moqtransport.Session, tr *moqtransport.Track, h *countingTracks) {
	t.Helper()
	h = &countingTracks{}
	tr = moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "video"}, moqtransport.TrackConfig{})
	h.Add(tr)
	write(t, tr, 0, 3, 2)
	hh := h.Handler()
	if change != nil {
		change(&hh)
	}
	pub = e.connect("/", handlerFunc(hh))
	if _, err := pub.PublishNamespace(ctxFor(t), ns, nil); err != nil {
		t.Fatal(err)
	}
	return pub, tr, h
}

// heldUntil wraps a request handler so that it notes each request, then
// answers only once release is closed.
func heldUntil[Req any, Resp any](release <-chan struct{}, note func(Req), next func(context.Context, *moqtransport.Session, Req) (Resp, error)) func(context.Context, *moqtransport.Session, Req) (Resp, error) {
	return func(ctx context.Context, s *moqtransport.Session, req Req) (Resp, error) {
		note(req)
		select {
		case <-release:
		case <-ctx.Done():
			var none Resp
			return none, ctx.Err()
		}
		return next(ctx, s, req)
	}
}

// recv receives from ch, failing the test when ctx ends first.
func recv[T any](t *testing.T, ctx context.Context, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-ctx.Done():
		t.Fatalf("no %s: %v", what, ctx.Err())
		panic("unreachable")
	}
}

// unanswered is a request handler that never answers: it notes the
// request, then waits for the session's end.
func unanswered[Req any, Resp any](note func()) func(context.Context, *moqtransport.Session, Req) (Resp, error) {
	return func(ctx context.Context, _ *moqtransport.Session, _ Req) (Resp, error) {
		note()
		<-ctx.Done()
		var none Resp
		return none, ctx.Err()
	}
}

// handlerFunc is a Handler as a handlerer.
type handlerFunc moqtransport.Handler

func (h handlerFunc) Handler() moqtransport.Handler { return moqtransport.Handler(h) }

// TRACK_STATUS on a relay that does not have the track's publisher is
// forwarded through the cluster (the coordinator's relay, then the
// publisher) as TRACK_STATUS: no relay subscribes upstream.
func TestClusterTrackStatus(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.json")
	relays, _ := startCluster(t, "moqt", 2, func(_ int, node string) relay.Coordinator {
		return fileCoordinator(t, path, node)
	})
	ns := wire.Namespace{"live"}
	_, tr, h := relays[0].publisher("/", ns, "video")
	write(t, tr, 0, 3, 2)
	ctx := ctxFor(t)
	st, err := relays[1].connect("/", nil).TrackStatus(ctx, ns, "video")
	if err != nil {
		t.Fatal(err)
	}
	if !st.ContentExists || st.Largest != (wire.Location{Group: 2, Object: 1}) {
		t.Errorf("TRACK_STATUS_OK through the cluster %+v, want content up to {2 1}", st)
	}
	if s, n := h.subscribes.Load(), h.statuses.Load(); s != 0 || n != 1 {
		t.Errorf("the publisher got %d SUBSCRIBEs and %d TRACK_STATUSes, want 0 and 1", s, n)
	}
}

// TestTrackStatusPublisherSilentPushes: a silent publisher that pushes
// the track (PUBLISH) while the relay waits for its TRACK_STATUS answer
// keeps it: the TRACK_STATUS's fallback SUBSCRIBE is served from the
// pushed track, and so are later subscribers. Before, the fallback
// displaced the pushed track with a SUBSCRIBE to the publisher, which
// refused it, and every later SUBSCRIBE of the track was refused.
func TestTrackStatusPublisherSilentPushes(t *testing.T) {
	e := startRelayWith(t, "moqt", relay.Config{UpstreamTimeout: 5 * time.Second, TrackStatusTimeout: 500 * time.Millisecond})
	ns := wire.Namespace{"live"}
	h := &countingTracks{}
	hh := h.Handler()
	entered := make(chan struct{})
	var once sync.Once
	hh.TrackStatus = func(ctx context.Context, _ *moqtransport.Session, _ *wire.TrackStatus) (*moqtransport.TrackStatusOK, error) {
		once.Do(func() { close(entered) })
		<-ctx.Done() // silent
		return nil, ctx.Err()
	}
	pub := e.connect("/", handlerFunc(hh))
	ctx := ctxFor(t)
	if _, err := pub.PublishNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	client := e.connect("/", nil)
	type status struct {
		st  *moqtransport.TrackStatusOK
		err error
	}
	done := make(chan status, 1)
	go func() {
		st, err := client.TrackStatus(ctx, ns, "v")
		done <- status{st, err}
	}()
	select {
	case <-entered:
	case <-ctx.Done():
		t.Fatal("the publisher got no TRACK_STATUS")
	}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "v"}, moqtransport.TrackConfig{})
	write(t, tr, 0, 2, 2)
	if _, err := pub.Publish(ctx, tr, moqtransport.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	var st status
	select {
	case st = <-done:
	case <-ctx.Done():
		t.Fatal("no TRACK_STATUS answer")
	}
	if st.err != nil {
		t.Errorf("TRACK_STATUS of the track pushed while it waited: %v", st.err)
	} else if !st.st.ContentExists || st.st.Largest != (wire.Location{Group: 1, Object: 1}) {
		t.Errorf("TRACK_STATUS_OK %+v, want the pushed track's content up to {1 1}", st.st)
	}
	sub, err := e.connect("/", nil).Subscribe(ctx, ns, "v", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatalf("SUBSCRIBE of the pushed track after the TRACK_STATUS: %v", err)
	}
	got := readAsync(ctx, sub.Track())
	write(t, tr, 2, 4, 2)
	tr.Close(nil)
	wantObjects(t, "the subscriber", got, expected(2, 4, 2))
	if n := h.subscribes.Load(); n != 0 {
		t.Errorf("the publisher got %d SUBSCRIBEs for the track it pushed, want 0", n)
	}
	if err := pub.Err(); err != nil {
		t.Errorf("the publisher's session ended: %v", err)
	}
}
