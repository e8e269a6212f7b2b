package testclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Scenarios for what moq-rs's test client does not cover.

// fillCache publishes ns with track, has a subscriber (its own session)
// subscribe, writes groups of the given sizes, and waits until the
// subscriber has them all: the relay then holds them in its cache.
func fillCache(ctx context.Context, e *env, ns wire.Namespace, track *moqtransport.Track, counts ...uint64) ([]obj, error) {
	if _, _, _, err := e.startCachePublisher(ctx, "publisher", ns, track); err != nil {
		return nil, err
	}
	s, err := e.connect(ctx, "subscriber", moqtransport.Handler{}, nil)
	if err != nil {
		return nil, err
	}
	_, r, err := subscribe(ctx, s, "subscriber", ns, trackName)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	want, err := e.writeGroups(track, counts...)
	if err != nil {
		return nil, err
	}
	got, err := readObjects(ctx, r, len(want))
	if err != nil {
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	return want, sameObjects("subscriber received", got, want)
}

// readFetch reads a fetch's objects until its end.
func readFetch(ctx context.Context, f *moqtransport.Fetch) ([]obj, error) {
	var got []obj
	for {
		o, err := f.ReadObject(ctx)
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, fmt.Errorf("after %d objects %s: %w", len(got), objString(got), err)
		}
		if o.Status != wire.StatusNormal {
			return got, fmt.Errorf("object {%d,%d} has status %v, want a normal object", o.Group, o.ID, o.Status)
		}
		got = append(got, obj{o.Group, o.ID, string(o.Payload)})
	}
}

// standaloneFetch: three groups of three objects pass through the relay
// to a subscriber; then another session FETCHes {0,1} up to (not
// including) {2,2} and must get exactly those seven objects in ascending
// order, with FETCH_OK saying ascending and not the end of the track. The
// publisher refuses FETCH (NOT_SUPPORTED), so the objects must come from
// the relay's cache.
// A FETCH for a namespace nobody publishes gets FETCH_ERROR
// TRACK_DOES_NOT_EXIST.
func standaloneFetch(ctx context.Context, e *env) error {
	ns := e.ns()
	track := newTrack(ns, trackName)
	if _, err := fillCache(ctx, e, ns, track, 3, 3, 3); err != nil {
		return err
	}
	s, err := e.connect(ctx, "fetcher", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	start, end := wire.Location{Group: 0, Object: 1}, wire.Location{Group: 2, Object: 2}
	f, err := s.Fetch(ctx, moqtransport.FetchOptions{
		Priority: moqtransport.DefaultPriority, GroupOrder: wire.GroupOrderAscending,
		Namespace: ns, Name: trackName, Start: start, End: end,
	})
	if err != nil {
		return fmt.Errorf("fetcher: FETCH %s/%s from %v to %v: %w", ns, trackName, start, end, err)
	}
	defer func() { _ = f.Cancel() }()
	ok := f.OK()
	if ok.GroupOrder != wire.GroupOrderAscending {
		return fmt.Errorf("fetcher: FETCH_OK group order %v, want ascending as requested", ok.GroupOrder)
	}
	if ok.EndOfTrack {
		return errors.New("fetcher: FETCH_OK says end of track, but the track goes on")
	}
	got, err := readFetch(ctx, f)
	if err != nil {
		return fmt.Errorf("fetcher: %w", err)
	}
	want := []obj{e.obj(0, 1), e.obj(0, 2), e.obj(1, 0), e.obj(1, 1), e.obj(1, 2), e.obj(2, 0), e.obj(2, 1)}
	if err := equalObjects("fetcher received", got, want); err != nil {
		return err
	}

	missing := wire.Namespace{"nonexistent-" + e.id, "namespace"}
	f2, err := s.Fetch(ctx, moqtransport.FetchOptions{
		Priority: moqtransport.DefaultPriority, Namespace: missing, Name: trackName,
		End: wire.Location{Group: 1},
	})
	if err == nil {
		_ = f2.Cancel()
	}
	if err := wantRequestError(err, fmt.Sprintf("fetcher: FETCH %s/%s", missing, trackName), wire.TypeFetchError,
		uint64(wire.FetchTrackDoesNotExist), "TRACK_DOES_NOT_EXIST"); err != nil {
		return err
	}
	return alive(s, "fetcher")
}

// joiningFetch: groups 0 and 1 (three objects each) and objects 0 and 1
// of group 2 pass through the relay. A second subscriber joins: its
// SUBSCRIBE_OK must report the largest location {2,1}; a relative joining
// FETCH for the two groups before must return {0,0} to {2,1}, all eight
// objects in order, from the relay's cache (the publisher refuses FETCH);
// and the subscription must carry on from {2,2}: the next objects arrive
// on it, and none of the older ones.
func joiningFetch(ctx context.Context, e *env) error {
	ns := e.ns()
	track := newTrack(ns, trackName)
	if _, _, _, err := e.startCachePublisher(ctx, "publisher", ns, track); err != nil {
		return err
	}
	s1, err := e.connect(ctx, "subscriber", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	_, r1, err := subscribe(ctx, s1, "subscriber", ns, trackName)
	if err != nil {
		return err
	}
	defer r1.Close()
	before, err := e.writeGroups(track, 3, 3)
	if err != nil {
		return err
	}
	g2, w2, err := e.writeGroup(track, 2, 2, false)
	if err != nil {
		return err
	}
	before = append(before, g2...)
	got, err := readObjects(ctx, r1, len(before))
	if err != nil {
		return fmt.Errorf("subscriber: %w", err)
	}
	if err := sameObjects("subscriber received", got, before); err != nil {
		return err
	}

	s2, err := e.connect(ctx, "joiner", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	sub2, r2, err := subscribe(ctx, s2, "joiner", ns, trackName)
	if err != nil {
		return err
	}
	defer r2.Close()
	largest := wire.Location{Group: 2, Object: 1}
	if ok := sub2.OK(); !ok.ContentExists || ok.Largest != largest {
		return fmt.Errorf("joiner: SUBSCRIBE_OK content exists %v, largest %v; want largest %v", ok.ContentExists, ok.Largest, largest)
	}
	f, err := s2.Fetch(ctx, moqtransport.FetchOptions{
		Priority: moqtransport.DefaultPriority, GroupOrder: wire.GroupOrderAscending,
		Joining: sub2, JoiningStart: 2,
	})
	if err != nil {
		return fmt.Errorf("joiner: joining FETCH (2 groups before): %w", err)
	}
	defer func() { _ = f.Cancel() }()
	fetched, err := readFetch(ctx, f)
	if err != nil {
		return fmt.Errorf("joiner: joining FETCH: %w", err)
	}
	if err := equalObjects("joiner's FETCH received", fetched, before); err != nil {
		return err
	}

	if err := w2.WriteObject(2, []byte(e.payload(2, 2)), nil); err != nil {
		return fmt.Errorf("writing object {2,2}: %w", err)
	}
	if err := w2.Close(); err != nil {
		return err
	}
	g3, _, err := e.writeGroup(track, 3, 1, true)
	if err != nil {
		return err
	}
	after := append([]obj{e.obj(2, 2)}, g3...)
	got, err = readObjects(ctx, r2, len(after))
	if err != nil {
		return fmt.Errorf("joiner's subscription: %w", err)
	}
	return sameObjects("joiner's subscription received", got, after)
}

// nsWatcher serves the Handler of a SUBSCRIBE_NAMESPACE subscriber: it
// accepts the relay's PUBLISH_NAMESPACE and records it and
// PUBLISH_NAMESPACE_DONE.
type nsWatcher struct {
	mu        sync.Mutex
	published map[string]int
	done      map[string]int
	changed   chan struct{}
}

func newNSWatcher() *nsWatcher {
	return &nsWatcher{published: map[string]int{}, done: map[string]int{}, changed: make(chan struct{})}
}

func (w *nsWatcher) note(m map[string]int, ns wire.Namespace) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m[ns.String()]++
	close(w.changed)
	w.changed = make(chan struct{})
}

func (w *nsWatcher) PublishNamespace(_ context.Context, _ *moqtransport.Session, req *wire.PublishNamespace) error {
	w.note(w.published, req.Namespace)
	return nil
}

func (w *nsWatcher) PublishNamespaceDone(_ *moqtransport.Session, ns wire.Namespace) {
	w.note(w.done, ns)
}

func (w *nsWatcher) counts(ns wire.Namespace) (published, done int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.published[ns.String()], w.done[ns.String()]
}

// wait waits until what's count for ns reaches n.
func (w *nsWatcher) wait(ctx context.Context, what string, ns wire.Namespace, n int) error {
	for {
		w.mu.Lock()
		m := w.published
		if what == "PUBLISH_NAMESPACE_DONE" {
			m = w.done
		}
		got, changed := m[ns.String()], w.changed
		w.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("namespace subscriber: no %s for %s: %w", what, ns, ctx.Err())
		}
	}
}

// subscribeNamespace: a namespace under the prefix is published before the
// SUBSCRIBE_NAMESPACE, another after, and one outside the prefix. The
// subscriber must get PUBLISH_NAMESPACE for the two under the prefix (once
// each), PUBLISH_NAMESPACE_DONE when the second is withdrawn, nothing for
// the one outside; SUBSCRIBE_NAMESPACE for a longer and a shorter prefix
// must get NAMESPACE_PREFIX_OVERLAP; after UNSUBSCRIBE_NAMESPACE the same
// prefix can be subscribed again. (What the relay announces to that second
// subscription is not checked: whether a namespace announced under the
// first one is announced again is not settled by the draft.)
func subscribeNamespace(ctx context.Context, e *env) error {
	prefix := e.ns()
	before, after := e.ns("before"), e.ns("after")
	outside := wire.Namespace{"moq-test", e.name + "-outside-" + e.id}
	if _, _, _, err := e.startPublisher(ctx, "publisher", before); err != nil {
		return err
	}
	w := newNSWatcher()
	s, err := e.connect(ctx, "namespace subscriber", moqtransport.Handler{PublishNamespace: w.PublishNamespace, PublishNamespaceDone: w.PublishNamespaceDone}, nil)
	if err != nil {
		return err
	}
	nsSub, err := s.SubscribeNamespace(ctx, prefix, nil)
	if err != nil {
		return fmt.Errorf("namespace subscriber: SUBSCRIBE_NAMESPACE %s: %w", prefix, err)
	}
	if err := w.wait(ctx, "PUBLISH_NAMESPACE", before, 1); err != nil {
		return fmt.Errorf("%w (published before the SUBSCRIBE_NAMESPACE)", err)
	}

	ps, err := e.connect(ctx, "second publisher", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	if _, err := ps.PublishNamespace(ctx, outside, nil); err != nil {
		return fmt.Errorf("second publisher: PUBLISH_NAMESPACE %s: %w", outside, err)
	}
	pub, err := ps.PublishNamespace(ctx, after, nil)
	if err != nil {
		return fmt.Errorf("second publisher: PUBLISH_NAMESPACE %s: %w", after, err)
	}
	if err := w.wait(ctx, "PUBLISH_NAMESPACE", after, 1); err != nil {
		return fmt.Errorf("%w (published after the SUBSCRIBE_NAMESPACE)", err)
	}
	if err := pub.Close(); err != nil {
		return fmt.Errorf("second publisher: PUBLISH_NAMESPACE_DONE %s: %w", after, err)
	}
	if err := w.wait(ctx, "PUBLISH_NAMESPACE_DONE", after, 1); err != nil {
		return err
	}

	for _, p := range []wire.Namespace{before, prefix[:1]} {
		ns, err := s.SubscribeNamespace(ctx, p, nil)
		if err == nil {
			_ = ns.Close()
		}
		if err := wantRequestError(err, fmt.Sprintf("namespace subscriber: SUBSCRIBE_NAMESPACE %s while subscribed to %s", p, prefix),
			wire.TypeSubscribeNamespaceError, uint64(wire.NamespacePrefixOverlap), "NAMESPACE_PREFIX_OVERLAP"); err != nil {
			return err
		}
	}
	for _, c := range []struct {
		ns              wire.Namespace
		published, done int
	}{{before, 1, 0}, {after, 1, 1}, {outside, 0, 0}} {
		p, d := w.counts(c.ns)
		if p != c.published || d != c.done {
			return fmt.Errorf("namespace subscriber: for %s got %d PUBLISH_NAMESPACE and %d PUBLISH_NAMESPACE_DONE, want %d and %d",
				c.ns, p, d, c.published, c.done)
		}
	}
	if err := nsSub.Close(); err != nil {
		return fmt.Errorf("namespace subscriber: UNSUBSCRIBE_NAMESPACE: %w", err)
	}
	again, err := s.SubscribeNamespace(ctx, prefix, nil)
	if err != nil {
		return fmt.Errorf("namespace subscriber: SUBSCRIBE_NAMESPACE %s again after UNSUBSCRIBE_NAMESPACE: %w", prefix, err)
	}
	_ = again.Close()

	return alive(s, "namespace subscriber")
}

// publishTrack: the publisher pushes a track with PUBLISH (no
// PUBLISH_NAMESPACE) and gets PUBLISH_OK; a subscriber (another session)
// subscribes to it and gets exactly the objects written after, then the end
// of the track; the publication ends too.
func publishTrack(ctx context.Context, e *env) error {
	ns := e.ns()
	track := newTrack(ns, trackName)
	ps, err := e.connect(ctx, "publisher", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	pub, err := ps.Publish(ctx, track, moqtransport.PublishOptions{})
	if err != nil {
		return fmt.Errorf("publisher: PUBLISH %s/%s: %w", ns, trackName, err)
	}
	if ok := pub.OK(); !ok.Forward {
		return errors.New("publisher: PUBLISH_OK has Forward 0: the relay does not want the objects")
	}
	s, err := e.connect(ctx, "subscriber", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	if err := deliver(ctx, e, s, track, ns); err != nil {
		return err
	}
	select {
	case <-pub.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("publisher: the publication did not end with the track: %w", ctx.Err())
	}
}

// trackStatus: TRACK_STATUS for a namespace nobody publishes gets
// TRACK_STATUS_ERROR TRACK_DOES_NOT_EXIST. For a track with a subscriber
// it gets TRACK_STATUS_OK with the largest location, which follows the
// objects written. For a track nobody subscribes to, whose objects never
// reached the relay, it must still report the publisher's largest location.
func trackStatus(ctx context.Context, e *env) error {
	ns := e.ns()
	track := newTrack(ns, trackName)
	cold := newTrack(ns, "cold-track")
	if _, _, _, err := e.startPublisher(ctx, "publisher", ns, track, cold); err != nil {
		return err
	}
	if _, err := e.writeGroups(cold, 2, 1); err != nil {
		return err
	}
	s, err := e.connect(ctx, "status client", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	missing := wire.Namespace{"nonexistent-" + e.id, "namespace"}
	_, err = s.TrackStatus(ctx, missing, trackName)
	if err := wantRequestError(err, fmt.Sprintf("TRACK_STATUS %s/%s", missing, trackName), wire.TypeTrackStatusError,
		uint64(wire.SubscribeTrackDoesNotExist), "TRACK_DOES_NOT_EXIST"); err != nil {
		return err
	}

	status := func(name string, want wire.Location) error {
		st, err := s.TrackStatus(ctx, ns, name)
		if err != nil {
			return fmt.Errorf("TRACK_STATUS %s/%s: %w", ns, name, err)
		}
		if !st.ContentExists || st.Largest != want {
			return fmt.Errorf("TRACK_STATUS %s/%s: content exists %v, largest %v; want largest %v", ns, name, st.ContentExists, st.Largest, want)
		}
		return nil
	}

	sub, err := e.connect(ctx, "subscriber", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	_, r, err := subscribe(ctx, sub, "subscriber", ns, trackName)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, _, err := e.writeGroup(track, 0, 3, true); err != nil {
		return err
	}
	g1, w1, err := e.writeGroup(track, 1, 1, false)
	if err != nil {
		return err
	}
	if _, err := readObjects(ctx, r, 3+len(g1)); err != nil {
		return fmt.Errorf("subscriber: %w", err)
	}
	if err := status(trackName, wire.Location{Group: 1, Object: 0}); err != nil {
		return err
	}
	if err := w1.WriteObject(1, []byte(e.payload(1, 1)), nil); err != nil {
		return err
	}
	if _, err := readObjects(ctx, r, 1); err != nil {
		return fmt.Errorf("subscriber: %w", err)
	}
	if err := status(trackName, wire.Location{Group: 1, Object: 1}); err != nil {
		return err
	}
	if err := status("cold-track", wire.Location{Group: 1, Object: 0}); err != nil {
		return fmt.Errorf("%w (a track without subscribers: the relay has to ask the publisher)", err)
	}
	return alive(s, "status client")
}

// requestTracer watches the request-ID flow control of a session.
type requestTracer struct {
	mu      sync.Mutex
	maxSeen uint64 // the largest MAX_REQUEST_ID received (or SERVER_SETUP's grant)
	blocked []uint64
	// beyond is the ID of the first SUBSCRIBE_NAMESPACE sent that was not
	// below the grant received before it (draft-14 §9.5 forbids sending
	// it); beyondGrant is that grant. Set only when one was sent.
	beyond, beyondGrant uint64
	sentBeyond          bool
	changed             chan struct{}
	received            int // MAX_REQUEST_ID messages received
}

func newRequestTracer() *requestTracer { return &requestTracer{changed: make(chan struct{})} }

func (t *requestTracer) ControlMessage(created bool, m wire.Message) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch m := m.(type) {
	case *wire.MaxRequestID:
		if created {
			return
		}
		t.received++
		t.maxSeen = max(t.maxSeen, m.Max)
	case *wire.ServerSetup:
		if created {
			return
		}
		grant, _ := m.Params.Varint(wire.SetupParamMaxRequestID)
		t.maxSeen = max(t.maxSeen, grant)
	case *wire.SubscribeNamespace:
		if !created || t.sentBeyond || m.RequestID < t.maxSeen {
			return
		}
		t.sentBeyond, t.beyond, t.beyondGrant = true, m.RequestID, t.maxSeen
	case *wire.RequestsBlocked:
		if !created {
			return
		}
		t.blocked = append(t.blocked, m.Max)
	default:
		return
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

func (*requestTracer) SubgroupHeader(bool, *wire.SubgroupHeader)                     {}
func (*requestTracer) SubgroupObject(bool, *wire.SubgroupHeader, *wire.ObjectHeader) {}
func (*requestTracer) FetchHeader(bool, uint64)                                      {}
func (*requestTracer) FetchObject(bool, *wire.ObjectHeader)                          {}
func (*requestTracer) Datagram(bool, *wire.Datagram)                                 {}

// wait waits until cond holds (called with t.mu held).
func (t *requestTracer) wait(ctx context.Context, what string, cond func() bool) error {
	for {
		t.mu.Lock()
		ok, changed := cond(), t.changed
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		}
	}
}

// beyondErr reports a SUBSCRIBE_NAMESPACE sent past the grant.
func (t *requestTracer) beyondErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.sentBeyond {
		return nil
	}
	return fmt.Errorf("SUBSCRIBE_NAMESPACE with request ID %d sent while MAX_REQUEST_ID was %d", t.beyond, t.beyondGrant)
}

// maxFlowControlRequests bounds how many requests the scenario opens to
// exhaust the relay's grant.
const maxFlowControlRequests = 1000

// blockedWait is how long a request past the grant must stay waiting.
const blockedWait = 300 * time.Millisecond

// requestIDFlowControl opens SUBSCRIBE_NAMESPACE requests (each stays open
// until UNSUBSCRIBE_NAMESPACE) until the relay's MAX_REQUEST_ID grant is
// used up. The next request must wait (no ID past the grant goes out),
// and REQUESTS_BLOCKED with the grant must be sent; the relay must keep the
// session. A relay may answer REQUESTS_BLOCKED with a larger MAX_REQUEST_ID
// (draft-14 §9.6): then the waiting request must succeed, and the test
// passes there. Otherwise ending one request must make the relay send a
// larger MAX_REQUEST_ID, and the waiting request then succeeds.
func requestIDFlowControl(ctx context.Context, e *env) error {
	tr := newRequestTracer()
	s, err := e.connect(ctx, "client", moqtransport.Handler{}, tr)
	if err != nil {
		return err
	}
	grant, _ := s.PeerSetupParams().Varint(wire.SetupParamMaxRequestID)
	e.log.Info("the relay's initial grant", "max_request_id", grant)
	if n := (grant + 1) / 2; n > maxFlowControlRequests {
		return skip("the relay grants %d requests in SERVER_SETUP, more than the %d this test opens", n, maxFlowControlRequests)
	}
	current := func() uint64 {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return max(grant, tr.maxSeen)
	}
	var open []*moqtransport.NamespaceSubscription
	defer func() {
		for _, n := range open {
			_ = n.Close()
		}
	}()
	// Client request IDs are 0, 2, 4...: request i has ID 2i.
	for uint64(2*len(open)) < current() {
		if len(open) >= maxFlowControlRequests {
			return skip("the relay keeps raising its grant (now %d) while %d requests are open", current(), len(open))
		}
		p := e.ns("request", strconv.Itoa(len(open)))
		n, err := s.SubscribeNamespace(ctx, p, nil)
		if err != nil {
			return fmt.Errorf("SUBSCRIBE_NAMESPACE %s (request %d, within the grant of %d): %w", p, len(open)+1, current(), err)
		}
		open = append(open, n)
	}
	limit := current()
	e.log.Info("grant used up", "open_requests", len(open), "max_request_id", limit)

	type result struct {
		n   *moqtransport.NamespaceSubscription
		err error
	}
	waiting := make(chan result, 1)
	go func() {
		n, err := s.SubscribeNamespace(ctx, e.ns("request", "blocked"), nil)
		waiting <- result{n, err}
	}()
	if err := tr.wait(ctx, fmt.Sprintf("no REQUESTS_BLOCKED sent at MAX_REQUEST_ID %d", limit), func() bool { return len(tr.blocked) > 0 }); err != nil {
		return err
	}
	tr.mu.Lock()
	sent := tr.blocked[0]
	tr.mu.Unlock()
	if sent != limit {
		return fmt.Errorf("REQUESTS_BLOCKED carried %d, want the grant %d", sent, limit)
	}
	// draft-14 §9.6: the relay MAY answer REQUESTS_BLOCKED with a larger
	// MAX_REQUEST_ID. If it does, the waiting request goes out under the
	// new grant and must succeed; what the draft forbids is a request sent
	// past the grant, and no answer to it.
	grantedOnBlocked := func(r result) error {
		if err := tr.beyondErr(); err != nil {
			return err
		}
		if current() <= limit {
			if r.err == nil {
				_ = r.n.Close()
			}
			return fmt.Errorf("the request past the grant of %d completed without a new MAX_REQUEST_ID: %v", limit, r.err)
		}
		if r.err != nil {
			return fmt.Errorf("the request that waited for the grant (raised to %d after REQUESTS_BLOCKED): SUBSCRIBE_NAMESPACE: %w", current(), r.err)
		}
		open = append(open, r.n)
		e.log.Info("the relay raised its grant on REQUESTS_BLOCKED (draft-14 §9.6 allows it); the waiting request completed",
			"max_request_id", current())
		return alive(s, "client")
	}
	t := time.NewTimer(blockedWait)
	defer t.Stop()
	select {
	case r := <-waiting:
		return grantedOnBlocked(r)
	case <-s.Done():
		return fmt.Errorf("the relay ended the session after REQUESTS_BLOCKED: %w", s.Err())
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	if err := tr.beyondErr(); err != nil {
		return err
	}
	if current() > limit {
		// Raised while no request had ended, so in answer to
		// REQUESTS_BLOCKED (or unprompted, also allowed): the waiting
		// request is on its way.
		select {
		case r := <-waiting:
			return grantedOnBlocked(r)
		case <-ctx.Done():
			return fmt.Errorf("the request that waited did not complete after MAX_REQUEST_ID %d: %w", current(), ctx.Err())
		}
	}

	// End one request: the relay has to grant another.
	if err := open[0].Close(); err != nil {
		return fmt.Errorf("UNSUBSCRIBE_NAMESPACE: %w", err)
	}
	open = open[1:]
	if err := tr.wait(ctx, fmt.Sprintf("no MAX_REQUEST_ID above %d after a request ended", limit), func() bool { return tr.maxSeen > limit }); err != nil {
		return err
	}
	select {
	case r := <-waiting:
		if r.err != nil {
			return fmt.Errorf("the request that waited for the grant: SUBSCRIBE_NAMESPACE: %w", r.err)
		}
		open = append(open, r.n)
	case <-ctx.Done():
		return fmt.Errorf("the request that waited did not complete after MAX_REQUEST_ID %d: %w", current(), ctx.Err())
	}
	if err := tr.beyondErr(); err != nil {
		return err
	}
	e.log.Info("grant raised", "max_request_id", current())
	return alive(s, "client")
}

// goAway (manual): a publisher and a subscriber are connected and objects
// flow; then the relay must be drained (moq-relay: SIGTERM). Both sessions
// must get GOAWAY (with no URI, or a moqt:// or https:// one). After it, the
// relay keeps the open subscription going (an object written after GOAWAY
// arrives), and this client refuses new requests on the going-away session
// (ErrGoingAway). The client then ends its subscription and closes, as a
// migrating client does.
func goAway(ctx context.Context, e *env) error {
	ns := e.ns()
	track := newTrack(ns, trackName)
	ps, _, _, err := e.startPublisher(ctx, "publisher", ns, track)
	if err != nil {
		return err
	}
	s, err := e.connect(ctx, "subscriber", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	sub, r, err := subscribe(ctx, s, "subscriber", ns, trackName)
	if err != nil {
		return err
	}
	defer r.Close()
	first, w, err := e.writeGroup(track, 0, 1, false)
	if err != nil {
		return err
	}
	got, err := readObjects(ctx, r, 1)
	if err != nil {
		return fmt.Errorf("subscriber: %w", err)
	}
	if err := sameObjects("subscriber received", got, first); err != nil {
		return err
	}

	e.log.Info("waiting for GOAWAY: drain the relay now (moq-relay: SIGTERM)")
	if e.opts.GoAwayWait != nil {
		e.opts.GoAwayWait()
	}
	for _, c := range []struct {
		role string
		s    *moqtransport.Session
	}{{"subscriber", s}, {"publisher", ps}} {
		select {
		case <-c.s.GoAway():
		case <-c.s.Done():
			return fmt.Errorf("%s: the session ended without GOAWAY: %w", c.role, c.s.Err())
		case <-ctx.Done():
			return fmt.Errorf("%s: no GOAWAY (this test needs the relay to drain while it runs): %w", c.role, ctx.Err())
		}
		if uri := c.s.GoAwayURI(); uri != "" {
			u, err := url.Parse(uri)
			if err != nil || (u.Scheme != "moqt" && u.Scheme != "https") || u.Host == "" {
				return fmt.Errorf("%s: GOAWAY names %q, not a moqt:// or https:// URI", c.role, uri)
			}
		}
		e.log.Info("GOAWAY received", "session", c.role, "uri", c.s.GoAwayURI())
	}
	if _, err := s.TrackStatus(ctx, ns, trackName); !errors.Is(err, moqtransport.ErrGoingAway) {
		return fmt.Errorf("subscriber: a new request after GOAWAY got %v, want it refused locally (ErrGoingAway)", err)
	}

	// The open subscription goes on through the drain.
	if err := w.WriteObject(1, []byte(e.payload(0, 1)), nil); err != nil {
		return err
	}
	got, err = readObjects(ctx, r, 1)
	if err != nil {
		return fmt.Errorf("subscriber, after GOAWAY: %w", err)
	}
	if err := sameObjects("subscriber received after GOAWAY", got, []obj{e.obj(0, 1)}); err != nil {
		return err
	}
	_ = w.Close()
	if err := sub.Unsubscribe(); err != nil {
		return fmt.Errorf("subscriber: UNSUBSCRIBE: %w", err)
	}
	if err := alive(s, "subscriber"); err != nil {
		return err
	}
	return alive(ps, "publisher")
}
