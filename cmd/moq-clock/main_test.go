package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/clock"
	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// at is 2026-04-13 hh:mm:ss.ms UTC.
func at(hh, mm, ss, ms int) time.Time {
	return time.Date(2026, 4, 13, hh, mm, ss, ms*int(time.Millisecond), time.UTC)
}

// execute runs the moq-clock command with args and returns what it wrote to
// stdout and stderr.
func execute(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(config{})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestVersion(t *testing.T) {
	want := "moq-clock " + version.Version + " (moq-go, draft-ietf-moq-transport-14)\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout, stderr, err := execute(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if stdout != want || stderr != "" {
			t.Errorf("%v: stdout %q stderr %q, want %q", args, stdout, stderr, want)
		}
	}
}

// TestBadArguments: mistakes are refused with a clear error before any
// network traffic.
func TestBadArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "accepts 1 arg"},
		{[]string{"moqt://a/", "moqt://b/"}, "accepts 1 arg"},
		{[]string{"http://127.0.0.1:4443/"}, `unsupported scheme "http": use moqt://host:port/path (raw QUIC) or https://host:port/path (WebTransport)`},
		{[]string{"127.0.0.1:4443"}, "has no scheme: use moqt://host:port/path (raw QUIC) or https://host:port/path (WebTransport)"},
		{[]string{"localhost"}, "has no scheme"},
		{[]string{"wss://127.0.0.1:4443/"}, `unsupported scheme "wss"`},
		{[]string{"moqt://127.0.0.1:4443/%zz"}, "invalid URL escape"},
		{[]string{"moqt:///clock"}, "has no host"},
		{[]string{"--fingerprint", "abcd", "moqt://127.0.0.1:4443/"}, "64 hex digits"},
		{[]string{"--fingerprint", strings.Repeat("zz", 32), "moqt://127.0.0.1:4443/"}, "64 hex digits"},
		{[]string{"--log-level", "loud", "moqt://127.0.0.1:4443/"}, "--log-level"},
		{[]string{"--namespace", "", "moqt://127.0.0.1:4443/"}, "--namespace"},
	} {
		stdout, _, err := execute(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want it to contain %q", c.args, err, c.want)
		}
		if stdout != "" {
			t.Errorf("%q: stdout %q", c.args, stdout)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	want := [32]byte{0xab, 0xcd}
	hexs := hex.EncodeToString(want[:])
	var parts []string // "AB:CD:00:...", as browsers show it
	for i := 0; i < len(hexs); i += 2 {
		parts = append(parts, strings.ToUpper(hexs[i:i+2]))
	}
	for _, s := range []string{hexs, strings.Join(parts, ":"), " " + hexs + "\n"} {
		if got, err := cli.ParseFingerprint(s); err != nil || got != want {
			t.Errorf("parseFingerprint(%q) = %x, %v", s, got, err)
		}
	}
}

// testRelay is an in-process moq-go relay on loopback with a generated
// certificate for 127.0.0.1.
type testRelay struct {
	addr        string
	fingerprint string // hex
	rootPEM     string // the certificate as a PEM file, its own root
	stop        func()
}

func startRelay(t *testing.T) *testRelay {
	t.Helper()
	ss, err := moqnative.GenerateSelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(root, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ss.DER}), 0o600); err != nil {
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
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			rs.Close()
			_ = srv.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	fp := ss.Fingerprint()
	return &testRelay{addr: srv.Addr().String(), fingerprint: hex.EncodeToString(fp[:]), rootPEM: root, stop: stop}
}

// lines is an output that tests can wait on.
type lines struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newLines() *lines { return &lines{changed: make(chan struct{})} }

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
	return l.b.Write(p)
}

func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the output contains s.
func (l *lines) waitFor(t *testing.T, what, s string) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		l.mu.Lock()
		has, changed := strings.Contains(l.b.String(), s), l.changed
		l.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s: no %q in:\n%s", what, s, l.String())
		}
	}
}

// proc is one moq-clock command running in the test.
type proc struct {
	name           string
	stdout, stderr *lines
	ready          chan struct{}
	cancel         context.CancelFunc
	done           chan error
}

// start runs moq-clock with args; base carries the test hooks.
func start(t *testing.T, name string, base config, args ...string) *proc {
	t.Helper()
	return startOut(t, name, base, nil, args...)
}

// startOut is start with stdout out (nil: proc.stdout).
func startOut(t *testing.T, name string, base config, out io.Writer, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, stdout: newLines(), stderr: newLines(), ready: make(chan struct{}), done: make(chan error, 1)}
	var once sync.Once
	base.ready = func() { once.Do(func() { close(p.ready) }) }
	if base.closeGrace == 0 {
		base.closeGrace = 100 * time.Millisecond
	}
	cmd := newRootCommand(base)
	if out == nil {
		out = p.stdout
	}
	cmd.SetOut(out)
	cmd.SetErr(p.stderr)
	cmd.SetArgs(args)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("%s did not stop", name)
		}
	})
	return p
}

func (p *proc) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-p.ready:
	case err := <-p.done:
		p.done <- err // for wait and the cleanup
		select {
		case <-p.ready:
			// Ready, then stopped at once (e.g. its first write found
			// stdout's reader gone): both were ready when select chose.
			return
		default:
		}
		t.Fatalf("%s stopped: %v\n%s", p.name, err, p.stderr.String())
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not ready:\n%s", p.name, p.stderr.String())
	}
}

// wait waits for the command to end and returns its error.
func (p *proc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s did not end:\n%s", p.name, p.stderr.String())
		return nil
	}
}

func tick(t *testing.T, clk *clock.Manual, tm time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := clk.Tick(ctx, tm); err != nil {
		t.Fatalf("publisher took no tick at %v: %v", tm, err)
	}
}

// tlsArgs are the three ways to trust the test relay.
func (r *testRelay) tlsArgs(kind string) []string {
	switch kind {
	case "fingerprint":
		return []string{"--fingerprint", r.fingerprint}
	case "root":
		return []string{"--tls-root", r.rootPEM}
	}
	return []string{"--tls-disable-verify"}
}

// TestClockThroughRelay publishes the clock through a moq-go relay and
// prints it with a subscriber, for both modes over both transports, with
// a fake clock that crosses a minute boundary. The publisher's interrupt
// ends the track, and the subscriber exits 0 with PUBLISH_DONE.
func TestClockThroughRelay(t *testing.T) {
	for _, c := range []struct {
		scheme      string
		datagrams   bool
		trackStatus bool
		pubTLS      string
		subTLS      string
	}{
		{"moqt", false, true, "fingerprint", "root"},
		{"https", false, false, "root", "disable-verify"},
		{"moqt", true, false, "disable-verify", "fingerprint"},
		{"https", true, true, "fingerprint", "fingerprint"},
	} {
		mode := "stream"
		if c.datagrams {
			mode = "datagrams"
		}
		t.Run(fmt.Sprintf("%s/%s/track-status=%v", c.scheme, mode, c.trackStatus), func(t *testing.T) {
			r := startRelay(t)
			url := fmt.Sprintf("%s://%s/", c.scheme, r.addr)
			if c.datagrams {
				testDatagrams(t, r, url, c.pubTLS, c.subTLS, c.trackStatus)
			} else {
				testStream(t, r, url, c.pubTLS, c.subTLS, c.trackStatus)
			}
		})
	}
}

func testStream(t *testing.T, r *testRelay, url, pubTLS, subTLS string, trackStatus bool) {
	clk := clock.NewManual(at(18, 37, 57, 250))
	pubArgs := append(r.tlsArgs(pubTLS), "--publish", "--log-level", "debug", url)
	pub := start(t, "publisher", config{now: clk.Now, newTicker: clk.NewTicker}, pubArgs...)
	pub.waitReady(t)
	// The publisher has written objects 0 and 1 of group 37 once it printed.
	pub.stdout.waitFor(t, "publisher", "2026-04-13 18:37:57\n")

	subs := startSubscribers(t, r, url, subTLS, trackStatus, "content_exists=true largest={37,1}")

	// The subscription starts after object 1 of group 37 (Largest Object);
	// its joining FETCH brings objects 0 and 1, and the subscriber prints
	// the current second at once, before the publisher's clock moves.
	for _, sub := range subs {
		sub.stdout.waitFor(t, sub.name, "2026-04-13 18:37:57\n")
		sub.stderr.waitFor(t, sub.name+" log", "group=37 objects=2")
	}
	tick(t, clk, at(18, 37, 58, 0))
	tick(t, clk, at(18, 37, 59, 0))
	pub.stdout.waitFor(t, "publisher", "2026-04-13 18:37:59\n")
	// Groups travel on streams of their own, which may overtake each
	// other: the subscribers print minute 37's seconds before 38 begins.
	for _, sub := range subs {
		sub.stdout.waitFor(t, sub.name, "2026-04-13 18:37:59\n")
	}
	// The next minute is a new group on a new stream.
	tick(t, clk, at(18, 38, 0, 3))
	for _, sub := range subs {
		sub.stdout.waitFor(t, sub.name, "2026-04-13 18:38:00\n")
	}
	tick(t, clk, at(18, 38, 1, 0))
	tick(t, clk, at(18, 38, 2, 0))
	for _, sub := range subs {
		sub.stdout.waitFor(t, sub.name, "2026-04-13 18:38:02\n")
	}

	// Interrupt the publisher: the track ends, and so do the subscribers.
	pub.cancel()
	if err := pub.wait(t); err != nil {
		t.Fatalf("publisher: %v\n%s", err, pub.stderr.String())
	}
	for _, sub := range subs {
		if err := sub.wait(t); err != nil {
			t.Fatalf("%s: %v\n%s", sub.name, err, sub.stderr.String())
		}
		if got, want := sub.stdout.String(), "2026-04-13 18:37:57\n2026-04-13 18:37:58\n2026-04-13 18:37:59\n2026-04-13 18:38:00\n2026-04-13 18:38:01\n2026-04-13 18:38:02\n"; got != want {
			t.Errorf("%s printed %q, want %q", sub.name, got, want)
		}
		if !strings.Contains(sub.stderr.String(), "track ended") {
			t.Errorf("%s did not log the end of the track:\n%s", sub.name, sub.stderr.String())
		}
	}
	wantPub := "2026-04-13 18:37:57\n2026-04-13 18:37:58\n2026-04-13 18:37:59\n2026-04-13 18:38:00\n2026-04-13 18:38:01\n2026-04-13 18:38:02\n"
	if got := pub.stdout.String(); got != wantPub {
		t.Errorf("publisher printed %q, want %q", got, wantPub)
	}
}

// startSubscribers starts a subscriber and, with trackStatus, a second one
// with --track-status that must log wantStatus.
//
// The --track-status subscriber joins while the first one is subscribed:
// alone, its TRACK_STATUS makes the relay subscribe upstream and
// unsubscribe at once, and the relay's SUBSCRIBE that follows can reach the
// publisher's session before that session has retired the unsubscribed
// subscription, which it then takes for a duplicate SUBSCRIBE and closes
// the session with PROTOCOL_VIOLATION (a moqtransport race, reported).
func startSubscribers(t *testing.T, r *testRelay, url, subTLS string, trackStatus bool, wantStatus string) []*proc {
	t.Helper()
	sub := start(t, "subscriber", config{}, append(r.tlsArgs(subTLS), url)...)
	sub.waitReady(t)
	subs := []*proc{sub}
	if trackStatus {
		st := start(t, "track-status subscriber", config{}, append(r.tlsArgs(subTLS), "--track-status", url)...)
		st.waitReady(t)
		st.stderr.waitFor(t, st.name+" log", wantStatus)
		subs = append(subs, st)
	}
	return subs
}

func testDatagrams(t *testing.T, r *testRelay, url, pubTLS, subTLS string, trackStatus bool) {
	clk := clock.NewManual(at(18, 37, 58, 500))
	pubArgs := append(r.tlsArgs(pubTLS), "--publish", "--datagrams", url)
	pub := start(t, "publisher", config{now: clk.Now, newTicker: clk.NewTicker}, pubArgs...)
	pub.waitReady(t)
	pub.stdout.waitFor(t, "publisher", "2026-04-13 18:37:58\n")

	subs := startSubscribers(t, r, url, subTLS, trackStatus, "content_exists=true largest={37,0}")
	// One datagram a second, a group each; the subscriptions start after
	// the one of 18:37:58 (group 37), which their joining FETCH brings.
	for _, sub := range subs {
		sub.stdout.waitFor(t, sub.name, "2026-04-13 18:37:58\n")
	}
	for _, tm := range []time.Time{at(18, 37, 59, 0), at(18, 38, 0, 0), at(18, 38, 1, 0)} {
		tick(t, clk, tm)
		for _, sub := range subs {
			sub.stdout.waitFor(t, sub.name, clock.Timestamp(tm)+"\n")
		}
	}
	pub.cancel()
	if err := pub.wait(t); err != nil {
		t.Fatalf("publisher: %v\n%s", err, pub.stderr.String())
	}
	for _, sub := range subs {
		if err := sub.wait(t); err != nil {
			t.Fatalf("%s: %v\n%s", sub.name, err, sub.stderr.String())
		}
		if got, want := sub.stdout.String(), "2026-04-13 18:37:58\n2026-04-13 18:37:59\n2026-04-13 18:38:00\n2026-04-13 18:38:01\n"; got != want {
			t.Errorf("%s printed %q, want %q", sub.name, got, want)
		}
	}
	if got, want := pub.stdout.String(), "2026-04-13 18:37:58\n2026-04-13 18:37:59\n2026-04-13 18:38:00\n2026-04-13 18:38:01\n"; got != want {
		t.Errorf("publisher printed %q, want %q", got, want)
	}
}

// TestSubscriberInterrupt: cancelling the subscriber (Ctrl-C) unsubscribes
// and exits 0; the publisher goes on.
func TestSubscriberInterrupt(t *testing.T) {
	r := startRelay(t)
	url := fmt.Sprintf("moqt://%s/", r.addr)
	clk := clock.NewManual(at(9, 5, 0, 0))
	pub := start(t, "publisher", config{now: clk.Now, newTicker: clk.NewTicker}, "--fingerprint", r.fingerprint, "--publish", url)
	pub.stdout.waitFor(t, "publisher", "2026-04-13 09:05:00\n")
	sub := start(t, "subscriber", config{}, "--fingerprint", r.fingerprint, url)
	sub.waitReady(t)
	sub.cancel()
	if err := sub.wait(t); err != nil {
		t.Fatalf("subscriber: %v", err)
	}
	if !strings.Contains(sub.stderr.String(), "unsubscribed") {
		t.Errorf("no unsubscribe logged:\n%s", sub.stderr.String())
	}
	tick(t, clk, at(9, 5, 1, 0))
	pub.stdout.waitFor(t, "publisher", "2026-04-13 09:05:01\n")
	select {
	case err := <-pub.done:
		t.Fatalf("publisher stopped: %v", err)
	default:
	}
}

// TestSubscriberErrors: a track nobody publishes, and a relay that goes
// away, end the subscriber with an error that says so.
func TestSubscriberErrors(t *testing.T) {
	r := startRelay(t)
	url := fmt.Sprintf("https://%s/", r.addr)
	_, _, err := execute(t, "--fingerprint", r.fingerprint, "--namespace", "nobody/here", url)
	if err == nil || !strings.Contains(err.Error(), "subscribing to nobody/here/now") || !strings.Contains(err.Error(), "TRACK_DOES_NOT_EXIST") {
		t.Errorf("subscribing to a missing track: %v", err)
	}

	clk := clock.NewManual(at(9, 5, 0, 0))
	pub := start(t, "publisher", config{now: clk.Now, newTicker: clk.NewTicker}, "--fingerprint", r.fingerprint, "--publish", url)
	pub.stdout.waitFor(t, "publisher", "2026-04-13 09:05:00\n")
	sub := start(t, "subscriber", config{}, "--fingerprint", r.fingerprint, url)
	sub.waitReady(t)
	r.stop()
	if err := sub.wait(t); err == nil || !strings.Contains(err.Error(), "session ended") {
		t.Errorf("subscriber after the relay closed: %v", err)
	}
	if err := pub.wait(t); err == nil || !strings.Contains(err.Error(), "session ended") {
		t.Errorf("publisher after the relay closed: %v", err)
	}
}

// TestWrongFingerprint: a certificate that does not match the pinned hash is
// refused.
func TestWrongFingerprint(t *testing.T) {
	r := startRelay(t)
	_, _, err := execute(t, "--fingerprint", strings.Repeat("00", 32), fmt.Sprintf("moqt://%s/", r.addr))
	if err == nil {
		t.Fatal("a wrong fingerprint was accepted")
	}
}
