package moqnative

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/moqtransport"
)

// DefaultPort is used when a moqt:// or https:// URL names no port.
const DefaultPort = "443"

// ClientConfig configures Dial. The zero value verifies the server against
// the system roots and logs nothing.
type ClientConfig struct {
	TLS ClientTLS
	// MaxIncomingUniStreams bounds the unidirectional streams the server
	// may have open at once (MaxIncomingUniStreams when 0).
	MaxIncomingUniStreams int64
	// QUICConfig, when set, is the base of the connection's QUIC
	// configuration; it is cloned, and the fields MoQT needs are enforced
	// (see QUICConfig).
	QUICConfig *quic.Config
	// Transport, when set, is the quic.Transport to dial from instead of a
	// socket of Dial's own: e.g. a Server's (ServerConfig.Transport), so
	// that a relay reaches other relays from its serving port.
	// Dialed.Close leaves it open.
	Transport *quic.Transport
	// PacketConn, when set and Transport is not, is the socket to dial
	// from. Dialed.Close leaves it open.
	PacketConn net.PacketConn
	// QlogDir, when set, receives a qlog file for the connection.
	QlogDir string
	// Logger receives the client's logs; nil means none.
	Logger *slog.Logger
}

// Dialed is a connection Dial established.
type Dialed struct {
	Conn moqtransport.Conn
	// Path is the URL's path-abempty, followed by "?" and the query when
	// the URL has one (draft-14 §3.1): the PATH setup parameter.
	Path string
	// Authority is the URL's authority (host and port as written): the
	// AUTHORITY setup parameter.
	//
	// Path and Authority are filled for both transports, but MoQT sends
	// them as setup parameters over raw QUIC only
	// (Conn.Protocol() == moqtransport.ProtocolQUIC); over WebTransport
	// they travel in the CONNECT request instead.
	Authority string

	ep      *clientEndpoint
	qlogs   *qlogWriters
	closeFn func() // closes Conn with NO_ERROR
	done    chan struct{}
}

// Close closes the connection with NO_ERROR if it is still open, and
// releases the UDP socket, the QUIC transport and the key log file Dial
// created (not a ClientConfig.Transport or PacketConn). It waits for every
// goroutine Dial started, so a ClientConfig.QlogDir file is complete
// when it returns.
func (d *Dialed) Close() error {
	d.closeFn()
	<-d.done
	err := d.ep.release()
	d.qlogs.wait()
	return err
}

// Dial connects to a MoQT server. The scheme picks the transport:
// moqt://host[:port]/path?query is raw QUIC (ALPN moq-00) and
// https://host[:port]/path is WebTransport. The port defaults to 443.
func Dial(ctx context.Context, rawURL string, cfg ClientConfig) (*Dialed, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("moqnative: parsing URL: %w", err)
	}
	var alpn string
	switch strings.ToLower(u.Scheme) {
	case "moqt":
		alpn = ALPNMoQT
	case "https":
		alpn = ALPNH3
	default:
		return nil, fmt.Errorf("moqnative: unsupported URL scheme %q in %q: use moqt:// (raw QUIC) or https:// (WebTransport)", u.Scheme, rawURL)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("moqnative: URL %q has an empty host", rawURL)
	}
	if u.Opaque != "" {
		return nil, fmt.Errorf("moqnative: URL %q is not of the form %s://authority/path", rawURL, u.Scheme)
	}
	port := u.Port()
	if port == "" {
		port = DefaultPort
	}
	path := u.EscapedPath()
	if u.RawQuery != "" || u.ForceQuery {
		path += "?" + u.RawQuery
	}
	authority := u.Host
	if u.User != nil {
		authority = u.User.String() + "@" + authority
	}

	logger := loggerOrDiscard(cfg.Logger).With("url", u.Redacted())
	if err := ensureDir(cfg.QlogDir); err != nil {
		return nil, err
	}
	raddr, err := resolve(ctx, u.Hostname(), port)
	if err != nil {
		return nil, err
	}
	ep, err := newClientEndpoint(cfg)
	if err != nil {
		return nil, err
	}
	tlsConf, err := cfg.TLS.config(u.Hostname(), alpn, ep.keyLog.writer())
	if err != nil {
		ep.release()
		return nil, err
	}
	qlogs := &qlogWriters{}
	quicConf := mergeQUICConfig(cfg.QUICConfig, quicConfig(cfg.QlogDir, qlogs, logger, cfg.MaxIncomingUniStreams))
	qconn, err := ep.tr.Dial(ctx, raddr, tlsConf, quicConf)
	if err != nil {
		ep.release()
		qlogs.wait()
		return nil, fmt.Errorf("moqnative: dialing %s: %w", u.Redacted(), err)
	}
	d := &Dialed{Path: path, Authority: authority, ep: ep, qlogs: qlogs, done: make(chan struct{})}

	if alpn == ALPNMoQT {
		if d.Conn, err = NewQUICConn(qconn); err != nil {
			qconn.CloseWithError(codeProtocolViolation, "QUIC datagrams required")
			ep.release()
			return nil, fmt.Errorf("%w (dialing %s)", err, u.Redacted())
		}
		d.Conn.(*quicConn).maxUni = quicConf.MaxIncomingUniStreams
		d.closeFn = func() { qconn.CloseWithError(codeNoError, "") }
		go func() {
			defer close(d.done)
			<-qconn.Context().Done()
			ep.release()
		}()
		logger.Debug("connected", "protocol", "quic")
		return d, nil
	}

	// WebTransport on the connection just made: webtransport-go's
	// ClientConn runs the HTTP/3 client on it.
	wtt := &webtransport.Transport{}
	cc, err := wtt.NewClientConn(qconn)
	if err != nil {
		qconn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
		ep.release()
		return nil, fmt.Errorf("moqnative: %w", err)
	}
	u.Scheme = "https"
	// webtransport-go honours ctx only until the CONNECT request is sent:
	// it then waits for the response without a deadline, and keep-alives
	// hold the connection open, so a server that never answers would hold
	// Dial forever. Closing the connection when ctx ends cuts that wait.
	stop := context.AfterFunc(ctx, func() {
		qconn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeRequestCanceled), "dial abandoned")
	})
	rsp, sess, err := cc.Dial(ctx, u.String(), nil)
	// stop reports false once ctx has ended: the connection is closed or
	// closing, even if a response came just in time.
	if abandoned := !stop(); err != nil || abandoned {
		qconn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
		wtt.Close()
		ep.release()
		if abandoned {
			return nil, fmt.Errorf("moqnative: WebTransport session to %s: the context ended before the server accepted the session (no answer to the CONNECT request): %w", u.Redacted(), ctx.Err())
		}
		if rsp != nil {
			return nil, fmt.Errorf("moqnative: WebTransport request to %s refused: %s", u.Redacted(), rsp.Status)
		}
		return nil, fmt.Errorf("moqnative: WebTransport session to %s: %w", u.Redacted(), err)
	}
	wc := newWTConn(sess, qconn)
	wc.maxUni = quicConf.MaxIncomingUniStreams - h3UniStreams
	d.Conn = wc
	d.closeFn = func() { wc.CloseWithError(codeNoError, "") }
	go func() {
		defer close(d.done)
		wc.closeQUICAfterSession(nil, "")
		wtt.Close()
		ep.release()
	}()
	logger.Debug("connected", "protocol", "webtransport")
	return d, nil
}

// clientEndpoint is what one Dial uses: a quic.Transport and the socket
// under it (owned unless ClientConfig gave them), and the key log file.
type clientEndpoint struct {
	tr     *quic.Transport
	ownTr  bool // close tr on release
	ownUDP bool // and its socket
	keyLog *keyLog

	once sync.Once
	err  error
}

func newClientEndpoint(cfg ClientConfig) (*clientEndpoint, error) {
	kl, err := openKeyLog()
	if err != nil {
		return nil, err
	}
	tr, own, err := transportFor("ClientConfig", "", cfg.Transport, cfg.PacketConn)
	if err != nil {
		kl.Close()
		return nil, err
	}
	return &clientEndpoint{tr: tr, ownTr: own, ownUDP: own && cfg.PacketConn == nil, keyLog: kl}, nil
}

// release closes the transport it made (ending its goroutines) and the
// socket it bound, and the key log, once; later calls return the first
// result.
func (e *clientEndpoint) release() error {
	e.once.Do(func() {
		var err error
		if e.ownTr {
			err = closeTransport(e.tr, e.ownUDP)
		}
		if kerr := e.keyLog.Close(); err == nil {
			err = kerr
		}
		e.err = err
	})
	return e.err
}

// resolve looks host up (honouring ctx) and picks an address.
func resolve(ctx context.Context, host, port string) (*net.UDPAddr, error) {
	p, err := net.LookupPort("udp", port)
	if err != nil {
		return nil, fmt.Errorf("moqnative: bad port %q: %w", port, err)
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p))), nil
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("moqnative: resolving %s: %w", host, err)
	}
	if len(ips) == 0 {
		return nil, errors.New("moqnative: no address for " + host)
	}
	ip := ips[0].Unmap()
	for _, a := range ips { // prefer IPv4, as net.ResolveUDPAddr does
		if a.Unmap().Is4() {
			ip = a.Unmap()
			break
		}
	}
	return net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, uint16(p))), nil
}
