package moqtransport

import (
	"errors"
	"fmt"

	"github.com/moqgo/moq/moqtransport/wire"
)

// RequestError is a request that the peer refused (or that a handler
// refuses): the error code of the response message's registry and its
// reason. Code is the raw value; Message names the message that carried
// it, and so the registry (SUBSCRIBE_ERROR and TRACK_STATUS_ERROR share
// SubscribeErrorCode, PUBLISH_NAMESPACE_ERROR and PUBLISH_NAMESPACE_CANCEL
// share PublishNamespaceErrorCode; PUBLISH_DONE's is PublishDoneCode).
//
// errors.Is matches two RequestErrors by what their codes mean, whatever
// the reason: the same code of the same registry, or codes of the same
// draft-14 name in registries that share it, such as TRACK_DOES_NOT_EXIST
// from SUBSCRIBE_ERROR and FETCH_ERROR, or UNAUTHORIZED from any request.
// So errors.Is(err, ErrTrackNotFound) tells that a SUBSCRIBE, FETCH or
// TRACK_STATUS found no track, errors.Is(err, PublishDoneError(DoneExpired,
// "")) that a subscription expired, and ErrUnauthorized,
// ErrExpiredToken and ErrMalformedToken match the refusals an Authorizer's
// errors cause.
type RequestError struct {
	Message MessageType // SUBSCRIBE_ERROR, PUBLISH_NAMESPACE_ERROR, ...
	Code    uint64
	Reason  string
}

func (e *RequestError) Error() string {
	if e.Message == 0 {
		return fmt.Sprintf("moqt: request refused: %s (code 0x%x)", e.Reason, e.Code)
	}
	return fmt.Sprintf("moqt: %s %s: %s", e.Message, e.codeName(), e.Reason)
}

// registry returns the message that names e's error registry (one per
// registry) and the draft-14 name of e's code in it; ok is false for a
// message with no registry or a code the registry does not define.
func (e *RequestError) registry() (reg MessageType, name string, ok bool) {
	switch e.Message {
	case wire.TypeSubscribeError, wire.TypeTrackStatusError:
		c := SubscribeErrorCode(e.Code)
		return wire.TypeSubscribeError, c.String(), c.Known()
	case wire.TypePublishNamespaceError, wire.TypePublishNamespaceCancel:
		c := PublishNamespaceErrorCode(e.Code)
		return wire.TypePublishNamespaceError, c.String(), c.Known()
	case wire.TypeSubscribeNamespaceError:
		c := SubscribeNamespaceErrorCode(e.Code)
		return e.Message, c.String(), c.Known()
	case wire.TypeFetchError:
		c := FetchErrorCode(e.Code)
		return e.Message, c.String(), c.Known()
	case wire.TypePublishError:
		c := PublishErrorCode(e.Code)
		return e.Message, c.String(), c.Known()
	case wire.TypePublishDone:
		c := PublishDoneCode(e.Code)
		return e.Message, c.String(), c.Known()
	}
	return e.Message, "", false
}

// CodeName returns the draft-14 name of e's code in the registry of the
// message that carries it (SUBSCRIBE_ERROR's "TRACK_DOES_NOT_EXIST",
// FETCH_ERROR's "NO_OBJECTS", ...) and whether that registry defines the
// code; an undefined code, or a RequestError without a Message, is named
// by its hex value ("0x99") with known false.
func (e *RequestError) CodeName() (name string, known bool) {
	if _, name, ok := e.registry(); ok {
		return name, true
	}
	return fmt.Sprintf("0x%x", e.Code), false
}

func (e *RequestError) codeName() string {
	name, _ := e.CodeName()
	return name
}

// Is reports whether target is a *RequestError whose code means what e's
// does (see RequestError), or one of ErrUnauthorized, ErrExpiredToken,
// ErrMalformedToken and ErrMalformedTrack and e's code has that name.
func (e *RequestError) Is(target error) bool {
	reg, name, known := e.registry()
	switch target {
	case ErrUnauthorized:
		return known && name == "UNAUTHORIZED"
	case ErrExpiredToken:
		return known && name == "EXPIRED_AUTH_TOKEN"
	case ErrMalformedToken:
		return known && name == "MALFORMED_AUTH_TOKEN"
	case ErrMalformedTrack:
		return known && name == "MALFORMED_TRACK"
	}
	t, ok := target.(*RequestError)
	if !ok || t.Code != e.Code {
		return false
	}
	treg, tname, tknown := t.registry()
	return treg == reg || (known && tknown && name == tname)
}

// SubscribeError returns a handler error that refuses a SUBSCRIBE with code.
func SubscribeError(code SubscribeErrorCode, reason string) error {
	return &RequestError{Message: wire.TypeSubscribeError, Code: uint64(code), Reason: reason}
}

// NamespaceError returns a handler error that refuses a PUBLISH_NAMESPACE
// with code.
func NamespaceError(code PublishNamespaceErrorCode, reason string) error {
	return &RequestError{Message: wire.TypePublishNamespaceError, Code: uint64(code), Reason: reason}
}

// ErrTrackNotFound is what a handler returns for a track it does not have;
// the peer gets SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST.
var ErrTrackNotFound = SubscribeError(SubscribeTrackDoesNotExist, "track does not exist")

// requestCode returns the code and reason that answer a request with the
// error message answer (SUBSCRIBE_ERROR, FETCH_ERROR, TRACK_STATUS_ERROR,
// ...) for a handler error. A *RequestError of answer's registry (or
// without a Message: a raw code) keeps its code. One of another registry
// is translated by name, not by number, since the registries number
// their codes apart past the first few: ErrTrackNotFound answers a FETCH
// with FETCH_ERROR TRACK_DOES_NOT_EXIST, a FETCH_ERROR INVALID_RANGE a
// SUBSCRIBE with SUBSCRIBE_ERROR INVALID_RANGE, and a code whose name
// answer's registry lacks (TRACK_DOES_NOT_EXIST for PUBLISH_NAMESPACE,
// whose 0x4 is UNINTERESTED) becomes fallback, its name kept in the
// reason. Anything else is fallback with the error's text as the reason.
func requestCode(err error, answer MessageType, fallback uint64) (uint64, string) {
	var re *RequestError
	if !errors.As(err, &re) {
		return fallback, err.Error()
	}
	if re.Message == 0 {
		return re.Code, re.Reason
	}
	reg, name, known := re.registry()
	target, _, _ := (&RequestError{Message: answer}).registry()
	if reg == target {
		return re.Code, re.Reason
	}
	if known {
		if code, ok := codeNamed(target, name); ok {
			return code, re.Reason
		}
	}
	return fallback, re.codeName() + ": " + re.Reason
}

// codeNamed returns the code named name in the registry of error message
// reg. The request registries define codes below 0x20.
func codeNamed(reg MessageType, name string) (uint64, bool) {
	for c := range uint64(0x20) {
		if _, n, ok := (&RequestError{Message: reg, Code: c}).registry(); ok && n == name {
			return c, true
		}
	}
	return 0, false
}

// ErrSessionClosed is returned by calls on a session that has ended; the
// session's Err says why.
var ErrSessionClosed = errors.New("moqt: session closed")

// ErrSubscriptionEnded is returned by Subscription.Update once the
// subscription has ended; Subscription.Err says how it ended.
var ErrSubscriptionEnded = errors.New("moqt: subscription ended")

// ErrGoingAway is returned when a request is refused locally because the
// peer sent GOAWAY: open a new session (Session.GoAwayURI says where).
var ErrGoingAway = errors.New("moqt: the peer sent GOAWAY; open a new session for new requests")

// PublishDoneError returns an error to close a track with (Track.Close):
// its subscribers get PUBLISH_DONE with code and reason.
func PublishDoneError(code PublishDoneCode, reason string) error {
	return &RequestError{Message: wire.TypePublishDone, Code: uint64(code), Reason: reason}
}
