package wire

import (
	"errors"
	"fmt"
	"io"

	"github.com/quic-go/quic-go/quicvarint"
)

// MessageType is a control message type (§9, Table 1).
type MessageType uint64

// Control message types. 0x00, 0x01, 0x1B and 0x1C are not assigned in
// draft-14; 0x40 and 0x41 are reserved for old setup messages.
const (
	TypeSubscribeUpdate         MessageType = 0x02
	TypeSubscribe               MessageType = 0x03
	TypeSubscribeOK             MessageType = 0x04
	TypeSubscribeError          MessageType = 0x05
	TypePublishNamespace        MessageType = 0x06
	TypePublishNamespaceOK      MessageType = 0x07
	TypePublishNamespaceError   MessageType = 0x08
	TypePublishNamespaceDone    MessageType = 0x09
	TypeUnsubscribe             MessageType = 0x0A
	TypePublishDone             MessageType = 0x0B
	TypePublishNamespaceCancel  MessageType = 0x0C
	TypeTrackStatus             MessageType = 0x0D
	TypeTrackStatusOK           MessageType = 0x0E
	TypeTrackStatusError        MessageType = 0x0F
	TypeGoAway                  MessageType = 0x10
	TypeSubscribeNamespace      MessageType = 0x11
	TypeSubscribeNamespaceOK    MessageType = 0x12
	TypeSubscribeNamespaceError MessageType = 0x13
	TypeUnsubscribeNamespace    MessageType = 0x14
	TypeMaxRequestID            MessageType = 0x15
	TypeFetch                   MessageType = 0x16
	TypeFetchCancel             MessageType = 0x17
	TypeFetchOK                 MessageType = 0x18
	TypeFetchError              MessageType = 0x19
	TypeRequestsBlocked         MessageType = 0x1A
	TypePublish                 MessageType = 0x1D
	TypePublishOK               MessageType = 0x1E
	TypePublishError            MessageType = 0x1F
	TypeClientSetup             MessageType = 0x20
	TypeServerSetup             MessageType = 0x21
)

var messageNames = map[MessageType]string{
	TypeSubscribeUpdate:         "SUBSCRIBE_UPDATE",
	TypeSubscribe:               "SUBSCRIBE",
	TypeSubscribeOK:             "SUBSCRIBE_OK",
	TypeSubscribeError:          "SUBSCRIBE_ERROR",
	TypePublishNamespace:        "PUBLISH_NAMESPACE",
	TypePublishNamespaceOK:      "PUBLISH_NAMESPACE_OK",
	TypePublishNamespaceError:   "PUBLISH_NAMESPACE_ERROR",
	TypePublishNamespaceDone:    "PUBLISH_NAMESPACE_DONE",
	TypeUnsubscribe:             "UNSUBSCRIBE",
	TypePublishDone:             "PUBLISH_DONE",
	TypePublishNamespaceCancel:  "PUBLISH_NAMESPACE_CANCEL",
	TypeTrackStatus:             "TRACK_STATUS",
	TypeTrackStatusOK:           "TRACK_STATUS_OK",
	TypeTrackStatusError:        "TRACK_STATUS_ERROR",
	TypeGoAway:                  "GOAWAY",
	TypeSubscribeNamespace:      "SUBSCRIBE_NAMESPACE",
	TypeSubscribeNamespaceOK:    "SUBSCRIBE_NAMESPACE_OK",
	TypeSubscribeNamespaceError: "SUBSCRIBE_NAMESPACE_ERROR",
	TypeUnsubscribeNamespace:    "UNSUBSCRIBE_NAMESPACE",
	TypeMaxRequestID:            "MAX_REQUEST_ID",
	TypeFetch:                   "FETCH",
	TypeFetchCancel:             "FETCH_CANCEL",
	TypeFetchOK:                 "FETCH_OK",
	TypeFetchError:              "FETCH_ERROR",
	TypeRequestsBlocked:         "REQUESTS_BLOCKED",
	TypePublish:                 "PUBLISH",
	TypePublishOK:               "PUBLISH_OK",
	TypePublishError:            "PUBLISH_ERROR",
	TypeClientSetup:             "CLIENT_SETUP",
	TypeServerSetup:             "SERVER_SETUP",
}

func (t MessageType) String() string { return codeName(messageNames, t) }

// Message is a control message. The concrete types are the pointer types
// in this package (*Subscribe, *ClientSetup, ...).
type Message interface {
	Type() MessageType
	appendBody(w *builder)
	parseBody(p *parser)
}

// NewMessage returns an empty message of type t, or nil when draft-14
// assigns no message to t.
func NewMessage(t MessageType) Message {
	switch t {
	case TypeSubscribeUpdate:
		return new(SubscribeUpdate)
	case TypeSubscribe:
		return new(Subscribe)
	case TypeSubscribeOK:
		return new(SubscribeOK)
	case TypeSubscribeError:
		return new(SubscribeError)
	case TypePublishNamespace:
		return new(PublishNamespace)
	case TypePublishNamespaceOK:
		return new(PublishNamespaceOK)
	case TypePublishNamespaceError:
		return new(PublishNamespaceError)
	case TypePublishNamespaceDone:
		return new(PublishNamespaceDone)
	case TypeUnsubscribe:
		return new(Unsubscribe)
	case TypePublishDone:
		return new(PublishDone)
	case TypePublishNamespaceCancel:
		return new(PublishNamespaceCancel)
	case TypeTrackStatus:
		return new(TrackStatus)
	case TypeTrackStatusOK:
		return new(TrackStatusOK)
	case TypeTrackStatusError:
		return new(TrackStatusError)
	case TypeGoAway:
		return new(GoAway)
	case TypeSubscribeNamespace:
		return new(SubscribeNamespace)
	case TypeSubscribeNamespaceOK:
		return new(SubscribeNamespaceOK)
	case TypeSubscribeNamespaceError:
		return new(SubscribeNamespaceError)
	case TypeUnsubscribeNamespace:
		return new(UnsubscribeNamespace)
	case TypeMaxRequestID:
		return new(MaxRequestID)
	case TypeFetch:
		return new(Fetch)
	case TypeFetchCancel:
		return new(FetchCancel)
	case TypeFetchOK:
		return new(FetchOK)
	case TypeFetchError:
		return new(FetchError)
	case TypeRequestsBlocked:
		return new(RequestsBlocked)
	case TypePublish:
		return new(Publish)
	case TypePublishOK:
		return new(PublishOK)
	case TypePublishError:
		return new(PublishError)
	case TypeClientSetup:
		return new(ClientSetup)
	case TypeServerSetup:
		return new(ServerSetup)
	}
	return nil
}

// AppendMessage appends m framed as Type (i), Length (16), Payload. It fails,
// leaving b as it was, when a field breaks a draft-14 rule or the payload
// exceeds 65535 bytes.
func AppendMessage(b []byte, m Message) ([]byte, error) {
	start := len(b)
	w := builder{b: quicvarint.Append(b, uint64(m.Type()))}
	lenAt := len(w.b)
	w.b = append(w.b, 0, 0)
	m.appendBody(&w)
	if w.err != nil {
		return b[:start], fmt.Errorf("wire: encoding %s: %w", m.Type(), w.err)
	}
	n := len(w.b) - lenAt - 2
	if n > MaxControlPayload {
		return b[:start], fmt.Errorf("wire: encoding %s: payload is %d bytes, limit %d", m.Type(), n, MaxControlPayload)
	}
	w.b[lenAt] = byte(n >> 8)
	w.b[lenAt+1] = byte(n)
	return w.b, nil
}

// ParseMessage parses one framed control message from the start of b and
// returns it with the number of bytes it took. It returns io.ErrUnexpectedEOF
// when b does not yet hold the whole message; any other error is a
// *SessionError.
func ParseMessage(b []byte) (Message, int, error) {
	t, n, err := quicvarint.Parse(b)
	if err != nil {
		return nil, 0, io.ErrUnexpectedEOF
	}
	if NewMessage(MessageType(t)) == nil {
		return nil, 0, violation("unknown control message type 0x%x", t)
	}
	if len(b) < n+2 {
		return nil, 0, io.ErrUnexpectedEOF
	}
	l := int(b[n])<<8 | int(b[n+1])
	n += 2
	if len(b) < n+l {
		return nil, 0, io.ErrUnexpectedEOF
	}
	m, err := ParseMessageBody(MessageType(t), b[n:n+l])
	if err != nil {
		return nil, 0, err
	}
	return m, n + l, nil
}

// ParseMessageBody parses the payload of a message of type t. The payload
// must hold exactly one message: a payload that ends early or has bytes
// left over is a PROTOCOL_VIOLATION. The message does not alias body.
func ParseMessageBody(t MessageType, body []byte) (Message, error) {
	m := NewMessage(t)
	if m == nil {
		return nil, violation("unknown control message type 0x%x", uint64(t))
	}
	p := parser{b: body}
	m.parseBody(&p)
	if p.err != nil {
		if errors.Is(p.err, io.ErrUnexpectedEOF) {
			return nil, violation("%s: payload of %d bytes ends before the message does", t, len(body))
		}
		return nil, fmt.Errorf("%s: %w", t, p.err)
	}
	if p.remaining() != 0 {
		return nil, violation("%s: %d bytes left over after the message", t, p.remaining())
	}
	return m, nil
}

// GroupOrder is the order in which groups are delivered (§9.7).
type GroupOrder uint8

// Group orders. GroupOrderPublisher (use the original publisher's order) is
// allowed only in SUBSCRIBE, FETCH and TRACK_STATUS.
const (
	GroupOrderPublisher  GroupOrder = 0x0
	GroupOrderAscending  GroupOrder = 0x1
	GroupOrderDescending GroupOrder = 0x2
)

func (g GroupOrder) String() string {
	switch g {
	case GroupOrderPublisher:
		return "publisher"
	case GroupOrderAscending:
		return "ascending"
	case GroupOrderDescending:
		return "descending"
	}
	return fmt.Sprintf("0x%x", uint8(g))
}

func checkGroupOrder(g GroupOrder, allowPublisher bool) error {
	if g > GroupOrderDescending || (g == GroupOrderPublisher && !allowPublisher) {
		return violation("group order 0x%x is not allowed here", uint8(g))
	}
	return nil
}

func (w *builder) groupOrder(g GroupOrder, allowPublisher bool) {
	if err := checkGroupOrder(g, allowPublisher); err != nil {
		w.fail(err)
	}
	w.uint8(uint8(g))
}

func (p *parser) groupOrder(allowPublisher bool) GroupOrder {
	g := GroupOrder(p.uint8())
	if p.err == nil {
		if err := checkGroupOrder(g, allowPublisher); err != nil {
			p.fail(err)
		}
	}
	return g
}

// FilterType selects which objects a subscription delivers (§9.7).
type FilterType uint64

// Filter types.
const (
	FilterNextGroupStart FilterType = 0x1
	FilterLargestObject  FilterType = 0x2
	FilterAbsoluteStart  FilterType = 0x3
	FilterAbsoluteRange  FilterType = 0x4
)

func (f FilterType) String() string {
	switch f {
	case FilterNextGroupStart:
		return "NextGroupStart"
	case FilterLargestObject:
		return "LargestObject"
	case FilterAbsoluteStart:
		return "AbsoluteStart"
	case FilterAbsoluteRange:
		return "AbsoluteRange"
	}
	return fmt.Sprintf("0x%x", uint64(f))
}

// Filter is a subscription filter. Start is on the wire for AbsoluteStart
// and AbsoluteRange; EndGroup, an inclusive group ID, only for AbsoluteRange.
type Filter struct {
	Type     FilterType
	Start    Location
	EndGroup uint64
}

func (w *builder) filter(f Filter) {
	if f.Type < FilterNextGroupStart || f.Type > FilterAbsoluteRange {
		w.fail(violation("unknown filter type %s", f.Type))
		return
	}
	w.varint("filter type", uint64(f.Type))
	if f.Type >= FilterAbsoluteStart {
		w.location("start", f.Start)
	}
	if f.Type == FilterAbsoluteRange {
		w.varint("end group", f.EndGroup)
	}
}

func (p *parser) filter() Filter {
	f := Filter{Type: FilterType(p.varint())}
	if p.err != nil {
		return f
	}
	switch f.Type {
	case FilterNextGroupStart, FilterLargestObject:
	case FilterAbsoluteStart:
		f.Start = p.location()
	case FilterAbsoluteRange:
		f.Start = p.location()
		f.EndGroup = p.varint()
	default:
		p.fail(violation("unknown filter type %s", f.Type))
	}
	return f
}

// Version is a MoQT version number.
type Version uint64

// Versions.
const (
	Draft13 Version = 0xff00000d
	Draft14 Version = 0xff00000e
)

func (v Version) String() string {
	if v>>8 == 0xff0000 {
		return fmt.Sprintf("draft-%02d", uint64(v&0xff))
	}
	return fmt.Sprintf("0x%x", uint64(v))
}
