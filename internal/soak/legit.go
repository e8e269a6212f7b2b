package soak

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// headerLen is the verified header of every payload: the sequence number,
// the due time (ns since the run's start) and a checksum-free pattern seed.
const headerLen = 16

// retryPause is how long a legitimate client waits before dialling again.
const retryPause = 500 * time.Millisecond

// legit is the legitimate load: publishers and subscribers.
type legit struct {
	cfg   *Config
	c     *counters
	run   string
	epoch time.Time
	wg    sync.WaitGroup
	ready sync.WaitGroup // one per subscriber and publisher, done at the first SUBSCRIBE_OK
}

// waitReady waits until every subscriber has subscribed to every track
// once, at most max.
func (l *legit) waitReady(ctx context.Context, max time.Duration) {
	done := make(chan struct{})
	go func() {
		l.ready.Wait()
		close(done)
	}()
	t := time.NewTimer(max)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-t.C:
	}
}

func (l *legit) namespace(i int) wire.Namespace {
	return wire.Namespace{"soak", l.run, strconv.Itoa(i)}
}

// dial opens a session to the relay; close ends it and its connection.
func dial(ctx context.Context, cfg *Config, path string, scfg moqtransport.Config) (*moqtransport.Session, func(), error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	u := cfg.URL
	if path != "" {
		u = withPath(u, path)
	}
	d, err := moqnative.Dial(dctx, u, moqnative.ClientConfig{TLS: cfg.TLS})
	if err != nil {
		return nil, func() {}, fmt.Errorf("dial: %w", err)
	}
	if scfg.Path == "" {
		scfg.Path = d.Path
	}
	if scfg.Authority == "" {
		scfg.Authority = d.Authority
	}
	if cfg.Token != "" {
		scfg.SetupParams = append(slices.Clone(scfg.SetupParams), tokenParam(cfg.Token))
	}
	s, err := moqtransport.Connect(dctx, d.Conn, &scfg)
	if err != nil {
		_ = d.Close()
		return nil, func() {}, fmt.Errorf("setup: %w", err)
	}
	var once sync.Once
	return s, func() {
		once.Do(func() {
			_ = s.Close()
			_ = d.Close()
		})
	}, nil
}

// withPath replaces the path of a moqt:// or https:// URL.
func withPath(u, path string) string {
	i := len(u)
	if p := indexAfterScheme(u); p >= 0 {
		i = p
	}
	return u[:i] + path
}

func indexAfterScheme(u string) int {
	s := 0
	for k := 0; k+2 < len(u); k++ {
		if u[k] == ':' && u[k+1] == '/' && u[k+2] == '/' {
			s = k + 3
			break
		}
	}
	for k := s; k < len(u); k++ {
		if u[k] == '/' || u[k] == '?' {
			return k
		}
	}
	return -1
}

// start announces every publisher's namespace (so that the subscribers
// find them) and starts the publishers and subscribers. An error means the
// relay cannot be used.
func (l *legit) start(ctx context.Context) error {
	type first struct {
		s     *moqtransport.Session
		close func()
		track *moqtransport.Track
	}
	firsts := make([]first, l.cfg.Publishers)
	for i := range firsts {
		s, closeFn, tr, err := l.connectPublisher(ctx, i)
		if err != nil {
			for _, f := range firsts[:i] {
				f.close()
			}
			return fmt.Errorf("publisher %d: %w", i, err)
		}
		firsts[i] = first{s, closeFn, tr}
	}
	for i, f := range firsts {
		l.wg.Go(func() { l.publisher(ctx, i, f.s, f.close, f.track) })
	}
	l.ready.Add(l.cfg.Subscribers * l.cfg.Publishers)
	for i := range l.cfg.Subscribers {
		l.wg.Go(func() { l.subscriber(ctx, i) })
	}
	return nil
}

func (l *legit) wait() { l.wg.Wait() }

func (l *legit) connectPublisher(ctx context.Context, i int) (*moqtransport.Session, func(), *moqtransport.Track, error) {
	ns := l.namespace(i)
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(tr)
	s, closeFn, err := dial(ctx, l.cfg, "", moqtransport.Config{Handler: tracks.Handler()})
	if err != nil {
		return nil, nil, nil, err
	}
	actx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := s.PublishNamespace(actx, ns, nil); err != nil {
		closeFn()
		return nil, nil, nil, fmt.Errorf("PUBLISH_NAMESPACE %s: %w", ns, err)
	}
	return s, closeFn, tr, nil
}

// publisher i writes objects at the configured rate until ctx ends; it
// dials again when its session ends, numbering on.
func (l *legit) publisher(ctx context.Context, i int, s *moqtransport.Session, closeFn func(), tr *moqtransport.Track) {
	defer func() {
		if tr != nil {
			tr.Close(nil)
		}
		closeFn()
	}()
	period := time.Duration(float64(time.Second) / l.cfg.Rate)
	tick := time.NewTicker(period)
	defer tick.Stop()
	g := uint64(l.cfg.GroupSize)
	var (
		seq uint64
		w   *moqtransport.SubgroupWriter
	)
	for {
		var done <-chan struct{}
		if s != nil {
			done = s.Done()
		}
		select {
		case <-ctx.Done():
			if w != nil {
				_ = w.Close()
			}
			return
		case <-done:
			l.c.err("publisher session ended: " + errKind(s.Err()))
			tr.Close(nil)
			closeFn()
			s, tr, w = nil, nil, nil
			continue
		case <-tick.C:
		}
		if s == nil {
			var err error
			var ns *moqtransport.Session
			ns, closeFn, tr, err = l.connectPublisher(ctx, i)
			if err != nil {
				if ctx.Err() == nil {
					l.c.err("publisher reconnect: " + errKind(err))
					sleep(ctx, retryPause)
				}
				closeFn = func() {}
				continue
			}
			s = ns
			seq = (seq/g + 1) * g // a new group
		}
		id := seq % g
		if id == 0 || w == nil {
			if w != nil {
				_ = w.Close()
			}
			var err error
			if w, err = tr.OpenSubgroup(seq/g, 0, moqtransport.SubgroupOptions{EndOfGroup: true}); err != nil {
				l.c.err("publisher open subgroup: " + errKind(err))
				w = nil
				seq = (seq/g + 1) * g
				continue
			}
		}
		if err := w.WriteObject(id, l.payload(seq), nil); err != nil {
			l.c.err("publisher write: " + errKind(err))
		} else {
			l.c.published.Add(1)
		}
		if id == g-1 {
			_ = w.Close()
			w = nil
		}
		seq++
	}
}

// payload is object seq: seq, due time, then bytes derived from both.
func (l *legit) payload(seq uint64) []byte {
	p := make([]byte, l.cfg.ObjectSize)
	binary.BigEndian.PutUint64(p, seq)
	binary.BigEndian.PutUint64(p[8:], uint64(time.Since(l.epoch)))
	fill(p)
	return p
}

// fill writes the pattern after the header.
func fill(p []byte) {
	x := binary.BigEndian.Uint64(p) ^ binary.BigEndian.Uint64(p[8:])
	for k := headerLen; k < len(p); k++ {
		p[k] = byte(x >> (8 * (k % 8)))
		if k%8 == 7 {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
}

// verify checks a payload and returns its due time.
func verify(p []byte, size int) (time.Duration, bool) {
	if len(p) != size {
		return 0, false
	}
	want := make([]byte, len(p))
	copy(want, p[:headerLen])
	fill(want)
	for k := headerLen; k < len(p); k++ {
		if p[k] != want[k] {
			return 0, false
		}
	}
	return time.Duration(binary.BigEndian.Uint64(p[8:])), true
}

// subscriber i subscribes to every publisher's track and reads until ctx
// ends, dialling again when its session ends.
func (l *legit) subscriber(ctx context.Context, i int) {
	ready := make([]sync.Once, l.cfg.Publishers)
	defer func() {
		for p := range ready {
			ready[p].Do(l.ready.Done)
		}
	}()
	for ctx.Err() == nil {
		s, closeFn, err := dial(ctx, l.cfg, "", moqtransport.Config{Track: moqtransport.TrackConfig{MaxGroups: 64}})
		if err != nil {
			if ctx.Err() == nil {
				l.c.err("subscriber dial: " + errKind(err))
				sleep(ctx, retryPause)
			}
			continue
		}
		var rwg sync.WaitGroup
		rctx, cancel := context.WithCancel(ctx)
		for p := range l.cfg.Publishers {
			rwg.Go(func() { l.follow(rctx, s, p, func() { ready[p].Do(l.ready.Done) }) })
		}
		select {
		case <-ctx.Done():
		case <-s.Done():
			if ctx.Err() == nil {
				l.c.err("subscriber session ended: " + errKind(s.Err()))
			}
		}
		cancel()
		closeFn()
		rwg.Wait()
		if ctx.Err() == nil {
			sleep(ctx, retryPause)
		}
	}
}

// follow keeps one subscription of s to publisher p's track and reads it;
// a subscription that ends is made again. subscribed is called after each
// SUBSCRIBE_OK.
func (l *legit) follow(ctx context.Context, s *moqtransport.Session, p int, subscribed func()) {
	ns := l.namespace(p)
	for ctx.Err() == nil {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		sub, err := s.Subscribe(sctx, ns, "t", moqtransport.SubscribeOptions{})
		cancel()
		if err != nil {
			if ctx.Err() == nil && s.Err() == nil {
				l.c.err("SUBSCRIBE: " + errKind(err))
				sleep(ctx, retryPause)
			}
			if s.Err() != nil {
				return
			}
			continue
		}
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		subscribed()
		for {
			ev, err := r.Next(ctx)
			if err != nil {
				break
			}
			switch ev.Kind {
			case moqtransport.EventObject:
				due, ok := verify(ev.Object.Payload, l.cfg.ObjectSize)
				if !ok {
					l.c.corrupt.Add(1)
					continue
				}
				l.c.delivered.Add(1)
				l.c.latency(time.Since(l.epoch) - due)
			case moqtransport.EventSkipped:
				l.c.skipped.Add(1)
			}
		}
		r.Close()
		if ctx.Err() == nil && s.Err() == nil {
			l.c.err("subscription ended: " + errKind(sub.Err()))
			sleep(ctx, retryPause)
		}
		_ = sub.Unsubscribe()
	}
}

// errKind names an error's class for counting: the draft error code when
// there is one, else the error's text.
func errKind(err error) string {
	var ce *moqtransport.ConnError
	var re *moqtransport.RequestError
	switch {
	case err == nil:
		return "no error"
	case errors.As(err, &ce):
		return fmt.Sprintf("session closed 0x%x %s", ce.Code, ce.Reason)
	case errors.As(err, &re):
		return fmt.Sprintf("%s 0x%x %s", re.Message, re.Code, re.Reason)
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// tokenParam is the AUTHORIZATION TOKEN setup parameter carrying tok.
func tokenParam(tok string) wire.KeyValue {
	kv, err := wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Value: []byte(tok)})
	if err != nil {
		panic(err) // a USE_VALUE token always encodes
	}
	return kv
}

// AllowAllToken is an HMAC-SHA256 JWT, valid until exp, that grants
// publishing and subscribing under every namespace (the "" claim) on a
// relay run with --auth-key holding secret.
func AllowAllToken(secret []byte, exp time.Time) (string, error) {
	c := relay.Claims{Publish: []string{""}, Subscribe: []string{""},
		RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(exp)}}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
}
