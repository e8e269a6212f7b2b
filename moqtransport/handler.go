package moqtransport

import (
	"context"
	"encoding/binary"
	"sync"

	"github.com/moqgo/moq/moqtransport/wire"
)

// Handler answers the requests a peer sends: one field for each request
// kind a session can serve. A nil field refuses its request with the code
// its documentation names, so the zero Handler refuses everything, and
// setting a field is what makes the session serve that request.
//
// The functions that answer a request (Subscribe, Fetch, TrackStatus,
// Publish, PublishNamespace, SubscribeNamespace) run on a goroutine of
// their own, so they may block (a relay subscribes upstream before
// answering); ctx ends when the session does or the peer cancels the
// request. The notifications (SubscriptionEnded, PublishNamespaceDone,
// NamespaceSubscribed, UnsubscribeNamespace) may run on the session's
// control goroutine: they must not block. Any of them may call
// Session.Close. An error a function
// returns becomes the request's error message: a *RequestError keeps its
// code (SubscribeError, FetchError, PublishError, NamespaceError,
// ErrTrackNotFound); anything else is INTERNAL_ERROR.
//
// A panic in a Handler function (or an Authorizer) does not crash the
// process: the session recovers it and logs it at Error, with its stack,
// on Config.Logger. A request function that panics has its request
// answered with INTERNAL_ERROR, and the session goes on; a notification
// that panics closes its session with INTERNAL_ERROR. Other sessions are
// not affected. What the panic left half done in the application is the
// application's to repair.
type Handler struct {
	// Subscribe answers SUBSCRIBE with the track to serve; the session
	// then delivers the track's objects. nil refuses with
	// TRACK_DOES_NOT_EXIST, as does a nil track with a nil error.
	Subscribe func(ctx context.Context, s *Session, req *SubscribeRequest) (*Track, error)
	// SubscriptionEnded, when set, is called when a subscription that
	// Subscribe answered with a track has ended (UNSUBSCRIBE, the track
	// ended, or the session closed): a relay drops its upstream
	// subscription when the last one ends. Only SUBSCRIBEs are counted:
	// FETCH and TRACK_STATUS never reach it.
	SubscriptionEnded func(s *Session, req *SubscribeRequest, t *Track)

	// Fetch answers FETCH (standalone or joining, its range already
	// resolved in req) with the objects to send. FetchFromTrack answers
	// from a track's cache; an application with its own store returns
	// its objects itself. nil refuses with NOT_SUPPORTED.
	Fetch func(ctx context.Context, s *Session, req *FetchRequest) (*FetchResponse, error)

	// TrackStatus answers TRACK_STATUS with the track's status: whether
	// content exists, the largest location, the group order and
	// parameters, as SUBSCRIBE_OK would carry them. TrackStatusOf gives a
	// local track's; a relay passes on what its publisher answers
	// (Session.TrackStatus). The session sets the Request ID, Track Alias
	// 0 (§9.20) and, when the request names a group order, that order.
	// It opens no subscription. nil refuses with NOT_SUPPORTED, as does
	// a nil answer with a nil error with TRACK_DOES_NOT_EXIST.
	TrackStatus func(ctx context.Context, s *Session, req *TrackStatusRequest) (*TrackStatusOK, error)

	// Publish answers PUBLISH, a track the peer pushes. sub already
	// receives the track's objects (they may arrive before the answer).
	// A nil error accepts with PUBLISH_OK carrying the returned options
	// (Filter defaults to Largest Object; Paused sends Forward 0); use
	// PublishError(PublishUninterested, ...) for a track you do not
	// want. nil refuses with NOT_SUPPORTED.
	Publish func(ctx context.Context, s *Session, req *PublishRequest, sub *Subscription) (SubscribeOptions, error)

	// PublishNamespace answers PUBLISH_NAMESPACE: nil error sends
	// PUBLISH_NAMESPACE_OK. A nil field accepts the namespaces under the
	// prefix of one of the session's own namespace subscriptions
	// (Session.SubscribeNamespace, whose NamespaceSubscription reports
	// them) and refuses any other with NOT_SUPPORTED.
	PublishNamespace func(ctx context.Context, s *Session, req *PublishNamespaceRequest) error
	// PublishNamespaceDone, when set, tells that the peer withdrew a
	// namespace PublishNamespace accepted (PUBLISH_NAMESPACE_DONE), or the
	// session ended.
	PublishNamespaceDone func(s *Session, ns Namespace)

	// SubscribeNamespace answers SUBSCRIBE_NAMESPACE, after the session
	// has checked that the prefix overlaps none of the peer's others:
	// nil error sends SUBSCRIBE_NAMESPACE_OK. The handler then announces
	// every matching namespace, now and later, with
	// Session.PublishNamespace, and withdraws each with
	// NamespacePublication.Close when it ends (draft-14 §6). A nil field
	// refuses with NOT_SUPPORTED.
	SubscribeNamespace func(ctx context.Context, s *Session, req *SubscribeNamespaceRequest) error
	// NamespaceSubscribed, when set, is called once SUBSCRIBE_NAMESPACE_OK
	// has been sent: the moment to announce the namespaces that exist now.
	NamespaceSubscribed func(s *Session, prefix Namespace)
	// UnsubscribeNamespace, when set, tells that the peer ended a
	// namespace subscription (UNSUBSCRIBE_NAMESPACE) or the session ended.
	// For an UNSUBSCRIBE_NAMESPACE that came while SubscribeNamespace was
	// still deciding, it is called once SubscribeNamespace has returned
	// nil (and not at all after an error); that request gets no answer.
	UnsubscribeNamespace func(s *Session, prefix Namespace)
}

// The requests a Handler answers, as the peer sent them: aliases of
// package wire's control messages, so that a Handler needs no import of
// wire. Each carries the request's fields (namespace, track name,
// priority, filter, parameters).
type (
	SubscribeRequest          = wire.Subscribe
	TrackStatusRequest        = wire.TrackStatus
	PublishRequest            = wire.Publish
	PublishNamespaceRequest   = wire.PublishNamespace
	SubscribeNamespaceRequest = wire.SubscribeNamespace
)

// The answers a requester gets, as the peer sent them (Subscription.OK,
// Fetch.OK, Publication.OK, Session.TrackStatus): aliases of package wire's
// control messages, like the requests above.
type (
	SubscribeOK   = wire.SubscribeOK
	FetchOK       = wire.FetchOK
	PublishOK     = wire.PublishOK
	TrackStatusOK = wire.TrackStatusOK
)

// Tracks is a set of local tracks, for applications that publish their own
// tracks (a clock, a media publisher): its Handler serves them to
// SUBSCRIBE, FETCH (from each track's cache) and TRACK_STATUS. It is safe
// for concurrent use.
type Tracks struct {
	mu     sync.RWMutex
	tracks map[string]*Track
}

// nsKey is a map key for a namespace that keeps fields apart whatever
// bytes they hold: the field count, then each field prefixed by its length.
func nsKey(ns Namespace) string {
	k := binary.AppendUvarint(make([]byte, 0, 64), uint64(len(ns)))
	for _, f := range ns {
		k = binary.AppendUvarint(k, uint64(len(f)))
		k = append(k, f...)
	}
	return string(k)
}

// trackKey is a map key for a full track name.
func trackKey(n FullTrackName) string {
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
func (ts *Tracks) Remove(name FullTrackName) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	delete(ts.tracks, trackKey(name))
}

// Get returns the track with that name.
func (ts *Tracks) Get(name FullTrackName) (*Track, bool) {
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	t, ok := ts.tracks[trackKey(name)]
	return t, ok
}

// Handler returns a Handler that serves the set's tracks: SUBSCRIBE gets
// the named track, TRACK_STATUS its status (TrackStatusOf), FETCH is
// answered from its cache (FetchFromTrack), and a name not in the set is refused with
// TRACK_DOES_NOT_EXIST. Other requests are refused as the zero Handler
// refuses them; set more fields on the result to serve them.
func (ts *Tracks) Handler() Handler {
	return Handler{
		Subscribe: func(_ context.Context, _ *Session, req *SubscribeRequest) (*Track, error) {
			return ts.lookup(req.Namespace, req.Name)
		},
		TrackStatus: func(_ context.Context, _ *Session, req *TrackStatusRequest) (*TrackStatusOK, error) {
			t, err := ts.lookup(req.Namespace, req.Name)
			if err != nil {
				return nil, err
			}
			return TrackStatusOf(t), nil
		},
		Fetch: func(_ context.Context, _ *Session, req *FetchRequest) (*FetchResponse, error) {
			t, err := ts.lookup(req.Namespace, req.Name)
			if err != nil {
				return nil, err
			}
			return FetchFromTrack(t, req)
		},
	}
}

func (ts *Tracks) lookup(ns Namespace, name string) (*Track, error) {
	if t, ok := ts.Get(FullTrackName{Namespace: ns, Name: name}); ok {
		return t, nil
	}
	return nil, ErrTrackNotFound
}

// handlerTrack asks the handler for the track a SUBSCRIBE names. The
// returned release tells SubscriptionEnded that the subscription is over;
// it is never nil. A handler that returns neither a track nor an error
// gets ErrTrackNotFound.
func (s *Session) handlerTrack(ctx context.Context, req *SubscribeRequest) (*Track, func(), error) {
	h := s.cfg.Handler
	if h.Subscribe == nil {
		return nil, func() {}, ErrTrackNotFound
	}
	var track *Track
	err := s.callbackErr("Handler.Subscribe", func() (err error) {
		track, err = h.Subscribe(ctx, s, req)
		return err
	})
	release := func() {}
	if track != nil && h.SubscriptionEnded != nil {
		release = func() { s.callback("Handler.SubscriptionEnded", func() { h.SubscriptionEnded(s, req, track) }) }
	}
	if err == nil && track == nil {
		err = ErrTrackNotFound
	}
	return track, release, err
}
