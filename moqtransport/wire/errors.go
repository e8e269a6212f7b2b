package wire

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// SessionErrorCode is a draft-14 session termination code (§13.1.1), sent in
// CONNECTION_CLOSE (raw QUIC) or CLOSE_WEBTRANSPORT_SESSION.
type SessionErrorCode uint64

// Session termination codes.
const (
	NoError                  SessionErrorCode = 0x0
	InternalError            SessionErrorCode = 0x1
	Unauthorized             SessionErrorCode = 0x2
	ProtocolViolation        SessionErrorCode = 0x3
	InvalidRequestID         SessionErrorCode = 0x4
	DuplicateTrackAlias      SessionErrorCode = 0x5
	KeyValueFormattingError  SessionErrorCode = 0x6
	TooManyRequests          SessionErrorCode = 0x7
	InvalidPath              SessionErrorCode = 0x8
	MalformedPath            SessionErrorCode = 0x9
	GoawayTimeout            SessionErrorCode = 0x10
	ControlMessageTimeout    SessionErrorCode = 0x11
	DataStreamTimeout        SessionErrorCode = 0x12
	AuthTokenCacheOverflow   SessionErrorCode = 0x13
	DuplicateAuthTokenAlias  SessionErrorCode = 0x14
	VersionNegotiationFailed SessionErrorCode = 0x15
	MalformedAuthToken       SessionErrorCode = 0x16
	UnknownAuthTokenAlias    SessionErrorCode = 0x17
	ExpiredAuthToken         SessionErrorCode = 0x18
	InvalidAuthority         SessionErrorCode = 0x19
	MalformedAuthority       SessionErrorCode = 0x1A
)

var sessionErrorNames = map[SessionErrorCode]string{
	NoError:                  "NO_ERROR",
	InternalError:            "INTERNAL_ERROR",
	Unauthorized:             "UNAUTHORIZED",
	ProtocolViolation:        "PROTOCOL_VIOLATION",
	InvalidRequestID:         "INVALID_REQUEST_ID",
	DuplicateTrackAlias:      "DUPLICATE_TRACK_ALIAS",
	KeyValueFormattingError:  "KEY_VALUE_FORMATTING_ERROR",
	TooManyRequests:          "TOO_MANY_REQUESTS",
	InvalidPath:              "INVALID_PATH",
	MalformedPath:            "MALFORMED_PATH",
	GoawayTimeout:            "GOAWAY_TIMEOUT",
	ControlMessageTimeout:    "CONTROL_MESSAGE_TIMEOUT",
	DataStreamTimeout:        "DATA_STREAM_TIMEOUT",
	AuthTokenCacheOverflow:   "AUTH_TOKEN_CACHE_OVERFLOW",
	DuplicateAuthTokenAlias:  "DUPLICATE_AUTH_TOKEN_ALIAS",
	VersionNegotiationFailed: "VERSION_NEGOTIATION_FAILED",
	MalformedAuthToken:       "MALFORMED_AUTH_TOKEN",
	UnknownAuthTokenAlias:    "UNKNOWN_AUTH_TOKEN_ALIAS",
	ExpiredAuthToken:         "EXPIRED_AUTH_TOKEN",
	InvalidAuthority:         "INVALID_AUTHORITY",
	MalformedAuthority:       "MALFORMED_AUTHORITY",
}

func (c SessionErrorCode) String() string { return codeName(sessionErrorNames, c) }

// Known reports whether c is a code of its draft-14 registry (String
// names it); String prints any other as its hex value.
func (c SessionErrorCode) Known() bool { _, ok := sessionErrorNames[c]; return ok }

// SubscribeErrorCode is a SUBSCRIBE_ERROR code (§13.1.2); TRACK_STATUS_ERROR
// uses the same registry.
type SubscribeErrorCode uint64

// SUBSCRIBE_ERROR and TRACK_STATUS_ERROR codes.
const (
	SubscribeInternalError      SubscribeErrorCode = 0x0
	SubscribeUnauthorized       SubscribeErrorCode = 0x1
	SubscribeTimeout            SubscribeErrorCode = 0x2
	SubscribeNotSupported       SubscribeErrorCode = 0x3
	SubscribeTrackDoesNotExist  SubscribeErrorCode = 0x4
	SubscribeInvalidRange       SubscribeErrorCode = 0x5
	SubscribeMalformedAuthToken SubscribeErrorCode = 0x10
	SubscribeExpiredAuthToken   SubscribeErrorCode = 0x12
)

var subscribeErrorNames = map[SubscribeErrorCode]string{
	SubscribeInternalError:      "INTERNAL_ERROR",
	SubscribeUnauthorized:       "UNAUTHORIZED",
	SubscribeTimeout:            "TIMEOUT",
	SubscribeNotSupported:       "NOT_SUPPORTED",
	SubscribeTrackDoesNotExist:  "TRACK_DOES_NOT_EXIST",
	SubscribeInvalidRange:       "INVALID_RANGE",
	SubscribeMalformedAuthToken: "MALFORMED_AUTH_TOKEN",
	SubscribeExpiredAuthToken:   "EXPIRED_AUTH_TOKEN",
}

func (c SubscribeErrorCode) String() string { return codeName(subscribeErrorNames, c) }

// Known reports whether c is a code of its draft-14 registry (String
// names it); String prints any other as its hex value.
func (c SubscribeErrorCode) Known() bool { _, ok := subscribeErrorNames[c]; return ok }

// PublishDoneCode is a PUBLISH_DONE status code (§13.1.3).
type PublishDoneCode uint64

// PUBLISH_DONE status codes.
const (
	DoneInternalError     PublishDoneCode = 0x0
	DoneUnauthorized      PublishDoneCode = 0x1
	DoneTrackEnded        PublishDoneCode = 0x2
	DoneSubscriptionEnded PublishDoneCode = 0x3
	DoneGoingAway         PublishDoneCode = 0x4
	DoneExpired           PublishDoneCode = 0x5
	DoneTooFarBehind      PublishDoneCode = 0x6
	DoneMalformedTrack    PublishDoneCode = 0x7
)

var publishDoneNames = map[PublishDoneCode]string{
	DoneInternalError:     "INTERNAL_ERROR",
	DoneUnauthorized:      "UNAUTHORIZED",
	DoneTrackEnded:        "TRACK_ENDED",
	DoneSubscriptionEnded: "SUBSCRIPTION_ENDED",
	DoneGoingAway:         "GOING_AWAY",
	DoneExpired:           "EXPIRED",
	DoneTooFarBehind:      "TOO_FAR_BEHIND",
	DoneMalformedTrack:    "MALFORMED_TRACK",
}

func (c PublishDoneCode) String() string { return codeName(publishDoneNames, c) }

// Known reports whether c is a code of its draft-14 registry (String
// names it); String prints any other as its hex value.
func (c PublishDoneCode) Known() bool { _, ok := publishDoneNames[c]; return ok }

// PublishErrorCode is a PUBLISH_ERROR code (§13.1.4).
type PublishErrorCode uint64

// PUBLISH_ERROR codes.
const (
	PublishInternalError PublishErrorCode = 0x0
	PublishUnauthorized  PublishErrorCode = 0x1
	PublishTimeout       PublishErrorCode = 0x2
	PublishNotSupported  PublishErrorCode = 0x3
	PublishUninterested  PublishErrorCode = 0x4
)

var publishErrorNames = map[PublishErrorCode]string{
	PublishInternalError: "INTERNAL_ERROR",
	PublishUnauthorized:  "UNAUTHORIZED",
	PublishTimeout:       "TIMEOUT",
	PublishNotSupported:  "NOT_SUPPORTED",
	PublishUninterested:  "UNINTERESTED",
}

func (c PublishErrorCode) String() string { return codeName(publishErrorNames, c) }

// Known reports whether c is a code of its draft-14 registry (String
// names it); String prints any other as its hex value.
func (c PublishErrorCode) Known() bool { _, ok := publishErrorNames[c]; return ok }

// FetchErrorCode is a FETCH_ERROR code (§13.1.5).
type FetchErrorCode uint64

// FETCH_ERROR codes.
const (
	FetchInternalError           FetchErrorCode = 0x0
	FetchUnauthorized            FetchErrorCode = 0x1
	FetchTimeout                 FetchErrorCode = 0x2
	FetchNotSupported            FetchErrorCode = 0x3
	FetchTrackDoesNotExist       FetchErrorCode = 0x4
	FetchInvalidRange            FetchErrorCode = 0x5
	FetchNoObjects               FetchErrorCode = 0x6
	FetchInvalidJoiningRequestID FetchErrorCode = 0x7
	FetchUnknownStatusInRange    FetchErrorCode = 0x8
	FetchMalformedTrack          FetchErrorCode = 0x9
	FetchMalformedAuthToken      FetchErrorCode = 0x10
	FetchExpiredAuthToken        FetchErrorCode = 0x12
)

var fetchErrorNames = map[FetchErrorCode]string{
	FetchInternalError:           "INTERNAL_ERROR",
	FetchUnauthorized:            "UNAUTHORIZED",
	FetchTimeout:                 "TIMEOUT",
	FetchNotSupported:            "NOT_SUPPORTED",
	FetchTrackDoesNotExist:       "TRACK_DOES_NOT_EXIST",
	FetchInvalidRange:            "INVALID_RANGE",
	FetchNoObjects:               "NO_OBJECTS",
	FetchInvalidJoiningRequestID: "INVALID_JOINING_REQUEST_ID",
	FetchUnknownStatusInRange:    "UNKNOWN_STATUS_IN_RANGE",
	FetchMalformedTrack:          "MALFORMED_TRACK",
	FetchMalformedAuthToken:      "MALFORMED_AUTH_TOKEN",
	FetchExpiredAuthToken:        "EXPIRED_AUTH_TOKEN",
}

func (c FetchErrorCode) String() string { return codeName(fetchErrorNames, c) }

// Known reports whether c is a code of its draft-14 registry (String
// names it); String prints any other as its hex value.
func (c FetchErrorCode) Known() bool { _, ok := fetchErrorNames[c]; return ok }

// PublishNamespaceErrorCode is a PUBLISH_NAMESPACE_ERROR code (§13.1.6, the
// registry the draft still heads "ANNOUNCE_ERROR Codes");
// PUBLISH_NAMESPACE_CANCEL uses the same registry.
type PublishNamespaceErrorCode uint64

// PUBLISH_NAMESPACE_ERROR and PUBLISH_NAMESPACE_CANCEL codes.
const (
	NamespaceInternalError      PublishNamespaceErrorCode = 0x0
	NamespaceUnauthorized       PublishNamespaceErrorCode = 0x1
	NamespaceTimeout            PublishNamespaceErrorCode = 0x2
	NamespaceNotSupported       PublishNamespaceErrorCode = 0x3
	NamespaceUninterested       PublishNamespaceErrorCode = 0x4
	NamespaceMalformedAuthToken PublishNamespaceErrorCode = 0x10
	NamespaceExpiredAuthToken   PublishNamespaceErrorCode = 0x12
)

var publishNamespaceErrorNames = map[PublishNamespaceErrorCode]string{
	NamespaceInternalError:      "INTERNAL_ERROR",
	NamespaceUnauthorized:       "UNAUTHORIZED",
	NamespaceTimeout:            "TIMEOUT",
	NamespaceNotSupported:       "NOT_SUPPORTED",
	NamespaceUninterested:       "UNINTERESTED",
	NamespaceMalformedAuthToken: "MALFORMED_AUTH_TOKEN",
	NamespaceExpiredAuthToken:   "EXPIRED_AUTH_TOKEN",
}

func (c PublishNamespaceErrorCode) String() string { return codeName(publishNamespaceErrorNames, c) }

// Known reports whether c is a code of its draft-14 registry (String
// names it); String prints any other as its hex value.
func (c PublishNamespaceErrorCode) Known() bool { _, ok := publishNamespaceErrorNames[c]; return ok }

// SubscribeNamespaceErrorCode is a SUBSCRIBE_NAMESPACE_ERROR code (§13.1.7).
type SubscribeNamespaceErrorCode uint64

// SUBSCRIBE_NAMESPACE_ERROR codes.
const (
	SubscribeNamespaceInternalError      SubscribeNamespaceErrorCode = 0x0
	SubscribeNamespaceUnauthorized       SubscribeNamespaceErrorCode = 0x1
	SubscribeNamespaceTimeout            SubscribeNamespaceErrorCode = 0x2
	SubscribeNamespaceNotSupported       SubscribeNamespaceErrorCode = 0x3
	NamespacePrefixUnknown               SubscribeNamespaceErrorCode = 0x4
	NamespacePrefixOverlap               SubscribeNamespaceErrorCode = 0x5
	SubscribeNamespaceMalformedAuthToken SubscribeNamespaceErrorCode = 0x10
	SubscribeNamespaceExpiredAuthToken   SubscribeNamespaceErrorCode = 0x12
)

var subscribeNamespaceErrorNames = map[SubscribeNamespaceErrorCode]string{
	SubscribeNamespaceInternalError:      "INTERNAL_ERROR",
	SubscribeNamespaceUnauthorized:       "UNAUTHORIZED",
	SubscribeNamespaceTimeout:            "TIMEOUT",
	SubscribeNamespaceNotSupported:       "NOT_SUPPORTED",
	NamespacePrefixUnknown:               "NAMESPACE_PREFIX_UNKNOWN",
	NamespacePrefixOverlap:               "NAMESPACE_PREFIX_OVERLAP",
	SubscribeNamespaceMalformedAuthToken: "MALFORMED_AUTH_TOKEN",
	SubscribeNamespaceExpiredAuthToken:   "EXPIRED_AUTH_TOKEN",
}

func (c SubscribeNamespaceErrorCode) String() string {
	return codeName(subscribeNamespaceErrorNames, c)
}

// Known reports whether c is a code of its draft-14 registry (String
// names it); String prints any other as its hex value.
func (c SubscribeNamespaceErrorCode) Known() bool {
	_, ok := subscribeNamespaceErrorNames[c]
	return ok
}

// StreamResetCode is a RESET_STREAM / RESET_STREAM_AT / STOP_SENDING code for
// data streams (§10.4.3).
type StreamResetCode uint64

// Data stream reset codes.
const (
	ResetInternalError   StreamResetCode = 0x0
	ResetCancelled       StreamResetCode = 0x1
	ResetDeliveryTimeout StreamResetCode = 0x2
	ResetSessionClosed   StreamResetCode = 0x3
)

var streamResetNames = map[StreamResetCode]string{
	ResetInternalError:   "INTERNAL_ERROR",
	ResetCancelled:       "CANCELLED",
	ResetDeliveryTimeout: "DELIVERY_TIMEOUT",
	ResetSessionClosed:   "SESSION_CLOSED",
}

func (c StreamResetCode) String() string { return codeName(streamResetNames, c) }

// Known reports whether c is a code of its draft-14 registry (String
// names it); String prints any other as its hex value.
func (c StreamResetCode) Known() bool { _, ok := streamResetNames[c]; return ok }

func codeName[C ~uint64](names map[C]string, c C) string {
	if n, ok := names[c]; ok {
		return n
	}
	return "0x" + strconv.FormatUint(uint64(c), 16)
}

// SessionError is an error that closes the session with Code. Every decode
// error in this package that is not io.ErrUnexpectedEOF is a *SessionError, so
// a caller can close the session with the code the draft calls for:
//
//	var se *wire.SessionError
//	if errors.As(err, &se) { conn.CloseWithError(uint64(se.Code), se.Reason) }
type SessionError struct {
	Code   SessionErrorCode
	Reason string
}

func (e *SessionError) Error() string {
	return fmt.Sprintf("moqt: %s (%s)", e.Reason, e.Code)
}

// Is reports whether target is a *SessionError with the same code, so that
// errors.Is(err, &SessionError{Code: ProtocolViolation}) works.
func (e *SessionError) Is(target error) bool {
	t, ok := target.(*SessionError)
	return ok && t.Code == e.Code
}

// Sentinels for errors.Is: compare the code only.
var (
	ErrProtocolViolation  error = &SessionError{Code: ProtocolViolation}
	ErrKeyValueFormatting error = &SessionError{Code: KeyValueFormattingError}
)

// SessionCode returns the session termination code that err calls for.
// io.ErrUnexpectedEOF and io.EOF inside a framed message or in the middle of
// an object are protocol violations; any other error that is not a
// *SessionError maps to INTERNAL_ERROR.
func SessionCode(err error) SessionErrorCode {
	if err == nil {
		return NoError
	}
	var se *SessionError
	if errors.As(err, &se) {
		return se.Code
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return ProtocolViolation
	}
	return InternalError
}

func violation(format string, args ...any) *SessionError {
	return &SessionError{Code: ProtocolViolation, Reason: fmt.Sprintf(format, args...)}
}

func kvFormatting(format string, args ...any) *SessionError {
	return &SessionError{Code: KeyValueFormattingError, Reason: fmt.Sprintf(format, args...)}
}
