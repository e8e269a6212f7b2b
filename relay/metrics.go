package relay

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Metrics are a relay's Prometheus metrics, under the names of moq-rs's
// relay metrics where one exists (moq_relay_*), on a registry of the
// relay's own (Registry) that also holds the Go runtime and process
// collectors: several relays in one process, and tests, do not collide.
//
// Labels take a bounded set of values, fixed in this file: stages,
// phases, reasons, request kinds and draft-14 error code names (a code
// this package does not know is counted as "other"). Namespaces, track
// names, paths and peer addresses are never labels.
type Metrics struct {
	reg *prometheus.Registry

	connectionsTotal       prometheus.Counter
	connectionsClosedTotal prometheus.Counter
	activeConnections      prometheus.Gauge
	publishersTotal        prometheus.Counter
	announceOKTotal        prometheus.Counter
	subscribersTotal       prometheus.Counter
	subscribeNotFoundTotal prometheus.Counter
	subscribeRouteErrors   prometheus.Counter
	activeSubscriptions    prometheus.Gauge
	upstreamConnections    prometheus.Gauge
	objectsReceived        prometheus.Counter
	bytesReceived          prometheus.Counter
	objectsSent            prometheus.Counter
	bytesSent              prometheus.Counter

	connectionErrors *prometheus.CounterVec // stage
	announceErrors   *prometheus.CounterVec // phase
	publishErrors    *prometheus.CounterVec // reason
	upstreamErrors   *prometheus.CounterVec // stage
	requestErrors    *prometheus.CounterVec // request, code
	sessionsEnded    *prometheus.CounterVec // closer, code

	subscribeLatency  *prometheus.HistogramVec // source
	upstreamSubscribe *prometheus.HistogramVec // result
	sessionDuration   prometheus.Histogram
	deliveryLatency   prometheus.Histogram
	writeHold         prometheus.Histogram
	writeHoldObjects  prometheus.Counter
}

// The label values of the labelled counters: each series exists from the
// start (at 0), so that rates and dashboards see it before its first
// event.
var (
	connectionErrorStages = []string{"session_accept", "scope_resolve", "authority", "peer_token", "token", "limit", "token_expired"}
	announceErrorPhases   = []string{"local_register", "coordinator_register", "owned_elsewhere"}
	publishErrorReasons   = []string{"namespace_owned", "track_owned", "coordinator_register", "namespace_owned_elsewhere"}
	upstreamErrorStages   = []string{"connect"}
	subscribeSources      = []string{"local", "remote", "not_found", "route_error", "error"}
)

// Histogram buckets, in seconds.
var (
	// SubscribeLatencyBuckets are moq-rs's buckets for
	// moq_relay_subscribe_latency_seconds; the upstream subscribe
	// histogram uses them too.
	SubscribeLatencyBuckets = []float64{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 10}
	// DeliveryLatencyBuckets are moq_relay_delivery_latency_seconds':
	// from half a millisecond (a relay that keeps up) to the default
	// delivery timeout (5 s) and past it.
	DeliveryLatencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	// WriteHoldBuckets are moq_relay_write_hold_seconds': holds last at
	// most --write-coalesce, a few milliseconds.
	WriteHoldBuckets = []float64{0.00025, 0.0005, 0.001, 0.002, 0.003, 0.004, 0.006, 0.008, 0.012, 0.02, 0.05}
	// SessionDurationBuckets are moq_relay_session_duration_seconds':
	// a second to a day.
	SessionDurationBuckets = []float64{1, 10, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600}
)

func newMetrics(r *Relay) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		m.reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
		m.reg.MustRegister(g)
		return g
	}
	counterVec := func(name, help, label string, values []string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
		for _, v := range values {
			c.WithLabelValues(v)
		}
		m.reg.MustRegister(c)
		return c
	}
	m.connectionsTotal = counter("moq_relay_connections_total", "Sessions admitted (accepted sessions that passed admission).")
	m.connectionsClosedTotal = counter("moq_relay_connections_closed_total", "Admitted sessions that ended.")
	m.activeConnections = gauge("moq_relay_active_connections", "Admitted sessions running.")
	m.publishersTotal = counter("moq_relay_publishers_total", "PUBLISH_NAMESPACE requests received.")
	m.announceOKTotal = counter("moq_relay_announce_ok_total", "PUBLISH_NAMESPACE requests accepted.")
	m.subscribersTotal = counter("moq_relay_subscribers_total", "SUBSCRIBE requests received.")
	m.subscribeNotFoundTotal = counter("moq_relay_subscribe_not_found_total", "SUBSCRIBEs for a namespace no publisher has.")
	m.subscribeRouteErrors = counter("moq_relay_subscribe_route_errors_total", "SUBSCRIBEs that failed to reach another relay.")
	m.activeSubscriptions = gauge("moq_relay_active_subscriptions", "Downstream subscriptions served.")
	m.upstreamConnections = gauge("moq_relay_upstream_connections", "Sessions this relay opened to other relays.")
	m.objectsReceived = counter("moq_relay_objects_received_total", "Objects received from publishers (subgroup, fetch and datagram objects).")
	m.bytesReceived = counter("moq_relay_bytes_received_total", "Object payload bytes received from publishers.")
	m.objectsSent = counter("moq_relay_objects_sent_total", "Objects sent to subscribers (subgroup, fetch and datagram objects).")
	m.bytesSent = counter("moq_relay_bytes_sent_total", "Object payload bytes sent to subscribers.")

	m.connectionErrors = counterVec("moq_relay_connection_errors_total",
		"Sessions refused or failed before they ran, by stage: session_accept (setup failed), scope_resolve (bad path), authority (INVALID_AUTHORITY), peer_token (bad relay-peer proof), token (bad or missing token), limit (--max-sessions), token_expired (closed at its token's exp).",
		"stage", connectionErrorStages)
	m.announceErrors = counterVec("moq_relay_announce_errors_total",
		"PUBLISH_NAMESPACE requests refused, by phase: local_register (owned by another session here), coordinator_register (the coordinator failed), owned_elsewhere (another relay owns it).",
		"phase", announceErrorPhases)
	m.publishErrors = counterVec("moq_relay_publish_errors_total",
		"PUBLISH requests refused, by reason: namespace_owned, track_owned (another session's), coordinator_register (the coordinator failed), namespace_owned_elsewhere (another relay's).",
		"reason", publishErrorReasons)
	m.upstreamErrors = counterVec("moq_relay_upstream_errors_total",
		"Failures reaching another relay, by stage: connect (dialing it failed).",
		"stage", upstreamErrorStages)
	m.requestErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "moq_relay_request_errors_total",
		Help: "Requests this relay refused, by request (subscribe, publish_namespace, publish, track_status, fetch) and draft-14 error code name (other: a code outside the registry, passed on from a publisher)."},
		[]string{"request", "code"})
	for _, c := range []wire.SubscribeErrorCode{wire.SubscribeInternalError, wire.SubscribeUnauthorized, wire.SubscribeTrackDoesNotExist} {
		m.requestErrors.WithLabelValues("subscribe", c.String())
	}
	m.reg.MustRegister(m.requestErrors)
	m.sessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "moq_relay_sessions_ended_total",
		Help: "Admitted sessions that ended, by closer (peer, relay, transport: the connection ended without an application close, as on an idle timeout) and draft-14 session error code name (none without one, other for a code outside the registry)."},
		[]string{"closer", "code"})
	for _, closer := range []string{"peer", "relay"} {
		m.sessionsEnded.WithLabelValues(closer, wire.NoError.String())
	}
	m.sessionsEnded.WithLabelValues("transport", "none")
	m.reg.MustRegister(m.sessionsEnded)

	m.subscribeLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "moq_relay_subscribe_latency_seconds",
		Help:    "Time from a SUBSCRIBE's arrival to its answer, by source: local (a publisher on this relay), remote (through another relay), not_found, route_error (the coordinator failed), error (any other refusal).",
		Buckets: SubscribeLatencyBuckets}, []string{"source"})
	for _, s := range subscribeSources {
		m.subscribeLatency.WithLabelValues(s)
	}
	m.upstreamSubscribe = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "moq_relay_upstream_subscribe_seconds",
		Help:    "Time the relay's shared upstream SUBSCRIBE for a track took to be answered by the publisher or relay that has it, by result (ok, error).",
		Buckets: SubscribeLatencyBuckets}, []string{"result"})
	m.upstreamSubscribe.WithLabelValues("ok")
	m.upstreamSubscribe.WithLabelValues("error")
	m.sessionDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "moq_relay_session_duration_seconds",
		Help:    "Lifetime of admitted sessions, observed when they end.",
		Buckets: SessionDurationBuckets})
	m.deliveryLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "moq_relay_delivery_latency_seconds",
		Help:    "Time from an object's arrival at the relay to its write to a subscriber's stream or datagram, once per object and subscriber.",
		Buckets: DeliveryLatencyBuckets})
	m.writeHold = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "moq_relay_write_hold_seconds",
		Help:    "How long a subscriber's writer held a small object for the ones that follow it (Session.WriteCoalesce, moq-relay --write-coalesce): the latency the hold added to that object, once per held write.",
		Buckets: WriteHoldBuckets})
	m.reg.MustRegister(m.subscribeLatency, m.upstreamSubscribe, m.sessionDuration, m.deliveryLatency, m.writeHold)
	m.writeHoldObjects = counter("moq_relay_write_hold_objects_total", "Objects written in the writes that followed a hold (moq_relay_write_hold_seconds_count of them), the held ones included: over that count, the objects per held write.")

	m.reg.MustRegister(stateCollector{r}, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry holding the relay's metrics, the Go
// runtime's and the process's: serve it with promhttp.HandlerFor, or
// register more collectors on it.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// requestError counts a request the relay refused with err.
func (m *Metrics) requestError(request string, err error) {
	if err == nil {
		return
	}
	code := "other"
	var re *moqtransport.RequestError
	if errors.As(err, &re) {
		// Only the registry's names: a peer cannot add series.
		if name, known := re.CodeName(); known {
			code = name
		}
	}
	m.requestErrors.WithLabelValues(request, code).Inc()
}

// sessionEnded counts an admitted session's end, by who closed it and
// with which code.
func (m *Metrics) sessionEnded(s *moqtransport.Session) {
	closer, code := "relay", "none"
	// The session's context ends just before Done closes (with Err set);
	// a session still running was ended by the relay's own call.
	if s.Context().Err() != nil {
		<-s.Done()
		var ce *moqtransport.ConnError
		var se *wire.SessionError
		switch err := s.Err(); {
		case errors.As(err, &ce):
			if ce.Remote {
				closer = "peer"
			}
			code = sessionCodeLabel(wire.SessionErrorCode(ce.Code))
		case errors.As(err, &se):
			code = sessionCodeLabel(se.Code)
		case err == nil || errors.Is(err, moqtransport.ErrSessionClosed):
			code = wire.NoError.String()
		default:
			closer = "transport"
		}
	}
	m.sessionsEnded.WithLabelValues(closer, code).Inc()
}

// sessionCodeLabel is a session error code's label: its draft-14 name,
// or "other" for a code the registry does not define, so that a peer
// cannot add series.
func sessionCodeLabel(c wire.SessionErrorCode) string {
	if c.Known() {
		return c.String()
	}
	return "other"
}

// Metrics returns the relay's metrics.
func (r *Relay) Metrics() *Metrics { return r.metrics }

// stateCollector reports the gauges that come from the relay's state,
// computed at each scrape under one lock.
type stateCollector struct{ r *Relay }

var (
	descActivePublishers  = prometheus.NewDesc("moq_relay_active_publishers", "Sessions with a published namespace.", nil, nil)
	descNamespaces        = prometheus.NewDesc("moq_relay_announced_namespaces", "Namespaces published here.", nil, nil)
	descActiveTracks      = prometheus.NewDesc("moq_relay_active_tracks", "Tracks with a live upstream.", nil, nil)
	descCacheBytes        = prometheus.NewDesc("moq_relay_cache_bytes", "Bytes held in track caches.", nil, nil)
	descBudgetBytes       = prometheus.NewDesc("moq_relay_cache_budget_bytes", "The cache budget shared by every track (--cache-total-bytes).", nil, nil)
	descBudgetUsed        = prometheus.NewDesc("moq_relay_cache_budget_used_bytes", "Bytes the open tracks' caches count against the budget.", nil, nil)
	descBudgetEvicted     = prometheus.NewDesc("moq_relay_cache_budget_evicted_bytes_total", "Bytes evicted to keep the caches within the budget.", nil, nil)
	descInFlightBytes     = prometheus.NewDesc("moq_relay_in_flight_bytes", "Bytes the sessions hold for objects still arriving.", nil, nil)
	descInFlightRefused   = prometheus.NewDesc("moq_relay_in_flight_refused_total", "Data streams cancelled because the relay-wide in-flight budget was spent (a session's own MaxBytesInFlight refusals are not counted here).", nil, nil)
	stateCollectorMetrics = []*prometheus.Desc{descActivePublishers, descNamespaces, descActiveTracks, descCacheBytes,
		descBudgetBytes, descBudgetUsed, descBudgetEvicted, descInFlightBytes, descInFlightRefused}
)

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range stateCollectorMetrics {
		ch <- d
	}
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	publishers, tracks, namespaces, cacheBytes := r.gauges()
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	gauge(descActivePublishers, int64(publishers))
	gauge(descNamespaces, int64(namespaces))
	gauge(descActiveTracks, int64(tracks))
	gauge(descCacheBytes, cacheBytes)
	if b := r.cfg.Track.Budget; b != nil {
		st := b.Stats()
		gauge(descBudgetBytes, st.Limit)
		gauge(descBudgetUsed, st.Used)
		ch <- prometheus.MustNewConstMetric(descBudgetEvicted, prometheus.CounterValue, float64(st.EvictedBytes))
	}
	if b := r.cfg.Session.Reader.Budget; b != nil {
		st := b.Stats()
		gauge(descInFlightBytes, st.Used)
		ch <- prometheus.MustNewConstMetric(descInFlightRefused, prometheus.CounterValue, float64(st.Refused))
	}
}

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
				cacheBytes += rt.track.Cache().Stats().Bytes
			}
		}
	}
	return len(sessions), tracks, namespaces, cacheBytes
}

// WriteMetrics writes every metric of the relay's registry in the
// Prometheus text format.
func (r *Relay) WriteMetrics(w io.Writer) error {
	families, err := r.metrics.reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}

// Health is what the health endpoint reports.
type Health struct {
	Status     string `json:"status"` // "ok", or "draining"
	Sessions   int64  `json:"sessions"`
	Namespaces int    `json:"namespaces"`
	Tracks     int    `json:"tracks"`
}

// OpsHandler serves the relay's operations surface: /metrics (the relay's
// registry through promhttp, in the format the scraper asks for), /health
// (200 with a JSON Health while the relay accepts sessions, 503 once it
// drains), and with pprof the /debug/pprof/ pages.
func OpsHandler(s *Server, withPprof bool) http.Handler {
	mux := http.NewServeMux()
	reg := s.Relay.metrics.reg
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		_, tracks, namespaces, _ := s.Relay.gauges()
		s.Relay.mu.Lock()
		sessions := int64(s.Relay.accepted)
		s.Relay.mu.Unlock()
		h := Health{Status: "ok", Sessions: sessions, Namespaces: namespaces, Tracks: tracks}
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
		c.m.objectsSent.Inc()
		c.m.bytesSent.Add(float64(n))
	} else {
		c.m.objectsReceived.Inc()
		c.m.bytesReceived.Add(float64(n))
	}
}

// observeHold records a write that followed a hold
// (moqtransport.Config.ObserveHold).
func (m *Metrics) observeHold(held time.Duration, objects int) {
	m.writeHold.Observe(held.Seconds())
	m.writeHoldObjects.Add(float64(objects))
}

// observeDelivery records how long an object waited at the relay before
// its write to a subscriber (moqtransport.Config.ObserveDelivery).
func (m *Metrics) observeDelivery(wait time.Duration) {
	m.deliveryLatency.Observe(wait.Seconds())
}
