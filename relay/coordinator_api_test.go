package relay_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moqgo/moq/api"
	"github.com/moqgo/moq/api/redistest"
	"github.com/moqgo/moq/api/server"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// registry is a moq-api registry over a redis-server of the test's own.
type registry struct {
	redis  *redistest.Server
	rdb    *redis.Client // the registry's own client of redis
	url    string
	client *api.Client
}

// registryToken is the registries' token in these tests.
const registryToken = "cluster-secret"

// startRegistry runs a registry whose entries live ttl (0: the default),
// with registryToken. Its answers report its TTL (api.TTLHeader): the
// relays refresh at half of it, whatever TTL they are configured with.
func startRegistry(t *testing.T, ttl time.Duration) *registry {
	t.Helper()
	return startRegistryWith(t, ttl, nil)
}

// startSilentRegistry is startRegistry whose answers report no TTL, as
// moq-rs's moq-api: the relays refresh at half their configured TTL.
func startSilentRegistry(t *testing.T, ttl time.Duration) *registry {
	t.Helper()
	return startRegistryWith(t, ttl, withoutTTLReport)
}

// startRegistryWith is startRegistry with the registry's handler wrapped
// by wrap (nil: none).
func startRegistryWith(t *testing.T, ttl time.Duration, wrap func(http.Handler) http.Handler) *registry {
	t.Helper()
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	var h http.Handler = server.New(server.Config{Redis: rdb, TTL: ttl, Token: registryToken})
	if wrap != nil {
		h = wrap(h)
	}
	hs := httptest.NewServer(h)
	c, err := api.NewClient(hs.URL, nil, api.WithToken(registryToken))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		hs.Close()
		_ = rdb.Close()
	})
	return &registry{redis: rs, rdb: rdb, url: hs.URL, client: c}
}

// withoutTTLReport drops the registry's report of its TTL from h's
// answers.
func withoutTTLReport(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(noTTLWriter{w}, r)
		w.Header().Del(api.TTLHeader) // an answer h wrote nothing of
	})
}

type noTTLWriter struct{ http.ResponseWriter }

func (w noTTLWriter) WriteHeader(code int) {
	w.Header().Del(api.TTLHeader)
	w.ResponseWriter.WriteHeader(code)
}

func (w noTTLWriter) Write(b []byte) (int, error) {
	w.Header().Del(api.TTLHeader)
	return w.ResponseWriter.Write(b)
}

// origin returns the URL the registry has for ns in scope, "" for none.
func (r *registry) origin(t *testing.T, scope string, ns wire.Namespace) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := r.client.GetOrigin(ctx, relay.RegistryKey(scope, ns))
	if errors.Is(err, api.ErrNotFound) {
		return ""
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return o.URL
}

// apiCoordinator returns a coordinator of node on the registry, closed
// when the test ends.
func (r *registry) apiCoordinator(t *testing.T, node string, ttl time.Duration) *relay.APICoordinator {
	t.Helper()
	c, err := relay.NewAPICoordinator(relay.APICoordinatorConfig{URL: r.url, Node: node, Token: registryToken, TTL: ttl, Timeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRegistryKey(t *testing.T) {
	for _, c := range []struct {
		scope string
		ns    wire.Namespace
		want  string
	}{
		{"", wire.Namespace{"bbb"}, ":626262"},
		{"/room", wire.Namespace{"a", "bc"}, "/room:61.6263"},
		{"", wire.Namespace{"A", ""}, ":41."},
	} {
		if got := relay.RegistryKey(c.scope, c.ns); got != c.want {
			t.Errorf("RegistryKey(%q, %q) = %q, want %q", c.scope, c.ns, got, c.want)
		}
	}
}

func TestAPICoordinator(t *testing.T) {
	reg := startRegistry(t, 0)
	const nodeA, nodeB = "moqt://127.0.0.1:1", "https://127.0.0.1:2"
	a, b := reg.apiCoordinator(t, nodeA, 0), reg.apiCoordinator(t, nodeB, 0)
	ctx := context.Background()
	// B's (live, hd) first: A may then take (live), a shorter namespace.
	rHD, err := b.Register(ctx, "", wire.Namespace{"live", "hd"})
	if err != nil {
		t.Fatal(err)
	}
	rLive, err := a.Register(ctx, "", wire.Namespace{"live"})
	if err != nil {
		t.Fatal(err)
	}
	if got := reg.origin(t, "", wire.Namespace{"live"}); got != nodeA {
		t.Fatalf("registry has %q", got)
	}
	wantServedElsewhere(t, b, "", wire.Namespace{"live"}, nodeA)
	// A namespace under one another relay holds is that relay's too, in
	// its scope only.
	wantServedElsewhere(t, b, "", wire.Namespace{"live", "sd"}, nodeA)
	rRoom, err := b.Register(ctx, "/room", wire.Namespace{"live", "sd"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rRoom.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Register(ctx, "/room", wire.Namespace{"x", "y"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []relay.Coordinator{a, b} {
		wantLookup(t, c, "", wire.Namespace{"live"}, nodeA)
		wantLookup(t, c, "", wire.Namespace{"live", "sd", "1"}, nodeA)
		wantLookup(t, c, "", wire.Namespace{"live", "hd"}, nodeB)
		wantLookup(t, c, "", wire.Namespace{"live", "hd", "720"}, nodeB)
		wantLookup(t, c, "", wire.Namespace{"liv"}, "")
		wantLookup(t, c, "/room", wire.Namespace{"x"}, "")
		wantLookup(t, c, "/room", wire.Namespace{"x", "y", "z"}, nodeA)
		wantLookup(t, c, "/other", wire.Namespace{"x", "y"}, "")
		wantLookup(t, c, "/room", wire.Namespace{"live", "hd"}, "") // one scope: the relay falls back itself
	}
	// Close DELETEs only our own entry: B's entry under A's key (A's
	// expired and B took it) survives A's Close.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	key := relay.RegistryKey("", wire.Namespace{"live"})
	if err := reg.client.DeleteOrigin(rctx, key, api.Origin{URL: nodeA}); err != nil {
		t.Fatal(err)
	}
	if err := reg.client.SetOrigin(rctx, key, api.Origin{URL: nodeB}); err != nil {
		t.Fatal(err)
	}
	if err := rLive.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reg.origin(t, "", wire.Namespace{"live"}); got != nodeB {
		t.Errorf("A's Close removed B's entry: %q", got)
	}
	if err := rHD.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reg.origin(t, "", wire.Namespace{"live", "hd"}); got != "" {
		t.Errorf("after Close the registry has %q", got)
	}
	// Closing the coordinator removes what is still registered.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reg.origin(t, "/room", wire.Namespace{"x", "y"}); got != "" {
		t.Errorf("after the coordinator's Close the registry has %q", got)
	}
}

// TestAPICoordinatorRefresh: a registration outlives the registry's TTL by
// its refreshes, and comes back when the registry loses it. Time passing is
// Redis's PEXPIRE, not sleeps: the registry's TTL is long, the relay
// refreshes often, and each round leaves the entry a moment to live that
// only a refresh can extend, so a loaded machine changes nothing. The
// registry reports no TTL (moq-rs's moq-api), so the relay refreshes at
// its configured one, as it does with such a registry.
func TestAPICoordinatorRefresh(t *testing.T) {
	const (
		registryTTL = 10 * time.Second
		relayTTL    = 100 * time.Millisecond // a refresh every 50 ms
		left        = 5 * time.Second        // what a round leaves the entry
	)
	reg := startSilentRegistry(t, registryTTL)
	c := reg.apiCoordinator(t, "moqt://a", relayTTL)
	ns := wire.Namespace{"live"}
	r, err := c.Register(context.Background(), "", ns)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	key := api.KeyPrefix + relay.RegistryKey("", ns)
	for round := range 3 {
		// Time passes: the entry has a moment left; a refresh gives it
		// the registry's whole TTL again.
		if err := reg.rdb.PExpire(ctx, key, left).Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("refresh %d to renew the entry", round+1), func() bool {
			return reg.rdb.PTTL(ctx, key).Val() > left+time.Second
		})
		if got := reg.origin(t, "", ns); got != "moqt://a" {
			t.Fatalf("after refresh %d the registry has %q", round+1, got)
		}
	}
	// The registry loses it (Redis restarted empty): the next refresh
	// finds it gone (PATCH 404) and registers it again.
	reg.redis.Restart()
	waitFor(t, "the registration to come back", func() bool { return reg.origin(t, "", ns) == "moqt://a" })
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if got := reg.origin(t, "", ns); got != "" {
		t.Errorf("after Close the registry has %q", got)
	}
	// No refresh brings it back after Close (several refresh periods).
	time.Sleep(2 * relayTTL)
	if got := reg.origin(t, "", ns); got != "" {
		t.Errorf("after Close the registry has %q", got)
	}
}

// TestAPICoordinatorToken: the coordinator sends its token; without the
// registry's, it registers nothing and says why, and a node URL the
// registry would not store is refused up front.
func TestAPICoordinatorToken(t *testing.T) {
	reg := startRegistry(t, 0)
	ns := wire.Namespace{"live"}
	for _, tok := range []string{"", "wrong"} {
		c, err := relay.NewAPICoordinator(relay.APICoordinatorConfig{URL: reg.url, Node: "moqt://evil:1", Token: tok, Timeout: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Register(context.Background(), "", ns)
		if !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("Register with token %q: %v, want ErrUnauthorized", tok, err)
		}
		if _, err := c.Lookup(context.Background(), "", ns); !errors.Is(err, api.ErrUnauthorized) {
			t.Errorf("Lookup with token %q: %v, want ErrUnauthorized", tok, err)
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
	if got := reg.origin(t, "", ns); got != "" {
		t.Fatalf("the registry has %q", got)
	}
	// With the token, a relay registers; another relay with the token
	// cannot delete or refresh its entry.
	a := reg.apiCoordinator(t, "moqt://a:1", 0)
	if _, err := a.Register(context.Background(), "", ns); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	key := relay.RegistryKey("", ns)
	if err := reg.client.DeleteOrigin(ctx, key, api.Origin{URL: "moqt://b:1"}); !errors.Is(err, api.ErrNotOwner) {
		t.Errorf("another node's DELETE: %v", err)
	}
	if err := reg.client.PatchOrigin(ctx, key, api.Origin{URL: "moqt://b:1"}); !errors.Is(err, api.ErrNotOwner) {
		t.Errorf("another node's PATCH: %v", err)
	}
	if got := reg.origin(t, "", ns); got != "moqt://a:1" {
		t.Errorf("the registry has %q", got)
	}
	for _, node := range []string{"http://a:1", "moqt://user@a:1", "a:1"} {
		if _, err := relay.NewAPICoordinator(relay.APICoordinatorConfig{URL: reg.url, Node: node}); err == nil {
			t.Errorf("node %q was accepted", node)
		}
	}
}

// hookTransport runs before once, just before the first POST it carries.
type hookTransport struct {
	once   sync.Once
	before func()
}

func (h *hookTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost {
		h.once.Do(h.before)
	}
	return http.DefaultTransport.RoundTrip(req)
}

// Nested registrations from two relays at the same instant: the registry
// checks the prefixes with the write, so a relay whose prefix check ran
// before another relay took a shorter prefix is still refused.
func TestAPICoordinatorNestedRace(t *testing.T) {
	reg := startRegistry(t, time.Minute)
	ctx := ctxFor(t)
	b := reg.apiCoordinator(t, "moqt://b.test", 0)

	// Deterministic: relay b registers (r, a) between relay a's prefix
	// check and its POST of (r, a, b).
	hook := &hookTransport{before: func() {
		if _, err := b.Register(ctx, "", wire.Namespace{"r", "a"}); err != nil {
			t.Errorf("relay b's (r, a): %v", err)
		}
	}}
	a, err := relay.NewAPICoordinator(relay.APICoordinatorConfig{URL: reg.url, Node: "moqt://a.test", Token: registryToken,
		Timeout: 3 * time.Second, HTTPClient: &http.Client{Transport: hook}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if _, err := a.Register(ctx, "", wire.Namespace{"r", "a", "b"}); !errors.Is(err, relay.ErrServedElsewhere) {
		t.Fatalf("relay a's (r, a, b) after relay b took (r, a) during its check: %v, want ErrServedElsewhere", err)
	}
	if got := reg.origin(t, "", wire.Namespace{"r", "a", "b"}); got != "" {
		t.Fatalf("(r, a, b) is registered to %q", got)
	}

	// Racing: the shorter namespace always wins; the longer one wins
	// too only if the registry wrote it first (its entry's expiry is
	// then no later than the shorter one's).
	a2 := reg.apiCoordinator(t, "moqt://a.test", time.Minute)
	b2 := reg.apiCoordinator(t, "moqt://b.test", time.Minute)
	both := 0
	for i := range 50 {
		short := wire.Namespace{fmt.Sprint("round", i), "a"}
		long := append(short, "b")
		var errLong, errShort error
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, errLong = a2.Register(ctx, "", long) }()
		go func() { defer wg.Done(); _, errShort = b2.Register(ctx, "", short) }()
		wg.Wait()
		if errShort != nil {
			t.Fatalf("round %d: the shorter namespace was refused: %v", i, errShort)
		}
		if errLong != nil {
			if !errors.Is(errLong, relay.ErrServedElsewhere) {
				t.Fatalf("round %d: the longer namespace: %v", i, errLong)
			}
			if got := reg.origin(t, "", long); got != "" {
				t.Fatalf("round %d: refused, yet (%s) is registered to %q", i, long, got)
			}
			continue
		}
		both++
		// Both expiries read at one instant.
		var pLong, pShort *redis.DurationCmd
		if _, err := reg.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			pLong = p.PTTL(ctx, api.KeyPrefix+relay.RegistryKey("", long))
			pShort = p.PTTL(ctx, api.KeyPrefix+relay.RegistryKey("", short))
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if pLong.Val() > pShort.Val() {
			t.Fatalf("round %d: (%s) was registered %v after (%s), which holds it", i, long, pLong.Val()-pShort.Val(), short)
		}
	}
	t.Logf("both registered in %d of 50 rounds", both)
}
