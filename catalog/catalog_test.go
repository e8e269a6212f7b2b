package catalog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// bbbJSON is the catalog moq-pub published for Big Buck Bunny (moq-rs-reference.md §5): the
// output of serde_json::to_string_pretty, 618 bytes, no trailing newline.
const bbbJSON = `{
  "version": 1,
  "streamingFormat": 1,
  "streamingFormatVersion": "0.2",
  "supportsDeltaUpdates": true,
  "commonTrackFields": {
    "namespace": "/bbb",
    "packaging": "cmaf",
    "renderGroup": 1
  },
  "tracks": [
    {
      "name": "1.m4s",
      "initTrack": "0.mp4",
      "selectionParams": {
        "codec": "avc1.64001F",
        "width": 1280,
        "height": 720
      }
    },
    {
      "name": "2.m4s",
      "initTrack": "0.mp4",
      "selectionParams": {
        "codec": "mp4a.40.2",
        "bitrate": 129403,
        "samplerate": 44100,
        "channelConfig": "2"
      }
    }
  ]
}`

func TestBBBExampleSize(t *testing.T) {
	// moq-rs logged a 618-byte .catalog object for this text.
	if len(bbbJSON) != 618 {
		t.Fatalf("len = %d, want 618", len(bbbJSON))
	}
}

func TestParseEncodeBBB(t *testing.T) {
	c, err := Parse([]byte(bbbJSON))
	if err != nil {
		t.Fatal(err)
	}
	want := &Catalog{
		Version:                1,
		StreamingFormat:        1,
		StreamingFormatVersion: "0.2",
		SupportsDeltaUpdates:   true,
		CommonTrackFields: CommonTrackFields{
			Namespace:   new("/bbb"),
			Packaging:   new(PackagingCMAF),
			RenderGroup: new(uint16(1)),
		},
		Tracks: []Track{
			{Name: "1.m4s", InitTrack: new("0.mp4"), SelectionParams: SelectionParams{
				Codec: new("avc1.64001F"), Width: new(uint32(1280)), Height: new(uint32(720)),
			}},
			{Name: "2.m4s", InitTrack: new("0.mp4"), SelectionParams: SelectionParams{
				Codec: new("mp4a.40.2"), Bitrate: new(uint32(129403)), Samplerate: new(uint32(44100)), ChannelConfig: new("2"),
			}},
		},
	}
	if got, w := mustMarshal(t, c), mustMarshal(t, want); got != w {
		t.Errorf("Parse:\n got %s\nwant %s", got, w)
	}
	out, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != bbbJSON {
		t.Errorf("Encode:\n%s\nwant:\n%s", out, bbbJSON)
	}

	// MarshalJSON is serde_json::to_string, the compact form of the same document.
	var compact bytes.Buffer
	if err := json.Compact(&compact, []byte(bbbJSON)); err != nil {
		t.Fatal(err)
	}
	if got := mustMarshal(t, c); got != compact.String() {
		t.Errorf("MarshalJSON:\n got %s\nwant %s", got, compact.String())
	}
	// encoding/json uses MarshalJSON and UnmarshalJSON.
	var viaJSON Catalog
	if err := json.Unmarshal([]byte(bbbJSON), &viaJSON); err != nil {
		t.Fatal(err)
	}
	if got := mustMarshal(t, &viaJSON); got != compact.String() {
		t.Errorf("json.Unmarshal then json.Marshal:\n got %s\nwant %s", got, compact.String())
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fullCatalog sets every field.
func fullCatalog() *Catalog {
	return &Catalog{
		Version:                1,
		StreamingFormat:        1,
		StreamingFormatVersion: "0.2",
		SupportsDeltaUpdates:   false,
		CommonTrackFields: CommonTrackFields{
			Namespace:   new("/ns"),
			Packaging:   new(PackagingLOC),
			RenderGroup: new(uint16(2)),
			AltGroup:    new(uint16(3)),
		},
		Tracks: []Track{{
			Namespace:   new("/other"),
			Name:        "video",
			InitTrack:   new("init"),
			InitData:    new("AAAA"),
			Packaging:   new(PackagingCMAF),
			RenderGroup: new(uint16(65535)),
			AltGroup:    new(uint16(0)),
			SelectionParams: SelectionParams{
				Codec:         new("avc1.64001F"),
				MimeType:      new("video/mp4"),
				Framerate:     new(uint64(18446744073709551615)),
				Bitrate:       new(uint32(4294967295)),
				Width:         new(uint32(1920)),
				Height:        new(uint32(1080)),
				Samplerate:    new(uint32(48000)),
				ChannelConfig: new("2"),
				DisplayWidth:  new(uint16(1920)),
				DisplayHeight: new(uint16(1080)),
				Lang:          new("en"),
			},
			TemporalID: new(uint32(1)),
			SpatialID:  new(uint32(0)),
			Depends:    []string{"a", "b"},
		}},
	}
}

// fullJSON is fullCatalog as serde_json::to_string_pretty writes it: fields in the order of
// moq-catalog's struct declarations.
const fullJSON = `{
  "version": 1,
  "streamingFormat": 1,
  "streamingFormatVersion": "0.2",
  "supportsDeltaUpdates": false,
  "commonTrackFields": {
    "namespace": "/ns",
    "packaging": "loc",
    "renderGroup": 2,
    "altGroup": 3
  },
  "tracks": [
    {
      "namespace": "/other",
      "name": "video",
      "initTrack": "init",
      "initData": "AAAA",
      "packaging": "cmaf",
      "renderGroup": 65535,
      "altGroup": 0,
      "selectionParams": {
        "codec": "avc1.64001F",
        "mimeType": "video/mp4",
        "framerate": 18446744073709551615,
        "bitrate": 4294967295,
        "width": 1920,
        "height": 1080,
        "samplerate": 48000,
        "channelConfig": "2",
        "displayWidth": 1920,
        "displayHeight": 1080,
        "lang": "en"
      },
      "temporalId": 1,
      "spatialId": 0,
      "depends": [
        "a",
        "b"
      ]
    }
  ]
}`

func TestEncodeFieldOrder(t *testing.T) {
	out, err := fullCatalog().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != fullJSON {
		t.Errorf("Encode:\n%s\nwant:\n%s", out, fullJSON)
	}
	c, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, out) {
		t.Errorf("round trip:\n%s", again)
	}
}

func TestEncodeEmpty(t *testing.T) {
	// The zero Catalog: serde writes {} for an object without fields, [] for an empty Vec, null
	// for codec: None, and [] for depends: Some(vec![]).
	c := &Catalog{Tracks: []Track{{Name: "x", Depends: []string{}}}}
	out, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": 0,
  "streamingFormat": 0,
  "streamingFormatVersion": "",
  "supportsDeltaUpdates": false,
  "commonTrackFields": {},
  "tracks": [
    {
      "name": "x",
      "selectionParams": {
        "codec": null
      },
      "depends": []
    }
  ]
}`
	if string(out) != want {
		t.Errorf("Encode:\n%s\nwant:\n%s", out, want)
	}
	compact, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	wantCompact := `{"version":0,"streamingFormat":0,"streamingFormatVersion":"","supportsDeltaUpdates":false,"commonTrackFields":{},"tracks":[{"name":"x","selectionParams":{"codec":null},"depends":[]}]}`
	if string(compact) != wantCompact {
		t.Errorf("MarshalJSON:\n got %s\nwant %s", compact, wantCompact)
	}
	// A nil Tracks is an empty Vec too.
	out, err = (&Catalog{}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(out), `"commonTrackFields": {},
  "tracks": []
}`) {
		t.Errorf("nil tracks:\n%s", out)
	}
	// Parse keeps null and [] apart for depends, and absent and null alike for options.
	p, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if p.Tracks == nil || len(p.Tracks) != 0 {
		t.Errorf("tracks = %#v, want empty", p.Tracks)
	}
}

func TestEncodeStrings(t *testing.T) {
	// serde_json escapes '"', '\\' and control characters only; the two-character forms for
	// \b \t \n \f \r, \u00xx (lower-case hex) for the rest. It leaves <, >, &, DEL, U+2028
	// and U+2029 alone. Invalid UTF-8 is replaced as String::from_utf8_lossy would.
	for _, tc := range []struct{ in, want string }{
		{"plain", `"plain"`},
		{`q"b\`, `"q\"b\\"`},
		{"\b\t\n\f\r", `"\b\t\n\f\r"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{"<a&b>", `"<a&b>"`},
		{"\u2028\u2029é€😀", "\"\u2028\u2029é€😀\""},
		{"a\xffb", "\"a\uFFFDb\""},
		{"\xe2\x82", "\"\uFFFD\""},
		{"\xed\xa0\x80", "\"\uFFFD\uFFFD\uFFFD\""},
	} {
		c := &Catalog{Tracks: []Track{{Name: tc.in}}}
		var e encoder
		if err := e.track(&c.Tracks[0], "t"); err != nil {
			t.Fatal(err)
		}
		want := `{"name":` + tc.want + `,"selectionParams":{"codec":null}}`
		if string(e.buf) != want {
			t.Errorf("%q: got %s, want %s", tc.in, e.buf, want)
		}
		// What we write, Parse reads back.
		var back Track
		if err := back.UnmarshalJSON(e.buf); err != nil {
			t.Errorf("%q: %v", tc.in, err)
		} else if back.Name != lossyUTF8(tc.in) {
			t.Errorf("%q: read back %q", tc.in, back.Name)
		}
	}
}

func TestEncodeInvalidPackaging(t *testing.T) {
	c := &Catalog{CommonTrackFields: CommonTrackFields{Packaging: new(Packaging("CMAF"))}}
	if _, err := c.Encode(); err == nil || !strings.Contains(err.Error(), `"CMAF"`) {
		t.Errorf("common packaging: err = %v", err)
	}
	c = &Catalog{Tracks: []Track{{Name: "a", Packaging: new(Packaging(""))}}}
	if _, err := json.Marshal(c); err == nil || !strings.Contains(err.Error(), "tracks[0].packaging") {
		t.Errorf("track packaging: err = %v", err)
	}
}

func TestParseAccepts(t *testing.T) {
	// Unknown fields at any level are ignored, null is the same as absent for optional fields,
	// fields may come in any order, whitespace is free.
	in := `  {"tracks":[{"selectionParams":{"codec":null,"width":null,"x":{"y":[1,{"z":null}]}},
		"name":"1.m4s","depends":null,"initTrack":null,"extra":[]}],
		"future":{"a":1},"commonTrackFields":{"namespace":null,"altGroup":7},
		"supportsDeltaUpdates":false,"streamingFormatVersion":"0.2","streamingFormat":1,"version":1}  `
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got := mustMarshal(t, c)
	want := `{"version":1,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":false,"commonTrackFields":{"altGroup":7},"tracks":[{"name":"1.m4s","selectionParams":{"codec":null}}]}`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// TestParseRepeatedUnknownAndEscapes: as serde_json with a derived Deserialize, a repeated
// unknown field is skipped each time (only known fields are checked for duplicates), and an
// ignored value is not checked for lone surrogates; escaped pairs and escaped backslashes
// before a 'u' are read as such.
func TestParseRepeatedUnknownAndEscapes(t *testing.T) {
	in := `{"x":1,"x":2,"version":1,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":true,
		"commonTrackFields":{"ext":[],"ext":{}},"x":"\ud800",
		"tracks":[{"name":"\ud83d\ude00\\ud800","ext":1,"selectionParams":{"y":null,"y":"\udc00x"},"ext":2}]}`
	c, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tracks) != 1 || c.Tracks[0].Name != "\U0001F600\\ud800" {
		t.Errorf("tracks = %+v", c.Tracks)
	}
}

func TestParseRejects(t *testing.T) {
	const head = `"version":1,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":true,"commonTrackFields":{}`
	track := func(s string) string { return `{` + head + `,"tracks":[` + s + `]}` }
	for _, tc := range []struct{ name, in, want string }{
		{"empty", ``, "invalid JSON"},
		{"not an object", `[]`, "want an object"},
		{"null", `null`, "want an object"},
		{"missing version", `{"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":true,"commonTrackFields":{},"tracks":[]}`, `missing field "version"`},
		{"missing tracks", `{` + head + `}`, `missing field "tracks"`},
		{"missing commonTrackFields", `{"version":1,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":true,"tracks":[]}`, `missing field "commonTrackFields"`},
		{"keys are case-sensitive", `{"Version":1,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":true,"commonTrackFields":{},"tracks":[]}`, `missing field "version"`},
		{"duplicate", `{"version":1,` + head + `,"tracks":[]}`, `duplicate field "version"`},
		{"duplicate nested", track(`{"name":"a","name":"b","selectionParams":{}}`), `duplicate field "name"`},
		{"duplicate after unknown", track(`{"x":1,"name":"a","x":2,"selectionParams":{},"name":"b"}`), `duplicate field "name"`},
		{"duplicate optional", track(`{"name":"a","selectionParams":{"width":1,"width":null}}`), `duplicate field "width"`},
		{"duplicate before a bad value", track(`{"name":"a","name":7,"selectionParams":{}}`), `duplicate field "name"`},
		{"lone high surrogate", track(`{"name":"a\ud800","selectionParams":{}}`), "lone surrogate"},
		{"high surrogate then not a low one", track(`{"name":"\ud800\u0041","selectionParams":{}}`), "lone surrogate"},
		{"high surrogate then a high one", track(`{"name":"\udbff\udbff","selectionParams":{}}`), "lone surrogate"},
		{"lone low surrogate", track(`{"name":"\udc00","selectionParams":{}}`), "lone surrogate"},
		{"lone surrogate in a key", track(`{"\ud800":1,"name":"a","selectionParams":{}}`), "lone surrogate"},
		{"lone surrogate in depends", track(`{"name":"a","selectionParams":{},"depends":["\uDFFF"]}`), "lone surrogate"},
		{"lone surrogate in packaging", track(`{"name":"a","selectionParams":{},"packaging":"\ud800"}`), "lone surrogate"},
		{"null version", `{"version":null,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":true,"commonTrackFields":{},"tracks":[]}`, "got null"},
		{"null tracks", `{` + head + `,"tracks":null}`, "got null"},
		{"float", `{"version":1.0,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":true,"commonTrackFields":{},"tracks":[]}`, "unsigned 16-bit"},
		{"exponent", track(`{"name":"a","selectionParams":{"width":1e3}}`), "unsigned 32-bit"},
		{"negative", track(`{"name":"a","selectionParams":{"width":-1}}`), "unsigned 32-bit"},
		{"minus zero", track(`{"name":"a","selectionParams":{"width":-0}}`), "unsigned 32-bit"},
		{"u16 overflow", `{"version":65536,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":true,"commonTrackFields":{},"tracks":[]}`, "unsigned 16-bit"},
		{"u32 overflow", track(`{"name":"a","selectionParams":{"bitrate":4294967296}}`), "unsigned 32-bit"},
		{"u64 overflow", track(`{"name":"a","selectionParams":{"framerate":18446744073709551616}}`), "unsigned 64-bit"},
		{"string for number", track(`{"name":"a","selectionParams":{"width":"1280"}}`), "unsigned 32-bit"},
		{"number for string", track(`{"name":"a","selectionParams":{"channelConfig":2}}`), "want a string"},
		{"bool as string", `{"version":1,"streamingFormat":1,"streamingFormatVersion":"0.2","supportsDeltaUpdates":"true","commonTrackFields":{},"tracks":[]}`, "want a boolean"},
		{"unknown packaging", track(`{"name":"a","packaging":"CMAF","selectionParams":{}}`), `unknown packaging "CMAF"`},
		{"missing name", track(`{"selectionParams":{}}`), `missing field "name"`},
		{"missing selectionParams", track(`{"name":"a"}`), `missing field "selectionParams"`},
		{"depends of numbers", track(`{"name":"a","selectionParams":{},"depends":[1]}`), "want a string"},
		{"trailing data", `{` + head + `,"tracks":[]} {}`, "trailing data"},
		{"trailing garbage", `{` + head + `,"tracks":[]}x`, "trailing data"},
		{"invalid UTF-8", "{\"version\":1,\"streamingFormatVersion\":\"\xff\"}", "UTF-8"},
		{"syntax", `{"version":1,}`, "invalid JSON"},
	} {
		_, err := Parse([]byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to contain %q", tc.name, err, tc.want)
		}
	}
}

func TestParsePrefixes(t *testing.T) {
	// Every proper prefix of a catalog is an error.
	for _, doc := range []string{bbbJSON, fullJSON} {
		for i := range len(doc) {
			if _, err := Parse([]byte(doc[:i])); err == nil {
				t.Fatalf("prefix of %d bytes parsed", i)
			}
		}
	}
}

func TestHoistCommon(t *testing.T) {
	tracks := []Track{
		{Name: "a", Namespace: new("/x"), Packaging: new(PackagingCMAF), RenderGroup: new(uint16(1))},
		{Name: "b", Namespace: new("/x"), Packaging: new(PackagingLOC), RenderGroup: new(uint16(1)), AltGroup: new(uint16(4))},
	}
	c := HoistCommon(tracks)
	if got := mustMarshal(t, c); got != `{"namespace":"/x","renderGroup":1}` {
		t.Errorf("common = %s", got)
	}
	// Fields that differ stay on the tracks (moq-rs drops them).
	if got := mustMarshal(t, tracks); got != `[{"name":"a","packaging":"cmaf","selectionParams":{"codec":null}},{"name":"b","packaging":"loc","altGroup":4,"selectionParams":{"codec":null}}]` {
		t.Errorf("tracks = %s", got)
	}
	if got := mustMarshal(t, HoistCommon(nil)); got != `{}` {
		t.Errorf("no tracks: %s", got)
	}
	// WithCommon undoes HoistCommon.
	cat := &Catalog{CommonTrackFields: c, Tracks: tracks}
	b, ok := cat.Track("b")
	if !ok {
		t.Fatal("track b not found")
	}
	if got := mustMarshal(t, b); got != `{"namespace":"/x","name":"b","packaging":"loc","renderGroup":1,"altGroup":4,"selectionParams":{"codec":null}}` {
		t.Errorf("Track(b) = %s", got)
	}
	if _, ok := cat.Track("c"); ok {
		t.Error("found track c")
	}
}

func TestNamespacePath(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"bbb"}, "/bbb"},
		{[]string{"a", "b"}, "/a/b"},
		{[]string{""}, "/"},
		{[]string{"a\xffb"}, "/a\uFFFDb"},
	} {
		if got := NamespacePath(tc.in); got != tc.want {
			t.Errorf("NamespacePath(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestLossyUTF8(t *testing.T) {
	// Expected values are Rust's String::from_utf8_lossy.
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"abc", "abc"},
		{"\uFFFD", "\uFFFD"},
		{"\x80", "\uFFFD"},
		{"\xc0\x80", "\uFFFD\uFFFD"},           // C0 is never a lead byte
		{"\xe2\x82", "\uFFFD"},                 // truncated 3-byte sequence: one replacement
		{"\xe2\x82A", "\uFFFDA"},               // same, followed by ASCII
		{"\xf0\x9f\x98", "\uFFFD"},             // truncated 4-byte sequence
		{"\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"}, // surrogate: ED A0 is not a valid prefix
		{"\xf4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"\xe0\x80\x80", "\uFFFD\uFFFD\uFFFD"}, // overlong
		{"a\xf1\x80\x80z", "a\uFFFDz"},
	} {
		if got := lossyUTF8(tc.in); got != tc.want {
			t.Errorf("lossyUTF8(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
