package main

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
)

// The relay's soft memory limit (--memory-limit, runtime/debug.SetMemoryLimit).
//
// The relay's live data is bounded (sessions, in-flight objects, caches;
// see the README's table), but with GOGC=100 the Go heap grows to twice
// what the last collection marked before the next one, and on a busy
// machine a collection marks more than what is live: what is allocated
// while it marks counts as live until the next cycle. A soak at 1:500 on 2
// busy cores showed it: a live heap of about 90 MB after a forced
// collection, heap goals from 190 to 370 MB, and the RSS following the
// highest goal so far. A soft limit makes the runtime collect before the
// heap passes it and return memory above it, so the RSS stays near the
// limit instead of wherever the goal last went.
//
// Go reads GOMEMLIMIT but not a container's memory limit, so by default
// ("auto") the relay takes GOMEMLIMIT when it is set, else 90% of its
// cgroup's memory limit (v2 memory.max, v1 memory.limit_in_bytes) when
// there is one (the rest is for memory the Go runtime does not count:
// thread stacks outside the heap, the kernel's socket buffers), else none.

// memoryLimitAuto is --memory-limit's default.
const memoryLimitAuto = "auto"

// cgroupShare is the part of a cgroup's memory limit the auto limit takes.
const cgroupShare = 0.9

// cgroupRoot is where cgroup file systems are mounted (a variable for tests).
var cgroupRoot = "/sys/fs/cgroup"

// parseMemoryLimit reads --memory-limit: "auto", "off" (or 0: no limit),
// or a size in bytes with an optional suffix B, KiB, MiB, GiB or TiB (as
// GOMEMLIMIT takes). It returns the limit in bytes, 0 for none, and where
// it came from.
func parseMemoryLimit(s string) (int64, string, error) {
	switch strings.TrimSpace(s) {
	case memoryLimitAuto, "":
		if env := os.Getenv("GOMEMLIMIT"); env != "" && env != "off" {
			// The runtime parsed it at start (and refused to start on a
			// malformed one).
			if l := debug.SetMemoryLimit(-1); l < math.MaxInt64 {
				return l, "GOMEMLIMIT", nil
			}
		}
		if l, path := cgroupMemoryLimit(); l > 0 {
			return int64(float64(l) * cgroupShare), "90% of " + path, nil
		}
		return 0, "none: no GOMEMLIMIT, no cgroup memory limit", nil
	case "off", "0":
		return 0, "--memory-limit", nil
	}
	n, err := parseBytes(s)
	if err != nil {
		return 0, "", fmt.Errorf("--memory-limit %q: %w (want auto, off, or a size such as 512MiB or 2GiB)", s, err)
	}
	if n < 64<<20 {
		return 0, "", fmt.Errorf("--memory-limit %q: under 64 MiB the collector would run all the time; give more, or off", s)
	}
	return n, "--memory-limit", nil
}

// parseBytes reads a size: digits with an optional B, KiB, MiB, GiB or TiB.
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	unit := int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = strings.TrimSpace(rest), u.n
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("not a size")
	}
	if n > math.MaxInt64/unit {
		return 0, fmt.Errorf("too large")
	}
	return n * unit, nil
}

// cgroupMemoryLimit returns this process's cgroup memory limit and the
// file it came from, or 0 when there is none (or it cannot be read).
func cgroupMemoryLimit() (int64, string) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	var candidates []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "0::/path" (v2) or "4:memory:/path" (v1).
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			candidates = append(candidates,
				filepath.Join(cgroupRoot, parts[2], "memory.max"),
				filepath.Join(cgroupRoot, "memory.max")) // a container's own namespace
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			candidates = append(candidates,
				filepath.Join(cgroupRoot, "memory", parts[2], "memory.limit_in_bytes"),
				filepath.Join(cgroupRoot, "memory", "memory.limit_in_bytes"))
		}
	}
	for _, path := range candidates {
		if l := readLimitFile(path); l > 0 {
			return l, path
		}
	}
	return 0, ""
}

// readLimitFile reads a cgroup limit: "max" or a value of 2^62 or more
// (v1's "unlimited") is none.
func readLimitFile(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	s := strings.TrimSpace(string(b))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0
	}
	return n
}
