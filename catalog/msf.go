package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	mp4 "github.com/abema/go-mp4"
)

// The MSF catalog.
//
// draft-ietf-moq-msf (MOQT Streaming Format) describes a broadcast with a
// catalog on a track named "catalog" (MSFTrack); draft-ietf-moq-cmsf adds
// the "cmaf" packaging, whose objects are CMAF fragments (moof and mdat)
// and whose tracks carry their init segment in the catalog. Players of the
// wider ecosystem read it: shaka-player, Eyevinn's warp-player and
// @moq/watch (catalog-format=msf).
//
// Two revisions are deployed and both parse: draft-00, whose version is
// the number 1 and whose tracks carry initData (base64) inline, and
// draft-01, whose version is the string "draft-01" and whose tracks name
// an entry of the root initDataList with initRef. EncodeMSF writes
// draft-01. A delta update (draft-00's deltaUpdate true, draft-01's
// deltaUpdate operations) is refused: moq-pub publishes whole catalogs
// only.

// MSFTrack is the name of the track that carries the MSF catalog
// (draft-ietf-moq-msf: case-sensitive "catalog"). moq-rs's catalog is on
// ".catalog" (see Catalog); moq-pub publishes both.
const MSFTrack = "catalog"

// MSFVersion is the version EncodeMSF writes (draft-ietf-moq-msf-01).
const MSFVersion = "draft-01"

// MSF packaging values (draft-ietf-moq-msf, draft-ietf-moq-cmsf).
const (
	MSFPackagingCMAF          = "cmaf"
	MSFPackagingLOC           = "loc"
	MSFPackagingMediaTimeline = "mediatimeline"
	MSFPackagingEventTimeline = "eventtimeline"
)

// MSF roles moq-pub writes (draft-ietf-moq-msf, Reserved track roles).
const (
	MSFRoleVideo = "video"
	MSFRoleAudio = "audio"
)

// maxMSFSize bounds a catalog ParseMSF reads: a catalog carries init
// segments, a few kilobytes each.
const maxMSFSize = 4 << 20

// ErrMSF wraps every error of ParseMSF.
var ErrMSF = errors.New("invalid MSF catalog")

// MSF is an MSF catalog, independent of the draft revision it was read
// from: init data is resolved to each track's InitData.
type MSF struct {
	// Version is the version read ("draft-01", or "1" for draft-00);
	// EncodeMSF writes MSFVersion whatever it holds.
	Version string
	// GeneratedAt is the wall-clock time the catalog was made, in
	// milliseconds since the Unix epoch; nil is absent.
	GeneratedAt *uint64
	// IsComplete says that a live broadcast has ended for good.
	IsComplete bool
	Tracks     []MSFTrackInfo
}

// MSFTrackInfo describes one track of an MSF catalog. Optional fields are
// pointers or empty strings: nil or "" is absent.
type MSFTrackInfo struct {
	Namespace     *string // absent: the catalog track's namespace
	Name          string
	Packaging     string // MSFPackagingCMAF for moq-pub's tracks
	IsLive        bool
	Role          string // MSFRoleVideo, MSFRoleAudio, ...
	Label         string
	RenderGroup   *uint64
	AltGroup      *uint64
	InitData      []byte // the track's init segment (CMAF); nil is none
	Depends       []string
	TemporalID    *uint64
	SpatialID     *uint64
	Codec         string // WebCodecs codec string
	MimeType      string
	Framerate     *float64
	Timescale     *uint64
	Bitrate       *uint64
	Width         *uint64
	Height        *uint64
	Samplerate    *uint64
	ChannelConfig string
	DisplayWidth  *uint64
	DisplayHeight *uint64
	Lang          string
	TargetLatency *uint64 // milliseconds
	TrackDuration *uint64 // milliseconds
}

// Track returns the track named name.
func (m *MSF) Track(name string) (MSFTrackInfo, bool) {
	for _, t := range m.Tracks {
		if t.Name == name {
			return t, true
		}
	}
	return MSFTrackInfo{}, false
}

// msfJSON is the draft-01 root as it is written.
type msfJSON struct {
	Version      string         `json:"version"`
	GeneratedAt  *uint64        `json:"generatedAt,omitempty"`
	IsComplete   bool           `json:"isComplete,omitempty"`
	Tracks       []msfTrackJSON `json:"tracks"`
	InitDataList []msfInitData  `json:"initDataList,omitempty"`
}

type msfInitData struct {
	ID   string `json:"id"`
	Type string `json:"type"`
	Data string `json:"data"`
}

type msfTrackJSON struct {
	Namespace     *string  `json:"namespace,omitempty"`
	Name          string   `json:"name"`
	Packaging     string   `json:"packaging"`
	IsLive        bool     `json:"isLive"`
	Role          string   `json:"role,omitempty"`
	Label         string   `json:"label,omitempty"`
	RenderGroup   *uint64  `json:"renderGroup,omitempty"`
	AltGroup      *uint64  `json:"altGroup,omitempty"`
	InitRef       string   `json:"initRef,omitempty"`
	Depends       []string `json:"depends,omitempty"`
	TemporalID    *uint64  `json:"temporalId,omitempty"`
	SpatialID     *uint64  `json:"spatialId,omitempty"`
	Codec         string   `json:"codec,omitempty"`
	MimeType      string   `json:"mimeType,omitempty"`
	Framerate     *float64 `json:"framerate,omitempty"`
	Timescale     *uint64  `json:"timescale,omitempty"`
	Bitrate       *uint64  `json:"bitrate,omitempty"`
	Width         *uint64  `json:"width,omitempty"`
	Height        *uint64  `json:"height,omitempty"`
	Samplerate    *uint64  `json:"samplerate,omitempty"`
	ChannelConfig string   `json:"channelConfig,omitempty"`
	DisplayWidth  *uint64  `json:"displayWidth,omitempty"`
	DisplayHeight *uint64  `json:"displayHeight,omitempty"`
	Lang          string   `json:"lang,omitempty"`
	TargetLatency *uint64  `json:"targetLatency,omitempty"`
	TrackDuration *uint64  `json:"trackDuration,omitempty"`

	// Read only: draft-00's inline init data.
	InitData string `json:"initData,omitempty"`
}

// EncodeMSF writes m as a draft-01 catalog: compact JSON, fields in the
// draft's order, each distinct init segment once in initDataList (ids "0",
// "1", ... in track order) and referenced by the tracks' initRef.
func (m *MSF) EncodeMSF() ([]byte, error) {
	out := msfJSON{Version: MSFVersion, GeneratedAt: m.GeneratedAt, IsComplete: m.IsComplete, Tracks: []msfTrackJSON{}}
	seen := map[string]bool{}
	refs := map[string]string{} // init data -> id
	for i, t := range m.Tracks {
		if t.Name == "" {
			return nil, fmt.Errorf("catalog: MSF track %d has no name", i)
		}
		if seen[nsKey(t.Namespace)+"\x00"+t.Name] {
			return nil, fmt.Errorf("catalog: MSF track %q appears twice", t.Name)
		}
		seen[nsKey(t.Namespace)+"\x00"+t.Name] = true
		if t.Packaging == "" {
			return nil, fmt.Errorf("catalog: MSF track %q has no packaging", t.Name)
		}
		jt := msfTrackJSON{
			Namespace: t.Namespace, Name: t.Name, Packaging: t.Packaging, IsLive: t.IsLive, Role: t.Role, Label: t.Label,
			RenderGroup: t.RenderGroup, AltGroup: t.AltGroup, Depends: t.Depends, TemporalID: t.TemporalID, SpatialID: t.SpatialID,
			Codec: t.Codec, MimeType: t.MimeType, Framerate: t.Framerate, Timescale: t.Timescale, Bitrate: t.Bitrate,
			Width: t.Width, Height: t.Height, Samplerate: t.Samplerate, ChannelConfig: t.ChannelConfig,
			DisplayWidth: t.DisplayWidth, DisplayHeight: t.DisplayHeight, Lang: t.Lang,
			TargetLatency: t.TargetLatency, TrackDuration: t.TrackDuration,
		}
		if t.InitData != nil {
			key := string(t.InitData)
			id, ok := refs[key]
			if !ok {
				id = strconv.Itoa(len(out.InitDataList))
				refs[key] = id
				out.InitDataList = append(out.InitDataList, msfInitData{ID: id, Type: "inline", Data: base64.StdEncoding.EncodeToString(t.InitData)})
			}
			jt.InitRef = id
		}
		out.Tracks = append(out.Tracks, jt)
	}
	return json.Marshal(out)
}

func nsKey(ns *string) string {
	if ns == nil {
		return "\x01"
	}
	return *ns
}

// ParseMSF reads an MSF catalog of draft-00 or draft-01. Unknown fields are
// ignored (the draft says a parser must); an unknown version, a delta
// update, a missing version, tracks, track name or packaging, a track name
// given twice in a namespace, an initRef that names no initDataList entry,
// and init data that is not base64 are errors wrapping ErrMSF.
func ParseMSF(b []byte) (*MSF, error) {
	if len(b) > maxMSFSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrMSF, len(b), maxMSFSize)
	}
	var root struct {
		Version      json.RawMessage `json:"version"`
		GeneratedAt  *uint64         `json:"generatedAt"`
		IsComplete   bool            `json:"isComplete"`
		DeltaUpdate  json.RawMessage `json:"deltaUpdate"`
		Tracks       *[]msfTrackJSON `json:"tracks"`
		InitDataList []msfInitData   `json:"initDataList"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&root); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMSF, err)
	}
	// Token, not More: More is false before a stray '}' or ']'.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the JSON object", ErrMSF)
	}
	m := &MSF{GeneratedAt: root.GeneratedAt, IsComplete: root.IsComplete}
	draft00 := false
	switch v := string(root.Version); v {
	case "":
		return nil, fmt.Errorf("%w: no version", ErrMSF)
	case "1":
		m.Version, draft00 = "1", true
	case strconv.Quote(MSFVersion):
		m.Version = MSFVersion
	default:
		return nil, fmt.Errorf("%w: version %s is not one this parser knows (1 or %q)", ErrMSF, v, MSFVersion)
	}
	if d := string(root.DeltaUpdate); d != "" && d != "false" && d != "null" {
		return nil, fmt.Errorf("%w: a delta update; only independent catalogs are supported", ErrMSF)
	}
	if root.Tracks == nil {
		return nil, fmt.Errorf("%w: no tracks", ErrMSF)
	}
	inits := map[string][]byte{}
	for _, e := range root.InitDataList {
		if e.Type != "inline" {
			return nil, fmt.Errorf("%w: initDataList entry %q has type %q, not inline", ErrMSF, e.ID, e.Type)
		}
		d, err := decodeBase64(e.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: initDataList entry %q: %v", ErrMSF, e.ID, err)
		}
		if _, dup := inits[e.ID]; dup {
			return nil, fmt.Errorf("%w: initDataList has id %q twice", ErrMSF, e.ID)
		}
		inits[e.ID] = d
	}
	seen := map[string]bool{}
	for i, jt := range *root.Tracks {
		if jt.Name == "" {
			return nil, fmt.Errorf("%w: track %d has no name", ErrMSF, i)
		}
		if jt.Packaging == "" {
			return nil, fmt.Errorf("%w: track %q has no packaging", ErrMSF, jt.Name)
		}
		key := nsKey(jt.Namespace) + "\x00" + jt.Name
		if seen[key] {
			return nil, fmt.Errorf("%w: track %q appears twice", ErrMSF, jt.Name)
		}
		seen[key] = true
		t := MSFTrackInfo{
			Namespace: jt.Namespace, Name: jt.Name, Packaging: jt.Packaging, IsLive: jt.IsLive, Role: jt.Role, Label: jt.Label,
			RenderGroup: jt.RenderGroup, AltGroup: jt.AltGroup, Depends: jt.Depends, TemporalID: jt.TemporalID, SpatialID: jt.SpatialID,
			Codec: jt.Codec, MimeType: jt.MimeType, Framerate: jt.Framerate, Timescale: jt.Timescale, Bitrate: jt.Bitrate,
			Width: jt.Width, Height: jt.Height, Samplerate: jt.Samplerate, ChannelConfig: jt.ChannelConfig,
			DisplayWidth: jt.DisplayWidth, DisplayHeight: jt.DisplayHeight, Lang: jt.Lang,
			TargetLatency: jt.TargetLatency, TrackDuration: jt.TrackDuration,
		}
		if len(t.Depends) == 0 {
			t.Depends = nil // [] and absent are one thing
		}
		switch {
		case jt.InitRef != "":
			d, ok := inits[jt.InitRef]
			if !ok {
				return nil, fmt.Errorf("%w: track %q: initRef %q names no initDataList entry", ErrMSF, jt.Name, jt.InitRef)
			}
			t.InitData = d
		case jt.InitData != "" && draft00:
			d, err := decodeBase64(jt.InitData)
			if err != nil {
				return nil, fmt.Errorf("%w: track %q: initData: %v", ErrMSF, jt.Name, err)
			}
			t.InitData = d
		}
		m.Tracks = append(m.Tracks, t)
	}
	return m, nil
}

// decodeBase64 reads standard base64 (RFC 4648 §4), padded or not.
func decodeBase64(s string) ([]byte, error) {
	if d, err := base64.StdEncoding.DecodeString(s); err == nil {
		return d, nil
	}
	d, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not base64")
	}
	return d, nil
}

// MSFOptions are what BuildMSF cannot learn from the init segment.
type MSFOptions struct {
	// Framerate and Bitrate are advertised on every video track when
	// non-zero (moq-pub's --fps and --bitrate).
	Framerate uint64
	Bitrate   uint32
	// TrackInit, when set, gives each track's own init segment (a moov
	// with that trak only), which MSE-based players need; nil gives every
	// track the whole init segment.
	TrackInit func(trackID uint32) ([]byte, error)
}

// BuildMSF derives the MSF catalog of moq-pub's broadcast from an fMP4 init
// segment, with the same tracks and media fields as Build: one track per
// trak, named "{track_ID}.m4s", packaging cmaf, live, render group 1, role
// video or audio, mimeType video/mp4 or audio/mp4, the codec and the
// picture or sound parameters, the media timescale (mdhd), and the init
// segment (see MSFOptions.TrackInit). Namespaces are left out: the tracks
// are in the catalog track's namespace. Errors are Build's.
func BuildMSF(init []byte, opts MSFOptions) (*MSF, error) {
	c, err := Build(init, Options{Framerate: opts.Framerate, Bitrate: opts.Bitrate})
	if err != nil {
		return nil, err
	}
	timescales, err := mediaTimescales(init)
	if err != nil {
		return nil, err
	}
	m := &MSF{Version: MSFVersion}
	for i, t := range c.Tracks {
		p := t.SelectionParams
		mt := MSFTrackInfo{Name: t.Name, Packaging: MSFPackagingCMAF, IsLive: true, RenderGroup: new(uint64(1)), InitData: init}
		if p.Codec != nil {
			mt.Codec = *p.Codec
		}
		switch {
		case p.Width != nil || p.Height != nil:
			mt.Role, mt.MimeType = MSFRoleVideo, "video/mp4"
		case p.Samplerate != nil:
			mt.Role, mt.MimeType = MSFRoleAudio, "audio/mp4"
		}
		if i < len(timescales) && timescales[i] > 0 {
			mt.Timescale = new(uint64(timescales[i]))
		}
		mt.Width, mt.Height, mt.Samplerate = widen(p.Width), widen(p.Height), widen(p.Samplerate)
		mt.DisplayWidth, mt.DisplayHeight = widen(p.DisplayWidth), widen(p.DisplayHeight)
		if p.Framerate != nil {
			mt.Framerate = new(float64(*p.Framerate))
		}
		if p.Bitrate != nil {
			mt.Bitrate = new(uint64(*p.Bitrate))
		}
		if p.ChannelConfig != nil {
			mt.ChannelConfig = *p.ChannelConfig
		}
		if p.Lang != nil {
			mt.Lang = *p.Lang
		}
		if opts.TrackInit != nil {
			id, err := strconv.ParseUint(t.Name[:len(t.Name)-len(".m4s")], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("catalog: track %q: %w", t.Name, err)
			}
			if mt.InitData, err = opts.TrackInit(uint32(id)); err != nil {
				return nil, fmt.Errorf("catalog: the init segment of track %d: %w", id, err)
			}
		}
		m.Tracks = append(m.Tracks, mt)
	}
	return m, nil
}

// mediaTimescales returns the mdhd timescale of each trak, in moov order
// (Build's track order); a trak without one gets none.
func mediaTimescales(init []byte) ([]uint32, error) {
	moov, err := findMoov(init)
	if err != nil {
		return nil, err
	}
	children, err := parseBoxes(moov, "moov")
	if err != nil {
		return nil, err
	}
	var out []uint32
	for i, b := range children {
		if b.typ != "trak" {
			continue
		}
		where := fmt.Sprintf("moov/trak[%d]", i)
		boxes, err := parseBoxes(b.payload, where)
		if err != nil {
			return nil, err
		}
		mdia, where, err := path(boxes, where, "mdia")
		if err != nil {
			return nil, err
		}
		var ts uint32
		if hd, ok := child(mdia, "mdhd"); ok {
			var mdhd mp4.Mdhd
			if _, err := unmarshal(hd.payload, &mdhd, where+"/mdhd"); err != nil {
				return nil, err
			}
			ts = mdhd.Timescale
		}
		out = append(out, ts)
	}
	return out, nil
}

func widen[T uint16 | uint32](v *T) *uint64 {
	if v == nil {
		return nil
	}
	return new(uint64(*v))
}
