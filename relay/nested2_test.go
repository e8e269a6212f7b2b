package relay_test

import (
	"path/filepath"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// TestClusterLongerNamespaceSharedAndFetched: with relay 1 serving (a, b)
// and a local publisher of (a) on relay 0, a second subscriber of
// (a, b)/t on relay 0 shares the track relayed from relay 1, and a FETCH
// of complete groups is answered from it; the shorter namespace's
// publisher is asked nothing.
func TestClusterLongerNamespaceSharedAndFetched(t *testing.T) {
	path := filepath.Join(t.TempDir(), "coordinator.json")
	relays, _ := startCluster(t, "moqt", 2, func(_ int, node string) relay.Coordinator { return fileCoordinator(t, path, node) })
	ctx := ctxFor(t)
	ns := wire.Namespace{"a", "b"}
	_, owned, far := relays[1].publisher("/", ns, "t")
	h := &countingTracks{}
	h.Add(moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{}))
	if _, err := relays[0].connect("/", h).PublishNamespace(ctx, wire.Namespace{"a"}, nil); err != nil {
		t.Fatal(err)
	}
	first, err := relays[0].connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	write(t, owned, 0, 2, 2)
	for i := range 4 {
		if _, err := first.ReadObject(ctx); err != nil {
			t.Fatalf("the first subscriber's object %d: %v", i, err)
		}
	}
	s := relays[0].connect("/", nil)
	if _, err := s.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	f, err := s.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 1, Object: 2}})
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Cancel()
	if n := h.subscribes.Load() + h.fetches.Load(); n != 0 {
		t.Errorf("the shorter namespace's publisher got %d requests for the longer one's track", n)
	}
	if n := far.fetches.Load(); n != 0 {
		t.Errorf("the publisher on relay 1 got %d FETCHes; the relays' caches hold the groups", n)
	}
}
