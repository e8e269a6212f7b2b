package eyevinn

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"
	"github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/interop/internal/harness"
)

// Setup message types and parameters (draft-14 §9.3).
const (
	typeClientSetup     = 0x20
	typeServerSetup     = 0x21
	paramPath           = 0x01
	paramMaxRequestID   = 0x02
	paramAuthority      = 0x05
	alertNoApplProtocol = 0x100 + 120 // QUIC CRYPTO_ERROR for TLS no_application_protocol
)

// rawStream is the control stream of a raw QUIC connection or of a
// WebTransport session.
type rawStream interface {
	io.ReadWriter
	SetReadDeadline(time.Time) error
}

// appendSetup appends CLIENT_SETUP (versions, a PATH when path is not nil,
// MAX_REQUEST_ID 10) or, with client false, SERVER_SETUP (versions[0],
// MAX_REQUEST_ID 10).
func appendSetup(b []byte, client bool, versions []uint64, path *string) []byte {
	var body []byte
	typ := uint64(typeServerSetup)
	if client {
		typ = typeClientSetup
		body = quicvarint.Append(body, uint64(len(versions)))
		for _, v := range versions {
			body = quicvarint.Append(body, v)
		}
	} else {
		body = quicvarint.Append(body, versions[0])
	}
	n := uint64(1)
	if path != nil {
		n++
	}
	body = quicvarint.Append(body, n)
	if path != nil {
		body = quicvarint.Append(body, paramPath)
		body = quicvarint.Append(body, uint64(len(*path)))
		body = append(body, *path...)
	}
	body = quicvarint.Append(body, paramMaxRequestID)
	body = quicvarint.Append(body, 10)
	b = quicvarint.Append(b, typ)
	b = binary.BigEndian.AppendUint16(b, uint16(len(body)))
	return append(b, body...)
}

// setupMsg is a parsed CLIENT_SETUP or SERVER_SETUP.
type setupMsg struct {
	typ uint64
	// versions are the offered versions (CLIENT_SETUP) or the selected
	// one (SERVER_SETUP).
	versions []uint64
	// params maps each parameter type to its value: the varint of an even
	// type, the bytes of an odd one (§1.4.2 Key-Value-Pair).
	params map[uint64]any
}

// readSetup reads one setup message.
func readSetup(r io.Reader) (setupMsg, error) {
	m := setupMsg{params: map[uint64]any{}}
	var err error
	if m.typ, err = quicvarint.Read(quicvarint.NewReader(r)); err != nil {
		return m, err
	}
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return m, err
	}
	body := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return m, err
	}
	next := func() uint64 {
		if err != nil {
			return 0
		}
		v, n, perr := quicvarint.Parse(body)
		body, err = body[n:], perr
		return v
	}
	switch m.typ {
	case typeServerSetup:
		m.versions = []uint64{next()}
	case typeClientSetup:
		for n := next(); n > 0 && err == nil; n-- {
			m.versions = append(m.versions, next())
		}
	default:
		return m, fmt.Errorf("message type 0x%x is not a setup message", m.typ)
	}
	for n := next(); n > 0 && err == nil; n-- {
		typ := next()
		if typ%2 == 0 {
			m.params[typ] = next()
			continue
		}
		l := next()
		if err == nil && l > uint64(len(body)) {
			err = io.ErrUnexpectedEOF
		}
		if err == nil {
			m.params[typ], body = string(body[:l]), body[l:]
		}
	}
	return m, err
}

// closeCode returns the application error code a connection or a
// WebTransport session was closed with, and whether the peer closed it.
func closeCode(err error) (code uint64, remote, ok bool) {
	var qe *quic.ApplicationError
	if errors.As(err, &qe) {
		return uint64(qe.ErrorCode), qe.Remote, true
	}
	var we *webtransport.SessionError
	if errors.As(err, &we) {
		return uint64(we.ErrorCode), we.Remote, true
	}
	return 0, false, false
}

// setupOutcome is how a server answered a hand-written CLIENT_SETUP.
type setupOutcome struct {
	selected  uint64 // SERVER_SETUP's version; 0 without SERVER_SETUP
	closed    bool   // the server closed the session
	code      uint64 // ... with this code
	readErr   error  // why no SERVER_SETUP was read
	transport string
}

// rawSetup connects to addr over transport, sends CLIENT_SETUP offering
// versions (with PATH "/" over raw QUIC) on the control stream, and
// reads the answer for up to wait.
func rawSetup(t *testing.T, ctx context.Context, addr net.Addr, transport string, versions []uint64, wait time.Duration) setupOutcome {
	t.Helper()
	out := setupOutcome{transport: transport}
	var str rawStream
	var path *string
	switch transport {
	case quicT:
		conn, err := quic.DialAddr(ctx, addr.String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpnDraft14}},
			&quic.Config{EnableDatagrams: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
		s, err := conn.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		str = s
		p := "/"
		path = &p
	case wtT:
		d := &webtransport.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
		_, sess, err := d.Dial(ctx, fmt.Sprintf("https://%s/", addr), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sess.CloseWithError(0, "") })
		s, err := sess.OpenStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		str = s
	}
	if _, err := str.Write(appendSetup(nil, true, versions, path)); err != nil {
		t.Fatal(err)
	}
	_ = str.SetReadDeadline(time.Now().Add(wait))
	m, err := readSetup(str)
	switch {
	case err == nil && m.typ == typeServerSetup:
		out.selected = m.versions[0]
	case err == nil:
		out.readErr = fmt.Errorf("got message type 0x%x, want SERVER_SETUP", m.typ)
	default:
		out.readErr = err
		if code, remote, ok := closeCode(err); ok && remote {
			out.closed, out.code = true, code
		}
	}
	return out
}

// TestVersionSelection (case 4): version negotiation with a peer that
// speaks draft-14 and draft-16. In band (draft-14 §9.3.1) a server MUST
// pick a version the client offered, or close the session with
// VERSION_NEGOTIATION_FAILED; draft-16 moves the choice to ALPN ("moqt-16"
// against draft-14's "moq-00").
func TestVersionSelection(t *testing.T) {
	t.Parallel()
	bins := harness.MustBuild(t)

	// moq-relay picks draft-14 from a CLIENT_SETUP that offers draft-16
	// first, and closes with VERSION_NEGOTIATION_FAILED when draft-14 is
	// not offered.
	for _, tr := range transports {
		t.Run("moq-relay/setup-offers-16-and-14/"+tr, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 10*time.Second)
			relay := harness.StartRelay(t, bins)
			out := rawSetup(t, ctx, relay.Addr, tr, []uint64{versionDraft16, versionDraft14}, 5*time.Second)
			if out.selected != versionDraft14 {
				t.Fatalf("%+v, want SERVER_SETUP selecting 0x%x", out, versionDraft14)
			}
		})
		t.Run("moq-relay/setup-offers-16-only/"+tr, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 10*time.Second)
			relay := harness.StartRelay(t, bins)
			out := rawSetup(t, ctx, relay.Addr, tr, []uint64{versionDraft16}, 5*time.Second)
			if !out.closed || out.code != codeVersionNegotiationFailed {
				t.Fatalf("%+v, want the session closed with VERSION_NEGOTIATION_FAILED (0x15)", out)
			}
		})
	}

	// An Eyevinn client that offers both ALPNs gets moq-00, and so a
	// draft-14 session.
	t.Run("moq-relay/alpn-offers-moqt-16-and-moq-00", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 10*time.Second)
		relay := harness.StartRelay(t, bins)
		p := connect(t, ctx, "eyevinn", relay.Addr, quicT, peerConfig{dialConfig: dialConfig{alpn: []string{alpnDraft16, alpnDraft14}}})
		if alpn := p.conn.NegotiatedALPN(); alpn != alpnDraft14 {
			t.Fatalf("ALPN %q, want %q", alpn, alpnDraft14)
		}
		if err := p.sess.Announce(ctx, []string{"v"}); err != nil {
			t.Fatalf("PUBLISH_NAMESPACE on the draft-14 session: %v", err)
		}
	})

	// With only draft-16's ALPN there is no common protocol: the TLS
	// handshake fails (no_application_protocol) before any MoQT message.
	t.Run("moq-relay/alpn-offers-moqt-16-only", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 10*time.Second)
		relay := harness.StartRelay(t, bins)
		_, err := dial(ctx, relay.Addr, quicT, dialConfig{alpn: []string{alpnDraft16}})
		var te *quic.TransportError
		if !errors.As(err, &te) || uint64(te.ErrorCode) != alertNoApplProtocol {
			t.Fatalf("dial: %v, want CRYPTO_ERROR 0x178 (TLS no_application_protocol)", err)
		}
	})

	// Over WebTransport draft-14 has no subprotocol: an Eyevinn client
	// offering "moqt-16" and "moq-00" in WT-Available-Protocols gets no
	// WT-Protocol back and negotiates draft-14 in band.
	t.Run("moq-relay/wt-protocols-moqt-16-and-moq-00", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 10*time.Second)
		relay := harness.StartRelay(t, bins)
		offer := []string{alpnDraft16, alpnDraft14}
		p := connect(t, ctx, "eyevinn", relay.Addr, wtT, peerConfig{dialConfig: dialConfig{wtProtocols: offer}, protocols: offer})
		if err := p.sess.Announce(ctx, []string{"v"}); err != nil {
			t.Fatalf("PUBLISH_NAMESPACE on the draft-14 session: %v", err)
		}
	})

	// moq-clock offers draft-14 alone, and closes the session with
	// VERSION_NEGOTIATION_FAILED when the server selects a version it
	// did not offer.
	for _, tr := range transports {
		t.Run("moq-clock/server-selects-16/"+tr, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 10*time.Second)
			type result struct {
				offered []uint64
				err     error
			}
			results := make(chan result, 1)
			serve := func(ctx context.Context, accept func(context.Context) (rawStream, error), done <-chan struct{}, cause func() error) {
				var r result
				defer func() { results <- r }()
				str, err := accept(ctx)
				if err != nil {
					r.err = err
					return
				}
				m, err := readSetup(str)
				if r.offered, r.err = m.versions, err; err != nil || m.typ != typeClientSetup {
					return
				}
				if _, r.err = str.Write(appendSetup(nil, false, []uint64{versionDraft16}, nil)); r.err != nil {
					return
				}
				select {
				case <-done:
					r.err = cause()
				case <-ctx.Done():
					r.err = ctx.Err()
				}
			}
			addr := listen(t,
				func(ctx context.Context, conn *quic.Conn) {
					serve(ctx, func(ctx context.Context) (rawStream, error) { return conn.AcceptStream(ctx) },
						conn.Context().Done(), func() error { return context.Cause(conn.Context()) })
				},
				func(ctx context.Context, sess *webtransport.Session) {
					serve(ctx, func(ctx context.Context) (rawStream, error) { return sess.AcceptStream(ctx) },
						sess.Context().Done(), func() error {
							// The session's context carries no cause: a
							// stream read returns the close error.
							str, err := sess.AcceptStream(context.Background())
							if err == nil {
								_, err = str.Read(make([]byte, 1))
							}
							return err
						})
				})
			url := fmt.Sprintf("moqt://%s/", addr)
			if tr == wtT {
				url = fmt.Sprintf("https://%s/", addr)
			}
			clk := harness.Clock(t, bins, url)
			var r result
			select {
			case r = <-results:
			case <-ctx.Done():
				t.Fatal("the fake server saw no session end")
			}
			if !slices.Equal(r.offered, []uint64{versionDraft14}) {
				t.Errorf("moq-clock offered %#x, want [0x%x]", r.offered, versionDraft14)
			}
			if code, remote, ok := closeCode(r.err); !ok || !remote || code != codeVersionNegotiationFailed {
				t.Errorf("the session ended with %v, want moq-clock to close it with VERSION_NEGOTIATION_FAILED (0x15)", r.err)
			}
			if err := clk.Wait(ctx); err == nil {
				t.Error("moq-clock exited 0, want an error")
			} else if !strings.Contains(clk.Stderr(), "VERSION_NEGOTIATION_FAILED") {
				t.Errorf("moq-clock's error does not name VERSION_NEGOTIATION_FAILED:\n%s", clk.Stderr())
			}
		})
	}

	// The same two CLIENT_SETUPs against an Eyevinn server endpoint.
	for _, tr := range transports {
		t.Run("eyevinn-server/setup-offers-16-and-14/"+tr, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 10*time.Second)
			srv := startServer(t, peerConfig{})
			out := rawSetup(t, ctx, srv.Addr, tr, []uint64{versionDraft16, versionDraft14}, 5*time.Second)
			if out.selected != versionDraft14 {
				t.Fatalf("%+v, want SERVER_SETUP selecting 0x%x", out, versionDraft14)
			}
		})
		t.Run("eyevinn-server/setup-offers-16-only/"+tr, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 10*time.Second)
			srv := startServer(t, peerConfig{})
			out := rawSetup(t, ctx, srv.Addr, tr, []uint64{versionDraft16}, 1500*time.Millisecond)
			if out.closed && out.code == codeVersionNegotiationFailed {
				return
			}
			var runErr error
			select {
			case runErr = <-srv.runErrs:
			case <-ctx.Done():
			}
			if !out.closed && errors.Is(out.readErr, os.ErrDeadlineExceeded) && runErr != nil && strings.Contains(runErr.Error(), "incompatible versions") {
				deviation(t, "E2", "Eyevinn's setup failed (%v) but it left the session open: no VERSION_NEGOTIATION_FAILED in %v", runErr, 1500*time.Millisecond)
			}
			t.Fatalf("%+v (Eyevinn: %v), want the session closed with VERSION_NEGOTIATION_FAILED (0x15)", out, runErr)
		})
	}
}

// TestEyevinnClientSetup reads the CLIENT_SETUP an Eyevinn client sends to
// moqt://127.0.0.1:port (raw QUIC) and https://127.0.0.1:port/
// (WebTransport), as moq-relay receives it: it offers draft-14 and grants
// MAX_REQUEST_ID; over raw QUIC it sends PATH (the URL's empty
// path-abempty) and must send AUTHORITY (§9.3.2.1, §9.3.2.2); over
// WebTransport it sends neither.
func TestEyevinnClientSetup(t *testing.T) {
	t.Parallel()
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 10*time.Second)
			setups := make(chan setupMsg, 1)
			serve := func(ctx context.Context, str rawStream, err error) {
				if err != nil {
					return
				}
				m, err := readSetup(str)
				if err != nil {
					return
				}
				setups <- m
				_, _ = str.Write(appendSetup(nil, false, []uint64{versionDraft14}, nil))
				<-ctx.Done()
			}
			addr := listen(t,
				func(ctx context.Context, conn *quic.Conn) {
					str, err := conn.AcceptStream(ctx)
					serve(ctx, str, err)
				},
				func(ctx context.Context, sess *webtransport.Session) {
					str, err := sess.AcceptStream(ctx)
					serve(ctx, str, err)
				})
			p := connect(t, ctx, "eyevinn", addr, tr, peerConfig{})
			var m setupMsg
			select {
			case m = <-setups:
			case <-ctx.Done():
				t.Fatal("no CLIENT_SETUP")
			}
			if !p.alive() {
				t.Error("the Eyevinn session ended after SERVER_SETUP")
			}
			if m.typ != typeClientSetup || !slices.Equal(m.versions, []uint64{versionDraft14}) {
				t.Errorf("type 0x%x versions %#x, want CLIENT_SETUP offering [0x%x]", m.typ, m.versions, versionDraft14)
			}
			if v, ok := m.params[paramMaxRequestID].(uint64); !ok || v != 100 {
				t.Errorf("MAX_REQUEST_ID %v, want 100 (Session.InitialMaxRequestID)", m.params[paramMaxRequestID])
			}
			path, hasPath := m.params[paramPath]
			authority, hasAuthority := m.params[paramAuthority]
			if tr == wtT {
				if hasPath || hasAuthority {
					t.Errorf("PATH %q AUTHORITY %q over WebTransport, want neither", path, authority)
				}
				return
			}
			if !hasPath || path != "" {
				t.Errorf("PATH %q (sent: %v), want the URL's empty path", path, hasPath)
			}
			if !hasAuthority {
				deviation(t, "E3", "no AUTHORITY parameter over raw QUIC (parameters: %v)", m.params)
			}
			if authority != addr.String() {
				t.Errorf("AUTHORITY %q, want %q", authority, addr)
			}
		})
	}
}
