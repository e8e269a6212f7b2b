package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
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
	if _, err := procStatusKB(0, "VmRSS"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if _, err := procCPU(1); err != nil {
		t.Errorf("procCPU(1): %v", err)
	}
}
