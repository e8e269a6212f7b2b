package relayproc

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeRelay writes a shell script standing in for moq-relay: it logs
// lines to stderr, then runs rest.
func fakeRelay(t *testing.T, lines []string, rest string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	for _, l := range lines {
		b.WriteString("echo '" + l + "' >&2\n")
	}
	b.WriteString(rest + "\n")
	p := filepath.Join(t.TempDir(), "moq-relay")
	if err := os.WriteFile(p, []byte(b.String()), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStart: the relay is ready at its "relay serving" line, later
// warnings reach Log, Stop ends the process.
func TestStart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bin := fakeRelay(t, []string{`level=INFO msg="relay serving"`, `level=INFO msg=quiet`, `level=WARN msg="something odd"`}, "exec sleep 30")
	logged := make(chan string, 4)
	r, err := Start(ctx, bin, Options{Log: func(l string) { logged <- l }})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.URL, "moqt://127.0.0.1:") || r.MetricsURL != "" || r.PID == 0 {
		t.Errorf("relay %+v", r)
	}
	select {
	case l := <-logged:
		if !strings.Contains(l, "something odd") {
			t.Errorf("logged %q", l)
		}
	case <-ctx.Done():
		t.Fatal("the warning did not reach Log")
	}
	r.Stop()
	if r.cmd.ProcessState == nil {
		t.Error("Stop returned before the process was waited for")
	}
}

// TestStartMetrics: with a metrics server the relay is ready at "metrics
// serving", on the address Args give or a free one.
func TestStartMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Ready only at the second line: a script that never logs it fails.
	bin := fakeRelay(t, []string{`msg="relay serving"`, `msg="metrics serving"`}, "exec sleep 30")
	r, err := Start(ctx, bin, Options{Args: []string{"--metrics-addr=127.0.0.1:9"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.MetricsURL != "http://127.0.0.1:9" {
		t.Errorf("MetricsURL %q", r.MetricsURL)
	}
	r.Stop()
	r, err = Start(ctx, bin, Options{Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.MetricsURL, "http://127.0.0.1:") {
		t.Errorf("MetricsURL %q", r.MetricsURL)
	}
	r.Stop()
	noMetrics := fakeRelay(t, []string{`msg="relay serving"`}, "exec sleep 30")
	if _, err := Start(ctx, noMetrics, Options{Metrics: true, ReadyTimeout: 300 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "metrics serving") {
		t.Errorf("no metrics line: %v", err)
	}
}

// TestStartExits: a relay that exits before serving is an error that
// carries its output.
func TestStartExits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bin := fakeRelay(t, []string{`level=ERROR msg="bad flag --x"`}, "exit 2")
	if _, err := Start(ctx, bin, Options{}); err == nil || !strings.Contains(err.Error(), "bad flag --x") {
		t.Errorf("exiting relay: %v", err)
	}
	if _, err := Start(ctx, filepath.Join(t.TempDir(), "none"), Options{}); err == nil {
		t.Error("a missing binary started")
	}
}

func TestStatusKB(t *testing.T) {
	kb, err := StatusKB(0, "VmRSS")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if kb <= 0 {
		t.Errorf("VmRSS %d kB", kb)
	}
	if _, err := StatusKB(os.Getpid(), "NoSuchField"); err == nil {
		t.Error("a missing field was read")
	}
}
