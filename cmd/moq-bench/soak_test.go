package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestReadSeriesMetrics reads the heap and goroutine gauges a Prometheus Go collector serves (as
// moq-relay's /metrics does) and refuses an exposition without them.
func TestReadSeriesMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector())
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m, err := readSeriesMetrics(context.Background(), client, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	alloc, inuse, next, goroutines := m[0]/(1<<20), m[1]/(1<<20), m[2]/(1<<20), m[3]
	// This process's heap: in use at least what is allocated, and a GC
	// goal above zero; both within a factor of this test's own reading.
	if alloc <= 0 || inuse < alloc || next <= 0 {
		t.Errorf("heap alloc %.2f MB, inuse %.2f MB, next GC %.2f MB: implausible", alloc, inuse, next)
	}
	if got, want := next, float64(ms.NextGC)/(1<<20); got < want/4 || got > want*4 {
		t.Errorf("next GC %.2f MB, runtime says %.2f MB", got, want)
	}
	if goroutines < 2 { // this test's and the HTTP server's at least
		t.Errorf("%v goroutines", goroutines)
	}

	// --join's allocation count (relayMallocs): a counter that only grows
	// (serving the first scrape allocated).
	a0, ok0 := relayMallocs(context.Background(), srv.URL)
	if a1, ok1 := relayMallocs(context.Background(), srv.URL); !ok0 || !ok1 || a0 <= 0 || a1 <= a0 {
		t.Errorf("go_memstats_mallocs_total read %v (%v), then %v (%v)", a0, ok0, a1, ok1)
	}

	if _, err := parseMetrics(strings.NewReader("go_memstats_heap_alloc_bytes 1\ngo_goroutines 3\n"), seriesMetrics); err == nil {
		t.Error("an exposition without heap_inuse and next_gc was read")
	}
	if _, err := parseMetrics(strings.NewReader("go_memstats_heap_alloc_bytes x\n"), seriesMetrics); err == nil {
		t.Error("a malformed value was read")
	}
}

// TestSoakProfileTimes: the early live heap is taken at the end of the
// first window after warm-up, the late one shortly before the end, always
// in order.
func TestSoakProfileTimes(t *testing.T) {
	for _, c := range []struct{ d, u, w, early, late time.Duration }{
		{10 * time.Minute, time.Minute, time.Minute, 2 * time.Minute, 10*time.Minute - soakProfileLead},
		{10 * time.Minute, 126 * time.Second, time.Minute, 186 * time.Second, 10*time.Minute - soakProfileLead},
		{30 * time.Second, 10 * time.Second, 10 * time.Second, 20 * time.Second, 25 * time.Second},
		{3 * time.Second, time.Second, time.Second, 2 * time.Second, 2500 * time.Millisecond},
	} {
		early, late := soakProfileTimes(c.d, c.u, c.w)
		if early != c.early || late != c.late || early > late || late >= c.d {
			t.Errorf("soak %s, warm-up %s, windows %s: heap at %s and %s, want %s and %s", c.d, c.u, c.w, early, late, c.early, c.late)
		}
	}
}

// TestCacheFillTime: the warm-up is the time to the first cache limit
// reached, with the relay's defaults or the limits it is given.
func TestCacheFillTime(t *testing.T) {
	soak := params{size: 4096, rate: 0.5e6 / 8 / 4096, groupObjects: 30} // 1:500's cell: a group every 1.97 s
	for _, c := range []struct {
		p    params
		args []string
		want time.Duration
	}{
		{soak, nil, 125829 * time.Millisecond}, // 64 groups
		{soak, []string{"--cache-max-groups=8"}, 15729 * time.Millisecond},
		{soak, []string{"--cache-max-groups", "8", "--write-coalesce=0"}, 15729 * time.Millisecond},
		{soak, []string{"--cache-max-age=30s"}, 30 * time.Second},
		{soak, []string{"--cache-max-bytes=4096000"}, 65536 * time.Millisecond}, // 1000 objects
		// 22 Mbit/s of 16 KiB, 60 a group: the 32 MiB limit (12.2 s)
		// before 64 groups (22.9 s).
		{params{size: 16384, rate: 22e6 / 8 / 16384, groupObjects: 60}, nil, 12202 * time.Millisecond},
	} {
		if got := cacheFillTime(c.p, c.args).Round(time.Millisecond); got != c.want {
			t.Errorf("%d B at %.1f/s, %d a group, relay %v: %s, want %s", c.p.size, c.p.rate, c.p.groupObjects, c.args, got, c.want)
		}
	}
}
