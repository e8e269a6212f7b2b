// Package catalog implements the two catalogs moq-pub publishes for a broadcast, each on a
// track of its own in the broadcast's namespace:
//
//   - track ".catalog" (catalog.go and the rest of this doc): the MoQ catalog of moq-rs (crate
//     moq-catalog 0.2.3, which cites draft-ietf-moq-catalogformat-01), which moq-rs's tools and
//     moq-sub --catalog read. Its data model, its JSON encoding byte for byte as serde_json
//     writes it, a strict decoder, and Build, which derives a catalog from an fMP4 init segment
//     the way moq-pub does. The init segment itself is on track "0.mp4" (DefaultInitTrack).
//   - track "catalog" (MSFTrack, msf.go): the MSF catalog of draft-ietf-moq-msf with the CMAF
//     packaging of draft-ietf-moq-cmsf, which the wider ecosystem's players read (shaka-player,
//     Eyevinn's warp-player, @moq/watch with catalog-format=msf) and moq-sub --msf. It carries
//     each track's init segment itself. BuildMSF, EncodeMSF (draft-01) and ParseMSF (draft-00
//     and draft-01).
//
// Both name the media tracks alike, "{track_ID}.m4s", whose objects are moof+mdat fragments.
//
// # Optional fields
//
// Every field that moq-rs declares as Option<T> is a pointer here (a nil slice for depends): nil
// means absent and is not encoded, a non-nil pointer is encoded even when it points at a zero
// value. Go 1.26's new(expr) makes them easy to fill: Bitrate: new(uint32(128000)).
// SelectionParams.Codec is the one optional field that moq-rs always writes: nil encodes as
// "codec": null.
//
// # JSON
//
// Encode writes what moq-pub publishes on the .catalog track (serde_json::to_string_pretty: two
// spaces, "key": value, no trailing newline); MarshalJSON writes the compact form
// (serde_json::to_string). Fields appear in moq-rs's declaration order. Parse accepts what
// serde_json would deserialize into moq_catalog::Root: field names are case-sensitive, unknown
// fields are ignored (a repeated unknown field too, and their values are not checked beyond JSON
// syntax), a repeated known field, missing required fields, null for a required field, numbers
// out of range or with a fraction or exponent, unknown packaging values, a key or a known
// string field with an escaped lone surrogate ("\ud800" not followed by a low surrogate's
// escape, which encoding/json would read as U+FFFD) and trailing data are errors.
package catalog

import (
	"strings"
	"unicode/utf8"
)

// Values moq-pub writes at the top of every catalog.
const (
	Version                = 1
	StreamingFormat        = 1
	StreamingFormatVersion = "0.2"
)

// Catalog is the root of a catalog (moq_catalog::Root).
type Catalog struct {
	Version                uint16            // "version"
	StreamingFormat        uint16            // "streamingFormat"
	StreamingFormatVersion string            // "streamingFormatVersion"
	SupportsDeltaUpdates   bool              // "supportsDeltaUpdates"
	CommonTrackFields      CommonTrackFields // "commonTrackFields"
	Tracks                 []Track           // "tracks"; nil encodes as []
}

// CommonTrackFields holds the fields that apply to every track that does not set them itself
// (moq_catalog::CommonTrackFields).
type CommonTrackFields struct {
	Namespace   *string    // "namespace"
	Packaging   *Packaging // "packaging"
	RenderGroup *uint16    // "renderGroup"
	AltGroup    *uint16    // "altGroup"
}

// Track describes one track of the broadcast (moq_catalog::Track).
type Track struct {
	Namespace       *string         // "namespace"
	Name            string          // "name"
	InitTrack       *string         // "initTrack"
	InitData        *string         // "initData"
	Packaging       *Packaging      // "packaging"
	RenderGroup     *uint16         // "renderGroup"
	AltGroup        *uint16         // "altGroup"
	SelectionParams SelectionParams // "selectionParams"
	TemporalID      *uint32         // "temporalId"
	SpatialID       *uint32         // "spatialId"
	Depends         []string        // "depends"; nil is absent, an empty non-nil slice encodes as []
}

// SelectionParams describes a track's media (moq_catalog::SelectionParam).
type SelectionParams struct {
	Codec         *string // "codec": RFC 6381 codecs value; always encoded, null when nil
	MimeType      *string // "mimeType"
	Framerate     *uint64 // "framerate"
	Bitrate       *uint32 // "bitrate", bits per second
	Width         *uint32 // "width"
	Height        *uint32 // "height"
	Samplerate    *uint32 // "samplerate", Hz
	ChannelConfig *string // "channelConfig": moq-pub writes the channel count, e.g. "2"
	DisplayWidth  *uint16 // "displayWidth"
	DisplayHeight *uint16 // "displayHeight"
	Lang          *string // "lang"
}

// Packaging is a track's packaging (moq_catalog::TrackPackaging). Only the two constants are valid.
type Packaging string

// The packagings moq-rs knows.
const (
	PackagingCMAF Packaging = "cmaf"
	PackagingLOC  Packaging = "loc"
)

func (p Packaging) valid() bool { return p == PackagingCMAF || p == PackagingLOC }

// HoistCommon moves the namespace, packaging, renderGroup and altGroup that all tracks share into
// the returned CommonTrackFields and clears them on the tracks. A field is hoisted only when every
// track has the same value (absent counts as a value); a field whose values differ stays on the
// tracks. With no tracks it returns the zero CommonTrackFields.
//
// moq-rs's CommonTrackFields::from_tracks clears packaging, renderGroup and altGroup on every track
// even when they differ, losing them; HoistCommon does not. For tracks that agree, as moq-pub's
// always do, both give the same result.
func HoistCommon(tracks []Track) CommonTrackFields {
	if len(tracks) == 0 {
		return CommonTrackFields{}
	}
	first := &tracks[0]
	ns, pkg, rg, ag := true, true, true, true
	for i := range tracks[1:] {
		t := &tracks[i+1]
		ns = ns && eqPtr(t.Namespace, first.Namespace)
		pkg = pkg && eqPtr(t.Packaging, first.Packaging)
		rg = rg && eqPtr(t.RenderGroup, first.RenderGroup)
		ag = ag && eqPtr(t.AltGroup, first.AltGroup)
	}
	var c CommonTrackFields
	if ns {
		c.Namespace = first.Namespace
	}
	if pkg {
		c.Packaging = first.Packaging
	}
	if rg {
		c.RenderGroup = first.RenderGroup
	}
	if ag {
		c.AltGroup = first.AltGroup
	}
	for i := range tracks {
		t := &tracks[i]
		if ns {
			t.Namespace = nil
		}
		if pkg {
			t.Packaging = nil
		}
		if rg {
			t.RenderGroup = nil
		}
		if ag {
			t.AltGroup = nil
		}
	}
	return c
}

// WithCommon returns a copy of t in which each of namespace, packaging, renderGroup and altGroup
// that t does not set is taken from c (moq-rs's Track::with_common).
func (t Track) WithCommon(c CommonTrackFields) Track {
	if t.Namespace == nil {
		t.Namespace = c.Namespace
	}
	if t.Packaging == nil {
		t.Packaging = c.Packaging
	}
	if t.RenderGroup == nil {
		t.RenderGroup = c.RenderGroup
	}
	if t.AltGroup == nil {
		t.AltGroup = c.AltGroup
	}
	return t
}

// Track returns the track with the given name, with the common fields applied (see WithCommon),
// and whether it exists.
func (c *Catalog) Track(name string) (Track, bool) {
	for _, t := range c.Tracks {
		if t.Name == name {
			return t.WithCommon(c.CommonTrackFields), true
		}
	}
	return Track{}, false
}

// NamespacePath renders a track namespace (its tuple fields) the way moq-rs's
// TrackNamespace::to_utf8_path does and moq-pub writes it into the catalog: each field preceded by
// "/", invalid UTF-8 replaced by U+FFFD. ["bbb"] gives "/bbb", ["a", "b"] gives "/a/b", an empty
// namespace gives "".
func NamespacePath(fields []string) string {
	var b strings.Builder
	for _, f := range fields {
		b.WriteByte('/')
		b.WriteString(lossyUTF8(f))
	}
	return b.String()
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// lossyUTF8 replaces each maximal ill-formed subsequence of s with U+FFFD, as Rust's
// String::from_utf8_lossy does (Unicode's "U+FFFD substitution of maximal subparts").
func lossyUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			b.WriteByte(s[i])
			i++
			continue
		}
		if r, n := utf8.DecodeRuneInString(s[i:]); r != utf8.RuneError || n > 1 {
			b.WriteString(s[i : i+n])
			i += n
			continue
		}
		b.WriteRune(utf8.RuneError)
		i += maximalSubpart(s[i:])
	}
	return b.String()
}

// maximalSubpart returns the length of the ill-formed sequence at the start of s: the lead byte
// plus the continuation bytes that still form a valid prefix of a UTF-8 sequence.
func maximalSubpart(s string) int {
	c := s[0]
	var need int
	lo, hi := byte(0x80), byte(0xBF) // range of the first continuation byte
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(s); n++ {
		if s[n] < lo || s[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}
