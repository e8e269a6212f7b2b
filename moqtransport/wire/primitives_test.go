package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Primitive codecs: moq-rs-vectors.md §1–§4 (the control-plane part), plus
// namespaces, tokens, parameters, error code names and versions.
//
// Not here (data plane): the ExtensionHeaders rows of moq-rs §2 and the
// stream/datagram type and object status rows of §4.

func TestVarintVectors(t *testing.T) {
	cases := []struct {
		v   uint64
		hex string
		src string
	}{
		{0, "00", "moq-rs §1"},
		{63, "3f", "moq-rs §1"},
		{64, "40 40", "moq-rs §1"},
		{123, "40 7b", "moq-rs §1 (usize/u64 123)"},
		{16383, "7f ff", "moq-rs §1"},
		{16384, "80 00 40 00", "moq-rs §1"},
		{1073741823, "bf ff ff ff", "moq-rs §1"},
		{1073741824, "c0 00 00 00 40 00 00 00", "moq-rs §1"},
		{MaxVarint, "ff ff ff ff ff ff ff ff", "moq-rs §1 (2^62-1)"},
		{37, "25", "RFC 9000 §A.1"},
		{15293, "7b bd", "RFC 9000 §A.1"},
		{494878333, "9d 7f 3e 7d", "RFC 9000 §A.1"},
		{151288809941952652, "c2 19 7c 5e ff 14 e8 8c", "RFC 9000 §A.1"},
		{uint64(Draft14), "c0 00 00 00 ff 00 00 0e", "moq-rs §5 / wire-notes §1.1"},
	}
	if MaxVarint != 1<<62-1 {
		t.Fatalf("MaxVarint = %d", uint64(MaxVarint))
	}
	for _, c := range cases {
		want := mustHex(t, c.hex)
		got, err := AppendVarint(nil, c.v)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("AppendVarint(%d) = % x, %v; want % x (%s)", c.v, got, err, want, c.src)
		}
		got, err = AppendVarint([]byte{0xaa}, c.v)
		if err != nil || !bytes.Equal(got, append([]byte{0xaa}, want...)) {
			t.Errorf("AppendVarint(prefix, %d) = % x, %v", c.v, got, err)
		}
		v, n, err := ParseVarint(append(append([]byte(nil), want...), 0xee, 0xff))
		if err != nil || v != c.v || n != len(want) {
			t.Errorf("ParseVarint(% x) = %d, %d, %v; want %d, %d", want, v, n, err, c.v, len(want))
		}
		for i := 0; i < len(want); i++ {
			if _, n, err := ParseVarint(want[:i]); !errors.Is(err, io.ErrUnexpectedEOF) || n != 0 {
				t.Errorf("ParseVarint(% x) = n %d, %v; want io.ErrUnexpectedEOF", want[:i], n, err)
			}
		}
	}
}

// Non-minimal encodings are valid (the draft gives no way to reject them).
func TestVarintNonMinimal(t *testing.T) {
	for _, c := range []struct {
		hex string
		v   uint64
	}{
		{"40 25", 37},
		{"80 00 00 25", 37},
		{"c0 00 00 00 00 00 00 25", 37},
		{"40 00", 0},
		{"c0 00 00 00 00 00 00 00", 0},
	} {
		b := mustHex(t, c.hex)
		v, n, err := ParseVarint(b)
		if err != nil || v != c.v || n != len(b) {
			t.Errorf("ParseVarint(% x) = %d, %d, %v; want %d, %d", b, v, n, err, c.v, len(b))
		}
	}
	// Inside a message too: MAX_REQUEST_ID 37 with an 8-byte varint.
	m, n, err := ParseMessage(mustHex(t, "15 00 08 c0 00 00 00 00 00 00 25"))
	if err != nil || n != 11 || !reflect.DeepEqual(m, &MaxRequestID{Max: 37}) {
		t.Errorf("non-minimal MAX_REQUEST_ID: %#v, %d, %v", m, n, err)
	}
}

// moq-rs varint.rs overflow / encode_u64_overflow: 2^62 does not fit.
func TestVarintOverflow(t *testing.T) {
	for _, v := range []uint64{1 << 62, 1<<62 + 1, math.MaxUint64} {
		prefix := []byte{1, 2}
		got, err := AppendVarint(prefix, v)
		if err == nil {
			t.Errorf("AppendVarint(%d) succeeded: % x", v, got)
		}
		if !bytes.Equal(got, prefix) {
			t.Errorf("AppendVarint(%d) changed the buffer: % x", v, got)
		}
		var w builder
		w.varint("x", v)
		if w.err == nil || len(w.b) != 0 {
			t.Errorf("builder.varint(%d): err %v, % x", v, w.err, w.b)
		}
	}
}

// moq-rs integer.rs: u8, u16, bool.
func TestPrimitiveIntegers(t *testing.T) {
	var w builder
	w.uint8(8)
	if !bytes.Equal(w.b, []byte{0x08}) {
		t.Errorf("u8 8 = % x", w.b)
	}
	if got := appendUint16(nil, 65534); !bytes.Equal(got, []byte{0xff, 0xfe}) {
		t.Errorf("u16 65534 = % x", got)
	}
	w = builder{}
	w.bool(true)
	w.bool(false)
	if !bytes.Equal(w.b, []byte{0x01, 0x00}) {
		t.Errorf("bool true,false = % x", w.b)
	}
	for _, c := range []struct {
		b    byte
		want bool
		ok   bool
	}{{0, false, true}, {1, true, true}, {2, false, false}, {0xff, false, false}} {
		p := parser{b: []byte{c.b}}
		v := p.bool("flag")
		if c.ok && (p.err != nil || v != c.want) {
			t.Errorf("bool %02x = %v, %v", c.b, v, p.err)
		}
		if !c.ok && SessionCode(p.err) != ProtocolViolation {
			t.Errorf("bool %02x: err %v, want PROTOCOL_VIOLATION (moq-rs decode_invalid_bool)", c.b, p.err)
		}
	}
	p := parser{}
	if p.uint8(); !errors.Is(p.err, io.ErrUnexpectedEOF) {
		t.Errorf("uint8 of nothing: %v", p.err)
	}
	// Sticky error: later reads return zero and keep the first error.
	p = parser{b: []byte{0x02, 0x05}}
	p.bool("first")
	if v := p.uint8(); v != 0 || SessionCode(p.err) != ProtocolViolation || p.n != 1 {
		t.Errorf("after a failure: %d, n %d, %v", v, p.n, p.err)
	}
}

// moq-rs string.rs and bounded_string.rs.
func TestPrimitiveStrings(t *testing.T) {
	var w builder
	w.string("s", "teststring", math.MaxInt)
	if want := mustHex(t, "0a 74 65 73 74 73 74 72 69 6e 67"); !bytes.Equal(w.b, want) || w.err != nil {
		t.Errorf("string = % x, %v; want % x", w.b, w.err, want)
	}
	w = builder{}
	w.reasonPhrase("testreason")
	want := mustHex(t, "0a 74 65 73 74 72 65 61 73 6f 6e")
	if !bytes.Equal(w.b, want) || w.err != nil {
		t.Errorf("reason phrase = % x, %v; want % x", w.b, w.err, want)
	}
	p := parser{b: want}
	if r := p.reasonPhrase(); r != "testreason" || p.err != nil || p.n != len(want) {
		t.Errorf("parse reason = %q, %v", r, p.err)
	}

	// bounded_string.rs encode_too_large: 1025 x 'x'.
	w = builder{}
	w.reasonPhrase(strings.Repeat("x", 1025))
	if SessionCode(w.err) != ProtocolViolation {
		t.Errorf("reason of 1025 bytes: err %v, want PROTOCOL_VIOLATION", w.err)
	}
	w = builder{}
	w.reasonPhrase(strings.Repeat("x", 1024))
	if w.err != nil || len(w.b) != 2+1024 {
		t.Errorf("reason of 1024 bytes: %d bytes, %v", len(w.b), w.err)
	}
	// bounded_string.rs decode_too_large: "44 01" + 1023 zeros (declared
	// 1025; rejected on the length alone).
	p = parser{b: append(mustHex(t, "44 01"), make([]byte, 1023)...)}
	p.reasonPhrase()
	if SessionCode(p.err) != ProtocolViolation || errors.Is(p.err, io.ErrUnexpectedEOF) {
		t.Errorf("decode reason declared 1025: %v, want PROTOCOL_VIOLATION", p.err)
	}
	p = parser{b: append(mustHex(t, "44 00"), make([]byte, 1024)...)}
	if r := p.reasonPhrase(); p.err != nil || len(r) != 1024 {
		t.Errorf("decode reason of 1024: %d, %v", len(r), p.err)
	}
	// Declared 5, 4 present: not yet an error of its own.
	p = parser{b: mustHex(t, "05 61 62 63 64")}
	p.reasonPhrase()
	if !errors.Is(p.err, io.ErrUnexpectedEOF) {
		t.Errorf("short reason: %v", p.err)
	}
}

// moq-rs location.rs.
func TestLocationVector(t *testing.T) {
	var w builder
	w.location("l", Location{12345, 67890})
	want := mustHex(t, "70 39 80 01 09 32")
	if !bytes.Equal(w.b, want) || w.err != nil {
		t.Fatalf("Location(12345, 67890) = % x, %v; want % x", w.b, w.err, want)
	}
	p := parser{b: want}
	if l := p.location(); l != (Location{12345, 67890}) || p.err != nil || p.n != 6 {
		t.Fatalf("parse = %v, %v", l, p.err)
	}
	if s := (Location{12345, 67890}).String(); s != "{12345,67890}" {
		t.Errorf("String() = %q", s)
	}
	for _, l := range []Location{{1 << 62, 0}, {0, 1 << 62}} {
		w := builder{}
		w.location("l", l)
		if w.err == nil {
			t.Errorf("location %v encoded", l)
		}
	}
}

// moq-rs location.rs verify_ordering: (1,2)<(1,5)<(2,1)<(2,2)<(2,6)==(2,6).
func TestLocationOrdering(t *testing.T) {
	ls := []Location{{1, 2}, {1, 5}, {2, 1}, {2, 2}, {2, 6}}
	for i := range ls {
		for j := range ls {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := ls[i].Compare(ls[j]); got != want {
				t.Errorf("%v.Compare(%v) = %d, want %d", ls[i], ls[j], got, want)
			}
			if got := ls[i].Less(ls[j]); got != (want < 0) {
				t.Errorf("%v.Less(%v) = %v", ls[i], ls[j], got)
			}
		}
	}
	if (Location{2, 6}).Compare(Location{2, 6}) != 0 || (Location{2, 6}).Less(Location{2, 6}) {
		t.Errorf("(2,6) is not equal to itself")
	}
	// The group decides before the object.
	if !(Location{1, MaxVarint}).Less(Location{2, 0}) {
		t.Errorf("{1,max} is not before {2,0}")
	}
}

// moq-rs kvp.rs.
func TestKeyValueVectors(t *testing.T) {
	good := []struct {
		kv  KeyValue
		hex string
	}{
		{KeyValue{Type: 0, Value: 0}, "00 00"},
		{KeyValue{Type: 100, Value: 100}, "40 64 40 64"},
		{KeyValue{Type: 1, Bytes: []byte{1, 2, 3, 4, 5}}, "01 05 01 02 03 04 05"},
		{KeyValue{Type: 123, Bytes: []byte{0, 1, 2, 3}}, "40 7b 04 00 01 02 03"},
		{KeyValue{Type: 1, Bytes: []byte{}}, "01 00"},
		{KeyValue{Type: ParamDeliveryTimeout, Value: 5000}, "02 53 88"},
	}
	for _, c := range good {
		want := mustHex(t, c.hex)
		got, err := AppendKeyValue([]byte{0xaa}, c.kv)
		if err != nil || !bytes.Equal(got, append([]byte{0xaa}, want...)) {
			t.Errorf("AppendKeyValue(%v) = % x, %v; want aa % x", c.kv, got, err, want)
		}
		in := append(append([]byte(nil), want...), 0xff)
		kv, n, err := ParseKeyValue(in)
		if err != nil || n != len(want) || !reflect.DeepEqual(kv, c.kv) {
			t.Errorf("ParseKeyValue(% x) = %#v, %d, %v; want %#v", want, kv, n, err, c.kv)
		}
		if kv.IsBytes() != (c.kv.Type%2 == 1) {
			t.Errorf("IsBytes(%v) = %v", kv, kv.IsBytes())
		}
		// Odd-typed values alias the input, as documented.
		if len(kv.Bytes) > 0 && &kv.Bytes[0] != &in[n-len(kv.Bytes)] {
			t.Errorf("ParseKeyValue(% x): Bytes does not alias the input", want)
		}
	}

	// kvp.rs errors: odd key with an integer, even key with bytes. Our
	// KeyValue cannot tell "odd key, IntValue 0" from "odd key, empty
	// bytes", so the odd case uses a non-zero Value.
	bad := []KeyValue{
		{Type: 1, Value: 5},
		{Type: 1, Value: 5, Bytes: []byte{1}},
		{Type: 0, Bytes: []byte{1, 2, 3, 4, 5}},
		{Type: 0, Bytes: []byte{}},
		{Type: 1 << 62, Value: 1},
		{Type: 0, Value: 1 << 62},
	}
	for _, kv := range bad {
		if got, err := AppendKeyValue(nil, kv); err == nil {
			t.Errorf("AppendKeyValue(%#v) = % x, want an error", kv, got)
		}
	}

	// kvp.rs decode_badtype: "01 05" declares 5 bytes, none follow.
	for _, h := range []string{"01 05", "01 05 01 02 03 04", "00", "40", "40 64 40", ""} {
		if _, n, err := ParseKeyValue(mustHex(t, h)); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ParseKeyValue(%s) = n %d, %v; want io.ErrUnexpectedEOF", h, n, err)
		}
	}
}

// Odd-typed values: at most 65535 bytes (§1.4.2). A control message cannot
// carry 65535 bytes of value, so the limit is tested on the pair alone.
func TestKeyValueLimit(t *testing.T) {
	max := bytes.Repeat([]byte{0x5a}, MaxKVPValueLen)
	b, err := AppendKeyValue(nil, KeyValue{Type: 0x21, Bytes: max})
	if err != nil {
		t.Fatalf("65535-byte value: %v", err)
	}
	if !bytes.Equal(b[:5], mustHex(t, "21 80 00 ff ff")) || len(b) != 5+65535 {
		t.Fatalf("65535-byte value: header % x, %d bytes", b[:5], len(b))
	}
	kv, n, err := ParseKeyValue(b)
	if err != nil || n != len(b) || !bytes.Equal(kv.Bytes, max) {
		t.Fatalf("parse 65535-byte value: n %d, %v", n, err)
	}

	prefix := []byte{7}
	out, err := AppendKeyValue(prefix, KeyValue{Type: 0x21, Bytes: make([]byte, 65536)})
	if SessionCode(err) != ProtocolViolation {
		t.Errorf("65536-byte value: err %v, want PROTOCOL_VIOLATION", err)
	}
	if len(out) > len(prefix)+8 {
		t.Errorf("65536-byte value: %d bytes appended", len(out)-len(prefix))
	}

	// Declared 65536, with all the bytes present: PROTOCOL_VIOLATION.
	in := append(mustHex(t, "21 80 01 00 00"), make([]byte, 65536)...)
	if _, _, err := ParseKeyValue(in); SessionCode(err) != ProtocolViolation || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("declared 65536: %v, want PROTOCOL_VIOLATION", err)
	}
	// Declared 65536, no bytes: the limit is checked first.
	if _, _, err := ParseKeyValue(mustHex(t, "21 80 01 00 00")); SessionCode(err) != ProtocolViolation || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("declared 65536, no bytes: %v, want PROTOCOL_VIOLATION", err)
	}
	if _, _, err := ParseKeyValue(mustHex(t, "21 ff ff ff ff ff ff ff ff")); SessionCode(err) != ProtocolViolation {
		t.Errorf("declared 2^62-1: %v, want PROTOCOL_VIOLATION", err)
	}
	// Declared 65535, one byte short: wait for more.
	if _, _, err := ParseKeyValue(b[:len(b)-1]); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("65535 declared, 65534 present: %v", err)
	}
}

// moq-rs kvp.rs encode_decode_keyvaluepairs: count-prefixed lists, as
// written by the control-message parameter encoder.
func TestKeyValuePairsCountPrefixed(t *testing.T) {
	cases := []struct {
		ps  Parameters
		hex string
	}{
		{Parameters{{Type: 1, Bytes: []byte{1, 2, 3, 4, 5}}}, "01 01 05 01 02 03 04 05"},
		{Parameters{{Type: 0, Value: 0}, {Type: 100, Value: 100}, {Type: 1, Bytes: []byte{1, 2, 3, 4, 5}}},
			"03 00 00 40 64 40 64 01 05 01 02 03 04 05"},
		{Parameters{{Type: 123, Bytes: []byte{0, 1, 2, 3}}}, "01 40 7b 04 00 01 02 03"},
		{nil, "00"},
	}
	for _, c := range cases {
		want := mustHex(t, c.hex)
		w := builder{}
		w.params(c.ps, nil)
		if w.err != nil || !bytes.Equal(w.b, want) {
			t.Errorf("params %v = % x, %v; want % x", c.ps, w.b, w.err, want)
		}
		in := append([]byte(nil), want...)
		p := parser{b: in}
		got := p.params(nil)
		if p.err != nil || p.n != len(want) || !reflect.DeepEqual(got, c.ps) {
			t.Errorf("parse % x = %#v, %v; want %#v", want, got, p.err, c.ps)
		}
		// Parsed parameters are copies.
		for i := range in {
			in[i] = 0xee
		}
		if !reflect.DeepEqual(got, c.ps) {
			t.Errorf("parsed parameters alias the input")
		}
	}
	if want := 14; len(mustHex(t, cases[1].hex)) != want {
		t.Errorf("moq-rs asserts length %d", want)
	}
}

// moq-rs track_namespace.rs and tuple.rs.
func TestNamespaceVectors(t *testing.T) {
	cases := []struct {
		ns  Namespace
		hex string
	}{
		{ParseNamespacePath("test/path/to/resource"), "04 04 74 65 73 74 04 70 61 74 68 02 74 6f 08 72 65 73 6f 75 72 63 65"},
		{Namespace{"test"}, "01 04 74 65 73 74"},
		{Namespace{""}, "01 00"},
	}
	for _, c := range cases {
		want := mustHex(t, c.hex)
		w := builder{}
		w.namespace(c.ns)
		if w.err != nil || !bytes.Equal(w.b, want) {
			t.Errorf("namespace %q = % x, %v; want % x", c.ns, w.b, w.err, want)
		}
		p := parser{b: want}
		got := p.namespace()
		if p.err != nil || p.n != len(want) || !got.Equal(c.ns) {
			t.Errorf("parse % x = %q, %v", want, got, p.err)
		}
	}

	// encode_too_large / TooManyFields: 33 fields.
	w := builder{}
	w.namespace(Namespace(nFields(33)))
	if SessionCode(w.err) != ProtocolViolation || len(w.b) != 0 {
		t.Errorf("33 fields: % x, %v; want PROTOCOL_VIOLATION", w.b, w.err)
	}
	// decode_too_large: count 33 followed by zeros.
	p := parser{b: append([]byte{0x21}, make([]byte, 64)...)}
	p.namespace()
	if SessionCode(p.err) != ProtocolViolation {
		t.Errorf("decode count 33: %v", p.err)
	}
	// A 4097-byte field (tuple.rs encode_tuplefield_too_large /
	// FieldTooLarge(4097, 4096)).
	w = builder{}
	w.namespace(Namespace{strings.Repeat("f", 4097)})
	if SessionCode(w.err) != ProtocolViolation {
		t.Errorf("4097-byte field: %v", w.err)
	}
	// decode_tuplefield_too_large: "50 01" (length 4097) + zeros, here
	// inside a one-field tuple.
	p = parser{b: append(mustHex(t, "01 50 01"), make([]byte, 4097)...)}
	p.namespace()
	if SessionCode(p.err) != ProtocolViolation {
		t.Errorf("decode 4097-byte field: %v", p.err)
	}
	// A 4096-byte field is fine.
	w = builder{}
	w.namespace(Namespace{strings.Repeat("f", 4096)})
	if w.err != nil {
		t.Errorf("4096-byte field: %v", w.err)
	}
}

func TestNamespaceValidate(t *testing.T) {
	long := func(n int) string { return strings.Repeat("v", n) }
	for _, c := range []struct {
		name string
		err  error
	}{
		{"nil", Namespace(nil).Validate()},
		{"empty", Namespace{}.Validate()},
		{"33 fields", Namespace(nFields(33)).Validate()},
		{"4097 bytes", Namespace{long(4000), long(97)}.Validate()},
		{"full track name 4097", FullTrackName{Namespace{long(2048)}, long(2049)}.Validate()},
		{"full track name, empty namespace", FullTrackName{nil, "x"}.Validate()},
	} {
		if SessionCode(c.err) != ProtocolViolation {
			t.Errorf("%s: %v, want PROTOCOL_VIOLATION", c.name, c.err)
		}
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"1 field", Namespace{"a"}.Validate()},
		{"32 fields", Namespace(nFields(32)).Validate()},
		{"4096 bytes", Namespace{long(4000), long(96)}.Validate()},
		{"empty field", Namespace{""}.Validate()},
		{"full track name 4096", FullTrackName{Namespace{long(2048)}, long(2048)}.Validate()},
	} {
		if c.err != nil {
			t.Errorf("%s: %v", c.name, c.err)
		}
	}
}

func TestNamespacePath(t *testing.T) {
	for _, c := range []struct {
		path string
		want Namespace
	}{
		{"test/path/to/resource", Namespace{"test", "path", "to", "resource"}},
		{"/test/path/to/resource", Namespace{"test", "path", "to", "resource"}},
		{"test", Namespace{"test"}},
		{"", nil},
		{"/", nil},
		{"a//b", Namespace{"a", "", "b"}},
		{"a/", Namespace{"a", ""}},
	} {
		got := ParseNamespacePath(c.path)
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseNamespacePath(%q) = %q, want %q", c.path, got, c.want)
		}
	}
	if s := ParseNamespacePath("/test/path/to/resource").String(); s != "test/path/to/resource" {
		t.Errorf("String() = %q", s)
	}
	if s := (FullTrackName{Namespace{"a", "b"}, "video"}).String(); s != "a/b/video" {
		t.Errorf("FullTrackName.String() = %q", s)
	}
}

func TestNamespaceHasPrefix(t *testing.T) {
	for _, c := range []struct {
		ns, prefix Namespace
		want       bool
	}{
		{Namespace{"foo", "bar"}, Namespace{"foo"}, true},
		{Namespace{"foobar"}, Namespace{"foo"}, false},
		{Namespace{"foo", "bar"}, Namespace{"foo", "bar"}, true},
		{Namespace{"foo"}, Namespace{"foo", "bar"}, false},
		{Namespace{"foo", "bar"}, Namespace{"bar"}, false},
		{Namespace{"foo", "bar"}, Namespace{"fo"}, false},
		{Namespace{"foo", "bar"}, Namespace{}, true},
		{Namespace{"", "x"}, Namespace{""}, true},
	} {
		if got := c.ns.HasPrefix(c.prefix); got != c.want {
			t.Errorf("%q.HasPrefix(%q) = %v, want %v", c.ns, c.prefix, got, c.want)
		}
	}
	if !(Namespace{"a", "b"}).Equal(Namespace{"a", "b"}) || (Namespace{"a", "b"}).Equal(Namespace{"a"}) ||
		(Namespace{"ab"}).Equal(Namespace{"a", "b"}) || (Namespace{"a"}).Equal(Namespace{"b"}) {
		t.Errorf("Equal is wrong")
	}
	// Raw bytes, not text: fields that differ only in non-UTF-8 bytes.
	if (Namespace{"\xff"}).Equal(Namespace{"\xfe"}) || !(Namespace{"\xff", "x"}).HasPrefix(Namespace{"\xff"}) {
		t.Errorf("raw byte comparison is wrong")
	}
}

func TestTokenRoundTrip(t *testing.T) {
	cases := []struct {
		tok Token
		hex string // the parameter value
	}{
		{Token{AliasType: TokenDelete, Alias: 5}, "00 05"},
		{Token{AliasType: TokenRegister, Alias: 1, Type: 0, Value: []byte("tok")}, "01 01 00 74 6f 6b"},
		{Token{AliasType: TokenUseAlias, Alias: 1}, "02 01"},
		{Token{AliasType: TokenUseValue, Type: 0, Value: []byte("secret")}, "03 00 73 65 63 72 65 74"},
		{Token{AliasType: TokenRegister, Alias: MaxVarint, Type: 300, Value: []byte{0}}, "01 ff ff ff ff ff ff ff ff 41 2c 00"},
		{Token{AliasType: TokenUseAlias, Alias: 16384}, "02 80 00 40 00"},
	}
	for _, c := range cases {
		want := mustHex(t, c.hex)
		got, err := AppendToken([]byte{0xbb}, c.tok)
		if err != nil || !bytes.Equal(got, append([]byte{0xbb}, want...)) {
			t.Errorf("AppendToken(%+v) = % x, %v; want bb % x", c.tok, got, err, want)
		}
		tok, err := ParseToken(want)
		if err != nil || !reflect.DeepEqual(tok, c.tok) {
			t.Errorf("ParseToken(% x) = %+v, %v; want %+v", want, tok, err, c.tok)
		}
		kv, err := TokenParam(c.tok)
		if err != nil || !reflect.DeepEqual(kv, KeyValue{Type: ParamAuthorizationToken, Bytes: want}) {
			t.Errorf("TokenParam(%+v) = %#v, %v", c.tok, kv, err)
		}
	}
	// An empty value is allowed for REGISTER and USE_VALUE.
	for _, tok := range []Token{{AliasType: TokenRegister, Alias: 2, Type: 1}, {AliasType: TokenUseValue, Type: 1}} {
		b, err := AppendToken(nil, tok)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseToken(b)
		if err != nil || got.AliasType != tok.AliasType || got.Alias != tok.Alias || got.Type != tok.Type || len(got.Value) != 0 {
			t.Errorf("empty value %+v: %+v, %v", tok, got, err)
		}
	}
	// Fields an alias type does not carry are not written.
	b, err := AppendToken(nil, Token{AliasType: TokenDelete, Alias: 1, Type: 9, Value: []byte("ignored")})
	if err != nil || !bytes.Equal(b, []byte{0x00, 0x01}) {
		t.Errorf("DELETE with extra fields = % x, %v", b, err)
	}
	// Encode errors.
	for _, tok := range []Token{
		{AliasType: 4},
		{AliasType: 1 << 62},
		{AliasType: TokenUseAlias, Alias: 1 << 62},
		{AliasType: TokenUseValue, Type: 1 << 62},
	} {
		if _, err := AppendToken(nil, tok); err == nil {
			t.Errorf("AppendToken(%+v) succeeded", tok)
		}
		if _, err := TokenParam(tok); err == nil {
			t.Errorf("TokenParam(%+v) succeeded", tok)
		}
	}
}

func TestTokenDecodeErrors(t *testing.T) {
	for _, h := range []string{
		"",                        // nothing
		"07 01",                   // unknown alias type 7
		"04",                      // unknown alias type 4
		"ff ff ff ff ff ff ff ff", // unknown alias type 2^62-1
		"00",                      // DELETE without alias
		"00 05 ff",                // DELETE with a trailing byte
		"02 05 00",                // USE_ALIAS with a trailing byte
		"01 05",                   // REGISTER without type
		"02",                      // USE_ALIAS without alias
		"03",                      // USE_VALUE without type
		"00 40",                   // truncated alias varint
		"40",                      // truncated alias type varint
	} {
		_, err := ParseToken(mustHex(t, h))
		var se *SessionError
		if !errors.As(err, &se) || se.Code != KeyValueFormattingError || !errors.Is(err, ErrKeyValueFormatting) {
			t.Errorf("ParseToken(%s) = %v, want KEY_VALUE_FORMATTING_ERROR", h, err)
		}
	}
}

// wire-notes §3.4: SUBSCRIBE_NAMESPACE with an AUTHORIZATION TOKEN
// {USE_VALUE, type 0, "secret"}.
func TestTokenWireNotesVector(t *testing.T) {
	wire := mustHex(t, "11 00 15 0c 01 07 65 78 61 6d 70 6c 65 01 03 08 03 00 73 65 63 72 65 74")
	m, n, err := ParseMessage(wire)
	if err != nil || n != len(wire) {
		t.Fatalf("ParseMessage: %d, %v", n, err)
	}
	sn, ok := m.(*SubscribeNamespace)
	if !ok {
		t.Fatalf("got %T", m)
	}
	toks, err := sn.Params.AuthorizationTokens()
	want := []Token{{AliasType: TokenUseValue, Type: 0, Value: []byte("secret")}}
	if err != nil || !reflect.DeepEqual(toks, want) {
		t.Fatalf("AuthorizationTokens = %+v, %v; want %+v", toks, err, want)
	}
	kv, err := TokenParam(want[0])
	if err != nil {
		t.Fatal(err)
	}
	b, err := AppendMessage(nil, &SubscribeNamespace{RequestID: 12, Prefix: Namespace{"example"}, Params: Parameters{kv}})
	if err != nil || !bytes.Equal(b, wire) {
		t.Fatalf("encode = % x, %v; want % x", b, err, wire)
	}
}

func TestParametersAccessors(t *testing.T) {
	ps := Parameters{
		{Type: ParamDeliveryTimeout, Value: 1500},
		{Type: 0x21, Bytes: []byte("odd")},
		{Type: ParamMaxCacheDuration, Value: 60000},
		{Type: 0x21, Bytes: []byte("second")},
	}
	if kv, ok := ps.Get(0x21); !ok || string(kv.Bytes) != "odd" {
		t.Errorf("Get(0x21) = %v, %v; want the first one", kv, ok)
	}
	if _, ok := ps.Get(0x40); ok {
		t.Errorf("Get(0x40) found something")
	}
	if v, ok := ps.Varint(ParamDeliveryTimeout); !ok || v != 1500 {
		t.Errorf("Varint(DT) = %d, %v", v, ok)
	}
	if _, ok := ps.Varint(0x21); ok {
		t.Errorf("Varint of an odd type succeeded")
	}
	if b, ok := ps.Bytes(0x21); !ok || string(b) != "odd" {
		t.Errorf("Bytes(0x21) = %q, %v", b, ok)
	}
	if _, ok := ps.Bytes(ParamDeliveryTimeout); ok {
		t.Errorf("Bytes of an even type succeeded")
	}
	if d, ok := ps.DeliveryTimeout(); !ok || d != 1500*time.Millisecond {
		t.Errorf("DeliveryTimeout = %v, %v", d, ok)
	}
	if d, ok := ps.MaxCacheDuration(); !ok || d != time.Minute {
		t.Errorf("MaxCacheDuration = %v, %v", d, ok)
	}
	if d, ok := (Parameters{}).DeliveryTimeout(); ok || d != 0 {
		t.Errorf("DeliveryTimeout of nothing = %v, %v", d, ok)
	}
	if d, ok := (Parameters(nil)).MaxCacheDuration(); ok || d != 0 {
		t.Errorf("MaxCacheDuration of nil = %v, %v", d, ok)
	}
	// A value too large for a Duration saturates instead of wrapping.
	if d, ok := (Parameters{{Type: ParamDeliveryTimeout, Value: MaxVarint}}).DeliveryTimeout(); !ok || d != time.Duration(math.MaxInt64) {
		t.Errorf("huge DeliveryTimeout = %v, %v", d, ok)
	}
	if d, _ := (Parameters{{Type: ParamDeliveryTimeout, Value: 0}}).DeliveryTimeout(); d != 0 {
		t.Errorf("zero DeliveryTimeout = %v", d)
	}

	// WithVarint replaces every earlier instance and leaves ps alone.
	before := append(Parameters(nil), ps...)
	ps2 := ps.WithVarint(ParamDeliveryTimeout, 10)
	if !reflect.DeepEqual(ps, before) {
		t.Errorf("WithVarint changed its receiver")
	}
	if d, _ := ps2.DeliveryTimeout(); d != 10*time.Millisecond {
		t.Errorf("after WithVarint: %v", d)
	}
	n := 0
	for _, kv := range ps2 {
		if kv.Type == ParamDeliveryTimeout {
			n++
		}
	}
	if n != 1 || len(ps2) != len(ps) {
		t.Errorf("WithVarint left %d DELIVERY_TIMEOUTs, %d params", n, len(ps2))
	}
	dup := Parameters{{Type: 0x40, Value: 1}, {Type: 0x40, Value: 2}, {Type: 0x42, Value: 3}}
	if got := dup.WithVarint(0x40, 9); !reflect.DeepEqual(got, Parameters{{Type: 0x42, Value: 3}, {Type: 0x40, Value: 9}}) {
		t.Errorf("WithVarint over duplicates = %v", got)
	}
	ps3 := ps.WithBytes(0x21, []byte("only"))
	if b, _ := ps3.Bytes(0x21); string(b) != "only" || len(ps3) != 3 {
		t.Errorf("WithBytes = %v", ps3)
	}
	if got := (Parameters(nil)).WithBytes(0x23, nil); len(got) != 1 || got[0].Bytes == nil {
		t.Errorf("WithBytes(nil) = %#v, want non-nil empty Bytes", got)
	}
	// A parameter list built with the accessors encodes and decodes.
	msg := &Subscribe{Namespace: Namespace{"a"}, Filter: Filter{Type: FilterNextGroupStart},
		Params: Parameters(nil).WithVarint(ParamDeliveryTimeout, 5).WithVarint(ParamDeliveryTimeout, 6).WithBytes(0x23, nil)}
	b, err := AppendMessage(nil, msg)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := ParseMessage(b)
	if err != nil || !reflect.DeepEqual(got, msg) {
		t.Errorf("round trip: %#v, %v", got, err)
	}
}

func TestParametersAuthorizationTokens(t *testing.T) {
	toks := []Token{
		{AliasType: TokenDelete, Alias: 5},
		{AliasType: TokenRegister, Alias: 1, Value: []byte("tok")},
		{AliasType: TokenUseAlias, Alias: 1},
		{AliasType: TokenUseValue, Type: 2, Value: []byte("secret")},
	}
	var ps Parameters
	for i, tok := range toks {
		kv, err := TokenParam(tok)
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, kv, KeyValue{Type: 0x40, Value: uint64(i)})
	}
	got, err := ps.AuthorizationTokens()
	if err != nil || !reflect.DeepEqual(got, toks) {
		t.Errorf("AuthorizationTokens = %+v, %v; want %+v", got, err, toks)
	}
	if got, err := (Parameters{{Type: 0x40, Value: 1}}).AuthorizationTokens(); got != nil || err != nil {
		t.Errorf("no tokens: %v, %v", got, err)
	}
	bad := append(ps, KeyValue{Type: ParamAuthorizationToken, Bytes: []byte{0x07}})
	if got, err := bad.AuthorizationTokens(); got != nil || SessionCode(err) != KeyValueFormattingError {
		t.Errorf("bad token: %v, %v; want KEY_VALUE_FORMATTING_ERROR", got, err)
	}
	// SetupParamAuthorizationToken and ParamAuthorizationToken are the
	// same number (0x03) in their two namespaces.
	if SetupParamAuthorizationToken != ParamAuthorizationToken || ParamAuthorizationToken != 0x03 {
		t.Errorf("token parameter types differ")
	}
}

func TestParamCodepoints(t *testing.T) {
	for _, c := range []struct {
		name string
		got  uint64
		want uint64
	}{
		{"PATH", SetupParamPath, 0x01},
		{"MAX_REQUEST_ID", SetupParamMaxRequestID, 0x02},
		{"AUTHORIZATION TOKEN (setup)", SetupParamAuthorizationToken, 0x03},
		{"MAX_AUTH_TOKEN_CACHE_SIZE", SetupParamMaxAuthTokenCacheSize, 0x04},
		{"AUTHORITY", SetupParamAuthority, 0x05},
		// 0x05 in the draft-14 text, a clash with AUTHORITY; 0x07 per the
		// editor's fix (#1191), draft-15 and moq-rs.
		{"MOQT_IMPLEMENTATION", SetupParamMOQTImplementation, 0x07},
		{"DELIVERY TIMEOUT", ParamDeliveryTimeout, 0x02},
		{"AUTHORIZATION TOKEN", ParamAuthorizationToken, 0x03},
		{"MAX_CACHE_DURATION", ParamMaxCacheDuration, 0x04},
	} {
		if c.got != c.want {
			t.Errorf("%s = 0x%x, want 0x%x", c.name, c.got, c.want)
		}
	}
}

func TestCodeStrings(t *testing.T) {
	type named struct {
		s    fmt.Stringer
		want string
	}
	cases := []named{
		// Session termination codes (§13.1.1).
		{NoError, "NO_ERROR"}, {InternalError, "INTERNAL_ERROR"}, {Unauthorized, "UNAUTHORIZED"},
		{ProtocolViolation, "PROTOCOL_VIOLATION"}, {InvalidRequestID, "INVALID_REQUEST_ID"},
		{DuplicateTrackAlias, "DUPLICATE_TRACK_ALIAS"}, {KeyValueFormattingError, "KEY_VALUE_FORMATTING_ERROR"},
		{TooManyRequests, "TOO_MANY_REQUESTS"}, {InvalidPath, "INVALID_PATH"}, {MalformedPath, "MALFORMED_PATH"},
		{GoawayTimeout, "GOAWAY_TIMEOUT"}, {ControlMessageTimeout, "CONTROL_MESSAGE_TIMEOUT"},
		{DataStreamTimeout, "DATA_STREAM_TIMEOUT"}, {AuthTokenCacheOverflow, "AUTH_TOKEN_CACHE_OVERFLOW"},
		{DuplicateAuthTokenAlias, "DUPLICATE_AUTH_TOKEN_ALIAS"}, {VersionNegotiationFailed, "VERSION_NEGOTIATION_FAILED"},
		{MalformedAuthToken, "MALFORMED_AUTH_TOKEN"}, {UnknownAuthTokenAlias, "UNKNOWN_AUTH_TOKEN_ALIAS"},
		{ExpiredAuthToken, "EXPIRED_AUTH_TOKEN"}, {InvalidAuthority, "INVALID_AUTHORITY"},
		{MalformedAuthority, "MALFORMED_AUTHORITY"},
		{SessionErrorCode(0xa), "0xa"}, {SessionErrorCode(0x1b), "0x1b"},
		// SUBSCRIBE_ERROR / TRACK_STATUS_ERROR.
		{SubscribeInternalError, "INTERNAL_ERROR"}, {SubscribeUnauthorized, "UNAUTHORIZED"},
		{SubscribeTimeout, "TIMEOUT"}, {SubscribeNotSupported, "NOT_SUPPORTED"},
		{SubscribeTrackDoesNotExist, "TRACK_DOES_NOT_EXIST"}, {SubscribeInvalidRange, "INVALID_RANGE"},
		{SubscribeMalformedAuthToken, "MALFORMED_AUTH_TOKEN"}, {SubscribeExpiredAuthToken, "EXPIRED_AUTH_TOKEN"},
		{SubscribeErrorCode(0x11), "0x11"}, {SubscribeErrorCode(0x6), "0x6"},
		// PUBLISH_DONE.
		{DoneInternalError, "INTERNAL_ERROR"}, {DoneUnauthorized, "UNAUTHORIZED"}, {DoneTrackEnded, "TRACK_ENDED"},
		{DoneSubscriptionEnded, "SUBSCRIPTION_ENDED"}, {DoneGoingAway, "GOING_AWAY"}, {DoneExpired, "EXPIRED"},
		{DoneTooFarBehind, "TOO_FAR_BEHIND"}, {DoneMalformedTrack, "MALFORMED_TRACK"}, {PublishDoneCode(8), "0x8"},
		// PUBLISH_ERROR.
		{PublishInternalError, "INTERNAL_ERROR"}, {PublishUnauthorized, "UNAUTHORIZED"}, {PublishTimeout, "TIMEOUT"},
		{PublishNotSupported, "NOT_SUPPORTED"}, {PublishUninterested, "UNINTERESTED"}, {PublishErrorCode(0x10), "0x10"},
		// FETCH_ERROR.
		{FetchInternalError, "INTERNAL_ERROR"}, {FetchUnauthorized, "UNAUTHORIZED"}, {FetchTimeout, "TIMEOUT"},
		{FetchNotSupported, "NOT_SUPPORTED"}, {FetchTrackDoesNotExist, "TRACK_DOES_NOT_EXIST"},
		{FetchInvalidRange, "INVALID_RANGE"}, {FetchNoObjects, "NO_OBJECTS"},
		{FetchInvalidJoiningRequestID, "INVALID_JOINING_REQUEST_ID"}, {FetchUnknownStatusInRange, "UNKNOWN_STATUS_IN_RANGE"},
		{FetchMalformedTrack, "MALFORMED_TRACK"}, {FetchMalformedAuthToken, "MALFORMED_AUTH_TOKEN"},
		{FetchExpiredAuthToken, "EXPIRED_AUTH_TOKEN"}, {FetchErrorCode(0x11), "0x11"},
		// PUBLISH_NAMESPACE_ERROR / _CANCEL.
		{NamespaceInternalError, "INTERNAL_ERROR"}, {NamespaceUnauthorized, "UNAUTHORIZED"},
		{NamespaceTimeout, "TIMEOUT"}, {NamespaceNotSupported, "NOT_SUPPORTED"}, {NamespaceUninterested, "UNINTERESTED"},
		{NamespaceMalformedAuthToken, "MALFORMED_AUTH_TOKEN"}, {NamespaceExpiredAuthToken, "EXPIRED_AUTH_TOKEN"},
		{PublishNamespaceErrorCode(5), "0x5"},
		// SUBSCRIBE_NAMESPACE_ERROR.
		{SubscribeNamespaceInternalError, "INTERNAL_ERROR"}, {SubscribeNamespaceUnauthorized, "UNAUTHORIZED"},
		{SubscribeNamespaceTimeout, "TIMEOUT"}, {SubscribeNamespaceNotSupported, "NOT_SUPPORTED"},
		{NamespacePrefixUnknown, "NAMESPACE_PREFIX_UNKNOWN"}, {NamespacePrefixOverlap, "NAMESPACE_PREFIX_OVERLAP"},
		{SubscribeNamespaceMalformedAuthToken, "MALFORMED_AUTH_TOKEN"},
		{SubscribeNamespaceExpiredAuthToken, "EXPIRED_AUTH_TOKEN"}, {SubscribeNamespaceErrorCode(6), "0x6"},
		// Data stream reset codes.
		{ResetInternalError, "INTERNAL_ERROR"}, {ResetCancelled, "CANCELLED"},
		{ResetDeliveryTimeout, "DELIVERY_TIMEOUT"}, {ResetSessionClosed, "SESSION_CLOSED"}, {StreamResetCode(4), "0x4"},
		// Other enumerations.
		{TypeSubscribe, "SUBSCRIBE"}, {TypePublishNamespaceDone, "PUBLISH_NAMESPACE_DONE"},
		{TypeClientSetup, "CLIENT_SETUP"}, {MessageType(0x40), "0x40"},
		{GroupOrderPublisher, "publisher"}, {GroupOrderAscending, "ascending"}, {GroupOrderDescending, "descending"},
		{GroupOrder(3), "0x3"},
		{FilterNextGroupStart, "NextGroupStart"}, {FilterLargestObject, "LargestObject"},
		{FilterAbsoluteStart, "AbsoluteStart"}, {FilterAbsoluteRange, "AbsoluteRange"}, {FilterType(5), "0x5"},
		{FetchStandalone, "Standalone"}, {FetchRelativeJoining, "RelativeJoining"},
		{FetchAbsoluteJoining, "AbsoluteJoining"}, {FetchType(0), "0x0"},
		{TokenDelete, "DELETE"}, {TokenRegister, "REGISTER"}, {TokenUseAlias, "USE_ALIAS"},
		{TokenUseValue, "USE_VALUE"}, {TokenAliasType(7), "0x7"},
	}
	for _, c := range cases {
		if got := c.s.String(); got != c.want {
			t.Errorf("%T(%v).String() = %q, want %q", c.s, c.s, got, c.want)
		}
	}
	// The numeric values of the session codes are hexadecimal in the
	// draft: 0x10 is GOAWAY_TIMEOUT, not 10.
	if GoawayTimeout != 16 || MalformedAuthority != 26 || SubscribeMalformedAuthToken != 16 || FetchExpiredAuthToken != 18 {
		t.Errorf("code values are not the draft's hexadecimal ones")
	}
	// Every message type has a name.
	for v := uint64(0); v < 0x100; v++ {
		if NewMessage(MessageType(v)) != nil && strings.HasPrefix(MessageType(v).String(), "0x") {
			t.Errorf("type 0x%x has no name", v)
		}
	}
}

func TestCodeSessionError(t *testing.T) {
	pv := violation("bad %s", "thing")
	if !errors.Is(pv, ErrProtocolViolation) || errors.Is(pv, ErrKeyValueFormatting) {
		t.Errorf("errors.Is on a PROTOCOL_VIOLATION is wrong")
	}
	wrapped := fmt.Errorf("context: %w", pv)
	if !errors.Is(wrapped, ErrProtocolViolation) {
		t.Errorf("errors.Is through wrapping failed")
	}
	var se *SessionError
	if !errors.As(wrapped, &se) || se.Code != ProtocolViolation || se.Reason != "bad thing" {
		t.Errorf("errors.As = %+v", se)
	}
	if !errors.Is(&SessionError{Code: TooManyRequests, Reason: "x"}, &SessionError{Code: TooManyRequests}) {
		t.Errorf("errors.Is with a literal target failed")
	}
	if errors.Is(&SessionError{Code: TooManyRequests}, &SessionError{Code: InvalidRequestID}) {
		t.Errorf("errors.Is matched a different code")
	}
	if errors.Is(pv, io.ErrUnexpectedEOF) {
		t.Errorf("a session error is io.ErrUnexpectedEOF")
	}
	kv := kvFormatting("nope")
	if !errors.Is(kv, ErrKeyValueFormatting) || kv.Code != KeyValueFormattingError {
		t.Errorf("kvFormatting = %+v", kv)
	}
	msg := pv.Error()
	if !strings.Contains(msg, "PROTOCOL_VIOLATION") || !strings.Contains(msg, "bad thing") {
		t.Errorf("Error() = %q", msg)
	}

	for _, c := range []struct {
		err  error
		want SessionErrorCode
	}{
		{nil, NoError},
		{io.ErrUnexpectedEOF, ProtocolViolation},
		{io.EOF, ProtocolViolation},
		{fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), ProtocolViolation},
		{errors.New("other"), InternalError},
		{pv, ProtocolViolation},
		{wrapped, ProtocolViolation},
		{kv, KeyValueFormattingError},
		{&SessionError{Code: TooManyRequests}, TooManyRequests},
		{fmt.Errorf("x: %w", &SessionError{Code: VersionNegotiationFailed}), VersionNegotiationFailed},
		{ErrProtocolViolation, ProtocolViolation},
	} {
		if got := SessionCode(c.err); got != c.want {
			t.Errorf("SessionCode(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

func TestVersionString(t *testing.T) {
	if Draft14 != 0xff00000e || Draft13 != 0xff00000d {
		t.Fatalf("draft numbers: %x %x", uint64(Draft14), uint64(Draft13))
	}
	for _, c := range []struct {
		v    Version
		want string
	}{
		{Draft14, "draft-14"},
		{Draft13, "draft-13"},
		{0xff000001, "draft-01"},
		{0xff00000c, "draft-12"},
		{1, "0x1"},
		{0xfe00000e, "0xfe00000e"},
	} {
		if got := c.v.String(); got != c.want {
			t.Errorf("Version(0x%x).String() = %q, want %q", uint64(c.v), got, c.want)
		}
	}
}

// moq-rs §4 enumerations that belong to the control plane. Group order is
// one byte; filter type and fetch type are varints (moq-rs writes fetch
// type as a u8, the same bytes for 1..3).
func TestPrimitiveEnums(t *testing.T) {
	for _, c := range []struct {
		f   Filter
		hex string
	}{
		{Filter{Type: FilterNextGroupStart}, "01"},
		{Filter{Type: FilterLargestObject}, "02"},
		{Filter{Type: FilterAbsoluteStart, Start: Location{1, 2}}, "03 01 02"},
		{Filter{Type: FilterAbsoluteRange, Start: Location{1, 2}, EndGroup: 3}, "04 01 02 03"},
	} {
		w := builder{}
		w.filter(c.f)
		want := mustHex(t, c.hex)
		if w.err != nil || !bytes.Equal(w.b, want) {
			t.Errorf("filter %v = % x, %v; want % x", c.f, w.b, w.err, want)
		}
		p := parser{b: want}
		if got := p.filter(); p.err != nil || got != c.f || p.n != len(want) {
			t.Errorf("parse filter % x = %v, %v", want, got, p.err)
		}
	}
	// Start and EndGroup are written only where the filter has them.
	w := builder{}
	w.filter(Filter{Type: FilterLargestObject, Start: Location{9, 9}, EndGroup: 9})
	if !bytes.Equal(w.b, []byte{0x02}) {
		t.Errorf("LargestObject with extra fields = % x", w.b)
	}
	for _, h := range []string{"00", "05", "40 05"} {
		p := parser{b: mustHex(t, h)}
		p.filter()
		if SessionCode(p.err) != ProtocolViolation {
			t.Errorf("filter %s: %v, want PROTOCOL_VIOLATION (InvalidFilterType)", h, p.err)
		}
	}

	for _, g := range []GroupOrder{GroupOrderPublisher, GroupOrderAscending, GroupOrderDescending} {
		w := builder{}
		w.groupOrder(g, true)
		if w.err != nil || !bytes.Equal(w.b, []byte{byte(g)}) {
			t.Errorf("group order %s = % x, %v", g, w.b, w.err)
		}
		p := parser{b: []byte{byte(g)}}
		if got := p.groupOrder(true); got != g || p.err != nil {
			t.Errorf("parse group order %02x = %v, %v", byte(g), got, p.err)
		}
	}
	for _, b := range []byte{3, 0x40, 0xff} {
		p := parser{b: []byte{b}}
		p.groupOrder(true)
		if SessionCode(p.err) != ProtocolViolation {
			t.Errorf("group order %02x: %v, want PROTOCOL_VIOLATION (InvalidGroupOrder)", b, p.err)
		}
	}
	p := parser{b: []byte{0}}
	if p.groupOrder(false); SessionCode(p.err) != ProtocolViolation {
		t.Errorf("group order 0 where not allowed: %v", p.err)
	}

	// Fetch type: byte 3 of a FETCH payload (request ID, priority, group
	// order, fetch type).
	for _, ft := range []FetchType{FetchStandalone, FetchRelativeJoining, FetchAbsoluteJoining} {
		m := &Fetch{RequestID: 0, GroupOrder: GroupOrderAscending, FetchType: ft, Namespace: Namespace{"a"}, Name: "b"}
		if ft != FetchStandalone {
			m.Namespace, m.Name = nil, ""
		}
		b, err := AppendMessage(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if b[3+3] != byte(ft) {
			t.Errorf("fetch type %s written as %02x", ft, b[6])
		}
	}
	_, err := ParseMessageBody(TypeFetch, mustHex(t, "00 80 01 04 00 00 00"))
	if SessionCode(err) != ProtocolViolation {
		t.Errorf("fetch type 4: %v, want PROTOCOL_VIOLATION (InvalidFetchType)", err)
	}
}
