// Package wire is the draft-ietf-moq-transport-14 codec: varints, key-value
// pairs, tuples, every control message, setup messages and their parameters,
// subgroup and fetch stream headers, objects with their status and
// extensions, datagrams, limits and error codes.
//
// Encoders append to a caller's buffer (AppendX(b, ...) ([]byte, error)) and
// refuse values the draft forbids. Parsers read from a byte slice and return
// the number of bytes consumed; a slice that ends too early gives
// io.ErrUnexpectedEOF, and anything the draft calls an error gives a
// *SessionError carrying the session termination code to close with. Parsers
// never panic and never allocate for a length before checking it against the
// draft's limit and the bytes actually present.
package wire

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/quic-go/quic-go/quicvarint"
)

// Limits from draft-14.
const (
	// MaxVarint is the largest value a QUIC varint carries (2^62-1).
	MaxVarint = quicvarint.Max
	// MaxControlPayload is the largest control message payload: the
	// length field is 16 bits (§9).
	MaxControlPayload = 1<<16 - 1
	// MaxKVPValueLen bounds the value of an odd-typed key-value pair (§1.4.2).
	MaxKVPValueLen = 1<<16 - 1
	// MaxNamespaceFields bounds the fields of a track namespace or namespace
	// prefix; the minimum is 1 (§2.4.1).
	MaxNamespaceFields = 32
	// MaxFullTrackNameLen bounds the sum of the namespace fields' lengths and
	// the track name's length (§2.4.1).
	MaxFullTrackNameLen = 4096
	// MaxReasonPhraseLen bounds a reason phrase (§1.4.3).
	MaxReasonPhraseLen = 1024
	// MaxGoAwayURILen bounds the GOAWAY New Session URI (§9.4).
	MaxGoAwayURILen = 8192
)

// parser reads fields from a byte slice with a sticky error: after the first
// failure every read returns a zero value, and err says what went wrong.
type parser struct {
	b   []byte
	n   int
	err error
}

func (p *parser) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

func (p *parser) remaining() int { return len(p.b) - p.n }

func (p *parser) varint() uint64 {
	if p.err != nil {
		return 0
	}
	v, l, err := quicvarint.Parse(p.b[p.n:])
	if err != nil {
		p.err = io.ErrUnexpectedEOF
		return 0
	}
	p.n += l
	return v
}

func (p *parser) uint8() uint8 {
	if p.err != nil {
		return 0
	}
	if p.n >= len(p.b) {
		p.err = io.ErrUnexpectedEOF
		return 0
	}
	v := p.b[p.n]
	p.n++
	return v
}

// bool reads a one-byte flag that must be 0 or 1.
func (p *parser) bool(field string) bool {
	v := p.uint8()
	if v > 1 {
		p.fail(violation("%s is %d, want 0 or 1", field, v))
	}
	return v == 1
}

// bytes returns the next n bytes without copying.
func (p *parser) bytes(n uint64) []byte {
	if p.err != nil {
		return nil
	}
	if n > uint64(p.remaining()) {
		p.err = io.ErrUnexpectedEOF
		return nil
	}
	v := p.b[p.n : p.n+int(n)]
	p.n += int(n)
	return v
}

// lengthPrefixed reads a varint length, checks it against limit, and returns
// that many bytes without copying.
func (p *parser) lengthPrefixed(field string, limit uint64) []byte {
	l := p.varint()
	if p.err != nil {
		return nil
	}
	if l > limit {
		p.fail(violation("%s is %d bytes, limit %d", field, l, limit))
		return nil
	}
	return p.bytes(l)
}

func (p *parser) location() Location {
	return Location{Group: p.varint(), Object: p.varint()}
}

func (p *parser) reasonPhrase() string {
	return string(p.lengthPrefixed("reason phrase", MaxReasonPhraseLen))
}

// builder appends fields with a sticky error.
type builder struct {
	b   []byte
	err error
}

func (w *builder) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

func (w *builder) varint(field string, v uint64) {
	if v > MaxVarint {
		w.fail(fmt.Errorf("wire: %s %d does not fit in a varint (max 2^62-1)", field, v))
		return
	}
	w.b = quicvarint.Append(w.b, v)
}

func (w *builder) uint8(v uint8) { w.b = append(w.b, v) }

func (w *builder) bool(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}

func (w *builder) lengthPrefixed(field string, v []byte, limit int) {
	if len(v) > limit {
		w.fail(violation("%s is %d bytes, limit %d", field, len(v), limit))
		return
	}
	w.b = quicvarint.Append(w.b, uint64(len(v)))
	w.b = append(w.b, v...)
}

func (w *builder) string(field string, v string, limit int) {
	if len(v) > limit {
		w.fail(violation("%s is %d bytes, limit %d", field, len(v), limit))
		return
	}
	w.b = quicvarint.Append(w.b, uint64(len(v)))
	w.b = append(w.b, v...)
}

func (w *builder) location(field string, l Location) {
	w.varint(field, l.Group)
	w.varint(field, l.Object)
}

func (w *builder) reasonPhrase(r string) { w.string("reason phrase", r, MaxReasonPhraseLen) }

// AppendVarint appends v as a QUIC varint, or fails when v exceeds 2^62-1.
func AppendVarint(b []byte, v uint64) ([]byte, error) {
	if v > MaxVarint {
		return b, fmt.Errorf("wire: %d does not fit in a varint (max 2^62-1)", v)
	}
	return quicvarint.Append(b, v), nil
}

// ParseVarint parses a QUIC varint, accepting non-minimal encodings as the
// draft requires.
func ParseVarint(b []byte) (uint64, int, error) {
	v, n, err := quicvarint.Parse(b)
	if err != nil {
		return 0, 0, io.ErrUnexpectedEOF
	}
	return v, n, nil
}

// Location is a (Group, Object) pair (§1.4.1), ordered by group then object.
type Location struct {
	Group  uint64
	Object uint64
}

// Compare returns -1, 0 or +1 as l is less than, equal to or greater than o.
func (l Location) Compare(o Location) int {
	switch {
	case l.Group < o.Group:
		return -1
	case l.Group > o.Group:
		return 1
	case l.Object < o.Object:
		return -1
	case l.Object > o.Object:
		return 1
	}
	return 0
}

// Less reports whether l sorts before o.
func (l Location) Less(o Location) bool { return l.Compare(o) < 0 }

func (l Location) String() string { return fmt.Sprintf("{%d,%d}", l.Group, l.Object) }

func appendUint16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
