package relay

import (
	"context"
	"errors"
	"fmt"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Shared TRACK_STATUS requests.
//
// A TRACK_STATUS the relay cannot answer from a track it relays live is
// asked upstream, of the session a SUBSCRIBE would reach (a publisher
// here, or another relay of the cluster). The downstream requests for the
// same track that route to the same upstream session while it is asked
// share that one upstream request, a statusFlight: N viewers asking at
// once cost the publisher one TRACK_STATUS (and, behind a publisher that
// does not answer it, one fallback SUBSCRIBE), and each downstream
// request gets the flight's answer, TRACK_STATUS_OK or the error with its
// code, as its own (the session copies the answer before it fills in its
// request ID).
//
// The flight belongs to the relay, not to the request that started it: it
// runs on a goroutine of the relay's, on a context of its own that ends
// with the upstream session or Relay.Close, and its own bounds
// (TrackStatusTimeout, UpstreamTimeout) end it. A downstream request that
// gives up (its session ends) only stops waiting; the others keep
// waiting, and the flight is cancelled when the last one leaves.
//
// Trust: sharing an answer gives no requester anything it would not get
// by asking alone. Each request was checked before its handler ran (a
// TRACK_STATUS needs the grant a SUBSCRIBE of the track needs, see
// Relay.checkRequest), and a flight is shared only by requests for the
// same track that resolved to the same upstream session, which is asked
// with no downstream request's token.

// statusKey names a statusFlight: the upstream session asked and the
// track (trackKey).
type statusKey struct {
	s *moqtransport.Session
	k string
}

// statusFlight is one upstream request for a track's status, and the
// downstream requests waiting for its answer.
type statusFlight struct {
	done chan struct{} // closed once st and err are set
	st   *moqtransport.TrackStatusOK
	err  error
	// waiting counts the downstream requests waiting for done, under
	// Relay.mu; the last to give up cancels the flight.
	waiting int
	cancel  context.CancelFunc
}

// forwardTrackStatus answers a TRACK_STATUS for track k of scope scName
// from o: it joins the flight asking o for the track's status, starting
// one when there is none (see the top of this file), and waits for its
// answer or for ctx to end.
func (r *Relay) forwardTrackStatus(ctx context.Context, scName, k string, o *origin, viaRemote bool, req *wire.TrackStatus) (*moqtransport.TrackStatusOK, error) {
	key := statusKey{s: o.s, k: k}
	r.mu.Lock()
	f := r.statuses[key]
	if f == nil {
		if r.closed {
			// Close has cancelled the flights and waits for the relay's
			// goroutines: start no more.
			r.mu.Unlock()
			return nil, moqtransport.SubscribeError(wire.SubscribeInternalError, "the relay is shutting down")
		}
		fctx, cancel := context.WithCancel(o.s.Context())
		f = &statusFlight{done: make(chan struct{}), cancel: cancel}
		r.statuses[key] = f
		r.useRemote(o.s) // until the flight ends
		ns, name := req.Namespace, req.Name
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			defer cancel()
			st, err := r.askStatus(fctx, scName, o, viaRemote, ns, name)
			r.mu.Lock()
			if r.statuses[key] == f {
				delete(r.statuses, key)
			}
			r.doneRemote(o.s)
			f.st, f.err = st, err
			r.mu.Unlock()
			close(f.done)
		}()
	}
	f.waiting++
	r.mu.Unlock()
	select {
	case <-f.done:
		return f.st, f.err
	case <-ctx.Done():
		r.mu.Lock()
		f.waiting--
		if f.waiting == 0 && r.statuses[key] == f {
			// No one is left to answer: a later request starts anew.
			delete(r.statuses, key)
			f.cancel()
		}
		r.mu.Unlock()
		return nil, ctx.Err()
	}
}

// askStatus asks o for a track's status with TRACK_STATUS, or, when o
// does not answer it, with SUBSCRIBE (see Relay.trackStatus). ctx is the
// flight's.
func (r *Relay) askStatus(ctx context.Context, scName string, o *origin, viaRemote bool, ns wire.Namespace, name string) (*moqtransport.TrackStatusOK, error) {
	if o.statusSilent.Load() {
		return r.statusBySubscribe(ctx, scName, o, viaRemote, ns, name)
	}
	wait := r.cfg.TrackStatusTimeout
	if viaRemote {
		wait += r.cfg.UpstreamTimeout
	}
	uctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	up, err := o.s.TrackStatus(uctx, ns, name)
	if err != nil {
		var re *moqtransport.RequestError
		switch {
		case errors.As(err, &re):
			return nil, err
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			if viaRemote {
				return nil, moqtransport.SubscribeError(wire.SubscribeTimeout, fmt.Sprintf("the relay serving the namespace did not answer TRACK_STATUS within %v", wait))
			}
			if errors.Is(err, moqtransport.ErrRequestNotSent) {
				// The publisher's MAX_REQUEST_ID left no request ID for
				// the TRACK_STATUS in time: it never got it, so it is not
				// marked silent; this flight asks with SUBSCRIBE.
				r.logFor(o.s).Debug("the publisher granted no request ID for TRACK_STATUS in time; asking with SUBSCRIBE this once", "namespace", o.ns.String(), "after", wait)
				return r.statusBySubscribe(ctx, scName, o, viaRemote, ns, name)
			}
			// Draft-14 has no way to cancel the TRACK_STATUS; a late
			// answer is dropped by the session.
			o.statusSilent.Store(true)
			r.logFor(o.s).Info("the publisher did not answer TRACK_STATUS; asking with SUBSCRIBE from now on", "namespace", o.ns.String(), "after", wait)
			return r.statusBySubscribe(ctx, scName, o, viaRemote, ns, name)
		case o.s.Context().Err() != nil:
			return nil, moqtransport.SubscribeError(wire.SubscribeInternalError, "the publisher's session ended before it answered TRACK_STATUS")
		case ctx.Err() != nil:
			// Cancelled by Relay.Close (or by its last requester leaving,
			// when no one reads this).
			return nil, moqtransport.SubscribeError(wire.SubscribeInternalError, "the relay is shutting down")
		}
		return nil, moqtransport.SubscribeError(wire.SubscribeInternalError, "forwarding TRACK_STATUS to the publisher failed: "+err.Error())
	}
	// The status, not the publisher's parameters: what the relay's own
	// SUBSCRIBE_OK would carry comes from its own track.
	return &moqtransport.TrackStatusOK{GroupOrder: up.GroupOrder, ContentExists: up.ContentExists, Largest: up.Largest}, nil
}

// statusBySubscribe answers TRACK_STATUS with a SUBSCRIBE, which a relay
// without an active subscription MAY initiate to determine the response
// (§9.20): sent to o, the origin the TRACK_STATUS went to, and shared as
// a subscriber's would be (subscribeOrigin), it gives the SUBSCRIBE_OK's
// largest location, or the SUBSCRIBE_ERROR. The reference it takes on the
// relayed track is given back once the status is read, so the upstream
// subscription is UNSUBSCRIBEd at once unless a subscriber shares it. It
// is bounded as a SUBSCRIBE is (UpstreamTimeout, TIMEOUT). Trust: the
// requesters are allowed this subscription because a TRACK_STATUS needs
// the same grant as a SUBSCRIBE of the track (requestNamespace, auth.go),
// checked before the handler runs; the TRACK_STATUS's own token notes no
// grant, and the subscription does not outlive the answer.
func (r *Relay) statusBySubscribe(ctx context.Context, scName string, o *origin, viaRemote bool, ns wire.Namespace, name string) (*moqtransport.TrackStatusOK, error) {
	r.mu.Lock()
	if !viaRemote && !r.serves(scName, o) {
		// Withdrawn while its TRACK_STATUS waited: a SUBSCRIBE routed now
		// would not reach it.
		r.mu.Unlock()
		return nil, moqtransport.SubscribeError(wire.SubscribeTrackDoesNotExist, "no publisher for namespace "+ns.String())
	}
	t, err := r.subscribeOrigin(ctx, scName, o, viaRemote, &wire.Subscribe{Namespace: ns, Name: name})
	if err != nil {
		return nil, err
	}
	st := moqtransport.TrackStatusOf(t)
	r.releaseTrack(t)
	return st, nil
}

// serves reports whether the local origin o is still published in scope
// scName. Called with r.mu held.
func (r *Relay) serves(scName string, o *origin) bool {
	sc := r.scopes[scName]
	return sc != nil && sc.origins[nsKey(o.ns)] == o
}
