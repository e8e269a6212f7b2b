package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/internal/relayproc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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
	}
	for _, k := range []string{"mb_per_s", "p50", "p99", "max", "total_cpu_per_gb"} {
		if v, ok := r.Ratios[k]; !ok || v <= 0 {
			t.Errorf("ratio %s = %v, %v", k, v, ok)
		}
	}
	if r.Moq.RelayCPUPerGB != nil {
		t.Errorf("in-process relay: relay CPU should be n/a")
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

func TestLiveFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--key-ratio", "4"},
		{"--relay-arg", "--x"},
		{"--slow", "1", "--publishers", "2"},
		{"--slow", "1", "--matrix"},
		{"--slow", "1", "--group-order", "sideways"},
		{"--slow", "1", "--slow-mbps", "0"},
	} {
		cmd := newRootCommand()
		cmd.SetOut(&bytes.Buffer{})
		cmd.SetErr(&bytes.Buffer{})
		cmd.SetArgs(args)
		if err := cmd.Execute(); err == nil {
			t.Errorf("%v accepted", args)
		}
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
	if len(lines) != 3 || !strings.Contains(lines[0], "track Mbit/s") || !strings.Contains(lines[0], "lost moq / raw") {
		t.Fatalf("want a header, a rule and one row:\n%s", out)
	}
	// 0.25 Mbit/s of 1 KiB objects: 30.5 objects/s.
	if !strings.HasPrefix(lines[2], "| 1:2 | 1024 B | 0.25 |") || !strings.Contains(lines[2], "| 0 / 0 |") {
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
