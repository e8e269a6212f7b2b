package moqtransport

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Protocol is the transport a session runs over. It decides which setup
// parameters apply: PATH and AUTHORITY are sent over raw QUIC only (§3.1).
type Protocol uint8

// Transports.
const (
	ProtocolQUIC         Protocol = iota + 1 // raw QUIC, ALPN moq-00
	ProtocolWebTransport                     // WebTransport over HTTP/3
)

func (p Protocol) String() string {
	switch p {
	case ProtocolQUIC:
		return "quic"
	case ProtocolWebTransport:
		return "webtransport"
	}
	return fmt.Sprintf("protocol(%d)", uint8(p))
}

// Conn is the transport connection a session runs on: a raw QUIC
// connection or a WebTransport session. Package moqnative adapts quic-go
// and webtransport-go to it.
//
// Errors: once the connection is closed, methods return a *ConnError that
// carries the application close code. Stream methods report a reset or
// STOP_SENDING from the peer as a *StreamError.
type Conn interface {
	// OpenStreamSync opens a bidirectional stream, waiting for the peer's
	// stream limit if need be.
	OpenStreamSync(ctx context.Context) (Stream, error)
	// AcceptStream waits for the peer's next bidirectional stream.
	AcceptStream(ctx context.Context) (Stream, error)
	// OpenUniStreamSync opens a unidirectional stream, waiting for the
	// peer's stream limit if need be.
	OpenUniStreamSync(ctx context.Context) (SendStream, error)
	// AcceptUniStream waits for the peer's next unidirectional stream.
	AcceptUniStream(ctx context.Context) (ReceiveStream, error)
	// SendDatagram sends one datagram; it may be dropped.
	SendDatagram(b []byte) error
	// ReceiveDatagram waits for the next datagram.
	ReceiveDatagram(ctx context.Context) ([]byte, error)
	// CloseWithError closes the connection with an application error code
	// (a MoQT session termination code) and a reason.
	CloseWithError(code uint64, reason string) error
	// Context is cancelled when the connection closes.
	Context() context.Context
	// Protocol says which transport this is.
	Protocol() Protocol
}

// RTTConn is a Conn that also reports its path's round-trip time, as QUIC
// estimates it (RFC 9002 §5.3): the smoothed RTT and its mean deviation.
// moqnative's connections implement it. A session whose Conn does not
// falls back to RFC 9002's initial RTT, 333 ms.
//
// The delivery timeout (§9.2.1.2) uses it: a subgroup stream is reset at
// its last object's deadline only if that object may still be in flight,
// that is if the transport took its last bytes less than a probe timeout
// (smoothed RTT + 4 × deviation + 25 ms of ACK delay) before. An object
// handed over earlier has arrived or been declared lost and resent by
// then, so its stream stays open for the subgroup's later objects.
type RTTConn interface {
	Conn
	RTT() (smoothed, deviation time.Duration)
}

// SendStream is the sending side of a stream.
type SendStream interface {
	io.Writer
	// Close ends the stream with a FIN once its data is sent.
	Close() error
	// CancelWrite resets the stream with an application error code.
	CancelWrite(code uint64)
	// SetPriority hints the order in which streams are sent: lower values
	// go first. Transports that cannot prioritise ignore it.
	SetPriority(p uint8)
}

// ReceiveStream is the receiving side of a stream.
type ReceiveStream interface {
	io.Reader
	// CancelRead asks the peer to stop sending (STOP_SENDING) with an
	// application error code.
	CancelRead(code uint64)
}

// Stream is a bidirectional stream.
type Stream interface {
	SendStream
	ReceiveStream
}

// ConnError is a closed connection, and so an ended session: the session
// termination code and reason it was closed with, and whether the peer
// closed it. Session.Err returns one for every session that was closed
// with a code, by either side; when the session closed itself because of
// an error (a protocol violation of the peer, a failed write), Unwrap
// returns that error.
//
// errors.Is(err, &SessionError{Code: c}) holds for one with code c:
//
//	if errors.Is(s.Err(), &moqtransport.SessionError{Code: moqtransport.ProtocolViolation}) { ... }
type ConnError struct {
	Code   SessionErrorCode
	Reason string
	Remote bool

	cause error
}

func (e *ConnError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by the peer"
	}
	return fmt.Sprintf("moqt: connection closed %s with code 0x%x (%s): %s", who, uint64(e.Code), e.Code, e.Reason)
}

// Unwrap returns the error that made the session close itself, if any.
func (e *ConnError) Unwrap() error { return e.cause }

// Is reports whether target is a *SessionError or *ConnError with the
// same code.
func (e *ConnError) Is(target error) bool {
	switch t := target.(type) {
	case *SessionError:
		return t.Code == e.Code
	case *ConnError:
		return t.Code == e.Code
	}
	return false
}

// StreamError is a stream reset (RESET_STREAM) or stopped (STOP_SENDING)
// with an application error code.
type StreamError struct {
	Code   uint64
	Remote bool
}

func (e *StreamError) Error() string {
	who := "locally"
	if e.Remote {
		who = "by the peer"
	}
	return fmt.Sprintf("moqt: stream cancelled %s with code 0x%x", who, e.Code)
}
