package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestPubWarnsKeyframeMidFragment: fragments whose key frames are not
// their first sample make moq-pub say once, on its log (stderr), how to
// cut the input at key frames; such a fragment does not open a group.
func TestPubWarnsKeyframeMidFragment(t *testing.T) {
	var logs bytes.Buffer
	in := &fmp4.Init{Tracks: []fmp4.Track{{ID: 1, Kind: fmp4.KindVideo, Timescale: 90000}}}
	track := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.ParseNamespacePath("t"), Name: "1.m4s"}, moqtransport.TrackConfig{})
	defer track.Close(nil)
	mt := &mediaTrack{id: 1, track: track}
	p := &publisher{
		log:     slog.New(slog.NewTextHandler(&logs, nil)),
		grouper: fmp4.NewGrouper(in, 0),
		media:   map[uint32]*mediaTrack{1: mt},
		order:   []*mediaTrack{mt},
	}
	for i, f := range []*fmp4.Fragment{
		{TrackID: 1, Keyframe: true},
		{TrackID: 1, LateSync: true},
		{TrackID: 1},
		{TrackID: 1, LateSync: true},
	} {
		f.Data = []byte{byte(i)}
		if err := p.fragment(f); err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
	}
	if p.groups != 1 {
		t.Errorf("%d groups, want 1: a key frame in the middle of a fragment opened one", p.groups)
	}
	if n := strings.Count(logs.String(), "key frame in the middle of a fragment"); n != 1 {
		t.Errorf("the warning was logged %d times, want once; log:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "-movflags frag_keyframe or frag_every_frame") {
		t.Errorf("the warning does not say how to fix the input:\n%s", logs.String())
	}
}
