package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"github.com/moqgo/moq/internal/relayproc"
	"github.com/moqgo/moq/moqnative"
)

func TestMain(m *testing.M) {
	maybeOrigin() // the baseline's origin runs this binary again
	goleak.VerifyTestMain(m)
}

func runCLI(t *testing.T, args ...string) (string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	if err := cmd.ExecuteContext(ctx); err != nil {
		t.Fatalf("moq-bench %v: %v\nstderr: %s", args, err, errOut.String())
	}
	return out.String(), errOut.String()
}

// TestShortRunJSON: 1 publisher, 3 subscribers, 1 s through an in-process
// relay and the raw baseline; everything arrives.
func TestShortRunJSON(t *testing.T) {
	out, _ := runCLI(t, "--publishers", "1", "--subscribers", "3", "--duration", "1s", "--object-size", "1KB", "--json")
	var r result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if r.Moq == nil || r.Baseline == nil {
		t.Fatalf("missing a path: %s", out)
	}
	for _, p := range []*pathResult{r.Moq, r.Baseline} {
		if p.Expected != 90 || p.Received != p.Expected || p.Lost != 0 || p.Bad != 0 || p.Skipped != 0 {
			t.Errorf("%s: expected %d received %d lost %d bad %d skipped %d", p.Path, p.Expected, p.Received, p.Lost, p.Bad, p.Skipped)
		}
		if p.Bytes != 90*1024 {
			t.Errorf("%s: %d bytes, want %d", p.Path, p.Bytes, 90*1024)
		}
		if !(p.P50ms > 0 && p.P99ms >= p.P50ms && p.MaxMs >= p.P99ms && p.MBps > 0) {
			t.Errorf("%s: implausible figures p50 %v p99 %v max %v MB/s %v", p.Path, p.P50ms, p.P99ms, p.MaxMs, p.MBps)
		}
		if p.Error != "" {
			t.Errorf("%s: %s", p.Path, p.Error)
		}
		// A 1 KiB object fits one packet: the subscribers received about
		// one per object (a few more for control messages and new streams,
		// fewer if objects shared a packet), counted only while publishing.
		if p.PacketsPerObject == nil || *p.PacketsPerObject < 0.7 || *p.PacketsPerObject > 2 {
			t.Errorf("%s: packets per object %v, want about 1", p.Path, optF(p.PacketsPerObject, "%.2f"))
		}
	}
	for _, k := range []string{"mb_per_s", "p50", "p99", "max", "total_cpu_per_gb", "packets_per_object"} {
		if v, ok := r.Ratios[k]; !ok || v <= 0 {
			t.Errorf("ratio %s = %v, %v", k, v, ok)
		}
	}
	if r.Moq.ServerCPUPerGB != nil {
		t.Errorf("in-process relay: relay CPU should be n/a")
	}
	// The baseline's origin is a process of its own, measured like a
	// spawned relay.
	if r.Baseline.ServerCPUPerGB == nil || r.Baseline.ServerPeakRSSMB == nil || *r.Baseline.ServerPeakRSSMB <= 0 {
		t.Errorf("baseline origin's CPU and RSS not measured: %+v", r.Baseline)
	}
}

// TestTextOutput: the human-readable report, without the baseline, and two
// publishers.
func TestTextOutput(t *testing.T) {
	out, _ := runCLI(t, "--publishers", "2", "--subscribers", "2", "--duration", "500ms", "--rate", "60", "--group-objects", "10", "--baseline=false")
	for _, want := range []string{"moq-go", "p50 ms", "relay: in-process"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "raw-quic") || strings.Contains(out, "WARNING") {
		t.Errorf("unexpected output:\n%s", out)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int{"1200": 1200, "1KB": 1024, "4kb": 4096, "20KB": 20480, "64B": 64} {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "4", "-1KB", "1GB"} {
		if _, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) accepted", in)
		}
	}
}

func TestBadFlags(t *testing.T) {
	cmd := newRootCommand()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs([]string{"--subscribers", "0"})
	if err := cmd.Execute(); err == nil {
		t.Error("--subscribers 0 accepted")
	}
}

func TestProcReaders(t *testing.T) {
	if _, err := relayproc.StatusKB(0, "VmRSS"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if _, err := procCPU(1); err != nil {
		t.Errorf("procCPU(1): %v", err)
	}
}

// TestLiveClasses: a short live run with a fast, a slow and a stalled
// viewer, and the fast viewer alone first. The figures are the relay's
// business; this checks that each class is measured and that the figures
// hang together.
func TestLiveClasses(t *testing.T) {
	out, errOut := runCLI(t, "--subscribers", "1", "--slow", "1", "--stalled", "1", "--slow-mbps", "1", "--slow-queue-ms", "100",
		"--track-mbps", "2", "--key-ratio", "4", "--rate", "30", "--group-objects", "10", "--duration", "1500ms",
		"--delivery-timeout", "500ms", "--group-order", "desc", "--drain", "300ms", "--progress", "500ms", "--json")
	var r liveResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if r.Objects != 45 || r.Groups != 5 || r.ObjectSize != 8333 || r.KeySize != 4*8333 || r.GroupOrder != "descending" || r.DeliveryTimeout != "500ms" {
		t.Errorf("track or options misreported: %+v", r)
	}
	byClass := map[string]*classResult{}
	for _, c := range r.Classes {
		byClass[c.Class] = c
		if c.Viewers != 1 || c.Expected != 45 || c.Groups != 5 || c.Received > c.Expected || c.KeyFrames > c.Groups || c.Bad != 0 {
			t.Errorf("%s: %+v", c.Class, c)
		}
		if c.LagP50ms < 0 || c.LagMaxms < c.LagP50ms || c.StreamsReset > c.Streams || c.LagGrowthMax < c.LagGrowthP50 {
			t.Errorf("%s: implausible lag or streams: %+v", c.Class, c)
		}
	}
	for _, name := range []string{classAlone, classFast, classSlow, classStalled} {
		if byClass[name] == nil {
			t.Fatalf("no %q class in %s", name, out)
		}
	}
	for _, name := range []string{classAlone, classFast} {
		// Nothing shapes a fast viewer: it reads every object.
		if c := byClass[name]; c.Received != 45 || c.KeyFrames != 5 || c.P50ms <= 0 || c.Streams < 5 {
			t.Errorf("%s: %+v", name, c)
		}
	}
	slow := byClass[classSlow]
	if slow.LinkBytes == 0 || slow.PayloadBytes > slow.LinkBytes {
		t.Errorf("slow link bytes %d, payload %d", slow.LinkBytes, slow.PayloadBytes)
	}
	// The proxy holds the link to 1 Mbit/s: over the run and the drain
	// (setup traffic aside) it cannot carry much more than 2.5 s' worth.
	if limit := int64(1e6 / 8 * 2.5 * 1.2); slow.LinkBytes > limit {
		t.Errorf("slow link carried %d bytes, more than a 1 Mbit/s link can", slow.LinkBytes)
	}
	if st := byClass[classStalled]; st.Streams < stallStream || st.StalledAtSecs <= 0 || st.StalledViewers != 1 {
		t.Errorf("stalled viewer did not stall a stream: %+v", st)
	}
	for _, k := range []string{"p50", "p99", "max"} {
		if v, ok := r.Ratios[k]; !ok || v <= 0 {
			t.Errorf("ratio %s = %v, %v", k, v, ok)
		}
	}
	if !strings.Contains(errOut, "fast viewer(s) alone") || !strings.Contains(errOut, "| slow:") {
		t.Errorf("no progress on stderr:\n%s", errOut)
	}
}

// assertRefused checks that moq-bench refuses args before running.
func assertRefused(t *testing.T, args []string) {
	t.Helper()
	cmd := newRootCommand()
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	cmd.SetArgs(args)
	if err := cmd.Execute(); err == nil {
		t.Errorf("%v accepted", args)
	}
}

func TestLiveFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--key-ratio", "4"},
		{"--relay-arg", "--x"},
		{"--slow", "1", "--publishers", "2"},
		{"--slow", "1", "--matrix"},
		{"--slow", "1", "--group-order", "sideways"},
		{"--slow", "1", "--slow-mbps", "0"},
	} {
		assertRefused(t, args)
	}
}

// TestCells: --cell turns Mbit/s and an object size into a rate, and bad
// cells are refused.
func TestCells(t *testing.T) {
	cells, err := parseCells([]string{"1000:1:4KB", "100:22:16KB", "100:4:1KB"})
	if err != nil {
		t.Fatal(err)
	}
	want := []cell{{1000, 4096, 1e6 / 8 / 4096}, {100, 16384, 22e6 / 8 / 16384}, {100, 1024, 4e6 / 8 / 1024}}
	for i, c := range cells {
		if c != want[i] {
			t.Errorf("cell %d: %+v, want %+v", i, c, want[i])
		}
	}
	for _, bad := range []string{"1000:1", "0:1:4KB", "10:-1:4KB", "10:x:4KB", "10:1:3"} {
		if _, err := parseCells([]string{bad}); err == nil {
			t.Errorf("--cell %q accepted", bad)
		}
	}
}

// TestMatrixCell: a one-cell matrix runs both paths and prints the cell's
// row with its track rate, ratios and lost objects.
func TestMatrixCell(t *testing.T) {
	out, _ := runCLI(t, "--cell", "2:0.25:1KB", "--duration", "1s")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "track Mbit/s") || !strings.Contains(lines[0], "lost relay / raw") {
		t.Fatalf("want a header, a rule and one row:\n%s", out)
	}
	// 0.25 Mbit/s of 1 KiB objects: 30.5 objects/s.
	if !strings.HasPrefix(lines[2], "| 1:2 | 1024 B | 0.25 | 1 |") || !strings.Contains(lines[2], "| 0 / 0 |") {
		t.Errorf("row: %s", lines[2])
	}
}

// TestRelayArgs: a spawned relay's session limit fits the run, unless
// --relay-arg gives one.
func TestRelayArgs(t *testing.T) {
	got := relayArgs(params{pubs: 1, subs: 1000, relayArgs: []string{"--x"}})
	if len(got) != 2 || got[0] != "--max-sessions=2018" || got[1] != "--x" {
		t.Errorf("relay args %q", got)
	}
	if got := relayArgs(params{pubs: 1, subs: 1000, relayArgs: []string{"--max-sessions=5"}}); len(got) != 1 || got[0] != "--max-sessions=5" {
		t.Errorf("relay args %q, want --relay-arg's limit kept", got)
	}
}

// TestSessionSubscribers: --subscriber-kind session still carries every
// object through moq-go sessions and TrackReaders.
func TestSessionSubscribers(t *testing.T) {
	out, _ := runCLI(t, "--subscribers", "2", "--duration", "1s", "--object-size", "1KB", "--subscriber-kind", "session", "--baseline=false", "--json")
	var r result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if p := r.Moq; p == nil || p.Expected != 60 || p.Received != 60 || p.Bad != 0 || p.Skipped != 0 {
		t.Errorf("session subscribers: %+v", p)
	}
}

// TestRuns: --runs 2 runs the cell twice and reports medians with their
// range, in the table and in JSON.
func TestRuns(t *testing.T) {
	out, _ := runCLI(t, "--cell", "2:0.25:1KB", "--duration", "500ms", "--runs", "2", "--json")
	var cs []*cellResult
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if len(cs) != 1 || len(cs[0].Runs) != 2 {
		t.Fatalf("want one cell of two runs: %s", out)
	}
	c := cs[0]
	for _, k := range []string{"moq.p50_ms", "baseline.p50_ms", "ratio.p50", "moq.lost_objects", "ratio.total_cpu_per_gb"} {
		s, ok := c.Summary[k]
		if !ok || s.Min > s.Median || s.Median > s.Max {
			t.Errorf("summary %s = %+v, %v", k, s, ok)
		}
	}
	var p50s []float64
	for _, r := range c.Runs {
		p50s = append(p50s, r.Moq.P50ms)
		if r.Moq.Lost != 0 || r.Baseline.Lost != 0 {
			t.Errorf("lost %d / %d", r.Moq.Lost, r.Baseline.Lost)
		}
	}
	if s := c.Summary["moq.p50_ms"]; s.Median != (p50s[0]+p50s[1])/2 {
		t.Errorf("median p50 %v of %v", s.Median, p50s)
	}
}

func TestStatOf(t *testing.T) {
	if s, _ := statOf([]float64{5, 1, 3}); s != (stat{Median: 3, Min: 1, Max: 5}) {
		t.Errorf("odd: %+v", s)
	}
	if s, _ := statOf([]float64{4, 1, 2, 10}); s != (stat{Median: 3, Min: 1, Max: 10}) {
		t.Errorf("even: %+v", s)
	}
	if _, ok := statOf(nil); ok {
		t.Error("empty: ok")
	}
	c := &cellResult{Summary: map[string]stat{"a": {Median: 2, Min: 1, Max: 3}, "b": {Median: 2, Min: 2, Max: 2}}}
	if got := c.fmtStat("a", "%.1f"); got != "2.0 [1.0–3.0]" {
		t.Errorf("fmtStat a = %q", got)
	}
	if got := c.fmtStat("b", "%.1f"); got != "2.0" {
		t.Errorf("fmtStat b = %q", got)
	}
	if got := c.fmtStat("c", "%.1f"); got != "n/a" {
		t.Errorf("fmtStat c = %q", got)
	}
}

// TestJoin: subscribers join a live track through the in-process relay,
// from two shared sockets, each gets SUBSCRIBE_OK and an object, and the
// figures hang together.
func TestJoin(t *testing.T) {
	out, _ := runCLI(t, "--join", "8", "--join-parallel", "3", "--rate", "50", "--client-sockets", "2", "--json")
	var r joinResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, out)
	}
	if r.Joined != 8 || r.FirstObject != 8 || r.Failed != 0 || r.Parallel != 3 || r.KeyExchange != kexX25519 {
		t.Fatalf("join: %+v", r)
	}
	if !(r.JoinMs.P50 > 0 && r.JoinMs.P50 <= r.JoinMs.P99 && r.JoinMs.P99 <= r.JoinMs.Max) ||
		!(r.FirstMs.P50 >= r.JoinMs.P50 && r.FirstMs.P99 <= r.FirstMs.Max) ||
		!(r.WallJoinSeconds > 0 && r.WallFirstSeconds >= r.WallJoinSeconds) {
		t.Errorf("implausible figures: %+v", r)
	}
	if r.RelayRSSMB != nil || r.RelayGoroutines != nil || r.RelayCPUMsPerSub != nil || r.RelayAllocsPerSub != nil {
		t.Errorf("in-process relay: relay RSS, goroutines, CPU and allocations should be n/a")
	}
	// This process ran the relay, the publisher and 8 handshakes.
	if !(r.BenchCPUSecondsJoin > 0 && r.BenchCPUMsPerSub*8 <= r.BenchCPUSecondsJoin*1e3*1.001) {
		t.Errorf("bench CPU %.3f s, %.3f ms per subscriber: implausible", r.BenchCPUSecondsJoin, r.BenchCPUMsPerSub)
	}
}

func TestSoakSummary(t *testing.T) {
	var pts []rssPoint
	for i := range 30 { // 3 windows of 10 s, one sample a second
		mb := 100.0
		if i < 10 {
			mb = 50 // warm-up, ignored
		}
		pts = append(pts, rssPoint{Seconds: float64(i), RSSMB: mb + float64(i%2)})
	}
	s, err := summarizeSoak(pts, 10*time.Second, 10*time.Second, 30)
	if err != nil || !s.Flat || s.FirstMB != 100.5 || s.LastWindowMB != 100.5 {
		t.Errorf("flat series: %+v, %v", s, err)
	}
	pts[29].RSSMB, pts[28].RSSMB = 200, 200 // the last window's mean grows by 20%
	if s, err := summarizeSoak(pts, 10*time.Second, 10*time.Second, 30); err != nil || s.Flat || s.Change < 0.19 {
		t.Errorf("growing series: %+v, %v", s, err)
	}
	if _, err := summarizeSoak(pts[:5], 10*time.Second, 10*time.Second, 5); err == nil {
		t.Error("a series shorter than two windows was summarized")
	}
	// A longer warm-up moves the first window: [15 s, 25 s) overlaps the
	// last one, [20 s, 30 s], and is refused.
	if _, err := summarizeSoak(pts, 15*time.Second, 10*time.Second, 30); err == nil {
		t.Error("windows overlapping after a 15 s warm-up were compared")
	}
	// The warm-up is not compared: a series still growing in it is flat.
	for i := range pts {
		pts[i].RSSMB = 100 + float64(i%2)
		if i < 14 {
			pts[i].RSSMB = 10 * float64(i)
		}
	}
	if s, err := summarizeSoak(pts, 14*time.Second, 8*time.Second, 30); err != nil || !s.Flat || s.FirstMB != 100.5 || s.FirstHeapGoalMB != 0 {
		t.Errorf("flat after a 14 s warm-up: %+v, %v", s, err)
	}
	// The heap goal's means, when the relay's /metrics gave it.
	for i := range pts {
		pts[i].NextGCMB = 40 + float64(i%2)
	}
	if s, err := summarizeSoak(pts, 14*time.Second, 8*time.Second, 30); err != nil || s.FirstHeapGoalMB != 40.5 || s.LastHeapGoalMB != 40.5 {
		t.Errorf("heap goal means: %+v, %v", s, err)
	}
}

func TestModeFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--join", "5", "--cell", "1:1:1KB"},
		{"--join", "5", "--runs", "2"},
		{"--soak", "--duration", "2m"},                     // no relay to read
		{"--soak", "--relay-pid", "1", "--duration", "2m"}, // shorter than warm-up and two windows
		{"--soak", "--relay-pid", "1", "--duration", "5m", "--soak-warmup", "4m"},
		{"--runs", "0"},
		{"--subscriber-kind", "fat"},
		{"--tls-key-exchange", "x448"},
		{"--profile", "/tmp/x"}, // no spawned relay
	} {
		assertRefused(t, args)
	}
}

// TestThinNeedsRawQUIC: thin subscribers refuse a WebTransport URL with a
// way out.
func TestThinNeedsRawQUIC(t *testing.T) {
	_, err := newRelayTarget("https://127.0.0.1:1/x", moqnative.ClientTLS{}, "")
	if err == nil || !strings.Contains(err.Error(), "--subscriber-kind session") {
		t.Errorf("https URL: %v", err)
	}
	rt, err := newRelayTarget("moqt://127.0.0.1:4443", moqnative.ClientTLS{InsecureSkipVerify: true}, "")
	if err != nil || rt.path != "/" || rt.addr.String() != "127.0.0.1:4443" || !rt.tls.InsecureSkipVerify {
		t.Errorf("moqt URL: %+v, %v", rt, err)
	}
}

// TestThinKeyExchange: a thin subscriber's handshake with a moqnative
// server uses the key exchange --tls-key-exchange chose, and an unknown
// one is refused.
func TestThinKeyExchange(t *testing.T) {
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	fp, _ := srv.Fingerprint()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for kex, want := range map[string]tls.CurveID{kexX25519: tls.X25519, kexP256: tls.CurveP256, kexHybrid: tls.X25519MLKEM768} {
		rt, err := newRelayTarget("moqt://"+srv.Addr().String()+"/", moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}, kex)
		if err != nil {
			t.Fatal(err)
		}
		var socks *thinSockets
		c, err := socks.dial(ctx, rt.addr, rt.tls)
		if err != nil {
			t.Fatalf("%s: %v", kex, err)
		}
		if got := c.conn.ConnectionState().TLS.CurveID; got != want {
			t.Errorf("--tls-key-exchange %s: the handshake used %s, want %s", kex, got, want)
		}
		c.close(0, "")
	}
	if _, err := newRelayTarget("moqt://127.0.0.1:4443", moqnative.ClientTLS{}, "x448"); err == nil {
		t.Error("an unknown key exchange was taken")
	}
}

// TestFailureKind: --join sorts its failures by what the server did.
func TestFailureKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("subscriber 3: reading SERVER_SETUP: %w", &quic.TransportError{ErrorCode: quic.ConnectionRefused, Remote: true}), "CONNECTION_REFUSED"},
		{fmt.Errorf("subscriber 4: %w", &quic.IdleTimeoutError{}), "idle_timeout"},
		{&quic.HandshakeTimeoutError{}, "handshake_timeout"},
		{fmt.Errorf("x: %w", &quic.ApplicationError{ErrorCode: 1, ErrorMessage: "server busy", Remote: true}), `application_0x1_"server busy"`},
		{fmt.Errorf("subscriber 5: %w", context.DeadlineExceeded), "join_timeout"},
		{errors.New("SUBSCRIBE_ERROR"), "other"},
	} {
		if got := failureKind(c.err); got != c.want {
			t.Errorf("failureKind(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}
