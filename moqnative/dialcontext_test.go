package moqnative

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"
)

// silentWebTransport runs, on loopback, a WebTransport server whose
// handler never answers: it holds each request until the request ends
// (the client gives up) or the server stops. reached receives a value per
// request the handler got. stop closes the server; it is idempotent and
// runs at the end of the test too.
func silentWebTransport(t *testing.T) (addr string, pin ClientConfig, reached <-chan struct{}, stop func()) {
	t.Helper()
	ss, err := GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan struct{}, 16)
	release := make(chan struct{})
	wts := &webtransport.Server{H3: &http3.Server{
		Handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			select {
			case got <- struct{}{}:
			default:
			}
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}),
		TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{ss.Certificate}}),
		QUICConfig: QUICConfig(nil),
	}}
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); wts.Serve(udp) }()
	var once sync.Once
	stop = func() {
		once.Do(func() { close(release); wts.Close(); <-served; udp.Close() })
	}
	t.Cleanup(stop)
	return udp.LocalAddr().String(), ClientConfig{TLS: ClientTLS{ServerCertificateHashes: [][32]byte{ss.Fingerprint()}}}, got, stop
}

// Dial over WebTransport gives up when its context ends while the server
// sits on the CONNECT request: webtransport-go waits for the response
// without a deadline, and keep-alives keep the connection open, so
// without Dial's own watch it would wait forever.
func TestDialWebTransportHonoursContext(t *testing.T) {
	addr, pin, reached, stop := silentWebTransport(t)
	ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		d, err := Dial(ctx, "https://"+addr+"/moq", pin)
		if err == nil {
			d.Close()
		}
		errc <- err
	}()
	var err error
	select {
	case err = <-errc:
	case <-time.After(2 * time.Second):
		stop() // ends the wait, so that the Dial goroutine ends with the test
		<-errc
		t.Fatal("Dial still waiting for the CONNECT response 2 s after its 300 ms context began")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Dial: %v, want an error wrapping context.DeadlineExceeded", err)
	}
	select {
	case <-reached:
	default:
		t.Error("the CONNECT request never reached the handler: Dial gave up before the wait this test is about")
	}
}
