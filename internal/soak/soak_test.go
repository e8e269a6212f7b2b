package soak

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// inProcess is a relay in this process with its metrics and pprof on a
// loopback TCP port: the soak samples this process.
type inProcess struct {
	url, metrics string
	tls          moqnative.ClientTLS
}

// startRelay starts the relay with a 1 s upstream timeout: SUBSCRIBEs a
// deaf publisher never answers fail in 1 s.
func startRelay(t *testing.T) inProcess { return startRelayWith(t, relay.Config{}) }

func startRelayWith(t *testing.T, cfg relay.Config) inProcess {
	t.Helper()
	cfg.UpstreamTimeout = time.Second
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := srv.Fingerprint()
	rs := relay.NewServer(relay.New(cfg), srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rs.Serve(ctx)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: relay.OpsHandler(rs, true), ReadHeaderTimeout: 5 * time.Second}
	hdone := make(chan struct{})
	go func() {
		defer close(hdone)
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = hs.Close()
		<-hdone
		cancel()
		rs.Close()
		_ = srv.Close()
		<-done
	})
	return inProcess{url: fmt.Sprintf("moqt://%s/", srv.Addr()), metrics: "http://" + ln.Addr().String(),
		tls: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}}
}

// A short run: the legitimate objects arrive verified, every sample reads
// the relay's resources, the summary prints, and a budget set below what
// the relay uses is reported exceeded.
func TestRunSamplesAndBudgets(t *testing.T) {
	t.Parallel()
	r := startRelay(t)
	var out bytes.Buffer
	rep, err := Run(context.Background(), Config{
		URL: r.url, TLS: r.tls, Duration: 2 * time.Second, SampleEvery: 500 * time.Millisecond,
		Publishers: 1, Subscribers: 2, Rate: 50, ObjectSize: 200, GroupSize: 10,
		HostileWorkers: 2, Scale: 2, AnswerWait: time.Second, HostilePause: 50 * time.Millisecond,
		RelayPID: os.Getpid(), MetricsURL: r.metrics, MaxFDs: 1, MaxRSSMB: 1 << 20,
		Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Delivered == 0 || rep.Corrupt != 0 {
		t.Errorf("delivered %d, corrupt %d: want objects, none corrupt", rep.Delivered, rep.Corrupt)
	}
	if rep.Published == 0 || rep.Delivered > 2*rep.Published {
		t.Errorf("published %d, delivered %d to 2 subscribers", rep.Published, rep.Delivered)
	}
	if len(rep.Samples) < 3 {
		t.Fatalf("%d samples in 2 s at 500 ms", len(rep.Samples))
	}
	for _, x := range rep.Samples {
		if x.RSSMB <= 0 || x.Goroutines <= 0 || x.FDs <= 0 || x.Sessions < 0 || x.CacheMB < 0 {
			t.Errorf("sample at %v: rss %.1f MB, %d goroutines, %d fds, %d sessions, cache %.1f MB: want each read",
				x.At, x.RSSMB, x.Goroutines, x.FDs, x.Sessions, x.CacheMB)
		}
	}
	if last := rep.Samples[len(rep.Samples)-1]; last.Delivered != rep.Delivered {
		t.Errorf("the last sample has %d delivered, the report %d", last.Delivered, rep.Delivered)
	}
	if len(rep.Violations) != 1 || !strings.HasPrefix(rep.Violations[0], "fds") {
		t.Errorf("violations %q, want the fd budget of 1 only", rep.Violations)
	}
	rep.Print(&out)
	for _, want := range []string{"rss_mb", "BUDGET EXCEEDED: fds", "summary over", "delivered and verified", "hostile outcomes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the output has no %q:\n%s", want, out.String())
		}
	}
	t.Logf("\n%s", out.String())
}

// Each hostile behaviour, run once at a small scale to its end, records
// an outcome; those where the relay's answer is set by the draft (and by
// the relay's trust rules) record an expected one.
func TestHostileBehaviours(t *testing.T) {
	t.Parallel()
	r := startRelay(t)
	cfg := Config{URL: r.url, TLS: r.tls, Scale: 2, AnswerWait: time.Second, UpstreamWait: 3 * time.Second, HostileWorkers: 1}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	c := newCounters()
	ctx := context.Background()
	l := &legit{cfg: &cfg, c: c, run: "test", epoch: time.Now()}
	s, closeOwner, _, err := l.connectPublisher(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer closeOwner()
	_ = s
	h := &hostile{cfg: &cfg, c: c, run: "test", legitNS: l.namespace(0)}
	mustExpect := map[string]bool{"bad-path": true, "publish-hijack": true, "fake-relay-peer": true, "extreme-fetch": true}
	for i, b := range behaviours {
		b.act(h, ctx, i)
		c.mu.Lock()
		got := c.hostile[b.name]
		c.mu.Unlock()
		if len(got) == 0 {
			t.Errorf("%s recorded no outcome", b.name)
		}
		for what := range got {
			if mustExpect[b.name] && strings.HasPrefix(what, "UNEXPECTED") {
				t.Errorf("%s: %s", b.name, what)
			}
		}
		t.Logf("%s: %v", b.name, got)
	}
}

// The payload check finds a changed byte, a changed header and a wrong
// length.
func TestVerify(t *testing.T) {
	l := &legit{cfg: &Config{ObjectSize: 64}, epoch: time.Now()}
	p := l.payload(7)
	if _, ok := verify(p, 64); !ok {
		t.Fatal("a good payload did not verify")
	}
	for i, mut := range []func([]byte) []byte{
		func(b []byte) []byte { b[40] ^= 1; return b },
		func(b []byte) []byte { b[3] ^= 1; return b },
		func(b []byte) []byte { return b[:63] },
	} {
		q := mut(bytes.Clone(p))
		if _, ok := verify(q, 64); ok {
			t.Errorf("mutation %d verified", i)
		}
	}
}

func TestErrKind(t *testing.T) {
	if got := errKind(fmt.Errorf("x: %w", context.DeadlineExceeded)); got != "timed out" {
		t.Errorf("deadline: %q", got)
	}
	if got := errKind(errors.New(strings.Repeat("a", 200))); len(got) != 80 {
		t.Errorf("a long error is %d bytes, want 80", len(got))
	}
}

// With Token, the clients are authorized by a relay with access control:
// the legitimate publisher may announce, and a hostile client's hijack is
// refused for ownership, not for a missing token.
func TestToken(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	auth, err := relay.NewHMACAuth(secret)
	if err != nil {
		t.Fatal(err)
	}
	r := startRelayWith(t, relay.Config{Auth: auth})
	tok, err := AllowAllToken(secret, time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, c := range []struct {
		token string
		ok    bool
	}{{"", false}, {tok, true}} {
		cfg := Config{URL: r.url, TLS: r.tls, Token: c.token, AnswerWait: time.Second}
		if err := cfg.defaults(); err != nil {
			t.Fatal(err)
		}
		l := &legit{cfg: &cfg, c: newCounters(), run: "auth", epoch: time.Now()}
		_, closeFn, _, err := l.connectPublisher(ctx, len(c.token))
		if (err == nil) != c.ok {
			t.Fatalf("a publisher with token %q: %v", c.token, err)
		}
		if err != nil {
			continue
		}
		h := &hostile{cfg: &cfg, c: l.c, run: "auth", legitNS: l.namespace(len(c.token))}
		h.publishHijack(ctx, 0)
		for what := range l.c.hostile["publish-hijack"] {
			if !strings.Contains(what, "published by another session") {
				t.Errorf("hijack with a token: %s, want it refused for ownership", what)
			}
		}
		closeFn()
	}
}
