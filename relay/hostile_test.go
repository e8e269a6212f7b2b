package relay_test

// Hostile-peer tests: each one plays an attack from issue 10 against a
// relay over real loopback, on both transports, and checks the relay's
// answer and what it keeps afterwards against an explicit budget.

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/mlog"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

var hmacSecret = []byte("0123456789abcdef0123456789abcdef")

func hmacAuth(t *testing.T) *relay.TokenAuth {
	t.Helper()
	a, err := relay.NewHMACAuth(hmacSecret)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// userToken is an HMAC token with the given grants and lifetime.
func userToken(t *testing.T, pubs, subs []string, exp time.Time, edit ...func(*relay.Claims)) wire.Parameters {
	t.Helper()
	c := relay.Claims{Publish: pubs, Subscribe: subs, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(exp)}}
	for _, f := range edit {
		f(&c)
	}
	return tokenParams(t, jwt.NewWithClaims(jwt.SigningMethodHS256, c), hmacSecret)
}

// dialCfg opens a session to the relay at path with cfg (Path and
// Authority default to the URL's). It returns the setup error instead of
// failing the test; a session is closed when the test ends.
func (e *relayEnv) dialCfg(path string, cfg moqtransport.Config) (*moqtransport.Session, func(), error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fp, _ := e.srv.Fingerprint()
	d, err := moqnative.Dial(ctx, fmt.Sprintf("%s://%s%s", e.scheme, e.srv.Addr(), path),
		moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		e.t.Fatal(err)
	}
	if cfg.Path == "" {
		cfg.Path = d.Path
	}
	if cfg.Authority == "" {
		cfg.Authority = d.Authority
	}
	s, err := moqtransport.Connect(ctx, d.Conn, &cfg)
	if err != nil {
		_ = d.Close()
		return nil, func() {}, err
	}
	var once sync.Once
	closeFn := func() {
		once.Do(func() {
			_ = s.Close()
			_ = d.Close()
		})
	}
	e.t.Cleanup(closeFn)
	return s, closeFn, nil
}

// sessionEnd waits for a session to end and returns its error.
func sessionEnd(t *testing.T, s *moqtransport.Session) error {
	t.Helper()
	select {
	case <-s.Done():
		return s.Err()
	case <-time.After(5 * time.Second):
		t.Fatal("the session stayed open")
		return nil
	}
}

// wantClosedWith checks that setup failed, or the session ended, with code.
func wantClosedWith(t *testing.T, what string, s *moqtransport.Session, err error, code wire.SessionErrorCode) {
	t.Helper()
	if err == nil {
		err = sessionEnd(t, s)
	}
	var ce *moqtransport.ConnError
	if !errors.As(err, &ce) || ce.Code != code {
		t.Errorf("%s: %v, want the session closed with %v", what, err, code)
	}
}

func wantRequestCode(t *testing.T, what string, err error, code uint64) {
	t.Helper()
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != code {
		t.Errorf("%s: %v, want code %#x", what, err, code)
	}
}

// Row: PUBLISH under a namespace another session announced is refused,
// within a scope; across scopes the scoped publisher keeps serving its
// scope's subscribers, whatever an unscoped one publishes.
func TestHostilePublishIntoAnotherSessionsNamespace(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ctx := ctxFor(t)
		ns := wire.Namespace{"live", "room"}
		_, owned, _ := e.publisher("/", ns, "v")

		attacker := e.connect("/", nil)
		evil := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "v"}, moqtransport.TrackConfig{})
		_, err := attacker.Publish(ctx, evil, moqtransport.PublishOptions{})
		wantRequestCode(t, "PUBLISH into an announced namespace", err, uint64(wire.PublishUnauthorized))
		under := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"live", "room", "x"}, Name: "v"}, moqtransport.TrackConfig{})
		_, err = attacker.Publish(ctx, under, moqtransport.PublishOptions{})
		wantRequestCode(t, "PUBLISH under an announced namespace", err, uint64(wire.PublishUnauthorized))
		_, err = attacker.PublishNamespace(ctx, wire.Namespace{"live", "room", "x"}, nil)
		wantRequestCode(t, "PUBLISH_NAMESPACE under another session's namespace", err, uint64(wire.NamespaceUnauthorized))
		_, err = attacker.PublishNamespace(ctx, ns, nil)
		wantRequestCode(t, "PUBLISH_NAMESPACE of another session's namespace", err, uint64(wire.NamespaceUnauthorized))

		// A second PUBLISH of a pushed track is refused too.
		pushedNS := wire.Namespace{"pushed"}
		first := moqtransport.NewTrack(wire.FullTrackName{Namespace: pushedNS, Name: "v"}, moqtransport.TrackConfig{})
		if _, err := e.connect("/", nil).Publish(ctx, first, moqtransport.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		second := moqtransport.NewTrack(wire.FullTrackName{Namespace: pushedNS, Name: "v"}, moqtransport.TrackConfig{})
		_, err = attacker.Publish(ctx, second, moqtransport.PublishOptions{})
		wantRequestCode(t, "a second PUBLISH of a pushed track", err, uint64(wire.PublishUnauthorized))

		// Across scopes: the owner in /room, the attacker unscoped pushes
		// the same track; /room's subscriber gets the owner's objects.
		_, scoped, _ := e.publisher("/room", ns, "v")
		unscoped := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "w"}, moqtransport.TrackConfig{})
		other := e.connect("/", nil)
		if _, err := other.Publish(ctx, unscoped, moqtransport.PublishOptions{}); err == nil {
			t.Error("an unscoped PUBLISH under a namespace of the unscoped scope's owner was accepted")
		}
		shadow := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"solo"}, Name: "v"}, moqtransport.TrackConfig{})
		if _, err := other.Publish(ctx, shadow, moqtransport.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		_, scopedSolo, _ := e.publisher("/room", wire.Namespace{"solo"}, "v")
		sub, err := e.connect("/room", nil).Subscribe(ctx, wire.Namespace{"solo"}, "v", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got := readAsync(ctx, sub.Track())
		write(t, shadow, 0, 1, 1)
		write(t, scopedSolo, 0, 2, 1)
		scopedSolo.Close(nil)
		wantObjects(t, "the scoped subscriber", got, expected(0, 2, 1))
		_ = owned
		_ = scoped
	})
}

// Row: relay-dialed sessions are authorized. A relay with --auth-key is
// sent by a planted registration to a peer that then asks things of it on
// the session the relay opened: it gets nothing its (absent) token does
// not grant, and may never publish.
func TestHostileDialedPeerIsAuthorized(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		// The planted peer: a plain MoQT server answering every SUBSCRIBE.
		evilSrv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
		if err != nil {
			t.Fatal(err)
		}
		bait := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"remote"}, Name: "x"}, moqtransport.TrackConfig{})
		baitTracks := &moqtransport.Tracks{}
		baitTracks.Add(bait)
		dialed := make(chan *moqtransport.Session, 1)
		ctx := ctxFor(t)
		var evilWG sync.WaitGroup
		evilWG.Add(1)
		go func() {
			defer evilWG.Done()
			in, err := evilSrv.Accept(ctx)
			if err != nil {
				return
			}
			s, err := moqtransport.Accept(ctx, in.Conn, in.Path, &moqtransport.Config{Handler: baitTracks.Handler()})
			if err != nil {
				return
			}
			dialed <- s
		}()
		t.Cleanup(func() {
			_ = evilSrv.Close()
			evilWG.Wait()
		})
		fp, _ := evilSrv.Fingerprint()
		planted := &countingCoordinator{}
		u := fmt.Sprintf("%s://%s", scheme, evilSrv.Addr())
		planted.url.Store(&u)
		key, err := relay.NewHMACClusterKey([]byte("cluster-secret-cluster-secret-0123456789"))
		if err != nil {
			t.Fatal(err)
		}
		e := startRelayWith(t, scheme, relay.Config{Auth: hmacAuth(t), Coordinator: planted, Node: scheme + "://relay.invalid:1",
			Dial: nativeDial(moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}), ClusterKey: key})
		hour := time.Now().Add(time.Hour)
		_, secret, _ := e.publisher2(userToken(t, []string{"secret"}, nil, hour), wire.Namespace{"secret"}, "t")
		_ = secret
		viewer, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: userToken(t, nil, []string{""}, hour)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := viewer.Subscribe(ctx, wire.Namespace{"remote"}, "x", moqtransport.SubscribeOptions{}); err != nil {
			t.Fatalf("subscribing through the planted peer: %v", err)
		}
		var peer *moqtransport.Session
		select {
		case peer = <-dialed:
		case <-ctx.Done():
			t.Fatal("the relay did not dial the peer")
		}
		defer peer.Close()
		// The peer token the relay sent is made for the peer only:
		// replayed to the relay itself, it closes the session.
		var stolen []moqtransport.AuthToken
		for _, kv := range peer.PeerSetupParams() {
			if kv.Type == wire.SetupParamAuthorizationToken {
				tok, err := wire.ParseToken(kv.Bytes)
				if err != nil {
					t.Fatal(err)
				}
				stolen = append(stolen, moqtransport.AuthToken{Type: tok.Type, Value: tok.Value})
			}
		}
		if len(stolen) != 1 {
			t.Fatalf("the relay sent %d tokens to the peer it dialed, want its peer token", len(stolen))
		}
		replay, _ := wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Value: stolen[0].Value})
		rs, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: wire.Parameters{replay}.WithVarint(relay.ParamRelayHop, 1)})
		wantClosedWith(t, "a replayed peer token", rs, err, wire.Unauthorized)
		_, err = peer.Subscribe(ctx, wire.Namespace{"secret"}, "t", moqtransport.SubscribeOptions{})
		wantRequestCode(t, "the dialed peer's SUBSCRIBE without a token", err, uint64(wire.SubscribeUnauthorized))
		_, err = peer.PublishNamespace(ctx, wire.Namespace{"evil"}, nil)
		wantRequestCode(t, "the dialed peer's PUBLISH_NAMESPACE", err, uint64(wire.NamespaceUnauthorized))
		_, err = peer.PublishNamespace(ctx, wire.Namespace{"evil"}, userToken(t, []string{""}, nil, hour))
		wantRequestCode(t, "the dialed peer's PUBLISH_NAMESPACE with a token", err, uint64(wire.NamespaceUnauthorized))
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"evil"}, Name: "t"}, moqtransport.TrackConfig{})
		_, err = peer.Publish(ctx, tr, moqtransport.PublishOptions{})
		wantRequestCode(t, "the dialed peer's PUBLISH", err, uint64(wire.PublishUnauthorized))
		// With a token of its own it may read, as any client may.
		if _, err := peer.Subscribe(ctx, wire.Namespace{"secret"}, "t", moqtransport.SubscribeOptions{
			Params: userToken(t, nil, []string{"secret"}, hour)}); err != nil {
			t.Errorf("the dialed peer's SUBSCRIBE with a token: %v", err)
		}
	})
}

// publisher2 is publisher with setup parameters (a token).
func (e *relayEnv) publisher2(params wire.Parameters, ns wire.Namespace, name string) (*moqtransport.Session, *moqtransport.Track, *countingTracks) {
	e.t.Helper()
	return e.publisher2pathed("/", params, ns, name)
}

// recordingCoordinator records registrations and finds nothing.
type recordingCoordinator struct {
	mu      sync.Mutex
	live    map[string]int
	lookups atomic.Int32
}

type recordingRegistration struct {
	c *recordingCoordinator
	k string
}

func (r recordingRegistration) Close() error {
	r.c.mu.Lock()
	defer r.c.mu.Unlock()
	r.c.live[r.k]--
	if r.c.live[r.k] == 0 {
		delete(r.c.live, r.k)
	}
	return nil
}

func (c *recordingCoordinator) Register(_ context.Context, scope string, ns wire.Namespace) (relay.Registration, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live == nil {
		c.live = map[string]int{}
	}
	k := scope + "|" + ns.String()
	c.live[k]++
	return recordingRegistration{c, k}, nil
}

func (c *recordingCoordinator) Lookup(context.Context, string, wire.Namespace) (string, error) {
	c.lookups.Add(1)
	return "", relay.ErrNotFound
}

func (c *recordingCoordinator) registered() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return copyCounts(c.live)
}

func copyCounts(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Row: the relay-peer setup parameter from a plain client grants nothing:
// it may not publish (so it cannot skip the coordinator), and under
// --auth-key it reads only what its token grants. With a cluster key, a
// forged or misdirected peer token closes the session.
func TestHostileRelayMarkerFromAClient(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		coord := &recordingCoordinator{}
		key, err := relay.NewHMACClusterKey([]byte("cluster-secret-cluster-secret-0123456789"))
		if err != nil {
			t.Fatal(err)
		}
		node := scheme + "://relay-a.invalid:4443"
		e := startRelayWith(t, scheme, relay.Config{Auth: hmacAuth(t), Coordinator: coord, Node: node, ClusterKey: key})
		ctx := ctxFor(t)
		hour := time.Now().Add(time.Hour)
		marker := wire.Parameters{}.WithVarint(relay.ParamRelayHop, 1)
		_, owned, _ := e.publisher2(userToken(t, []string{"live"}, nil, hour), wire.Namespace{"live"}, "v")
		_ = owned
		if got := coord.registered(); got["|live"] != 1 {
			t.Fatalf("registrations %v", got)
		}
		fake, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: append(slices.Clone(marker), userToken(t, []string{""}, []string{""}, hour)...)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = fake.PublishNamespace(ctx, wire.Namespace{"live"}, nil)
		wantRequestCode(t, "PUBLISH_NAMESPACE with the marker", err, uint64(wire.NamespaceUnauthorized))
		if got := coord.registered(); len(got) != 1 {
			t.Errorf("registrations after the fake relay: %v", got)
		}
		// With a cluster key, the marker without a peer token is
		// ignored: the session is a client, routed through the
		// coordinator like one, and may publish what its token grants.
		lookups := coord.lookups.Load()
		_, err = fake.Subscribe(ctx, wire.Namespace{"elsewhere"}, "v", moqtransport.SubscribeOptions{})
		wantRequestCode(t, "SUBSCRIBE of a namespace no one has", err, uint64(wire.SubscribeTrackDoesNotExist))
		if n := coord.lookups.Load() - lookups; n == 0 {
			t.Error("the unproven marker kept the session's SUBSCRIBE from the coordinator: it is not routed as a client")
		}
		if _, err := fake.PublishNamespace(ctx, wire.Namespace{"other"}, nil); err != nil {
			t.Errorf("PUBLISH_NAMESPACE of a free namespace by a client with the unproven marker: %v", err)
		}
		if got := coord.registered(); got["|other"] != 1 {
			t.Errorf("registrations after the client's PUBLISH_NAMESPACE: %v", got)
		}
		// The marker without a token reads nothing under --auth-key.
		bare, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: marker})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bare.Subscribe(ctx, wire.Namespace{"live"}, "v", moqtransport.SubscribeOptions{})
		wantRequestCode(t, "SUBSCRIBE with only the marker", err, uint64(wire.SubscribeUnauthorized))

		// Peer tokens: one signed with another key, and one made for
		// another relay, close the session; a valid one reads without a
		// user token.
		otherKey, _ := relay.NewHMACClusterKey([]byte("not-the-cluster-secret-0123456789abcdef"))
		for _, c := range []struct {
			what string
			key  *relay.ClusterKey
			aud  string
		}{{"a forged peer token", otherKey, node}, {"a peer token for another relay", key, scheme + "://relay-b.invalid:4443"}} {
			tok, err := c.key.PeerToken("https://attacker", c.aud, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			kv, _ := wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Value: []byte(tok)})
			s, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: append(slices.Clone(marker), kv)})
			wantClosedWith(t, c.what, s, err, wire.Unauthorized)
		}
		tok, _ := key.PeerToken("https://relay-b.invalid:4443", node, time.Now())
		kv, _ := wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Value: []byte(tok)})
		peer, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: append(slices.Clone(marker), kv)})
		if err != nil {
			t.Fatalf("a valid peer token: %v", err)
		}
		if _, err := peer.Subscribe(ctx, wire.Namespace{"live"}, "v", moqtransport.SubscribeOptions{}); err != nil {
			t.Errorf("an authenticated relay peer's SUBSCRIBE: %v", err)
		}
		_, err = peer.PublishNamespace(ctx, wire.Namespace{"peer"}, nil)
		wantRequestCode(t, "an authenticated relay peer's PUBLISH_NAMESPACE", err, uint64(wire.NamespaceUnauthorized))
	})
}

// Without a cluster key no peer can prove it is a relay: the marker is
// honoured from anyone, and only narrows what the session may do (no
// publishing, reads from local publishers only).
func TestRelayMarkerWithoutClusterKey(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		coord := &recordingCoordinator{}
		e := startRelayWith(t, scheme, relay.Config{Coordinator: coord, Node: scheme + "://relay-a.invalid:4443"})
		ctx := ctxFor(t)
		marked, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: wire.Parameters{}.WithVarint(relay.ParamRelayHop, 1)})
		if err != nil {
			t.Fatal(err)
		}
		_, err = marked.PublishNamespace(ctx, wire.Namespace{"other"}, nil)
		wantRequestCode(t, "PUBLISH_NAMESPACE with the marker", err, uint64(wire.NamespaceUnauthorized))
		_, err = marked.Subscribe(ctx, wire.Namespace{"elsewhere"}, "v", moqtransport.SubscribeOptions{})
		wantRequestCode(t, "SUBSCRIBE with the marker", err, uint64(wire.SubscribeTrackDoesNotExist))
		if n := coord.lookups.Load(); n != 0 {
			t.Errorf("a marked session's SUBSCRIBE made %d coordinator lookups, want 0", n)
		}
		if got := coord.registered(); len(got) != 0 {
			t.Errorf("registrations: %v", got)
		}
	})
}

// Row: CLIENT_SETUP + PUBLISH_NAMESPACE then an immediate disconnect,
// repeated, never leaves the namespace held, locally or in the
// coordinator; the real owner then publishes it.
func TestHostileAnnounceAndVanish(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		coord := &recordingCoordinator{}
		e := startRelayWith(t, scheme, relay.Config{Coordinator: coord, Node: scheme + "://self.invalid:1"})
		ns := wire.Namespace{"contested"}
		const rounds = 40
		for i := range rounds {
			s, closeFn, err := e.dialCfg("/", moqtransport.Config{})
			if err != nil {
				t.Fatal(err)
			}
			sent := make(chan struct{})
			go func() {
				defer close(sent)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_, _ = s.PublishNamespace(ctx, ns, nil)
			}()
			// Close at once, or (every other round) after a yield, so that
			// the close lands before, during and after the relay's
			// handling.
			if i%2 == 1 {
				runtime.Gosched()
			}
			closeFn()
			<-sent
		}
		waitFor(t, "every session to end", func() bool { return e.rs.Relay.Sessions() == 0 })
		waitFor(t, "no registration left", func() bool { return len(coord.registered()) == 0 })
		if n := e.rs.Relay.Scopes(); n != 0 {
			t.Errorf("%d scopes left", n)
		}
		// Deterministically: a handler that runs after its session has
		// ended (the race above, frozen) registers nothing.
		ctx := ctxFor(t)
		late, closeLate, err := e.dialCfg("/", *e.rs.Relay.SessionConfig())
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the relay to admit the session", func() bool { return e.rs.Relay.Sessions() == 2 })
		closeLate()
		waitFor(t, "the relay to see its end", func() bool { return e.rs.Relay.Sessions() == 0 })
		h := e.rs.Relay.SessionConfig().Handler
		if err := h.PublishNamespace(ctx, late, &wire.PublishNamespace{Namespace: ns}); err == nil {
			t.Error("PUBLISH_NAMESPACE of an ended session was accepted")
		}
		if err := h.SubscribeNamespace(ctx, late, &wire.SubscribeNamespace{Prefix: ns}); err == nil {
			t.Error("SUBSCRIBE_NAMESPACE of an ended session was accepted")
		}
		if len(coord.registered()) != 0 || e.rs.Relay.Scopes() != 0 {
			t.Errorf("an ended session left registrations %v, %d scopes", coord.registered(), e.rs.Relay.Scopes())
		}
		e.publisher("/", ns, "v") // fails the test if the namespace is still held
	})
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd on this system")
	}
	return len(ents)
}

// Row: --mlog-dir and connect-and-close: every session's log file is
// closed when it ends.
func TestHostileMlogConnectAndClose(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		dir := t.TempDir()
		open := mlog.Dir(dir)
		var n atomic.Int64
		// The factory keeps its loggers, as moq-relay did: only the relay
		// closing each at its session's end releases the file (a dropped
		// *os.File would be closed by the GC, unflushed).
		var mu sync.Mutex
		var kept []*mlog.Logger
		e := startRelayWith(t, scheme, relay.Config{SessionTracer: func(string) moqtransport.Tracer {
			l, err := open("server", fmt.Sprintf("s%d", n.Add(1)))
			if err != nil {
				t.Error(err)
				return nil
			}
			mu.Lock()
			kept = append(kept, l)
			mu.Unlock()
			return l
		}})
		_, warm, _ := e.dialCfg("/", moqtransport.Config{})
		warm()
		waitFor(t, "the warm-up session to end", func() bool { return e.rs.Relay.Sessions() == 0 })
		base := openFDs(t)
		const sessions = 60
		for range sessions {
			_, closeFn, err := e.dialCfg("/", moqtransport.Config{})
			if err != nil {
				t.Fatal(err)
			}
			closeFn()
		}
		waitFor(t, "every session to end", func() bool { return e.rs.Relay.Sessions() == 0 })
		const budget = 8
		got := openFDs(t)
		if got > base+budget {
			t.Errorf("%d file descriptors open after %d sessions, %d before (budget +%d)", got, sessions, base, budget)
		}
		t.Logf("fds %+d after %d connect-and-close", got-base, sessions)
		files, _ := filepath.Glob(filepath.Join(dir, "*.mlog"))
		if len(files) < sessions {
			t.Errorf("%d mlog files for %d sessions", len(files), sessions)
		}
		empty := 0
		for _, f := range files {
			if fi, err := os.Stat(f); err != nil || fi.Size() == 0 {
				empty++
			}
		}
		if empty > 0 {
			t.Errorf("%d of %d mlog files are empty: not flushed at the session's end", empty, len(files))
		}
	})
}

func heapAlloc() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// Row: with --auth-key, sessions refused for a bad PATH (carrying a
// valid token) leave no state: no session record, no claims, no scope.
func TestHostileRefusedSessionsKeepNothing(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelayWith(t, scheme, relay.Config{Auth: hmacAuth(t)})
		tok := userToken(t, []string{""}, []string{""}, time.Now().Add(time.Hour))
		refuse := func() {
			s, _, err := e.dialCfg("/bad//path", moqtransport.Config{SetupParams: tok})
			wantClosedWith(t, "a bad PATH", s, err, wire.MalformedPath)
		}
		for range 10 {
			refuse()
		}
		before := heapAlloc()
		const sessions = 100
		for range sessions {
			refuse()
		}
		if n := e.rs.Relay.Sessions(); n != 0 {
			t.Errorf("the relay keeps %d refused sessions", n)
		}
		if n := e.rs.Relay.Scopes(); n != 0 {
			t.Errorf("the relay keeps %d scopes", n)
		}
		// Before the fix each refused session kept ~40-50 KB (its claims
		// and the session they were keyed by): 4-5 MB here.
		const budget = 1536 << 10
		after := heapAlloc()
		if after > before+budget {
			t.Errorf("heap grew by %d KB over %d refused sessions (budget %d KB)", (after-before)>>10, sessions, budget>>10)
		}
		t.Logf("heap %+d KB after %d refused sessions", (int64(after)-int64(before))>>10, sessions)
	})
}

// Row: sessions each with a new PATH leave no scope behind.
func TestHostileScopesAreDeleted(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ctx := ctxFor(t)
		const sessions = 30
		for i := range sessions {
			path := fmt.Sprintf("/room%d", i)
			s, closeFn, err := e.dialCfg(path, moqtransport.Config{})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = s.Subscribe(ctx, wire.Namespace{"nothing"}, "here", moqtransport.SubscribeOptions{})
			if _, err := s.PublishNamespace(ctx, wire.Namespace{"ns"}, nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.SubscribeNamespace(ctx, wire.Namespace{"ns2"}, nil); err != nil {
				t.Fatal(err)
			}
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"pushed"}, Name: "v"}, moqtransport.TrackConfig{})
			if _, err := s.Publish(ctx, tr, moqtransport.PublishOptions{}); err != nil {
				t.Fatal(err)
			}
			closeFn()
		}
		waitFor(t, "every session to end", func() bool { return e.rs.Relay.Sessions() == 0 })
		waitFor(t, "every scope to be deleted", func() bool { return e.rs.Relay.Scopes() == 0 })
	})
}

// Row: a token that expires during the session stops authorizing; aud
// and iss are checked; "/" is not a grant; AUTHORITY is checked against
// the relay's names.
func TestHostileTokens(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		t.Parallel()
		auth := hmacAuth(t)
		auth.Issuer, auth.Audience = "issuer.test", "relay.test"
		e := startRelayWith(t, scheme, relay.Config{Auth: auth, Authorities: []string{"127.0.0.1", "relay.test"}})
		ctx := ctxFor(t)
		good := func(c *relay.Claims) { c.Issuer, c.Audience = "issuer.test", jwt.ClaimStrings{"relay.test"} }
		hour := time.Now().Add(time.Hour)
		e.publisher2(userToken(t, []string{"live"}, nil, hour, good), wire.Namespace{"live"}, "v")

		// Expiry during the session: a SUBSCRIBE before exp is served;
		// at exp the session is closed with EXPIRED_AUTH_TOKEN, and the
		// subscription granted under the token ends with it.
		exp := time.Now().Add(2 * time.Second).Truncate(time.Second)
		if time.Until(exp) < time.Second {
			exp = exp.Add(time.Second)
		}
		s, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: userToken(t, nil, []string{"live"}, exp, good)})
		if err != nil {
			t.Fatal(err)
		}
		sub, err := s.Subscribe(ctx, wire.Namespace{"live"}, "v", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatalf("SUBSCRIBE before exp: %v", err)
		}
		sessions := e.rs.Relay.Sessions()
		wantClosedWith(t, "a session whose token expired", s, nil, wire.ExpiredAuthToken)
		if now := time.Now(); now.Before(exp) {
			t.Errorf("the session was closed %v before its token's exp", exp.Sub(now))
		}
		select {
		case <-sub.Done():
		case <-ctx.Done():
			t.Error("the subscription outlived its session")
		}
		waitFor(t, "the relay to forget the expired session", func() bool { return e.rs.Relay.Sessions() == sessions-1 })
		// The metrics say who closed it and why.
		waitFor(t, "the expired session's end in the metrics", func() bool {
			var b strings.Builder
			_ = e.rs.Relay.WriteMetrics(&b)
			return strings.Contains(b.String(), `moq_relay_sessions_ended_total{closer="relay",code="EXPIRED_AUTH_TOKEN"} 1`+"\n") &&
				strings.Contains(b.String(), `moq_relay_connection_errors_total{stage="token_expired"} 1`+"\n")
		})

		for _, c := range []struct {
			what string
			edit func(*relay.Claims)
		}{
			{"a token without iss and aud", func(*relay.Claims) {}},
			{"a token for another audience", func(c *relay.Claims) { good(c); c.Audience = jwt.ClaimStrings{"other"} }},
			{"a token from another issuer", func(c *relay.Claims) { good(c); c.Issuer = "other" }},
			{`a "/" claim`, func(c *relay.Claims) { good(c); c.Subscribe = []string{"/"} }},
		} {
			s, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: userToken(t, nil, []string{""}, hour, c.edit)})
			wantClosedWith(t, c.what, s, err, wire.MalformedAuthToken)
		}
		// "" grants every namespace.
		all, _, err := e.dialCfg("/", moqtransport.Config{SetupParams: userToken(t, nil, []string{""}, hour, good)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := all.Subscribe(ctx, wire.Namespace{"live"}, "v", moqtransport.SubscribeOptions{}); err != nil {
			t.Errorf(`a "" claim: %v`, err)
		}

		// AUTHORITY: raw QUIC names it in CLIENT_SETUP, WebTransport in
		// :authority (the URL's host, 127.0.0.1 here).
		if scheme == "moqt" {
			s, _, err := e.dialCfg("/", moqtransport.Config{Authority: "evil.test:443"})
			wantClosedWith(t, "AUTHORITY evil.test", s, err, wire.InvalidAuthority)
			if _, _, err := e.dialCfg("/", moqtransport.Config{Authority: "relay.test:443"}); err != nil {
				t.Errorf("AUTHORITY relay.test: %v", err)
			}
		} else {
			other := startRelayWith(t, scheme, relay.Config{Authorities: []string{"relay.test"}})
			s, _, err := other.dialCfg("/", moqtransport.Config{})
			wantClosedWith(t, ":authority 127.0.0.1 at a relay for relay.test", s, err, wire.InvalidAuthority)
		}
	})
}

// Probe finding: a SUBSCRIBE_NAMESPACE gets the tracks PUBLISHed before
// it (§9.28), not only the namespaces.
func TestSubscribeNamespaceGetsEarlierPublish(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ctx := ctxFor(t)
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"push", "cam"}, Name: "v"}, moqtransport.TrackConfig{})
		if _, err := e.connect("/", nil).Publish(ctx, tr, moqtransport.PublishOptions{}); err != nil {
			t.Fatal(err)
		}
		p := &pushed{subs: make(chan *moqtransport.Subscription, 1)}
		watcher := e.connect("/", p)
		if _, err := watcher.SubscribeNamespace(ctx, wire.Namespace{"push"}, nil); err != nil {
			t.Fatal(err)
		}
		var forwarded *moqtransport.Subscription
		select {
		case forwarded = <-p.subs:
		case <-ctx.Done():
			t.Fatal("the namespace subscriber got no PUBLISH for the earlier track")
		}
		got := readAsync(ctx, forwarded.Track())
		write(t, tr, 0, 2, 2)
		tr.Close(nil)
		wantObjects(t, "the namespace subscriber", got, expected(0, 2, 2))
	})
}

// stuckAnnouncements never answers PUBLISH_NAMESPACE until released.
type stuckAnnouncements struct {
	release chan struct{}
	calls   atomic.Int32
}

func (a *stuckAnnouncements) Handler() moqtransport.Handler {
	return moqtransport.Handler{PublishNamespace: a.PublishNamespace}
}

func (a *stuckAnnouncements) PublishNamespace(ctx context.Context, _ *moqtransport.Session, _ *wire.PublishNamespace) error {
	a.calls.Add(1)
	select {
	case <-a.release:
	case <-ctx.Done():
	}
	return nil
}

// Row: a namespace subscriber that never answers, plus announce/withdraw
// churn: the relay keeps no goroutine per announcement, and other
// namespace subscribers are served at once.
func TestHostileStuckNamespaceSubscriberAndChurn(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ctx := ctxFor(t)
		stuck := &stuckAnnouncements{release: make(chan struct{})}
		defer close(stuck.release)
		if _, err := e.connect("/", stuck).SubscribeNamespace(ctx, wire.Namespace{"churn"}, nil); err != nil {
			t.Fatal(err)
		}
		healthy := &announcements{}
		if _, err := e.connect("/", healthy).SubscribeNamespace(ctx, wire.Namespace{"churn"}, nil); err != nil {
			t.Fatal(err)
		}
		pub := e.connect("/", nil)
		base := runtime.NumGoroutine()
		const rounds = 200
		for i := range rounds {
			p, err := pub.PublishNamespace(ctx, wire.Namespace{"churn", fmt.Sprint(i)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := pub.PublishNamespace(ctx, wire.Namespace{"churn", "last"}, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the healthy subscriber to see the last namespace", func() bool {
			got, _ := healthy.seen()
			return slices.Contains(got, "churn/last")
		})
		// Before the fix: one relay goroutine (and one subscriber-side
		// handler) per announcement, 400 here.
		const budget = 40
		n := runtime.NumGoroutine()
		if n > base+budget {
			t.Errorf("%d goroutines after %d announcements to a stuck subscriber, %d before (budget +%d)", n, rounds, base, budget)
		}
		t.Logf("goroutines %+d after %d announce/withdraw with a stuck namespace subscriber", n-base, rounds)
		if c := stuck.calls.Load(); c > 2 {
			t.Errorf("the stuck subscriber was sent %d announcements at once", c)
		}
	})
}

// The authenticated cluster: three relays with --auth-key and a cluster
// key, a file coordinator; a publisher with a token on relay 0 reaches
// subscribers with tokens on relays 1 and 2.
func TestClusterWithAuth(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		path := filepath.Join(t.TempDir(), "coordinator.json")
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		key, err := relay.NewEd25519ClusterKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		relays, _ := startCluster(t, scheme, 3, func(_ int, node string) relay.Coordinator {
			return fileCoordinator(t, path, node)
		}, func(_ int, c *relay.Config) {
			c.Auth = hmacAuth(t)
			c.ClusterKey = key
		})
		hour := time.Now().Add(time.Hour)
		ns := wire.Namespace{"live", "cam"}
		_, tr, _ := relays[0].publisher2(userToken(t, []string{"live"}, nil, hour), ns, "video")
		ctx := ctxFor(t)
		var got []<-chan readResult
		for _, r := range relays[1:] {
			s, _, err := r.dialCfg("/", moqtransport.Config{SetupParams: userToken(t, nil, []string{"live/cam"}, hour)})
			if err != nil {
				t.Fatal(err)
			}
			sub, err := s.Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
			if err != nil {
				t.Fatalf("an authorized subscriber on another relay: %v", err)
			}
			got = append(got, readAsync(ctx, sub.Track()))
			// Without a token the relay refuses before asking its peer.
			anon, _, err := r.dialCfg("/", moqtransport.Config{})
			if err != nil {
				t.Fatal(err)
			}
			_, err = anon.Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{})
			wantRequestCode(t, "SUBSCRIBE without a token on a clustered relay", err, uint64(wire.SubscribeUnauthorized))
		}
		write(t, tr, 0, 3, 2)
		tr.Close(nil)
		for i, c := range got {
			wantObjects(t, fmt.Sprintf("the subscriber on relay %d", i+1), c, expected(0, 3, 2))
		}
	})
}

// Attacker review: a token's namespaces are bound to a scope by its path
// claim. A tenant's token (path /tenant-a) opens no session in another
// tenant's scope, nor one that only shares a prefix of its name, and as a
// request's own token it grants nothing in a session of another scope.
func TestHostileTokenPathClaim(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelayWith(t, scheme, relay.Config{Auth: hmacAuth(t)})
		ctx := ctxFor(t)
		hour := time.Now().Add(time.Hour)
		tenantA := func(c *relay.Claims) { c.Path = "/tenant-a" }
		e.publisher2pathed("/tenant-b", userToken(t, []string{"live"}, nil, hour), wire.Namespace{"live"}, "v")
		for _, path := range []string{"/tenant-b", "/tenant-ab", "/"} {
			s, _, err := e.dialCfg(path, moqtransport.Config{SetupParams: userToken(t, nil, []string{""}, hour, tenantA)})
			wantClosedWith(t, "tenant A's token at "+path, s, err, wire.Unauthorized)
		}
		for _, path := range []string{"/tenant-a", "/tenant-a/room"} {
			if _, _, err := e.dialCfg(path, moqtransport.Config{SetupParams: userToken(t, nil, []string{""}, hour, tenantA)}); err != nil {
				t.Errorf("tenant A's token at %s: %v", path, err)
			}
		}
		// A session at /tenant-b with no token, asking with tenant A's.
		s, _, err := e.dialCfg("/tenant-b", moqtransport.Config{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Subscribe(ctx, wire.Namespace{"live"}, "v", moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{""}, hour, tenantA)})
		wantRequestCode(t, "SUBSCRIBE in /tenant-b with tenant A's token", err, uint64(wire.SubscribeUnauthorized))
		if _, err := s.Subscribe(ctx, wire.Namespace{"live"}, "v", moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{""}, hour, func(c *relay.Claims) { c.Path = "/tenant-b" })}); err != nil {
			t.Errorf("SUBSCRIBE in /tenant-b with tenant B's token: %v", err)
		}
		// A path claim that is not a session path is malformed.
		bad, _, err := e.dialCfg("/tenant-a", moqtransport.Config{SetupParams: userToken(t, nil, []string{""}, hour, func(c *relay.Claims) { c.Path = "tenant-a" })})
		wantClosedWith(t, "a path claim without a leading /", bad, err, wire.MalformedAuthToken)
	})
}

// publisher2pathed is publisher2 at path.
func (e *relayEnv) publisher2pathed(path string, params wire.Parameters, ns wire.Namespace, name string) (*moqtransport.Session, *moqtransport.Track, *countingTracks) {
	e.t.Helper()
	h := &countingTracks{}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: name}, moqtransport.TrackConfig{})
	h.Add(tr)
	s, _, err := e.dialCfg(path, moqtransport.Config{Handler: h.Handler(), SetupParams: params})
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := s.PublishNamespace(ctx, ns, nil); err != nil {
		e.t.Fatal(err)
	}
	return s, tr, h
}
