package moqnative

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A Server's generated certificate is renewed once less than half its
// validity is left, by the next handshake, once however many handshakes
// come at the same time; the new certificate is valid now, Fingerprint
// and SelfSigned report it, and a client pinning it connects. The clock
// starts six days in the past (the certificate is made then) and moves to
// the present: four of its ten days are left.
func TestSelfSignedRenewed(t *testing.T) {
	var offset atomic.Int64 // added to the real time
	offset.Store(int64(-6 * 24 * time.Hour))
	timeNow = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	t.Cleanup(func() { timeNow = time.Now }) // registered first: runs after the server has closed
	var logs lockedBuffer
	srv := startServer(t, ServerConfig{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	old, _ := srv.Fingerprint()
	if again, _ := srv.Fingerprint(); again != old {
		t.Fatal("the certificate was renewed with most of its validity left")
	}

	offset.Store(0)
	ctx := testCtx(t)
	const clients = 4
	served := make(chan *x509.Certificate, clients)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			d, err := Dial(ctx, fmt.Sprintf("moqt://%s/", srv.Addr()), ClientConfig{TLS: ClientTLS{InsecureSkipVerify: true}})
			if err != nil {
				t.Errorf("Dial: %v", err)
				return
			}
			defer d.Close()
			qc, _ := QUICConn(d.Conn)
			served <- qc.ConnectionState().TLS.PeerCertificates[0]
		})
	}
	wg.Wait()
	close(served)
	fp, _ := srv.Fingerprint()
	if fp == old {
		t.Fatal("Fingerprint still reports the certificate made six days ago")
	}
	if ss := srv.SelfSigned(); ss.Fingerprint() != fp {
		t.Error("SelfSigned and Fingerprint disagree")
	}
	for leaf := range served {
		if sha256.Sum256(leaf.Raw) != fp {
			t.Errorf("a handshake got the certificate valid until %v, not the one Fingerprint reports", leaf.NotAfter)
		}
		if now := time.Now(); now.Before(leaf.NotBefore) || leaf.NotAfter.Sub(now) < SelfSignedValidity-time.Hour {
			t.Errorf("served certificate valid %v to %v, want a fresh one valid now", leaf.NotBefore, leaf.NotAfter)
		}
	}
	if n := strings.Count(logs.String(), "renewed the self-signed certificate"); n != 1 {
		t.Errorf("%d renewals logged, want 1:\n%s", n, logs.String())
	}
	d := dial(t, ctx, fmt.Sprintf("moqt://%s/", srv.Addr()), pinned(srv))
	d.Close()
}
