package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/web"
)

// devConfig is the web server on TCP at the relay's port: the watch page
// (--web, or --dev), the certificate fingerprint (with --dev, or with the
// generated certificate) and, with --dev, the qlog and mlog files, as
// moq-relay-ietf's --dev does.
//
// With the generated certificate the server speaks both plain HTTP and
// HTTPS on the one port (the first byte of a connection tells a TLS
// ClientHello from an HTTP request), so that http://localhost:4443/ works
// with nothing to click through: http://localhost is a secure context,
// where WebTransport is allowed, and the page pins the certificate by the
// hash at /fingerprint. With certificates from files (a CA's), plain HTTP
// requests are redirected to HTTPS.
//
// Trust: the web server only hands out public things (the page, its
// script, the certificate's hash, and the log files when asked for with
// --qlog-serve/--mlog-serve), so it authenticates nobody; what the page
// then does, it does over a WebTransport session, which the relay
// authorizes like any other (--auth-key: the page's ?token=). A
// connection's first byte is waited for at most sniffTimeout.
type devConfig struct {
	enabled   bool
	web       bool
	qlogServe bool
	mlogServe bool
}

func (d *devConfig) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&d.enabled, "dev", false, "serve HTTP(S) over TCP on the same port: the watch page, /fingerprint (hex SHA-256 of the certificate) and, with --qlog-serve/--mlog-serve, the log files")
	f.BoolVar(&d.web, "web", false, "serve the watch page over TCP on the same port (HTTPS; also plain HTTP, with /fingerprint, with the generated certificate); --dev implies it")
	f.BoolVar(&d.qlogServe, "qlog-serve", false, "with --dev, serve --qlog-dir's files at /qlog/{name}")
	f.BoolVar(&d.mlogServe, "mlog-serve", false, "with --dev, serve --mlog-dir's files at /mlog/{name}")
}

// webHandler serves the watch page and, with --dev, the dev routes.
// certDER returns the certificate served now (the generated one is
// renewed while the relay runs: see moqnative.Server.Fingerprint). With
// selfSigned (a generated certificate), /fingerprint is served with the
// page, --dev or not: the page served over plain HTTP pins the
// certificate by it, and without it never connected.
func webHandler(dev, selfSigned bool, certDER func() []byte, qlogDir, mlogDir string) http.Handler {
	mux := http.NewServeMux()
	page := web.Handler()
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /watch.js", page)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	switch {
	case dev:
		mux.Handle("/", devHandler(certDER, qlogDir, mlogDir))
	case selfSigned:
		mux.Handle("GET /fingerprint", devHandler(certDER, "", ""))
	}
	return mux
}

// devHandler serves the --dev routes: GET only, any origin. /fingerprint
// is the hash of the certificate certDER returns at each request: a
// generated certificate is renewed every few days, and a page that pins
// it must pin the one served when it connects.
func devHandler(certDER func() []byte, qlogDir, mlogDir string) http.Handler {
	serveDir := func(dir, suffix string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			name := r.PathValue("name")
			if name == "" || strings.ContainsAny(name, "/\\") || strings.HasPrefix(name, ".") {
				http.Error(w, "bad name", http.StatusForbidden)
				return
			}
			for _, candidate := range []string{name, name + suffix} {
				path := filepath.Join(dir, candidate)
				if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() {
					http.ServeFile(w, r, path)
					return
				}
			}
			http.NotFound(w, r)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /fingerprint", func(w http.ResponseWriter, _ *http.Request) {
		sum := sha256.Sum256(certDER())
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(hex.EncodeToString(sum[:])))
	})
	if qlogDir != "" {
		mux.HandleFunc("GET /qlog/{name}", serveDir(qlogDir, ".sqlog"))
	}
	if mlogDir != "" {
		mux.HandleFunc("GET /mlog/{name}", serveDir(mlogDir, ".mlog"))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		mux.ServeHTTP(w, r)
	})
}

// webIdleTimeout closes a keep-alive connection of the web server that
// has asked nothing for that long (without it, an idle connection held a
// file descriptor and a goroutine for good, as many as a client opened).
var webIdleTimeout = 30 * time.Second

// serveDev runs the web server on TCP at the relay's address until the
// returned stop is called.
func serveDev(d devConfig, addr net.Addr, certs []tls.Certificate, srv *moqnative.Server, qlogDir, mlogDir string, logger *slog.Logger) (func(), error) {
	if !d.enabled && !d.web {
		return func() {}, nil
	}
	selfSigned := srv.SelfSigned() != nil
	getCert := moqnative.CertificateChooser(certs)
	certDER := func() []byte { return certs[0].Certificate[0] }
	if selfSigned {
		// The one the relay serves now: it renews it.
		getCert = func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return &srv.SelfSigned().Certificate, nil }
		certDER = func() []byte { return srv.SelfSigned().Certificate.Certificate[0] }
	} else if len(certs) == 0 || len(certs[0].Certificate) == 0 {
		return nil, errors.New("--dev/--web: no certificate to serve HTTPS with")
	}
	if !d.qlogServe {
		qlogDir = ""
	}
	if !d.mlogServe {
		mlogDir = ""
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("--dev/--web: listening on TCP %s: %w", addr, err)
	}
	h := webHandler(d.enabled, selfSigned, certDER, qlogDir, mlogDir)
	var plain http.Handler = h
	if !selfSigned {
		plain = http.HandlerFunc(redirectHTTPS)
	}
	sn := newSniffer(ln)
	https := &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{GetCertificate: getCert, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       webIdleTimeout,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelDebug),
	}
	httpSrv := &http.Server{Handler: plain, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: webIdleTimeout,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelDebug)}
	var wg sync.WaitGroup
	wg.Go(sn.run)
	wg.Go(func() {
		if err := https.ServeTLS(sn.tls, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("web server (HTTPS)", "err", err)
		}
	})
	wg.Go(func() {
		if err := httpSrv.Serve(sn.plain); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("web server (HTTP)", "err", err)
		}
	})
	port := addr.(*net.UDPAddr).Port
	if selfSigned {
		logger.Info("watch page", "url", fmt.Sprintf("http://localhost:%d/", port))
	} else {
		logger.Info("watch page", "url", fmt.Sprintf("https://HOST:%d/ (a name of the certificate)", port))
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = https.Shutdown(ctx)
		_ = httpSrv.Shutdown(ctx)
		sn.close()
		wg.Wait()
	}, nil
}

// redirectHTTPS sends a plain HTTP request to the same URL over HTTPS.
func redirectHTTPS(w http.ResponseWriter, r *http.Request) {
	if r.Host == "" {
		http.Error(w, "use https://", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusMovedPermanently)
}

// sniffTimeout bounds the wait for a connection's first byte.
const sniffTimeout = 5 * time.Second

// sniffer splits one TCP listener in two by each connection's first byte:
// 0x16 (a TLS handshake record) goes to tls, anything else to plain.
type sniffer struct {
	ln         net.Listener
	tls, plain *chanListener
	done       chan struct{}
	wg         sync.WaitGroup // the per-connection sniffs
}

func newSniffer(ln net.Listener) *sniffer {
	done := make(chan struct{})
	return &sniffer{
		ln:    ln,
		tls:   newChanListener(ln.Addr(), done),
		plain: newChanListener(ln.Addr(), done),
		done:  done,
	}
}

// run accepts until the listener is closed.
func (s *sniffer) run() {
	defer s.wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Go(func() { s.route(c) })
	}
}

func (s *sniffer) route(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(sniffTimeout))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	if err != nil {
		_ = c.Close()
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	to := s.plain
	if first[0] == 0x16 {
		to = s.tls
	}
	select {
	case to.conns <- &peekedConn{Conn: c, r: br}:
	case <-to.closed:
		_ = c.Close()
	case <-s.done:
		_ = c.Close()
	}
}

// close stops accepting; run and the routes end.
func (s *sniffer) close() {
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	_ = s.ln.Close()
}

// chanListener is a net.Listener fed by the sniffer. Closing it (as
// http.Server.Shutdown does, which then waits for Serve to return) ends
// its Accept; the TCP listener is the sniffer's to close.
type chanListener struct {
	addr      net.Addr
	conns     chan net.Conn
	done      <-chan struct{} // the sniffer's
	closed    chan struct{}
	closeOnce sync.Once
}

func newChanListener(addr net.Addr, done <-chan struct{}) *chanListener {
	return &chanListener{addr: addr, conns: make(chan net.Conn), done: done, closed: make(chan struct{})}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.addr }

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
