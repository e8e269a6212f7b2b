package wire

import (
	"fmt"
	"io"
	"iter"

	"github.com/quic-go/quic-go/quicvarint"
)

// ObjectStatus is an object's status (§10.2.1.1). A zero-length object
// carries it explicitly; any other object is Normal.
type ObjectStatus uint64

// Object statuses. 0x2 is not defined in draft-14.
const (
	StatusNormal       ObjectStatus = 0x0
	StatusDoesNotExist ObjectStatus = 0x1
	StatusEndOfGroup   ObjectStatus = 0x3
	StatusEndOfTrack   ObjectStatus = 0x4
)

func (s ObjectStatus) String() string {
	switch s {
	case StatusNormal:
		return "Normal"
	case StatusDoesNotExist:
		return "DoesNotExist"
	case StatusEndOfGroup:
		return "EndOfGroup"
	case StatusEndOfTrack:
		return "EndOfTrack"
	}
	return fmt.Sprintf("0x%x", uint64(s))
}

// Valid reports whether s is a status draft-14 defines.
func (s ObjectStatus) Valid() bool {
	return s == StatusNormal || s == StatusDoesNotExist || s == StatusEndOfGroup || s == StatusEndOfTrack
}

// Object extension header types (§10.2.1.2, §11).
const (
	ExtImmutable        = 0x0B // bytes: nested key-value pairs, never changed by relays
	ExtPriorGroupIDGap  = 0x3C // varint: earlier groups that will never exist
	ExtPriorObjectIDGap = 0x3E // varint: earlier object IDs that will never exist
)

// Extensions holds an object's extension headers as they are on the wire: a
// run of key-value pairs, without the length that precedes them. Parsers hand
// out Extensions that alias their input and have been checked to be well
// formed; a relay forwards them unchanged.
type Extensions []byte

// BuildExtensions encodes pairs as an extension block.
func BuildExtensions(pairs ...KeyValue) (Extensions, error) {
	var b []byte
	for _, kv := range pairs {
		var err error
		if b, err = AppendKeyValue(b, kv); err != nil {
			return nil, err
		}
	}
	return Extensions(b), nil
}

// All yields the pairs of e. Odd-typed values alias e. Iteration stops at
// the first malformed pair, which a parsed Extensions never has.
func (e Extensions) All() iter.Seq[KeyValue] {
	return func(yield func(KeyValue) bool) {
		p := parser{b: e}
		for p.remaining() > 0 {
			kv := p.keyValue()
			if p.err != nil || !yield(kv) {
				return
			}
		}
	}
}

// Get returns the first extension of type t.
func (e Extensions) Get(t uint64) (KeyValue, bool) {
	for kv := range e.All() {
		if kv.Type == t {
			return kv, true
		}
	}
	return KeyValue{}, false
}

// CheckRules applies draft-14's rules on the extension headers of the
// object at loc (§11): at most one Prior Group ID Gap, not larger than the
// group ID; at most one Prior Object ID Gap, not larger than the object
// ID; and an Immutable Extensions value that is a whole number of
// well-formed pairs with no Immutable Extensions among them. An object
// that breaks one makes its track malformed (§2.5); the error says which
// rule. e is taken as parsed (a whole number of pairs).
func (e Extensions) CheckRules(loc Location) error {
	if len(e) == 0 {
		return nil
	}
	var groupGaps, objectGaps int
	for kv := range e.All() {
		switch kv.Type {
		case ExtPriorGroupIDGap:
			if groupGaps++; groupGaps > 1 {
				return fmt.Errorf("object %v has more than one Prior Group ID Gap", loc)
			}
			if kv.Value > loc.Group {
				return fmt.Errorf("object %v has a Prior Group ID Gap of %d, larger than its group ID", loc, kv.Value)
			}
		case ExtPriorObjectIDGap:
			if objectGaps++; objectGaps > 1 {
				return fmt.Errorf("object %v has more than one Prior Object ID Gap", loc)
			}
			if kv.Value > loc.Object {
				return fmt.Errorf("object %v has a Prior Object ID Gap of %d, larger than its object ID", loc, kv.Value)
			}
		case ExtImmutable:
			if err := validateExtensions(kv.Bytes); err != nil {
				return fmt.Errorf("object %v has Immutable Extensions that are not key-value pairs: %v", loc, err)
			}
			for inner := range Extensions(kv.Bytes).All() {
				if inner.Type == ExtImmutable {
					return fmt.Errorf("object %v has Immutable Extensions nested in Immutable Extensions", loc)
				}
			}
		}
	}
	return nil
}

// validateExtensions checks that b is a whole number of well-formed pairs.
func validateExtensions(b []byte) error {
	p := parser{b: b}
	for p.remaining() > 0 && p.err == nil {
		p.keyValue()
	}
	if p.err != nil {
		if p.err == io.ErrUnexpectedEOF {
			return violation("extension headers do not end at their declared length of %d bytes", len(b))
		}
		return p.err
	}
	return nil
}

// ObjectHeader is what precedes an object's payload. On a subgroup stream
// Group, Subgroup and PublisherPriority come from the stream header and ID
// from the delta; on a fetch stream each object carries all of them. A
// zero-length object carries a Status; any other is Normal.
type ObjectHeader struct {
	Group             uint64
	Subgroup          uint64
	ID                uint64
	PublisherPriority uint8
	Status            ObjectStatus
	Extensions        Extensions
	PayloadLength     uint64
}

// Location returns the object's location.
func (h *ObjectHeader) Location() Location { return Location{Group: h.Group, Object: h.ID} }

// checkStatus applies the rules shared by every object encoding: a status
// must be defined, a non-Normal status needs an empty payload, and an
// Object Does Not Exist has no extensions.
func checkStatus(status ObjectStatus, payloadLen uint64, extLen int) error {
	if !status.Valid() {
		return violation("unknown object status %s", status)
	}
	if status != StatusNormal && payloadLen != 0 {
		return violation("object with status %s has a %d-byte payload", status, payloadLen)
	}
	if status == StatusDoesNotExist && extLen > 0 {
		return violation("object with status DoesNotExist has extension headers")
	}
	return nil
}

// appendObjectTail writes [extensions length, extensions,] payload length
// and, for an empty payload, the status.
func appendObjectTail(b []byte, h *ObjectHeader, withExtensions bool) ([]byte, error) {
	if err := checkStatus(h.Status, h.PayloadLength, len(h.Extensions)); err != nil {
		return b, err
	}
	if h.PayloadLength > MaxVarint {
		return b, fmt.Errorf("wire: payload length %d does not fit in a varint", h.PayloadLength)
	}
	if withExtensions {
		if err := validateExtensions(h.Extensions); err != nil {
			return b, err
		}
		b = quicvarint.Append(b, uint64(len(h.Extensions)))
		b = append(b, h.Extensions...)
	} else if len(h.Extensions) > 0 {
		return b, fmt.Errorf("wire: object has extensions but its stream type carries none")
	}
	b = quicvarint.Append(b, h.PayloadLength)
	if h.PayloadLength == 0 {
		b = quicvarint.Append(b, uint64(h.Status))
	}
	return b, nil
}

// parseObjectTail reads what appendObjectTail writes.
func (p *parser) objectTail(h *ObjectHeader, withExtensions bool) {
	if withExtensions {
		l := p.varint()
		h.Extensions = Extensions(p.bytes(l))
		if p.err == nil {
			p.fail(validateExtensions(h.Extensions))
		}
	}
	h.PayloadLength = p.varint()
	if p.err == nil && h.PayloadLength == 0 {
		h.Status = ObjectStatus(p.varint())
	}
	if p.err == nil {
		p.fail(checkStatus(h.Status, h.PayloadLength, len(h.Extensions)))
	}
}

// nextObjectID applies draft-14's delta rule: the first object's ID is the
// delta, each later one is the previous ID plus the delta plus one.
func nextObjectID(prev uint64, first bool, delta uint64) (uint64, error) {
	if first {
		return delta, nil
	}
	if delta >= MaxVarint-prev {
		return 0, violation("object ID delta %d after object %d exceeds 2^62-1", delta, prev)
	}
	return prev + delta + 1, nil
}
