package moqtransport

import (
	"context"
	"errors"
	"io"
	"iter"
	"slices"
	"sync"

	"github.com/moqgo/moq/moqtransport/wire"
)

// NamespaceSubscription is a SUBSCRIBE_NAMESPACE we sent. The peer
// announces the namespaces under the prefix with PUBLISH_NAMESPACE, those
// that exist now and those that come later, and withdraws them with
// PUBLISH_NAMESPACE_DONE. Each announcement goes to the session's
// Handler.PublishNamespace as any other; a nil one (the zero Handler, and
// Tracks.Handler) accepts exactly those under the prefix of one of the
// session's namespace subscriptions. Next reports the namespaces accepted
// under the prefix, and their withdrawal.
type NamespaceSubscription struct {
	s      *Session
	prefix Namespace
	once   sync.Once

	mu sync.Mutex
	// known: the namespaces under the prefix, by nsKey, with what the
	// peer says now and what Next last reported; changed: the keys whose
	// two differ, in the order they changed. known is bounded by the
	// peer's open PUBLISH_NAMESPACE requests (Config.MaxRequests) plus
	// the namespaces Next reported and the peer withdrew since: one
	// withdrawn before Next reported it is forgotten at once (note), and
	// changed is compacted to known's size when it outgrows it, so a peer
	// that publishes and withdraws namespace after namespace grows neither
	// while the application does not read (each took a request ID of ours,
	// given back at the withdrawal).
	known   map[string]*nsState
	changed []string
	wake    chan struct{}
	end     error // set when the subscription ends: io.EOF after Close
}

// ErrNamespaceSubscriptionReplaced is what NamespaceSubscription.Next
// returns once a new SubscribeNamespace of the same prefix was accepted:
// the peer accepts one only when it has ended the old one (draft-14 lets
// a publisher do that without a message, as a relay does when the
// subscription's token expires), so the new one takes over, with the
// namespaces the session holds under the prefix.
var ErrNamespaceSubscriptionReplaced = errors.New("moqt: a new subscription of the same prefix took over this namespace subscription")

type nsState struct {
	ns               Namespace
	active, reported bool
	queued           bool
}

// NamespaceEvent is a change under a namespace subscription's prefix.
type NamespaceEvent struct {
	Namespace Namespace
	// Active is true for a namespace the peer published, false for one it
	// withdrew (after Next had reported it).
	Active bool
}

// Prefix returns the subscribed prefix.
func (n *NamespaceSubscription) Prefix() Namespace { return n.prefix }

// Next returns the next change under the prefix, waiting for one until
// ctx is done. A namespace published and withdrawn again before Next saw
// it is not reported. After Close it returns io.EOF, and once the session
// has ended, an error that matches ErrSessionClosed. Call it from one
// goroutine at a time.
func (n *NamespaceSubscription) Next(ctx context.Context) (NamespaceEvent, error) {
	for {
		n.mu.Lock()
		for len(n.changed) > 0 {
			k := n.changed[0]
			n.changed = n.changed[1:]
			st := n.known[k]
			if st == nil {
				continue // withdrawn before it was reported (note)
			}
			st.queued = false
			if st.active == st.reported {
				if !st.active {
					delete(n.known, k) // published and withdrawn unseen
				}
				continue
			}
			st.reported = st.active
			if !st.active {
				delete(n.known, k)
			}
			ev := NamespaceEvent{Namespace: st.ns, Active: st.active}
			n.mu.Unlock()
			return ev, nil
		}
		end := n.end
		n.mu.Unlock()
		if end != nil {
			return NamespaceEvent{}, end
		}
		select {
		case <-n.wake:
		case <-ctx.Done():
			return NamespaceEvent{}, ctx.Err()
		}
	}
}

// Namespaces returns an iterator over the changes Next returns. It stops
// after Close; otherwise it yields one last pair with the error that ended
// it (ctx's or the session's).
func (n *NamespaceSubscription) Namespaces(ctx context.Context) iter.Seq2[NamespaceEvent, error] {
	return func(yield func(NamespaceEvent, error) bool) {
		for {
			ev, err := n.Next(ctx)
			if err == io.EOF {
				return
			}
			if !yield(ev, err) || err != nil {
				return
			}
		}
	}
}

// note records that the peer published (active) or withdrew a namespace.
func (n *NamespaceSubscription) note(ns Namespace, active bool) {
	k := nsKey(ns)
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.end != nil {
		return
	}
	st := n.known[k]
	if st == nil {
		if !active {
			return
		}
		st = &nsState{ns: ns}
		n.known[k] = st
	}
	if !active && !st.reported {
		// Published and withdrawn before Next reported it: nothing to
		// report. Its key may stay in changed (Next skips it) until a
		// compaction.
		delete(n.known, k)
		n.compactLocked()
		return
	}
	st.active = active
	if !st.queued {
		st.queued = true
		n.changed = append(n.changed, k)
		n.compactLocked()
	}
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// compactLocked drops from changed the keys of namespaces no longer known,
// and repeats (a key forgotten and published again), once changed is more
// than twice as long as known: amortized, a constant cost per note. Called
// with n.mu held.
func (n *NamespaceSubscription) compactLocked() {
	if len(n.changed) <= 2*len(n.known)+64 {
		return
	}
	seen := make(map[string]bool, len(n.known))
	n.changed = slices.DeleteFunc(n.changed, func(k string) bool {
		st := n.known[k]
		if st == nil || !st.queued || seen[k] {
			return true
		}
		seen[k] = true
		return false
	})
}

// finish ends the subscription's events with err.
func (n *NamespaceSubscription) finish(err error) {
	n.mu.Lock()
	if n.end == nil {
		n.end = err
		n.known, n.changed = nil, nil
	}
	n.mu.Unlock()
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// Close ends the subscription (UNSUBSCRIBE_NAMESPACE). The namespaces the
// peer announced stay accepted; the peer no longer announces new ones.
func (n *NamespaceSubscription) Close() error {
	var err error
	n.once.Do(func() {
		// Decided under s.mu: takeOverPrefix swaps the entry under it, so
		// an entry no longer n's is a new subscription's, which an
		// UNSUBSCRIBE_NAMESPACE for the prefix would end at the peer.
		n.s.mu.Lock()
		owned := n.s.ourNSSubs[nsKey(n.prefix)] == n
		if owned {
			delete(n.s.ourNSSubs, nsKey(n.prefix))
		}
		n.s.mu.Unlock()
		if !owned {
			// the peer ended it; its prefix is the new one's
			n.finish(ErrNamespaceSubscriptionReplaced)
			return
		}
		n.finish(io.EOF)
		err = n.s.send(&wire.UnsubscribeNamespace{Prefix: n.prefix})
	})
	return err
}

// HasNamespaceSubscription reports whether ns is under the prefix of one of the
// session's namespace subscriptions (SubscribeNamespace): a namespace the
// session asked the peer for.
func (s *Session) HasNamespaceSubscription(ns Namespace) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nsSubscriptionFor(ns) != nil
}

// nsSubscriptionFor returns our namespace subscription whose prefix ns is
// under, if any. Called with s.mu held.
func (s *Session) nsSubscriptionFor(ns Namespace) *NamespaceSubscription {
	for _, n := range s.ourNSSubs {
		if ns.HasPrefix(n.prefix) {
			return n
		}
	}
	return nil
}

// SubscribeNamespace asks the peer for the namespaces under prefix, and
// returns once it accepted; NamespaceSubscription.Next then reports them.
// A refusal is a *RequestError with the SUBSCRIBE_NAMESPACE_ERROR code.
func (s *Session) SubscribeNamespace(ctx context.Context, prefix Namespace, params Parameters) (*NamespaceSubscription, error) {
	if err := prefix.Validate(); err != nil {
		return nil, err
	}
	n := &NamespaceSubscription{s: s, prefix: prefix, known: map[string]*nsState{}, wake: make(chan struct{}, 1)}
	key := nsKey(prefix)
	registered := false
	_, resp, err := s.request(ctx, func(id uint64) wire.Message {
		return &wire.SubscribeNamespace{RequestID: id, Prefix: prefix, Params: params}
	}, requestHooks{register: func(uint64) {
		// Registered before the request is sent: the PUBLISH_NAMESPACEs
		// that follow the answer are read in order behind it.
		s.mu.Lock()
		if s.ourNSSubs[key] == nil {
			setIn(&s.ourNSSubs, key, n)
			registered = true
		}
		s.mu.Unlock()
	}})
	unregister := func() {
		if registered {
			s.mu.Lock()
			if s.ourNSSubs[key] == n {
				delete(s.ourNSSubs, key)
			}
			s.mu.Unlock()
		}
	}
	if err != nil {
		unregister()
		if registered && ctx.Err() != nil && s.ctx.Err() == nil {
			// We gave up waiting for the answer: the peer may accept
			// still (and then refuse the prefix to a retry as an
			// overlap), so the subscription is ended.
			s.sendOrFail(&wire.UnsubscribeNamespace{Prefix: prefix})
		}
		return nil, err
	}
	switch r := resp.(type) {
	case *wire.SubscribeNamespaceOK:
		if !registered {
			s.takeOverPrefix(key, n)
		}
		return n, nil
	case *wire.SubscribeNamespaceError:
		unregister()
		return nil, &RequestError{Message: wire.TypeSubscribeNamespaceError, Code: uint64(r.Code), Reason: r.Reason}
	}
	unregister()
	return nil, violation("%s in answer to SUBSCRIBE_NAMESPACE", resp.Type())
}

// takeOverPrefix makes n the session's namespace subscription of its
// prefix in place of the one it had (see
// ErrNamespaceSubscriptionReplaced): the namespaces the session holds under
// the old one are reported by n, and their withdrawal too.
func (s *Session) takeOverPrefix(key string, n *NamespaceSubscription) {
	s.mu.Lock()
	old := s.ourNSSubs[key]
	setIn(&s.ourNSSubs, key, n)
	var held []Namespace
	if old != nil {
		for k, sub := range s.nsNoted {
			if sub == old {
				setIn(&s.nsNoted, k, n)
				held = append(held, s.peerNamespaces[k])
			}
		}
	}
	s.mu.Unlock()
	if old != nil {
		old.finish(ErrNamespaceSubscriptionReplaced)
	}
	for _, ns := range held {
		n.note(ns, true)
	}
}

// overlaps reports whether a and b are prefixes of one another (equal
// included): draft-14 refuses such a pair on one session.
func overlaps(a, b wire.Namespace) bool { return a.HasPrefix(b) || b.HasPrefix(a) }

// refuseSubscribeNamespace refuses a SUBSCRIBE_NAMESPACE the session
// answers itself (no handler, or a prefix that overlaps one of the peer's
// others) and reports whether it did. It runs before the Authorizer, so
// that an Authorizer that allows a request sees it reach the handler (a
// relay notes what the request's token grants until its handler takes
// it). Called on the control goroutine, as handleSubscribeNamespace,
// which reserves the prefix: nothing adds one in between.
func (s *Session) refuseSubscribeNamespace(m *wire.SubscribeNamespace) bool {
	if s.cfg.Handler.SubscribeNamespace == nil {
		s.refuse(&wire.SubscribeNamespaceError{RequestID: m.RequestID, Code: wire.SubscribeNamespaceNotSupported,
			Reason: "SUBSCRIBE_NAMESPACE is not supported by this endpoint"})
		return true
	}
	s.mu.Lock()
	for _, p := range s.peerNSSubs {
		if overlaps(p.prefix, m.Prefix) {
			s.mu.Unlock()
			s.refuse(&wire.SubscribeNamespaceError{RequestID: m.RequestID, Code: wire.NamespacePrefixOverlap,
				Reason: "prefix " + m.Prefix.String() + " overlaps " + p.prefix.String()})
			return true
		}
	}
	s.mu.Unlock()
	return false
}

// peerNSSub is one of the peer's namespace subscriptions: its prefix,
// whether the handler is still deciding it (pending), and whether the peer
// has UNSUBSCRIBEd meanwhile (ended), or we ended it (endedBy, set by
// EndNamespaceSubscription while pending). An ended one keeps its prefix
// reserved until the handler has returned, so that a new SUBSCRIBE_NAMESPACE
// for it cannot be taken for the old one (the handler knows them by prefix).
type peerNSSub struct {
	prefix         Namespace
	pending, ended bool
	endedBy        *wire.SubscribeNamespaceError
}

// EndNamespaceSubscription ends one of the peer's namespace subscriptions
// from this side, as EndSubscription ends a subscription: one still being
// decided by Handler.SubscribeNamespace is answered with
// SUBSCRIBE_NAMESPACE_ERROR code and reason once the handler has returned
// (Handler.UnsubscribeNamespace is then called if it had accepted); an
// accepted one is forgotten, its prefix free for a new
// SUBSCRIBE_NAMESPACE. Draft-14 has no message that tells the peer the
// latter: the application withdraws what it announced under the prefix
// itself, and a later UNSUBSCRIBE_NAMESPACE from the peer for it is
// ignored (or ends a new subscription of the same prefix; a moq-go peer's
// new SubscribeNamespace takes over from the old one, whose Close then
// sends nothing: ErrNamespaceSubscriptionReplaced). It reports whether
// prefix named a namespace subscription of the peer's still running.
func (s *Session) EndNamespaceSubscription(prefix Namespace, code SubscribeNamespaceErrorCode, reason string) bool {
	key := nsKey(prefix)
	s.mu.Lock()
	p, ok := s.peerNSSubs[key]
	switch {
	case !ok || p.ended || p.endedBy != nil:
		ok = false
	case p.pending:
		p.endedBy = &wire.SubscribeNamespaceError{Code: code, Reason: reason}
	default:
		delete(s.peerNSSubs, key)
	}
	pending := ok && p.pending
	s.mu.Unlock()
	if ok && !pending && s.ctx.Err() == nil {
		s.requestDone()
	}
	return ok
}

// handleSubscribeNamespace reserves the prefix (refuseSubscribeNamespace
// checked it) and asks the handler. A peer may UNSUBSCRIBE_NAMESPACE while
// the handler decides: the request is then over, nothing answers it, and
// a handler that accepted it is told (UnsubscribeNamespace) once it has
// returned, so that what it set up does not outlive the subscription;
// until then the prefix stays reserved.
func (s *Session) handleSubscribeNamespace(m *wire.SubscribeNamespace) {
	h := s.cfg.Handler
	s.mu.Lock()
	// Reserve the prefix while the handler decides.
	key := nsKey(m.Prefix)
	mine := &peerNSSub{prefix: m.Prefix, pending: true}
	setIn(&s.peerNSSubs, key, mine)
	s.mu.Unlock()
	s.goFunc(func() {
		err := s.callbackErr("Handler.SubscribeNamespace", func() error { return h.SubscribeNamespace(s.ctx, s, m) })
		if s.ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		unsubscribed, endedBy := mine.ended, mine.endedBy
		if unsubscribed || endedBy != nil || err != nil {
			delete(s.peerNSSubs, key)
		} else {
			mine.pending = false
		}
		s.mu.Unlock()
		if unsubscribed {
			// UNSUBSCRIBE_NAMESPACE came first and ended the request.
			if err == nil && h.UnsubscribeNamespace != nil {
				s.callback("Handler.UnsubscribeNamespace", func() { h.UnsubscribeNamespace(s, m.Prefix) })
			}
			return
		}
		if endedBy != nil {
			// EndNamespaceSubscription came while the handler decided.
			if err == nil && h.UnsubscribeNamespace != nil {
				s.callback("Handler.UnsubscribeNamespace", func() { h.UnsubscribeNamespace(s, m.Prefix) })
			}
			s.refuse(&wire.SubscribeNamespaceError{RequestID: m.RequestID, Code: endedBy.Code, Reason: endedBy.Reason})
			return
		}
		if err != nil {
			code, reason := requestCode(err, wire.TypeSubscribeNamespaceError, uint64(wire.SubscribeNamespaceInternalError))
			s.refuse(&wire.SubscribeNamespaceError{RequestID: m.RequestID, Code: wire.SubscribeNamespaceErrorCode(code), Reason: reason})
			return
		}
		if err := s.send(&wire.SubscribeNamespaceOK{RequestID: m.RequestID}); err != nil {
			return
		}
		if h.NamespaceSubscribed != nil {
			s.callback("Handler.NamespaceSubscribed", func() { h.NamespaceSubscribed(s, m.Prefix) })
		}
	})
}

// handleUnsubscribeNamespace ends one of the peer's namespace
// subscriptions; one we do not know is ignored (it may have been refused).
func (s *Session) handleUnsubscribeNamespace(m *wire.UnsubscribeNamespace) {
	key := nsKey(m.Prefix)
	s.mu.Lock()
	p, ok := s.peerNSSubs[key]
	pending := ok && p.pending
	if ok && (p.ended || p.endedBy != nil) {
		ok = false // already ended: its handler has not returned yet
	} else if ok && p.pending {
		p.ended = true // handleSubscribeNamespace removes it once the handler returned
	} else if ok {
		delete(s.peerNSSubs, key)
	}
	s.mu.Unlock()
	if !ok {
		return
	}
	s.requestDone()
	if pending {
		return // handleSubscribeNamespace tells the handler once it has decided
	}
	if h := s.cfg.Handler.UnsubscribeNamespace; h != nil {
		s.callback("Handler.UnsubscribeNamespace", func() { h(s, m.Prefix) })
	}
}
