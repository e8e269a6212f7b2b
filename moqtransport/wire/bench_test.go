package wire

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/quic-go/quic-go/quicvarint"
)

// Benchmarks for the hot paths. BenchmarkBaseline* decode and encode the
// same number of bare varints as the message or header next to it, so each
// figure can be read as a ratio to plain varint work measured in the same
// run:
//
//	go test -run '^$' -bench . -benchmem ./moqtransport/wire/

var benchSubscribe = &Subscribe{
	RequestID:          12345,
	Namespace:          Namespace{"example", "live"},
	Name:               "video",
	SubscriberPriority: 128,
	GroupOrder:         GroupOrderAscending,
	Forward:            true,
	Filter:             Filter{Type: FilterAbsoluteRange, Start: Location{10, 0}, EndGroup: 12},
	Params:             Parameters{{Type: ParamDeliveryTimeout, Value: 5000}},
}

func BenchmarkSubscribeAppend(b *testing.B) {
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendMessage(buf[:0], benchSubscribe); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkSubscribeParse(b *testing.B) {
	enc, err := AppendMessage(nil, benchSubscribe)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseMessage(enc); err != nil {
			b.Fatal(err)
		}
	}
}

var benchSubgroupHeader = SubgroupHeader{
	TrackAlias: 7, GroupID: 123456, SubgroupID: 3, PublisherPriority: 128,
	IDMode: SubgroupIDExplicit, Extensions: true,
}

func BenchmarkSubgroupHeaderAppend(b *testing.B) {
	buf := make([]byte, 0, 32)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendSubgroupHeader(buf[:0], &benchSubgroupHeader); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSubgroupHeaderParse(b *testing.B) {
	enc, err := AppendSubgroupHeader(nil, &benchSubgroupHeader)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseSubgroupHeader(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// benchObject is a typical media object header: a small extension and a
// payload of a few kilobytes, which follows the header and is not counted.
var benchObject = ObjectHeader{
	ID:            42,
	Extensions:    Extensions{0x3c, 0x00, 0x21, 0x02, 'a', 'b'}, // prior group gap 0; an odd type with 2 bytes
	PayloadLength: 4096,
}

func BenchmarkObjectHeaderAppend(b *testing.B) {
	buf := make([]byte, 0, 32)
	h := benchObject
	b.ReportAllocs()
	for b.Loop() {
		s := SubgroupState{Header: benchSubgroupHeader}
		var err error
		if buf, err = s.AppendObject(buf[:0], &h); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkObjectHeaderParse(b *testing.B) {
	s := SubgroupState{Header: benchSubgroupHeader}
	enc, err := s.AppendObject(nil, &benchObject)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		// Each parse is the first object of a fresh stream: the same
		// work as any later object, without the ID growing.
		st := SubgroupState{Header: benchSubgroupHeader}
		if _, _, err := st.ParseObject(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFetchObjectParse(b *testing.B) {
	h := benchObject
	h.Group, h.Subgroup, h.PublisherPriority = 123456, 3, 128
	enc, err := AppendFetchObject(nil, &h)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := ParseFetchObject(enc); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDatagramParse(b *testing.B) {
	enc, err := AppendDatagram(nil, &Datagram{TrackAlias: 7, Group: 123456, Object: 9, PublisherPriority: 128, Payload: make([]byte, 1000)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseDatagram(enc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamReader reads a subgroup stream of 1000 objects of 1 KiB
// each, the whole receive path for objects but the network.
func BenchmarkStreamReader(b *testing.B) {
	s := SubgroupState{Header: benchSubgroupHeader}
	stream, _ := AppendSubgroupHeader(nil, &benchSubgroupHeader)
	payload := bytes.Repeat([]byte{0xab}, 1024)
	for i := range 1000 {
		var err error
		if stream, err = s.AppendObject(stream, &ObjectHeader{ID: uint64(i), PayloadLength: 1024}); err != nil {
			b.Fatal(err)
		}
		stream = append(stream, payload...)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewStreamReader(bytes.NewReader(stream), StreamReaderConfig{})
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.ReadObject(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Baselines: bare varint parsing and appending of as many fields as the
// measured encodings have.

func baselineVarints(b *testing.B, n int) []byte {
	var enc []byte
	for i := range n {
		enc = quicvarint.Append(enc, uint64(1000*i+7))
	}
	return enc
}

func benchBaselineParse(b *testing.B, n int) {
	enc := baselineVarints(b, n)
	b.ReportAllocs()
	for b.Loop() {
		off := 0
		for range n {
			_, l, err := quicvarint.Parse(enc[off:])
			if err != nil {
				b.Fatal(err)
			}
			off += l
		}
	}
}

func benchBaselineAppend(b *testing.B, n int) {
	buf := make([]byte, 0, 8*n)
	b.ReportAllocs()
	for b.Loop() {
		buf = buf[:0]
		for i := range n {
			buf = quicvarint.Append(buf, uint64(1000*i+7))
		}
	}
}

// An object header on a stream with extensions: delta, extension length,
// two pairs of two varints each, payload length.
func BenchmarkBaselineObjectHeaderVarints(b *testing.B) { benchBaselineParse(b, 7) }

// A subgroup header: type, alias, group, subgroup, and a priority byte.
func BenchmarkBaselineSubgroupHeaderVarints(b *testing.B) { benchBaselineParse(b, 5) }

// SUBSCRIBE above: 16 varints and bytes-runs in all.
func BenchmarkBaselineSubscribeVarints(b *testing.B) { benchBaselineParse(b, 16) }

func BenchmarkBaselineSubscribeVarintsAppend(b *testing.B) { benchBaselineAppend(b, 16) }

// TestObjectHeaderParseDoesNotAllocate holds the codec to its promise that
// parsing an object header, a subgroup header or a datagram allocates
// nothing.
func TestObjectHeaderParseDoesNotAllocate(t *testing.T) {
	s := SubgroupState{Header: benchSubgroupHeader}
	obj, err := s.AppendObject(nil, &benchObject)
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := AppendSubgroupHeader(nil, &benchSubgroupHeader)
	fh := benchObject
	fetchObj, _ := AppendFetchObject(nil, &fh)
	dg, _ := AppendDatagram(nil, &Datagram{TrackAlias: 1, Group: 2, Object: 3, Extensions: Extensions{0x3c, 0x01}, Payload: []byte("hi")})
	for name, f := range map[string]func(){
		"subgroup object": func() {
			st := SubgroupState{Header: benchSubgroupHeader}
			if _, _, err := st.ParseObject(obj); err != nil {
				t.Fatal(err)
			}
		},
		"subgroup header": func() {
			if _, _, err := ParseSubgroupHeader(hdr); err != nil {
				t.Fatal(err)
			}
		},
		"fetch object": func() {
			if _, _, err := ParseFetchObject(fetchObj); err != nil {
				t.Fatal(err)
			}
		},
		"datagram": func() {
			if _, err := ParseDatagram(dg); err != nil {
				t.Fatal(err)
			}
		},
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("parsing a %s allocates %.0f times per run, want 0", name, n)
		}
	}
}

// BenchmarkStreamReaderSizes reads a subgroup stream of 16 MiB in objects
// of each size: allocations per object (allocs/op divided by the object
// count reported as objects/op) show what the buffer growth costs for
// objects larger than EagerObjectBytes.
func BenchmarkStreamReaderSizes(b *testing.B) {
	for _, size := range []int{1 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			s := SubgroupState{Header: benchSubgroupHeader}
			stream, _ := AppendSubgroupHeader(nil, &benchSubgroupHeader)
			payload := bytes.Repeat([]byte{0xab}, size)
			n := (16 << 20) / size
			for i := range n {
				var err error
				if stream, err = s.AppendObject(stream, &ObjectHeader{ID: uint64(i), PayloadLength: uint64(size)}); err != nil {
					b.Fatal(err)
				}
				stream = append(stream, payload...)
			}
			b.SetBytes(int64(len(stream)))
			b.ReportAllocs()
			for b.Loop() {
				r, err := NewStreamReader(bytes.NewReader(stream), StreamReaderConfig{})
				if err != nil {
					b.Fatal(err)
				}
				for {
					if _, err := r.ReadObject(); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
				r.Release()
			}
			b.ReportMetric(float64(n), "objects/op")
		})
	}
}
