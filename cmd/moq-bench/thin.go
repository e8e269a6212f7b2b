package main

// Thin subscribers: the cheapest receiver that still speaks draft-14, so
// that a run measures the relay (or the raw origin), not the bench's own
// clients. A thin subscriber is a raw quic-go connection. Through a relay
// it does the MoQT handshake itself on the control stream (CLIENT_SETUP,
// SERVER_SETUP, SUBSCRIBE, SUBSCRIBE_OK, encoded with moqtransport/wire);
// from the baseline's raw origin it does none. Both then read their
// unidirectional streams with the same subgroupParser: subgroup header,
// object headers, the payload's timestamp; one reused buffer per stream,
// nothing allocated per object, no cache.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// alpnMoQ is the ALPN of MoQT over raw QUIC (draft-14 §3.1).
const alpnMoQ = "moq-00"

// thinSubscribeID is the request ID of a thin subscriber's first
// SUBSCRIBE; a client's request IDs are even and go up by 2.
const thinSubscribeID = 0

// thinConn is one raw QUIC connection, with a UDP socket of its own (as
// moqnative.Dial does for each client) or one shared with other thin
// subscribers (thinSockets).
type thinConn struct {
	udp  *net.UDPConn    // nil: a shared socket
	tr   *quic.Transport // the socket's
	conn *quic.Conn
}

// thinSockets are the UDP sockets thin subscribers dial from: with n 0,
// one per subscriber (dial makes it, the connection's close closes it);
// else n sockets, each with its own quic.Transport, shared round robin.
// Shared sockets save the bench file descriptors and goroutines (one
// receiving goroutine per socket instead of per subscriber); its CPU per
// subscriber was the same at 1,000 joins. The relay sees the same
// connections from fewer ports.
type thinSockets struct {
	n int

	mu     sync.Mutex
	next   int
	shared []*quic.Transport // made on first use
	closed bool
}

// dial dials addr from a socket of its own or a shared one.
func (ts *thinSockets) dial(ctx context.Context, addr net.Addr, tlsConf *tls.Config) (*thinConn, error) {
	if ts == nil || ts.n <= 0 {
		udp, err := net.ListenUDP("udp", nil)
		if err != nil {
			return nil, err
		}
		c := &thinConn{udp: udp, tr: &quic.Transport{Conn: udp}}
		if c.conn, err = c.tr.Dial(ctx, addr, tlsConf, rawQUICConfig()); err != nil {
			_ = c.tr.Close()
			_ = udp.Close()
			return nil, err
		}
		return c, nil
	}
	tr, err := ts.transport()
	if err != nil {
		return nil, err
	}
	c := &thinConn{tr: tr}
	if c.conn, err = tr.Dial(ctx, addr, tlsConf, rawQUICConfig()); err != nil {
		return nil, err
	}
	return c, nil
}

// transport is the next shared socket's Transport.
func (ts *thinSockets) transport() (*quic.Transport, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.closed {
		return nil, errors.New("thin subscribers' sockets are closed")
	}
	i := ts.next % ts.n
	ts.next++
	if i == len(ts.shared) {
		udp, err := net.ListenUDP("udp", nil)
		if err != nil {
			return nil, err
		}
		ts.shared = append(ts.shared, &quic.Transport{Conn: udp})
	}
	return ts.shared[i], nil
}

// close closes the shared sockets; their connections are closed first.
func (ts *thinSockets) close() {
	if ts == nil {
		return
	}
	ts.mu.Lock()
	shared := ts.shared
	ts.shared, ts.closed = nil, true
	ts.mu.Unlock()
	for _, tr := range shared {
		_ = tr.Close()
		_ = tr.Conn.Close()
	}
}

// close closes the connection (code 0, or code and reason) and its own
// socket.
func (c *thinConn) close(code quic.ApplicationErrorCode, reason string) {
	_ = c.conn.CloseWithError(code, reason)
	if c.udp != nil {
		_ = c.tr.Close()
		_ = c.udp.Close()
	}
}

// relayTarget is where thin subscribers dial a relay: its UDP address,
// the PATH of CLIENT_SETUP, and a TLS config for ALPN moq-00.
type relayTarget struct {
	addr net.Addr
	path string
	tls  *tls.Config
}

// TLS key exchanges of thin subscribers (--tls-key-exchange).
const (
	kexX25519 = "x25519"
	kexP256   = "p256"
	kexHybrid = "hybrid"
)

// keyExchanges are the curve preferences of each --tls-key-exchange (nil:
// crypto/tls's default). Thin subscribers stand for many viewers on one
// machine, so that a run shows the relay's cost per viewer; the bench's
// own share of each handshake is measured too, and on a machine the two
// share it slows the join as much as the relay's. One join through an
// in-process relay (BenchmarkJoin, both ends' CPU) took about 1.8 ms
// with Go 1.26's default, the hybrid X25519MLKEM768 (the client makes an
// ML-KEM-768 key and an X25519 one, the server encapsulates to the
// first), and 1.35-1.5 ms with X25519 or P-256 alone. The hybrid key share
// is 1,216 bytes, so the ClientHello takes two Initial packets instead of
// one. A relay answers with what its clients offer; browsers offer the
// hybrid, so measure with --tls-key-exchange hybrid to see their cost.
// Before this flag the bench offered the hybrid; its default is now
// x25519, the classic key exchange browsers also offer.
var keyExchanges = map[string][]tls.CurveID{
	kexX25519: {tls.X25519},
	kexP256:   {tls.CurveP256},
	kexHybrid: nil,
}

// newRelayTarget reads a moqt:// URL and the bench's TLS options (kex:
// a key of keyExchanges, or "" for crypto/tls's default, as hybrid). Thin
// subscribers speak raw QUIC only.
func newRelayTarget(rawURL string, ct moqnative.ClientTLS, kex string) (*relayTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "moqt" {
		return nil, fmt.Errorf("thin subscribers speak MoQT over raw QUIC: give a moqt:// URL, or use --subscriber-kind session for %s", u.Scheme)
	}
	addr, err := net.ResolveUDPAddr("udp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("relay address %q: %w", u.Host, err)
	}
	tc := pinnedTLS(u.Hostname(), alpnMoQ, ct.ServerCertificateHashes)
	if !ct.InsecureSkipVerify && len(ct.ServerCertificateHashes) == 0 {
		tc.InsecureSkipVerify = false // the system's roots
	}
	curves, ok := keyExchanges[kex]
	if !ok && kex != "" {
		return nil, fmt.Errorf("unknown TLS key exchange %q", kex)
	}
	tc.CurvePreferences = curves
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return &relayTarget{addr: addr, path: path, tls: tc}, nil
}

// pinnedTLS is a client TLS config for alpn that accepts the server whose
// leaf certificate's SHA-256 is one of hashes (none: any server).
func pinnedTLS(serverName, alpn string, hashes [][32]byte) *tls.Config {
	tc := &tls.Config{ServerName: serverName, NextProtos: []string{alpn}, MinVersion: tls.VersionTLS13, InsecureSkipVerify: true}
	if len(hashes) > 0 {
		// The pin replaces the chain check.
		tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) > 0 && slices.Contains(hashes, sha256.Sum256(raw[0])) {
				return nil
			}
			return errors.New("server certificate matches no pinned fingerprint")
		}
	}
	return tc
}

// thinControl is the control stream of a thin subscriber after its
// SUBSCRIBEs were answered: it keeps reading what the relay sends
// (MAX_REQUEST_ID, GOAWAY, PUBLISH_DONE) until the connection ends.
type thinControl struct {
	str     *quic.Stream
	r       *wire.ControlReader
	maxReq  uint64 // request IDs below this may be used
	goaway  atomic.Bool
	done    atomic.Int64 // PUBLISH_DONE received
	aliases []uint64     // track alias of each subscription
}

// handshake does CLIENT_SETUP/SERVER_SETUP on a new control stream and
// subscribes to tracks, waiting for every SUBSCRIBE_OK. It returns when
// all are answered or ctx ends (the connection is then closed).
func handshake(ctx context.Context, c *thinConn, path string, tracks []wire.FullTrackName) (*thinControl, error) {
	str, err := c.conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("opening the control stream: %w", err)
	}
	// A read blocked on the stream ends when ctx does.
	stop := context.AfterFunc(ctx, func() { _ = c.conn.CloseWithError(0, "") })
	defer stop()
	tc := &thinControl{str: str, r: wire.NewControlReader(str), aliases: make([]uint64, len(tracks))}
	// MAX_REQUEST_ID 0: the relay sends this subscriber no requests.
	ps := wire.Parameters{}.WithBytes(wire.SetupParamPath, []byte(path))
	if err := tc.send(&wire.ClientSetup{Versions: []wire.Version{wire.Draft14}, Params: ps}); err != nil {
		return nil, err
	}
	m, err := tc.r.ReadMessage()
	if err != nil {
		return nil, ctxErr(ctx, fmt.Errorf("reading SERVER_SETUP: %w", err))
	}
	ss, ok := m.(*wire.ServerSetup)
	if !ok {
		return nil, fmt.Errorf("got %s, want SERVER_SETUP", m.Type())
	}
	if ss.Version != wire.Draft14 {
		return nil, fmt.Errorf("relay chose version 0x%x, want draft-14", uint64(ss.Version))
	}
	tc.maxReq, _ = ss.Params.Varint(wire.SetupParamMaxRequestID)
	next, answered := 0, 0
	for answered < len(tracks) {
		// Send what the relay's request-ID credit allows, then read.
		for next < len(tracks) && uint64(thinSubscribeID+2*next) < tc.maxReq {
			t := tracks[next]
			if err := tc.send(&wire.Subscribe{
				RequestID: uint64(thinSubscribeID + 2*next), Namespace: t.Namespace, Name: t.Name,
				SubscriberPriority: moqtransport.DefaultPriority, GroupOrder: wire.GroupOrderPublisher,
				Forward: true, Filter: wire.Filter{Type: wire.FilterLargestObject},
			}); err != nil {
				return nil, err
			}
			next++
		}
		m, err := tc.r.ReadMessage()
		if err != nil {
			return nil, ctxErr(ctx, fmt.Errorf("waiting for SUBSCRIBE_OK: %w", err))
		}
		switch m := m.(type) {
		case *wire.SubscribeOK:
			j := int(m.RequestID-thinSubscribeID) / 2
			if m.RequestID%2 != 0 || j < 0 || j >= next {
				return nil, fmt.Errorf("SUBSCRIBE_OK for request %d, which was not sent", m.RequestID)
			}
			tc.aliases[j] = m.TrackAlias
			answered++
		case *wire.SubscribeError:
			return nil, fmt.Errorf("SUBSCRIBE_ERROR for request %d: %s (0x%x) %q", m.RequestID, m.Code, uint64(m.Code), m.Reason)
		default:
			if err := tc.handle(m); err != nil {
				return nil, err
			}
		}
	}
	return tc, nil
}

// ctxErr prefers ctx's error: a read cut by ctx reports why.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (tc *thinControl) send(m wire.Message) error {
	b, err := wire.AppendMessage(nil, m)
	if err != nil {
		return err
	}
	_, err = tc.str.Write(b)
	return err
}

// handle takes a message that needs no answer from a subscriber.
func (tc *thinControl) handle(m wire.Message) error {
	switch m := m.(type) {
	case *wire.MaxRequestID:
		tc.maxReq = max(tc.maxReq, m.Max)
	case *wire.GoAway:
		tc.goaway.Store(true)
	case *wire.PublishDone:
		tc.done.Add(1)
	case *wire.ServerSetup, *wire.ClientSetup:
		return fmt.Errorf("a second %s on the control stream", m.Type())
	}
	return nil
}

// run reads the control stream until it or the connection ends.
func (tc *thinControl) run() {
	for {
		m, err := tc.r.ReadMessage()
		if err != nil {
			return
		}
		if tc.handle(m) != nil {
			tc.str.CancelRead(quic.StreamErrorCode(wire.ProtocolViolation))
			return
		}
	}
}

// objectSink takes what a stream parser found: subscriber i read object
// of n payload bytes stamped at (0: no stamp, shorter than 8 bytes).
type objectSink func(i int, at int64, n int)

// thinReceiver accepts the data streams of one thin subscriber and parses
// each on a goroutine of its own, which wg counts.
type thinReceiver struct {
	i        int
	conn     *quic.Conn
	aliases  []uint64 // accepted track aliases
	maxObj   uint64   // a larger object is malformed for this bench
	sink     objectSink
	bad      *atomic.Int64 // streams rejected as malformed
	wg       *sync.WaitGroup
	ctx      context.Context
	closeBad sync.Once
}

// run accepts streams until the connection or ctx ends.
func (t *thinReceiver) run() {
	for {
		str, err := t.conn.AcceptUniStream(t.ctx)
		if err != nil {
			return
		}
		t.wg.Go(func() { t.read(str) })
	}
}

var parserPool = sync.Pool{New: func() any { return &subgroupParser{buf: make([]byte, 32<<10)} }}

func (t *thinReceiver) read(str *quic.ReceiveStream) {
	p := parserPool.Get().(*subgroupParser)
	defer parserPool.Put(p)
	_, err := p.parse(str, t.maxObj, func(alias uint64) bool { return slices.Contains(t.aliases, alias) },
		func(at int64, n int) { t.sink(t.i, at, n) })
	var se *wire.SessionError
	if errors.As(err, &se) {
		// Malformed bytes end the session with the draft's code.
		t.bad.Add(1)
		t.closeBad.Do(func() {
			_ = t.conn.CloseWithError(quic.ApplicationErrorCode(se.Code), se.Reason)
		})
	}
}

// subgroupParser reads one subgroup stream over a reused buffer.
type subgroupParser struct {
	buf  []byte
	r, w int
	src  io.Reader
	eof  bool
}

// errMalformed wraps a stream's violation as a *wire.SessionError.
func malformed(format string, args ...any) error {
	return &wire.SessionError{Code: wire.ProtocolViolation, Reason: fmt.Sprintf(format, args...)}
}

// more reads at least one more byte into the buffer; at the stream's end
// it returns io.ErrUnexpectedEOF (the caller is inside something).
func (p *subgroupParser) more() error {
	if p.eof {
		return io.ErrUnexpectedEOF
	}
	if p.r == p.w {
		p.r, p.w = 0, 0
	} else if p.r > 0 {
		p.w = copy(p.buf, p.buf[p.r:p.w])
		p.r = 0
	}
	if p.w == len(p.buf) {
		return malformed("a header longer than %d bytes", len(p.buf))
	}
	for {
		n, err := p.src.Read(p.buf[p.w:])
		p.w += n
		if err == io.EOF {
			p.eof = true
			if n == 0 {
				return io.ErrUnexpectedEOF
			}
			return nil
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

// parse reads a subgroup stream from src to its end: the header (whose
// track alias must pass accept), then each object, calling object with
// the payload's first 8 bytes (little-endian, the bench's timestamp) and
// its length; objects with a status and no payload are skipped. It returns
// the objects read and nil at a clean end, a *wire.SessionError
// (PROTOCOL_VIOLATION) for malformed bytes, or the stream's error.
func (p *subgroupParser) parse(src io.Reader, maxObject uint64, accept func(alias uint64) bool, object func(at int64, n int)) (int, error) {
	p.src, p.r, p.w, p.eof = src, 0, 0, false
	defer func() { p.src = nil }()
	var h wire.SubgroupHeader
	for {
		var n int
		var err error
		h, n, err = wire.ParseSubgroupHeader(p.buf[p.r:p.w])
		if err == nil {
			p.r += n
			break
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, malformed("subgroup header: %v", err)
		}
		if err := p.more(); err != nil {
			if err == io.ErrUnexpectedEOF && p.w == 0 {
				return 0, malformed("a data stream ended before its type")
			}
			if err == io.ErrUnexpectedEOF {
				return 0, malformed("a data stream ended inside its subgroup header")
			}
			return 0, err
		}
	}
	if !accept(h.TrackAlias) {
		return 0, malformed("subgroup stream for unknown track alias %d", h.TrackAlias)
	}
	st := wire.SubgroupState{Header: h}
	objects := 0
	for {
		if p.r == p.w {
			if err := p.more(); err != nil {
				if err == io.ErrUnexpectedEOF {
					return objects, nil // the stream ended between objects
				}
				return objects, err
			}
		}
		oh, n, err := st.ParseObject(p.buf[p.r:p.w])
		if errors.Is(err, io.ErrUnexpectedEOF) {
			if err := p.more(); err != nil {
				if err == io.ErrUnexpectedEOF {
					return objects, malformed("a data stream ended inside an object header")
				}
				return objects, err
			}
			continue
		}
		if err != nil {
			return objects, malformed("object header: %v", err)
		}
		p.r += n
		if oh.PayloadLength > maxObject {
			return objects, malformed("a %d-byte object, larger than the %d bytes this bench sends", oh.PayloadLength, maxObject)
		}
		var stamp [8]byte
		got := 0
		for left := oh.PayloadLength; left > 0; {
			if p.r == p.w {
				if err := p.more(); err != nil {
					if err == io.ErrUnexpectedEOF {
						return objects, malformed("a data stream ended inside a payload")
					}
					return objects, err
				}
			}
			take := min(left, uint64(p.w-p.r))
			if got < len(stamp) {
				got += copy(stamp[got:], p.buf[p.r:p.r+int(take)])
			}
			p.r += int(take)
			left -= take
		}
		if oh.PayloadLength == 0 {
			continue // a status, no payload
		}
		objects++
		at := int64(0)
		if got == len(stamp) {
			at = int64(binary.LittleEndian.Uint64(stamp[:]))
		}
		object(at, int(oh.PayloadLength))
	}
}

// appendBenchObject appends object id of a subgroup stream (its header
// first when st has no object yet) with a payload of size bytes that
// starts with the timestamp at: the bytes the baseline's origin sends,
// as a relay would.
func appendBenchObject(b []byte, st *wire.SubgroupState, id uint64, size int, at int64) ([]byte, error) {
	if !st.Objects() {
		var err error
		if b, err = wire.AppendSubgroupHeader(b, &st.Header); err != nil {
			return b, err
		}
	}
	b, err := st.AppendObject(b, &wire.ObjectHeader{ID: id, PayloadLength: uint64(size)})
	if err != nil {
		return b, err
	}
	b = binary.LittleEndian.AppendUint64(b, uint64(at))
	return append(b, make([]byte, size-8)...), nil
}
