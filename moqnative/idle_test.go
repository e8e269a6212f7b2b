package moqnative

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
)

// An HTTP/3 connection that carries no WebTransport session is closed by
// the server: QUIC keep-alives would otherwise hold it, and its goroutines
// on the server, for good. The clients are quic-go connections with ALPN
// h3 that ask for nothing, that made one request and keep the connection,
// and that leave the server no room for HTTP/3's control stream (then
// ServeQUICConn fails at once, and the server must not wait for the idle
// timeout, set to a minute there, to close it).
func TestHTTP3ConnectionWithoutSessionClosed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		idle   time.Duration
		maxUni int64 // the client's quic.Config.MaxIncomingUniStreams
		get    bool  // send a GET (answered 404) first
		code   http3.ErrCode
		reason string
	}{
		{name: "silent", idle: 300 * time.Millisecond, code: http3.ErrCodeNoError, reason: "idle timeout"},
		{name: "after a request", idle: 300 * time.Millisecond, get: true, code: http3.ErrCodeNoError, reason: "idle timeout"},
		{name: "no room for the control stream", idle: time.Minute, maxUni: -1, code: http3.ErrCodeGeneralProtocolError, reason: "cannot serve HTTP/3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			srv := startServer(t, ServerConfig{HTTP3IdleTimeout: tc.idle})
			tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{ALPNH3}}
			qconf := &quic.Config{EnableDatagrams: true, EnableStreamResetPartialDelivery: true, MaxIncomingUniStreams: tc.maxUni}
			c, err := loopbackTransport(t).Dial(ctx, srv.Addr(), tlsConf, qconf)
			if err != nil {
				t.Fatal(err)
			}
			if tc.get {
				h3 := (&http3.Transport{}).NewClientConn(c)
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://%s/", srv.Addr()), nil)
				rsp, err := h3.RoundTrip(req)
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				rsp.Body.Close()
				if rsp.StatusCode != http.StatusNotFound {
					t.Fatalf("GET: status %d, want 404", rsp.StatusCode)
				}
			}
			select {
			case <-c.Context().Done():
			case <-ctx.Done():
				t.Fatalf("the server kept an HTTP/3 connection without a session open (HTTP3IdleTimeout %v)", tc.idle)
			}
			var ae *quic.ApplicationError
			if err := context.Cause(c.Context()); !errors.As(err, &ae) || !ae.Remote || ae.ErrorCode != quic.ApplicationErrorCode(tc.code) || !strings.HasPrefix(ae.ErrorMessage, tc.reason) {
				t.Errorf("closed with %v, want the server's %v %q", err, tc.code, tc.reason)
			}
		})
	}
}

// A WebTransport session keeps its connection past HTTP3IdleTimeout
// however quiet it is: its CONNECT stream is a request in progress for as
// long as the session lasts.
func TestWebTransportSessionOutlivesHTTP3IdleTimeout(t *testing.T) {
	ctx := testCtx(t)
	const idle = 200 * time.Millisecond
	srv := startServer(t, ServerConfig{HTTP3IdleTimeout: idle})
	d := dial(t, ctx, fmt.Sprintf("https://%s/moq", srv.Addr()), pinned(srv))
	in := accept(t, ctx, srv)
	// Nothing is sent for five times the timeout; neither side may see
	// the session end.
	select {
	case <-d.Conn.Context().Done():
		t.Fatalf("client session ended while idle: %v", context.Cause(d.Conn.Context()))
	case <-in.Conn.Context().Done():
		t.Fatalf("server session ended while idle: %v", context.Cause(in.Conn.Context()))
	case <-time.After(5 * idle):
	}
	exchange(t, ctx, d.Conn, in.Conn, true)
}
