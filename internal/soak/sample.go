package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moqgo/moq/internal/relayproc"
)

// sampler reads the relay's resources and prints a row per sample.
type sampler struct {
	cfg     *Config
	c       *counters
	start   time.Time
	http    *http.Client
	samples []Sample
	lastAt  time.Duration
	lastDel int64
	over    map[string]bool
	viol    []string
}

func newSampler(cfg *Config, c *counters, start time.Time) *sampler {
	s := &sampler{cfg: cfg, c: c, start: start, http: &http.Client{Timeout: 5 * time.Second}, over: map[string]bool{}}
	fmt.Fprintf(cfg.Out, "%8s %8s %6s %5s %5s %8s %10s %8s %8s %7s %5s %6s\n",
		"time", "rss_mb", "gorout", "fds", "sess", "cache_mb", "delivered", "obj/s", "p99_ms", "hostile", "unexp", "errors")
	return s
}

// sample reads the relay and prints a row; label, if any, ends the row.
func (s *sampler) sample(label string) {
	at := time.Since(s.start)
	x := Sample{At: at, RSSMB: -1, Goroutines: -1, FDs: -1, Sessions: -1, CacheMB: -1}
	if s.cfg.RelayPID > 0 {
		if kb, err := relayproc.StatusKB(s.cfg.RelayPID, "VmRSS"); err == nil {
			x.RSSMB = float64(kb) / 1024
		}
		if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", s.cfg.RelayPID)); err == nil {
			x.FDs = len(ents)
		}
	}
	if s.cfg.MetricsURL != "" {
		x.Goroutines = s.goroutines()
		var cache int64
		x.Sessions, cache = s.metrics()
		if cache >= 0 {
			x.CacheMB = float64(cache) / (1 << 20)
		}
	}
	x.Delivered = s.c.delivered.Load()
	if dt := (at - s.lastAt).Seconds(); dt > 0 && len(s.samples) > 0 {
		x.Rate = float64(x.Delivered-s.lastDel) / dt
	}
	lat := s.c.takeLatencies()
	slices.Sort(lat)
	if len(lat) > 0 {
		x.P99 = lat[len(lat)*99/100]
	}
	x.Hostile = s.c.hostileDone.Load()
	x.Unexpected = s.c.unexpected.Load()
	x.Errors = s.c.errTotal()
	s.lastAt, s.lastDel = at, x.Delivered
	s.samples = append(s.samples, x)
	s.check(x)
	row := formatRow(x, s.cfg.SampleEvery)
	if label != "" {
		row += "  " + label
	}
	fmt.Fprintln(s.cfg.Out, row)
	if s.cfg.Progress != nil && s.cfg.Progress != s.cfg.Out {
		fmt.Fprintf(s.cfg.Progress, "soak %s/%s: %s\n", roundFor(at, s.cfg.SampleEvery), s.cfg.Duration, strings.TrimSpace(row))
	}
}

func formatRow(x Sample, every time.Duration) string {
	return fmt.Sprintf("%8s %8s %6s %5s %5s %8s %10d %8.1f %8.1f %7d %5d %6d",
		roundFor(x.At, every), orDash(x.RSSMB >= 0, fmt.Sprintf("%.1f", x.RSSMB)),
		orDash(x.Goroutines >= 0, strconv.Itoa(x.Goroutines)), orDash(x.FDs >= 0, strconv.Itoa(x.FDs)),
		orDash(x.Sessions >= 0, strconv.Itoa(x.Sessions)), orDash(x.CacheMB >= 0, fmt.Sprintf("%.1f", x.CacheMB)),
		x.Delivered, x.Rate,
		float64(x.P99)/float64(time.Millisecond), x.Hostile, x.Unexpected, x.Errors)
}

// roundFor rounds d to seconds, or to tenths when sampling is faster.
func roundFor(d, every time.Duration) time.Duration {
	if every < time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

func orDash(ok bool, s string) string {
	if ok {
		return s
	}
	return "-"
}

// check records each budget exceeded, once.
func (s *sampler) check(x Sample) {
	exceed := func(name string, over bool, format string, args ...any) {
		if over && !s.over[name] {
			s.over[name] = true
			v := fmt.Sprintf("%s at %s: ", name, roundFor(x.At, s.cfg.SampleEvery)) + fmt.Sprintf(format, args...)
			s.viol = append(s.viol, v)
			fmt.Fprintf(s.cfg.Out, "BUDGET EXCEEDED: %s\n", v)
		}
	}
	exceed("rss", s.cfg.MaxRSSMB > 0 && x.RSSMB > s.cfg.MaxRSSMB, "%.1f MB > %.1f MB", x.RSSMB, s.cfg.MaxRSSMB)
	exceed("goroutines", s.cfg.MaxGoroutines > 0 && x.Goroutines > s.cfg.MaxGoroutines, "%d > %d", x.Goroutines, s.cfg.MaxGoroutines)
	exceed("fds", s.cfg.MaxFDs > 0 && x.FDs > s.cfg.MaxFDs, "%d > %d", x.FDs, s.cfg.MaxFDs)
}

// waitIdle waits until the relay runs no session (its metrics say so), at
// most max: the last sample then shows what the relay keeps after its
// clients left.
func (s *sampler) waitIdle(ctx context.Context, max time.Duration) {
	if s.cfg.MetricsURL == "" {
		return
	}
	deadline := time.Now().Add(max)
	for {
		if n, _ := s.metrics(); n <= 0 || !time.Now().Before(deadline) || ctx.Err() != nil {
			return
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// goroutines reads the total of the pprof goroutine profile, -1 if it
// cannot.
func (s *sampler) goroutines() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := relayproc.Goroutines(ctx, s.http, s.cfg.MetricsURL)
	if err != nil {
		return -1
	}
	return n
}

// metrics reads the relay's active sessions and cache bytes from
// /metrics; -1 for what it cannot read.
func (s *sampler) metrics() (sessions int, cacheBytes int64) {
	sessions, cacheBytes = -1, -1
	body, err := s.get("/metrics")
	if err != nil {
		return
	}
	defer body.Close()
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		// The text format may write large values in exponent form.
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		n := int64(f)
		switch name {
		case "moq_relay_active_connections":
			sessions = int(n)
		case "moq_relay_cache_bytes":
			cacheBytes = n
		}
	}
	return
}

func (s *sampler) get(path string) (io.ReadCloser, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.cfg.MetricsURL, "/")+path, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return cancelOnClose{resp.Body, cancel}, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}
