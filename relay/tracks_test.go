package relay_test

import (
	"fmt"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// endedTracks serves tracks and reports each upstream subscription that
// ends, by track name.
type endedTracks struct {
	moqtransport.Tracks
	ended chan string
}

func (h *endedTracks) Handler() moqtransport.Handler {
	th := h.Tracks.Handler()
	th.SubscriptionEnded = func(_ *moqtransport.Session, req *wire.Subscribe, _ *moqtransport.Track) {
		h.ended <- req.Name
	}
	return th
}

// TestReleaseOneOfManyTracks checks that a downstream subscription that
// ends gives back the reference of its own relayed track, and only that
// one, among many tracks in two scopes: the upstream subscription ends
// with the last downstream one, in its scope only.
func TestReleaseOneOfManyTracks(t *testing.T) {
	const tracks = 20
	e := startRelay(t, "moqt")
	ctx := ctxFor(t)
	ns := wire.Namespace{"many"}
	pubs := map[string]*endedTracks{}
	subs := map[string]map[string]*moqtransport.Subscription{}
	for _, path := range []string{"/", "/room"} {
		h := &endedTracks{ended: make(chan string, 4*tracks)}
		for i := range tracks {
			h.Add(moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: fmt.Sprint("t", i)}, moqtransport.TrackConfig{}))
		}
		if _, err := e.connect(path, h).PublishNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}
		pubs[path] = h
		s := e.connect(path, nil)
		subs[path] = map[string]*moqtransport.Subscription{}
		for i := range tracks {
			name := fmt.Sprint("t", i)
			sub, err := s.Subscribe(ctx, ns, name, moqtransport.SubscribeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			subs[path][name] = sub
		}
	}
	// A second subscriber of t5 in the unscoped scope holds its upstream.
	second, err := e.connect("/", nil).Subscribe(ctx, ns, "t5", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next := func(path string) string {
		t.Helper()
		select {
		case name := <-pubs[path].ended:
			return name
		case <-ctx.Done():
			t.Fatalf("no upstream subscription of %s ended", path)
			return ""
		}
	}
	unsubscribe := func(sub *moqtransport.Subscription) {
		t.Helper()
		if err := sub.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	}
	// Each unsubscribe ends exactly its own track's upstream, in its own
	// scope: a wrong release would show up as the next event instead.
	unsubscribe(subs["/room"]["t7"])
	if got := next("/room"); got != "t7" {
		t.Fatalf("unsubscribing t7 in /room ended upstream %s", got)
	}
	unsubscribe(subs["/"]["t5"]) // t5 is still held by second
	unsubscribe(subs["/"]["t13"])
	if got := next("/"); got != "t13" {
		t.Fatalf("unsubscribing t13 in / ended upstream %s (t5 has a subscriber left)", got)
	}
	unsubscribe(second)
	if got := next("/"); got != "t5" {
		t.Fatalf("unsubscribing t5's last subscriber ended upstream %s", got)
	}
	// The rest end once each.
	for path, m := range subs {
		for name, sub := range m {
			if (path == "/room" && name == "t7") || (path == "/" && (name == "t5" || name == "t13")) {
				continue
			}
			unsubscribe(sub)
		}
	}
	for path, done := range map[string]int{"/": 2, "/room": 1} {
		seen := map[string]bool{}
		for range tracks - done {
			name := next(path)
			if seen[name] {
				t.Fatalf("upstream %s of %s ended twice", name, path)
			}
			seen[name] = true
		}
		select {
		case name := <-pubs[path].ended:
			t.Fatalf("upstream %s of %s ended once too often", name, path)
		default:
		}
	}
}
