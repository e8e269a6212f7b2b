package fmp4

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/bits"
	"slices"

	mp4 "github.com/abema/go-mp4"
)

// Fragment is one movie fragment: a moof and the mdat after it, for one
// track.
type Fragment struct {
	TrackID uint32
	// Data is the moof followed by its mdat, as read: one MoQT object.
	Data []byte
	// Offset is the moof's offset in the stream.
	Offset int64
	// Samples is the number of samples its truns describe.
	Samples uint64
	// Keyframe reports that its first sample is a sync sample (for video,
	// a key frame: sample_is_non_sync_sample is 0 and sample_depends_on is
	// not 1, "depends on others"): the fragment is a random-access point,
	// where a decoder can start.
	Keyframe bool
	// LateSync reports that a sample after its first is a sync sample: a
	// key frame in the middle of the fragment (ffmpeg -frag_duration or
	// -frag_size without frag_keyframe), where a decoder could start but a
	// MoQT group cannot.
	LateSync bool
	// DecodeTime is the decode time of its first sample in the track's
	// timescale: the tfdt, or without one the sum of the durations of the
	// track's earlier fragments.
	DecodeTime uint64
	// HasTFDT reports whether the fragment had a tfdt.
	HasTFDT bool
	// Duration is the sum of its sample durations.
	Duration uint64
}

// moofInfo is what a moof says about its fragment.
type moofInfo struct {
	trackID    uint32
	samples    uint64
	keyframe   bool
	lateSync   bool
	decodeTime uint64
	hasTFDT    bool
	duration   uint64
}

// parseMoof reads a moof's payload. The moof must describe exactly one
// track of in, with data offsets relative to the moof (not to the file).
func parseMoof(payload []byte, in *Init, where string) (moofInfo, error) {
	var info moofInfo
	boxes, err := children(payload, where)
	if err != nil {
		return info, err
	}
	var trafs []child
	for _, c := range boxes {
		if c.typ == "traf" {
			trafs = append(trafs, c)
		}
	}
	switch len(trafs) {
	case 0:
		return info, invalid("%s has no traf", where)
	case 1:
	default:
		return info, invalid("%s has %d trafs: each fragment must carry one track (ffmpeg: -movflags +separate_moof)", where, len(trafs))
	}
	where += "/traf"
	traf, err := children(trafs[0].payload, where)
	if err != nil {
		return info, err
	}
	th, ok := find(traf, "tfhd")
	if !ok {
		return info, invalid("%s has no tfhd", where)
	}
	var tfhd mp4.Tfhd
	if err := unmarshal(th.payload, &tfhd, where+"/tfhd"); err != nil {
		return info, err
	}
	flags := tfhd.GetFlags()
	if flags&mp4.TfhdBaseDataOffsetPresent != 0 {
		return info, invalid("%s/tfhd has an explicit base data offset, a position in the input file that is wrong anywhere else: write fragments whose offsets are relative to their moof (ffmpeg: -movflags cmaf or +default_base_moof)", where)
	}
	t, ok := in.Track(tfhd.TrackID)
	if !ok {
		return info, invalid("%s is a fragment of track %d, which the moov does not have", where, tfhd.TrackID)
	}
	info.trackID = t.ID
	defDur, defFlags := t.DefaultSampleDuration, t.DefaultSampleFlags
	if flags&mp4.TfhdDefaultSampleDurationPresent != 0 {
		defDur = tfhd.DefaultSampleDuration
	}
	if flags&mp4.TfhdDefaultSampleFlagsPresent != 0 {
		defFlags = tfhd.DefaultSampleFlags
	}
	if c, ok := find(traf, "tfdt"); ok {
		var tfdt mp4.Tfdt
		if err := unmarshal(c.payload, &tfdt, where+"/tfdt"); err != nil {
			return info, err
		}
		info.hasTFDT = true
		if tfdt.GetVersion() == 1 {
			info.decodeTime = tfdt.BaseMediaDecodeTimeV1
		} else {
			info.decodeTime = uint64(tfdt.BaseMediaDecodeTimeV0)
		}
	}
	for _, c := range traf {
		if c.typ != "trun" {
			continue
		}
		r, err := parseTrun(c.payload, defDur, defFlags, where+"/trun")
		if err != nil {
			return info, err
		}
		if info.samples == 0 {
			info.keyframe = r.firstSync
		} else {
			info.lateSync = info.lateSync || r.firstSync
		}
		info.lateSync = info.lateSync || r.lateSync
		info.samples += r.samples
		info.duration += r.duration
	}
	return info, nil
}

type trunInfo struct {
	samples  uint64
	duration uint64
	// firstSync: its first sample is a sync sample; lateSync: one after
	// it is.
	firstSync, lateSync bool
}

// IsSync reports whether ISO BMFF sample flags describe a sync sample:
// sample_is_non_sync_sample is 0 and sample_depends_on is not 1.
func IsSync(flags uint32) bool {
	return flags&0x10000 == 0 && (flags>>24)&3 != 1
}

// parseTrun reads a trun payload. It is parsed here rather than with go-mp4,
// which appends one entry per declared sample even when entries have no
// fields, so that a forged sample count could exhaust memory.
func parseTrun(b []byte, defDur, defFlags uint32, where string) (trunInfo, error) {
	var r trunInfo
	if len(b) < 8 {
		return r, invalid("%s is truncated (%d bytes)", where, len(b))
	}
	flags := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	count := uint64(binary.BigEndian.Uint32(b[4:]))
	p := 8
	if flags&0x1 != 0 { // data_offset
		p += 4
	}
	first, hasFirst := defFlags, false
	if flags&0x4 != 0 { // first_sample_flags
		if len(b) < p+4 {
			return r, invalid("%s is truncated", where)
		}
		first, hasFirst = binary.BigEndian.Uint32(b[p:]), true
		p += 4
	}
	if len(b) < p {
		return r, invalid("%s is truncated", where)
	}
	entry := 4 * bits.OnesCount32(flags&0xf00)
	if entry > 0 && count > uint64(len(b)-p)/uint64(entry) {
		return r, invalid("%s declares %d samples of %d bytes, but has %d bytes for them", where, count, entry, len(b)-p)
	}
	r.samples = count
	if entry == 0 {
		r.duration = count * uint64(defDur)
		r.firstSync = count > 0 && IsSync(first)
		r.lateSync = count > 1 && IsSync(defFlags)
		return r, nil
	}
	for i := uint64(0); i < count; i++ {
		dur, sf := defDur, defFlags
		if i == 0 && hasFirst {
			sf = first
		}
		if flags&0x100 != 0 {
			dur = binary.BigEndian.Uint32(b[p:])
			p += 4
		}
		if flags&0x200 != 0 { // size
			p += 4
		}
		if flags&0x400 != 0 {
			sf = binary.BigEndian.Uint32(b[p:])
			p += 4
		}
		if flags&0x800 != 0 { // composition time offset
			p += 4
		}
		r.duration += uint64(dur)
		if i == 0 {
			r.firstSync = IsSync(sf)
		} else {
			r.lateSync = r.lateSync || IsSync(sf)
		}
	}
	return r, nil
}

// ParseFragment parses one fragment (a moof followed by its mdat, as a
// Splitter returns it or moq-pub publishes it) of a track of in. Without a
// tfdt its DecodeTime is 0.
func ParseFragment(b []byte, in *Init) (*Fragment, error) {
	top, err := children(b, "fragment")
	if err != nil {
		return nil, err
	}
	if len(top) != 2 || top[0].typ != "moof" || top[1].typ != "mdat" {
		return nil, invalid("the fragment is not one moof followed by one mdat")
	}
	info, err := parseMoof(top[0].payload, in, "moof")
	if err != nil {
		return nil, err
	}
	return &Fragment{
		TrackID: info.trackID, Data: b, Samples: info.samples, Keyframe: info.keyframe, LateSync: info.lateSync,
		DecodeTime: info.decodeTime, HasTFDT: info.hasTFDT, Duration: info.duration,
	}, nil
}

// chunkExtras are the top-level boxes a CMAF chunk or segment may carry
// beside its moof/mdat pairs (ISO/IEC 23000-19 §7.3.2.3, ISO/IEC 14496-12):
// a segment type (styp, first), indexes (sidx, ssix), producer reference
// times (prft), event messages (emsg) and padding (free, skip).
var chunkExtras = map[string]bool{
	"styp": true, "sidx": true, "ssix": true, "prft": true, "emsg": true, "free": true, "skip": true,
}

// FragmentTrack returns the track ID of a fragment and checks that it is
// one: moq-sub's check of the objects it writes. A fragment is a CMAF chunk
// or segment: one or more moof/mdat pairs, each moof followed by its mdat,
// optionally with a styp first and sidx, ssix, prft, emsg, free or skip
// boxes between or around the pairs (Red5 writes styp+moof+mdat, some
// packagers a whole GOP as several pairs). Every traf of every moof must
// be of the same track.
func FragmentTrack(b []byte) (uint32, error) {
	top, err := children(b, "fragment")
	if err != nil {
		return 0, err
	}
	var id uint32
	moofs := 0
	for i := 0; i < len(top); i++ {
		c := top[i]
		switch {
		case c.typ == "moof":
			if i+1 >= len(top) || top[i+1].typ != "mdat" {
				return 0, invalid("moof %d of the object is not followed by its mdat", moofs+1)
			}
			where := fmt.Sprintf("moof %d", moofs+1)
			tid, err := moofTrack(c.payload, where)
			if err != nil {
				return 0, err
			}
			if moofs > 0 && tid != id {
				return 0, invalid("%s is of track %d, moof 1 of track %d: an object carries one track", where, tid, id)
			}
			id = tid
			moofs++
			i++ // its mdat
		case c.typ == "mdat":
			return 0, invalid("the object has an mdat without a moof before it")
		case c.typ == "styp" && i > 0:
			return 0, invalid("the object has a styp that is not its first box")
		case !chunkExtras[c.typ]:
			return 0, invalid("the object has a %q box, which a CMAF chunk does not carry", c.typ)
		}
	}
	if moofs == 0 {
		return 0, invalid("the object is not a fragment: it has no moof")
	}
	return id, nil
}

// moofTrack returns the track of a moof's trafs, which must all be of one
// track.
func moofTrack(payload []byte, where string) (uint32, error) {
	boxes, err := children(payload, where)
	if err != nil {
		return 0, err
	}
	var id uint32
	n := 0
	for _, c := range boxes {
		if c.typ != "traf" {
			continue
		}
		traf, err := children(c.payload, where+"/traf")
		if err != nil {
			return 0, err
		}
		th, ok := find(traf, "tfhd")
		if !ok {
			return 0, invalid("%s/traf has no tfhd", where)
		}
		var tfhd mp4.Tfhd
		if err := unmarshal(th.payload, &tfhd, where+"/traf/tfhd"); err != nil {
			return 0, err
		}
		if n > 0 && tfhd.TrackID != id {
			return 0, invalid("%s has trafs of tracks %d and %d: an object carries one track", where, id, tfhd.TrackID)
		}
		id = tfhd.TrackID
		n++
	}
	if n == 0 {
		return 0, invalid("%s has no traf", where)
	}
	return id, nil
}

// Splitter reads a fragmented MP4 stream: Init first, then Next for each
// fragment.
type Splitter struct {
	br   *BoxReader
	init *Init
	// next is the decode time after each track's last fragment.
	next map[uint32]uint64
	// Skipped, when set, is told of each top-level box the splitter
	// ignores (free, skip, styp, sidx, prft, emsg, mfra, ...).
	Skipped func(typ string, offset int64)
}

// NewSplitter reads the stream r.
func NewSplitter(r io.Reader) *Splitter {
	return &Splitter{br: NewBoxReader(r), next: map[uint32]uint64{}}
}

// SetMaxBoxSize bounds a top-level box, and a moof with its mdat; 0 means
// DefaultMaxBoxSize.
func (s *Splitter) SetMaxBoxSize(n int64) { s.br.MaxSize = n }

// remux is the advice for input that is not fragmented MP4.
const remux = "remux it, e.g. ffmpeg -i INPUT -c copy -f mp4 -movflags cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame -"

// Init reads up to and including the moov and returns the init segment.
func (s *Splitter) Init() (*Init, error) {
	if s.init != nil {
		return s.init, nil
	}
	var ftyp []byte
	for n := 0; ; n++ {
		b, err := s.br.Next()
		if err == io.EOF {
			if n == 0 {
				return nil, invalid("the input is empty")
			}
			return nil, invalid("the input ended before its moov box (the init segment)")
		}
		if err != nil {
			return nil, err
		}
		switch b.Type {
		case "ftyp":
			if ftyp == nil {
				ftyp = b.Data
			}
		case "moov":
			in, err := parseMoov(slices.Concat(ftyp, b.Data), b.Payload())
			if err != nil {
				return nil, err
			}
			if !in.Fragmented {
				return nil, invalid("the moov has no mvex box: this is a regular MP4 file, not fragmented MP4; %s", remux)
			}
			s.init = in
			return in, nil
		case "moof":
			return nil, invalid("moof at offset %d before the moov: the init segment must come first", b.Offset)
		case "mdat":
			return nil, invalid("mdat at offset %d before the moov: this is a regular MP4 file, not fragmented MP4; %s", b.Offset, remux)
		default:
			s.skipped(b)
		}
	}
}

func (s *Splitter) skipped(b Box) {
	if s.Skipped != nil {
		s.Skipped(b.Type, b.Offset)
	}
}

// Next returns the next fragment, or io.EOF at the end of the stream.
func (s *Splitter) Next() (*Fragment, error) {
	if s.init == nil {
		if _, err := s.Init(); err != nil {
			return nil, err
		}
	}
	for {
		b, err := s.br.Next()
		if err != nil {
			return nil, err
		}
		switch b.Type {
		case "moof":
			return s.fragment(b)
		case "mdat":
			return nil, invalid("mdat at offset %d has no moof before it", b.Offset)
		case "moov", "ftyp":
			return nil, invalid("a second %s at offset %d: the stream started again (two inputs joined?); moq-pub publishes one init segment", b.Type, b.Offset)
		default:
			s.skipped(b)
		}
	}
}

func (s *Splitter) fragment(moof Box) (*Fragment, error) {
	info, err := parseMoof(moof.Payload(), s.init, fmt.Sprintf("moof at offset %d", moof.Offset))
	if err != nil {
		return nil, err
	}
	mdat, buf, err := s.br.read(moof.Data)
	if err == io.EOF {
		return nil, invalid("moof at offset %d has no mdat: the input ended after it", moof.Offset)
	}
	if err != nil {
		return nil, err
	}
	if mdat.Type != "mdat" {
		return nil, invalid("moof at offset %d is followed by %q at offset %d, not by its mdat", moof.Offset, mdat.Type, mdat.Offset)
	}
	f := &Fragment{
		TrackID: info.trackID, Data: buf, Offset: moof.Offset,
		Samples: info.samples, Keyframe: info.keyframe, LateSync: info.lateSync,
		DecodeTime: info.decodeTime, HasTFDT: info.hasTFDT, Duration: info.duration,
	}
	if !f.HasTFDT {
		f.DecodeTime = s.next[f.TrackID]
	}
	s.next[f.TrackID] = f.DecodeTime + f.Duration
	return f, nil
}
