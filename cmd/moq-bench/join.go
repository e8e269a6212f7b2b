package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/moqgo/moq/internal/relayproc"
	"github.com/moqgo/moq/moqtransport/wire"
)

// joinResult is what --join measured: N thin subscribers joining one live
// track through the relay, a bounded number dialing at once.
type joinResult struct {
	Subscribers int     `json:"subscribers"`
	Parallel    int     `json:"parallel"`
	ObjectSize  int     `json:"object_size"`
	Rate        float64 `json:"rate"`
	Relay       string  `json:"relay"`
	// KeyExchange is the thin subscribers' TLS key exchange
	// (--tls-key-exchange).
	KeyExchange string `json:"tls_key_exchange"`
	Joined      int    `json:"joined"`       // SUBSCRIBE_OK received
	FirstObject int    `json:"first_object"` // and an object read
	Failed      int    `json:"failed"`
	FirstError  string `json:"first_error,omitempty"`
	// FailedBy counts the failures by kind (failureKind).
	FailedBy map[string]int `json:"failed_by,omitempty"`
	// Per subscriber, from its dial: SUBSCRIBE_OK (dial, QUIC and TLS
	// handshake, CLIENT_SETUP/SERVER_SETUP, SUBSCRIBE/SUBSCRIBE_OK) and
	// its first object.
	JoinMs  latency `json:"join_ms"`
	FirstMs latency `json:"first_object_ms"`
	// From the first dial to the last SUBSCRIBE_OK, and to the last first
	// object.
	WallJoinSeconds  float64  `json:"wall_join_seconds"`
	WallFirstSeconds float64  `json:"wall_first_object_seconds"`
	RelayRSSMB       *float64 `json:"relay_rss_mb_after,omitempty"`
	RelayPeakRSSMB   *float64 `json:"relay_peak_rss_mb,omitempty"`
	RelayGoroutines  *int     `json:"relay_goroutines_after,omitempty"`
	BenchPeakRSSMB   float64  `json:"bench_peak_rss_mb"`
	// From the first dial to the last first object: CPU time of the relay
	// and of this process (its thin clients, the publisher), and the
	// relay's heap allocations (go_memstats_mallocs_total), each per
	// joined subscriber. Unlike the wall times, these hold on a busy
	// machine. They include serving the live track to those already
	// joined (lower --rate to leave it out).
	RelayCPUMsPerSub    *float64 `json:"relay_cpu_ms_per_subscriber,omitempty"`
	RelayAllocsPerSub   *float64 `json:"relay_allocs_per_subscriber,omitempty"`
	BenchCPUMsPerSub    float64  `json:"bench_cpu_ms_per_subscriber"`
	RelayCPUSecondsJoin *float64 `json:"relay_cpu_seconds,omitempty"`
	BenchCPUSecondsJoin float64  `json:"bench_cpu_seconds"`
}

// busy is CPU seconds as cores busy over wall seconds: near one core (or
// GOMAXPROCS) busy, that process limits the join.
func busy(cpu, wall float64) string {
	if wall <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f cores busy", cpu/wall)
}

// failureKind names why a subscriber did not join: a QUIC transport
// error's code (CONNECTION_REFUSED: the server's accept queue was full),
// a handshake or idle timeout (the server did not answer in time), an
// application close's code and reason (e.g. 0x1 "server busy"), or the
// join's time running out.
func failureKind(err error) string {
	var te *quic.TransportError
	var ae *quic.ApplicationError
	var ie *quic.IdleTimeoutError
	var he *quic.HandshakeTimeoutError
	switch {
	case errors.As(err, &te):
		return te.ErrorCode.String()
	case errors.As(err, &ie):
		return "idle_timeout"
	case errors.As(err, &he):
		return "handshake_timeout"
	case errors.As(err, &ae):
		return fmt.Sprintf("application_0x%x_%q", uint64(ae.ErrorCode), ae.ErrorMessage)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return "join_timeout"
	}
	return "other"
}

// relayMallocs reads the relay's go_memstats_mallocs_total (ok false:
// no metrics server or no reading).
func relayMallocs(ctx context.Context, metricsURL string) (float64, bool) {
	if metricsURL == "" {
		return 0, false
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := readMetrics(ctx, http.DefaultClient, metricsURL, []string{"go_memstats_mallocs_total"})
	if err != nil {
		return 0, false
	}
	return v[0], true
}

type latency struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func latencyOf(ns []int64) latency {
	slices.Sort(ns)
	if len(ns) == 0 {
		return latency{}
	}
	return latency{P50: quantile(ns, 0.5), P99: quantile(ns, 0.99), Max: float64(ns[len(ns)-1]) / 1e6}
}

// joinGCPercent is this process's GOGC during a join through a relay of
// another process (unless GOGC is set): the thin clients' handshakes
// allocate a lot and keep little, and at the default 100 the collector took
// about a sixth of the bench's CPU, a cost of the bench's own that would
// slow the joins it measures. It costs the bench RSS, not the relay.
const joinGCPercent = 400

// joinTimeout bounds the whole join of n subscribers.
func joinTimeout(n int) time.Duration { return 30*time.Second + time.Duration(n)*20*time.Millisecond }

// runJoin publishes one live track through the relay and lets n thin
// subscribers join it, parallel at a time.
func runJoin(ctx context.Context, p params, n, parallel int, logw io.Writer) (*joinResult, error) {
	if (p.spawnRelay != "" || p.url != "") && os.Getenv("GOGC") == "" {
		// The relay is another process: this one only runs the clients.
		defer debug.SetGCPercent(debug.SetGCPercent(joinGCPercent))
	}
	p.pubs, p.subs = 1, n // the relay's session limit fits n
	mp, desc, stop, err := startRelay(ctx, p, logw)
	if err != nil {
		return nil, err
	}
	defer stop()
	res := &joinResult{Subscribers: n, Parallel: parallel, ObjectSize: p.size, Rate: p.rate, Relay: desc, KeyExchange: p.keyExchange}
	target, err := newRelayTarget(mp.url, mp.tls, mp.keyExchange)
	if err != nil {
		return nil, err
	}
	run := fmt.Sprintf("%d-%d", os.Getpid(), runSeq.Add(1))
	pubOnly := mp
	pubOnly.subs, pubOnly.subscriberKind = 0, kindThin
	rec := newRecorder(epoch, n, p.size, 0)
	m := newMoqPath(&pubOnly, rec, run)
	defer m.close()
	sctx, cancel := context.WithTimeout(ctx, setupTimeout(1))
	err = m.setup(sctx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}

	// The publisher runs until the join is over.
	pubCtx, stopPub := context.WithCancel(ctx)
	var pubWG sync.WaitGroup
	var pubErr error
	pubWG.Go(func() {
		defer m.endPublish(0)
		interval := time.Duration(float64(time.Second) / p.rate)
		t := time.NewTicker(interval)
		defer t.Stop()
		for k := int64(0); ; k++ {
			if pubErr = m.publish(0, k, int64(time.Since(epoch))); pubErr != nil {
				return
			}
			select {
			case <-t.C:
			case <-pubCtx.Done():
				return
			}
		}
	})
	defer func() { stopPub(); pubWG.Wait() }()

	rss := startRSS(mp.relayPID)
	tracks := []wire.FullTrackName{m.trackName(0)}
	start := make([]int64, n) // ns since epoch
	ok := make([]int64, n)
	first := make([]atomic.Int64, n)
	var firsts atomic.Int64
	allFirst := make(chan struct{})
	var joined atomic.Int64
	sink := func(i int, _ int64, _ int) {
		if first[i].Load() != 0 {
			return
		}
		if first[i].CompareAndSwap(0, int64(time.Since(epoch))) && firsts.Add(1) == int64(n) {
			close(allFirst)
		}
	}
	var (
		errMu  sync.Mutex
		errOne error
	)
	jctx, cancelJoin := context.WithTimeout(ctx, joinTimeout(n))
	defer cancelJoin()
	var prof *relayProfiler
	if p.profileDir != "" && mp.metricsURL != "" {
		name := fmt.Sprintf("join%d-%s", n, time.Now().Format("150405"))
		prof = startJoinProfile(ctx, mp.metricsURL, p.profileDir, name, joinProfileSeconds)
	}
	var relayCPU0 time.Duration
	if mp.relayPID != 0 {
		relayCPU0, _ = procCPU(mp.relayPID)
	}
	mallocs0, haveMallocs := relayMallocs(ctx, mp.metricsURL)
	selfCPU0 := selfCPU()
	t0 := time.Now()
	fmt.Fprintf(logw, "%s: %d subscribers join, %d at a time...\n", binaryName, n, parallel)
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-jctx.Done():
		}
		if jctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			start[i] = int64(time.Since(epoch))
			if _, err := m.joinThin(jctx, target, tracks, i, sink); err != nil {
				errMu.Lock()
				if errOne == nil {
					errOne = err
				}
				if res.FailedBy == nil {
					res.FailedBy = map[string]int{}
				}
				res.FailedBy[failureKind(err)]++
				errMu.Unlock()
				return
			}
			ok[i] = int64(time.Since(epoch))
			joined.Add(1)
		})
	}
	wg.Wait()
	// Wait for the first objects of those that joined.
	for firsts.Load() < joined.Load() && jctx.Err() == nil {
		select {
		case <-allFirst:
		case <-jctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	selfCPU1 := selfCPU()
	var relayCPU1 time.Duration
	if mp.relayPID != 0 {
		relayCPU1, _ = procCPU(mp.relayPID)
	}
	mallocs1, haveMallocs1 := relayMallocs(ctx, mp.metricsURL)
	perSub := float64(max(joined.Load(), 1))
	res.BenchCPUSecondsJoin = (selfCPU1 - selfCPU0).Seconds()
	res.BenchCPUMsPerSub = res.BenchCPUSecondsJoin * 1e3 / perSub
	if mp.relayPID != 0 {
		secs := (relayCPU1 - relayCPU0).Seconds()
		ms := secs * 1e3 / perSub
		res.RelayCPUSecondsJoin, res.RelayCPUMsPerSub = &secs, &ms
	}
	if haveMallocs && haveMallocs1 {
		a := (mallocs1 - mallocs0) / perSub
		res.RelayAllocsPerSub = &a
	}
	self, peak := rss.finish()
	res.BenchPeakRSSMB = self
	// The relay while every subscriber is still there, the track live.
	if mp.relayPID != 0 {
		res.RelayPeakRSSMB = &peak
		if kb, err := relayproc.StatusKB(mp.relayPID, "VmRSS"); err == nil {
			v := float64(kb) / 1024
			res.RelayRSSMB = &v
		}
	}
	if mp.metricsURL != "" {
		gctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if g, err := relayproc.Goroutines(gctx, http.DefaultClient, mp.metricsURL); err == nil {
			res.RelayGoroutines = &g
		} else {
			fmt.Fprintf(logw, "%s: relay goroutines: %v\n", binaryName, err)
		}
		cancel()
	}
	if prof != nil {
		prof.finish(logw)
	}
	stopPub()
	pubWG.Wait()
	if pubErr != nil {
		return nil, fmt.Errorf("publisher: %w", pubErr)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	res.Failed = n - int(joined.Load()) // failed, or never started within the time

	if errOne != nil {
		res.FirstError = errOne.Error()
	} else if res.Failed > 0 {
		res.FirstError = fmt.Sprintf("the join did not end within %s", joinTimeout(n))
	}
	var joinNs, firstNs []int64
	var lastOK, lastFirst int64
	t0ns := int64(t0.Sub(epoch))
	for i := range n {
		if ok[i] == 0 {
			continue
		}
		joinNs = append(joinNs, ok[i]-start[i])
		lastOK = max(lastOK, ok[i])
		if f := first[i].Load(); f != 0 {
			firstNs = append(firstNs, f-start[i])
			lastFirst = max(lastFirst, f)
		}
	}
	res.Joined, res.FirstObject = len(joinNs), len(firstNs)
	res.JoinMs, res.FirstMs = latencyOf(joinNs), latencyOf(firstNs)
	if lastOK > 0 {
		res.WallJoinSeconds = float64(lastOK-t0ns) / 1e9
	}
	if lastFirst > 0 {
		res.WallFirstSeconds = float64(lastFirst-t0ns) / 1e9
	}
	return res, nil
}

func printJoin(w io.Writer, r *joinResult) {
	fmt.Fprintf(w, "join: %d thin subscribers, %d dialing at once (TLS key exchange %s), to a live track of %d B objects at %g/s; relay: %s\n",
		r.Subscribers, r.Parallel, r.KeyExchange, r.ObjectSize, r.Rate, r.Relay)
	fmt.Fprintf(w, "joined %d (SUBSCRIBE_OK), first object %d, failed %d\n", r.Joined, r.FirstObject, r.Failed)
	fmt.Fprintf(w, "%-34s %9s %9s %9s\n", "per subscriber, from its dial", "p50 ms", "p99 ms", "max ms")
	fmt.Fprintf(w, "%-34s %9.1f %9.1f %9.1f\n", "dial + setup + SUBSCRIBE_OK", r.JoinMs.P50, r.JoinMs.P99, r.JoinMs.Max)
	fmt.Fprintf(w, "%-34s %9.1f %9.1f %9.1f\n", "first object", r.FirstMs.P50, r.FirstMs.P99, r.FirstMs.Max)
	fmt.Fprintf(w, "wall time: all SUBSCRIBE_OK %.2f s, all first objects %.2f s\n", r.WallJoinSeconds, r.WallFirstSeconds)
	if r.RelayRSSMB != nil {
		fmt.Fprintf(w, "relay after the join: RSS %.0f MB (peak %.0f MB)", *r.RelayRSSMB, *r.RelayPeakRSSMB)
		if r.RelayGoroutines != nil {
			fmt.Fprintf(w, ", %d goroutines (%.1f per subscriber)", *r.RelayGoroutines, float64(*r.RelayGoroutines)/float64(max(r.Joined, 1)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "bench peak RSS %.0f MB\n", r.BenchPeakRSSMB)
	if r.RelayCPUSecondsJoin != nil {
		fmt.Fprintf(w, "relay CPU during the join %.2f s (%s, %.2f ms per subscriber)", *r.RelayCPUSecondsJoin, busy(*r.RelayCPUSecondsJoin, r.WallFirstSeconds), *r.RelayCPUMsPerSub)
		if r.RelayAllocsPerSub != nil {
			fmt.Fprintf(w, ", %.0f allocations per subscriber", *r.RelayAllocsPerSub)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "bench CPU during the join %.2f s (%s, %.2f ms per subscriber)\n", r.BenchCPUSecondsJoin, busy(r.BenchCPUSecondsJoin, r.WallFirstSeconds), r.BenchCPUMsPerSub)
	if r.FirstError != "" {
		fmt.Fprintf(w, "WARNING: %d subscribers did not join; first error: %s\n", r.Failed, r.FirstError)
		if len(r.FailedBy) > 0 {
			fmt.Fprintf(w, "failed by kind:")
			for _, k := range slices.Sorted(maps.Keys(r.FailedBy)) {
				fmt.Fprintf(w, " %s %d", k, r.FailedBy[k])
			}
			fmt.Fprintln(w)
		}
	}
}
