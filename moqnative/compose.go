package moqnative

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/moqtransport"
)

// QUICConfig returns the QUIC configuration moqnative uses, built on base
// (nil for none): a program that accepts or dials its own QUIC
// connections for MoQT (NewQUICConn, WebTransportHandler) passes it to
// quic-go. base is cloned, never modified. The rules, the same for
// ServerConfig.QUICConfig and ClientConfig.QUICConfig:
//
//   - Overridden whatever base says: EnableDatagrams (true: draft-14 §3.1
//     requires the QUIC DATAGRAM extension, and WebTransport does too),
//     EnableStreamResetPartialDelivery (true: webtransport-go requires
//     RESET_STREAM_AT, and MoQT uses it to deliver a subgroup header
//     before a reset), Allow0RTT (false: MoQT setup messages are not
//     replay safe), and MaxIncomingUniStreams (MaxIncomingUniStreams, or
//     ServerConfig/ClientConfig.MaxIncomingUniStreams, plus the 3 streams
//     HTTP/3 opens for itself: each open stream can hold a reader's
//     buffer and an object in progress, so the bound is a memory bound;
//     set it through the moqnative config, not here).
//   - Filled in when base leaves them zero: MaxIncomingStreams,
//     KeepAlivePeriod, MaxIdleTimeout and the four receive windows take
//     this package's constants. A value base sets is kept: raise the
//     windows for high bit rates, or MaxIncomingStreams when an HTTP/3
//     server shares the connection with other requests.
//   - Tracer: a QlogDir in the moqnative config replaces it; otherwise
//     base's is kept.
//   - GetConfigForClient (servers): kept, and the configuration it
//     returns goes through these same rules.
//   - Every other field is kept as base sets it.
func QUICConfig(base *quic.Config) *quic.Config {
	return mergeQUICConfig(base, quicConfig("", nil, nil, 0))
}

// mergeQUICConfig applies QUICConfig's rules: base's settings over the
// defaults in def (from quicConfig), with the fields MoQT needs taken
// from def.
func mergeQUICConfig(base, def *quic.Config) *quic.Config {
	if base == nil {
		return def
	}
	c := base.Clone()
	c.EnableDatagrams = def.EnableDatagrams
	c.EnableStreamResetPartialDelivery = def.EnableStreamResetPartialDelivery
	c.Allow0RTT = false
	c.MaxIncomingUniStreams = def.MaxIncomingUniStreams
	if c.MaxIncomingStreams <= 0 { // negative means none in quic-go
		c.MaxIncomingStreams = def.MaxIncomingStreams
	}
	orDefault(&c.KeepAlivePeriod, def.KeepAlivePeriod)
	orDefault(&c.MaxIdleTimeout, def.MaxIdleTimeout)
	orDefault(&c.InitialStreamReceiveWindow, def.InitialStreamReceiveWindow)
	orDefault(&c.MaxStreamReceiveWindow, def.MaxStreamReceiveWindow)
	orDefault(&c.InitialConnectionReceiveWindow, def.InitialConnectionReceiveWindow)
	orDefault(&c.MaxConnectionReceiveWindow, def.MaxConnectionReceiveWindow)
	if def.Tracer != nil {
		c.Tracer = def.Tracer
	}
	if get := c.GetConfigForClient; get != nil {
		c.GetConfigForClient = func(info *quic.ClientInfo) (*quic.Config, error) {
			conf, err := get(info)
			if err != nil || conf == nil {
				return conf, err
			}
			return mergeQUICConfig(conf, def), nil
		}
	}
	return c
}

// orDefault sets *v to def when *v is the zero value.
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// transportFor returns the quic.Transport to listen or dial on: tr when
// given, a new one on pc when given (owned: to close, leaving pc open),
// or a new one on a UDP socket bound to addr (owned with its socket).
// who names the config in errors.
func transportFor(who, addr string, tr *quic.Transport, pc net.PacketConn) (_ *quic.Transport, owned bool, _ error) {
	if (tr != nil || pc != nil) && addr != "" {
		return nil, false, fmt.Errorf("moqnative: both an address (%q) and %s.Transport or PacketConn given: pass an empty address to use the socket", addr, who)
	}
	switch {
	case tr != nil:
		return tr, false, nil
	case pc != nil:
		return &quic.Transport{Conn: pc}, true, nil
	}
	var udpAddr *net.UDPAddr
	if addr != "" {
		var err error
		if udpAddr, err = net.ResolveUDPAddr("udp", addr); err != nil {
			return nil, false, fmt.Errorf("moqnative: %w", err)
		}
	}
	udp, err := net.ListenUDP("udp", udpAddr)
	if err != nil {
		return nil, false, fmt.Errorf("moqnative: %w", err)
	}
	return &quic.Transport{Conn: udp}, true, nil
}

// closeTransport closes a transport this package made, and its socket when
// this package opened it too (a quic.Transport closes only a socket it
// opened itself; on a socket it was given it only stops reading).
func closeTransport(tr *quic.Transport, closeConn bool) error {
	err := tr.Close()
	if closeConn {
		if cerr := tr.Conn.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// NewQUICConn returns the MoQT connection over c, a raw QUIC connection
// that a program accepted or dialed itself: run moqtransport.Accept or
// moqtransport.Connect on it. c must have negotiated ALPN moq-00
// (ALPNMoQT; a connection with ALPN h3 carries WebTransport: serve it with
// WebTransportHandler) and the QUIC DATAGRAM extension on both sides
// (draft-14 §3.1; QUICConfig enables it). When it has not, NewQUICConn
// says what is wrong and leaves c open: the caller owns it.
//
// The MoQT connection's CloseWithError closes c.
func NewQUICConn(c *quic.Conn) (moqtransport.Conn, error) {
	st := c.ConnectionState()
	if alpn := st.TLS.NegotiatedProtocol; alpn != ALPNMoQT {
		return nil, fmt.Errorf("moqnative: the QUIC connection negotiated ALPN %q, not %q: put %q in tls.Config.NextProtos (ALPN h3 is WebTransport: see WebTransportHandler)", alpn, ALPNMoQT, ALPNMoQT)
	}
	if !st.SupportsDatagrams.Local {
		return nil, errors.New("moqnative: the QUIC connection has datagrams disabled: MoQT requires the QUIC DATAGRAM extension (draft-14 §3.1); use moqnative.QUICConfig or set quic.Config.EnableDatagrams")
	}
	if !st.SupportsDatagrams.Remote {
		return nil, errors.New("moqnative: the peer did not negotiate QUIC datagrams, which MoQT requires (draft-14 §3.1)")
	}
	return &quicConn{c: c}, nil
}

// NewWebTransportConn returns the MoQT connection over sess, a WebTransport
// session a program accepted (webtransport.Server.Upgrade) or dialed
// itself: run moqtransport.Accept or moqtransport.Connect on it. Closing
// the MoQT connection closes the session, not the QUIC connection under
// it, which may carry other HTTP/3 requests.
func NewWebTransportConn(sess *webtransport.Session) moqtransport.Conn {
	return newWTConn(sess, nil)
}

// WebTransportHandler returns an http.Handler that serves MoQT over
// WebTransport on an HTTP/3 server the program runs itself: mount it on
// the server's mux at the MoQT path, and the other routes stay as they
// are. It upgrades each extended CONNECT request with wts (whose
// CheckOrigin decides origins; webtransport-go's default accepts only the
// request's own host) and calls serve with the session on the request's
// goroutine; serve may run the session to its end or return at once. A
// request that is not CONNECT gets 405.
//
// The HTTP/3 server must run as wts.H3 and be served by wts (wts.Serve or
// wts.ServeQUICConn), with QUIC datagrams enabled (QUICConfig, or
// webtransport-go's Serve, which enables them). Call WebTransportHandler
// before wts serves: like webtransport.ConfigureHTTP3Server, it wraps
// wts.H3.ConnContext (keeping the one set), to know each request's QUIC
// connection: its close is how a session that ends without a close
// capsule ended (QUICConn reports it too).
//
// The QUIC connection stays open when a session ends, as other requests
// may use it (a Server closes it). A moqnative client that closes its
// session then waits up to 2 s for the server to close the connection, so
// that its close code is delivered, before closing it itself.
func WebTransportHandler(wts *webtransport.Server, serve func(*Incoming)) http.Handler {
	if wts.H3 != nil {
		connContext := wts.H3.ConnContext
		wts.H3.ConnContext = func(ctx context.Context, c *quic.Conn) context.Context {
			if connContext != nil {
				ctx = connContext(ctx, c)
			}
			return context.WithValue(ctx, quicConnKey{}, c)
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			w.Header().Set("Allow", http.MethodConnect)
			http.Error(w, "this path serves MoQT over WebTransport (extended CONNECT)", http.StatusMethodNotAllowed)
			return
		}
		if wts.CheckOrigin != nil && !wts.CheckOrigin(r) {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		sess, err := wts.Upgrade(w, r)
		if err != nil {
			http.Error(w, "WebTransport upgrade failed: "+err.Error(), http.StatusBadRequest)
			return
		}
		// The QUIC connection stays the program's: nothing closes it when
		// the session ends.
		qconn, _ := r.Context().Value(quicConnKey{}).(*quic.Conn)
		serve(&Incoming{Conn: newWTConn(sess, qconn), Path: r.RequestURI, Authority: r.Host, RemoteAddr: sess.RemoteAddr()})
	})
}

// socketInfo inspects the transport's socket when it is a UDP socket.
func socketInfo(tr *quic.Transport, logger *slog.Logger) SocketInfo {
	if udp, ok := tr.Conn.(*net.UDPConn); ok {
		return checkSocket(udp, logger)
	}
	return SocketInfo{}
}
