package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moqgo/moq/internal/relayproc"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/relay"
)

// packetCounter is a path whose subscribers can count the QUIC packets
// they received (ok false: not all of them can).
type packetCounter interface {
	packetsReceived() (n uint64, ok bool)
}

// thinPackets sums the packets received by thin subscribers' connections.
func thinPackets(conns []*thinConn) uint64 {
	var n uint64
	for _, c := range conns {
		n += c.conn.ConnectionStats().PacketsReceived
	}
	return n
}

// pathResult is what one path delivered.
type pathResult struct {
	Path         string  `json:"path"`
	SetupSeconds float64 `json:"setup_seconds"`
	Seconds      float64 `json:"seconds"` // start of publishing to the last object read
	Expected     int64   `json:"expected_objects"`
	Received     int64   `json:"received_objects"`
	Lost         int64   `json:"lost_objects"`
	Skipped      int64   `json:"skipped_objects,omitempty"` // moq-go: reported lost by the subscriber's track
	Bad          int64   `json:"bad_objects,omitempty"`
	Bytes        int64   `json:"bytes"`
	MBps         float64 `json:"mb_per_s"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	// CPU over the measured window, per GB (1e9 bytes) of payload
	// delivered: this process (the subscribers; the publishers and an
	// in-process relay on the relay path), the server process (the relay
	// when spawned or its pid is given; the baseline's origin), and their
	// sum.
	BenchCPUSeconds  float64  `json:"bench_cpu_seconds"`
	BenchCPUPerGB    float64  `json:"bench_cpu_s_per_gb"`
	ServerCPUSeconds *float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUPerGB   *float64 `json:"server_cpu_s_per_gb,omitempty"`
	TotalCPUPerGB    float64  `json:"total_cpu_s_per_gb"`
	BenchPeakRSSMB   float64  `json:"bench_peak_rss_mb"`
	// PacketsPerObject is the QUIC packets the thin subscribers received
	// while publishing (the relay's, or the origin's, data and their
	// acknowledgments of the subscribers' ACKs), per object they received:
	// a count, the same at any hour, where CPU per GB is not. Unset with
	// session subscribers.
	PacketsPerObject *float64   `json:"packets_per_object,omitempty"`
	ServerPeakRSSMB  *float64   `json:"server_peak_rss_mb,omitempty"`
	Error            string     `json:"error,omitempty"`
	series           []rssPoint // --soak: the relay's RSS while publishing
}

// result is one run: both paths and their ratios.
type result struct {
	Publishers   int                `json:"publishers"`
	Subscribers  int                `json:"subscribers"`
	ObjectSize   int                `json:"object_size"`
	Rate         float64            `json:"rate"`
	GroupObjects int                `json:"group_objects"`
	Duration     string             `json:"duration"`
	Relay        string             `json:"relay"` // in-process, spawned PATH, or the URL
	Moq          *pathResult        `json:"moq"`
	Baseline     *pathResult        `json:"baseline,omitempty"`
	Ratios       map[string]float64 `json:"ratios,omitempty"` // moq / baseline
}

// path is one way of carrying the objects.
type path interface {
	name() string
	setup(ctx context.Context) error
	publish(pub int, k, at int64) error
	endPublish(pub int)
	close()
}

func runOne(ctx context.Context, p params, logw io.Writer) (*result, error) {
	res := &result{
		Publishers: p.pubs, Subscribers: p.subs, ObjectSize: p.size, Rate: p.rate,
		GroupObjects: p.groupObjects, Duration: p.duration.String(),
	}
	// The baseline runs first, before any relay exists.
	if p.baseline {
		rec := newRecorder(epoch, p.subs, p.size, expected(p))
		rp := newRawPath(&p, rec)
		pr, err := measure(ctx, &p, rp, rec, 0, rp.err)
		if err != nil {
			return nil, fmt.Errorf("baseline: %w", err)
		}
		res.Baseline = pr
	}
	run := fmt.Sprintf("%d-%d", os.Getpid(), runSeq.Add(1))
	mp, desc, stop, err := startRelay(ctx, p, logw)
	if err != nil {
		return nil, err
	}
	defer stop()
	res.Relay = desc
	rec := newRecorder(epoch, p.subs, p.size, expected(p))
	pr, err := measure(ctx, &mp, newMoqPath(&mp, rec, run), rec, mp.relayPID, nil)
	if err != nil {
		return nil, fmt.Errorf("moq-go: %w", err)
	}
	res.Moq = pr
	if b := res.Baseline; b != nil {
		res.Ratios = map[string]float64{}
		ratio := func(k string, a, b float64) {
			if b > 0 {
				res.Ratios[k] = a / b
			}
		}
		ratio("mb_per_s", pr.MBps, b.MBps)
		ratio("p50", pr.P50ms, b.P50ms)
		ratio("p99", pr.P99ms, b.P99ms)
		ratio("max", pr.MaxMs, b.MaxMs)
		if pr.PacketsPerObject != nil && b.PacketsPerObject != nil {
			ratio("packets_per_object", *pr.PacketsPerObject, *b.PacketsPerObject)
		}
		if pr.ServerCPUPerGB != nil && b.ServerCPUPerGB != nil {
			ratio("server_cpu_per_gb", *pr.ServerCPUPerGB, *b.ServerCPUPerGB)
			ratio("server_peak_rss", *pr.ServerPeakRSSMB, *b.ServerPeakRSSMB)
		}
		// Total CPU is comparable when the relay's CPU is counted: it
		// runs in this process or its pid is known.
		if p.url == "" || mp.relayPID != 0 {
			ratio("total_cpu_per_gb", pr.TotalCPUPerGB, b.TotalCPUPerGB)
		}
	}
	return res, nil
}

// startRelay returns p with the URL (and TLS, pid) of the relay to
// measure: p.url itself, a spawned moq-relay, or one in this process; desc
// names it, and stop ends what was started.
func startRelay(ctx context.Context, p params, logw io.Writer) (mp params, desc string, stop func(), err error) {
	mp = p
	switch {
	case p.url != "":
		return mp, p.url, func() {}, nil
	case p.spawnRelay != "":
		sr, err := relayproc.Start(ctx, p.spawnRelay, relayproc.Options{
			Args:    relayArgs(p),
			Metrics: true, // goroutines for --join, profiles for --profile
			Log: func(line string) {
				fmt.Fprintf(logw, "moq-relay: %s\n", line)
			},
		})
		if err != nil {
			return mp, "", nil, fmt.Errorf("--spawn-relay: %w", err)
		}
		mp.url, mp.relayPID, mp.metricsURL = sr.URL, sr.PID, sr.MetricsURL
		mp.tls = moqnative.ClientTLS{InsecureSkipVerify: true}
		desc := "spawned " + p.spawnRelay
		if len(p.relayArgs) > 0 {
			desc += " " + strings.Join(p.relayArgs, " ")
		}
		return mp, desc, sr.Stop, nil
	default:
		ir, err := startInProcessRelay()
		if err != nil {
			return mp, "", nil, err
		}
		mp.url = ir.url
		mp.tls = moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{ir.fp}}
		return mp, "in-process", ir.stop, nil
	}
}

func expected(p params) int64 {
	return int64(p.rate*p.duration.Seconds()) * int64(p.pubs) * int64(p.subs)
}

// measure sets up a path, publishes on it for the duration, waits for the
// subscribers to drain, and closes it.
func measure(ctx context.Context, p *params, pa path, rec *recorder, relayPID int, senderErr func() error) (*pathResult, error) {
	defer pa.close()
	pr := &pathResult{Path: pa.name(), Expected: rec.expected}
	t0 := time.Now()
	sctx, cancel := context.WithTimeout(ctx, setupTimeout(p.subs))
	err := pa.setup(sctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	pr.SetupSeconds = time.Since(t0).Seconds()

	if sp, ok := pa.(interface{ serverPID() int }); ok && relayPID == 0 {
		relayPID = sp.serverPID() // the baseline's origin
	}
	rss := startRSS(relayPID)
	cpu0 := selfCPU()
	pc, counts := pa.(packetCounter)
	var pkts0 uint64
	if counts {
		pkts0, counts = pc.packetsReceived()
	}
	var rcpu0 time.Duration
	if relayPID != 0 {
		if rcpu0, err = procCPU(relayPID); err != nil {
			return nil, err
		}
	}
	interval := time.Duration(float64(time.Second) / p.rate)
	perPub := int64(p.rate * p.duration.Seconds())
	start := time.Now().Add(20 * time.Millisecond)
	startNs := int64(start.Sub(epoch))
	var series *seriesSampler
	if p.soakEvery > 0 && relayPID != 0 {
		series = startSeries(relayPID, p.metricsURL, p.soakEvery, start)
	}
	if p.profileDir != "" && p.metricsURL != "" && pa.name() == "moq-go" {
		name := fmt.Sprintf("relay-1to%d-%dB-%s", p.subs, p.size, time.Now().Format("150405"))
		if p.soakWin > 0 {
			early, late := soakProfileTimes(p.duration, p.soakWarmup, p.soakWin)
			prof := startSoakProfile(ctx, p.metricsURL, p.profileDir, name, start, early, late)
			defer prof.finishDiff(p.logw)
		} else {
			prof := startProfile(ctx, p.metricsURL, p.profileDir, name, start, p.duration)
			defer prof.finish(p.logw)
		}
	}
	var (
		wg     sync.WaitGroup
		errMu  sync.Mutex
		pubErr error
	)
	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	for i := range p.pubs {
		// Publishers are spread evenly over one interval.
		offset := time.Duration(i) * interval / time.Duration(p.pubs)
		wg.Go(func() {
			defer pa.endPublish(i)
			for k := range perPub {
				due := start.Add(offset + time.Duration(k)*interval)
				if d := time.Until(due); d > 0 {
					select {
					case <-time.After(d):
					case <-pubCtx.Done():
						return
					}
				}
				if err := pa.publish(i, k, int64(due.Sub(epoch))); err != nil {
					errMu.Lock()
					pubErr = errors.Join(pubErr, fmt.Errorf("publisher %d: %w", i, err))
					errMu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if series != nil {
		pr.series = series.finish()
	}
	if rp, ok := pa.(*rawPath); ok {
		rp.finishSenders()
	}
	drain := time.NewTimer(drainTimeout)
	select {
	case <-rec.done:
	case <-drain.C:
	case <-ctx.Done():
	}
	drain.Stop()
	cpu := selfCPU() - cpu0
	selfRSS, relRSS := rss.finish()
	if counts {
		if pkts, ok := pc.packetsReceived(); ok {
			if got := rec.got.Load(); got > 0 {
				v := float64(pkts-pkts0) / float64(got)
				pr.PacketsPerObject = &v
			}
		}
	}
	if pubErr != nil {
		return nil, pubErr
	}
	if senderErr != nil {
		if err := senderErr(); err != nil {
			pr.Error = err.Error()
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}

	pr.Received = rec.got.Load()
	pr.Lost = pr.Expected - pr.Received
	pr.Skipped = rec.skipped.Load()
	pr.Bad = rec.bad.Load()
	pr.Bytes = rec.bytes.Load()
	last := rec.last.Load()
	if last <= startNs {
		last = startNs + int64(p.duration)
	}
	pr.Seconds = float64(last-startNs) / 1e9
	pr.MBps = float64(pr.Bytes) / 1e6 / pr.Seconds
	lat := rec.latencies()
	pr.P50ms, pr.P99ms = quantile(lat, 0.50), quantile(lat, 0.99)
	if len(lat) > 0 {
		pr.MaxMs = float64(lat[len(lat)-1]) / 1e6
	}
	gb := float64(pr.Bytes) / 1e9
	perGB := func(d time.Duration) float64 {
		if gb == 0 {
			return 0
		}
		return d.Seconds() / gb
	}
	pr.BenchCPUSeconds = cpu.Seconds()
	pr.BenchCPUPerGB = perGB(cpu)
	pr.TotalCPUPerGB = pr.BenchCPUPerGB
	pr.BenchPeakRSSMB = selfRSS
	if relayPID != 0 {
		if rcpu1, err := procCPU(relayPID); err == nil {
			rc := rcpu1 - rcpu0
			s, g := rc.Seconds(), perGB(rc)
			pr.ServerCPUSeconds, pr.ServerCPUPerGB = &s, &g
			pr.TotalCPUPerGB = perGB(cpu + rc)
		}
		pr.ServerPeakRSSMB = &relRSS
	}
	return pr, nil
}

// inProcessRelay is a moq-go relay on 127.0.0.1 in this process.
type inProcessRelay struct {
	url    string
	fp     [32]byte
	srv    *moqnative.Server
	rs     *relay.Server
	cancel context.CancelFunc
	done   chan struct{}
}

func startInProcessRelay() (*inProcessRelay, error) {
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		return nil, err
	}
	fp, _ := srv.Fingerprint()
	ir := &inProcessRelay{url: fmt.Sprintf("moqt://%s/", srv.Addr()), fp: fp, srv: srv, done: make(chan struct{})}
	ir.rs = relay.NewServer(relay.New(relay.Config{}), srv)
	var ctx context.Context
	ctx, ir.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(ir.done)
		_ = ir.rs.Serve(ctx)
	}()
	return ir, nil
}

func (ir *inProcessRelay) stop() {
	ir.cancel()
	ir.rs.Close()
	_ = ir.srv.Close()
	<-ir.done
}

// relayArgs are the spawned relay's extra arguments: --relay-arg's, and a
// session limit (--max-sessions) that fits every session of the run, unless
// --relay-arg sets one: the relay's default (1000) refuses the last
// subscribers of a 1:1000 fan-out.
func relayArgs(p params) []string {
	for _, a := range p.relayArgs {
		if strings.HasPrefix(a, "--max-sessions") {
			return p.relayArgs
		}
	}
	sessions := p.pubs + p.subs + p.live.slow + p.live.stalled
	return append([]string{"--max-sessions=" + strconv.Itoa(2*sessions+16)}, p.relayArgs...)
}
