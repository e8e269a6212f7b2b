package relay_test

import (
	"testing"
	"time"

	"github.com/moqgo/moq/internal/moqtest"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestGoroutinesPerViewer bounds what a viewer costs the relay in
// goroutines of moq-go's own (quic-go keeps two more per connection: its
// loop and its sender): 20 viewers, raw QUIC clients with no moqtransport
// code of their own, subscribe through the relay to one track with nothing
// published. Per viewer, the relay's session runs its control reader and
// its accept loops for unidirectional streams and for a second
// bidirectional one (3), and the subscription's dispatcher (1); the relay
// keeps none of its own, the control writer runs only while control
// messages wait, and no datagram reader runs in a session that receives
// no track.
func TestGoroutinesPerViewer(t *testing.T) {
	const viewers = 20
	const budget = 4
	// moqnative starts none per raw QUIC connection on the server side
	// (and one per dialed connection on the viewers' side, not counted).
	prefixes := []string{"github.com/moqgo/moq/moqtransport.", "github.com/moqgo/moq/relay."}
	e := startRelay(t, "moqt")
	ns := wire.Namespace{"live"}
	e.publisher("/", ns, "video")
	subscribe := func(id uint64) {
		t.Helper()
		v := e.rawClient()
		v.send(t, &wire.Subscribe{RequestID: 0, Namespace: ns, Name: "video", Forward: true,
			GroupOrder: wire.GroupOrderAscending, Filter: wire.Filter{Type: wire.FilterLargestObject}})
		if m, ok := v.next(t).(*wire.SubscribeOK); !ok {
			t.Fatalf("viewer %d: got %v, want SUBSCRIBE_OK", id, m)
		}
	}
	// The first viewer makes the relay subscribe upstream: its goroutines
	// (the publisher's side included) are not per viewer.
	subscribe(0)
	settle := func(before map[string]int, n int) (map[string]int, float64) {
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := moqtest.Goroutines(prefixes...)
			per := float64(moqtest.GoroutinesAdded(before, got)) / float64(n)
			if per <= budget || time.Now().After(deadline) {
				return got, per
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// The control writer that sent SUBSCRIBE_OK ends just after.
	var before map[string]int
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		before = moqtest.Goroutines(prefixes...)
		if before["(*Session).writeControl"] == 0 || time.Now().After(deadline) {
			break
		}
	}
	for i := 1; i <= viewers; i++ {
		subscribe(uint64(i))
	}
	got, per := settle(before, viewers)
	t.Logf("%.2f goroutines per viewer: %v (before the %d viewers: %v)", per, got, viewers, before)
	if per > budget {
		t.Errorf("%.2f goroutines per viewer, budget %d: %v, before the viewers %v", per, budget, got, before)
	}
}
