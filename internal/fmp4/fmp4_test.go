package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// stream concatenates boxes.
func stream(parts ...[]byte) []byte { return slices.Concat(parts...) }

func TestFmp4BoxReader(t *testing.T) {
	large := append([]byte{0, 0, 0, 1, 'f', 'r', 'e', 'e', 0, 0, 0, 0, 0, 0, 0, 20}, 1, 2, 3, 4)
	in := stream(ftyp(), large, box("skip", []byte("xyz")))
	br := NewBoxReader(iotest.OneByteReader(bytes.NewReader(in)))
	var got []string
	for {
		b, err := br.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, b.Type)
		if b.Type == "free" && (b.Header != 16 || !bytes.Equal(b.Payload(), []byte{1, 2, 3, 4}) || b.Offset != int64(len(ftyp()))) {
			t.Errorf("64-bit box: header %d payload %x offset %d", b.Header, b.Payload(), b.Offset)
		}
	}
	if want := []string{"ftyp", "free", "skip"}; !slices.Equal(got, want) {
		t.Errorf("boxes %v, want %v", got, want)
	}
	if br.Offset() != int64(len(in)) {
		t.Errorf("offset %d, want %d", br.Offset(), len(in))
	}
}

func TestFmp4BoxReaderErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		max  int64
		want string
	}{
		{"short header", []byte{0, 0, 0, 9, 'f'}, 0, "truncated box header at offset 0 (5 of 8 bytes)"},
		{"garbage", []byte("\x89PNG\r\n\x1a\n...."), 0, "not MP4"},
		{"text", []byte("hello world, this is not a video"), 0, `the input is not MP4: it starts with "hello wo"`},
		{"huge", []byte("\xff\xff\xff\xffmdat"), 0, "has 4294967295 bytes, over the limit of 67108864"},
		{"size 0", []byte{0, 0, 0, 0, 'm', 'd', 'a', 't', 1}, 0, "size 0"},
		{"size 4", []byte{0, 0, 0, 4, 'f', 'r', 'e', 'e'}, 0, "less than its 8-byte header"},
		{"large size 8", []byte{0, 0, 0, 1, 'f', 'r', 'e', 'e', 0, 0, 0, 0, 0, 0, 0, 8}, 0, "less than its 16-byte header"},
		{"truncated large header", []byte{0, 0, 0, 1, 'f', 'r', 'e', 'e', 0, 0}, 0, "truncated header"},
		{"truncated body", []byte{0, 0, 0, 100, 'f', 'r', 'e', 'e', 1, 2, 3}, 0, "truncated: 100 bytes declared, the input ended after 11"},
		{"over the limit", box("free", make([]byte, 100)), 64, "over the limit of 64"},
	} {
		br := NewBoxReader(bytes.NewReader(c.in))
		br.MaxSize = c.max
		_, err := br.Next()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", c.name, err, c.want)
		}
	}
	// A read error passes through.
	boom := errors.New("boom")
	if _, err := NewBoxReader(iotest.ErrReader(boom)).Next(); !errors.Is(err, boom) {
		t.Errorf("read error: %v", err)
	}
}

func TestFmp4ParseInit(t *testing.T) {
	sub := testTrack{id: 7, handler: "subt", timescale: 1000}
	data := stream(ftyp(), moov(true, videoTrack, audioTrack, sub))
	in, err := ParseInit(stream(box("free"), data))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in.Data, data) {
		t.Error("Data is not the ftyp and moov")
	}
	if !in.Fragmented {
		t.Error("not fragmented")
	}
	want := []Track{
		{ID: 1, Handler: "vide", Kind: KindVideo, Timescale: 15360, DefaultSampleDuration: 512},
		{ID: 2, Handler: "soun", Kind: KindAudio, Timescale: 48000, DefaultSampleDuration: 1024},
		{ID: 7, Handler: "subt", Kind: KindText, Timescale: 1000},
	}
	if !slices.Equal(in.Tracks, want) {
		t.Errorf("tracks\n%+v\nwant\n%+v", in.Tracks, want)
	}
	if s := in.String(); s != "1 video, 2 audio, 7 text" {
		t.Errorf("String() = %q", s)
	}
	if in, err := ParseInit(moov(false, videoTrack)); err != nil || in.Fragmented {
		t.Errorf("without mvex: %v, fragmented %v", err, in.Fragmented)
	}
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"no moov", ftyp(), "no moov"},
		{"two moovs", stream(moov(true, videoTrack), moov(true, videoTrack)), "two moov"},
		{"no trak", box("moov", box("mvex")), "no trak"},
		{"duplicate track", moov(true, videoTrack, videoTrack), "two traks with track_ID 1"},
		{"timescale 0", moov(true, testTrack{id: 1, handler: "vide"}), "timescale 0"},
		{"track 0", moov(true, testTrack{handler: "vide", timescale: 1}), "track_ID 0"},
		{"no tkhd", box("moov", box("trak", box("mdia"))), "no tkhd"},
		{"truncated", ftyp()[:10], "has size 24 with 10 bytes left"}, {"trailing", ftyp()[:5], "trailing bytes"},
		{"bad child", box("moov", []byte{0, 0, 0, 50, 't', 'r', 'a', 'k'}), "size 50"},
	} {
		if _, err := ParseInit(c.in); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", c.name, err, c.want)
		}
	}
}

func TestFmp4FilterInit(t *testing.T) {
	full := stream(ftyp(), moov(true, videoTrack, audioTrack))
	out, err := FilterInit(full, func(id uint32) bool { return id == 2 })
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInit(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Tracks) != 1 || in.Tracks[0].ID != 2 || in.Tracks[0].DefaultSampleDuration != 1024 || !in.Fragmented {
		t.Errorf("filtered: %+v", in)
	}
	if want := stream(ftyp(), moov(true, audioTrack)); !bytes.Equal(out, want) {
		t.Errorf("filtered init\n%x\nwant\n%x", out, want)
	}
	same, err := FilterInit(full, func(uint32) bool { return true })
	if err != nil || !bytes.Equal(same, full) {
		t.Errorf("keeping everything changed it: %v", err)
	}
	if _, err := FilterInit(full, func(uint32) bool { return false }); !errors.Is(err, ErrInvalid) {
		t.Errorf("keeping nothing: %v", err)
	}
}

// TestFmp4MergeInits: the per-track init segments FilterInit makes merge
// back into the original, byte for byte.
func TestFmp4MergeInits(t *testing.T) {
	full := stream(ftyp(), moov(true, videoTrack, audioTrack))
	one := func(id uint32) []byte {
		b, err := FilterInit(full, func(t uint32) bool { return t == id })
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v, a := one(1), one(2)
	merged, err := MergeInits(v, a)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(merged, full) {
		t.Errorf("merged\n%x\nwant\n%x", merged, full)
	}
	// The other way round: audio's moov, then the video trak.
	merged, err = MergeInits(a, v)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInit(merged)
	if err != nil || len(in.Tracks) != 2 || in.Tracks[0].ID != 2 || in.Tracks[1].ID != 1 || in.Tracks[1].DefaultSampleDuration != videoTrack.dur {
		t.Errorf("merged audio+video: %+v, %v", in, err)
	}
	if same, err := MergeInits(v); err != nil || !bytes.Equal(same, v) {
		t.Errorf("one init: %v", err)
	}
	for _, c := range []struct {
		name string
		in   [][]byte
		want string
	}{
		{"none", nil, "no init segment"},
		{"twice", [][]byte{v, v}, "track_ID 1 is in an earlier one"},
		{"not fragmented", [][]byte{v, stream(ftyp(), moov(false, audioTrack))}, "not fragmented"},
		{"junk", [][]byte{v, []byte("junk")}, "trailing bytes"},
	} {
		if _, err := MergeInits(c.in...); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", c.name, err, c.want)
		}
	}
}

// TestFmp4Renumber: a track renumbered in its init segment (tkhd, trex)
// and in its fragments (every tfhd) merges with another track of the same
// ID, and its fragments are of the new ID.
func TestFmp4Renumber(t *testing.T) {
	audioAs1 := testTrack{id: 1, handler: "soun", timescale: 48000, dur: 1024}
	a := stream(ftyp(), moov(true, audioAs1))
	v := stream(ftyp(), moov(true, videoTrack))
	if _, err := MergeInits(v, a); err == nil {
		t.Fatal("two inits of track 1 merged without renumbering")
	}
	a7, err := RenumberInit(a, 1, 7)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ParseInit(a7)
	if err != nil || len(in.Tracks) != 1 || in.Tracks[0].ID != 7 || in.Tracks[0].DefaultSampleDuration != 1024 || len(a7) != len(a) {
		t.Fatalf("renumbered: %+v, %v", in, err)
	}
	if _, err := ParseInit(a); err != nil || !bytes.Equal(a, stream(ftyp(), moov(true, audioAs1))) {
		t.Error("RenumberInit changed its input")
	}
	merged, err := MergeInits(v, a7)
	if err != nil {
		t.Fatal(err)
	}
	if in, err = ParseInit(merged); err != nil || in.String() != "1 video, 7 audio" {
		t.Errorf("merged: %v, %v", in, err)
	}
	// A version 1 tkhd (64-bit times) has its track_ID further on.
	tkhd1 := make([]byte, 92)
	binary.BigEndian.PutUint32(tkhd1[16:], 1)
	mdhd := make([]byte, 20)
	binary.BigEndian.PutUint32(mdhd[8:], 90000)
	hdlr := slices.Concat(make([]byte, 4), []byte("vide"), make([]byte, 13))
	trak1 := box("trak", box("tkhd", fullBox(1, 3), tkhd1),
		box("mdia", box("mdhd", fullBox(0, 0), mdhd), box("hdlr", fullBox(0, 0), hdlr), box("minf")))
	v1 := box("moov", box("mvhd", fullBox(0, 0), make([]byte, 96)), trak1, box("mvex", trex(videoTrack)))
	if in, err := ParseInit(v1); err != nil || in.Tracks[0].ID != 1 {
		t.Fatalf("the version 1 tkhd test input: %v, %v", in, err)
	}
	if b, err := RenumberInit(v1, 1, 9); err != nil {
		t.Error(err)
	} else if in, err := ParseInit(b); err != nil || in.String() != "9 video" {
		t.Errorf("renumbered with a version 1 tkhd: %v, %v", in, err)
	}
	if _, err := RenumberInit(a, 2, 3); !errors.Is(err, ErrInvalid) {
		t.Errorf("renumbering a track the init lacks: %v", err)
	}
	if _, err := RenumberInit(merged, 1, 7); !errors.Is(err, ErrInvalid) {
		t.Errorf("renumbering onto a track the init has: %v", err)
	}

	frag := stream(box("styp"), testFrag{track: 1, tfdt: ptr(uint64(0)), durs: []uint32{1024}, payload: []byte{1}}.bytes(), audioFrag(1).bytes())
	if _, err := RenumberFragment(frag, 7); !errors.Is(err, ErrInvalid) {
		t.Errorf("a fragment of two tracks: %v", err)
	}
	frag = stream(box("styp"), audioFrag(0).bytes(), audioFrag(1).bytes())
	out, err := RenumberFragment(frag, 7)
	if id, ferr := FragmentTrack(out); err != nil || ferr != nil || id != 7 || len(out) != len(frag) {
		t.Errorf("renumbered fragment: track %d, %v, %v", id, err, ferr)
	}
	if id, _ := FragmentTrack(frag); id != 2 {
		t.Error("RenumberFragment changed its input")
	}
}

func TestFmp4Splitter(t *testing.T) {
	init := stream(ftyp(), moov(true, videoTrack, audioTrack))
	var frags []testFrag
	for i := range 6 {
		frags = append(frags, videoFrag(i, 3), audioFrag(i))
	}
	parts := [][]byte{box("free"), init, box("styp", []byte("msdh"))}
	for i, f := range frags {
		parts = append(parts, f.bytes())
		if i == 3 {
			parts = append(parts, box("prft", make([]byte, 16)))
		}
	}
	parts = append(parts, box("mfra"))
	s := NewSplitter(iotest.HalfReader(bytes.NewReader(stream(parts...))))
	var skipped []string
	s.Skipped = func(typ string, _ int64) { skipped = append(skipped, typ) }
	in, err := s.Init()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(in.Data, init) {
		t.Error("init data")
	}
	for i, want := range frags {
		f, err := s.Next()
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		if !bytes.Equal(f.Data, want.bytes()) {
			t.Errorf("fragment %d: data differs", i)
		}
		if f.TrackID != want.track || f.Samples != 1 || !f.HasTFDT || f.DecodeTime != *want.tfdt || f.Duration != uint64(want.durs[0]) {
			t.Errorf("fragment %d: %+v", i, f)
		}
		if key := want.track == 2 || (i/2)%3 == 0; f.Keyframe != key {
			t.Errorf("fragment %d: keyframe %v, want %v", i, f.Keyframe, key)
		}
	}
	if _, err := s.Next(); err != io.EOF {
		t.Fatalf("after the last fragment: %v", err)
	}
	if want := []string{"free", "styp", "prft", "mfra"}; !slices.Equal(skipped, want) {
		t.Errorf("skipped %v, want %v", skipped, want)
	}
}

// TestFmp4SampleFlagsAndTimes: key frames and durations from per-sample flags,
// first_sample_flags, tfhd defaults and trex defaults; decode times without
// tfdt.
func TestFmp4SampleFlagsAndTimes(t *testing.T) {
	v := testTrack{id: 1, handler: "vide", timescale: 90000, dur: 3000, flags: nonKeyFlags}
	frags := []struct {
		f       testFrag
		key     bool
		samples uint64
		dur     uint64
		start   uint64
	}{
		// first_sample_flags marks a key frame; the rest use the trex default.
		{testFrag{track: 1, first: ptr(uint32(keyFlags)), durs: []uint32{3000, 3000, 3000}, payload: make([]byte, 3)}, true, 3, 9000, 0},
		// trex default flags only: not a key frame.
		{testFrag{track: 1, durs: []uint32{3000, 3000}, payload: make([]byte, 2)}, false, 2, 6000, 9000},
		// tfhd default flags override trex; tfhd duration too.
		{testFrag{track: 1, tfhdFlag: ptr(uint32(0)), tfhdDur: ptr(uint32(1500)), payload: make([]byte, 1)}, true, 1, 1500, 15000},
		// A key frame in the middle of a fragment does not make it one
		// (LateSync, checked below).
		{testFrag{track: 1, flags: []uint32{nonKeyFlags, keyFlags}, payload: make([]byte, 2)}, false, 2, 6000, 16500},
		// tfdt resets the running time.
		{testFrag{track: 1, tfdt: ptr(uint64(1 << 40)), flags: []uint32{nonKeyFlags}, payload: make([]byte, 1)}, false, 1, 3000, 1 << 40},
		{testFrag{track: 1, flags: []uint32{0x00010000}, payload: make([]byte, 1)}, false, 1, 3000, 1<<40 + 3000},
	}
	parts := [][]byte{moov(true, v)}
	for _, f := range frags {
		parts = append(parts, f.f.bytes())
	}
	s := NewSplitter(bytes.NewReader(stream(parts...)))
	for i, want := range frags {
		f, err := s.Next()
		if err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
		if late := i == 3; f.LateSync != late {
			t.Errorf("fragment %d: LateSync %v, want %v", i, f.LateSync, late)
		}
		if f.Keyframe != want.key || f.Samples != want.samples || f.Duration != want.dur || f.DecodeTime != want.start || f.HasTFDT != (want.f.tfdt != nil) {
			t.Errorf("fragment %d: %+v, want key %v samples %d duration %d start %d", i, f, want.key, want.samples, want.dur, want.start)
		}
	}
	for flags, sync := range map[uint32]bool{0: true, keyFlags: true, nonKeyFlags: false, 0x00010000: false, 0x01000000: false, 0x03000000: true} {
		if IsSync(flags) != sync {
			t.Errorf("IsSync(%#x) = %v", flags, !sync)
		}
	}
}

func TestFmp4SplitterErrors(t *testing.T) {
	init := stream(ftyp(), moov(true, videoTrack, audioTrack))
	frag := videoFrag(0, 1)
	twoTrafs := box("moof", box("traf", box("tfhd", fullBox(0, 0x020000), u32(1))), box("traf", box("tfhd", fullBox(0, 0x020000), u32(2))))
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "the input is empty"},
		{"garbage", []byte("\x00\x01\x02\x03\x04\x05\x06\x07 garbage garbage"), "not MP4"},
		{"no moov", ftyp(), "ended before its moov"},
		{"truncated moov", init[:len(init)-5], "truncated"},
		{"not fragmented", stream(ftyp(), moov(false, videoTrack), box("mdat", []byte{1})), "not fragmented MP4"},
		{"mdat first", stream(ftyp(), box("mdat", []byte{1}), moov(false, videoTrack)), "before the moov: this is a regular MP4 file"},
		{"moof first", stream(ftyp(), frag.bytes(), init), "moof at offset 24 before the moov"},
		{"moof without mdat at the end", stream(init, frag.moof()), "has no mdat: the input ended"},
		{"moof then moof", stream(init, frag.moof(), frag.bytes()), "is followed by \"moof\""},
		{"mdat without moof", stream(init, box("mdat", []byte{1})), "mdat at offset"},
		{"truncated mdat", stream(init, frag.bytes()[:len(frag.bytes())-1]), "truncated"},
		{"second moov", stream(init, frag.bytes(), init), "a second ftyp"},
		{"two trafs", stream(init, twoTrafs, box("mdat")), "2 trafs"},
		{"no traf", stream(init, box("moof", box("mfhd", fullBox(0, 0), u32(1))), box("mdat")), "no traf"},
		{"unknown track", stream(init, testFrag{track: 9, payload: []byte{1}}.bytes()), "track 9, which the moov does not have"},
		{"base data offset", stream(init, testFrag{track: 1, baseOff: true, payload: []byte{1}}.bytes()), "explicit base data offset"},
		{"no tfhd", stream(init, box("moof", box("traf")), box("mdat")), "no tfhd"},
		{"short trun", stream(init, box("moof", box("traf", box("tfhd", fullBox(0, 0x020000), u32(1)), box("trun", fullBox(0, 0x100), u32(1000)))), box("mdat")), "declares 1000 samples"},
		{"tiny trun", stream(init, box("moof", box("traf", box("tfhd", fullBox(0, 0x020000), u32(1)), box("trun", fullBox(0, 0x4)))), box("mdat")), "truncated"},
		{"short tfhd", stream(init, box("moof", box("traf", box("tfhd", fullBox(0, 0x020008), u32(1)))), box("mdat")), "tfhd"},
	} {
		s := NewSplitter(bytes.NewReader(c.in))
		var err error
		for err == nil {
			_, err = s.Next()
		}
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrInvalid with %q", c.name, err, c.want)
		}
	}
	// A huge sample count without per-sample fields is fine (and cheap).
	huge := box("moof", box("traf", box("tfhd", fullBox(0, 0x020000), u32(1)), box("trun", fullBox(0, 0), u32(0xffffffff))))
	s := NewSplitter(bytes.NewReader(stream(init, huge, box("mdat"))))
	if f, err := s.Next(); err != nil || f.Samples != 0xffffffff {
		t.Errorf("huge sample count: %v", err)
	}
}

func TestFmp4FragmentTrack(t *testing.T) {
	f := audioFrag(3).bytes()
	if id, err := FragmentTrack(f); err != nil || id != 2 {
		t.Errorf("FragmentTrack = %d, %v", id, err)
	}
	in, err := ParseInit(moov(true, videoTrack, audioTrack))
	if err != nil {
		t.Fatal(err)
	}
	v := videoFrag(6, 3).bytes()
	if fr, err := ParseFragment(v, in); err != nil || fr.TrackID != 1 || !fr.Keyframe || fr.DecodeTime != 6*512 || fr.Duration != 512 || !bytes.Equal(fr.Data, v) {
		t.Errorf("ParseFragment = %+v, %v", fr, err)
	}
	for _, b := range [][]byte{nil, box("mdat"), audioFrag(1).moof(), stream(f, box("moov")), []byte("garbage!")} {
		if _, err := FragmentTrack(b); !errors.Is(err, ErrInvalid) {
			t.Errorf("FragmentTrack(%q) = %v", b, err)
		}
		if _, err := ParseFragment(b, in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseFragment(%q) = %v", b, err)
		}
	}
}

// TestFmp4FragmentTrackCMAFChunks: every CMAF chunk or segment layout is a
// fragment of its track: a styp first (Red5), prft, emsg and free boxes
// around the pairs, several moof/mdat pairs (a whole GOP); a chunk that
// mixes tracks or breaks a pair is not.
func TestFmp4FragmentTrackCMAFChunks(t *testing.T) {
	styp := box("styp", []byte("cmfs"), u32(0), []byte("cmfs"))
	prft := box("prft", fullBox(1, 0), u32(1), u64(1), u64(2))
	emsg := box("emsg", fullBox(1, 0), make([]byte, 22))
	v0, v1, v2 := videoFrag(0, 3).bytes(), videoFrag(1, 3).bytes(), videoFrag(2, 3).bytes()
	for name, b := range map[string][]byte{
		"styp+moof+mdat":           stream(styp, v0),
		"prft+emsg+moof+mdat":      stream(prft, emsg, v0),
		"styp+prft+free+moof+mdat": stream(styp, prft, box("free"), v0),
		"two moof/mdat pairs":      stream(v0, v1),
		"a GOP with prft between":  stream(styp, v0, prft, v1, v2, box("free")),
	} {
		if id, err := FragmentTrack(b); err != nil || id != 1 {
			t.Errorf("%s: FragmentTrack = %d, %v; want track 1", name, id, err)
		}
	}
	a := audioFrag(0).bytes()
	for name, c := range map[string]struct {
		b    []byte
		want string
	}{
		"two tracks":        {stream(v0, a), "moof 2 is of track 2, moof 1 of track 1"},
		"styp not first":    {stream(v0, styp, v1), "styp that is not its first box"},
		"moof without mdat": {stream(styp, videoFrag(0, 3).moof(), v1), "not followed by its mdat"},
		"no moof":           {stream(styp, prft), "no moof"},
		"init in a chunk":   {stream(box("moov"), v0), `"moov" box`},
	} {
		if _, err := FragmentTrack(c.b); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: FragmentTrack error %v, want ErrInvalid with %q", name, err, c.want)
		}
	}
}

// TestFmp4GrouperKeyframeMidFragment: a video fragment whose key frame is
// not its first sample (ffmpeg -frag_duration without frag_keyframe) does
// not start a group, whose object 0 would be frames a joiner cannot
// decode; the Placement reports the missed key frame. All-intra
// fragments (every sample a key frame) start groups as usual.
func TestFmp4GrouperKeyframeMidFragment(t *testing.T) {
	in, err := ParseInit(stream(ftyp(), moov(true, videoTrack, audioTrack)))
	if err != nil {
		t.Fatal(err)
	}
	frag := func(n int, flags ...uint32) testFrag {
		return testFrag{track: 1, tfdt: ptr(uint64(n) * 512), durs: slices.Repeat([]uint32{512}, len(flags)), flags: flags, payload: make([]byte, len(flags))}
	}
	frags := []testFrag{
		frag(0, keyFlags, nonKeyFlags),
		frag(2, nonKeyFlags, keyFlags), // the key frame is the second sample
		audioFrag(0),
		frag(4, nonKeyFlags, nonKeyFlags),
		frag(6, keyFlags, keyFlags), // starts with one: a group
		audioFrag(1),
	}
	parts := [][]byte{in.Data}
	for _, f := range frags {
		parts = append(parts, f.bytes())
	}
	s := NewSplitter(bytes.NewReader(stream(parts...)))
	g := NewGrouper(in, 0)
	var got []Placement
	for range frags {
		f, err := s.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, g.Place(f))
	}
	want := []Placement{
		{Group: 0, Object: 0, NewGroup: true},
		{Group: 0, Object: 1, MissedKeyframe: true},
		{Group: 0, Object: 0, NewGroup: true},
		{Group: 0, Object: 2},
		{Group: 1, Object: 0, NewGroup: true},
		{Group: 1, Object: 0, NewGroup: true},
	}
	if !slices.Equal(got, want) {
		t.Errorf("placements\n%+v\nwant\n%+v", got, want)
	}
}

type placed struct{ track, group, object uint64 }

func place(t *testing.T, in *Init, d time.Duration, frags []testFrag) []placed {
	t.Helper()
	parts := [][]byte{in.Data}
	for _, f := range frags {
		parts = append(parts, f.bytes())
	}
	s := NewSplitter(bytes.NewReader(stream(parts...)))
	if _, err := s.Init(); err != nil {
		t.Fatal(err)
	}
	g := NewGrouper(in, d)
	var out []placed
	var lastGroup = map[uint32]uint64{}
	for {
		f, err := s.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		p := g.Place(f)
		if prev, ok := lastGroup[f.TrackID]; p.NewGroup != (!ok || prev != p.Group) {
			t.Errorf("NewGroup %v for group %d after %d", p.NewGroup, p.Group, prev)
		}
		lastGroup[f.TrackID] = p.Group
		out = append(out, placed{uint64(f.TrackID), p.Group, p.Object})
	}
}

func TestFmp4GrouperVideoAndAudio(t *testing.T) {
	in, err := ParseInit(stream(ftyp(), moov(true, audioTrack, videoTrack)))
	if err != nil {
		t.Fatal(err)
	}
	// Audio first, then video with a key frame every 3 frames; the first
	// video fragment is a key frame too.
	frags := []testFrag{audioFrag(0), videoFrag(0, 3), audioFrag(1), videoFrag(1, 3), videoFrag(2, 3), audioFrag(2),
		videoFrag(3, 3), audioFrag(3), videoFrag(4, 3), videoFrag(5, 3), videoFrag(6, 3), audioFrag(4)}
	got := place(t, in, 0, frags)
	want := []placed{{2, 0, 0}, {1, 0, 0}, {2, 0, 1}, {1, 0, 1}, {1, 0, 2}, {2, 0, 2},
		{1, 1, 0}, {2, 1, 0}, {1, 1, 1}, {1, 1, 2}, {1, 2, 0}, {2, 2, 0}}
	if !slices.Equal(got, want) {
		t.Errorf("placed\n%v\nwant\n%v", got, want)
	}
	g := NewGrouper(in, 0)
	if id, byTime := g.Primary(); id != 1 || byTime {
		t.Errorf("primary %d byTime %v", id, byTime)
	}
}

func TestFmp4GrouperSecondVideo(t *testing.T) {
	v2 := testTrack{id: 3, handler: "vide", timescale: 15360, dur: 512}
	in, err := ParseInit(moov(true, videoTrack, v2))
	if err != nil {
		t.Fatal(err)
	}
	second := func(n, gop int) testFrag { f := videoFrag(n, gop); f.track = 3; return f }
	// The second rendition has key frames twice as often, and its key
	// frame of frame 4 comes just before the primary's.
	frags := []testFrag{videoFrag(0, 4), second(0, 2), videoFrag(1, 4), second(1, 2), videoFrag(2, 4), second(2, 2),
		videoFrag(3, 4), second(3, 2), second(4, 2), videoFrag(4, 4), videoFrag(5, 4), second(5, 2)}
	got := place(t, in, 0, frags)
	want := []placed{{1, 0, 0}, {3, 0, 0}, {1, 0, 1}, {3, 0, 1}, {1, 0, 2}, {3, 1, 0},
		{1, 0, 3}, {3, 1, 1}, {3, 2, 0}, {1, 1, 0}, {1, 1, 1}, {3, 2, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("placed\n%v\nwant\n%v", got, want)
	}
}

func TestFmp4GrouperAudioOnly(t *testing.T) {
	in, err := ParseInit(moov(true, audioTrack))
	if err != nil {
		t.Fatal(err)
	}
	// 1024 samples at 48 kHz: 21.33 ms a frame; 100 ms groups hold 4 or 5.
	var frags []testFrag
	for i := range 20 {
		frags = append(frags, audioFrag(i))
	}
	got := place(t, in, 100*time.Millisecond, frags)
	var groups []uint64
	count := map[uint64]int{}
	for i, p := range got {
		if len(groups) == 0 || groups[len(groups)-1] != p.group {
			groups = append(groups, p.group)
		}
		count[p.group]++
		// A group starts at the first frame at or after each 100 ms
		// (4800 samples) boundary.
		if wantGroup := uint64(i*1024) / 4800; p.group != wantGroup {
			t.Errorf("frame %d (at %d) in group %d, want %d", i, i*1024, p.group, wantGroup)
		}
	}
	if !slices.Equal(groups, []uint64{0, 1, 2, 3, 4}) {
		t.Errorf("groups %v", groups)
	}
	g := NewGrouper(in, 0)
	if id, byTime := g.Primary(); id != 2 || !byTime {
		t.Errorf("primary %d byTime %v", id, byTime)
	}
	// A decode time that goes back starts a group.
	back := []testFrag{audioFrag(10), audioFrag(11), audioFrag(0), audioFrag(1)}
	if got := place(t, in, time.Second, back); !slices.Equal(got, []placed{{2, 0, 0}, {2, 0, 1}, {2, 1, 0}, {2, 1, 1}}) {
		t.Errorf("time going back: %v", got)
	}
}

func TestFmp4GrouperLast(t *testing.T) {
	in, err := ParseInit(moov(true, videoTrack, audioTrack))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGrouper(in, 0)
	if _, _, ok := g.Last(1); ok {
		t.Error("Last before any fragment")
	}
	for i := range 5 {
		g.Place(&Fragment{TrackID: 1, Keyframe: i%3 == 0})
	}
	if group, next, ok := g.Last(1); !ok || group != 1 || next != 2 {
		t.Errorf("Last = %d, %d, %v", group, next, ok)
	}
	if _, _, ok := g.Last(2); ok {
		t.Error("Last of a track without fragments")
	}
}

func FuzzFmp4Splitter(f *testing.F) {
	init := stream(ftyp(), moov(true, videoTrack, audioTrack))
	var frags [][]byte
	for i := range 4 {
		frags = append(frags, videoFrag(i, 2).bytes(), audioFrag(i).bytes())
	}
	f.Add(stream(append([][]byte{init}, frags...)...))
	f.Add(init)
	f.Add(stream(init, testFrag{track: 1, first: ptr(uint32(keyFlags)), tfhdDur: ptr(uint32(3)), payload: []byte{1, 2}}.bytes()))
	f.Add([]byte("not mp4 at all"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewSplitter(bytes.NewReader(b))
		s.SetMaxBoxSize(1 << 16)
		in, err := s.Init()
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("Init: %v does not wrap ErrInvalid", err)
			}
			return
		}
		g := NewGrouper(in, time.Second)
		for {
			fr, err := s.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("Next: %v does not wrap ErrInvalid", err)
				}
				break
			}
			g.Place(fr)
			if _, err := FragmentTrack(fr.Data); err != nil {
				t.Fatalf("a fragment the splitter returned: %v", err)
			}
		}
		_, _ = FilterInit(in.Data, func(id uint32) bool { return id%2 == 0 })
	})
}
