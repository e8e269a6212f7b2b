package relay

import (
	"context"
	"fmt"
	"net/url"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// ParamRelayHop is a setup parameter (even: a varint) a relay sends when it
// connects to another relay. The receiving relay resolves that session's
// requests with its local publishers only, never through the coordinator
// again, so that stale registrations cannot make relays forward a request
// around in a loop. Peers that do not know it ignore it, as draft-14
// requires for unknown setup parameters.
const ParamRelayHop = 0x6d72

// isRelayPeer reports whether a session comes from another relay.
func isRelayPeer(s *moqtransport.Session) bool {
	_, ok := s.PeerSetupParams().Varint(ParamRelayHop)
	return ok
}

// DialFunc opens a MoQT session to another relay at url with cfg; the relay
// passes a cfg that carries ParamRelayHop.
type DialFunc func(ctx context.Context, url string, cfg *moqtransport.Config) (*moqtransport.Session, error)

// remote is a session to another relay, shared by every track the relay
// subscribes to there.
type remote struct {
	s     *moqtransport.Session
	ready chan struct{}
	err   error
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
	return &origin{s: s, ns: ns}, nil
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

// remoteSession returns the session to a relay, connecting once.
func (r *Relay) remoteSession(ctx context.Context, target string) (*moqtransport.Session, error) {
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
		if r.cfg.Dial == nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("relay: no Dial configured for relay-to-relay connections")
		}
		rm = &remote{ready: make(chan struct{})}
		r.remotes[target] = rm
		r.mu.Unlock()
		cfg := r.cfg.Session
		cfg.Handler = r
		cfg.SetupParams = cfg.SetupParams.WithVarint(ParamRelayHop, 1)
		cfg.Track = r.cfg.Track
		if cfg.Logger == nil {
			cfg.Logger = r.log
		}
		cfg.Tracer = moqtransport.MultiTracer(cfg.Tracer, countingTracer{&r.metrics})
		// The dial serves every request waiting for this relay, not only
		// the first: it must not end with that one's context.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.UpstreamTimeout)
		rm.s, rm.err = r.cfg.Dial(dctx, target, &cfg)
		cancel()
		close(rm.ready)
		if rm.err != nil {
			r.metrics.countError("moq_relay_upstream_errors_total", "stage", "connect")
		} else {
			r.log.Info("connected to relay", "url", target)
			r.metrics.UpstreamConnections.Add(1)
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				<-rm.s.Done()
				r.metrics.UpstreamConnections.Add(-1)
				r.mu.Lock()
				if r.remotes[target] == rm {
					delete(r.remotes, target)
				}
				r.mu.Unlock()
			}()
		}
	} else {
		r.mu.Unlock()
	}
	select {
	case <-rm.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return rm.s, rm.err
}

// Close ends the relay's sessions to other relays and waits for the
// relay's goroutines.
func (r *Relay) Close() {
	r.mu.Lock()
	var sessions []*moqtransport.Session
	for _, rm := range r.remotes {
		select {
		case <-rm.ready:
			if rm.err == nil {
				sessions = append(sessions, rm.s)
			}
		default:
		}
	}
	r.mu.Unlock()
	for _, s := range sessions {
		_ = s.Close()
	}
	r.wg.Wait()
}
