package fmp4

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	mp4 "github.com/abema/go-mp4"
)

// Kind is what a track carries, from its handler type.
type Kind uint8

// Track kinds.
const (
	KindOther Kind = iota
	KindVideo      // handler "vide"
	KindAudio      // handler "soun"
	KindText       // handler "sbtl", "subt" or "text"
)

func (k Kind) String() string {
	switch k {
	case KindVideo:
		return "video"
	case KindAudio:
		return "audio"
	case KindText:
		return "text"
	}
	return "other"
}

// Track is one trak of an init segment.
type Track struct {
	ID        uint32 // tkhd track_ID
	Handler   string // hdlr handler_type, e.g. "vide"
	Kind      Kind
	Timescale uint32 // mdhd: units per second of its decode times
	// The trex defaults for its fragments (zero without a trex).
	DefaultSampleDuration uint32
	DefaultSampleFlags    uint32
}

// Init is an init segment: an optional ftyp and a moov.
type Init struct {
	// Data is the ftyp (when there is one) followed by the moov, as they
	// were read: moq-pub's init object.
	Data []byte
	// Tracks are the moov's traks in order.
	Tracks []Track
	// Fragmented reports whether the moov has an mvex box, which a
	// fragmented stream needs.
	Fragmented bool
}

// Track returns the track with the given ID.
func (in *Init) Track(id uint32) (*Track, bool) {
	for i := range in.Tracks {
		if in.Tracks[i].ID == id {
			return &in.Tracks[i], true
		}
	}
	return nil, false
}

// ParseInit parses an init segment: top-level boxes holding an optional
// ftyp and exactly one moov (other top-level boxes are ignored, and left
// out of Init.Data).
func ParseInit(b []byte) (*Init, error) {
	top, err := children(b, "init segment")
	if err != nil {
		return nil, err
	}
	var ftyp, moov *child
	for i := range top {
		switch top[i].typ {
		case "ftyp":
			if ftyp == nil {
				ftyp = &top[i]
			}
		case "moov":
			if moov != nil {
				return nil, invalid("init segment: two moov boxes")
			}
			moov = &top[i]
		}
	}
	if moov == nil {
		return nil, invalid("init segment: no moov box")
	}
	var data []byte
	if ftyp != nil {
		data = append(data, ftyp.raw...)
	}
	data = append(data, moov.raw...)
	return parseMoov(data, moov.payload)
}

// parseMoov reads the traks and the trex defaults of a moov payload.
func parseMoov(data, moov []byte) (*Init, error) {
	boxes, err := children(moov, "moov")
	if err != nil {
		return nil, err
	}
	in := &Init{Data: data}
	for i, c := range boxes {
		if c.typ != "trak" {
			continue
		}
		t, err := parseTrak(c.payload, fmt.Sprintf("moov/trak[%d]", i))
		if err != nil {
			return nil, err
		}
		if _, dup := in.Track(t.ID); dup {
			return nil, invalid("moov: two traks with track_ID %d", t.ID)
		}
		in.Tracks = append(in.Tracks, t)
	}
	if len(in.Tracks) == 0 {
		return nil, invalid("moov: no trak")
	}
	if mvex, ok := find(boxes, "mvex"); ok {
		in.Fragmented = true
		cs, err := children(mvex.payload, "moov/mvex")
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			if c.typ != "trex" {
				continue
			}
			var trex mp4.Trex
			if err := unmarshal(c.payload, &trex, "moov/mvex/trex"); err != nil {
				return nil, err
			}
			if t, ok := in.Track(trex.TrackID); ok {
				t.DefaultSampleDuration = trex.DefaultSampleDuration
				t.DefaultSampleFlags = trex.DefaultSampleFlags
			}
		}
	}
	return in, nil
}

func parseTrak(b []byte, where string) (Track, error) {
	var t Track
	boxes, err := children(b, where)
	if err != nil {
		return t, err
	}
	th, ok := find(boxes, "tkhd")
	if !ok {
		return t, invalid("%s: no tkhd box", where)
	}
	var tkhd mp4.Tkhd
	if err := unmarshal(th.payload, &tkhd, where+"/tkhd"); err != nil {
		return t, err
	}
	if tkhd.TrackID == 0 {
		return t, invalid("%s/tkhd: track_ID 0", where)
	}
	t.ID = tkhd.TrackID
	md, ok := find(boxes, "mdia")
	if !ok {
		return t, invalid("%s: no mdia box", where)
	}
	where += "/mdia"
	mdia, err := children(md.payload, where)
	if err != nil {
		return t, err
	}
	mh, ok := find(mdia, "mdhd")
	if !ok {
		return t, invalid("%s: no mdhd box", where)
	}
	var mdhd mp4.Mdhd
	if err := unmarshal(mh.payload, &mdhd, where+"/mdhd"); err != nil {
		return t, err
	}
	if mdhd.Timescale == 0 {
		return t, invalid("%s/mdhd: timescale 0", where)
	}
	t.Timescale = mdhd.Timescale
	hd, ok := find(mdia, "hdlr")
	if !ok {
		return t, invalid("%s: no hdlr box", where)
	}
	var hdlr mp4.Hdlr
	if err := unmarshal(hd.payload, &hdlr, where+"/hdlr"); err != nil {
		return t, err
	}
	t.Handler = string(hdlr.HandlerType[:])
	switch t.Handler {
	case "vide":
		t.Kind = KindVideo
	case "soun":
		t.Kind = KindAudio
	case "sbtl", "subt", "text":
		t.Kind = KindText
	}
	return t, nil
}

// FilterInit rewrites an init segment (ftyp and moov) to hold only the
// traks whose track_ID keep accepts, and their trex boxes; everything else
// is kept as it is. At least one trak must remain.
func FilterInit(init []byte, keep func(id uint32) bool) ([]byte, error) {
	in, err := ParseInit(init)
	if err != nil {
		return nil, err
	}
	kept := 0
	for _, t := range in.Tracks {
		if keep(t.ID) {
			kept++
		}
	}
	if kept == 0 {
		return nil, invalid("init segment: no track left")
	}
	if kept == len(in.Tracks) {
		return in.Data, nil
	}
	top, err := children(in.Data, "init segment")
	if err != nil {
		return nil, err
	}
	var out []byte
	for _, c := range top {
		if c.typ != "moov" {
			out = append(out, c.raw...)
			continue
		}
		boxes, err := children(c.payload, "moov")
		if err != nil {
			return nil, err
		}
		var moov []byte
		for _, b := range boxes {
			switch b.typ {
			case "trak":
				t, err := parseTrak(b.payload, "moov/trak")
				if err != nil {
					return nil, err
				}
				if keep(t.ID) {
					moov = append(moov, b.raw...)
				}
			case "mvex":
				cs, err := children(b.payload, "moov/mvex")
				if err != nil {
					return nil, err
				}
				var mvex []byte
				for _, m := range cs {
					if m.typ == "trex" {
						var trex mp4.Trex
						if err := unmarshal(m.payload, &trex, "moov/mvex/trex"); err != nil {
							return nil, err
						}
						if !keep(trex.TrackID) {
							continue
						}
					}
					mvex = append(mvex, m.raw...)
				}
				moov = appendBox(moov, "mvex", mvex)
			default:
				moov = append(moov, b.raw...)
			}
		}
		out = appendBox(out, "moov", moov)
	}
	return out, nil
}

// String lists the tracks for logs: "1 video, 2 audio".
func (in *Init) String() string {
	var parts []string
	for _, t := range in.Tracks {
		parts = append(parts, fmt.Sprintf("%d %s", t.ID, t.Kind))
	}
	return strings.Join(parts, ", ")
}

// MergeInits joins init segments whose traks have distinct track_IDs into
// one: the ftyp and moov of the first (its mvhd and the rest), with the
// traks of the others after its own and their trex boxes in its mvex, in
// the order given. It is how one output stream gets tracks that an MSF
// catalog describes with an init segment each. A track_ID found twice, or
// an init segment that is not fragmented, is an error.
func MergeInits(inits ...[]byte) ([]byte, error) {
	if len(inits) == 0 {
		return nil, invalid("no init segment to merge")
	}
	var traks, trexs []byte
	ids := map[uint32]bool{}
	var base *Init
	for i, b := range inits {
		in, err := ParseInit(b)
		if err != nil {
			return nil, err
		}
		if !in.Fragmented {
			return nil, invalid("init segment %d: no mvex box: not fragmented", i)
		}
		for _, t := range in.Tracks {
			if ids[t.ID] {
				return nil, invalid("init segment %d: track_ID %d is in an earlier one too", i, t.ID)
			}
			ids[t.ID] = true
		}
		if i == 0 {
			base = in
			continue
		}
		top, _ := children(in.Data, "init segment")
		moov, _ := find(top, "moov")
		boxes, err := children(moov.payload, "moov")
		if err != nil {
			return nil, err
		}
		for _, c := range boxes {
			switch c.typ {
			case "trak":
				traks = append(traks, c.raw...)
			case "mvex":
				cs, err := children(c.payload, "moov/mvex")
				if err != nil {
					return nil, err
				}
				for _, m := range cs {
					if m.typ == "trex" {
						trexs = append(trexs, m.raw...)
					}
				}
			}
		}
	}
	if len(inits) == 1 {
		return base.Data, nil
	}
	top, _ := children(base.Data, "init segment")
	var out []byte
	for _, c := range top {
		if c.typ != "moov" {
			out = append(out, c.raw...)
			continue
		}
		boxes, err := children(c.payload, "moov")
		if err != nil {
			return nil, err
		}
		var moov []byte
		lastTrak := -1
		for i, b := range boxes {
			if b.typ == "trak" {
				lastTrak = i
			}
		}
		for i, b := range boxes {
			switch {
			case b.typ == "mvex":
				moov = appendBox(moov, "mvex", b.payload, trexs)
			default:
				moov = append(moov, b.raw...)
			}
			if i == lastTrak {
				moov = append(moov, traks...)
			}
		}
		out = appendBox(out, "moov", moov)
	}
	return out, nil
}

// RenumberInit returns a copy of an init segment in which track from is
// track to: its tkhd and its trex carry to. It is how moq-sub merges
// per-track init segments that all use the same track_ID (Eyevinn's
// mlmpub gives every track ID 1); the track's fragments are rewritten to
// match with RenumberFragment. Track references (tref) are not rewritten:
// CMAF tracks have none. to must not be a track of init already.
func RenumberInit(init []byte, from, to uint32) ([]byte, error) {
	in, err := ParseInit(init)
	if err != nil {
		return nil, err
	}
	if _, ok := in.Track(from); !ok {
		return nil, invalid("init segment: no track %d to renumber (it has %s)", from, in)
	}
	if from == to {
		return in.Data, nil
	}
	if _, ok := in.Track(to); ok {
		return nil, invalid("init segment: track %d cannot become track %d, which it has already", from, to)
	}
	out := bytes.Clone(in.Data)
	top, err := children(out, "init segment")
	if err != nil {
		return nil, err
	}
	moov, _ := find(top, "moov")
	boxes, err := children(moov.payload, "moov")
	if err != nil {
		return nil, err
	}
	for _, b := range boxes {
		switch b.typ {
		case "trak":
			cs, err := children(b.payload, "moov/trak")
			if err != nil {
				return nil, err
			}
			tkhd, ok := find(cs, "tkhd")
			if !ok {
				return nil, invalid("moov/trak has no tkhd")
			}
			at := 12 // version 0: creation and modification times of 4 bytes
			if len(tkhd.payload) > 0 && tkhd.payload[0] == 1 {
				at = 20
			}
			if len(tkhd.payload) < at+4 {
				return nil, invalid("moov/trak/tkhd is truncated")
			}
			if binary.BigEndian.Uint32(tkhd.payload[at:]) == from {
				binary.BigEndian.PutUint32(tkhd.payload[at:], to)
			}
		case "mvex":
			cs, err := children(b.payload, "moov/mvex")
			if err != nil {
				return nil, err
			}
			for _, m := range cs {
				if m.typ == "trex" && len(m.payload) >= 8 && binary.BigEndian.Uint32(m.payload[4:]) == from {
					binary.BigEndian.PutUint32(m.payload[4:], to)
				}
			}
		}
	}
	return out, nil
}

// RenumberFragment returns a copy of a fragment (see FragmentTrack) whose
// trafs all carry track ID to in their tfhd: the fragments of a track that
// RenumberInit renumbered.
func RenumberFragment(b []byte, to uint32) ([]byte, error) {
	if _, err := FragmentTrack(b); err != nil {
		return nil, err
	}
	out := bytes.Clone(b)
	top, _ := children(out, "fragment")
	for _, c := range top {
		if c.typ != "moof" {
			continue
		}
		boxes, _ := children(c.payload, "moof")
		for _, traf := range boxes {
			if traf.typ != "traf" {
				continue
			}
			cs, _ := children(traf.payload, "moof/traf")
			tfhd, _ := find(cs, "tfhd")
			if len(tfhd.payload) < 8 {
				return nil, invalid("moof/traf/tfhd is truncated")
			}
			binary.BigEndian.PutUint32(tfhd.payload[4:], to)
		}
	}
	return out, nil
}
