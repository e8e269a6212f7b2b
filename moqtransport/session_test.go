package moqtransport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// transports are the two ways to reach a server: raw QUIC and WebTransport.
var transports = []string{"moqt", "https"}

// env is a real loopback server whose sessions run with serverCfg.
type env struct {
	t        *testing.T
	srv      *moqnative.Server
	scheme   string
	sessions chan *moqtransport.Session
	errs     chan error
}

func newEnv(t *testing.T, scheme string, serverCfg *moqtransport.Config) *env {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, srv: srv, scheme: scheme, sessions: make(chan *moqtransport.Session, 16), errs: make(chan error, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []*moqtransport.Session
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := srv.Accept(ctx)
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := moqtransport.Accept(ctx, in.Conn, in.Path, serverCfg)
				if err != nil {
					e.errs <- err
					return
				}
				mu.Lock()
				all = append(all, s)
				mu.Unlock()
				e.sessions <- s
			}()
		}
	}()
	t.Cleanup(func() {
		cancel()
		mu.Lock()
		for _, s := range all {
			_ = s.Close()
		}
		mu.Unlock()
		_ = srv.Close()
		wg.Wait()
	})
	return e
}

func (e *env) url(path string) string {
	return fmt.Sprintf("%s://%s%s", e.scheme, e.srv.Addr(), path)
}

func (e *env) clientTLS() moqnative.ClientConfig {
	fp, _ := e.srv.Fingerprint()
	return moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}}
}

// dialRaw connects without a MoQT session.
func (e *env) dialRaw(path string) *moqnative.Dialed {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d, err := moqnative.Dial(ctx, e.url(path), e.clientTLS())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = d.Close() })
	return d
}

// dial opens a client session and returns it with the server's side.
func (e *env) dial(cfg *moqtransport.Config) (*moqtransport.Session, *moqtransport.Session) {
	e.t.Helper()
	d := e.dialRaw("/app")
	c := moqtransport.Config{}
	if cfg != nil {
		c = *cfg
	}
	c.Path, c.Authority = d.Path, d.Authority
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := moqtransport.Connect(ctx, d.Conn, &c)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = client.Close() })
	select {
	case s := <-e.sessions:
		return client, s
	case err := <-e.errs:
		e.t.Fatalf("server setup failed: %v", err)
	case <-ctx.Done():
		e.t.Fatal("server session did not start")
	}
	return nil, nil
}

func forEachTransport(t *testing.T, f func(t *testing.T, scheme string)) {
	for _, scheme := range transports {
		t.Run(scheme, func(t *testing.T) { f(t, scheme) })
	}
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSetup(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := newEnv(t, scheme, &moqtransport.Config{Implementation: "server-impl"})
		client, server := e.dial(&moqtransport.Config{Implementation: "client-impl"})
		if client.Version() != wire.Draft14 || server.Version() != wire.Draft14 {
			t.Errorf("versions %s %s, want draft-14", client.Version(), server.Version())
		}
		if got := server.PeerImplementation(); got != "client-impl" {
			t.Errorf("server saw implementation %q", got)
		}
		if got := client.PeerImplementation(); got != "server-impl" {
			t.Errorf("client saw implementation %q", got)
		}
		if got := server.Path(); got != "/app" {
			t.Errorf("server path %q, want /app", got)
		}
		if scheme == "moqt" && server.Authority() != e.srv.Addr().String() {
			t.Errorf("server authority %q, want %q", server.Authority(), e.srv.Addr())
		}
	})
}

// publishObjects writes groups of objects: group g has n objects, the last
// one an End of Group status; object 1 of each group has an extension.
func publishObjects(t *testing.T, tr *moqtransport.Track, from, to uint64, n int) {
	t.Helper()
	ext, _ := wire.BuildExtensions(wire.KeyValue{Type: 0x21, Bytes: []byte("meta")})
	for g := from; g < to; g++ {
		w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{Priority: 7, EndOfGroup: true, Extensions: true})
		if err != nil {
			t.Fatal(err)
		}
		for i := range n - 1 {
			var e wire.Extensions
			if i == 1 {
				e = ext
			}
			// IDs 0, 2, 4, ...: gaps carry over the wire unchanged.
			if err := w.WriteObject(uint64(2*i), fmt.Appendf(nil, "g%d-o%d", g, 2*i), e); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteStatus(uint64(2*(n-1)), wire.StatusEndOfGroup, nil); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// collect reads objects from a track until it ends, sorted by location:
// subgroups travel on streams of their own, so groups can arrive in any
// order.
func collect(ctx context.Context, tr *moqtransport.Track) ([]*moqtransport.Object, error) {
	r := tr.NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	var out []*moqtransport.Object
	for {
		ev, err := r.Next(ctx)
		if err != nil {
			slices.SortFunc(out, func(a, b *moqtransport.Object) int { return a.Location().Compare(b.Location()) })
			return out, err
		}
		if ev.Kind == moqtransport.EventObject {
			out = append(out, ev.Object)
		}
	}
}

func TestSubscribeDeliversObjectsEndToEnd(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"live", "cam"}, Name: "video"}
		tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
		tracks.Add(tr)
		e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler()})
		client, _ := e.dial(nil)
		ctx := timeout(t)

		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
		if err != nil {
			t.Fatal(err)
		}
		if ok := sub.OK(); ok.ContentExists || ok.GroupOrder != wire.GroupOrderAscending {
			t.Errorf("SUBSCRIBE_OK %+v, want no content and ascending order", ok)
		}
		done := make(chan struct{})
		var got []*moqtransport.Object
		var readErr error
		go func() {
			defer close(done)
			got, readErr = collect(ctx, sub.Track())
		}()
		publishObjects(t, tr, 0, 3, 4)
		tr.Close(nil)
		<-done
		if readErr != io.EOF {
			t.Fatalf("reading the track: %v, want io.EOF after PUBLISH_DONE TRACK_ENDED", readErr)
		}
		if err := sub.Err(); err != nil {
			t.Errorf("subscription ended with %v, want nil (TRACK_ENDED)", err)
		}
		if code, reason, ok := sub.DoneStatus(); !ok || code != moqtransport.DoneTrackEnded {
			t.Errorf("DoneStatus %v %q %v, want TRACK_ENDED", code, reason, ok)
		}
		if len(got) != 12 {
			for _, o := range got {
				t.Logf("got %v %s %q", o.Location(), o.Status, o.Payload)
			}
			t.Fatalf("got %d objects, want 12", len(got))
		}
		for i, o := range got {
			g, k := uint64(i/4), i%4
			if o.Group != g || o.ID != uint64(2*k) || o.PublisherPriority != 7 {
				t.Errorf("object %d at {%d,%d} prio %d, want {%d,%d} prio 7", i, o.Group, o.ID, o.PublisherPriority, g, 2*k)
			}
			if k == 3 {
				if o.Status != wire.StatusEndOfGroup || len(o.Payload) != 0 {
					t.Errorf("object %d: status %s, %d bytes; want EndOfGroup", i, o.Status, len(o.Payload))
				}
				continue
			}
			if want := fmt.Sprintf("g%d-o%d", g, 2*k); string(o.Payload) != want {
				t.Errorf("object %d payload %q, want %q", i, o.Payload, want)
			}
			if kv, ok := o.Extensions.Get(0x21); (k == 1) != ok || (ok && string(kv.Bytes) != "meta") {
				t.Errorf("object %d extensions %x", i, []byte(o.Extensions))
			}
		}
	})
}

func TestSubscribeUnknownTrack(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := newEnv(t, scheme, &moqtransport.Config{Handler: (&moqtransport.Tracks{}).Handler()})
		client, _ := e.dial(nil)
		_, err := client.Subscribe(timeout(t), wire.Namespace{"nope"}, "x", moqtransport.SubscribeOptions{})
		var re *moqtransport.RequestError
		if !errors.As(err, &re) || re.Message != wire.TypeSubscribeError || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
			t.Fatalf("Subscribe: %v, want SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST", err)
		}
		// The session survives a refused request.
		if _, err := client.Subscribe(timeout(t), wire.Namespace{"nope"}, "y", moqtransport.SubscribeOptions{}); !errors.As(err, &re) {
			t.Fatalf("second Subscribe: %v", err)
		}
	})
}

func TestSubscribeFilters(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"f"}, Name: "t"}
		tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
		tracks.Add(tr)
		e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler()})
		ctx := timeout(t)
		publishObjects(t, tr, 0, 2, 4) // largest is {1,6}

		cases := []struct {
			filter wire.Filter
			first  wire.Location
			last   wire.Location
		}{
			{wire.Filter{Type: wire.FilterNextGroupStart}, wire.Location{Group: 2}, wire.Location{Group: 4, Object: 6}},
			{wire.Filter{Type: wire.FilterAbsoluteStart, Start: wire.Location{Group: 3, Object: 2}}, wire.Location{Group: 3, Object: 2}, wire.Location{Group: 4, Object: 6}},
			{wire.Filter{Type: wire.FilterAbsoluteRange, Start: wire.Location{Group: 2, Object: 4}, EndGroup: 3}, wire.Location{Group: 2, Object: 4}, wire.Location{Group: 3, Object: 6}},
		}
		var subs []*moqtransport.Subscription
		for _, c := range cases {
			// One subscription per track per session (§5.1): a session each.
			client, _ := e.dial(nil)
			sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{Filter: c.filter})
			if err != nil {
				t.Fatal(err)
			}
			if ok := sub.OK(); !ok.ContentExists || ok.Largest != (wire.Location{Group: 1, Object: 6}) {
				t.Errorf("%s: SUBSCRIBE_OK largest %v exists %v, want {1,6}", c.filter.Type, ok.Largest, ok.ContentExists)
			}
			subs = append(subs, sub)
		}
		publishObjects(t, tr, 2, 5, 4)
		tr.Close(nil)
		for i, c := range cases {
			got, err := collect(ctx, subs[i].Track())
			if err != io.EOF {
				t.Fatalf("%s: %v", c.filter.Type, err)
			}
			if len(got) == 0 || got[0].Location() != c.first || got[len(got)-1].Location() != c.last {
				t.Errorf("%s: got %d objects, first %v last %v; want %v to %v", c.filter.Type, len(got), first(got), last(got), c.first, c.last)
			}
		}
	})
}

func first(os []*moqtransport.Object) wire.Location {
	if len(os) == 0 {
		return wire.Location{}
	}
	return os[0].Location()
}

func last(os []*moqtransport.Object) wire.Location {
	if len(os) == 0 {
		return wire.Location{}
	}
	return os[len(os)-1].Location()
}

func TestSubscribeInvalidRange(t *testing.T) {
	tracks := &moqtransport.Tracks{}
	name := wire.FullTrackName{Namespace: wire.Namespace{"f"}, Name: "t"}
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks.Add(tr)
	publishObjects(t, tr, 0, 3, 2)
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: tracks.Handler()})
	client, _ := e.dial(nil)
	_, err := client.Subscribe(timeout(t), name.Namespace, name.Name, moqtransport.SubscribeOptions{
		Filter: wire.Filter{Type: wire.FilterAbsoluteRange, Start: wire.Location{Group: 0}, EndGroup: 1},
	})
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != uint64(wire.SubscribeInvalidRange) {
		t.Fatalf("Subscribe to a finished range: %v, want INVALID_RANGE", err)
	}
}

func TestUnsubscribeEndsDelivery(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"u"}, Name: "t"}
		tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
		tracks.Add(tr)
		e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler(), MaxRequests: 1})
		client, _ := e.dial(nil)
		ctx := timeout(t)
		// With a window of one request, a second SUBSCRIBE is possible only
		// after the first one's UNSUBSCRIBE freed its request ID.
		for i := range 3 {
			sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
			if err != nil {
				t.Fatalf("subscribe %d: %v", i, err)
			}
			if err := sub.Unsubscribe(); err != nil {
				t.Fatal(err)
			}
			<-sub.Done()
		}
	})
}

func TestRequestFlowControlBlocks(t *testing.T) {
	tracks := &moqtransport.Tracks{}
	name := wire.FullTrackName{Namespace: wire.Namespace{"r"}, Name: "t"}
	tracks.Add(moqtransport.NewTrack(name, moqtransport.TrackConfig{}))
	ctx := timeout(t)

	// Refused requests finish at once: with a window of two, many refused
	// requests in a row go through because the server tops the window up.
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: tracks.Handler(), MaxRequests: 2})
	client, _ := e.dial(nil)
	for i := range 6 {
		var re *moqtransport.RequestError
		if _, err := client.Subscribe(ctx, name.Namespace, fmt.Sprint(i), moqtransport.SubscribeOptions{}); !errors.As(err, &re) {
			t.Fatalf("refused subscribe %d: %v", i, err)
		}
	}

	// A client that may open only one request blocks on the second until
	// the first is over, and says so with REQUESTS_BLOCKED.
	e2 := newEnv(t, "moqt", &moqtransport.Config{Handler: tracks.Handler(), MaxRequests: 1})
	c2, _ := e2.dial(nil)
	sub, err := c2.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := c2.Subscribe(short, name.Namespace, "other", moqtransport.SubscribeOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second request past the grant: %v, want it to block until the deadline", err)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	var re *moqtransport.RequestError
	if _, err := c2.Subscribe(ctx, name.Namespace, "other", moqtransport.SubscribeOptions{}); !errors.As(err, &re) {
		t.Fatalf("request after the grant grew: %v, want TRACK_DOES_NOT_EXIST", err)
	}
}

// acceptAll accepts every namespace and records them.
type acceptAll struct {
	mu   sync.Mutex
	got  []string
	done []string
}

func (a *acceptAll) PublishNamespace(_ context.Context, _ *moqtransport.Session, req *wire.PublishNamespace) error {
	if req.Namespace[0] == "forbidden" {
		return moqtransport.NamespaceError(wire.NamespaceUnauthorized, "not here")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, req.Namespace.String())
	return nil
}

func (a *acceptAll) PublishNamespaceDone(_ *moqtransport.Session, ns wire.Namespace) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = append(a.done, ns.String())
}

func TestPublishNamespace(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		h := &acceptAll{}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: moqtransport.Handler{PublishNamespace: h.PublishNamespace, PublishNamespaceDone: h.PublishNamespaceDone}})
		client, _ := e.dial(nil)
		ctx := timeout(t)
		pub, err := client.PublishNamespace(ctx, wire.Namespace{"live", "room"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = client.PublishNamespace(ctx, wire.Namespace{"forbidden"}, nil)
		var re *moqtransport.RequestError
		if !errors.As(err, &re) || re.Code != uint64(wire.NamespaceUnauthorized) {
			t.Fatalf("forbidden namespace: %v, want PUBLISH_NAMESPACE_ERROR UNAUTHORIZED", err)
		}
		if err := pub.Close(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			h.mu.Lock()
			n := len(h.done)
			h.mu.Unlock()
			if n == 1 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.got) != 1 || h.got[0] != "live/room" || len(h.done) != 1 || h.done[0] != "live/room" {
			t.Errorf("server saw namespaces %v, done %v", h.got, h.done)
		}
	})
}

func TestNamespaceRefusedByDefault(t *testing.T) {
	e := newEnv(t, "https", nil)
	client, _ := e.dial(nil)
	_, err := client.PublishNamespace(timeout(t), wire.Namespace{"x"}, nil)
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != uint64(wire.NamespaceNotSupported) {
		t.Fatalf("PublishNamespace to a server without a handler: %v, want NOT_SUPPORTED", err)
	}
}

func TestGoAway(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := newEnv(t, scheme, nil)
		client, server := e.dial(nil)
		if err := server.SendGoAway("moqt://elsewhere.example:4443/app"); err != nil {
			t.Fatal(err)
		}
		select {
		case <-client.GoAway():
		case <-timeout(t).Done():
			t.Fatal("no GOAWAY")
		}
		if got := client.GoAwayURI(); got != "moqt://elsewhere.example:4443/app" {
			t.Errorf("GOAWAY URI %q", got)
		}
		if _, err := client.Subscribe(timeout(t), wire.Namespace{"a"}, "b", moqtransport.SubscribeOptions{}); !errors.Is(err, moqtransport.ErrGoingAway) {
			t.Errorf("new request after GOAWAY: %v, want ErrGoingAway", err)
		}
		if client.Err() != nil || server.Err() != nil {
			t.Errorf("GOAWAY ended a session: %v %v", client.Err(), server.Err())
		}
	})
}

func TestSessionCloseCodeReachesPeer(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := newEnv(t, scheme, nil)
		client, server := e.dial(nil)
		server.CloseWithError(wire.GoawayTimeout, "drained")
		select {
		case <-client.Done():
		case <-timeout(t).Done():
			t.Fatal("client session did not end")
		}
		var ce *moqtransport.ConnError
		if err := client.Err(); !errors.As(err, &ce) || ce.Code != wire.GoawayTimeout || !ce.Remote {
			t.Fatalf("client ended with %v, want the peer's GOAWAY_TIMEOUT", err)
		}
	})
}

func TestDrain(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"g"}, Name: "t"}
		tracks.Add(moqtransport.NewTrack(name, moqtransport.TrackConfig{}))
		e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler()})
		ctx := timeout(t)

		// An idle client gets GOAWAY; the drain then closes with NO_ERROR.
		idle, server := e.dial(nil)
		if err := server.Drain(ctx, ""); err != nil {
			t.Fatal(err)
		}
		<-idle.Done()
		select {
		case <-idle.GoAway():
		default:
			t.Error("the idle client got no GOAWAY")
		}
		var ce *moqtransport.ConnError
		if err := idle.Err(); !errors.As(err, &ce) || ce.Code != wire.NoError {
			t.Errorf("idle client ended with %v, want NO_ERROR", err)
		}

		// A client that keeps a subscription open past the grace period
		// is closed with GOAWAY_TIMEOUT.
		busy, server := e.dial(nil)
		if _, err := busy.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{}); err != nil {
			t.Fatal(err)
		}
		grace, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		if err := server.Drain(grace, ""); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Drain with an open subscription: %v", err)
		}
		<-busy.Done()
		if err := busy.Err(); !errors.As(err, &ce) || ce.Code != wire.GoawayTimeout {
			t.Errorf("busy client ended with %v, want GOAWAY_TIMEOUT", err)
		}
	})
}

// Concurrent requests on one session must reach the peer in request-ID
// order, or the peer closes with INVALID_REQUEST_ID.
func TestConcurrentRequestsKeepIDOrder(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := newEnv(t, scheme, &moqtransport.Config{Handler: (&moqtransport.Tracks{}).Handler()})
		client, _ := e.dial(nil)
		ctx := timeout(t)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := client.Subscribe(ctx, wire.Namespace{"c"}, fmt.Sprint(i), moqtransport.SubscribeOptions{})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			var re *moqtransport.RequestError
			if !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
				t.Fatalf("concurrent SUBSCRIBE: %v, want TRACK_DOES_NOT_EXIST", err)
			}
		}
		if err := client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}
