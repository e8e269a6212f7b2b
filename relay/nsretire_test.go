package relay_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// UNSUBSCRIBE_NAMESPACE withdraws what was announced under the prefix
// (PUBLISH_NAMESPACE_DONE): the announcements used to stay open for the
// rest of the session, each holding one of the subscriber's request IDs,
// a later withdrawal no longer reached the subscriber, and subscribing to
// the prefix again announced the namespace a second time over the open
// one.
func TestUnsubscribeNamespaceWithdrawsAnnounced(t *testing.T) {
	e := startRelay(t, "moqt")
	ctx := ctxFor(t)
	e.publisher("/", wire.Namespace{"live", "a"}, "t")
	a := &announcements{}
	s := e.connect("/", a)
	nsub, err := s.SubscribeNamespace(ctx, wire.Namespace{"live"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the announcement", func() bool { got, _ := a.seen(); return len(got) == 1 })
	if err := nsub.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "PUBLISH_NAMESPACE_DONE after UNSUBSCRIBE_NAMESPACE", func() bool { _, done := a.seen(); return len(done) == 1 })
	if _, err := s.SubscribeNamespace(ctx, wire.Namespace{"live"}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the announcement to the new subscription", func() bool { got, _ := a.seen(); return len(got) == 2 })
	if got, done := a.seen(); !slices.Equal(got, []string{"live/a", "live/a"}) || !slices.Equal(done, []string{"live/a"}) {
		t.Errorf("announced %v, withdrawn %v", got, done)
	}
}

// slowFirstAnswer answers the first PUBLISH_NAMESPACE it gets only once
// released, and any later one at once.
type slowFirstAnswer struct {
	mu      sync.Mutex
	calls   int
	dones   int
	second  chan struct{} // closed at the second PUBLISH_NAMESPACE
	release chan struct{} // closed by the test: the first answers
}

func (h *slowFirstAnswer) Handler() moqtransport.Handler {
	return moqtransport.Handler{
		PublishNamespace: func(ctx context.Context, _ *moqtransport.Session, _ *wire.PublishNamespace) error {
			h.mu.Lock()
			h.calls++
			n := h.calls
			h.mu.Unlock()
			switch n {
			case 1:
				select {
				case <-h.release:
				case <-ctx.Done():
				}
			case 2:
				close(h.second)
			}
			return nil
		},
		PublishNamespaceDone: func(*moqtransport.Session, wire.Namespace) {
			h.mu.Lock()
			h.dones++
			h.mu.Unlock()
		},
	}
}

func (h *slowFirstAnswer) counts() (calls, dones int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, h.dones
}

// An announcement the namespace subscriber leaves unanswered for
// UpstreamTimeout is withdrawn and made again: it used to be given up for
// good, the namespace never announced to that subscriber.
func TestNamespaceAnnouncementRetried(t *testing.T) {
	e := startRelayWith(t, "moqt", relay.Config{UpstreamTimeout: 300 * time.Millisecond})
	ctx := ctxFor(t)
	pub, _, _ := e.publisher("/", wire.Namespace{"live", "b"}, "t")
	h := &slowFirstAnswer{second: make(chan struct{}), release: make(chan struct{})}
	s := e.connect("/", h)
	if _, err := s.SubscribeNamespace(ctx, wire.Namespace{"live"}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.second:
	case <-ctx.Done():
		calls, _ := h.counts()
		t.Fatalf("PUBLISH_NAMESPACEs to the subscriber: %d, want a second after the first went unanswered", calls)
	}
	// The first, answered late, ends as withdrawn.
	close(h.release)
	waitFor(t, "the first announcement's withdrawal", func() bool { _, dones := h.counts(); return dones == 1 })
	// The second stands: the publisher's withdrawal reaches the
	// subscriber through it.
	if err := pub.Close(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second announcement's withdrawal", func() bool { _, dones := h.counts(); return dones == 2 })
	if calls, _ := h.counts(); calls != 2 {
		t.Errorf("PUBLISH_NAMESPACEs to the subscriber: %d, want 2", calls)
	}
}
