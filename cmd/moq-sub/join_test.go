package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/internal/fmp4/fmp4test"
	"github.com/moqgo/moq/internal/moqtest"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// noFetch serves tracks and refuses joining FETCHes with NOT_SUPPORTED, as
// a relay without them does. (The init segment, published before moq-sub
// subscribes, still needs a standalone FETCH.)
type noFetch struct{ moqtransport.Tracks }

func (n *noFetch) Handler() moqtransport.Handler {
	h := n.Tracks.Handler()
	fetch := h.Fetch
	h.Fetch = func(ctx context.Context, s *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
		if !req.Joining {
			return fetch(ctx, s, req)
		}
		return nil, moqtransport.FetchError(wire.FetchNotSupported, "no joining FETCH here")
	}
	return h
}

// TestSubJoinWithoutFetch: through a relay that refuses joining FETCH, moq-sub
// joining in the middle of group 1 says so and starts at group 2 on both
// tracks, whose output decodes to the input's frames from there.
func TestSubJoinWithoutFetch(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	in, initBytes, frags, groups := splitStream(t, media)
	wantMD5 := fmp4test.FrameMD5(t, fmp4test.WriteFile(t, "in.mp4", media))

	ns := moqtransport.Namespace{"nofetch"}
	h := &noFetch{}
	newTrack := func(name string) *moqtransport.Track {
		tr := moqtransport.NewTrack(moqtransport.FullTrackName{Namespace: ns, Name: name}, moqtransport.TrackConfig{})
		h.Add(tr)
		return tr
	}
	initTrack := newTrack("0.mp4")
	w, err := initTrack.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteObject(0, initBytes, nil); err != nil {
		t.Fatal(err)
	}
	media1, media2 := newTrack(trackName(1)), newTrack(trackName(2))
	srv := moqtest.Serve(t, moqnative.ServerConfig{}, h.Handler())
	url, fp := srv.URL, srv.Fingerprint

	// Publish the fragments as moq-pub places them: up to frame 40 (in
	// group 1) now, the rest once moq-sub has subscribed.
	g := fmp4.NewGrouper(in, 0)
	writers := map[uint32]*moqtransport.SubgroupWriter{}
	tracks := map[uint32]*moqtransport.Track{1: media1, 2: media2}
	publish := func(f *fmp4.Fragment) {
		t.Helper()
		p := g.Place(f)
		if p.NewGroup {
			if w := writers[f.TrackID]; w != nil {
				_ = w.Close()
			}
			w, err := tracks[f.TrackID].OpenSubgroup(p.Group, 0, moqtransport.SubgroupOptions{})
			if err != nil {
				t.Fatal(err)
			}
			writers[f.TrackID] = w
		}
		if err := writers[f.TrackID].WriteObject(p.Object, f.Data, nil); err != nil {
			t.Fatal(err)
		}
	}
	video := 0
	cut := slices.IndexFunc(frags, func(f *fmp4.Fragment) bool {
		if f.TrackID == 1 {
			video++
		}
		return video == 41
	})
	for _, f := range frags[:cut] {
		publish(f)
	}

	sub := startSubAt(t, url, fp, "--name", "nofetch")
	sub.waitReady(t)
	sub.stderr.waitFor(t, "moq-sub", `starting at the next group" track=nofetch/1.m4s group=2`,
		`starting at the next group" track=nofetch/2.m4s group=2`)
	if !strings.Contains(sub.stderr.String(), "NOT_SUPPORTED") {
		t.Errorf("the log does not say why:\n%s", sub.stderr.String())
	}
	for _, f := range frags[cut:] {
		publish(f)
	}
	for _, w := range writers {
		_ = w.Close()
	}
	media1.Close(nil)
	media2.Close(nil)
	if err := sub.wait(t); err != nil {
		t.Fatalf("moq-sub: %v\n%s", err, sub.stderr.String())
	}
	want := map[string]int{}
	for i, f := range frags {
		if groups[i] >= 2 {
			want[map[uint32]string{1: "video", 2: "audio"}[f.TrackID]]++
		}
	}
	out := fmp4test.WriteFile(t, "out.mp4", sub.stdout.Bytes())
	if got := fmp4test.Packets(t, out); got["video"] != want["video"] || got["audio"] != want["audio"] || want["video"] != 30 {
		t.Errorf("output packets %v, want %v (groups 2 and later)", got, want)
	}
	if got, want := hashes(fmp4test.FrameMD5(t, out)), hashes(wantMD5[60:]); !slices.Equal(got, want) {
		t.Errorf("output frames\n%s\nwant the input's from frame 60\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	initTrack.Close(nil)
}
