// Package soak runs mixed legitimate and hostile load against a MoQT relay
// for a while and samples the relay's resources over time: its RSS, its
// goroutines, its open file descriptors and the objects it delivers.
//
// The legitimate load is Publishers sessions, each announcing a namespace
// and writing one track at Rate objects a second, and Subscribers sessions,
// each subscribed to every publisher's track; every payload carries its
// sequence number, its due time and a pattern derived from both, which the
// subscribers check (a wrong byte counts as corrupt) and time (latency).
// Sessions that end are dialled again, and counted.
//
// The hostile load is HostileWorkers goroutines cycling through the
// behaviours of issue 10 (see hostile.go): connect-and-close churn, bad
// PATH refusals, partial objects declaring large lengths, many uni streams,
// a publisher deaf to its control stream while SUBSCRIBEs arrive, a
// namespace subscriber deaf to its control stream during announce churn,
// PUBLISH into another session's namespace, the relay-peer parameter from a
// client, joining FETCHes at extreme locations, and tracks PUBLISHed up to
// the relay's per-track cache limit. Each action ends with
// an outcome, counted per behaviour; outcomes that mean the relay did what
// it must not (accepting a hijack, leaving a request unanswered) are marked
// unexpected.
//
// The relay's RSS and open fds come from /proc/PID (PID known when the
// relay is spawned or in this process); its goroutines from the pprof
// goroutine profile at MetricsURL (moq-relay --metrics-addr --pprof), its
// sessions and cache bytes from MetricsURL/metrics.
// Budgets given in Config are checked at every sample; Run reports the
// ones exceeded in Report.Violations.
package soak

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/moqnative"
)

// Config is one soak run. Zero values take the defaults noted.
type Config struct {
	URL string              // the relay, moqt://host:port/ (required)
	TLS moqnative.ClientTLS // how to trust it

	Duration    time.Duration // how long the load runs (default 1 min)
	Publishers  int           // legitimate publisher sessions (default 2)
	Subscribers int           // legitimate subscriber sessions (default 4)
	Rate        float64       // objects a second per publisher (default 30)
	ObjectSize  int           // payload bytes (default 1000, at least 32)
	GroupSize   int           // objects per group (default 30)

	HostileWorkers int           // goroutines cycling through the hostile behaviours (default 2; -1: none)
	HostilePause   time.Duration // pause between two hostile actions of a worker (default 200 ms)
	Scale          int           // counts inside one hostile action, in percent of the full ones (default 100)
	// AnswerWait bounds each wait for an answer in a hostile action; a
	// request not answered by then counts as unanswered (default 5 s).
	AnswerWait time.Duration
	// UpstreamWait bounds the wait for an answer the relay must get from
	// a publisher first: its upstream timeout (moq-relay's is 10 s) and a
	// margin (default 15 s).
	UpstreamWait time.Duration

	// Token, when set, is sent by every client (legitimate and hostile) as
	// its AUTHORIZATION TOKEN: a relay with access control on sees
	// authenticated clients misbehave (see AllowAllToken).
	Token string

	RelayPID   int    // the relay's pid for /proc (0: RSS and fds not sampled)
	MetricsURL string // http://host:port of the relay's metrics server ("": goroutines not sampled)

	SampleEvery time.Duration // sampling period (default 5 s)

	// Budgets; 0 means none.
	MaxRSSMB      float64
	MaxGoroutines int
	MaxFDs        int

	Out      io.Writer // the table of samples and the summary (nil: discarded)
	Progress io.Writer // a line at each sample while running (nil: none)
}

func (c *Config) defaults() error {
	if c.URL == "" {
		return fmt.Errorf("soak: no relay URL")
	}
	if c.Duration <= 0 {
		c.Duration = time.Minute
	}
	if c.Publishers == 0 {
		c.Publishers = 2
	}
	if c.Subscribers == 0 {
		c.Subscribers = 4
	}
	if c.Rate <= 0 {
		c.Rate = 30
	}
	if c.ObjectSize == 0 {
		c.ObjectSize = 1000
	}
	if c.ObjectSize < headerLen {
		return fmt.Errorf("soak: object size %d: want at least %d bytes", c.ObjectSize, headerLen)
	}
	if c.GroupSize <= 0 {
		c.GroupSize = 30
	}
	if c.HostileWorkers == 0 {
		c.HostileWorkers = 2
	}
	if c.HostilePause <= 0 {
		c.HostilePause = 200 * time.Millisecond
	}
	if c.AnswerWait <= 0 {
		c.AnswerWait = 5 * time.Second
	}
	if c.UpstreamWait <= 0 {
		c.UpstreamWait = 15 * time.Second
	}
	if c.Scale <= 0 {
		c.Scale = 100
	}
	if c.SampleEvery <= 0 {
		c.SampleEvery = 5 * time.Second
	}
	if c.Publishers < 0 || c.Subscribers < 0 {
		return fmt.Errorf("soak: publishers and subscribers must not be negative")
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return nil
}

// scaled is n at the configured scale, at least 1.
func (c *Config) scaled(n int) int {
	v := n * c.Scale / 100
	if v < 1 {
		v = 1
	}
	return v
}

// Report is what a run measured.
type Report struct {
	Duration   time.Duration
	Samples    []Sample
	Published  int64 // objects written by the publishers
	Delivered  int64 // objects received and verified by the subscribers
	Corrupt    int64 // objects whose payload did not verify
	Skipped    int64 // reader skips (evicted before read)
	LatencyP50 time.Duration
	LatencyP99 time.Duration
	LatencyMax time.Duration
	// Errors counts the legitimate clients' failures by kind.
	Errors map[string]int64
	// Hostile counts each behaviour's outcomes: behaviour -> outcome -> n.
	Hostile map[string]map[string]int64
	// Unexpected counts the outcomes that mean the relay misbehaved.
	Unexpected int64
	// Violations names each budget exceeded (first time), empty if none.
	Violations []string
}

// Sample is the relay's state at one time.
type Sample struct {
	At         time.Duration // since the start
	RSSMB      float64       // -1: unknown
	Goroutines int           // -1: unknown
	FDs        int           // -1: unknown
	Sessions   int           // relay's active sessions, -1: unknown
	CacheMB    float64       // bytes in the relay's track caches, -1: unknown
	Delivered  int64         // cumulative
	Rate       float64       // objects/s delivered since the previous sample
	P99        time.Duration // latency p99 since the previous sample
	Hostile    int64         // hostile actions finished, cumulative
	Unexpected int64         // cumulative
	Errors     int64         // legitimate errors, cumulative
}

// counters are shared by every goroutine of a run.
type counters struct {
	published, delivered, corrupt, skipped atomic.Int64
	hostileDone, unexpected                atomic.Int64

	mu      sync.Mutex
	errs    map[string]int64
	hostile map[string]map[string]int64
	lat     []time.Duration // since the last sample
	allLat  latencies
}

func newCounters() *counters {
	return &counters{errs: map[string]int64{}, hostile: map[string]map[string]int64{}}
}

func (c *counters) err(kind string) {
	c.mu.Lock()
	c.errs[kind]++
	c.mu.Unlock()
}

func (c *counters) errTotal() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n int64
	for _, v := range c.errs {
		n += v
	}
	return n
}

// outcome records one hostile action's result; bad marks it unexpected.
func (c *counters) outcome(behaviour, what string, bad bool) {
	if bad {
		what = "UNEXPECTED: " + what
		c.unexpected.Add(1)
	}
	c.mu.Lock()
	m := c.hostile[behaviour]
	if m == nil {
		m = map[string]int64{}
		c.hostile[behaviour] = m
	}
	m[what]++
	c.mu.Unlock()
	c.hostileDone.Add(1)
}

func (c *counters) latency(d time.Duration) {
	c.mu.Lock()
	c.lat = append(c.lat, d)
	c.allLat.add(d)
	c.mu.Unlock()
}

// takeLatencies returns and resets the latencies since the last call.
func (c *counters) takeLatencies() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.lat
	c.lat = nil
	return l
}

// Run runs the soak until cfg.Duration has passed or ctx ends, and returns
// what it measured. An error means the run could not start (the relay was
// unreachable); budgets exceeded are in Report.Violations.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	c := newCounters()
	run := fmt.Sprintf("%d", time.Now().UnixNano()%1e9)
	start := time.Now()
	s := newSampler(&cfg, c, start)
	s.sample("idle") // at 0: the relay before any load
	loadCtx, stop := context.WithCancel(ctx)
	defer stop()

	l := &legit{cfg: &cfg, c: c, run: run, epoch: start}
	if err := l.start(loadCtx); err != nil {
		stop()
		l.wait()
		return nil, err
	}
	// The clock of the load starts once every subscription is made (or
	// after a while if some cannot be).
	l.waitReady(loadCtx, 15*time.Second)
	h := &hostile{cfg: &cfg, c: c, run: run, legitNS: l.namespace(0)}
	var wg sync.WaitGroup
	for i := 0; i < cfg.HostileWorkers; i++ {
		wg.Go(func() { h.worker(loadCtx, i) })
	}
	end := time.NewTimer(cfg.Duration)
	defer end.Stop()
	tick := time.NewTicker(cfg.SampleEvery)
	defer tick.Stop()
loop:
	for {
		select {
		case <-loadCtx.Done():
			break loop
		case <-end.C:
			break loop
		case <-tick.C:
			s.sample("")
		}
	}
	stop()
	wg.Wait()
	l.wait()
	s.waitIdle(ctx, 10*time.Second)
	s.sample("after") // at the end, with every client gone
	return s.report(time.Since(start)), nil
}
