package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// nativeDial connects to another relay as moq-relay does: moqnative.Dial,
// then MoQT setup with the relay's configuration (PATH and AUTHORITY from
// the URL for raw QUIC), and the connection closed when the session ends.
func nativeDial(tls moqnative.ClientTLS) relay.DialFunc {
	return func(ctx context.Context, url string, cfg *moqtransport.Config) (*moqtransport.Session, error) {
		d, err := moqnative.Dial(ctx, url, moqnative.ClientConfig{TLS: tls})
		if err != nil {
			return nil, err
		}
		c := *cfg
		c.Path, c.Authority = d.Path, d.Authority
		s, err := moqtransport.Connect(ctx, d.Conn, &c)
		if err != nil {
			_ = d.Close()
			return nil, err
		}
		go func() {
			<-s.Done()
			_ = d.Close()
		}()
		return s, nil
	}
}

// startCluster starts n relays on loopback with URLs scheme://127.0.0.1:port
// and the coordinators coord makes for them; the relays trust each other
// by their certificates' fingerprints.
func startCluster(t *testing.T, scheme string, n int, coord func(i int, node string) relay.Coordinator, tweak ...func(i int, c *relay.Config)) ([]*relayEnv, []string) {
	t.Helper()
	srvs := make([]*moqnative.Server, n)
	nodes := make([]string, n)
	var fps [][32]byte
	for i := range n {
		srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		srvs[i] = srv
		fp, _ := srv.Fingerprint()
		fps = append(fps, fp)
		nodes[i] = fmt.Sprintf("%s://%s", scheme, srv.Addr())
	}
	envs := make([]*relayEnv, n)
	for i, srv := range srvs {
		cfg := relay.Config{
			Coordinator: coord(i, nodes[i]),
			Node:        nodes[i],
			Dial:        nativeDial(moqnative.ClientTLS{ServerCertificateHashes: fps}),
		}
		for _, f := range tweak {
			f(i, &cfg)
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
		envs[i] = &relayEnv{t: t, scheme: scheme, srv: srv, rs: rs}
	}
	return envs, nodes
}

type readResult struct {
	got []string
	err error
}

func readAsync(ctx context.Context, tr *moqtransport.Track) <-chan readResult {
	c := make(chan readResult, 1)
	go func() {
		got, err := read(ctx, tr)
		c <- readResult{got, err}
	}()
	return c
}

func wantObjects(t *testing.T, who string, c <-chan readResult, want []string) {
	t.Helper()
	r := <-c
	if r.err != io.EOF || !slices.Equal(r.got, want) {
		t.Errorf("%s: %v after %d objects %v, want io.EOF after %v", who, r.err, len(r.got), r.got, want)
	}
}

// TestClusterThreeRelays: the publisher on relay 0, subscribers on relays
// 1 and 2 through moq-api and Redis; every object arrives at both, and the
// namespace leaves the registry with its publisher.
func TestClusterThreeRelays(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		reg := startRegistry(t, 0)
		relays, nodes := startCluster(t, scheme, 3, func(_ int, node string) relay.Coordinator {
			return reg.apiCoordinator(t, node, 0)
		})
		ns := wire.Namespace{"live", "cam"}
		pub, tr, h := relays[0].publisher("/", ns, "video")
		if got := reg.origin(t, "", ns); got != nodes[0] {
			t.Fatalf("the registry has %q for the namespace, want relay 0's %q", got, nodes[0])
		}
		ctx := ctxFor(t)
		var results []<-chan readResult
		for i := 1; i <= 2; i++ {
			// Two subscribers per relay, one upstream subscription.
			for range 2 {
				sub, err := relays[i].connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
				if err != nil {
					t.Fatalf("subscriber on relay %d: %v", i, err)
				}
				results = append(results, readAsync(ctx, sub.Track()))
			}
		}
		if got := h.subscribes.Load(); got != 1 {
			t.Errorf("the publisher got %d SUBSCRIBEs, want 1 (relay 0 shares its upstream subscription)", got)
		}
		write(t, tr, 0, 5, 3)
		tr.Close(nil)
		for i, c := range results {
			wantObjects(t, fmt.Sprintf("subscriber %d on relay %d", i%2, 1+i/2), c, expected(0, 5, 3))
		}
		// A namespace nobody publishes: TRACK_DOES_NOT_EXIST everywhere.
		var re *moqtransport.RequestError
		if _, err := relays[2].connect("/", nil).Subscribe(ctx, wire.Namespace{"nobody"}, "x", moqtransport.SubscribeOptions{}); !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
			t.Errorf("an unknown namespace: %v", err)
		}
		// Publisher disconnect: the registration goes with it.
		_ = pub.Close()
		waitFor(t, "the namespace to leave the registry", func() bool { return reg.origin(t, "", ns) == "" })
	})
}

// TestClusterScopes: scopes hold across relays, and a scoped subscriber
// finds an unscoped publisher on another relay as on its own.
func TestClusterScopes(t *testing.T) {
	reg := startRegistry(t, 0)
	relays, _ := startCluster(t, "moqt", 2, func(_ int, node string) relay.Coordinator {
		return reg.apiCoordinator(t, node, 0)
	})
	ctx := ctxFor(t)
	var re *moqtransport.RequestError
	relays[0].publisher("/room", wire.Namespace{"scoped"}, "t")
	if _, err := relays[1].connect("/room", nil).Subscribe(ctx, wire.Namespace{"scoped"}, "t", moqtransport.SubscribeOptions{}); err != nil {
		t.Errorf("a subscriber of the same scope on another relay: %v", err)
	}
	if _, err := relays[1].connect("/other", nil).Subscribe(ctx, wire.Namespace{"scoped"}, "t", moqtransport.SubscribeOptions{}); !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
		t.Errorf("a subscriber of another scope: %v, want TRACK_DOES_NOT_EXIST", err)
	}
	relays[0].publisher("/", wire.Namespace{"global"}, "t")
	if _, err := relays[1].connect("/room", nil).Subscribe(ctx, wire.Namespace{"global"}, "t", moqtransport.SubscribeOptions{}); err != nil {
		t.Errorf("a scoped subscriber of an unscoped publisher on another relay: %v", err)
	}
	// A namespace another relay publishes is refused here.
	s := relays[1].connect("/", nil)
	if _, err := s.PublishNamespace(ctx, wire.Namespace{"global"}, nil); !errors.As(err, &re) {
		t.Errorf("publishing a namespace another relay has: %v", err)
	}
}

// countingCoordinator sends every namespace to one URL and counts lookups.
type countingCoordinator struct {
	url     atomic.Pointer[string]
	lookups atomic.Int32
}

type nopRegistration struct{}

func (nopRegistration) Close() error { return nil }

func (c *countingCoordinator) Register(context.Context, string, wire.Namespace) (relay.Registration, error) {
	return nopRegistration{}, nil
}

func (c *countingCoordinator) Lookup(context.Context, string, wire.Namespace) (string, error) {
	c.lookups.Add(1)
	return *c.url.Load(), nil
}

// TestFetchCoordinatorFailure: while the coordinator cannot be read, a
// scoped session's FETCH is refused with INTERNAL_ERROR, as its SUBSCRIBE
// is. The relay cannot tell whether another relay serves the namespace in
// the session's scope (which would shadow the unscoped publisher here), so
// neither the unscoped publisher serves it nor is the track said not to
// exist. A session of the publisher's own scope needs no lookup and is
// served.
func TestFetchCoordinatorFailure(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.json")
	const node = "moqt://127.0.0.1:1"
	e := startRelayWith(t, "moqt", relay.Config{Coordinator: fileCoordinator(t, path, node), Node: node})
	ns := wire.Namespace{"live"}
	_, tr, h := e.publisher("/", ns, "video")
	write(t, tr, 0, 3, 2)
	if err := os.WriteFile(path, []byte("not JSON"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t)
	scoped := e.connect("/room", nil)
	if _, err := scoped.Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{}); !errors.Is(err, moqtransport.SubscribeError(wire.SubscribeInternalError, "")) {
		t.Errorf("SUBSCRIBE while the coordinator fails: %v, want INTERNAL_ERROR", err)
	}
	fetch := moqtransport.FetchOptions{Namespace: ns, Name: "video", End: wire.Location{Group: 2}}
	if _, err := scoped.Fetch(ctx, fetch); !errors.Is(err, moqtransport.FetchError(wire.FetchInternalError, "")) {
		t.Errorf("FETCH while the coordinator fails: %v, want INTERNAL_ERROR", err)
	}
	if n, s := h.fetches.Load(), h.subscribes.Load(); n != 0 || s != 0 {
		t.Errorf("the unscoped publisher got %d FETCHes and %d SUBSCRIBEs from a scoped session, want none", n, s)
	}
	f, err := e.connect("/", nil).Fetch(ctx, fetch)
	if err != nil {
		t.Fatalf("FETCH in the publisher's scope: %v", err)
	}
	if got, err := fetchAll(ctx, f); err != io.EOF || !slices.Equal(got, expected(0, 3, 2)) {
		t.Errorf("FETCH in the publisher's scope: %v (%v)", got, err)
	}
}

// TestClusterLoopPrevented: stale registrations that send relay 0 to relay
// 1 and relay 1 to relay 0 end in TRACK_DOES_NOT_EXIST, not a loop: a
// relay serves another relay from its local publishers only.
func TestClusterLoopPrevented(t *testing.T) {
	coords := []*countingCoordinator{{}, {}}
	relays, nodes := startCluster(t, "moqt", 2, func(i int, _ string) relay.Coordinator { return coords[i] })
	coords[0].url.Store(&nodes[1])
	coords[1].url.Store(&nodes[0])
	ctx := ctxFor(t)
	start := time.Now()
	_, err := relays[0].connect("/", nil).Subscribe(ctx, wire.Namespace{"stale"}, "t", moqtransport.SubscribeOptions{})
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
		t.Fatalf("subscribe through a loop of stale registrations: %v, want TRACK_DOES_NOT_EXIST", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the answer took %v", d)
	}
	if a, b := coords[0].lookups.Load(), coords[1].lookups.Load(); a != 1 || b != 0 {
		t.Errorf("lookups: relay 0 %d, relay 1 %d; want 1 and 0", a, b)
	}
	// A registration of our own with no local publisher is stale too.
	coords[0].url.Store(&nodes[0])
	if _, err := relays[0].connect("/", nil).Subscribe(ctx, wire.Namespace{"stale"}, "t", moqtransport.SubscribeOptions{}); !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
		t.Errorf("a stale registration of our own: %v", err)
	}
}

// TestClusterRedisRestart: Redis stops under a live cluster. Relayed
// tracks keep flowing (the relays' sessions are up); lookups fail until it
// is back; then the publisher's relay registers its namespace again at its
// next refresh, and a new subscriber on another relay finds it. The
// registry reports no TTL (moq-rs's moq-api), so that the relays refresh
// at their own short one while the entries live long.
func TestClusterRedisRestart(t *testing.T) {
	const ttl = 400 * time.Millisecond // refresh every 200 ms
	reg := startSilentRegistry(t, 0)
	relays, nodes := startCluster(t, "moqt", 3, func(_ int, node string) relay.Coordinator {
		return reg.apiCoordinator(t, node, ttl)
	})
	ns := wire.Namespace{"live"}
	_, tr, _ := relays[0].publisher("/", ns, "video")
	ctx := ctxFor(t)
	sub1, err := relays[1].connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got1 := readAsync(ctx, sub1.Track())
	write(t, tr, 0, 2, 3)

	reg.redis.Stop()
	write(t, tr, 2, 4, 3)
	waitFor(t, "objects during the outage", func() bool {
		l, ok := sub1.Track().Largest()
		return ok && l == wire.Location{Group: 3, Object: 2}
	})
	var re *moqtransport.RequestError
	if _, err := relays[2].connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{}); !errors.As(err, &re) || re.Code != uint64(wire.SubscribeInternalError) {
		t.Errorf("a lookup without Redis: %v, want INTERNAL_ERROR", err)
	}

	reg.redis.Restart() // empty: nothing is saved
	waitFor(t, "the namespace to be registered again", func() bool { return reg.origin(t, "", ns) == nodes[0] })
	sub2, err := relays[2].connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatalf("a new subscriber on relay 2 after the restart: %v", err)
	}
	got2 := readAsync(ctx, sub2.Track())
	write(t, tr, 4, 6, 3)
	tr.Close(nil)
	wantObjects(t, "the subscriber on relay 1", got1, expected(0, 6, 3))
	wantObjects(t, "the subscriber on relay 2", got2, expected(4, 6, 3))
}

// TestClusterFileCoordinator: two relays sharing a coordinator file.
func TestClusterFileCoordinator(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.json")
	relays, nodes := startCluster(t, "https", 2, func(_ int, node string) relay.Coordinator {
		return fileCoordinator(t, path, node)
	})
	ns := wire.Namespace{"live"}
	pub, tr, _ := relays[0].publisher("/", ns, "video")
	if got := readJSON(t, path)["namespaces"][""]["/live"]; got != nodes[0] {
		t.Fatalf("the file has %q for /live", got)
	}
	ctx := ctxFor(t)
	sub, err := relays[1].connect("/", nil).Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := readAsync(ctx, sub.Track())
	write(t, tr, 0, 3, 2)
	tr.Close(nil)
	wantObjects(t, "the subscriber on relay 1", got, expected(0, 3, 2))
	_ = pub.Close()
	waitFor(t, "the namespace to leave the file", func() bool { return len(readJSON(t, path)["namespaces"]) == 0 })
}

// TestClusterPublishOwnership: namespace ownership holds across the
// cluster for pushed tracks (PUBLISH) as for PUBLISH_NAMESPACE. A PUBLISH
// under a namespace another relay serves is refused with UNAUTHORIZED; a
// pushed track claims its namespace in the coordinator, so another relay
// refuses that namespace and routes its subscribers here; an unscoped
// publisher never shadows a scoped one of another relay. With the file
// coordinator on both transports, and moq-api with Redis.
func TestClusterPublishOwnership(t *testing.T) {
	for _, kind := range []string{"file", "api"} {
		t.Run(kind, func(t *testing.T) {
			schemes := []string{"moqt", "https"}
			if kind == "api" {
				schemes = schemes[:1] // the relay's side is the same; one transport is enough
			}
			for _, scheme := range schemes {
				t.Run(scheme, func(t *testing.T) {
					var coord func(i int, node string) relay.Coordinator
					var entry func(scope string, ns wire.Namespace) string
					if kind == "file" {
						path := filepath.Join(t.TempDir(), "coordinator.json")
						coord = func(_ int, node string) relay.Coordinator { return fileCoordinator(t, path, node) }
						entry = func(scope string, ns wire.Namespace) string {
							p := "/" + strings.Join(ns, "/")
							return readJSON(t, path)["namespaces"][scope][p]
						}
					} else {
						reg := startRegistry(t, 0)
						coord = func(_ int, node string) relay.Coordinator { return reg.apiCoordinator(t, node, 0) }
						entry = func(scope string, ns wire.Namespace) string { return reg.origin(t, scope, ns) }
					}
					testPublishOwnership(t, scheme, coord, entry)
				})
			}
		})
	}
}

func testPublishOwnership(t *testing.T, scheme string, coord func(i int, node string) relay.Coordinator, entry func(scope string, ns wire.Namespace) string) {
	relays, nodes := startCluster(t, scheme, 2, coord)
	ctx := ctxFor(t)
	ns := wire.Namespace{"live", "room"}
	_, owned, _ := relays[0].publisher("/room", ns, "v")

	// PUBLISH on relay 1 of relay 0's track, or of one under its
	// namespace: refused, and nothing is registered for it.
	attacker := relays[1].connect("/room", nil)
	under := wire.Namespace{"live", "room", "x"}
	for _, n := range []wire.Namespace{ns, under} {
		evil := moqtransport.NewTrack(wire.FullTrackName{Namespace: n, Name: "v"}, moqtransport.TrackConfig{})
		_, err := attacker.Publish(ctx, evil, moqtransport.PublishOptions{})
		wantRequestCode(t, "PUBLISH on relay 1 of "+n.String()+", which relay 0 serves", err, uint64(wire.PublishUnauthorized))
	}
	if got := entry("/room", under); got != "" {
		t.Errorf("the refused PUBLISH left a registration: %q", got)
	}

	// An unscoped publisher of the same namespace on relay 1 (another
	// scope: allowed) does not shadow relay 0's for a /room subscriber
	// of relay 1.
	_, shadow, _ := relays[1].publisher("/", ns, "v")
	sub, err := relays[1].connect("/room", nil).Subscribe(ctx, ns, "v", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := readAsync(ctx, sub.Track())
	write(t, shadow, 0, 1, 1)
	write(t, owned, 0, 2, 1)
	owned.Close(nil)
	wantObjects(t, "relay 1's /room subscriber", got, expected(0, 2, 1))

	// A track pushed to relay 1 claims its namespace in the cluster:
	// relay 0 refuses the namespace and routes its subscribers to
	// relay 1.
	pushedNS := wire.Namespace{"pushed"}
	pushed := moqtransport.NewTrack(wire.FullTrackName{Namespace: pushedNS, Name: "v"}, moqtransport.TrackConfig{})
	pusher := relays[1].connect("/room", nil)
	if _, err := pusher.Publish(ctx, pushed, moqtransport.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := entry("/room", pushedNS); got != nodes[1] {
		t.Fatalf("the coordinator has %q for the pushed track's namespace, want relay 1's %q", got, nodes[1])
	}
	_, err = relays[0].connect("/room", nil).PublishNamespace(ctx, pushedNS, nil)
	wantRequestCode(t, "PUBLISH_NAMESPACE on relay 0 of a namespace pushed to relay 1", err, uint64(wire.NamespaceUnauthorized))
	evil := moqtransport.NewTrack(wire.FullTrackName{Namespace: pushedNS, Name: "w"}, moqtransport.TrackConfig{})
	_, err = relays[0].connect("/room", nil).Publish(ctx, evil, moqtransport.PublishOptions{})
	wantRequestCode(t, "PUBLISH on relay 0 into a namespace pushed to relay 1", err, uint64(wire.PublishUnauthorized))
	sub, err = relays[0].connect("/room", nil).Subscribe(ctx, pushedNS, "v", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatalf("relay 0's subscriber of the track pushed to relay 1: %v", err)
	}
	got = readAsync(ctx, sub.Track())
	write(t, pushed, 0, 2, 1)
	pushed.Close(nil)
	wantObjects(t, "relay 0's subscriber of the pushed track", got, expected(0, 2, 1))
	// The publication's end takes its registration with it.
	_ = pusher.Close()
	waitFor(t, "the pushed namespace to leave the coordinator", func() bool { return entry("/room", pushedNS) == "" })
}

// TestClusterLongerNamespaceElsewhere: a namespace claimed on relay 1
// keeps its subscribers on relay 0 even after a session of relay 0
// publishes a shorter namespace over it (allowed: it came second, and the
// longer one stays its first owner's, as on one relay). Before, relay 0
// served its own publisher of the shorter namespace, which could take
// the track over for relay 0's subscribers.
func TestClusterLongerNamespaceElsewhere(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.json")
	relays, _ := startCluster(t, "moqt", 2, func(_ int, node string) relay.Coordinator { return fileCoordinator(t, path, node) })
	ctx := ctxFor(t)
	ns := wire.Namespace{"a", "b"}
	_, owned, _ := relays[1].publisher("/", ns, "t")
	// On relay 0, a session announces (a) and would serve (a, b)/t too.
	h := &countingTracks{}
	fake := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
	h.Add(fake)
	if _, err := relays[0].connect("/", h).PublishNamespace(ctx, wire.Namespace{"a"}, nil); err != nil {
		t.Fatalf("a shorter namespace over another relay's: %v", err)
	}
	sub, err := relays[0].connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := readAsync(ctx, sub.Track())
	write(t, fake, 0, 1, 1)
	write(t, owned, 0, 2, 1)
	owned.Close(nil)
	wantObjects(t, "relay 0's subscriber", got, expected(0, 2, 1))
	if n := h.subscribes.Load(); n != 0 {
		t.Errorf("the shorter namespace's publisher got %d SUBSCRIBEs for the longer one's track", n)
	}
}
