package moqnative_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
)

// Dial a MoQT server (a relay) by URL: moqt:// is raw QUIC, https:// is
// WebTransport. The server here is a local one with a generated
// certificate, which the client pins by its fingerprint.
func ExampleDial() {
	ctx := context.Background()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan struct{})
	go func() { serveSessions(ctx, srv); close(served) }()
	defer func() { srv.Close(); <-served }() // serveSessions closes its sessions, then returns

	fp, _ := srv.Fingerprint()
	cfg := moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}}
	for _, scheme := range []string{"moqt", "https"} {
		d, err := moqnative.Dial(ctx, scheme+"://"+srv.Addr().String()+"/live", cfg)
		if err != nil {
			log.Fatal(err)
		}
		sess, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(d.Conn.Protocol(), d.Path)
		sess.Close()
		d.Close()
	}
	// Output:
	// quic /live
	// webtransport /live
}

// serveSessions is the server side of ExampleDial: it runs MoQT setup on
// every connection until the server closes (or ctx ends), each in a
// goroutine of its own so that a slow client holds up no other. A setup
// that fails is logged (a TLS client that is not MoQT, a refused path);
// the sessions set up are kept until they end, and closed when serving
// stops, after the setups under way are done. (A raw QUIC client sends its
// path in CLIENT_SETUP; Incoming.Path is WebTransport's.) relay.Server is
// the full form: metrics, GOAWAY on drain, the relay's own handlers.
func serveSessions(ctx context.Context, srv *moqnative.Server) {
	var (
		mu       sync.Mutex
		sessions = map[*moqtransport.Session]struct{}{}
		setups   sync.WaitGroup
	)
	defer func() {
		setups.Wait()
		mu.Lock()
		open := slices.Collect(maps.Keys(sessions))
		mu.Unlock()
		for _, sess := range open {
			sess.Close()
		}
	}()
	for {
		in, err := srv.Accept(ctx)
		if err != nil {
			return // moqnative.ErrServerClosed, or ctx's error
		}
		setups.Go(func() {
			sess, err := moqtransport.Accept(ctx, in.Conn, in.Path, nil)
			if err != nil {
				log.Printf("MoQT setup from %v failed: %v", in.RemoteAddr, err)
				return
			}
			mu.Lock()
			sessions[sess] = struct{}{}
			mu.Unlock()
			context.AfterFunc(sess.Context(), func() {
				mu.Lock()
				delete(sessions, sess)
				mu.Unlock()
			})
		})
	}
}

// Listen serves raw QUIC and WebTransport on one UDP port; Accept returns
// each connection, on which moqtransport.Accept runs MoQT setup. The QUIC
// configuration composes: here larger receive windows for high bit rates.
func ExampleListen() {
	ctx := context.Background()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{
		QUICConfig: &quic.Config{MaxStreamReceiveWindow: 16 << 20},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	fp, _ := srv.Fingerprint()
	go func() { // a client
		d, err := moqnative.Dial(ctx, "moqt://"+srv.Addr().String()+"/room?id=7",
			moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
		if err != nil {
			log.Fatal(err)
		}
		defer d.Close()
		if sess, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path}); err == nil {
			<-sess.Done() // until the server closes it
		}
	}()

	in, err := srv.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	sess, err := moqtransport.Accept(ctx, in.Conn, in.Path, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("session at", sess.Path())
	sess.Close()
	// Output: session at /room?id=7
}

// One UDP port for a server and its own outgoing connections, e.g. a
// relay that reaches another relay from its serving port (one NAT binding,
// one firewall rule): the server listens on a quic.Transport that Dial
// also uses.
func ExampleServerConfig_sharedSocket() {
	ctx := context.Background()
	udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		log.Fatal(err)
	}
	defer udp.Close()
	tr := &quic.Transport{Conn: udp}
	defer tr.Close()
	srv, err := moqnative.Listen("", moqnative.ServerConfig{Transport: tr})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()

	upstream, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer upstream.Close()
	fp, _ := upstream.Fingerprint()
	d, err := moqnative.Dial(ctx, "moqt://"+upstream.Addr().String()+"/", moqnative.ClientConfig{
		Transport: tr,
		TLS:       moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	in, err := upstream.Accept(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dialed from the serving port:", in.RemoteAddr.String() == srv.Addr().String())
	// Output: dialed from the serving port: true
}

// NewQUICConn turns a QUIC connection the program accepted itself (here
// from quic-go's own listener) into a MoQT connection. QUICConfig gives
// the QUIC settings MoQT needs.
func ExampleNewQUICConn() {
	ctx := context.Background()
	cert, _ := moqnative.GenerateSelfSigned()
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert.Certificate}, NextProtos: []string{moqnative.ALPNMoQT}}
	ln, err := quic.ListenAddr("127.0.0.1:0", tlsConf, moqnative.QUICConfig(nil))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()

	paths := make(chan string, 1)
	go func() {
		qc, err := ln.Accept(ctx)
		if err != nil {
			return
		}
		conn, err := moqnative.NewQUICConn(qc)
		if err != nil {
			qc.CloseWithError(0x3, err.Error()) // PROTOCOL_VIOLATION
			return
		}
		if sess, err := moqtransport.Accept(ctx, conn, "", nil); err == nil {
			paths <- sess.Path()
		}
	}()

	d, err := moqnative.Dial(ctx, "moqt://"+ln.Addr().String()+"/app",
		moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{cert.Fingerprint()}}})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	if _, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path}); err != nil {
		log.Fatal(err)
	}
	fmt.Println("server session at", <-paths)
	// Output: server session at /app
}

// WebTransportHandler mounts MoQT on an HTTP/3 server the program runs
// itself: /moq serves MoQT over WebTransport, and the mux's other routes
// (here /hello) are served from the same UDP port as before.
func ExampleWebTransportHandler() {
	ctx := context.Background()
	cert, _ := moqnative.GenerateSelfSigned()
	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "hello") })
	wts := &webtransport.Server{H3: &http3.Server{
		Handler:    mux,
		TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{cert.Certificate}}),
		QUICConfig: moqnative.QUICConfig(nil),
	}}
	paths := make(chan string, 1)
	mux.Handle("/moq", moqnative.WebTransportHandler(wts, func(in *moqnative.Incoming) {
		if sess, err := moqtransport.Accept(ctx, in.Conn, in.Path, nil); err == nil {
			paths <- sess.Path()
		}
	}))
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer udp.Close()
	go wts.Serve(udp)

	d, err := moqnative.Dial(ctx, "https://"+udp.LocalAddr().String()+"/moq",
		moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{cert.Fingerprint()}}})
	if err != nil {
		log.Fatal(err)
	}
	defer d.Close()
	defer wts.Close() // first: it closes the connections
	if _, err := moqtransport.Connect(ctx, d.Conn, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println("server session at", <-paths)
	// Output: server session at /moq
}

// QUICConfig keeps what the program sets and enforces what MoQT needs.
func ExampleQUICConfig() {
	c := moqnative.QUICConfig(&quic.Config{
		EnableDatagrams:        false,   // overridden: MoQT requires datagrams
		MaxStreamReceiveWindow: 8 << 20, // kept
	})
	fmt.Println(c.EnableDatagrams, c.MaxStreamReceiveWindow>>20, c.MaxIdleTimeout)
	// Output: true 8 30s
}
