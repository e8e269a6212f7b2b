package main

import (
	"bufio"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/moqgo/moq/relay"
)

func TestParseMemoryLimit(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
	}{
		{"off", 0}, {"0", 0}, {"512MiB", 512 << 20}, {"2GiB", 2 << 30}, {"1TiB", 1 << 40},
		{"100000000", 100000000}, {"100000000B", 100000000}, {" 256 MiB ", 256 << 20},
	} {
		got, _, err := parseMemoryLimit(c.in)
		if err != nil || got != c.want {
			t.Errorf("--memory-limit %q: %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"lots", "-1GiB", "1.5GiB", "1MiB", "63MiB", "9999999999TiB", "1GB"} {
		if got, _, err := parseMemoryLimit(bad); err == nil || !strings.Contains(err.Error(), "--memory-limit") {
			t.Errorf("--memory-limit %q accepted: %d, %v", bad, got, err)
		}
	}
}

// TestCgroupMemoryLimit reads this process's cgroup lines against a fake
// cgroup mount: a limit is found, "max" and v1's "unlimited" are none.
func TestCgroupMemoryLimit(t *testing.T) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Skipf("no /proc/self/cgroup: %v", err) // not Linux
	}
	v1, v2 := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		v2 = v2 || strings.HasPrefix(line, "0::")
		v1 = v1 || strings.Contains(line, ":memory:")
	}
	f.Close()
	if !v1 && !v2 {
		t.Skip("this process is in no memory cgroup")
	}
	old := cgroupRoot
	cgroupRoot = t.TempDir()
	defer func() { cgroupRoot = old }()
	write := func(v string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(cgroupRoot, "memory"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{filepath.Join(cgroupRoot, "memory.max"), filepath.Join(cgroupRoot, "memory", "memory.limit_in_bytes")} {
			if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	if l, path := cgroupMemoryLimit(); l != 0 {
		t.Errorf("no limit files: %d from %s", l, path)
	}
	write("1073741824")
	if l, path := cgroupMemoryLimit(); l != 1<<30 || !strings.HasPrefix(path, cgroupRoot) {
		t.Errorf("a 1 GiB limit read as %d from %q", l, path)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		gib := int64(1 << 30)
		if l, from, err := parseMemoryLimit(memoryLimitAuto); err != nil || l != int64(float64(gib)*0.9) {
			t.Errorf("auto under a 1 GiB cgroup: %d (%s), %v; want 90%%", l, from, err)
		}
	}
	for _, none := range []string{"max", "9223372036854771712"} {
		write(none)
		if l, path := cgroupMemoryLimit(); l != 0 {
			t.Errorf("%q read as a limit: %d from %s", none, l, path)
		}
	}
}

// TestMemoryLimitFlag: --memory-limit sets the runtime's limit, and the
// cache's default budget follows it unless --cache-total-bytes is given.
func TestMemoryLimitFlag(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	apply := func(args ...string) relay.Config {
		t.Helper()
		var o opsConfig
		f := pflag.NewFlagSet("moq-relay", pflag.ContinueOnError)
		o.addFlags(f)
		if err := f.Parse(args); err != nil {
			t.Fatal(err)
		}
		var rcfg relay.Config
		if _, err := o.apply(&rcfg, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
		return rcfg
	}
	rcfg := apply("--memory-limit=256MiB")
	if got := debug.SetMemoryLimit(-1); got != 256<<20 {
		t.Errorf("--memory-limit=256MiB: the runtime's limit is %d", got)
	}
	if st := rcfg.Track.Budget.Stats(); st.Limit != 64<<20 {
		t.Errorf("--memory-limit=256MiB: cache budget %d, want 64 MiB", st.Limit)
	}
	rcfg = apply("--memory-limit=256MiB", "--cache-total-bytes=200000000")
	if st := rcfg.Track.Budget.Stats(); st.Limit != 200000000 {
		t.Errorf("--cache-total-bytes given: cache budget %d, want it kept", st.Limit)
	}
	apply("--memory-limit=off")
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("--memory-limit=off: the runtime's limit is %d", got)
	}
	var o opsConfig
	f := pflag.NewFlagSet("moq-relay", pflag.ContinueOnError)
	o.addFlags(f)
	if err := f.Parse([]string{"--memory-limit=lots"}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.apply(&relay.Config{}, slog.New(slog.DiscardHandler)); err == nil {
		t.Error("--memory-limit=lots accepted")
	}
}
