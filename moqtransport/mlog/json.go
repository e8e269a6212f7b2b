package mlog

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"
)

// enc appends JSON to b. It writes the structure the events need and no
// more: objects, arrays, unsigned integers, booleans and strings. It does not
// allocate beyond growing b, so that logging an object is cheap.
//
// first is true when the next member of the open object or array is its
// first one (no comma before it). Nesting needs no stack: closing a
// container leaves its parent with at least one member, so first becomes
// false again.
type enc struct {
	b     []byte
	first bool
}

func (e *enc) sep() {
	if !e.first {
		e.b = append(e.b, ',')
	}
	e.first = false
}

// key writes the separator and "k":. Keys are ASCII literals from this
// package and need no escaping.
func (e *enc) key(k string) {
	e.sep()
	e.b = append(e.b, '"')
	e.b = append(e.b, k...)
	e.b = append(e.b, '"', ':')
}

func (e *enc) begin()    { e.b = append(e.b, '{'); e.first = true }
func (e *enc) end()      { e.b = append(e.b, '}'); e.first = false }
func (e *enc) beginArr() { e.b = append(e.b, '['); e.first = true }
func (e *enc) endArr()   { e.b = append(e.b, ']'); e.first = false }

// obj opens an object as the value of k.
func (e *enc) obj(k string) { e.key(k); e.begin() }

// arr opens an array as the value of k.
func (e *enc) arr(k string) { e.key(k); e.beginArr() }

// elem opens an object as the next element of an array.
func (e *enc) elem() { e.sep(); e.begin() }

func (e *enc) uint(k string, v uint64) {
	e.key(k)
	e.b = strconv.AppendUint(e.b, v, 10)
}

// uintElem writes v as the next element of an array.
func (e *enc) uintElem(v uint64) {
	e.sep()
	e.b = strconv.AppendUint(e.b, v, 10)
}

func (e *enc) bool(k string, v bool) {
	e.key(k)
	e.b = strconv.AppendBool(e.b, v)
}

// flag writes a boolean as the 0 or 1 the draft's uint8 fields hold.
func (e *enc) flag(k string, v bool) {
	var n uint64
	if v {
		n = 1
	}
	e.uint(k, n)
}

func (e *enc) str(k, v string) {
	e.key(k)
	e.b = appendString(e.b, v)
}

// hex writes v as a lowercase hexstring.
func (e *enc) hex(k string, v []byte) {
	e.key(k)
	e.b = append(e.b, '"')
	e.b = hex.AppendEncode(e.b, v)
	e.b = append(e.b, '"')
}

// byteString writes a MOQTByteString: {"value": text} when s is UTF-8,
// {"value_bytes": hexstring} when it is not.
func (e *enc) byteString(s string) {
	e.begin()
	if utf8.ValidString(s) {
		e.str("value", s)
	} else {
		e.hex("value_bytes", []byte(s))
	}
	e.end()
}

// maxRawData bounds the bytes a RawInfo's data carries; its length still
// gives the full size (qlog allows data to be truncated).
const maxRawData = 256

// raw writes a RawInfo as the value of k: the length and, when withData,
// the bytes as hex (at most maxRawData of them).
func (e *enc) raw(k string, v []byte, withData bool) {
	e.obj(k)
	e.uint("length", uint64(len(v)))
	if withData {
		e.hex("data", v[:min(len(v), maxRawData)])
	}
	e.end()
}

// appendString appends s as a JSON string. Bytes that are not UTF-8 become
// U+FFFD, so the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
