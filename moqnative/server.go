package moqnative

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/moqtransport"
)

// ErrServerClosed is returned by Server.Accept once the server is closed.
var ErrServerClosed = errors.New("moqnative: server closed")

// serverClosed is the reason of the connections Server.Close closes.
const serverClosed = "server closed"

// DefaultMaxPending is ServerConfig.MaxPending's default. It is sized for
// bursts: when a thousand clients join at once, their handshakes can
// complete faster than the goroutine calling Accept is scheduled on a
// busy CPU, and a connection refused here is a join lost. Connections
// only wait here when the application does not call Accept.
const DefaultMaxPending = 1024

// DefaultHTTP3IdleTimeout is ServerConfig.HTTP3IdleTimeout's default, the
// same bound moqtransport puts on a session's setup (Config.SetupTimeout).
const DefaultHTTP3IdleTimeout = 10 * time.Second

// ServerConfig configures a Server. The zero value serves a generated
// self-signed certificate, accepts WebTransport from any origin and logs
// nothing.
type ServerConfig struct {
	// Certificates are served by SNI (see CertificateChooser); load them
	// with LoadCertificates. When empty, the server generates a self-signed
	// certificate for SelfSignedHosts (see GenerateSelfSigned), whose
	// fingerprint Server.Fingerprint reports for browsers'
	// serverCertificateHashes, and renews it while it runs (see
	// Server.Fingerprint).
	Certificates []tls.Certificate
	// SelfSignedHosts are the names of the generated certificate;
	// DefaultSelfSignedHosts when empty.
	SelfSignedHosts []string

	// CheckOrigin decides whether a WebTransport request's Origin header
	// is acceptable. When nil and AllowedOrigins is empty, every origin is
	// accepted: browsers reach a development server by certificate hash from
	// test pages served on other origins, and MoQT authorizes with tokens
	// in CLIENT_SETUP rather than with cookies, so cross-origin requests
	// carry no ambient authority. Set AllowedOrigins or CheckOrigin to
	// restrict it.
	CheckOrigin func(r *http.Request) bool
	// AllowedOrigins, when not empty and CheckOrigin is nil, lists the
	// accepted origins ("https://example.com", compared case-insensitively);
	// a request without an Origin header (a non-browser client) is accepted.
	AllowedOrigins []string

	// MaxPending bounds the connections whose handshake is done but
	// which Accept has not returned yet (DefaultMaxPending when 0): it is
	// the backlog of an application that stopped accepting. Beyond it, new
	// raw QUIC connections are closed with INTERNAL_ERROR "server busy"
	// and WebTransport requests are answered 503, and the server logs a
	// warning. quic-go's own queue of 32 handshaken connections comes
	// before it; the server empties that at once with several goroutines,
	// so it does not refuse connections while the application accepts.
	MaxPending int

	// HTTP3IdleTimeout bounds how long an HTTP/3 connection may go without
	// a request in progress, and how long a request's header may take to
	// arrive (DefaultHTTP3IdleTimeout when 0). A WebTransport session is a
	// request in progress for as long as it lasts (its CONNECT stream stays
	// open), however quiet it is, so this only closes connections that
	// have no session: one whose client asked for nothing, or whose
	// request was refused or has ended. They are closed with H3_NO_ERROR
	// "idle timeout". It is WebTransport's counterpart of the bounds on a
	// raw QUIC connection (MaxPending, then the session's setup timeout):
	// QUIC keep-alives hold a silent connection open, so without it a
	// client that completes the handshake and asks for nothing would keep
	// its connection, and the server's goroutines for it, for good.
	HTTP3IdleTimeout time.Duration

	// MaxIncomingUniStreams bounds the unidirectional streams a client may
	// have open at once (MaxIncomingUniStreams when 0). A client that
	// needs more waits for its streams to end (QUIC flow control).
	MaxIncomingUniStreams int64

	// QUICConfig, when set, is the base of every connection's QUIC
	// configuration, e.g. to raise the receive windows; it is cloned, and
	// the fields MoQT needs are enforced (see QUICConfig).
	QUICConfig *quic.Config
	// Transport, when set, is the quic.Transport to listen on instead of a
	// socket of the server's own: one the program also dials from (a
	// relay reaching other relays from its serving port, with
	// ClientConfig.Transport) or whose socket it configured. Listen's addr
	// must then be empty. Close leaves it open.
	Transport *quic.Transport
	// PacketConn, when set and Transport is not, is the socket to listen
	// on instead of one the server binds. Listen's addr must then be
	// empty. Close leaves it open.
	PacketConn net.PacketConn

	// QlogDir, when set, receives one qlog file per connection.
	QlogDir string
	// Logger receives the server's logs; nil means none.
	Logger *slog.Logger
}

// Incoming is a connection the server accepted.
type Incoming struct {
	Conn moqtransport.Conn
	// Path is, for WebTransport, the request's path and query
	// ("/app?x=1"). For raw QUIC it is empty: the client sends its path in
	// the PATH setup parameter.
	Path string
	// Authority is, for WebTransport, the request's :authority. For raw
	// QUIC it is empty: the client sends it in the AUTHORITY setup
	// parameter.
	Authority string
	// RemoteAddr is the client's address.
	RemoteAddr net.Addr
}

// Server accepts MoQT connections over raw QUIC (ALPN moq-00) and
// WebTransport (ALPN h3) on one UDP socket.
//
// quic-go may print one warning through the standard log package if it
// cannot enlarge the socket's buffers (set
// QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true to silence it); the server
// logs its own warning with the sysctl to run (see Server.Socket).
type Server struct {
	logger      *slog.Logger
	selfSigned  *renewedSelfSigned // nil when given certificates
	checkOrigin func(*http.Request) bool

	tr     *quic.Transport
	ownTr  bool // tr was made by Listen: Close closes it
	ownUDP bool // and its socket too
	ln     *quic.Listener
	wts    *webtransport.Server
	keyLog *keyLog
	maxUni int64 // quic.Config.MaxIncomingUniStreams of every connection

	incoming chan *Incoming
	socket   SocketInfo

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the server starts
	qlogs  qlogWriters    // the qlog files' writers (ServerConfig.QlogDir)

	mu     sync.Mutex
	conns  map[*quic.Conn]string // open connections and their ALPN
	closed bool

	closeOnce sync.Once
	closeErr  error
	acceptErr sync.Once // the acceptors log one failure of the listener
}

type quicConnKey struct{}

// Listen binds one UDP socket on addr (host:port; port 0 picks a free one)
// and serves MoQT over raw QUIC and WebTransport on it. With
// cfg.Transport or cfg.PacketConn, addr must be empty and the server
// listens on that socket.
func Listen(addr string, cfg ServerConfig) (*Server, error) {
	logger := loggerOrDiscard(cfg.Logger)
	if err := ensureDir(cfg.QlogDir); err != nil {
		return nil, err
	}
	s := &Server{logger: logger, conns: make(map[*quic.Conn]string)}

	getCert := CertificateChooser(cfg.Certificates)
	if len(cfg.Certificates) == 0 {
		ss, err := newRenewedSelfSigned(cfg.SelfSignedHosts, logger)
		if err != nil {
			return nil, err
		}
		s.selfSigned = ss
		getCert = func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return &ss.current().Certificate, nil
		}
	}
	s.checkOrigin = originChecker(cfg)

	maxPending := cfg.MaxPending
	if maxPending <= 0 {
		maxPending = DefaultMaxPending
	}
	s.incoming = make(chan *Incoming, maxPending)

	var err error
	if s.keyLog, err = openKeyLog(); err != nil {
		return nil, err
	}
	if s.tr, s.ownTr, err = transportFor("ServerConfig", addr, cfg.Transport, cfg.PacketConn); err != nil {
		s.keyLog.Close()
		return nil, err
	}
	s.ownUDP = s.ownTr && cfg.PacketConn == nil
	// crypto/tls's defaults decide the rest; none is cheaper without a
	// security trade. Key exchange: Go 1.26 prefers the post-quantum
	// hybrid X25519MLKEM768 whenever the client offers it, as Go clients
	// and current browsers do; it costs about a third more CPU per
	// handshake, both ends together, than X25519 alone (moq-bench's
	// BenchmarkJoin). Resumption: quic-go sends a session ticket on every
	// connection, so a returning client with a session cache
	// (ClientTLS.SessionCache; browsers) resumes without a certificate
	// signature. The ticket keys are made and rotated by this tls.Config,
	// so after a restart old tickets get a full handshake.
	tlsConf := &tls.Config{
		GetCertificate: getCert,
		NextProtos:     []string{ALPNMoQT, ALPNH3},
		MinVersion:     tls.VersionTLS13,
		KeyLogWriter:   s.keyLog.writer(),
	}
	quicConf := mergeQUICConfig(cfg.QUICConfig, quicConfig(cfg.QlogDir, &s.qlogs, logger, cfg.MaxIncomingUniStreams))
	s.maxUni = quicConf.MaxIncomingUniStreams
	if s.ln, err = s.tr.Listen(tlsConf, quicConf); err != nil {
		if s.ownTr {
			closeTransport(s.tr, s.ownUDP)
		}
		s.keyLog.Close()
		return nil, fmt.Errorf("moqnative: %w", err)
	}

	idle := cfg.HTTP3IdleTimeout
	if idle <= 0 {
		idle = DefaultHTTP3IdleTimeout
	}
	h3 := &http3.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		Logger:            logger.With("component", "http3"),
		IdleTimeout:       idle,
		ReadHeaderTimeout: idle,
		// Remember each request's QUIC connection: the session needs it to
		// close the connection when the session ends.
		ConnContext: func(ctx context.Context, c *quic.Conn) context.Context {
			return context.WithValue(ctx, quicConnKey{}, c)
		},
	}
	// webtransport.Server applies webtransport.ConfigureHTTP3Server to H3
	// when it initializes (SETTINGS for WebTransport and HTTP datagrams,
	// and the connection in the request context).
	s.wts = &webtransport.Server{H3: h3, CheckOrigin: s.checkOrigin}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	// quic-go sized the socket's buffers when the listener started.
	s.socket = socketInfo(s.tr, logger)

	for range acceptors {
		s.wg.Go(s.acceptLoop)
	}
	logger.Info("listening", "addr", s.Addr().String(), "self_signed", s.selfSigned != nil)
	return s, nil
}

// Addr is the address of the server's UDP socket.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Socket describes the server's UDP socket as quic-go set it up: its
// buffer sizes and whether GSO is available (the zero SocketInfo for a
// ServerConfig.PacketConn that is not a *net.UDPConn). Listen logs a
// warning naming the sysctl to run when the buffers are smaller than
// quic-go wants.
func (s *Server) Socket() SocketInfo { return s.socket }

// SelfSigned is the generated certificate the server serves now, or nil
// when the server was given certificates. It changes when the server
// renews it (see Fingerprint).
func (s *Server) SelfSigned() *SelfSigned {
	if s.selfSigned == nil {
		return nil
	}
	return s.selfSigned.current()
}

// Fingerprint is the SHA-256 of the generated certificate the server
// serves now; ok is false when the server was given certificates.
//
// A generated certificate is valid for SelfSignedValidity, and browsers
// accept one by hash only if it is valid for less than 14 days, so the
// server renews it, on the next handshake or call of Fingerprint or
// SelfSigned, once less than half its validity is left, and logs the new
// fingerprint at Info. A long-running server's fingerprint therefore
// changes every few days: hand it to browsers when they connect (e.g. from
// a page that calls Fingerprint on each request), not once at startup.
func (s *Server) Fingerprint() (fp [32]byte, ok bool) {
	if s.selfSigned == nil {
		return fp, false
	}
	return s.selfSigned.current().Fingerprint(), true
}

// Accept returns the next connection, raw QUIC or WebTransport.
func (s *Server) Accept(ctx context.Context) (*Incoming, error) {
	for {
		select {
		case in := <-s.incoming:
			if in.Conn.Context().Err() != nil {
				continue // gave up while queued
			}
			if s.logger.Enabled(ctx, slog.LevelDebug) {
				s.logger.Debug("accepted", "remote", in.RemoteAddr.String(), "protocol", in.Conn.Protocol().String(), "path", in.Path)
			}
			return in, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-s.ctx.Done():
			return nil, ErrServerClosed
		}
	}
}

// Close closes every connection (raw QUIC ones with NO_ERROR, WebTransport
// ones with H3_NO_ERROR), stops every goroutine the server started and
// closes the socket it bound (not a ServerConfig.Transport or
// PacketConn). Sessions should drain (GOAWAY) before.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		err := s.ln.Close()

		s.mu.Lock()
		s.closed = true
		conns := s.conns
		s.conns = nil
		s.mu.Unlock()
		var wg sync.WaitGroup
		for c, alpn := range conns {
			code := quic.ApplicationErrorCode(codeNoError)
			if alpn == ALPNH3 {
				code = quic.ApplicationErrorCode(http3.ErrCodeNoError)
			}
			wg.Go(func() { c.CloseWithError(code, serverClosed) })
		}
		wg.Wait()

		if werr := s.wts.Close(); err == nil {
			err = werr
		}
		s.wg.Wait()
		for len(s.incoming) > 0 { // their connections are closed already
			<-s.incoming
		}
		if s.ownTr {
			if terr := closeTransport(s.tr, s.ownUDP); err == nil {
				err = terr
			}
		}
		if kerr := s.keyLog.Close(); err == nil {
			err = kerr
		}
		s.qlogs.wait()
		s.closeErr = err
		s.logger.Info("closed")
	})
	return s.closeErr
}

// track records an open connection so Close can close it; it reports
// false, having closed the connection, when the server is closing.
func (s *Server) track(c *quic.Conn, alpn string) bool {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.CloseWithError(0, serverClosed)
		return false
	}
	s.conns[c] = alpn
	s.mu.Unlock()
	context.AfterFunc(c.Context(), func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	})
	return true
}

// acceptors is how many goroutines take handshaken connections from
// quic-go. quic-go holds at most 32 of them (its accept queue,
// protocol.MaxAcceptQueueSize, not configurable) and refuses the next
// with CONNECTION_REFUSED when that queue is full, even though the
// handshake is done. Each acceptor parked in Accept takes one connection
// straight from the handshake's goroutine, before the queue, so a burst of
// handshakes that complete while the process waits for a CPU fills the
// queue acceptors connections later; and each acceptor hands its
// connection on without blocking, so it is back in Accept as soon as it
// is scheduled.
const acceptors = 16

// acceptLoop takes handshaken connections from quic-go and hands them on
// (admit); several run at once (acceptors).
func (s *Server) acceptLoop() {
	for {
		c, err := s.ln.Accept(s.ctx)
		if err != nil {
			if s.ctx.Err() == nil {
				s.acceptErr.Do(func() { s.logger.Error("accept failed", "error", err) })
			}
			return
		}
		if !s.admit(c) {
			return
		}
	}
}

// admit hands an accepted connection on: raw QUIC to Accept's queue,
// HTTP/3 to a goroutine of its own that serves WebTransport. It never
// blocks (see acceptors). It reports false, having closed c, when the
// server is closing.
func (s *Server) admit(c *quic.Conn) bool {
	alpn := c.ConnectionState().TLS.NegotiatedProtocol
	if !s.track(c, alpn) {
		return false
	}
	switch alpn {
	case ALPNMoQT:
		conn, err := NewQUICConn(c)
		if err != nil {
			s.logger.Info("refusing connection", "remote", c.RemoteAddr().String(), "alpn", alpn, "error", err)
			c.CloseWithError(quic.ApplicationErrorCode(codeProtocolViolation), "QUIC datagrams required")
			return true
		}
		conn.(*quicConn).maxUni = s.maxUni
		s.enqueue(&Incoming{Conn: conn, RemoteAddr: c.RemoteAddr()})
	case ALPNH3:
		s.wg.Go(func() {
			// ServeQUICConn returns when the connection is closed, or at
			// once when it cannot serve it (a client whose transport
			// parameters leave no room for HTTP/3's control stream); it
			// never closes the connection itself, so it is closed here:
			// otherwise keep-alives would hold it open with nothing
			// serving it.
			code, reason := http3.ErrCodeNoError, ""
			if err := s.wts.ServeQUICConn(c); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.logger.Debug("cannot serve HTTP/3; closing the connection", "remote", c.RemoteAddr().String(), "error", err)
				code, reason = http3.ErrCodeGeneralProtocolError, "cannot serve HTTP/3: "+err.Error()
			}
			c.CloseWithError(quic.ApplicationErrorCode(code), reason)
		})
	default: // unreachable: TLS only negotiates the protocols offered
		s.logger.Warn("unexpected ALPN", "remote", c.RemoteAddr().String(), "alpn", alpn)
		c.CloseWithError(quic.ApplicationErrorCode(codeInternalError), "unexpected ALPN")
	}
	return true
}

// enqueue hands a connection to Accept, or closes it with INTERNAL_ERROR
// "server busy" when ServerConfig.MaxPending connections are waiting
// already: the application is not calling Accept, and quic-go's
// handshakes must not queue up behind it without bound.
func (s *Server) enqueue(in *Incoming) {
	select {
	case s.incoming <- in:
	default:
		s.logger.Warn("too many connections waiting for Accept; closing", "remote", in.RemoteAddr.String(), "max_pending", cap(s.incoming))
		in.Conn.CloseWithError(codeInternalError, "server busy")
	}
}

// serveHTTP upgrades an extended CONNECT request on any path to a
// WebTransport session; anything else is 404.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	logger := s.logger.With("remote", r.RemoteAddr, "path", r.RequestURI)
	if r.Method != http.MethodConnect {
		http.NotFound(w, r)
		return
	}
	if !s.checkOrigin(r) {
		logger.Info("WebTransport origin refused", "origin", r.Header.Get("Origin"))
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if s.ctx.Err() != nil || len(s.incoming) >= cap(s.incoming) {
		logger.Warn("refusing WebTransport session: server closing or too many connections waiting for Accept")
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	qconn, _ := r.Context().Value(quicConnKey{}).(*quic.Conn)
	if qconn == nil {
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	sess, err := s.wts.Upgrade(w, r)
	if err != nil {
		logger.Info("WebTransport upgrade failed", "error", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	wc := newWTConn(sess, qconn)
	wc.maxUni = s.maxUni - h3UniStreams
	// This handler runs inside ServeQUICConn, which s.wg counts, so the
	// counter is above zero here.
	s.wg.Go(func() { wc.closeQUICAfterSession(s.ctx.Done(), serverClosed) })
	s.enqueue(&Incoming{Conn: wc, Path: r.RequestURI, Authority: r.Host, RemoteAddr: qconn.RemoteAddr()})
}

// originChecker builds the WebTransport origin check from the config.
func originChecker(cfg ServerConfig) func(*http.Request) bool {
	if cfg.CheckOrigin != nil {
		return cfg.CheckOrigin
	}
	if len(cfg.AllowedOrigins) == 0 {
		return func(*http.Request) bool { return true }
	}
	allowed := make(map[string]bool, len(cfg.AllowedOrigins))
	for _, o := range cfg.AllowedOrigins {
		allowed[normalizeOrigin(o)] = true
	}
	return func(r *http.Request) bool {
		o := r.Header.Get("Origin")
		return o == "" || allowed[normalizeOrigin(o)]
	}
}

func normalizeOrigin(o string) string {
	o = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(o), "/"))
	if u, err := url.Parse(o); err == nil && u.Scheme != "" && u.Host != "" {
		return u.Scheme + "://" + u.Host
	}
	return o
}
