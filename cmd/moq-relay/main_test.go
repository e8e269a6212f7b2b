package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
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
	"github.com/moqgo/moq/moqnative"
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
	type ready struct {
		addr net.Addr
		fp   string
	}
	readyc := make(chan ready, 1)
	var logs syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{
			bind: "127.0.0.1:0", logLevel: "info", drainTimeout: 2 * time.Second,
			stdout: io.Discard, stderr: &logs,
			ready: func(addr net.Addr, fp string) { readyc <- ready{addr, fp} },
		})
	}()
	var r ready
	select {
	case r = <-readyc:
	case err := <-done:
		t.Fatalf("relay stopped: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not start")
	}
	if len(r.fp) != 64 || !strings.Contains(logs.String(), r.fp) {
		t.Fatalf("fingerprint %q not logged: %s", r.fp, logs.String())
	}
	raw, _ := hex.DecodeString(r.fp)
	var fp [32]byte
	copy(fp[:], raw)
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	connect := func(scheme string, h *moqtransport.Tracks) *moqtransport.Session {
		d, err := moqnative.Dial(tctx, fmt.Sprintf("%s://%s/", scheme, r.addr), moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		s, err := moqtransport.Connect(tctx, d.Conn, &moqtransport.Config{Handler: handlerOf(h), Path: d.Path, Authority: d.Authority})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
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

	cancel() // the first signal
	select {
	case <-sub.GoAway():
	case <-tctx.Done():
		t.Fatal("no GOAWAY on drain")
	}
	_ = sub.Close()
	_ = pub.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("relay stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("relay did not stop after the drain")
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
