package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(runAsRelay); ok {
		os.Args = append([]string{binaryName}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// execute runs the moq-relay command with args and returns what it wrote to
// stdout and stderr.
func execute(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(nil)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestRelayVersion(t *testing.T) {
	want := "moq-relay " + version.Version + " (moq-go, draft-ietf-moq-transport-14)\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout, stderr, err := execute(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if stdout != want {
			t.Errorf("%v: stdout = %q, want %q", args, stdout, want)
		}
		if !strings.Contains(stdout, version.Version) || !strings.Contains(stdout, version.Draft) {
			t.Errorf("%v: stdout %q lacks version %q or draft %q", args, stdout, version.Version, version.Draft)
		}
		if stderr != "" {
			t.Errorf("%v: unexpected stderr %q", args, stderr)
		}
	}
}

func TestRelayRejectsArgs(t *testing.T) {
	if _, _, err := execute(t, "extra"); err == nil {
		t.Fatal("unexpected positional argument was accepted")
	}
}

func TestRelayRejectsUnpairedCertificates(t *testing.T) {
	if _, _, err := execute(t, "--bind", "127.0.0.1:0", "--tls-cert", "a.pem"); err == nil || !strings.Contains(err.Error(), "pairs") {
		t.Fatalf("a --tls-cert without --tls-key: %v", err)
	}
	if _, _, err := execute(t, "--log-level", "loud"); err == nil {
		t.Fatal("an unknown log level was accepted")
	}
	if _, _, err := execute(t, "--log-format", "xml"); err == nil || !strings.Contains(err.Error(), "--log-format") {
		t.Fatalf("an unknown log format: %v", err)
	}
}

// TestRelayServesAndDrains runs the relay on loopback, moves a track
// through it over both transports, and checks that cancelling the context
// (the first signal) sends GOAWAY and stops the relay.
func TestRelayServesAndDrains(t *testing.T) {
	var logs syncBuffer
	r := startRelayConfig(t, config{drainTimeout: 2 * time.Second, stderr: &logs})
	if len(r.fpHex) != 64 || !strings.Contains(logs.String(), r.fpHex) {
		t.Fatalf("fingerprint %q not logged: %s", r.fpHex, logs.String())
	}
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	connect := func(scheme string, h *moqtransport.Tracks) *moqtransport.Session {
		return connectTo(t, tctx, fmt.Sprintf("%s://%s/", scheme, r.addr), r.fp, h)
	}
	tracks := &moqtransport.Tracks{}
	ns := wire.Namespace{"clock"}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "now"}, moqtransport.TrackConfig{})
	tracks.Add(tr)
	pub := connect("moqt", tracks)
	if _, err := pub.PublishNamespace(tctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	sub := connect("https", nil)
	s, err := sub.Subscribe(tctx, ns, "now", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	if err := w.WriteObject(0, []byte("12:00:00"), nil); err != nil {
		t.Fatal(err)
	}
	rd := s.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer rd.Close()
	ev, err := rd.Next(tctx)
	if err != nil || ev.Kind != moqtransport.EventObject || string(ev.Object.Payload) != "12:00:00" {
		t.Fatalf("through the relay: %+v, %v", ev, err)
	}

	r.cancel() // the first signal
	select {
	case <-sub.GoAway():
	case <-tctx.Done():
		t.Fatal("no GOAWAY on drain")
	}
	_ = sub.Close()
	_ = pub.Close()
	r.stop(t) // the drain ends
}

// testRelay is moq-relay running in the test's process (startRelayConfig).
type testRelay struct {
	addr  net.Addr
	fpHex string   // its certificate's SHA-256 fingerprint, as logged
	fp    [32]byte // the same, for ServerCertificateHashes
	// cancel is the first signal: the relay drains.
	cancel context.CancelFunc
	done   chan error // run's result
	// stopped: stop has waited for run.
	stopped bool
}

// startRelayConfig runs moq-relay with cfg until the test ends and returns
// once it serves. What cfg leaves unset is a test's default: bind
// 127.0.0.1:0, log level info, a 1s drain, output discarded. A relay that
// stops, or does not serve within 10s, fails the test; at the test's end
// the relay is stopped (stop).
func startRelayConfig(t *testing.T, cfg config) *testRelay {
	t.Helper()
	r, err := tryStartRelay(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// tryStartRelay is startRelayConfig returning run's error when the relay
// stops before it serves.
func tryStartRelay(t *testing.T, cfg config) (*testRelay, error) {
	t.Helper()
	cfg.bind = cmp.Or(cfg.bind, "127.0.0.1:0")
	cfg.logLevel = cmp.Or(cfg.logLevel, "info")
	cfg.drainTimeout = cmp.Or(cfg.drainTimeout, time.Second)
	if cfg.stdout == nil {
		cfg.stdout = io.Discard
	}
	if cfg.stderr == nil {
		cfg.stderr = io.Discard
	}
	type ready struct {
		addr net.Addr
		fp   string
	}
	readyc := make(chan ready, 1)
	cfg.ready = func(addr net.Addr, fp string) { readyc <- ready{addr, fp} }
	ctx, cancel := context.WithCancel(context.Background())
	r := &testRelay{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- run(ctx, cfg) }()
	select {
	case rd := <-readyc:
		r.addr, r.fpHex = rd.addr, rd.fp
		raw, _ := hex.DecodeString(rd.fp)
		copy(r.fp[:], raw)
		t.Cleanup(func() { r.stop(t) })
		return r, nil
	case err := <-r.done:
		cancel()
		return nil, fmt.Errorf("relay stopped: %w", err)
	case <-time.After(10 * time.Second):
		cancel()
		return nil, errors.New("relay did not start within 10s")
	}
}

// stop sends the relay its first signal, if the test has not, and waits
// up to 10s for run to return; an error, or a relay still running, fails
// the test. Later calls return at once.
func (r *testRelay) stop(t *testing.T) {
	t.Helper()
	if r.stopped {
		return
	}
	r.stopped = true
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("relay stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not stop within 10s of its first signal")
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

// --log-format json writes one JSON object a line, with the attributes.
func TestLogFormatJSON(t *testing.T) {
	var b bytes.Buffer
	l, err := newLogger(&b, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	l.With("session", "7").Info("session started", "request", 3)
	l.Debug("below the level")
	var m map[string]any
	if err := json.Unmarshal(b.Bytes(), &m); err != nil {
		t.Fatalf("%q: %v", b.String(), err)
	}
	if m["msg"] != "session started" || m["session"] != "7" || m["request"] != float64(3) || strings.Count(b.String(), "\n") != 1 {
		t.Errorf("json log %q", b.String())
	}
}

// handlerOf serves a test publisher's tracks; nil serves nothing.
func handlerOf(ts *moqtransport.Tracks) moqtransport.Handler {
	if ts == nil {
		return moqtransport.Handler{}
	}
	return ts.Handler()
}
