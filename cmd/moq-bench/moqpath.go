package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// subscriberTrackGroups is the subscribers' track cache (MaxGroups): large
// enough that a reader late by a few groups on a loaded machine does not
// see its objects evicted (EventSkipped, counted as lost).
const subscriberTrackGroups = 128

// moqPath carries the objects through a MoQT relay: M publisher sessions
// (PUBLISH_NAMESPACE bench/<run>/<i>, track "t") and N subscribers, each
// subscribed to every publisher's track: thin ones (thin.go, the
// default), or full moq-go sessions reading through a TrackReader
// (--subscriber-kind session), which test the library end to end.
type moqPath struct {
	prm    *params
	rec    *recorder
	run    string // namespace field unique to this run
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // subscriber readers

	mu   sync.Mutex
	pubs []*moqPub
	subs []*moqSub
	thin []*thinConn
	// socks are the thin subscribers' sockets.
	socks *thinSockets
}

type moqPub struct {
	d     *moqnative.Dialed
	sess  *moqtransport.Session
	track *moqtransport.Track
	nsPub *moqtransport.NamespacePublication
	w     *moqtransport.SubgroupWriter // the open subgroup (publisher goroutine only)
}

type moqSub struct {
	d    *moqnative.Dialed
	sess *moqtransport.Session
}

func newMoqPath(prm *params, rec *recorder, run string) *moqPath {
	m := &moqPath{prm: prm, rec: rec, run: run, socks: &thinSockets{n: prm.clientSockets}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m
}

func (m *moqPath) name() string { return "moq-go" }

func (m *moqPath) trackName(i int) wire.FullTrackName {
	return wire.FullTrackName{Namespace: wire.Namespace{"bench", m.run, strconv.Itoa(i)}, Name: "t"}
}

func (m *moqPath) dial(ctx context.Context, handler moqtransport.Handler) (*moqnative.Dialed, *moqtransport.Session, error) {
	d, err := moqnative.Dial(ctx, m.prm.url, moqnative.ClientConfig{TLS: m.prm.tls})
	if err != nil {
		return nil, nil, err
	}
	s, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{
		Path: d.Path, Authority: d.Authority, Handler: handler,
		Track: moqtransport.TrackConfig{MaxGroups: subscriberTrackGroups},
	})
	if err != nil {
		_ = d.Close()
		return nil, nil, err
	}
	return d, s, nil
}

func (m *moqPath) setup(ctx context.Context) error {
	for i := range m.prm.pubs {
		p := &moqPub{track: moqtransport.NewTrack(m.trackName(i), moqtransport.TrackConfig{})}
		tracks := &moqtransport.Tracks{}
		tracks.Add(p.track)
		var err error
		if p.d, p.sess, err = m.dial(ctx, tracks.Handler()); err != nil {
			return fmt.Errorf("publisher %d: %w", i, err)
		}
		m.mu.Lock()
		m.pubs = append(m.pubs, p)
		m.mu.Unlock()
		if p.nsPub, err = p.sess.PublishNamespace(ctx, m.trackName(i).Namespace, nil); err != nil {
			return fmt.Errorf("publisher %d: PUBLISH_NAMESPACE: %w", i, err)
		}
	}
	if m.prm.subscriberKind == kindThin {
		return m.setupThin(ctx)
	}
	return dialAll(ctx, m.prm.subs, func(ctx context.Context, i int) error {
		d, s, err := m.dial(ctx, moqtransport.Handler{})
		if err != nil {
			return fmt.Errorf("subscriber %d: %w", i, err)
		}
		m.mu.Lock()
		m.subs = append(m.subs, &moqSub{d: d, sess: s})
		m.mu.Unlock()
		for j := range m.prm.pubs {
			n := m.trackName(j)
			sub, err := s.Subscribe(ctx, n.Namespace, n.Name, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
			if err != nil {
				return fmt.Errorf("subscriber %d: SUBSCRIBE %s: %w", i, n.Namespace, err)
			}
			r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
			m.wg.Add(1)
			go m.read(i, r)
		}
		return nil
	})
}

// setupThin dials the thin subscribers and subscribes each to every track.
func (m *moqPath) setupThin(ctx context.Context) error {
	target, err := newRelayTarget(m.prm.url, m.prm.tls, m.prm.keyExchange)
	if err != nil {
		return err
	}
	tracks := make([]wire.FullTrackName, m.prm.pubs)
	for j := range tracks {
		tracks[j] = m.trackName(j)
	}
	return dialAll(ctx, m.prm.subs, func(ctx context.Context, i int) error {
		_, err := m.joinThin(ctx, target, tracks, i, m.rec.recordAt)
		return err
	})
}

// joinThin dials one thin subscriber, subscribes it to tracks and starts
// its receiver (objects go to sink as subscriber i). It returns when every
// SUBSCRIBE is answered.
func (m *moqPath) joinThin(ctx context.Context, target *relayTarget, tracks []wire.FullTrackName, i int, sink objectSink) (*thinControl, error) {
	c, err := m.socks.dial(ctx, target.addr, target.tls)
	if err != nil {
		return nil, fmt.Errorf("subscriber %d: %w", i, err)
	}
	m.mu.Lock()
	m.thin = append(m.thin, c)
	m.mu.Unlock()
	tc, err := handshake(ctx, c, target.path, tracks)
	if err != nil {
		return nil, fmt.Errorf("subscriber %d: %w", i, err)
	}
	m.wg.Go(tc.run)
	tr := &thinReceiver{i: i, conn: c.conn, aliases: tc.aliases, maxObj: uint64(m.prm.size), sink: sink, bad: &m.rec.bad, wg: &m.wg, ctx: m.ctx}
	m.wg.Go(tr.run)
	return tc, nil
}

// read is subscriber i's application reading one subscription.
func (m *moqPath) read(i int, r *moqtransport.TrackReader) {
	defer m.wg.Done()
	defer r.Close()
	for {
		ev, err := r.Next(m.ctx)
		if err != nil {
			return
		}
		switch ev.Kind {
		case moqtransport.EventObject:
			m.rec.record(i, ev.Object.Payload)
		case moqtransport.EventSkipped:
			m.rec.skipped.Add(1)
		}
	}
}

// publish writes object k of publisher i, released at `at`.
func (m *moqPath) publish(i int, k int64, at int64) error {
	p := m.pubs[i]
	g := int64(m.prm.groupObjects)
	id := uint64(k % g)
	if id == 0 {
		var err error
		if p.w, err = p.track.OpenSubgroup(uint64(k/g), 0, moqtransport.SubgroupOptions{EndOfGroup: true}); err != nil {
			return err
		}
	}
	payload := make([]byte, m.prm.size)
	binary.LittleEndian.PutUint64(payload, uint64(at))
	if err := p.w.WriteObject(id, payload, nil); err != nil {
		return err
	}
	if id == uint64(g-1) {
		err := p.w.Close()
		p.w = nil
		return err
	}
	return nil
}

// endPublish closes the last subgroup of publisher i.
func (m *moqPath) endPublish(i int) {
	if p := m.pubs[i]; p.w != nil {
		_ = p.w.Close()
		p.w = nil
	}
}

// packetsReceived counts the thin subscribers' packets; session
// subscribers cannot be counted.
func (m *moqPath) packetsReceived() (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.subs) > 0 || len(m.thin) == 0 {
		return 0, false
	}
	return thinPackets(m.thin), true
}

func (m *moqPath) close() {
	m.mu.Lock()
	pubs, subs, thin := m.pubs, m.subs, m.thin
	m.mu.Unlock()
	for _, s := range subs {
		_ = s.sess.Close()
		_ = s.d.Close()
	}
	for _, c := range thin {
		_ = c.conn.CloseWithError(0, "")
	}
	m.cancel()
	m.wg.Wait()
	for _, c := range thin {
		c.close(0, "")
	}
	m.socks.close()
	for _, p := range pubs {
		p.track.Close(nil)
		if p.sess != nil {
			_ = p.sess.Close()
			_ = p.d.Close()
		}
	}
}

// dialAll runs f for 0..n-1, a few at a time, and returns the first error.
func dialAll(ctx context.Context, n int, f func(ctx context.Context, i int) error) error {
	const parallel = 16
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, parallel)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := f(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// setupTimeout bounds the dialing and subscribing of one path.
func setupTimeout(n int) time.Duration { return 30*time.Second + time.Duration(n)*100*time.Millisecond }
