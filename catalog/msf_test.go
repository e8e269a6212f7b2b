package catalog

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func mustReadInit(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBuildMSF: the MSF catalog of an H.264 + AAC init segment names the
// same tracks as Build, with their roles, codecs and init data, and
// encodes as draft-01 with the init segment once in initDataList.
func TestBuildMSF(t *testing.T) {
	init := mustReadInit(t, "h264_aac.mp4")
	c, err := Build(init, Options{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := BuildMSF(init, MSFOptions{Framerate: 30, Bitrate: 500000})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Tracks) != len(c.Tracks) || len(m.Tracks) != 2 {
		t.Fatalf("%d MSF tracks, %d moq-rs tracks", len(m.Tracks), len(c.Tracks))
	}
	v, a := m.Tracks[0], m.Tracks[1]
	if v.Name != c.Tracks[0].Name || v.Role != MSFRoleVideo || v.MimeType != "video/mp4" || v.Codec != *c.Tracks[0].SelectionParams.Codec ||
		v.Width == nil || *v.Width != uint64(*c.Tracks[0].SelectionParams.Width) || v.Framerate == nil || *v.Framerate != 30 ||
		v.Bitrate == nil || *v.Bitrate != 500000 || v.Timescale == nil || *v.Timescale == 0 || v.Packaging != MSFPackagingCMAF || !v.IsLive || !bytes.Equal(v.InitData, init) {
		t.Errorf("video track %+v", v)
	}
	if a.Name != c.Tracks[1].Name || a.Role != MSFRoleAudio || a.MimeType != "audio/mp4" || !strings.HasPrefix(a.Codec, "mp4a.40.") ||
		a.Samplerate == nil || a.ChannelConfig == "" || a.Width != nil || a.Framerate != nil || a.Timescale == nil || *a.Timescale != *a.Samplerate {
		t.Errorf("audio track %+v", a)
	}

	js, err := m.EncodeMSF()
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(js, &raw); err != nil {
		t.Fatal(err)
	}
	if raw["version"] != MSFVersion {
		t.Errorf("version %v", raw["version"])
	}
	list, _ := raw["initDataList"].([]any)
	if len(list) != 1 {
		t.Fatalf("initDataList %v, want one entry for the shared init segment", raw["initDataList"])
	}
	entry := list[0].(map[string]any)
	if entry["id"] != "0" || entry["type"] != "inline" || entry["data"] != base64.StdEncoding.EncodeToString(init) {
		t.Errorf("initDataList entry %v", entry)
	}
	for _, tr := range raw["tracks"].([]any) {
		tr := tr.(map[string]any)
		if tr["initRef"] != "0" || tr["packaging"] != "cmaf" || tr["isLive"] != true || tr["initData"] != nil || tr["namespace"] != nil {
			t.Errorf("track %v", tr)
		}
	}
	back, err := ParseMSF(js)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, m) {
		t.Errorf("parsed back\n%+v\nwant\n%+v", back, m)
	}

	// Per-track init segments: one initDataList entry each.
	m, err = BuildMSF(init, MSFOptions{TrackInit: func(id uint32) ([]byte, error) { return []byte{byte(id)}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	js, _ = m.EncodeMSF()
	back, err = ParseMSF(js)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Tracks) != 2 || !bytes.Equal(back.Tracks[0].InitData, []byte{1}) || !bytes.Equal(back.Tracks[1].InitData, []byte{2}) {
		t.Errorf("per-track init data: %s", js)
	}
	if _, err := BuildMSF(init, MSFOptions{TrackInit: func(uint32) ([]byte, error) { return nil, errors.New("boom") }}); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("a TrackInit error: %v", err)
	}
	if _, err := BuildMSF([]byte("junk"), MSFOptions{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("junk: %v", err)
	}
}

// draft00 is a draft-00 catalog as the first MSF players and publishers
// wrote it: numeric version, inline initData, and fields this parser does
// not know.
const draft00 = `{
  "version": 1,
  "generatedAt": 1746104606044,
  "tracks": [
    {"name": "video", "namespace": "live/demo", "packaging": "cmaf", "isLive": true, "role": "video",
     "codec": "avc1.64001f", "width": 1280, "height": 720, "framerate": 29.97, "timescale": 90000,
     "renderGroup": 1, "altGroup": 1, "initData": "AAECAw==", "maxGrpSapStartingType": 1},
    {"name": "audio", "packaging": "cmaf", "isLive": true, "role": "audio", "codec": "mp4a.40.2",
     "samplerate": 48000, "channelConfig": "2", "bitrate": 128000, "initData": "BAUG"}
  ]
}`

func TestParseMSFDraft00(t *testing.T) {
	m, err := ParseMSF([]byte(draft00))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "1" || m.GeneratedAt == nil || *m.GeneratedAt != 1746104606044 || len(m.Tracks) != 2 {
		t.Fatalf("%+v", m)
	}
	v, ok := m.Track("video")
	if !ok || v.Namespace == nil || *v.Namespace != "live/demo" || *v.Framerate != 29.97 || *v.Timescale != 90000 ||
		!bytes.Equal(v.InitData, []byte{0, 1, 2, 3}) || *v.AltGroup != 1 {
		t.Errorf("video %+v", v)
	}
	a, _ := m.Track("audio")
	if a.Namespace != nil || !bytes.Equal(a.InitData, []byte{4, 5, 6}) || a.ChannelConfig != "2" || *a.Bitrate != 128000 {
		t.Errorf("audio %+v", a)
	}
	// It re-encodes as draft-01 and parses to the same tracks.
	js, err := m.EncodeMSF()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseMSF(js)
	if err != nil {
		t.Fatal(err)
	}
	m.Version = MSFVersion
	if !reflect.DeepEqual(back, m) {
		t.Errorf("draft-01 of a draft-00 catalog:\n%+v\nwant\n%+v", back, m)
	}
}

func TestParseMSFErrors(t *testing.T) {
	for _, c := range []struct{ name, js, want string }{
		{"not JSON", `{`, "unexpected EOF"},
		{"no version", `{"tracks":[]}`, "no version"},
		{"version 2", `{"version":2,"tracks":[]}`, "version 2 is not one"},
		{"version draft-02", `{"version":"draft-02","tracks":[]}`, `version "draft-02"`},
		{"delta update 00", `{"version":1,"deltaUpdate":true,"addTracks":[]}`, "delta update"},
		{"delta update 01", `{"version":"draft-01","deltaUpdate":[{"op":"add","tracks":[]}]}`, "delta update"},
		{"no tracks", `{"version":1}`, "no tracks"},
		{"no name", `{"version":1,"tracks":[{"packaging":"cmaf"}]}`, "track 0 has no name"},
		{"no packaging", `{"version":1,"tracks":[{"name":"v"}]}`, `track "v" has no packaging`},
		{"twice", `{"version":1,"tracks":[{"name":"v","packaging":"cmaf"},{"name":"v","packaging":"loc"}]}`, "appears twice"},
		{"bad base64", `{"version":1,"tracks":[{"name":"v","packaging":"cmaf","initData":"***"}]}`, "not base64"},
		{"dangling initRef", `{"version":"draft-01","tracks":[{"name":"v","packaging":"cmaf","isLive":true,"initRef":"9"}]}`, `initRef "9"`},
		{"initDataList type", `{"version":"draft-01","tracks":[],"initDataList":[{"id":"0","type":"url","data":"x"}]}`, "not inline"},
		{"initDataList id twice", `{"version":"draft-01","tracks":[],"initDataList":[{"id":"0","type":"inline","data":""},{"id":"0","type":"inline","data":""}]}`, "twice"},
		{"negative width", `{"version":1,"tracks":[{"name":"v","packaging":"cmaf","width":-1}]}`, "cannot unmarshal"},
		{"trailing data", `{"version":1,"tracks":[]} {}`, "data after"},
		{"trailing brackets", `{"version":1,"tracks":[]}}]`, "data after"},
		{"trailing bracket", `{"version":1,"tracks":[]} ]`, "data after"},
		{"too big", `{"version":1,"tracks":[],"x":"` + strings.Repeat("a", maxMSFSize) + `"}`, "more than"},
	} {
		_, err := ParseMSF([]byte(c.js))
		if !errors.Is(err, ErrMSF) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrMSF with %q", c.name, err, c.want)
		}
	}
	// Trailing white space is not trailing data.
	if _, err := ParseMSF([]byte("{\"version\":1,\"tracks\":[]} \n")); err != nil {
		t.Errorf("trailing white space: %v", err)
	}
	// Namespaces make names distinct; the same name twice in one is not.
	if _, err := ParseMSF([]byte(`{"version":1,"tracks":[{"name":"v","packaging":"cmaf"},{"name":"v","namespace":"x","packaging":"cmaf"}]}`)); err != nil {
		t.Errorf("one name in two namespaces: %v", err)
	}
}

func TestEncodeMSFErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		m    MSF
		want string
	}{
		{"no name", MSF{Tracks: []MSFTrackInfo{{Packaging: "cmaf"}}}, "no name"},
		{"no packaging", MSF{Tracks: []MSFTrackInfo{{Name: "v"}}}, "no packaging"},
		{"twice", MSF{Tracks: []MSFTrackInfo{{Name: "v", Packaging: "cmaf"}, {Name: "v", Packaging: "cmaf"}}}, "twice"},
	} {
		if _, err := c.m.EncodeMSF(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	js, err := (&MSF{}).EncodeMSF()
	if err != nil || string(js) != `{"version":"draft-01","tracks":[]}` {
		t.Errorf("empty catalog: %s, %v", js, err)
	}
}

// FuzzParseMSF: ParseMSF never panics, and whatever it accepts encodes as
// draft-01 and parses to the same tracks.
func FuzzParseMSF(f *testing.F) {
	f.Add([]byte(draft00))
	m, err := BuildMSF(mustReadInit(f, "hvc1_opus.mp4"), MSFOptions{Framerate: 25})
	if err != nil {
		f.Fatal(err)
	}
	js, err := m.EncodeMSF()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Add([]byte(`{"version":"draft-01","tracks":[{"name":"a","packaging":"loc","isLive":false,"initRef":"x"}],"initDataList":[{"id":"x","type":"inline","data":"AA"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMSF(b)
		if err != nil {
			if !errors.Is(err, ErrMSF) {
				t.Fatalf("an error that is not ErrMSF: %v", err)
			}
			return
		}
		js, err := m.EncodeMSF()
		if err != nil {
			t.Fatalf("EncodeMSF of a parsed catalog: %v", err)
		}
		back, err := ParseMSF(js)
		if err != nil {
			t.Fatalf("ParseMSF(EncodeMSF): %v\n%s", err, js)
		}
		m.Version = MSFVersion
		for i := range m.Tracks {
			if m.Tracks[i].InitData != nil && len(m.Tracks[i].InitData) == 0 {
				m.Tracks[i].InitData = []byte{} // "" decodes to empty, not nil
			}
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip\n%+v\nwant\n%+v", back, m)
		}
	})
}
