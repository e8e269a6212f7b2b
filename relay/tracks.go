package relay

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Shared upstream subscriptions: one relayTrack per track and scope,
// counted by its downstream subscribers (and held by a PUBLISH).
//
// A relayTrack is found by name in its scope (scope.tracks) while it
// serves new subscribers, and by its Track (Relay.byTrack) while anyone
// holds it: SubscriptionEnded gets only the Track, and the relayTrack may
// have left its scope by then (its upstream ended and a new subscriber
// replaced it, or its PUBLISH ended). byTrack holds it from the moment its
// Track is known until the last reference is given back (and, for a
// pushed track, its publication has ended): forgetLocked.

// relayTrack is one upstream subscription shared by its downstream ones.
type relayTrack struct {
	key   string
	scope string
	ns    wire.Namespace
	up    *moqtransport.Subscription
	upLog *slog.Logger // the upstream session's logger, with the request
	track *moqtransport.Track
	refs  int
	ready chan struct{} // closed once up is known or failed
	err   error
	// published: the track was pushed to the relay with PUBLISH by owner;
	// it lives as long as that publication, whatever its subscribers do.
	published bool
	owner     *moqtransport.Session
	// reg: a published track's namespace registration with the
	// coordinator; ended: its publication is over. Both under Relay.mu.
	reg   Registration
	ended bool
	// remote: the upstream is another relay, found through the
	// coordinator.
	remote bool
	// expiry ends a published track at its PUBLISH token's exp
	// (grants.go); stopped when the publication ends. Under Relay.mu.
	expiry *time.Timer
}

// claimed reports whether a published track is served: its claim on its
// namespace succeeded.
func (rt *relayTrack) claimed() bool {
	select {
	case <-rt.ready:
		return rt.err == nil
	default:
		return false
	}
}

// subscribeOrigin serves a track of scope scName from o, sharing the
// track's upstream subscription. Called with r.mu held; it unlocks it.
func (r *Relay) subscribeOrigin(ctx context.Context, scName string, o *origin, viaRemote bool, req *wire.Subscribe) (*moqtransport.Track, error) {
	k := trackKey(req.Namespace, req.Name)
	sc := r.scope(scName)
	rt := sc.tracks[k]
	if rt != nil && rt.track != nil && rt.track.Closed() {
		// The upstream subscription ended: subscribe again.
		delete(sc.tracks, k)
		rt = nil
	}
	if rt == nil {
		rt = &relayTrack{key: k, scope: scName, ns: req.Namespace, ready: make(chan struct{}), remote: viaRemote}
		sc.tracks[k] = rt
		rt.refs++
		r.mu.Unlock()
		r.subscribeUpstream(ctx, o, rt, req)
	} else {
		rt.refs++
		r.mu.Unlock()
	}
	return r.awaitTrack(ctx, rt)
}

// awaitTrack waits for a relayed track's upstream subscription; the
// caller holds a reference, which a failure gives back.
func (r *Relay) awaitTrack(ctx context.Context, rt *relayTrack) (*moqtransport.Track, error) {
	select {
	case <-rt.ready:
	case <-ctx.Done():
		r.release(rt)
		return nil, ctx.Err()
	}
	if rt.err != nil {
		r.release(rt)
		return nil, rt.err
	}
	return rt.track, nil
}

// subscribeUpstream opens the shared upstream subscription of rt.
func (r *Relay) subscribeUpstream(ctx context.Context, o *origin, rt *relayTrack, req *wire.Subscribe) {
	defer close(rt.ready)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.UpstreamTimeout)
	defer cancel()
	start := time.Now()
	// The upstream subscription serves every downstream one: it starts at
	// the newest object and forwards, whatever the first subscriber asked
	// (§8.3: relays aggregate with Largest Object).
	up, err := o.s.Subscribe(ctx, req.Namespace, req.Name, moqtransport.SubscribeOptions{
		Priority: moqtransport.DefaultPriority,
		Filter:   wire.Filter{Type: wire.FilterLargestObject},
	})
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.metrics.upstreamSubscribe.WithLabelValues(result).Observe(time.Since(start).Seconds())
	if err != nil {
		var re *moqtransport.RequestError
		if !errors.As(err, &re) {
			err = moqtransport.SubscribeError(wire.SubscribeInternalError, "upstream subscription failed: "+err.Error())
		}
		rt.err = err
		r.logFor(o.s).Info("upstream subscribe failed", "track", req.Namespace.String()+"/"+req.Name, "err", err)
		return
	}
	// When the publisher's session ends, the track ends for its
	// subscribers with GOING_AWAY; a PUBLISH_DONE passes its own status
	// through the track.
	r.mu.Lock()
	rt.up, rt.track = up, up.Track()
	rt.upLog = r.logFor(o.s).With("request", up.RequestID())
	r.byTrack[rt.track] = rt
	r.mu.Unlock()
	rt.upLog.Info("upstream subscribed", "track", req.Namespace.String()+"/"+req.Name)
}

// subscriptionEnded drops a downstream subscriber; the last one takes the
// upstream subscription with it. The relayTrack is found from its Track in
// one map look-up, whatever the number of tracks and scopes.
func (r *Relay) subscriptionEnded(s *moqtransport.Session, req *wire.Subscribe, t *moqtransport.Track) {
	r.stopSubscriptionExpiry(s, req.RequestID)
	r.metrics.activeSubscriptions.Add(-1)
	r.releaseTrack(t)
}

// releaseTrack drops one reference to the relayed track t (a subscriber's,
// or a TRACK_STATUS answer's).
func (r *Relay) releaseTrack(t *moqtransport.Track) {
	r.mu.Lock()
	rt := r.byTrack[t]
	r.mu.Unlock()
	if rt != nil {
		r.release(rt)
	}
}

func (r *Relay) release(rt *relayTrack) {
	r.mu.Lock()
	rt.refs--
	last := rt.refs == 0 && !rt.published
	if last {
		if sc := r.scopes[rt.scope]; sc != nil && sc.tracks[rt.key] == rt {
			delete(sc.tracks, rt.key)
			r.dropIfEmpty(rt.scope)
		}
	}
	r.forgetLocked(rt)
	r.mu.Unlock()
	if last && rt.up != nil {
		_ = rt.up.Unsubscribe()
		rt.upLog.Info("upstream unsubscribed", "track", rt.up.Name().String())
	}
}

// forgetLocked drops rt from byTrack once nothing holds it: no downstream
// subscriber, and, for a pushed track, no publication either. Called with
// r.mu held.
func (r *Relay) forgetLocked(rt *relayTrack) {
	if rt.refs == 0 && (!rt.published || rt.ended) && rt.track != nil && r.byTrack[rt.track] == rt {
		delete(r.byTrack, rt.track)
	}
}

// dropClaim removes a published track whose claim failed, and answers the
// subscribers waiting for it.
func (r *Relay) dropClaim(sc *scope, rt *relayTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sc.tracks[rt.key] == rt {
		delete(sc.tracks, rt.key)
	}
	if r.scopes[rt.scope] == sc {
		r.dropIfEmpty(rt.scope)
	}
	rt.err = moqtransport.SubscribeError(wire.SubscribeTrackDoesNotExist, "no publisher for track "+rt.ns.String())
	close(rt.ready)
}
