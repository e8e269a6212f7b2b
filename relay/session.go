package relay

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// role is who the peer of a session is.
type role int

const (
	// roleClient: an accepted session from a publisher or subscriber.
	roleClient role = iota
	// roleRelayPeer: an accepted session from another relay: one that
	// proved it with a peer token (authenticated), or, on a relay without
	// a cluster key, one that says so (ParamRelayHop).
	roleRelayPeer
	// roleDialed: a session this relay opened to another relay.
	roleDialed
)

// peer is what the relay knows of one session: decided once, when the
// session is admitted, and dropped when it ends.
type peer struct {
	role role
	// authenticated: a relay peer that presented a valid peer token.
	authenticated bool
	// node: an authenticated relay peer's node URL (its token's iss).
	node string
	// claims: the token of the session's CLIENT_SETUP, when there was one.
	claims *Claims
	// expiry closes the session when its token expires; stopped when the
	// session ends. Set and stopped under Relay.mu.
	expiry *time.Timer
	// grants: the exp of requests granted by their own token, by request
	// ID, until their handler takes it; subExpiry: the timers that end
	// downstream subscriptions at their token's exp (grants.go). Under
	// Relay.mu.
	grants    map[uint64]time.Time
	subExpiry map[uint64]*time.Timer
	// withdrawn: the timers that end, at their token's exp, the tracks of
	// namespaces this publisher withdrew (expireWithdrawn), by scope and
	// namespace. Under Relay.mu; stopped when the session ends.
	withdrawn map[string]*time.Timer
	// authority: the WebTransport request's :authority (raw QUIC sends
	// AUTHORITY in CLIENT_SETUP instead).
	authority string

	// Set under Relay.mu.
	s        *moqtransport.Session
	admitted bool
	started  time.Time // admitted at
	ended    bool
	// refused: admission said no (counted under its own stage).
	refused bool

	// id names the session in the relay's logs (the "session"
	// attribute of every line about it), its mlog file, and
	// Config.SessionTracer; log is the relay's logger with it.
	id  string
	log *slog.Logger

	// ownTracer: give the session a Tracer from Config.SessionTracer.
	ownTracer bool
	closeOnce sync.Once
	tracer    io.Closer // the session's own event log, closed at its end
}

// close releases what the session holds outside the relay's tables.
func (p *peer) close() {
	p.closeOnce.Do(func() {
		if p.tracer != nil {
			_ = p.tracer.Close()
		}
	})
}

// sessionConfig returns the configuration of one session and its peer
// record. The session is admitted by its setup message (see admit); the
// caller closes the peer record if setup fails before that.
func (r *Relay) sessionConfig(p *peer) *moqtransport.Config {
	c := r.cfg.Session
	c.Handler = r.hnd
	// Every line about the session, the relay's and the session's own,
	// carries its id.
	p.id = strconv.FormatUint(r.sessionIDs.Add(1), 10)
	p.log = r.log.With("session", p.id)
	if c.Logger == nil {
		c.Logger = p.log
	} else {
		c.Logger = c.Logger.With("session", p.id)
	}
	c.Track = r.cfg.Track
	var own moqtransport.Tracer
	if p.ownTracer && r.cfg.SessionTracer != nil {
		own = r.cfg.SessionTracer(p.id)
		if cl, ok := own.(io.Closer); ok {
			p.tracer = cl
		}
	}
	c.Tracer = moqtransport.MultiTracer(c.Tracer, own, countingTracer{r.metrics})
	c.ObserveDelivery = r.observeDelivery
	c.ObserveHold = r.observeHold
	next := c.Authorize
	c.Authorize = func(s *moqtransport.Session, m wire.Message, tokens []moqtransport.AuthToken) error {
		if err := r.authorize(p, s, m, tokens); err != nil {
			return err
		}
		if next != nil {
			return next(s, m, tokens)
		}
		return nil
	}
	return &c
}

// holdObserver is every session's Config.ObserveHold (built once, in New):
// the relay's histogram, then the one the configuration gave.
func (r *Relay) holdObserver() func(time.Duration, int) {
	next := r.cfg.Session.ObserveHold
	if next == nil {
		return r.metrics.observeHold
	}
	return func(held time.Duration, objects int) {
		r.metrics.observeHold(held, objects)
		next(held, objects)
	}
}

// deliveryObserver is every session's Config.ObserveDelivery (built once,
// in New: Relay.observeDelivery): the relay's histogram, then the one the
// configuration gave.
func (r *Relay) deliveryObserver() func(time.Duration) {
	next := r.cfg.Session.ObserveDelivery
	if next == nil {
		return r.metrics.observeDelivery
	}
	return func(wait time.Duration) {
		r.metrics.observeDelivery(wait)
		next(wait)
	}
}

// handler is every session's Handler (built once, in New: Relay.hnd):
// the relay serves each request kind. SUBSCRIBE counts a subscriber and
// holds the relayed track until SubscriptionEnded; FETCH and TRACK_STATUS
// count none and hold nothing.
func (r *Relay) handler() moqtransport.Handler {
	return moqtransport.Handler{
		Subscribe:            r.serveSubscribe,
		SubscriptionEnded:    r.subscriptionEnded,
		Fetch:                r.fetch,
		TrackStatus:          r.trackStatus,
		Publish:              r.publish,
		PublishNamespace:     r.publishNamespace,
		PublishNamespaceDone: r.publishNamespaceDone,
		SubscribeNamespace:   r.subscribeNamespace,
		NamespaceSubscribed:  r.namespaceSubscribed,
		UnsubscribeNamespace: r.unsubscribeNamespace,
	}
}

// SessionConfig returns the configuration to run an accepted session of
// this relay with: the session is admitted when its CLIENT_SETUP arrives
// (path, AUTHORITY, session cap, tokens, relay-peer proof), before its
// control loop runs, and forgotten when it ends. Unlike Server, it gives
// the session no Tracer of its own (Config.SessionTracer), since nothing
// would close one whose setup fails.
func (r *Relay) SessionConfig() *moqtransport.Config {
	return r.sessionConfig(&peer{role: roleClient})
}

// authorize is every session's Authorizer: it admits the session at its
// setup message, then decides each of its requests.
func (r *Relay) authorize(p *peer, s *moqtransport.Session, m wire.Message, tokens []moqtransport.AuthToken) error {
	switch m.Type() {
	case wire.TypeClientSetup, wire.TypeServerSetup:
		return r.admit(p, s, tokens)
	}
	r.mu.Lock()
	live := p.admitted && !p.ended && p.s == s
	r.mu.Unlock()
	if !live {
		return fmt.Errorf("%w: the session was not admitted or has ended", moqtransport.ErrUnauthorized)
	}
	return r.checkRequest(p, m, tokens)
}

// admit decides whether a session may run, from its setup message: the
// session's scope, its AUTHORITY, whether it is a relay peer and can prove
// it, its token, and the session cap. An admitted session is known to the
// relay until it ends; a refused one leaves nothing behind.
func (r *Relay) admit(p *peer, s *moqtransport.Session, tokens []moqtransport.AuthToken) error {
	err := r.admitSession(p, s, tokens)
	if err != nil {
		p.refused = true
		p.log.Info("session refused", "path", s.Path(), "err", err)
	}
	return err
}

func (r *Relay) admitSession(p *peer, s *moqtransport.Session, tokens []moqtransport.AuthToken) error {
	m := r.metrics
	if p.role != roleDialed {
		if _, err := Scope(s.Path()); err != nil {
			m.connectionErrors.WithLabelValues("scope_resolve").Inc()
			return &wire.SessionError{Code: wire.MalformedPath, Reason: err.Error()}
		}
		if err := r.checkAuthority(p, s); err != nil {
			m.connectionErrors.WithLabelValues("authority").Inc()
			return err
		}
		_, marked := s.PeerSetupParams().Varint(ParamRelayHop)
		var userTokens []moqtransport.AuthToken
		for _, t := range tokens {
			if t.Type == 0 && r.cfg.ClusterKey != nil {
				node, isPeer, err := r.cfg.ClusterKey.verifyPeer(t.Value, r.cfg.Node)
				if err != nil {
					m.connectionErrors.WithLabelValues("peer_token").Inc()
					return err
				}
				if isPeer {
					p.authenticated, p.node = true, node
					continue
				}
			}
			userTokens = append(userTokens, t)
		}
		// The marker (ParamRelayHop) changes how the session's reads
		// are routed (local publishers only: under a local shorter
		// namespace even where another relay holds the longer one), so
		// it is not only a restriction. Where peers can prove who they
		// are (Config.ClusterKey), a marker without proof is therefore
		// ignored, and the session is a client like any other. Without a
		// cluster key no peer can prove anything, and the marker is what
		// keeps an open cluster's relays from forwarding in a loop: it is
		// honoured, and only narrows (no publishing, local reads).
		switch {
		case p.authenticated, marked && r.cfg.ClusterKey == nil:
			p.role = roleRelayPeer
		case marked:
			p.log.Info("relay-peer marker without a peer token ignored: the session is a client", "path", s.Path())
		}
		if r.cfg.Auth != nil {
			claims, err := r.cfg.Auth.tokenClaims(userTokens)
			if err == nil {
				err = claims.checkScope(scopeOf(s))
			}
			if err != nil {
				m.connectionErrors.WithLabelValues("token").Inc()
				return err
			}
			p.claims = claims
		}
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return &wire.SessionError{Code: wire.InternalError, Reason: "the relay is shutting down"}
	}
	if p.role != roleDialed && r.cfg.MaxSessions > 0 && r.accepted >= r.cfg.MaxSessions {
		r.mu.Unlock()
		m.connectionErrors.WithLabelValues("limit").Inc()
		p.log.Warn("session refused: the relay is at its session limit", "limit", r.cfg.MaxSessions)
		return &wire.SessionError{Code: wire.InternalError, Reason: "relay full: try another relay or later"}
	}
	p.s, p.admitted, p.started = s, true, time.Now()
	r.sessions[s] = p
	r.logs.Store(s, p.log)
	if p.claims != nil && p.claims.ExpiresAt != nil {
		p.expiry = r.closeAtExpiry(p, s, p.claims.ExpiresAt.Time)
	}
	if p.role != roleDialed {
		r.accepted++
		m.activeConnections.Add(1)
		m.connectionsTotal.Add(1)
	}
	// Every admitted session's end is seen here, however it ends.
	r.wg.Add(1)
	r.mu.Unlock()
	context.AfterFunc(s.Context(), func() {
		defer r.wg.Done()
		r.SessionEnded(s)
	})
	return nil
}

// closeAtExpiry closes s with EXPIRED_AUTH_TOKEN when its token expires
// at exp. The timer runs no goroutine until it fires; the session's end
// stops it (SessionEnded), and once fired its goroutine ends with the
// session's close.
func (r *Relay) closeAtExpiry(p *peer, s *moqtransport.Session, exp time.Time) *time.Timer {
	return time.AfterFunc(time.Until(exp), func() {
		r.metrics.connectionErrors.WithLabelValues("token_expired").Inc()
		p.log.Info("session closed: its token expired", "path", s.Path(), "exp", exp)
		s.CloseWithError(wire.ExpiredAuthToken, "the session's token expired at "+exp.UTC().Format(time.RFC3339)+": connect again with a new token")
	})
}

// checkAuthority refuses a session that names an authority this relay
// does not serve, when the relay knows its names (Config.Authorities).
func (r *Relay) checkAuthority(p *peer, s *moqtransport.Session) error {
	if len(r.cfg.Authorities) == 0 {
		return nil
	}
	a := s.Authority()
	if a == "" {
		a = p.authority
	}
	if a == "" {
		return nil
	}
	host := a
	if h, _, err := net.SplitHostPort(a); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	for _, name := range r.cfg.Authorities {
		name = strings.ToLower(name)
		if name == host {
			return nil
		}
		if rest, ok := strings.CutPrefix(name, "*."); ok {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == rest {
				return nil
			}
		}
	}
	return &wire.SessionError{Code: wire.InvalidAuthority, Reason: fmt.Sprintf("this relay does not serve %q; it serves %s", a, strings.Join(r.cfg.Authorities, ", "))}
}

// checkRequest decides one request of an admitted session.
//
// Trust rules, in order:
//   - A relay peer (a session that proved it with a peer token, one that
//     carries ParamRelayHop on a relay without a cluster key, or one
//     this relay dialed) only reads: PUBLISH_NAMESPACE and PUBLISH from it are
//     refused with UNAUTHORIZED, since relays of a cluster find each
//     other's namespaces through the coordinator and never push to each
//     other. Its reads are resolved with local publishers only.
//   - Without Config.Auth, every other request is allowed (an open relay).
//   - With Config.Auth, an authenticated relay peer (a valid peer token)
//     may read any namespace: it serves subscribers it authorized itself.
//     Everyone else, a dialed relay included, needs a token granting the
//     namespace and holding in the session's scope (Claims.Path): the
//     request's own, or the session's.
//   - A session's token (CLIENT_SETUP) holds for the session's whole
//     life: when it expires, the session is closed with
//     EXPIRED_AUTH_TOKEN (closeAtExpiry), taking what it was granted
//     (subscriptions, namespaces, pushed tracks) with it, and a request
//     that arrives in between is refused with EXPIRED_AUTH_TOKEN. A
//     request's own token authorizes that request when it is made, and
//     what it granted (a subscription, a namespace, a pushed track) ends
//     at that token's exp (grants.go). A
//     relay peer's peer token proves who it is at setup (it lives a
//     minute, against replay); it grants nothing that expires.
func (r *Relay) checkRequest(p *peer, m wire.Message, tokens []moqtransport.AuthToken) error {
	ns, publish, ok := requestNamespace(m)
	if !ok {
		return nil
	}
	if p.role != roleClient && publish {
		return fmt.Errorf("%w: a relay peer may not publish %s here", moqtransport.ErrUnauthorized, ns)
	}
	a := r.cfg.Auth
	if a == nil {
		return nil
	}
	if p.role == roleRelayPeer && p.authenticated {
		return nil
	}
	claims, err := a.tokenClaims(tokens)
	if err != nil {
		return err
	}
	own := claims != nil
	if !own {
		claims = p.claims // it holds in the session's scope (admit)
	} else if err := claims.checkScope(scopeOf(p.s)); err != nil {
		return err
	}
	if err := a.Check(m, claims, time.Now()); err != nil {
		return err
	}
	if own && claims.ExpiresAt != nil {
		r.noteGrant(p, m, claims.ExpiresAt.Time)
	}
	return nil
}

// isRelayPeer reports whether a session's peer is another relay: its
// requests are resolved with local publishers only, never through the
// coordinator again, so that stale registrations cannot make relays
// forward a request around in a loop. With a cluster key, only a peer
// that proved it is one (admitSession); what a relay peer is granted
// needs its peer token either way (see checkRequest).
func (r *Relay) isRelayPeer(s *moqtransport.Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.sessions[s]
	return p == nil || p.role != roleClient
}

// live reports whether a session is admitted and has not ended. Called
// with r.mu held: a registration made under the same lock after this
// check is removed by SessionEnded, and none can be made after it.
func (r *Relay) live(s *moqtransport.Session) bool {
	p := r.sessions[s]
	return p != nil && !p.ended && s.Context().Err() == nil
}

// logFor returns the relay's logger for lines about session s: with its
// id while the relay knows the session, the relay's own otherwise.
func (r *Relay) logFor(s *moqtransport.Session) *slog.Logger {
	if l, ok := r.logs.Load(s); ok {
		return l.(*slog.Logger)
	}
	return r.log
}

// SessionEnded removes what a session published, its namespace
// subscriptions and everything the relay kept about it. The relay calls
// it when an admitted session ends; calling it again does nothing.
func (r *Relay) SessionEnded(s *moqtransport.Session) {
	r.mu.Lock()
	p := r.sessions[s]
	if p == nil || p.ended {
		r.mu.Unlock()
		return
	}
	p.ended = true
	if p.expiry != nil {
		p.expiry.Stop()
	}
	for _, t := range p.withdrawn {
		t.Stop()
	}
	for _, t := range p.subExpiry {
		t.Stop()
	}
	p.subExpiry, p.grants = nil, nil
	delete(r.sessions, s)
	r.logs.Delete(s)
	if p.role != roleDialed {
		r.accepted--
		r.metrics.activeConnections.Add(-1)
		r.metrics.connectionsClosedTotal.Add(1)
		r.metrics.sessionDuration.Observe(time.Since(p.started).Seconds())
		defer r.metrics.sessionEnded(s) // may wait for Done: after the unlock
	}
	for name, sc := range r.scopes {
		for k, o := range sc.origins {
			if o.s == s {
				o.stopExpiry()
				delete(sc.origins, k)
				r.unregister(o)
				r.withdraw(sc, k)
			}
		}
		for _, n := range sc.nsSubs {
			if n.s == s {
				n.stop()
			}
		}
		sc.nsSubs = deleteSubs(sc.nsSubs, func(n *nsSub) bool { return n.s == s })
		r.dropIfEmpty(name)
	}
	r.mu.Unlock()
	p.close()
}
