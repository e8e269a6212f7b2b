package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/relay"
)

func TestOpsFlags(t *testing.T) {
	dir := t.TempDir()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(pub)
	edPath := filepath.Join(dir, "ed.pem")
	if err := os.WriteFile(edPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	hmacPath := filepath.Join(dir, "secret")
	if err := os.WriteFile(hmacPath, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	shortPath := filepath.Join(dir, "short")
	if err := os.WriteFile(shortPath, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	for _, key := range []string{edPath, hmacPath} {
		o := opsConfig{authKey: key, cacheMaxBytes: 1 << 20, cacheMaxGroups: 8, cacheTotal: 5 << 20, maxRequests: 7, mlogDir: filepath.Join(dir, "mlog"), deliveryTO: 1500 * time.Millisecond, writeAhead: -1}
		var rcfg relay.Config
		closeLogs, err := o.apply(&rcfg, log)
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if rcfg.Auth == nil || rcfg.Track.MaxBytes != 1<<20 || rcfg.Track.MaxGroups != 8 || rcfg.Session.MaxRequests != 7 || rcfg.SessionTracer == nil ||
			rcfg.Session.DefaultDeliveryTimeout != 1500*time.Millisecond || rcfg.Session.MaxWriteAhead != -1 {
			t.Errorf("%s: relay config %+v", key, rcfg)
		}
		if st := rcfg.Track.Budget.Stats(); st.Limit != 5<<20 {
			t.Errorf("%s: cache budget %+v, want --cache-total-bytes", key, st)
		}
		if tr := rcfg.SessionTracer("1"); tr == nil {
			t.Error("no mlog tracer for a session")
		} else if c, ok := tr.(io.Closer); !ok {
			t.Errorf("the mlog tracer %T cannot be closed at the session's end", tr)
		} else {
			_ = c.Close()
		}
		closeLogs()
		files, _ := filepath.Glob(filepath.Join(dir, "mlog", "*.mlog"))
		if len(files) == 0 {
			t.Error("no mlog file written")
		}
	}
	for _, bad := range []string{shortPath, filepath.Join(dir, "missing")} {
		o := opsConfig{authKey: bad}
		if _, err := o.apply(&relay.Config{}, log); err == nil {
			t.Errorf("--auth-key %s accepted", bad)
		}
	}
}

// The memory limits have defaults: a relay started with no flags is
// bounded (issue 10).
func TestOpsDefaults(t *testing.T) {
	var o opsConfig
	f := pflag.NewFlagSet("moq-relay", pflag.ContinueOnError)
	o.addFlags(f)
	if err := f.Parse(nil); err != nil {
		t.Fatal(err)
	}
	var rcfg relay.Config
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // apply sets it
	if _, err := o.apply(&rcfg, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if rcfg.Session.MaxWriteAhead != moqtransport.DefaultMaxWriteAhead {
		t.Errorf("default --write-ahead %d, want %d", rcfg.Session.MaxWriteAhead, moqtransport.DefaultMaxWriteAhead)
	}
	for _, bad := range []int64{-2, -1 << 20} {
		o2 := o
		o2.writeAhead = bad
		if _, err := o2.apply(&relay.Config{}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--write-ahead") {
			t.Errorf("--write-ahead %d: %v, want it refused", bad, err)
		}
	}
	if rcfg.MaxSessions != defaultMaxSessions || defaultMaxSessions == 0 {
		t.Errorf("default --max-sessions %d, want %d", rcfg.MaxSessions, defaultMaxSessions)
	}
	// The cache gets 1 GiB, or a quarter of the memory limit found
	// (GOMEMLIMIT, the cgroup's) when that is less.
	want := moqtransport.DefaultCacheBudget
	if limit, _, _ := parseMemoryLimit(memoryLimitAuto); limit > 0 && limit/4 < want {
		want = max(limit/4, 16<<20)
	}
	if st := rcfg.Track.Budget.Stats(); st.Limit != want {
		t.Errorf("default cache budget %+v, want %d", st, want)
	}

	// With GOMEMLIMIT under 4 GiB, the cache gets a quarter of it.
	old := debug.SetMemoryLimit(2 << 30)
	defer debug.SetMemoryLimit(old)
	if got := defaultCacheTotal(); got != 512<<20 {
		t.Errorf("default --cache-total-bytes with a 2 GiB memory limit: %d, want 512 MiB", got)
	}
}

func TestDevHandler(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "server_abc.sqlog"), []byte("qlog"), 0o644); err != nil {
		t.Fatal(err)
	}
	der := []byte("certificate")
	h := devHandler(func() []byte { return der }, dir, "")
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec.Code, rec.Body.String()
	}
	sum := sha256.Sum256(der)
	if code, body := get("/fingerprint"); code != 200 || body != hex.EncodeToString(sum[:]) {
		t.Errorf("/fingerprint: %d %q", code, body)
	}
	// The certificate served now, after a renewal too.
	der = []byte("renewed certificate")
	sum = sha256.Sum256(der)
	if code, body := get("/fingerprint"); code != 200 || body != hex.EncodeToString(sum[:]) {
		t.Errorf("/fingerprint after the certificate changed: %d %q", code, body)
	}
	if code, body := get("/qlog/server_abc"); code != 200 || body != "qlog" {
		t.Errorf("/qlog/server_abc: %d %q", code, body)
	}
	if code, _ := get("/qlog/..%2Fsecret"); code == 200 {
		t.Error("a path escape was served")
	}
	if code, _ := get("/mlog/x"); code != 404 {
		t.Errorf("/mlog without --mlog-serve: %d", code)
	}
}

// TestPprofContention: --pprof-mutex-fraction and --pprof-block-rate turn
// on the contention profiles, served on --metrics-addr with --pprof, while
// the relay runs, and off when it stops; without --pprof they are refused.
func TestPprofContention(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, bad := range []opsConfig{
		{mutexFraction: 5, metricsAddr: "127.0.0.1:0"},           // no --pprof
		{pprof: true, blockRate: 1000},                           // no --metrics-addr
		{pprof: true, metricsAddr: "127.0.0.1:0", blockRate: -1}, // negative
	} {
		if _, err := bad.apply(&relay.Config{}, log); err == nil || !strings.Contains(err.Error(), "--pprof-") {
			t.Errorf("%+v: apply gave %v, want an error naming the flag", bad, err)
		}
	}
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // run applies --memory-limit

	var logs syncBuffer
	r := startRelayConfig(t, config{
		ops: opsConfig{metricsAddr: "127.0.0.1:0", pprof: true, mutexFraction: 3, blockRate: 1000, maxRequests: 100,
			cacheMaxBytes: moqtransport.DefaultTrackMaxBytes, cacheMaxGroups: moqtransport.DefaultTrackMaxGroups},
		stderr: &logs,
	})
	m := regexp.MustCompile(`msg="metrics serving" addr=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics address in the logs:\n%s", logs.String())
	}
	defer http.DefaultClient.CloseIdleConnections()
	resp, err := http.Get("http://" + m[1] + "/debug/pprof/mutex?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "sampling period=3\n") {
		t.Errorf("/debug/pprof/mutex: %s\n%s", resp.Status, body)
	}
	r.stop(t)
	if f := runtime.SetMutexProfileFraction(-1); f != 0 {
		t.Errorf("mutex profile fraction %d after the relay stopped, want 0 (off)", f)
	}
}

// --upstream-timeout and --track-status-timeout reach the relay's
// configuration; a zero or negative one, or a TRACK_STATUS wait longer
// than the upstream one, is refused with an error naming the flag.
func TestTimeoutFlags(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1)) // apply sets it
	for _, c := range []struct {
		args             []string
		upstream, status time.Duration // what the relay is given
		err              string        // in the error, when refused
	}{
		{args: nil, upstream: relay.DefaultUpstreamTimeout, status: relay.DefaultTrackStatusTimeout},
		{args: []string{"--upstream-timeout", "3s"}, upstream: 3 * time.Second, status: relay.DefaultTrackStatusTimeout},
		// The default TRACK_STATUS wait is not refused with a shorter
		// upstream one: relay.New shortens it to that (relay's
		// TestTimeoutDefaults).
		{args: []string{"--upstream-timeout", "400ms"}, upstream: 400 * time.Millisecond, status: relay.DefaultTrackStatusTimeout},
		{args: []string{"--upstream-timeout", "3s", "--track-status-timeout", "3s"}, upstream: 3 * time.Second, status: 3 * time.Second},
		{args: []string{"--track-status-timeout", "250ms"}, upstream: relay.DefaultUpstreamTimeout, status: 250 * time.Millisecond},
		{args: []string{"--upstream-timeout", "0"}, err: "--upstream-timeout 0s: give a positive duration"},
		{args: []string{"--upstream-timeout", "-1s"}, err: "--upstream-timeout -1s: give a positive duration"},
		{args: []string{"--track-status-timeout", "0s"}, err: "--track-status-timeout 0s: give a positive duration"},
		{args: []string{"--track-status-timeout", "11s"}, err: "--track-status-timeout 11s is longer than --upstream-timeout 10s"},
		{args: []string{"--upstream-timeout", "2s", "--track-status-timeout", "2.5s"}, err: "--track-status-timeout 2.5s is longer than --upstream-timeout 2s"},
	} {
		var o opsConfig
		f := pflag.NewFlagSet("moq-relay", pflag.ContinueOnError)
		o.addFlags(f)
		if err := f.Parse(c.args); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		var rcfg relay.Config
		_, err := o.apply(&rcfg, log)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want an error with %q", c.args, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.args, err)
		case rcfg.UpstreamTimeout != c.upstream || rcfg.TrackStatusTimeout != c.status:
			t.Errorf("%q: relay given UpstreamTimeout %v, TrackStatusTimeout %v; want %v, %v", c.args, rcfg.UpstreamTimeout, rcfg.TrackStatusTimeout, c.upstream, c.status)
		}
	}
	// An opsConfig built without flags leaves the relay's defaults.
	var rcfg relay.Config
	if _, err := (&opsConfig{maxRequests: 100}).apply(&rcfg, log); err != nil || rcfg.UpstreamTimeout != 0 || rcfg.TrackStatusTimeout != 0 {
		t.Errorf("no flags: %v, UpstreamTimeout %v, TrackStatusTimeout %v", err, rcfg.UpstreamTimeout, rcfg.TrackStatusTimeout)
	}
}
