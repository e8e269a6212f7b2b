package moqtransport

import "github.com/moqgo/moq/moqtransport/wire"

// The names below are aliases of package wire's types and constants, so that
// the common uses of this package (subscribing, reading objects, publishing,
// refusing requests) need no import of wire. They are the same types: a
// moqtransport.Namespace is a wire.Namespace, and each constant has the name
// it has in wire. Import wire for the codec itself: control messages, stream
// headers, parameters beyond the ones below.

// Track names and positions.
type (
	// Namespace is a track namespace or namespace prefix: an ordered tuple
	// of 1 to 32 byte strings (§2.4.1). NewNamespace builds one.
	Namespace = wire.Namespace
	// FullTrackName is a namespace plus a track name.
	FullTrackName = wire.FullTrackName
	// Location is a (Group, Object) pair, ordered by group then object.
	Location = wire.Location
)

// NewNamespace returns the namespace made of fields, in order:
// NewNamespace("live", "cam1") is the tuple ("live", "cam1"). It does not
// validate; Namespace.Validate reports a tuple the draft does not allow.
func NewNamespace(fields ...string) Namespace {
	return Namespace(append([]string(nil), fields...))
}

// ParseNamespace returns the namespace a slash-separated path names, one
// field per part: "live/demo" (or "/live/demo": a leading slash is
// ignored) is ("live", "demo"). It does not validate; see
// Namespace.Validate.
func ParseNamespace(path string) Namespace { return wire.ParseNamespacePath(path) }

// Objects.
type (
	// Extensions holds an object's extension headers as they are on the
	// wire; Extensions.All and Extensions.Get read them.
	Extensions = wire.Extensions
	// KeyValue is one extension header or parameter.
	KeyValue = wire.KeyValue
	// ObjectStatus is an object's status (§10.2.1.1).
	ObjectStatus = wire.ObjectStatus
)

// Object statuses.
const (
	StatusNormal       = wire.StatusNormal
	StatusDoesNotExist = wire.StatusDoesNotExist
	StatusEndOfGroup   = wire.StatusEndOfGroup
	StatusEndOfTrack   = wire.StatusEndOfTrack
)

// Subscriptions.
type (
	// GroupOrder is the order in which groups are delivered (§9.7).
	GroupOrder = wire.GroupOrder
	// Filter is a subscription filter (§9.7).
	Filter = wire.Filter
	// FilterType is a subscription filter's type.
	FilterType = wire.FilterType
	// Parameters is the list of key-value parameters of a control message.
	Parameters = wire.Parameters
)

// Group orders.
const (
	GroupOrderPublisher  = wire.GroupOrderPublisher
	GroupOrderAscending  = wire.GroupOrderAscending
	GroupOrderDescending = wire.GroupOrderDescending
)

// Filter types.
const (
	FilterNextGroupStart = wire.FilterNextGroupStart
	FilterLargestObject  = wire.FilterLargestObject
	FilterAbsoluteStart  = wire.FilterAbsoluteStart
	FilterAbsoluteRange  = wire.FilterAbsoluteRange
)

// Error code registries (§13.1). RequestError carries a code of one of the
// request registries; ConnError carries a SessionErrorCode.
type (
	// SessionErrorCode closes a session (§13.1.1).
	SessionErrorCode = wire.SessionErrorCode
	// SubscribeErrorCode is a SUBSCRIBE_ERROR or TRACK_STATUS_ERROR code.
	SubscribeErrorCode = wire.SubscribeErrorCode
	// FetchErrorCode is a FETCH_ERROR code.
	FetchErrorCode = wire.FetchErrorCode
	// PublishDoneCode is a PUBLISH_DONE status code.
	PublishDoneCode = wire.PublishDoneCode
	// PublishErrorCode is a PUBLISH_ERROR code.
	PublishErrorCode = wire.PublishErrorCode
	// PublishNamespaceErrorCode is a PUBLISH_NAMESPACE_ERROR or
	// PUBLISH_NAMESPACE_CANCEL code.
	PublishNamespaceErrorCode = wire.PublishNamespaceErrorCode
	// SubscribeNamespaceErrorCode is a SUBSCRIBE_NAMESPACE_ERROR code.
	SubscribeNamespaceErrorCode = wire.SubscribeNamespaceErrorCode
	// StreamResetCode resets a data stream (§10.4.3).
	StreamResetCode = wire.StreamResetCode
	// MessageType is a control message's type.
	MessageType = wire.MessageType
	// SessionError is an error that closes a session with Code: what an
	// Authorizer returns to refuse a session with a code of its choice,
	// and what a ConnError matches with errors.Is.
	SessionError = wire.SessionError
)

// Session termination codes.
const (
	NoError                  = wire.NoError
	InternalError            = wire.InternalError
	Unauthorized             = wire.Unauthorized
	ProtocolViolation        = wire.ProtocolViolation
	InvalidRequestID         = wire.InvalidRequestID
	DuplicateTrackAlias      = wire.DuplicateTrackAlias
	KeyValueFormattingError  = wire.KeyValueFormattingError
	TooManyRequests          = wire.TooManyRequests
	InvalidPath              = wire.InvalidPath
	MalformedPath            = wire.MalformedPath
	GoawayTimeout            = wire.GoawayTimeout
	ControlMessageTimeout    = wire.ControlMessageTimeout
	DataStreamTimeout        = wire.DataStreamTimeout
	AuthTokenCacheOverflow   = wire.AuthTokenCacheOverflow
	DuplicateAuthTokenAlias  = wire.DuplicateAuthTokenAlias
	VersionNegotiationFailed = wire.VersionNegotiationFailed
	MalformedAuthToken       = wire.MalformedAuthToken
	UnknownAuthTokenAlias    = wire.UnknownAuthTokenAlias
	ExpiredAuthToken         = wire.ExpiredAuthToken
	InvalidAuthority         = wire.InvalidAuthority
	MalformedAuthority       = wire.MalformedAuthority
)

// SUBSCRIBE_ERROR (and TRACK_STATUS_ERROR) codes.
const (
	SubscribeInternalError      = wire.SubscribeInternalError
	SubscribeUnauthorized       = wire.SubscribeUnauthorized
	SubscribeTimeout            = wire.SubscribeTimeout
	SubscribeNotSupported       = wire.SubscribeNotSupported
	SubscribeTrackDoesNotExist  = wire.SubscribeTrackDoesNotExist
	SubscribeInvalidRange       = wire.SubscribeInvalidRange
	SubscribeMalformedAuthToken = wire.SubscribeMalformedAuthToken
	SubscribeExpiredAuthToken   = wire.SubscribeExpiredAuthToken
)

// FETCH_ERROR codes.
const (
	FetchInternalError           = wire.FetchInternalError
	FetchUnauthorized            = wire.FetchUnauthorized
	FetchTimeout                 = wire.FetchTimeout
	FetchNotSupported            = wire.FetchNotSupported
	FetchTrackDoesNotExist       = wire.FetchTrackDoesNotExist
	FetchInvalidRange            = wire.FetchInvalidRange
	FetchNoObjects               = wire.FetchNoObjects
	FetchInvalidJoiningRequestID = wire.FetchInvalidJoiningRequestID
	FetchUnknownStatusInRange    = wire.FetchUnknownStatusInRange
	FetchMalformedTrack          = wire.FetchMalformedTrack
	FetchMalformedAuthToken      = wire.FetchMalformedAuthToken
	FetchExpiredAuthToken        = wire.FetchExpiredAuthToken
)

// PUBLISH_DONE status codes.
const (
	DoneInternalError     = wire.DoneInternalError
	DoneUnauthorized      = wire.DoneUnauthorized
	DoneTrackEnded        = wire.DoneTrackEnded
	DoneSubscriptionEnded = wire.DoneSubscriptionEnded
	DoneGoingAway         = wire.DoneGoingAway
	DoneExpired           = wire.DoneExpired
	DoneTooFarBehind      = wire.DoneTooFarBehind
	DoneMalformedTrack    = wire.DoneMalformedTrack
)

// PUBLISH_ERROR codes.
const (
	PublishInternalError = wire.PublishInternalError
	PublishUnauthorized  = wire.PublishUnauthorized
	PublishTimeout       = wire.PublishTimeout
	PublishNotSupported  = wire.PublishNotSupported
	PublishUninterested  = wire.PublishUninterested
)

// PUBLISH_NAMESPACE_ERROR (and PUBLISH_NAMESPACE_CANCEL) codes.
const (
	NamespaceInternalError      = wire.NamespaceInternalError
	NamespaceUnauthorized       = wire.NamespaceUnauthorized
	NamespaceTimeout            = wire.NamespaceTimeout
	NamespaceNotSupported       = wire.NamespaceNotSupported
	NamespaceUninterested       = wire.NamespaceUninterested
	NamespaceMalformedAuthToken = wire.NamespaceMalformedAuthToken
	NamespaceExpiredAuthToken   = wire.NamespaceExpiredAuthToken
)

// SUBSCRIBE_NAMESPACE_ERROR codes.
const (
	SubscribeNamespaceInternalError      = wire.SubscribeNamespaceInternalError
	SubscribeNamespaceUnauthorized       = wire.SubscribeNamespaceUnauthorized
	SubscribeNamespaceTimeout            = wire.SubscribeNamespaceTimeout
	SubscribeNamespaceNotSupported       = wire.SubscribeNamespaceNotSupported
	NamespacePrefixUnknown               = wire.NamespacePrefixUnknown
	NamespacePrefixOverlap               = wire.NamespacePrefixOverlap
	SubscribeNamespaceMalformedAuthToken = wire.SubscribeNamespaceMalformedAuthToken
	SubscribeNamespaceExpiredAuthToken   = wire.SubscribeNamespaceExpiredAuthToken
)

// Data stream reset codes.
const (
	ResetInternalError   = wire.ResetInternalError
	ResetCancelled       = wire.ResetCancelled
	ResetDeliveryTimeout = wire.ResetDeliveryTimeout
	ResetSessionClosed   = wire.ResetSessionClosed
)
