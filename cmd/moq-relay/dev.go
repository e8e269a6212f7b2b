package main

import (
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
	"time"

	"github.com/spf13/pflag"

	"github.com/moqgo/moq/moqnative"
)

// devConfig is the --dev web server: HTTPS over TCP on the relay's port,
// serving the certificate fingerprint and, when asked, the qlog and mlog
// files, as moq-relay-ietf's --dev does.
type devConfig struct {
	enabled   bool
	qlogServe bool
	mlogServe bool
}

func (d *devConfig) addFlags(f *pflag.FlagSet) {
	f.BoolVar(&d.enabled, "dev", false, "serve HTTPS over TCP on the same port: /fingerprint (hex SHA-256 of the certificate) and, with --qlog-serve/--mlog-serve, the log files")
	f.BoolVar(&d.qlogServe, "qlog-serve", false, "with --dev, serve --qlog-dir's files at /qlog/{name}")
	f.BoolVar(&d.mlogServe, "mlog-serve", false, "with --dev, serve --mlog-dir's files at /mlog/{name}")
}

// devHandler serves the --dev routes: GET only, any origin.
func devHandler(certDER []byte, qlogDir, mlogDir string) http.Handler {
	sum := sha256.Sum256(certDER)
	fingerprint := hex.EncodeToString(sum[:])
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
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(fingerprint))
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

// serveDev runs the --dev server on TCP at the relay's address until the
// returned stop is called.
func serveDev(d devConfig, addr net.Addr, certs []tls.Certificate, srv *moqnative.Server, qlogDir, mlogDir string, logger *slog.Logger) (func(), error) {
	if !d.enabled {
		return func() {}, nil
	}
	if ss := srv.SelfSigned(); ss != nil {
		certs = []tls.Certificate{ss.Certificate}
	}
	if len(certs) == 0 || len(certs[0].Certificate) == 0 {
		return nil, errors.New("--dev: no certificate to serve HTTPS with")
	}
	if !d.qlogServe {
		qlogDir = ""
	}
	if !d.mlogServe {
		mlogDir = ""
	}
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		return nil, fmt.Errorf("--dev: listening on TCP %s: %w", addr, err)
	}
	hs := &http.Server{
		Handler:           devHandler(certs[0].Certificate[0], qlogDir, mlogDir),
		TLSConfig:         &tls.Config{GetCertificate: moqnative.CertificateChooser(certs), MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 5 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("dev web server", "err", err)
		}
	}()
	logger.Info("dev web server", "url", "https://"+ln.Addr().String()+"/fingerprint")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		<-done
	}, nil
}
