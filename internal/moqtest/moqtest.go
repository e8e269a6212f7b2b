// Package moqtest holds what the binaries' tests share about MoQT
// endpoints: a server on loopback that serves sessions with a Handler
// (a stand-in relay for clients under test).
package moqtest

import (
	"context"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
)

// Server is a loopback moqnative.Server whose sessions Serve runs.
type Server struct {
	*moqnative.Server
	// URL is the server's raw QUIC URL with the root path:
	// moqt://127.0.0.1:port/.
	URL string
	// Fingerprint is the hex SHA-256 of its generated certificate, for a
	// client's --fingerprint.
	Fingerprint string
}

// Serve listens on 127.0.0.1 with cfg (its zero value generates a
// certificate) and runs a MoQT session with h on every connection, raw
// QUIC or WebTransport, until the test ends; then it closes the sessions
// and the server and waits for every goroutine it started.
func Serve(t testing.TB, cfg moqnative.ServerConfig, h moqtransport.Handler) *Server {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			in, err := srv.Accept(ctx)
			if err != nil {
				return
			}
			wg.Go(func() {
				s, err := moqtransport.Accept(ctx, in.Conn, in.Path, &moqtransport.Config{Handler: h})
				if err != nil {
					return
				}
				select {
				case <-s.Done():
				case <-ctx.Done():
				}
				_ = s.Close()
			})
		}
	})
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		wg.Wait()
	})
	fp, _ := srv.Fingerprint()
	return &Server{Server: srv, URL: "moqt://" + srv.Addr().String() + "/", Fingerprint: hex.EncodeToString(fp[:])}
}
