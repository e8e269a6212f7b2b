package moqnative

import (
	"crypto/tls"
	"fmt"
	"testing"
)

// notifyCache tells when a session ticket is stored.
type notifyCache struct {
	tls.ClientSessionCache
	put chan struct{}
}

func (c *notifyCache) Put(key string, cs *tls.ClientSessionState) {
	c.ClientSessionCache.Put(key, cs)
	select {
	case c.put <- struct{}{}:
	default:
	}
}

// didResume reports whether the TLS session of a Dialed connection was
// resumed from a session ticket.
func didResume(t *testing.T, d *Dialed) bool {
	t.Helper()
	switch c := d.Conn.(type) {
	case *quicConn:
		return c.c.ConnectionState().TLS.DidResume
	case *wtConn:
		return c.qconn.ConnectionState().TLS.DidResume
	}
	t.Fatalf("unknown connection type %T", d.Conn)
	return false
}

// TestSessionResumption: a client with a ClientTLS.SessionCache resumes
// its TLS session on its next Dial to the same server (the server sends a
// ticket on every connection), over both transports, and the certificate
// pin still holds for the resumed connection; without a cache every Dial
// makes a full handshake. A returning viewer then costs the server no
// signature.
func TestSessionResumption(t *testing.T) {
	for _, scheme := range []string{"moqt", "https"} {
		t.Run(scheme, func(t *testing.T) {
			ctx := testCtx(t)
			srv := startServer(t, ServerConfig{})
			url := fmt.Sprintf("%s://%s/", scheme, srv.Addr())
			cache := &notifyCache{ClientSessionCache: tls.NewLRUClientSessionCache(4), put: make(chan struct{}, 1)}
			cfg := pinned(srv)
			cfg.TLS.SessionCache = cache
			first := dial(t, ctx, url, cfg)
			accept(t, ctx, srv)
			if didResume(t, first) {
				t.Fatal("the first connection resumed a session")
			}
			// The ticket comes after the handshake.
			select {
			case <-cache.put:
			case <-ctx.Done():
				t.Fatal("the server sent no session ticket")
			}
			second := dial(t, ctx, url, cfg)
			accept(t, ctx, srv)
			if !didResume(t, second) {
				t.Error("the second connection did not resume its TLS session")
			}
			noCache := dial(t, ctx, url, pinned(srv))
			accept(t, ctx, srv)
			if didResume(t, noCache) {
				t.Error("a client without a session cache resumed")
			}
			// The pin is checked on a connection that would resume.
			wrong := cfg
			wrong.TLS.ServerCertificateHashes = [][32]byte{{1}}
			if d, err := Dial(ctx, url, wrong); err == nil {
				d.Close()
				t.Error("a resumed session passed a pin of another certificate")
			}
		})
	}
}
