package relay

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// fetch answers FETCH (Handler.Fetch) from the relay's cache when the cached track holds
// the range, and otherwise forwards it to the track's publisher (the
// namespace's origin), streaming the answer through (draft-14 §8.3, §9.16:
// a relay must not skip objects whose status it does not know, and asks
// upstream for them; UNKNOWN_STATUS_IN_RANGE is an original publisher's
// answer). A joining fetch arrives here with its range already resolved.
//
// A forwarded FETCH gets an answer whatever the publisher does: FETCH_ERROR
// TIMEOUT when it leaves the FETCH unanswered for UpstreamTimeout, and,
// since its FETCH_OK is passed on at once, a reset of the subscriber's
// fetch stream (CANCELLED, as Session.EndFetch ends one) when it sends
// FETCH_OK but does not open the fetch stream within UpstreamTimeout of
// the time it could have (FetchOptions.StreamTimeout: time in which every
// stream the relay lets it open was open does not count, so a fetch queued
// behind the publisher's other streams is not cut). The relay then sends it
// FETCH_CANCEL. Trust: nothing here relies on the publisher; the stream
// credit counted is the relay's own grant.
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
	//
	// This is its own walk, not Relay.route, because a relayed track serves
	// a FETCH only when its cache knows every object of the range, where route
	// lets its callers take an existing track whatever it holds. Two rules
	// of route would send a FETCH the cache cannot serve to the wrong place:
	//   - With a local origin of a shorter namespace, route asks the
	//     coordinator for a longer one elsewhere only when no relayed track
	//     exists (SUBSCRIBE shares that track, whatever its upstream). A
	//     FETCH the track's cache lacks must still go to the longest
	//     prefix's publisher, which may be another relay's.
	//   - With no origin in the scope, route takes a track relayed from
	//     another relay without asking the coordinator. A FETCH that track's
	//     cache lacks is forwarded to that relay, found through the
	//     coordinator.
	// Otherwise the two agree: a pushed track is served from its cache
	// (there is no publisher to ask), and a coordinator that fails is an
	// INTERNAL_ERROR, never a fall-through to the unscoped scope.
	var pub *relayTrack
	var o *origin
	// A remote o's lookup counted a use of its session, given back once
	// the FETCH has counted its own below.
	defer func() { o.endLookup() }()
	viaRemote := false // o is another relay of the cluster
	var cached *moqtransport.Track
	// orphan: a track relayed from a local publisher that withdrew its
	// namespace, which answers only when nothing else serves the track.
	var orphan *moqtransport.Track
	var cacheErr error // the cache's UNKNOWN_STATUS_IN_RANGE
	for _, scName := range lookupScopes(scopeOf(s)) {
		r.mu.Lock()
		var err error
		if pub, o, err = r.resolveClaimed(ctx, scName, req.Namespace, k); err != nil {
			r.mu.Unlock()
			return nil, moqtransport.FetchError(wire.FetchInternalError, "the request ended while its namespace's claim was pending")
		}
		if pub != nil {
			cached = pub.track
		} else if o != nil {
			// A relayed track's cache answers for the publisher it was
			// subscribed from only: after the namespace changed owner, the
			// new owner's objects are asked of it (see subscribeOrigin).
			if rt := r.liveFrom(o.s, scName, k); rt != nil {
				cached = rt.track
			}
		} else if sc := r.scopes[scName]; sc != nil {
			// No publisher in the scope: as SUBSCRIBE, a track relayed
			// from another relay is taken as it is (fromRemoteRelay); one
			// from a local publisher that withdrew its namespace answers
			// only if no other scope or relay serves the track.
			if rt := sc.tracks[k]; rt != nil && rt.track != nil && !rt.track.Closed() {
				if rt.remote {
					cached = rt.track
				} else if orphan == nil {
					orphan = rt.track
				}
			}
		}
		r.mu.Unlock()
		if pub != nil {
			// A pushed track serves no one until its claim succeeds (see
			// Ownership in the package doc), FETCH as SUBSCRIBE and
			// TRACK_STATUS: it answered from the cache while the
			// coordinator could still refuse the claim.
			if !pub.claimed() {
				r.logFor(s).Debug("a FETCH waits for its pushed track's claim with the coordinator", "request", req.RequestID, "track", req.Namespace.String()+"/"+req.Name)
			}
			if err := pub.wait(ctx); ctx.Err() != nil {
				return nil, moqtransport.FetchError(wire.FetchInternalError, "the request ended while the track's claim was pending")
			} else if err != nil {
				return nil, moqtransport.FetchError(wire.FetchTrackDoesNotExist, "no publisher for track "+req.Namespace.String()+"/"+req.Name)
			}
		}
		if cached != nil {
			// The cache answers only a range it knows complete
			// (FetchFromRelayedTrack: every object of it cached, each
			// whole group's end known), decided in one hold of the
			// track's lock; its UNKNOWN_STATUS_IN_RANGE (a subgroup
			// stream late or reset, a group missing, truncated or
			// evicted, an object past MAX_CACHE_DURATION) is for an
			// original publisher to say: a relay asks upstream (§9.16).
			// A pushed track's cache is all there is: it answers what it
			// holds, as an original publisher does.
			if pub != nil {
				return moqtransport.FetchFromTrack(cached, req)
			}
			resp, err := moqtransport.FetchFromRelayedTrack(cached, req)
			if !unknownStatus(err) {
				return resp, err
			}
			cacheErr = err
		}
		if pub == nil && o == nil && viaCoordinator {
			remote, err := r.remoteOrigin(ctx, scName, req.Namespace)
			switch {
			case err == nil:
				o, viaRemote = remote, true
			case !errors.Is(err, ErrNotFound):
				// As Relay.route: another relay may serve the namespace
				// in this scope, shadowing the unscoped scope's publisher,
				// and the track is not known not to exist.
				r.logFor(s).Warn("routing through the coordinator failed", "request", req.RequestID, "namespace", req.Namespace.String(), "err", err)
				return nil, moqtransport.FetchError(wire.FetchInternalError, "routing to another relay failed")
			}
		} else if pub == nil && o != nil && viaCoordinator && len(o.ns) < len(req.Namespace) {
			// As Subscribe: a longer prefix on another relay wins. The
			// track relayed from that relay, if the subscribers share one,
			// answers from its cache first, as one from o would have.
			if remote := r.longerElsewhere(ctx, scName, req.Namespace); remote != nil {
				o.endLookup()
				o, viaRemote = remote, true
				if cached == nil {
					r.mu.Lock()
					rt := r.liveFrom(o.s, scName, k)
					r.mu.Unlock()
					if rt != nil {
						resp, err := moqtransport.FetchFromRelayedTrack(rt.track, req)
						if !unknownStatus(err) {
							return resp, err
						}
						cacheErr = err
					}
				}
			}
		}
		if pub != nil || o != nil || cached != nil {
			break
		}
	}
	if o == nil {
		// A relayed track whose publisher is gone: the cache is all
		// there is, and answers what it holds.
		if cached == nil {
			cached = orphan
		}
		if cached != nil {
			return moqtransport.FetchFromTrack(cached, req)
		}
		return nil, moqtransport.FetchError(wire.FetchTrackDoesNotExist, "no publisher for namespace "+req.Namespace.String())
	}
	// A relayed track's cache that holds objects of the range but cannot
	// show it complete is the fallback when the publisher cannot answer:
	// some publishers (moq-rs) drop FETCH without a word, and some
	// declare no group ends, so their groups are never known complete.
	// Such a publisher's FETCH is waited for TrackStatusTimeout, not
	// UpstreamTimeout, and one that left a FETCH unanswered is not asked
	// again for a while (fetchSilence: a slow publisher may answer the
	// next one in time), one that answered NOT_SUPPORTED not while its
	// namespace stays published: the cache answers with what it holds, as
	// it did before it learnt to ask. That answer may lack objects of a
	// subgroup stream that was late or reset, which the subscriber reads as
	// objects that do not exist; no better source exists for it. Only a
	// cache that can answer the range on its own falls back: one whose
	// range starts before what it holds, or runs past MAX_CACHE_DURATION,
	// or may cross a group it evicted, has nothing to say, and
	// the publisher is waited for as any upstream request (an archive can
	// take its time). Another relay of the cluster always answers FETCH,
	// so it is waited for as any upstream request too.
	var fromCache *moqtransport.FetchResponse // the fallback's answer
	if cached != nil && cacheErr != nil && !viaRemote {
		if resp, err := moqtransport.FetchFromTrack(cached, req); err == nil {
			fromCache = resp
		}
	}
	fallback := fromCache != nil
	if fallback && o.fetchSilence.skip(time.Now()) {
		return fromCache, nil
	}
	wait := r.cfg.UpstreamTimeout
	if fallback {
		wait = r.cfg.TrackStatusTimeout
	}
	// The publisher's answer is awaited no longer than an upstream
	// SUBSCRIBE's (TrackStatusTimeout when the cache can fall back), and
	// its fetch stream after FETCH_OK for UpstreamTimeout of the time it
	// could open it: the downstream FETCH gets an answer either way.
	uctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	// A session to another relay is used until the response is done
	// (Close) or refused (see remote).
	r.mu.Lock()
	r.useRemote(o.s)
	r.mu.Unlock()
	done := sync.OnceFunc(func() {
		r.mu.Lock()
		r.doneRemote(o.s)
		r.mu.Unlock()
	})
	up, err := o.s.Fetch(uctx, moqtransport.FetchOptions{
		Priority: req.Priority, GroupOrder: req.GroupOrder,
		Namespace: req.Namespace, Name: req.Name, Start: req.Start, End: req.End,
		StreamTimeout: r.cfg.UpstreamTimeout,
	})
	if err != nil {
		done()
		var re *moqtransport.RequestError
		switch {
		case fallback && errors.Is(err, moqtransport.FetchError(wire.FetchNotSupported, "")):
			o.fetchSilence.refused()
			r.logFor(s).Info("the publisher does not support FETCH; answering its tracks' FETCHes from the cache from now on", "namespace", o.ns.String())
			return moqtransport.FetchFromTrack(cached, req)
		case errors.As(err, &re):
			o.fetchSilence.answered()
			return nil, err
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil && fallback:
			if !errors.Is(err, moqtransport.ErrRequestNotSent) {
				// Sent and unanswered: draft-14 gives no way to take
				// it back but FETCH_CANCEL, which the session sent as
				// the request was given up.
				pause := o.fetchSilence.missed(time.Now(), r.cfg.TrackStatusTimeout)
				r.logFor(s).Info("the publisher did not answer FETCH; answering its tracks' FETCHes from the cache for a while", "namespace", o.ns.String(), "after", wait, "asking again in", pause)
			}
			return moqtransport.FetchFromTrack(cached, req)
		case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
			return nil, moqtransport.FetchError(wire.FetchTimeout, fmt.Sprintf("the publisher did not answer the relay's FETCH within %v", wait))
		}
		return nil, moqtransport.FetchError(wire.FetchInternalError, "fetching from the publisher failed: "+err.Error())
	}
	o.fetchSilence.answered()
	ok := up.OK()
	return &moqtransport.FetchResponse{
		GroupOrder: ok.GroupOrder, EndOfTrack: ok.EndOfTrack, End: ok.End,
		Next: func(ctx context.Context) (*moqtransport.Object, error) {
			obj, err := up.ReadObject(ctx)
			if errors.Is(err, moqtransport.ErrFetchStreamTimeout) {
				// FETCH_OK went downstream as soon as it came: the
				// publisher's fetch (cancelled with FETCH_CANCEL) ends
				// the subscriber's as the relay's own ending of it does,
				// with its stream reset CANCELLED (§10.4.3).
				// Counted as a FETCH refused with TIMEOUT.
				r.logFor(s).Warn("the publisher answered FETCH_OK but never opened the fetch stream; ending the forwarded fetch",
					"request", req.RequestID, "track", wire.FullTrackName{Namespace: req.Namespace, Name: req.Name}.String(), "waited", r.cfg.UpstreamTimeout)
				reason := fmt.Sprintf("the publisher did not open the fetch stream within %v of FETCH_OK", r.cfg.UpstreamTimeout)
				r.metrics.requestError("fetch", moqtransport.FetchError(wire.FetchTimeout, reason))
				s.EndFetch(req.RequestID, wire.FetchTimeout, reason)
			}
			return obj, err
		},
		Close: func() {
			_ = up.Cancel()
			done()
		},
	}, nil
}

// unknownStatus reports whether err is FETCH_ERROR UNKNOWN_STATUS_IN_RANGE.
func unknownStatus(err error) bool {
	return errors.Is(err, moqtransport.FetchError(wire.FetchUnknownStatusInRange, ""))
}

// fetchSilence is what a relay knows of whether a publisher answers the
// FETCHes its cache could answer in part. A publisher that left one
// unanswered is not asked again until a pause is over: ten times the wait
// it was given, doubled at each further silence, at most 600 times (10
// minutes at the default TrackStatusTimeout); an answer, or a refusal
// other than NOT_SUPPORTED, ends the pause and the doubling. A publisher
// that answered NOT_SUPPORTED is not asked again. (It used to be never asked
// again after one FETCH unanswered: a publisher slow once, an archive at
// 1.2 s, was answered from the cache for good, which may lack a late
// subgroup's objects.)
type fetchSilence struct {
	mu     sync.Mutex
	never  bool      // NOT_SUPPORTED
	misses int       // FETCHes left unanswered in a row
	until  time.Time // not asked before
}

// skip reports whether a FETCH is answered from the cache without asking.
func (f *fetchSilence) skip(now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.never || now.Before(f.until)
}

// missed records a FETCH left unanswered for wait, and returns the pause
// before the publisher is asked again. FETCHes that were in flight
// together are one silence: one that times out during the pause another
// started neither doubles nor extends it (seven at once would otherwise
// reach the 600x cap at the first silence).
func (f *fetchSilence) missed(now time.Time, wait time.Duration) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	if now.Before(f.until) {
		return f.until.Sub(now)
	}
	f.misses++
	pause := 10 * wait << min(f.misses-1, 6) // 10, 20, ..., 640 times
	pause = min(pause, 600*wait)
	f.until = now.Add(pause)
	return pause
}

// answered records a FETCH answered in time: the publisher is asked from
// now on, and a later silence starts the pauses over.
func (f *fetchSilence) answered() {
	f.mu.Lock()
	f.misses, f.until = 0, time.Time{}
	f.mu.Unlock()
}

// refused records NOT_SUPPORTED.
func (f *fetchSilence) refused() {
	f.mu.Lock()
	f.never = true
	f.mu.Unlock()
}
