package soak

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// latencies are every delivered object's latency of a run (a 10-minute
// run at the defaults keeps about 150,000).
type latencies []time.Duration

func (l *latencies) add(d time.Duration) { *l = append(*l, d) }

func (s *sampler) report(d time.Duration) *Report {
	c := s.c
	r := &Report{
		Duration:   d,
		Samples:    s.samples,
		Published:  c.published.Load(),
		Delivered:  c.delivered.Load(),
		Corrupt:    c.corrupt.Load(),
		Skipped:    c.skipped.Load(),
		Unexpected: c.unexpected.Load(),
		Violations: s.viol,
		Errors:     map[string]int64{},
		Hostile:    map[string]map[string]int64{},
	}
	c.mu.Lock()
	maps.Copy(r.Errors, c.errs)
	for k, m := range c.hostile {
		r.Hostile[k] = maps.Clone(m)
	}
	lat := slices.Clone(c.allLat)
	c.mu.Unlock()
	slices.Sort(lat)
	if n := len(lat); n > 0 {
		r.LatencyP50, r.LatencyP99, r.LatencyMax = lat[n/2], lat[n*99/100], lat[n-1]
	}
	return r
}

// stat is one resource's figures over a run.
type stat struct {
	name                string
	min, max, last      float64
	firstMin, lastMin   float64 // mean over the first and the last window
	known               bool
	windowFirst, window time.Duration
}

// resourceStats summarises RSS, goroutines and fds over the samples: the
// first (the idle relay) counts in min and max but not in the first window;
// the last, after the load, is left out (reported as "after").
func resourceStats(r *Report) []stat {
	load := r.Samples
	if len(load) > 2 {
		load = load[:len(load)-1]
	}
	window := time.Minute
	if span := load[len(load)-1].At - load[0].At; span < 4*window {
		window = span / 4
	}
	get := []struct {
		name string
		f    func(Sample) float64
	}{
		{"rss_mb", func(x Sample) float64 { return x.RSSMB }},
		{"goroutines", func(x Sample) float64 { return float64(x.Goroutines) }},
		{"fds", func(x Sample) float64 { return float64(x.FDs) }},
		{"sessions", func(x Sample) float64 { return float64(x.Sessions) }},
		{"cache_mb", func(x Sample) float64 { return x.CacheMB }},
	}
	end := load[len(load)-1].At
	var out []stat
	for _, g := range get {
		st := stat{name: g.name, window: window}
		var fs, fn, ls, ln float64
		for i, x := range load {
			v := g.f(x)
			if v < 0 {
				continue
			}
			if !st.known {
				st.min, st.max, st.known = v, v, true
			}
			st.min, st.max, st.last = min(st.min, v), max(st.max, v), v
			// The first window starts after the 0 sample, taken before
			// the load was up.
			if i > 0 && x.At <= window {
				fs, fn = fs+v, fn+1
			}
			if x.At >= end-window {
				ls, ln = ls+v, ln+1
			}
		}
		if fn > 0 {
			st.firstMin = fs / fn
		}
		if ln > 0 {
			st.lastMin = ls / ln
		}
		out = append(out, st)
	}
	return out
}

// Print writes the summary of r.
func (r *Report) Print(w io.Writer) {
	fmt.Fprintf(w, "\nsummary over %s (%d samples)\n", r.Duration.Truncate(time.Second), len(r.Samples))
	if len(r.Samples) >= 2 {
		stats := resourceStats(r)
		after := r.Samples[len(r.Samples)-1]
		fmt.Fprintf(w, "%-11s %9s %9s %9s %11s %11s %8s %9s\n", "", "min", "max", "last", "first win", "last win", "growth", "after")
		afterV := map[string]float64{"rss_mb": after.RSSMB, "goroutines": float64(after.Goroutines), "fds": float64(after.FDs), "sessions": float64(after.Sessions), "cache_mb": after.CacheMB}
		for _, st := range stats {
			if !st.known {
				fmt.Fprintf(w, "%-11s not sampled\n", st.name)
				continue
			}
			growth := "-"
			if st.firstMin > 0 {
				growth = fmt.Sprintf("%+.0f%%", 100*(st.lastMin-st.firstMin)/st.firstMin)
			}
			fmt.Fprintf(w, "%-11s %9.1f %9.1f %9.1f %11.1f %11.1f %8s %9s\n", st.name, st.min, st.max, st.last,
				st.firstMin, st.lastMin, growth, orDash(afterV[st.name] >= 0, fmt.Sprintf("%.1f", afterV[st.name])))
		}
		fmt.Fprintf(w, "(first/last win: mean over the first and last %s of load; after: once every client closed)\n", stats[0].window.Round(100*time.Millisecond))
	}
	ratio := 0.0
	if r.Published > 0 {
		ratio = float64(r.Delivered) / float64(r.Published)
	}
	fmt.Fprintf(w, "objects: published %d, delivered and verified %d (%.2f per published object), corrupt %d, skipped %d\n",
		r.Published, r.Delivered, ratio, r.Corrupt, r.Skipped)
	fmt.Fprintf(w, "latency: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", ms(r.LatencyP50), ms(r.LatencyP99), ms(r.LatencyMax))
	fmt.Fprintf(w, "legitimate errors by kind:%s\n", countsText(r.Errors, "  "))
	fmt.Fprintf(w, "hostile outcomes (%d unexpected):\n", r.Unexpected)
	for _, b := range slices.Sorted(maps.Keys(r.Hostile)) {
		fmt.Fprintf(w, "  %s:%s\n", b, countsText(r.Hostile[b], "    "))
	}
	if len(r.Violations) == 0 {
		fmt.Fprintln(w, "budgets: none exceeded")
	} else {
		fmt.Fprintf(w, "budgets exceeded: %s\n", strings.Join(r.Violations, "; "))
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func countsText(m map[string]int64, indent string) string {
	if len(m) == 0 {
		return " none"
	}
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "\n%s%6d  %s", indent, m[k], k)
	}
	return b.String()
}

// PrintCounts writes a title and the counts of m, one a line, by key.
func PrintCounts(w io.Writer, title string, m map[string]int64) {
	fmt.Fprintf(w, "%s:%s\n", title, countsText(m, "  "))
}
