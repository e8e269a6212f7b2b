package moqtransport

import (
	"errors"
	"fmt"

	"github.com/moqgo/moq/moqtransport/wire"
)

// RequestError is a request that the peer refused (or that a handler
// refuses): the error code of the response message's registry and its
// reason. Code is the raw value; Message names the message that carried it.
type RequestError struct {
	Message wire.MessageType // SUBSCRIBE_ERROR, PUBLISH_NAMESPACE_ERROR, ...
	Code    uint64
	Reason  string
}

func (e *RequestError) Error() string {
	name := fmt.Sprintf("0x%x", e.Code)
	switch e.Message {
	case wire.TypeSubscribeError, wire.TypeTrackStatusError:
		name = wire.SubscribeErrorCode(e.Code).String()
	case wire.TypePublishNamespaceError, wire.TypePublishNamespaceCancel:
		name = wire.PublishNamespaceErrorCode(e.Code).String()
	case wire.TypeSubscribeNamespaceError:
		name = wire.SubscribeNamespaceErrorCode(e.Code).String()
	case wire.TypeFetchError:
		name = wire.FetchErrorCode(e.Code).String()
	case wire.TypePublishError:
		name = wire.PublishErrorCode(e.Code).String()
	case wire.TypePublishDone:
		name = wire.PublishDoneCode(e.Code).String()
	}
	if e.Message == 0 {
		return fmt.Sprintf("moqt: request refused: %s (code 0x%x)", e.Reason, e.Code)
	}
	return fmt.Sprintf("moqt: %s %s: %s", e.Message, name, e.Reason)
}

// SubscribeError returns a handler error that refuses a SUBSCRIBE with code.
func SubscribeError(code wire.SubscribeErrorCode, reason string) error {
	return &RequestError{Message: wire.TypeSubscribeError, Code: uint64(code), Reason: reason}
}

// NamespaceError returns a handler error that refuses a PUBLISH_NAMESPACE
// with code.
func NamespaceError(code wire.PublishNamespaceErrorCode, reason string) error {
	return &RequestError{Message: wire.TypePublishNamespaceError, Code: uint64(code), Reason: reason}
}

// ErrTrackNotFound is what a handler returns for a track it does not have;
// the peer gets SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST.
var ErrTrackNotFound = SubscribeError(wire.SubscribeTrackDoesNotExist, "track does not exist")

// requestCode extracts a response code from a handler error: a
// *RequestError keeps its code, anything else becomes fallback with the
// error's text as the reason.
func requestCode(err error, fallback uint64) (uint64, string) {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Code, re.Reason
	}
	return fallback, err.Error()
}

// ErrSessionClosed is returned by calls on a session that has ended; the
// session's Err says why.
var ErrSessionClosed = errors.New("moqt: session closed")

// ErrGoingAway is returned when a request is refused locally because the
// peer sent GOAWAY: open a new session (Session.GoAwayURI says where).
var ErrGoingAway = errors.New("moqt: the peer sent GOAWAY; open a new session for new requests")

// PublishDoneError returns an error to close a track with (Track.Close):
// its subscribers get PUBLISH_DONE with code and reason.
func PublishDoneError(code wire.PublishDoneCode, reason string) error {
	return &RequestError{Message: wire.TypePublishDone, Code: uint64(code), Reason: reason}
}
