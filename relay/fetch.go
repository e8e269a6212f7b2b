package relay

import (
	"context"
	"errors"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// fetch answers FETCH (Handler.Fetch) from the relay's cache when the cached track holds
// the start of the range, and otherwise forwards it to the track's
// publisher (the namespace's origin), streaming the answer through
// (draft-14 §8.3: a relay must not skip objects whose status it does not
// know). A joining fetch arrives here with its range already resolved.
func (r *Relay) fetch(ctx context.Context, s *moqtransport.Session, req *moqtransport.FetchRequest) (_ *moqtransport.FetchResponse, err error) {
	defer func() { r.metrics.requestError("fetch", err) }()
	exp, expires := r.takeGrant(s, req.RequestID)
	if !expires {
		return r.serveFetch(ctx, s, req)
	}
	// Granted by its own token: ended at its exp, whether it is still
	// being answered or sending objects (grants.go).
	stop := r.expireFetch(s, req.RequestID, exp)
	resp, err := r.serveFetch(ctx, s, req)
	if err != nil || resp == nil {
		stop()
		return resp, err
	}
	done := resp.Close
	resp.Close = func() {
		stop()
		if done != nil {
			done()
		}
	}
	return resp, nil
}

// serveFetch answers a FETCH from the cache or forwards it (see fetch).
func (r *Relay) serveFetch(ctx context.Context, s *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
	k := trackKey(req.Namespace, req.Name)
	viaCoordinator := r.cfg.Coordinator != nil && !r.isRelayPeer(s)
	// The same scopes in the same order as a SUBSCRIBE, but a FETCH holds
	// no reference on a relayed track and opens no upstream subscription:
	// it is served from a cache that exists or forwarded as a FETCH.
	var pub *relayTrack
	var o *origin
	var cached *moqtransport.Track
	for _, scName := range lookupScopes(scopeOf(s)) {
		r.mu.Lock()
		pub, o = r.resolveIn(scName, req.Namespace, k)
		if pub != nil {
			cached = pub.track
		} else if sc := r.scopes[scName]; sc != nil {
			if rt := sc.tracks[k]; rt != nil && rt.track != nil && !rt.track.Closed() {
				cached = rt.track
			}
		}
		r.mu.Unlock()
		if cached != nil && covers(cached, req.Start) {
			return moqtransport.FetchFromTrack(cached, req)
		}
		if pub == nil && o == nil && viaCoordinator {
			if remote, err := r.remoteOrigin(ctx, scName, req.Namespace); err == nil {
				o = remote
			}
		} else if pub == nil && o != nil && viaCoordinator && len(o.ns) < len(req.Namespace) {
			// As Subscribe: a longer prefix on another relay wins.
			if remote := r.longerElsewhere(ctx, scName, req.Namespace); remote != nil {
				o = remote
			}
		}
		if pub != nil || o != nil || cached != nil {
			break
		}
	}
	if o == nil {
		if cached != nil {
			return moqtransport.FetchFromTrack(cached, req) // a pushed track: the cache is all there is
		}
		return nil, moqtransport.FetchError(wire.FetchTrackDoesNotExist, "no publisher for namespace "+req.Namespace.String())
	}
	// The publisher's answer is awaited no longer than an upstream
	// SUBSCRIBE's: the downstream FETCH gets an answer either way.
	uctx, cancel := context.WithTimeout(ctx, r.cfg.UpstreamTimeout)
	defer cancel()
	up, err := o.s.Fetch(uctx, moqtransport.FetchOptions{
		Priority: req.Priority, GroupOrder: req.GroupOrder,
		Namespace: req.Namespace, Name: req.Name, Start: req.Start, End: req.End,
	})
	if err != nil {
		var re *moqtransport.RequestError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, moqtransport.FetchError(wire.FetchInternalError, "fetching from the publisher failed: "+err.Error())
	}
	ok := up.OK()
	return &moqtransport.FetchResponse{
		GroupOrder: ok.GroupOrder, EndOfTrack: ok.EndOfTrack, End: ok.End,
		Next:  up.ReadObject,
		Close: func() { _ = up.Cancel() },
	}, nil
}

// covers reports whether a cached track holds the start of a range: the
// start's group is cached from an object at or before the start.
func covers(t *moqtransport.Track, start wire.Location) bool {
	oldest, _, ok := t.Cache().Groups()
	if !ok || start.Group < oldest {
		return false
	}
	objs := t.Cache().Objects(start.Group)
	if len(objs) == 0 {
		// Not cached: either not published yet (the cache answers
		// INVALID_RANGE) or missed; let the publisher say.
		largest, exists := t.Largest()
		return exists && largest.Less(start)
	}
	return objs[0].ID <= start.Object
}
