package moqnative

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/moqtransport"
)

// MoQT codes used by this package when it has to choose one.
const (
	codeNoError           = 0x0 // session NO_ERROR
	codeInternalError     = 0x1 // session INTERNAL_ERROR
	codeProtocolViolation = 0x3 // session PROTOCOL_VIOLATION
	streamCodeInternal    = 0x0 // data stream INTERNAL_ERROR (§10.4.3)
)

// QUICConn returns the QUIC connection under c (for a WebTransport session,
// the connection that carries it), for statistics and connection state.
// It reports false for connections this package did not make, and for
// those of NewWebTransportConn (webtransport-go does not expose the
// session's QUIC connection; the session's SessionState has its state).
func QUICConn(c moqtransport.Conn) (*quic.Conn, bool) {
	switch c := c.(type) {
	case *quicConn:
		return c.c, true
	case *wtConn:
		return c.qconn, c.qconn != nil
	}
	return nil, false
}

// ---------------------------------------------------------------------------
// Raw QUIC

// quicConn is a moqtransport.Conn over a raw QUIC connection (ALPN moq-00).
type quicConn struct {
	c      *quic.Conn
	maxUni int64 // the connection's MaxIncomingUniStreams, 0 if not known
}

var (
	_ moqtransport.RTTConn            = (*quicConn)(nil)
	_ moqtransport.UniStreamLimitConn = (*quicConn)(nil)
)

// MaxIncomingUniStreams reports the peer's limit of open unidirectional
// streams, when the connection was made by Listen or Dial (0 for
// NewQUICConn).
func (q *quicConn) MaxIncomingUniStreams() int64 { return q.maxUni }

// RTT reports quic-go's RTT estimate for the connection's path.
func (q *quicConn) RTT() (smoothed, deviation time.Duration) {
	st := q.c.ConnectionStats()
	return st.SmoothedRTT, st.MeanDeviation
}

func (q *quicConn) OpenStreamSync(ctx context.Context) (moqtransport.Stream, error) {
	s, err := q.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, quicError(err)
	}
	return (*quicStream)(s), nil
}

func (q *quicConn) AcceptStream(ctx context.Context) (moqtransport.Stream, error) {
	s, err := q.c.AcceptStream(ctx)
	if err != nil {
		return nil, quicError(err)
	}
	return (*quicStream)(s), nil
}

func (q *quicConn) OpenUniStreamSync(ctx context.Context) (moqtransport.SendStream, error) {
	s, err := q.c.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, quicError(err)
	}
	return (*quicSendStream)(s), nil
}

func (q *quicConn) AcceptUniStream(ctx context.Context) (moqtransport.ReceiveStream, error) {
	s, err := q.c.AcceptUniStream(ctx)
	if err != nil {
		return nil, quicError(err)
	}
	return (*quicReceiveStream)(s), nil
}

func (q *quicConn) SendDatagram(b []byte) error {
	if err := q.c.SendDatagram(b); err != nil {
		return quicError(err)
	}
	return nil
}

func (q *quicConn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	b, err := q.c.ReceiveDatagram(ctx)
	if err != nil {
		return nil, quicError(err)
	}
	return b, nil
}

// CloseWithError sends CONNECTION_CLOSE with the MoQT session code and
// waits until the connection is closed.
func (q *quicConn) CloseWithError(code uint64, reason string) error {
	return q.c.CloseWithError(quic.ApplicationErrorCode(code), reason)
}

func (q *quicConn) Context() context.Context              { return q.c.Context() }
func (q *quicConn) Protocol() moqtransport.Protocol       { return moqtransport.ProtocolQUIC }
func (q *quicConn) RemoteAddr() net.Addr                  { return q.c.RemoteAddr() }
func (q *quicConn) LocalAddr() net.Addr                   { return q.c.LocalAddr() }
func (q *quicConn) String() string                        { return "quic " + q.c.RemoteAddr().String() }
func (q *quicConn) ConnectionState() quic.ConnectionState { return q.c.ConnectionState() }

// The stream types are the quic-go types themselves, converted: wrapping
// a stream allocates nothing.
type (
	quicStream        quic.Stream
	quicSendStream    quic.SendStream
	quicReceiveStream quic.ReceiveStream
)

var (
	_ moqtransport.Stream        = (*quicStream)(nil)
	_ moqtransport.SendStream    = (*quicSendStream)(nil)
	_ moqtransport.ReceiveStream = (*quicReceiveStream)(nil)
)

// urgency maps MoQT's 0-255 priority (lower first) onto the 8 urgency
// levels of quic-go's scheduler (RFC 9218 style, lower first).
func urgency(p uint8) int8 { return int8(p / 32) }

func (s *quicStream) Read(b []byte) (int, error) {
	n, err := (*quic.Stream)(s).Read(b)
	if err != nil && err != io.EOF {
		err = quicError(err)
	}
	return n, err
}

func (s *quicStream) Write(b []byte) (int, error) {
	n, err := (*quic.Stream)(s).Write(b)
	if err != nil {
		err = quicError(err)
	}
	return n, err
}

func (s *quicStream) Close() error { return quicError((*quic.Stream)(s).Close()) }
func (s *quicStream) CancelWrite(code uint64) {
	(*quic.Stream)(s).CancelWrite(quic.StreamErrorCode(code))
}
func (s *quicStream) CancelRead(code uint64) {
	(*quic.Stream)(s).CancelRead(quic.StreamErrorCode(code))
}

// SetPriority sets urgency p/32, non-incremental: within one urgency
// level quic-go sends streams one after the other (by stream ID) rather
// than round-robin, which suits MoQT's "finish this subgroup first".
func (s *quicStream) SetPriority(p uint8) { (*quic.Stream)(s).SetPriority(urgency(p), false) }

// SetReliableBoundary marks the data written so far as data a later
// CancelWrite still delivers (RESET_STREAM_AT), e.g. a subgroup header.
// Not part of moqtransport.SendStream; the session may look for it.
func (s *quicStream) SetReliableBoundary() { (*quic.Stream)(s).SetReliableBoundary() }

func (s *quicSendStream) Write(b []byte) (int, error) {
	n, err := (*quic.SendStream)(s).Write(b)
	if err != nil {
		err = quicError(err)
	}
	return n, err
}

func (s *quicSendStream) Close() error { return quicError((*quic.SendStream)(s).Close()) }
func (s *quicSendStream) CancelWrite(code uint64) {
	(*quic.SendStream)(s).CancelWrite(quic.StreamErrorCode(code))
}
func (s *quicSendStream) SetPriority(p uint8) {
	(*quic.SendStream)(s).SetPriority(urgency(p), false)
}
func (s *quicSendStream) SetReliableBoundary() { (*quic.SendStream)(s).SetReliableBoundary() }

// SetWriteDeadline cuts a blocked Write at t (the session's delivery
// timeout); the zero time removes the deadline.
func (s *quicSendStream) SetWriteDeadline(t time.Time) error {
	return (*quic.SendStream)(s).SetWriteDeadline(t)
}

// SetWriteDeadline cuts a blocked Write at t.
func (s *quicStream) SetWriteDeadline(t time.Time) error {
	return (*quic.Stream)(s).SetWriteDeadline(t)
}

func (s *quicReceiveStream) Read(b []byte) (int, error) {
	n, err := (*quic.ReceiveStream)(s).Read(b)
	if err != nil && err != io.EOF {
		err = quicError(err)
	}
	return n, err
}

func (s *quicReceiveStream) CancelRead(code uint64) {
	(*quic.ReceiveStream)(s).CancelRead(quic.StreamErrorCode(code))
}

// quicError translates quic-go's application-level errors: a stream reset
// or STOP_SENDING becomes a *moqtransport.StreamError, a CONNECTION_CLOSE
// with an application code a *moqtransport.ConnError. Failures below MoQT
// (idle timeout, stateless reset, transport errors, handshake timeout) have
// no MoQT code and are returned as quic-go reports them; all of them match
// errors.Is(err, net.ErrClosed). Called on error paths only.
func quicError(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*quic.StreamError](err); ok {
		return &moqtransport.StreamError{Code: uint64(e.ErrorCode), Remote: e.Remote}
	}
	if e, ok := errors.AsType[*quic.ApplicationError](err); ok {
		return &moqtransport.ConnError{Code: moqtransport.SessionErrorCode(e.ErrorCode), Reason: e.ErrorMessage, Remote: e.Remote}
	}
	return err
}

// ---------------------------------------------------------------------------
// WebTransport

// wtLinger bounds how long the endpoint that closed a WebTransport session
// keeps the QUIC connection open so the peer receives the
// CLOSE_WEBTRANSPORT_SESSION capsule; the peer normally closes the QUIC
// connection as soon as it has read it.
const wtLinger = 2 * time.Second

// wtConn is a moqtransport.Conn over a WebTransport session. This package
// runs one session per QUIC connection (webtransport-go refuses a second
// one without WebTransport flow control, which is off), so the QUIC
// connection ends with the session: see closeQUICAfterSession.
//
// Error codes: WebTransport session and stream error codes are 32 bits
// wide. All MoQT session and data stream codes fit; a code above
// 0xffffffff is sent as INTERNAL_ERROR.
//
// qconn is the QUIC connection under the session when it is known
// (Server, Dial, WebTransportHandler), and nil for NewWebTransportConn.
type wtConn struct {
	sess   *webtransport.Session
	qconn  *quic.Conn
	maxUni int64 // the session's share of MaxIncomingUniStreams, 0 if not known
}

var (
	_ moqtransport.RTTConn            = (*wtConn)(nil)
	_ moqtransport.UniStreamLimitConn = (*wtConn)(nil)
)

// MaxIncomingUniStreams reports the peer's limit of open unidirectional
// streams for the session (the connection's, less the streams HTTP/3
// opens for itself), when the session was made by a Server or Dial (0
// otherwise).
func (w *wtConn) MaxIncomingUniStreams() int64 { return w.maxUni }

// RTT reports quic-go's RTT estimate for the path of the QUIC connection
// under the session, or zeros when it is not known (NewWebTransportConn):
// the session then assumes RFC 9002's initial RTT.
func (w *wtConn) RTT() (smoothed, deviation time.Duration) {
	if w.qconn == nil {
		return 0, 0
	}
	st := w.qconn.ConnectionStats()
	return st.SmoothedRTT, st.MeanDeviation
}

func newWTConn(sess *webtransport.Session, qconn *quic.Conn) *wtConn {
	return &wtConn{sess: sess, qconn: qconn}
}

func (w *wtConn) OpenStreamSync(ctx context.Context) (moqtransport.Stream, error) {
	s, err := w.sess.OpenStreamSync(ctx)
	if err != nil {
		return nil, w.error(err)
	}
	return &wtStream{s: s, c: w, unguard: w.guardRead(s.SetReadDeadline)}, nil
}

func (w *wtConn) AcceptStream(ctx context.Context) (moqtransport.Stream, error) {
	s, err := w.sess.AcceptStream(ctx)
	if err != nil {
		return nil, w.error(err)
	}
	return &wtStream{s: s, c: w, unguard: w.guardRead(s.SetReadDeadline)}, nil
}

// guardRead ends, with a read deadline in the past, a Read of a stream of
// the session that is still blocked once the session has ended, and
// returns the function that stops the guard (called when the stream's
// reading ends). A stream the peer resets with WT_SESSION_GONE makes
// webtransport-go's Read wait for the session to close the stream; it
// closes only the streams it still tracks. In ./relay's tests a fetch
// stream's reader waited so after every session and connection was closed
// (once in four CI runs; goleak caught it); a reader released when the
// session ends cannot.
func (w *wtConn) guardRead(setReadDeadline func(time.Time) error) (stop func() bool) {
	return context.AfterFunc(w.sess.Context(), func() { _ = setReadDeadline(time.Now()) })
}

func (w *wtConn) OpenUniStreamSync(ctx context.Context) (moqtransport.SendStream, error) {
	s, err := w.sess.OpenUniStreamSync(ctx)
	if err != nil {
		return nil, w.error(err)
	}
	return &wtSendStream{s: s, c: w}, nil
}

func (w *wtConn) AcceptUniStream(ctx context.Context) (moqtransport.ReceiveStream, error) {
	s, err := w.sess.AcceptUniStream(ctx)
	if err != nil {
		return nil, w.error(err)
	}
	return &wtReceiveStream{s: s, c: w, unguard: w.guardRead(s.SetReadDeadline)}, nil
}

func (w *wtConn) SendDatagram(b []byte) error {
	if err := w.sess.SendDatagram(b); err != nil {
		return w.error(err)
	}
	return nil
}

func (w *wtConn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	b, err := w.sess.ReceiveDatagram(ctx)
	if err != nil {
		return nil, w.error(err)
	}
	return b, nil
}

// CloseWithError sends CLOSE_WEBTRANSPORT_SESSION with the MoQT session
// code and reason (webtransport-go cuts the reason to 1024 bytes).
func (w *wtConn) CloseWithError(code uint64, reason string) error {
	sc := webtransport.SessionErrorCode(code)
	if code > math.MaxUint32 {
		sc = codeInternalError
	}
	return w.sess.CloseWithError(sc, reason)
}

func (w *wtConn) Context() context.Context        { return w.sess.Context() }
func (w *wtConn) Protocol() moqtransport.Protocol { return moqtransport.ProtocolWebTransport }
func (w *wtConn) RemoteAddr() net.Addr            { return w.sess.RemoteAddr() }
func (w *wtConn) LocalAddr() net.Addr             { return w.sess.LocalAddr() }
func (w *wtConn) String() string                  { return "webtransport " + w.sess.RemoteAddr().String() }
func (w *wtConn) ConnectionState() quic.ConnectionState {
	return w.sess.SessionState().ConnectionState
}

// closeQUICAfterSession closes the QUIC connection once the session has
// ended, or with stopReason when stop is closed first. If this side closed the session (its close
// error is a local *webtransport.SessionError), it first waits, at most
// wtLinger, for the peer to close the connection, so that our
// CONNECTION_CLOSE does not overtake the CLOSE_WEBTRANSPORT_SESSION capsule.
func (w *wtConn) closeQUICAfterSession(stop <-chan struct{}, stopReason string) {
	reason := ""
	select {
	case <-w.sess.Context().Done():
		if w.closedLocally() {
			t := time.NewTimer(wtLinger)
			select {
			case <-w.qconn.Context().Done():
			case <-t.C:
			case <-stop:
			}
			t.Stop()
		}
	case <-stop:
		reason = stopReason
	}
	w.qconn.CloseWithError(quic.ApplicationErrorCode(http3.ErrCodeNoError), reason)
}

// closedLocally reports whether the (ended) session was closed by
// CloseWithError on this side.
func (w *wtConn) closedLocally() bool {
	e := w.sessionClose()
	return e != nil && !e.Remote
}

// sessionClose returns the CLOSE_WEBTRANSPORT_SESSION that ended the
// session, sent or received, or nil while the session runs or when it
// ended without one.
func (w *wtConn) sessionClose() *webtransport.SessionError {
	if w.sess.Context().Err() == nil {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// A closed session's Accept returns the session's close error at once.
	_, err := w.sess.AcceptUniStream(ctx)
	e, _ := errors.AsType[*webtransport.SessionError](err)
	return e
}

// error translates webtransport-go's errors: *webtransport.StreamError and
// *webtransport.SessionError become *moqtransport.StreamError and
// *moqtransport.ConnError.
//
// When the session ended without a close capsule, webtransport-go reports
// an HTTP/3 error that says little: a QUIC close shows as
// H3_DATAGRAM_ERROR with the QUIC error's text. The QUIC connection's own
// close error is used instead: an application close becomes a ConnError
// with its code (H3_NO_ERROR as MoQT NO_ERROR 0x0; other HTTP/3 codes are
// kept, none collides with a MoQT code), other failures (idle timeout...)
// are returned as quic-go reports them. A CONNECT stream that ends without
// a capsule is, as the WebTransport draft says, a close with code 0 and
// no reason. Called on error paths only.
//
// A session that ended with a CLOSE_WEBTRANSPORT_SESSION capsule ended
// with that capsule's code, whatever a stream reports: the QUIC connection
// is closed as soon as the session ends (closeQUICAfterSession), and a
// stream whose reader had not yet seen the session's end then fails with
// the connection's close (quic-go reports a connection close before a
// stream's own cancellation), which is not why the session ended.
func (w *wtConn) error(err error) error {
	if err == nil {
		return nil
	}
	if e, ok := errors.AsType[*webtransport.StreamError](err); ok {
		return &moqtransport.StreamError{Code: uint64(e.ErrorCode), Remote: e.Remote}
	}
	if e, ok := errors.AsType[*webtransport.SessionError](err); ok {
		return &moqtransport.ConnError{Code: moqtransport.SessionErrorCode(e.ErrorCode), Reason: e.Message, Remote: e.Remote}
	}
	if e := w.sessionClose(); e != nil {
		return &moqtransport.ConnError{Code: moqtransport.SessionErrorCode(e.ErrorCode), Reason: e.Message, Remote: e.Remote}
	}
	h3e, isH3 := errors.AsType[*http3.Error](err)
	// guardRead's deadline: the session ended, its close not readable.
	guarded := errors.Is(err, os.ErrDeadlineExceeded) && w.sess.Context().Err() != nil
	if _, isApp := errors.AsType[*quic.ApplicationError](err); !isH3 && !isApp && !guarded {
		return err
	}
	if w.qconn != nil && isH3 && w.qconn.Context().Err() == nil {
		// quic-go fails streams a moment before it cancels the
		// connection's context; if the connection is closing, wait for it.
		t := time.NewTimer(connCloseWait)
		select {
		case <-w.qconn.Context().Done():
		case <-t.C:
		}
		t.Stop()
	}
	// Under NewWebTransportConn the QUIC connection is not known: what
	// webtransport-go reports is translated as it is.
	if w.qconn != nil {
		if cause := context.Cause(w.qconn.Context()); cause != nil {
			if e, ok := errors.AsType[*quic.ApplicationError](cause); ok {
				return &moqtransport.ConnError{Code: moqtransport.SessionErrorCode(h3ToMoQT(uint64(e.ErrorCode))), Reason: e.ErrorMessage, Remote: e.Remote}
			}
			return cause
		}
	}
	if e, ok := errors.AsType[*quic.ApplicationError](err); ok {
		return &moqtransport.ConnError{Code: moqtransport.SessionErrorCode(h3ToMoQT(uint64(e.ErrorCode))), Reason: e.ErrorMessage, Remote: e.Remote}
	}
	if guarded || (h3e.ErrorCode == http3.ErrCodeDatagramError && h3e.ErrorMessage == io.EOF.Error()) {
		// The CONNECT stream's FIN, or a session that ended as one with
		// no close it could read.
		return &moqtransport.ConnError{Code: codeNoError, Remote: true}
	}
	return &moqtransport.ConnError{Code: moqtransport.SessionErrorCode(h3ToMoQT(uint64(h3e.ErrorCode))), Reason: h3e.ErrorMessage, Remote: h3e.Remote}
}

// connCloseWait bounds the wait for a closing QUIC connection in
// wtConn.error.
const connCloseWait = 20 * time.Millisecond

func h3ToMoQT(code uint64) uint64 {
	if code == uint64(http3.ErrCodeNoError) {
		return codeNoError
	}
	return code
}

func wtStreamCode(code uint64) webtransport.StreamErrorCode {
	if code > math.MaxUint32 {
		return streamCodeInternal
	}
	return webtransport.StreamErrorCode(code)
}

// WebTransport streams. webtransport-go has no stream priorities (its
// streams do not expose quic-go's SetPriority), so SetPriority is a no-op.
type (
	wtStream struct {
		s       *webtransport.Stream
		c       *wtConn
		unguard func() bool // stops guardRead's guard
	}
	wtSendStream struct {
		s *webtransport.SendStream
		c *wtConn
	}
	wtReceiveStream struct {
		s       *webtransport.ReceiveStream
		c       *wtConn
		unguard func() bool // stops guardRead's guard
	}
)

var (
	_ moqtransport.Stream        = (*wtStream)(nil)
	_ moqtransport.SendStream    = (*wtSendStream)(nil)
	_ moqtransport.ReceiveStream = (*wtReceiveStream)(nil)
)

func (s *wtStream) Read(b []byte) (int, error) {
	n, err := s.s.Read(b)
	if err != nil {
		s.unguard()
		if err != io.EOF {
			err = s.c.error(err)
		}
	}
	return n, err
}

func (s *wtStream) Write(b []byte) (int, error) {
	n, err := s.s.Write(b)
	if err != nil {
		err = s.c.error(err)
	}
	return n, err
}

func (s *wtStream) Close() error            { return s.c.error(s.s.Close()) }
func (s *wtStream) CancelWrite(code uint64) { s.s.CancelWrite(wtStreamCode(code)) }
func (s *wtStream) CancelRead(code uint64) {
	s.unguard()
	s.s.CancelRead(wtStreamCode(code))
	releaseRead(s.s.SetReadDeadline)
}
func (s *wtStream) SetPriority(uint8) {}

func (s *wtSendStream) Write(b []byte) (int, error) {
	n, err := s.s.Write(b)
	if err != nil {
		err = s.c.error(err)
	}
	return n, err
}

func (s *wtSendStream) Close() error            { return s.c.error(s.s.Close()) }
func (s *wtSendStream) CancelWrite(code uint64) { s.s.CancelWrite(wtStreamCode(code)) }
func (s *wtSendStream) SetPriority(uint8)       {}

// SetWriteDeadline cuts a blocked Write at t (the session's delivery
// timeout); the zero time removes the deadline.
func (s *wtSendStream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

// SetWriteDeadline cuts a blocked Write at t.
func (s *wtStream) SetWriteDeadline(t time.Time) error { return s.s.SetWriteDeadline(t) }

func (s *wtReceiveStream) Read(b []byte) (int, error) {
	n, err := s.s.Read(b)
	if err != nil {
		s.unguard()
		if err != io.EOF {
			err = s.c.error(err)
		}
	}
	return n, err
}

func (s *wtReceiveStream) CancelRead(code uint64) {
	s.unguard()
	s.s.CancelRead(wtStreamCode(code))
	releaseRead(s.s.SetReadDeadline)
}

// releaseRead ends, with a read deadline in the past, a Read of a stream
// we stopped reading (CancelRead) that is blocked or still to come.
// webtransport-go's CancelRead stops tracking the stream, so the
// session's end no longer closes it; a Read that got the peer's reset
// with WT_SESSION_GONE (its session closing) then waited for that close
// for ever, after every session and connection had ended (goleak caught
// it in ./relay, in readDataStream, once in many CI runs): a reader still
// blocked when another goroutine stops its stream, as an ended
// subscription does to its open streams (§9.12). guardRead covers the
// streams we never stop.
func releaseRead(setReadDeadline func(time.Time) error) {
	_ = setReadDeadline(time.Now())
}
