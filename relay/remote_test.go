package relay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// TestCloseDuringRemoteDial: Relay.Close returns when a dial to another
// relay completes while it runs. Close saw the remote still connecting and
// skipped it; the dial then kept its session (and the relay waited for
// that session's end), so Close hung until the other relay ended it.
func TestCloseDuringRemoteDial(t *testing.T) {
	coords := []*countingCoordinator{{}, {}}
	connected := make(chan struct{})
	var once sync.Once
	release := make(chan struct{})
	relays, nodes := startCluster(t, "moqt", 2, func(i int, _ string) relay.Coordinator { return coords[i] },
		func(i int, c *relay.Config) {
			if i != 0 {
				return
			}
			dial := c.Dial
			c.Dial = func(ctx context.Context, url string, cfg *moqtransport.Config) (*moqtransport.Session, error) {
				s, err := dial(ctx, url, cfg)
				once.Do(func() { close(connected) })
				<-release // whatever ctx does: the dial is slow to return
				return s, err
			}
		})
	coords[0].url.Store(&nodes[1])
	relays[1].publisher("/", wire.Namespace{"live"}, "t")
	sub := relays[0].connect("/", nil)
	ctx := ctxFor(t)
	go func() {
		// Refused or cut by Close: only the dial matters here.
		_, _ = sub.Subscribe(ctx, wire.Namespace{"live"}, "t", moqtransport.SubscribeOptions{})
	}()
	select {
	case <-connected:
	case <-ctx.Done():
		t.Fatal("relay 0 never dialed relay 1")
	}
	r := relays[0].rs.Relay
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		r.Close()
	}()
	waitFor(t, "Close to begin", func() bool { return relay.Closing(r) })
	// Close waits for the relay's sessions: the client's ends here (a
	// Server closes its own), the dialed one is the relay's to end.
	_ = sub.Close()
	close(release)
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Relay.Close did not return after a dial to another relay completed during it")
	}
}
