package wire

import (
	"fmt"

	"github.com/quic-go/quic-go/quicvarint"
)

// Bits of an OBJECT_DATAGRAM type (§10.3.1): 0x00-0x07 carry a payload,
// 0x20 and 0x21 a status.
const (
	datagramBitExtensions = 0x01
	datagramBitEndOfGroup = 0x02
	datagramBitNoObjectID = 0x04
	datagramBitStatus     = 0x20
)

// IsDatagramType reports whether t is one of the ten OBJECT_DATAGRAM types.
func IsDatagramType(t uint64) bool { return t <= 0x07 || t == 0x20 || t == 0x21 }

// Datagram is an OBJECT_DATAGRAM (§10.3.1). A status datagram (IsStatus)
// carries Status and no payload; any other carries Payload, which runs to
// the end of the datagram. The Object ID is left off the wire when it is 0,
// unless ExplicitObjectID is set (a parser sets it when a zero ID was
// sent); status datagrams always send it.
type Datagram struct {
	TrackAlias        uint64
	Group             uint64
	Object            uint64
	PublisherPriority uint8
	EndOfGroup        bool
	ExplicitObjectID  bool
	IsStatus          bool
	Status            ObjectStatus
	Extensions        Extensions
	Payload           []byte
}

// Location returns the object's location.
func (d *Datagram) Location() Location { return Location{Group: d.Group, Object: d.Object} }

// DatagramType returns the type that encodes d's flags.
func (d *Datagram) DatagramType() uint64 {
	var t uint64
	if len(d.Extensions) > 0 {
		t |= datagramBitExtensions
	}
	if d.IsStatus {
		return t | datagramBitStatus
	}
	if d.EndOfGroup {
		t |= datagramBitEndOfGroup
	}
	if d.Object == 0 && !d.ExplicitObjectID {
		t |= datagramBitNoObjectID
	}
	return t
}

// AppendDatagram appends d as one datagram.
func AppendDatagram(b []byte, d *Datagram) ([]byte, error) {
	if d.TrackAlias > MaxVarint || d.Group > MaxVarint || d.Object > MaxVarint {
		return b, fmt.Errorf("wire: datagram field does not fit in a varint")
	}
	if d.IsStatus {
		if d.EndOfGroup {
			return b, fmt.Errorf("wire: a status datagram has no end-of-group flag; send status EndOfGroup instead")
		}
		if len(d.Payload) > 0 {
			return b, fmt.Errorf("wire: a status datagram has no payload")
		}
		if err := checkStatus(d.Status, 0, len(d.Extensions)); err != nil {
			return b, err
		}
	} else if d.Status != StatusNormal {
		return b, fmt.Errorf("wire: a payload datagram has status Normal; set IsStatus to send %s", d.Status)
	}
	if err := validateExtensions(d.Extensions); err != nil {
		return b, err
	}
	t := d.DatagramType()
	b = quicvarint.Append(b, t)
	b = quicvarint.Append(b, d.TrackAlias)
	b = quicvarint.Append(b, d.Group)
	if t&datagramBitNoObjectID == 0 {
		b = quicvarint.Append(b, d.Object)
	}
	b = append(b, d.PublisherPriority)
	if t&datagramBitExtensions != 0 {
		b = quicvarint.Append(b, uint64(len(d.Extensions)))
		b = append(b, d.Extensions...)
	}
	if d.IsStatus {
		return quicvarint.Append(b, uint64(d.Status)), nil
	}
	return append(b, d.Payload...), nil
}

// ParseDatagram parses a whole datagram. Payload and Extensions alias b.
// An unknown type, an extension block declared present but empty, or a bad
// status is a PROTOCOL_VIOLATION. It does not allocate.
func ParseDatagram(b []byte) (Datagram, error) {
	p := parser{b: b}
	t := p.varint()
	if p.err != nil {
		return Datagram{}, p.err
	}
	if !IsDatagramType(t) {
		return Datagram{}, violation("unknown datagram type 0x%x", t)
	}
	d := Datagram{
		IsStatus:   t&datagramBitStatus != 0,
		EndOfGroup: t&datagramBitEndOfGroup != 0,
	}
	d.TrackAlias = p.varint()
	d.Group = p.varint()
	if t&datagramBitNoObjectID == 0 {
		d.Object = p.varint()
		d.ExplicitObjectID = d.Object == 0 && !d.IsStatus
	}
	d.PublisherPriority = p.uint8()
	if t&datagramBitExtensions != 0 {
		l := p.varint()
		if p.err == nil && l == 0 {
			return Datagram{}, violation("datagram type 0x%x declares extensions but their length is 0", t)
		}
		d.Extensions = Extensions(p.bytes(l))
		if p.err == nil {
			p.fail(validateExtensions(d.Extensions))
		}
	}
	if d.IsStatus {
		d.Status = ObjectStatus(p.varint())
		if p.err == nil {
			p.fail(checkStatus(d.Status, 0, len(d.Extensions)))
		}
		if p.err == nil && p.remaining() != 0 {
			p.fail(violation("status datagram has %d bytes after the status", p.remaining()))
		}
	} else if p.err == nil {
		d.Payload = p.b[p.n:]
	}
	if p.err != nil {
		return Datagram{}, p.err
	}
	return d, nil
}
