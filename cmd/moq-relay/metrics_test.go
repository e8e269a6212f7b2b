package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// dashboardFile is the Grafana dashboard shipped for moq-relay.
const dashboardFile = "../../doc/grafana/moq-relay.json"

// dashboardQueries returns every PromQL expression of the dashboard: the
// "expr" of each panel target, and the variables' queries.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d any
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && (k == "expr" || k == "definition") {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(d)
	return out
}

// queryMetricNames extracts the metric names a PromQL expression reads:
// the identifiers that are not functions, aggregation keywords, label
// names or label values. Every metric of moq-relay's /metrics has one of
// these prefixes.
var metricNameRE = regexp.MustCompile(`\b(?:moq_relay|go|process)_[a-zA-Z0-9_]+\b`)

func queryMetricNames(expr string) []string {
	// Drop label matchers and legend strings: {job=~"$job"}.
	expr = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(expr, "{}")
	return metricNameRE.FindAllString(expr, -1)
}

// byLabels returns the label names of the "by (...)" clauses of expr.
func byLabels(expr string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`by \(([^)]*)\)`).FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return out
}

// scrape reads url with the Prometheus text parser.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %s %s", url, resp.Status, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v", err)
	}
	return fams
}

// family finds the family a queried name belongs to: a histogram's
// series are queried as name_bucket, name_sum and name_count.
func family(fams map[string]*dto.MetricFamily, name string) *dto.MetricFamily {
	if f := fams[name]; f != nil {
		return f
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f := fams[base]; f != nil && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return f
			}
		}
	}
	return nil
}

// value sums a counter's or gauge's series whose labels include want, or
// a histogram's sample counts.
func value(fams map[string]*dto.MetricFamily, name string, want ...string) float64 {
	f := fams[name]
	if f == nil {
		return -1
	}
	var sum float64
next:
	for _, m := range f.GetMetric() {
		for i := 0; i+1 < len(want); i += 2 {
			if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == want[i] && l.GetValue() == want[i+1] }) {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			sum += m.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			sum += m.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// TestMetricsForDashboard runs moq-relay with --metrics-addr, moves a
// track from a publisher to a subscriber through it on loopback, and
// scrapes /metrics with the Prometheus text parser: every metric the
// Grafana dashboard queries exists, with the labels it groups by, every
// family has HELP, and the counters and histograms moved.
func TestMetricsForDashboard(t *testing.T) {
	var logs syncBuffer
	r := startRelayConfig(t, config{
		ops:    opsConfig{metricsAddr: "127.0.0.1:0", maxRequests: 100, cacheMaxBytes: moqtransport.DefaultTrackMaxBytes, cacheMaxGroups: moqtransport.DefaultTrackMaxGroups},
		stderr: &logs,
	})
	// The metrics server logs its address before the relay is ready.
	m := regexp.MustCompile(`msg="metrics serving" addr=(\S+)`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no metrics address in the logs:\n%s", logs.String())
	}
	url := "http://" + m[1] + "/metrics"
	t.Cleanup(http.DefaultClient.CloseIdleConnections) // no keep-alive goroutine outlives the test
	fp := r.fp

	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	tracks := &moqtransport.Tracks{}
	ns := wire.Namespace{"metrics"}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
	tracks.Add(tr)
	pub := connectTo(t, tctx, fmt.Sprintf("moqt://%s/", r.addr), fp, tracks)
	if _, err := pub.PublishNamespace(tctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	sub := connectTo(t, tctx, fmt.Sprintf("https://%s/", r.addr), fp, nil)
	s, err := sub.Subscribe(tctx, ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// A SUBSCRIBE nobody can serve, from a session that then ends.
	lost := connectTo(t, tctx, fmt.Sprintf("moqt://%s/", r.addr), fp, nil)
	if _, err := lost.Subscribe(tctx, wire.Namespace{"nobody"}, "t", moqtransport.SubscribeOptions{}); err == nil {
		t.Fatal("a SUBSCRIBE for a namespace nobody publishes succeeded")
	}
	_ = lost.Close()
	const objects = 20
	w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	for i := range objects {
		if err := w.WriteObject(uint64(i), []byte("object"), nil); err != nil {
			t.Fatal(err)
		}
	}
	rd := s.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer rd.Close()
	for n := 0; n < objects; {
		ev, err := rd.Next(tctx)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Kind == moqtransport.EventObject {
			n++
		}
	}

	// The ended session reaches the relay shortly after we close it.
	fams := scrape(t, url)
	ended := func() bool {
		return value(fams, "moq_relay_session_duration_seconds") >= 1 && value(fams, "moq_relay_sessions_ended_total", "closer", "peer") >= 1
	}
	for deadline := time.Now().Add(5 * time.Second); !ended() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		fams = scrape(t, url)
	}

	queries := dashboardQueries(t)
	if len(queries) < 15 {
		t.Fatalf("%d queries in %s", len(queries), dashboardFile)
	}
	seen := map[string]bool{}
	for _, q := range queries {
		names := queryMetricNames(q)
		if len(names) == 0 {
			t.Errorf("query %q reads no moq-relay metric", q)
		}
		for _, name := range names {
			seen[name] = true
			f := family(fams, name)
			if f == nil {
				t.Errorf("the dashboard queries %s, which /metrics lacks (in %q)", name, q)
				continue
			}
			for _, l := range byLabels(q) {
				if l == "le" {
					continue
				}
				if len(f.GetMetric()) == 0 || !slices.ContainsFunc(f.GetMetric()[0].GetLabel(), func(p *dto.LabelPair) bool { return p.GetName() == l }) {
					t.Errorf("the dashboard groups %s by %q, a label it lacks (in %q)", name, l, q)
				}
			}
		}
	}
	t.Logf("%d dashboard queries read %d metric names", len(queries), len(seen))
	for name, f := range fams {
		if strings.HasPrefix(name, "moq_relay_") && f.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}

	atLeast := func(want float64, name string, labels ...string) {
		t.Helper()
		if got := value(fams, name, labels...); got < want {
			t.Errorf("%s%v = %v, want at least %v", name, labels, got, want)
		}
	}
	atLeast(3, "moq_relay_connections_total")
	atLeast(1, "moq_relay_connections_closed_total")
	atLeast(2, "moq_relay_active_connections")
	atLeast(1, "moq_relay_announce_ok_total")
	atLeast(1, "moq_relay_active_subscriptions")
	atLeast(objects, "moq_relay_objects_received_total")
	atLeast(objects, "moq_relay_objects_sent_total")
	atLeast(objects*float64(len("object")), "moq_relay_bytes_sent_total")
	atLeast(1, "moq_relay_subscribe_not_found_total")
	atLeast(1, "moq_relay_request_errors_total", "request", "subscribe", "code", wire.SubscribeTrackDoesNotExist.String())
	atLeast(objects, "moq_relay_delivery_latency_seconds")
	atLeast(1, "moq_relay_subscribe_latency_seconds", "source", "local")
	atLeast(1, "moq_relay_subscribe_latency_seconds", "source", "not_found")
	atLeast(1, "moq_relay_upstream_subscribe_seconds", "result", "ok")
	atLeast(1, "moq_relay_session_duration_seconds")
	atLeast(1, "go_goroutines")
	atLeast(1, "process_resident_memory_bytes")

	// stderr carries the session id, and the request ID on request lines.
	for _, re := range []string{`msg="session started" session=\d+ `, `msg="namespace published" session=\d+ request=\d+ `, `msg="upstream subscribed" session=\d+ request=\d+ `} {
		if !regexp.MustCompile(re).MatchString(logs.String()) {
			t.Errorf("no line matching %s on stderr:\n%s", re, logs.String())
		}
	}
}
