package catalog

import (
	"strings"
	"testing"

	mp4 "github.com/abema/go-mp4"
)

func TestAVCCodec(t *testing.T) {
	for _, tc := range []struct {
		entry                  string
		profile, compat, level byte
		want                   string
	}{
		{"avc1", 0x64, 0x00, 0x1F, "avc1.64001F"}, // High 3.1 (Big Buck Bunny)
		{"avc1", 0x42, 0xE0, 0x1E, "avc1.42E01E"}, // Constrained Baseline 3.0
		{"avc1", 0x4D, 0x40, 0x28, "avc1.4D4028"}, // Main 4.0
		{"avc3", 0x64, 0x08, 0x33, "avc3.640833"},
		{"avc1", 0x00, 0x00, 0x00, "avc1.000000"},
	} {
		c := &mp4.AVCDecoderConfiguration{Profile: tc.profile, ProfileCompatibility: tc.compat, Level: tc.level}
		if got := avcCodec(tc.entry, c); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
		// The same through Build and go-mp4's parser.
		init := initSegment(t, trak(1, "vide", 0, 0, visual(tc.entry, 16, 16, avcC(tc.profile, tc.compat, tc.level))))
		if got := buildCodec(t, init); got != tc.want {
			t.Errorf("Build: got %s, want %s", got, tc.want)
		}
	}
}

func buildCodec(t *testing.T, init []byte) string {
	t.Helper()
	c, err := Build(init, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return *c.Tracks[0].SelectionParams.Codec
}

// hvcC builds an hvcC; compat is general_profile_compatibility_flags as written in the box (flag
// 0 is the most significant bit).
func hvcC(space uint8, tier bool, idc uint8, compat uint32, constraints [6]byte, level uint8) *mp4.HvcC {
	c := &mp4.HvcC{
		ConfigurationVersion:       1,
		GeneralProfileSpace:        space,
		GeneralTierFlag:            tier,
		GeneralProfileIdc:          idc,
		GeneralConstraintIndicator: constraints,
		GeneralLevelIdc:            level,
		Reserved1:                  0xF,
		MinSpatialSegmentationIdc:  0,
		Reserved2:                  0x3F,
		Reserved3:                  0x3F,
		ChromaFormatIdc:            1,
		Reserved4:                  0x1F,
		Reserved5:                  0x1F,
		LengthSizeMinusOne:         3,
	}
	for j := range 32 {
		c.GeneralProfileCompatibility[j] = compat>>(31-j)&1 == 1
	}
	return c
}

func TestHEVCCodec(t *testing.T) {
	for _, tc := range []struct {
		entry string
		c     *mp4.HvcC
		want  string
	}{
		// Examples of ISO/IEC 14496-15 E.3 and Apple's HLS authoring specification.
		{"hev1", hvcC(0, false, 1, 0x60000000, [6]byte{0xB0}, 93), "hev1.1.6.L93.B0"},
		{"hvc1", hvcC(0, false, 2, 0x20000000, [6]byte{0xB0}, 120), "hvc1.2.4.L120.B0"},
		{"hev1", hvcC(1, true, 4, 0x82000000, [6]byte{0xB0, 0x23}, 120), "hev1.A4.41.H120.B0.23"},
		{"hvc1", hvcC(0, false, 1, 0x60000000, [6]byte{0x90}, 93), "hvc1.1.6.L93.90"},                // x265
		{"hvc1", hvcC(0, false, 1, 0x60000000, [6]byte{}, 93), "hvc1.1.6.L93"},                       // no constraint bytes
		{"hvc1", hvcC(0, false, 1, 0x60000000, [6]byte{0x90, 0, 0x01}, 93), "hvc1.1.6.L93.90.00.01"}, // inner zero kept
		{"hvc1", hvcC(0, false, 1, 0x60000000, [6]byte{0, 0, 0, 0, 0, 0x01}, 93), "hvc1.1.6.L93.00.00.00.00.00.01"},
		{"hvc1", hvcC(2, true, 31, 0xFFFFFFFF, [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, 255), "hvc1.B31.FFFFFFFF.H255.FF.FF.FF.FF.FF.FF"},
		{"hvc1", hvcC(3, false, 0, 0, [6]byte{}, 0), "hvc1.C0.0.L0"},
		{"hvc1", hvcC(0, false, 4, 0x08000000, [6]byte{0x98}, 153), "hvc1.4.10.L153.98"}, // Range extensions: flag 4
	} {
		if got := hevcCodec(tc.entry, tc.c); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
		init := initSegment(t, trak(1, "vide", 0, 0, visual(tc.entry, 16, 16, bx(tc.c))))
		if got := buildCodec(t, init); got != tc.want {
			t.Errorf("Build: got %s, want %s", got, tc.want)
		}
	}
}

func TestAV1Codec(t *testing.T) {
	base := func(profile, level, tier, high, twelve uint8) *mp4.Av1C {
		return &mp4.Av1C{Marker: 1, Version: 1, SeqProfile: profile, SeqLevelIdx0: level, SeqTier0: tier,
			HighBitdepth: high, TwelveBit: twelve, ChromaSubsamplingX: 1, ChromaSubsamplingY: 1}
	}
	nclx := func(cp, tc, mc uint16, full bool) *mp4.Colr {
		return &mp4.Colr{ColourType: [4]byte{'n', 'c', 'l', 'x'}, ColourPrimaries: cp, TransferCharacteristics: tc, MatrixCoefficients: mc, FullRangeFlag: full}
	}
	with := func(c *mp4.Av1C, f func(*mp4.Av1C)) *mp4.Av1C { f(c); return c }
	for _, tc := range []struct {
		c    *mp4.Av1C
		colr *mp4.Colr
		want string
	}{
		{base(0, 8, 0, 0, 0), nil, "av01.0.08M.08"},
		{base(0, 4, 0, 1, 0), nil, "av01.0.04M.10"},
		{base(1, 13, 1, 1, 0), nil, "av01.1.13H.10"},
		{base(2, 19, 1, 1, 1), nil, "av01.2.19H.12"},
		{base(2, 19, 0, 1, 0), nil, "av01.2.19M.10"},
		{base(0, 31, 0, 0, 1), nil, "av01.0.31M.08"}, // twelve_bit only counts in profile 2
		// Optional fields: written when any differs from the defaults.
		{base(0, 8, 0, 1, 0), nclx(9, 16, 9, false), "av01.0.08M.10.0.110.09.16.09.0"},
		{base(0, 8, 0, 0, 0), nclx(1, 1, 1, true), "av01.0.08M.08.0.110.01.01.01.1"},
		{base(0, 8, 0, 0, 0), nclx(1, 1, 1, false), "av01.0.08M.08"},
		{base(0, 8, 0, 0, 0), nclx(2, 2, 2, false), "av01.0.08M.08"}, // unspecified
		{base(0, 8, 0, 0, 0), &mp4.Colr{ColourType: [4]byte{'r', 'I', 'C', 'C'}}, "av01.0.08M.08"},
		{with(base(0, 8, 0, 0, 0), func(c *mp4.Av1C) { c.Monochrome = 1 }), nil, "av01.0.08M.08.1.110.01.01.01.0"},
		{with(base(1, 8, 0, 0, 0), func(c *mp4.Av1C) { c.ChromaSubsamplingX, c.ChromaSubsamplingY = 0, 0 }), nil, "av01.1.08M.08.0.000.01.01.01.0"},
		{with(base(0, 8, 0, 0, 0), func(c *mp4.Av1C) { c.ChromaSamplePosition = 2 }), nil, "av01.0.08M.08.0.112.01.01.01.0"},
		{with(base(2, 8, 0, 0, 0), func(c *mp4.Av1C) { c.ChromaSubsamplingY, c.ChromaSamplePosition = 0, 1 }), nil, "av01.2.08M.08.0.100.01.01.01.0"},
	} {
		if got := av1Codec(tc.c, tc.colr); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
		kids := []node{bx(tc.c)}
		if tc.colr != nil && string(tc.colr.ColourType[:]) == "nclx" {
			kids = append(kids, bx(tc.colr))
		}
		init := initSegment(t, trak(1, "vide", 0, 0, visual("av01", 16, 16, kids...)))
		if got := buildCodec(t, init); got != tc.want {
			t.Errorf("Build: got %s, want %s", got, tc.want)
		}
	}
}

func TestVP9Codec(t *testing.T) {
	vpcc := func(version, profile, level, depth, chroma, cp, tc, mc, full uint8) *mp4.VpcC {
		return &mp4.VpcC{FullBox: mp4.FullBox{Version: version}, Profile: profile, Level: level, BitDepth: depth,
			ChromaSubsampling: chroma, ColourPrimaries: cp, TransferCharacteristics: tc, MatrixCoefficients: mc, VideoFullRangeFlag: full}
	}
	for _, tc := range []struct {
		c    *mp4.VpcC
		want string
	}{
		{vpcc(1, 0, 31, 8, 1, 1, 1, 1, 0), "vp09.00.31.08"},
		{vpcc(1, 0, 10, 8, 1, 2, 2, 2, 0), "vp09.00.10.08"}, // unspecified colour
		{vpcc(1, 2, 41, 10, 1, 1, 1, 1, 0), "vp09.02.41.10"},
		{vpcc(1, 2, 50, 10, 1, 9, 16, 9, 0), "vp09.02.50.10.01.09.16.09.00"},
		{vpcc(1, 1, 21, 8, 3, 1, 1, 1, 0), "vp09.01.21.08.03.01.01.01.00"},
		{vpcc(1, 0, 31, 8, 0, 1, 1, 1, 0), "vp09.00.31.08.00.01.01.01.00"}, // 4:2:0 vertical
		{vpcc(1, 0, 31, 8, 1, 1, 1, 1, 1), "vp09.00.31.08.01.01.01.01.01"},
		{vpcc(0, 1, 20, 8, 3, 5, 5, 5, 1), "vp09.01.20.08"}, // version 0: short form only
	} {
		if got := vp9Codec(tc.c); got != tc.want {
			t.Errorf("got %s, want %s", got, tc.want)
		}
		init := initSegment(t, trak(1, "vide", 0, 0, visual("vp09", 16, 16, bx(tc.c))))
		if got := buildCodec(t, init); got != tc.want {
			t.Errorf("Build: got %s, want %s", got, tc.want)
		}
	}
}

func TestMP4ACodec(t *testing.T) {
	for _, tc := range []struct {
		name string
		oti  byte
		dsi  []byte
		want string
		rate uint32
		err  string
	}{
		{"AAC LC", 0x40, []byte{0x12, 0x10}, "mp4a.40.2", 44100, ""},
		{"AAC Main", 0x40, []byte{0x0B, 0x90}, "mp4a.40.1", 22050, ""},
		{"HE-AAC", 0x40, []byte{0x2B, 0x92, 0x08, 0x00}, "mp4a.40.5", 22050, ""},
		{"HE-AAC v2", 0x40, []byte{0xEB, 0x09, 0x88, 0x00}, "mp4a.40.29", 24000, ""},
		{"xHE-AAC (escape)", 0x40, []byte{0xF9, 0x46, 0x20}, "mp4a.40.42", 48000, ""}, // 31, then 6 bits: 32+10
		{"explicit rate", 0x40, []byte{0x17, 0x80, 0x3E, 0x80, 0x10}, "mp4a.40.2", 32000, ""},
		{"rate cut off", 0x40, []byte{0x17}, "mp4a.40.2", 0, ""},
		{"MP3", 0x6B, nil, "mp4a.6B", 0, ""},
		{"MPEG-2 AAC LC", 0x67, []byte{0x12, 0x10}, "mp4a.67", 0, ""},
		{"no DSI", 0x40, nil, "", 0, "without a DecoderSpecificInfo"},
		{"object type 0", 0x40, []byte{0x00, 0x10}, "", 0, "audio object type 0"},
		{"truncated escape", 0x40, []byte{0xF8}, "", 0, "truncated"},
	} {
		esds := esdsBox(tc.oti, 0, 0, tc.dsi).box.(*mp4.Esds)
		info, err := parseESDS(esds)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if got := info.codec(); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
		if info.SampleRate != tc.rate {
			t.Errorf("%s: rate %d, want %d", tc.name, info.SampleRate, tc.rate)
		}
		init := initSegment(t, trak(1, "soun", 0, 0, audio("mp4a", 2, 44100, esdsBox(tc.oti, 0, 0, tc.dsi))))
		if got := buildCodec(t, init); got != tc.want {
			t.Errorf("%s: Build: got %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestAC3Channels(t *testing.T) {
	want := []uint32{2, 1, 2, 3, 3, 4, 4, 5}
	for acmod, n := range want {
		if got := ac3Channels(uint8(acmod), 0); got != n {
			t.Errorf("acmod %d: %d, want %d", acmod, got, n)
		}
		if got := ac3Channels(uint8(acmod), 1); got != n+1 {
			t.Errorf("acmod %d + LFE: %d, want %d", acmod, got, n+1)
		}
	}
}
