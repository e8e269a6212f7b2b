package moqnative

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/moqtransport"
)

// A user's quic.Config: what MoQT needs is overridden, what the user set
// is kept, what they left zero gets moqnative's default, and their config
// is not modified.
func TestQUICConfigOverrides(t *testing.T) {
	var gotInfo bool
	user := &quic.Config{
		EnableDatagrams:                  false,
		EnableStreamResetPartialDelivery: false,
		Allow0RTT:                        true,
		MaxIncomingUniStreams:            5000,
		MaxIncomingStreams:               100,
		MaxStreamReceiveWindow:           8 << 20,
		GetConfigForClient: func(*quic.ClientInfo) (*quic.Config, error) {
			gotInfo = true
			return &quic.Config{EnableDatagrams: false, MaxConnectionReceiveWindow: 32 << 20}, nil
		},
	}
	c := mergeQUICConfig(user, quicConfig("", nil, nil, 8))
	if !c.EnableDatagrams || !c.EnableStreamResetPartialDelivery || c.Allow0RTT {
		t.Errorf("EnableDatagrams %v, EnableStreamResetPartialDelivery %v, Allow0RTT %v; want true, true, false",
			c.EnableDatagrams, c.EnableStreamResetPartialDelivery, c.Allow0RTT)
	}
	if c.MaxIncomingUniStreams != 8+h3UniStreams {
		t.Errorf("MaxIncomingUniStreams %d, want the moqnative config's 8 + %d", c.MaxIncomingUniStreams, h3UniStreams)
	}
	if c.MaxIncomingStreams != 100 || c.MaxStreamReceiveWindow != 8<<20 {
		t.Errorf("MaxIncomingStreams %d, MaxStreamReceiveWindow %d: the user's 100 and 8 MiB not kept", c.MaxIncomingStreams, c.MaxStreamReceiveWindow)
	}
	if c.MaxIdleTimeout != MaxIdleTimeout || c.KeepAlivePeriod != KeepAlivePeriod ||
		c.InitialStreamReceiveWindow != InitialStreamReceiveWindow || c.MaxConnectionReceiveWindow != MaxConnectionReceiveWindow {
		t.Errorf("zero fields not defaulted: %+v", c)
	}
	if user.EnableDatagrams || !user.Allow0RTT || user.MaxIncomingUniStreams != 5000 {
		t.Error("the user's config was modified")
	}
	per, err := c.GetConfigForClient(&quic.ClientInfo{})
	if err != nil || !gotInfo {
		t.Fatalf("GetConfigForClient: %v (user's called: %v)", err, gotInfo)
	}
	if !per.EnableDatagrams || per.MaxConnectionReceiveWindow != 32<<20 || per.MaxIncomingUniStreams != 8+h3UniStreams {
		t.Errorf("per-client config not merged: datagrams %v, window %d, uni %d", per.EnableDatagrams, per.MaxConnectionReceiveWindow, per.MaxIncomingUniStreams)
	}
	if QUICConfig(nil).MaxIncomingUniStreams != MaxIncomingUniStreams+h3UniStreams {
		t.Error("QUICConfig(nil) is not the default configuration")
	}
}

// The same over real connections, both transports: a server and a client
// given configs that disable datagrams still negotiate them, the user's
// window is the connection's, and the uni-stream limit is the moqnative
// config's.
func TestUserQUICConfigOnConnections(t *testing.T) {
	for _, scheme := range []string{"moqt", "https"} {
		t.Run(scheme, func(t *testing.T) {
			ctx := testCtx(t)
			bad := &quic.Config{EnableDatagrams: false, EnableStreamResetPartialDelivery: false, MaxIncomingUniStreams: 100}
			srv := startServer(t, ServerConfig{QUICConfig: bad, MaxIncomingUniStreams: 4})
			cfg := pinned(srv)
			cfg.QUICConfig = bad
			d := dial(t, ctx, fmt.Sprintf("%s://%s/", scheme, srv.Addr()), cfg)
			in := accept(t, ctx, srv)
			st := d.Conn.(interface{ ConnectionState() quic.ConnectionState }).ConnectionState()
			if !st.SupportsDatagrams.Local || !st.SupportsDatagrams.Remote {
				t.Errorf("datagrams %+v, want negotiated", st.SupportsDatagrams)
			}
			datagram(t, ctx, d.Conn, in.Conn, "dgram")
			qc, _ := QUICConn(d.Conn)
			opened := 0
			for ; opened <= 4+h3UniStreams; opened++ {
				if _, err := qc.OpenUniStream(); err != nil {
					break
				}
			}
			if opened < 4 || opened > 4+h3UniStreams {
				t.Errorf("the client could open %d unidirectional streams, want 4 (ServerConfig.MaxIncomingUniStreams, not the QUIC config's 100)", opened)
			}
		})
	}
}

// One socket shared: a quic.Transport serves a Server and dials another
// server, which sees the dial come from the first server's port. Neither
// Server.Close nor Dialed.Close closes the shared socket.
func TestSharedTransport(t *testing.T) {
	ctx := testCtx(t)
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	tr := &quic.Transport{Conn: udp}
	defer tr.Close()

	if _, err := Listen("127.0.0.1:0", ServerConfig{Transport: tr}); err == nil || !strings.Contains(err.Error(), "empty address") {
		t.Fatalf("Listen with an address and a Transport: %v, want an error saying to pass an empty address", err)
	}
	a, err := Listen("", ServerConfig{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	if a.Addr().String() != udp.LocalAddr().String() {
		t.Errorf("server address %s, want the shared socket's %s", a.Addr(), udp.LocalAddr())
	}
	b := startServer(t, ServerConfig{})

	for _, scheme := range []string{"moqt", "https"} {
		cfg := pinned(b)
		cfg.Transport = tr
		d := dial(t, ctx, fmt.Sprintf("%s://%s/up", scheme, b.Addr()), cfg)
		in := accept(t, ctx, b)
		if in.RemoteAddr.String() != udp.LocalAddr().String() {
			t.Errorf("%s: b sees the dial from %s, want the shared socket %s", scheme, in.RemoteAddr, udp.LocalAddr())
		}
		uniTransfer(t, ctx, d.Conn, in.Conn, "over the shared socket")
		if err := d.Close(); err != nil {
			t.Errorf("Dialed.Close: %v", err)
		}
	}
	// The server on the shared transport still accepts after the dials
	// ended, over both transports.
	for _, scheme := range []string{"moqt", "https"} {
		d := dial(t, ctx, fmt.Sprintf("%s://%s/down", scheme, a.Addr()), pinned(a))
		in := accept(t, ctx, a)
		uniTransfer(t, ctx, in.Conn, d.Conn, "to a client of the shared socket")
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Server.Close: %v", err)
	}
	if _, err := udp.WriteTo([]byte{0}, b.Addr()); err != nil {
		t.Errorf("the shared socket was closed with the server: %v", err)
	}
}

// ServerConfig.PacketConn and ClientConfig.PacketConn: the server listens
// on the given socket and leaves it open.
func TestPacketConn(t *testing.T) {
	ctx := testCtx(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	srv := startServer2(t, "", ServerConfig{PacketConn: pc})
	if srv.Addr().String() != pc.LocalAddr().String() {
		t.Errorf("server address %s, want %s", srv.Addr(), pc.LocalAddr())
	}
	cpc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer cpc.Close()
	cfg := pinned(srv)
	cfg.PacketConn = cpc
	d := dial(t, ctx, fmt.Sprintf("moqt://%s/", srv.Addr()), cfg)
	in := accept(t, ctx, srv)
	if in.RemoteAddr.String() != cpc.LocalAddr().String() {
		t.Errorf("the client dialed from %s, want its PacketConn %s", in.RemoteAddr, cpc.LocalAddr())
	}
	exchange(t, ctx, d.Conn, in.Conn, true)
	d.Close()
	srv.Close()
	for _, c := range []net.PacketConn{pc, cpc} {
		if _, err := c.WriteTo([]byte{0}, c.LocalAddr()); err != nil {
			t.Errorf("socket %s closed: %v", c.LocalAddr(), err)
		}
	}
}

func startServer2(t *testing.T, addr string, cfg ServerConfig) *Server {
	t.Helper()
	s, err := Listen(addr, cfg)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// NewQUICConn over connections a program accepted with quic-go itself:
// the right ALPN with datagrams works end to end; a wrong ALPN or no
// datagrams is refused with an error that says what is wrong.
func TestNewQUICConn(t *testing.T) {
	ctx := testCtx(t)
	ss, err := GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	// listen and rawDial run quic-go on transports the test closes, so
	// that every goroutine has ended when it returns.
	listen := func(alpn string, qc *quic.Config) *quic.Listener {
		tr := loopbackTransport(t)
		ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{ss.Certificate}, NextProtos: []string{alpn}}, qc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		return ln
	}
	rawDial := func(t *testing.T, addr net.Addr, alpn string) {
		tr := loopbackTransport(t)
		done := make(chan struct{})
		go func() {
			defer close(done)
			tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}}
			if c, err := tr.Dial(ctx, addr, tc, QUICConfig(nil)); err == nil {
				<-c.Context().Done()
			}
		}()
		t.Cleanup(func() { tr.Close(); <-done })
	}
	pin := ClientConfig{TLS: ClientTLS{ServerCertificateHashes: [][32]byte{ss.Fingerprint()}}}

	t.Run("moq-00", func(t *testing.T) {
		ln := listen(ALPNMoQT, QUICConfig(nil))
		d := dial(t, ctx, fmt.Sprintf("moqt://%s/", ln.Addr()), pin)
		qc, err := ln.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := NewQUICConn(qc)
		if err != nil {
			t.Fatalf("NewQUICConn: %v", err)
		}
		if got, ok := QUICConn(conn); !ok || got != qc || conn.Protocol() != moqtransport.ProtocolQUIC {
			t.Errorf("QUICConn: %v %v, protocol %v", got, ok, conn.Protocol())
		}
		exchange(t, ctx, d.Conn, conn, false)
	})

	t.Run("wrong ALPN", func(t *testing.T) {
		ln := listen("other", QUICConfig(nil))
		rawDial(t, ln.Addr(), "other")
		qc, err := ln.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer qc.CloseWithError(0, "")
		_, err = NewQUICConn(qc)
		if err == nil || !strings.Contains(err.Error(), `negotiated ALPN "other", not "moq-00"`) {
			t.Errorf("NewQUICConn on ALPN other: %v, want an error naming both ALPNs", err)
		}
	})

	t.Run("no datagrams", func(t *testing.T) {
		ln := listen(ALPNMoQT, &quic.Config{})
		rawDial(t, ln.Addr(), ALPNMoQT)
		qc, err := ln.Accept(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer qc.CloseWithError(0, "")
		_, err = NewQUICConn(qc)
		if err == nil || !strings.Contains(err.Error(), "EnableDatagrams") {
			t.Errorf("NewQUICConn without datagrams: %v, want an error naming EnableDatagrams", err)
		}
	})

	// Dial refuses a server that did not offer datagrams.
	t.Run("peer without datagrams", func(t *testing.T) {
		ln := listen(ALPNMoQT, &quic.Config{})
		_, err := Dial(ctx, fmt.Sprintf("moqt://%s/", ln.Addr()), pin)
		if err == nil || !strings.Contains(err.Error(), "did not negotiate QUIC datagrams") {
			t.Errorf("Dial to a server without datagrams: %v", err)
		}
	})
}

// NewWebTransportConn over a session the program dialed with
// webtransport-go itself, to a moqnative Server.
func TestNewWebTransportConn(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerConfig{})
	fp, _ := srv.Fingerprint()
	ct := ClientTLS{ServerCertificateHashes: [][32]byte{fp}}
	tc, err := ct.config("127.0.0.1", ALPNH3, nil)
	if err != nil {
		t.Fatal(err)
	}
	wt := &webtransport.Transport{TLSClientConfig: tc, QUICConfig: QUICConfig(nil)}
	defer wt.Close()
	_, sess, err := wt.Dial(ctx, fmt.Sprintf("https://%s/wt?x=1", srv.Addr()), nil)
	if err != nil {
		t.Fatal(err)
	}
	conn := NewWebTransportConn(sess)
	if conn.Protocol() != moqtransport.ProtocolWebTransport || conn.(interface{ RemoteAddr() net.Addr }).RemoteAddr().String() != srv.Addr().String() {
		t.Errorf("protocol %v", conn.Protocol())
	}
	if _, ok := QUICConn(conn); ok {
		t.Error("QUICConn reports a connection NewWebTransportConn does not know")
	}
	if st := conn.(interface{ ConnectionState() quic.ConnectionState }).ConnectionState(); st.TLS.NegotiatedProtocol != ALPNH3 {
		t.Errorf("ConnectionState ALPN %q", st.TLS.NegotiatedProtocol)
	}
	in := accept(t, ctx, srv)
	if in.Path != "/wt?x=1" {
		t.Errorf("path %q", in.Path)
	}
	// The server closes: webtransport-go's Dial closes the QUIC
	// connection as soon as the session ends, which can overtake a close
	// capsule the client sends.
	exchange(t, ctx, conn, in.Conn, false)
}

// mountMoQT runs a user's HTTP/3 server on loopback: a mux with GET
// /hello and WebTransportHandler on /moq, served by webtransport-go on a
// socket of its own, until the test ends.
func mountMoQT(t *testing.T) (addr string, incoming <-chan *Incoming, pin ClientConfig) {
	t.Helper()
	ss, err := GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello over h3") })
	wts := &webtransport.Server{H3: &http3.Server{
		Handler:    mux,
		TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{ss.Certificate}}),
		QUICConfig: QUICConfig(nil),
	}}
	in := make(chan *Incoming, 1)
	mux.Handle("/moq", WebTransportHandler(wts, func(i *Incoming) { in <- i }))
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); wts.Serve(udp) }()
	t.Cleanup(func() { wts.Close(); <-served; udp.Close() })
	return udp.LocalAddr().String(), in, ClientConfig{TLS: ClientTLS{ServerCertificateHashes: [][32]byte{ss.Fingerprint()}}}
}

func receive(t *testing.T, ctx context.Context, incoming <-chan *Incoming) *Incoming {
	t.Helper()
	select {
	case in := <-incoming:
		return in
	case <-ctx.Done():
		t.Fatal("no session reached the handler")
		return nil
	}
}

// WebTransportHandler on a user's own HTTP/3 server: a plain GET route and
// MoQT on another path, from the same UDP port; the session works both
// ways and either side can close it with a MoQT code.
func TestWebTransportHandler(t *testing.T) {
	for _, clientCloses := range []bool{true, false} {
		t.Run(fmt.Sprintf("clientCloses=%v", clientCloses), func(t *testing.T) {
			ctx := testCtx(t)
			addr, incoming, pin := mountMoQT(t)

			// The plain route, over HTTP/3 on the same port.
			tc, err := pin.TLS.config("127.0.0.1", ALPNH3, nil)
			if err != nil {
				t.Fatal(err)
			}
			h3 := &http3.Transport{TLSClientConfig: tc}
			defer h3.Close()
			client := &http.Client{Transport: h3}
			for path, want := range map[string]int{"/hello": 200, "/moq": http.StatusMethodNotAllowed} {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+path, nil)
				rsp, err := client.Do(req)
				if err != nil {
					t.Fatalf("GET %s: %v", path, err)
				}
				body, _ := io.ReadAll(rsp.Body)
				rsp.Body.Close()
				if rsp.StatusCode != want || (path == "/hello" && string(body) != "hello over h3") {
					t.Errorf("GET %s: %d %q, want %d", path, rsp.StatusCode, body, want)
				}
			}

			d := dial(t, ctx, "https://"+addr+"/moq?room=1", pin)
			in := receive(t, ctx, incoming)
			if in.Path != "/moq?room=1" || in.Authority != addr || in.Conn.Protocol() != moqtransport.ProtocolWebTransport {
				t.Errorf("Incoming path %q authority %q protocol %v", in.Path, in.Authority, in.Conn.Protocol())
			}
			if sqc, ok := QUICConn(in.Conn); !ok || sqc.LocalAddr().String() != addr || sqc.RemoteAddr().String() != in.RemoteAddr.String() {
				t.Errorf("QUICConn of the mounted session: ok %v; want the connection from %s to %s", ok, in.RemoteAddr, addr)
			}
			exchange(t, ctx, d.Conn, in.Conn, clientCloses)
		})
	}
}

// When the client's QUIC connection closes without a session close (a
// peer that just hangs up), a mounted session reports the connection's
// code and reason as the peer's, as a Server's session does, not an
// HTTP/3 error of its own.
func TestQUICCloseUnderSession(t *testing.T) {
	for _, server := range []string{"Server", "WebTransportHandler"} {
		t.Run(server, func(t *testing.T) {
			ctx := testCtx(t)
			var d *Dialed
			var in *Incoming
			if server == "Server" {
				srv := startServer(t, ServerConfig{})
				d = dial(t, ctx, fmt.Sprintf("https://%s/moq", srv.Addr()), pinned(srv))
				in = accept(t, ctx, srv)
			} else {
				addr, incoming, pin := mountMoQT(t)
				d = dial(t, ctx, "https://"+addr+"/moq", pin)
				in = receive(t, ctx, incoming)
			}
			qc, _ := QUICConn(d.Conn)
			qc.CloseWithError(0x10c, "hanging up")
			want := moqtransport.ConnError{Code: 0x10c, Reason: "hanging up", Remote: true}
			_, err := in.Conn.AcceptStream(ctx)
			var ce *moqtransport.ConnError
			if !errors.As(err, &ce) || *ce != want {
				t.Errorf("AcceptStream: %v, want %+v", err, want)
			}
			_, err = in.Conn.AcceptUniStream(ctx)
			if !errors.As(err, &ce) || *ce != want {
				t.Errorf("AcceptUniStream: %v, want %+v", err, want)
			}
		})
	}
}

// A raw QUIC client that does not negotiate datagrams is refused by the
// Server with PROTOCOL_VIOLATION (draft-14 §3.1), and never reaches Accept.
func TestServerRefusesNoDatagrams(t *testing.T) {
	ctx := testCtx(t)
	srv := startServer(t, ServerConfig{})
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPNMoQT}}
	c, err := loopbackTransport(t).Dial(ctx, srv.Addr(), tc, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Context().Done():
	case <-ctx.Done():
		t.Fatal("the server kept a connection without datagrams")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(c.Context()); !errors.As(err, &ae) || ae.ErrorCode != codeProtocolViolation || !ae.Remote {
		t.Errorf("closed with %v, want the server's PROTOCOL_VIOLATION (0x3)", err)
	}
	// A refused connection is closed instead of queued for Accept.
	if n := len(srv.incoming); n != 0 {
		t.Errorf("%d connections queued for Accept", n)
	}
}

// loopbackTransport is a quic.Transport on a loopback socket; closing it at
// the end of the test closes its connections and ends its goroutines.
func loopbackTransport(t *testing.T) *quic.Transport {
	t.Helper()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: udp}
	t.Cleanup(func() { tr.Close(); udp.Close() })
	return tr
}
