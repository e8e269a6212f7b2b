package moqtransport

import (
	"errors"
	"fmt"

	"github.com/moqgo/moq/moqtransport/wire"
)

// ErrRequestsBlocked is what a request fails with when the peer grants it
// no request ID within Config.RequestIDTimeout.
var ErrRequestsBlocked = errors.New("moqt: the peer grants no request ID for this request")

// ErrRequestNotSent is wrapped by what a request fails with when the peer
// never got it: its context ended while it waited for the peer to grant it
// a request ID (with the context's error), or its message does not encode
// (a parameter given twice, a field out of range, a message over 65,535
// bytes). Its request ID was not used.
var ErrRequestNotSent = errors.New("the request was not sent")

// Peer deviations the session tolerates: each is a departure from draft-14
// that harms nothing this session relies on, seen in deployed peers. The
// package doc ("Peer deviations") lists them; every one is decided here.
const (
	// deviationFetchOKGroupOrder: FETCH_OK with Group Order 0x0, which
	// §9.17 calls a protocol error (imquic 0.0.1's relay echoes the FETCH's
	// order). The objects come in the order the FETCH asked for, or
	// ascending.
	deviationFetchOKGroupOrder = "FETCH_OK group order 0x0"
	// deviationImplementation05: a setup parameter 0x05 where AUTHORITY
	// is never valid (SERVER_SETUP; CLIENT_SETUP over WebTransport), which
	// §9.3.2.1 closes with INVALID_AUTHORITY. The draft-14 text also
	// numbers MOQT_IMPLEMENTATION 0x05 (§9.3.2.7; 0x07 from the editor's
	// copy of the next day and draft-15 on), and a peer following it sends
	// its name there: read as MOQT_IMPLEMENTATION (PeerImplementation).
	deviationImplementation05 = "setup parameter 0x05 as MOQT_IMPLEMENTATION"
)

// tolerate decides a peer deviation: with Config.StrictPeer it is the
// PROTOCOL_VIOLATION the draft names, which the caller closes the session
// with; otherwise it is logged once per session at Warn and nil is
// returned, and the caller goes on with the reading the package doc gives.
func (s *Session) tolerate(deviation, format string, args ...any) error {
	return s.tolerateAs(wire.ProtocolViolation, deviation, format, args...)
}

// tolerateAs is tolerate for a deviation the draft closes with code.
func (s *Session) tolerateAs(code wire.SessionErrorCode, deviation, format string, args ...any) error {
	detail := fmt.Sprintf(format, args...)
	if s.cfg.StrictPeer {
		return &wire.SessionError{Code: code, Reason: detail}
	}
	s.mu.Lock()
	warned := s.deviations[deviation]
	setIn(&s.deviations, deviation, true)
	s.mu.Unlock()
	if !warned {
		s.log.Warn("the peer deviates from draft-14; tolerated (Config.StrictPeer refuses it)", "deviation", deviation, "detail", detail)
	}
	return nil
}
