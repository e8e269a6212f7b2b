package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/api"
	"github.com/moqgo/moq/api/redistest"
	"github.com/moqgo/moq/internal/version"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func execute(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestVersionAndFlags(t *testing.T) {
	t.Setenv(TokenEnv, "")
	want := "moq-api " + version.Version + " (moq-go, draft-ietf-moq-transport-14)\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		if out, err := execute(t, args...); err != nil || out != want {
			t.Errorf("%v: %q, %v", args, out, err)
		}
	}
	for _, args := range [][]string{{"extra"}, {"--redis", "http://x", "--no-auth"}, {"--log-level", "loud"}, {"--ttl", "0s", "--no-auth"}, {"--ttl", "1s", "--no-auth"},
		{"--bind", "127.0.0.1:0"}, {"--api-token", "x", "--no-auth"}, {"--api-token", "a\nb"}} {
		if _, err := execute(t, args...); err == nil {
			t.Errorf("%v was accepted", args)
		}
	}
	if _, err := execute(t, "--bind", "127.0.0.1:0"); err == nil || !strings.Contains(err.Error(), TokenEnv) {
		t.Errorf("without a token: %v, want an error naming %s", err, TokenEnv)
	}
	cmd := newRootCommand()
	for flag, def := range map[string]string{"bind": "127.0.0.1:8080", "redis": "redis://127.0.0.1:6379", "ttl": "10m0s", "api-token": "", "no-auth": "false"} {
		if got := cmd.Flags().Lookup(flag).DefValue; got != def {
			t.Errorf("--%s defaults to %q, want %q", flag, got, def)
		}
	}
	// The token's default comes from the environment.
	t.Setenv(TokenEnv, "from-env")
	if got := newRootCommand().Flags().Lookup("api-token").DefValue; got != "from-env" {
		t.Errorf("--api-token defaults to %q with %s set", got, TokenEnv)
	}
}

// TestServesOverRedis runs moq-api against a real redis-server, drives its
// routes with the client and the token from the environment, checks that
// a client without the token is refused, and stops it.
func TestServesOverRedis(t *testing.T) {
	t.Setenv(TokenEnv, "cluster-secret")
	rs := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan net.Addr, 1)
	var logs syncBuffer
	done := make(chan error, 1)
	cmd := newRootCommand()
	cmd.SetArgs([]string{"--bind", "127.0.0.1:0", "--redis", rs.URL, "--ttl", "1m", "--log-level", "debug"})
	cmd.SetErr(&logs)
	cmd.SetOut(&logs)
	readyHook = func(a net.Addr) { ready <- a }
	defer func() { readyHook = nil }()
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("moq-api stopped: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("moq-api did not start")
	}
	c, err := api.NewClient("http://"+addr.String(), nil, api.WithToken("cluster-secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer tcancel()
	anon, err := api.NewClient("http://"+addr.String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Close()
	if err := anon.SetOrigin(tctx, "/room:6262", api.Origin{URL: "https://evil/"}); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("POST without the token: %v", err)
	}
	o := api.Origin{URL: "https://relay1:4443/"}
	if err := c.SetOrigin(tctx, "/room:6262", o); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetOrigin(tctx, "/room:6262"); err != nil || got != o {
		t.Fatalf("GET: %v, %v", got, err)
	}
	if err := c.SetOrigin(tctx, "/room:6262", api.Origin{URL: "https://relay2/"}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("POST by another relay: %v", err)
	}
	if err := c.PatchOrigin(tctx, "/room:6262", o); err != nil {
		t.Error(err)
	}
	if err := anon.DeleteOrigin(tctx, "/room:6262", o); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("DELETE without the token: %v", err)
	}
	if err := c.DeleteOrigin(tctx, "/room:6262", o); err != nil {
		t.Error(err)
	}
	if _, err := c.GetOrigin(tctx, "/room:6262"); !errors.Is(err, api.ErrNotFound) {
		t.Errorf("GET after DELETE: %v", err)
	}
	c.Close()
	anon.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("moq-api stopped with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("moq-api did not stop")
	}
	if !strings.Contains(logs.String(), "registry serving") || !strings.Contains(logs.String(), "auth=true") {
		t.Errorf("logs: %s", logs.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestNodeTokens runs moq-api with relays' own tokens from --node-tokens:
// each relay changes only its own registrations; a bad file is refused.
func TestNodeTokens(t *testing.T) {
	t.Setenv(TokenEnv, "")
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, text := range map[string]string{
		"empty":     "# nothing\n",
		"fields":    "moqt://a:1\n",
		"scheme":    "http://a:1 tok\n",
		"dupnode":   "moqt://a:1 t1\nmoqt://a:1 t2\n",
		"duptoken":  "moqt://a:1 t1\nmoqt://b:1 t1\n",
		"clustertk": "moqt://a:1 cluster\n",
	} {
		if _, err := execute(t, "--bind", "127.0.0.1:0", "--api-token", "cluster", "--node-tokens", write(name, text)); err == nil {
			t.Errorf("--node-tokens with %q was accepted", text)
		}
	}
	if _, err := execute(t, "--node-tokens", filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing --node-tokens file was accepted")
	}
	file := write("tokens", "# relays\nmoqt://a:1 token-a\n\n  https://b:2   token-b  \n")
	rs := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{bind: "127.0.0.1:0", redisURL: rs.URL, ttl: time.Minute, logLevel: "error", nodeTokens: file,
			stderr: io.Discard, ready: func(a net.Addr) { ready <- a }})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("moq-api stopped: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("moq-api did not start")
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer tcancel()
	client := func(tok string) *api.Client {
		c, err := api.NewClient("http://"+addr.String(), nil, api.WithToken(tok))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		return c
	}
	a, b, anon := client("token-a"), client("token-b"), client("")
	if err := a.SetOrigin(tctx, ":01", api.Origin{URL: "moqt://a:1"}); err != nil {
		t.Fatal(err)
	}
	if err := b.DeleteOrigin(tctx, ":01", api.Origin{URL: "moqt://a:1"}); !errors.Is(err, api.ErrNotOwner) {
		t.Errorf("b deleting a's registration: %v", err)
	}
	if _, err := anon.GetOrigin(tctx, ":01"); !errors.Is(err, api.ErrUnauthorized) {
		t.Errorf("reading without a token: %v", err)
	}
	if o, err := b.GetOrigin(tctx, ":01"); err != nil || o.URL != "moqt://a:1" {
		t.Errorf("b reading: %v, %v", o, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestJSONLogs: --log-format json writes one object a line, and every
// line about an HTTP request carries its id, one id per request.
func TestJSONLogs(t *testing.T) {
	if _, err := execute(t, "--api-token", "x", "--log-format", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Errorf("--log-format xml: %v", err)
	}
	rs := redistest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, config{bind: "127.0.0.1:0", redisURL: rs.URL, ttl: time.Minute, logLevel: "debug", logFormat: "json", token: "secret",
			stderr: &logs, ready: func(a net.Addr) { ready <- a }})
	}()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("moq-api stopped: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("moq-api did not start")
	}
	c, err := api.NewClient("http://"+addr.String(), nil, api.WithToken("secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	tctx, tcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer tcancel()
	if err := c.SetOrigin(tctx, "/s:61", api.Origin{URL: "moqt://a/"}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetOrigin(tctx, "/s:61", api.Origin{URL: "moqt://b/"}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("POST of another's namespace: %v", err)
	}
	if err := c.SetOrigin(tctx, "/s:61.62", api.Origin{URL: "moqt://b/"}); !errors.Is(err, api.ErrConflict) {
		t.Errorf("POST under another's namespace: %v", err)
	}
	c.Close()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("moq-api did not stop")
	}
	ids := map[float64]string{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if _, ok := m["namespace"]; !ok {
			continue
		}
		id, ok := m["request"].(float64)
		if !ok {
			t.Errorf("a line about a request without its id: %s", line)
			continue
		}
		if other, dup := ids[id]; dup {
			t.Errorf("request id %v on two requests' lines: %s and %s", id, other, line)
		}
		ids[id] = line
	}
	if len(ids) != 3 {
		t.Errorf("%d lines about the 3 requests, want one each:\n%s", len(ids), logs.String())
	}
}
