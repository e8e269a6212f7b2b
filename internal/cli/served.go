package cli

import (
	"context"
	"sync"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Served is a publisher's set of tracks that counts the requests it is
// serving: a subscription until its PUBLISH_DONE is written, a FETCH until
// its stream ends. A publisher waits for them (WaitIdle) before it leaves,
// so that what it wrote reaches everyone who asked.
type Served struct {
	moqtransport.Tracks
	mu      sync.Mutex
	active  int
	changed chan struct{} // closed and replaced when active drops
}

// NewServed returns an empty set.
func NewServed() *Served { return &Served{changed: make(chan struct{})} }

// Handler serves the tracks (moqtransport.Tracks.Handler) and counts.
func (h *Served) Handler() moqtransport.Handler {
	th := h.Tracks.Handler()
	subscribe, fetch := th.Subscribe, th.Fetch
	th.Subscribe = func(ctx context.Context, s *moqtransport.Session, req *wire.Subscribe) (*moqtransport.Track, error) {
		t, err := subscribe(ctx, s, req)
		if t != nil {
			h.add()
		}
		return t, err
	}
	th.SubscriptionEnded = func(*moqtransport.Session, *wire.Subscribe, *moqtransport.Track) { h.done() }
	th.Fetch = func(ctx context.Context, s *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
		resp, err := fetch(ctx, s, req)
		if err == nil {
			h.add()
			resp.Close = h.done
		}
		return resp, err
	}
	return th
}

func (h *Served) add() {
	h.mu.Lock()
	h.active++
	h.mu.Unlock()
}

func (h *Served) done() {
	h.mu.Lock()
	h.active--
	close(h.changed)
	h.changed = make(chan struct{})
	h.mu.Unlock()
}

// WaitIdle waits until nothing is being served, done is closed (the
// session's Done: nothing more can be sent), or ctx ends (its error).
func (h *Served) WaitIdle(ctx context.Context, done <-chan struct{}) error {
	for {
		h.mu.Lock()
		idle, changed := h.active <= 0, h.changed
		h.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-changed:
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
