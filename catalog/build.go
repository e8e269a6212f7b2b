package catalog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"

	mp4 "github.com/abema/go-mp4"
)

// Errors that Build wraps; test for them with errors.Is.
var (
	// ErrMalformed reports an init segment that is truncated or not well-formed ISO BMFF.
	ErrMalformed = errors.New("malformed init segment")
	// ErrUnsupportedCodec reports a sample entry type Build has no codec string for.
	ErrUnsupportedCodec = errors.New("unsupported codec")
)

// DefaultInitTrack is the name of the track that carries the init segment in moq-pub.
const DefaultInitTrack = "0.mp4"

// Options are what Build cannot learn from the init segment. The zero value gives what moq-pub
// writes for a broadcast without a namespace.
type Options struct {
	// Namespace is the broadcast's track namespace, one element per tuple field. It is written as
	// NamespacePath(Namespace), so moq-pub's --name bbb, the namespace ["bbb"], gives "/bbb". Nil
	// leaves the namespace out of the catalog.
	Namespace []string

	// InitTrack names the track carrying the init segment; "" means DefaultInitTrack.
	InitTrack string

	// Framerate (frames per second) and Bitrate (bits per second), when non-zero, are advertised
	// on every video track: moq-pub's --fps and --bitrate, which moq-rs declares but never uses.
	// Zero leaves them out, which is what moq-rs publishes.
	Framerate uint64
	Bitrate   uint32
}

// Build derives the catalog moq-pub publishes from an fMP4 init segment: an ftyp box (optional)
// and a moov box; top-level boxes before the moov are skipped, anything after it is ignored.
//
// Each trak gives one track, in moov order, named "{track_ID}.m4s", with initTrack "0.mp4" (see
// Options.InitTrack), packaging cmaf, renderGroup 1 and the namespace; those shared fields are
// then hoisted into commonTrackFields (HoistCommon). selectionParams come from the first sample
// entry of the track's stsd:
//
//   - video: codec (avc1/avc3, hvc1/hev1, av01, vp09), width and height from the visual sample
//     entry or, if it has zero there, from tkhd; Options.Framerate and Options.Bitrate.
//   - audio: codec (mp4a, Opus, ac-3, ec-3, fLaC; encrypted enca/encv entries use the original
//     format named in sinf/frma), samplerate and channelConfig (the channel count as a string,
//     as moq-pub writes it) from the audio sample entry; for mp4a, bitrate is the larger of the
//     esds maximum and average bitrates when non-zero.
//
// Errors wrap ErrMalformed for input that is not a well-formed init segment and
// ErrUnsupportedCodec, naming the sample entry type, for a track Build has no codec string for.
func Build(init []byte, opts Options) (*Catalog, error) {
	moov, err := findMoov(init)
	if err != nil {
		return nil, err
	}
	children, err := parseBoxes(moov, "moov")
	if err != nil {
		return nil, err
	}
	var tmpl Track // the fields every track gets
	if opts.Namespace != nil {
		tmpl.Namespace = new(NamespacePath(opts.Namespace))
	}
	initTrack := opts.InitTrack
	if initTrack == "" {
		initTrack = DefaultInitTrack
	}
	tmpl.InitTrack = &initTrack
	tmpl.Packaging = new(PackagingCMAF)
	tmpl.RenderGroup = new(uint16(1))

	var tracks []Track
	ids := make(map[uint32]bool)
	for i, b := range children {
		if b.typ != "trak" {
			continue
		}
		id, params, err := buildTrack(b.payload, fmt.Sprintf("moov/trak[%d]", i), opts)
		if err != nil {
			return nil, err
		}
		if ids[id] {
			return nil, malformed("moov", "two traks with track_ID %d", id)
		}
		ids[id] = true
		t := tmpl
		t.Name = strconv.FormatUint(uint64(id), 10) + ".m4s"
		t.SelectionParams = params
		tracks = append(tracks, t)
	}
	if len(tracks) == 0 {
		return nil, malformed("moov", "no trak")
	}
	return &Catalog{
		Version:                Version,
		StreamingFormat:        StreamingFormat,
		StreamingFormatVersion: StreamingFormatVersion,
		SupportsDeltaUpdates:   true,
		CommonTrackFields:      HoistCommon(tracks),
		Tracks:                 tracks,
	}, nil
}

func malformed(where, format string, args ...any) error {
	return fmt.Errorf("catalog: %w: %s: %s", ErrMalformed, where, fmt.Sprintf(format, args...))
}

type box struct {
	typ     string
	payload []byte
}

// nextBox splits the box at the start of b from the rest. A size of 0 extends the box to the end
// of b.
func nextBox(b []byte, where string) (box, []byte, error) {
	if len(b) < 8 {
		return box{}, nil, malformed(where, "truncated box header (%d bytes)", len(b))
	}
	size := uint64(binary.BigEndian.Uint32(b))
	typ := string(b[4:8])
	hdr := uint64(8)
	switch size {
	case 0:
		size = uint64(len(b))
	case 1:
		if len(b) < 16 {
			return box{}, nil, malformed(where, "truncated header of box %q", typ)
		}
		size, hdr = binary.BigEndian.Uint64(b[8:]), 16
	}
	if size < hdr {
		return box{}, nil, malformed(where, "box %q has size %d, less than its header", typ, size)
	}
	if size > uint64(len(b)) {
		return box{}, nil, malformed(where, "box %q is truncated: %d bytes declared, %d present", typ, size, len(b))
	}
	return box{typ: typ, payload: b[hdr:size]}, b[size:], nil
}

// parseBoxes splits b, which boxes must fill exactly, into its boxes.
func parseBoxes(b []byte, where string) ([]box, error) {
	var boxes []box
	for len(b) > 0 {
		var bx box
		var err error
		if bx, b, err = nextBox(b, where); err != nil {
			return nil, err
		}
		boxes = append(boxes, bx)
	}
	return boxes, nil
}

func child(boxes []box, typ string) (box, bool) {
	for _, b := range boxes {
		if b.typ == typ {
			return b, true
		}
	}
	return box{}, false
}

// path descends from the children of a box through a chain of single child boxes.
func path(boxes []box, where string, types ...string) ([]box, string, error) {
	for _, typ := range types {
		b, ok := child(boxes, typ)
		if !ok {
			return nil, where, malformed(where, "no %s box", typ)
		}
		where += "/" + typ
		var err error
		if boxes, err = parseBoxes(b.payload, where); err != nil {
			return nil, where, err
		}
	}
	return boxes, where, nil
}

func findMoov(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, malformed("init segment", "empty")
	}
	for len(b) > 0 {
		bx, rest, err := nextBox(b, "init segment")
		if err != nil {
			return nil, err
		}
		if bx.typ == "moov" {
			return bx.payload, nil
		}
		b = rest
	}
	return nil, malformed("init segment", "no moov box")
}

// unmarshal decodes a box payload with go-mp4, which must not read beyond it. A panic inside
// go-mp4 becomes an error: Build promises not to panic on any input.
func unmarshal(payload []byte, dst mp4.IBox, where string) (n uint64, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = malformed(where, "%s: go-mp4 panicked: %v", dst.GetType(), r)
		}
	}()
	n, err = mp4.Unmarshal(bytes.NewReader(payload), uint64(len(payload)), dst, mp4.Context{})
	if err != nil {
		return 0, malformed(where, "%s: %v", dst.GetType(), err)
	}
	if n > uint64(len(payload)) {
		return 0, malformed(where, "%s: read past the box", dst.GetType())
	}
	return n, nil
}

func buildTrack(trak []byte, where string, opts Options) (uint32, SelectionParams, error) {
	var params SelectionParams
	boxes, err := parseBoxes(trak, where)
	if err != nil {
		return 0, params, err
	}
	th, ok := child(boxes, "tkhd")
	if !ok {
		return 0, params, malformed(where, "no tkhd box")
	}
	var tkhd mp4.Tkhd
	if _, err := unmarshal(th.payload, &tkhd, where+"/tkhd"); err != nil {
		return 0, params, err
	}
	stbl, stblWhere, err := path(boxes, where, "mdia", "minf", "stbl")
	if err != nil {
		return 0, params, err
	}
	sd, ok := child(stbl, "stsd")
	if !ok {
		return 0, params, malformed(stblWhere, "no stsd box")
	}
	where = stblWhere + "/stsd"
	var stsd mp4.Stsd
	n, err := unmarshal(sd.payload, &stsd, where)
	if err != nil {
		return 0, params, err
	}
	if stsd.EntryCount == 0 || n == uint64(len(sd.payload)) {
		return 0, params, malformed(where, "no sample entry")
	}
	entry, _, err := nextBox(sd.payload[n:], where)
	if err != nil {
		return 0, params, err
	}
	id := tkhd.TrackID
	params, err = selectionParams(entry, where+"/"+entry.typ, id, &tkhd, opts)
	return id, params, err
}

// Sample entry types by kind; encv and enca wrap an original format named in sinf/frma.
var (
	visualEntries = map[string]bool{"avc1": true, "avc3": true, "hvc1": true, "hev1": true, "av01": true, "vp09": true, "encv": true}
	audioEntries  = map[string]bool{"mp4a": true, "Opus": true, "ac-3": true, "ec-3": true, "fLaC": true, "enca": true}
)

// unsupported reports a sample entry of type typ whose codec format (typ itself, or the original
// format of an encrypted entry) Build does not know.
func unsupported(id uint32, typ, format string) error {
	if format == typ {
		return fmt.Errorf("catalog: track %d: %w: sample entry %q", id, ErrUnsupportedCodec, typ)
	}
	return fmt.Errorf("catalog: track %d: %w: sample entry %q (original format %q)", id, ErrUnsupportedCodec, typ, format)
}

func selectionParams(entry box, where string, id uint32, tkhd *mp4.Tkhd, opts Options) (SelectionParams, error) {
	var p SelectionParams
	switch {
	case visualEntries[entry.typ]:
		// go-mp4 decodes any visual sample entry as a VisualSampleEntry; the type given here
		// only selects that layout, which avc3 (unregistered in go-mp4) shares.
		vse := mp4.VisualSampleEntry{SampleEntry: mp4.SampleEntry{AnyTypeBox: mp4.AnyTypeBox{Type: mp4.BoxTypeAvc1()}}}
		n, err := unmarshal(entry.payload, &vse, where)
		if err != nil {
			return p, err
		}
		children, err := entryChildren(entry.payload[n:], where)
		if err != nil {
			return p, err
		}
		format, err := originalFormat(entry.typ, children, where)
		if err != nil {
			return p, err
		}
		codec, err := videoCodec(format, children, where, id, entry.typ)
		if err != nil {
			return p, err
		}
		p.Codec = &codec
		w, h := uint32(vse.Width), uint32(vse.Height)
		if w == 0 || h == 0 {
			w, h = tkhd.Width>>16, tkhd.Height>>16
		}
		if w != 0 && h != 0 {
			p.Width, p.Height = &w, &h
		}
		if opts.Framerate != 0 {
			p.Framerate = new(opts.Framerate)
		}
		if opts.Bitrate != 0 {
			p.Bitrate = new(opts.Bitrate)
		}
	case audioEntries[entry.typ]:
		ase := mp4.AudioSampleEntry{SampleEntry: mp4.SampleEntry{AnyTypeBox: mp4.AnyTypeBox{Type: mp4.BoxTypeMp4a()}}}
		n, err := unmarshal(entry.payload, &ase, where)
		if err != nil {
			return p, err
		}
		rate, channels := ase.SampleRate>>16, uint32(ase.ChannelCount)
		rest := entry.payload[n:]
		switch ase.EntryVersion { // QuickTime sound sample description versions
		case 1:
			if len(rest) < 16 {
				return p, malformed(where, "truncated version 1 sound sample entry")
			}
			rest = rest[16:]
		case 2:
			if len(rest) < 36 {
				return p, malformed(where, "truncated version 2 sound sample entry")
			}
			f := math.Float64frombits(binary.BigEndian.Uint64(rest[4:]))
			if f >= 1 && f < 1<<32 {
				rate = uint32(f)
			}
			channels = binary.BigEndian.Uint32(rest[12:])
			rest = rest[36:]
		}
		children, err := entryChildren(rest, where)
		if err != nil {
			return p, err
		}
		format, err := originalFormat(entry.typ, children, where)
		if err != nil {
			return p, err
		}
		var codec string
		switch format {
		case "mp4a":
			info, err := esdsInfo(children, where)
			if err != nil {
				return p, err
			}
			codec = info.codec()
			if b := info.bitrate(); b > 0 {
				p.Bitrate = &b
			}
			if rate == 0 {
				rate = info.SampleRate
			}
		case "Opus":
			codec = "opus"
		case "ac-3", "ec-3":
			// The sample entry's channel count is fixed at 2 for these (ETSI TS 102 366 F.3,
			// F.5); the real count is in dac3 or dec3.
			codec = format
			n, err := dolbyChannels(format, children, where)
			if err != nil {
				return p, err
			}
			if n != 0 {
				channels = n
			}
		case "fLaC":
			codec = "flac"
		default:
			return p, unsupported(id, entry.typ, format)
		}
		p.Codec = &codec
		if rate != 0 {
			p.Samplerate = &rate
		}
		if channels != 0 {
			p.ChannelConfig = new(strconv.FormatUint(uint64(channels), 10))
		}
	default:
		return p, unsupported(id, entry.typ, entry.typ)
	}
	return p, nil
}

// entryChildren parses the boxes after a sample entry's fixed fields. Up to 7 trailing bytes
// that cannot hold a box are ignored (QuickTime writes a 4-byte zero terminator).
func entryChildren(b []byte, where string) ([]box, error) {
	var boxes []box
	for len(b) >= 8 {
		var bx box
		var err error
		if bx, b, err = nextBox(b, where); err != nil {
			return nil, err
		}
		boxes = append(boxes, bx)
	}
	return boxes, nil
}

// originalFormat returns the codec format of a sample entry: its own type, or for an encrypted
// entry (encv, enca) the original format from sinf/frma.
func originalFormat(typ string, children []box, where string) (string, error) {
	if typ != "encv" && typ != "enca" {
		return typ, nil
	}
	sinf, ok := child(children, "sinf")
	if !ok {
		return "", malformed(where, "no sinf box")
	}
	boxes, err := parseBoxes(sinf.payload, where+"/sinf")
	if err != nil {
		return "", err
	}
	fb, ok := child(boxes, "frma")
	if !ok {
		return "", malformed(where+"/sinf", "no frma box")
	}
	var frma mp4.Frma
	if _, err := unmarshal(fb.payload, &frma, where+"/sinf/frma"); err != nil {
		return "", err
	}
	return string(frma.DataFormat[:]), nil
}

// config unmarshals the first child box of the given type into dst; it reports false if there is
// none.
func config(children []box, typ string, dst mp4.IBox, where string) (bool, error) {
	b, ok := child(children, typ)
	if !ok {
		return false, nil
	}
	_, err := unmarshal(b.payload, dst, where+"/"+typ)
	return true, err
}

func requireConfig(children []box, typ string, dst mp4.IBox, where string) error {
	ok, err := config(children, typ, dst, where)
	if err == nil && !ok {
		err = malformed(where, "no %s box", typ)
	}
	return err
}

func videoCodec(format string, children []box, where string, id uint32, typ string) (string, error) {
	switch format {
	case "avc1", "avc3":
		c := mp4.AVCDecoderConfiguration{AnyTypeBox: mp4.AnyTypeBox{Type: mp4.BoxTypeAvcC()}}
		if err := requireConfig(children, "avcC", &c, where); err != nil {
			return "", err
		}
		if c.ConfigurationVersion != 1 {
			return "", malformed(where+"/avcC", "configurationVersion %d", c.ConfigurationVersion)
		}
		return avcCodec(format, &c), nil
	case "hvc1", "hev1":
		var c mp4.HvcC
		if err := requireConfig(children, "hvcC", &c, where); err != nil {
			return "", err
		}
		return hevcCodec(format, &c), nil
	case "av01":
		var c mp4.Av1C
		if err := requireConfig(children, "av1C", &c, where); err != nil {
			return "", err
		}
		if c.Marker != 1 || c.Version != 1 {
			return "", malformed(where+"/av1C", "marker %d, version %d", c.Marker, c.Version)
		}
		var colr mp4.Colr
		ok, err := config(children, "colr", &colr, where)
		if err != nil {
			return "", err
		}
		if !ok {
			return av1Codec(&c, nil), nil
		}
		return av1Codec(&c, &colr), nil
	case "vp09":
		var c mp4.VpcC
		if err := requireConfig(children, "vpcC", &c, where); err != nil {
			return "", err
		}
		return vp9Codec(&c), nil
	}
	return "", unsupported(id, typ, format)
}

// esdsInfo reads the esds box of an mp4a entry, or of the wave box QuickTime files put it in.
func esdsInfo(children []box, where string) (aacInfo, error) {
	var esds mp4.Esds
	ok, err := config(children, "esds", &esds, where)
	if err == nil && !ok {
		if wave, found := child(children, "wave"); found {
			boxes, werr := entryChildren(wave.payload, where+"/wave")
			if werr != nil {
				return aacInfo{}, werr
			}
			ok, err = config(boxes, "esds", &esds, where+"/wave")
		}
	}
	if err != nil {
		return aacInfo{}, err
	}
	if !ok {
		return aacInfo{}, malformed(where, "no esds box")
	}
	info, err := parseESDS(&esds)
	if err != nil {
		return aacInfo{}, malformed(where+"/esds", "%v", err)
	}
	return info, nil
}

// dolbyChannels returns the channel count of an AC-3 (dac3) or E-AC-3 (dec3) track, 0 if the
// box is absent. For E-AC-3 it counts the first independent substream and the channels its
// dependent substreams add (chan_loc).
func dolbyChannels(format string, children []box, where string) (uint32, error) {
	if format == "ac-3" {
		var dac3 mp4.Dac3
		ok, err := config(children, "dac3", &dac3, where)
		if !ok || err != nil {
			return 0, err
		}
		return ac3Channels(dac3.Acmod, dac3.LfeOn), nil
	}
	b, ok := child(children, "dec3")
	if !ok {
		return 0, nil
	}
	// Read by hand: go-mp4 1.7.0 takes num_ind_sub as the number of independent substreams, but
	// it is that number minus one, so it reads none for the usual single substream.
	r := bitReader{b: b.payload}
	r.bits(13 + 3)        // data_rate, num_ind_sub
	r.bits(2 + 5 + 1 + 1) // fscod, bsid, reserved, asvc
	r.bits(3)             // bsmod
	acmod, lfeon := r.bits(3), r.bits(1)
	r.bits(3) // reserved
	numDepSub := r.bits(4)
	var chanLoc uint64
	if numDepSub > 0 {
		chanLoc = r.bits(9)
	}
	if r.short {
		return 0, malformed(where+"/dec3", "truncated")
	}
	n := ac3Channels(uint8(acmod), uint8(lfeon))
	// chan_loc bit 0 is the most significant of the 9 (TS 102 366 table F.6.1): Lc/Rc, Lrs/Rrs,
	// Cs, Ts, Lsd/Rsd, Lw/Rw, Lvh/Rvh, Cvh, LFE2.
	for i, pair := range [9]bool{true, true, false, false, true, true, true, false, false} {
		if chanLoc>>(8-i)&1 == 1 {
			n++
			if pair {
				n++
			}
		}
	}
	return n, nil
}

// ac3Channels returns the channel count of an AC-3 audio coding mode (ETSI TS 102 366 table
// 4.3) plus the LFE channel.
func ac3Channels(acmod, lfeon uint8) uint32 {
	return [8]uint32{2, 1, 2, 3, 3, 4, 4, 5}[acmod&7] + uint32(lfeon&1)
}
