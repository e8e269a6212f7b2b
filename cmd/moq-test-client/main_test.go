package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/internal/moqtest"
	"github.com/moqgo/moq/internal/testclient"
	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// runMainEnv makes the test binary run main() instead of the tests, so
// that a test can check the exit code of the real command.
const runMainEnv = "MOQ_TEST_CLIENT_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		os.Exit(0)
	}
	// The tests choose the relay and tests themselves.
	for _, v := range []string{"RELAY_URL", "TESTCASE", "TLS_DISABLE_VERIFY", "VERBOSE"} {
		_ = os.Unsetenv(v)
	}
	goleak.VerifyTestMain(m)
}

// defaultTests are the names "all" runs, in order.
func defaultTests() []string {
	var names []string
	for _, sc := range testclient.Scenarios() {
		if !sc.Manual {
			names = append(names, sc.Name)
		}
	}
	return names
}

// execute runs the command in-process with base's hooks.
func execute(t *testing.T, base config, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(base)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

// testRelay is an in-process moq-go relay on loopback with a generated
// certificate for 127.0.0.1.
type testRelay struct {
	addr        string
	fingerprint string // hex
	rs          *relay.Server
}

func startRelay(t *testing.T) *testRelay {
	t.Helper()
	ss, err := moqnative.GenerateSelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{Certificates: []tls.Certificate{ss.Certificate}})
	if err != nil {
		t.Fatal(err)
	}
	rs := relay.NewServer(relay.New(relay.Config{}), srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rs.Serve(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		rs.Close()
		_ = srv.Close()
		<-done
	})
	return &testRelay{addr: srv.Addr().String(), fingerprint: ss.FingerprintHex(), rs: rs}
}

// startRejecting runs a MoQT server that accepts sessions and refuses
// every request (the zero moqtransport.Handler): not a relay.
func startRejecting(t *testing.T) (addr, fingerprint string) {
	t.Helper()
	srv := moqtest.Serve(t, moqnative.ServerConfig{SelfSignedHosts: []string{"127.0.0.1"}}, moqtransport.Handler{})
	return srv.Addr().String(), srv.Fingerprint
}

// tapResult is one test point of a TAP report.
type tapResult struct {
	ok      bool
	name    string
	skip    string
	message string
}

var (
	tapPlan    = regexp.MustCompile(`^1\.\.(\d+)$`)
	tapPoint   = regexp.MustCompile(`^(ok|not ok) (\d+) - ([a-z-]+)(?: # SKIP (.+))?$`)
	tapMessage = regexp.MustCompile(`^  message: ("(?:[^"\\]|\\.)*")$`)
)

// parseTAP checks that out is TAP version 14 as moq-test-client writes it
// (version line, comments, plan, then per test point a YAML block with
// duration_ms and, for a failure, message) and returns its test points.
func parseTAP(t *testing.T, out, relayURL string) []tapResult {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	fail := func(i int, format string, args ...any) {
		t.Helper()
		t.Fatalf("TAP line %d: %s\n%s", i+1, fmt.Sprintf(format, args...), out)
	}
	if !strings.HasSuffix(out, "\n") {
		t.Fatalf("TAP does not end with a newline:\n%s", out)
	}
	if len(lines) < 4 || lines[0] != "TAP version 14" {
		fail(0, "want \"TAP version 14\"")
	}
	if want := "# " + version.String(binaryName); lines[1] != want {
		fail(1, "got %q, want %q", lines[1], want)
	}
	if want := "# Relay: " + relayURL; lines[2] != want {
		fail(2, "got %q, want %q", lines[2], want)
	}
	m := tapPlan.FindStringSubmatch(lines[3])
	if m == nil {
		fail(3, "want the plan 1..N, got %q", lines[3])
	}
	n, _ := strconv.Atoi(m[1])
	var results []tapResult
	i := 4
	for len(results) < n {
		if i >= len(lines) {
			fail(i, "only %d of %d test points", len(results), n)
		}
		p := tapPoint.FindStringSubmatch(lines[i])
		if p == nil {
			fail(i, "want a test point, got %q", lines[i])
		}
		if num, _ := strconv.Atoi(p[2]); num != len(results)+1 {
			fail(i, "test point %d, want %d", num, len(results)+1)
		}
		r := tapResult{ok: p[1] == "ok", name: p[3], skip: p[4]}
		if !r.ok && r.skip != "" {
			fail(i, "a failed test with SKIP")
		}
		i++
		if i+2 >= len(lines) || lines[i] != "  ---" || !regexp.MustCompile(`^  duration_ms: \d+$`).MatchString(lines[i+1]) {
			fail(i, "want a YAML block with duration_ms after the test point")
		}
		i += 2
		if !r.ok {
			mm := tapMessage.FindStringSubmatch(lines[i])
			if mm == nil {
				fail(i, "want the failure's message, got %q", lines[i])
			}
			msg, err := strconv.Unquote(mm[1])
			if err != nil || msg == "" {
				fail(i, "message %s: %v", mm[1], err)
			}
			r.message = msg
			i++
		}
		if lines[i] != "  ..." {
			fail(i, "want the end of the YAML block, got %q", lines[i])
		}
		i++
		results = append(results, r)
	}
	if i != len(lines) {
		fail(i, "extra output after the last test point")
	}
	return results
}

func names(rs []tapResult) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.name)
	}
	return out
}

// TestAllScenarios runs every default scenario against a moq-go relay over
// both transports; each must pass.
func TestAllScenarios(t *testing.T) {
	for _, c := range []struct {
		scheme string
		tls    func(r *testRelay) []string
	}{
		{"moqt", func(r *testRelay) []string { return []string{"--fingerprint", r.fingerprint} }},
		{"https", func(*testRelay) []string { return []string{"--tls-disable-verify"} }},
	} {
		t.Run(c.scheme, func(t *testing.T) {
			t.Parallel()
			r := startRelay(t)
			url := fmt.Sprintf("%s://%s/", c.scheme, r.addr)
			stdout, stderr, err := execute(t, config{}, append(c.tls(r), "-r", url)...)
			results := parseTAP(t, stdout, url)
			for _, res := range results {
				if !res.ok || res.skip != "" {
					t.Errorf("%s: ok=%v skip=%q message=%q", res.name, res.ok, res.skip, res.message)
				}
			}
			if err != nil {
				t.Errorf("run: %v", err)
			}
			if got, want := strings.Join(names(results), ","), strings.Join(defaultTests(), ","); got != want {
				t.Errorf("ran %s, want %s", got, want)
			}
			if t.Failed() {
				t.Logf("stderr:\n%s", stderr)
			}
		})
	}
}

// startForwardingFetch runs a moq-go relay that answers every FETCH by
// forwarding it to the namespace's publisher, never from its cache: a relay
// with no cache (or one that does not use it for FETCH).
func startForwardingFetch(t *testing.T) (url, fingerprint string) {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{SelfSignedHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	r := relay.New(relay.Config{})
	var mu sync.Mutex
	publishers := map[string]*moqtransport.Session{} // by namespace
	// A config per session: each carries the relay's state of its session.
	sessionConfig := func() *moqtransport.Config {
		cfg := r.SessionConfig()
		publish := cfg.Handler.PublishNamespace
		cfg.Handler.PublishNamespace = func(ctx context.Context, s *moqtransport.Session, req *moqtransport.PublishNamespaceRequest) error {
			mu.Lock()
			publishers[req.Namespace.String()] = s
			mu.Unlock()
			return publish(ctx, s, req)
		}
		cfg.Handler.Fetch = func(ctx context.Context, _ *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			mu.Lock()
			pub := publishers[req.Namespace.String()]
			mu.Unlock()
			if pub == nil {
				return nil, moqtransport.FetchError(wire.FetchTrackDoesNotExist, "no publisher")
			}
			up, err := pub.Fetch(ctx, moqtransport.FetchOptions{
				Priority: req.Priority, GroupOrder: req.GroupOrder,
				Namespace: req.Namespace, Name: req.Name, Start: req.Start, End: req.End,
			})
			if err != nil {
				return nil, err
			}
			ok := up.OK()
			return &moqtransport.FetchResponse{
				GroupOrder: ok.GroupOrder, EndOfTrack: ok.EndOfTrack, End: ok.End,
				Next:  up.ReadObject,
				Close: func() { _ = up.Cancel() },
			}, nil
		}
		return cfg
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var sessions []*moqtransport.Session
	wg.Go(func() {
		for {
			in, err := srv.Accept(ctx)
			if err != nil {
				return
			}
			s, err := moqtransport.Accept(ctx, in.Conn, in.Path, sessionConfig())
			if err != nil {
				continue
			}
			mu.Lock()
			sessions = append(sessions, s)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		wg.Wait()
		for _, s := range sessions {
			_ = s.Close()
			<-s.Done()
		}
		r.Close()
	})
	fp, _ := srv.Fingerprint()
	return "moqt://" + srv.Addr().String() + "/", fmt.Sprintf("%x", fp[:])
}

// TestFetchNeedsTheCache: fetch and joining-fetch check what the relay
// serves from its cache, so they fail against a relay that forwards every
// FETCH to the publisher: the scenarios' publisher refuses FETCH
// (NOT_SUPPORTED), as a moq-rs publisher, which ignores FETCH, cannot
// answer it either.
func TestFetchNeedsTheCache(t *testing.T) {
	url, fp := startForwardingFetch(t)
	stdout, stderr, err := execute(t, config{}, "--fingerprint", fp, "-r", url, "-t", "fetch,joining-fetch")
	results := parseTAP(t, stdout, url)
	if got, want := strings.Join(names(results), ","), "fetch,joining-fetch"; got != want {
		t.Fatalf("ran %s, want %s", got, want)
	}
	for _, res := range results {
		if res.ok {
			t.Errorf("%s passed against a relay that forwards every FETCH", res.name)
		} else if !strings.Contains(res.message, "NOT_SUPPORTED") {
			t.Errorf("%s failed, but not on the publisher's NOT_SUPPORTED: %s", res.name, res.message)
		}
	}
	if err == nil {
		t.Error("run: no error")
	}
	if t.Failed() {
		t.Logf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
}

// TestGoAway runs the manual goaway scenario and drains the relay when it
// waits for GOAWAY.
func TestGoAway(t *testing.T) {
	forEachScheme(t, func(t *testing.T, scheme string) {
		r := startRelay(t)
		drained := make(chan struct{})
		var once sync.Once
		hook := func() {
			once.Do(func() {
				go func() {
					defer close(drained)
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					r.rs.Drain(ctx, "")
				}()
			})
		}
		url := fmt.Sprintf("%s://%s/", scheme, r.addr)
		stdout, stderr, err := execute(t, config{goAwayWait: hook}, "--fingerprint", r.fingerprint, "-r", url, "-t", "goaway")
		results := parseTAP(t, stdout, url)
		if err != nil || len(results) != 1 || !results[0].ok || results[0].name != "goaway" {
			t.Fatalf("goaway: %v %+v\n%s", err, results, stderr)
		}
		if !strings.Contains(stderr, "waiting for GOAWAY") {
			t.Errorf("stderr does not say that it waits for GOAWAY:\n%s", stderr)
		}
		select {
		case <-drained:
		case <-time.After(10 * time.Second):
			t.Fatal("the relay did not finish draining")
		}
		// The relay forgets a session just after it has closed.
		for deadline := time.Now().Add(5 * time.Second); r.rs.Sessions() != 0; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d sessions left after the drain", r.rs.Sessions())
			}
		}
	})
}

func forEachScheme(t *testing.T, f func(t *testing.T, scheme string)) {
	for _, scheme := range []string{"moqt", "https"} {
		t.Run(scheme, func(t *testing.T) { f(t, scheme) })
	}
}

// TestGoAwayWithoutDrain: without a drain the manual scenario fails within
// its timeout, and says why.
func TestGoAwayWithoutDrain(t *testing.T) {
	r := startRelay(t)
	url := fmt.Sprintf("moqt://%s/", r.addr)
	start := time.Now()
	stdout, _, err := execute(t, config{}, "--fingerprint", r.fingerprint, "-r", url, "-t", "goaway", "--timeout", "500ms")
	if !errors.Is(err, errFailed) {
		t.Errorf("err = %v, want errFailed", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v with --timeout 500ms", d)
	}
	results := parseTAP(t, stdout, url)
	if len(results) != 1 || results[0].ok || !strings.Contains(results[0].message, "timed out after 500ms") ||
		!strings.Contains(results[0].message, "no GOAWAY") {
		t.Errorf("results %+v", results)
	}
}

// TestRejectingServer: against a server that refuses every request, the
// scenarios that need a relay fail with the refusal in their message,
// and the command fails.
func TestRejectingServer(t *testing.T) {
	addr, fp := startRejecting(t)
	url := fmt.Sprintf("https://%s/", addr)
	stdout, _, err := execute(t, config{}, "--fingerprint", fp, "-r", url)
	if !errors.Is(err, errFailed) {
		t.Errorf("err = %v, want errFailed", err)
	}
	results := parseTAP(t, stdout, url)
	if got, want := strings.Join(names(results), ","), strings.Join(defaultTests(), ","); got != want {
		t.Errorf("ran %s, want %s", got, want)
	}
	for _, r := range results {
		// SETUP works, and the zero Handler answers SUBSCRIBE with
		// TRACK_DOES_NOT_EXIST, which is what subscribe-error wants.
		wantOK := r.name == "setup-only" || r.name == "subscribe-error"
		if r.ok != wantOK {
			t.Errorf("%s: ok=%v, want %v (%s)", r.name, r.ok, wantOK, r.message)
		}
	}
	for _, r := range results {
		if r.name == "announce-only" && !strings.Contains(r.message, "PUBLISH_NAMESPACE_ERROR NOT_SUPPORTED") {
			t.Errorf("announce-only: message %q", r.message)
		}
	}
}

// TestExitCode runs the real command (the test binary re-executed as the
// command): 0 when every test passes, 1 when one fails, TAP on stdout and
// logs on stderr either way.
func TestExitCode(t *testing.T) {
	r := startRelay(t)
	addr, fp := startRejecting(t)
	for _, c := range []struct {
		args []string
		code int
		tap  string
	}{
		{[]string{"-r", "moqt://" + r.addr + "/", "--fingerprint", r.fingerprint, "-t", "setup-only,subscribe-error"}, 0, "ok 2 - subscribe-error\n"},
		{[]string{"-r", "moqt://" + addr + "/", "--fingerprint", fp, "-t", "setup-only,announce-only"}, 1, "not ok 2 - announce-only\n"},
		{[]string{"-t", "nosuch"}, 1, ""},
	} {
		cmd := exec.Command(os.Args[0], c.args...)
		cmd.Env = append(os.Environ(), runMainEnv+"=1", "RELAY_URL=", "TESTCASE=", "TLS_DISABLE_VERIFY=", "VERBOSE=")
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		if code != c.code {
			t.Errorf("%v: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", c.args, code, c.code, out.String(), errOut.String())
		}
		if c.tap == "" {
			if out.Len() != 0 || !strings.Contains(errOut.String(), `unknown test "nosuch"`) {
				t.Errorf("%v: stdout %q stderr %q", c.args, out.String(), errOut.String())
			}
			continue
		}
		if !strings.HasPrefix(out.String(), "TAP version 14\n") || !strings.Contains(out.String(), c.tap) {
			t.Errorf("%v: stdout:\n%s", c.args, out.String())
		}
		if strings.Contains(out.String(), "level=") || !strings.Contains(errOut.String(), "level=INFO") {
			t.Errorf("%v: logs not on stderr only:\nstdout:\n%s\nstderr:\n%s", c.args, out.String(), errOut.String())
		}
	}
}

// TestEnvironment: RELAY_URL, TESTCASE, TLS_DISABLE_VERIFY and VERBOSE
// stand in for their flags; flags win over them.
func TestEnvironment(t *testing.T) {
	r := startRelay(t)
	url := fmt.Sprintf("moqt://%s/", r.addr)
	t.Setenv("RELAY_URL", url)
	t.Setenv("TESTCASE", "subscribe-error,setup-only")
	t.Setenv("TLS_DISABLE_VERIFY", "true")
	t.Setenv("VERBOSE", "1")
	stdout, stderr, err := execute(t, config{})
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if got := names(parseTAP(t, stdout, url)); strings.Join(got, ",") != "subscribe-error,setup-only" {
		t.Errorf("ran %v", got)
	}

	// Flags win: another test, and verification on (the certificate is
	// self-signed, so the connection fails).
	stdout, _, err = execute(t, config{}, "-t", "setup-only", "--tls-disable-verify=false")
	if !errors.Is(err, errFailed) {
		t.Errorf("err = %v, want errFailed", err)
	}
	res := parseTAP(t, stdout, url)
	if len(res) != 1 || res[0].ok || !strings.Contains(res[0].message, "certificate") {
		t.Errorf("results %+v", res)
	}
}

// TestVerbose: failure messages are cut to their first line unless -v.
func TestVerbose(t *testing.T) {
	addr, fp := startRejecting(t)
	url := fmt.Sprintf("moqt://%s/", addr)
	for _, verbose := range []bool{false, true} {
		args := []string{"-r", url, "--fingerprint", fp, "-t", "announce-only", "--log-level", "error"}
		if verbose {
			args = append(args, "-v")
		}
		stdout, _, _ := execute(t, config{}, args...)
		res := parseTAP(t, stdout, url)
		if len(res) != 1 || res[0].ok || !strings.Contains(res[0].message, "NOT_SUPPORTED") {
			t.Errorf("verbose=%v: %+v", verbose, res)
		}
	}
}

func TestList(t *testing.T) {
	stdout, _, err := execute(t, config{}, "--list")
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(defaultTests(), "\n") + "\n"; stdout != want {
		t.Errorf("--list printed %q, want %q", stdout, want)
	}
	for _, n := range []string{"setup-only", "announce-only", "subscribe-error", "announce-subscribe", "subscribe-before-announce", "publish-namespace-done"} {
		if !strings.Contains(stdout, n+"\n") {
			t.Errorf("--list lacks moq-rs's test %s", n)
		}
	}
	stdout, _, err = execute(t, config{}, "-l", "-v")
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(strings.TrimSpace(stdout), "\n"); len(lines) != len(testclient.Scenarios()) ||
		!strings.HasPrefix(lines[len(lines)-1], "goaway ") || !strings.Contains(lines[len(lines)-1], "manual") {
		t.Errorf("-l -v printed:\n%s", stdout)
	}
}

func TestVersion(t *testing.T) {
	want := version.String(binaryName) + "\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout, _, err := execute(t, config{}, args...)
		if err != nil || stdout != want {
			t.Errorf("%v: %q, %v", args, stdout, err)
		}
	}
}

// TestBadArguments: mistakes are refused before any network traffic, with
// nothing on stdout.
func TestBadArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"moqt://127.0.0.1:1/"}, "unknown command"},
		{[]string{"-r", "http://127.0.0.1:4443/"}, `unsupported scheme "http"`},
		{[]string{"-r", "127.0.0.1:4443"}, "has no scheme"},
		{[]string{"-r", "moqt:///x"}, "has no host"},
		{[]string{"-r", "moqt://127.0.0.1:1/", "-t", "nosuch"}, `unknown test "nosuch"; the tests are setup-only, `},
		{[]string{"-r", "moqt://127.0.0.1:1/", "--fingerprint", "abcd"}, "64 hex digits"},
		{[]string{"-r", "moqt://127.0.0.1:1/", "--log-level", "loud"}, "--log-level"},
		{[]string{"-r", "moqt://127.0.0.1:1/", "--timeout", "0s"}, "--timeout"},
	} {
		stdout, _, err := execute(t, config{}, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.args, err, c.want)
		}
		if stdout != "" {
			t.Errorf("%q: stdout %q", c.args, stdout)
		}
	}
}

// startGrantOnBlocked runs a minimal MoQT server, at the wire level, that
// accepts every SUBSCRIBE_NAMESPACE, grants 2 request IDs in SERVER_SETUP
// and answers every REQUESTS_BLOCKED with a MAX_REQUEST_ID one request
// larger (draft-14 §9.6: an endpoint MAY), without waiting for a request
// to end. A request whose ID is not below its grant closes the session
// with TOO_MANY_REQUESTS, as the draft requires.
func startGrantOnBlocked(t *testing.T) (url, fingerprint string) {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{SelfSignedHosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			in, err := srv.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				defer func() { _ = in.Conn.CloseWithError(0, "") }()
				// Its errors show in the scenario's result.
				_ = serveGrantOnBlocked(ctx, in.Conn)
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		wg.Wait()
	})
	fp, _ := srv.Fingerprint()
	return "moqt://" + srv.Addr().String() + "/", fmt.Sprintf("%x", fp[:])
}

func serveGrantOnBlocked(ctx context.Context, c moqtransport.Conn) error {
	st, err := c.AcceptStream(ctx)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		_ = c.CloseWithError(0, "")
	}()
	send := func(m wire.Message) error {
		b, err := wire.AppendMessage(nil, m)
		if err != nil {
			return err
		}
		_, err = st.Write(b)
		return err
	}
	r := wire.NewControlReader(st)
	if m, err := r.ReadMessage(); err != nil {
		return err
	} else if _, ok := m.(*wire.ClientSetup); !ok {
		return fmt.Errorf("first message %s", m.Type())
	}
	grant := uint64(4) // request IDs 0 and 2
	if err := send(&wire.ServerSetup{Version: wire.Draft14,
		Params: wire.Parameters{{Type: wire.SetupParamMaxRequestID, Value: grant}}}); err != nil {
		return err
	}
	for {
		m, err := r.ReadMessage()
		if err != nil {
			return err
		}
		switch m := m.(type) {
		case *wire.SubscribeNamespace:
			if m.RequestID >= grant {
				_ = c.CloseWithError(uint64(wire.TooManyRequests), "past MAX_REQUEST_ID")
				return fmt.Errorf("request ID %d past the grant %d", m.RequestID, grant)
			}
			err = send(&wire.SubscribeNamespaceOK{RequestID: m.RequestID})
		case *wire.RequestsBlocked:
			grant += 2
			err = send(&wire.MaxRequestID{Max: grant})
		}
		if err != nil {
			return err
		}
	}
}

// TestRequestIDGrantOnBlocked: a relay that raises its MAX_REQUEST_ID as
// soon as REQUESTS_BLOCKED arrives (which draft-14 §9.6 allows) passes
// request-id-flow-control: the waiting request completes under the new
// grant.
func TestRequestIDGrantOnBlocked(t *testing.T) {
	url, fp := startGrantOnBlocked(t)
	stdout, stderr, err := execute(t, config{}, "--fingerprint", fp, "-r", url, "-t", "request-id-flow-control")
	results := parseTAP(t, stdout, url)
	if err != nil || len(results) != 1 || !results[0].ok || results[0].skip != "" {
		t.Fatalf("request-id-flow-control: %v %+v\n%s", err, results, stderr)
	}
}
