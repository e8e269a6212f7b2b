package catalog

import (
	"errors"
	"fmt"
	"strings"

	mp4 "github.com/abema/go-mp4"
)

// avcCodec returns the RFC 6381 codecs value of an H.264 track: the sample entry type ("avc1" or
// "avc3") and AVCProfileIndication, profile_compatibility and AVCLevelIndication from its avcC
// as two upper-case hex digits each, e.g. "avc1.64001F".
func avcCodec(entry string, c *mp4.AVCDecoderConfiguration) string {
	return fmt.Sprintf("%s.%02X%02X%02X", entry, c.Profile, c.ProfileCompatibility, c.Level)
}

// hevcCodec returns the codecs value of an H.265 track per ISO/IEC 14496-15 Annex E.3, from the
// sample entry type ("hvc1" or "hev1") and its hvcC:
// entry.[A|B|C]profile_idc.compatibility.{L|H}level[.constraint bytes], e.g. "hvc1.1.6.L93.B0".
// The profile space is a letter (none for 0); the 32 compatibility flags are read in reverse bit
// order and written in hex without leading zeros; the tier is L (main) or H (high), followed by
// general_level_idc in decimal; the six constraint indicator bytes are written as two hex digits
// each, trailing zero bytes left out. Hex digits are upper case.
func hevcCodec(entry string, c *mp4.HvcC) string {
	var b strings.Builder
	b.WriteString(entry)
	b.WriteByte('.')
	if c.GeneralProfileSpace > 0 {
		b.WriteByte('A' + c.GeneralProfileSpace - 1)
	}
	var compat uint32
	for j, set := range c.GeneralProfileCompatibility {
		if set {
			compat |= 1 << j // flag j is bit 31-j in the box; reversed, it is bit j
		}
	}
	tier := 'L'
	if c.GeneralTierFlag {
		tier = 'H'
	}
	fmt.Fprintf(&b, "%d.%X.%c%d", c.GeneralProfileIdc, compat, tier, c.GeneralLevelIdc)
	last := -1
	for i, v := range c.GeneralConstraintIndicator {
		if v != 0 {
			last = i
		}
	}
	for _, v := range c.GeneralConstraintIndicator[:last+1] {
		fmt.Fprintf(&b, ".%02X", v)
	}
	return b.String()
}

// av1Codec returns the codecs value of an AV1 track per the AV1 ISOBMFF binding (section
// "Codecs Parameter String"): av01.P.LLT.DD from the av1C's seq_profile, seq_level_idx_0,
// seq_tier_0 (M or H) and the bit depth. The optional fields .M.CCC.cp.tc.mc.F follow only when
// one of them differs from its default (monochrome 0, chroma 110, colour 1.1.1, studio range):
// monochrome and chroma subsampling come from the av1C, the colour description from colr (nclx)
// if the sample entry has one (nil otherwise). Colour values 2, "unspecified", count as the
// default.
func av1Codec(c *mp4.Av1C, colr *mp4.Colr) string {
	depth := 8
	if c.HighBitdepth != 0 {
		depth = 10
		if c.SeqProfile == 2 && c.TwelveBit != 0 {
			depth = 12
		}
	}
	tier := 'M'
	if c.SeqTier0 != 0 {
		tier = 'H'
	}
	s := fmt.Sprintf("av01.%d.%02d%c.%02d", c.SeqProfile, c.SeqLevelIdx0, tier, depth)

	csp := uint8(0)
	if c.ChromaSubsamplingX == 1 && c.ChromaSubsamplingY == 1 {
		csp = c.ChromaSamplePosition
	}
	cp, tc, mc, full := colour(colr)
	if c.Monochrome == 0 && c.ChromaSubsamplingX == 1 && c.ChromaSubsamplingY == 1 && csp == 0 &&
		defaultColour(cp, tc, mc, full) {
		return s
	}
	fullRange := 0
	if full {
		fullRange = 1
	}
	return s + fmt.Sprintf(".%d.%d%d%d.%02d.%02d.%02d.%d",
		c.Monochrome, c.ChromaSubsamplingX, c.ChromaSubsamplingY, csp, cp, tc, mc, fullRange)
}

// vp9Codec returns the codecs value of a VP9 track per "VP Codec ISO Media File Format Binding"
// from its vpcC: vp09.PP.LL.DD (profile, level, bit depth, two decimal digits each). The optional
// fields .CC.cp.tc.mc.FF follow only when one of them differs from its default (4:2:0 colocated,
// colour 1.1.1, studio range); colour values 2, "unspecified", count as the default. A version 0
// vpcC lays its colour fields out differently, so only the short form is written for it.
func vp9Codec(c *mp4.VpcC) string {
	s := fmt.Sprintf("vp09.%02d.%02d.%02d", c.Profile, c.Level, c.BitDepth)
	if c.GetVersion() == 0 {
		return s
	}
	cp, tc, mc := uint16(c.ColourPrimaries), uint16(c.TransferCharacteristics), uint16(c.MatrixCoefficients)
	if c.ChromaSubsampling == 1 && defaultColour(cp, tc, mc, c.VideoFullRangeFlag != 0) {
		return s
	}
	return s + fmt.Sprintf(".%02d.%02d.%02d.%02d.%02d",
		c.ChromaSubsampling, c.ColourPrimaries, c.TransferCharacteristics, c.MatrixCoefficients, c.VideoFullRangeFlag)
}

// colour returns the colour description of an nclx colr box, or the defaults (BT.709, studio
// range) without one.
func colour(c *mp4.Colr) (cp, tc, mc uint16, full bool) {
	if c == nil || string(c.ColourType[:]) != "nclx" {
		return 1, 1, 1, false
	}
	return c.ColourPrimaries, c.TransferCharacteristics, c.MatrixCoefficients, c.FullRangeFlag
}

func defaultColour(cp, tc, mc uint16, full bool) bool {
	def := func(v uint16) bool { return v == 1 || v == 2 }
	return def(cp) && def(tc) && def(mc) && !full
}

// aacInfo is what moq-pub reads from an esds box.
type aacInfo struct {
	ObjectType      uint8  // ObjectTypeIndication of the DecoderConfigDescriptor (0x40 for MPEG-4 audio)
	AudioObjectType int    // from the AudioSpecificConfig; 0 when ObjectType is not 0x40
	SampleRate      uint32 // from the AudioSpecificConfig; 0 when unknown
	MaxBitrate      uint32
	AvgBitrate      uint32
}

// codec returns the codecs value per RFC 6381 section 3.3: "mp4a.40.N" with the audio object
// type N for MPEG-4 audio (e.g. "mp4a.40.2" for AAC-LC, 5 for HE-AAC, 29 for HE-AAC v2), or
// "mp4a.OO" with the object type indication in upper-case hex for the others (e.g. "mp4a.6B" for
// MP3).
func (a aacInfo) codec() string {
	if a.ObjectType == 0x40 {
		return fmt.Sprintf("mp4a.40.%d", a.AudioObjectType)
	}
	return fmt.Sprintf("mp4a.%02X", a.ObjectType)
}

// bitrate returns the larger of the esds maximum and average bitrates, as moq-pub advertises.
func (a aacInfo) bitrate() uint32 { return max(a.MaxBitrate, a.AvgBitrate) }

// parseESDS reads the DecoderConfigDescriptor of an esds box and, for MPEG-4 audio (object type
// 0x40), the audio object type from its DecoderSpecificInfo (AudioSpecificConfig), which it
// requires.
func parseESDS(esds *mp4.Esds) (aacInfo, error) {
	var info aacInfo
	var dcd *mp4.DecoderConfigDescriptor
	var dsi []byte
	for i := range esds.Descriptors {
		d := &esds.Descriptors[i]
		switch {
		case d.Tag == mp4.DecoderConfigDescrTag && dcd == nil && d.DecoderConfigDescriptor != nil:
			dcd = d.DecoderConfigDescriptor
		case d.Tag == mp4.DecSpecificInfoTag && dcd != nil && dsi == nil:
			dsi = d.Data
		}
	}
	if dcd == nil {
		return info, errors.New("esds has no DecoderConfigDescriptor")
	}
	info.ObjectType = dcd.ObjectTypeIndication
	info.MaxBitrate, info.AvgBitrate = dcd.MaxBitrate, dcd.AvgBitrate
	if info.ObjectType != 0x40 {
		return info, nil
	}
	if len(dsi) == 0 {
		return info, errors.New("esds: object type 0x40 without a DecoderSpecificInfo")
	}
	aot, rate, err := parseAudioSpecificConfig(dsi)
	if err != nil {
		return info, err
	}
	info.AudioObjectType, info.SampleRate = aot, rate
	return info, nil
}

var aacSampleRates = [...]uint32{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// parseAudioSpecificConfig reads audioObjectType (ISO/IEC 14496-3 1.6.2.1, with the escape to
// 32+6 bits) and the sampling frequency of an AudioSpecificConfig.
func parseAudioSpecificConfig(b []byte) (aot int, rate uint32, err error) {
	r := bitReader{b: b}
	aot = int(r.bits(5))
	if aot == 31 {
		aot = 32 + int(r.bits(6))
	}
	if r.short {
		return 0, 0, errors.New("AudioSpecificConfig is truncated")
	}
	if aot == 0 {
		return 0, 0, errors.New("AudioSpecificConfig: audio object type 0")
	}
	idx := r.bits(4)
	switch {
	case idx == 0xF:
		rate = uint32(r.bits(24))
	case int(idx) < len(aacSampleRates):
		rate = aacSampleRates[idx]
	}
	if r.short {
		rate = 0 // the object type is complete, the rate is not: leave it unknown
	}
	return aot, rate, nil
}

type bitReader struct {
	b     []byte
	pos   int  // in bits
	short bool // a read went past the end
}

func (r *bitReader) bits(n int) uint64 {
	var v uint64
	for range n {
		if r.pos/8 >= len(r.b) {
			r.short = true
			return 0
		}
		v = v<<1 | uint64(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}
