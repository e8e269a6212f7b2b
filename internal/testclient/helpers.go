package testclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// trackName is the track every scenario publishes, as in moq-rs.
const trackName = "test-track"

// ns returns a namespace of the scenario: moq-test/<scenario>-<random>,
// then parts.
func (e *env) ns(parts ...string) wire.Namespace {
	return append(wire.Namespace{"moq-test", e.name + "-" + e.id}, parts...)
}

// connect opens a new connection to the relay and runs the MoQT setup on
// it; role names the session in logs and errors. The session is closed
// when the scenario ends.
func (e *env) connect(ctx context.Context, role string, h moqtransport.Handler, tr moqtransport.Tracer) (*moqtransport.Session, error) {
	log := e.log.With("session", role)
	d, err := moqnative.Dial(ctx, e.opts.RelayURL, moqnative.ClientConfig{TLS: e.opts.TLS, QlogDir: e.opts.QlogDir, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("%s: connecting to %s: %w", role, e.opts.RelayURL, err)
	}
	s, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{
		Logger: log, Path: d.Path, Authority: d.Authority, Handler: h, Tracer: tr,
	})
	if err != nil {
		_ = d.Close()
		return nil, fmt.Errorf("%s: MoQT setup: %w", role, err)
	}
	log.Debug("connected", "protocol", d.Conn.Protocol().String(), "peer", s.PeerImplementation())
	e.onClose(func() {
		_ = s.Close()
		_ = d.Close()
	})
	return s, nil
}

// alive fails if the session has ended.
func alive(s *moqtransport.Session, role string) error {
	select {
	case <-s.Done():
		return fmt.Errorf("%s: the session ended: %w", role, s.Err())
	default:
		return nil
	}
}

// sleep waits for d or the end of ctx.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wantRequestError checks that err is the refusal msg with code.
func wantRequestError(err error, what string, msg wire.MessageType, code uint64, codeName string) error {
	if err == nil {
		return fmt.Errorf("%s succeeded; want %s %s", what, msg, codeName)
	}
	var re *moqtransport.RequestError
	if !errors.As(err, &re) {
		return fmt.Errorf("%s: want %s %s, got: %w", what, msg, codeName, err)
	}
	if re.Message != msg || re.Code != code {
		return fmt.Errorf("%s: want %s %s, got %w", what, msg, codeName, err)
	}
	return nil
}

// publisher serves its tracks and tells which ones the relay subscribed to.
type publisher struct {
	moqtransport.Tracks
	mu         sync.Mutex
	subscribed map[string]chan struct{} // by track name, closed at the first SUBSCRIBE
	// noFetch refuses FETCH with NOT_SUPPORTED, for the scenarios that
	// check the relay's cache: a relay that only forwards FETCH must not
	// pass them on the publisher's answers. (A moq-rs publisher ignores
	// FETCH, so a relay in front of one can answer only from its cache.)
	noFetch bool
}

func newPublisher(tracks ...*moqtransport.Track) *publisher {
	p := &publisher{subscribed: map[string]chan struct{}{}}
	for _, t := range tracks {
		p.Add(t)
		p.subscribed[t.Name().Name] = make(chan struct{})
	}
	return p
}

// handler serves the tracks (SUBSCRIBE, FETCH unless noFetch,
// TRACK_STATUS) and notes each SUBSCRIBE.
func (p *publisher) handler() moqtransport.Handler {
	h := p.Tracks.Handler()
	if p.noFetch {
		h.Fetch = func(context.Context, *moqtransport.Session, *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			return nil, moqtransport.FetchError(wire.FetchNotSupported, "this publisher answers no FETCH: the test checks the relay's cache")
		}
	}
	subscribe := h.Subscribe
	h.Subscribe = func(ctx context.Context, s *moqtransport.Session, req *wire.Subscribe) (*moqtransport.Track, error) {
		t, err := subscribe(ctx, s, req)
		if err == nil {
			p.mu.Lock()
			if ch := p.subscribed[req.Name]; ch != nil {
				select {
				case <-ch:
				default:
					close(ch)
				}
			}
			p.mu.Unlock()
		}
		return t, err
	}
	return h
}

// waitSubscribed waits until the relay has subscribed to the track.
func (p *publisher) waitSubscribed(ctx context.Context, name string) error {
	p.mu.Lock()
	ch := p.subscribed[name]
	p.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the relay did not subscribe to the publisher's track %s: %w", name, ctx.Err())
	}
}

// startPublisher connects a publisher of ns serving tracks and publishes
// ns.
func (e *env) startPublisher(ctx context.Context, role string, ns wire.Namespace, tracks ...*moqtransport.Track) (*moqtransport.Session, *publisher, *moqtransport.NamespacePublication, error) {
	return e.startPublisherOf(ctx, role, ns, newPublisher(tracks...))
}

// startCachePublisher is startPublisher for the scenarios that check the
// relay's cache: its publisher refuses FETCH (see publisher.noFetch).
func (e *env) startCachePublisher(ctx context.Context, role string, ns wire.Namespace, tracks ...*moqtransport.Track) (*moqtransport.Session, *publisher, *moqtransport.NamespacePublication, error) {
	h := newPublisher(tracks...)
	h.noFetch = true
	return e.startPublisherOf(ctx, role, ns, h)
}

func (e *env) startPublisherOf(ctx context.Context, role string, ns wire.Namespace, h *publisher) (*moqtransport.Session, *publisher, *moqtransport.NamespacePublication, error) {
	s, err := e.connect(ctx, role, h.handler(), nil)
	if err != nil {
		return nil, nil, nil, err
	}
	pub, err := s.PublishNamespace(ctx, ns, nil)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: PUBLISH_NAMESPACE %s: %w", role, ns, err)
	}
	e.log.Debug("namespace published", "session", role, "namespace", ns.String())
	return s, h, pub, nil
}

func newTrack(ns wire.Namespace, name string) *moqtransport.Track {
	return moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: name}, moqtransport.TrackConfig{})
}

// subscribe sends SUBSCRIBE (Largest Object) and starts reading the track
// from its first object.
func subscribe(ctx context.Context, s *moqtransport.Session, role string, ns wire.Namespace, name string) (*moqtransport.Subscription, *moqtransport.TrackReader, error) {
	sub, err := s.Subscribe(ctx, ns, name, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: SUBSCRIBE %s/%s: %w", role, ns, name, err)
	}
	r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	return sub, r, nil
}

// obj is an object as the scenarios compare them.
type obj struct {
	Group, ID uint64
	Payload   string
}

func (o obj) String() string { return fmt.Sprintf("{%d,%d %q}", o.Group, o.ID, o.Payload) }

func objString(os []obj) string {
	parts := make([]string, len(os))
	for i, o := range os {
		parts[i] = o.String()
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// payload is what the scenarios write as object (g, o): unique to the run.
func (e *env) payload(g, o uint64) string { return fmt.Sprintf("%s g%d o%d", e.id, g, o) }

// obj returns the object (g, o) as the scenario writes it.
func (e *env) obj(g, o uint64) obj { return obj{g, o, e.payload(g, o)} }

// writeGroup writes objects 0..n-1 of group g as subgroup 0 and, if end,
// closes the subgroup (FIN). It returns the open writer when !end.
func (e *env) writeGroup(t *moqtransport.Track, g, n uint64, end bool) ([]obj, *moqtransport.SubgroupWriter, error) {
	w, err := t.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{Priority: 128})
	if err != nil {
		return nil, nil, fmt.Errorf("opening group %d: %w", g, err)
	}
	var out []obj
	for o := range n {
		if err := w.WriteObject(o, []byte(e.payload(g, o)), nil); err != nil {
			return nil, nil, fmt.Errorf("writing object {%d,%d}: %w", g, o, err)
		}
		out = append(out, e.obj(g, o))
	}
	if !end {
		return out, w, nil
	}
	if err := w.Close(); err != nil {
		return nil, nil, fmt.Errorf("closing group %d: %w", g, err)
	}
	return out, nil, nil
}

// writeGroups writes groups with the given object counts, from group 0,
// each a closed subgroup.
func (e *env) writeGroups(t *moqtransport.Track, counts ...uint64) ([]obj, error) {
	var all []obj
	for g, n := range counts {
		os, _, err := e.writeGroup(t, uint64(g), n, true)
		if err != nil {
			return nil, err
		}
		all = append(all, os...)
	}
	return all, nil
}

// readObjects reads objects from r: n of them (then it returns), or with
// n < 0 all of them until the track ends normally.
func readObjects(ctx context.Context, r *moqtransport.TrackReader, n int) ([]obj, error) {
	var got []obj
	for n < 0 || len(got) < n {
		ev, err := r.Next(ctx)
		if err == io.EOF {
			if n < 0 {
				return got, nil
			}
			return got, fmt.Errorf("the track ended after %d of %d objects: %s", len(got), n, objString(got))
		}
		if err != nil {
			if ctx.Err() != nil {
				return got, fmt.Errorf("received %d objects %s, waiting for more: %w", len(got), objString(got), err)
			}
			return got, fmt.Errorf("the track failed after %d objects %s: %w", len(got), objString(got), err)
		}
		switch ev.Kind {
		case moqtransport.EventObject:
			o := ev.Object
			if o.Status != wire.StatusNormal {
				return got, fmt.Errorf("object {%d,%d} has status %v, want a normal object", o.Group, o.ID, o.Status)
			}
			got = append(got, obj{o.Group, o.ID, string(o.Payload)})
		case moqtransport.EventSkipped:
			return got, errors.New("the reader fell behind the track's cache and skipped objects")
		}
	}
	return got, nil
}

// sameObjects compares objects regardless of the order they came in
// (subgroups travel on streams of their own).
func sameObjects(what string, got, want []obj) error {
	g, w := slices.Clone(got), slices.Clone(want)
	for _, s := range [][]obj{g, w} {
		slices.SortFunc(s, func(a, b obj) int {
			if a.Group != b.Group {
				return cmpU(a.Group, b.Group)
			}
			return cmpU(a.ID, b.ID)
		})
	}
	if !slices.Equal(g, w) {
		return fmt.Errorf("%s: got %s, want %s", what, objString(g), objString(w))
	}
	return nil
}

// equalObjects compares objects in order.
func equalObjects(what string, got, want []obj) error {
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s: got %s, want %s (in this order)", what, objString(got), objString(want))
	}
	return nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// waitDone waits for a subscription to end and returns how it ended.
func waitDone(ctx context.Context, sub *moqtransport.Subscription, role string) error {
	select {
	case <-sub.Done():
		return sub.Err()
	case <-ctx.Done():
		return fmt.Errorf("%s: the subscription did not end: %w", role, ctx.Err())
	}
}
