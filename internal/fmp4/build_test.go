package fmp4

import (
	"encoding/binary"
)

// Builders of synthetic fragmented MP4 for the tests: just the boxes and
// fields this package reads.

func box(typ string, parts ...[]byte) []byte { return appendBox(nil, typ, parts...) }

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// fullBox is a full box's version and flags.
func fullBox(version uint8, flags uint32) []byte {
	return []byte{version, byte(flags >> 16), byte(flags >> 8), byte(flags)}
}

func ftyp() []byte { return box("ftyp", []byte("iso6"), u32(0), []byte("iso6cmfc")) }

type testTrack struct {
	id        uint32
	handler   string
	timescale uint32
	dur       uint32 // trex default sample duration
	flags     uint32 // trex default sample flags
}

func trak(t testTrack) []byte {
	tkhd := make([]byte, 80)
	binary.BigEndian.PutUint32(tkhd[8:], t.id)
	mdhd := make([]byte, 20)
	binary.BigEndian.PutUint32(mdhd[8:], t.timescale)
	hdlr := append(make([]byte, 4), t.handler...)
	hdlr = append(hdlr, make([]byte, 13)...)
	return box("trak",
		box("tkhd", fullBox(0, 3), tkhd),
		box("mdia",
			box("mdhd", fullBox(0, 0), mdhd),
			box("hdlr", fullBox(0, 0), hdlr),
			box("minf"),
		),
	)
}

func trex(t testTrack) []byte {
	return box("trex", fullBox(0, 0), u32(t.id), u32(1), u32(t.dur), u32(0), u32(t.flags))
}

// moov builds a moov with the tracks; fragmented adds the mvex.
func moov(fragmented bool, tracks ...testTrack) []byte {
	var parts [][]byte
	parts = append(parts, box("mvhd", fullBox(0, 0), make([]byte, 96)))
	var trexs [][]byte
	for _, t := range tracks {
		parts = append(parts, trak(t))
		trexs = append(trexs, trex(t))
	}
	if fragmented {
		parts = append(parts, box("mvex", trexs...))
	}
	return box("moov", parts...)
}

// Sample flags as ffmpeg writes them.
const (
	keyFlags    = 0x02000000 // depends on no other sample, sync
	nonKeyFlags = 0x01010000 // depends on others, non-sync
)

type testFrag struct {
	track    uint32
	tfdt     *uint64 // nil: no tfdt
	durs     []uint32
	flags    []uint32 // per sample; nil: none in the trun
	first    *uint32  // first_sample_flags
	tfhdDur  *uint32
	tfhdFlag *uint32
	baseOff  bool // an explicit base data offset in the tfhd
	payload  []byte
}

func (f testFrag) moof() []byte {
	tfhdFlags := uint32(0x020000) // default-base-is-moof
	var tfhd [][]byte
	tfhd = append(tfhd, nil, u32(f.track))
	if f.baseOff {
		tfhdFlags |= 0x1
		tfhd = append(tfhd, u64(1234))
	}
	if f.tfhdDur != nil {
		tfhdFlags |= 0x8
		tfhd = append(tfhd, u32(*f.tfhdDur))
	}
	if f.tfhdFlag != nil {
		tfhdFlags |= 0x20
		tfhd = append(tfhd, u32(*f.tfhdFlag))
	}
	tfhd[0] = fullBox(0, tfhdFlags)
	trunFlags := uint32(0x1 | 0x200)
	if len(f.durs) > 0 {
		trunFlags |= 0x100
	}
	if f.flags != nil {
		trunFlags |= 0x400
	}
	if f.first != nil {
		trunFlags |= 0x4
	}
	n := max(len(f.durs), len(f.flags), 1)
	trun := [][]byte{fullBox(0, trunFlags), u32(uint32(n)), u32(0)}
	if f.first != nil {
		trun = append(trun, u32(*f.first))
	}
	for i := 0; i < n; i++ {
		if len(f.durs) > 0 {
			trun = append(trun, u32(f.durs[i]))
		}
		trun = append(trun, u32(uint32(len(f.payload)/n)))
		if f.flags != nil {
			trun = append(trun, u32(f.flags[i]))
		}
	}
	traf := [][]byte{box("tfhd", tfhd...)}
	if f.tfdt != nil {
		traf = append(traf, box("tfdt", fullBox(1, 0), u64(*f.tfdt)))
	}
	traf = append(traf, box("trun", trun...))
	return box("moof", box("mfhd", fullBox(0, 0), u32(1)), box("traf", traf...))
}

func (f testFrag) bytes() []byte {
	return append(f.moof(), box("mdat", f.payload)...)
}

func ptr[T any](v T) *T { return &v }

var (
	videoTrack = testTrack{id: 1, handler: "vide", timescale: 15360, dur: 512}
	audioTrack = testTrack{id: 2, handler: "soun", timescale: 48000, dur: 1024}
)

// videoFrag is one video frame at frame number n; key frames every gop.
func videoFrag(n, gop int) testFrag {
	fl := uint32(nonKeyFlags)
	if n%gop == 0 {
		fl = keyFlags
	}
	return testFrag{track: 1, tfdt: ptr(uint64(n) * 512), durs: []uint32{512}, flags: []uint32{fl}, payload: []byte{byte(n), 0xee}}
}

// audioFrag is one AAC frame number n.
func audioFrag(n int) testFrag {
	return testFrag{track: 2, tfdt: ptr(uint64(n) * 1024), durs: []uint32{1024}, flags: []uint32{keyFlags}, payload: []byte{byte(n), 0xaa}}
}
