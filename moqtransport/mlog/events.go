package mlog

import (
	"strings"
	"unicode/utf8"

	"github.com/moqgo/moq/moqtransport/wire"
)

// This file turns wire types into the "data" of qlog MoQT events, after
// draft-pardue-moq-qlog-moq-events-03 (the revision written against
// draft-ietf-moq-transport-14). Fields the draft does not define but that a
// reader of a draft-14 log needs are added as extension members, which the
// draft's $$ sockets allow; doc.go lists them.

// controlMessage writes the data of a control_message_created/parsed event.
func controlMessage(e *enc, m wire.Message) {
	name := messageName(m.Type())
	e.str("message_type", name)
	e.obj("message")
	e.str("type", name)
	switch m := m.(type) {
	case *wire.ClientSetup:
		e.uint("number_of_supported_versions", uint64(len(m.Versions)))
		e.arr("supported_versions")
		for _, v := range m.Versions {
			e.uintElem(uint64(v))
		}
		e.endArr()
		setupParams(e, m.Params)
	case *wire.ServerSetup:
		e.uint("selected_version", uint64(m.Version))
		setupParams(e, m.Params)
	case *wire.GoAway:
		e.raw("new_session_uri", []byte(m.NewSessionURI), true)
	case *wire.MaxRequestID:
		e.uint("request_id", m.Max)
	case *wire.RequestsBlocked:
		e.uint("maximum_request_id", m.Max)
	case *wire.Subscribe:
		subscribe(e, m)
	case *wire.TrackStatus:
		subscribe(e, (*wire.Subscribe)(m))
	case *wire.SubscribeOK:
		subscribeOK(e, m)
	case *wire.TrackStatusOK:
		subscribeOK(e, (*wire.SubscribeOK)(m))
	case *wire.SubscribeError:
		requestError(e, m.RequestID, uint64(m.Code), m.Code.String(), m.Reason)
	case *wire.TrackStatusError:
		requestError(e, m.RequestID, uint64(m.Code), m.Code.String(), m.Reason)
	case *wire.SubscribeUpdate:
		e.uint("request_id", m.RequestID)
		e.uint("subscription_request_id", m.SubscriptionRequestID)
		location(e, "start_location", m.Start)
		// As on the wire: the end group plus one, 0 for open-ended.
		var end uint64
		if m.HasEndGroup {
			end = m.EndGroup + 1
		}
		e.uint("end_group", end)
		e.uint("subscriber_priority", uint64(m.SubscriberPriority))
		e.flag("forward", m.Forward)
		params(e, m.Params)
	case *wire.Unsubscribe:
		e.uint("request_id", m.RequestID)
	case *wire.PublishDone:
		e.uint("request_id", m.RequestID)
		e.uint("status_code", uint64(m.StatusCode))
		e.str("status_code_name", m.StatusCode.String())
		e.uint("stream_count", m.StreamCount)
		reason(e, m.Reason)
	case *wire.Publish:
		e.uint("request_id", m.RequestID)
		trackName(e, m.Namespace, m.Name)
		e.uint("track_alias", m.TrackAlias)
		e.uint("group_order", uint64(m.GroupOrder))
		e.flag("content_exists", m.ContentExists)
		if m.ContentExists {
			location(e, "largest", m.Largest)
		}
		e.flag("forward", m.Forward)
		params(e, m.Params)
	case *wire.PublishOK:
		e.uint("request_id", m.RequestID)
		e.flag("forward", m.Forward)
		e.uint("subscriber_priority", uint64(m.SubscriberPriority))
		e.uint("group_order", uint64(m.GroupOrder))
		filter(e, m.Filter, "start")
		params(e, m.Params)
	case *wire.PublishError:
		requestError(e, m.RequestID, uint64(m.Code), m.Code.String(), m.Reason)
	case *wire.Fetch:
		e.uint("request_id", m.RequestID)
		e.uint("subscriber_priority", uint64(m.SubscriberPriority))
		e.uint("group_order", uint64(m.GroupOrder))
		e.uint("fetch_type", uint64(m.FetchType))
		switch m.FetchType {
		case wire.FetchStandalone:
			trackName(e, m.Namespace, m.Name)
			location(e, "start_location", m.Start)
			location(e, "end_location", m.End)
		default:
			// The draft's CDDL makes track_namespace mandatory; a
			// joining fetch carries none on the wire.
			namespace(e, "track_namespace", nil)
			e.uint("joining_request_id", m.JoiningRequestID)
			if m.FetchType == wire.FetchRelativeJoining {
				e.uint("preceding_group_offset", m.JoiningStart)
			} else {
				e.uint("joining_start", m.JoiningStart)
			}
		}
		params(e, m.Params)
	case *wire.FetchOK:
		e.uint("request_id", m.RequestID)
		e.uint("group_order", uint64(m.GroupOrder))
		e.flag("end_of_track", m.EndOfTrack)
		location(e, "end_location", m.End)
		params(e, m.Params)
	case *wire.FetchError:
		requestError(e, m.RequestID, uint64(m.Code), m.Code.String(), m.Reason)
	case *wire.FetchCancel:
		e.uint("request_id", m.RequestID)
	case *wire.PublishNamespace:
		e.uint("request_id", m.RequestID)
		namespace(e, "track_namespace", m.Namespace)
		params(e, m.Params)
	case *wire.PublishNamespaceOK:
		e.uint("request_id", m.RequestID)
	case *wire.PublishNamespaceError:
		requestError(e, m.RequestID, uint64(m.Code), m.Code.String(), m.Reason)
	case *wire.PublishNamespaceDone:
		namespace(e, "track_namespace", m.Namespace)
	case *wire.PublishNamespaceCancel:
		namespace(e, "track_namespace", m.Namespace)
		errorCode(e, uint64(m.Code), m.Code.String())
		reason(e, m.Reason)
	case *wire.SubscribeNamespace:
		e.uint("request_id", m.RequestID)
		namespace(e, "track_namespace_prefix", m.Prefix)
		params(e, m.Params)
	case *wire.SubscribeNamespaceOK:
		e.uint("request_id", m.RequestID)
	case *wire.SubscribeNamespaceError:
		requestError(e, m.RequestID, uint64(m.Code), m.Code.String(), m.Reason)
	case *wire.UnsubscribeNamespace:
		namespace(e, "track_namespace_prefix", m.Prefix)
	}
	e.end()
}

// messageName is the draft's name for a message type in snake case:
// SUBSCRIBE_OK is "subscribe_ok". An unassigned type gets "unknown".
func messageName(t wire.MessageType) string {
	if n, ok := messageNames[t]; ok {
		return n
	}
	return "unknown"
}

// messageNames is computed once so that logging a message allocates no
// name.
var messageNames = func() map[wire.MessageType]string {
	m := make(map[wire.MessageType]string)
	for t := wire.MessageType(0); t <= 0x41; t++ {
		if wire.NewMessage(t) != nil {
			m[t] = strings.ToLower(t.String())
		}
	}
	return m
}()

func subscribe(e *enc, m *wire.Subscribe) {
	e.uint("request_id", m.RequestID)
	trackName(e, m.Namespace, m.Name)
	e.uint("subscriber_priority", uint64(m.SubscriberPriority))
	e.uint("group_order", uint64(m.GroupOrder))
	e.flag("forward", m.Forward)
	filter(e, m.Filter, "start_location")
	params(e, m.Params)
}

func subscribeOK(e *enc, m *wire.SubscribeOK) {
	e.uint("request_id", m.RequestID)
	e.uint("track_alias", m.TrackAlias)
	e.uint("expires", m.Expires)
	e.uint("group_order", uint64(m.GroupOrder))
	e.flag("content_exists", m.ContentExists)
	if m.ContentExists {
		location(e, "largest_location", m.Largest)
	}
	params(e, m.Params)
}

// filter writes a subscription filter's fields as the message carries them:
// filter_type, the start for AbsoluteStart and AbsoluteRange (under
// startKey: SUBSCRIBE says start_location, PUBLISH_OK start), the end group
// for AbsoluteRange.
func filter(e *enc, f wire.Filter, startKey string) {
	e.uint("filter_type", uint64(f.Type))
	if f.Type == wire.FilterAbsoluteStart || f.Type == wire.FilterAbsoluteRange {
		location(e, startKey, f.Start)
	}
	if f.Type == wire.FilterAbsoluteRange {
		e.uint("end_group", f.EndGroup)
	}
}

func location(e *enc, k string, l wire.Location) {
	e.obj(k)
	e.uint("group", l.Group)
	e.uint("object", l.Object)
	e.end()
}

func trackName(e *enc, ns wire.Namespace, name string) {
	namespace(e, "track_namespace", ns)
	e.key("track_name")
	e.byteString(name)
}

// namespace writes a tuple as [*MOQTByteString].
func namespace(e *enc, k string, ns wire.Namespace) {
	e.arr(k)
	for _, f := range ns {
		e.sep()
		e.byteString(f)
	}
	e.endArr()
}

func requestError(e *enc, id, code uint64, name, why string) {
	e.uint("request_id", id)
	errorCode(e, code, name)
	reason(e, why)
}

func errorCode(e *enc, code uint64, name string) {
	e.uint("error_code", code)
	e.str("error_code_name", name)
}

// reason writes a reason phrase as reason when it is UTF-8, as
// reason_bytes otherwise (§4 of the qlog draft).
func reason(e *enc, s string) {
	if utf8.ValidString(s) {
		e.str("reason", s)
	} else {
		e.hex("reason_bytes", []byte(s))
	}
}

// Names of the message parameters draft-14 defines (§9.2.1); setup
// parameters have names of their own.
const (
	nameUnknown = "unknown"
	nameToken   = "authorization_token"
)

// params writes number_of_parameters and the parameters of a request.
func params(e *enc, ps wire.Parameters) {
	e.uint("number_of_parameters", uint64(len(ps)))
	if len(ps) == 0 {
		return
	}
	e.arr("parameters")
	for _, kv := range ps {
		e.elem()
		switch {
		case kv.Type == wire.ParamDeliveryTimeout && !kv.IsBytes():
			e.str("name", "delivery_timeout")
			e.uint("value", kv.Value)
		case kv.Type == wire.ParamMaxCacheDuration && !kv.IsBytes():
			e.str("name", "max_cache_duration")
			e.uint("value", kv.Value)
		case kv.Type == wire.ParamAuthorizationToken:
			token(e, kv.Bytes, false)
		default:
			unknownParam(e, kv)
		}
		e.end()
	}
	e.endArr()
}

// setupParams writes number_of_parameters and the setup parameters of
// CLIENT_SETUP or SERVER_SETUP. The names are those of the qlog draft's
// later revisions (-06), which name every draft-14 setup parameter; -03
// names only path and max_request_id.
func setupParams(e *enc, ps wire.Parameters) {
	e.uint("number_of_parameters", uint64(len(ps)))
	if len(ps) == 0 {
		return
	}
	e.arr("setup_parameters")
	for _, kv := range ps {
		e.elem()
		switch {
		case kv.Type == wire.SetupParamPath:
			e.str("name", "path")
			e.str("value", string(kv.Bytes))
		case kv.Type == wire.SetupParamMaxRequestID && !kv.IsBytes():
			e.str("name", "max_request_id")
			e.uint("value", kv.Value)
		case kv.Type == wire.SetupParamAuthorizationToken:
			token(e, kv.Bytes, true)
		case kv.Type == wire.SetupParamMaxAuthTokenCacheSize && !kv.IsBytes():
			e.str("name", "max_auth_token_cache_size")
			e.uint("value", kv.Value)
		case kv.Type == wire.SetupParamAuthority:
			e.str("name", "authority")
			e.str("value", string(kv.Bytes))
		case kv.Type == wire.SetupParamMOQTImplementation:
			e.str("name", "implementation")
			e.str("value", string(kv.Bytes))
		default:
			unknownParam(e, kv)
		}
		e.end()
	}
	e.endArr()
}

// token writes an AUTHORIZATION TOKEN parameter. The token's value is a
// credential: only its length is logged. The setup parameter names the alias
// type in text, the request parameter by number, as the drafts do.
func token(e *enc, v []byte, setup bool) {
	e.str("name", nameToken)
	t, err := wire.ParseToken(v)
	if err != nil {
		// Logged as received: a malformed token ends the request or the
		// session, and the log should show that it came.
		e.bool("malformed", true)
		e.uint("length", uint64(len(v)))
		return
	}
	if setup {
		e.str("alias_type", strings.ToLower(t.AliasType.String()))
	} else {
		e.uint("alias_type", uint64(t.AliasType))
	}
	switch t.AliasType {
	case wire.TokenDelete, wire.TokenUseAlias:
		e.uint("token_alias", t.Alias)
	case wire.TokenRegister:
		e.uint("token_alias", t.Alias)
		e.uint("token_type", t.Type)
		e.raw("token_value", t.Value, false)
	case wire.TokenUseValue:
		e.uint("token_type", t.Type)
		e.raw("token_value", t.Value, false)
	}
}

// unknownParam writes a parameter the draft names no field for: its type
// as name_bytes and its varint value or its bytes (a RawInfo, the data cut
// to maxRawData bytes).
func unknownParam(e *enc, kv wire.KeyValue) {
	e.str("name", nameUnknown)
	e.uint("name_bytes", kv.Type)
	if kv.IsBytes() {
		e.uint("length", uint64(len(kv.Bytes)))
		e.raw("value_bytes", kv.Bytes, true)
	} else {
		e.uint("value", kv.Value)
	}
}

// subgroupHeader writes the data of a subgroup_header_created/parsed event.
// subgroup_id is present when it is known: always for a created header and
// for the zero and explicit ID modes; a parsed header of the "first object's
// ID" mode learns it only from the first object.
func subgroupHeader(e *enc, created bool, h *wire.SubgroupHeader) {
	e.uint("track_alias", h.TrackAlias)
	e.uint("group_id", h.GroupID)
	if created || h.IDMode != wire.SubgroupIDFirstObject || h.SubgroupID != 0 {
		e.uint("subgroup_id", h.SubgroupID)
	}
	e.uint("publisher_priority", uint64(h.PublisherPriority))
	e.uint("subgroup_id_mode", uint64(h.IDMode))
	e.bool("contains_end_of_group", h.EndOfGroup)
	e.bool("extensions_present", h.Extensions)
}

// subgroupObject writes the data of a subgroup_object_created/parsed event.
// The stream's header carries the group and subgroup: a written object's
// header leaves them 0.
func subgroupObject(e *enc, h *wire.SubgroupHeader, o *wire.ObjectHeader) {
	group, subgroup := o.Group, o.Subgroup
	if h != nil {
		group = h.GroupID
		if h.SubgroupID != 0 {
			subgroup = h.SubgroupID
		}
	}
	e.uint("group_id", group)
	e.uint("subgroup_id", subgroup)
	e.uint("object_id", o.ID)
	extensions(e, o.Extensions)
	e.uint("object_payload_length", o.PayloadLength)
	if o.PayloadLength == 0 {
		e.uint("object_status", uint64(o.Status))
	}
}

// fetchObject writes the data of a fetch_object_created/parsed event.
func fetchObject(e *enc, o *wire.ObjectHeader) {
	e.uint("group_id", o.Group)
	e.uint("subgroup_id", o.Subgroup)
	e.uint("object_id", o.ID)
	e.uint("publisher_priority", uint64(o.PublisherPriority))
	extensions(e, o.Extensions)
	e.uint("object_payload_length", o.PayloadLength)
	if o.PayloadLength == 0 {
		e.uint("object_status", uint64(o.Status))
	}
}

// datagram writes the data of an object_datagram_created/parsed event. A
// status datagram (types 0x20-0x21) has object_status and no payload.
func datagram(e *enc, d *wire.Datagram) {
	e.uint("track_alias", d.TrackAlias)
	e.uint("group_id", d.Group)
	e.uint("object_id", d.Object)
	e.uint("publisher_priority", uint64(d.PublisherPriority))
	extensions(e, d.Extensions)
	if d.IsStatus {
		e.uint("object_status", uint64(d.Status))
	} else {
		e.uint("object_payload_length", uint64(len(d.Payload)))
	}
	e.bool("end_of_group", d.EndOfGroup)
}

// extensions writes extension_headers_length (the bytes of the block, as on
// the wire) and, when there are any, each header's type with its varint
// value or its length. Byte values are never logged.
func extensions(e *enc, x wire.Extensions) {
	e.uint("extension_headers_length", uint64(len(x)))
	if len(x) == 0 {
		return
	}
	e.arr("extension_headers")
	for kv := range x.All() {
		e.elem()
		e.uint("header_type", kv.Type)
		if kv.IsBytes() {
			e.uint("header_length", uint64(len(kv.Bytes)))
		} else {
			e.uint("header_value", kv.Value)
		}
		e.end()
	}
	e.endArr()
}
