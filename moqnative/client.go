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
	closeFn func() // closes Conn with NO_ERROR
	done    chan struct{}
}

// Close closes the connection with NO_ERROR if it is still open, and
// releases the UDP socket, the QUIC transport and the key log file Dial
// created. It waits for every goroutine Dial started.
func (d *Dialed) Close() error {
	d.closeFn()
	<-d.done
	return d.ep.release()
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
	ep, err := newClientEndpoint()
	if err != nil {
		return nil, err
	}
	tlsConf, err := cfg.TLS.config(u.Hostname(), alpn, ep.keyLog.writer())
	if err != nil {
		ep.release()
		return nil, err
	}
	qconn, err := ep.tr.Dial(ctx, raddr, tlsConf, quicConfig(cfg.QlogDir, logger, cfg.MaxIncomingUniStreams))
	if err != nil {
		ep.release()
		return nil, fmt.Errorf("moqnative: dialing %s: %w", u.Redacted(), err)
	}
	d := &Dialed{Path: path, Authority: authority, ep: ep, done: make(chan struct{})}

	if alpn == ALPNMoQT {
		d.Conn = &quicConn{c: qconn}
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
	rsp, sess, err := cc.Dial(ctx, u.String(), nil)
	if err != nil {
		qconn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), "")
		wtt.Close()
		ep.release()
		if rsp != nil {
			return nil, fmt.Errorf("moqnative: WebTransport request to %s refused: %s", u.Redacted(), rsp.Status)
		}
		return nil, fmt.Errorf("moqnative: WebTransport session to %s: %w", u.Redacted(), err)
	}
	wc := newWTConn(sess, qconn)
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

// clientEndpoint is what one Dial owns: a UDP socket, the quic.Transport
// on it and the key log file.
type clientEndpoint struct {
	udp    *net.UDPConn
	tr     *quic.Transport
	keyLog *keyLog

	once sync.Once
	err  error
}

func newClientEndpoint() (*clientEndpoint, error) {
	kl, err := openKeyLog()
	if err != nil {
		return nil, err
	}
	udp, err := net.ListenUDP("udp", nil)
	if err != nil {
		kl.Close()
		return nil, fmt.Errorf("moqnative: %w", err)
	}
	return &clientEndpoint{udp: udp, tr: &quic.Transport{Conn: udp}, keyLog: kl}, nil
}

// release closes the transport (ending its goroutines), the socket and the
// key log, once; later calls return the first result.
func (e *clientEndpoint) release() error {
	e.once.Do(func() {
		err := e.tr.Close()
		if uerr := e.udp.Close(); err == nil {
			err = uerr
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
