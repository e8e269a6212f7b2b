package relay

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// ParamRelayHop is a setup parameter (even: a varint) a relay sends when it
// connects to another relay. The receiving relay resolves that session's
// requests with its local publishers only, never through the coordinator
// again, so that stale registrations cannot make relays forward a request
// around in a loop, and refuses to take namespaces or tracks from it.
// With Config.ClusterKey, it is honoured only with a valid peer token (a
// session that sends it without one is a client: local-only routing is
// not a mere restriction, since it can reach a local publisher of a
// shorter namespace where another relay holds the longer one); without a
// cluster key no peer can prove anything and it is honoured from anyone.
// What a relay peer is granted beyond a client (reading any namespace
// under Config.Auth) needs a peer token (see ClusterKey). Peers that do not
// know it ignore it, as draft-14 requires for unknown setup parameters.
const ParamRelayHop = 0x6d72

// DialFunc opens a MoQT session to another relay at url with cfg; the relay
// passes a cfg that carries ParamRelayHop.
type DialFunc func(ctx context.Context, url string, cfg *moqtransport.Config) (*moqtransport.Session, error)

// remote is a session to another relay in one scope, shared by every
// track, fetch and track-status request the relay forwards there.
//
// A remote session lives while something uses it, and for
// Config.RemoteIdleTimeout after: users counts the relayed tracks
// subscribed on it (until their upstream request is over, endUpstream),
// the TRACK_STATUS flights and the forwarded FETCHes (until their
// response is done), and the lookups that returned it (remoteSession)
// until their request has counted its own use; last is when the last of
// them ended. Once it has had no user for the grace period, idle closes it
// (closeIfIdle): on the other relay it is a session like any client's,
// counted against its MaxSessions, and there is one per relay and scope
// ever used. A later request dials again.
type remote struct {
	target string
	s      *moqtransport.Session
	ready  chan struct{}
	err    error

	// Under Relay.mu, once s is kept (keepDialed).
	users int
	last  time.Time
	idle  *time.Timer
}

// remoteOrigin finds the relay serving ns through the coordinator and
// returns an origin on a session to it.
func (r *Relay) remoteOrigin(ctx context.Context, scope string, ns wire.Namespace) (*origin, error) {
	u, err := r.cfg.Coordinator.Lookup(ctx, scope, ns)
	if err != nil {
		return nil, err
	}
	if u == r.cfg.Node {
		// The coordinator says we serve it, but no local publisher does:
		// a stale registration of our own.
		return nil, ErrNotFound
	}
	target, err := withScope(u, scope)
	if err != nil {
		return nil, err
	}
	s, err := r.remoteSession(ctx, target)
	if err != nil {
		return nil, fmt.Errorf("connecting to relay %s: %w", target, err)
	}
	return &origin{s: s, ns: ns, endLookupFn: sync.OnceFunc(func() {
		r.mu.Lock()
		r.doneRemote(s)
		r.mu.Unlock()
	})}, nil
}

// endLookup gives back the use of a remote session its lookup counted
// (remoteSession), once: called, without r.mu held, by whoever took o
// from Relay.route, remoteOrigin or longerElsewhere, after it counted its
// own use of the session (a relayed track, a TRACK_STATUS flight, a
// forwarded FETCH) or made none. Nothing for a local origin.
func (o *origin) endLookup() {
	if o != nil && o.endLookupFn != nil {
		o.endLookupFn()
	}
}

// withScope puts the scope in a relay URL's path, so the remote relay
// resolves the request in the same scope.
func withScope(raw, scope string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("relay URL %q from the coordinator: %w", raw, err)
	}
	if scope != "" {
		u.Path = scope
	}
	return u.String(), nil
}

// remoteSession returns the session to a relay, connecting once, with a
// use of it counted (see remote) that the caller gives back once it has
// counted its own or has none to make (origin.endLookup). The use is
// counted in the same hold of r.mu that finds the session open and kept:
// idle closing (closeIfIdle) cannot take the session between the lookup
// and the caller's use. A session closed or replaced while this waited is
// not returned: the relay is dialed again.
func (r *Relay) remoteSession(ctx context.Context, target string) (*moqtransport.Session, error) {
	for {
		rm, err := r.remoteDial(ctx, target)
		if err != nil {
			return nil, err
		}
		if hook := r.remoteFoundHook.Load(); hook != nil {
			(*hook)(rm.s)
		}
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, errors.New("relay: closed")
		}
		if r.dialed[rm.s] == rm && rm.s.Err() == nil {
			rm.users++ // the lookup's use: not idle
			r.mu.Unlock()
			return rm.s, nil
		}
		// Closed or closing (the idle close may not have ended it yet):
		// forgotten, so that the next pass dials instead of finding it
		// again and spinning until its end shows.
		if r.remotes[target] == rm {
			delete(r.remotes, target)
		}
		r.mu.Unlock()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// remoteDial returns the remote for target once its dial is over, dialing
// when there is none or it failed or ended.
func (r *Relay) remoteDial(ctx context.Context, target string) (*remote, error) {
	r.mu.Lock()
	rm := r.remotes[target]
	if rm != nil {
		select {
		case <-rm.ready:
			if rm.err != nil || rm.s.Err() != nil {
				rm = nil // failed or ended: connect again
			}
		default:
		}
	}
	if rm == nil {
		if r.closed {
			r.mu.Unlock()
			return nil, fmt.Errorf("relay: closed")
		}
		if r.cfg.Dial == nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("relay: no Dial configured for relay-to-relay connections")
		}
		rm = &remote{target: target, ready: make(chan struct{})}
		r.remotes[target] = rm
		r.mu.Unlock()
		cfg, err := r.dialConfig(target)
		if err != nil {
			r.mu.Lock()
			if r.remotes[target] == rm {
				delete(r.remotes, target)
			}
			r.mu.Unlock()
			rm.err = err
			close(rm.ready)
			return nil, err
		}
		// The dial serves every request waiting for this relay, not only
		// the first: it must not end with that one's context.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.UpstreamTimeout)
		s, err := r.cfg.Dial(dctx, target, cfg)
		cancel()
		if err != nil {
			r.metrics.upstreamErrors.WithLabelValues("connect").Inc()
			rm.err = err
			close(rm.ready)
		} else if !r.keepDialed(rm, target, s) {
			// Close ran while the dial did: it saw this remote still
			// connecting, so the session is ours to end, and Close
			// waits for its end (the relay watches every admitted
			// session's).
			_ = s.Close()
		}
	} else {
		r.mu.Unlock()
	}
	select {
	case <-rm.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if rm.err != nil {
		return nil, rm.err
	}
	return rm, nil
}

// keepDialed stores the session a dial opened to target in rm, unless
// the relay is closed, and closes rm.ready either way; it reports whether
// it kept it. Under r.mu, so that Close (which sets r.closed under it)
// either sees the session among the remotes and ends it, or the dialer
// learns here that it must.
func (r *Relay) keepDialed(rm *remote, target string, s *moqtransport.Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer close(rm.ready)
	if r.closed {
		rm.err = errors.New("relay: closed")
		return false
	}
	rm.s = s
	r.dialed[s] = rm
	r.idleFrom(rm) // the caller's use comes next
	r.logFor(s).Info("connected to relay", "url", target)
	r.metrics.upstreamConnections.Add(1)
	r.wg.Add(1) // Close has not begun waiting: r.closed is false
	go func() {
		defer r.wg.Done()
		<-s.Done()
		r.metrics.upstreamConnections.Add(-1)
		r.mu.Lock()
		if r.remotes[target] == rm {
			delete(r.remotes, target)
		}
		if r.dialed[s] == rm {
			delete(r.dialed, s)
		}
		rm.idle.Stop()
		r.mu.Unlock()
	}()
	return true
}

// useRemote counts a user of s (see remote) when s is a session to
// another relay; anything else is left alone. Called with r.mu held.
func (r *Relay) useRemote(s *moqtransport.Session) {
	if rm := r.dialed[s]; rm != nil {
		rm.users++
	}
}

// doneRemote gives back a use of s counted by useRemote; the last one
// starts its idle period. Called with r.mu held.
func (r *Relay) doneRemote(s *moqtransport.Session) {
	if rm := r.dialed[s]; rm != nil {
		rm.users--
		if rm.users == 0 {
			r.idleFrom(rm)
		}
	}
}

// idleFrom starts rm's idle period now. Called with r.mu held.
func (r *Relay) idleFrom(rm *remote) {
	rm.last = time.Now()
	if rm.idle == nil {
		rm.idle = time.AfterFunc(r.cfg.RemoteIdleTimeout, func() { r.closeIfIdle(rm) })
		return
	}
	rm.idle.Reset(r.cfg.RemoteIdleTimeout)
}

// closeIfIdle closes rm's session when it has had no user for
// Config.RemoteIdleTimeout; it runs on rm's timer. A session still used
// waits for its last user (doneRemote restarts the timer).
func (r *Relay) closeIfIdle(rm *remote) {
	r.mu.Lock()
	if r.closed || r.dialed[rm.s] != rm || rm.users > 0 {
		r.mu.Unlock()
		return // Close ends it; it ended; or it is in use
	}
	if wait := r.cfg.RemoteIdleTimeout - time.Since(rm.last); wait > 0 {
		rm.idle.Reset(wait)
		r.mu.Unlock()
		return
	}
	// Forgotten first: a request from now on dials anew.
	delete(r.dialed, rm.s)
	if r.remotes[rm.target] == rm {
		delete(r.remotes, rm.target)
	}
	r.wg.Add(1) // Close has not begun waiting: r.closed is false
	r.mu.Unlock()
	defer r.wg.Done()
	r.logFor(rm.s).Info("closing the session to relay: unused", "url", rm.target, "idle", r.cfg.RemoteIdleTimeout)
	_ = rm.s.Close()
}

// Close ends the relay's sessions to other relays and waits for the
// relay's goroutines. A dial to another relay still under way ends the
// session it opens itself (keepDialed).
func (r *Relay) Close() {
	r.mu.Lock()
	r.closed = true
	for _, sc := range r.scopes {
		for _, n := range sc.nsSubs {
			n.stop()
		}
	}
	// Every upstream SUBSCRIBE still waiting for its answer, the ones a
	// scope no longer names (their namespace changed owner) included:
	// each is the newest of its session and track in Relay.upstream, or
	// waits for that one (subscribeOrigin) and is cancelled with it.
	for _, rt := range r.upstream.all() {
		if rt.cancel != nil {
			rt.cancel()
		}
	}
	for _, f := range r.statuses {
		f.cancel() // upstream TRACK_STATUS requests still waiting
	}
	var sessions []*moqtransport.Session
	for s, rm := range r.dialed {
		rm.idle.Stop()
		sessions = append(sessions, s)
	}
	r.mu.Unlock()
	for _, s := range sessions {
		_ = s.Close()
	}
	r.wg.Wait()
}

// dialConfig is the configuration of a session this relay opens to the
// relay at target: it says it is a relay (ParamRelayHop) and, with a
// cluster key, proves it with a peer token made for that relay only. The
// session is admitted like an accepted one (by the peer's SERVER_SETUP),
// and what the peer requests on it is checked as a relay peer's that has
// proved nothing (see checkRequest).
func (r *Relay) dialConfig(target string) (*moqtransport.Config, error) {
	cfg := r.sessionConfig(&peer{role: roleDialed})
	cfg.SetupParams = slices.Clone(cfg.SetupParams).WithVarint(ParamRelayHop, 1)
	if r.cfg.ClusterKey != nil {
		tok, err := r.cfg.ClusterKey.PeerToken(r.cfg.Node, target, time.Now())
		if err != nil {
			return nil, fmt.Errorf("relay: making a peer token: %w", err)
		}
		kv, err := peerTokenParam(tok)
		if err != nil {
			return nil, err
		}
		cfg.SetupParams = append(cfg.SetupParams, kv)
	}
	return cfg, nil
}
