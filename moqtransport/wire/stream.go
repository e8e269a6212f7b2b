package wire

import (
	"fmt"

	"github.com/quic-go/quic-go/quicvarint"
)

// StreamTypeFetch opens a fetch stream (§10.4.4). Subgroup streams use the
// twelve types 0x10-0x15 and 0x18-0x1D.
const StreamTypeFetch = 0x05

// Bits of a subgroup stream type (§10.4.2), on top of the base 0x10.
const (
	subgroupBase          = 0x10
	subgroupBitExtensions = 0x01
	subgroupMaskIDMode    = 0x06
	subgroupBitEndOfGroup = 0x08
	subgroupIDModeShift   = 1
)

// SubgroupIDMode says where a subgroup stream's Subgroup ID comes from.
type SubgroupIDMode uint8

// Subgroup ID modes, as bits 1-2 of the stream type.
const (
	SubgroupIDZero        SubgroupIDMode = 0 // the Subgroup ID is 0 and not sent
	SubgroupIDFirstObject SubgroupIDMode = 1 // the Subgroup ID is the first object's ID
	SubgroupIDExplicit    SubgroupIDMode = 2 // the Subgroup ID is a header field
)

// IsSubgroupStreamType reports whether t is one of the twelve subgroup
// stream types.
func IsSubgroupStreamType(t uint64) bool {
	return t >= 0x10 && t <= 0x1D && t&subgroupMaskIDMode != subgroupMaskIDMode
}

// SubgroupHeader opens a subgroup stream (§10.4.2). Extensions means every
// object on the stream carries an extension-length field; EndOfGroup means
// the last object before the stream's FIN is the last object of the group.
// With SubgroupIDFirstObject, SubgroupID is not sent: a parser leaves it 0
// and SubgroupState fills it in from the first object.
type SubgroupHeader struct {
	TrackAlias        uint64
	GroupID           uint64
	SubgroupID        uint64
	PublisherPriority uint8
	IDMode            SubgroupIDMode
	Extensions        bool
	EndOfGroup        bool
}

// StreamType returns the stream type that encodes the header's flags.
func (h *SubgroupHeader) StreamType() uint64 {
	t := uint64(subgroupBase) | uint64(h.IDMode)<<subgroupIDModeShift
	if h.Extensions {
		t |= subgroupBitExtensions
	}
	if h.EndOfGroup {
		t |= subgroupBitEndOfGroup
	}
	return t
}

// AppendSubgroupHeader appends the stream type and the header.
func AppendSubgroupHeader(b []byte, h *SubgroupHeader) ([]byte, error) {
	if h.IDMode > SubgroupIDExplicit {
		return b, fmt.Errorf("wire: unknown subgroup ID mode %d", h.IDMode)
	}
	if h.TrackAlias > MaxVarint || h.GroupID > MaxVarint || h.SubgroupID > MaxVarint {
		return b, fmt.Errorf("wire: subgroup header field does not fit in a varint")
	}
	b = quicvarint.Append(b, h.StreamType())
	b = quicvarint.Append(b, h.TrackAlias)
	b = quicvarint.Append(b, h.GroupID)
	if h.IDMode == SubgroupIDExplicit {
		b = quicvarint.Append(b, h.SubgroupID)
	}
	return append(b, h.PublisherPriority), nil
}

// ParseSubgroupHeader parses a subgroup header, stream type included.
func ParseSubgroupHeader(b []byte) (SubgroupHeader, int, error) {
	p := parser{b: b}
	t := p.varint()
	if p.err != nil {
		return SubgroupHeader{}, 0, p.err
	}
	if !IsSubgroupStreamType(t) {
		return SubgroupHeader{}, 0, violation("unknown subgroup stream type 0x%x", t)
	}
	h := p.subgroupHeader(t)
	if p.err != nil {
		return SubgroupHeader{}, 0, p.err
	}
	return h, p.n, nil
}

// subgroupFlags returns a header with the flags that stream type t encodes.
func subgroupFlags(t uint64) SubgroupHeader {
	return SubgroupHeader{
		IDMode:     SubgroupIDMode((t & subgroupMaskIDMode) >> subgroupIDModeShift),
		Extensions: t&subgroupBitExtensions != 0,
		EndOfGroup: t&subgroupBitEndOfGroup != 0,
	}
}

func (p *parser) subgroupHeader(t uint64) SubgroupHeader {
	h := subgroupFlags(t)
	h.TrackAlias = p.varint()
	h.GroupID = p.varint()
	if h.IDMode == SubgroupIDExplicit {
		h.SubgroupID = p.varint()
	}
	h.PublisherPriority = p.uint8()
	return h
}

// SubgroupState encodes or decodes the objects of one subgroup stream: it
// keeps the header and the previous object's ID that draft-14's object ID
// deltas refer to. Use one SubgroupState per stream and direction.
type SubgroupState struct {
	Header  SubgroupHeader
	prev    uint64
	started bool
}

// NewSubgroupState returns the state for a stream that opened with h.
func NewSubgroupState(h SubgroupHeader) *SubgroupState { return &SubgroupState{Header: h} }

// Objects returns whether an object has been encoded or decoded yet.
func (s *SubgroupState) Objects() bool { return s.started }

// AppendObject appends h's header (delta-coded object ID, extensions when
// the stream type carries them, payload length, status for an empty
// payload); the payload itself follows. IDs must increase along the stream.
// Group, Subgroup and PublisherPriority in h are ignored: the stream header
// carries them.
func (s *SubgroupState) AppendObject(b []byte, h *ObjectHeader) ([]byte, error) {
	delta := h.ID
	if s.started {
		if h.ID <= s.prev {
			return b, fmt.Errorf("wire: object %d after object %d: IDs on a subgroup stream must increase", h.ID, s.prev)
		}
		delta = h.ID - s.prev - 1
	} else if s.Header.IDMode == SubgroupIDFirstObject && h.ID != s.Header.SubgroupID {
		return b, fmt.Errorf("wire: first object %d must equal the subgroup ID %d for this stream type", h.ID, s.Header.SubgroupID)
	}
	if h.ID > MaxVarint {
		return b, fmt.Errorf("wire: object ID %d does not fit in a varint", h.ID)
	}
	start := len(b)
	b = quicvarint.Append(b, delta)
	b, err := appendObjectTail(b, h, s.Header.Extensions)
	if err != nil {
		return b[:start], err
	}
	s.prev, s.started = h.ID, true
	return b, nil
}

// ParseObject parses the header of the next object from b and returns it
// with the bytes it took; the payload follows. With too few bytes it
// returns io.ErrUnexpectedEOF and leaves the state unchanged, so the call
// can be repeated with more data. The returned Extensions alias b. It does
// not allocate.
func (s *SubgroupState) ParseObject(b []byte) (ObjectHeader, int, error) {
	p := parser{b: b}
	delta := p.varint()
	h := ObjectHeader{}
	p.objectTail(&h, s.Header.Extensions)
	if p.err != nil {
		return ObjectHeader{}, 0, p.err
	}
	if err := s.accept(&h, delta); err != nil {
		return ObjectHeader{}, 0, err
	}
	return h, p.n, nil
}

// accept computes the object ID from delta, fills in what the stream header
// carries, and advances the state.
func (s *SubgroupState) accept(h *ObjectHeader, delta uint64) error {
	id, err := nextObjectID(s.prev, !s.started, delta)
	if err != nil {
		return err
	}
	if !s.started && s.Header.IDMode == SubgroupIDFirstObject {
		s.Header.SubgroupID = id
	}
	h.ID = id
	h.Group = s.Header.GroupID
	h.Subgroup = s.Header.SubgroupID
	h.PublisherPriority = s.Header.PublisherPriority
	s.prev, s.started = id, true
	return nil
}

// AppendFetchHeader appends a fetch stream header for requestID.
func AppendFetchHeader(b []byte, requestID uint64) ([]byte, error) {
	if requestID > MaxVarint {
		return b, fmt.Errorf("wire: request ID %d does not fit in a varint", requestID)
	}
	b = quicvarint.Append(b, StreamTypeFetch)
	return quicvarint.Append(b, requestID), nil
}

// ParseFetchHeader parses a fetch stream header, stream type included, and
// returns the request ID.
func ParseFetchHeader(b []byte) (uint64, int, error) {
	p := parser{b: b}
	if t := p.varint(); p.err == nil && t != StreamTypeFetch {
		return 0, 0, violation("stream type 0x%x is not a fetch stream", t)
	}
	id := p.varint()
	if p.err != nil {
		return 0, 0, p.err
	}
	return id, p.n, nil
}

// AppendFetchObject appends a fetch stream object header (§10.4.4): group,
// subgroup and object ID in full, priority, extensions, payload length and,
// for an empty payload, the status. The payload follows.
func AppendFetchObject(b []byte, h *ObjectHeader) ([]byte, error) {
	if h.Group > MaxVarint || h.Subgroup > MaxVarint || h.ID > MaxVarint {
		return b, fmt.Errorf("wire: fetch object location does not fit in a varint")
	}
	start := len(b)
	b = quicvarint.Append(b, h.Group)
	b = quicvarint.Append(b, h.Subgroup)
	b = quicvarint.Append(b, h.ID)
	b = append(b, h.PublisherPriority)
	b, err := appendObjectTail(b, h, true)
	if err != nil {
		return b[:start], err
	}
	return b, nil
}

// ParseFetchObject parses a fetch stream object header from b; the payload
// follows. The returned Extensions alias b. It does not allocate.
func ParseFetchObject(b []byte) (ObjectHeader, int, error) {
	p := parser{b: b}
	h := ObjectHeader{Group: p.varint(), Subgroup: p.varint(), ID: p.varint()}
	h.PublisherPriority = p.uint8()
	p.objectTail(&h, true)
	if p.err != nil {
		return ObjectHeader{}, 0, p.err
	}
	return h, p.n, nil
}

// StreamHeader is the header of any unidirectional data stream.
type StreamHeader struct {
	Type     uint64
	Subgroup SubgroupHeader // for subgroup streams
	FetchID  uint64         // for fetch streams: the FETCH's request ID
}

// IsFetch reports whether the header opens a fetch stream.
func (h *StreamHeader) IsFetch() bool { return h.Type == StreamTypeFetch }

// ParseStreamHeader parses the header of a data stream of either kind. An
// unknown stream type is a PROTOCOL_VIOLATION.
func ParseStreamHeader(b []byte) (StreamHeader, int, error) {
	p := parser{b: b}
	h := StreamHeader{Type: p.varint()}
	switch {
	case p.err != nil:
	case h.Type == StreamTypeFetch:
		h.FetchID = p.varint()
	case IsSubgroupStreamType(h.Type):
		h.Subgroup = p.subgroupHeader(h.Type)
	default:
		return StreamHeader{}, 0, violation("unknown data stream type 0x%x", h.Type)
	}
	if p.err != nil {
		return StreamHeader{}, 0, p.err
	}
	return h, p.n, nil
}
