package catalog

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	mp4 "github.com/abema/go-mp4"
)

// FuzzBuild: Build never panics; it either fails with ErrMalformed or ErrUnsupportedCodec, or
// returns a catalog that encodes and parses back to itself, and BuildMSF gives an MSF catalog
// that does too.
func FuzzBuild(f *testing.F) {
	files, err := filepath.Glob("testdata/*.mp4")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add(bbbInit(f))
	f.Add(initSegment(f,
		trak(1, "vide", 0, 0, visual("encv", 64, 64, avcC(0x64, 0, 0x28), sinf("avc1"))),
		trak(2, "soun", 0, 0, audio("ec-3", 2, 48000, raw("dec3", dec3(768, 7, 1, 1, 0b010000000)))),
		trak(3, "soun", 0, 0, audio("ac-3", 2, 48000, bx(&mp4.Dac3{Acmod: 7, LfeOn: 1}))),
		trak(4, "soun", 0, 0, audio("Opus", 2, 48000, bx(&mp4.DOps{OutputChannelCount: 2}))),
	))
	f.Fuzz(func(t *testing.T, init []byte) {
		c, err := Build(init, Options{Namespace: []string{"fuzz"}, Framerate: 30, Bitrate: 1})
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnsupportedCodec) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		checkRoundTrip(t, c)
		// The MSF catalog of an init segment Build takes is built too,
		// and parses back to itself.
		m, err := BuildMSF(init, MSFOptions{Framerate: 30, Bitrate: 1})
		if err != nil {
			t.Fatalf("Build took the init segment, BuildMSF did not: %v", err)
		}
		js, err := m.EncodeMSF()
		if err != nil {
			t.Fatal(err)
		}
		if back, err := ParseMSF(js); err != nil || len(back.Tracks) != len(c.Tracks) {
			t.Fatalf("ParseMSF(EncodeMSF): %v\n%s", err, js)
		}
	})
}

// FuzzParse: Parse never panics, and whatever it accepts encodes to a document that parses to
// the same catalog.
func FuzzParse(f *testing.F) {
	f.Add([]byte(bbbJSON))
	f.Add([]byte(fullJSON))
	f.Add([]byte(`{"version":1,"streamingFormat":1,"streamingFormatVersion":"","supportsDeltaUpdates":false,"commonTrackFields":{},"tracks":[{"name":"\u0000\ud83d\ude00","selectionParams":{"x":[{},"\ud800"]},"depends":[]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(b)
		if err != nil {
			return
		}
		checkRoundTrip(t, c)
	})
}

func checkRoundTrip(t *testing.T, c *Catalog) {
	t.Helper()
	enc, err := c.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	back, err := Parse(enc)
	if err != nil {
		t.Fatalf("Parse(Encode()): %v\n%s", err, enc)
	}
	again, err := back.Encode()
	if err != nil {
		t.Fatalf("Encode again: %v", err)
	}
	if !bytes.Equal(enc, again) {
		t.Fatalf("round trip differs:\n%s\n%s", enc, again)
	}
}
