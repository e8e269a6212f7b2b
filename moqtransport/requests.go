package moqtransport

import (
	"errors"
	"fmt"
	"sync"

	"github.com/moqgo/moq/moqtransport/wire"
)

// requestIDs keeps both directions of draft-14 request-ID flow control
// (§9.1, §9.5, §9.6). Our IDs and the peer's each rise by exactly 2 from
// their parity (client even, server odd); MAX_REQUEST_ID grants are
// exclusive bounds on the ID value.
type requestIDs struct {
	mu sync.Mutex

	// Outgoing: the ID our next request takes, the peer's grant, and the
	// limit we last sent REQUESTS_BLOCKED for.
	next        uint64
	peerMax     uint64
	blockedSent uint64
	blockedAny  bool
	granted     chan struct{} // closed and replaced when peerMax rises

	// Incoming: the ID the peer's next request must carry, our grant, how
	// many of the peer's requests are open, and the window we keep.
	peerNext uint64
	ourMax   uint64
	open     uint64
	window   uint64
}

func newRequestIDs(client bool, window uint64) *requestIDs {
	window = min(window, wire.MaxVarint/2) // 2*window stays a varint
	r := &requestIDs{granted: make(chan struct{}), window: window}
	if client {
		r.next, r.peerNext = 0, 1
	} else {
		r.next, r.peerNext = 1, 0
	}
	// The first grant lets the peer open window requests: IDs from
	// peerNext up to peerNext + 2*(window-1).
	r.ourMax = min(r.peerNext+2*window, wire.MaxVarint)
	return r
}

// initialGrant is the MAX_REQUEST_ID setup parameter we send.
func (r *requestIDs) initialGrant() uint64 { return r.ourMax }

// setPeerMax applies the peer's grant from setup or MAX_REQUEST_ID. A grant
// that does not increase is a protocol violation, except the first one.
func (r *requestIDs) setPeerMax(v uint64, fromSetup bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !fromSetup && v <= r.peerMax {
		return &wire.SessionError{Code: wire.ProtocolViolation,
			Reason: fmt.Sprintf("MAX_REQUEST_ID %d does not increase the current %d", v, r.peerMax)}
	}
	r.peerMax = v
	close(r.granted)
	r.granted = make(chan struct{})
	return nil
}

// ErrRequestIDsExhausted is returned for a request when every request ID
// the draft allows (up to 2^62-1) has been used: open a new session.
var ErrRequestIDsExhausted = errors.New("moqt: request IDs exhausted on this session; open a new one")

// tryAllocate takes the next request ID if the peer's grant allows it.
// Otherwise wait is closed when the grant rises, and notify says whether
// to tell the peer with REQUESTS_BLOCKED at limit (once per limit).
func (r *requestIDs) tryAllocate() (id uint64, wait <-chan struct{}, limit uint64, notify bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next > wire.MaxVarint {
		return 0, nil, 0, false, ErrRequestIDsExhausted
	}
	if r.next < r.peerMax {
		id = r.next
		r.next += 2
		return id, nil, 0, false, nil
	}
	if r.peerMax >= wire.MaxVarint {
		// No grant can go past the largest varint.
		return 0, nil, 0, false, ErrRequestIDsExhausted
	}
	limit = r.peerMax
	notify = !r.blockedAny || r.blockedSent != limit
	if notify {
		r.blockedAny, r.blockedSent = true, limit
	}
	return 0, r.granted, limit, notify, nil
}

// giveBack returns id, the last ID tryAllocate took, which was never
// sent: the next request takes it. The caller holds s.reqMu since it took
// id, so no other ID was taken since.
func (r *requestIDs) giveBack(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.next == id+2 {
		r.next = id
	}
}

// accept checks the ID of a new request from the peer: it must be exactly
// the next one (INVALID_REQUEST_ID) and below our grant
// (TOO_MANY_REQUESTS). The request then counts as open until finish.
func (r *requestIDs) accept(id uint64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id != r.peerNext {
		return &wire.SessionError{Code: wire.InvalidRequestID,
			Reason: fmt.Sprintf("request ID %d, expected %d", id, r.peerNext)}
	}
	if id >= r.ourMax {
		return &wire.SessionError{Code: wire.TooManyRequests,
			Reason: fmt.Sprintf("request ID %d is not below MAX_REQUEST_ID %d", id, r.ourMax)}
	}
	r.peerNext += 2
	r.open++
	return nil
}

// finish ends one of the peer's requests. It returns a new grant to send
// in MAX_REQUEST_ID when the peer's headroom has fallen to half the
// window, or 0.
func (r *requestIDs) finish() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open > 0 {
		r.open--
	}
	return r.topUp()
}

// topUp raises our grant so that the peer can again open window requests
// beyond the ones still open, once its headroom falls to half the window.
func (r *requestIDs) topUp() uint64 {
	headroom := (r.ourMax - r.peerNext) / 2
	if headroom*2 > r.window {
		return 0
	}
	// A grant is an exclusive bound on a varint: 2^62-1 at most.
	want := min(r.peerNext+2*(r.window-min(r.open, r.window)), wire.MaxVarint)
	if want <= r.ourMax {
		return 0
	}
	r.ourMax = want
	return want
}

// peerBlocked handles REQUESTS_BLOCKED: the peer wants more. We grant what
// the window allows; it never forces a grant beyond it.
func (r *requestIDs) peerBlocked() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.topUp()
}
