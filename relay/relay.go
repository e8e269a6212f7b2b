// Package relay is the moq-go relay engine: it accepts MoQT sessions, takes
// namespaces from publishers, and fans each track out to any number of
// subscribers from one upstream subscription and its cache.
//
// # Scopes
//
// A session's path (the WebTransport URL path, or the PATH setup parameter
// over raw QUIC) is its scope, as in moq-rs: namespaces published in one
// scope are found by subscribers in the same scope. The query string is not
// part of the scope; "" and "/" are the unscoped scope. A path-scoped
// subscriber that finds no publisher in its own scope falls back to the
// unscoped scope, so that a publisher at https://relay/ serves a subscriber
// at https://relay/room (moq-rs keeps them apart). A path must start with
// "/", be at most 1024 bytes, and have no empty, "." or ".." segment and no
// "%"; any other path closes the session with MALFORMED_PATH.
//
// # Routing
//
// SUBSCRIBE is routed to the publisher whose namespace is the longest
// prefix of the track's namespace (field by field) within the scope. There
// is one upstream SUBSCRIBE per track, shared by every downstream
// subscriber, each served from the track's cache with its own filter and
// priority. When the last downstream subscription ends, the relay sends
// UNSUBSCRIBE upstream; a new subscriber subscribes again. A namespace no
// publisher has gets SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST.
//
// When a publisher's session ends, its tracks end for their subscribers
// with PUBLISH_DONE GOING_AWAY; a PUBLISH_DONE from the publisher passes
// through with its own status.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Config configures a Relay. The zero value is usable.
type Config struct {
	// Logger receives the relay's logs; nil is silent.
	Logger *slog.Logger
	// Session is the template for every session's configuration; its
	// Handler is replaced by the relay.
	Session moqtransport.Config
	// MaxSessions caps the sessions running at once; past it a new session
	// is closed with INTERNAL_ERROR ("relay full") right after setup. 0 is
	// no cap.
	MaxSessions int
	// Track bounds each relayed track's cache.
	Track moqtransport.TrackConfig
	// UpstreamTimeout bounds an upstream SUBSCRIBE; default 10s.
	UpstreamTimeout time.Duration
	// Coordinator, when set, registers the namespaces published here and
	// finds the ones published on other relays.
	Coordinator Coordinator
	// Node is this relay's URL as other relays reach it: what the
	// coordinator records for the namespaces published here.
	Node string
	// Dial opens sessions to other relays (moqnative.Dial and
	// moqtransport.Connect, with the TLS settings for the cluster).
	Dial DialFunc
	// Auth, when set, checks every session's and request's token; nil
	// leaves the relay open, as moq-rs is.
	Auth *TokenAuth
	// SessionTracer, when set, gives each accepted session a Tracer of its
	// own (an mlog file per session); nil results are skipped.
	SessionTracer func() moqtransport.Tracer
}

// Relay routes namespaces and tracks between sessions. It implements
// moqtransport.Handler: pass it as the Handler of every session, or use
// Serve.
type Relay struct {
	cfg Config
	log *slog.Logger
	// wg owns the goroutines that announce namespaces to subscribers.
	wg sync.WaitGroup

	metrics Metrics

	mu      sync.Mutex
	scopes  map[string]*scope
	remotes map[string]*remote
}

type scope struct {
	// origins: published namespaces, by namespace key.
	origins map[string]*origin
	// tracks: relayed tracks with their upstream subscription.
	tracks map[string]*relayTrack
	// nsSubs: sessions' SUBSCRIBE_NAMESPACE prefixes.
	nsSubs []*nsSub
}

// nsSub is a session's namespace subscription and what the relay
// announced to it, by namespace key.
type nsSub struct {
	s         *moqtransport.Session
	prefix    wire.Namespace
	announced map[string]*moqtransport.NamespacePublication
}

type origin struct {
	s   *moqtransport.Session
	ns  wire.Namespace
	reg Registration // with the coordinator, when there is one
}

// relayTrack is one upstream subscription shared by its downstream ones.
type relayTrack struct {
	key   string
	scope string
	up    *moqtransport.Subscription
	track *moqtransport.Track
	refs  int
	ready chan struct{} // closed once up is known or failed
	err   error
	// published: the track was pushed to the relay with PUBLISH; it lives
	// as long as that publication, whatever its subscribers do.
	published bool
	// remote: the upstream is another relay, found through the
	// coordinator.
	remote bool
}

// New returns a relay.
func New(cfg Config) *Relay {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UpstreamTimeout == 0 {
		cfg.UpstreamTimeout = 10 * time.Second
	}
	return &Relay{cfg: cfg, log: cfg.Logger, scopes: map[string]*scope{}, remotes: map[string]*remote{}}
}

// SessionConfig returns the configuration to run a session of this relay
// with.
func (r *Relay) SessionConfig() *moqtransport.Config {
	c := r.cfg.Session
	c.Handler = r
	if c.Logger == nil {
		c.Logger = r.log
	}
	c.Track = r.cfg.Track
	var own moqtransport.Tracer
	if r.cfg.SessionTracer != nil {
		own = r.cfg.SessionTracer()
	}
	c.Tracer = moqtransport.MultiTracer(c.Tracer, own, countingTracer{&r.metrics})
	if r.cfg.Auth != nil {
		c.Authorize = r.cfg.Auth.Authorize
	}
	return &c
}

// Scope normalises a session path into its scope: the path without its
// query and trailing "/", "" for none. It returns an error for a path the
// relay refuses.
func Scope(path string) (string, error) {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if len(path) > 1024 {
		return "", fmt.Errorf("path is %d bytes, limit 1024", len(path))
	}
	if strings.Trim(path, "/") == "" {
		return "", nil
	}
	if path[0] != '/' {
		return "", fmt.Errorf("path %q does not start with /", path)
	}
	if strings.Contains(path, "%") {
		return "", fmt.Errorf("path %q has a %% escape", path)
	}
	path = strings.TrimSuffix(path, "/")
	for _, seg := range strings.Split(path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("path %q has an empty or dot segment", path)
		}
	}
	return path, nil
}

func scopeOf(s *moqtransport.Session) string {
	sc, _ := Scope(s.Path()) // checked when the session was admitted
	return sc
}

func (r *Relay) scope(name string) *scope {
	sc := r.scopes[name]
	if sc == nil {
		sc = &scope{origins: map[string]*origin{}, tracks: map[string]*relayTrack{}}
		r.scopes[name] = sc
	}
	return sc
}

// Admit checks a new session's path; a refused session is closed with
// MALFORMED_PATH. Server calls it and SessionEnded; call them yourself
// when you run sessions.
func (r *Relay) Admit(s *moqtransport.Session) error {
	if _, err := Scope(s.Path()); err != nil {
		s.CloseWithError(wire.MalformedPath, err.Error())
		return err
	}
	return nil
}

func nsKey(ns wire.Namespace) string {
	var b strings.Builder
	for _, f := range ns {
		fmt.Fprintf(&b, "%d:%s", len(f), f)
	}
	return b.String()
}

func trackKey(ns wire.Namespace, name string) string {
	return fmt.Sprintf("%d|%s%d:%s", len(ns), nsKey(ns), len(name), name)
}

// PublishNamespace registers a publisher's namespace in its scope, and
// with the coordinator. A namespace another session (or, through the
// coordinator, another relay) already publishes is refused.
func (r *Relay) PublishNamespace(ctx context.Context, s *moqtransport.Session, req *wire.PublishNamespace) error {
	scName := scopeOf(s)
	k := nsKey(req.Namespace)
	o := &origin{s: s, ns: req.Namespace}
	r.metrics.PublishersTotal.Add(1)
	r.mu.Lock()
	sc := r.scope(scName)
	if other := sc.origins[k]; other != nil && other.s != s {
		r.mu.Unlock()
		r.metrics.countError("moq_relay_announce_errors_total", "phase", "local_register")
		return moqtransport.NamespaceError(wire.NamespaceInternalError, "namespace "+req.Namespace.String()+" is already published")
	}
	sc.origins[k] = o
	r.mu.Unlock()
	// A relay peer's namespaces are that relay's to register, not ours.
	if r.cfg.Coordinator != nil && !isRelayPeer(s) {
		reg, err := r.cfg.Coordinator.Register(ctx, scName, req.Namespace)
		if err != nil {
			r.mu.Lock()
			if sc.origins[k] == o {
				delete(sc.origins, k)
			}
			r.mu.Unlock()
			r.metrics.countError("moq_relay_announce_errors_total", "phase", "coordinator_register")
			return moqtransport.NamespaceError(wire.NamespaceInternalError, "registering with the coordinator: "+err.Error())
		}
		r.mu.Lock()
		o.reg = reg
		gone := sc.origins[k] != o
		r.mu.Unlock()
		if gone {
			_ = reg.Close()
			return moqtransport.NamespaceError(wire.NamespaceInternalError, "the publisher left")
		}
	}
	r.log.Info("namespace published", "scope", scName, "namespace", req.Namespace.String())
	r.metrics.AnnounceOKTotal.Add(1)
	r.mu.Lock()
	for _, sub := range sc.nsSubs {
		if req.Namespace.HasPrefix(sub.prefix) {
			r.announce(sub, req.Namespace)
		}
	}
	r.mu.Unlock()
	return nil
}

// unregister drops an origin's coordinator registration, off the caller's
// goroutine. Called with r.mu held.
func (r *Relay) unregister(o *origin) {
	if o.reg == nil {
		return
	}
	reg := o.reg
	o.reg = nil
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := reg.Close(); err != nil {
			r.log.Warn("removing a namespace from the coordinator", "namespace", o.ns.String(), "err", err)
		}
	}()
}

// PublishNamespaceDone removes a withdrawn namespace.
func (r *Relay) PublishNamespaceDone(s *moqtransport.Session, ns wire.Namespace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sc := r.scope(scopeOf(s))
	k := nsKey(ns)
	if o := sc.origins[k]; o != nil && o.s == s {
		delete(sc.origins, k)
		r.log.Info("namespace withdrawn", "scope", scopeOf(s), "namespace", ns.String())
		r.unregister(o)
		r.withdraw(sc, k)
	}
}

// route finds the origin for a namespace: the longest published prefix in
// the scope, then in the unscoped scope.
func (r *Relay) route(scopeName string, ns wire.Namespace) (*origin, string) {
	for _, name := range []string{scopeName, ""} {
		sc := r.scopes[name]
		if sc == nil {
			continue
		}
		var best *origin
		for _, o := range sc.origins {
			if ns.HasPrefix(o.ns) && (best == nil || len(o.ns) > len(best.ns)) {
				best = o
			}
		}
		if best != nil {
			return best, name
		}
		if name == "" {
			break
		}
	}
	return nil, ""
}

// Subscribe serves a track from its shared upstream subscription,
// subscribing upstream for the first subscriber.
func (r *Relay) Subscribe(ctx context.Context, s *moqtransport.Session, req *wire.Subscribe) (*moqtransport.Track, error) {
	r.metrics.SubscribersTotal.Add(1)
	t, err := r.subscribe(ctx, s, req)
	if err == nil {
		r.metrics.ActiveSubscriptions.Add(1)
	}
	return t, err
}

func (r *Relay) subscribe(ctx context.Context, s *moqtransport.Session, req *wire.Subscribe) (*moqtransport.Track, error) {
	r.mu.Lock()
	k := trackKey(req.Namespace, req.Name)
	if rt := r.publishedTrack(scopeOf(s), k); rt != nil {
		rt.refs++
		r.mu.Unlock()
		return rt.track, nil
	}
	o, scName := r.route(scopeOf(s), req.Namespace)
	viaRemote := false
	if o == nil {
		// A track already relayed from another relay needs no lookup.
		if rt := r.scope(scopeOf(s)).tracks[k]; rt != nil && rt.remote && (rt.track == nil || !rt.track.Closed()) {
			rt.refs++
			r.mu.Unlock()
			return r.awaitTrack(ctx, rt)
		}
		r.mu.Unlock()
		notFound := moqtransport.SubscribeError(wire.SubscribeTrackDoesNotExist, "no publisher for namespace "+req.Namespace.String())
		if r.cfg.Coordinator == nil || isRelayPeer(s) {
			r.metrics.SubscribeNotFoundTotal.Add(1)
			return nil, notFound
		}
		remote, err := r.remoteOrigin(ctx, scopeOf(s), req.Namespace)
		if errors.Is(err, ErrNotFound) {
			r.metrics.SubscribeNotFoundTotal.Add(1)
			return nil, notFound
		}
		if err != nil {
			r.metrics.SubscribeRouteErrors.Add(1)
			r.log.Warn("routing through the coordinator failed", "namespace", req.Namespace.String(), "err", err)
			return nil, moqtransport.SubscribeError(wire.SubscribeInternalError, "routing to another relay failed")
		}
		o, scName, viaRemote = remote, scopeOf(s), true
		r.mu.Lock()
	}
	sc := r.scope(scName)
	rt := sc.tracks[k]
	if rt != nil && rt.track != nil && rt.track.Closed() {
		// The upstream subscription ended: subscribe again.
		delete(sc.tracks, k)
		rt = nil
	}
	if rt == nil {
		rt = &relayTrack{key: k, scope: scName, ready: make(chan struct{}), remote: viaRemote}
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
	// The upstream subscription serves every downstream one: it starts at
	// the newest object and forwards, whatever the first subscriber asked
	// (§8.3: relays aggregate with Largest Object).
	up, err := o.s.Subscribe(ctx, req.Namespace, req.Name, moqtransport.SubscribeOptions{
		Priority: moqtransport.DefaultPriority,
		Filter:   wire.Filter{Type: wire.FilterLargestObject},
	})
	if err != nil {
		var re *moqtransport.RequestError
		if !errors.As(err, &re) {
			err = moqtransport.SubscribeError(wire.SubscribeInternalError, "upstream subscription failed: "+err.Error())
		}
		rt.err = err
		r.log.Info("upstream subscribe failed", "track", req.Namespace.String()+"/"+req.Name, "err", err)
		return
	}
	// When the publisher's session ends, the track ends for its
	// subscribers with GOING_AWAY; a PUBLISH_DONE passes its own status
	// through the track.
	r.mu.Lock()
	rt.up, rt.track = up, up.Track()
	r.mu.Unlock()
	r.log.Info("upstream subscribed", "track", req.Namespace.String()+"/"+req.Name)
}

// SubscriptionEnded drops a downstream subscriber; the last one takes the
// upstream subscription with it.
func (r *Relay) SubscriptionEnded(_ *moqtransport.Session, _ *wire.Subscribe, t *moqtransport.Track) {
	r.metrics.ActiveSubscriptions.Add(-1)
	r.mu.Lock()
	var found *relayTrack
	for _, sc := range r.scopes {
		for _, rt := range sc.tracks {
			if rt.track == t {
				found = rt
			}
		}
	}
	r.mu.Unlock()
	if found != nil {
		r.release(found)
	}
}

func (r *Relay) release(rt *relayTrack) {
	r.mu.Lock()
	rt.refs--
	last := rt.refs == 0 && !rt.published
	if last {
		if sc := r.scopes[rt.scope]; sc != nil && sc.tracks[rt.key] == rt {
			delete(sc.tracks, rt.key)
		}
	}
	r.mu.Unlock()
	if last && rt.up != nil {
		_ = rt.up.Unsubscribe()
		r.log.Info("upstream unsubscribed", "track", rt.up.Name().String())
	}
}

// SessionEnded removes what a closed session published and its namespace
// subscriptions.
func (r *Relay) SessionEnded(s *moqtransport.Session) {
	if r.cfg.Auth != nil {
		r.cfg.Auth.Forget(s)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sc := range r.scopes {
		for k, o := range sc.origins {
			if o.s == s {
				delete(sc.origins, k)
				r.unregister(o)
				r.withdraw(sc, k)
			}
		}
		sc.nsSubs = slices.DeleteFunc(sc.nsSubs, func(n *nsSub) bool { return n.s == s })
	}
}

// Wait waits for the goroutines that announce namespaces to subscribers.
func (r *Relay) Wait() { r.wg.Wait() }

// SubscribeNamespace accepts a namespace subscription in the session's
// scope.
func (r *Relay) SubscribeNamespace(_ context.Context, s *moqtransport.Session, req *wire.SubscribeNamespace) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	sc := r.scope(scopeOf(s))
	sc.nsSubs = append(sc.nsSubs, &nsSub{s: s, prefix: req.Prefix, announced: map[string]*moqtransport.NamespacePublication{}})
	return nil
}

// NamespaceSubscribed announces the namespaces published under the prefix
// now; later ones follow as they are published. The subscriber's own
// namespaces are echoed back too, as draft-14 says.
func (r *Relay) NamespaceSubscribed(s *moqtransport.Session, prefix wire.Namespace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sc := r.scope(scopeOf(s))
	for _, sub := range sc.nsSubs {
		if sub.s != s || !sub.prefix.Equal(prefix) {
			continue
		}
		for _, o := range sc.origins {
			if o.ns.HasPrefix(prefix) {
				r.announce(sub, o.ns)
			}
		}
	}
}

// UnsubscribeNamespace forgets a namespace subscription: nothing more is
// announced to it.
func (r *Relay) UnsubscribeNamespace(s *moqtransport.Session, prefix wire.Namespace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sc := r.scope(scopeOf(s))
	sc.nsSubs = slices.DeleteFunc(sc.nsSubs, func(n *nsSub) bool { return n.s == s && n.prefix.Equal(prefix) })
}

// announce sends PUBLISH_NAMESPACE for ns to a namespace subscriber. Called
// with r.mu held; the request runs on a goroutine of the relay.
func (r *Relay) announce(sub *nsSub, ns wire.Namespace) {
	k := nsKey(ns)
	if _, done := sub.announced[k]; done {
		return
	}
	sub.announced[k] = nil // reserved: in flight
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(sub.s.Context(), r.cfg.UpstreamTimeout)
		defer cancel()
		pub, err := sub.s.PublishNamespace(ctx, ns, nil)
		r.mu.Lock()
		if err != nil {
			r.log.Debug("announcing to a namespace subscriber failed", "namespace", ns.String(), "err", err)
			delete(sub.announced, k)
			r.mu.Unlock()
			return
		}
		_, still := sub.announced[k]
		if still {
			sub.announced[k] = pub
		}
		r.mu.Unlock()
		if !still {
			// Withdrawn while the announcement was in flight.
			_ = pub.Close()
		}
	}()
}

// withdraw sends PUBLISH_NAMESPACE_DONE for a namespace to every
// subscriber it was announced to. Called with r.mu held.
func (r *Relay) withdraw(sc *scope, k string) {
	for _, sub := range sc.nsSubs {
		pub, ok := sub.announced[k]
		if !ok {
			continue
		}
		delete(sub.announced, k)
		if pub != nil {
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				_ = pub.Close()
			}()
		}
	}
}

// publishedTrack finds a live track pushed with PUBLISH, in the scope or
// the unscoped scope. Called with r.mu held.
func (r *Relay) publishedTrack(scopeName, k string) *relayTrack {
	for _, name := range []string{scopeName, ""} {
		if sc := r.scopes[name]; sc != nil {
			if rt := sc.tracks[k]; rt != nil && rt.published && !rt.track.Closed() {
				return rt
			}
		}
		if name == "" {
			break
		}
	}
	return nil
}

// Publish accepts a track a publisher pushes (PUBLISH): subscribers of the
// scope get it from the relay's cache, and namespace subscribers whose
// prefix matches get a PUBLISH of their own.
func (r *Relay) Publish(_ context.Context, s *moqtransport.Session, req *wire.Publish, sub *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	scName := scopeOf(s)
	sc := r.scope(scName)
	k := trackKey(req.Namespace, req.Name)
	if rt := sc.tracks[k]; rt != nil && rt.track != nil && !rt.track.Closed() {
		return moqtransport.SubscribeOptions{}, moqtransport.PublishError(wire.PublishInternalError, "track "+req.Namespace.String()+"/"+req.Name+" is already published here")
	}
	rt := &relayTrack{key: k, scope: scName, track: sub.Track(), published: true, ready: make(chan struct{})}
	close(rt.ready)
	sc.tracks[k] = rt
	r.log.Info("track published", "scope", scName, "track", req.Namespace.String()+"/"+req.Name)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-sub.Done()
		r.mu.Lock()
		if sc.tracks[k] == rt {
			delete(sc.tracks, k)
		}
		r.mu.Unlock()
	}()
	for _, ns := range sc.nsSubs {
		if req.Namespace.HasPrefix(ns.prefix) {
			r.forwardPublish(ns.s, sub.Track())
		}
	}
	return moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority}, nil
}

// forwardPublish pushes a published track on to a namespace subscriber.
// Called with r.mu held.
func (r *Relay) forwardPublish(s *moqtransport.Session, t *moqtransport.Track) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		ctx, cancel := context.WithTimeout(s.Context(), r.cfg.UpstreamTimeout)
		defer cancel()
		if _, err := s.Publish(ctx, t, moqtransport.PublishOptions{}); err != nil {
			r.log.Debug("forwarding PUBLISH to a namespace subscriber failed", "track", t.Name().String(), "err", err)
		}
	}()
}
