package catalog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parse decodes a catalog as serde_json::from_slice::<moq_catalog::Root> would: see the package
// documentation for the rules. It does not check the values; moq-sub, for one, also requires
// Version == 1.
func Parse(b []byte) (*Catalog, error) {
	c := new(Catalog)
	if err := decodeAll(b, func(d *decoder, tok json.Token) error { return d.catalog(tok, c) }); err != nil {
		return nil, err
	}
	return c, nil
}

// UnmarshalJSON decodes like Parse.
func (c *Catalog) UnmarshalJSON(b []byte) error {
	var v Catalog
	if err := decodeAll(b, func(d *decoder, tok json.Token) error { return d.catalog(tok, &v) }); err != nil {
		return err
	}
	*c = v
	return nil
}

// UnmarshalJSON decodes one track of a catalog with Parse's rules.
func (t *Track) UnmarshalJSON(b []byte) error {
	var v Track
	if err := decodeAll(b, func(d *decoder, tok json.Token) error { return d.track(tok, &v, "track") }); err != nil {
		return err
	}
	*t = v
	return nil
}

// UnmarshalJSON decodes selection parameters with Parse's rules.
func (p *SelectionParams) UnmarshalJSON(b []byte) error {
	var v SelectionParams
	if err := decodeAll(b, func(d *decoder, tok json.Token) error { return d.selectionParams(tok, &v, "selectionParams") }); err != nil {
		return err
	}
	*p = v
	return nil
}

// UnmarshalJSON decodes common track fields with Parse's rules.
func (f *CommonTrackFields) UnmarshalJSON(b []byte) error {
	var v CommonTrackFields
	if err := decodeAll(b, func(d *decoder, tok json.Token) error { return d.common(tok, &v, "commonTrackFields") }); err != nil {
		return err
	}
	*f = v
	return nil
}

// decoder reads a JSON document token by token, so that it can tell null from absent, see
// duplicate keys and match keys case-sensitively, which encoding/json's Unmarshal does not.
type decoder struct {
	d *json.Decoder
	b []byte // the input, for the escapes of a string token
}

func decodeAll(b []byte, value func(*decoder, json.Token) error) error {
	if !utf8.Valid(b) {
		return errors.New("catalog: invalid JSON: not valid UTF-8")
	}
	d := &decoder{d: json.NewDecoder(bytes.NewReader(b)), b: b}
	d.d.UseNumber()
	tok, err := d.token("")
	if err != nil {
		return err
	}
	if err := value(d, tok); err != nil {
		return err
	}
	if _, err := d.d.Token(); err != io.EOF {
		return errors.New("catalog: invalid JSON: trailing data after the catalog")
	}
	return nil
}

// token reads the next token. A string (a key, or the value of a known field) with an escaped
// lone surrogate is an error, as serde_json reports for a string it decodes ("lone leading
// surrogate in hex escape"); encoding/json would read it as U+FFFD.
func (d *decoder) token(where string) (json.Token, error) {
	start := d.d.InputOffset()
	tok, err := d.rawToken(where)
	if err != nil {
		return nil, err
	}
	if _, ok := tok.(string); ok && loneSurrogate(d.b[start:d.d.InputOffset()]) {
		if where == "" {
			return nil, errors.New("catalog: invalid JSON: lone surrogate in a \\u escape")
		}
		return nil, fmt.Errorf("catalog: invalid JSON at %s: lone surrogate in a \\u escape", where)
	}
	return tok, nil
}

// loneSurrogate reports whether raw, the input a string token was read from (separators and
// white space, then the quoted string, which json.Decoder has checked), has a \uD800-\uDFFF
// escape that is not a high surrogate followed at once by an escaped low one.
func loneSurrogate(raw []byte) bool {
	i := bytes.IndexByte(raw, '"')
	if i < 0 {
		return false
	}
	hex := func(at int) (rune, bool) {
		if at+6 > len(raw) || raw[at] != '\\' || raw[at+1] != 'u' {
			return 0, false
		}
		v, err := strconv.ParseUint(string(raw[at+2:at+6]), 16, 16)
		return rune(v), err == nil
	}
	for i++; i < len(raw); i++ {
		if raw[i] != '\\' {
			continue
		}
		r, ok := hex(i)
		if !ok {
			i++ // a two-character escape: skip the escaped character
			continue
		}
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return true // a low surrogate without a high one before it
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := hex(i + 6)
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return true
			}
			i += 11 // the pair
		default:
			i += 5
		}
	}
	return false
}

// rawToken reads the next token without checking its escapes.
func (d *decoder) rawToken(where string) (json.Token, error) {
	tok, err := d.d.Token()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		if where == "" {
			return nil, fmt.Errorf("catalog: invalid JSON: %w", err)
		}
		return nil, fmt.Errorf("catalog: invalid JSON at %s: %w", where, err)
	}
	return tok, nil
}

// object decodes an object whose opening token is tok, calling field for each key. field reports
// whether it knew the key; unknown keys are skipped. A known key that comes again is an error,
// before its second value is read; an unknown one is skipped again. This is what serde's derived
// Deserialize does: it checks duplicates per field and ignores unknown keys without looking.
func (d *decoder) object(tok json.Token, where string, field func(key string) (bool, error)) error {
	if tok != json.Delim('{') {
		return typeError(where, tok, "an object")
	}
	seen := make(map[string]bool) // known keys only
	for d.d.More() {
		t, err := d.token(where)
		if err != nil {
			return err
		}
		key := t.(string) // json.Decoder only returns strings in key position
		if seen[key] {
			return fmt.Errorf("catalog: %s: duplicate field %q", where, key)
		}
		known, err := field(key)
		if err != nil {
			return err
		}
		if known {
			seen[key] = true
		} else if err := d.skip(where + "." + key); err != nil {
			return err
		}
	}
	_, err := d.token(where) // '}'
	return err
}

// skip consumes one value. Its strings are not checked for lone surrogates: serde_json skips an
// ignored value without validating its escapes.
func (d *decoder) skip(where string) error {
	depth := 0
	for {
		tok, err := d.rawToken(where)
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case nil:
		return "null"
	case json.Delim:
		if v == '{' {
			return "an object"
		}
		return "an array"
	case string:
		return fmt.Sprintf("string %q", v)
	case json.Number:
		return "number " + v.String()
	case bool:
		return fmt.Sprintf("boolean %t", v)
	}
	return fmt.Sprintf("%v", tok)
}

func typeError(where string, tok json.Token, want string) error {
	return fmt.Errorf("catalog: %s: got %s, want %s", where, describe(tok), want)
}

func missing(where, key string) error {
	return fmt.Errorf("catalog: %s: missing field %q", where, key)
}

// uintValue converts tok to an unsigned integer of the given size. Like serde_json, it rejects
// numbers written with a fraction or an exponent even when their value is whole.
func uintValue(tok json.Token, bits int, where string) (uint64, error) {
	want := fmt.Sprintf("an unsigned %d-bit integer", bits)
	n, ok := tok.(json.Number)
	if !ok || strings.ContainsAny(string(n), ".eE") {
		return 0, typeError(where, tok, want)
	}
	// Negative numbers, -0 included (serde_json reads it as a float), fail here.
	v, err := strconv.ParseUint(string(n), 10, bits)
	if err != nil {
		return 0, typeError(where, tok, want)
	}
	return v, nil
}

func stringValue(tok json.Token, where string) (string, error) {
	s, ok := tok.(string)
	if !ok {
		return "", typeError(where, tok, "a string")
	}
	return s, nil
}

func packagingValue(tok json.Token, where string) (Packaging, error) {
	s, ok := tok.(string)
	if !ok {
		return "", typeError(where, tok, `"cmaf" or "loc"`)
	}
	if p := Packaging(s); p.valid() {
		return p, nil
	}
	return "", fmt.Errorf("catalog: %s: unknown packaging %q, want \"cmaf\" or \"loc\"", where, s)
}

// The opt* helpers read the value of an Option<T> field: null leaves *dst nil.

func optUintField[T uint16 | uint32 | uint64](d *decoder, dst **T, bits int, where string) error {
	tok, err := d.token(where)
	if err != nil || tok == nil {
		*dst = nil
		return err
	}
	v, err := uintValue(tok, bits, where)
	if err != nil {
		return err
	}
	*dst = new(T(v))
	return nil
}

func (d *decoder) optString(dst **string, where string) error {
	tok, err := d.token(where)
	if err != nil || tok == nil {
		*dst = nil
		return err
	}
	s, err := stringValue(tok, where)
	if err != nil {
		return err
	}
	*dst = &s
	return nil
}

func (d *decoder) optPackaging(dst **Packaging, where string) error {
	tok, err := d.token(where)
	if err != nil || tok == nil {
		*dst = nil
		return err
	}
	p, err := packagingValue(tok, where)
	if err != nil {
		return err
	}
	*dst = &p
	return nil
}

func (d *decoder) catalog(tok json.Token, c *Catalog) error {
	const where = "catalog"
	var haveVersion, haveFormat, haveFormatVersion, haveDelta, haveCommon, haveTracks bool
	err := d.object(tok, where, func(key string) (bool, error) {
		at := where + "." + key
		switch key {
		case "version", "streamingFormat":
			tok, err := d.token(at)
			if err != nil {
				return true, err
			}
			v, err := uintValue(tok, 16, at)
			if err != nil {
				return true, err
			}
			if key == "version" {
				c.Version, haveVersion = uint16(v), true
			} else {
				c.StreamingFormat, haveFormat = uint16(v), true
			}
		case "streamingFormatVersion":
			tok, err := d.token(at)
			if err != nil {
				return true, err
			}
			if c.StreamingFormatVersion, err = stringValue(tok, at); err != nil {
				return true, err
			}
			haveFormatVersion = true
		case "supportsDeltaUpdates":
			tok, err := d.token(at)
			if err != nil {
				return true, err
			}
			b, ok := tok.(bool)
			if !ok {
				return true, typeError(at, tok, "a boolean")
			}
			c.SupportsDeltaUpdates, haveDelta = b, true
		case "commonTrackFields":
			tok, err := d.token(at)
			if err != nil {
				return true, err
			}
			haveCommon = true
			return true, d.common(tok, &c.CommonTrackFields, at)
		case "tracks":
			tok, err := d.token(at)
			if err != nil {
				return true, err
			}
			if tok != json.Delim('[') {
				return true, typeError(at, tok, "an array")
			}
			c.Tracks = []Track{}
			for i := 0; d.d.More(); i++ {
				el := fmt.Sprintf("%s[%d]", at, i)
				tok, err := d.token(el)
				if err != nil {
					return true, err
				}
				var t Track
				if err := d.track(tok, &t, el); err != nil {
					return true, err
				}
				c.Tracks = append(c.Tracks, t)
			}
			haveTracks = true
			_, err = d.token(at) // ']'
			return true, err
		default:
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return err
	}
	for _, f := range []struct {
		ok  bool
		key string
	}{
		{haveVersion, "version"},
		{haveFormat, "streamingFormat"},
		{haveFormatVersion, "streamingFormatVersion"},
		{haveDelta, "supportsDeltaUpdates"},
		{haveCommon, "commonTrackFields"},
		{haveTracks, "tracks"},
	} {
		if !f.ok {
			return missing(where, f.key)
		}
	}
	return nil
}

func (d *decoder) common(tok json.Token, f *CommonTrackFields, where string) error {
	return d.object(tok, where, func(key string) (bool, error) {
		at := where + "." + key
		switch key {
		case "namespace":
			return true, d.optString(&f.Namespace, at)
		case "packaging":
			return true, d.optPackaging(&f.Packaging, at)
		case "renderGroup":
			return true, optUintField(d, &f.RenderGroup, 16, at)
		case "altGroup":
			return true, optUintField(d, &f.AltGroup, 16, at)
		}
		return false, nil
	})
}

func (d *decoder) track(tok json.Token, t *Track, where string) error {
	var haveName, haveParams bool
	err := d.object(tok, where, func(key string) (bool, error) {
		at := where + "." + key
		switch key {
		case "namespace":
			return true, d.optString(&t.Namespace, at)
		case "name":
			tok, err := d.token(at)
			if err != nil {
				return true, err
			}
			t.Name, err = stringValue(tok, at)
			haveName = true
			return true, err
		case "initTrack":
			return true, d.optString(&t.InitTrack, at)
		case "initData":
			return true, d.optString(&t.InitData, at)
		case "packaging":
			return true, d.optPackaging(&t.Packaging, at)
		case "renderGroup":
			return true, optUintField(d, &t.RenderGroup, 16, at)
		case "altGroup":
			return true, optUintField(d, &t.AltGroup, 16, at)
		case "selectionParams":
			tok, err := d.token(at)
			if err != nil {
				return true, err
			}
			haveParams = true
			return true, d.selectionParams(tok, &t.SelectionParams, at)
		case "temporalId":
			return true, optUintField(d, &t.TemporalID, 32, at)
		case "spatialId":
			return true, optUintField(d, &t.SpatialID, 32, at)
		case "depends":
			tok, err := d.token(at)
			if err != nil || tok == nil {
				t.Depends = nil
				return true, err
			}
			if tok != json.Delim('[') {
				return true, typeError(at, tok, "an array of strings")
			}
			t.Depends = []string{}
			for i := 0; d.d.More(); i++ {
				el := fmt.Sprintf("%s[%d]", at, i)
				tok, err := d.token(el)
				if err != nil {
					return true, err
				}
				s, err := stringValue(tok, el)
				if err != nil {
					return true, err
				}
				t.Depends = append(t.Depends, s)
			}
			_, err = d.token(at) // ']'
			return true, err
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	if !haveName {
		return missing(where, "name")
	}
	if !haveParams {
		return missing(where, "selectionParams")
	}
	return nil
}

func (d *decoder) selectionParams(tok json.Token, p *SelectionParams, where string) error {
	return d.object(tok, where, func(key string) (bool, error) {
		at := where + "." + key
		switch key {
		case "codec":
			return true, d.optString(&p.Codec, at)
		case "mimeType":
			return true, d.optString(&p.MimeType, at)
		case "framerate":
			return true, optUintField(d, &p.Framerate, 64, at)
		case "bitrate":
			return true, optUintField(d, &p.Bitrate, 32, at)
		case "width":
			return true, optUintField(d, &p.Width, 32, at)
		case "height":
			return true, optUintField(d, &p.Height, 32, at)
		case "samplerate":
			return true, optUintField(d, &p.Samplerate, 32, at)
		case "channelConfig":
			return true, d.optString(&p.ChannelConfig, at)
		case "displayWidth":
			return true, optUintField(d, &p.DisplayWidth, 16, at)
		case "displayHeight":
			return true, optUintField(d, &p.DisplayHeight, 16, at)
		case "lang":
			return true, d.optString(&p.Lang, at)
		}
		return false, nil
	})
}
