package catalog

import (
	"fmt"
	"strconv"
)

// Encode returns the catalog as moq-pub publishes it on the .catalog track:
// serde_json::to_string_pretty of moq_catalog::Root (two-space indent, fields in moq-rs's order,
// absent optional fields left out, no trailing newline).
func (c *Catalog) Encode() ([]byte, error) {
	e := encoder{pretty: true}
	if err := e.catalog(c); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// MarshalJSON returns the compact encoding (serde_json::to_string), fields in moq-rs's order.
// encoding/json's Marshal passes it through its HTML-safe escaping, which rewrites '<', '>' and
// '&' inside strings as \u003c, \u003e and \u0026; call MarshalJSON or Encode directly for
// serde_json's exact bytes.
func (c Catalog) MarshalJSON() ([]byte, error) {
	var e encoder
	if err := e.catalog(&c); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// MarshalJSON returns the compact encoding of the track, as it appears inside a catalog.
func (t Track) MarshalJSON() ([]byte, error) {
	var e encoder
	if err := e.track(&t, "track"); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// MarshalJSON returns the compact encoding of the selection parameters.
func (p SelectionParams) MarshalJSON() ([]byte, error) {
	var e encoder
	e.selectionParams(&p)
	return e.buf, nil
}

// MarshalJSON returns the compact encoding of the common track fields.
func (f CommonTrackFields) MarshalJSON() ([]byte, error) {
	var e encoder
	if err := e.common(&f); err != nil {
		return nil, err
	}
	return e.buf, nil
}

// encoder writes JSON the way serde_json's CompactFormatter or PrettyFormatter does.
type encoder struct {
	buf    []byte
	pretty bool
	counts []int // values written so far in each open object or array
}

func (e *encoder) open(c byte) {
	e.buf = append(e.buf, c)
	e.counts = append(e.counts, 0)
}

func (e *encoder) close(c byte) {
	n := e.counts[len(e.counts)-1]
	e.counts = e.counts[:len(e.counts)-1]
	if e.pretty && n > 0 {
		e.newline()
	}
	e.buf = append(e.buf, c)
}

func (e *encoder) newline() {
	e.buf = append(e.buf, '\n')
	for range e.counts {
		e.buf = append(e.buf, ' ', ' ')
	}
}

// elem starts the next value of the innermost object or array.
func (e *encoder) elem() {
	i := len(e.counts) - 1
	if e.counts[i] > 0 {
		e.buf = append(e.buf, ',')
	}
	e.counts[i]++
	if e.pretty {
		e.newline()
	}
}

func (e *encoder) key(k string) {
	e.elem()
	e.str(k)
	e.buf = append(e.buf, ':')
	if e.pretty {
		e.buf = append(e.buf, ' ')
	}
}

// str writes s as a JSON string escaped like serde_json: only '"', '\\' and control characters
// are escaped (\b \t \n \f \r, others as \u00xx); '<', '>', '&', U+2028 and U+2029 are written
// as they are. Invalid UTF-8 is replaced like String::from_utf8_lossy, since a Rust String
// cannot hold it.
func (e *encoder) str(s string) {
	const hex = "0123456789abcdef"
	s = lossyUTF8(s)
	e.buf = append(e.buf, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		e.buf = append(e.buf, s[start:i]...)
		switch c {
		case '"':
			e.buf = append(e.buf, '\\', '"')
		case '\\':
			e.buf = append(e.buf, '\\', '\\')
		case '\b':
			e.buf = append(e.buf, '\\', 'b')
		case '\t':
			e.buf = append(e.buf, '\\', 't')
		case '\n':
			e.buf = append(e.buf, '\\', 'n')
		case '\f':
			e.buf = append(e.buf, '\\', 'f')
		case '\r':
			e.buf = append(e.buf, '\\', 'r')
		default:
			e.buf = append(e.buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
		}
		start = i + 1
	}
	e.buf = append(e.buf, s[start:]...)
	e.buf = append(e.buf, '"')
}

func (e *encoder) uintField(k string, v uint64) {
	e.key(k)
	e.buf = strconv.AppendUint(e.buf, v, 10)
}

func (e *encoder) strField(k, v string) {
	e.key(k)
	e.str(v)
}

func optUint[T uint16 | uint32 | uint64](e *encoder, k string, v *T) {
	if v != nil {
		e.uintField(k, uint64(*v))
	}
}

func (e *encoder) optStr(k string, v *string) {
	if v != nil {
		e.strField(k, *v)
	}
}

func (e *encoder) optPackaging(k string, v *Packaging, where string) error {
	if v == nil {
		return nil
	}
	if !v.valid() {
		return fmt.Errorf("catalog: %s.%s: invalid packaging %q (want %q or %q)", where, k, string(*v), PackagingCMAF, PackagingLOC)
	}
	e.strField(k, string(*v))
	return nil
}

func (e *encoder) catalog(c *Catalog) error {
	e.open('{')
	e.uintField("version", uint64(c.Version))
	e.uintField("streamingFormat", uint64(c.StreamingFormat))
	e.strField("streamingFormatVersion", c.StreamingFormatVersion)
	e.key("supportsDeltaUpdates")
	e.buf = strconv.AppendBool(e.buf, c.SupportsDeltaUpdates)
	e.key("commonTrackFields")
	if err := e.common(&c.CommonTrackFields); err != nil {
		return err
	}
	e.key("tracks")
	e.open('[')
	for i := range c.Tracks {
		e.elem()
		if err := e.track(&c.Tracks[i], fmt.Sprintf("tracks[%d]", i)); err != nil {
			return err
		}
	}
	e.close(']')
	e.close('}')
	return nil
}

func (e *encoder) common(f *CommonTrackFields) error {
	e.open('{')
	e.optStr("namespace", f.Namespace)
	if err := e.optPackaging("packaging", f.Packaging, "commonTrackFields"); err != nil {
		return err
	}
	optUint(e, "renderGroup", f.RenderGroup)
	optUint(e, "altGroup", f.AltGroup)
	e.close('}')
	return nil
}

func (e *encoder) track(t *Track, where string) error {
	e.open('{')
	e.optStr("namespace", t.Namespace)
	e.strField("name", t.Name)
	e.optStr("initTrack", t.InitTrack)
	e.optStr("initData", t.InitData)
	if err := e.optPackaging("packaging", t.Packaging, where); err != nil {
		return err
	}
	optUint(e, "renderGroup", t.RenderGroup)
	optUint(e, "altGroup", t.AltGroup)
	e.key("selectionParams")
	e.selectionParams(&t.SelectionParams)
	optUint(e, "temporalId", t.TemporalID)
	optUint(e, "spatialId", t.SpatialID)
	if t.Depends != nil {
		e.key("depends")
		e.open('[')
		for _, d := range t.Depends {
			e.elem()
			e.str(d)
		}
		e.close(']')
	}
	e.close('}')
	return nil
}

func (e *encoder) selectionParams(p *SelectionParams) {
	e.open('{')
	e.key("codec")
	if p.Codec == nil {
		e.buf = append(e.buf, "null"...)
	} else {
		e.str(*p.Codec)
	}
	e.optStr("mimeType", p.MimeType)
	optUint(e, "framerate", p.Framerate)
	optUint(e, "bitrate", p.Bitrate)
	optUint(e, "width", p.Width)
	optUint(e, "height", p.Height)
	optUint(e, "samplerate", p.Samplerate)
	e.optStr("channelConfig", p.ChannelConfig)
	optUint(e, "displayWidth", p.DisplayWidth)
	optUint(e, "displayHeight", p.DisplayHeight)
	e.optStr("lang", p.Lang)
	e.close('}')
}
