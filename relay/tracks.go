package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Shared upstream subscriptions: one relayTrack per track and scope,
// counted by its downstream subscribers (and held by a PUBLISH).
//
// A relayTrack is found by name in its scope (scope.tracks) while it
// serves new subscribers, by the session it was asked of (Relay.upstream)
// until its upstream request is over, and by its Track (Relay.byTrack)
// while anyone holds it: SubscriptionEnded gets only the Track, and the
// relayTrack may have left its scope by then (its upstream ended, or its
// namespace changed owner, and a new subscriber replaced it; or its
// PUBLISH ended). byTrack holds it from the moment its Track is known
// until the last reference is given back (and, for a pushed track, its
// publication has ended): forgetLocked.
//
// Ownership: there is at most one upstream subscription per session and
// track at a time (draft-14 §9.7: a publisher may close the session of a
// subscriber that subscribes twice to one track, and moqtransport does).
// Relay.upstream enforces it: a request that resolves to a session shares
// the relayTrack asked of that session while it serves, even one another
// owner's track displaced from scope.tracks (a namespace that went X, Y,
// then X again is served by X's first subscription); and a new one for
// that session and track is asked only once the previous one's upstream
// request is over (subscribeOrigin).

// relayTrack is one upstream subscription shared by its downstream ones.
type relayTrack struct {
	key   string
	scope string
	ns    wire.Namespace
	// from is the session the upstream SUBSCRIBE is asked of: the
	// publisher owning the namespace when the track was subscribed, or
	// another relay; nil for a pushed track. Set at creation, then read
	// only.
	from  *moqtransport.Session
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
	// revoked: the grant it was subscribed under ended (endGranted);
	// an upstream answer that comes after is not served. Under Relay.mu.
	revoked bool
	// expiry ends a published track at its PUBLISH token's exp
	// (grants.go); stopped when the publication ends. Under Relay.mu.
	expiry *time.Timer
	// cancel ends the upstream SUBSCRIBE while it waits for its answer:
	// called when the last subscriber leaves, or the relay closes. Set
	// before the request starts, then read only.
	cancel context.CancelFunc
	// over is closed, under Relay.mu, once the upstream request is over
	// on our side: refused or given up (moqtransport sent UNSUBSCRIBE
	// then), or UNSUBSCRIBEd after its last subscriber left or its grant
	// ended. Until then the relayTrack is in Relay.upstream (unless a
	// newer one, which waits for it, took its place), and a new upstream
	// SUBSCRIBE for the track to the same session waits for it: a
	// publisher may take a SUBSCRIBE for a track it still serves to the
	// session for a protocol violation.
	over chan struct{}
}

// upstreamKey is a relayTrack's key in Relay.upstream: the upstream
// session it was asked of and the track, since a session serves one
// subscription per track.
type upstreamKey struct {
	from  *moqtransport.Session
	scope string
	k     string
}

func (rt *relayTrack) upstreamKey() upstreamKey { return upstreamKey{rt.from, rt.scope, rt.key} }

// upstreamTracks is Relay.upstream: the newest relayed track asked of
// each session for each track of each scope, by upstreamKey, and the
// same tracks by the session they were asked of (relayTrack.from), so
// that what one session serves is found without looking at any other
// session's (endGranted). The two tables change only through put and
// remove, together, so they cannot drift apart. Under Relay.mu.
type upstreamTracks struct {
	byKey  map[upstreamKey]*relayTrack
	byFrom map[*moqtransport.Session]map[upstreamKey]*relayTrack
}

func newUpstreamTracks() upstreamTracks {
	return upstreamTracks{byKey: map[upstreamKey]*relayTrack{}, byFrom: map[*moqtransport.Session]map[upstreamKey]*relayTrack{}}
}

// get returns the relayed track under key, nil if none.
func (u *upstreamTracks) get(key upstreamKey) *relayTrack { return u.byKey[key] }

// put makes rt the relayed track under its key. One already there leaves
// the table: it serves no one, and rt's upstream SUBSCRIBE waits for its
// request to be over (subscribeOrigin).
func (u *upstreamTracks) put(rt *relayTrack) {
	key := rt.upstreamKey()
	u.byKey[key] = rt
	from := u.byFrom[rt.from]
	if from == nil {
		from = map[upstreamKey]*relayTrack{}
		u.byFrom[rt.from] = from
	}
	from[key] = rt
}

// remove takes rt out, when it is still the one under its key (a newer
// one that took its place stays); a session left with none is forgotten.
func (u *upstreamTracks) remove(rt *relayTrack) {
	key := rt.upstreamKey()
	if u.byKey[key] != rt {
		return
	}
	delete(u.byKey, key)
	from := u.byFrom[rt.from]
	delete(from, key)
	if len(from) == 0 {
		delete(u.byFrom, rt.from)
	}
}

// all returns every relayed track in the table, for the caller to range
// over without changing the table.
func (u *upstreamTracks) all() map[upstreamKey]*relayTrack { return u.byKey }

// from returns the relayed tracks in the table asked of session s, for
// the caller to range over without changing the table.
func (u *upstreamTracks) from(s *moqtransport.Session) map[upstreamKey]*relayTrack {
	return u.byFrom[s]
}

// serving reports whether a relayed track serves new subscribers: it has
// some, its grant holds and its upstream subscription has not ended (or
// is still asked). Called with Relay.mu held.
func (rt *relayTrack) serving() bool {
	return rt.refs > 0 && !rt.revoked && (rt.track == nil || !rt.track.Closed())
}

// liveFrom returns the relayed track of scope scName subscribed from s
// for track k when it is live (subscribed, serving): the one a SUBSCRIBE
// resolving to s would share, nil if none. Called with r.mu held.
func (r *Relay) liveFrom(s *moqtransport.Session, scName, k string) *relayTrack {
	if rt := r.upstream.get(upstreamKey{s, scName, k}); rt != nil && rt.track != nil && rt.serving() {
		return rt
	}
	return nil
}

// endUpstream marks rt's upstream request over (rt.over), and gives back
// its use of a remote session; again, it does nothing.
func (r *Relay) endUpstream(rt *relayTrack) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case <-rt.over:
		return
	default:
	}
	close(rt.over)
	r.upstream.remove(rt)
	r.doneRemote(rt.from)
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
//
// Trust: an upstream subscription is shared only by requests that resolve
// to the session it was asked of (relayTrack.from). A namespace that
// changes owner (its publisher withdrew it, or its token expired, and
// another session published it) leaves the old subscription serving the
// subscribers it has, as draft-14 lets it, but a new subscriber is served
// by the new owner, which is asked with a SUBSCRIBE of its own: it never
// gets the previous owner's objects for a track the new owner now answers
// for. Should the namespace come back to the previous owner while its
// subscription lives, that subscription serves again (Relay.upstream):
// the owner is never asked a second SUBSCRIBE for a track it serves us.
//
// Ownership: a track pushed with PUBLISH is its publisher's, its claim
// pending or not: a request that reaches here for it (a TRACK_STATUS's
// fallback SUBSCRIBE that waited while the track was pushed, a route
// through the coordinator that raced the PUBLISH) is served from it, and
// never displaces it with a subscription to the namespace's origin (which
// took the track from the scope: later SUBSCRIBEs were refused, and a
// second PUBLISH of it accepted).
//
// The upstream SUBSCRIBE belongs to the shared track, not to the
// subscriber that came first: it runs on a goroutine of the relay's with
// a context of its own, which ends with the upstream session, at
// UpstreamTimeout (SUBSCRIBE_ERROR TIMEOUT for everyone waiting), or when
// the last waiting subscriber leaves (release). A subscriber that leaves
// early only gives its reference back; the others keep waiting.
func (r *Relay) subscribeOrigin(ctx context.Context, scName string, o *origin, viaRemote bool, req *wire.Subscribe) (*moqtransport.Track, error) {
	k := trackKey(req.Namespace, req.Name)
	sc := r.scope(scName)
	if pub := sc.tracks[k]; pub != nil && pub.published && !pub.track.Closed() {
		pub.refs++
		r.mu.Unlock()
		return r.awaitTrack(ctx, pub) // its claim decided first (ready)
	}
	key := upstreamKey{o.s, scName, k}
	rt := r.upstream.get(key)
	if rt != nil && rt.serving() {
		// Asked of o's session already: shared, and found by name again
		// (another owner's track it displaced keeps its subscribers, and
		// its place in Relay.upstream).
		sc.tracks[k] = rt
		rt.refs++
		r.mu.Unlock()
		return r.awaitTrack(ctx, rt)
	}
	// An upstream request for the track still open on o's session (its
	// last subscriber left, or its grant ended, and its UNSUBSCRIBE is on
	// its way) goes first. One whose subscription the publisher ended
	// (PUBLISH_DONE, its track closed) is over upstream already.
	prev := rt
	if prev != nil && !prev.revoked && prev.track != nil && prev.track.Closed() {
		prev = nil
	}
	if r.closed {
		// Close has cancelled the pending upstream SUBSCRIBEs and
		// waits for the relay's goroutines: start no more.
		r.mu.Unlock()
		return nil, moqtransport.SubscribeError(wire.SubscribeInternalError, "the relay is shutting down")
	}
	// Another owner's track the scope had by this name keeps its
	// subscribers (and its place in Relay.upstream); its end (release)
	// takes only itself away.
	rt = &relayTrack{key: k, scope: scName, ns: req.Namespace, from: o.s, ready: make(chan struct{}), over: make(chan struct{}), remote: viaRemote}
	sc.tracks[k] = rt
	r.upstream.put(rt)
	rt.refs++
	r.useRemote(o.s) // until endUpstream
	uctx, cancel := context.WithTimeout(o.s.Context(), r.cfg.UpstreamTimeout)
	rt.cancel = cancel
	name := req.Name
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer cancel()
		if prev != nil {
			// Its UNSUBSCRIBE goes first. Waited for even when rt is
			// given up meanwhile: rt has taken prev's place in
			// Relay.upstream, and a later track waits for rt only. prev
			// ends within its own UpstreamTimeout.
			<-prev.over
		}
		r.subscribeUpstream(uctx, o, rt, name)
	}()
	return r.awaitTrack(ctx, rt)
}

// awaitTrack waits for a relayed track's upstream subscription; the
// caller holds a reference, which a failure gives back.
func (r *Relay) awaitTrack(ctx context.Context, rt *relayTrack) (*moqtransport.Track, error) {
	if err := rt.wait(ctx); err != nil {
		r.release(rt)
		return nil, err
	}
	return rt.track, nil
}

// wait waits for rt to be ready (its upstream answer, or a pushed track's
// claim decided) and returns ctx's error, or rt's if it failed.
func (rt *relayTrack) wait(ctx context.Context) error {
	select {
	case <-rt.ready:
		return rt.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// subscribeUpstream opens the shared upstream subscription of rt, on the
// track's own context (see subscribeOrigin).
func (r *Relay) subscribeUpstream(ctx context.Context, o *origin, rt *relayTrack, name string) {
	defer close(rt.ready)
	start := time.Now()
	full := rt.ns.String() + "/" + name
	// The upstream subscription serves every downstream one: it starts at
	// the newest object and forwards, whatever the first subscriber asked
	// (§8.3: relays aggregate with Largest Object).
	var up *moqtransport.Subscription
	err := ctx.Err() // given up while it waited for a previous one: no SUBSCRIBE
	if err == nil {
		up, err = o.s.Subscribe(ctx, rt.ns, name, moqtransport.SubscribeOptions{
			Priority: moqtransport.DefaultPriority,
			Filter:   wire.Filter{Type: wire.FilterLargestObject},
		})
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	r.metrics.upstreamSubscribe.WithLabelValues(result).Observe(time.Since(start).Seconds())
	if err != nil {
		r.mu.Lock()
		revoked := rt.revoked
		r.mu.Unlock()
		var re *moqtransport.RequestError
		switch {
		case revoked:
			err = moqtransport.SubscribeError(wire.SubscribeTrackDoesNotExist, "no publisher for namespace "+rt.ns.String()+": its grant ended")
		case errors.As(err, &re):
		case errors.Is(err, context.DeadlineExceeded):
			err = moqtransport.SubscribeError(wire.SubscribeTimeout, fmt.Sprintf("the publisher did not answer the relay's SUBSCRIBE within %v", r.cfg.UpstreamTimeout))
		case o.s.Context().Err() != nil:
			err = moqtransport.SubscribeError(wire.SubscribeInternalError, "the publisher's session ended before it answered")
		default:
			err = moqtransport.SubscribeError(wire.SubscribeInternalError, "upstream subscription failed: "+err.Error())
		}
		rt.err = err
		r.endUpstream(rt)
		r.logFor(o.s).Info("upstream subscribe failed", "track", full, "err", err)
		return
	}
	// When the publisher's session ends, the track ends for its
	// subscribers with GOING_AWAY; a PUBLISH_DONE passes its own status
	// through the track.
	r.mu.Lock()
	abandoned := rt.refs == 0 || rt.revoked // every subscriber left, or the grant ended, as the answer came
	if rt.revoked {
		rt.err = moqtransport.SubscribeError(wire.SubscribeTrackDoesNotExist, "no publisher for namespace "+rt.ns.String()+": its grant ended")
	} else if abandoned {
		rt.err = moqtransport.SubscribeError(wire.SubscribeInternalError, "every subscriber left")
	} else {
		rt.up, rt.track = up, up.Track()
		rt.upLog = r.logFor(o.s).With("request", up.RequestID())
		r.byTrack[rt.track] = rt
	}
	r.mu.Unlock()
	if abandoned {
		_ = up.Unsubscribe()
		r.endUpstream(rt)
		return
	}
	rt.upLog.Info("upstream subscribed", "track", full)
}

// subscriptionEnded drops a downstream subscriber; the last one takes the
// upstream subscription with it. The relayTrack is found from its Track in
// one map look-up, whatever the number of tracks and scopes.
func (r *Relay) subscriptionEnded(s *moqtransport.Session, req *wire.Subscribe, t *moqtransport.Track) {
	r.stopSubscriptionExpiry(s, req.RequestID)
	r.metrics.activeSubscriptions.Add(-1)
	r.releaseTrack(t)
}

// releaseTrack drops a subscriber's reference to the relayed track t.
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
		// It stays in Relay.upstream, serving no one, until its
		// upstream request is over (endUpstream).
		if sc := r.scopes[rt.scope]; sc != nil && sc.tracks[rt.key] == rt {
			delete(sc.tracks, rt.key)
			r.dropIfEmpty(rt.scope)
		}
	}
	r.forgetLocked(rt)
	up := rt.up
	r.mu.Unlock()
	if !last {
		return
	}
	if up == nil {
		// Still waiting for the publisher's answer (or it failed): the
		// request ends with its last subscriber.
		if rt.cancel != nil {
			rt.cancel()
		}
		return
	}
	_ = up.Unsubscribe()
	r.endUpstream(rt)
	rt.upLog.Info("upstream unsubscribed", "track", up.Name().String())
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
