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
// "%"; any other path closes the session with MALFORMED_PATH. A scope
// exists while something is in it: the last namespace, track or namespace
// subscription to leave it deletes it.
//
// # Admission and trust
//
// A session is admitted when its setup message arrives, before its control
// loop runs: its path, its AUTHORITY (against Config.Authorities), the
// session cap, its token (Config.Auth) and, for a relay peer, its peer
// token (Config.ClusterKey, see ClusterKey) are checked there, and a
// refused session is closed with the draft's code and leaves nothing
// behind. Who the peer is (a client, a relay peer, a relay we dialed) and
// what its token grants are decided once, at admission, for accepted and
// dialed sessions alike; every request is checked against them (see
// Relay.checkRequest for the rules). A session's token holds for the
// session's whole life: at its exp the session is closed with
// EXPIRED_AUTH_TOKEN. What a request's own token grants (a subscription,
// a namespace, a pushed track, a namespace subscription, a fetch) ends at that
// token's exp while the session goes on (see grants.go for each code).
// Every admitted session's end is seen by the relay,
// which then drops what the session registered and what it knew of it
// (claims, its expiry timer, its event log).
//
// # Ownership
//
// A namespace belongs to the session that published it (PUBLISH_NAMESPACE)
// in its scope, and so does every namespace under it: another session's
// PUBLISH_NAMESPACE of it or of a namespace under it is refused with
// PUBLISH_NAMESPACE_ERROR UNAUTHORIZED, and another session's PUBLISH of a
// track under it with PUBLISH_ERROR UNAUTHORIZED. A track pushed with
// PUBLISH belongs to its publisher: a second PUBLISH of it is refused the
// same way. Ownership is per scope, and the unscoped fallback is only a
// fallback: a subscriber is served from its own scope whenever its scope
// has a publisher for the track (a published track or a namespace), so an
// unscoped publisher never shadows a scoped one.
//
// With a Coordinator, ownership holds across the cluster, first come first
// served: PUBLISH_NAMESPACE registers its namespace and PUBLISH its track's
// namespace (for as long as the track is published), and the coordinator
// refuses a namespace when another relay holds it or a prefix of it in the
// same scope (ErrServedElsewhere). The session is then refused as above,
// PUBLISH_NAMESPACE_ERROR or PUBLISH_ERROR UNAUTHORIZED; a pushed track,
// and a namespace, serve no one until their claim succeeds (a request
// for them waits for the coordinator's answer), and are not announced
// to namespace subscribers until then. A subscriber is served from
// its scope on this relay, then from its scope on another relay (through
// the coordinator), and only then from the unscoped scope, here and then
// elsewhere. Within a scope the longest prefix wins across the cluster as
// on one relay: a namespace under a local publisher's that another relay
// claimed first is served from that relay, not by the local publisher.
// The relay reaches another relay through one session per relay and
// scope, shared by what it forwards there, and closed once nothing has
// used it for Config.RemoteIdleTimeout (remote.go).
//
// # Routing
//
// SUBSCRIBE is routed to the publisher whose namespace is the longest
// prefix of the track's namespace (field by field) within the scope. There
// is one upstream SUBSCRIBE per track, shared by every downstream
// subscriber, each served from the track's cache with its own filter and
// priority. The upstream SUBSCRIBE belongs to the track, not to the
// subscriber that caused it: a subscriber that leaves before the
// publisher answers leaves the others waiting; it is bounded by
// UpstreamTimeout (SUBSCRIBE_ERROR TIMEOUT) and by the upstream session.
// When the last downstream subscription ends, or the last waiting
// subscriber leaves, the relay sends UNSUBSCRIBE upstream; a new
// subscriber subscribes again. The upstream SUBSCRIBE is shared only by
// requests that resolve to the session it was asked of: a namespace that
// changes owner leaves it to the subscribers it has, and new ones are
// served by the new owner (subscribeOrigin). A namespace no
// publisher has gets SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST.
//
// When a publisher's session ends, its tracks end for their subscribers
// with PUBLISH_DONE GOING_AWAY; a PUBLISH_DONE from the publisher passes
// through with its own status.
//
// FETCH is not a subscription. It is answered from the cache of a track
// the relay already relays when that cache knows every object of the range
// (moqtransport.FetchFromRelayedTrack: a subgroup stream still on its way
// or reset leaves objects whose status is unknown), and otherwise
// forwarded as a FETCH to the publisher, its answer streamed through; a
// pushed track's cache answers what it holds (moqtransport.FetchFromTrack); it holds no reference on a
// relayed track and is not counted among subscribers. TRACK_STATUS is
// answered from a relayed track the relay has live (one a SUBSCRIBE would
// share: FETCH and TRACK_STATUS are routed as SUBSCRIBE is, never to a
// previous owner's track), and otherwise
// forwarded as a TRACK_STATUS to the publisher a SUBSCRIBE would reach,
// its answer passed on (§9.20): it opens no subscription. A publisher
// that leaves it unanswered for TrackStatusTimeout (moq-rs does for a
// track it lacks) is asked with SUBSCRIBE instead, from then on, and the
// SUBSCRIBE_OK or SUBSCRIBE_ERROR answers; the relay UNSUBSCRIBEs at
// once unless a subscriber shares the subscription. TRACK_STATUS
// requests for the same track that reach the same upstream session while
// one is asked share that upstream request, each getting its answer
// (trackstatus.go).
//
// # Namespace subscriptions
//
// A SUBSCRIBE_NAMESPACE gets the namespaces (PUBLISH_NAMESPACE) and the
// pushed tracks (PUBLISH) of its scope under its prefix, the ones that
// exist when it arrives and the ones that come later (§9.28). One goroutine
// per namespace subscription sends them, one at a time: a subscriber that
// does not read its control stream holds up only itself, and churn only
// changes what that goroutine has left to send.
//
// # Operations
//
// Metrics are Prometheus metrics on a registry of the relay's own
// (Relay.Metrics, Metrics.Registry; see metrics.go for the names and their
// bounded labels); OpsHandler serves them with /health and, optionally,
// pprof. The relay numbers its sessions: every line it logs about a
// session, and every line the session logs itself, carries
// "session"=<id>, and lines about a request carry "request"=<its ID>;
// Config.SessionTracer is given the same id.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Config configures a Relay. The zero value is usable.
type Config struct {
	// Logger receives the relay's logs; nil is silent.
	Logger *slog.Logger
	// Session is the template for every session's configuration; its
	// Handler is replaced by the relay's (see SessionConfig), and its
	// Authorize, when set, is asked after the relay's own checks. Its Reader.Budget bounds what all
	// sessions together hold for objects in progress, on top of each
	// session's MaxBytesInFlight: nil gets DefaultInFlightBudget.
	Session moqtransport.Config
	// MaxSessions caps the accepted sessions running at once; past it a
	// new session is closed with INTERNAL_ERROR ("relay full") at setup.
	// 0 is no cap.
	MaxSessions int
	// Track bounds each relayed track's cache. Its Budget bounds them all
	// together: nil gets a moqtransport.DefaultCacheBudget (1 GiB) of the
	// relay's own (see CacheBudget).
	Track moqtransport.TrackConfig
	// UpstreamTimeout bounds an upstream SUBSCRIBE (its waiting
	// subscribers then get SUBSCRIBE_ERROR TIMEOUT) and FETCH (FETCH_ERROR
	// TIMEOUT), and, after the publisher's FETCH_OK, the time it may
	// take to open the fetch stream while it could (the FETCH is then
	// cancelled upstream and the subscriber's fetch stream reset). It
	// also bounds the SUBSCRIBE a TRACK_STATUS falls back to (and, added
	// to TrackStatusTimeout, a TRACK_STATUS forwarded to another relay of
	// the cluster), dialing another relay, and the PUBLISH_NAMESPACE and
	// PUBLISH the relay sends a namespace subscriber. Default
	// DefaultUpstreamTimeout (10s).
	UpstreamTimeout time.Duration
	// TrackStatusTimeout is how long the relay waits for a publisher's
	// answer to a forwarded TRACK_STATUS before it asks with SUBSCRIBE
	// instead (§9.20 lets a relay do either) and answers from that:
	// some publishers (moq-rs) never answer TRACK_STATUS for a track they
	// do not know. A publisher that left one unanswered is asked with
	// SUBSCRIBE from then on, for as long as its namespace is published.
	// It also bounds the wait for a FETCH the relay forwards only because
	// its cache holds the range but cannot show it complete: past it the
	// cache answers, and answers such FETCHes for that publisher without
	// asking it for a while (10 times TrackStatusTimeout, doubling at each
	// further silence, up to 600 times, until it answers one: moq-rs drops
	// FETCH unanswered, while a slow archive may answer the next one);
	// after NOT_SUPPORTED, for as long as its namespace is published.
	// Default DefaultTrackStatusTimeout (1s), at most UpstreamTimeout.
	TrackStatusTimeout time.Duration
	// Coordinator, when set, registers the namespaces published here and
	// finds the ones published on other relays.
	Coordinator Coordinator
	// Node is this relay's URL as other relays reach it: what the
	// coordinator records for the namespaces published here, and the
	// audience of the peer tokens other relays send it.
	Node string
	// Dial opens sessions to other relays (moqnative.Dial and
	// moqtransport.Connect, with the TLS settings for the cluster).
	Dial DialFunc
	// RemoteIdleTimeout is how long a session to another relay (one per
	// relay and scope) stays open once nothing uses it: no relayed track
	// subscribed there, no FETCH or TRACK_STATUS forwarded there. The
	// other relay counts it as a session like any other (its
	// MaxSessions). Default DefaultRemoteIdleTimeout (1 minute).
	RemoteIdleTimeout time.Duration
	// Auth, when set, checks every session's and request's token; nil
	// leaves the relay open, as moq-rs is.
	Auth *TokenAuth
	// ClusterKey, when set, makes and checks the peer tokens relays prove
	// they are relays with (see ClusterKey).
	ClusterKey *ClusterKey
	// Authorities, when set, are the host names (and addresses) this
	// relay serves, "*.example.com" matching one label: a session whose
	// AUTHORITY (raw QUIC) or :authority (WebTransport) names another host
	// is closed with INVALID_AUTHORITY. moq-relay sets them from its
	// certificates; leave them empty for a generated certificate.
	Authorities []string
	// SessionTracer, when set, gives each accepted session a Tracer of its
	// own (an mlog file per session); nil results are skipped. A Tracer
	// that is an io.Closer is closed when its session ends.
	SessionTracer func(session string) moqtransport.Tracer
}

// Relay routes namespaces and tracks between sessions. Run its sessions
// with SessionConfig (whose Handler is the relay's), or use Server.
type Relay struct {
	cfg Config
	log *slog.Logger
	// wg owns the relay's goroutines: namespace-subscription senders,
	// session-end watchers, coordinator removals.
	wg sync.WaitGroup

	metrics *Metrics
	// sessionIDs numbers the sessions for the logs; logs holds the
	// logger of each admitted session (with its id), by session.
	sessionIDs atomic.Uint64
	logs       sync.Map

	// What every session's configuration shares, built once (New) rather
	// than per session: its Handler, its ObserveDelivery and ObserveHold.
	hnd             moqtransport.Handler
	observeDelivery func(time.Duration)
	observeHold     func(time.Duration, int)

	// remoteFoundHook, set by tests only, runs when a lookup has found
	// the session to another relay, before it counts its use.
	remoteFoundHook atomic.Pointer[func(*moqtransport.Session)]

	mu      sync.Mutex
	closed  bool
	scopes  map[string]*scope
	remotes map[string]*remote
	// dialed: the sessions to other relays the remotes keep, by session
	// (remote.go).
	dialed   map[*moqtransport.Session]*remote
	sessions map[*moqtransport.Session]*peer
	accepted int // admitted sessions that are not ours to other relays
	// byTrack finds a relayed track's relayTrack from the Track its
	// subscribers were given, for SubscriptionEnded (see tracks.go).
	byTrack map[*moqtransport.Track]*relayTrack
	// upstream: the newest relayed track asked of each session for each
	// track of each scope, until its upstream request is over, whether
	// the scope finds it by name or not, also found by the session it
	// was asked of (upstreamTracks, tracks.go).
	upstream upstreamTracks
	// statuses: the upstream TRACK_STATUS requests in flight, shared by
	// the downstream ones for the same track and upstream session
	// (trackstatus.go).
	statuses map[statusKey]*statusFlight
}

type scope struct {
	// origins: published namespaces, by namespace key.
	origins map[string]*origin
	// tracks: relayed tracks with their upstream subscription.
	tracks map[string]*relayTrack
	// nsSubs: sessions' SUBSCRIBE_NAMESPACE prefixes.
	nsSubs []*nsSub
}

func (sc *scope) empty() bool {
	return len(sc.origins) == 0 && len(sc.tracks) == 0 && len(sc.nsSubs) == 0
}

type origin struct {
	s   *moqtransport.Session
	ns  wire.Namespace
	reg Registration // with the coordinator, when there is one
	// claim is closed, under Relay.mu, once the coordinator has answered
	// the namespace's registration: after a refusal, once the origin is
	// removed; after a success, in the hold that announces it to the
	// namespace subscribers (publishNamespace). nil without a
	// coordinator. Set at creation, then only closed. Until it is
	// closed, the origin serves no request and is announced to no one.
	claim chan struct{}
	// expiry withdraws it at its request token's exp (grants.go), exp;
	// after a withdrawal it ends the tracks the grant still serves.
	expiry *time.Timer
	exp    time.Time
	// statusSilent: the publisher left a forwarded TRACK_STATUS
	// unanswered for Config.TrackStatusTimeout; its tracks' statuses are
	// asked with SUBSCRIBE (Relay.trackStatus).
	statusSilent atomic.Bool
	// endLookupFn: for an origin on another relay, gives back the use
	// of its session the lookup counted (endLookup, remote.go).
	endLookupFn func()
	// fetchSilence: whether the publisher is asked a FETCH the relay's
	// cache could answer in part, after it left one unanswered for
	// Config.TrackStatusTimeout or refused one NOT_SUPPORTED
	// (Relay.serveFetch).
	fetchSilence fetchSilence
}

// DefaultInFlightBudget is the default of Config.Session.Reader.Budget:
// the bytes all sessions together may hold for objects still arriving
// (each session alone moqtransport.DefaultMaxBytesInFlight). Publishers
// send objects whole and at once, so this is rarely more than a few
// objects per publisher; a stream past it is cancelled (STOP_SENDING
// CANCELLED).
const DefaultInFlightBudget = 512 << 20

// The defaults of Config.UpstreamTimeout, Config.TrackStatusTimeout and
// Config.RemoteIdleTimeout.
const (
	DefaultUpstreamTimeout    = 10 * time.Second
	DefaultTrackStatusTimeout = time.Second
	DefaultRemoteIdleTimeout  = time.Minute
)

// New returns a relay.
func New(cfg Config) *Relay {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UpstreamTimeout == 0 {
		cfg.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if cfg.TrackStatusTimeout == 0 {
		cfg.TrackStatusTimeout = DefaultTrackStatusTimeout
	}
	cfg.TrackStatusTimeout = min(cfg.TrackStatusTimeout, cfg.UpstreamTimeout)
	if cfg.Track.Budget == nil {
		cfg.Track.Budget = moqtransport.NewCacheBudget(moqtransport.DefaultCacheBudget)
	}
	if cfg.Session.Reader.Budget == nil {
		cfg.Session.Reader.Budget = wire.NewByteBudget(DefaultInFlightBudget, nil)
	}
	if cfg.RemoteIdleTimeout == 0 {
		cfg.RemoteIdleTimeout = DefaultRemoteIdleTimeout
	}
	r := &Relay{cfg: cfg, log: cfg.Logger, scopes: map[string]*scope{}, remotes: map[string]*remote{},
		dialed:   map[*moqtransport.Session]*remote{},
		sessions: map[*moqtransport.Session]*peer{}, byTrack: map[*moqtransport.Track]*relayTrack{},
		upstream: newUpstreamTracks(), statuses: map[statusKey]*statusFlight{}}
	r.metrics = newMetrics(r)
	r.hnd = r.handler()
	r.observeDelivery = r.deliveryObserver()
	r.observeHold = r.holdObserver()
	return r
}

// CacheBudget returns the budget shared by every relayed track's cache
// (Config.Track.Budget).
func (r *Relay) CacheBudget() *moqtransport.CacheBudget { return r.cfg.Track.Budget }

// InFlightBudget returns the budget shared by every session's objects in
// progress (Config.Session.Reader.Budget).
func (r *Relay) InFlightBudget() *wire.ByteBudget { return r.cfg.Session.Reader.Budget }

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

// scope returns a scope to add to, creating it. Called with r.mu held.
func (r *Relay) scope(name string) *scope {
	sc := r.scopes[name]
	if sc == nil {
		sc = &scope{origins: map[string]*origin{}, tracks: map[string]*relayTrack{}}
		r.scopes[name] = sc
	}
	return sc
}

// dropIfEmpty deletes a scope nothing is in. Called with r.mu held.
func (r *Relay) dropIfEmpty(name string) {
	if sc := r.scopes[name]; sc != nil && sc.empty() {
		delete(r.scopes, name)
	}
}

// Scopes returns how many scopes hold something.
func (r *Relay) Scopes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.scopes)
}

// Sessions returns how many sessions the relay knows: admitted and not
// ended, accepted and dialed.
func (r *Relay) Sessions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

func nsKey(ns wire.Namespace) string {
	var b strings.Builder
	b.Grow(nsKeyLen(ns))
	appendNSKey(&b, ns)
	return b.String()
}

func trackKey(ns wire.Namespace, name string) string {
	var b strings.Builder
	b.Grow(trackKeyLen(ns, name))
	writeInt(&b, len(ns))
	b.WriteByte('|')
	appendNSKey(&b, ns)
	writeInt(&b, len(name))
	b.WriteByte(':')
	b.WriteString(name)
	return b.String()
}

// The keys are written without fmt: a SUBSCRIBE computes one or two, and
// fmt cost about 15 allocations per SUBSCRIBE where these cost one, of
// the key's own size.

// nsKeyLen is the length of nsKey(ns).
func nsKeyLen(ns wire.Namespace) int {
	n := 0
	for _, f := range ns {
		n += intLen(len(f)) + 1 + len(f)
	}
	return n
}

// trackKeyLen is the length of trackKey(ns, name).
func trackKeyLen(ns wire.Namespace, name string) int {
	return intLen(len(ns)) + 1 + nsKeyLen(ns) + intLen(len(name)) + 1 + len(name)
}

// intLen is the number of decimal digits of n, a length.
func intLen(n int) int {
	d := 1
	for ; n >= 10; n /= 10 {
		d++
	}
	return d
}

// appendNSKey writes each field of ns as "LEN:FIELD".
func appendNSKey(b *strings.Builder, ns wire.Namespace) {
	for _, f := range ns {
		writeInt(b, len(f))
		b.WriteByte(':')
		b.WriteString(f)
	}
}

func writeInt(b *strings.Builder, n int) {
	var d [20]byte // the digits of any int
	b.Write(strconv.AppendInt(d[:0], int64(n), 10))
}

// owner returns the origin in sc that owns ns: the one whose namespace is
// the longest prefix of ns. Called with r.mu held.
func (sc *scope) owner(ns wire.Namespace) *origin {
	var best *origin
	for _, o := range sc.origins {
		if ns.HasPrefix(o.ns) && (best == nil || len(o.ns) > len(best.ns)) {
			best = o
		}
	}
	return best
}

// publishNamespace registers a publisher's namespace in its scope, and
// with the coordinator. A namespace another session (or, through the
// coordinator, another relay) already owns is refused.
func (r *Relay) publishNamespace(ctx context.Context, s *moqtransport.Session, req *wire.PublishNamespace) (err error) {
	defer func() { r.metrics.requestError("publish_namespace", err) }()
	scName := scopeOf(s)
	k := nsKey(req.Namespace)
	o := &origin{s: s, ns: req.Namespace}
	if r.cfg.Coordinator != nil {
		o.claim = make(chan struct{})
	}
	exp, expires := r.takeGrant(s, req.RequestID)
	r.metrics.publishersTotal.Add(1)
	r.mu.Lock()
	if !r.live(s) {
		r.mu.Unlock()
		return moqtransport.NamespaceError(wire.NamespaceInternalError, "the session has ended")
	}
	sc := r.scope(scName)
	if other := sc.owner(req.Namespace); other != nil && other.s != s {
		r.dropIfEmpty(scName)
		r.mu.Unlock()
		r.metrics.announceErrors.WithLabelValues("local_register").Inc()
		return moqtransport.NamespaceError(wire.NamespaceUnauthorized, "namespace "+req.Namespace.String()+" is already published by another session (as "+other.ns.String()+")")
	}
	if sc.origins[k] != nil {
		r.mu.Unlock()
		return moqtransport.NamespaceError(wire.NamespaceInternalError, "namespace "+req.Namespace.String()+" is already published by this session")
	}
	sc.origins[k] = o
	r.mu.Unlock()
	var reg Registration
	if r.cfg.Coordinator != nil {
		// Ownership: the namespace is held for s while the coordinator
		// is asked (no other session may take it), but serves no request
		// until its claim succeeds: a request routed to it waits for the
		// answer (resolveClaimed), and is routed anew after a refusal,
		// which removes the origin before claim is closed. Nor is it
		// announced to a namespace subscriber until then
		// (namespaceSubscribed skips it): a refusal has nothing to
		// withdraw.
		var err error
		reg, err = r.register(ctx, s, scName, req.Namespace)
		if err != nil {
			r.mu.Lock()
			if sc.origins[k] == o {
				delete(sc.origins, k)
				r.dropIfEmpty(scName)
			}
			close(o.claim)
			r.mu.Unlock()
			if errors.Is(err, ErrServedElsewhere) {
				r.metrics.announceErrors.WithLabelValues("owned_elsewhere").Inc()
				return moqtransport.NamespaceError(wire.NamespaceUnauthorized, err.Error())
			}
			r.metrics.announceErrors.WithLabelValues("coordinator_register").Inc()
			return moqtransport.NamespaceError(wire.NamespaceInternalError, "registering with the coordinator: "+err.Error())
		}
	}
	r.mu.Lock()
	gone := sc.origins[k] != o
	if !gone {
		o.reg = reg
		if expires {
			r.expireNamespace(scName, k, o, exp)
		}
		for _, sub := range sc.nsSubs {
			if req.Namespace.HasPrefix(sub.prefix) {
				sub.want(k, req.Namespace)
			}
		}
	}
	if o.claim != nil {
		// Claimed in the hold that announces it: a namespace
		// subscriber is in sc.nsSubs now, and was told of it above, or
		// its namespaceSubscribed comes after this and finds the claim
		// decided; none is missed between the two.
		close(o.claim)
	}
	r.mu.Unlock()
	if gone && o.claim != nil {
		// The session ended while the coordinator was asked: the
		// registration must not outlive it.
		if reg != nil {
			_ = reg.Close()
		}
		return moqtransport.NamespaceError(wire.NamespaceInternalError, "the publisher left")
	}
	r.logFor(s).Info("namespace published", "request", req.RequestID, "scope", scName, "namespace", req.Namespace.String())
	r.metrics.announceOKTotal.Add(1)
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
	log := r.logFor(o.s)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := reg.Close(); err != nil {
			log.Warn("removing a namespace from the coordinator", "namespace", o.ns.String(), "err", err)
		}
	}()
}

// publishNamespaceDone removes a withdrawn namespace. The relayed tracks
// subscribed under it go on serving their subscribers: draft-14's
// PUBLISH_NAMESPACE_DONE only stops new subscriptions ("its intent to
// stop serving new subscriptions"). New subscribers go to whoever
// publishes the namespace next, never to those tracks (subscribeOrigin).
// A namespace whose own token expires is another matter: what it granted
// ends (expireNamespace).
func (r *Relay) publishNamespaceDone(s *moqtransport.Session, ns wire.Namespace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	scName := scopeOf(s)
	sc := r.scopes[scName]
	if sc == nil {
		return
	}
	k := nsKey(ns)
	if o := sc.origins[k]; o != nil && o.s == s {
		delete(sc.origins, k)
		r.expireWithdrawn(scName, o)
		r.logFor(s).Info("namespace withdrawn", "scope", scName, "namespace", ns.String())
		r.unregister(o)
		r.withdraw(sc, k)
		r.dropIfEmpty(scName)
	}
}

// resolveIn finds what serves a track in one scope: a published track
// (being claimed or live), or the origin owning its namespace. Called with
// r.mu held.
func (r *Relay) resolveIn(scopeName string, ns wire.Namespace, k string) (pub *relayTrack, o *origin) {
	sc := r.scopes[scopeName]
	if sc == nil {
		return nil, nil
	}
	if rt := sc.tracks[k]; rt != nil && rt.published && !rt.track.Closed() {
		return rt, nil
	}
	return nil, sc.owner(ns)
}

// resolveClaimed is resolveIn for a request: an origin whose claim with
// the coordinator is still pending is waited for, and the track resolved
// again once the coordinator has answered (an origin it refused is gone
// by then), so that no request is served from a namespace the cluster
// may give to another relay. It gives up when ctx ends. Called with r.mu
// held; it unlocks it while it waits, and returns with it held.
func (r *Relay) resolveClaimed(ctx context.Context, scopeName string, ns wire.Namespace, k string) (*relayTrack, *origin, error) {
	for {
		pub, o := r.resolveIn(scopeName, ns, k)
		if pub != nil || o == nil || o.claimed() {
			return pub, o, nil
		}
		r.mu.Unlock()
		r.log.Debug("a request waits for its namespace's claim with the coordinator", "scope", scopeName, "namespace", o.ns.String())
		select {
		case <-o.claim:
		case <-ctx.Done():
			r.mu.Lock()
			return nil, nil, ctx.Err()
		}
		r.mu.Lock()
	}
}

// claimed reports whether the coordinator has answered o's registration
// (o is still published, so it accepted it), or there is none.
func (o *origin) claimed() bool {
	if o.claim == nil {
		return true
	}
	select {
	case <-o.claim:
		return true
	default:
		return false
	}
}

// lookupScopes is where a track requested in scope may be: the scope,
// then the unscoped scope.
func lookupScopes(scope string) []string {
	if scope == "" {
		return []string{""}
	}
	return []string{scope, ""}
}

// serveSubscribe serves a track from its shared upstream subscription,
// subscribing upstream for the first subscriber.
func (r *Relay) serveSubscribe(ctx context.Context, s *moqtransport.Session, req *wire.Subscribe) (*moqtransport.Track, error) {
	start := time.Now()
	r.metrics.subscribersTotal.Add(1)
	source := "local"
	exp, expires := r.takeGrant(s, req.RequestID)
	t, err := r.subscribe(ctx, s, req, &source)
	if err == nil {
		if expires {
			r.expireSubscription(s, req.RequestID, exp)
		}
		r.metrics.activeSubscriptions.Add(1)
	} else {
		switch source {
		case "local", "remote":
			source = "error"
		case "not_found":
			r.metrics.subscribeNotFoundTotal.Add(1)
		case "route_error":
			r.metrics.subscribeRouteErrors.Add(1)
		}
	}
	r.metrics.subscribeLatency.WithLabelValues(source).Observe(time.Since(start).Seconds())
	r.metrics.requestError("subscribe", err)
	return t, err
}

// trackStatus answers TRACK_STATUS (§9.20) as a SUBSCRIBE would be
// routed: from the relayed track when the relay has it live (its cache
// knows the largest location), otherwise by forwarding TRACK_STATUS to
// the publisher that a SUBSCRIBE would reach (here or, through the
// coordinator, on another relay) and passing its answer on. It counts no
// subscriber. A publisher that does not answer within TrackStatusTimeout
// is asked with SUBSCRIBE instead (statusBySubscribe), and so from then
// on; another relay of the cluster answers every TRACK_STATUS (it falls
// back in the same way), so it is given that fallback's whole bound,
// TrackStatusTimeout + UpstreamTimeout, before TIMEOUT. Requests asked
// upstream at once share one upstream request (forwardTrackStatus).
func (r *Relay) trackStatus(ctx context.Context, s *moqtransport.Session, req *wire.TrackStatus) (_ *moqtransport.TrackStatusOK, err error) {
	defer func() { r.metrics.requestError("track_status", err) }()
	k := trackKey(req.Namespace, req.Name)
	// Routed as a SUBSCRIBE is (§9.20: "as if it were a SUBSCRIBE"): a
	// track relayed from a previous owner of the namespace, which a
	// SUBSCRIBE would no longer share, does not answer for the one a
	// SUBSCRIBE would reach.
	rte, err := r.route(ctx, s, req.Namespace, k, fromRemoteRelay)
	defer rte.o.endLookup() // once forwardTrackStatus has counted its use
	if err != nil {
		r.logFor(s).Warn("routing through the coordinator failed", "request", req.RequestID, "namespace", req.Namespace.String(), "err", err)
		return nil, moqtransport.SubscribeError(wire.SubscribeInternalError, "routing to another relay failed")
	}
	if rte.rt == nil && rte.o == nil {
		return nil, moqtransport.SubscribeError(wire.SubscribeTrackDoesNotExist, "no publisher for namespace "+req.Namespace.String())
	}
	live := rte.rt
	if live == nil {
		// The origin's track, when the relay relays it live from the
		// origin's session (one from a previous owner of the namespace
		// does not answer for this one: see subscribeOrigin).
		live = r.liveFrom(rte.o.s, rte.scope, k)
	}
	r.mu.Unlock()
	if live == nil {
		return r.forwardTrackStatus(ctx, rte.scope, k, rte.o, rte.remote, req)
	}
	if err := live.wait(ctx); err != nil { // a pushed track's claim, decided
		return nil, err
	}
	return moqtransport.TrackStatusOf(live.track), nil
}

// subscribe resolves a SUBSCRIBE; source is set to where the track comes
// from, or why it was not found (moq_relay_subscribe_latency_seconds).
func (r *Relay) subscribe(ctx context.Context, s *moqtransport.Session, req *wire.Subscribe, source *string) (*moqtransport.Track, error) {
	k := trackKey(req.Namespace, req.Name)
	// A track already relayed from another relay, or being subscribed
	// there, needs no lookup; a local one is shared by subscribeOrigin.
	rte, err := r.route(ctx, s, req.Namespace, k, fromRemoteRelay)
	defer rte.o.endLookup() // once subscribeOrigin has counted its use
	switch {
	case err != nil:
		*source = "route_error"
		r.logFor(s).Warn("routing through the coordinator failed", "request", req.RequestID, "namespace", req.Namespace.String(), "err", err)
		return nil, moqtransport.SubscribeError(wire.SubscribeInternalError, "routing to another relay failed")
	case rte.rt != nil:
		rte.rt.refs++
		r.mu.Unlock()
		if rte.rt.remote {
			*source = "remote"
		}
		return r.awaitTrack(ctx, rte.rt)
	case rte.o != nil:
		if rte.remote {
			*source = "remote"
		}
		return r.subscribeOrigin(ctx, rte.scope, rte.o, rte.remote, req)
	}
	*source = "not_found"
	return nil, moqtransport.SubscribeError(wire.SubscribeTrackDoesNotExist, "no publisher for namespace "+req.Namespace.String())
}

// fromRemoteRelay is the relayed track that SUBSCRIBE and TRACK_STATUS
// take as it is when their scope has no publisher (Relay.route): one
// subscribed from another relay, being asked or live. A track subscribed
// from a local publisher that has withdrawn its namespace serves only the
// subscribers it has (subscribeOrigin): the request is routed on, to the
// unscoped scope or another relay. Called with r.mu held.
func fromRemoteRelay(rt *relayTrack) bool {
	return rt.remote && (rt.track == nil || !rt.track.Closed())
}

// trackRoute is what serves a requested track (Relay.route).
type trackRoute struct {
	scope string
	// rt: a track relayed here, pushed (PUBLISH) or one route's caller
	// takes as it is.
	rt *relayTrack
	// o: otherwise, the publisher to ask; remote: on another relay.
	o      *origin
	remote bool
}

// route finds what serves track k of namespace ns requested by s, for
// SUBSCRIBE and TRACK_STATUS alike. Scope by scope, the session's own
// first: its publishers here, then its publishers on other relays (the
// coordinator), and only then the unscoped scope's, so that an unscoped
// publisher, here or elsewhere, never shadows a scoped one. Within a
// scope: a pushed track; else the local origin of the longest prefix,
// unless another relay serves a longer one; else a relayed track the
// caller takes as it is (relayed); else the coordinator's relay. A relay
// peer's requests are resolved with local publishers only.
//
// When it finds something it returns with r.mu held, for the caller to
// take a reference or share the track (subscribeOrigin); an empty route
// is no publisher; an error is the coordinator's failure.
func (r *Relay) route(ctx context.Context, s *moqtransport.Session, ns wire.Namespace, k string, relayed func(*relayTrack) bool) (trackRoute, error) {
	viaCoordinator := r.cfg.Coordinator != nil && !r.isRelayPeer(s)
	for _, scName := range lookupScopes(scopeOf(s)) {
		r.mu.Lock()
		pub, o, err := r.resolveClaimed(ctx, scName, ns, k)
		if err != nil {
			r.mu.Unlock()
			return trackRoute{}, err
		}
		if pub != nil {
			return trackRoute{scope: scName, rt: pub}, nil
		}
		if o != nil {
			if viaCoordinator && r.mayBeLongerElsewhere(scName, o, ns, k) {
				r.mu.Unlock()
				remote := r.longerElsewhere(ctx, scName, ns)
				r.mu.Lock()
				if remote != nil {
					return trackRoute{scope: scName, o: remote, remote: true}, nil
				}
				if pub, o, err = r.resolveClaimed(ctx, scName, ns, k); err != nil {
					r.mu.Unlock()
					return trackRoute{}, err
				}
				if pub != nil {
					return trackRoute{scope: scName, rt: pub}, nil
				}
			}
			if o != nil {
				return trackRoute{scope: scName, o: o}, nil
			}
		}
		if sc := r.scopes[scName]; sc != nil {
			if rt := sc.tracks[k]; rt != nil && relayed(rt) {
				return trackRoute{scope: scName, rt: rt}, nil
			}
		}
		r.mu.Unlock()
		if !viaCoordinator {
			continue
		}
		remote, err := r.remoteOrigin(ctx, scName, ns)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return trackRoute{}, err
		}
		r.mu.Lock()
		return trackRoute{scope: scName, o: remote, remote: true}, nil
	}
	return trackRoute{}, nil
}

// mayBeLongerElsewhere reports whether another relay may serve a longer
// prefix of ns than the local origin o: o's namespace is shorter than ns
// and no relayed track subscribed from o's publisher exists for it yet
// (an existing one is shared, see subscribeOrigin). Another relay can hold a namespace under o's
// only if it claimed it before o was published here (the coordinator
// refuses it after), and it is then that relay's, as the longest prefix
// is locally. Called with r.mu held.
func (r *Relay) mayBeLongerElsewhere(scName string, o *origin, ns wire.Namespace, k string) bool {
	if len(o.ns) >= len(ns) {
		return false
	}
	if rt := r.upstream.get(upstreamKey{o.s, scName, k}); rt != nil && rt.serving() {
		return false
	}
	return true
}

// longerElsewhere returns an origin on the relay that serves the longest
// registered prefix of ns in scope, when that is another relay; nil when
// it is this one (its local origin's registration) or the lookup failed,
// which leaves the request to the local origin.
func (r *Relay) longerElsewhere(ctx context.Context, scName string, ns wire.Namespace) *origin {
	remote, err := r.remoteOrigin(ctx, scName, ns)
	if err != nil {
		if !errors.Is(err, ErrNotFound) {
			r.log.Warn("looking for a longer namespace on other relays failed; serving the local one", "namespace", ns.String(), "err", err)
		}
		return nil
	}
	return remote
}

// Wait waits for the relay's goroutines.
func (r *Relay) Wait() { r.wg.Wait() }

// subscribeNamespace accepts a namespace subscription in the session's
// scope and starts the goroutine that sends it what matches.
func (r *Relay) subscribeNamespace(_ context.Context, s *moqtransport.Session, req *wire.SubscribeNamespace) error {
	exp, expires := r.takeGrant(s, req.RequestID)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.live(s) || r.closed {
		return &moqtransport.RequestError{Message: wire.TypeSubscribeNamespaceError, Code: uint64(wire.SubscribeNamespaceInternalError), Reason: "the session has ended"}
	}
	sc := r.scope(scopeOf(s))
	n := newNSSub(s, req.Prefix)
	sc.nsSubs = append(sc.nsSubs, n)
	if expires {
		n.publications = map[*moqtransport.Track]*moqtransport.Publication{}
		r.expireNamespaceSubscription(scopeOf(s), n, exp)
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.sendNamespaces(n)
	}()
	return nil
}

// namespaceSubscribed queues what the scope has under the prefix now:
// its namespaces, then its pushed tracks; later ones follow as they come.
// The subscriber's own namespaces and tracks are echoed back too, as
// draft-14 says ("Subscribing to Namespaces").
//
// Ownership: a namespace or pushed track whose claim with the coordinator
// is still pending is not announced: the coordinator may give it to
// another relay. Its claim's success announces it to every namespace
// subscriber there is then, this one included (publishNamespace,
// publish); a refusal removes it, never having been announced.
func (r *Relay) namespaceSubscribed(s *moqtransport.Session, prefix wire.Namespace) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sc := r.scopes[scopeOf(s)]
	if sc == nil {
		return
	}
	for _, sub := range sc.nsSubs {
		if sub.s != s || !sub.prefix.Equal(prefix) {
			continue
		}
		for k, o := range sc.origins {
			if o.ns.HasPrefix(prefix) && o.claimed() {
				sub.want(k, o.ns)
			}
		}
		for _, rt := range sc.tracks {
			if rt.published && !rt.track.Closed() && rt.ns.HasPrefix(prefix) && rt.claimed() {
				sub.push(rt.track)
			}
		}
	}
}

// unsubscribeNamespace forgets a namespace subscription: nothing more is
// announced to it, and what was announced is withdrawn
// (PUBLISH_NAMESPACE_DONE). Draft-14 says the subscriber is "no longer
// interested" in either, so the DONEs are not owed; they are sent so that
// neither end keeps the namespaces' requests open: kept, each held one of
// the subscriber's request IDs for the rest of the session, a later
// withdrawal reached it no more, and a new SUBSCRIBE_NAMESPACE of the
// prefix announced them a second time.
func (r *Relay) unsubscribeNamespace(s *moqtransport.Session, prefix wire.Namespace) {
	r.mu.Lock()
	name := scopeOf(s)
	sc := r.scopes[name]
	if sc == nil {
		r.mu.Unlock()
		return
	}
	var announced []*moqtransport.NamespacePublication
	sc.nsSubs = deleteSubs(sc.nsSubs, func(n *nsSub) bool {
		if n.s == s && n.prefix.Equal(prefix) {
			announced = append(announced, n.takeAnnounced()...)
			return true
		}
		return false
	})
	r.dropIfEmpty(name)
	r.mu.Unlock()
	for _, pub := range announced {
		_ = pub.Close()
	}
}

// deleteSubs removes and stops the namespace subscriptions del picks.
func deleteSubs(subs []*nsSub, del func(*nsSub) bool) []*nsSub {
	return slices.DeleteFunc(subs, func(n *nsSub) bool {
		if del(n) {
			n.stop()
			return true
		}
		return false
	})
}

// withdraw takes a namespace back from every namespace subscriber of the
// scope. Called with r.mu held.
func (r *Relay) withdraw(sc *scope, k string) {
	for _, sub := range sc.nsSubs {
		sub.unwant(k)
	}
}

// publish accepts a track a publisher pushes (PUBLISH), unless its
// namespace or the track belongs to another session of the scope, or,
// through the coordinator, to another relay (see Ownership in the package
// doc): subscribers of the scope get it from the relay's cache, and
// namespace subscribers whose prefix matches get a PUBLISH of their own.
// With a coordinator, the track's namespace is registered for as long as
// the track is published, as PUBLISH_NAMESPACE registers its namespace.
func (r *Relay) publish(ctx context.Context, s *moqtransport.Session, req *wire.Publish, sub *moqtransport.Subscription) (_ moqtransport.SubscribeOptions, err error) {
	defer func() { r.metrics.requestError("publish", err) }()
	name := req.Namespace.String() + "/" + req.Name
	scName := scopeOf(s)
	k := trackKey(req.Namespace, req.Name)
	exp, expires := r.takeGrant(s, req.RequestID)
	r.mu.Lock()
	if !r.live(s) {
		r.mu.Unlock()
		return moqtransport.SubscribeOptions{}, moqtransport.PublishError(wire.PublishInternalError, "the session has ended")
	}
	if r.closed {
		r.mu.Unlock()
		return moqtransport.SubscribeOptions{}, moqtransport.PublishError(wire.PublishInternalError, "the relay is shutting down")
	}
	if sc := r.scopes[scName]; sc != nil {
		if o := sc.owner(req.Namespace); o != nil && o.s != s {
			r.mu.Unlock()
			r.metrics.publishErrors.WithLabelValues("namespace_owned").Inc()
			return moqtransport.SubscribeOptions{}, moqtransport.PublishError(wire.PublishUnauthorized,
				"namespace "+o.ns.String()+" is published by another session; "+name+" may not be pushed into it")
		}
		if rt := sc.tracks[k]; rt != nil && (rt.track == nil || !rt.track.Closed()) {
			r.mu.Unlock()
			r.metrics.publishErrors.WithLabelValues("track_owned").Inc()
			return moqtransport.SubscribeOptions{}, moqtransport.PublishError(wire.PublishUnauthorized, "track "+name+" is already published here")
		}
	}
	// The track is held for this publisher while the coordinator is
	// asked: a subscriber that finds it waits for the answer (ready), and
	// nothing else may take it.
	sc := r.scope(scName)
	t := sub.Track()
	rt := &relayTrack{key: k, scope: scName, ns: req.Namespace, track: t, published: true, owner: s, ready: make(chan struct{})}
	sc.tracks[k] = rt
	r.byTrack[t] = rt
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		<-sub.Done()
		r.mu.Lock()
		rt.ended = true
		if rt.expiry != nil {
			rt.expiry.Stop()
		}
		reg := rt.reg
		rt.reg = nil
		if sc.tracks[k] == rt {
			delete(sc.tracks, k)
		}
		r.forgetLocked(rt)
		for _, n := range sc.nsSubs {
			n.forget(t)
		}
		if r.scopes[scName] == sc {
			r.dropIfEmpty(scName)
		}
		r.mu.Unlock()
		if reg != nil {
			if err := reg.Close(); err != nil {
				r.logFor(s).Warn("removing a published track's namespace from the coordinator", "request", req.RequestID, "namespace", req.Namespace.String(), "err", err)
			}
		}
	}()
	r.mu.Unlock()
	var reg Registration
	if r.cfg.Coordinator != nil {
		var err error
		reg, err = r.register(ctx, s, scName, req.Namespace)
		if err != nil {
			refusal := moqtransport.PublishError(wire.PublishInternalError, "registering with the coordinator: "+err.Error())
			reason := "coordinator_register"
			if errors.Is(err, ErrServedElsewhere) {
				refusal = moqtransport.PublishError(wire.PublishUnauthorized, err.Error()+"; "+name+" may not be pushed into it")
				reason = "namespace_owned_elsewhere"
			}
			r.metrics.publishErrors.WithLabelValues(reason).Inc()
			r.dropClaim(sc, rt)
			return moqtransport.SubscribeOptions{}, refusal
		}
	}
	r.mu.Lock()
	if rt.ended {
		// The publication ended meanwhile: a registration must not
		// outlive it.
		r.mu.Unlock()
		if reg != nil {
			_ = reg.Close()
		}
		r.dropClaim(sc, rt)
		return moqtransport.SubscribeOptions{}, moqtransport.PublishError(wire.PublishInternalError, "the publisher left")
	}
	defer r.mu.Unlock()
	rt.reg = reg
	close(rt.ready)
	if expires {
		r.expirePublication(rt, sub, exp)
	}
	r.logFor(s).Info("track published", "request", req.RequestID, "scope", scName, "track", name)
	for _, n := range sc.nsSubs {
		// The publisher too, if it subscribed to the namespace: the
		// answer to SUBSCRIBE_NAMESPACE "includes echoing back PUBLISH
		// or PUBLISH_NAMESPACE messages to the endpoint that sent them"
		// (draft-14, "Subscribing to Namespaces"), which may accept its own
		// track or refuse it.
		if req.Namespace.HasPrefix(n.prefix) {
			n.push(t)
		}
	}
	return moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority}, nil
}
