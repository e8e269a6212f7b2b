package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// profileSeconds is the length of the relay's CPU profile under --profile.
const profileSeconds = 10

// relayProfiler takes a CPU profile, with mutex and block profiles over the
// same seconds, and then a heap profile from a relay's pprof server
// (moq-relay --metrics-addr --pprof) while a run publishes, centred on the
// run's middle, into dir. The mutex and block profiles have samples only if
// the relay samples them (moq-relay --pprof-mutex-fraction,
// --pprof-block-rate, passed with --relay-arg); otherwise finish says so.
type relayProfiler struct {
	done  chan struct{}
	files []string
	err   error
	// self, when set, is this process's CPU profile over the same time
	// (a --join run: the thin clients' handshakes share the machine).
	self *os.File
}

// startProfile starts profiling the relay at metricsURL for the run that
// publishes from start for d; name prefixes the files.
func startProfile(ctx context.Context, metricsURL, dir, name string, start time.Time, d time.Duration) *relayProfiler {
	rp := &relayProfiler{done: make(chan struct{})}
	go func() {
		defer close(rp.done)
		at := start.Add(d/2 - profileSeconds*time.Second/2)
		if wait := time.Until(at); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				rp.err = ctx.Err()
				return
			}
		}
		secs := profileSeconds
		if d < profileSeconds*time.Second {
			secs = max(1, int(d/time.Second)) // a short run: what fits
		}
		base := strings.TrimSuffix(metricsURL, "/")
		timeout := time.Duration(secs+10) * time.Second
		// CPU, mutex and block profiles over the same seconds, side by
		// side (mutex and block as deltas over them).
		type fetched struct {
			file string
			err  error
		}
		together := []struct{ path, file string }{
			{fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), name + "-cpu.pprof"},
			{fmt.Sprintf("/debug/pprof/mutex?seconds=%d", secs), name + "-mutex.pprof"},
			{fmt.Sprintf("/debug/pprof/block?seconds=%d", secs), name + "-block.pprof"},
		}
		results := make([]fetched, len(together))
		var wg sync.WaitGroup
		for i, p := range together {
			wg.Go(func() {
				f := filepath.Join(dir, p.file)
				results[i] = fetched{f, fetchTo(ctx, base+p.path, f, timeout)}
			})
		}
		wg.Wait()
		for _, r := range results {
			if r.err != nil {
				rp.err = r.err
				return
			}
			rp.files = append(rp.files, r.file)
		}
		for _, p := range []struct{ path, file string }{
			// The live heap: in use after a GC, as the relay holds it.
			{"/debug/pprof/heap?gc=1", name + "-heap.pprof"},
			{"/debug/pprof/goroutine?debug=1", name + "-goroutines.txt"},
		} {
			f := filepath.Join(dir, p.file)
			if err := fetchTo(ctx, base+p.path, f, timeout); err != nil {
				rp.err = err
				return
			}
			rp.files = append(rp.files, f)
		}
	}()
	return rp
}

// joinProfileSeconds is the length of the CPU profiles --join --profile
// takes from the first dial on: the goal is a join within 5 s.
const joinProfileSeconds = 5

// startJoinProfile takes the relay's CPU profile and this process's own
// for secs from now into dir (files name-relay-cpu.pprof,
// name-bench-cpu.pprof), then the relay's heap profile.
func startJoinProfile(ctx context.Context, metricsURL, dir, name string, secs int) *relayProfiler {
	rp := &relayProfiler{done: make(chan struct{})}
	selfFile := filepath.Join(dir, name+"-bench-cpu.pprof")
	if f, err := os.Create(selfFile); err != nil {
		rp.err = fmt.Errorf("--profile: %w", err)
	} else if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		rp.err = fmt.Errorf("--profile: this process: %w", err)
	} else {
		rp.self = f
	}
	go func() {
		defer close(rp.done)
		for _, p := range []struct{ path, file string }{
			{fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), name + "-relay-cpu.pprof"},
			{"/debug/pprof/heap", name + "-relay-heap.pprof"},
		} {
			f := filepath.Join(dir, p.file)
			if err := fetchTo(ctx, strings.TrimSuffix(metricsURL, "/")+p.path, f, time.Duration(secs+10)*time.Second); err != nil {
				rp.err = err
				break
			}
			rp.files = append(rp.files, f)
		}
		if rp.self != nil {
			pprof.StopCPUProfile()
			if err := rp.self.Close(); err != nil && rp.err == nil {
				rp.err = fmt.Errorf("--profile: %w", err)
			} else {
				rp.files = append(rp.files, selfFile)
			}
		}
	}()
	return rp
}

func fetchTo(ctx context.Context, url, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("--profile: GET %s: %s (the relay needs --pprof)", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("--profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return fmt.Errorf("--profile: %s: %w", url, err)
	}
	return f.Close()
}

// finish waits for the profiles and prints the top 15 entries of each
// (go tool pprof -top), and the relay's goroutines by owner, to w.
func (rp *relayProfiler) finish(w io.Writer) {
	<-rp.done
	if rp.err != nil {
		fmt.Fprintf(w, "%s: %v\n", binaryName, rp.err)
	}
	for _, f := range rp.files {
		if strings.HasSuffix(f, ".txt") {
			printGoroutineOwners(w, f)
			continue
		}
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=15", f).CombinedOutput()
		if err == nil && noSamples(out) {
			fmt.Fprintf(w, "%s: profile %s: no samples%s\n", binaryName, f, unsampledHint(f))
			continue
		}
		fmt.Fprintf(w, "%s: profile %s, top 15:\n", binaryName, f)
		if err != nil {
			fmt.Fprintf(w, "  go tool pprof: %v (read the file with go tool pprof yourself)\n", err)
		}
		_, _ = w.Write(out)
	}
}

// noSamples reports whether go tool pprof -top's output is of an empty
// profile.
func noSamples(top []byte) bool {
	return strings.Contains(string(top), "Total samples = 0") || strings.Contains(string(top), " of 0 total")
}

// unsampledHint says how to fill a mutex or block profile that came back
// empty.
func unsampledHint(file string) string {
	switch {
	case strings.HasSuffix(file, "-mutex.pprof"):
		return " (the relay samples none: --relay-arg=--pprof-mutex-fraction=N)"
	case strings.HasSuffix(file, "-block.pprof"):
		return " (the relay samples none: --relay-arg=--pprof-block-rate=NS)"
	}
	return ""
}

// soakProfileLead is how long before the end of a soak its late heap
// profile is taken (the profile forces a GC, and the last window must
// still hold samples after it).
const soakProfileLead = 10 * time.Second

// soakProfileTimes are the offsets from the start of publishing at which a
// soak of duration d, warm-up u and windows of w takes the relay's live
// heap: at the end of the first window after warm-up (the one the soak's
// verdict compares against) and shortly before the end.
func soakProfileTimes(d, u, w time.Duration) (early, late time.Duration) {
	late = max(d-soakProfileLead, d-w/2)
	return min(u+w, late), late
}

// soakProfiler takes two live-heap profiles (heap?gc=1) of a relay during
// a soak, early and late, so that their difference shows what grew.
type soakProfiler struct {
	done        chan struct{}
	early, late string
	err         error
}

// startSoakProfile takes the relay's live heap at start+early and
// start+late into dir (files name-heap-early.pprof, name-heap-late.pprof).
func startSoakProfile(ctx context.Context, metricsURL, dir, name string, start time.Time, early, late time.Duration) *soakProfiler {
	sp := &soakProfiler{done: make(chan struct{})}
	go func() {
		defer close(sp.done)
		u := strings.TrimSuffix(metricsURL, "/") + "/debug/pprof/heap?gc=1"
		for _, at := range []struct {
			d    time.Duration
			file string
			dst  *string
		}{{early, name + "-heap-early.pprof", &sp.early}, {late, name + "-heap-late.pprof", &sp.late}} {
			if wait := time.Until(start.Add(at.d)); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					sp.err = ctx.Err()
					return
				}
			}
			f := filepath.Join(dir, at.file)
			if err := fetchTo(ctx, u, f, time.Minute); err != nil {
				sp.err = err
				return
			}
			*at.dst = f
		}
	}()
	return sp
}

// finishDiff waits for the profiles and prints the top 20 entries of the
// late live heap less the early one, in bytes and in objects (go tool
// pprof -top -diff_base), to w.
func (sp *soakProfiler) finishDiff(w io.Writer) {
	<-sp.done
	if sp.err != nil {
		fmt.Fprintf(w, "%s: %v\n", binaryName, sp.err)
	}
	if sp.early == "" || sp.late == "" {
		return
	}
	for _, index := range []string{"inuse_space", "inuse_objects"} {
		fmt.Fprintf(w, "%s: relay live heap growth (%s), %s less %s, top 20:\n", binaryName, index, sp.late, sp.early)
		out, err := exec.Command("go", "tool", "pprof", "-top", "-nodecount=20", "-sample_index="+index, "-diff_base", sp.early, sp.late).CombinedOutput()
		if err != nil {
			fmt.Fprintf(w, "  go tool pprof: %v (read the files with go tool pprof -diff_base yourself)\n", err)
		}
		_, _ = w.Write(out)
	}
}

// printGoroutineOwners prints the goroutines of a goroutine profile
// (debug=1 text) in file by owner (see goroutineOwners), most first.
func printGoroutineOwners(w io.Writer, file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(w, "%s: %v\n", binaryName, err)
		return
	}
	owners, total := goroutineOwners(string(b))
	fmt.Fprintf(w, "%s: relay goroutines %s, %d by owner:\n", binaryName, file, total)
	for i, o := range owners {
		if i == 15 {
			break
		}
		fmt.Fprintf(w, "  %7d  %s\n", o.n, o.owner)
	}
}

type ownerCount struct {
	owner string
	n     int
}

// goroutineOwners groups the goroutines of a goroutine profile in its
// debug=1 text form by owner: the innermost function of moq-go's
// moqtransport or relay packages in the stack (the session's control
// reader, a subscription's dispatcher, a stream's writer blocked in a
// write or waiting for its next object, ...), else the outermost function
// outside the standard library (quic-go's connection loop, and its sender
// whether it waits for a packet or for the socket). Most first; total
// counts every goroutine.
func goroutineOwners(profile string) (owners []ownerCount, total int) {
	counts := map[string]int{}
	n := 0
	owner, fallback := "", ""
	flush := func() {
		if n == 0 {
			return
		}
		if owner == "" {
			owner = fallback
		}
		if owner == "" {
			owner = "(standard library)"
		}
		counts[owner] += n
		total += n
		n, owner, fallback = 0, "", ""
	}
	for _, line := range strings.Split(profile, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[1] == "@" {
			flush()
			n, _ = strconv.Atoi(f[0])
			continue
		}
		f := strings.Fields(line)
		if n == 0 || len(f) < 3 || f[0] != "#" {
			continue
		}
		fn := f[2]
		if i := strings.LastIndex(fn, "+0x"); i > 0 {
			fn = fn[:i]
		}
		switch {
		case owner != "":
		case strings.HasPrefix(fn, "github.com/moqgo/moq/moqtransport.") || strings.HasPrefix(fn, "github.com/moqgo/moq/relay."):
			owner = fn
		case outsideStd(fn):
			fallback = fn // the outermost function outside the standard library
		}
	}
	flush()
	for o, c := range counts {
		owners = append(owners, ownerCount{o, c})
	}
	slices.SortFunc(owners, func(a, b ownerCount) int {
		if a.n != b.n {
			return b.n - a.n
		}
		return strings.Compare(a.owner, b.owner)
	})
	return owners, total
}

// outsideStd reports whether the function named fn (as a profile names it)
// is outside the standard library: its import path starts with a domain.
func outsideStd(fn string) bool {
	i := strings.IndexByte(fn, '/')
	return i > 0 && strings.Contains(fn[:i], ".")
}
