package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type relayEnv struct {
	t      *testing.T
	scheme string
	srv    *moqnative.Server
	rs     *relay.Server
}

func startRelay(t *testing.T, scheme string) *relayEnv {
	t.Helper()
	return startRelayWith(t, scheme, relay.Config{})
}

func startRelayWith(t *testing.T, scheme string, cfg relay.Config) *relayEnv {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rs := relay.NewServer(relay.New(cfg), srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rs.Serve(ctx)
	}()
	t.Cleanup(func() {
		checkUpstream(t, rs.Relay) // the test's sessions ending
		cancel()
		rs.Close()
		_ = srv.Close()
		<-done
		checkUpstream(t, rs.Relay)
	})
	return &relayEnv{t: t, scheme: scheme, srv: srv, rs: rs}
}

// checkUpstream fails the test when the relay's table of upstream
// subscriptions and its index of them by session disagree
// (relay.UpstreamIndex). Every relay the tests start is checked as its
// test ends, and after it has closed.
func checkUpstream(t testing.TB, r *relay.Relay) {
	t.Helper()
	if _, err := relay.UpstreamIndex(r); err != nil {
		t.Errorf("the relay's upstream subscriptions: %v", err)
	}
}

// handlerer is a test application that answers a relay's requests; nil
// answers none.
type handlerer interface{ Handler() moqtransport.Handler }

func handlerOf(h handlerer) moqtransport.Handler {
	if h == nil {
		return moqtransport.Handler{}
	}
	return h.Handler()
}

// connect opens a session to the relay at path, with handler answering the
// relay's requests.
func (e *relayEnv) connect(path string, handler handlerer) *moqtransport.Session {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fp, _ := e.srv.Fingerprint()
	d, err := moqnative.Dial(ctx, fmt.Sprintf("%s://%s%s", e.scheme, e.srv.Addr(), path),
		moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Handler: handlerOf(handler), Path: d.Path, Authority: d.Authority})
	if err != nil {
		_ = d.Close()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = s.Close()
		_ = d.Close()
	})
	return s
}

// countingTracks serves tracks and counts the relay's upstream requests.
type countingTracks struct {
	moqtransport.Tracks
	subscribes atomic.Int32
	ended      atomic.Int32
	fetches    atomic.Int32
	statuses   atomic.Int32
}

func (c *countingTracks) Handler() moqtransport.Handler {
	h := c.Tracks.Handler()
	subscribe, fetch, status := h.Subscribe, h.Fetch, h.TrackStatus
	h.Subscribe = func(ctx context.Context, s *moqtransport.Session, req *wire.Subscribe) (*moqtransport.Track, error) {
		c.subscribes.Add(1)
		return subscribe(ctx, s, req)
	}
	h.SubscriptionEnded = func(*moqtransport.Session, *wire.Subscribe, *moqtransport.Track) { c.ended.Add(1) }
	h.Fetch = func(ctx context.Context, s *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
		c.fetches.Add(1)
		return fetch(ctx, s, req)
	}
	h.TrackStatus = func(ctx context.Context, s *moqtransport.Session, req *wire.TrackStatus) (*moqtransport.TrackStatusOK, error) {
		c.statuses.Add(1)
		return status(ctx, s, req)
	}
	return h
}

// publisher connects a publisher of namespace ns with one track.
func (e *relayEnv) publisher(path string, ns wire.Namespace, name string) (*moqtransport.Session, *moqtransport.Track, *countingTracks) {
	e.t.Helper()
	h := &countingTracks{}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: name}, moqtransport.TrackConfig{})
	h.Add(tr)
	s := e.connect(path, h)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.PublishNamespace(ctx, ns, nil); err != nil {
		e.t.Fatal(err)
	}
	return s, tr, h
}

func forEachTransport(t *testing.T, f func(t *testing.T, scheme string)) {
	for _, scheme := range []string{"moqt", "https"} {
		t.Run(scheme, func(t *testing.T) { f(t, scheme) })
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func write(t *testing.T, tr *moqtransport.Track, from, to uint64, n int) {
	t.Helper()
	for g := from; g < to; g++ {
		// Each group is one subgroup that declares End of Group: the
		// relay then knows the group complete once its stream ends, and
		// answers a FETCH of it from its cache (FetchFromRelayedTrack).
		w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{Priority: 1, EndOfGroup: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if err := w.WriteObject(uint64(i), fmt.Appendf(nil, "%d/%d", g, i), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func read(ctx context.Context, tr *moqtransport.Track) ([]string, error) {
	r := tr.NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	var out []string
	for {
		ev, err := r.Next(ctx)
		if err != nil {
			slices.Sort(out)
			return out, err
		}
		if ev.Kind == moqtransport.EventObject {
			out = append(out, fmt.Sprintf("%d/%d=%s", ev.Object.Group, ev.Object.ID, ev.Object.Payload))
		}
	}
}

func expected(from, to uint64, n int) []string {
	var out []string
	for g := from; g < to; g++ {
		for i := range n {
			out = append(out, fmt.Sprintf("%d/%d=%d/%d", g, i, g, i))
		}
	}
	slices.Sort(out)
	return out
}

func TestFanOutOneUpstream(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"live"}
		_, tr, h := e.publisher("/", ns, "video")
		ctx := ctxFor(t)
		const n = 4
		subs := make([]*moqtransport.Subscription, n)
		for i := range n {
			s := e.connect("/", nil)
			sub, err := s.Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
			if err != nil {
				t.Fatalf("subscriber %d: %v", i, err)
			}
			subs[i] = sub
		}
		if got := h.subscribes.Load(); got != 1 {
			t.Errorf("the publisher got %d upstream SUBSCRIBEs for %d subscribers, want 1", got, n)
		}
		results := make([][]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, sub := range subs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i], errs[i] = read(ctx, sub.Track())
			}()
		}
		write(t, tr, 0, 5, 3)
		tr.Close(nil)
		wg.Wait()
		want := expected(0, 5, 3)
		for i := range n {
			if errs[i] != io.EOF || !slices.Equal(results[i], want) {
				t.Errorf("subscriber %d: %v after %d objects, want io.EOF after %d", i, errs[i], len(results[i]), len(want))
			}
			if err := subs[i].Err(); err != nil {
				t.Errorf("subscriber %d ended with %v, want TRACK_ENDED passed through", i, err)
			}
		}
	})
}

func TestUnknownNamespace(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		s := e.connect("/", nil)
		_, err := s.Subscribe(ctxFor(t), wire.Namespace{"missing"}, "x", moqtransport.SubscribeOptions{})
		var re *moqtransport.RequestError
		if !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
			t.Fatalf("subscribe to an unknown namespace: %v, want TRACK_DOES_NOT_EXIST", err)
		}
	})
}

func TestUnknownTrackPassesThroughPublisherError(t *testing.T) {
	e := startRelay(t, "moqt")
	ns := wire.Namespace{"live"}
	e.publisher("/", ns, "video")
	s := e.connect("/", nil)
	_, err := s.Subscribe(ctxFor(t), ns, "audio", moqtransport.SubscribeOptions{})
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
		t.Fatalf("subscribe to a track the publisher lacks: %v, want TRACK_DOES_NOT_EXIST", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestUpstreamUnsubscribedWhenLastSubscriberLeaves(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"live"}
		_, _, h := e.publisher("/", ns, "video")
		ctx := ctxFor(t)
		a, _ := e.connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
		b, err := e.connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
		if a == nil || err != nil {
			t.Fatal("subscribe failed")
		}
		_ = a.Unsubscribe()
		time.Sleep(100 * time.Millisecond)
		if h.ended.Load() != 0 {
			t.Fatal("the upstream subscription ended while a subscriber remained")
		}
		_ = b.Unsubscribe()
		waitFor(t, "the upstream UNSUBSCRIBE", func() bool { return h.ended.Load() == 1 })
		// A new subscriber subscribes upstream again.
		if _, err := e.connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := h.subscribes.Load(); got != 2 {
			t.Errorf("upstream SUBSCRIBEs %d, want 2", got)
		}
	})
}

func TestPublisherDisconnect(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"live"}
		pub, tr, _ := e.publisher("/", ns, "video")
		ctx := ctxFor(t)
		sub, err := e.connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		write(t, tr, 0, 1, 2)
		_ = pub.Close()
		select {
		case <-sub.Done():
		case <-ctx.Done():
			t.Fatal("the subscription outlived its publisher")
		}
		var re *moqtransport.RequestError
		if err := sub.Err(); !errors.As(err, &re) || re.Code != uint64(wire.DoneGoingAway) {
			t.Fatalf("subscription ended with %v, want PUBLISH_DONE GOING_AWAY", err)
		}
		// The namespace is gone with its publisher.
		waitFor(t, "the namespace to be withdrawn", func() bool {
			_, err := e.connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
			return errors.As(err, &re) && re.Code == uint64(wire.SubscribeTrackDoesNotExist)
		})
	})
}

func TestScopes(t *testing.T) {
	e := startRelay(t, "https")
	ctx := ctxFor(t)
	var re *moqtransport.RequestError
	e.publisher("/a", wire.Namespace{"scoped"}, "t")
	if _, err := e.connect("/b", nil).Subscribe(ctx, wire.Namespace{"scoped"}, "t", moqtransport.SubscribeOptions{}); !errors.As(err, &re) {
		t.Errorf("a subscriber in /b found a publisher in /a: %v", err)
	}
	if _, err := e.connect("/a/", nil).Subscribe(ctx, wire.Namespace{"scoped"}, "t", moqtransport.SubscribeOptions{}); err != nil {
		t.Errorf("a subscriber in /a/ (same scope) did not find the publisher: %v", err)
	}
	// An unscoped publisher serves subscribers of every scope.
	e.publisher("/", wire.Namespace{"global", "x"}, "t")
	if _, err := e.connect("/room?token=1", nil).Subscribe(ctx, wire.Namespace{"global", "x", "deeper"}, "t", moqtransport.SubscribeOptions{}); !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
		// Routed by prefix to the publisher, which has no such track.
		t.Errorf("prefix route through the unscoped fallback: %v", err)
	}
	if _, err := e.connect("/room", nil).Subscribe(ctx, wire.Namespace{"global", "x"}, "t", moqtransport.SubscribeOptions{}); err != nil {
		t.Errorf("a scoped subscriber did not find the unscoped publisher: %v", err)
	}
}

func TestScopeRules(t *testing.T) {
	for path, want := range map[string]string{"": "", "/": "", "///": "", "/app": "/app", "/app/": "/app", "/t/s-1?x=y": "/t/s-1"} {
		if got, err := relay.Scope(path); err != nil || got != want {
			t.Errorf("Scope(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
	for _, path := range []string{"app", "/app//s", "/app/./s", "/app/../x", "/%2e", "/" + string(make([]byte, 1024))} {
		if _, err := relay.Scope(path); err == nil {
			t.Errorf("Scope(%q) accepted", path)
		}
	}
}

func TestLateJoiner(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"live"}
		_, tr, _ := e.publisher("/", ns, "video")
		ctx := ctxFor(t)
		first, err := e.connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		write(t, tr, 0, 2, 3)
		// Wait until the relay has the objects, then join late.
		waitFor(t, "the first subscriber's objects", func() bool {
			l, ok := first.Track().Largest()
			return ok && l == wire.Location{Group: 1, Object: 2}
		})
		late, err := e.connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{Filter: wire.Filter{Type: wire.FilterNextGroupStart}})
		if err != nil {
			t.Fatal(err)
		}
		if ok := late.OK(); !ok.ContentExists || ok.Largest != (wire.Location{Group: 1, Object: 2}) {
			t.Errorf("late joiner's SUBSCRIBE_OK: exists %v largest %v, want {1,2}", ok.ContentExists, ok.Largest)
		}
		write(t, tr, 2, 4, 3)
		tr.Close(nil)
		got, err := read(ctx, late.Track())
		if err != io.EOF || !slices.Equal(got, expected(2, 4, 3)) {
			t.Errorf("late joiner got %v (%v), want groups 2 and 3", got, err)
		}
	})
}

func TestDrainSendsGoAway(t *testing.T) {
	e := startRelay(t, "moqt")
	s := e.connect("/", nil)
	waitFor(t, "the relay to count the session", func() bool { return e.rs.Sessions() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	go func() {
		<-s.GoAway()
		_ = s.Close()
	}()
	e.rs.Drain(ctx, "")
	select {
	case <-s.GoAway():
	default:
		t.Fatal("no GOAWAY reached the client")
	}
	waitFor(t, "the session to end", func() bool { return e.rs.Sessions() == 0 })
}

// announcements records the namespaces a relay announces to a session.
type announcements struct {
	mu   sync.Mutex
	got  []string
	done []string
}

func (a *announcements) PublishNamespace(_ context.Context, _ *moqtransport.Session, req *wire.PublishNamespace) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, req.Namespace.String())
	return nil
}

func (a *announcements) PublishNamespaceDone(_ *moqtransport.Session, ns wire.Namespace) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = append(a.done, ns.String())
}

func (a *announcements) Handler() moqtransport.Handler {
	return moqtransport.Handler{PublishNamespace: a.PublishNamespace, PublishNamespaceDone: a.PublishNamespaceDone}
}

func (a *announcements) seen() (got, done []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	got, done = slices.Clone(a.got), slices.Clone(a.done)
	slices.Sort(got)
	slices.Sort(done)
	return got, done
}

func TestSubscribeNamespace(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ctx := ctxFor(t)
		pub, _, _ := e.publisher("/", wire.Namespace{"live", "a"}, "t")
		a := &announcements{}
		s := e.connect("/", a)
		nsub, err := s.SubscribeNamespace(ctx, wire.Namespace{"live"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the existing namespace", func() bool { got, _ := a.seen(); return len(got) == 1 })
		// Later namespaces under the prefix follow; others do not.
		pb, err := pub.PublishNamespace(ctx, wire.Namespace{"live", "b"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pub.PublishNamespace(ctx, wire.Namespace{"other"}, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the new namespace", func() bool { got, _ := a.seen(); return len(got) == 2 })
		// Withdrawn namespaces are withdrawn from the subscriber too.
		if err := pb.Close(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "PUBLISH_NAMESPACE_DONE", func() bool { _, done := a.seen(); return len(done) == 1 })
		got, done := a.seen()
		if !slices.Equal(got, []string{"live/a", "live/b"}) || !slices.Equal(done, []string{"live/b"}) {
			t.Errorf("announced %v, withdrawn %v", got, done)
		}
		// Overlapping prefixes on one session are refused.
		var re *moqtransport.RequestError
		for _, p := range []wire.Namespace{{"live"}, {"live", "x"}} {
			if _, err := s.SubscribeNamespace(ctx, p, nil); !errors.As(err, &re) || re.Code != uint64(wire.NamespacePrefixOverlap) {
				t.Errorf("overlapping prefix %v: %v, want NAMESPACE_PREFIX_OVERLAP", p, err)
			}
		}
		// After UNSUBSCRIBE_NAMESPACE the prefix is free again, and
		// nothing new is announced. The relay handles the session's
		// control stream in order: once the SUBSCRIBE_NAMESPACE sent
		// after it is answered, the UNSUBSCRIBE_NAMESPACE has taken effect.
		if err := nsub.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SubscribeNamespace(ctx, wire.Namespace{"live", "x"}, nil); err != nil {
			t.Errorf("prefix after UNSUBSCRIBE_NAMESPACE: %v", err)
		}
		if _, err := pub.PublishNamespace(ctx, wire.Namespace{"live", "c"}, nil); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // room for a wrong announcement to arrive
		if got, _ := a.seen(); len(got) != 2 {
			t.Errorf("announced after UNSUBSCRIBE_NAMESPACE: %v", got)
		}
	})
}

func TestSubscribeNamespaceEchoesToThePublisher(t *testing.T) {
	e := startRelay(t, "moqt")
	ctx := ctxFor(t)
	a := &announcements{}
	s := e.connect("/", a)
	if _, err := s.SubscribeNamespace(ctx, wire.Namespace{"mine"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PublishNamespace(ctx, wire.Namespace{"mine", "x"}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the echo", func() bool { got, _ := a.seen(); return len(got) == 1 && got[0] == "mine/x" })
}

// A publisher subscribed to its own namespace is sent its own tracks with
// PUBLISH too (draft-14, "Subscribing to Namespaces": "This includes
// echoing back PUBLISH or PUBLISH_NAMESPACE messages to the endpoint that
// sent them"), both a track pushed before its SUBSCRIBE_NAMESPACE and one
// after; accepted, it reads its own objects back. Only namespaces were
// echoed.
func TestSubscribeNamespaceEchoesPublishToThePublisher(t *testing.T) {
	e := startRelay(t, "moqt")
	ctx := ctxFor(t)
	p := &pushed{subs: make(chan *moqtransport.Subscription, 2)}
	s := e.connect("/", p)
	before := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"mine", "x"}, Name: "before"}, moqtransport.TrackConfig{})
	if _, err := s.Publish(ctx, before, moqtransport.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SubscribeNamespace(ctx, wire.Namespace{"mine"}, nil); err != nil {
		t.Fatal(err)
	}
	after := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"mine", "x"}, Name: "after"}, moqtransport.TrackConfig{})
	if _, err := s.Publish(ctx, after, moqtransport.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	got := map[string]*moqtransport.Subscription{}
	for range 2 {
		select {
		case sub := <-p.subs:
			got[sub.Track().Name().Name] = sub
		case <-ctx.Done():
			t.Fatalf("echoed PUBLISHes: %v, want both tracks", slices.Collect(maps.Keys(got)))
		}
	}
	echo := got["after"]
	if echo == nil || got["before"] == nil {
		t.Fatalf("echoed PUBLISHes: %v, want before and after", slices.Collect(maps.Keys(got)))
	}
	done := make(chan []string, 1)
	go func() {
		objs, _ := read(ctx, echo.Track())
		done <- objs
	}()
	write(t, after, 0, 2, 2)
	after.Close(nil)
	if objs := <-done; !slices.Equal(objs, expected(0, 2, 2)) {
		t.Errorf("the publisher's own track read back: %v", objs)
	}
}

func TestSubscribeNamespaceNotSupportedWithoutHandler(t *testing.T) {
	// A plain endpoint (not a relay) refuses SUBSCRIBE_NAMESPACE.
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := ctxFor(t)
	accepted := make(chan *moqtransport.Session, 1)
	go func() {
		in, err := srv.Accept(ctx)
		if err != nil {
			close(accepted)
			return
		}
		s, err := moqtransport.Accept(ctx, in.Conn, in.Path, nil)
		if err != nil {
			close(accepted)
			return
		}
		accepted <- s
	}()
	fp, _ := srv.Fingerprint()
	d, err := moqnative.Dial(ctx, fmt.Sprintf("moqt://%s/", srv.Addr()), moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	c, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := <-accepted
	if server == nil {
		t.Fatal("server session failed")
	}
	defer server.Close()
	_, err = c.SubscribeNamespace(ctx, wire.Namespace{"x"}, nil)
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != uint64(wire.SubscribeNamespaceNotSupported) {
		t.Fatalf("SUBSCRIBE_NAMESPACE to a plain endpoint: %v, want NOT_SUPPORTED", err)
	}
}

// pushed accepts every PUBLISH and hands the subscription over.
type pushed struct {
	subs chan *moqtransport.Subscription
}

func (p *pushed) Publish(_ context.Context, _ *moqtransport.Session, _ *wire.Publish, sub *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
	p.subs <- sub
	return moqtransport.SubscribeOptions{}, nil
}

func (p *pushed) Handler() moqtransport.Handler { return moqtransport.Handler{Publish: p.Publish} }

func TestPublishThroughRelay(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ctx := ctxFor(t)
		// A namespace subscriber that takes pushed tracks.
		p := &pushed{subs: make(chan *moqtransport.Subscription, 1)}
		watcher := e.connect("/", p)
		if _, err := watcher.SubscribeNamespace(ctx, wire.Namespace{"push"}, nil); err != nil {
			t.Fatal(err)
		}
		publisher := e.connect("/", nil)
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"push", "cam"}, Name: "v"}, moqtransport.TrackConfig{})
		if _, err := publisher.Publish(ctx, tr, moqtransport.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		// A plain subscriber finds the pushed track.
		sub, err := e.connect("/", nil).Subscribe(ctx, wire.Namespace{"push", "cam"}, "v", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var forwarded *moqtransport.Subscription
		select {
		case forwarded = <-p.subs:
		case <-ctx.Done():
			t.Fatal("the namespace subscriber got no PUBLISH")
		}
		type result struct {
			got []string
			err error
		}
		results := make(chan result, 2)
		for _, s := range []*moqtransport.Subscription{sub, forwarded} {
			go func() {
				got, err := read(ctx, s.Track())
				results <- result{got, err}
			}()
		}
		write(t, tr, 0, 3, 2)
		tr.Close(nil)
		for range 2 {
			r := <-results
			if r.err != io.EOF || !slices.Equal(r.got, expected(0, 3, 2)) {
				t.Errorf("through the relay: %v (%v)", r.got, r.err)
			}
		}
	})
}

func metricValue(t *testing.T, text, name string) int64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			// The text format writes large values in exponent form
			// (1.048576e+06).
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f != math.Trunc(f) {
				t.Fatalf("%s: not an integer (%v)", line, err)
			}
			return int64(f)
		}
	}
	t.Fatalf("metric %s missing from:\n%s", name, text)
	return 0
}

func TestMetricsAndHealth(t *testing.T) {
	e := startRelay(t, "moqt")
	ns := wire.Namespace{"m"}
	_, tr, _ := e.publisher("/", ns, "t")
	ctx := ctxFor(t)
	sub, err := e.connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var re *moqtransport.RequestError
	if _, err := e.connect("/", nil).Subscribe(ctx, wire.Namespace{"none"}, "t", moqtransport.SubscribeOptions{}); !errors.As(err, &re) {
		t.Fatal(err)
	}
	write(t, tr, 0, 2, 5)
	r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	for n := 0; n < 10; {
		ev, err := r.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == moqtransport.EventObject {
			n++
		}
	}
	h := relay.OpsHandler(e.rs, false)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	code, text := get("/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for name, want := range map[string]int64{
		"moq_relay_connections_total":         3,
		"moq_relay_active_connections":        3,
		"moq_relay_announce_ok_total":         1,
		"moq_relay_announced_namespaces":      1,
		"moq_relay_subscribe_not_found_total": 1,
		"moq_relay_active_subscriptions":      1,
		"moq_relay_active_tracks":             1,
		"moq_relay_objects_received_total":    10,
		"moq_relay_objects_sent_total":        10,
	} {
		if got := metricValue(t, text, name); got != want {
			t.Errorf("%s = %d, want %d", name, got, want)
		}
	}
	if got := metricValue(t, text, "moq_relay_bytes_sent_total"); got != metricValue(t, text, "moq_relay_bytes_received_total") || got == 0 {
		t.Errorf("bytes sent %d, received %d", got, metricValue(t, text, "moq_relay_bytes_received_total"))
	}
	if code, body := get("/health"); code != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Errorf("/health: %d %s", code, body)
	}
	if code, _ := get("/debug/pprof/"); code != 404 {
		t.Errorf("pprof served without being asked: %d", code)
	}
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	e.rs.Drain(dctx, "")
	if code, body := get("/health"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("/health while draining: %d %s", code, body)
	}
}

func fetchAll(ctx context.Context, f *moqtransport.Fetch) ([]string, error) {
	var out []string
	for {
		o, err := f.ReadObject(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, fmt.Sprintf("%d/%d=%s", o.Group, o.ID, o.Payload))
	}
}

func TestFetchForwardedWhenTheCacheLacksTheRange(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"f"}
		_, tr, h := e.publisher("/", ns, "t")
		ctx := ctxFor(t)
		write(t, tr, 0, 3, 2)

		// Nobody subscribed: the relay has nothing cached and asks the
		// publisher.
		s := e.connect("/", nil)
		f, err := s.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 2}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := fetchAll(ctx, f)
		if err != io.EOF || !slices.Equal(got, expected(0, 3, 2)) {
			t.Fatalf("forwarded fetch: %v (%v)", got, err)
		}

		// A subscription that starts in the middle of group 3 caches it
		// from there: a joining fetch for all of group 3 is forwarded too.
		w, _ := tr.OpenSubgroup(3, 0, moqtransport.SubgroupOptions{})
		_ = w.WriteObject(0, []byte("3/0"), nil)
		_ = w.WriteObject(1, []byte("3/1"), nil)
		sub, err := s.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l := sub.OK().Largest; l != (wire.Location{Group: 3, Object: 1}) {
			t.Fatalf("largest %v", l)
		}
		jf, err := s.Fetch(ctx, moqtransport.FetchOptions{Joining: sub, JoiningStart: 0})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fetchAll(ctx, jf); err != io.EOF || !slices.Equal(got, []string{"3/0=3/0", "3/1=3/1"}) {
			t.Errorf("joining fetch through the relay: %v (%v)", got, err)
		}
		if n := h.subscribes.Load(); n < 1 {
			t.Errorf("the publisher saw %d SUBSCRIBEs", n)
		}
	})
}

func TestSessionLimit(t *testing.T) {
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rs := relay.NewServer(relay.New(relay.Config{MaxSessions: 2}), srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rs.Serve(ctx)
	}()
	t.Cleanup(func() {
		checkUpstream(t, rs.Relay) // the test's sessions ending
		cancel()
		rs.Close()
		_ = srv.Close()
		<-done
		checkUpstream(t, rs.Relay)
	})
	e := &relayEnv{t: t, scheme: "moqt", srv: srv, rs: rs}
	e.connect("/", nil)
	e.connect("/", nil)
	waitFor(t, "two sessions", func() bool { return rs.Sessions() == 2 })
	// The close may come before or after the client reads SERVER_SETUP.
	tctx := ctxFor(t)
	fp, _ := srv.Fingerprint()
	d, err := moqnative.Dial(tctx, fmt.Sprintf("moqt://%s/", srv.Addr()), moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	third, err := moqtransport.Connect(tctx, d.Conn, &moqtransport.Config{Path: d.Path})
	if err == nil {
		defer third.Close()
		select {
		case <-third.Done():
		case <-tctx.Done():
			t.Fatal("a session past the limit stayed open")
		}
		err = third.Err()
	}
	var ce *moqtransport.ConnError
	if !errors.As(err, &ce) || ce.Code != wire.InternalError || !strings.Contains(ce.Reason, "relay full") {
		t.Fatalf("third session ended with %v, want INTERNAL_ERROR relay full", err)
	}
	if rs.Sessions() != 2 {
		t.Errorf("sessions %d", rs.Sessions())
	}
}

// The relay's metrics follow Prometheus's naming conventions (promlint),
// and a second relay in the process registers its own without colliding.
func TestMetricsLint(t *testing.T) {
	r := relay.New(relay.Config{})
	problems, err := testutil.GatherAndLint(r.Metrics().Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "moq_relay_") {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
	if relay.New(relay.Config{}).Metrics().Registry() == r.Metrics().Registry() {
		t.Error("two relays share a registry")
	}
	// The delivery histogram is observed once per object and subscriber:
	// it must not allocate.
	if n := testing.AllocsPerRun(1000, func() { relay.ObserveDelivery(r, 3*time.Millisecond) }); n != 0 {
		t.Errorf("observing a delivery latency allocates %v times", n)
	}
}

// TestFetchCountsNoSubscriber: FETCH and TRACK_STATUS have their own
// handler paths. Served from the relay's cache or forwarded to the
// publisher, they neither count as subscribers in the relay's metrics nor
// hold a reference on the relayed track: when the only SUBSCRIBE ends, the
// upstream subscription ends with it.
func TestFetchCountsNoSubscriber(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"count"}
		_, tr, h := e.publisher("/", ns, "t")
		other := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "other"}, moqtransport.TrackConfig{})
		h.Add(other)
		write(t, other, 0, 1, 2)
		ctx := ctxFor(t)
		// moq_relay_subscribers_total and moq_relay_active_subscriptions.
		counts := func() (subscribers, active int64) {
			var b strings.Builder
			if err := e.rs.Relay.WriteMetrics(&b); err != nil {
				t.Fatal(err)
			}
			return metricValue(t, b.String(), "moq_relay_subscribers_total"), metricValue(t, b.String(), "moq_relay_active_subscriptions")
		}

		viewer := e.connect("/", nil)
		sub, err := viewer.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		write(t, tr, 0, 3, 2)
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		for n := 0; n < 6; {
			ev, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind == moqtransport.EventObject {
				n++
			}
		}
		r.Close()
		subscribers, active := counts()
		if subscribers != 1 || active != 1 || h.subscribes.Load() != 1 {
			t.Fatalf("after one SUBSCRIBE: subscribers_total %d, active %d, upstream SUBSCRIBEs %d; want 1, 1, 1",
				subscribers, active, h.subscribes.Load())
		}

		fetcher := e.connect("/", nil)
		// From the relay's cache: the publisher sees no FETCH.
		f, err := fetcher.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "t", Start: wire.Location{Group: 1}, End: wire.Location{Group: 2}})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fetchAll(ctx, f); err != io.EOF || !slices.Equal(got, expected(1, 3, 2)) {
			t.Fatalf("fetch from the cache: %v (%v)", got, err)
		}
		if n := h.fetches.Load(); n != 0 {
			t.Errorf("a fetch the cache holds reached the publisher (%d FETCHes)", n)
		}
		// Forwarded: a track nobody subscribed to.
		f, err = fetcher.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "other", End: wire.Location{Group: 0}})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fetchAll(ctx, f); err != io.EOF || !slices.Equal(got, expected(0, 1, 2)) {
			t.Fatalf("forwarded fetch: %v (%v)", got, err)
		}
		if n := h.fetches.Load(); n != 1 {
			t.Errorf("the publisher saw %d FETCHes, want 1", n)
		}
		if _, err := fetcher.TrackStatus(ctx, ns, "t"); err != nil {
			t.Fatal(err)
		}
		got, gotActive := counts()
		if up := h.subscribes.Load(); got != subscribers || gotActive != active || up != 1 {
			t.Errorf("after FETCHes and TRACK_STATUS: subscribers_total %d, active %d, upstream SUBSCRIBEs %d; want %d, %d, 1",
				got, gotActive, h.subscribes.Load(), subscribers, active)
		}

		// The SUBSCRIBE was the only reference: its end takes the
		// upstream subscription with it.
		if err := sub.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the upstream subscription to end", func() bool { return h.ended.Load() == 1 })
		if _, n := counts(); n != 0 {
			t.Errorf("active subscriptions %d after the only one ended", n)
		}
	})
}
