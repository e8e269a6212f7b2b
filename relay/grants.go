package relay

import (
	"slices"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Request grants: what a request's own token (an AUTHORIZATION TOKEN in
// its SUBSCRIBE, PUBLISH or PUBLISH_NAMESPACE, not the session's) grants
// lasts until that token's exp, and no longer. checkRequest notes the exp
// of such a grant by request ID; the request's handler takes the note
// and, once the request is accepted, arms one timer (time.AfterFunc: no
// goroutine until it fires) that ends what was granted:
//
//   - a SUBSCRIBE: PUBLISH_DONE UNAUTHORIZED, "the subscriber is no longer
//     authorized to subscribe to the given track" (§9.12; the registry has
//     no token code, and EXPIRED means the SUBSCRIBE_OK's timeout);
//   - a PUBLISH_NAMESPACE: the namespace is withdrawn from the scope and
//     the coordinator, and the publisher gets PUBLISH_NAMESPACE_CANCEL
//     EXPIRED_AUTH_TOKEN (§9.24 uses the PUBLISH_NAMESPACE_ERROR codes,
//     §13.1.6); the tracks the relay subscribed to from the publisher
//     under it end too (endGranted): their subscribers get PUBLISH_DONE
//     TRACK_ENDED ("the track is no longer being published", §9.12), and
//     the relay UNSUBSCRIBEs. (A PUBLISH_NAMESPACE_DONE, by contrast,
//     leaves them running: see Relay.publishNamespaceDone.)
//   - a PUBLISH: the relay UNSUBSCRIBEs (§9.11, which carries no code), so
//     the track and its registration go as when its publisher ends it;
//   - a SUBSCRIBE_NAMESPACE: draft-14 has no message that ends one from
//     the publisher's side, so the relay ends what it granted: it stops
//     announcing, withdraws what it announced (PUBLISH_NAMESPACE_DONE),
//     ends the tracks it forwarded with PUBLISH (PUBLISH_DONE
//     UNAUTHORIZED), as for a SUBSCRIBE, and frees the prefix in the
//     session (Session.EndNamespaceSubscription), so that the peer can
//     subscribe to it again with a new token;
//   - a standalone FETCH: Session.EndFetch, which answers one still
//     being decided (the publisher's answer awaited) with FETCH_ERROR
//     EXPIRED_AUTH_TOKEN, and resets the stream of one whose objects are
//     being sent with CANCELLED (draft-14 has no message that carries a
//     code once FETCH_OK is sent; §10.4.3's CANCELLED covers "the
//     publisher ended" it). A joining FETCH is covered by the
//     subscription it joins.
//
// The timer is stopped when the request ends first (SubscriptionEnded,
// PUBLISH_NAMESPACE_DONE, the publication's end, the fetch's end, the
// session's end). A
// request that relies on the session's token needs none: the session is
// closed at that token's exp (closeAtExpiry).

// noteGrant records that request id was granted by its own token, which
// expires at exp. Called by checkRequest after the request was allowed.
func (r *Relay) noteGrant(p *peer, m wire.Message, exp time.Time) {
	var id uint64
	switch m := m.(type) {
	case *wire.Subscribe:
		id = m.RequestID
	case *wire.Publish:
		id = m.RequestID
	case *wire.PublishNamespace:
		id = m.RequestID
	case *wire.SubscribeNamespace:
		id = m.RequestID
	case *wire.Fetch:
		if m.FetchType != wire.FetchStandalone {
			return // a joining fetch holds by its subscription's grant
		}
		id = m.RequestID
	default:
		return // answered at once: nothing outlives the token
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if p.ended {
		return
	}
	if p.grants == nil {
		p.grants = map[uint64]time.Time{}
	}
	p.grants[id] = exp
}

// takeGrant returns and forgets the exp noted for request id of session
// s; ok is false when the request relies on the session's token.
func (r *Relay) takeGrant(s *moqtransport.Session, id uint64) (exp time.Time, ok bool) {
	if r.cfg.Auth == nil {
		return time.Time{}, false // no tokens: no relay lock per request
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.sessions[s]
	if p == nil {
		return time.Time{}, false
	}
	exp, ok = p.grants[id]
	delete(p.grants, id)
	return exp, ok
}

// expireSubscription ends downstream subscription id of s at exp with
// PUBLISH_DONE UNAUTHORIZED. Its timer lives in the session's record until
// the subscription ends (SubscriptionEnded) or the session does.
func (r *Relay) expireSubscription(s *moqtransport.Session, id uint64, exp time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.sessions[s]
	if p == nil || p.ended {
		return
	}
	if p.subExpiry == nil {
		p.subExpiry = map[uint64]*time.Timer{}
	}
	p.subExpiry[id] = time.AfterFunc(time.Until(exp), func() {
		r.mu.Lock()
		delete(p.subExpiry, id)
		r.mu.Unlock()
		p.log.Info("subscription ended: its token expired", "request", id, "exp", exp)
		s.EndSubscription(id, wire.DoneUnauthorized, "the subscription's token expired at "+exp.UTC().Format(time.RFC3339)+": subscribe again with a new token")
	})
}

// stopSubscriptionExpiry stops the expiry timer of downstream subscription id
// of s, if it has one.
func (r *Relay) stopSubscriptionExpiry(s *moqtransport.Session, id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if p := r.sessions[s]; p != nil {
		if t := p.subExpiry[id]; t != nil {
			t.Stop()
			delete(p.subExpiry, id)
		}
	}
}

// expireNamespace withdraws origin o (key k of scope scName) at exp,
// ends the relayed tracks its grant served (endGranted) and sends its
// publisher PUBLISH_NAMESPACE_CANCEL EXPIRED_AUTH_TOKEN. Called with r.mu
// held, once o is registered; whatever removes o stops the timer
// (stopExpiry).
func (r *Relay) expireNamespace(scName, k string, o *origin, exp time.Time) {
	o.exp = exp
	o.expiry = time.AfterFunc(time.Until(exp), func() {
		r.mu.Lock()
		sc := r.scopes[scName]
		mine := sc != nil && sc.origins[k] == o
		var ended []*relayTrack
		if mine {
			delete(sc.origins, k)
			r.unregister(o)
			r.withdraw(sc, k)
			ended = r.endGranted(scName, sc, o)
			r.dropIfEmpty(scName)
		}
		r.mu.Unlock()
		if !mine {
			return
		}
		r.logFor(o.s).Info("namespace withdrawn: its token expired", "scope", scName, "namespace", o.ns.String(), "exp", exp, "tracks_ended", len(ended))
		reason := "the namespace's token expired at " + exp.UTC().Format(time.RFC3339)
		r.endTracks(o, ended, reason)
		_ = o.s.CancelNamespace(o.ns, wire.NamespaceExpiredAuthToken, reason+": publish it again with a new token")
	})
}

// expireWithdrawn keeps, for a namespace withdrawn (PUBLISH_NAMESPACE_DONE)
// before its token's exp, the end of what that grant still serves: its
// relayed tracks go on after the withdrawal, as draft-14 lets them, but
// not past exp (endGranted's rule). Withdrawing just before exp kept them
// for good. Called with r.mu held, with o removed from scope scName.
func (r *Relay) expireWithdrawn(scName string, o *origin) {
	if o.expiry == nil || !o.expiry.Stop() {
		return // no token of its own, or it fired already
	}
	exp := o.exp
	// Kept on the publisher's session, one per namespace (a namespace
	// withdrawn again replaces its timer) and stopped when the session
	// ends, when its tracks end anyway: a publisher withdrawing and
	// publishing in a loop left a timer, holding its session, per round
	// until exp.
	p := r.sessions[o.s]
	if p == nil {
		return // the session has ended: so have the tracks it served
	}
	key := scName + "|" + nsKey(o.ns)
	if old := p.withdrawn[key]; old != nil {
		old.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(time.Until(exp), func() {
		r.mu.Lock()
		if p.withdrawn[key] == t {
			delete(p.withdrawn, key)
		}
		ended := r.endGranted(scName, r.scopes[scName], o) // the scope may be gone
		r.mu.Unlock()
		if len(ended) > 0 {
			r.logFor(o.s).Info("tracks of a withdrawn namespace ended: its token expired", "scope", scName, "namespace", o.ns.String(), "exp", exp, "tracks_ended", len(ended))
			r.endTracks(o, ended, "the namespace's token expired at "+exp.UTC().Format(time.RFC3339))
		}
	})
	o.expiry = t
	if p.withdrawn == nil {
		p.withdrawn = map[string]*time.Timer{}
	}
	p.withdrawn[key] = t
}

// endTracks ends the relayed tracks endGranted revoked for origin o.
func (r *Relay) endTracks(o *origin, ended []*relayTrack, reason string) {
	for _, rt := range ended {
		// The track first, so that its subscribers get the reason; then
		// UNSUBSCRIBE, after which a SUBSCRIBE of the track to the same
		// publisher may go (subscribeOrigin waits for rt.over).
		rt.track.Close(moqtransport.PublishDoneError(wire.DoneTrackEnded, "the publisher's grant of namespace "+o.ns.String()+" ended: "+reason))
		_ = rt.up.Unsubscribe()
		r.endUpstream(rt)
	}
}

// endGranted revokes the relayed tracks of scope scName that the grant
// of origin o, just removed from sc, served: the ones subscribed from its
// publisher under its namespace, unless another namespace that publisher
// still has in the scope covers them. It returns the ones subscribed, for
// the caller to end after the unlock; one still waiting for the
// publisher's answer is cancelled, and its waiting subscribers refused
// (subscribeUpstream). sc may be nil (a scope dropped since). Called with
// r.mu held.
//
// Trust: what a namespace's own token granted ends at that token's exp,
// and a relayed track is served under the grant of the namespace it was
// subscribed through; its subscribers' own grants do not keep it, since
// the relay may no longer take the track from that publisher.
func (r *Relay) endGranted(scName string, sc *scope, o *origin) []*relayTrack {
	// Only a namespace of the publisher's that is a prefix of a track's
	// namespace can still grant the track, and that namespace is then
	// under o's or o's is under it: without one, no track needs the
	// scope's owner (sc.owner scans every namespace of the scope, once
	// per track it was asked for).
	related := false
	if sc != nil {
		for _, other := range sc.origins {
			if other.s == o.s && (other.ns.HasPrefix(o.ns) || o.ns.HasPrefix(other.ns)) {
				related = true
				break
			}
		}
	}
	var live []*relayTrack
	revoke := func(rt *relayTrack) {
		if rt.revoked || rt.published || rt.from != o.s || rt.scope != scName || !rt.ns.HasPrefix(o.ns) {
			return
		}
		if related {
			if other := sc.owner(rt.ns); other != nil && other.s == o.s {
				return // still granted through another of the publisher's namespaces
			}
		}
		rt.revoked = true
		if rt.up == nil {
			if rt.cancel != nil {
				rt.cancel() // still asked, or failed: nothing to end
			}
			return
		}
		live = append(live, rt)
	}
	// Every relayed track subscribed from a session, live or still
	// asked, is in r.upstream, in the scope's table or not: the only
	// place to look, and only at those asked of o's publisher
	// (upstreamTracks.from), so that the work done under r.mu is the
	// publisher's tracks, however many other sessions serve the relay
	// (it scanned every track of the relay, then every relayed track of
	// every session, at each expiry and withdrawal).
	for _, rt := range r.upstream.from(o.s) {
		revoke(rt)
	}
	return live
}

// stopExpiry stops an origin's expiry timer. Called with r.mu held by
// whatever removes the origin.
func (o *origin) stopExpiry() {
	if o.expiry != nil {
		o.expiry.Stop()
	}
}

// expirePublication UNSUBSCRIBEs from the track pushed with PUBLISH
// (rt, through sub) at exp. Called with r.mu held, once the publication
// is accepted; its end stops the timer.
func (r *Relay) expirePublication(rt *relayTrack, sub *moqtransport.Subscription, exp time.Time) {
	rt.expiry = time.AfterFunc(time.Until(exp), func() {
		r.logFor(rt.owner).Info("publication ended: its token expired", "request", sub.RequestID(), "track", sub.Name().String(), "exp", exp)
		_ = sub.Unsubscribe()
	})
}

// expireNamespaceSubscription ends namespace subscription n of scope
// scName at exp. Called with r.mu held, once n is in the scope; its end
// (UnsubscribeNamespace, the session's end) stops the timer (n.stop).
func (r *Relay) expireNamespaceSubscription(scName string, n *nsSub, exp time.Time) {
	n.expiry = time.AfterFunc(time.Until(exp), func() {
		r.mu.Lock()
		sc := r.scopes[scName]
		if sc == nil || !slices.Contains(sc.nsSubs, n) {
			r.mu.Unlock()
			return
		}
		n.expired = true
		sc.nsSubs = deleteSubs(sc.nsSubs, func(x *nsSub) bool { return x == n })
		r.dropIfEmpty(scName)
		announced := n.takeAnnounced()
		forwarded := n.publications
		n.publications = nil
		r.mu.Unlock()
		r.logFor(n.s).Info("namespace subscription ended: its token expired", "prefix", n.prefix.String(), "exp", exp)
		reason := "the namespace subscription's token expired at " + exp.UTC().Format(time.RFC3339) + ": subscribe again with a new token"
		// The session forgets it too: its prefix is free for a new
		// SUBSCRIBE_NAMESPACE with a new token.
		n.s.EndNamespaceSubscription(n.prefix, wire.SubscribeNamespaceExpiredAuthToken, reason)
		for _, pub := range announced {
			_ = pub.Close()
		}
		for _, p := range forwarded {
			n.s.EndSubscription(p.RequestID(), wire.DoneUnauthorized, reason)
		}
	})
}

// expireFetch ends FETCH id of s at exp (Session.EndFetch); the returned
// stop is called when the fetch ends first.
func (r *Relay) expireFetch(s *moqtransport.Session, id uint64, exp time.Time) (stop func()) {
	t := time.AfterFunc(time.Until(exp), func() {
		if s.EndFetch(id, wire.FetchExpiredAuthToken, "the fetch's token expired at "+exp.UTC().Format(time.RFC3339)+": fetch again with a new token") {
			r.logFor(s).Info("fetch ended: its token expired", "request", id, "exp", exp)
		}
	})
	return func() { t.Stop() }
}
