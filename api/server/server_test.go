package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/moqgo/moq/api"
	"github.com/moqgo/moq/api/redistest"
	"github.com/moqgo/moq/api/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type env struct {
	redis *redistest.Server
	rdb   *redis.Client
	http  *httptest.Server
	c     *api.Client
	token string
}

// testToken is the registries' token in these tests.
const testToken = "s3cret-token"

// start runs a registry with ttl and testToken over a fresh redis-server,
// and a client with the token.
func start(t *testing.T, ttl time.Duration) *env {
	t.Helper()
	return startWith(t, server.Config{TTL: ttl, Token: testToken})
}

// startWith runs a registry with cfg (its Redis set here).
func startWith(t *testing.T, cfg server.Config) *env {
	t.Helper()
	rs := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	cfg.Redis = rdb
	hs := httptest.NewServer(server.New(cfg))
	c, err := api.NewClient(hs.URL, nil, api.WithToken(cfg.Token))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		hs.Close()
		_ = rdb.Close()
	})
	return &env{redis: rs, rdb: rdb, http: hs, c: c, token: cfg.Token}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// raw sends a request with body and the registry's token, and returns the
// status and body.
func (e *env) raw(t *testing.T, method, path, contentType, body string) (int, string, http.Header) {
	t.Helper()
	return e.rawAuth(t, "Bearer "+e.token, method, path, contentType, body)
}

// rawAuth is raw with this Authorization header ("" for none).
func (e *env) rawAuth(t *testing.T, auth, method, path, contentType, body string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestRoutesAndStatusCodes(t *testing.T) {
	e := start(t, 0)
	const js = "application/json"
	a, b := `{"url":"https://relay1/"}`, `{"url":"moqt://relay2:4443"}`
	// The relays' keys: a scope with "/" (so "//" after /origin) and ":".
	const p = "/origin//room:626262.6869"
	steps := []struct {
		method, path, ct, body string
		want                   int
		wantBody               string
	}{
		{"GET", p, "", "", 404, ""},
		{"PATCH", p, js, a, 404, ""},
		{"DELETE", p, js, a, 404, ""},
		{"POST", p, js, a, 200, ""},
		{"GET", p, "", "", 200, a},
		{"POST", p, js, a, 200, ""}, // the same URL again
		{"POST", p, js, b, 409, ""},
		{"PATCH", p, js, b, 403, ""},
		{"PATCH", p, js, a, 200, ""},
		{"DELETE", p, js, b, 403, ""},
		// moq-api's DELETE without a body would delete whoever holds it.
		{"DELETE", p, "", "", 400, ""},
		{"GET", p, "", "", 200, a},
		{"DELETE", p, js, a, 200, ""},
		{"GET", p, "", "", 404, ""},
		{"POST", p, "", b, 200, ""}, // no Content-Type is accepted
		{"DELETE", p, "", b, 200, ""},
		{"DELETE", p, "", b, 404, ""},
		// Refused requests.
		{"POST", p, js, `{"url":`, 400, ""},
		{"POST", p, js, `{"url":"relay1"}`, 400, ""},
		{"POST", p, js, `{"uri":"https://relay1/"}`, 422, ""},
		{"POST", p, js, ``, 400, ""},
		{"POST", p, "text/plain", a, 415, ""},
		{"PUT", p, js, a, 405, ""},
		{"GET", "/origin/", "", "", 404, ""},
		{"GET", "/other/x", "", "", 404, ""},
		{"GET", p, "", "", 404, ""},
	}
	for i, s := range steps {
		code, body, h := e.raw(t, s.method, s.path, s.ct, s.body)
		if code != s.want || (s.wantBody != "" && body != s.wantBody) {
			t.Fatalf("step %d: %s %s %s: %d %q, want %d %q", i, s.method, s.path, s.body, code, body, s.want, s.wantBody)
		}
		if s.wantBody != "" && h.Get("Content-Type") != "application/json" {
			t.Errorf("step %d: Content-Type %q", i, h.Get("Content-Type"))
		}
	}
	// The Redis layout: origin.{namespace} holds the JSON, with the TTL.
	ctx := ctxFor(t)
	if err := e.c.SetOrigin(ctx, "/room:6262", api.Origin{URL: "https://relay1/?a=<b>&c"}); err != nil {
		t.Fatal(err)
	}
	v, err := e.rdb.Get(ctx, "origin./room:6262").Result()
	if err != nil || v != `{"url":"https://relay1/?a=<b>&c"}` {
		t.Errorf("Redis value %q, %v", v, err)
	}
	if ttl := e.rdb.PTTL(ctx, "origin./room:6262").Val(); ttl <= 599*time.Second || ttl > api.DefaultTTL {
		t.Errorf("TTL %v, want the default 600s", ttl)
	}
}

func TestClient(t *testing.T) {
	e := start(t, 0)
	ctx := ctxFor(t)
	a, b := api.Origin{URL: "moqt://127.0.0.1:1"}, api.Origin{URL: "https://[::1]:2/"}
	const ns = ":6c697665" // unscoped "live"
	if _, err := e.c.GetOrigin(ctx, ns); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("GetOrigin of nothing: %v", err)
	}
	if err := e.c.SetOrigin(ctx, ns, a); err != nil {
		t.Fatal(err)
	}
	if o, err := e.c.GetOrigin(ctx, ns); err != nil || o != a {
		t.Fatalf("GetOrigin: %v, %v", o, err)
	}
	if err := e.c.SetOrigin(ctx, ns, b); !errors.Is(err, api.ErrConflict) {
		t.Errorf("SetOrigin over another: %v", err)
	}
	if err := e.c.PatchOrigin(ctx, ns, b); !errors.Is(err, api.ErrNotOwner) {
		t.Errorf("PatchOrigin of another's: %v", err)
	}
	if err := e.c.DeleteOrigin(ctx, ns, b); !errors.Is(err, api.ErrNotOwner) {
		t.Errorf("DeleteOrigin of another's: %v", err)
	}
	if err := e.c.PatchOrigin(ctx, ns, a); err != nil {
		t.Error(err)
	}
	if err := e.c.DeleteOrigin(ctx, ns, a); err != nil {
		t.Error(err)
	}
	if err := e.c.PatchOrigin(ctx, ns, a); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("PatchOrigin of nothing: %v", err)
	}
	// A Redis failure is a 500 with the reason.
	e.redis.Stop()
	_, err := e.c.GetOrigin(ctx, ns)
	var se *api.StatusError
	if !errors.As(err, &se) || se.Code != 500 || !strings.Contains(se.Body, "redis error") {
		t.Errorf("GetOrigin without Redis: %v", err)
	}
	// A base URL with a prefix keeps it.
	c, err := api.NewClient("http://registry.example/moq/", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.URL("/room:61"); got != "http://registry.example/moq/origin//room:61" {
		t.Errorf("URL %q", got)
	}
	if _, err := api.NewClient("redis://x", nil); err == nil {
		t.Error("a redis:// registry URL was accepted")
	}
}

// TestOnlyTheOwner races relays on one key: exactly one registers, and
// the others can neither refresh nor delete its entry.
func TestOnlyTheOwner(t *testing.T) {
	e := start(t, 0)
	ctx := ctxFor(t)
	const relays = 8
	for round := range 20 {
		ns := fmt.Sprintf(":%04x", round)
		var mu sync.Mutex
		var winners []int
		var wg sync.WaitGroup
		for i := range relays {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := e.c.SetOrigin(ctx, ns, api.Origin{URL: fmt.Sprintf("moqt://relay%d", i)})
				if err == nil {
					mu.Lock()
					winners = append(winners, i)
					mu.Unlock()
				} else if !errors.Is(err, api.ErrConflict) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if len(winners) != 1 {
			t.Fatalf("round %d: %d relays registered %s: %v", round, len(winners), ns, winners)
		}
		owner := api.Origin{URL: fmt.Sprintf("moqt://relay%d", winners[0])}
		// Everyone refreshes and deletes at once; only the owner's
		// refresh succeeds, and no one else's delete.
		for i := range relays {
			if i == winners[0] {
				continue
			}
			wg.Add(2)
			o := api.Origin{URL: fmt.Sprintf("moqt://relay%d", i)}
			go func() {
				defer wg.Done()
				if err := e.c.PatchOrigin(ctx, ns, o); !errors.Is(err, api.ErrNotOwner) {
					t.Errorf("relay %d refreshed the owner's entry: %v", i, err)
				}
			}()
			go func() {
				defer wg.Done()
				if err := e.c.DeleteOrigin(ctx, ns, o); !errors.Is(err, api.ErrNotOwner) {
					t.Errorf("relay %d deleted the owner's entry: %v", i, err)
				}
			}()
		}
		if err := e.c.PatchOrigin(ctx, ns, owner); err != nil {
			t.Errorf("the owner's refresh: %v", err)
		}
		wg.Wait()
		if got, err := e.c.GetOrigin(ctx, ns); err != nil || got != owner {
			t.Fatalf("round %d: the entry is %v, %v; want the owner's %v", round, got, err, owner)
		}
	}
}

// TestTTL checks that entries get the server's TTL, that PATCH and a
// repeated POST renew it, and that once expired another relay may take the
// namespace while the old owner can no longer refresh it. Time passing is
// Redis's PEXPIRE, not sleeps, so that a loaded machine changes nothing.
func TestTTL(t *testing.T) {
	const ttl = time.Minute
	e := start(t, ttl)
	ctx := ctxFor(t)
	a, b := api.Origin{URL: "moqt://a"}, api.Origin{URL: "moqt://b"}
	pttl := func(k string) time.Duration { return e.rdb.PTTL(ctx, "origin."+k).Val() }
	fresh := func(d time.Duration) bool { return d > ttl-10*time.Second && d <= ttl }
	for _, k := range []string{":01", ":02"} {
		if err := e.c.SetOrigin(ctx, k, a); err != nil {
			t.Fatal(err)
		}
		if d := pttl(k); !fresh(d) {
			t.Fatalf("%s: PTTL %v, want the server's %v", k, d, ttl)
		}
		// Time passes: two seconds left.
		if err := e.rdb.PExpire(ctx, "origin."+k, 2*time.Second).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// PATCH renews :01, a second POST :02.
	if err := e.c.PatchOrigin(ctx, ":01", a); err != nil {
		t.Fatal(err)
	}
	if err := e.c.SetOrigin(ctx, ":02", a); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{":01", ":02"} {
		if d := pttl(k); !fresh(d) {
			t.Errorf("%s: PTTL %v after the refresh, want the server's %v again", k, d, ttl)
		}
	}
	// Without refreshes :01 expires.
	if err := e.rdb.PExpire(ctx, "origin.:01", time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := e.c.GetOrigin(ctx, ":01")
		if errors.Is(err, api.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the entry did not expire: %v", err)
		}
		time.Sleep(time.Millisecond)
	}
	if err := e.c.PatchOrigin(ctx, ":01", a); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("PATCH after expiry: %v, want ErrNotFound", err)
	}
	if err := e.c.SetOrigin(ctx, ":01", b); err != nil {
		t.Fatalf("another relay after expiry: %v", err)
	}
	if err := e.c.PatchOrigin(ctx, ":01", a); !errors.Is(err, api.ErrNotOwner) {
		t.Errorf("the old owner refreshed the new owner's entry: %v", err)
	}
}

// TestTTLReported: every successful POST and PATCH reports the server's
// TTL in whole milliseconds (api.TTLHeader), so that a relay configured
// with another TTL refreshes in time; refusals, GET and DELETE report
// none. The client returns it.
func TestTTLReported(t *testing.T) {
	for _, c := range []struct {
		ttl     time.Duration
		want    string
		wantTTL time.Duration // what the client takes it for
	}{{0, "600000", api.DefaultTTL}, {90 * time.Second, "90000", 90 * time.Second}, {time.Minute + 1500*time.Microsecond, "60001", 60001 * time.Millisecond}} {
		e := start(t, c.ttl)
		const p, js, a, b = "/origin/:6c697665", "application/json", `{"url":"moqt://a"}`, `{"url":"moqt://b"}`
		for i, s := range []struct {
			method, body string
			code         int
			report       bool
		}{
			{"PATCH", a, 404, false},
			{"POST", a, 200, true},
			{"POST", a, 200, true}, // renewed
			{"PATCH", a, 200, true},
			{"POST", b, 409, false},
			{"PATCH", b, 403, false},
			{"GET", "", 200, false},
			{"DELETE", a, 200, false},
		} {
			code, _, h := e.raw(t, s.method, p, js, s.body)
			got, want := h.Values(api.TTLHeader), []string(nil)
			if s.report {
				want = []string{c.want}
			}
			if code != s.code || fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("TTL %v, step %d: %s %s: %d with %s %q, want %d with %q", c.ttl, i, s.method, s.body, code, api.TTLHeader, got, s.code, want)
			}
		}
		ctx := ctxFor(t)
		o := api.Origin{URL: "moqt://a"}
		if ttl, err := e.c.RegisterOrigin(ctx, ":01", o); err != nil || ttl != c.wantTTL {
			t.Errorf("TTL %v: RegisterOrigin: %v, %v; want %v", c.ttl, ttl, err, c.wantTTL)
		}
		if ttl, err := e.c.RefreshOrigin(ctx, ":01", o); err != nil || ttl != c.wantTTL {
			t.Errorf("TTL %v: RefreshOrigin: %v, %v; want %v", c.ttl, ttl, err, c.wantTTL)
		}
		if ttl, err := e.c.RefreshOrigin(ctx, ":02", o); !errors.Is(err, api.ErrNotFound) || ttl != 0 {
			t.Errorf("TTL %v: RefreshOrigin of nothing: %v, %v", c.ttl, ttl, err)
		}
	}
}

// TestCredentials: with a token, every route (reads too) needs it, and
// nothing reaches Redis without it; without one, the registry is open.
func TestCredentials(t *testing.T) {
	e := start(t, 0)
	ctx := ctxFor(t)
	const p, js, a = "/origin/:6c697665", "application/json", `{"url":"moqt://relay1:4443"}`
	for _, auth := range []string{"", "Bearer", "Bearer ", "Bearer wrong", "bearer " + testToken, "Basic " + testToken,
		"Bearer " + testToken + "x", "Bearer " + testToken[:len(testToken)-1], testToken} {
		for _, m := range []string{"GET", "POST", "PATCH", "DELETE"} {
			code, body, h := e.rawAuth(t, auth, m, p, js, a)
			if code != http.StatusUnauthorized {
				t.Errorf("%s with Authorization %q: %d %q, want 401", m, auth, code, body)
				continue
			}
			if !strings.Contains(body, "credentials") || h.Get("WWW-Authenticate") != `Bearer realm="moq-api"` {
				t.Errorf("%s with Authorization %q: body %q, WWW-Authenticate %q", m, auth, body, h.Get("WWW-Authenticate"))
			}
		}
	}
	if n := e.rdb.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("%d keys in Redis after refused requests", n)
	}
	// Two Authorization headers, one of them right, are refused.
	req, _ := http.NewRequest("GET", e.http.URL+p, nil)
	req.Header.Add("Authorization", "Bearer wrong")
	req.Header.Add("Authorization", "Bearer "+testToken)
	resp, err := e.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("two Authorization headers: %d", resp.StatusCode)
	}
	// A client with another token gets ErrUnauthorized.
	bad, err := api.NewClient(e.http.URL, nil, api.WithToken("other"))
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	if err := bad.SetOrigin(ctx, ":01", api.Origin{URL: "moqt://x"}); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("SetOrigin with another token: %v", err)
	}
	if _, err := bad.GetOrigin(ctx, ":01"); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("GetOrigin with another token: %v", err)
	}
	if _, err := api.NewClient(e.http.URL, nil, api.WithToken("a\nb")); err == nil {
		t.Error("a token with a line break was accepted")
	}
	// The right token works.
	if code, body, _ := e.raw(t, "POST", p, js, a); code != 200 {
		t.Fatalf("POST with the token: %d %q", code, body)
	}
	if code, body, _ := e.raw(t, "GET", p, "", ""); code != 200 || body != a {
		t.Fatalf("GET with the token: %d %q", code, body)
	}

	// Without a token the registry is open.
	open := startWith(t, server.Config{})
	if code, body, _ := open.rawAuth(t, "", "POST", p, js, a); code != 200 {
		t.Errorf("POST to an open registry: %d %q", code, body)
	}
}

// TestLimits: keys, bodies and URLs are bounded, and only moqt:// and
// https:// URLs are stored; each refusal says why, and stores nothing.
func TestLimits(t *testing.T) {
	e := start(t, 0)
	ctx := ctxFor(t)
	const js = "application/json"
	okKey := "/origin/" + strings.Repeat("a", api.MaxKeyLen)
	longKey := okKey + "a"
	url := func(u string) string { return `{"url":"` + u + `"}` }
	for _, c := range []struct {
		path, body string
		want       int
		wantBody   string
	}{
		{okKey, url("moqt://r:1"), 200, ""},
		{longKey, url("moqt://r:1"), 414, "namespace key of"},
		{"/origin/:01", `{"url":"moqt://r:1","pad":"` + strings.Repeat("x", api.MaxBodyLen) + `"}`, 413, "body too large"},
		{"/origin/:02", url("https://" + strings.Repeat("h", api.MaxURLLen)), 400, "at most 2048"},
		{"/origin/:03", url("https://" + strings.Repeat("h", api.MaxURLLen-len("https://"))), 200, ""},
		{"/origin/:04", url("http://relay1/"), 400, "want moqt://"},
		{"/origin/:05", url("javascript:alert(1)"), 400, "want moqt://"},
		{"/origin/:06", url("file:///etc/passwd"), 400, "want moqt://"},
		{"/origin/:07", url("moqt:relay1"), 400, "no host"},
		{"/origin/:08", url("https://user:pw@relay1/"), 400, "user information"},
		{"/origin/:09", url("relay1:4443"), 400, ""},
		{"/origin/:0a", url("MOQT://relay1:4443"), 200, ""}, // schemes are case-insensitive
		{"/origin/:0b", url("https://[::1]:4443/room"), 200, ""},
	} {
		code, body, _ := e.raw(t, "POST", c.path, js, c.body)
		if code != c.want || !strings.Contains(body, c.wantBody) {
			t.Errorf("POST %.40s… %.60s: %d %q, want %d %q", c.path, c.body, code, body, c.want, c.wantBody)
		}
	}
	if n := e.rdb.DBSize(ctx).Val(); n != 4 {
		t.Errorf("%d keys in Redis, want the 4 accepted", n)
	}
	// A GET of an over-long key is refused the same way.
	if code, _, _ := e.raw(t, "GET", longKey, "", ""); code != 414 {
		t.Errorf("GET of a long key: %d", code)
	}
}

// TestNodeTokens: a node's own token reads, and writes only that node's
// registrations, even naming its owner's URL; the cluster's token still
// acts for any node.
func TestNodeTokens(t *testing.T) {
	const a, b = "moqt://relay-a:4443", "https://relay-b:4443"
	e := startWith(t, server.Config{Token: testToken, NodeTokens: map[string]string{a: "token-a", b: "token-b"}})
	ctx := ctxFor(t)
	client := func(tok string) *api.Client {
		c, err := api.NewClient(e.http.URL, nil, api.WithToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	ca, cb := client("token-a"), client("token-b")
	const ns = ":6c697665"
	if err := ca.SetOrigin(ctx, ns, api.Origin{URL: a}); err != nil {
		t.Fatal(err)
	}
	// B's token cannot act as A, whatever it names.
	if err := cb.DeleteOrigin(ctx, ns, api.Origin{URL: a}); !errors.Is(err, api.ErrNotOwner) {
		t.Errorf("B deleting as A: %v", err)
	}
	if err := cb.PatchOrigin(ctx, ns, api.Origin{URL: a}); !errors.Is(err, api.ErrNotOwner) {
		t.Errorf("B refreshing as A: %v", err)
	}
	if err := cb.SetOrigin(ctx, ":02", api.Origin{URL: a}); !errors.Is(err, api.ErrNotOwner) {
		t.Errorf("B registering A's URL: %v", err)
	}
	code, body, _ := e.rawAuth(t, "Bearer token-b", "POST", "/origin/:03", "application/json", `{"url":"`+a+`"}`)
	if code != 403 || !strings.Contains(body, "this token is node") {
		t.Errorf("B registering A's URL: %d %q", code, body)
	}
	// B reads; B registers its own.
	if o, err := cb.GetOrigin(ctx, ns); err != nil || o.URL != a {
		t.Errorf("B reading: %v, %v", o, err)
	}
	if err := cb.SetOrigin(ctx, ":04", api.Origin{URL: b}); err != nil {
		t.Error(err)
	}
	// A refreshes and deletes its own.
	if err := ca.PatchOrigin(ctx, ns, api.Origin{URL: a}); err != nil {
		t.Error(err)
	}
	if err := ca.DeleteOrigin(ctx, ns, api.Origin{URL: a}); err != nil {
		t.Error(err)
	}
	// The cluster's token is not bound to a node.
	if err := e.c.SetOrigin(ctx, ":05", api.Origin{URL: a}); err != nil {
		t.Errorf("the cluster's token: %v", err)
	}
	if n := e.rdb.DBSize(ctx).Val(); n != 2 {
		t.Errorf("%d keys, want :04 and :05", n)
	}
	// Node tokens alone close the registry too.
	only := startWith(t, server.Config{NodeTokens: map[string]string{a: "token-a"}})
	if code, _, _ := only.rawAuth(t, "", "GET", "/origin/"+ns, "", ""); code != 401 {
		t.Errorf("GET without a token from a registry with node tokens: %d", code)
	}
}

// A registration under a namespace another origin holds is 409, checked
// in the registering script; the same origin may nest its own.
func TestPrefixHeldElsewhere(t *testing.T) {
	e := start(t, time.Minute)
	ctx := ctxFor(t)
	a, b := api.Origin{URL: "moqt://a.test"}, api.Origin{URL: "moqt://b.test"}
	if err := e.c.SetOrigin(ctx, "/room:61", a); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"/room:61.62", "/room:61.62.63"} {
		if err := e.c.SetOrigin(ctx, k, b); !errors.Is(err, api.ErrConflict) {
			t.Errorf("%s under another origin's /room:61: %v, want ErrConflict", k, err)
		}
		if _, err := e.c.GetOrigin(ctx, k); !errors.Is(err, api.ErrNotFound) {
			t.Errorf("%s after its refusal: %v, want ErrNotFound", k, err)
		}
	}
	for _, k := range []string{"/room:61.62", ":61.62", "/other:61.62", "/room:6162"} {
		o := a
		if k != "/room:61.62" {
			o = b // another scope, or a field that is not under 61
		}
		if err := e.c.SetOrigin(ctx, k, o); err != nil {
			t.Errorf("%s for %s: %v", k, o.URL, err)
		}
	}
	// A shorter namespace over another origin's longer one is allowed:
	// the longest prefix wins at lookup.
	if err := e.c.SetOrigin(ctx, "/other:61", a); err != nil {
		t.Errorf("/other:61 over b's /other:61.62: %v", err)
	}
}
