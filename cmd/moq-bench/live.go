package main

// Live mode (--slow N, --stalled N): one publisher's live track watched by
// three classes of viewers through the relay, to see whether a viewer on a
// bad link stays near the live edge and whether it hurts the others.
//
//   - fast: --subscribers viewers, dialled straight to the relay;
//   - slow: each behind its own shaping proxy (internal/netem) whose
//     downlink carries --slow-mbps with a --slow-queue-ms queue (tail
//     drop); their SUBSCRIBE carries --delivery-timeout and --group-order;
//   - stalled: dialled straight, but the application never reads one of
//     its data streams (the second one it accepts) past its first read, so
//     that stream's flow-control window fills and the relay's writes to it
//     block; same SUBSCRIBE options as the slow class.
//
// The track: --rate objects a second, --group-objects per group (a group
// on its own stream), objects of --object-size bytes or of the size that
// makes --rate objects carry --track-mbps, with object 0 of every group
// (the key frame) --key-ratio times larger.
//
// With --alone (default on) the fast viewers first watch the same track by
// themselves on the same relay, so that their latency in company is
// reported as a ratio to their latency alone, in the same invocation.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/internal/netem"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// liveParams are the live-mode flags.
type liveParams struct {
	slow            int
	slowMbps        float64
	slowQueueMs     int
	slowDelay       time.Duration
	slowLoss        float64
	deliveryTimeout time.Duration
	groupOrder      string
	stalled         int
	keyRatio        int
	trackMbps       float64
	alone           bool
	drain           time.Duration
	webTransport    bool
	progress        time.Duration
}

// stallStream is the data stream (1-based, in accept order) a stalled
// viewer leaves unread.
const stallStream = 2

// Viewer classes.
const (
	classFast    = "fast"
	classSlow    = "slow"
	classStalled = "stalled"
	classAlone   = "fast (alone)"
)

// liveResult is a live-mode invocation.
type liveResult struct {
	Relay           string  `json:"relay"`
	Transport       string  `json:"transport"`
	Duration        string  `json:"duration"`
	Rate            float64 `json:"rate"`
	GroupObjects    int     `json:"group_objects"`
	ObjectSize      int     `json:"object_size"`
	KeySize         int     `json:"key_object_size"`
	TrackMbps       float64 `json:"track_mbps"` // mean, key frames included
	Groups          int64   `json:"groups"`
	Objects         int64   `json:"objects"` // published, per viewer
	SlowMbps        float64 `json:"slow_mbps,omitempty"`
	SlowQueueBytes  int     `json:"slow_queue_bytes,omitempty"`
	SlowDelayMs     float64 `json:"slow_delay_ms,omitempty"`
	SlowLoss        float64 `json:"slow_loss,omitempty"`
	DeliveryTimeout string  `json:"delivery_timeout,omitempty"`
	GroupOrder      string  `json:"group_order"`
	// Classes: the fast viewers alone (with --alone), then fast, slow
	// and stalled in company.
	Classes []*classResult `json:"classes"`
	// Ratios: the fast viewers' latency in company over their latency
	// alone (p50, p99, max).
	Ratios map[string]float64 `json:"fast_vs_alone,omitempty"`
	// Peak RSS while every class watched: this process (clients, proxies,
	// an in-process relay) and the relay when its pid is known.
	BenchPeakRSSMB float64  `json:"bench_peak_rss_mb"`
	RelayPeakRSSMB *float64 `json:"relay_peak_rss_mb,omitempty"`
}

// classResult is what one class of viewers got.
type classResult struct {
	Class    string `json:"class"`
	Viewers  int    `json:"viewers"`
	Expected int64  `json:"expected_objects"` // published x viewers
	Received int64  `json:"received_objects"` // complete objects read
	Bad      int64  `json:"bad_objects,omitempty"`
	Skipped  int64  `json:"skipped_events,omitempty"`
	// Key frames: groups whose object 0 arrived, over groups published,
	// summed over the class's viewers.
	KeyFrames int64 `json:"key_frames"`
	Groups    int64 `json:"groups"`
	// Lag behind live when publishing ended: that instant minus the
	// release time of the newest object the viewer had read; p50 and max
	// over the class's viewers.
	LagP50ms float64 `json:"lag_p50_ms"`
	LagMaxms float64 `json:"lag_max_ms"`
	// Lag growth: lag gained per second over the second half of
	// publishing (0 for a viewer that keeps up), p50 and max.
	LagGrowthP50 float64 `json:"lag_growth_p50_s_per_s"`
	LagGrowthMax float64 `json:"lag_growth_max_s_per_s"`
	// Object latency (read time minus release time) over every object
	// the class read.
	P50ms float64 `json:"p50_ms"`
	P99ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
	// Data streams the relay opened to the class, and how many it reset.
	Streams      int64 `json:"streams"`
	StreamsReset int64 `json:"streams_reset"`
	// Slow class: the bytes its links carried down and the payload of
	// the complete objects among them; packets the links' queues dropped.
	LinkBytes      int64   `json:"link_bytes,omitempty"`
	PayloadBytes   int64   `json:"payload_bytes"`
	LinkDropped    int64   `json:"link_dropped_packets,omitempty"`
	LaterKeys      int64   `json:"later_key_frames,omitempty"` // stalled: key frames of groups started after the stall
	LaterGroups    int64   `json:"later_groups,omitempty"`
	StalledViewers int     `json:"stalled_viewers,omitempty"` // viewers that got the stream to stall
	StalledAtSecs  float64 `json:"stalled_at_s,omitempty"`
}

// phase is one run of the live track with some viewers.
type phase struct {
	p       *params
	lp      *liveParams
	run     string
	size    int
	keySize int
	perPub  int64
	groups  int64
	start   time.Time
	midAt   int64 // ns since epoch: half of the objects published
	midLags map[*viewer]int64
	end     int64 // ns since epoch: publishing ended

	pubD     *moqnative.Dialed
	pubSess  *moqtransport.Session
	track    *moqtransport.Track
	nsPub    *moqtransport.NamespacePublication
	viewers  []*viewer
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	complete atomic.Int64 // viewers that read every object
	allDone  chan struct{}
	doneOnce sync.Once
	fastLeft atomic.Int64 // fast viewers still missing objects
	fastDone chan struct{}
}

// viewer is one subscriber session.
type viewer struct {
	ph    *phase
	idx   int
	class string
	proxy *netem.Proxy
	d     *moqnative.Dialed
	sess  *moqtransport.Session
	conn  *countingConn

	mu        sync.Mutex
	received  int64
	bytes     int64
	bad       int64
	skipped   int64
	keys      []bool // by group
	newestDue int64  // ns since epoch, of the newest object read
	lat       []int64
}

func (ph *phase) trackName() wire.FullTrackName {
	return wire.FullTrackName{Namespace: wire.Namespace{"bench", ph.run, "live"}, Name: "t"}
}

// liveSizes returns the delta and key object sizes.
func liveSizes(p *params, lp *liveParams) (size, key int) {
	size = p.size
	if lp.trackMbps > 0 {
		size = max(int(lp.trackMbps*1e6/8/p.rate), 8)
	}
	return size, size * max(lp.keyRatio, 1)
}

func parseGroupOrder(s string) (wire.GroupOrder, error) {
	switch strings.ToLower(s) {
	case "", "publisher":
		return wire.GroupOrderPublisher, nil
	case "asc", "ascending":
		return wire.GroupOrderAscending, nil
	case "desc", "descending":
		return wire.GroupOrderDescending, nil
	}
	return 0, fmt.Errorf("--group-order %q: want publisher, asc or desc", s)
}

// runLive runs the live scenario: the fast viewers alone (with --alone),
// then every class together, on one relay.
func runLive(ctx context.Context, p params, lp liveParams, logw io.Writer) (*liveResult, error) {
	if p.pubs != 1 {
		return nil, errors.New("--slow and --stalled watch one live track: use --publishers 1")
	}
	if lp.slow < 0 || lp.stalled < 0 || lp.keyRatio < 1 || lp.slowQueueMs < 0 || lp.slowLoss < 0 || lp.slowLoss >= 1 {
		return nil, errors.New("--slow, --stalled, --slow-queue-ms must not be negative, --key-ratio at least 1, --slow-loss in [0,1)")
	}
	if lp.slow > 0 && lp.slowMbps <= 0 {
		return nil, errors.New("--slow-mbps must be positive")
	}
	order, err := parseGroupOrder(lp.groupOrder)
	if err != nil {
		return nil, err
	}
	size, key := liveSizes(&p, &lp)
	perPub := int64(p.rate * p.duration.Seconds())
	groups := (perPub + int64(p.groupObjects) - 1) / int64(p.groupObjects)
	res := &liveResult{
		Duration: p.duration.String(), Rate: p.rate, GroupObjects: p.groupObjects,
		ObjectSize: size, KeySize: key, Groups: groups, Objects: perPub,
		TrackMbps:  float64(size*(p.groupObjects-1)+key) * 8 / 1e6 * p.rate / float64(p.groupObjects),
		GroupOrder: order.String(),
	}
	if lp.slow > 0 {
		res.SlowMbps, res.SlowQueueBytes = lp.slowMbps, slowQueueBytes(&lp)
		res.SlowDelayMs, res.SlowLoss = float64(lp.slowDelay)/1e6, lp.slowLoss
	}
	if lp.deliveryTimeout > 0 {
		res.DeliveryTimeout = lp.deliveryTimeout.String()
	}
	mp, desc, stop, err := startRelay(ctx, p, logw)
	if err != nil {
		return nil, err
	}
	defer stop()
	if lp.webTransport && p.url == "" {
		mp.url = "https://" + strings.TrimPrefix(mp.url, "moqt://")
	}
	res.Relay = desc
	res.Transport = "quic"
	if strings.HasPrefix(strings.ToLower(mp.url), "https:") {
		res.Transport = "webtransport"
	}
	if lp.alone && p.subs > 0 {
		fmt.Fprintf(logw, "%s: %d fast viewer(s) alone for %v...\n", binaryName, p.subs, p.duration)
		cs, _, _, err := runPhase(ctx, &mp, &lp, order, map[string]int{classFast: p.subs}, logw)
		if err != nil {
			return nil, fmt.Errorf("fast viewers alone: %w", err)
		}
		cs[0].Class = classAlone
		res.Classes = append(res.Classes, cs...)
	}
	fmt.Fprintf(logw, "%s: %d fast, %d slow, %d stalled viewer(s) for %v...\n", binaryName, p.subs, lp.slow, lp.stalled, p.duration)
	cs, selfRSS, relRSS, err := runPhase(ctx, &mp, &lp, order, map[string]int{classFast: p.subs, classSlow: lp.slow, classStalled: lp.stalled}, logw)
	if err != nil {
		return nil, err
	}
	res.BenchPeakRSSMB = selfRSS
	if mp.relayPID != 0 {
		res.RelayPeakRSSMB = &relRSS
	}
	res.Classes = append(res.Classes, cs...)
	var alone, fast *classResult
	for _, c := range res.Classes {
		switch c.Class {
		case classAlone:
			alone = c
		case classFast:
			fast = c
		}
	}
	if alone != nil && fast != nil {
		res.Ratios = map[string]float64{}
		for k, v := range map[string][2]float64{"p50": {fast.P50ms, alone.P50ms}, "p99": {fast.P99ms, alone.P99ms}, "max": {fast.MaxMs, alone.MaxMs}} {
			if v[1] > 0 {
				res.Ratios[k] = v[0] / v[1]
			}
		}
	}
	return res, nil
}

func slowQueueBytes(lp *liveParams) int {
	return max(int(lp.slowMbps*1e6/8*float64(lp.slowQueueMs)/1000), 1500)
}

// runPhase publishes the track for the duration to the viewers counted in
// n (by class) and returns one result per class that has viewers, and the
// peak RSS (MB) of this process and of the relay (0 unless p.relayPID).
func runPhase(ctx context.Context, p *params, lp *liveParams, order wire.GroupOrder, n map[string]int, logw io.Writer) (cs []*classResult, selfRSS, relayRSS float64, err error) {
	ph := &phase{p: p, lp: lp, run: fmt.Sprintf("%d-%d", os.Getpid(), runSeq.Add(1)), allDone: make(chan struct{}), fastDone: make(chan struct{})}
	ph.size, ph.keySize = liveSizes(p, lp)
	ph.perPub = int64(p.rate * p.duration.Seconds())
	ph.groups = (ph.perPub + int64(p.groupObjects) - 1) / int64(p.groupObjects)
	ph.ctx, ph.cancel = context.WithCancel(ctx)
	defer ph.close()

	sctx, cancel := context.WithTimeout(ctx, setupTimeout(n[classFast]+n[classSlow]+n[classStalled]))
	err = ph.setup(sctx, order, n)
	cancel()
	if err != nil {
		return nil, 0, 0, fmt.Errorf("setup: %w", err)
	}
	rss := startRSS(p.relayPID)
	end, err := ph.publish(ctx, logw)
	if err != nil {
		rss.finish()
		return nil, 0, 0, err
	}
	lags := ph.lags(end)
	ph.drain(ctx)
	selfRSS, relayRSS = rss.finish()
	if ctx.Err() != nil {
		return nil, 0, 0, ctx.Err()
	}
	for _, class := range []string{classFast, classSlow, classStalled} {
		if n[class] > 0 {
			cs = append(cs, ph.classResult(class, lags))
		}
	}
	return cs, selfRSS, relayRSS, nil
}

func (ph *phase) setup(ctx context.Context, order wire.GroupOrder, n map[string]int) error {
	name := ph.trackName()
	ph.track = moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(ph.track)
	d, err := moqnative.Dial(ctx, ph.p.url, moqnative.ClientConfig{TLS: ph.p.tls})
	if err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	ph.pubD = d
	if ph.pubSess, err = moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority, Handler: tracks.Handler()}); err != nil {
		return fmt.Errorf("publisher: %w", err)
	}
	if ph.nsPub, err = ph.pubSess.PublishNamespace(ctx, name.Namespace, nil); err != nil {
		return fmt.Errorf("publisher: PUBLISH_NAMESPACE: %w", err)
	}
	var vs []*viewer
	for _, class := range []string{classFast, classSlow, classStalled} {
		for range n[class] {
			vs = append(vs, &viewer{ph: ph, idx: len(vs), class: class, keys: make([]bool, ph.groups)})
		}
	}
	ph.viewers = vs
	ph.fastLeft.Store(int64(n[classFast]))
	if n[classFast] == 0 {
		close(ph.fastDone)
	}
	return dialAll(ctx, len(vs), func(ctx context.Context, i int) error {
		if err := vs[i].connect(ctx, order); err != nil {
			return fmt.Errorf("%s viewer: %w", vs[i].class, err)
		}
		return nil
	})
}

// connect dials the relay (through a proxy for a slow viewer), subscribes
// and starts reading.
func (v *viewer) connect(ctx context.Context, order wire.GroupOrder) error {
	ph := v.ph
	dialURL, tlsConf := ph.p.url, ph.p.tls
	u, err := url.Parse(ph.p.url)
	if err != nil {
		return err
	}
	if v.class == classSlow {
		target, err := resolveUDP(ctx, u)
		if err != nil {
			return err
		}
		lp := ph.lp
		v.proxy, err = netem.New(target, netem.Config{
			Up: netem.Link{Delay: lp.slowDelay},
			Down: netem.Link{
				RateBitsPerSec: int64(lp.slowMbps * 1e6), QueueBytes: slowQueueBytes(lp),
				Delay: lp.slowDelay, Loss: lp.slowLoss, Seed: int64(v.idx + 1),
			},
		})
		if err != nil {
			return err
		}
		pu := *u
		pu.Host = v.proxy.Addr().String()
		dialURL = pu.String()
		if tlsConf.ServerName == "" {
			tlsConf.ServerName = u.Hostname()
		}
	}
	d, err := moqnative.Dial(ctx, dialURL, moqnative.ClientConfig{TLS: tlsConf})
	if err != nil {
		return err
	}
	v.d = d
	v.conn = &countingConn{Conn: d.Conn}
	if v.class == classStalled {
		v.conn.stallAt = stallStream
	}
	v.sess, err = moqtransport.Connect(ctx, v.conn, &moqtransport.Config{
		Path: d.Path, Authority: u.Host,
		Track: moqtransport.TrackConfig{MaxGroups: subscriberTrackGroups},
	})
	if err != nil {
		return err
	}
	opts := moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority}
	if v.class != classFast {
		opts.GroupOrder = order
		if lp := ph.lp; lp.deliveryTimeout > 0 {
			opts.Params = opts.Params.WithVarint(wire.ParamDeliveryTimeout, uint64(lp.deliveryTimeout/time.Millisecond))
		}
	}
	name := ph.trackName()
	sub, err := v.sess.Subscribe(ctx, name.Namespace, name.Name, opts)
	if err != nil {
		return fmt.Errorf("SUBSCRIBE: %w", err)
	}
	r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	ph.wg.Go(func() {
		defer r.Close()
		for {
			ev, err := r.Next(ph.ctx)
			if err != nil {
				return
			}
			switch ev.Kind {
			case moqtransport.EventObject:
				v.record(ev.Object)
			case moqtransport.EventSkipped:
				v.mu.Lock()
				v.skipped++
				v.mu.Unlock()
			}
		}
	})
	return nil
}

// resolveUDP returns the literal address of u's host and port.
func resolveUDP(ctx context.Context, u *url.URL) (string, error) {
	port := u.Port()
	if port == "" {
		port = moqnative.DefaultPort
	}
	host := u.Hostname()
	if _, err := strconv.Atoi(port); err != nil {
		return "", fmt.Errorf("relay URL %s: bad port", u.Redacted())
	}
	if net.ParseIP(host) == nil {
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
		if err != nil || len(ips) == 0 {
			return "", fmt.Errorf("resolving the relay's host %s for the slow viewers' proxies: %v", host, err)
		}
		host = ips[0].String()
		for _, ip := range ips {
			if ip.To4() != nil {
				host = ip.String()
				break
			}
		}
	}
	return net.JoinHostPort(host, port), nil
}

// record notes an object the viewer read.
func (v *viewer) record(o *moqtransport.Object) {
	now := int64(time.Since(epoch))
	ph := v.ph
	want := ph.size
	if o.ID == 0 {
		want = ph.keySize
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(o.Payload) != want || o.Group >= uint64(len(v.keys)) {
		v.bad++
		return
	}
	due := int64(binary.LittleEndian.Uint64(o.Payload))
	v.lat = append(v.lat, now-due)
	v.received++
	v.bytes += int64(len(o.Payload))
	if o.ID == 0 {
		v.keys[o.Group] = true
	}
	v.newestDue = max(v.newestDue, due)
	if v.received == ph.perPub {
		if ph.complete.Add(1) == int64(len(ph.viewers)) {
			ph.doneOnce.Do(func() { close(ph.allDone) })
		}
		if v.class == classFast && ph.fastLeft.Add(-1) == 0 {
			close(ph.fastDone)
		}
	}
}

// due is the release time of object k of the track.
func (ph *phase) due(k int64) time.Time {
	return ph.start.Add(time.Duration(float64(k) / ph.p.rate * float64(time.Second)))
}

// publish writes the track in real time and returns the end of publishing
// (ns since epoch). It prints progress every lp.progress.
func (ph *phase) publish(ctx context.Context, logw io.Writer) (int64, error) {
	ph.start = time.Now().Add(20 * time.Millisecond)
	g := int64(ph.p.groupObjects)
	var w *moqtransport.SubgroupWriter
	defer func() {
		if w != nil {
			_ = w.Close()
		}
	}()
	nextProgress := ph.start.Add(ph.lp.progress)
	for k := range ph.perPub {
		due := ph.due(k)
		if d := time.Until(due); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if k == ph.perPub/2 && k > 0 {
			ph.midAt = int64(time.Since(epoch))
			ph.midLags = ph.lags(ph.midAt)
		}
		if ph.lp.progress > 0 && !due.Before(nextProgress) {
			ph.printProgress(logw, due)
			nextProgress = nextProgress.Add(ph.lp.progress)
		}
		id := uint64(k % g)
		size := ph.size
		if id == 0 {
			var err error
			if w, err = ph.track.OpenSubgroup(uint64(k/g), 0, moqtransport.SubgroupOptions{EndOfGroup: true}); err != nil {
				return 0, fmt.Errorf("publisher: %w", err)
			}
			size = ph.keySize
		}
		payload := make([]byte, size)
		binary.LittleEndian.PutUint64(payload, uint64(due.Sub(epoch)))
		if err := w.WriteObject(id, payload, nil); err != nil {
			return 0, fmt.Errorf("publisher: %w", err)
		}
		if id == uint64(g-1) {
			err := w.Close()
			w = nil
			if err != nil {
				return 0, fmt.Errorf("publisher: %w", err)
			}
		}
	}
	ph.end = int64(time.Since(epoch))
	return ph.end, nil
}

// printProgress prints one line: per class, objects read and the worst
// lag behind live now.
func (ph *phase) printProgress(w io.Writer, now time.Time) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %4.0fs", binaryName, now.Sub(ph.start).Seconds())
	published := int64(now.Sub(ph.start).Seconds()*ph.p.rate) + 1
	for _, class := range []string{classFast, classSlow, classStalled} {
		var n int
		var got, worst int64
		for _, v := range ph.viewers {
			if v.class != class {
				continue
			}
			v.mu.Lock()
			got += v.received
			lag := int64(now.Sub(epoch)) - max(v.newestDue, int64(ph.start.Sub(epoch)))
			v.mu.Unlock()
			worst = max(worst, lag)
			n++
		}
		if n > 0 {
			fmt.Fprintf(&b, " | %s: %.0f%% of objects, lag up to %.1fs", class, 100*float64(got)/float64(published*int64(n)), float64(worst)/1e9)
		}
	}
	fmt.Fprintln(w, b.String())
}

// drain waits for the viewers to read what is still on its way: until
// every viewer has everything, or --drain has passed and the fast viewers
// have everything (they are not impaired; on a loaded machine they may
// simply be late), but no longer than --drain plus drainTimeout.
func (ph *phase) drain(ctx context.Context) {
	t := time.NewTimer(ph.lp.drain)
	defer t.Stop()
	select {
	case <-ph.allDone:
		return
	case <-t.C:
	case <-ctx.Done():
		return
	}
	t.Reset(drainTimeout)
	select {
	case <-ph.allDone:
	case <-ph.fastDone:
	case <-t.C:
	case <-ctx.Done():
	}
}

// lags returns every viewer's lag behind live at at (ns since epoch): at
// minus the release time of the newest object it has read.
func (ph *phase) lags(at int64) map[*viewer]int64 {
	out := make(map[*viewer]int64, len(ph.viewers))
	for _, v := range ph.viewers {
		v.mu.Lock()
		out[v] = at - max(v.newestDue, int64(ph.start.Sub(epoch)))
		v.mu.Unlock()
	}
	return out
}

func (ph *phase) classResult(class string, lags map[*viewer]int64) *classResult {
	c := &classResult{Class: class}
	var lat, lagv, growth []int64
	for _, v := range ph.viewers {
		if v.class != class {
			continue
		}
		c.Viewers++
		c.Expected += ph.perPub
		c.Groups += ph.groups
		v.mu.Lock()
		c.Received += v.received
		c.Bad += v.bad
		c.Skipped += v.skipped
		c.PayloadBytes += v.bytes
		stalledAt := v.conn.stalledAt.Load()
		for g, ok := range v.keys {
			if ok {
				c.KeyFrames++
			}
			if stalledAt != 0 && ph.due(int64(g)*int64(ph.p.groupObjects)).Sub(epoch) > time.Duration(stalledAt) {
				c.LaterGroups++
				if ok {
					c.LaterKeys++
				}
			}
		}
		lat = append(lat, v.lat...)
		v.mu.Unlock()
		lagv = append(lagv, lags[v])
		if span := ph.end - ph.midAt; ph.midLags != nil && span > 0 {
			// Lag gained over the second half, per second, in
			// millionths (quantile divides by 1e6).
			growth = append(growth, (lags[v]-ph.midLags[v])*1e6/span)
		}
		c.Streams += v.conn.streams.Load()
		c.StreamsReset += v.conn.resets.Load()
		if stalledAt != 0 {
			c.StalledViewers++
			c.StalledAtSecs = (time.Duration(stalledAt) - ph.start.Sub(epoch)).Seconds()
		}
		if v.proxy != nil {
			st := v.proxy.Stats()
			c.LinkBytes += st.Down.Bytes
			c.LinkDropped += st.Down.Dropped
		}
	}
	slices.Sort(lat)
	slices.Sort(lagv)
	c.P50ms, c.P99ms = quantile(lat, 0.5), quantile(lat, 0.99)
	if len(lat) > 0 {
		c.MaxMs = float64(lat[len(lat)-1]) / 1e6
	}
	slices.Sort(growth)
	c.LagGrowthP50 = quantile(growth, 0.5)
	if len(growth) > 0 {
		c.LagGrowthMax = float64(growth[len(growth)-1]) / 1e6
	}
	c.LagP50ms = quantile(lagv, 0.5)
	if len(lagv) > 0 {
		c.LagMaxms = float64(lagv[len(lagv)-1]) / 1e6
	}
	return c
}

func (ph *phase) close() {
	for _, v := range ph.viewers {
		if v.sess != nil {
			_ = v.sess.Close()
		}
		if v.d != nil {
			_ = v.d.Close()
		}
	}
	ph.cancel()
	ph.wg.Wait()
	for _, v := range ph.viewers {
		if v.proxy != nil {
			_ = v.proxy.Close()
		}
	}
	if ph.track != nil {
		ph.track.Close(nil)
	}
	if ph.pubSess != nil {
		_ = ph.pubSess.Close()
	}
	if ph.pubD != nil {
		_ = ph.pubD.Close()
	}
}

// countingConn counts the data streams a viewer's session accepts and the
// ones the relay reset; with stallAt set, the stallAt-th stream is read
// once (so the session learns its header) and then never again.
type countingConn struct {
	moqtransport.Conn
	stallAt   int64
	accepted  atomic.Int64
	streams   atomic.Int64
	resets    atomic.Int64
	stalledAt atomic.Int64 // ns since epoch, set when the stalled stream is accepted
}

func (c *countingConn) AcceptUniStream(ctx context.Context) (moqtransport.ReceiveStream, error) {
	str, err := c.Conn.AcceptUniStream(ctx)
	if err != nil {
		return nil, err
	}
	c.streams.Add(1)
	cs := &countedStream{ReceiveStream: str, c: c, stop: make(chan struct{})}
	if n := c.accepted.Add(1); n == c.stallAt {
		c.stalledAt.Store(int64(time.Since(epoch)))
		cs.stall = true
	}
	return cs, nil
}

// countedStream is a data stream of a countingConn.
type countedStream struct {
	moqtransport.ReceiveStream
	c     *countingConn
	reset atomic.Bool
	stall bool // after the first Read, block until CancelRead or the connection ends
	reads int
	stop  chan struct{}
	once  sync.Once
}

func (s *countedStream) Read(b []byte) (int, error) {
	if s.stall && s.reads > 0 {
		select {
		case <-s.stop:
		case <-s.c.Context().Done():
		}
		return 0, errors.New("moq-bench: stalled stream abandoned")
	}
	s.reads++
	n, err := s.ReceiveStream.Read(b)
	var se *moqtransport.StreamError
	if errors.As(err, &se) && se.Remote && s.reset.CompareAndSwap(false, true) {
		s.c.resets.Add(1)
	}
	return n, err
}

func (s *countedStream) CancelRead(code uint64) {
	s.once.Do(func() { close(s.stop) })
	s.ReceiveStream.CancelRead(code)
}
