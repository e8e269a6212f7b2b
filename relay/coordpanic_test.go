package relay_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// panickingCoordinator's first Register of namespace boom waits until
// release is closed, then panics; every other Register is accepted. It
// finds nothing.
type panickingCoordinator struct {
	boom     wire.Namespace
	entered  chan struct{}
	release  chan struct{}
	panicked atomic.Bool
}

func (c *panickingCoordinator) Register(ctx context.Context, _ string, ns wire.Namespace) (relay.Registration, error) {
	if ns.Equal(c.boom) && c.panicked.CompareAndSwap(false, true) {
		c.entered <- struct{}{}
		select {
		case <-c.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		panic("coordinator bug")
	}
	return nopRegistration{}, nil
}

func (c *panickingCoordinator) Lookup(context.Context, string, wire.Namespace) (string, error) {
	return "", relay.ErrNotFound
}

// TestCoordinatorPanicReleasesClaim: a Coordinator whose Register panics
// (the session recovers it and refuses the PUBLISH_NAMESPACE or PUBLISH
// with INTERNAL_ERROR) leaves the namespace, or the pushed track, as a
// refusal does: a SUBSCRIBE that waited for the claim is answered
// TRACK_DOES_NOT_EXIST at once, the publisher is never asked, and another
// session may publish it. Before, a namespace stayed held for its
// publisher's session and served requests from it (its claim counted as
// decided, unregistered), though the publisher had been refused; and a
// SUBSCRIBE waiting for a pushed track's claim waited until its own end.
func TestCoordinatorPanicReleasesClaim(t *testing.T) {
	for _, pushed := range []bool{false, true} {
		name := "namespace"
		if pushed {
			name = "pushed track"
		}
		t.Run(name, func(t *testing.T) {
			logs := &logBuffer{}
			ns := wire.Namespace{"boom"}
			coord := &panickingCoordinator{boom: ns, entered: make(chan struct{}, 1), release: make(chan struct{})}
			e, r := startRelayFor(t, "moqt", relay.Config{Coordinator: coord, Node: "moqt://here",
				Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			ctx := ctxFor(t)
			h := &countingTracks{}
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
			h.Add(tr)
			pub := e.connect("/", h)
			publish := func(s *moqtransport.Session) error {
				if pushed {
					_, err := s.Publish(ctx, moqtransport.NewTrack(tr.Name(), moqtransport.TrackConfig{}), moqtransport.PublishOptions{})
					return err
				}
				_, err := s.PublishNamespace(ctx, ns, nil)
				return err
			}
			published := make(chan error, 1)
			go func() { published <- publish(pub) }()
			select {
			case <-coord.entered:
			case <-ctx.Done():
				t.Fatal("the relay did not register the namespace")
			}
			// A SUBSCRIBE that waits for the claim.
			subscribed := make(chan error, 1)
			go func() {
				sub, err := e.connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
				if err == nil {
					_ = sub.Unsubscribe()
				}
				subscribed <- err
			}()
			if pushed {
				waitFor(t, "the SUBSCRIBE to wait for the pushed track's claim", func() bool { return relay.TrackRefs(r, "", ns, "t") == 1 })
			} else {
				const waiting = "a request waits for its namespace's claim with the coordinator"
				waitFor(t, "the SUBSCRIBE to wait for the claim", func() bool { return logs.count(t, waiting) > 0 })
			}
			close(coord.release)
			code := uint64(wire.NamespaceInternalError)
			if pushed {
				code = uint64(wire.PublishInternalError)
			}
			wantRequestCode(t, "publishing while the coordinator panicked", <-published, code)
			if n := logs.count(t, "Coordinator.Register panicked; the namespace's claim is refused"); n != 1 {
				t.Errorf("%d log lines for the coordinator's panic, want 1", n)
			}
			select {
			case err := <-subscribed:
				if !errors.Is(err, moqtransport.ErrTrackNotFound) {
					t.Errorf("SUBSCRIBE that waited for a claim whose Register panicked: %v, want TRACK_DOES_NOT_EXIST", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("SUBSCRIBE that waited for a claim whose Register panicked: unanswered")
			}
			if n := h.subscribes.Load(); n != 0 {
				t.Errorf("the refused publisher got %d SUBSCRIBEs, want 0", n)
			}
			// Nothing holds it: another session publishes it.
			if err := publish(e.connect("/", nil)); err != nil {
				t.Errorf("publishing again from another session: %v", err)
			}
		})
	}
}
