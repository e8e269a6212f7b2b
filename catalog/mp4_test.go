package catalog

import (
	"errors"
	"io"
	"testing"

	mp4 "github.com/abema/go-mp4"
)

// Init segments for the tests, written with go-mp4's Writer and marshaller.

// node is a box to write: a go-mp4 box (or a raw payload) followed by its children.
type node struct {
	box  mp4.IBox // marshalled by go-mp4; nil for raw
	typ  string   // the type written in the header: overrides box's type, required for raw
	raw  []byte   // payload written after box
	kids []node
}

func bx(b mp4.IBox, kids ...node) node { return node{box: b, kids: kids} }

func raw(typ string, payload []byte, kids ...node) node {
	return node{typ: typ, raw: payload, kids: kids}
}

// as writes n under another type: go-mp4 only marshals registered types (avc3 is not).
func (n node) as(typ string) node { n.typ = typ; return n }

// seekBuffer is an in-memory io.WriteSeeker.
type seekBuffer struct {
	b   []byte
	pos int
}

func (s *seekBuffer) Write(p []byte) (int, error) {
	if end := s.pos + len(p); end > len(s.b) {
		s.b = append(s.b, make([]byte, end-len(s.b))...)
	}
	copy(s.b[s.pos:], p)
	s.pos += len(p)
	return len(p), nil
}

func (s *seekBuffer) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
		s.pos = int(off)
	case io.SeekCurrent:
		s.pos += int(off)
	case io.SeekEnd:
		s.pos = len(s.b) + int(off)
	}
	if s.pos < 0 {
		return 0, errors.New("negative position")
	}
	return int64(s.pos), nil
}

func writeBoxes(t testing.TB, nodes ...node) []byte {
	t.Helper()
	var buf seekBuffer
	w := mp4.NewWriter(&buf)
	var write func(n node)
	write = func(n node) {
		var typ mp4.BoxType
		if n.typ == "" {
			typ = n.box.GetType()
		} else {
			copy(typ[:], n.typ)
		}
		if _, err := w.StartBox(&mp4.BoxInfo{Type: typ}); err != nil {
			t.Fatal(err)
		}
		if n.box != nil {
			if _, err := mp4.Marshal(w, n.box, mp4.Context{}); err != nil {
				t.Fatalf("marshal %s: %v", typ, err)
			}
		}
		if _, err := w.Write(n.raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range n.kids {
			write(k)
		}
		if _, err := w.EndBox(); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range nodes {
		write(n)
	}
	return buf.b
}

// initSegment writes ftyp and a moov holding the traks.
func initSegment(t testing.TB, traks ...node) []byte {
	t.Helper()
	ftyp := &mp4.Ftyp{
		MajorBrand:   [4]byte{'i', 's', 'o', '6'},
		MinorVersion: 512,
		CompatibleBrands: []mp4.CompatibleBrandElem{
			{CompatibleBrand: [4]byte{'c', 'm', 'f', 'c'}},
			{CompatibleBrand: [4]byte{'i', 's', 'o', '6'}},
		},
	}
	mvex := bx(&mp4.Mvex{})
	for i := range traks {
		mvex.kids = append(mvex.kids, bx(&mp4.Trex{TrackID: uint32(i + 1), DefaultSampleDescriptionIndex: 1}))
	}
	moov := bx(&mp4.Moov{}, bx(&mp4.Mvhd{Timescale: 1000, Rate: 0x10000, Volume: 0x100, NextTrackID: uint32(len(traks) + 1)}))
	moov.kids = append(moov.kids, traks...)
	moov.kids = append(moov.kids, mvex)
	return writeBoxes(t, bx(ftyp), moov)
}

// trak writes a track with one sample entry; w and h go to tkhd (16.16).
func trak(id uint32, handler string, w, h uint32, entry node) node {
	var hdlr [4]byte
	copy(hdlr[:], handler)
	return bx(&mp4.Trak{},
		bx(&mp4.Tkhd{TrackID: id, Width: w << 16, Height: h << 16, Matrix: [9]int32{0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000}}),
		bx(&mp4.Mdia{},
			bx(&mp4.Mdhd{Timescale: 90000, Language: [3]byte{'u' - 0x60, 'n' - 0x60, 'd' - 0x60}}),
			bx(&mp4.Hdlr{HandlerType: hdlr, Name: "handler"}),
			bx(&mp4.Minf{},
				bx(&mp4.Dinf{}, bx(&mp4.Dref{EntryCount: 1}, bx(&mp4.Url{FullBox: mp4.FullBox{Flags: [3]byte{0, 0, 1}}}))),
				bx(&mp4.Stbl{},
					bx(&mp4.Stsd{EntryCount: 1}, entry),
					bx(&mp4.Stts{}), bx(&mp4.Stsc{}), bx(&mp4.Stsz{}), bx(&mp4.Stco{}),
				),
			),
		),
	)
}

func sampleEntry(typ string) mp4.SampleEntry {
	return mp4.SampleEntry{AnyTypeBox: mp4.AnyTypeBox{Type: mp4.StrToBoxType(typ)}, DataReferenceIndex: 1}
}

// visual writes a visual sample entry of the given type.
func visual(typ string, w, h uint16, kids ...node) node {
	reg := typ
	if typ == "avc3" {
		reg = "avc1" // same layout; go-mp4 does not register avc3
	}
	n := bx(&mp4.VisualSampleEntry{
		SampleEntry:     sampleEntry(reg),
		Width:           w,
		Height:          h,
		Horizresolution: 0x480000,
		Vertresolution:  0x480000,
		FrameCount:      1,
		Depth:           0x18,
		PreDefined3:     -1,
	}, kids...)
	return n.as(typ)
}

// audio writes an audio sample entry of the given type.
func audio(typ string, channels uint16, rate uint32, kids ...node) node {
	return bx(&mp4.AudioSampleEntry{
		SampleEntry:  sampleEntry(typ),
		ChannelCount: channels,
		SampleSize:   16,
		SampleRate:   rate << 16,
	}, kids...)
}

func avcC(profile, compat, level byte) node {
	return bx(&mp4.AVCDecoderConfiguration{
		AnyTypeBox:                 mp4.AnyTypeBox{Type: mp4.BoxTypeAvcC()},
		ConfigurationVersion:       1,
		Profile:                    profile,
		ProfileCompatibility:       compat,
		Level:                      level,
		Reserved:                   0x3F,
		LengthSizeMinusOne:         3,
		Reserved2:                  0x7,
		NumOfSequenceParameterSets: 1,
		SequenceParameterSets:      []mp4.AVCParameterSet{{Length: 4, NALUnit: []byte{0x67, profile, compat, level}}},
		NumOfPictureParameterSets:  1,
		PictureParameterSets:       []mp4.AVCParameterSet{{Length: 2, NALUnit: []byte{0x68, 0xEF}}},
	})
}

// esdsBox writes an esds with a DecoderConfigDescriptor and, if dsi is not nil, a
// DecoderSpecificInfo.
func esdsBox(oti byte, maxBitrate, avgBitrate uint32, dsi []byte) node {
	dsiLen := uint32(0)
	if dsi != nil {
		dsiLen = 5 + uint32(len(dsi))
	}
	descs := []mp4.Descriptor{
		{Tag: mp4.ESDescrTag, Size: 3 + 5 + 13 + dsiLen + 5 + 1, ESDescriptor: &mp4.ESDescriptor{ESID: 2}},
		{Tag: mp4.DecoderConfigDescrTag, Size: 13 + dsiLen, DecoderConfigDescriptor: &mp4.DecoderConfigDescriptor{
			ObjectTypeIndication: oti, StreamType: 5, Reserved: true, MaxBitrate: maxBitrate, AvgBitrate: avgBitrate,
		}},
	}
	if dsi != nil {
		descs = append(descs, mp4.Descriptor{Tag: mp4.DecSpecificInfoTag, Size: uint32(len(dsi)), Data: dsi})
	}
	descs = append(descs, mp4.Descriptor{Tag: mp4.SLConfigDescrTag, Size: 1, Data: []byte{2}})
	return bx(&mp4.Esds{Descriptors: descs})
}

// bbbInit is an init segment with the parameters of moq-rs's Big Buck Bunny capture: H.264 High
// level 3.1 at 1280x720, AAC-LC at 44100 Hz in stereo with a bitrate of 129403.
func bbbInit(t testing.TB) []byte {
	return initSegment(t,
		trak(1, "vide", 1280, 720, visual("avc1", 1280, 720, avcC(0x64, 0x00, 0x1F))),
		// AudioSpecificConfig 0x12 0x10: object type 2 (AAC LC), 44100 Hz, 2 channels.
		trak(2, "soun", 0, 0, audio("mp4a", 2, 44100, esdsBox(0x40, 129403, 128000, []byte{0x12, 0x10}))),
	)
}
