package moqtransport

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/moqgo/moq/moqtransport/wire"
)

// Handler answers the requests a peer sends. The session calls each method
// on a goroutine of its own, so a method may block (a relay subscribes
// upstream before answering); ctx ends when the session does or the peer
// cancels the request.
type Handler interface {
	// Subscribe answers SUBSCRIBE with the track to serve, or an error
	// that becomes SUBSCRIBE_ERROR: a *RequestError keeps its code
	// (SubscribeError, ErrTrackNotFound); anything else is INTERNAL_ERROR.
	Subscribe(ctx context.Context, s *Session, req *wire.Subscribe) (*Track, error)
	// PublishNamespace answers PUBLISH_NAMESPACE: nil sends
	// PUBLISH_NAMESPACE_OK; an error sends PUBLISH_NAMESPACE_ERROR
	// (NamespaceError keeps its code).
	PublishNamespace(ctx context.Context, s *Session, req *wire.PublishNamespace) error
	// PublishNamespaceDone tells that the peer withdrew a namespace it
	// had published (PUBLISH_NAMESPACE_DONE), or the session ended.
	PublishNamespaceDone(s *Session, ns wire.Namespace)
}

// SubscriptionEnder is implemented by a Handler that wants to know when a
// subscription it answered with a track has ended (UNSUBSCRIBE, the track
// ended, or the session closed): a relay drops its upstream subscription
// when the last one ends.
type SubscriptionEnder interface {
	SubscriptionEnded(s *Session, req *wire.Subscribe, t *Track)
}

// RejectAll is a Handler that has no tracks and accepts no namespaces but
// those the session asked for with SubscribeNamespace.
type RejectAll struct{}

// Subscribe refuses with TRACK_DOES_NOT_EXIST.
func (RejectAll) Subscribe(context.Context, *Session, *wire.Subscribe) (*Track, error) {
	return nil, ErrTrackNotFound
}

// PublishNamespace accepts a namespace the session asked for (one under
// the prefix of a SubscribeNamespace of the session: its
// NamespaceSubscription reports it) and refuses any other with
// NOT_SUPPORTED.
func (RejectAll) PublishNamespace(_ context.Context, s *Session, req *wire.PublishNamespace) error {
	if s.HasNamespaceSubscription(req.Namespace) {
		return nil
	}
	return NamespaceError(wire.NamespaceNotSupported, "this endpoint does not accept namespaces")
}

// PublishNamespaceDone does nothing.
func (RejectAll) PublishNamespaceDone(*Session, wire.Namespace) {}

// Tracks is a Handler that serves a fixed set of local tracks, for
// applications that publish their own tracks (a clock, a media publisher).
// It refuses namespaces like RejectAll. It is safe for concurrent use.
type Tracks struct {
	RejectAll
	mu     sync.RWMutex
	tracks map[string]*Track
}

// nsKey is a map key for a namespace that keeps fields apart whatever
// bytes they hold: the field count, then each field prefixed by its length.
func nsKey(ns wire.Namespace) string {
	k := binary.AppendUvarint(make([]byte, 0, 64), uint64(len(ns)))
	for _, f := range ns {
		k = binary.AppendUvarint(k, uint64(len(f)))
		k = append(k, f...)
	}
	return string(k)
}

// trackKey is a map key for a full track name.
func trackKey(n wire.FullTrackName) string {
	return nsKey(n.Namespace) + "\x00" + n.Name
}

// Add makes t available to subscribers.
func (ts *Tracks) Add(t *Track) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.tracks == nil {
		ts.tracks = map[string]*Track{}
	}
	ts.tracks[trackKey(t.Name())] = t
}

// Remove withdraws a track.
func (ts *Tracks) Remove(name wire.FullTrackName) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.tracks, trackKey(name))
}

// Get returns the track with that name.
func (ts *Tracks) Get(name wire.FullTrackName) (*Track, bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	t, ok := ts.tracks[trackKey(name)]
	return t, ok
}

// Subscribe serves a known track and refuses others with
// TRACK_DOES_NOT_EXIST.
func (ts *Tracks) Subscribe(_ context.Context, _ *Session, req *wire.Subscribe) (*Track, error) {
	if t, ok := ts.Get(wire.FullTrackName{Namespace: req.Namespace, Name: req.Name}); ok {
		return t, nil
	}
	return nil, ErrTrackNotFound
}

// handlerTrack asks the handler for the track a request names. The
// returned release tells a SubscriptionEnder that the request is over; it
// is never nil. A handler that returns neither a track nor an error gets
// ErrTrackNotFound.
func (s *Session) handlerTrack(ctx context.Context, req *wire.Subscribe) (*Track, func(), error) {
	var track *Track
	var err error
	s.callback(func() { track, err = s.cfg.Handler.Subscribe(ctx, s, req) })
	release := func() {}
	if track != nil {
		if e, ok := s.cfg.Handler.(SubscriptionEnder); ok {
			release = func() { s.callback(func() { e.SubscriptionEnded(s, req, track) }) }
		}
	}
	if err == nil && track == nil {
		err = ErrTrackNotFound
	}
	return track, release, err
}
