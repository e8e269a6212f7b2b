package relay_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// TestNamespaceExpiryEndsOnlyItsTracks: a namespace's token expiry ends
// exactly the relayed tracks its grant served, the ones subscribed from
// its publisher under it (endGranted), and no other: not its publisher's
// tracks under another of its namespaces (a nested one, a separate one);
// not another publisher's, in another namespace, under the same
// namespace in another scope, or under the same namespace and name in
// the same scope from the namespace's previous owner (which withdrew it,
// its subscription going on as draft-14 lets it). Those keep flowing.
// endGranted looks only at the expiring publisher's tracks
// (Relay.upstream by session), and the index stays in step with the
// table throughout (relay.UpstreamIndex).
func TestNamespaceExpiryEndsOnlyItsTracks(t *testing.T) {
	e := startRelayWith(t, "moqt", relay.Config{Auth: hmacAuth(t)})
	r := e.rs.Relay
	ctx := ctxFor(t)
	hour := time.Now().Add(time.Hour)
	// JWT exp has a precision of a second. Eight dials, seven
	// namespaces and seven subscriptions come before the short
	// namespace expires: at least three seconds ahead, for a busy
	// machine.
	exp := time.Now().Add(4 * time.Second).Truncate(time.Second)
	if time.Until(exp) < 3*time.Second {
		exp = exp.Add(time.Second)
	}
	name := func(ns ...string) wire.FullTrackName {
		return wire.FullTrackName{Namespace: wire.Namespace(ns[:len(ns)-1]), Name: ns[len(ns)-1]}
	}
	// served is a track, its publisher's end, and a subscription to it
	// through the relay from subscriber session who (at path).
	type served struct {
		who, path string
		name      wire.FullTrackName
		tr        *moqtransport.Track
		sub       *moqtransport.Subscription
		ends      bool // served under the expiring grant
	}
	tracks := []*served{
		// Publisher A: namespace a under the short token, a/x (nested,
		// its own) and c under an hour-long one.
		{who: "/", path: "/", name: name("a", "t1"), ends: true},
		{who: "/", path: "/", name: name("a", "t2"), ends: true},
		{who: "/", path: "/", name: name("a", "x", "t")},
		{who: "/", path: "/", name: name("c", "t")},
		// Publisher B: b.
		{who: "/", path: "/", name: name("b", "t")},
		// Publisher R, in scope /room: a.
		{who: "/room", path: "/room", name: name("a", "t1")},
		// Publisher P: a, before A, withdrawn with its subscription
		// still served.
		{who: "previous owner's subscriber", path: "/", name: name("a", "t1")},
	}
	type grant struct {
		ns    string
		until time.Time
	}
	publisher := func(path string, grants []grant, served ...int) (*countingTracks, map[string]*moqtransport.NamespacePublication) {
		t.Helper()
		h := &countingTracks{}
		for _, i := range served {
			tracks[i].tr = moqtransport.NewTrack(tracks[i].name, moqtransport.TrackConfig{})
			h.Add(tracks[i].tr)
		}
		s, _, err := e.dialCfg(path, moqtransport.Config{Handler: h.Handler()})
		if err != nil {
			t.Fatal(err)
		}
		pubs := map[string]*moqtransport.NamespacePublication{}
		for _, g := range grants {
			nsp, err := s.PublishNamespace(ctx, wire.ParseNamespacePath(g.ns), userToken(t, []string{g.ns}, nil, g.until))
			if err != nil {
				t.Fatalf("PUBLISH_NAMESPACE %s at %s: %v", g.ns, path, err)
			}
			pubs[g.ns] = nsp
		}
		return h, pubs
	}
	subs := map[string]*moqtransport.Session{}
	dones := map[string]*doneTracer{} // the PUBLISH_DONEs each subscriber session received
	subscribe := func(tr *served) {
		t.Helper()
		s := subs[tr.who]
		if s == nil {
			dones[tr.who] = &doneTracer{}
			var err error
			if s, _, err = e.dialCfg(tr.path, moqtransport.Config{Tracer: dones[tr.who]}); err != nil {
				t.Fatal(err)
			}
			subs[tr.who] = s
		}
		var err error
		tr.sub, err = s.Subscribe(ctx, tr.name.Namespace, tr.name.Name, moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{""}, hour)})
		if err != nil {
			t.Fatalf("SUBSCRIBE %v by %s: %v", tr.name, tr.who, err)
		}
	}

	// The previous owner of a, subscribed, then withdrawn; the watcher
	// shows when the relay has taken the withdrawal.
	watcher, _, err := e.dialCfg("/", moqtransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	watch, err := watcher.SubscribeNamespace(ctx, wire.Namespace{"a"}, userToken(t, nil, []string{"a"}, hour))
	if err != nil {
		t.Fatal(err)
	}
	next := namespaceEvents(t, ctx, watch, wire.Namespace{"a"})
	hP, pubsP := publisher("/", []grant{{"a", hour}}, 6)
	next(true)
	subscribe(tracks[6])
	if err := pubsP["a"].Close(); err != nil {
		t.Fatal(err)
	}
	next(false)

	hA, pubsA := publisher("/", []grant{{"a", exp}, {"a/x", hour}, {"c", hour}}, 0, 1, 2, 3)
	hB, _ := publisher("/", []grant{{"b", hour}}, 4)
	hR, _ := publisher("/room", []grant{{"a", hour}}, 5)
	for _, tr := range tracks[:6] {
		subscribe(tr)
	}
	if time.Now().After(exp) {
		t.Fatal("the set-up outlasted the short token: the test proves nothing")
	}
	if n := hP.subscribes.Load() + hA.subscribes.Load() + hB.subscribes.Load() + hR.subscribes.Load(); n != int32(len(tracks)) {
		t.Fatalf("the publishers got %d SUBSCRIBEs, want one per track (%d)", n, len(tracks))
	}
	// Upstream subscriptions by session: A has 4; P, B and R 1 each.
	if got, err := relay.UpstreamIndex(r); err != nil || !slices.Equal(got, []int{1, 1, 1, 4}) {
		t.Fatalf("upstream subscriptions by session before exp: %v (%v), want [1 1 1 4]", got, err)
	}

	for _, tr := range tracks {
		if !tr.ends {
			continue
		}
		wctx, cancel := context.WithDeadline(ctx, exp.Add(5*time.Second))
		select {
		case <-tr.sub.Done():
		case <-wctx.Done():
			t.Fatalf("%v by %s outlived the token of the namespace it was served under", tr.name, tr.who)
		}
		cancel()
		if now := time.Now(); now.Before(exp) {
			t.Errorf("%v ended %v before the namespace's exp", tr.name, exp.Sub(now))
		}
		if err := tr.sub.Err(); err != nil {
			t.Errorf("%v by %s: %v, want PUBLISH_DONE TRACK_ENDED", tr.name, tr.who, err)
		}
	}
	// PUBLISH_DONE TRACK_ENDED for those two, and nothing else.
	var got []string
	for who, d := range dones {
		for _, pd := range d.received() {
			got = append(got, fmt.Sprintf("%s#%d:%v", who, pd.RequestID, pd.StatusCode))
		}
	}
	want := []string{
		fmt.Sprintf("/#%d:%v", tracks[0].sub.RequestID(), wire.DoneTrackEnded),
		fmt.Sprintf("/#%d:%v", tracks[1].sub.RequestID(), wire.DoneTrackEnded),
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("PUBLISH_DONEs received %v, want %v", got, want)
	}
	<-pubsA["a"].Done()
	wantRequestCode(t, "the expired namespace", pubsA["a"].Err(), uint64(wire.NamespaceExpiredAuthToken))
	waitFor(t, "the relay to unsubscribe from the expired grant's tracks", func() bool { return hA.ended.Load() == 2 })
	waitFor(t, "the index to drop them", func() bool {
		got, err := relay.UpstreamIndex(r)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Equal(got, []int{1, 1, 1, 2})
	})

	// Everything else flows on.
	for i, tr := range tracks {
		if tr.ends {
			continue
		}
		payload := fmt.Sprintf("after exp %d", i)
		writeOne(t, tr.tr, 1, payload)
		wantFirstObject(t, ctx, fmt.Sprintf("the subscriber of %v (%s)", tr.name, tr.who), tr.sub, payload)
		select {
		case <-tr.sub.Done():
			t.Errorf("%v by %s ended with another grant: %v", tr.name, tr.who, tr.sub.Err())
		default:
		}
	}
	if p, a, b, room := hP.ended.Load(), hA.ended.Load(), hB.ended.Load(), hR.ended.Load(); p != 0 || a != 2 || b != 0 || room != 0 {
		t.Errorf("UNSUBSCRIBEs: P %d, A %d, B %d, R %d; want 0, 2, 0, 0", p, a, b, room)
	}
	// The rest ends with its subscribers, the index with it.
	for _, s := range subs {
		_ = s.Close()
	}
	waitFor(t, "the upstream subscriptions to end with their subscribers", func() bool {
		got, err := relay.UpstreamIndex(r)
		if err != nil {
			t.Fatal(err)
		}
		return len(got) == 0
	})
}
