package moqtransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Config configures a session. The zero value is usable: it grants the peer
// 100 concurrent requests, waits 10 seconds for setup, logs nothing, and
// refuses every request from the peer with the right error code.
type Config struct {
	// Logger receives the session's logs; nil is silent. Give each
	// session a logger of its own with an id (Logger.With("session", id)),
	// as the relay does, to tell sessions apart: lines about one request
	// carry its ID as "request".
	Logger *slog.Logger
	// SetupTimeout bounds CLIENT_SETUP / SERVER_SETUP; default 10s.
	SetupTimeout time.Duration
	// MaxRequests is how many requests the peer may have open at once: we
	// grant request IDs in MAX_REQUEST_ID to keep this window. Default 100.
	MaxRequests uint64
	// Implementation is sent as MOQT_IMPLEMENTATION; default "moq-go/<version>".
	Implementation string
	// Path and Authority are the PATH and AUTHORITY setup parameters a
	// client sends over raw QUIC (draft-14 §3.1); they are not sent over
	// WebTransport.
	Path, Authority string
	// Handler answers the peer's requests, one field per request kind;
	// the zero value refuses them all (see Handler for each code).
	Handler Handler
	// MaxPendingStreams bounds data streams held while their track alias is
	// not yet known (data that arrives before SUBSCRIBE_OK); default 64.
	// When that many wait, a new one takes the place of the one that has
	// waited longest, which is stopped. Only a stream whose alias can
	// still be named waits: one for the alias of a subscription that
	// ended, or that arrives while no SUBSCRIBE of ours waits for its
	// answer (and Handler.Publish is nil), is stopped at once. A negative
	// value: no stream waits for its alias.
	MaxPendingStreams int
	// PendingStreamTimeout is how long such a stream waits for its alias;
	// default 5s. Past it, the stream is stopped. It is also the grace a
	// subscription gives, after PUBLISH_DONE, to streams that have not
	// come (at least the subscription's DELIVERY TIMEOUT; see
	// Subscription.Done).
	PendingStreamTimeout time.Duration
	// SetupParams are extra parameters for CLIENT_SETUP or SERVER_SETUP,
	// such as AUTHORIZATION TOKEN (AuthToken.Param).
	SetupParams Parameters
	// Authorize, when set, decides every request (and, on the server
	// side, CLIENT_SETUP) from its authorization tokens; see Authorizer.
	Authorize Authorizer
	// MaxAuthTokenCacheSize is the MAX_AUTH_TOKEN_CACHE_SIZE we advertise:
	// how many bytes of token aliases the peer may register with us. The
	// default, 0, allows no aliases.
	MaxAuthTokenCacheSize uint64
	// Tracer, when set, receives every MoQT event of the session (see
	// package mlog). A panic in it is logged at Error and ends the
	// session's tracing, not the session.
	Tracer Tracer
	// ObserveDelivery, when set, is called for every object the session
	// starts writing to a subscription it serves (a subgroup stream or a
	// datagram), with how long the object had waited since its track
	// received it (Object.Received): a relay's delivery latency, per
	// object and subscriber. It is called on the delivery goroutines and
	// must not block; nil costs nothing. A panic in it is logged at Error
	// and the session calls it no more.
	ObserveDelivery func(wait time.Duration)
	// Track configures the tracks that hold received objects. When its
	// Budget is nil the session gives them one of their own, of
	// DefaultCacheBudget bytes, so that a peer pushing many tracks (PUBLISH,
	// or a server answering many SUBSCRIBEs) cannot make the session cache
	// many times TrackConfig.MaxBytes. A relay shares one across sessions.
	Track TrackConfig
	// Reader bounds what one received object may allocate. Its Budget, when
	// set, becomes the parent of the session's in-flight budget (for
	// example a process-wide one shared by every session).
	Reader wire.StreamReaderConfig
	// RequestIDTimeout bounds how long a request of ours waits for the
	// peer to grant it a request ID (MAX_REQUEST_ID) before it fails with
	// ErrRequestsBlocked; 0 waits as long as the request's context.
	RequestIDTimeout time.Duration
	// StrictPeer closes the session with PROTOCOL_VIOLATION on the peer
	// deviations the session otherwise tolerates with a warning (see
	// "Peer deviations" in the package doc).
	StrictPeer bool
	// ControlWriteTimeout bounds every write on the control stream: a
	// peer that does not take our control messages within it (it stopped
	// reading its control stream) is closed with CONTROL_MESSAGE_TIMEOUT.
	// Default 5s.
	ControlWriteTimeout time.Duration
	// MaxControlBacklog bounds the bytes of control messages queued for
	// the peer and not yet written; a session past it is closed with
	// CONTROL_MESSAGE_TIMEOUT, as the peer is not reading. Default 1 MiB.
	MaxControlBacklog int
	// DefaultDeliveryTimeout is the delivery timeout of the subscriptions
	// we serve when neither the subscriber nor the track's publisher gives
	// one (§9.2.1.2 lets a publisher stop forwarding at its discretion): a
	// subscriber on a slow link then never falls further behind live than
	// this. 0, the default, means none. A relay should set it.
	DefaultDeliveryTimeout time.Duration
	// MaxBacklogBytes bounds the objects queued for one subscription we
	// serve and not yet written to the transport; past it, the streams of
	// the oldest groups are abandoned. Default DefaultMaxBacklogBytes.
	MaxBacklogBytes int64
	// MaxWriteAhead bounds the bytes the writes of the subgroup streams we
	// serve hold inside the transport at once, session-wide: each write
	// copies its objects (up to 16 KiB of them) into a buffer that it
	// holds until the transport has packed all but its last packet, so a
	// peer that does not keep up would otherwise hold such a copy for
	// every stream with work. Past it, a stream's writer waits, holding
	// no copy, and the most urgent waiting stream writes next (see
	// writeahead.go). A write is admitted whenever none is in progress,
	// whatever its size, and whenever none in progress is as urgent as
	// its stream (it never waits for less urgent data: at most one write
	// per urgency goes past the bound so). Default DefaultMaxWriteAhead;
	// negative: no bound.
	MaxWriteAhead int64
	// WriteCoalesce lets the writer of a subgroup stream we serve hold a
	// small object (under 8 KiB) for up to this long after its track
	// received it, so that the objects that follow meanwhile go to the
	// transport in the same write: fewer send calls, wakeups and packets
	// per byte, so less CPU per byte (the transport's cost per packet and
	// per send call dominates at small objects), for up to WriteCoalesce more
	// latency. Only objects of a track with more than one reader (fan-out)
	// whose objects come closer together than this are held, never one
	// whose delivery deadline is less than twice this away nor one of a
	// burst (objects under 100 µs apart go in one write anyway); the hold
	// ends when an object arrives and the next one would come too late,
	// when the write would fill its packets (the last one at most an eighth
	// short), when a burst comes, once 8 KiB are queued, or when the
	// subgroup ends.
	// A track whose objects come further apart than two thirds of this
	// (audio, video with an object per frame) is never held. 0, the
	// default, writes every object at once.
	WriteCoalesce time.Duration
	// ObserveHold, when set, is called after each write whose first object
	// the writer held for WriteCoalesce, with how long it held it (the
	// latency the hold added to that object; the ones that joined it waited
	// less) and how many objects the write carried, the held one included.
	// It is called on the delivery goroutines and must not block. A panic
	// in it is logged at Error and the session calls it no more.
	ObserveHold func(held time.Duration, objects int)
	// MaxBytesInFlight bounds the memory the peer's data streams hold in
	// this session before their objects reach a track: each open data
	// stream's reader buffer (wire.ReaderBufferSize; streams still waiting
	// for their header or their track alias included) and the buffers of
	// partly received objects, which grow as bytes arrive (see
	// wire.EagerObjectBytes). A stream that would exceed it is cancelled
	// with STOP_SENDING CANCELLED (draft-14 §"Resource Exhaustion": cancel
	// a stream after reaching a resource limit) and the session goes on.
	// Default DefaultMaxBytesInFlight; it must leave room for the largest
	// object the session accepts (Reader.MaxObjectPayload). InFlight
	// reports the figures.
	MaxBytesInFlight int64
}

// Defaults of Config.
const (
	DefaultControlWriteTimeout = 5 * time.Second
	DefaultMaxControlBacklog   = 1 << 20
)

// DefaultMaxBytesInFlight is the default Config.MaxBytesInFlight: room for
// one object of the largest size the reader accepts by default.
const DefaultMaxBytesInFlight = wire.DefaultMaxObjectPayload + 1<<20

// discardLogger is the logger of a Config without one: shared, as are the
// loggers With makes from it (the session's role and transport are only
// worth their allocations where lines are written).
var discardLogger = slog.New(slog.DiscardHandler)

// defaultImplementation is the default Config.Implementation.
var defaultImplementation = "moq-go/" + version.Version

func (c *Config) withDefaults() Config {
	out := Config{}
	if c != nil {
		out = *c
	}
	if out.Logger == nil {
		out.Logger = discardLogger
	}
	if out.SetupTimeout == 0 {
		out.SetupTimeout = 10 * time.Second
	}
	if out.MaxRequests == 0 {
		out.MaxRequests = 100
	}
	if out.Implementation == "" {
		out.Implementation = defaultImplementation
	}
	if out.MaxPendingStreams == 0 {
		out.MaxPendingStreams = 64
	}
	if out.PendingStreamTimeout == 0 {
		out.PendingStreamTimeout = 5 * time.Second
	}
	if out.ControlWriteTimeout == 0 {
		out.ControlWriteTimeout = DefaultControlWriteTimeout
	}
	if out.MaxControlBacklog == 0 {
		out.MaxControlBacklog = DefaultMaxControlBacklog
	}
	if out.MaxBacklogBytes <= 0 {
		out.MaxBacklogBytes = DefaultMaxBacklogBytes
	}
	if out.MaxWriteAhead == 0 {
		out.MaxWriteAhead = DefaultMaxWriteAhead
	}
	if out.MaxBytesInFlight <= 0 {
		out.MaxBytesInFlight = DefaultMaxBytesInFlight
	}
	if out.Track.Budget == nil {
		out.Track.Budget = NewCacheBudget(DefaultCacheBudget)
	}
	// Each session has a budget of its own, under the configured one.
	out.Reader.Budget = wire.NewByteBudget(out.MaxBytesInFlight, out.Reader.Budget)
	return out
}

// Session is one MoQT session. It is safe for concurrent use.
type Session struct {
	conn   Conn
	rtt    RTTConn // conn, if it reports its RTT
	cfg    Config
	log    *slog.Logger
	client bool

	ctx    context.Context
	cancel context.CancelFunc
	units  units

	control   Stream
	reader    *wire.ControlReader
	out       controlQueue
	reqMu     sync.Mutex // orders request IDs on the wire; never held across a wait
	ids       *requestIDs
	tokens    tokenCache
	version   wire.Version
	peerSetup wire.Parameters
	path      string
	authority string
	// implementation05 is a 0x05 setup parameter where AUTHORITY cannot
	// be (from a server, or over WebTransport): the draft-14 text's
	// MOQT_IMPLEMENTATION, which it numbered as AUTHORITY.
	implementation05 string

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}

	mu sync.Mutex
	// Requests we sent, waiting for a response, by request ID.
	pending map[uint64]*pendingRequest
	// Requests whose caller gave up before the answer came.
	abandoned map[uint64]struct{}
	// Subscriptions we made (subscriber side), by request ID and alias.
	subs       map[uint64]*Subscription
	subsByAlas map[uint64]*Subscription
	// aliasNews is closed and replaced when what a waiting data stream
	// can hope for changes: an alias is learned or ends, or a SUBSCRIBE
	// of ours is answered or given up (see subscriptionFor).
	aliasNews chan struct{}
	// endedAliases: the aliases of the latest subscriptions that ended,
	// whose late data streams are stopped at once (see aliasEndedLocked).
	endedAliases aliasRing
	// subscribesOut: SUBSCRIBEs of ours waiting for their answer, whose
	// SUBSCRIBE_OK may still name a waiting stream's alias.
	subscribesOut int
	// datagrams: the datagram reader runs (from the first alias learned).
	datagrams bool
	// waiting: the data streams waiting for their alias, longest waiting
	// first; each is told by closing its channel to give up its place.
	waiting     []chan struct{}
	headerWaits int // data streams waiting for their header
	// uniRoom follows the peer's unidirectional stream credit (for
	// FetchOptions.StreamTimeout).
	uniRoom uniCredit
	// Subscriptions we serve (publisher side), by request ID.
	served map[uint64]*servedSubscription
	// sched ranks the streams of the subscriptions we serve.
	sched prioSched
	// ahead bounds what their writes hold inside the transport.
	ahead writeAhead
	// Fetches we sent, and the ones we serve, by request ID.
	fetches       map[uint64]*Fetch
	servedFetches map[uint64]*servedFetch
	// Namespace subscriptions we made, and the peer's prefixes.
	ourNSSubs map[string]*NamespaceSubscription
	// nsNoted: the peer's namespaces (accepted) that one of ourNSSubs
	// reported, so that their withdrawal is reported too.
	nsNoted    map[string]*NamespaceSubscription
	peerNSSubs map[string]*peerNSSub
	// Namespaces we published, and the ones the peer published to us.
	ourNamespaces  map[string]*NamespacePublication
	peerNamespaces map[string]wire.Namespace
	// nsPending: the peer's PUBLISH_NAMESPACEs whose handler has not
	// answered yet, by namespace key: a PUBLISH_NAMESPACE_DONE or a
	// CancelNamespace meanwhile is noted there and carried out once the
	// handler accepts (handlePublishNamespace).
	nsPending map[string]*nsPending
	// GOAWAY state.
	goAwayReceived bool
	goAwayURI      string
	goAway         chan struct{}
	goAwaySent     bool
	// Peer deviations already warned about.
	deviations map[string]bool
	// noGrant: the peer's SETUP had no MAX_REQUEST_ID and no
	// MAX_REQUEST_ID message has come since.
	noGrant atomic.Bool
}

// Connect runs the client side of setup on conn: it opens the control
// stream, sends CLIENT_SETUP offering draft-14, and waits for SERVER_SETUP.
// On failure conn is closed with the draft's error code.
func Connect(ctx context.Context, conn Conn, cfg *Config) (*Session, error) {
	s := newSession(conn, cfg, true)
	s.units.add() // setup runs the Authorizer: a unit, as a callback's caller must be
	err := s.setupClient(ctx)
	s.units.done()
	if err != nil {
		s.fail(err)
		s.units.wait()
		return nil, s.Err()
	}
	s.start()
	return s, nil
}

// Accept runs the server side of setup on conn: it accepts the control
// stream, reads CLIENT_SETUP and answers SERVER_SETUP. path is the
// WebTransport URL path; over raw QUIC the PATH setup parameter gives it.
func Accept(ctx context.Context, conn Conn, path string, cfg *Config) (*Session, error) {
	s := newSession(conn, cfg, false)
	s.path = path
	s.units.add()
	err := s.setupServer(ctx)
	s.units.done()
	if err != nil {
		s.fail(err)
		s.units.wait()
		return nil, s.Err()
	}
	s.start()
	return s, nil
}

func newSession(conn Conn, cfg *Config, client bool) *Session {
	c := cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	role := "server"
	if client {
		role = "client"
	}
	s := &Session{
		conn: conn, cfg: c, client: client,
		log:       c.Logger,
		ctx:       ctx,
		cancel:    cancel,
		ids:       newRequestIDs(client, c.MaxRequests),
		tokens:    tokenCache{max: c.MaxAuthTokenCacheSize},
		closed:    make(chan struct{}),
		aliasNews: make(chan struct{}),
		goAway:    make(chan struct{}),
		// The request tables (pending, served, subs, ...) are made by
		// their first entry (setIn).
	}
	if c.Logger != discardLogger {
		s.log = c.Logger.With("role", role, "transport", conn.Protocol().String())
	}
	if r, ok := conn.(RTTConn); ok {
		s.rtt = r
	}
	s.ahead.limit = max(c.MaxWriteAhead, 0)
	s.out.init()
	// The observers are application code called on the delivery and
	// reading goroutines, where nothing else recovers a panic.
	s.guardObservers()
	return s
}

// setIn sets (*m)[k] = v, making the map first if it is nil. A session's
// tables start nil: a viewer uses two or three of the thirteen, and each
// empty map made up front was an allocation of every session set-up.
// Reads, deletes, len, range and clear work on a nil map as on an empty one.
func setIn[K comparable, V any](m *map[K]V, k K, v V) {
	if *m == nil {
		*m = make(map[K]V)
	}
	(*m)[k] = v
}

// Version returns the negotiated MoQT version.
func (s *Session) Version() wire.Version { return s.version }

// Path returns the session's path: the WebTransport URL path, or the PATH
// setup parameter over raw QUIC ("" when none was sent).
func (s *Session) Path() string { return s.path }

// Authority returns the AUTHORITY setup parameter a raw QUIC client sent.
func (s *Session) Authority() string { return s.authority }

// PeerSetupParams returns the parameters of the peer's CLIENT_SETUP or
// SERVER_SETUP, unknown ones included.
func (s *Session) PeerSetupParams() Parameters { return s.peerSetup }

// PeerImplementation returns the peer's MOQT_IMPLEMENTATION, if it sent one
// (0x07; or 0x05 where AUTHORITY cannot be, see implementation05).
func (s *Session) PeerImplementation() string {
	if b, ok := s.peerSetup.Bytes(wire.SetupParamMOQTImplementation); ok {
		return string(b)
	}
	return s.implementation05
}

// InFlight reports the session's in-flight budget (Config.MaxBytesInFlight):
// the bytes its data streams hold now for objects not yet complete, the
// peak, and how many reservations it refused (each cancelled a stream).
func (s *Session) InFlight() wire.BudgetStats { return s.cfg.Reader.Budget.Stats() }

// Context is cancelled when the session ends.
func (s *Session) Context() context.Context { return s.ctx }

// Done is closed when the session has ended.
func (s *Session) Done() <-chan struct{} { return s.closed }

// Err returns why the session ended, or nil while it runs. A session that
// the peer closed returns a *ConnError.
func (s *Session) Err() error {
	select {
	case <-s.closed:
		return s.closeErr
	default:
		return nil
	}
}

// Close ends the session with NO_ERROR and waits for its goroutines. The
// control messages already queued get a bounded chance to reach the peer
// first (ControlWriteTimeout at most).
//
// It returns nil when this call closed the session, when the application
// had already closed it (Close, CloseWithError), or when the peer closed
// it with NO_ERROR. Otherwise it returns the error the session had
// already ended with (Err): a *ConnError with the code the peer closed it
// with, or with the code the session closed itself with after a failure
// (its Unwrap gives the failure: the peer's protocol violation, a control
// stream write that timed out, ...). Closing a session again is harmless.
//
// Close may be called from a Handler or Authorizer callback: it then waits
// for every goroutine of the session except the ones running a callback
// (its own included). Those see their context cancelled; once the callback
// returns, the session does nothing more for them.
func (s *Session) Close() error {
	s.out.flush(s.closed, s.cfg.ControlWriteTimeout)
	return s.CloseWithError(wire.NoError, "session closed")
}

// CloseWithError ends the session with code and reason (the peer's
// Session.Err is a *ConnError carrying them) and waits for its goroutines,
// as Close does. Unlike Close, it does not wait for queued control
// messages. It returns what Close returns, except that when this call
// closed the session it returns the transport's error closing the
// connection, if any.
func (s *Session) CloseWithError(code SessionErrorCode, reason string) error {
	closeErr, first := s.closeWith(code, reason)
	s.units.wait()
	if first {
		return closeErr
	}
	err := s.Err()
	var ce *ConnError
	if errors.As(err, &ce) && ce.cause == nil && (!ce.Remote || ce.Code == wire.NoError) {
		return nil // the application closed it, or the peer did cleanly
	}
	return err
}

// fail closes the session with the code err calls for: a *wire.SessionError
// keeps its code; a closed connection keeps its error; anything else is
// INTERNAL_ERROR.
func (s *Session) fail(err error) {
	var ce *ConnError
	if errors.As(err, &ce) || errors.Is(err, net.ErrClosed) {
		// The connection is gone (closed with a code, idle timeout,
		// stateless reset): nothing to send, only to record.
		s.finish(err)
		return
	}
	if errors.Is(err, context.Canceled) && s.ctx.Err() != nil {
		s.finish(ErrSessionClosed)
		return
	}
	code := wire.SessionCode(err)
	s.log.Warn("closing session", "code", code, "err", err)
	s.closeWithErr(code, err)
}

// closeWith closes the session with code and reason; first reports
// whether this call ended it, and closeErr is the transport's error
// closing the connection.
func (s *Session) closeWith(code wire.SessionErrorCode, reason string) (closeErr error, first bool) {
	reason = truncateReason(reason)
	first = s.end(&ConnError{Code: code, Reason: reason}, func() { closeErr = s.conn.CloseWithError(uint64(code), reason) })
	return closeErr, first
}

// closeWithErr closes the session with code because of err: Err returns a
// *ConnError with code that wraps err.
func (s *Session) closeWithErr(code wire.SessionErrorCode, err error) {
	reason := truncateReason(err.Error())
	s.end(&ConnError{Code: code, Reason: reason, cause: err}, func() { _ = s.conn.CloseWithError(uint64(code), reason) })
}

// truncateReason bounds a close reason to what we send (1024 bytes).
func truncateReason(reason string) string {
	if len(reason) > 1024 {
		return reason[:1024]
	}
	return reason
}

// finish records err as the reason the session ended (the connection is
// already closed).
func (s *Session) finish(err error) { s.end(err, nil) }

// end ends the session once: it closes the connection (closeConn), records
// err, cancels the session's context, and then ends every request on a
// goroutine of its own, which Close waits for: so a callback that ending
// the requests runs (a Handler's PublishNamespaceDone) may call Close
// without deadlock, whichever goroutine ended the session.
func (s *Session) end(err error, closeConn func()) (first bool) {
	s.closeOnce.Do(func() {
		first = true
		if closeConn != nil {
			closeConn()
		}
		s.closeErr = err
		s.cancel()
		s.out.stop() // later sends fail; no writer starts
		close(s.closed)
	})
	if first {
		s.goFunc(func() { s.endAll(err) })
	}
	return first
}

// start runs the session's loops, each owned by s.units. The datagram
// reader starts later, with the first track alias the session learns (see
// aliasLearnedLocked); the control writer runs only while control messages
// wait (see controlQueue).
func (s *Session) start() {
	s.goFunc(s.readControl)
	s.goFunc(s.acceptUniStreams)
	s.goFunc(s.acceptBidiStreams)
}

// aliasLearnedLocked tells the data streams waiting for an alias that one
// was learned, and starts the datagram reader with the first one. A
// datagram carries an object of a track whose alias the session knows
// (SUBSCRIBE_OK, PUBLISH); the reader would drop every other one, so a
// session that never receives a track (a relay's viewer, a publisher)
// keeps no goroutine parked for datagrams. What a peer sends before that
// waits in the transport: quic-go keeps up to 128 unread datagrams per
// connection and drops the rest (a datagram may be lost), and once the
// reader starts they are parsed like any other (an unknown type closes
// the session with PROTOCOL_VIOLATION). An alias learned again after it
// ended is no longer ended (see aliasEndedLocked). Called with s.mu held.
func (s *Session) aliasLearnedLocked(alias uint64) {
	s.endedAliases.forget(alias)
	s.aliasNewsLocked()
	if !s.datagrams {
		s.datagrams = true
		s.goFunc(s.receiveDatagrams)
	}
}

// startControlWriter runs the control stream's writer; the control queue
// calls it, with its lock held, when a message waits and no writer runs.
func (s *Session) startControlWriter() { s.goFunc(s.writeControl) }

// goFunc runs f on a goroutine that Close waits for.
func (s *Session) goFunc(f func()) {
	s.units.add()
	go func() {
		defer s.units.done()
		f()
	}()
}

// callback runs application code that answers nothing (a Handler
// notification), named what for the log: Close called from it, or
// meanwhile, does not wait for the goroutine that runs it. open reports
// whether the session still runs once f has returned: when it does not,
// Close may have returned already, and the caller must do nothing more
// (handle no request, start no goroutine, call no other callback). The
// check follows leaveCallback, so a Close whose wait has returned has
// already cancelled s.ctx. A panic in f is logged and closes the session
// with INTERNAL_ERROR; the process goes on.
func (s *Session) callback(what string, f func()) (open bool) {
	if s.guard(what, f) {
		s.closeWithErr(wire.InternalError, fmt.Errorf("%w (%s)", errCallbackPanicked, what))
	}
	return s.ctx.Err() == nil
}

// callbackErr runs application code that decides a request (a Handler
// request function, the Authorizer) as callback does, and returns its
// error. A panic in f is logged and returned as errCallbackPanicked: the
// request is answered with INTERNAL_ERROR, and the session goes on. The
// caller checks s.ctx after it, as callback's open.
func (s *Session) callbackErr(what string, f func() error) error {
	var err error
	if s.guard(what, func() { err = f() }) {
		return errCallbackPanicked
	}
	return err
}

// errCallbackPanicked answers a request whose callback panicked; its text
// is the reason the peer sees (the panic itself is only logged).
var errCallbackPanicked = errors.New("moqt: internal error: the application's callback failed")

// guard runs f, a callback named what, outside the units Close waits for,
// and recovers a panic in it: logged at Error with its stack.
func (s *Session) guard(what string, f func()) (panicked bool) {
	s.units.enterCallback()
	defer func() {
		if v := recover(); v != nil {
			panicked = true
			s.log.Error("callback panicked; the request fails with INTERNAL_ERROR (or, if it has no answer, the session closes with it)",
				"callback", what, "panic", v, "stack", string(debug.Stack()))
		}
		s.units.leaveCallback()
	}()
	f()
	return false
}

// send queues one control message for the control stream's writer: it
// never waits for the network, so it may be called with locks held. The
// message is written in queue order; a peer that does not take it within
// ControlWriteTimeout, or lets MaxControlBacklog bytes pile up, has its
// session closed with CONTROL_MESSAGE_TIMEOUT.
func (s *Session) send(m wire.Message) error {
	b, err := wire.AppendMessage(nil, m)
	if err != nil {
		return err
	}
	return s.queue(b, m)
}

// queue queues b, the encoding of m, as send does.
func (s *Session) queue(b []byte, m wire.Message) error {
	if err := s.out.push(b, s.cfg.MaxControlBacklog, func() {
		s.log.Debug("sent", "message", m.Type().String())
		if s.cfg.Tracer != nil {
			s.cfg.Tracer.ControlMessage(true, m)
		}
	}); err != nil {
		return fmt.Errorf("moqt: sending %s: %w", m.Type(), err)
	}
	return nil
}

// sendOrFail sends m and ends the session if it cannot be queued.
func (s *Session) sendOrFail(m wire.Message) {
	err := s.send(m)
	if err == nil || s.ctx.Err() != nil || errors.Is(err, ErrSessionClosed) || errors.Is(err, errControlBacklog) {
		return // the writer ends the session for a backlog
	}
	s.fail(err)
}

func (s *Session) setupParams() wire.Parameters {
	ps := wire.Parameters{}.
		WithVarint(wire.SetupParamMaxRequestID, s.ids.initialGrant()).
		WithBytes(wire.SetupParamMOQTImplementation, []byte(s.cfg.Implementation))
	if s.cfg.MaxAuthTokenCacheSize > 0 {
		ps = ps.WithVarint(wire.SetupParamMaxAuthTokenCacheSize, s.cfg.MaxAuthTokenCacheSize)
	}
	return append(ps, s.cfg.SetupParams...)
}

func (s *Session) setupClient(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SetupTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = s.conn.CloseWithError(uint64(wire.ControlMessageTimeout), "setup timed out") })
	defer stop()
	control, err := s.conn.OpenStreamSync(ctx)
	if err != nil {
		return s.setupErr(ctx, err)
	}
	s.control, s.reader = control, wire.NewControlReader(control)
	control.SetPriority(0) // §7: before every data stream
	s.out.enable(s.startControlWriter)
	params := s.setupParams()
	if s.conn.Protocol() == ProtocolQUIC {
		params = params.WithBytes(wire.SetupParamPath, []byte(s.cfg.Path))
		if s.cfg.Authority != "" {
			params = params.WithBytes(wire.SetupParamAuthority, []byte(s.cfg.Authority))
		}
	}
	if err := s.send(&wire.ClientSetup{Versions: []wire.Version{wire.Draft14}, Params: params}); err != nil {
		return s.setupErr(ctx, err)
	}
	m, err := s.readSetup(ctx)
	if err != nil {
		return err
	}
	ss, ok := m.(*wire.ServerSetup)
	if !ok {
		return &wire.SessionError{Code: wire.ProtocolViolation, Reason: fmt.Sprintf("expected SERVER_SETUP, got %s", m.Type())}
	}
	if ss.Version != wire.Draft14 {
		return &wire.SessionError{Code: wire.VersionNegotiationFailed,
			Reason: fmt.Sprintf("server selected %s, which we did not offer", ss.Version)}
	}
	if _, ok := ss.Params.Get(wire.SetupParamPath); ok {
		return &wire.SessionError{Code: wire.InvalidPath, Reason: "server sent the PATH setup parameter"}
	}
	if b, ok := ss.Params.Bytes(wire.SetupParamAuthority); ok {
		if err := s.tolerateAs(wire.InvalidAuthority, deviationImplementation05, "the server sent setup parameter 0x05 (AUTHORITY, or the draft text's MOQT_IMPLEMENTATION) %q", b); err != nil {
			return err
		}
		s.implementation05 = string(b)
	}
	if err := s.applyPeerSetup(ss.Version, ss.Params); err != nil {
		return err
	}
	return s.authorizeSetup(ss, ss.Params)
}

func (s *Session) setupServer(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SetupTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { _ = s.conn.CloseWithError(uint64(wire.ControlMessageTimeout), "setup timed out") })
	defer stop()
	control, err := s.conn.AcceptStream(ctx)
	if err != nil {
		return s.setupErr(ctx, err)
	}
	s.control, s.reader = control, wire.NewControlReader(control)
	control.SetPriority(0) // §7: before every data stream
	s.out.enable(s.startControlWriter)
	m, err := s.readSetup(ctx)
	if err != nil {
		return err
	}
	cs, ok := m.(*wire.ClientSetup)
	if !ok {
		return &wire.SessionError{Code: wire.ProtocolViolation, Reason: fmt.Sprintf("expected CLIENT_SETUP, got %s", m.Type())}
	}
	offered := false
	for _, v := range cs.Versions {
		offered = offered || v == wire.Draft14
	}
	if !offered {
		return &wire.SessionError{Code: wire.VersionNegotiationFailed,
			Reason: fmt.Sprintf("no common version: client offered %v, we speak %s", cs.Versions, wire.Draft14)}
	}
	path, hasPath := cs.Params.Bytes(wire.SetupParamPath)
	authority, hasAuthority := cs.Params.Bytes(wire.SetupParamAuthority)
	if s.conn.Protocol() == ProtocolWebTransport {
		if hasPath {
			return &wire.SessionError{Code: wire.InvalidPath, Reason: "PATH setup parameter over WebTransport"}
		}
		if hasAuthority {
			if err := s.tolerateAs(wire.InvalidAuthority, deviationImplementation05, "setup parameter 0x05 (AUTHORITY, or the draft text's MOQT_IMPLEMENTATION) %q over WebTransport", authority); err != nil {
				return err
			}
			s.implementation05 = string(authority)
		}
	} else {
		if hasPath {
			if err := checkPath(string(path)); err != nil {
				return err
			}
			s.path = string(path)
		}
		if hasAuthority {
			if err := checkAuthority(string(authority)); err != nil {
				return err
			}
			s.authority = string(authority)
		}
	}
	if err := s.applyPeerSetup(wire.Draft14, cs.Params); err != nil {
		return err
	}
	if err := s.authorizeSetup(cs, cs.Params); err != nil {
		return err
	}
	return s.send(&wire.ServerSetup{Version: wire.Draft14, Params: s.setupParams()})
}

func (s *Session) applyPeerSetup(v wire.Version, ps wire.Parameters) error {
	s.version = v
	s.peerSetup = ps
	max, ok := ps.Varint(wire.SetupParamMaxRequestID) // absent means 0: no requests
	s.noGrant.Store(!ok)
	return s.ids.setPeerMax(max, true)
}

// readSetup reads the first control message, mapping a timeout to
// CONTROL_MESSAGE_TIMEOUT.
func (s *Session) readSetup(ctx context.Context) (wire.Message, error) {
	m, err := s.reader.ReadMessage()
	if err == nil && s.cfg.Tracer != nil {
		s.cfg.Tracer.ControlMessage(false, m)
	}
	if err != nil {
		if err == io.EOF {
			return nil, &wire.SessionError{Code: wire.ProtocolViolation, Reason: "control stream closed during setup"}
		}
		return nil, s.setupErr(ctx, controlStreamErr(err))
	}
	return m, nil
}

func (s *Session) setupErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return &wire.SessionError{Code: wire.ControlMessageTimeout, Reason: "setup did not complete in time"}
	}
	return err
}

// endAll ends every request of the session once it has closed.
func (s *Session) endAll(err error) {
	s.mu.Lock()
	subs := make([]*Subscription, 0, len(s.subs))
	for _, sub := range s.subs {
		subs = append(subs, sub)
	}
	pubs := make([]*NamespacePublication, 0, len(s.ourNamespaces))
	for _, p := range s.ourNamespaces {
		pubs = append(pubs, p)
	}
	fetches := make([]*Fetch, 0, len(s.fetches))
	for _, f := range s.fetches {
		fetches = append(fetches, f)
	}
	peerNS := make([]wire.Namespace, 0, len(s.peerNamespaces))
	for _, ns := range s.peerNamespaces {
		peerNS = append(peerNS, ns)
	}
	clear(s.peerNamespaces)
	clear(s.nsNoted)
	nsSubs := make([]*NamespaceSubscription, 0, len(s.ourNSSubs))
	for _, n := range s.ourNSSubs {
		nsSubs = append(nsSubs, n)
	}
	prefixes := make([]wire.Namespace, 0, len(s.peerNSSubs))
	for _, p := range s.peerNSSubs {
		prefixes = append(prefixes, p.prefix)
	}
	clear(s.peerNSSubs)
	s.mu.Unlock()
	s.callback("Handler.UnsubscribeNamespace and PublishNamespaceDone at the session's end", func() {
		if h := s.cfg.Handler.UnsubscribeNamespace; h != nil {
			for _, p := range prefixes {
				h(s, p)
			}
		}
		if h := s.cfg.Handler.PublishNamespaceDone; h != nil {
			for _, ns := range peerNS {
				h(s, ns)
			}
		}
	})
	for _, f := range fetches {
		f.abort(err)
	}
	for _, n := range nsSubs {
		n.finish(s.closedErr())
	}
	// A track whose session ended tells its readers (a relay's
	// subscribers) that the publisher went away.
	gone := &RequestError{Message: wire.TypePublishDone, Code: uint64(wire.DoneGoingAway), Reason: "the publisher's session ended"}
	for _, sub := range subs {
		sub.endWith(err, gone)
	}
	for _, p := range pubs {
		p.end(err)
	}
}
