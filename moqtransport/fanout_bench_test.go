package moqtransport_test

// Fan-out benchmark: one publisher and N subscribers in one process over
// loopback QUIC, next to a raw quic-go baseline that sends the same bytes in
// the same stream pattern.
//
// One iteration of BenchmarkFanout/subs=N/<mode> is one round on each path:
// the publisher writes fanoutRoundGroups groups of fanoutGroupObjects
// objects of fanoutObjectSize bytes (one subgroup, hence one QUIC stream,
// per group and subscriber, like a video track of 30-frame GOPs) and the
// round ends when every subscriber has read every object. Our round runs
// with the timer on (ns/op is our round), then the baseline's round with the
// timer stopped; alternating them round by round exposes both to the same
// machine noise. Setup (server, N client sessions, N raw connections) runs
// once per benchmark function call, then one untimed warm-up round per path.
//
//   - moq-go: a moqnative server (raw QUIC, moqt://) whose Handler is a
//     moqtransport.Tracks serving one Track; N sessions (moqnative.Dial +
//     moqtransport.Connect) each Subscribe and read Subscription.Track()
//     with a TrackReader. The publisher writes into the Track; each served
//     subscription writes its subscriber's streams.
//   - raw-quic: a quic-go listener with a certificate from
//     moqnative.GenerateSelfSigned and the quic.Config values moqnative uses
//     (its exported constants); one connection per subscriber, one
//     unidirectional stream per group (urgency as the session sets it), each
//     object framed as an 8-byte big-endian length and the payload, written
//     with one Write. One sender goroutine per connection; the receiver reads
//     each stream on a goroutine of its own, as the session does.
//
// Release and latency. A group is released to a path when its window
// opens and, in paced mode, its due time has come; every object carries its
// group's release time in its first 8 bytes (a monotonic offset from a
// common epoch) and the subscriber takes the latency when its application
// reads the object. The release time does not depend on when the sender gets
// round to writing: a window opens when the subscriber(s) have read all but
// the last fanoutWindow-1 groups, timed by the arrival of the object that
// opened it. So latency counts all queueing after release on both paths:
// in the Track for moq-go (a Track write never blocks), in the blocked Write
// of the sender for raw quic-go.
//
// Modes:
//   - burst: groups are released as soon as the window allows (moq-go: the
//     slowest subscriber opens it, as the publisher feeds every subscriber;
//     raw-quic: each sender waits for its own subscriber). MB/s is the
//     headline; latency is latency at saturation, mostly the window's depth
//     divided by the throughput.
//   - paced: a group is due every fanoutPacedInterval (18 MB/s of payload to
//     each subscriber, below either path's capacity here); the window stays
//     as a safety net. Latency is the cost of the pipeline for a 36 KB burst.
//     A sender that sleeps until the due time releases the group when it
//     wakes (Go's sub-millisecond sleeps end up to 1 ms late when the
//     process is idle; that is not counted); a sender that is late, because
//     its path could not keep up, is charged from the due time.
//
// Metrics (ours; the baseline as base-*; ours/base as x-base-*): MB/s is
// payload bytes delivered, summed over subscribers, per second of round
// time; p50-µs and p99-µs are over every object every subscriber read;
// allocs/obj and B/obj are the process-wide runtime.MemStats Mallocs and
// TotalAlloc deltas over the rounds (both endpoints, quic-go included) per
// object delivered (objects × subscribers). For x-base-MB/s above 1 is
// better; for the others below 1 is better.
//
// BenchmarkDeliveryAllocs/{moq,raw-quic} sends b.N objects in burst mode to
// one subscriber in a single round, so that the standard allocs/op and B/op
// are per object delivered end to end.
//
// Publisher payload buffers come from a ring that outlives the publisher
// track's cache (fanoutPayloadRing groups), so they are not counted as
// allocations; the window guarantees that a buffer is rewritten only after
// the track has evicted its object and every served subscription wrote it.
//
// Neither benchmark runs under plain `go test` (no -bench).

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

const (
	fanoutObjectSize   = 1200 // bytes per object payload
	fanoutGroupObjects = 30   // objects per group (one subgroup, one stream)
	fanoutRoundGroups  = 30   // groups per benchmark iteration
	fanoutWindow       = 4    // groups released and not yet read, per subscriber
	// fanoutPacedInterval is the paced mode's group interval: 36 KB every
	// 2 ms, 18 MB/s of payload to each subscriber.
	fanoutPacedInterval = 2 * time.Millisecond
	// fanoutCacheGroups is the publisher track's MaxGroups (the default).
	fanoutCacheGroups = moqtransport.DefaultTrackMaxGroups
	// fanoutClientCacheGroups is the subscribers' track MaxGroups. With the
	// default (16) a subscriber loses objects when one of its data streams
	// is read 16 groups late, which scheduling delays on a loaded 2-core
	// machine cause in burst mode (streams read up to ~40 groups of 36 KB,
	// ~10 ms, late were seen); a lost object fails the round.
	fanoutClientCacheGroups = 128
	// fanoutPayloadRing is how many groups of payload buffers the
	// publisher cycles through: more than the track caches plus the
	// window, so a buffer is never rewritten while anything reads it.
	fanoutPayloadRing = fanoutCacheGroups + fanoutWindow + 4
	// fanoutRoundTimeout bounds one round; past it the benchmark fails.
	fanoutRoundTimeout = 20 * time.Second
	// rawUrgency is the urgency the session gives its data streams for
	// DefaultPriority (moqnative maps priority p to urgency p/32,
	// non-incremental).
	rawUrgency = moqtransport.DefaultPriority / 32
	rawALPN    = "moq-bench-raw"
)

var fanoutTrackName = wire.FullTrackName{Namespace: wire.Namespace{"bench", "fanout"}, Name: "video"}

// fanoutPace is when the publisher releases groups.
type fanoutPace struct {
	name     string
	interval time.Duration // between groups' due times; 0: no pacing
	window   int           // groups released and not yet read, per subscriber
}

var fanoutModes = []fanoutPace{
	{name: "burst", window: fanoutWindow},
	{name: "paced", interval: fanoutPacedInterval, window: fanoutWindow},
}

// ---------------------------------------------------------------------------
// Receive-side bookkeeping shared by both paths.

// fanoutRecv counts the objects each subscriber read, and when.
type fanoutRecv struct {
	epoch time.Time
	subs  []fanoutSub
}

type fanoutSub struct {
	mu   sync.Mutex   // serializes record: the raw path reads streams concurrently
	got  atomic.Int64 // objects recorded; lat and arr are written before it grows
	want atomic.Int64 // a waiter's target for got; MaxInt64 when none waits
	base int64        // got at the start of the round; lat, arr and base change under mu
	wake chan struct{}
	lat  []int64 // this round's latencies in ns, by arrival
	arr  []int64 // this round's arrival times (ns from epoch), by arrival
	bad  atomic.Int64
	// lost counts objects the subscriber will never read (moq-go:
	// EventSkipped, its track evicted them); waitSub fails on it.
	lost atomic.Int64
}

func newFanoutRecv(n, roundObjects int, epoch time.Time) *fanoutRecv {
	rv := &fanoutRecv{epoch: epoch, subs: make([]fanoutSub, n)}
	for i := range rv.subs {
		s := &rv.subs[i]
		s.wake = make(chan struct{}, 1)
		s.lat = make([]int64, roundObjects)
		s.arr = make([]int64, roundObjects)
		s.want.Store(math.MaxInt64)
	}
	return rv
}

// now is a time stamp: ns since the epoch, monotonic.
func (rv *fanoutRecv) now() int64 { return int64(time.Since(rv.epoch)) }

// record notes that subscriber i read payload p. It does not allocate.
func (rv *fanoutRecv) record(i int, p []byte) {
	now := rv.now()
	s := &rv.subs[i]
	if len(p) != fanoutObjectSize || len(p) < 8 {
		s.bad.Add(1)
		return
	}
	s.mu.Lock()
	if k := s.got.Load() - s.base; k >= 0 && k < int64(len(s.lat)) {
		s.lat[k] = now - int64(binary.LittleEndian.Uint64(p))
		s.arr[k] = now
	}
	got := s.got.Add(1)
	s.mu.Unlock()
	if got >= s.want.Load() {
		rv.wake(s)
	}
}

func (rv *fanoutRecv) wake(s *fanoutSub) {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// fail notes that subscriber i lost objects.
func (rv *fanoutRecv) fail(i int) {
	rv.subs[i].lost.Add(1)
	rv.wake(&rv.subs[i])
}

// beginRound starts a round of n objects per subscriber. Called while
// nothing is in flight.
func (rv *fanoutRecv) beginRound(n int) {
	for i := range rv.subs {
		s := &rv.subs[i]
		s.mu.Lock()
		s.base = s.got.Load()
		if cap(s.lat) < n {
			s.lat, s.arr = make([]int64, n), make([]int64, n)
		}
		s.lat, s.arr = s.lat[:n], s.arr[:n]
		s.mu.Unlock()
	}
}

// waitSub waits until subscriber i has read `have` objects of this round
// and returns when the last of them arrived.
func (rv *fanoutRecv) waitSub(ctx context.Context, i int, have int64) (int64, error) {
	s := &rv.subs[i]
	target := s.base + have
	if s.got.Load() < target {
		s.want.Store(target)
		defer s.want.Store(math.MaxInt64)
	}
	for s.got.Load() < target {
		if s.lost.Load() > 0 {
			return 0, fmt.Errorf("subscriber %d lost objects (read %d of %d)", i, s.got.Load()-s.base, have)
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return 0, fmt.Errorf("subscriber %d read %d of %d objects: %w", i, s.got.Load()-s.base, have, ctx.Err())
		}
	}
	return s.arr[have-1], nil
}

// release waits until group g of the round (counted from 0) may go and
// returns its release time: when the window of subscriber sub (-1: of every
// subscriber) opened for it, or its due time if later; when the sender has
// to sleep until the due time, the end of the sleep.
func (rv *fanoutRecv) release(ctx context.Context, pace fanoutPace, sub, g int, start time.Time) (int64, error) {
	due := start.Add(time.Duration(g) * pace.interval)
	at := int64(due.Sub(rv.epoch))
	if need := int64(g-pace.window+1) * fanoutGroupObjects; need > 0 {
		for i := range rv.subs {
			if sub >= 0 && i != sub {
				continue
			}
			opened, err := rv.waitSub(ctx, i, need)
			if err != nil {
				return 0, err
			}
			at = max(at, opened)
		}
	}
	if d := time.Until(due); d > 0 {
		// Released on time: the group goes when the sleep ends, which
		// is up to a millisecond late (the runtime's timer resolution
		// when idle), and that is no cost of the path.
		time.Sleep(d)
		at = rv.now()
	}
	return at, nil
}

// ---------------------------------------------------------------------------
// One round, measured.

// fanoutPath is one way of carrying the objects.
type fanoutPath interface {
	recv() *fanoutRecv
	// publish writes n objects to every subscriber, starting at start.
	publish(ctx context.Context, n int, pace fanoutPace, start time.Time) error
}

// fanoutStats accumulates a path's measured rounds.
type fanoutStats struct {
	elapsed    time.Duration
	objects    int64 // delivered, summed over subscribers
	bytes      int64
	mallocs    uint64
	allocBytes uint64
	lat        []int64
	bad        int64
}

// runRound publishes n objects on p and waits until every subscriber has
// read them; st (nil for a warm-up) gets the measurements.
func runRound(p fanoutPath, n int, pace fanoutPace, st *fanoutStats) error {
	ctx, cancel := context.WithTimeout(context.Background(), fanoutRoundTimeout)
	defer cancel()
	rv := p.recv()
	rv.beginRound(n)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start := time.Now()
	err := p.publish(ctx, n, pace, start)
	for i := range rv.subs {
		if err != nil {
			break
		}
		_, err = rv.waitSub(ctx, i, int64(n))
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&m1)
	if err != nil {
		if d, ok := p.(interface{ diag() string }); ok {
			err = fmt.Errorf("%w (%s)", err, d.diag())
		}
		return err
	}
	if st == nil {
		return nil
	}
	st.elapsed += elapsed
	st.mallocs += m1.Mallocs - m0.Mallocs
	st.allocBytes += m1.TotalAlloc - m0.TotalAlloc
	for i := range rv.subs {
		s := &rv.subs[i]
		st.objects += int64(n)
		st.bytes += int64(n) * fanoutObjectSize
		st.lat = append(st.lat, s.lat[:n]...)
		st.bad += s.bad.Swap(0)
	}
	return nil
}

func (st *fanoutStats) mbps() float64 { return float64(st.bytes) / 1e6 / st.elapsed.Seconds() }

// percentile returns the q-quantile of the latencies in µs (st.lat sorted).
func (st *fanoutStats) percentile(q float64) float64 {
	if len(st.lat) == 0 {
		return 0
	}
	i := min(int(q*float64(len(st.lat))), len(st.lat)-1)
	return float64(st.lat[i]) / 1e3
}

func (st *fanoutStats) perObject(v uint64) float64 { return float64(v) / float64(st.objects) }

func reportFanout(b *testing.B, ours, base *fanoutStats) {
	if ours.bad != 0 || base.bad != 0 {
		b.Fatalf("payloads of the wrong size: moq-go %d, raw quic-go %d", ours.bad, base.bad)
	}
	slices.Sort(ours.lat)
	slices.Sort(base.lat)
	for _, m := range []struct {
		unit      string
		ours, raw float64
	}{
		{"MB/s", ours.mbps(), base.mbps()},
		{"p50-µs", ours.percentile(0.50), base.percentile(0.50)},
		{"p99-µs", ours.percentile(0.99), base.percentile(0.99)},
		{"allocs/obj", ours.perObject(ours.mallocs), base.perObject(base.mallocs)},
		{"B/obj", ours.perObject(ours.allocBytes), base.perObject(base.allocBytes)},
	} {
		b.ReportMetric(m.ours, m.unit)
		b.ReportMetric(m.raw, "base-"+m.unit)
		if m.raw > 0 {
			b.ReportMetric(m.ours/m.raw, "x-base-"+m.unit)
		}
	}
}

// ---------------------------------------------------------------------------
// Benchmarks.

func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 4} {
		for _, pace := range fanoutModes {
			b.Run(fmt.Sprintf("subs=%d/%s", n, pace.name), func(b *testing.B) {
				const objects = fanoutRoundGroups * fanoutGroupObjects
				epoch := time.Now()
				ours := newMoqFanout(b, n, newFanoutRecv(n, objects, epoch))
				base := newRawFanout(b, n, newFanoutRecv(n, objects, epoch))
				for _, p := range []fanoutPath{ours, base} {
					if err := runRound(p, objects, pace, nil); err != nil {
						b.Fatalf("warm-up: %v", err)
					}
				}
				var so, sb fanoutStats
				for b.Loop() {
					if err := runRound(ours, objects, pace, &so); err != nil {
						b.Fatalf("moq-go: %v", err)
					}
					b.StopTimer()
					if err := runRound(base, objects, pace, &sb); err != nil {
						b.Fatalf("raw quic-go: %v", err)
					}
					b.StartTimer()
				}
				reportFanout(b, &so, &sb)
			})
		}
	}
}

// BenchmarkDeliveryAllocs: allocs/op and B/op are per object delivered end
// to end to one subscriber (publisher, both QUIC endpoints, subscriber).
func BenchmarkDeliveryAllocs(b *testing.B) {
	paths := []struct {
		name string
		open func(b *testing.B, rv *fanoutRecv) fanoutPath
	}{
		{"moq", func(b *testing.B, rv *fanoutRecv) fanoutPath { return newMoqFanout(b, 1, rv) }},
		{"raw-quic", func(b *testing.B, rv *fanoutRecv) fanoutPath { return newRawFanout(b, 1, rv) }},
	}
	pace := fanoutModes[0]
	for _, path := range paths {
		b.Run(path.name, func(b *testing.B) {
			p := path.open(b, newFanoutRecv(1, fanoutRoundGroups*fanoutGroupObjects, time.Now()))
			if err := runRound(p, fanoutRoundGroups*fanoutGroupObjects, pace, nil); err != nil {
				b.Fatalf("warm-up: %v", err)
			}
			var st fanoutStats
			b.ReportAllocs()
			b.SetBytes(fanoutObjectSize)
			b.ResetTimer()
			if err := runRound(p, b.N, pace, &st); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			slices.Sort(st.lat)
			b.ReportMetric(st.percentile(0.50), "p50-µs")
			b.ReportMetric(st.percentile(0.99), "p99-µs")
		})
	}
}

// ---------------------------------------------------------------------------
// moq-go: a moqnative server serving one Track to N client sessions.

type moqFanout struct {
	rv       *fanoutRecv
	srv      *moqnative.Server
	track    *moqtransport.Track
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the accept loop, server setups, subscriber readers
	mu       sync.Mutex
	served   []*moqtransport.Session
	closed   bool
	dialed   []*moqnative.Dialed
	clients  []*moqtransport.Session
	subs     []*moqtransport.Subscription
	group    uint64
	payloads []byte // fanoutPayloadRing groups of payload buffers
	skipped  atomic.Int64
	aborted  atomic.Int64
}

func newMoqFanout(tb testing.TB, n int, rv *fanoutRecv) *moqFanout {
	tb.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	m := &moqFanout{
		rv: rv, srv: srv,
		track:    moqtransport.NewTrack(fanoutTrackName, moqtransport.TrackConfig{MaxGroups: fanoutCacheGroups}),
		payloads: make([]byte, fanoutPayloadRing*fanoutGroupObjects*fanoutObjectSize),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	tb.Cleanup(m.close)
	tracks := &moqtransport.Tracks{}
	tracks.Add(m.track)
	m.wg.Add(1)
	go m.acceptLoop(&moqtransport.Config{Handler: tracks.Handler()})

	fp, _ := srv.Fingerprint()
	url := fmt.Sprintf("moqt://%s/bench", srv.Addr())
	for i := range n {
		if err := m.dial(i, url, fp); err != nil {
			tb.Fatalf("subscriber %d: %v", i, err)
		}
	}
	return m
}

func (m *moqFanout) acceptLoop(cfg *moqtransport.Config) {
	defer m.wg.Done()
	for {
		in, err := m.srv.Accept(m.ctx)
		if err != nil {
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			s, err := moqtransport.Accept(m.ctx, in.Conn, in.Path, cfg)
			if err != nil {
				return
			}
			m.mu.Lock()
			closed := m.closed
			if !closed {
				m.served = append(m.served, s)
			}
			m.mu.Unlock()
			if closed {
				_ = s.Close()
			}
		}()
	}
}

func (m *moqFanout) dial(i int, url string, fp [32]byte) error {
	ctx, cancel := context.WithTimeout(m.ctx, 10*time.Second)
	defer cancel()
	d, err := moqnative.Dial(ctx, url, moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		return err
	}
	m.dialed = append(m.dialed, d)
	c, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{
		Path: d.Path, Authority: d.Authority,
		Track: moqtransport.TrackConfig{MaxGroups: fanoutClientCacheGroups},
	})
	if err != nil {
		return err
	}
	m.clients = append(m.clients, c)
	sub, err := c.Subscribe(ctx, fanoutTrackName.Namespace, fanoutTrackName.Name, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
	if err != nil {
		return err
	}
	m.subs = append(m.subs, sub)
	r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	m.wg.Add(1)
	go m.read(i, r)
	return nil
}

// read is subscriber i's application: it reads its subscription's track.
func (m *moqFanout) read(i int, r *moqtransport.TrackReader) {
	defer m.wg.Done()
	defer r.Close()
	for {
		ev, err := r.Next(m.ctx)
		if err != nil {
			return
		}
		switch ev.Kind {
		case moqtransport.EventObject:
			m.rv.record(i, ev.Object.Payload)
		case moqtransport.EventSkipped:
			m.skipped.Add(1)
			m.rv.fail(i)
		case moqtransport.EventSubgroupAbort:
			m.aborted.Add(1)
		}
	}
}

func (m *moqFanout) recv() *fanoutRecv { return m.rv }

// diag describes the state of the tracks when a round fails.
func (m *moqFanout) diag() string {
	out := fmt.Sprintf("skipped %d aborted %d; server track %+v", m.skipped.Load(), m.aborted.Load(), m.track.Cache().Stats())
	for i, sub := range m.subs {
		out += fmt.Sprintf("; subscriber %d track %+v", i, sub.Track().Cache().Stats())
		if o, n, ok := sub.Track().Cache().Groups(); ok {
			out += fmt.Sprintf(" groups %d-%d", o, n)
		}
		if err := m.clients[i].Err(); err != nil {
			out += fmt.Sprintf(" session ended: %v", err)
		}
	}
	return out
}

func (m *moqFanout) publish(ctx context.Context, n int, pace fanoutPace, start time.Time) error {
	var w *moqtransport.SubgroupWriter
	var at int64
	for k := range n {
		id := k % fanoutGroupObjects
		if id == 0 {
			var err error
			if at, err = m.rv.release(ctx, pace, -1, k/fanoutGroupObjects, start); err != nil {
				return err
			}
			if w, err = m.track.OpenSubgroup(m.group, 0, moqtransport.SubgroupOptions{}); err != nil {
				return err
			}
			m.group++
		}
		off := (int((m.group-1)%fanoutPayloadRing)*fanoutGroupObjects + id) * fanoutObjectSize
		p := m.payloads[off : off+fanoutObjectSize : off+fanoutObjectSize]
		binary.LittleEndian.PutUint64(p, uint64(at))
		if err := w.WriteObject(uint64(id), p, nil); err != nil {
			return err
		}
		if id == fanoutGroupObjects-1 || k == n-1 {
			if err := w.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

// close ends the track (PUBLISH_DONE to every subscriber), then the
// sessions, connections and server, and waits for every goroutine.
func (m *moqFanout) close() {
	m.track.Close(nil)
	timer := time.NewTimer(5 * time.Second)
	defer timer.Stop()
	for _, sub := range m.subs {
		select {
		case <-sub.Done():
		case <-timer.C:
		}
	}
	for _, c := range m.clients {
		_ = c.Close()
	}
	for _, d := range m.dialed {
		_ = d.Close()
	}
	m.cancel()
	m.mu.Lock()
	m.closed = true
	served := m.served
	m.mu.Unlock()
	for _, s := range served {
		_ = s.Close()
	}
	_ = m.srv.Close()
	m.wg.Wait()
}

// ---------------------------------------------------------------------------
// Baseline: raw quic-go, one connection per subscriber, one unidirectional
// stream per group, objects framed as an 8-byte length and the payload.

type rawFanout struct {
	rv      *fanoutRecv
	udp     *net.UDPConn
	tr      *quic.Transport
	ln      *quic.Listener
	conns   []*quic.Conn // server side, one per subscriber
	clients []rawClient
	bufs    [][]byte // per sender: framing and payload
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // receivers
}

type rawClient struct {
	udp  *net.UDPConn
	tr   *quic.Transport
	conn *quic.Conn
}

// rawQUICConfig has the values of moqnative's (unexported) quicConfig.
func rawQUICConfig() *quic.Config {
	return &quic.Config{
		EnableDatagrams:                  true,
		EnableStreamResetPartialDelivery: true,
		MaxIncomingUniStreams:            moqnative.MaxIncomingUniStreams,
		MaxIncomingStreams:               moqnative.MaxIncomingStreams,
		KeepAlivePeriod:                  moqnative.KeepAlivePeriod,
		MaxIdleTimeout:                   moqnative.MaxIdleTimeout,
		InitialStreamReceiveWindow:       moqnative.InitialStreamReceiveWindow,
		MaxStreamReceiveWindow:           moqnative.MaxStreamReceiveWindow,
		InitialConnectionReceiveWindow:   moqnative.InitialConnectionReceiveWindow,
		MaxConnectionReceiveWindow:       moqnative.MaxConnectionReceiveWindow,
	}
}

func newRawFanout(tb testing.TB, n int, rv *fanoutRecv) *rawFanout {
	tb.Helper()
	ss, err := moqnative.GenerateSelfSigned()
	if err != nil {
		tb.Fatal(err)
	}
	leaf := ss.Certificate.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(ss.DER); err != nil {
			tb.Fatal(err)
		}
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)

	r := &rawFanout{rv: rv}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	tb.Cleanup(r.close)
	if r.udp, err = net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}); err != nil {
		tb.Fatal(err)
	}
	r.tr = &quic.Transport{Conn: r.udp}
	r.ln, err = r.tr.Listen(&tls.Config{
		Certificates: []tls.Certificate{ss.Certificate},
		NextProtos:   []string{rawALPN},
		MinVersion:   tls.VersionTLS13,
	}, rawQUICConfig())
	if err != nil {
		tb.Fatal(err)
	}
	clientTLS := &tls.Config{RootCAs: roots, ServerName: "localhost", NextProtos: []string{rawALPN}, MinVersion: tls.VersionTLS13}
	for i := range n {
		if err := r.dial(i, clientTLS); err != nil {
			tb.Fatalf("raw subscriber %d: %v", i, err)
		}
	}
	return r
}

func (r *rawFanout) dial(i int, clientTLS *tls.Config) error {
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	udp, err := net.ListenUDP("udp", nil) // as moqnative.Dial does
	if err != nil {
		return err
	}
	c := rawClient{udp: udp, tr: &quic.Transport{Conn: udp}}
	if c.conn, err = c.tr.Dial(ctx, r.udp.LocalAddr(), clientTLS, rawQUICConfig()); err != nil {
		_ = c.tr.Close()
		_ = udp.Close()
		return err
	}
	r.clients = append(r.clients, c)
	sc, err := r.ln.Accept(ctx)
	if err != nil {
		return err
	}
	r.conns = append(r.conns, sc)
	r.bufs = append(r.bufs, make([]byte, 8+fanoutObjectSize))
	r.wg.Add(1)
	go r.acceptStreams(i, c.conn)
	return nil
}

func (r *rawFanout) acceptStreams(i int, c *quic.Conn) {
	defer r.wg.Done()
	for {
		str, err := c.AcceptUniStream(r.ctx)
		if err != nil {
			return
		}
		r.wg.Add(1)
		go r.readStream(i, str)
	}
}

var rawReadBufs = sync.Pool{New: func() any { b := make([]byte, 8+fanoutObjectSize); return &b }}

func (r *rawFanout) readStream(i int, str *quic.ReceiveStream) {
	defer r.wg.Done()
	bp := rawReadBufs.Get().(*[]byte)
	defer rawReadBufs.Put(bp)
	buf := *bp
	for {
		if _, err := io.ReadFull(str, buf[:8]); err != nil {
			return // io.EOF: the group is complete
		}
		n := binary.BigEndian.Uint64(buf[:8])
		if n > uint64(len(buf)-8) {
			str.CancelRead(1)
			r.rv.subs[i].bad.Add(1)
			return
		}
		if _, err := io.ReadFull(str, buf[8:8+n]); err != nil {
			return
		}
		r.rv.record(i, buf[8:8+n])
	}
}

func (r *rawFanout) recv() *fanoutRecv { return r.rv }

func (r *rawFanout) publish(ctx context.Context, n int, pace fanoutPace, start time.Time) error {
	errs := make([]error, len(r.conns))
	var wg sync.WaitGroup
	for i := range r.conns {
		wg.Go(func() { errs[i] = r.send(ctx, i, n, pace, start) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// send is the sender of connection i: it waits for its own subscriber only.
func (r *rawFanout) send(ctx context.Context, i, n int, pace fanoutPace, start time.Time) error {
	c, buf := r.conns[i], r.bufs[i]
	binary.BigEndian.PutUint64(buf[:8], fanoutObjectSize)
	var str *quic.SendStream
	for k := range n {
		id := k % fanoutGroupObjects
		if id == 0 {
			at, err := r.rv.release(ctx, pace, i, k/fanoutGroupObjects, start)
			if err != nil {
				return err
			}
			binary.LittleEndian.PutUint64(buf[8:], uint64(at))
			if str, err = c.OpenUniStreamSync(ctx); err != nil {
				return err
			}
			str.SetPriority(rawUrgency, false)
		}
		if _, err := str.Write(buf); err != nil {
			return err
		}
		if id == fanoutGroupObjects-1 || k == n-1 {
			if err := str.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *rawFanout) close() {
	for _, c := range r.clients {
		_ = c.conn.CloseWithError(0, "")
	}
	r.cancel()
	r.wg.Wait()
	for _, c := range r.conns {
		_ = c.CloseWithError(0, "")
	}
	for _, c := range r.clients {
		_ = c.tr.Close()
		_ = c.udp.Close()
	}
	if r.ln != nil {
		_ = r.ln.Close()
	}
	if r.tr != nil {
		_ = r.tr.Close()
	}
	if r.udp != nil {
		_ = r.udp.Close()
	}
}
