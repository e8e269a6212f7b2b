package wire

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// Data-plane rules, each with the error it must give. Draft-14 §10 and
// wire-notes.md §7; "PV" is PROTOCOL_VIOLATION.

var errDPRead = errors.New("test: stream reset by peer")

// dpVarint encodes v (which must fit) as a varint.
func dpVarint(v uint64) []byte {
	b, err := AppendVarint(nil, v)
	if err != nil {
		panic(err)
	}
	return b
}

// dpSubgroupHeader encodes a subgroup header with the given flags.
func dpSubgroupHeader(mode SubgroupIDMode, ext, eog bool) []byte {
	b, err := AppendSubgroupHeader(nil, &SubgroupHeader{TrackAlias: 1, GroupID: 2, SubgroupID: 3, PublisherPriority: 0x80,
		IDMode: mode, Extensions: ext, EndOfGroup: eog})
	if err != nil {
		panic(err)
	}
	return b
}

// dpShort formats b for a failure message, eliding the middle of long
// slices.
func dpShort(b []byte) string {
	if len(b) <= 64 {
		return fmt.Sprintf("%x", b)
	}
	return fmt.Sprintf("%x...%x (%d bytes)", b[:32], b[len(b)-16:], len(b))
}

// dpAllocated returns how many bytes f allocates on the heap.
func dpAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// dpReadStream opens a StreamReader over b and reads objects until an
// error, which it returns with the objects read.
func dpReadStream(b []byte, cfg StreamReaderConfig) ([]Object, error) {
	r, err := NewStreamReader(bytes.NewReader(b), cfg)
	if err != nil {
		return nil, err
	}
	return dpReadAll(r, 1000)
}

// dpParseSubgroupStream parses a whole subgroup stream with the slice
// parsers and returns the first error.
func dpParseSubgroupStream(b []byte) ([]Object, error) {
	h, n, err := ParseSubgroupHeader(b)
	if err != nil {
		return nil, err
	}
	return dpParseObjects(b[n:], NewSubgroupState(h).ParseObject)
}

func dpParseFetchStream(b []byte) ([]Object, error) {
	_, n, err := ParseFetchHeader(b)
	if err != nil {
		return nil, err
	}
	return dpParseObjects(b[n:], ParseFetchObject)
}

// dpWantPV fails unless err is a *SessionError with PROTOCOL_VIOLATION.
func dpWantPV(t *testing.T, what string, err error) {
	t.Helper()
	if !dpIsPV(err) {
		t.Errorf("%s: %v, want PROTOCOL_VIOLATION", what, err)
	}
}

var dpUnknownStreamTypes = []uint64{
	0x00, 0x01, 0x02, 0x03, 0x04,
	0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x16, 0x17, 0x1e, 0x1f, 0x20, 0x40,
}

func TestStreamTypeUnknown(t *testing.T) {
	body := dpHex("01 02 03 80 | 00 01 61")
	for _, typ := range dpUnknownStreamTypes {
		b := dpCat(dpVarint(typ), body)
		if _, _, err := ParseStreamHeader(b); !dpIsPV(err) {
			t.Errorf("ParseStreamHeader(type 0x%x) = %v, want PV", typ, err)
		}
		if _, _, err := ParseSubgroupHeader(b); !dpIsPV(err) {
			t.Errorf("ParseSubgroupHeader(type 0x%x) = %v, want PV", typ, err)
		}
		if _, err := NewStreamReader(bytes.NewReader(b), StreamReaderConfig{}); !dpIsPV(err) {
			t.Errorf("NewStreamReader(type 0x%x) = %v, want PV", typ, err)
		}
		// The type alone decides: the reader does not read past it.
		r := io.MultiReader(bytes.NewReader(dpVarint(typ)), iotest.ErrReader(errDPRead))
		if _, err := NewStreamReader(r, StreamReaderConfig{}); !dpIsPV(err) || errors.Is(err, errDPRead) {
			t.Errorf("NewStreamReader(type 0x%x, then a read error) = %v, want PV", typ, err)
		}
		// Nor does the slice parser need more than the type.
		if _, _, err := ParseStreamHeader(dpVarint(typ)); !dpIsPV(err) {
			t.Errorf("ParseStreamHeader(type 0x%x alone) = %v, want PV", typ, err)
		}
	}
	// A fetch header is not a subgroup header.
	if _, _, err := ParseSubgroupHeader(dpHex("05 0a")); !dpIsPV(err) {
		t.Errorf("ParseSubgroupHeader(0x05) = %v, want PV", err)
	}
	// ParseFetchHeader takes only 0x05.
	for _, typ := range []uint64{0x10, 0x14, 0x1d, 0x00, 0x04, 0x06, 0x45} {
		if _, _, err := ParseFetchHeader(dpCat(dpVarint(typ), dpHex("0a 00 80"))); !dpIsPV(err) {
			t.Errorf("ParseFetchHeader(type 0x%x) = %v, want PV", typ, err)
		}
	}
	for typ := uint64(0); typ < 0x100; typ++ {
		want := typ >= 0x10 && typ <= 0x1d && typ != 0x16 && typ != 0x17
		if got := IsSubgroupStreamType(typ); got != want {
			t.Errorf("IsSubgroupStreamType(0x%x) = %v, want %v", typ, got, want)
		}
	}
}

func TestDatagramTypeUnknown(t *testing.T) {
	var types []uint64
	for typ := uint64(0x08); typ <= 0x1f; typ++ {
		types = append(types, typ)
	}
	types = append(types, 0x22, 0x23, 0x24, 0x40, 0x41, MaxVarint)
	for _, typ := range types {
		b := dpCat(dpVarint(typ), dpHex("01 02 03 80 6869"))
		if _, err := ParseDatagram(b); !dpIsPV(err) {
			t.Errorf("ParseDatagram(type 0x%x) = %v, want PV", typ, err)
		}
		if IsDatagramType(typ) {
			t.Errorf("IsDatagramType(0x%x) = true", typ)
		}
	}
}

func TestDatagramExtensionsLengthZero(t *testing.T) {
	for _, typ := range []uint64{0x01, 0x03, 0x05, 0x07, 0x21} {
		b := dpCat(dpVarint(typ), dpHex("01 02"))
		if typ&0x04 == 0 {
			b = append(b, 0x03) // object ID
		}
		b = append(b, 0x80, 0x00) // priority, extension length 0
		if typ == 0x21 {
			b = append(b, 0x01) // status
		} else {
			b = append(b, 'h', 'i')
		}
		if _, err := ParseDatagram(b); !dpIsPV(err) {
			t.Errorf("ParseDatagram(%x): %v, want PV", b, err)
		}
	}
}

func TestDatagramStatusRules(t *testing.T) {
	for _, c := range []struct {
		name string
		wire []byte
	}{
		{"0x20 trailing byte", dpHex("20 01 06 00 80 01 ff")},
		{"0x20 EndOfGroup then trailing payload", dpHex("20 01 06 00 80 03 6869")},
		{"0x21 trailing byte", dpHex("21 01 06 00 80 02 3c01 03 00")},
		{"0x21 DoesNotExist with extensions", dpHex("21 01 06 00 80 02 3c01 01")},
		{"0x20 status 2", dpHex("20 01 06 00 80 02")},
		{"0x20 status 5", dpHex("20 01 06 00 80 05")},
		{"0x21 status 2", dpHex("21 01 06 00 80 02 3c01 02")},
		{"0x20 status 64 (two-byte varint)", dpHex("20 01 06 00 80 4040")},
		{"0x20 status 2^62-1", dpHex("20 01 06 00 80 ffffffffffffffff")},
	} {
		if d, err := ParseDatagram(c.wire); !dpIsPV(err) {
			t.Errorf("%s: %+v, %v; want PV", c.name, d, err)
		}
	}
	// Positive control: the same datagram without the fault parses.
	if _, err := ParseDatagram(dpHex("20 01 06 00 80 01")); err != nil {
		t.Errorf("control: %v", err)
	}
	if _, err := ParseDatagram(dpHex("21 01 06 00 80 02 3c01 03")); err != nil {
		t.Errorf("control with extensions: %v", err)
	}
}

func TestObjectStatusUndefined(t *testing.T) {
	for _, st := range []uint64{2, 5, 6, 0x40, MaxVarint} {
		sv := dpVarint(st)
		streams := map[string][]byte{
			"subgroup 0x10": dpCat(dpHex("10 01 02 80 | 00 00"), sv),
			"subgroup 0x11": dpCat(dpHex("11 01 02 80 | 00 00 00"), sv),
			"subgroup 0x1d": dpCat(dpHex("1d 01 02 03 80 | 00 00 01 61 | 00 00 00"), sv), // second object
			"fetch":         dpCat(dpHex("05 01 | 00 00 00 80 00 00"), sv),
		}
		for name, b := range streams {
			var err error
			if name == "fetch" {
				_, err = dpParseFetchStream(b)
			} else {
				_, err = dpParseSubgroupStream(b)
			}
			if !dpIsPV(err) {
				t.Errorf("%s status %d, slice parser: %v, want PV", name, st, err)
			}
			if _, err := dpReadStream(b, StreamReaderConfig{}); !dpIsPV(err) {
				t.Errorf("%s status %d, StreamReader: %v, want PV", name, st, err)
			}
		}
		if st == 2 {
			// Control: status 3 in the same places is fine.
			ok := dpHex("1d 01 02 03 80 | 00 00 01 61 | 00 00 00 03")
			if objs, err := dpReadStream(ok, StreamReaderConfig{}); err != io.EOF || len(objs) != 2 {
				t.Errorf("control: %d objects, %v", len(objs), err)
			}
		}
		for _, b := range [][]byte{
			dpCat(dpHex("20 01 02 03 80"), sv),
			dpCat(dpHex("21 01 02 03 80 02 3c01"), sv),
		} {
			if _, err := ParseDatagram(b); !dpIsPV(err) {
				t.Errorf("datagram %x: %v, want PV", b, err)
			}
		}
		if ObjectStatus(st).Valid() {
			t.Errorf("ObjectStatus(%d).Valid() = true", st)
		}
	}
}

func TestObjectDoesNotExistWithExtensions(t *testing.T) {
	// Every subgroup type with extensions.
	for _, mode := range []SubgroupIDMode{SubgroupIDZero, SubgroupIDFirstObject, SubgroupIDExplicit} {
		for _, eog := range []bool{false, true} {
			b := dpCat(dpSubgroupHeader(mode, true, eog), dpHex("00 02 3c01 00 01"))
			if _, err := dpParseSubgroupStream(b); !dpIsPV(err) {
				t.Errorf("stream %x, slice parser: %v, want PV", b, err)
			}
			if _, err := dpReadStream(b, StreamReaderConfig{}); !dpIsPV(err) {
				t.Errorf("stream %x, StreamReader: %v, want PV", b, err)
			}
			// Control: EndOfGroup may carry extensions.
			ok := dpCat(dpSubgroupHeader(mode, true, eog), dpHex("00 02 3c01 00 03"))
			if _, err := dpReadStream(ok, StreamReaderConfig{}); err != io.EOF {
				t.Errorf("EndOfGroup with extensions %x: %v, want io.EOF", ok, err)
			}
		}
	}
	fetch := dpHex("05 01 | 00 00 00 80 02 3c01 00 01")
	if _, err := dpParseFetchStream(fetch); !dpIsPV(err) {
		t.Errorf("fetch, slice parser: %v, want PV", err)
	}
	if _, err := dpReadStream(fetch, StreamReaderConfig{}); !dpIsPV(err) {
		t.Errorf("fetch, StreamReader: %v, want PV", err)
	}
}

// An extension block must be a whole number of pairs.
func TestExtensionBlockCut(t *testing.T) {
	blocks := []string{
		"25 05 61",   // odd value declares 5 bytes, 1 in the block
		"40",         // two-byte type cut after its first byte
		"3c",         // even type without its value
		"3c01 3e",    // second pair without its value
		"3c01 3e 40", // second pair's two-byte value cut
		"0b 03 0201", // immutable declares 3 bytes, 2 in the block
		"25 00 00",   // a whole pair, then a type without a value
	}
	build := func(blk string) (sub, fetch, dg []byte) {
		ext := dpHex(blk)
		el := dpVarint(uint64(len(ext)))
		sub = dpCat(dpHex("11 01 02 80 | 00"), el, ext, dpHex("01 61"))
		fetch = dpCat(dpHex("05 01 | 00 00 00 80"), el, ext, dpHex("01 61"))
		dg = dpCat(dpHex("01 01 02 03 80"), el, ext, dpHex("6869"))
		return
	}
	// Control: a well-formed block (with a 4-byte varint value) parses
	// everywhere.
	sub, fetch, dg := build("3c 80000001 25 00")
	if _, err := dpParseSubgroupStream(sub); err != nil {
		t.Errorf("control subgroup: %v", err)
	}
	if _, err := dpReadStream(fetch, StreamReaderConfig{}); err != io.EOF {
		t.Errorf("control fetch: %v", err)
	}
	if _, err := ParseDatagram(dg); err != nil {
		t.Errorf("control datagram: %v", err)
	}
	for _, blk := range blocks {
		sub, fetch, dg := build(blk)
		if _, err := dpParseSubgroupStream(sub); !dpIsPV(err) {
			t.Errorf("block %q, subgroup slice parser: %v, want PV", blk, err)
		}
		if _, err := dpReadStream(sub, StreamReaderConfig{}); !dpIsPV(err) {
			t.Errorf("block %q, subgroup StreamReader: %v, want PV", blk, err)
		}
		if _, err := dpParseFetchStream(fetch); !dpIsPV(err) {
			t.Errorf("block %q, fetch slice parser: %v, want PV", blk, err)
		}
		if _, err := dpReadStream(fetch, StreamReaderConfig{}); !dpIsPV(err) {
			t.Errorf("block %q, fetch StreamReader: %v, want PV", blk, err)
		}
		if _, err := ParseDatagram(dg); !dpIsPV(err) {
			t.Errorf("block %q, datagram: %v, want PV", blk, err)
		}
	}
}

// The value of an Immutable Extensions pair is checked only as bytes here:
// nested pairs that do not parse make the track malformed (§2.5, §11), a
// decision for the layer that knows the track, not a session error.
func TestExtensionImmutableNotParsedByCodec(t *testing.T) {
	b := dpHex("11 01 02 80 | 00 03 0b 01 40 | 01 61") // 0x0B holding half a varint
	objs, err := dpParseSubgroupStream(b)
	if err != nil || len(objs) != 1 {
		t.Fatalf("%v, %d objects", err, len(objs))
	}
	kv, ok := objs[0].Extensions.Get(ExtImmutable)
	if !ok || !bytes.Equal(kv.Bytes, []byte{0x40}) {
		t.Errorf("immutable extension = %v, %v; want bytes 40", kv, ok)
	}
}

// An odd-typed extension value is at most 65535 bytes (§1.4.2).
func TestExtensionValueTooLong(t *testing.T) {
	for _, n := range []int{65535, 65536} {
		ext := dpCat(dpHex("25"), dpVarint(uint64(n)), make([]byte, n))
		el := dpVarint(uint64(len(ext)))
		sub := dpCat(dpHex("11 01 02 80 | 00"), el, ext, dpHex("01 61"))
		fetch := dpCat(dpHex("05 01 | 00 00 00 80"), el, ext, dpHex("01 61"))
		dg := dpCat(dpHex("01 01 02 03 80"), el, ext, dpHex("6869"))
		big := StreamReaderConfig{MaxExtensionsLen: 1 << 20}
		_, errSub := dpParseSubgroupStream(sub)
		_, errFetch := dpParseFetchStream(fetch)
		_, errDg := ParseDatagram(dg)
		_, errRdSub := dpReadStream(sub, big)
		_, errRdFetch := dpReadStream(fetch, big)
		if n == 65535 {
			if errSub != nil || errFetch != nil || errDg != nil || errRdSub != io.EOF || errRdFetch != io.EOF {
				t.Errorf("65535-byte value: %v, %v, %v, %v, %v; want it accepted", errSub, errFetch, errDg, errRdSub, errRdFetch)
			}
		} else {
			for i, err := range []error{errSub, errFetch, errDg, errRdSub, errRdFetch} {
				if !dpIsPV(err) {
					t.Errorf("65536-byte value, parser %d: %v, want PV", i, err)
				}
			}
		}
		// The default limits leave room for a maximum-size extension: the
		// 65535-byte value reads, the 65536-byte one is a violation.
		_, errDefault := dpReadStream(sub, StreamReaderConfig{})
		if want := n == 65535; want != (errDefault == io.EOF) || (!want && !dpIsPV(errDefault)) {
			t.Errorf("%d-byte value, default reader limits: %v", n, errDefault)
		}
		// A limit below the block size is a local refusal, not a violation.
		if _, err := dpReadStream(sub, StreamReaderConfig{MaxExtensionsLen: 1024}); !errors.Is(err, ErrObjectTooLarge) {
			t.Errorf("%d-byte value, 1 KiB extension limit: %v, want ErrObjectTooLarge", n, err)
		}
	}
}

func TestObjectIDDeltaOverflow(t *testing.T) {
	for _, c := range []struct {
		name string
		wire []byte
	}{
		{"2^62-2 then delta 5", dpHex("14 01 02 00 80 | fffffffffffffffe 01 61 | 05 01 62")},
		{"2^62-2 then delta 1", dpHex("14 01 02 00 80 | fffffffffffffffe 01 61 | 01 01 62")},
		{"2^62-1 then delta 0", dpHex("10 01 02 80 | ffffffffffffffff 01 61 | 00 01 62")},
		{"0 then delta 2^62-1", dpHex("10 01 02 80 | 00 01 61 | ffffffffffffffff 01 62")},
		{"with extensions", dpHex("11 01 02 80 | 00 00 01 61 | ffffffffffffffff 00 01 62")},
	} {
		objs, err := dpParseSubgroupStream(c.wire)
		if !dpIsPV(err) || len(objs) != 1 {
			t.Errorf("%s, slice parser: %d objects, %v; want 1 then PV", c.name, len(objs), err)
		}
		objs, err = dpReadStream(c.wire, StreamReaderConfig{})
		if !dpIsPV(err) || len(objs) != 1 {
			t.Errorf("%s, StreamReader: %d objects, %v; want 1 then PV", c.name, len(objs), err)
		}
	}
}

// A FIN inside an object is a PROTOCOL_VIOLATION (§10.4.2), wherever it
// falls.
func TestStreamReaderFINInsideObject(t *testing.T) {
	for _, c := range []struct {
		name  string
		wire  []byte
		whole int // objects before the cut
	}{
		{"subgroup, in the payload", dpHex("10 01 02 80 | 00 05 6162"), 0},
		{"subgroup, in the payload of the second object", dpHex("10 01 02 80 | 00 01 61 | 00 05 6162"), 1},
		{"subgroup, before the status", dpHex("10 01 02 80 | 00 00"), 0},
		{"subgroup, in a two-byte delta", dpHex("10 01 02 80 | 40"), 0},
		{"subgroup, before the payload length", dpHex("10 01 02 80 | 00"), 0},
		{"subgroup, in the extensions", dpHex("11 01 02 80 | 00 04 3c01"), 0},
		{"subgroup, before the extension length", dpHex("11 01 02 80 | 00 00 01 61 | 00"), 1},
		{"fetch, in the payload", dpHex("05 01 | 00 00 00 80 00 05 6162"), 0},
		{"fetch, in the object header", dpHex("05 01 | 00 00"), 0},
		{"fetch, before the priority", dpHex("05 01 | 00 00 00"), 0},
		{"fetch, in the extensions", dpHex("05 01 | 00 00 00 80 03 3c"), 0},
	} {
		objs, err := dpReadStream(c.wire, StreamReaderConfig{})
		if !dpIsPV(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || len(objs) != c.whole {
			t.Errorf("%s: %d objects, %v; want %d then PV", c.name, len(objs), err, c.whole)
		}
	}
}

// Declared lengths are checked against the reader's limits before anything
// of that size is allocated.
func TestStreamReaderHostileLengths(t *testing.T) {
	const budget = 1 << 20
	for _, c := range []struct {
		name string
		wire []byte
	}{
		{"subgroup payload 2^62-1", dpHex("10 01 02 80 | 00 ffffffffffffffff 616263")},
		{"subgroup payload 64 MiB + 1", dpCat(dpHex("10 01 02 80 | 00"), dpVarint(DefaultMaxObjectPayload+1), dpHex("616263"))},
		{"fetch payload 2^62-1", dpHex("05 01 | 00 00 00 80 00 ffffffffffffffff 616263")},
		{"subgroup extensions 2^40", dpCat(dpHex("11 01 02 80 | 00"), dpVarint(1<<40), dpHex("3c01 01 61"))},
		{"fetch extensions 2^40", dpCat(dpHex("05 01 | 00 00 00 80"), dpVarint(1<<40), dpHex("3c01 01 61"))},
		{"fetch extensions 2^62-1", dpCat(dpHex("05 01 | 00 00 00 80"), dpVarint(MaxVarint), dpHex("3c01 01 61"))},
	} {
		var err error
		n := dpAllocated(func() { _, err = dpReadStream(c.wire, StreamReaderConfig{}) })
		if !errors.Is(err, ErrObjectTooLarge) {
			t.Errorf("%s: %v, want ErrObjectTooLarge", c.name, err)
		}
		var se *SessionError
		if errors.As(err, &se) {
			t.Errorf("%s: ErrObjectTooLarge is a local limit, not a session error: %v", c.name, err)
		}
		if n > budget {
			t.Errorf("%s: allocated %d bytes", c.name, n)
		}
	}

	// The slice parsers never allocate: a huge extension length is just
	// more bytes than the slice has, and a huge payload length is returned
	// for the caller to check.
	extHuge := dpCat(dpHex("00"), dpVarint(1<<40), dpHex("3c01 01 61"))
	s := NewSubgroupState(SubgroupHeader{Extensions: true})
	var err error
	allocs := testing.AllocsPerRun(10, func() { _, _, err = s.ParseObject(extHuge) })
	if err != io.ErrUnexpectedEOF || allocs != 0 {
		t.Errorf("ParseObject(extension length 2^40) = %v with %v allocations, want io.ErrUnexpectedEOF and none", err, allocs)
	}
	dg := dpCat(dpHex("01 01 02 03 80"), dpVarint(1<<40), dpHex("3c01"))
	allocs = testing.AllocsPerRun(10, func() { _, err = ParseDatagram(dg) })
	if err != io.ErrUnexpectedEOF || allocs != 0 {
		t.Errorf("ParseDatagram(extension length 2^40) = %v with %v allocations", err, allocs)
	}
	h, n, err := NewSubgroupState(SubgroupHeader{}).ParseObject(dpHex("00 ffffffffffffffff 61"))
	if err != nil || h.PayloadLength != MaxVarint || n != 9 {
		t.Errorf("ParseObject(payload length 2^62-1) = %+v, %d, %v", h, n, err)
	}
}

func TestStreamReaderLimits(t *testing.T) {
	cfg := StreamReaderConfig{MaxObjectPayload: 10, MaxExtensionsLen: 4}
	ten := dpCat(dpHex("10 01 02 80 | 00 0a"), []byte("0123456789"))
	objs, err := dpReadStream(ten, cfg)
	if err != io.EOF || len(objs) != 1 || string(objs[0].Payload) != "0123456789" {
		t.Errorf("10-byte payload, limit 10: %d objects, %v", len(objs), err)
	}
	eleven := dpCat(dpHex("10 01 02 80 | 00 0b"), []byte("0123456789a"))
	objs, err = dpReadStream(eleven, cfg)
	if !errors.Is(err, ErrObjectTooLarge) || len(objs) != 0 {
		t.Errorf("11-byte payload, limit 10: %d objects, %v; want ErrObjectTooLarge", len(objs), err)
	}
	// The limit applies to each object, not to the stream.
	two := dpCat(ten[:4], ten[4:], ten[4:])
	if objs, err := dpReadStream(two, cfg); err != io.EOF || len(objs) != 2 {
		t.Errorf("two 10-byte payloads: %d objects, %v", len(objs), err)
	}
	fetch11 := dpCat(dpHex("05 01 | 00 00 00 80 00 0b"), []byte("0123456789a"))
	if _, err := dpReadStream(fetch11, cfg); !errors.Is(err, ErrObjectTooLarge) {
		t.Errorf("fetch 11-byte payload, limit 10: %v", err)
	}
	ext4 := dpHex("11 01 02 80 | 00 04 3c01 3e02 01 61")
	if objs, err := dpReadStream(ext4, cfg); err != io.EOF || len(objs) != 1 {
		t.Errorf("4 bytes of extensions, limit 4: %d objects, %v", len(objs), err)
	}
	ext5 := dpHex("11 01 02 80 | 00 05 3c01 250100 01 61")
	if _, err := dpReadStream(ext5, cfg); !errors.Is(err, ErrObjectTooLarge) {
		t.Errorf("5 bytes of extensions, limit 4: %v, want ErrObjectTooLarge", err)
	}
}

// A read error that is not the end of the stream (a reset, say) comes back
// as it is, wherever it happens.
func TestStreamReaderPassesReadErrors(t *testing.T) {
	streams := map[string][]byte{
		"subgroup": dpHex("19 01 0c 80 | 00 02 3c02 01 67 | 00 00 01 68 | 00 02 2500 00 03"),
		"explicit": dpHex("1d 80004000 c000000040000000 3f 7f | 4040 06 80004001017a 03 616263"),
		"fetch":    dpHex("05 0a | 02 01 04 07 04 3c013e02 05 68656c6c6f | 02 01 05 07 00 00 01"),
	}
	for name, wire := range streams {
		for k := 0; k <= len(wire); k++ {
			for _, oneByte := range []bool{false, true} {
				var r io.Reader = io.MultiReader(bytes.NewReader(wire[:k]), iotest.ErrReader(errDPRead))
				if oneByte {
					r = iotest.OneByteReader(r)
				}
				sr, err := NewStreamReader(r, StreamReaderConfig{})
				if err == nil {
					_, err = dpReadAll(sr, 100)
				}
				if !errors.Is(err, errDPRead) || SessionCode(err) != InternalError {
					t.Errorf("%s, error after %d bytes (one-byte %v): %v, want the read error", name, k, oneByte, err)
				}
			}
		}
	}
}

func TestSubgroupEncodeObjectErrors(t *testing.T) {
	hdr := SubgroupHeader{TrackAlias: 1, GroupID: 2, PublisherPriority: 0x80}
	prefix := []byte("buf")

	// IDs must increase.
	s := NewSubgroupState(hdr)
	b, err := s.AppendObject(nil, &ObjectHeader{ID: 5, PayloadLength: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint64{5, 4, 0} {
		got, err := s.AppendObject(prefix, &ObjectHeader{ID: id, PayloadLength: 1})
		if err == nil || !bytes.Equal(got, prefix) {
			t.Errorf("object %d after object 5: %x, %v; want an error and the buffer unchanged", id, got, err)
		}
	}
	// The refusals left the state alone: object 6 is delta 0.
	if b, err = s.AppendObject(nil, &ObjectHeader{ID: 6, PayloadLength: 1}); err != nil || !bytes.Equal(b, dpHex("00 01")) {
		t.Errorf("object 6 after refusals: %x, %v; want 00 01", b, err)
	}

	for _, c := range []struct {
		name string
		hdr  SubgroupHeader
		obj  ObjectHeader
	}{
		{"extensions on a type without them", hdr, ObjectHeader{ID: 0, Extensions: Extensions(dpHex("3c01")), PayloadLength: 1}},
		{"EndOfGroup with a payload", hdr, ObjectHeader{ID: 0, Status: StatusEndOfGroup, PayloadLength: 3}},
		{"DoesNotExist with a payload", hdr, ObjectHeader{ID: 0, Status: StatusDoesNotExist, PayloadLength: 1}},
		{"EndOfTrack with a payload", hdr, ObjectHeader{ID: 0, Status: StatusEndOfTrack, PayloadLength: 1}},
		{"status 2", hdr, ObjectHeader{ID: 0, Status: 2}},
		{"status 5", hdr, ObjectHeader{ID: 0, Status: 5}},
		{"DoesNotExist with extensions", SubgroupHeader{Extensions: true}, ObjectHeader{ID: 0, Status: StatusDoesNotExist, Extensions: Extensions(dpHex("3c01"))}},
		{"first object differs from the subgroup ID", SubgroupHeader{IDMode: SubgroupIDFirstObject, SubgroupID: 4}, ObjectHeader{ID: 3, PayloadLength: 1}},
		{"object ID 2^62", hdr, ObjectHeader{ID: 1 << 62, PayloadLength: 1}},
		{"object ID 2^64-1", hdr, ObjectHeader{ID: 1<<64 - 1, PayloadLength: 1}},
		{"payload length 2^62", hdr, ObjectHeader{ID: 0, PayloadLength: 1 << 62}},
		{"malformed extensions", SubgroupHeader{Extensions: true}, ObjectHeader{ID: 0, Extensions: Extensions(dpHex("25 05 61")), PayloadLength: 1}},
		{"extension value over 65535 bytes", SubgroupHeader{Extensions: true},
			ObjectHeader{ID: 0, Extensions: Extensions(dpCat(dpHex("25 80010000"), make([]byte, 65536))), PayloadLength: 1}},
	} {
		s := NewSubgroupState(c.hdr)
		got, err := s.AppendObject(prefix, &c.obj)
		if err == nil || !bytes.Equal(got, prefix) || s.Objects() {
			t.Errorf("%s: %s, %v; want an error, the buffer unchanged and no object recorded", c.name, dpShort(got), err)
		}
	}

	// SubgroupIDFirstObject: the first object must be the subgroup ID;
	// later objects need not.
	s = NewSubgroupState(SubgroupHeader{IDMode: SubgroupIDFirstObject, SubgroupID: 4})
	if b, err = s.AppendObject(nil, &ObjectHeader{ID: 4, PayloadLength: 1}); err != nil || !bytes.Equal(b, dpHex("04 01")) {
		t.Errorf("first object 4 on subgroup 4: %x, %v", b, err)
	}
	if b, err = s.AppendObject(nil, &ObjectHeader{ID: 9, PayloadLength: 1}); err != nil || !bytes.Equal(b, dpHex("04 01")) {
		t.Errorf("object 9 after 4: %x, %v; want delta 4", b, err)
	}
}

func TestSubgroupEncodeHeaderErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		h    SubgroupHeader
	}{
		{"track alias 2^62", SubgroupHeader{TrackAlias: 1 << 62}},
		{"group 2^62", SubgroupHeader{GroupID: 1 << 62}},
		{"explicit subgroup 2^62", SubgroupHeader{IDMode: SubgroupIDExplicit, SubgroupID: 1 << 62}},
		{"ID mode 3", SubgroupHeader{IDMode: 3}},
	} {
		if b, err := AppendSubgroupHeader([]byte("x"), &c.h); err == nil || string(b) != "x" {
			t.Errorf("%s: %x, %v; want an error", c.name, b, err)
		}
	}
}

func TestFetchEncodeErrors(t *testing.T) {
	if b, err := AppendFetchHeader(nil, 1<<62); err == nil || len(b) != 0 {
		t.Errorf("AppendFetchHeader(2^62) = %x, %v", b, err)
	}
	prefix := []byte("buf")
	for _, c := range []struct {
		name string
		obj  ObjectHeader
	}{
		{"group 2^62", ObjectHeader{Group: 1 << 62, PayloadLength: 1}},
		{"subgroup 2^62", ObjectHeader{Subgroup: 1 << 62, PayloadLength: 1}},
		{"object 2^62", ObjectHeader{ID: 1 << 62, PayloadLength: 1}},
		{"payload length 2^62", ObjectHeader{PayloadLength: 1 << 62}},
		{"EndOfGroup with a payload", ObjectHeader{Status: StatusEndOfGroup, PayloadLength: 1}},
		{"status 2", ObjectHeader{Status: 2}},
		{"status 5", ObjectHeader{Status: 5}},
		{"DoesNotExist with extensions", ObjectHeader{Status: StatusDoesNotExist, Extensions: Extensions(dpHex("3c01"))}},
		{"malformed extensions", ObjectHeader{Extensions: Extensions(dpHex("3c")), PayloadLength: 1}},
	} {
		if b, err := AppendFetchObject(prefix, &c.obj); err == nil || !bytes.Equal(b, prefix) {
			t.Errorf("%s: %s, %v; want an error and the buffer unchanged", c.name, dpShort(b), err)
		}
	}
}

func TestDatagramEncodeErrors(t *testing.T) {
	base := Datagram{TrackAlias: 1, Group: 2, Object: 3, PublisherPriority: 0x80}
	with := func(f func(d *Datagram)) Datagram { d := base; f(&d); return d }
	prefix := []byte("buf")
	for _, c := range []struct {
		name string
		d    Datagram
	}{
		{"status with a payload", with(func(d *Datagram) { d.IsStatus, d.Status, d.Payload = true, StatusEndOfGroup, []byte("x") })},
		{"status with end of group", with(func(d *Datagram) { d.IsStatus, d.Status, d.EndOfGroup = true, StatusEndOfGroup, true })},
		{"status 2", with(func(d *Datagram) { d.IsStatus, d.Status = true, 2 })},
		{"status 5", with(func(d *Datagram) { d.IsStatus, d.Status = true, 5 })},
		{"DoesNotExist with extensions", with(func(d *Datagram) {
			d.IsStatus, d.Status, d.Extensions = true, StatusDoesNotExist, Extensions(dpHex("3c01"))
		})},
		{"payload datagram with EndOfGroup status", with(func(d *Datagram) { d.Status, d.Payload = StatusEndOfGroup, []byte("x") })},
		{"payload datagram with DoesNotExist status", with(func(d *Datagram) { d.Status = StatusDoesNotExist })},
		{"payload datagram with EndOfTrack status", with(func(d *Datagram) { d.Status = StatusEndOfTrack })},
		{"track alias 2^62", with(func(d *Datagram) { d.TrackAlias = 1 << 62 })},
		{"group 2^62", with(func(d *Datagram) { d.Group = 1 << 62 })},
		{"object 2^62", with(func(d *Datagram) { d.Object = 1 << 62 })},
		{"object 2^64-1 in a status datagram", with(func(d *Datagram) { d.IsStatus, d.Object = true, 1<<64-1 })},
		{"malformed extensions", with(func(d *Datagram) { d.Extensions, d.Payload = Extensions(dpHex("25 05 61")), []byte("x") })},
		{"malformed extensions on a status", with(func(d *Datagram) {
			d.IsStatus, d.Status, d.Extensions = true, StatusEndOfGroup, Extensions(dpHex("40"))
		})},
	} {
		if b, err := AppendDatagram(prefix, &c.d); err == nil || !bytes.Equal(b, prefix) {
			t.Errorf("%s: %s, %v; want an error and the buffer unchanged", c.name, dpShort(b), err)
		}
	}
}
