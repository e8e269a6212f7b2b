package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
)

// stat is one figure over the runs of a cell.
type stat struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

// statOf returns the median (the mean of the two middle values for an
// even count), minimum and maximum of vs; ok is false when vs is empty.
func statOf(vs []float64) (stat, bool) {
	if len(vs) == 0 {
		return stat{}, false
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return stat{Median: m, Min: s[0], Max: s[len(s)-1]}, true
}

// cellResult is every run of one cell and its figures over the runs:
// Summary["moq.p50_ms"], Summary["baseline.lost_objects"],
// Summary["ratio.p50"] (the median of each run's ratio relay/baseline)...
type cellResult struct {
	Subscribers int             `json:"subscribers"`
	ObjectSize  int             `json:"object_size"`
	TrackMbps   float64         `json:"track_mbps"`
	Runs        []*result       `json:"runs"`
	Summary     map[string]stat `json:"summary"`
	figures     map[string][]float64
}

// pathFigures are the per-path figures a cell summarizes.
func pathFigures(p *pathResult) map[string]float64 {
	f := map[string]float64{
		"mb_per_s":           p.MBps,
		"p50_ms":             p.P50ms,
		"p99_ms":             p.P99ms,
		"max_ms":             p.MaxMs,
		"lost_objects":       float64(p.Lost),
		"bench_cpu_s_per_gb": p.BenchCPUPerGB,
		"total_cpu_s_per_gb": p.TotalCPUPerGB,
		"bench_peak_rss_mb":  p.BenchPeakRSSMB,
	}
	if p.PacketsPerObject != nil {
		f["packets_per_object"] = *p.PacketsPerObject
	}
	if p.ServerCPUPerGB != nil {
		f["server_cpu_s_per_gb"] = *p.ServerCPUPerGB
	}
	if p.ServerPeakRSSMB != nil {
		f["server_peak_rss_mb"] = *p.ServerPeakRSSMB
	}
	return f
}

func newCellResult(runs []*result) *cellResult {
	r0 := runs[0]
	c := &cellResult{
		Subscribers: r0.Subscribers, ObjectSize: r0.ObjectSize,
		TrackMbps: r0.Rate * float64(r0.ObjectSize) * 8 / 1e6 * float64(r0.Publishers),
		Runs:      runs, Summary: map[string]stat{}, figures: map[string][]float64{},
	}
	add := func(prefix string, m map[string]float64) {
		for k, v := range m {
			c.figures[prefix+k] = append(c.figures[prefix+k], v)
		}
	}
	for _, r := range runs {
		if r.Moq != nil {
			add("moq.", pathFigures(r.Moq))
		}
		if r.Baseline != nil {
			add("baseline.", pathFigures(r.Baseline))
		}
		add("ratio.", r.Ratios)
	}
	for k, vs := range c.figures {
		if s, ok := statOf(vs); ok {
			c.Summary[k] = s
		}
	}
	return c
}

// fmtStat prints a figure's median, and its range over the runs when the
// runs differ: "12.3 [10.1–15.0]"; "n/a" when no run had it.
func (c *cellResult) fmtStat(k, f string) string {
	s, ok := c.Summary[k]
	if !ok {
		return "n/a"
	}
	if fmt.Sprintf(f, s.Min) == fmt.Sprintf(f, s.Max) {
		return fmt.Sprintf(f, s.Median)
	}
	return fmt.Sprintf(f+" ["+f+"–"+f+"]", s.Median, s.Min, s.Max)
}

// pair prints "relay / raw (ratio x)" for a figure.
func (c *cellResult) pair(fig, ratio, f string) string {
	r := "n/a"
	if _, ok := c.Summary["ratio."+ratio]; ok {
		r = c.fmtStat("ratio."+ratio, "%.2f") + "x"
	}
	return fmt.Sprintf("%s / %s (%s)", c.fmtStat("moq."+fig, f), c.fmtStat("baseline."+fig, f), r)
}

// printMatrix prints a markdown table, one row per cell: each figure's
// median over the runs, with its min–max when the runs differ; "relay /
// raw (ratio)" pairs compare the relay path with the baseline, the ratio
// being the median of each run's own ratio.
func printMatrix(w io.Writer, cs []*cellResult) {
	hdr := []string{"fan-out", "object", "track Mbit/s", "runs", "MB/s relay / raw (x)", "p50 ms relay / raw (x)", "p99 ms relay / raw (x)",
		"max ms relay / raw (x)", "lost relay / raw", "server CPU s/GB relay / origin (x)", "bench CPU s/GB relay path / raw", "total CPU s/GB relay / raw (x)",
		"server peak RSS MB relay / origin (x)", "bench peak RSS MB relay path / raw", "packets/object relay / raw (x)"}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(hdr, " | "), strings.Repeat("---|", len(hdr)))
	for _, c := range cs {
		fmt.Fprintf(w, "| 1:%d | %d B | %.2f | %d | %s | %s | %s | %s | %s / %s | %s | %s / %s | %s | %s | %s / %s | %s |\n",
			c.Subscribers, c.ObjectSize, c.TrackMbps, len(c.Runs),
			c.pair("mb_per_s", "mb_per_s", "%.1f"),
			c.pair("p50_ms", "p50", "%.1f"),
			c.pair("p99_ms", "p99", "%.1f"),
			c.pair("max_ms", "max", "%.0f"),
			c.fmtStat("moq.lost_objects", "%.0f"), c.fmtStat("baseline.lost_objects", "%.0f"),
			c.pair("server_cpu_s_per_gb", "server_cpu_per_gb", "%.1f"),
			c.fmtStat("moq.bench_cpu_s_per_gb", "%.1f"), c.fmtStat("baseline.bench_cpu_s_per_gb", "%.1f"),
			c.pair("total_cpu_s_per_gb", "total_cpu_per_gb", "%.1f"),
			c.pair("server_peak_rss_mb", "server_peak_rss", "%.0f"),
			c.fmtStat("moq.bench_peak_rss_mb", "%.0f"), c.fmtStat("baseline.bench_peak_rss_mb", "%.0f"),
			c.pair("packets_per_object", "packets_per_object", "%.2f"))
	}
}
