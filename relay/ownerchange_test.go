package relay_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// writeOne writes one object, payload, as group g of tr.
func writeOne(t *testing.T, tr *moqtransport.Track, g uint64, payload string) {
	t.Helper()
	w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{Priority: 1, EndOfGroup: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteObject(0, []byte(payload), nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// wantFirstObject checks the payload of a subscription's next object.
func wantFirstObject(t *testing.T, ctx context.Context, who string, sub *moqtransport.Subscription, want string) {
	t.Helper()
	o, err := sub.ReadObject(ctx)
	if err != nil {
		t.Errorf("%s: %v, want an object %q", who, err, want)
		return
	}
	if string(o.Payload) != want {
		t.Errorf("%s read %q, want %q", who, o.Payload, want)
	}
}

// namespaceEvents returns a function that reads watch's next event and
// fails the test unless it is ns, active or withdrawn as told.
func namespaceEvents(t *testing.T, ctx context.Context, watch *moqtransport.NamespaceSubscription, ns wire.Namespace) func(active bool) {
	return func(active bool) {
		t.Helper()
		ev, err := watch.Next(ctx)
		if err != nil || !ev.Namespace.Equal(ns) || ev.Active != active {
			t.Fatalf("namespace event %+v, %v; want %v active=%v", ev, err, ns, active)
		}
	}
}

// TestNamespaceNewOwnerAsked: after a publisher withdraws its namespace
// (PUBLISH_NAMESPACE_DONE) and another session publishes it, a new
// subscriber of a track under it is served by the new owner, which the
// relay asks, not from the upstream subscription the relay still holds
// from the first publisher (that one goes on serving its subscriber, as
// draft-14 lets it). Before, the new subscriber shared the old
// subscription and got the previous owner's objects.
func TestNamespaceNewOwnerAsked(t *testing.T) {
	e := startRelay(t, "moqt")
	ctx := ctxFor(t)
	ns := wire.Namespace{"live"}
	// The watcher sees when the relay has taken the withdrawal.
	watch, err := e.connect("/", nil).SubscribeNamespace(ctx, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := namespaceEvents(t, ctx, watch, ns)
	publisher := func() (*moqtransport.NamespacePublication, *moqtransport.Track, *countingTracks) {
		t.Helper()
		h := &countingTracks{}
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
		h.Add(tr)
		pub, err := e.connect("/", h).PublishNamespace(ctx, ns, nil)
		if err != nil {
			t.Fatal(err)
		}
		return pub, tr, h
	}
	pub1, tr1, h1 := publisher()
	next(true)
	v1, err := e.connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := pub1.Close(); err != nil {
		t.Fatal(err)
	}
	next(false)
	_, tr2, h2 := publisher()
	v2, err := e.connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatalf("a subscriber after the namespace changed owner: %v", err)
	}
	if n1, n2 := h1.subscribes.Load(), h2.subscribes.Load(); n1 != 1 || n2 != 1 {
		t.Errorf("SUBSCRIBEs: the first owner got %d, the new one %d; want 1 each", n1, n2)
	}
	writeOne(t, tr1, 0, "from P1")
	writeOne(t, tr2, 0, "from P2")
	wantFirstObject(t, ctx, "the first owner's subscriber", v1, "from P1")
	wantFirstObject(t, ctx, "the new owner's subscriber", v2, "from P2")
}

// doneTracer records the PUBLISH_DONE messages a session receives.
type doneTracer struct {
	mu    sync.Mutex
	dones []wire.PublishDone
}

func (d *doneTracer) ControlMessage(created bool, m wire.Message) {
	if pd, ok := m.(*wire.PublishDone); ok && !created {
		d.mu.Lock()
		d.dones = append(d.dones, *pd)
		d.mu.Unlock()
	}
}

func (d *doneTracer) received() []wire.PublishDone {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]wire.PublishDone(nil), d.dones...)
}

func (*doneTracer) SubgroupHeader(bool, *wire.SubgroupHeader)                     {}
func (*doneTracer) SubgroupObject(bool, *wire.SubgroupHeader, *wire.ObjectHeader) {}
func (*doneTracer) FetchHeader(bool, uint64)                                      {}
func (*doneTracer) FetchObject(bool, *wire.ObjectHeader)                          {}
func (*doneTracer) Datagram(bool, *wire.Datagram)                                 {}

// TestNamespaceTokenExpiryEndsItsTracks: what a namespace's own token
// granted ends at its exp, the tracks the relay subscribed to under it
// included: their subscribers get PUBLISH_DONE TRACK_ENDED, and the relay
// UNSUBSCRIBEs from the publisher. Before, only the namespace was
// withdrawn, and the subscription went on with the expired grant.
func TestNamespaceTokenExpiryEndsItsTracks(t *testing.T) {
	ctx := ctxFor(t)
	hour := time.Now().Add(time.Hour)
	tracer := &doneTracer{}
	sn := subscribedUnderShortNamespace(t, ctx, tracer)
	ns, exp, h, tr, pubSess, nsPub, subSess, sub := sn.ns, sn.exp, sn.h, sn.tr, sn.pubSess, sn.nsPub, sn.subSess, sn.sub
	wctx, cancel := context.WithDeadline(ctx, exp.Add(5*time.Second))
	defer cancel()
	select {
	case <-sub.Done():
	case <-wctx.Done():
		t.Fatal("the subscription outlived the token of the namespace it was served under")
	}
	if now := time.Now(); now.Before(exp) {
		t.Errorf("the subscription ended %v before the namespace's exp", exp.Sub(now))
	}
	if d := tracer.received(); len(d) != 1 || d[0].StatusCode != wire.DoneTrackEnded {
		t.Errorf("the subscriber got PUBLISH_DONE %+v, want one TRACK_ENDED", d)
	}
	waitFor(t, "the relay to unsubscribe upstream", func() bool { return h.ended.Load() == 1 })
	<-nsPub.Done()
	wantRequestCode(t, "the expired namespace", nsPub.Err(), uint64(wire.NamespaceExpiredAuthToken))

	// A new token publishes it again, and a new subscriber is served
	// from a new upstream subscription.
	if _, err := pubSess.PublishNamespace(ctx, ns, userToken(t, []string{"short"}, nil, hour)); err != nil {
		t.Fatal(err)
	}
	again, err := subSess.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{"short"}, hour)})
	if err != nil {
		t.Fatalf("a subscriber after the namespace was published again: %v", err)
	}
	if n := h.subscribes.Load(); n != 2 {
		t.Errorf("the publisher got %d SUBSCRIBEs, want 2", n)
	}
	writeOne(t, tr, 5, "again")
	wantFirstObject(t, ctx, "the new subscriber", again, "again")
}

// TestNamespaceBackToFirstOwner: a namespace that goes from publisher X
// to Y and back to X while X's first subscription still serves a
// subscriber is served by that subscription again: X is asked one
// SUBSCRIBE for the track, not a second one for a track it still serves
// to the relay (draft-14 §9.7), which moqtransport takes for a protocol
// violation and closes the relay's session with. Before, the relay found
// only Y's subscription under the track's name, displaced it and asked X
// again.
func TestNamespaceBackToFirstOwner(t *testing.T) {
	e := startRelay(t, "moqt")
	ctx := ctxFor(t)
	ns := wire.Namespace{"live"}
	watch, err := e.connect("/", nil).SubscribeNamespace(ctx, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := namespaceEvents(t, ctx, watch, ns)
	session := func() (*moqtransport.Session, *moqtransport.Track, *countingTracks) {
		h := &countingTracks{}
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
		h.Add(tr)
		return e.connect("/", h), tr, h
	}
	subscribe := func(who string) *moqtransport.Subscription {
		t.Helper()
		sub, err := e.connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		return sub
	}
	x, trX, hX := session()
	pubX, err := x.PublishNamespace(ctx, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	next(true)
	s1 := subscribe("a subscriber of X")
	if err := pubX.Close(); err != nil {
		t.Fatal(err)
	}
	next(false)
	y, trY, hY := session()
	pubY, err := y.PublishNamespace(ctx, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	next(true)
	s2 := subscribe("a subscriber of Y")
	if err := pubY.Close(); err != nil {
		t.Fatal(err)
	}
	next(false)
	if _, err := x.PublishNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	next(true)
	s3 := subscribe("a subscriber after the namespace came back to X")
	if n, m := hX.subscribes.Load(), hY.subscribes.Load(); n != 1 || m != 1 {
		t.Errorf("SUBSCRIBEs: X got %d, Y %d; want 1 each", n, m)
	}
	writeOne(t, trX, 0, "from X")
	writeOne(t, trY, 0, "from Y")
	wantFirstObject(t, ctx, "X's first subscriber", s1, "from X")
	wantFirstObject(t, ctx, "Y's subscriber", s2, "from Y")
	wantFirstObject(t, ctx, "X's second subscriber", s3, "from X")
	if err := x.Err(); err != nil {
		t.Errorf("X's session ended: %v", err)
	}
}

// TestPreviousOwnerAnswersNoStatusOrFetch: TRACK_STATUS and FETCH are
// routed as SUBSCRIBE is (§9.20). Once publisher X of /room has
// withdrawn its namespace, a /room request for its track goes to Z, the
// unscoped publisher a SUBSCRIBE would reach, not to the track the relay
// still relays from X for its subscriber. Before, the TRACK_STATUS got
// X's largest location and the FETCH X's objects from that track's
// cache, and Z was never asked.
func TestPreviousOwnerAnswersNoStatusOrFetch(t *testing.T) {
	e := startRelay(t, "moqt")
	ctx := ctxFor(t)
	ns := wire.Namespace{"live"}
	watch, err := e.connect("/room", nil).SubscribeNamespace(ctx, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := namespaceEvents(t, ctx, watch, ns)
	hX := &countingTracks{}
	trX := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
	hX.Add(trX)
	pubX, err := e.connect("/room", hX).PublishNamespace(ctx, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	next(true)
	s1, err := e.connect("/room", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeOne(t, trX, 0, "from X")
	wantFirstObject(t, ctx, "X's subscriber", s1, "from X")
	if err := pubX.Close(); err != nil {
		t.Fatal(err)
	}
	next(false)
	_, trZ, hZ := e.publisher("/", ns, "t")
	write(t, trZ, 0, 3, 2)

	client := e.connect("/room", nil)
	st, err := client.TrackStatus(ctx, ns, "t")
	if err != nil {
		t.Fatalf("TRACK_STATUS in /room after X withdrew: %v", err)
	}
	if st.Largest != (wire.Location{Group: 2, Object: 1}) {
		t.Errorf("TRACK_STATUS_OK largest %v, want Z's {2 1}", st.Largest)
	}
	if n := hZ.statuses.Load(); n != 1 {
		t.Errorf("Z got %d TRACK_STATUSes, want 1", n)
	}
	f, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "t",
		Start: wire.Location{Group: 0, Object: 0}, End: wire.Location{Group: 0, Object: 2}})
	if err != nil {
		t.Fatalf("FETCH in /room after X withdrew: %v", err)
	}
	got, err := fetchAll(ctx, f)
	if err != io.EOF {
		t.Fatal(err)
	}
	if want := []string{"0/0=0/0", "0/1=0/1"}; !slices.Equal(got, want) {
		t.Errorf("fetched %q, want Z's %q", got, want)
	}
	if n := hZ.fetches.Load(); n != 1 {
		t.Errorf("Z got %d FETCHes, want 1", n)
	}
}

// TestCloseCancelsDisplacedUpstream: Relay.Close cancels every upstream
// SUBSCRIBE still waiting for its answer, one whose namespace changed
// owner meanwhile included: its waiting subscriber is answered at once.
// Before, Close cancelled only the tracks its scopes named, and the
// subscriber of silent publisher X's track, displaced by Y's, waited until
// X's session ended or UpstreamTimeout.
func TestCloseCancelsDisplacedUpstream(t *testing.T) {
	e := startRelayWith(t, "moqt", relay.Config{UpstreamTimeout: time.Minute})
	ctx := ctxFor(t)
	ns := wire.Namespace{"live"}
	watch, err := e.connect("/", nil).SubscribeNamespace(ctx, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	next := namespaceEvents(t, ctx, watch, ns)
	asked := make(chan struct{}, 1)
	silent := handlerFunc(moqtransport.Handler{
		Subscribe: func(ctx context.Context, _ *moqtransport.Session, _ *wire.Subscribe) (*moqtransport.Track, error) {
			asked <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		},
	})
	pubX, err := e.connect("/", silent).PublishNamespace(ctx, ns, nil)
	if err != nil {
		t.Fatal(err)
	}
	next(true)
	first := make(chan error, 1)
	s1 := e.connect("/", nil)
	go func() {
		_, err := s1.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		first <- err
	}()
	select {
	case <-asked:
	case <-ctx.Done():
		t.Fatal("X was not asked")
	}
	if err := pubX.Close(); err != nil {
		t.Fatal(err)
	}
	next(false)
	e.publisher("/", ns, "t")
	if _, err := e.connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	r := e.rs.Relay
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		r.Close() // returns once the sessions end (below)
	}()
	select {
	case err := <-first:
		if err == nil {
			t.Error("the silent publisher's subscriber was served")
		}
	case <-time.After(time.Second):
		t.Error("Relay.Close left the subscriber of a displaced upstream SUBSCRIBE waiting")
	}
	e.rs.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Relay.Close did not return once the sessions ended")
	}
}

// heldCoordinator holds each Register until release is closed, then
// refuses it: another relay serves the namespace. It finds nothing.
type heldCoordinator struct {
	entered chan struct{}
	release chan struct{}
}

func (c *heldCoordinator) Register(ctx context.Context, _ string, ns wire.Namespace) (relay.Registration, error) {
	c.entered <- struct{}{}
	select {
	case <-c.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return nil, fmt.Errorf("%w: %s is held by moqt://elsewhere", relay.ErrServedElsewhere, ns)
}

func (c *heldCoordinator) Lookup(context.Context, string, wire.Namespace) (string, error) {
	return "", relay.ErrNotFound
}

// TestNamespaceServesNothingUntilClaimed: with a Coordinator, a SUBSCRIBE
// for a namespace whose registration the coordinator has not answered yet
// waits for the answer, and the coordinator's refusal leaves it routed as
// if the namespace had never been published (TRACK_DOES_NOT_EXIST here):
// the publisher is never asked. Before, the namespace served requests
// while it was claimed, and a subscription it served went on after the
// coordinator gave the namespace to another relay.
func TestNamespaceServesNothingUntilClaimed(t *testing.T) {
	logs := &logBuffer{}
	coord := &heldCoordinator{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := startRelayWith(t, "moqt", relay.Config{Coordinator: coord, Node: "moqt://here",
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := ctxFor(t)
	ns := wire.Namespace{"live"}
	h := &countingTracks{}
	h.Add(moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{}))
	pub := e.connect("/", h)
	published := make(chan error, 1)
	go func() {
		_, err := pub.PublishNamespace(ctx, ns, nil)
		published <- err
	}()
	select {
	case <-coord.entered:
	case <-ctx.Done():
		t.Fatal("the relay did not register the namespace")
	}
	s := e.connect("/", nil)
	subscribed := make(chan error, 1)
	go func() {
		_, err := s.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		subscribed <- err
	}()
	const waiting = "a request waits for its namespace's claim with the coordinator"
	waitFor(t, "the SUBSCRIBE to wait for the claim", func() bool { return logs.count(t, waiting) > 0 })
	close(coord.release)
	if err := <-published; !errors.Is(err, moqtransport.NamespaceError(wire.NamespaceUnauthorized, "")) {
		t.Errorf("PUBLISH_NAMESPACE refused by the coordinator: %v, want UNAUTHORIZED", err)
	}
	if err := <-subscribed; !errors.Is(err, moqtransport.ErrTrackNotFound) {
		t.Errorf("SUBSCRIBE that waited for a refused claim: %v, want TRACK_DOES_NOT_EXIST", err)
	}
	if n := h.subscribes.Load(); n != 0 {
		t.Errorf("the publisher whose claim was refused got %d SUBSCRIBEs, want 0", n)
	}
}

// TestFetchWaitsForPushedTrackClaim: with a Coordinator, a FETCH of a
// track pushed with PUBLISH waits for the track's claim, as SUBSCRIBE and
// TRACK_STATUS do, and a refused claim leaves the track unknown: the FETCH
// was answered from the pushed track's cache while the coordinator could
// still give the namespace to another relay.
func TestFetchWaitsForPushedTrackClaim(t *testing.T) {
	logs := &logBuffer{}
	coord := &heldCoordinator{entered: make(chan struct{}, 1), release: make(chan struct{})}
	e := startRelayWith(t, "moqt", relay.Config{Coordinator: coord, Node: "moqt://here",
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	ctx := ctxFor(t)
	name := wire.FullTrackName{Namespace: wire.Namespace{"pushed"}, Name: "t"}
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	pub := e.connect("/", nil)
	published := make(chan error, 1)
	go func() {
		_, err := pub.Publish(ctx, tr, moqtransport.PublishOptions{})
		published <- err
	}()
	select {
	case <-coord.entered:
	case <-ctx.Done():
		t.Fatal("the relay did not register the pushed track's namespace")
	}
	write(t, tr, 0, 1, 3)
	s := e.connect("/", nil)
	fetched := make(chan error, 1)
	go func() {
		f, err := s.Fetch(ctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, End: wire.Location{Group: 1}})
		if err == nil {
			_ = f.Cancel()
		}
		fetched <- err
	}()
	const waiting = "a FETCH waits for its pushed track's claim with the coordinator"
	waitFor(t, "the FETCH to wait for the claim", func() bool { return logs.count(t, waiting) > 0 })
	close(coord.release)
	if err := <-published; err == nil {
		t.Error("PUBLISH refused by the coordinator: accepted")
	}
	if err := <-fetched; !errors.Is(err, moqtransport.FetchError(wire.FetchTrackDoesNotExist, "")) {
		t.Errorf("FETCH that waited for a refused claim: %v, want TRACK_DOES_NOT_EXIST", err)
	}
}

// TestWithdrawnNamespaceTracksEndAtTokenExpiry: a namespace withdrawn
// (PUBLISH_NAMESPACE_DONE) before its own token's exp keeps serving the
// subscriptions it has, as draft-14 lets it, but only until exp: the
// withdrawal stopped the expiry, and its tracks outlived the token.
func TestWithdrawnNamespaceTracksEndAtTokenExpiry(t *testing.T) {
	ctx := ctxFor(t)
	sn := subscribedUnderShortNamespace(t, ctx, nil)
	exp, h, tr, nsPub, sub := sn.exp, sn.h, sn.tr, sn.nsPub, sn.sub
	if err := nsPub.Close(); err != nil {
		t.Fatal(err)
	}
	// Still served after the withdrawal.
	writeOne(t, tr, 1, "after the withdrawal")
	wantFirstObject(t, ctx, "the subscriber after the withdrawal", sub, "after the withdrawal")
	wctx, cancel := context.WithDeadline(ctx, exp.Add(5*time.Second))
	defer cancel()
	select {
	case <-sub.Done():
	case <-wctx.Done():
		t.Fatal("the subscription outlived the token of the withdrawn namespace it was served under")
	}
	if now := time.Now(); now.Before(exp) {
		t.Errorf("the subscription ended %v before the namespace's exp", exp.Sub(now))
	}
	waitFor(t, "the relay to unsubscribe upstream", func() bool { return h.ended.Load() == 1 })
}

// shortNamespace is a relay with Auth, a publisher of namespace "short"
// under a token that expires in a second or two (exp) and serves track
// t, and a subscriber of short/t under its own hour-long token.
type shortNamespace struct {
	ns               wire.Namespace
	exp              time.Time
	h                *countingTracks
	tr               *moqtransport.Track
	pubSess, subSess *moqtransport.Session
	nsPub            *moqtransport.NamespacePublication
	sub              *moqtransport.Subscription
}

func subscribedUnderShortNamespace(t *testing.T, ctx context.Context, tracer moqtransport.Tracer) shortNamespace {
	t.Helper()
	e := startRelayWith(t, "moqt", relay.Config{Auth: hmacAuth(t)})
	sn := shortNamespace{ns: wire.Namespace{"short"}, h: &countingTracks{}}
	// JWT exp has a precision of a second: at least a second ahead.
	sn.exp = time.Now().Add(2 * time.Second).Truncate(time.Second)
	if time.Until(sn.exp) < time.Second {
		sn.exp = sn.exp.Add(time.Second)
	}
	sn.tr = moqtransport.NewTrack(wire.FullTrackName{Namespace: sn.ns, Name: "t"}, moqtransport.TrackConfig{})
	sn.h.Add(sn.tr)
	var err error
	if sn.pubSess, _, err = e.dialCfg("/", moqtransport.Config{Handler: sn.h.Handler()}); err != nil {
		t.Fatal(err)
	}
	if sn.nsPub, err = sn.pubSess.PublishNamespace(ctx, sn.ns, userToken(t, []string{"short"}, nil, sn.exp)); err != nil {
		t.Fatal(err)
	}
	if sn.subSess, _, err = e.dialCfg("/", moqtransport.Config{Tracer: tracer}); err != nil {
		t.Fatal(err)
	}
	hour := time.Now().Add(time.Hour)
	if sn.sub, err = sn.subSess.Subscribe(ctx, sn.ns, "t", moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{"short"}, hour)}); err != nil {
		t.Fatal(err)
	}
	return sn
}
