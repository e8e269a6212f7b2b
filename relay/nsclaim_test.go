package relay_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// gatedCoordinator holds the registration of namespace gated until the
// test sends its answer (nil: accepted), and accepts any other at once.
// It finds nothing.
type gatedCoordinator struct {
	gated   wire.Namespace
	entered chan struct{}
	answer  chan error
}

func (c *gatedCoordinator) Register(ctx context.Context, _ string, ns wire.Namespace) (relay.Registration, error) {
	if ns.Equal(c.gated) {
		c.entered <- struct{}{}
		select {
		case err := <-c.answer:
			if err != nil {
				return nil, err
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nopRegistration{}, nil
}

func (c *gatedCoordinator) Lookup(context.Context, string, wire.Namespace) (string, error) {
	return "", relay.ErrNotFound
}

// nsWatcher records the namespaces announced to it and withdrawn
// (announcements), and hands over the tracks pushed to it.
type nsWatcher struct {
	announcements
	pushes chan wire.FullTrackName
}

func (w *nsWatcher) Handler() moqtransport.Handler {
	h := w.announcements.Handler()
	h.Publish = func(_ context.Context, _ *moqtransport.Session, _ *wire.Publish, sub *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
		w.pushes <- sub.Name()
		return moqtransport.SubscribeOptions{}, nil
	}
	return h
}

// TestNamespaceAnnouncedOnlyOnceClaimed: with a Coordinator, a namespace
// whose claim is pending is not announced to a namespace subscriber that
// arrives meanwhile; a refusal leaves it never announced, and the
// claim's success announces it to that subscriber, once. Before, the
// subscriber was told of it at once (namespaceSubscribed took every
// origin), and after a refusal told of its withdrawal: it learned of a
// namespace the coordinator may have given to another relay.
func TestNamespaceAnnouncedOnlyOnceClaimed(t *testing.T) {
	for _, refused := range []bool{true, false} {
		t.Run(fmt.Sprint("refused=", refused), func(t *testing.T) {
			ns := wire.Namespace{"live", "a"}
			coord := &gatedCoordinator{gated: ns, entered: make(chan struct{}, 1), answer: make(chan error, 1)}
			e := startRelayWith(t, "moqt", relay.Config{Coordinator: coord, Node: "moqt://here"})
			ctx := ctxFor(t)
			// A relay sends a namespace subscriber every namespace it
			// queued for it before any pushed track (one request at a
			// time, namespaces first): a pushed track's PUBLISH reaching
			// the subscriber shows that nothing queued before it is
			// still on its way.
			pusher := e.connect("/", nil)
			push := func(name string) {
				t.Helper()
				tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"live", name}, Name: "t"}, moqtransport.TrackConfig{})
				if _, err := pusher.Publish(ctx, tr, moqtransport.PublishOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			w := &nsWatcher{pushes: make(chan wire.FullTrackName, 2)}
			settled := func(name string) {
				t.Helper()
				select {
				case got := <-w.pushes:
					if got.Namespace.String() != "live/"+name {
						t.Fatalf("pushed %v, want live/%s/t", got, name)
					}
				case <-ctx.Done():
					t.Fatalf("the namespace subscriber got no PUBLISH of live/%s/t", name)
				}
			}
			want := func(when string, announced, withdrawn []string) {
				t.Helper()
				if got, done := w.seen(); !slices.Equal(got, announced) || !slices.Equal(done, withdrawn) {
					t.Errorf("%s: announced %q, withdrawn %q; want %q, %q", when, got, done, announced, withdrawn)
				}
			}
			push("p")

			published := make(chan error, 1)
			go func() {
				_, err := e.connect("/", nil).PublishNamespace(ctx, ns, nil)
				published <- err
			}()
			select {
			case <-coord.entered:
			case <-ctx.Done():
				t.Fatal("the relay did not register the namespace")
			}
			// A namespace subscriber arrives while the claim is pending.
			if _, err := e.connect("/", w).SubscribeNamespace(ctx, wire.Namespace{"live"}, nil); err != nil {
				t.Fatal(err)
			}
			settled("p")
			want("while the claim is pending", nil, nil)

			if refused {
				coord.answer <- fmt.Errorf("%w: %s is held by moqt://elsewhere", relay.ErrServedElsewhere, ns)
				if err := <-published; !errors.Is(err, moqtransport.NamespaceError(wire.NamespaceUnauthorized, "")) {
					t.Fatalf("PUBLISH_NAMESPACE refused by the coordinator: %v, want UNAUTHORIZED", err)
				}
				push("q")
				settled("q")
				want("after the refusal", nil, nil)
				return
			}
			coord.answer <- nil
			if err := <-published; err != nil {
				t.Fatalf("PUBLISH_NAMESPACE accepted by the coordinator: %v", err)
			}
			waitFor(t, "the claimed namespace's announcement", func() bool { got, _ := w.seen(); return len(got) > 0 })
			push("q")
			settled("q")
			want("after the claim", []string{"live/a"}, nil)
		})
	}
}
