package relay_test

import (
	"context"
	"fmt"
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

// TestRemoteSessionIdleClosed: a session to another relay ends once
// nothing has used it for RemoteIdleTimeout. Relay 0 serves subscribers
// in /r1 and /r2 from publishers on relay 1, through one session per
// scope; while they are subscribed the sessions stay, and once every
// client has left they are closed, so relay 1 holds no session for them
// (they counted against its MaxSessions), and a new round dials again.
// Before, they lasted as long as the relays did.
func TestRemoteSessionIdleClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	coords := []*countingCoordinator{{}, {}}
	relays, nodes := startCluster(t, "moqt", 2, func(i int, _ string) relay.Coordinator { return coords[i] },
		func(i int, c *relay.Config) {
			c.RemoteIdleTimeout = idle
			if i == 1 {
				c.MaxSessions = 4 // two publishers and relay 0's two sessions
			}
		})
	coords[0].url.Store(&nodes[1])
	a, b := relays[0], relays[1]
	ns := wire.Namespace{"live"}
	for round := range 2 {
		ctx := ctxFor(t)
		var clients []*moqtransport.Session
		var results []<-chan readResult
		var tracks []*moqtransport.Track
		for _, path := range []string{"/r1", "/r2"} {
			pub, tr, _ := b.publisher(path, ns, "t")
			s := a.connect(path, nil)
			sub, err := s.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
			if err != nil {
				t.Fatalf("round %d: a subscriber in %s through relay 0: %v", round, path, err)
			}
			clients = append(clients, pub, s)
			results = append(results, readAsync(ctx, sub.Track()))
			tracks = append(tracks, tr)
		}
		if n := b.rs.Relay.Sessions(); n != 4 {
			t.Fatalf("round %d: relay 1 has %d sessions, want 4 (two publishers, relay 0 in two scopes)", round, n)
		}
		// In use, a session outlives its idle period.
		for start := time.Now(); time.Since(start) < 3*idle; time.Sleep(20 * time.Millisecond) {
			if n := b.rs.Relay.Sessions(); n != 4 {
				t.Fatalf("round %d: relay 1 has %d sessions while relay 0's are in use, want 4", round, n)
			}
		}
		for i, tr := range tracks {
			write(t, tr, 0, 2, 2)
			tr.Close(nil)
			wantObjects(t, fmt.Sprintf("round %d: subscriber %d", round, i), results[i], expected(0, 2, 2))
		}
		for _, s := range clients {
			_ = s.Close()
		}
		waitFor(t, "relay 0's sessions to relay 1 to close once unused", func() bool { return b.rs.Relay.Sessions() == 0 })
	}
}

// TestRemoteSessionIdleRace: a session to another relay that idle
// closing ends just after a lookup found it is not used: the lookup dials
// again, and the request succeeds. Before, the lookup returned the closed
// session, and the request failed with INTERNAL_ERROR. The window (between
// finding the session and counting its use) is held open by the test
// until the idle timer has closed the session.
func TestRemoteSessionIdleRace(t *testing.T) {
	const idle = 20 * time.Millisecond
	coords := []*countingCoordinator{{}, {}}
	relays, nodes := startCluster(t, "moqt", 2, func(i int, _ string) relay.Coordinator { return coords[i] },
		func(i int, c *relay.Config) { c.RemoteIdleTimeout = idle })
	coords[0].url.Store(&nodes[1])
	ns := wire.Namespace{"live"}
	_, tr, _ := relays[1].publisher("/", ns, "t")
	write(t, tr, 0, 1, 1)
	client := relays[0].connect("/", nil)
	ctx := ctxFor(t)
	if _, err := client.TrackStatus(ctx, ns, "t"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	var waited error
	relay.OnRemoteFound(relays[0].rs.Relay, func(s *moqtransport.Session) {
		once.Do(func() {
			select {
			case <-s.Done():
			case <-time.After(5 * time.Second):
				waited = fmt.Errorf("the idle session was not closed")
			}
		})
	})
	if _, err := client.TrackStatus(ctx, ns, "t"); err != nil {
		t.Errorf("TRACK_STATUS through relay 0 whose session to relay 1 closed as it was found: %v", err)
	}
	if waited != nil {
		t.Error(waited)
	}
}
