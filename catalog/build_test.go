package catalog

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	mp4 "github.com/abema/go-mp4"
)

func TestBuildBBB(t *testing.T) {
	c, err := Build(bbbInit(t), Options{Namespace: []string{"bbb"}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != bbbJSON {
		t.Errorf("got:\n%s\nwant:\n%s", out, bbbJSON)
	}
}

// buildJSON builds a catalog and returns its compact JSON.
func buildJSON(t *testing.T, init []byte, opts Options) string {
	t.Helper()
	c, err := Build(init, opts)
	if err != nil {
		t.Fatal(err)
	}
	return mustMarshal(t, c)
}

const head = `{"version":1,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":true,`

func TestBuildOptions(t *testing.T) {
	init := bbbInit(t)
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"zero", Options{}, head + `"commonTrackFields":{"packaging":"cmaf","renderGroup":1},"tracks":[` +
			`{"name":"1.m4s","initTrack":"0.mp4","selectionParams":{"codec":"avc1.64001F","width":1280,"height":720}},` +
			`{"name":"2.m4s","initTrack":"0.mp4","selectionParams":{"codec":"mp4a.40.2","bitrate":129403,"samplerate":44100,"channelConfig":"2"}}]}`},
		// --fps and --bitrate go to video tracks only; audio keeps the esds bitrate.
		{"fps and bitrate", Options{Namespace: []string{"live", "room 1"}, InitTrack: "init.mp4", Framerate: 24, Bitrate: 1500000},
			head + `"commonTrackFields":{"namespace":"/live/room 1","packaging":"cmaf","renderGroup":1},"tracks":[` +
				`{"name":"1.m4s","initTrack":"init.mp4","selectionParams":{"codec":"avc1.64001F","framerate":24,"bitrate":1500000,"width":1280,"height":720}},` +
				`{"name":"2.m4s","initTrack":"init.mp4","selectionParams":{"codec":"mp4a.40.2","bitrate":129403,"samplerate":44100,"channelConfig":"2"}}]}`},
		{"empty namespace", Options{Namespace: []string{}}, head + `"commonTrackFields":{"namespace":"","packaging":"cmaf","renderGroup":1},"tracks":[` +
			`{"name":"1.m4s","initTrack":"0.mp4","selectionParams":{"codec":"avc1.64001F","width":1280,"height":720}},` +
			`{"name":"2.m4s","initTrack":"0.mp4","selectionParams":{"codec":"mp4a.40.2","bitrate":129403,"samplerate":44100,"channelConfig":"2"}}]}`},
	} {
		if got := buildJSON(t, init, tc.opts); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// Init segments ffmpeg wrote (see testdata/README.md) and the catalogs built from them.
func TestBuildFixtures(t *testing.T) {
	video := func(id, codec, size string) string {
		return `{"name":"` + id + `.m4s","initTrack":"0.mp4","selectionParams":{"codec":"` + codec + `",` + size + `}}`
	}
	audio := func(id, codec, rest string) string {
		return `{"name":"` + id + `.m4s","initTrack":"0.mp4","selectionParams":{"codec":"` + codec + `",` + rest + `}}`
	}
	const hd, sd = `"width":1280,"height":720`, `"width":640,"height":360`
	for file, tracks := range map[string][]string{
		"h264_aac.mp4":    {video("1", "avc1.64001F", hd), audio("2", "mp4a.40.2", `"bitrate":128000,"samplerate":44100,"channelConfig":"2"`)},
		"avc3.mp4":        {video("1", "avc3.42C01E", hd)},
		"hvc1_opus.mp4":   {video("1", "hvc1.1.6.L93.90", hd), audio("2", "opus", `"samplerate":48000,"channelConfig":"2"`)},
		"hev1_main10.mp4": {video("1", "hev1.2.4.L93.90", hd)},
		"av1_ac3.mp4":     {video("1", "av01.0.05M.10", hd), audio("2", "ac-3", `"samplerate":48000,"channelConfig":"6"`)},
		"av1_hdr.mp4":     {video("1", "av01.0.01M.10.0.110.09.16.09.0", sd)},
		"vp9_eac3.mp4":    {video("1", "vp09.00.31.08", hd), audio("2", "ec-3", `"samplerate":48000,"channelConfig":"2"`)},
		"vp9_444.mp4":     {video("1", "vp09.01.21.08.03.01.01.01.00", sd)},
	} {
		init, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		want := head + `"commonTrackFields":{"namespace":"/t","packaging":"cmaf","renderGroup":1},"tracks":[` + strings.Join(tracks, ",") + `]}`
		if got := buildJSON(t, init, Options{Namespace: []string{"t"}}); got != want {
			t.Errorf("%s:\n got %s\nwant %s", file, got, want)
		}
	}
}

func TestBuildSampleEntries(t *testing.T) {
	opus := bx(&mp4.DOps{OutputChannelCount: 2, PreSkip: 312, InputSampleRate: 48000})
	for _, tc := range []struct {
		name  string
		trak  node
		codec string
		rest  string
	}{
		{"avc3", trak(1, "vide", 0, 0, visual("avc3", 640, 480, avcC(0x42, 0xC0, 0x1E))), "avc3.42C01E", `"width":640,"height":480`},
		{"size from tkhd", trak(1, "vide", 320, 240, visual("avc1", 0, 0, avcC(0x4D, 0x40, 0x28))), "avc1.4D4028", `"width":320,"height":240`},
		{"no size", trak(1, "vide", 0, 0, visual("avc1", 0, 0, avcC(0x4D, 0x40, 0x28))), "avc1.4D4028", ``},
		{"hvc1", trak(1, "vide", 0, 0, visual("hvc1", 1920, 1080, bx(hvcC(0, false, 1, 0x60000000, [6]byte{0xB0}, 120)))), "hvc1.1.6.L120.B0", `"width":1920,"height":1080`},
		{"av01", trak(1, "vide", 0, 0, visual("av01", 3840, 2160, bx(&mp4.Av1C{Marker: 1, Version: 1, SeqLevelIdx0: 12, HighBitdepth: 1, ChromaSubsamplingX: 1, ChromaSubsamplingY: 1}))), "av01.0.12M.10", `"width":3840,"height":2160`},
		{"av01 colr", trak(1, "vide", 0, 0, visual("av01", 64, 64,
			bx(&mp4.Av1C{Marker: 1, Version: 1, SeqLevelIdx0: 4, ChromaSubsamplingX: 1, ChromaSubsamplingY: 1}),
			bx(&mp4.Colr{ColourType: [4]byte{'n', 'c', 'l', 'x'}, ColourPrimaries: 1, TransferCharacteristics: 13, MatrixCoefficients: 1, FullRangeFlag: true}))),
			"av01.0.04M.08.0.110.01.13.01.1", `"width":64,"height":64`},
		{"vp09", trak(1, "vide", 0, 0, visual("vp09", 64, 64, bx(&mp4.VpcC{FullBox: mp4.FullBox{Version: 1}, Profile: 0, Level: 10, BitDepth: 8, ChromaSubsampling: 1, ColourPrimaries: 2, TransferCharacteristics: 2, MatrixCoefficients: 2}))), "vp09.00.10.08", `"width":64,"height":64`},
		{"mp4a HE-AAC v2", trak(1, "soun", 0, 0, audio("mp4a", 2, 48000, esdsBox(0x40, 0, 0, []byte{0xEB, 0x09, 0x88, 0x00}))), "mp4a.40.29", `"samplerate":48000,"channelConfig":"2"`},
		{"mp4a avg bitrate", trak(1, "soun", 0, 0, audio("mp4a", 1, 22050, esdsBox(0x40, 64000, 96000, []byte{0x13, 0x88}))), "mp4a.40.2", `"bitrate":96000,"samplerate":22050,"channelConfig":"1"`},
		{"mp4a rate from ASC", trak(1, "soun", 0, 0, audio("mp4a", 2, 0, esdsBox(0x40, 0, 0, []byte{0x11, 0x90}))), "mp4a.40.2", `"samplerate":48000,"channelConfig":"2"`},
		{"mp3", trak(1, "soun", 0, 0, audio("mp4a", 2, 44100, esdsBox(0x6B, 320000, 320000, nil))), "mp4a.6B", `"bitrate":320000,"samplerate":44100,"channelConfig":"2"`},
		{"Opus", trak(1, "soun", 0, 0, audio("Opus", 2, 48000, opus)), "opus", `"samplerate":48000,"channelConfig":"2"`},
		{"ac-3 5.1", trak(1, "soun", 0, 0, audio("ac-3", 2, 48000, bx(&mp4.Dac3{Fscod: 0, Bsid: 8, Acmod: 7, LfeOn: 1, BitRateCode: 14}))), "ac-3", `"samplerate":48000,"channelConfig":"6"`},
		{"ac-3 no dac3", trak(1, "soun", 0, 0, audio("ac-3", 2, 48000)), "ac-3", `"samplerate":48000,"channelConfig":"2"`},
		// dec3: data_rate 768, one independent substream 3/2 + LFE with one dependent substream
		// adding Lrs/Rrs (chan_loc bit 1): 7.1.
		{"ec-3 7.1", trak(1, "soun", 0, 0, audio("ec-3", 2, 48000, raw("dec3", dec3(768, 7, 1, 1, 0b010000000)))), "ec-3", `"samplerate":48000,"channelConfig":"8"`},
		{"ec-3 stereo", trak(1, "soun", 0, 0, audio("ec-3", 2, 48000, raw("dec3", dec3(192, 2, 0, 0, 0)))), "ec-3", `"samplerate":48000,"channelConfig":"2"`},
		{"fLaC", trak(1, "soun", 0, 0, audio("fLaC", 1, 44100)), "flac", `"samplerate":44100,"channelConfig":"1"`},
		{"encv", trak(1, "vide", 0, 0, visual("encv", 1280, 720, avcC(0x64, 0, 0x28), sinf("avc1"))), "avc1.640028", `"width":1280,"height":720`},
		{"enca", trak(1, "soun", 0, 0, audio("enca", 2, 48000, esdsBox(0x40, 0, 0, []byte{0x11, 0x90}), sinf("mp4a"))), "mp4a.40.2", `"samplerate":48000,"channelConfig":"2"`},
		// QuickTime sound sample description version 1: 16 more bytes before the children.
		{"QuickTime v1 audio", trak(1, "soun", 0, 0, node{
			box: &mp4.AudioSampleEntry{SampleEntry: sampleEntry("mp4a"), EntryVersion: 1, ChannelCount: 2, SampleSize: 16, SampleRate: 44100 << 16},
			raw: make([]byte, 16), kids: []node{bx(&mp4.Wave{}, esdsBox(0x40, 0, 0, []byte{0x12, 0x10}))},
		}), "mp4a.40.2", `"samplerate":44100,"channelConfig":"2"`},
		// Version 2: the rate is a float64 and the channel count a uint32 after the fixed fields.
		{"QuickTime v2 audio", trak(1, "soun", 0, 0, node{
			box: &mp4.AudioSampleEntry{SampleEntry: sampleEntry("mp4a"), EntryVersion: 2, ChannelCount: 3, SampleSize: 16, PreDefined: 0xFFFE, SampleRate: 1 << 16},
			raw: qtV2(96000, 6), kids: []node{esdsBox(0x40, 0, 0, []byte{0x11, 0x88})},
		}), "mp4a.40.2", `"samplerate":96000,"channelConfig":"6"`},
	} {
		init := initSegment(t, tc.trak)
		rest := tc.rest
		if rest != "" {
			rest = "," + rest
		}
		want := head + `"commonTrackFields":{"packaging":"cmaf","renderGroup":1},"tracks":[{"name":"1.m4s","initTrack":"0.mp4","selectionParams":{"codec":"` + tc.codec + `"` + rest + `}}]}`
		c, err := Build(init, Options{})
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := mustMarshal(t, c); got != want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, want)
		}
	}
}

func sinf(format string) node {
	var f [4]byte
	copy(f[:], format)
	return bx(&mp4.Sinf{}, bx(&mp4.Frma{DataFormat: f}), bx(&mp4.Schm{SchemeType: [4]byte{'c', 'e', 'n', 'c'}, SchemeVersion: 0x10000}))
}

// dec3 writes a dec3 payload with one independent substream.
func dec3(dataRate uint16, acmod, lfeon, numDepSub uint8, chanLoc uint16) []byte {
	var v uint64
	n := 0
	put := func(bits int, x uint64) { v = v<<bits | x; n += bits }
	put(13, uint64(dataRate))
	put(3, 0)  // num_ind_sub: one substream
	put(2, 0)  // fscod
	put(5, 16) // bsid
	put(1, 0)
	put(1, 0) // asvc
	put(3, 0) // bsmod
	put(3, uint64(acmod))
	put(1, uint64(lfeon))
	put(3, 0)
	put(4, uint64(numDepSub))
	if numDepSub > 0 {
		put(9, uint64(chanLoc))
	} else {
		put(1, 0)
	}
	out := make([]byte, 8)
	binary.BigEndian.PutUint64(out, v<<(64-n))
	return out[:(n+7)/8]
}

// qtV2 writes the 36 bytes that follow a version 2 QuickTime sound description's fixed fields.
func qtV2(rate float64, channels uint32) []byte {
	b := make([]byte, 36)
	binary.BigEndian.PutUint32(b[0:], 72) // sizeOfStructOnly
	binary.BigEndian.PutUint64(b[4:], math.Float64bits(rate))
	binary.BigEndian.PutUint32(b[12:], channels)
	binary.BigEndian.PutUint32(b[16:], 0x7F000000)
	return b
}

func TestBuildUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		trak node
		want string
	}{
		{"mp4v", trak(1, "vide", 0, 0, visual("mp4v", 64, 64)), `track 1: unsupported codec: sample entry "mp4v"`},
		{"text", trak(7, "text", 0, 0, raw("tx3g", make([]byte, 30))), `track 7: unsupported codec: sample entry "tx3g"`},
		{"stpp", trak(2, "subt", 0, 0, raw("stpp", []byte{0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0})), `sample entry "stpp"`},
		{"encv vp08", trak(1, "vide", 0, 0, visual("encv", 64, 64, sinf("vp08"))), `sample entry "encv" (original format "vp08")`},
		{"enca alac", trak(1, "soun", 0, 0, audio("enca", 2, 44100, sinf("alac"))), `sample entry "enca" (original format "alac")`},
		{"binary type", trak(1, "vide", 0, 0, raw("\x00\x01\xfe\xff", nil)), `sample entry "\x00\x01\xfe\xff"`},
	} {
		_, err := Build(initSegment(t, tc.trak), Options{})
		if !errors.Is(err, ErrUnsupportedCodec) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrUnsupportedCodec with %q", tc.name, err, tc.want)
		}
	}
}

func TestBuildMalformed(t *testing.T) {
	avc := visual("avc1", 64, 64, avcC(0x42, 0, 0x1E))
	okTrak := trak(1, "vide", 0, 0, avc)
	moov := func(kids ...node) []byte { return writeBoxes(t, bx(&mp4.Moov{}, kids...)) }
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"nil", nil, "empty"},
		{"garbage", []byte("this is not an mp4 file at all"), "declared"},
		{"short", []byte{0, 0, 0}, "truncated box header"},
		{"size below header", []byte{0, 0, 0, 4, 'f', 't', 'y', 'p'}, "less than its header"},
		{"huge size", []byte{0, 0, 0, 1, 'm', 'o', 'o', 'v', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, "truncated"},
		{"ftyp only", initSegment(t, okTrak)[:24], "no moov box"},
		{"no trak", moov(bx(&mp4.Mvhd{})), "no trak"},
		{"no tkhd", moov(bx(&mp4.Trak{}, bx(&mp4.Mdia{}))), "no tkhd box"},
		{"no stsd", moov(bx(&mp4.Trak{}, bx(&mp4.Tkhd{TrackID: 1}), bx(&mp4.Mdia{}, bx(&mp4.Minf{}, bx(&mp4.Stbl{}))))), "no stsd box"},
		{"no mdia", moov(bx(&mp4.Trak{}, bx(&mp4.Tkhd{TrackID: 1}))), "no mdia box"},
		{"empty stsd", moov(bx(&mp4.Trak{}, bx(&mp4.Tkhd{TrackID: 1}), bx(&mp4.Mdia{}, bx(&mp4.Minf{}, bx(&mp4.Stbl{}, bx(&mp4.Stsd{}))))))[:], "no sample entry"},
		{"duplicate track IDs", initSegment(t, okTrak, okTrak), "two traks with track_ID 1"},
		{"no avcC", initSegment(t, trak(1, "vide", 0, 0, visual("avc1", 64, 64))), "no avcC box"},
		{"no esds", initSegment(t, trak(1, "soun", 0, 0, audio("mp4a", 2, 48000))), "no esds box"},
		{"esds without DSI", initSegment(t, trak(1, "soun", 0, 0, audio("mp4a", 2, 48000, esdsBox(0x40, 0, 0, nil)))), "without a DecoderSpecificInfo"},
		{"esds empty", initSegment(t, trak(1, "soun", 0, 0, audio("mp4a", 2, 48000, raw("esds", make([]byte, 4))))), "no DecoderConfigDescriptor"},
		{"av1C marker", initSegment(t, trak(1, "vide", 0, 0, visual("av01", 64, 64, raw("av1C", []byte{0x01, 0, 0, 0})))), "marker 0, version 1"},
		{"short avcC", initSegment(t, trak(1, "vide", 0, 0, visual("avc1", 64, 64, raw("avcC", []byte{1, 0x64})))), "avcC"},
		{"short hvcC", initSegment(t, trak(1, "vide", 0, 0, visual("hvc1", 64, 64, raw("hvcC", make([]byte, 10))))), "hvcC"},
		{"short tkhd", moov(bx(&mp4.Trak{}, raw("tkhd", make([]byte, 12)))), "tkhd"},
		{"tkhd version 2", moov(bx(&mp4.Trak{}, raw("tkhd", append([]byte{2}, make([]byte, 95)...)))), "tkhd"},
		{"short visual entry", initSegment(t, trak(1, "vide", 0, 0, raw("avc1", make([]byte, 40)))), "avc1"},
		{"encv without sinf", initSegment(t, trak(1, "vide", 0, 0, visual("encv", 64, 64, avcC(0x42, 0, 0x1E)))), "no sinf box"},
		{"truncated dec3", initSegment(t, trak(1, "soun", 0, 0, audio("ec-3", 2, 48000, raw("dec3", []byte{0x0C, 0x00, 0x20})))), "dec3: truncated"},
		{"child overruns entry", initSegment(t, trak(1, "vide", 0, 0, raw("avc1", append(make([]byte, 78), 0, 0, 1, 0, 'x', 'x', 'x', 'x')))), `box "xxxx" is truncated`},
	} {
		_, err := Build(tc.in, Options{})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want ErrMalformed with %q", tc.name, err, tc.want)
		}
	}
}

// Every prefix of an init segment that cuts the moov is an error, never a panic; so is flipping
// any single byte, which must either build or fail cleanly.
func TestBuildTruncated(t *testing.T) {
	inits := map[string][]byte{"bbb": bbbInit(t)}
	files, _ := filepath.Glob("testdata/*.mp4")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		inits[f] = b
	}
	for name, init := range inits {
		for i := range len(init) {
			_, err := Build(init[:i], Options{})
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: prefix of %d bytes: err = %v", name, i, err)
			}
		}
		for i := range len(init) {
			b := append([]byte(nil), init...)
			b[i] ^= 0xFF
			if c, err := Build(b, Options{}); err == nil {
				if _, err := c.Encode(); err != nil {
					t.Fatalf("%s: flipped byte %d: Encode: %v", name, i, err)
				}
			}
		}
	}
}
