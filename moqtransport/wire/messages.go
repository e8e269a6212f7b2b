package wire

import "fmt"

// This file holds every draft-14 control message. Field order follows the
// figures of §9; comments name the section.

// ClientSetup is CLIENT_SETUP (0x20, §9.3).
type ClientSetup struct {
	Versions []Version
	Params   Parameters
}

func (*ClientSetup) Type() MessageType { return TypeClientSetup }

func (m *ClientSetup) appendBody(w *builder) {
	if len(m.Versions) == 0 {
		w.fail(violation("CLIENT_SETUP offers no version"))
	}
	w.varint("version count", uint64(len(m.Versions)))
	for _, v := range m.Versions {
		w.varint("version", uint64(v))
	}
	w.params(m.Params, setupParamRules)
}

func (m *ClientSetup) parseBody(p *parser) {
	n := p.varint()
	// A version takes at least one byte: bound the count before allocating.
	if p.err == nil && n > uint64(p.remaining()) {
		p.fail(violation("version count %d exceeds the %d bytes left", n, p.remaining()))
	}
	if p.err == nil && n == 0 {
		p.fail(violation("CLIENT_SETUP offers no version"))
	}
	if p.err != nil {
		return
	}
	m.Versions = make([]Version, 0, n)
	for range n {
		m.Versions = append(m.Versions, Version(p.varint()))
	}
	m.Params = p.params(setupParamRules)
}

// ServerSetup is SERVER_SETUP (0x21, §9.3).
type ServerSetup struct {
	Version Version
	Params  Parameters
}

func (*ServerSetup) Type() MessageType { return TypeServerSetup }

func (m *ServerSetup) appendBody(w *builder) {
	w.varint("version", uint64(m.Version))
	w.params(m.Params, setupParamRules)
}

func (m *ServerSetup) parseBody(p *parser) {
	m.Version = Version(p.varint())
	m.Params = p.params(setupParamRules)
}

// GoAway is GOAWAY (0x10, §9.4). An empty URI means "reconnect to the
// current URI".
type GoAway struct {
	NewSessionURI string
}

func (*GoAway) Type() MessageType { return TypeGoAway }

func (m *GoAway) appendBody(w *builder) {
	w.string("GOAWAY new session URI", m.NewSessionURI, MaxGoAwayURILen)
}

func (m *GoAway) parseBody(p *parser) {
	m.NewSessionURI = string(p.lengthPrefixed("GOAWAY new session URI", MaxGoAwayURILen))
}

// MaxRequestID is MAX_REQUEST_ID (0x15, §9.5). Max is the new maximum
// request ID plus one: an exclusive bound.
type MaxRequestID struct {
	Max uint64
}

func (*MaxRequestID) Type() MessageType { return TypeMaxRequestID }

func (m *MaxRequestID) appendBody(w *builder) { w.varint("maximum request ID", m.Max) }
func (m *MaxRequestID) parseBody(p *parser)   { m.Max = p.varint() }

// RequestsBlocked is REQUESTS_BLOCKED (0x1A, §9.6): the sender wants to
// open a request but is blocked at Max.
type RequestsBlocked struct {
	Max uint64
}

func (*RequestsBlocked) Type() MessageType { return TypeRequestsBlocked }

func (m *RequestsBlocked) appendBody(w *builder) { w.varint("maximum request ID", m.Max) }
func (m *RequestsBlocked) parseBody(p *parser)   { m.Max = p.varint() }

// Subscribe is SUBSCRIBE (0x03, §9.7).
type Subscribe struct {
	RequestID          uint64
	Namespace          Namespace
	Name               string
	SubscriberPriority uint8
	GroupOrder         GroupOrder
	Forward            bool
	Filter             Filter
	Params             Parameters
}

func (*Subscribe) Type() MessageType { return TypeSubscribe }

func (m *Subscribe) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.fullTrackName(m.Namespace, m.Name)
	w.uint8(m.SubscriberPriority)
	w.groupOrder(m.GroupOrder, true)
	w.bool(m.Forward)
	w.filter(m.Filter)
	w.params(m.Params, rulesSubscribe)
}

func (m *Subscribe) parseBody(p *parser) { m.parse(p, rulesSubscribe) }

func (m *Subscribe) parse(p *parser, rules paramRules) {
	m.RequestID = p.varint()
	m.Namespace, m.Name = p.fullTrackName()
	m.SubscriberPriority = p.uint8()
	m.GroupOrder = p.groupOrder(true)
	m.Forward = p.bool("forward")
	m.Filter = p.filter()
	m.Params = p.params(rules)
}

// SubscribeOK is SUBSCRIBE_OK (0x04, §9.8). Largest is on the wire only
// when ContentExists. Expires is in milliseconds; 0 means no expiry.
type SubscribeOK struct {
	RequestID     uint64
	TrackAlias    uint64
	Expires       uint64
	GroupOrder    GroupOrder
	ContentExists bool
	Largest       Location
	Params        Parameters
}

func (*SubscribeOK) Type() MessageType { return TypeSubscribeOK }

func (m *SubscribeOK) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.varint("track alias", m.TrackAlias)
	w.varint("expires", m.Expires)
	w.groupOrder(m.GroupOrder, false)
	w.bool(m.ContentExists)
	if m.ContentExists {
		w.location("largest", m.Largest)
	}
	w.params(m.Params, rulesSubscribeOK)
}

func (m *SubscribeOK) parseBody(p *parser) {
	m.RequestID = p.varint()
	m.TrackAlias = p.varint()
	m.Expires = p.varint()
	m.GroupOrder = p.groupOrder(false)
	m.ContentExists = p.bool("content exists")
	if m.ContentExists {
		m.Largest = p.location()
	}
	m.Params = p.params(rulesSubscribeOK)
}

// requestError is the shared layout of the *_ERROR messages: Request ID,
// Error Code, Reason Phrase.
func appendRequestError(w *builder, id, code uint64, reason string) {
	w.varint("request ID", id)
	w.varint("error code", code)
	w.reasonPhrase(reason)
}

func parseRequestError(p *parser) (id, code uint64, reason string) {
	id = p.varint()
	code = p.varint()
	reason = p.reasonPhrase()
	return
}

// SubscribeError is SUBSCRIBE_ERROR (0x05, §9.9).
type SubscribeError struct {
	RequestID uint64
	Code      SubscribeErrorCode
	Reason    string
}

func (*SubscribeError) Type() MessageType { return TypeSubscribeError }

func (m *SubscribeError) appendBody(w *builder) {
	appendRequestError(w, m.RequestID, uint64(m.Code), m.Reason)
}

func (m *SubscribeError) parseBody(p *parser) {
	var code uint64
	m.RequestID, code, m.Reason = parseRequestError(p)
	m.Code = SubscribeErrorCode(code)
}

// SubscribeUpdate is SUBSCRIBE_UPDATE (0x02, §9.10). RequestID is the
// update's own request ID (new in draft-14); SubscriptionRequestID names the
// SUBSCRIBE or PUBLISH it changes. On the wire the end group is sent plus
// one, with 0 meaning open-ended; here HasEndGroup and the inclusive
// EndGroup carry that.
type SubscribeUpdate struct {
	RequestID             uint64
	SubscriptionRequestID uint64
	Start                 Location
	HasEndGroup           bool
	EndGroup              uint64
	SubscriberPriority    uint8
	Forward               bool
	Params                Parameters
}

func (*SubscribeUpdate) Type() MessageType { return TypeSubscribeUpdate }

func (m *SubscribeUpdate) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.varint("subscription request ID", m.SubscriptionRequestID)
	w.location("start", m.Start)
	if m.HasEndGroup {
		if m.EndGroup >= MaxVarint {
			w.fail(violation("end group %d cannot be sent plus one", m.EndGroup))
		}
		w.varint("end group", m.EndGroup+1)
	} else {
		w.varint("end group", 0)
	}
	w.uint8(m.SubscriberPriority)
	w.bool(m.Forward)
	w.params(m.Params, rulesSubscribe)
}

func (m *SubscribeUpdate) parseBody(p *parser) {
	m.RequestID = p.varint()
	m.SubscriptionRequestID = p.varint()
	m.Start = p.location()
	if end := p.varint(); end > 0 {
		m.HasEndGroup, m.EndGroup = true, end-1
	}
	m.SubscriberPriority = p.uint8()
	m.Forward = p.bool("forward")
	m.Params = p.params(rulesSubscribe)
}

// Unsubscribe is UNSUBSCRIBE (0x0A, §9.11).
type Unsubscribe struct {
	RequestID uint64
}

func (*Unsubscribe) Type() MessageType { return TypeUnsubscribe }

func (m *Unsubscribe) appendBody(w *builder) { w.varint("request ID", m.RequestID) }
func (m *Unsubscribe) parseBody(p *parser)   { m.RequestID = p.varint() }

// StreamCountUnknown is the PUBLISH_DONE stream count that means "unknown".
const StreamCountUnknown = MaxVarint

// PublishDone is PUBLISH_DONE (0x0B, §9.12), once SUBSCRIBE_DONE.
type PublishDone struct {
	RequestID   uint64
	StatusCode  PublishDoneCode
	StreamCount uint64
	Reason      string
}

func (*PublishDone) Type() MessageType { return TypePublishDone }

func (m *PublishDone) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.varint("status code", uint64(m.StatusCode))
	w.varint("stream count", m.StreamCount)
	w.reasonPhrase(m.Reason)
}

func (m *PublishDone) parseBody(p *parser) {
	m.RequestID = p.varint()
	m.StatusCode = PublishDoneCode(p.varint())
	m.StreamCount = p.varint()
	m.Reason = p.reasonPhrase()
}

// Publish is PUBLISH (0x1D, §9.13). Largest is on the wire only when
// ContentExists.
type Publish struct {
	RequestID     uint64
	Namespace     Namespace
	Name          string
	TrackAlias    uint64
	GroupOrder    GroupOrder
	ContentExists bool
	Largest       Location
	Forward       bool
	Params        Parameters
}

func (*Publish) Type() MessageType { return TypePublish }

func (m *Publish) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.fullTrackName(m.Namespace, m.Name)
	w.varint("track alias", m.TrackAlias)
	w.groupOrder(m.GroupOrder, false)
	w.bool(m.ContentExists)
	if m.ContentExists {
		w.location("largest", m.Largest)
	}
	w.bool(m.Forward)
	w.params(m.Params, rulesPublish)
}

func (m *Publish) parseBody(p *parser) {
	m.RequestID = p.varint()
	m.Namespace, m.Name = p.fullTrackName()
	m.TrackAlias = p.varint()
	m.GroupOrder = p.groupOrder(false)
	m.ContentExists = p.bool("content exists")
	if m.ContentExists {
		m.Largest = p.location()
	}
	m.Forward = p.bool("forward")
	m.Params = p.params(rulesPublish)
}

// PublishOK is PUBLISH_OK (0x1E, §9.14).
type PublishOK struct {
	RequestID          uint64
	Forward            bool
	SubscriberPriority uint8
	GroupOrder         GroupOrder
	Filter             Filter
	Params             Parameters
}

func (*PublishOK) Type() MessageType { return TypePublishOK }

func (m *PublishOK) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.bool(m.Forward)
	w.uint8(m.SubscriberPriority)
	w.groupOrder(m.GroupOrder, false)
	w.filter(m.Filter)
	w.params(m.Params, rulesPublishOK)
}

func (m *PublishOK) parseBody(p *parser) {
	m.RequestID = p.varint()
	m.Forward = p.bool("forward")
	m.SubscriberPriority = p.uint8()
	m.GroupOrder = p.groupOrder(false)
	m.Filter = p.filter()
	m.Params = p.params(rulesPublishOK)
}

// PublishError is PUBLISH_ERROR (0x1F, §9.15).
type PublishError struct {
	RequestID uint64
	Code      PublishErrorCode
	Reason    string
}

func (*PublishError) Type() MessageType { return TypePublishError }

func (m *PublishError) appendBody(w *builder) {
	appendRequestError(w, m.RequestID, uint64(m.Code), m.Reason)
}

func (m *PublishError) parseBody(p *parser) {
	var code uint64
	m.RequestID, code, m.Reason = parseRequestError(p)
	m.Code = PublishErrorCode(code)
}

// FetchType says what a FETCH asks for (§9.16).
type FetchType uint64

// Fetch types.
const (
	FetchStandalone      FetchType = 0x1
	FetchRelativeJoining FetchType = 0x2
	FetchAbsoluteJoining FetchType = 0x3
)

func (f FetchType) String() string {
	switch f {
	case FetchStandalone:
		return "Standalone"
	case FetchRelativeJoining:
		return "RelativeJoining"
	case FetchAbsoluteJoining:
		return "AbsoluteJoining"
	}
	return fmt.Sprintf("0x%x", uint64(f))
}

// Fetch is FETCH (0x16, §9.16). A standalone fetch carries Namespace, Name,
// Start and End; End is sent as on the wire: {G, 0} asks for all of group G,
// {G, N} for objects before N. A joining fetch carries JoiningRequestID and
// JoiningStart (groups before the subscription's largest for a relative
// fetch, a group ID for an absolute one).
type Fetch struct {
	RequestID          uint64
	SubscriberPriority uint8
	GroupOrder         GroupOrder
	FetchType          FetchType
	Namespace          Namespace
	Name               string
	Start              Location
	End                Location
	JoiningRequestID   uint64
	JoiningStart       uint64
	Params             Parameters
}

func (*Fetch) Type() MessageType { return TypeFetch }

func (m *Fetch) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.uint8(m.SubscriberPriority)
	w.groupOrder(m.GroupOrder, true)
	w.varint("fetch type", uint64(m.FetchType))
	switch m.FetchType {
	case FetchStandalone:
		w.fullTrackName(m.Namespace, m.Name)
		w.location("start", m.Start)
		w.location("end", m.End)
	case FetchRelativeJoining, FetchAbsoluteJoining:
		w.varint("joining request ID", m.JoiningRequestID)
		w.varint("joining start", m.JoiningStart)
	default:
		w.fail(violation("unknown fetch type %s", m.FetchType))
	}
	w.params(m.Params, rulesAuthOnly)
}

func (m *Fetch) parseBody(p *parser) {
	m.RequestID = p.varint()
	m.SubscriberPriority = p.uint8()
	m.GroupOrder = p.groupOrder(true)
	m.FetchType = FetchType(p.varint())
	if p.err != nil {
		return
	}
	switch m.FetchType {
	case FetchStandalone:
		m.Namespace, m.Name = p.fullTrackName()
		m.Start = p.location()
		m.End = p.location()
	case FetchRelativeJoining, FetchAbsoluteJoining:
		m.JoiningRequestID = p.varint()
		m.JoiningStart = p.varint()
	default:
		p.fail(violation("unknown fetch type %s", m.FetchType))
		return
	}
	m.Params = p.params(rulesAuthOnly)
}

// FetchOK is FETCH_OK (0x18, §9.17). End is encoded like FETCH's End.
type FetchOK struct {
	RequestID  uint64
	GroupOrder GroupOrder
	EndOfTrack bool
	End        Location
	Params     Parameters
}

func (*FetchOK) Type() MessageType { return TypeFetchOK }

func (m *FetchOK) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.groupOrder(m.GroupOrder, true) // see parseBody; the session never sends 0x0
	w.bool(m.EndOfTrack)
	w.location("end", m.End)
	w.params(m.Params, rulesFetchOK)
}

func (m *FetchOK) parseBody(p *parser) {
	m.RequestID = p.varint()
	// Group order 0x0 is a protocol error here (§9.17), but a harmless one
	// that deployed relays make: it parses, and the session's peer
	// deviation policy decides (moqtransport, "Peer deviations"). The codec
	// stays symmetric, so it encodes too; moqtransport never sends it.
	m.GroupOrder = p.groupOrder(true)
	m.EndOfTrack = p.bool("end of track")
	m.End = p.location()
	m.Params = p.params(rulesFetchOK)
}

// FetchError is FETCH_ERROR (0x19, §9.18).
type FetchError struct {
	RequestID uint64
	Code      FetchErrorCode
	Reason    string
}

func (*FetchError) Type() MessageType { return TypeFetchError }

func (m *FetchError) appendBody(w *builder) {
	appendRequestError(w, m.RequestID, uint64(m.Code), m.Reason)
}

func (m *FetchError) parseBody(p *parser) {
	var code uint64
	m.RequestID, code, m.Reason = parseRequestError(p)
	m.Code = FetchErrorCode(code)
}

// FetchCancel is FETCH_CANCEL (0x17, §9.19).
type FetchCancel struct {
	RequestID uint64
}

func (*FetchCancel) Type() MessageType { return TypeFetchCancel }

func (m *FetchCancel) appendBody(w *builder) { w.varint("request ID", m.RequestID) }
func (m *FetchCancel) parseBody(p *parser)   { m.RequestID = p.varint() }

// TrackStatus is TRACK_STATUS (0x0D, §9.20); its layout is SUBSCRIBE's.
type TrackStatus Subscribe

func (*TrackStatus) Type() MessageType            { return TypeTrackStatus }
func (m *TrackStatus) appendBody(w *builder)      { (*Subscribe)(m).appendBody(w) }
func (m *TrackStatus) parseBody(p *parser)        { (*Subscribe)(m).parse(p, rulesSubscribe) }
func (m *TrackStatusOK) appendBody(w *builder)    { (*SubscribeOK)(m).appendBody(w) }
func (m *TrackStatusOK) parseBody(p *parser)      { (*SubscribeOK)(m).parseBody(p) }
func (*TrackStatusOK) Type() MessageType          { return TypeTrackStatusOK }
func (*TrackStatusError) Type() MessageType       { return TypeTrackStatusError }
func (m *TrackStatusError) appendBody(w *builder) { (*SubscribeError)(m).appendBody(w) }
func (m *TrackStatusError) parseBody(p *parser)   { (*SubscribeError)(m).parseBody(p) }

// TrackStatusOK is TRACK_STATUS_OK (0x0E, §9.21); its layout is
// SUBSCRIBE_OK's, with Track Alias 0.
type TrackStatusOK SubscribeOK

// TrackStatusError is TRACK_STATUS_ERROR (0x0F, §9.22); its layout and
// codes are SUBSCRIBE_ERROR's.
type TrackStatusError SubscribeError

// PublishNamespace is PUBLISH_NAMESPACE (0x06, §9.23), once ANNOUNCE.
type PublishNamespace struct {
	RequestID uint64
	Namespace Namespace
	Params    Parameters
}

func (*PublishNamespace) Type() MessageType { return TypePublishNamespace }

func (m *PublishNamespace) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.namespace(m.Namespace)
	w.params(m.Params, rulesAuthOnly)
}

func (m *PublishNamespace) parseBody(p *parser) {
	m.RequestID = p.varint()
	m.Namespace = p.namespace()
	m.Params = p.params(rulesAuthOnly)
}

// PublishNamespaceOK is PUBLISH_NAMESPACE_OK (0x07, §9.24).
type PublishNamespaceOK struct {
	RequestID uint64
}

func (*PublishNamespaceOK) Type() MessageType { return TypePublishNamespaceOK }

func (m *PublishNamespaceOK) appendBody(w *builder) { w.varint("request ID", m.RequestID) }
func (m *PublishNamespaceOK) parseBody(p *parser)   { m.RequestID = p.varint() }

// PublishNamespaceError is PUBLISH_NAMESPACE_ERROR (0x08, §9.25).
type PublishNamespaceError struct {
	RequestID uint64
	Code      PublishNamespaceErrorCode
	Reason    string
}

func (*PublishNamespaceError) Type() MessageType { return TypePublishNamespaceError }

func (m *PublishNamespaceError) appendBody(w *builder) {
	appendRequestError(w, m.RequestID, uint64(m.Code), m.Reason)
}

func (m *PublishNamespaceError) parseBody(p *parser) {
	var code uint64
	m.RequestID, code, m.Reason = parseRequestError(p)
	m.Code = PublishNamespaceErrorCode(code)
}

// PublishNamespaceDone is PUBLISH_NAMESPACE_DONE (0x09, §9.26), once
// UNANNOUNCE.
type PublishNamespaceDone struct {
	Namespace Namespace
}

func (*PublishNamespaceDone) Type() MessageType { return TypePublishNamespaceDone }

func (m *PublishNamespaceDone) appendBody(w *builder) { w.namespace(m.Namespace) }
func (m *PublishNamespaceDone) parseBody(p *parser)   { m.Namespace = p.namespace() }

// PublishNamespaceCancel is PUBLISH_NAMESPACE_CANCEL (0x0C, §9.27), once
// ANNOUNCE_CANCEL; it uses the PUBLISH_NAMESPACE_ERROR codes.
type PublishNamespaceCancel struct {
	Namespace Namespace
	Code      PublishNamespaceErrorCode
	Reason    string
}

func (*PublishNamespaceCancel) Type() MessageType { return TypePublishNamespaceCancel }

func (m *PublishNamespaceCancel) appendBody(w *builder) {
	w.namespace(m.Namespace)
	w.varint("error code", uint64(m.Code))
	w.reasonPhrase(m.Reason)
}

func (m *PublishNamespaceCancel) parseBody(p *parser) {
	m.Namespace = p.namespace()
	m.Code = PublishNamespaceErrorCode(p.varint())
	m.Reason = p.reasonPhrase()
}

// SubscribeNamespace is SUBSCRIBE_NAMESPACE (0x11, §9.28).
type SubscribeNamespace struct {
	RequestID uint64
	Prefix    Namespace
	Params    Parameters
}

func (*SubscribeNamespace) Type() MessageType { return TypeSubscribeNamespace }

func (m *SubscribeNamespace) appendBody(w *builder) {
	w.varint("request ID", m.RequestID)
	w.namespace(m.Prefix)
	w.params(m.Params, rulesAuthOnly)
}

func (m *SubscribeNamespace) parseBody(p *parser) {
	m.RequestID = p.varint()
	m.Prefix = p.namespace()
	m.Params = p.params(rulesAuthOnly)
}

// SubscribeNamespaceOK is SUBSCRIBE_NAMESPACE_OK (0x12, §9.29).
type SubscribeNamespaceOK struct {
	RequestID uint64
}

func (*SubscribeNamespaceOK) Type() MessageType { return TypeSubscribeNamespaceOK }

func (m *SubscribeNamespaceOK) appendBody(w *builder) { w.varint("request ID", m.RequestID) }
func (m *SubscribeNamespaceOK) parseBody(p *parser)   { m.RequestID = p.varint() }

// SubscribeNamespaceError is SUBSCRIBE_NAMESPACE_ERROR (0x13, §9.30).
type SubscribeNamespaceError struct {
	RequestID uint64
	Code      SubscribeNamespaceErrorCode
	Reason    string
}

func (*SubscribeNamespaceError) Type() MessageType { return TypeSubscribeNamespaceError }

func (m *SubscribeNamespaceError) appendBody(w *builder) {
	appendRequestError(w, m.RequestID, uint64(m.Code), m.Reason)
}

func (m *SubscribeNamespaceError) parseBody(p *parser) {
	var code uint64
	m.RequestID, code, m.Reason = parseRequestError(p)
	m.Code = SubscribeNamespaceErrorCode(code)
}

// UnsubscribeNamespace is UNSUBSCRIBE_NAMESPACE (0x14, §9.31).
type UnsubscribeNamespace struct {
	Prefix Namespace
}

func (*UnsubscribeNamespace) Type() MessageType { return TypeUnsubscribeNamespace }

func (m *UnsubscribeNamespace) appendBody(w *builder) { w.namespace(m.Prefix) }
func (m *UnsubscribeNamespace) parseBody(p *parser)   { m.Prefix = p.namespace() }
