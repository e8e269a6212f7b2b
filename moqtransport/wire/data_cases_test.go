package wire

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// Data-plane cases: subgroup streams, fetch streams and datagrams, each with
// the exact bytes on the wire. The tables are package-level so that the fuzz
// tests can seed from them (use the wire field).
//
// Sources: wire-notes.md §7.2-7.4 (vectors from a local draft-14 encoder),
// moq-rs-vectors.md §7 (moq-rs f9f51dc round-trip tests, bytes derived) and
// the data rows of §8 (what moq-rs emits), and cases written here from
// draft-14 §10 to cover every stream/datagram type, status and extension.

// subgroupStreamCase is a whole subgroup stream: header, then each object's
// header and payload. objects hold what a decoder returns: Group, Subgroup
// and PublisherPriority come from the stream header (for
// SubgroupIDFirstObject the Subgroup is the first object's ID, and so is
// header.SubgroupID when the stream has objects).
type subgroupStreamCase struct {
	name    string
	header  SubgroupHeader
	objects []Object
	wire    []byte
	source  string
}

// fetchStreamCase is a whole fetch stream: FETCH_HEADER with requestID, then
// each object's header and payload.
type fetchStreamCase struct {
	name      string
	requestID uint64
	objects   []Object
	wire      []byte
	source    string
}

// datagramCase is one OBJECT_DATAGRAM.
type datagramCase struct {
	name   string
	d      Datagram
	wire   []byte
	source string
}

// dpHex decodes hex digits; spaces and '|' (used to mark field groups) are
// ignored.
func dpHex(s string) []byte {
	s = strings.NewReplacer(" ", "", "|", "", "\n", "", "\t", "").Replace(s)
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(fmt.Sprintf("dpHex(%q): %v", s, err))
	}
	return b
}

// dpCat concatenates byte slices into a new slice.
func dpCat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// dpObj is a Normal object with a payload.
func dpObj(group, subgroup, id uint64, prio uint8, payload string) Object {
	return Object{
		ObjectHeader: ObjectHeader{Group: group, Subgroup: subgroup, ID: id, PublisherPriority: prio, PayloadLength: uint64(len(payload))},
		Payload:      []byte(payload),
	}
}

// dpStatusObj is a zero-length object carrying status st.
func dpStatusObj(group, subgroup, id uint64, prio uint8, st ObjectStatus) Object {
	return Object{ObjectHeader: ObjectHeader{Group: group, Subgroup: subgroup, ID: id, PublisherPriority: prio, Status: st}}
}

// dpExt returns o with extension block ext (hex, without its length).
func dpExt(o Object, ext string) Object {
	o.Extensions = Extensions(dpHex(ext))
	return o
}

const clockBase = "2026-04-13 18:37:" // moq-clock-ietf's first object of a minute

var (
	payload100 = strings.Repeat("m", 100)
	payload300 = strings.Repeat("x", 300)
)

var subgroupStreamCases = []subgroupStreamCase{
	{
		name:   "0x14 explicit subgroup, gap, EndOfGroup status",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 5, SubgroupID: 0, PublisherPriority: 128, IDMode: SubgroupIDExplicit},
		objects: []Object{
			dpObj(5, 0, 0, 128, "abc"),
			dpObj(5, 0, 2, 128, "de"),                   // delta 1: object 1 skipped
			dpStatusObj(5, 0, 3, 128, StatusEndOfGroup), // delta 0
		},
		wire:   dpHex("14 01 05 00 80 | 00 03 616263 | 01 02 6465 | 00 00 03"),
		source: "wire-notes.md §7.2 vector 1",
	},
	{
		name:   "0x11 extensions, prior group gap, empty extension block",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 8, PublisherPriority: 128, IDMode: SubgroupIDZero, Extensions: true},
		objects: []Object{
			dpExt(dpObj(8, 0, 0, 128, "xy"), "3c 02"), // Prior Group ID Gap = 2
			dpObj(8, 0, 1, 128, "z"),                  // extension length 0
		},
		wire:   dpHex("11 01 08 80 | 00 02 3c02 02 7879 | 00 00 01 7a"),
		source: "wire-notes.md §7.2 vector 2",
	},
	{
		name:    "moq-rs 0x14 header and SubgroupObject",
		header:  SubgroupHeader{TrackAlias: 10, GroupID: 0, SubgroupID: 1, PublisherPriority: 100, IDMode: SubgroupIDExplicit},
		objects: []Object{dpObj(0, 1, 0, 100, "payload")},
		// 14 0a 00 01 64: StreamHeader SUBGROUP (0x14); 00 07: SubgroupObject
		// {delta 0, payload_length 7}; then the 7 payload bytes.
		wire:   dpHex("14 0a 00 01 64 | 00 07 | 7061796c6f6164"),
		source: "moq-rs-vectors.md §7 StreamHeader SUBGROUP (0x14) + SubgroupObject (no ext)",
	},
	{
		name:    "moq-rs SubgroupObjectExt on a 0x15 stream",
		header:  SubgroupHeader{TrackAlias: 10, GroupID: 0, SubgroupID: 1, PublisherPriority: 100, IDMode: SubgroupIDExplicit, Extensions: true},
		objects: []Object{dpExt(dpObj(0, 1, 0, 100, "payload"), "40 7b 04 00010203")},
		// The vector 00 07 40 7b 04 00 01 02 03 07 lists moq-rs's struct
		// fields as (object_id_delta, payload_length, ...), but moq-rs's
		// SubgroupObjectExt::encode writes object_id_delta, then the
		// ExtensionHeaders (byte-length prefixed), then payload_length,
		// which is exactly draft-14's order (Object ID Delta, Extension
		// Headers Length, Extension headers, Object Payload Length,
		// [Object Status]). Byte by byte:
		//   00           Object ID Delta 0 -> object 0
		//   07           Extension Headers Length: 7 bytes (not the payload length)
		//   40 7b        extension type 123 (odd: a length and bytes follow)
		//   04           value length 4
		//   00 01 02 03  value
		//   07           Object Payload Length 7
		// No status (length != 0); the 7 payload bytes follow. The two
		// 0x07s coincide; the orders agree, so we follow the draft and
		// match moq-rs. The 0x15 header is the 0x14 vector's header with
		// the extensions bit set.
		wire:   dpHex("15 0a 00 01 64 | 00 07 407b04 00010203 07 | 7061796c6f6164"),
		source: "moq-rs-vectors.md §7 SubgroupObjectExt (header derived from the 0x14 row)",
	},
	{
		name:   "moq-rs clock subgroup stream 0x15",
		header: SubgroupHeader{TrackAlias: 0, GroupID: 37, SubgroupID: 0, PublisherPriority: 0, IDMode: SubgroupIDExplicit, Extensions: true},
		objects: []Object{
			dpObj(37, 0, 0, 0, clockBase),
			dpObj(37, 0, 1, 0, "05"),
			dpObj(37, 0, 2, 0, "06"),
		},
		wire: dpHex("15 00 25 00 00 | 00 00 11 323032362d30342d31332031383a33373a" +
			"| 00 00 02 3035 | 00 00 02 3036"),
		source: "moq-rs-vectors.md §8 subgroup header 0x15, clock object 0 and objects 1..n",
	},
	{
		name:    "moq-rs relay zero-length Normal object",
		header:  SubgroupHeader{TrackAlias: 0, GroupID: 37, PublisherPriority: 0, IDMode: SubgroupIDExplicit, Extensions: true},
		objects: []Object{dpStatusObj(37, 0, 0, 0, StatusNormal)},
		// delta 0, ext len 0, payload len 0, status Normal (explicit).
		wire:   dpHex("15 00 25 00 00 | 00 00 00 00"),
		source: "moq-rs-vectors.md §8 zero-length object as re-sent by a moq-rs relay",
	},
	{
		name:   "0x10 consecutive IDs are delta 0",
		header: SubgroupHeader{TrackAlias: 2, GroupID: 3, PublisherPriority: 0, IDMode: SubgroupIDZero},
		objects: []Object{
			dpObj(3, 0, 0, 0, "a"),
			dpObj(3, 0, 1, 0, "b"),
			dpObj(3, 0, 2, 0, "c"),
		},
		wire:   dpHex("10 02 03 00 | 00 01 61 | 00 01 62 | 00 01 63"),
		source: "draft-14 §10.4.2",
	},
	{
		name:   "0x10 first object ID 1000, then a gap",
		header: SubgroupHeader{TrackAlias: 2, GroupID: 4, PublisherPriority: 1, IDMode: SubgroupIDZero},
		objects: []Object{
			dpObj(4, 0, 1000, 1, "a"), // delta 1000 = 43 e8
			dpObj(4, 0, 1001, 1, "b"), // delta 0
			dpObj(4, 0, 1100, 1, "c"), // delta 98 = 40 62
		},
		wire:   dpHex("10 02 04 01 | 43e8 01 61 | 00 01 62 | 4062 01 63"),
		source: "draft-14 §10.4.2",
	},
	{
		name:   "0x10 zero-length objects with each status",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 9, PublisherPriority: 0x80, IDMode: SubgroupIDZero},
		objects: []Object{
			dpStatusObj(9, 0, 0, 0x80, StatusNormal),
			dpStatusObj(9, 0, 1, 0x80, StatusDoesNotExist),
			dpObj(9, 0, 2, 0x80, "x"),
			dpStatusObj(9, 0, 3, 0x80, StatusEndOfGroup),
		},
		wire:   dpHex("10 01 09 80 | 00 00 00 | 00 00 01 | 00 01 78 | 00 00 03"),
		source: "draft-14 §10.2.1.1",
	},
	{
		name:    "0x10 100-byte payload (two-byte length)",
		header:  SubgroupHeader{TrackAlias: 1, GroupID: 1, PublisherPriority: 0, IDMode: SubgroupIDZero},
		objects: []Object{dpObj(1, 0, 0, 0, payload100)},
		wire:    dpCat(dpHex("10 01 01 00 | 00 4064"), []byte(payload100)),
		source:  "draft-14 §10.4.2",
	},
	{
		name:   "0x12 subgroup ID is the first object ID",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 2, SubgroupID: 7, PublisherPriority: 0x40, IDMode: SubgroupIDFirstObject},
		objects: []Object{
			dpObj(2, 7, 7, 0x40, "x"),  // delta 7 = first ID = subgroup ID
			dpObj(2, 7, 8, 0x40, "y"),  // delta 0
			dpObj(2, 7, 12, 0x40, "z"), // delta 3
		},
		wire:   dpHex("12 01 02 40 | 07 01 78 | 00 01 79 | 03 01 7a"),
		source: "draft-14 §10.4.2",
	},
	{
		name:   "0x12 header only (subgroup ID unknown without objects)",
		header: SubgroupHeader{TrackAlias: 3, GroupID: 0, PublisherPriority: 0, IDMode: SubgroupIDFirstObject},
		wire:   dpHex("12 03 00 00"),
		source: "draft-14 §10.4.3 (header then RESET_STREAM_AT)",
	},
	{
		name:   "0x13 first object 5, unknown odd extension, DoesNotExist",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 2, SubgroupID: 5, PublisherPriority: 0x80, IDMode: SubgroupIDFirstObject, Extensions: true},
		objects: []Object{
			dpExt(dpObj(2, 5, 5, 0x80, "a"), "25 02 6869"), // type 0x25 (odd), 2 bytes
			dpStatusObj(2, 5, 6, 0x80, StatusDoesNotExist), // no extensions allowed
		},
		wire:   dpHex("13 01 02 80 | 05 04 25026869 01 61 | 00 00 00 01"),
		source: "draft-14 §10.2.1.2, §10.4.2",
	},
	{
		name:   "0x14 object IDs up to 2^62-1",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 1, SubgroupID: 0, PublisherPriority: 0, IDMode: SubgroupIDExplicit},
		objects: []Object{
			dpObj(1, 0, MaxVarint-1, 0, "a"),
			dpObj(1, 0, MaxVarint, 0, "b"), // delta 0 reaches the largest ID
		},
		wire:   dpHex("14 01 01 00 00 | fffffffffffffffe 01 61 | 00 01 62"),
		source: "draft-14 §10.4.2, §1.4 (varint range)",
	},
	{
		name:   "0x15 immutable extensions with nested pairs, prior object gap",
		header: SubgroupHeader{TrackAlias: 5, GroupID: 6, SubgroupID: 2, PublisherPriority: 0x10, IDMode: SubgroupIDExplicit, Extensions: true},
		objects: []Object{
			// 3e 03: Prior Object ID Gap 3; 0b 06 {02 2a, 07 02 "ok"}:
			// Immutable Extensions holding an even and an odd pair.
			dpExt(dpObj(6, 2, 3, 0x10, "hi"), "3e03 0b06 022a 07026f6b"),
			dpObj(6, 2, 4, 0x10, "!"),
		},
		wire:   dpHex("15 05 06 02 10 | 03 0a 3e03 0b06022a07026f6b 02 6869 | 00 00 01 21"),
		source: "draft-14 §11 (0x0B, 0x3E)",
	},
	{
		name:   "0x18 end of group, subgroup 0",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 10, PublisherPriority: 0x80, IDMode: SubgroupIDZero, EndOfGroup: true},
		objects: []Object{
			dpObj(10, 0, 0, 0x80, "a"),
			dpObj(10, 0, 1, 0x80, "bc"),
		},
		wire:   dpHex("18 01 0a 80 | 00 01 61 | 00 02 6263"),
		source: "draft-14 §10.4.2",
	},
	{
		name:   "0x19 end of group, extensions, EndOfGroup status with extensions",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 12, PublisherPriority: 0x80, IDMode: SubgroupIDZero, Extensions: true, EndOfGroup: true},
		objects: []Object{
			dpExt(dpObj(12, 0, 0, 0x80, "g"), "3c 02"),
			dpObj(12, 0, 1, 0x80, "h"),
			dpExt(dpStatusObj(12, 0, 2, 0x80, StatusEndOfGroup), "25 00"), // odd type, empty value
		},
		wire:   dpHex("19 01 0c 80 | 00 02 3c02 01 67 | 00 00 01 68 | 00 02 2500 00 03"),
		source: "draft-14 §10.2.1.2 (only DoesNotExist forbids extensions)",
	},
	{
		name:   "0x1A first object ID 0 is the subgroup ID",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 3, SubgroupID: 0, PublisherPriority: 0x80, IDMode: SubgroupIDFirstObject, EndOfGroup: true},
		objects: []Object{
			dpObj(3, 0, 0, 0x80, "a"),
			dpStatusObj(3, 0, 1, 0x80, StatusDoesNotExist),
			dpObj(3, 0, 2, 0x80, "c"),
		},
		wire:   dpHex("1a 01 03 80 | 00 01 61 | 00 00 01 | 00 01 63"),
		source: "draft-14 §10.4.2",
	},
	{
		name:   "0x1B first object 100, immutable extension on EndOfGroup",
		header: SubgroupHeader{TrackAlias: 7, GroupID: 8, SubgroupID: 100, PublisherPriority: 0xff, IDMode: SubgroupIDFirstObject, Extensions: true, EndOfGroup: true},
		objects: []Object{
			dpObj(8, 100, 100, 0xff, "p"),
			dpExt(dpStatusObj(8, 100, 101, 0xff, StatusEndOfGroup), "0b 02 0401"),
		},
		wire:   dpHex("1b 07 08 ff | 4064 00 01 70 | 00 04 0b020401 00 03"),
		source: "draft-14 §10.4.2, §11",
	},
	{
		name:   "0x1C explicit subgroup, EndOfTrack",
		header: SubgroupHeader{TrackAlias: 1, GroupID: 20, SubgroupID: 3, PublisherPriority: 0x80, IDMode: SubgroupIDExplicit, EndOfGroup: true},
		objects: []Object{
			dpObj(20, 3, 0, 0x80, "a"),
			dpStatusObj(20, 3, 1, 0x80, StatusEndOfTrack),
		},
		wire:   dpHex("1c 01 14 03 80 | 00 01 61 | 00 00 04"),
		source: "draft-14 §10.2.1.1",
	},
	{
		name: "0x1D multi-byte varints, large gap",
		header: SubgroupHeader{TrackAlias: 16384, GroupID: 1 << 30, SubgroupID: 63, PublisherPriority: 0x7f,
			IDMode: SubgroupIDExplicit, Extensions: true, EndOfGroup: true},
		objects: []Object{
			// extension type 16385 (4-byte varint, odd) with value "z"
			dpExt(dpObj(1<<30, 63, 64, 0x7f, "abc"), "80004001 01 7a"),
			dpObj(1<<30, 63, 1_000_000, 0x7f, "d"), // delta 999935 = 80 0f 41 ff
		},
		wire: dpHex("1d 80004000 c000000040000000 3f 7f" +
			"| 4040 06 80004001017a 03 616263 | 800f41ff 00 01 64"),
		source: "draft-14 §10.4.2, §1.4",
	},
}

var fetchStreamCases = []fetchStreamCase{
	{
		name:      "wire-notes fetch",
		requestID: 6,
		objects: []Object{
			dpObj(0, 0, 0, 0x80, "abc"),
			dpStatusObj(0, 0, 1, 0x80, StatusEndOfGroup),
		},
		// Extension Headers Length 0 is the same byte as moq-rs's empty
		// count-prefixed KeyValuePairs, so this vector reads the same
		// under both encodings.
		wire:   dpHex("05 06 | 00 00 00 80 00 03 616263 | 00 00 01 80 00 00 03"),
		source: "wire-notes.md §7.3",
	},
	{
		name:      "moq-rs FETCH header, no objects",
		requestID: 10,
		wire:      dpHex("05 0a"),
		source:    "moq-rs-vectors.md §7 StreamHeader FETCH (0x05)",
	},
	{
		// Fetch objects always carry Extension Headers Length (a byte
		// length, per draft-14 §10.4.4), unlike moq-rs's count-prefixed
		// KeyValuePairs; see TestFetchObjectExtensionsMoqRsCountPrefix.
		name:      "extensions and every status",
		requestID: 10,
		objects: []Object{
			dpExt(dpObj(2, 1, 4, 7, "hello"), "3c01 3e02"),
			dpStatusObj(2, 1, 5, 7, StatusDoesNotExist),
			dpExt(dpStatusObj(2, 1, 6, 7, StatusNormal), "25 01 ff"),
			dpStatusObj(2, 1, 7, 7, StatusEndOfGroup),
			// A Datagram-preference object: Subgroup ID set to the Object ID.
			dpExt(dpObj(3, 3, 3, 0, "d"), "0b04 0205 0900"),
			dpStatusObj(4, 0, 0, 0, StatusEndOfTrack),
		},
		wire: dpHex("05 0a" +
			"| 02 01 04 07 04 3c013e02 05 68656c6c6f" +
			"| 02 01 05 07 00 00 01" +
			"| 02 01 06 07 03 2501ff 00 00" +
			"| 02 01 07 07 00 00 03" +
			"| 03 03 03 00 06 0b0402050900 01 64" +
			"| 04 00 00 00 00 00 04"),
		source: "draft-14 §10.4.4",
	},
	{
		name:      "multi-byte varints",
		requestID: MaxVarint,
		objects:   []Object{dpObj(MaxVarint, 16383, 1<<30-1, 0xff, payload300)},
		wire: dpCat(dpHex("05 ffffffffffffffff | ffffffffffffffff 7fff bfffffff ff 00 412c"),
			[]byte(payload300)),
		source: "draft-14 §10.4.4, §1.4",
	},
	{
		name:      "descending groups, absolute object IDs",
		requestID: 0,
		objects: []Object{
			dpObj(5, 0, 0, 1, "a"),
			dpObj(5, 0, 1, 1, "b"),
			dpObj(4, 0, 0, 1, "c"),
		},
		wire:   dpHex("05 00 | 05 00 00 01 00 01 61 | 05 00 01 01 00 01 62 | 04 00 00 01 00 01 63"),
		source: "draft-14 §10.4.4 (group order descending)",
	},
}

// moq-rs §7 datagram vectors share these fields.
const (
	mrsAlias = 12
	mrsGroup = 10
	mrsObj   = 1234 // 44 d2
	mrsPrio  = 127
)

var mrsExt = Extensions(dpHex("40 7b 04 00010203")) // {123: 00 01 02 03}

var datagramCases = []datagramCase{
	{
		name:   "wire-notes type 0x00",
		d:      Datagram{TrackAlias: 1, Group: 5, Object: 4, PublisherPriority: 0x80, Payload: []byte("hi")},
		wire:   dpHex("00 01 05 04 80 6869"),
		source: "wire-notes.md §7.4",
	},
	{
		name:   "wire-notes type 0x04 (object ID 0 omitted)",
		d:      Datagram{TrackAlias: 1, Group: 9, Object: 0, PublisherPriority: 0x80, Payload: []byte("hi")},
		wire:   dpHex("04 01 09 80 6869"),
		source: "wire-notes.md §7.4",
	},
	{
		name:   "wire-notes type 0x20 DoesNotExist",
		d:      Datagram{TrackAlias: 1, Group: 6, Object: 0, PublisherPriority: 0x80, IsStatus: true, Status: StatusDoesNotExist},
		wire:   dpHex("20 01 06 00 80 01"),
		source: "wire-notes.md §7.4",
	},
	{
		name:   "moq-rs ObjectIdPayload 0x00",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, Object: mrsObj, PublisherPriority: mrsPrio, Payload: []byte("payload")},
		wire:   dpHex("00 0c 0a 44d2 7f 7061796c6f6164"),
		source: "moq-rs-vectors.md §7",
	},
	{
		name:   "moq-rs ObjectIdPayloadExt 0x01",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, Object: mrsObj, PublisherPriority: mrsPrio, Extensions: mrsExt, Payload: []byte("payload")},
		wire:   dpHex("01 0c 0a 44d2 7f 07 407b0400010203 7061796c6f6164"),
		source: "moq-rs-vectors.md §7",
	},
	{
		name:   "moq-rs ObjectIdPayloadEndOfGroup 0x02",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, Object: mrsObj, PublisherPriority: mrsPrio, EndOfGroup: true, Payload: []byte("payload")},
		wire:   dpHex("02 0c 0a 44d2 7f 7061796c6f6164"),
		source: "moq-rs-vectors.md §7",
	},
	{
		name:   "moq-rs ObjectIdPayloadExtEndOfGroup 0x03",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, Object: mrsObj, PublisherPriority: mrsPrio, EndOfGroup: true, Extensions: mrsExt, Payload: []byte("payload")},
		wire:   dpHex("03 0c 0a 44d2 7f 07 407b0400010203 7061796c6f6164"),
		source: "moq-rs-vectors.md §7",
	},
	{
		name:   "moq-rs ObjectIdStatus 0x20 EndOfTrack",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, Object: mrsObj, PublisherPriority: mrsPrio, IsStatus: true, Status: StatusEndOfTrack},
		wire:   dpHex("20 0c 0a 44d2 7f 04"),
		source: "moq-rs-vectors.md §7",
	},
	{
		name:   "moq-rs ObjectIdStatusExt 0x21 EndOfTrack",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, Object: mrsObj, PublisherPriority: mrsPrio, IsStatus: true, Status: StatusEndOfTrack, Extensions: mrsExt},
		wire:   dpHex("21 0c 0a 44d2 7f 07 407b0400010203 04"),
		source: "moq-rs-vectors.md §7",
	},
	{
		name:   "moq-rs Payload 0x04",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, PublisherPriority: mrsPrio, Payload: []byte("payload")},
		wire:   dpHex("04 0c 0a 7f 7061796c6f6164"),
		source: "moq-rs-vectors.md §7",
	},
	{
		name:   "moq-rs PayloadExt 0x05",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, PublisherPriority: mrsPrio, Extensions: mrsExt, Payload: []byte("payload")},
		wire:   dpHex("05 0c 0a 7f 07 407b0400010203 7061796c6f6164"),
		source: "moq-rs-vectors.md §7",
	},
	{
		name:   "moq-rs PayloadEndOfGroup 0x06",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, PublisherPriority: mrsPrio, EndOfGroup: true, Payload: []byte("payload")},
		wire:   dpHex("06 0c 0a 7f 7061796c6f6164"),
		source: "moq-rs-vectors.md §7",
	},
	{
		name:   "moq-rs PayloadExtEndOfGroup 0x07",
		d:      Datagram{TrackAlias: mrsAlias, Group: mrsGroup, PublisherPriority: mrsPrio, EndOfGroup: true, Extensions: mrsExt, Payload: []byte("payload")},
		wire:   dpHex("07 0c 0a 7f 07 407b0400010203 7061796c6f6164"),
		source: "moq-rs-vectors.md §7",
	},
	{
		// moq-rs always sends type 0x00 with the object ID, even when it
		// is 0. The parser sets ExplicitObjectID so that re-encoding gives
		// the same bytes instead of switching to type 0x04.
		name: "moq-rs clock datagram, explicit object ID 0",
		d: Datagram{TrackAlias: 0, Group: 37, Object: 0, PublisherPriority: 127, ExplicitObjectID: true,
			Payload: []byte(clockBase + "05")},
		wire:   dpHex("00 00 25 00 7f 323032362d30342d31332031383a33373a3035"),
		source: "moq-rs-vectors.md §8 clock datagram",
	},
	{
		name:   "0x02 end of group, explicit object ID 0",
		d:      Datagram{TrackAlias: 1, Group: 2, Object: 0, PublisherPriority: 0x80, EndOfGroup: true, ExplicitObjectID: true, Payload: []byte("a")},
		wire:   dpHex("02 01 02 00 80 61"),
		source: "draft-14 §10.3.1",
	},
	{
		name: "0x03 end of group, explicit object ID 0, prior group gap",
		d: Datagram{TrackAlias: 1, Group: 2, Object: 0, PublisherPriority: 0x80, EndOfGroup: true, ExplicitObjectID: true,
			Extensions: Extensions(dpHex("3c 01")), Payload: []byte("a")},
		wire:   dpHex("03 01 02 00 80 02 3c01 61"),
		source: "draft-14 §10.3.1, §11",
	},
	{
		name:   "0x20 status Normal",
		d:      Datagram{TrackAlias: 1, Group: 2, Object: 3, PublisherPriority: 0x80, IsStatus: true, Status: StatusNormal},
		wire:   dpHex("20 01 02 03 80 00"),
		source: "draft-14 §10.3.1",
	},
	{
		name:   "0x20 status EndOfGroup",
		d:      Datagram{TrackAlias: 1, Group: 2, Object: 5, PublisherPriority: 0x80, IsStatus: true, Status: StatusEndOfGroup},
		wire:   dpHex("20 01 02 05 80 03"),
		source: "draft-14 §10.3.1",
	},
	{
		name: "0x21 status EndOfGroup, immutable extensions",
		d: Datagram{TrackAlias: 1, Group: 2, Object: 5, PublisherPriority: 0x80, IsStatus: true, Status: StatusEndOfGroup,
			Extensions: Extensions(dpHex("0b 02 0201"))},
		wire:   dpHex("21 01 02 05 80 04 0b020201 03"),
		source: "draft-14 §10.3.1, §11",
	},
	{
		name:   "0x04 empty payload",
		d:      Datagram{TrackAlias: 1, Group: 2, PublisherPriority: 0x80},
		wire:   dpHex("04 01 02 80"),
		source: "draft-14 §10.3.1",
	},
	{
		name: "0x01 multi-byte varints, unknown odd extension",
		d: Datagram{TrackAlias: MaxVarint, Group: 16384, Object: 1 << 30, PublisherPriority: 0,
			Extensions: Extensions(dpHex("3f 03 616263")), Payload: []byte("xyz")},
		wire:   dpHex("01 ffffffffffffffff 80004000 c000000040000000 00 05 3f03616263 78797a"),
		source: "draft-14 §10.3.1, §1.4",
	},
}

// dpNorm maps empty Extensions and Payload to nil: decoders may return
// either, and the draft does not distinguish them.
func dpNorm(o Object) Object {
	if len(o.Extensions) == 0 {
		o.Extensions = nil
	}
	if len(o.Payload) == 0 {
		o.Payload = nil
	}
	return o
}

func dpNormAll(objs []Object) []Object {
	var out []Object
	for _, o := range objs {
		out = append(out, dpNorm(o))
	}
	return out
}

func dpNormDatagram(d Datagram) Datagram {
	if len(d.Extensions) == 0 {
		d.Extensions = nil
	}
	if len(d.Payload) == 0 {
		d.Payload = nil
	}
	return d
}

// parsedHeader is what ParseSubgroupHeader returns for c: the Subgroup ID
// of a SubgroupIDFirstObject stream is not on the wire.
func (c *subgroupStreamCase) parsedHeader() SubgroupHeader {
	h := c.header
	if h.IDMode == SubgroupIDFirstObject {
		h.SubgroupID = 0
	}
	return h
}

// dpLayout is where an encoding's parts end: the stream header, and for
// each object its header (where the payload starts) and its end.
type dpLayout struct {
	headerEnd int
	objects   []struct{ headerEnd, end int }
}

// atBoundary reports whether k is the end of the header or of an object.
func (l *dpLayout) atBoundary(k int) bool {
	if k == l.headerEnd {
		return true
	}
	for _, o := range l.objects {
		if k == o.end {
			return true
		}
	}
	return false
}

// completeBefore is the number of objects that end at or before k.
func (l *dpLayout) completeBefore(k int) int {
	n := 0
	for _, o := range l.objects {
		if o.end <= k {
			n++
		}
	}
	return n
}

// encodeSubgroupCase encodes c with the encoders and records the layout.
func encodeSubgroupCase(c *subgroupStreamCase) ([]byte, dpLayout, error) {
	var l dpLayout
	b, err := AppendSubgroupHeader(nil, &c.header)
	if err != nil {
		return nil, l, err
	}
	l.headerEnd = len(b)
	s := NewSubgroupState(c.header)
	for i := range c.objects {
		o := &c.objects[i]
		if b, err = s.AppendObject(b, &o.ObjectHeader); err != nil {
			return nil, l, fmt.Errorf("object %d: %w", i, err)
		}
		he := len(b)
		b = append(b, o.Payload...)
		l.objects = append(l.objects, struct{ headerEnd, end int }{he, len(b)})
	}
	return b, l, nil
}

func encodeFetchCase(c *fetchStreamCase) ([]byte, dpLayout, error) {
	var l dpLayout
	b, err := AppendFetchHeader(nil, c.requestID)
	if err != nil {
		return nil, l, err
	}
	l.headerEnd = len(b)
	for i := range c.objects {
		o := &c.objects[i]
		if b, err = AppendFetchObject(b, &o.ObjectHeader); err != nil {
			return nil, l, fmt.Errorf("object %d: %w", i, err)
		}
		he := len(b)
		b = append(b, o.Payload...)
		l.objects = append(l.objects, struct{ headerEnd, end int }{he, len(b)})
	}
	return b, l, nil
}

// objectParser parses one object header from the start of b.
type objectParser func(b []byte) (ObjectHeader, int, error)

// dpParseObjects parses the objects of a stream body with parse, taking each
// payload as the next PayloadLength bytes.
func dpParseObjects(body []byte, parse objectParser) ([]Object, error) {
	var objs []Object
	for len(body) > 0 {
		h, n, err := parse(body)
		if err != nil {
			return objs, err
		}
		if n <= 0 || uint64(len(body)-n) < h.PayloadLength {
			return objs, fmt.Errorf("object %d: header took %d bytes, payload %d, %d bytes left", len(objs), n, h.PayloadLength, len(body))
		}
		o := Object{ObjectHeader: h}
		if h.PayloadLength > 0 {
			o.Payload = body[n : n+int(h.PayloadLength)]
		}
		objs = append(objs, o)
		body = body[n+int(h.PayloadLength):]
	}
	return objs, nil
}

// dpReadAll reads objects from r until an error, with a bound on the count
// so that a reader that never ends fails the test instead of hanging.
func dpReadAll(r *StreamReader, max int) ([]Object, error) {
	var objs []Object
	for range max + 1 {
		o, err := r.ReadObject()
		if err != nil {
			return objs, err
		}
		objs = append(objs, o)
	}
	return objs, fmt.Errorf("more than %d objects", max)
}

func dpIsPV(err error) bool {
	var se *SessionError
	return errors.As(err, &se) && se.Code == ProtocolViolation && SessionCode(err) == ProtocolViolation
}

// dpReaders wraps a fresh reader over b in the ways the tests read streams.
var dpReaders = []struct {
	name string
	wrap func(b []byte) io.Reader
}{
	{"bytes", func(b []byte) io.Reader { return bytes.NewReader(b) }},
	{"one-byte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
	{"half", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
	{"data-err", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
}

// ---- subgroup streams ----

func TestSubgroupStreamCasesCoverAllTypes(t *testing.T) {
	seen := map[uint64]bool{}
	for _, c := range subgroupStreamCases {
		if len(c.wire) == 0 {
			t.Fatalf("%s: empty wire", c.name)
		}
		if c.header.StreamType() != uint64(c.wire[0]) {
			t.Errorf("%s: header type 0x%x, wire starts 0x%x", c.name, c.header.StreamType(), c.wire[0])
		}
		seen[uint64(c.wire[0])] = true
	}
	for _, typ := range []uint64{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d} {
		if !seen[typ] {
			t.Errorf("no subgroup case for stream type 0x%x", typ)
		}
	}
}

func TestSubgroupStreamEncode(t *testing.T) {
	for _, c := range subgroupStreamCases {
		t.Run(c.name, func(t *testing.T) {
			b, _, err := encodeSubgroupCase(&c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, c.wire) {
				t.Errorf("encoded\n %x\nwant (%s)\n %x", b, c.source, c.wire)
			}
			// Appending keeps what the buffer held.
			pre := []byte("prefix")
			b2, err := AppendSubgroupHeader(pre, &c.header)
			if err != nil || !bytes.Equal(b2[:len(pre)], []byte("prefix")) || !bytes.Equal(b2[len(pre):], b[:len(b2)-len(pre)]) {
				t.Errorf("AppendSubgroupHeader onto a buffer: %x, %v", b2, err)
			}
		})
	}
}

func TestSubgroupStreamDecodeSlice(t *testing.T) {
	for _, c := range subgroupStreamCases {
		t.Run(c.name, func(t *testing.T) {
			h, n, err := ParseSubgroupHeader(c.wire)
			if err != nil {
				t.Fatal(err)
			}
			if want := c.parsedHeader(); h != want {
				t.Errorf("header %+v, want %+v", h, want)
			}
			sh, n2, err := ParseStreamHeader(c.wire)
			if err != nil || n2 != n || sh.Type != uint64(c.wire[0]) || sh.Subgroup != h || sh.IsFetch() {
				t.Errorf("ParseStreamHeader = %+v, %d, %v; want type 0x%x, %+v, %d", sh, n2, err, c.wire[0], h, n)
			}
			s := NewSubgroupState(h)
			objs, err := dpParseObjects(c.wire[n:], s.ParseObject)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dpNormAll(objs), dpNormAll(c.objects)) {
				t.Errorf("objects\n %+v\nwant\n %+v", objs, c.objects)
			}
			if s.Objects() != (len(c.objects) > 0) {
				t.Errorf("Objects() = %v with %d objects", s.Objects(), len(c.objects))
			}
			if s.Header != c.header {
				t.Errorf("state header after the objects %+v, want %+v", s.Header, c.header)
			}
		})
	}
}

func TestSubgroupStreamParseObjectDoesNotAllocate(t *testing.T) {
	for _, c := range subgroupStreamCases {
		h, n, err := ParseSubgroupHeader(c.wire)
		if err != nil {
			t.Fatal(err)
		}
		body := c.wire[n:]
		allocs := testing.AllocsPerRun(20, func() {
			s := SubgroupState{Header: h}
			if _, err := dpParseObjectsNoAlloc(body, s.ParseObject); err != nil {
				panic(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per stream", c.name, allocs)
		}
	}
}

// dpParseObjectsNoAlloc walks a stream body without keeping anything.
func dpParseObjectsNoAlloc(body []byte, parse objectParser) (int, error) {
	count := 0
	for len(body) > 0 {
		h, n, err := parse(body)
		if err != nil {
			return count, err
		}
		if uint64(len(body)-n) < h.PayloadLength {
			return count, io.ErrUnexpectedEOF
		}
		body = body[n+int(h.PayloadLength):]
		count++
	}
	return count, nil
}

func TestSubgroupStreamReader(t *testing.T) {
	for _, c := range subgroupStreamCases {
		for _, rd := range dpReaders {
			t.Run(c.name+"/"+rd.name, func(t *testing.T) {
				r, err := NewStreamReader(rd.wrap(c.wire), StreamReaderConfig{})
				if err != nil {
					t.Fatal(err)
				}
				hdr := r.Header()
				if hdr.Type != uint64(c.wire[0]) || hdr.IsFetch() || hdr.Subgroup != c.parsedHeader() {
					t.Errorf("header before objects %+v, want type 0x%x %+v", hdr, c.wire[0], c.parsedHeader())
				}
				objs, err := dpReadAll(r, len(c.objects))
				if err != io.EOF {
					t.Fatalf("after %d objects: %v, want io.EOF", len(objs), err)
				}
				if !reflect.DeepEqual(dpNormAll(objs), dpNormAll(c.objects)) {
					t.Errorf("objects\n %+v\nwant\n %+v", objs, c.objects)
				}
				if got := r.Header().Subgroup; got != c.header {
					t.Errorf("header after the objects %+v, want %+v", got, c.header)
				}
				// io.EOF is sticky.
				if _, err := r.ReadObject(); err != io.EOF {
					t.Errorf("second read after the end: %v, want io.EOF", err)
				}
			})
		}
	}
}

func TestSubgroupStreamPrefixes(t *testing.T) {
	for _, c := range subgroupStreamCases {
		t.Run(c.name, func(t *testing.T) {
			wire, layout, err := encodeSubgroupCase(&c)
			if err != nil || !bytes.Equal(wire, c.wire) {
				t.Fatalf("encoding does not match the case: %v", err)
			}
			for k := range len(c.wire) {
				p := c.wire[:k]
				if k < layout.headerEnd {
					if _, _, err := ParseSubgroupHeader(p); err != io.ErrUnexpectedEOF {
						t.Errorf("ParseSubgroupHeader(%d of %d header bytes): %v, want io.ErrUnexpectedEOF", k, layout.headerEnd, err)
					}
					if _, _, err := ParseStreamHeader(p); err != io.ErrUnexpectedEOF {
						t.Errorf("ParseStreamHeader(%d of %d header bytes): %v, want io.ErrUnexpectedEOF", k, layout.headerEnd, err)
					}
				} else {
					checkSlicePrefix(t, c.wire, k, layout, dpNormAll(c.objects), func(b []byte) (objectParser, int, error) {
						h, n, err := ParseSubgroupHeader(b)
						s := NewSubgroupState(h)
						return s.ParseObject, n, err
					})
				}
				checkReaderPrefix(t, c.wire, k, layout, dpNormAll(c.objects))
			}
		})
	}
}

// checkSlicePrefix parses wire[:k] (k at or past the header) with the slice
// parsers: objects that are whole decode, a cut object header gives
// io.ErrUnexpectedEOF (and the same state then parses the whole object), a
// cut payload leaves fewer bytes than PayloadLength.
func checkSlicePrefix(t *testing.T, wire []byte, k int, layout dpLayout, want []Object,
	parseHeader func([]byte) (objectParser, int, error)) {
	t.Helper()
	p := wire[:k]
	parse, off, err := parseHeader(p)
	if err != nil || off != layout.headerEnd {
		t.Errorf("prefix %d: header: %d, %v; want %d bytes", k, off, err, layout.headerEnd)
		return
	}
	for i, ol := range layout.objects {
		if off == k {
			if !layout.atBoundary(k) || layout.completeBefore(k) != i {
				t.Errorf("prefix %d: stopped after %d objects at a non-boundary", k, i)
			}
			return
		}
		if k < ol.headerEnd {
			if _, _, err := parse(p[off:]); err != io.ErrUnexpectedEOF {
				t.Errorf("prefix %d cuts object %d's header: %v, want io.ErrUnexpectedEOF", k, i, err)
			}
			// The failed call left the state alone: the whole object
			// parses now.
			h, n, err := parse(wire[off:])
			o := dpNorm(Object{ObjectHeader: h})
			o.Payload = want[i].Payload
			if err != nil || off+n != ol.headerEnd || !reflect.DeepEqual(o, want[i]) {
				t.Errorf("prefix %d: object %d after more data: %+v, %d, %v; want %+v", k, i, h, n, err, want[i])
			}
			return
		}
		h, n, err := parse(p[off:])
		if err != nil || off+n != ol.headerEnd {
			t.Errorf("prefix %d: object %d header: %d, %v; want end %d", k, i, off+n, err, ol.headerEnd)
			return
		}
		if k < ol.end {
			if uint64(k-off-n) >= h.PayloadLength {
				t.Errorf("prefix %d cuts object %d's payload, but %d of %d bytes are there", k, i, k-off-n, h.PayloadLength)
			}
			return
		}
		off = ol.end
	}
	if off != k {
		t.Errorf("prefix %d: objects end at %d", k, off)
	}
}

// checkReaderPrefix reads wire[:k] with a StreamReader: a cut header or
// object is a PROTOCOL_VIOLATION (never io.EOF), a prefix at an object
// boundary gives the objects before it and then io.EOF.
func checkReaderPrefix(t *testing.T, wire []byte, k int, layout dpLayout, want []Object) {
	t.Helper()
	r, err := NewStreamReader(bytes.NewReader(wire[:k]), StreamReaderConfig{})
	if k < layout.headerEnd {
		if !dpIsPV(err) || errors.Is(err, io.EOF) {
			t.Errorf("reader over %d of %d header bytes: %v, want PROTOCOL_VIOLATION", k, layout.headerEnd, err)
		}
		return
	}
	if err != nil {
		t.Errorf("reader over prefix %d: header: %v", k, err)
		return
	}
	objs, err := dpReadAll(r, len(want))
	n := layout.completeBefore(k)
	if len(objs) != n || !reflect.DeepEqual(dpNormAll(objs), dpNormAll(want[:n])) {
		t.Errorf("prefix %d: read %d objects %+v, want the first %d", k, len(objs), objs, n)
	}
	if layout.atBoundary(k) {
		if err != io.EOF {
			t.Errorf("prefix %d ends at an object boundary: %v, want io.EOF", k, err)
		}
	} else if !dpIsPV(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("prefix %d ends inside object %d: %v, want PROTOCOL_VIOLATION", k, n, err)
	}
}

// ---- fetch streams ----

func TestFetchStreamEncode(t *testing.T) {
	for _, c := range fetchStreamCases {
		t.Run(c.name, func(t *testing.T) {
			b, _, err := encodeFetchCase(&c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, c.wire) {
				t.Errorf("encoded\n %x\nwant (%s)\n %x", b, c.source, c.wire)
			}
		})
	}
}

func TestFetchStreamDecodeSlice(t *testing.T) {
	for _, c := range fetchStreamCases {
		t.Run(c.name, func(t *testing.T) {
			id, n, err := ParseFetchHeader(c.wire)
			if err != nil || id != c.requestID {
				t.Fatalf("ParseFetchHeader = %d, %v; want %d", id, err, c.requestID)
			}
			sh, n2, err := ParseStreamHeader(c.wire)
			if err != nil || n2 != n || !sh.IsFetch() || sh.Type != StreamTypeFetch || sh.FetchID != c.requestID || sh.Subgroup != (SubgroupHeader{}) {
				t.Errorf("ParseStreamHeader = %+v, %d, %v", sh, n2, err)
			}
			objs, err := dpParseObjects(c.wire[n:], ParseFetchObject)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dpNormAll(objs), dpNormAll(c.objects)) {
				t.Errorf("objects\n %+v\nwant\n %+v", objs, c.objects)
			}
			allocs := testing.AllocsPerRun(20, func() {
				if _, err := dpParseObjectsNoAlloc(c.wire[n:], ParseFetchObject); err != nil {
					panic(err)
				}
			})
			if allocs != 0 {
				t.Errorf("ParseFetchObject: %v allocations per stream", allocs)
			}
		})
	}
}

func TestFetchStreamReader(t *testing.T) {
	for _, c := range fetchStreamCases {
		for _, rd := range dpReaders {
			t.Run(c.name+"/"+rd.name, func(t *testing.T) {
				r, err := NewStreamReader(rd.wrap(c.wire), StreamReaderConfig{})
				if err != nil {
					t.Fatal(err)
				}
				if h := r.Header(); !h.IsFetch() || h.FetchID != c.requestID {
					t.Errorf("header %+v, want fetch %d", h, c.requestID)
				}
				objs, err := dpReadAll(r, len(c.objects))
				if err != io.EOF {
					t.Fatalf("after %d objects: %v, want io.EOF", len(objs), err)
				}
				if !reflect.DeepEqual(dpNormAll(objs), dpNormAll(c.objects)) {
					t.Errorf("objects\n %+v\nwant\n %+v", objs, c.objects)
				}
			})
		}
	}
}

func TestFetchStreamPrefixes(t *testing.T) {
	for _, c := range fetchStreamCases {
		t.Run(c.name, func(t *testing.T) {
			wire, layout, err := encodeFetchCase(&c)
			if err != nil || !bytes.Equal(wire, c.wire) {
				t.Fatalf("encoding does not match the case: %v", err)
			}
			for k := range len(c.wire) {
				p := c.wire[:k]
				if k < layout.headerEnd {
					if _, _, err := ParseFetchHeader(p); err != io.ErrUnexpectedEOF {
						t.Errorf("ParseFetchHeader(%d of %d header bytes): %v, want io.ErrUnexpectedEOF", k, layout.headerEnd, err)
					}
					if _, _, err := ParseStreamHeader(p); err != io.ErrUnexpectedEOF {
						t.Errorf("ParseStreamHeader(%d of %d header bytes): %v, want io.ErrUnexpectedEOF", k, layout.headerEnd, err)
					}
				} else {
					checkSlicePrefix(t, c.wire, k, layout, dpNormAll(c.objects), func(b []byte) (objectParser, int, error) {
						_, n, err := ParseFetchHeader(b)
						return ParseFetchObject, n, err
					})
				}
				checkReaderPrefix(t, c.wire, k, layout, dpNormAll(c.objects))
			}
		})
	}
}

// moq-rs f9f51dc writes a fetch object's extensions as KeyValuePairs: a
// COUNT of pairs, then the pairs. draft-14 §10.4.4 says Extension Headers
// Length: the block's length in bytes. We follow the draft. With no
// extensions both write 00, so such streams agree; with extensions the
// moq-rs bytes are rejected or misread, as asserted here.
func TestFetchObjectExtensionsMoqRsCountPrefix(t *testing.T) {
	// The draft encoding of {0,0,0} prio 127, ext {123: 00 01 02 03},
	// payload "payload".
	draft := dpHex("00 00 00 7f | 07 407b0400010203 | 07 7061796c6f6164")
	o := dpExt(dpObj(0, 0, 0, 127, "payload"), "407b0400010203")
	if b, err := AppendFetchObject(nil, &o.ObjectHeader); err != nil || !bytes.Equal(append(b, o.Payload...), draft) {
		t.Errorf("AppendFetchObject = %x, %v; want %x", b, err, draft)
	}

	// moq-rs: count 1 instead of length 7. We read a 1-byte extension
	// block (40), which is half a varint: PROTOCOL_VIOLATION.
	moqrs := dpHex("00 00 00 7f | 01 407b0400010203 | 07 7061796c6f6164")
	if _, _, err := ParseFetchObject(moqrs); !dpIsPV(err) {
		t.Errorf("ParseFetchObject(moq-rs count-prefixed) = %v, want PROTOCOL_VIOLATION", err)
	}
	r, err := NewStreamReader(bytes.NewReader(dpCat(dpHex("05 0a"), moqrs)), StreamReaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadObject(); !dpIsPV(err) {
		t.Errorf("StreamReader(moq-rs count-prefixed) = %v, want PROTOCOL_VIOLATION", err)
	}

	// moq-rs: count 2, pairs {2:5} {4:6}, payload "ab". We read a 2-byte
	// block (02 05 = {2:5}); the next byte, 04, becomes the payload
	// length, so the payload is 06 02 61 62. It decodes, silently
	// different: pair {4:6} is lost and the payload is wrong.
	moqrs2 := dpHex("00 00 00 7f | 02 0205 0406 | 02 6162")
	h, n, err := ParseFetchObject(moqrs2)
	if err != nil {
		t.Fatalf("ParseFetchObject(moq-rs count 2) = %v", err)
	}
	wantH := ObjectHeader{Group: 0, Subgroup: 0, ID: 0, PublisherPriority: 127, Extensions: Extensions{0x02, 0x05}, PayloadLength: 4}
	if !reflect.DeepEqual(h, wantH) || n != 8 || !bytes.Equal(moqrs2[n:], []byte{0x06, 0x02, 'a', 'b'}) {
		t.Errorf("ParseFetchObject(moq-rs count 2) = %+v, %d; want %+v, 8 (payload 06 02 61 62)", h, n, wantH)
	}
	if kv, ok := h.Extensions.Get(2); !ok || kv.Value != 5 {
		t.Errorf("extension 2 = %v, %v", kv, ok)
	}
	if _, ok := h.Extensions.Get(4); ok {
		t.Errorf("extension 4 read from the moq-rs bytes, want it lost")
	}
	r, err = NewStreamReader(bytes.NewReader(dpCat(dpHex("05 0a"), moqrs2)), StreamReaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadObject()
	if err != nil || !bytes.Equal(got.Extensions, []byte{0x02, 0x05}) || !bytes.Equal(got.Payload, []byte{0x06, 0x02, 'a', 'b'}) {
		t.Errorf("StreamReader(moq-rs count 2) = %+v, %v", got, err)
	}
	if _, err := r.ReadObject(); err != io.EOF {
		t.Errorf("after the misread object: %v, want io.EOF", err)
	}
}

// ---- datagrams ----

func TestDatagramCasesCoverAllTypes(t *testing.T) {
	seen := map[uint64]bool{}
	for _, c := range datagramCases {
		if c.d.DatagramType() != uint64(c.wire[0]) {
			t.Errorf("%s: DatagramType 0x%x, wire starts 0x%x", c.name, c.d.DatagramType(), c.wire[0])
		}
		seen[uint64(c.wire[0])] = true
	}
	for _, typ := range []uint64{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x20, 0x21} {
		if !seen[typ] {
			t.Errorf("no datagram case for type 0x%x", typ)
		}
	}
}

func TestDatagramEncode(t *testing.T) {
	for _, c := range datagramCases {
		t.Run(c.name, func(t *testing.T) {
			b, err := AppendDatagram(nil, &c.d)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b, c.wire) {
				t.Errorf("encoded\n %x\nwant (%s)\n %x", b, c.source, c.wire)
			}
			pre := []byte{0xaa}
			b, err = AppendDatagram(pre, &c.d)
			if err != nil || b[0] != 0xaa || !bytes.Equal(b[1:], c.wire) {
				t.Errorf("AppendDatagram onto a buffer = %x, %v", b, err)
			}
		})
	}
}

func TestDatagramDecode(t *testing.T) {
	for _, c := range datagramCases {
		t.Run(c.name, func(t *testing.T) {
			d, err := ParseDatagram(c.wire)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(dpNormDatagram(d), dpNormDatagram(c.d)) {
				t.Errorf("decoded\n %+v\nwant\n %+v", d, c.d)
			}
			// Round trip: the decoded datagram re-encodes to the same bytes.
			if b, err := AppendDatagram(nil, &d); err != nil || !bytes.Equal(b, c.wire) {
				t.Errorf("re-encoded %x, %v; want %x", b, err, c.wire)
			}
			if got, want := d.Location(), (Location{Group: c.d.Group, Object: c.d.Object}); got != want {
				t.Errorf("Location() = %v, want %v", got, want)
			}
			allocs := testing.AllocsPerRun(20, func() {
				if _, err := ParseDatagram(c.wire); err != nil {
					panic(err)
				}
			})
			if allocs != 0 {
				t.Errorf("ParseDatagram: %v allocations", allocs)
			}
		})
	}
}

// A payload datagram's payload runs to the end of the datagram, so cutting
// only the payload leaves a valid, shorter datagram; cutting any header
// field is io.ErrUnexpectedEOF. Every strict prefix of a status datagram is
// an error.
func TestDatagramPrefixes(t *testing.T) {
	for _, c := range datagramCases {
		t.Run(c.name, func(t *testing.T) {
			headerEnd := len(c.wire) - len(c.d.Payload)
			for k := range len(c.wire) {
				d, err := ParseDatagram(c.wire[:k])
				if k < headerEnd {
					if err != io.ErrUnexpectedEOF || SessionCode(err) != ProtocolViolation {
						t.Errorf("prefix %d (header is %d bytes): %+v, %v; want io.ErrUnexpectedEOF", k, headerEnd, d, err)
					}
					continue
				}
				if c.d.IsStatus {
					t.Fatalf("status datagram with a payload in the case table")
				}
				want := c.d
				want.Payload = c.wire[headerEnd:k]
				if err != nil || !reflect.DeepEqual(dpNormDatagram(d), dpNormDatagram(want)) {
					t.Errorf("prefix %d cuts only the payload: %+v, %v; want %+v", k, d, err, want)
				}
			}
		})
	}
}
