package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moqgo/moq/internal/relayproc"
	"github.com/moqgo/moq/moqtransport"
)

// soakTolerance is how far the last window's mean RSS may be from the
// first window's after warm-up for the relay's memory to count as flat.
const soakTolerance = 0.05

// rssPoint is one sample of the relay during a soak.
type rssPoint struct {
	Seconds    float64 `json:"seconds"` // since publishing started
	RSSMB      float64 `json:"rss_mb"`
	Goroutines int     `json:"goroutines"` // -1: not read
	// The Go heap, from the relay's /metrics (0: not read): allocated
	// (live and not yet collected), in-use spans, and the next GC's
	// goal (with GOGC=100 about twice the heap live after the last GC).
	HeapAllocMB float64 `json:"heap_alloc_mb,omitempty"`
	HeapInuseMB float64 `json:"heap_inuse_mb,omitempty"`
	NextGCMB    float64 `json:"next_gc_mb,omitempty"`
}

// seriesMetrics are the gauges of the series the relay's /metrics serves
// (its Go collector's). One GET of /metrics a sample costs the relay far
// less than a goroutine profile of its thousands of goroutines, which
// would also show in the live heap the soak profiles.
var seriesMetrics = []string{"go_memstats_heap_alloc_bytes", "go_memstats_heap_inuse_bytes", "go_memstats_next_gc_bytes", "go_goroutines"}

// readSeriesMetrics reads seriesMetrics from a relay's /metrics at
// metricsURL, in seriesMetrics' order.
func readSeriesMetrics(ctx context.Context, client *http.Client, metricsURL string) ([]float64, error) {
	return readMetrics(ctx, client, metricsURL, seriesMetrics)
}

// readMetrics reads the unlabelled metrics names from a relay's /metrics
// at metricsURL, in names' order.
func readMetrics(ctx context.Context, client *http.Client, metricsURL string, names []string) ([]float64, error) {
	u := strings.TrimSuffix(metricsURL, "/") + "/metrics"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return parseMetrics(resp.Body, names)
}

// parseMetrics reads the unlabelled metrics names from a Prometheus text
// exposition, in names' order.
func parseMetrics(r io.Reader, names []string) ([]float64, error) {
	out := make([]float64, len(names))
	found := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if i := slices.Index(names, name); i >= 0 {
			v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", name, err)
			}
			out[i] = v
			found++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if found != len(names) {
		return nil, fmt.Errorf("metrics: %d of %v found", found, names)
	}
	return out, nil
}

// soakSummary compares the relay's mean RSS in the first window after
// warm-up with its mean in the last window.
type soakSummary struct {
	Warmup       string  `json:"warmup"` // not compared: the relay's caches fill
	Window       string  `json:"window"`
	FirstMB      float64 `json:"first_window_mean_rss_mb"` // the window right after warm-up
	LastWindowMB float64 `json:"last_window_mean_rss_mb"`
	Change       float64 `json:"change"` // last/first - 1
	Flat         bool    `json:"flat"`   // |Change| <= 5%
	// The Go heap goal's means over the same windows (0: not read): it
	// follows the live heap, where RSS keeps the highest goal reached
	// until the scavenger returns it, so a heap goal that stays while RSS
	// creeps up is a peak retained, not a leak.
	FirstHeapGoalMB float64    `json:"first_window_mean_heap_goal_mb,omitempty"`
	LastHeapGoalMB  float64    `json:"last_window_mean_heap_goal_mb,omitempty"`
	Series          []rssPoint `json:"series"`
}

// soakResult is a --soak run: the fan-out's figures and the relay's RSS.
type soakResult struct {
	*result
	Soak soakSummary `json:"soak"`
}

// seriesSampler samples the relay's RSS (and goroutines, with a metrics
// server) every interval from start until stopped.
type seriesSampler struct {
	stop   chan struct{}
	done   chan struct{}
	points []rssPoint
}

func startSeries(pid int, metricsURL string, every time.Duration, start time.Time) *seriesSampler {
	s := &seriesSampler{stop: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	sample := func() {
		kb, err := relayproc.StatusKB(pid, "VmRSS")
		if err != nil {
			return
		}
		pt := rssPoint{Seconds: time.Since(start).Seconds(), RSSMB: float64(kb) / 1024, Goroutines: -1}
		if metricsURL != "" {
			if m, err := readSeriesMetrics(context.Background(), client, metricsURL); err == nil {
				pt.HeapAllocMB, pt.HeapInuseMB, pt.NextGCMB = m[0]/(1<<20), m[1]/(1<<20), m[2]/(1<<20)
				pt.Goroutines = int(m[3])
			}
		}
		s.points = append(s.points, pt)
	}
	go func() {
		defer close(s.done)
		if d := time.Until(start); d > 0 {
			select {
			case <-time.After(d):
			case <-s.stop:
				return
			}
		}
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			sample()
			select {
			case <-t.C:
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *seriesSampler) finish() []rssPoint {
	close(s.stop)
	<-s.done
	return s.points
}

// summarizeSoak compares the mean RSS of the samples in the window right
// after warm-up, [warmup, warmup+window), with the samples of the last
// window before the end (the samples run to end, in seconds).
func summarizeSoak(pts []rssPoint, warmup, window time.Duration, end float64) (soakSummary, error) {
	s := soakSummary{Warmup: warmup.String(), Window: window.String(), Series: pts}
	from := warmup.Seconds()
	w := window.Seconds()
	mean := func(from, to float64, of func(rssPoint) float64) (float64, int) {
		var sum float64
		n := 0
		for _, p := range pts {
			if v := of(p); p.Seconds >= from && p.Seconds < to && v > 0 {
				sum += v
				n++
			}
		}
		if n == 0 {
			return 0, 0
		}
		return sum / float64(n), n
	}
	var n1, n2 int
	if end-w < from+w {
		return s, fmt.Errorf("soak: %.0f s is too short to compare a %s window after a %s warm-up with the last one", end, window, warmup)
	}
	rss := func(p rssPoint) float64 { return p.RSSMB }
	goal := func(p rssPoint) float64 { return p.NextGCMB }
	s.FirstMB, n1 = mean(from, from+w, rss)
	s.LastWindowMB, n2 = mean(end-w, end+1, rss)
	if g1, m1 := mean(from, from+w, goal); m1 > 0 {
		if g2, m2 := mean(end-w, end+1, goal); m2 > 0 {
			s.FirstHeapGoalMB, s.LastHeapGoalMB = g1, g2
		}
	}
	if n1 == 0 || n2 == 0 {
		return s, fmt.Errorf("soak: no RSS samples in the window after warm-up or in the last one (%d samples over %.0f s)", len(pts), end)
	}
	s.Change = s.LastWindowMB/s.FirstMB - 1
	s.Flat = s.Change <= soakTolerance && s.Change >= -soakTolerance
	return s, nil
}

func printSoak(w io.Writer, r *soakResult) {
	printResult(w, r.result)
	fmt.Fprintf(w, "%9s %9s %10s %14s %14s %11s\n", "seconds", "RSS MB", "goroutines", "heap alloc MB", "heap inuse MB", "next GC MB")
	for _, p := range r.Soak.Series {
		g := "n/a"
		if p.Goroutines >= 0 {
			g = fmt.Sprint(p.Goroutines)
		}
		mb := func(v float64) string {
			if v == 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.1f", v)
		}
		fmt.Fprintf(w, "%9.1f %9.1f %10s %14s %14s %11s\n", p.Seconds, p.RSSMB, g, mb(p.HeapAllocMB), mb(p.HeapInuseMB), mb(p.NextGCMB))
	}
	verdict := "FLAT"
	if !r.Soak.Flat {
		verdict = "NOT FLAT"
	}
	fmt.Fprintf(w, "relay RSS mean: first %s after a %s warm-up %.1f MB, last %s %.1f MB: %+.1f%% (%s within %.0f%%)\n",
		r.Soak.Window, r.Soak.Warmup, r.Soak.FirstMB, r.Soak.Window, r.Soak.LastWindowMB, 100*r.Soak.Change, verdict, 100*soakTolerance)
	if g1, g2 := r.Soak.FirstHeapGoalMB, r.Soak.LastHeapGoalMB; g1 > 0 {
		fmt.Fprintf(w, "relay Go heap goal mean over the same windows: %.1f MB, %.1f MB: %+.1f%%\n", g1, g2, 100*(g2/g1-1))
	}
}

// cacheFillTime is how long a relayed track's cache takes to fill at p's
// rate: until it holds its most groups, its most bytes or its oldest
// group's age, whichever comes first, with the limits the relay is given
// in relayArgs (--cache-max-groups, --cache-max-bytes, --cache-max-age) or
// moq-relay's defaults. Until then a relay's memory grows by design (and
// its Go heap goal by twice that), so a soak does not compare it.
func cacheFillTime(p params, relayArgs []string) time.Duration {
	groups, bytes, age := moqtransport.DefaultTrackMaxGroups, moqtransport.DefaultTrackMaxBytes, time.Duration(0)
	for i := 0; i < len(relayArgs); i++ {
		name, val, ok := strings.Cut(strings.TrimLeft(relayArgs[i], "-"), "=")
		if !ok && i+1 < len(relayArgs) {
			val = relayArgs[i+1]
		}
		switch name {
		case "cache-max-groups":
			if n, err := strconv.Atoi(val); err == nil && n > 0 {
				groups = n
			}
		case "cache-max-bytes":
			if n, err := strconv.ParseInt(val, 10, 64); err == nil && n > 0 {
				bytes = n
			}
		case "cache-max-age":
			if d, err := time.ParseDuration(val); err == nil && d > 0 {
				age = d
			}
		}
	}
	if p.rate <= 0 || p.size <= 0 {
		return 0
	}
	sec := min(float64(groups*max(p.groupObjects, 1))/p.rate, float64(bytes)/(p.rate*float64(p.size)))
	fill := time.Duration(sec * float64(time.Second))
	if age > 0 {
		fill = min(fill, age)
	}
	return fill
}
