package relay

import (
	"context"
	"errors"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// nsSub is a session's namespace subscription: what the relay should have
// announced to it, what it has, and the pushed tracks it has still to
// forward. One goroutine (sendNamespaces) makes the two agree, one request
// at a time; the relay only edits the sets, under Relay.mu, and never
// waits for the subscriber.
type nsSub struct {
	s      *moqtransport.Session
	prefix wire.Namespace
	ctx    context.Context // ends with the session or the subscription
	cancel context.CancelFunc
	kick   chan struct{} // capacity 1: "the sets changed"

	// Under Relay.mu.
	// wanted: the namespaces to announce, by key.
	wanted map[string]wire.Namespace
	// announced: namespaces announced, by key; a nil value is one in
	// flight, or one the subscriber refused (not retried until it is
	// withdrawn and published again).
	announced map[string]*moqtransport.NamespacePublication
	// retry: wanted namespaces whose announcement went unanswered in
	// time, asked again after the other namespaces and pushed tracks.
	retry map[string]struct{}
	// toPush: pushed tracks to forward; pushed: forwarded (or being), so
	// that each goes once.
	toPush map[*moqtransport.Track]struct{}
	pushed map[*moqtransport.Track]struct{}
	// publications: the PUBLISHes forwarded and accepted, so that they
	// can be ended when the subscription's token expires (expiry,
	// grants.go); nil when it has no such token.
	publications map[*moqtransport.Track]*moqtransport.Publication
	expiry       *time.Timer
	expired      bool
}

func newNSSub(s *moqtransport.Session, prefix wire.Namespace) *nsSub {
	ctx, cancel := context.WithCancel(s.Context())
	return &nsSub{s: s, prefix: prefix, ctx: ctx, cancel: cancel, kick: make(chan struct{}, 1),
		wanted: map[string]wire.Namespace{}, announced: map[string]*moqtransport.NamespacePublication{},
		retry: map[string]struct{}{}, toPush: map[*moqtransport.Track]struct{}{}, pushed: map[*moqtransport.Track]struct{}{}}
}

func (n *nsSub) poke() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// want asks for ns to be announced. Called with Relay.mu held.
func (n *nsSub) want(k string, ns wire.Namespace) {
	n.wanted[k] = ns
	n.poke()
}

// unwant asks for a namespace to be withdrawn. Called with Relay.mu held.
func (n *nsSub) unwant(k string) {
	if _, ok := n.wanted[k]; ok {
		delete(n.wanted, k)
		n.poke()
	}
}

// push asks for a pushed track to be forwarded. Called with Relay.mu held.
func (n *nsSub) push(t *moqtransport.Track) {
	if _, done := n.pushed[t]; done {
		return
	}
	n.toPush[t] = struct{}{}
	n.poke()
}

// forget drops an ended track. Called with Relay.mu held.
func (n *nsSub) forget(t *moqtransport.Track) {
	delete(n.toPush, t)
	delete(n.pushed, t)
	delete(n.publications, t)
}

// stop ends the subscription's goroutine and its expiry timer. Called
// with Relay.mu held.
func (n *nsSub) stop() {
	n.cancel()
	if n.expiry != nil {
		n.expiry.Stop()
	}
}

// takeAnnounced returns the namespaces announced to the subscriber and
// forgets them: the caller withdraws them (PUBLISH_NAMESPACE_DONE), after
// Relay.mu is released. One in flight is withdrawn by announce, which no
// longer finds it. Called with Relay.mu held.
func (n *nsSub) takeAnnounced() []*moqtransport.NamespacePublication {
	var pubs []*moqtransport.NamespacePublication
	for _, pub := range n.announced {
		if pub != nil {
			pubs = append(pubs, pub)
		}
	}
	n.announced = map[string]*moqtransport.NamespacePublication{}
	return pubs
}

// next picks the next thing to send, marks it in flight and returns it
// as a function, nil when the sets agree. Called with Relay.mu held.
func (r *Relay) nextNamespaceAction(n *nsSub) func() {
	for k, pub := range n.announced {
		if _, ok := n.wanted[k]; ok {
			continue
		}
		delete(n.announced, k)
		if pub != nil {
			return func() { _ = pub.Close() }
		}
	}
	for k, ns := range n.wanted {
		if _, ok := n.announced[k]; ok {
			continue
		}
		if _, later := n.retry[k]; later {
			continue
		}
		n.announced[k] = nil // in flight
		return func() { r.announce(n, k, ns) }
	}
	for t := range n.toPush {
		delete(n.toPush, t)
		n.pushed[t] = struct{}{}
		return func() {
			ctx, cancel := context.WithTimeout(n.ctx, r.cfg.UpstreamTimeout)
			defer cancel()
			p, err := n.s.Publish(ctx, t, moqtransport.PublishOptions{})
			if err != nil {
				r.logFor(n.s).Debug("forwarding PUBLISH to a namespace subscriber failed", "track", t.Name().String(), "err", err)
				return
			}
			r.mu.Lock()
			expired := n.expired
			if _, live := n.pushed[t]; n.expiry != nil && live && !expired {
				n.publications[t] = p
			}
			r.mu.Unlock()
			if expired {
				// The token expired while this PUBLISH was in flight.
				n.s.EndSubscription(p.RequestID(), wire.DoneUnauthorized, "the namespace subscription's token expired")
			}
		}
	}
	for k := range n.retry {
		delete(n.retry, k)
		ns, ok := n.wanted[k]
		if _, busy := n.announced[k]; !ok || busy {
			continue // withdrawn meanwhile, or announced again
		}
		n.announced[k] = nil // in flight
		return func() { r.announce(n, k, ns) }
	}
	return nil
}

// announce sends PUBLISH_NAMESPACE for ns and records the answer.
func (r *Relay) announce(n *nsSub, k string, ns wire.Namespace) {
	ctx, cancel := context.WithTimeout(n.ctx, r.cfg.UpstreamTimeout)
	defer cancel()
	pub, err := n.s.PublishNamespace(ctx, ns, nil)
	if err != nil {
		r.logFor(n.s).Debug("announcing to a namespace subscriber failed", "namespace", ns.String(), "err", err)
		if n.ctx.Err() != nil || !(errors.Is(err, context.DeadlineExceeded) || errors.Is(err, moqtransport.ErrRequestsBlocked)) {
			return // refused, or over: stays nil in announced, not retried
		}
		// Not answered within UpstreamTimeout, or no request ID was
		// granted in time: asked again once everything else queued has
		// been sent (it used to stay nil, never announced: one slow
		// moment of the subscriber's hid the namespace from it for
		// good). A request given up after it was sent was withdrawn
		// (PublishNamespace sends PUBLISH_NAMESPACE_DONE), so the
		// subscriber never holds two.
		r.mu.Lock()
		if cur, inFlight := n.announced[k]; inFlight && cur == nil {
			delete(n.announced, k)
			n.retry[k] = struct{}{}
			n.poke()
		}
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	cur, inFlight := n.announced[k]
	_, wanted := n.wanted[k]
	keep := inFlight && cur == nil && wanted
	if keep {
		n.announced[k] = pub
	} else if inFlight && cur == nil {
		delete(n.announced, k)
	}
	r.mu.Unlock()
	if !keep {
		_ = pub.Close() // withdrawn while it was in flight
	}
}

// sendNamespaces is a namespace subscription's goroutine: it sends what
// the sets ask for until the subscription or its session ends.
func (r *Relay) sendNamespaces(n *nsSub) {
	for {
		select {
		case <-n.kick:
		case <-n.ctx.Done():
			return
		}
		for n.ctx.Err() == nil {
			r.mu.Lock()
			act := r.nextNamespaceAction(n)
			r.mu.Unlock()
			if act == nil {
				break
			}
			act()
		}
	}
}
