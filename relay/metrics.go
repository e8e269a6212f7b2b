package relay

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/moqgo/moq/moqtransport/wire"
)

// Metrics counts what a relay does, under the names of moq-rs's relay
// metrics where one exists (moq_relay_*). It is written in the Prometheus
// text format by Handler.
type Metrics struct {
	ConnectionsTotal       atomic.Int64
	ConnectionsClosedTotal atomic.Int64
	ActiveConnections      atomic.Int64
	PublishersTotal        atomic.Int64
	AnnounceOKTotal        atomic.Int64
	SubscribersTotal       atomic.Int64
	SubscribeNotFoundTotal atomic.Int64
	SubscribeRouteErrors   atomic.Int64
	ActiveSubscriptions    atomic.Int64
	UpstreamConnections    atomic.Int64
	ObjectsReceived        atomic.Int64
	BytesReceived          atomic.Int64
	ObjectsSent            atomic.Int64
	BytesSent              atomic.Int64

	mu     sync.Mutex
	errors map[string]int64 // "name{label=\"value\"}" -> count
}

// countError counts an error of a labelled counter, such as
// moq_relay_connection_errors_total{stage="session_accept"}.
func (m *Metrics) countError(name, label, value string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.errors == nil {
		m.errors = map[string]int64{}
	}
	m.errors[fmt.Sprintf("%s{%s=%q}", name, label, value)]++
}

// Metrics returns the relay's counters.
func (r *Relay) Metrics() *Metrics { return &r.metrics }

// gauges computes the gauges that come from the relay's state.
func (r *Relay) gauges() (publishers, tracks, namespaces int, cacheBytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sessions := map[any]bool{}
	for _, sc := range r.scopes {
		namespaces += len(sc.origins)
		for _, o := range sc.origins {
			sessions[o.s] = true
		}
		for _, rt := range sc.tracks {
			if rt.track != nil && !rt.track.Closed() {
				tracks++
				cacheBytes += rt.track.CacheStats().Bytes
			}
		}
	}
	return len(sessions), tracks, namespaces, cacheBytes
}

// WriteMetrics writes every metric in the Prometheus text format.
func (r *Relay) WriteMetrics(w io.Writer) error {
	m := &r.metrics
	publishers, tracks, namespaces, cacheBytes := r.gauges()
	var b strings.Builder
	metric := func(kind, name, help string, v int64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", name, help, name, kind, name, v)
	}
	metric("counter", "moq_relay_connections_total", "Sessions accepted.", m.ConnectionsTotal.Load())
	metric("counter", "moq_relay_connections_closed_total", "Sessions ended.", m.ConnectionsClosedTotal.Load())
	metric("gauge", "moq_relay_active_connections", "Sessions running.", m.ActiveConnections.Load())
	metric("counter", "moq_relay_publishers_total", "PUBLISH_NAMESPACE requests received.", m.PublishersTotal.Load())
	metric("counter", "moq_relay_announce_ok_total", "PUBLISH_NAMESPACE requests accepted.", m.AnnounceOKTotal.Load())
	metric("gauge", "moq_relay_active_publishers", "Sessions with a published namespace.", int64(publishers))
	metric("gauge", "moq_relay_announced_namespaces", "Namespaces published here.", int64(namespaces))
	metric("counter", "moq_relay_subscribers_total", "SUBSCRIBE requests received.", m.SubscribersTotal.Load())
	metric("counter", "moq_relay_subscribe_not_found_total", "SUBSCRIBEs for a namespace no publisher has.", m.SubscribeNotFoundTotal.Load())
	metric("counter", "moq_relay_subscribe_route_errors_total", "SUBSCRIBEs that failed to reach another relay.", m.SubscribeRouteErrors.Load())
	metric("gauge", "moq_relay_active_subscriptions", "Downstream subscriptions served.", m.ActiveSubscriptions.Load())
	metric("gauge", "moq_relay_active_tracks", "Tracks with a live upstream.", int64(tracks))
	metric("gauge", "moq_relay_upstream_connections", "Sessions to other relays.", m.UpstreamConnections.Load())
	metric("gauge", "moq_relay_cache_bytes", "Bytes held in track caches.", cacheBytes)
	if b := r.cfg.Track.Budget; b != nil {
		st := b.Stats()
		metric("gauge", "moq_relay_cache_budget_bytes", "The cache budget shared by every track (--cache-total-bytes).", st.Limit)
		metric("gauge", "moq_relay_cache_budget_used_bytes", "Bytes the open tracks' caches count against the budget.", st.Used)
		metric("counter", "moq_relay_cache_budget_evicted_bytes_total", "Bytes evicted to keep the caches within the budget.", st.EvictedBytes)
	}
	if b := r.cfg.Session.Reader.Budget; b != nil {
		st := b.Stats()
		metric("gauge", "moq_relay_in_flight_bytes", "Bytes the sessions hold for objects still arriving.", st.Used)
		metric("counter", "moq_relay_in_flight_refused_total", "Data streams cancelled because the relay-wide in-flight budget was spent (a session's own MaxBytesInFlight refusals are not counted here).", st.Refused)
	}
	metric("counter", "moq_relay_objects_received_total", "Objects received from publishers.", m.ObjectsReceived.Load())
	metric("counter", "moq_relay_bytes_received_total", "Object payload bytes received.", m.BytesReceived.Load())
	metric("counter", "moq_relay_objects_sent_total", "Objects sent to subscribers.", m.ObjectsSent.Load())
	metric("counter", "moq_relay_bytes_sent_total", "Object payload bytes sent.", m.BytesSent.Load())
	m.mu.Lock()
	keys := make([]string, 0, len(m.errors))
	for k := range m.errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	typed := map[string]bool{}
	for _, k := range keys {
		name := k[:strings.IndexByte(k, '{')]
		if !typed[name] {
			typed[name] = true
			fmt.Fprintf(&b, "# TYPE %s counter\n", name)
		}
		fmt.Fprintf(&b, "%s %d\n", k, m.errors[k])
	}
	m.mu.Unlock()
	_, err := io.WriteString(w, b.String())
	return err
}

// Health is what the health endpoint reports.
type Health struct {
	Status     string `json:"status"` // "ok", or "draining"
	Sessions   int64  `json:"sessions"`
	Namespaces int    `json:"namespaces"`
	Tracks     int    `json:"tracks"`
}

// OpsHandler serves the relay's operations surface: /metrics (Prometheus
// text format), /health (200 with a JSON Health while the relay accepts
// sessions, 503 once it drains), and with pprof the /debug/pprof/ pages.
func OpsHandler(s *Server, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_ = s.Relay.WriteMetrics(w)
	})
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		_, tracks, namespaces, _ := s.Relay.gauges()
		h := Health{Status: "ok", Sessions: s.Relay.metrics.ActiveConnections.Load(), Namespaces: namespaces, Tracks: tracks}
		w.Header().Set("Content-Type", "application/json")
		if s.Draining() {
			h.Status = "draining"
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_ = json.NewEncoder(w).Encode(h)
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// countingTracer counts objects and bytes in and out for the metrics.
type countingTracer struct{ m *Metrics }

func (countingTracer) ControlMessage(bool, wire.Message)         {}
func (countingTracer) SubgroupHeader(bool, *wire.SubgroupHeader) {}
func (countingTracer) FetchHeader(bool, uint64)                  {}

func (c countingTracer) SubgroupObject(created bool, _ *wire.SubgroupHeader, o *wire.ObjectHeader) {
	c.count(created, o.PayloadLength)
}

func (c countingTracer) FetchObject(created bool, o *wire.ObjectHeader) {
	c.count(created, o.PayloadLength)
}

func (c countingTracer) Datagram(created bool, d *wire.Datagram) {
	c.count(created, uint64(len(d.Payload)))
}

func (c countingTracer) count(sent bool, n uint64) {
	if sent {
		c.m.ObjectsSent.Add(1)
		c.m.BytesSent.Add(int64(n))
	} else {
		c.m.ObjectsReceived.Add(1)
		c.m.BytesReceived.Add(int64(n))
	}
}
