package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/catalog"
	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/internal/fmp4/fmp4test"
	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test media: 320x240 at 30 fps with a key frame every 15 frames and no
// B-frames, and a 440 Hz tone in AAC, in moq-rs's dev/pub fragmentation.
var (
	video2s = []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=2"}
	tone2s  = []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2"}
	h264    = []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "15", "-keyint_min", "15", "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p"}
	aac     = []string{"-c:a", "aac", "-b:a", "64k"}
)

func avArgs() []string {
	return slices.Concat(video2s, tone2s, []string{"-map", "0", "-map", "1"}, h264, aac)
}

func execute(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(config{stdin: stdin, closeGrace: 50 * time.Millisecond})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestPubVersion(t *testing.T) {
	want := "moq-pub " + version.Version + " (moq-go, draft-ietf-moq-transport-14)\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout, stderr, err := execute(t, nil, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if stdout != want || stderr != "" {
			t.Errorf("%v: stdout %q stderr %q, want %q", args, stdout, stderr, want)
		}
	}
}

// TestPubBadArguments: mistakes are refused with a clear error before any
// network traffic or reading of the input.
func TestPubBadArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "a"}, "accepts 1 arg"},
		{[]string{"moqt://127.0.0.1:4443/"}, `required flag(s) "name" not set`},
		{[]string{"--name", "", "moqt://127.0.0.1:4443/"}, "--name is empty"},
		{[]string{"--name", strings.Repeat("a/", 33), "moqt://127.0.0.1:4443/"}, "--name"},
		{[]string{"--name", "a", "http://127.0.0.1:4443/"}, `unsupported scheme "http"`},
		{[]string{"--name", "a", "127.0.0.1:4443"}, "has no scheme"},
		{[]string{"--name", "a", "moqt:///x"}, "has no host"},
		{[]string{"--name", "a", "--group-duration", "0s", "moqt://127.0.0.1:4443/"}, "--group-duration"},
		{[]string{"--name", "a", "--fingerprint", "abcd", "moqt://127.0.0.1:4443/"}, "64 hex digits"},
		{[]string{"--name", "a", "--log-level", "loud", "moqt://127.0.0.1:4443/"}, "--log-level"},
		{[]string{"--name", "a", "--fps", "-1", "moqt://127.0.0.1:4443/"}, "invalid argument"},
	} {
		stdout, _, err := execute(t, strings.NewReader("unread"), c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want it to contain %q", c.args, err, c.want)
		}
		if err != nil && exitCode(err) != exitFailure {
			t.Errorf("%q: exit status %d", c.args, exitCode(err))
		}
		if stdout != "" {
			t.Errorf("%q: stdout %q", c.args, stdout)
		}
	}
}

// syncBuffer is an output that tests can read and wait on.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{changed: make(chan struct{})} }

func (l *syncBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	close(l.changed)
	l.changed = make(chan struct{})
	return l.b.Write(p)
}

func (l *syncBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor waits until the output contains s.
func (l *syncBuffer) waitFor(t *testing.T, what, s string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		l.mu.Lock()
		has, changed := strings.Contains(l.b.String(), s), l.changed
		l.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s: no %q in:\n%s", what, s, l.String())
		}
	}
}

// pubProc is moq-pub running in the test, reading a pipe.
type pubProc struct {
	in     *io.PipeWriter
	stderr *syncBuffer
	ready  chan struct{}
	cancel context.CancelFunc
	done   chan error
}

// startPub runs moq-pub against the relay with args (URL added).
func startPub(t *testing.T, r *fmp4test.Relay, scheme string, args ...string) *pubProc {
	t.Helper()
	pr, pw := io.Pipe()
	p := &pubProc{in: pw, stderr: newSyncBuffer(), ready: make(chan struct{}), done: make(chan error, 1)}
	var once sync.Once
	cmd := newRootCommand(config{
		stdin:      pr,
		ready:      func() { once.Do(func() { close(p.ready) }) },
		closeGrace: 100 * time.Millisecond,
	})
	cmd.SetOut(io.Discard)
	cmd.SetErr(p.stderr)
	cmd.SetArgs(append([]string{"--fingerprint", r.Fingerprint, "--log-level", "debug"}, append(args, r.URL(scheme))...))
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	go func() { p.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		_ = pw.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Errorf("moq-pub did not stop")
		}
	})
	select {
	case <-p.ready:
	case err := <-p.done:
		t.Fatalf("moq-pub stopped: %v\n%s", err, p.stderr.String())
	case <-time.After(10 * time.Second):
		t.Fatalf("moq-pub not ready:\n%s", p.stderr.String())
	}
	return p
}

func (p *pubProc) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := p.in.Write(b); err != nil {
		t.Fatalf("writing to moq-pub: %v\n%s", err, p.stderr.String())
	}
}

// wait waits for moq-pub to end and returns its error.
func (p *pubProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("moq-pub did not end:\n%s", p.stderr.String())
		return nil
	}
}

// splitInit returns the init segment (up to the end of the moov) and the
// rest of a stream.
func splitInit(t *testing.T, b []byte) (*fmp4.Init, []byte, []byte) {
	t.Helper()
	sp := fmp4.NewSplitter(bytes.NewReader(b))
	in, err := sp.Init()
	if err != nil {
		t.Fatal(err)
	}
	f, err := sp.Next()
	if err != nil {
		t.Fatal(err)
	}
	return in, b[:f.Offset], b[f.Offset:]
}

// fragments returns the fragments of a stream.
func fragments(t *testing.T, b []byte) []*fmp4.Fragment {
	t.Helper()
	sp := fmp4.NewSplitter(bytes.NewReader(b))
	var out []*fmp4.Fragment
	for {
		f, err := sp.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
}

// trackObjects checks a media track's events: consecutive groups from 0,
// object IDs 0, 1, 2... in each (groups arrive on streams of their own, so
// they may interleave), every subgroup ended, and End of Track after the
// last object. It returns the fragments by group.
func trackObjects(t *testing.T, name string, in *fmp4.Init, evs []fmp4test.Event) [][]*fmp4.Fragment {
	t.Helper()
	byGroup := map[uint64][]*fmp4.Fragment{}
	ended := map[uint64]bool{}
	var eot *fmp4test.Event
	for i, ev := range evs {
		switch ev.Kind {
		case moqtransport.EventSubgroupEnd:
			ended[ev.Group] = true
			continue
		case moqtransport.EventObject:
		default:
			t.Fatalf("%s: event %d is %v", name, i, ev.Kind)
		}
		if ev.Status == wire.StatusEndOfTrack {
			if eot != nil {
				t.Fatalf("%s: two End of Track objects", name)
			}
			eot = &evs[i]
			continue
		}
		if ev.Status != wire.StatusNormal {
			t.Fatalf("%s: object {%d,%d} has status %v", name, ev.Group, ev.Object, ev.Status)
		}
		if ended[ev.Group] {
			t.Fatalf("%s: object {%d,%d} after its subgroup ended", name, ev.Group, ev.Object)
		}
		if ev.Object != uint64(len(byGroup[ev.Group])) {
			t.Fatalf("%s: object {%d,%d} after %d objects of its group", name, ev.Group, ev.Object, len(byGroup[ev.Group]))
		}
		f, err := fmp4.ParseFragment(ev.Payload, in)
		if err != nil {
			t.Fatalf("%s: object {%d,%d}: %v", name, ev.Group, ev.Object, err)
		}
		byGroup[ev.Group] = append(byGroup[ev.Group], f)
	}
	groups := make([][]*fmp4.Fragment, len(byGroup))
	for g, fs := range byGroup {
		if g >= uint64(len(groups)) {
			t.Fatalf("%s: groups %v are not 0 to %d", name, slices.Sorted(maps.Keys(byGroup)), len(groups)-1)
		}
		groups[g] = fs
		if !ended[g] {
			t.Errorf("%s: group %d's subgroup did not end", name, g)
		}
	}
	switch last := uint64(len(groups) - 1); {
	case eot == nil:
		t.Errorf("%s: no End of Track", name)
	case len(groups) > 0 && (eot.Group != last || eot.Object != uint64(len(groups[last]))):
		t.Errorf("%s: End of Track at {%d,%d}, want {%d,%d}", name, eot.Group, eot.Object, last, len(groups[last]))
	}
	return groups
}

// TestPublish publishes video and audio and looks at the tracks through the
// relay: the catalog (with --fps and --bitrate), the init segment, groups
// that start at key frames on both tracks, object IDs, End of Track and
// PUBLISH_DONE TRACK_ENDED.
func TestPublish(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	in, initBytes, rest := splitInit(t, media)
	want := fmp4test.Packets(t, fmp4test.WriteFile(t, "in.mp4", media))

	r := fmp4test.StartRelay(t)
	pub := startPub(t, r, "moqt", "--name", "test/pub", "--fps", "30", "--bitrate", "500000")
	c := r.Connect(t, "https")
	catSub := c.Subscribe(t, "test/pub", ".catalog", wire.Filter{Type: wire.FilterAbsoluteStart})
	initSub := c.Subscribe(t, "test/pub", "0.mp4", wire.Filter{Type: wire.FilterAbsoluteStart})
	msfSub := c.Subscribe(t, "test/pub", "catalog", wire.Filter{Type: wire.FilterAbsoluteStart})
	pub.write(t, initBytes)
	catJSON := fmp4test.First(t, catSub)
	checkMSF(t, fmp4test.First(t, msfSub), in)
	if got := fmp4test.First(t, initSub); !bytes.Equal(got, in.Data) {
		t.Errorf("0.mp4 is not the input's ftyp and moov")
	}
	cat, err := catalog.Parse(catJSON)
	if err != nil {
		t.Fatalf("catalog: %v\n%s", err, catJSON)
	}
	v, okV := cat.Track("1.m4s")
	a, okA := cat.Track("2.m4s")
	switch {
	case !okV || !okA || len(cat.Tracks) != 2:
		t.Fatalf("catalog tracks:\n%s", catJSON)
	case *v.Namespace != "/test/pub" || *v.InitTrack != "0.mp4" || *v.Packaging != catalog.PackagingCMAF:
		t.Errorf("catalog common fields:\n%s", catJSON)
	case !strings.HasPrefix(*v.SelectionParams.Codec, "avc1.") || *v.SelectionParams.Width != 320 || *v.SelectionParams.Height != 240:
		t.Errorf("video selection params:\n%s", catJSON)
	case v.SelectionParams.Framerate == nil || *v.SelectionParams.Framerate != 30 || v.SelectionParams.Bitrate == nil || *v.SelectionParams.Bitrate != 500000:
		t.Errorf("--fps and --bitrate are not in the catalog:\n%s", catJSON)
	case *a.SelectionParams.Codec != "mp4a.40.2" || *a.SelectionParams.Samplerate != 48000 || a.SelectionParams.ChannelConfig == nil:
		t.Errorf("audio selection params:\n%s", catJSON)
	}

	// The media tracks have no content yet: Next Group Start gets them all.
	vSub := c.Subscribe(t, "test/pub", "1.m4s", wire.Filter{Type: wire.FilterNextGroupStart})
	aSub := c.Subscribe(t, "test/pub", "2.m4s", wire.Filter{Type: wire.FilterNextGroupStart})
	pub.write(t, rest)
	_ = pub.in.Close()
	vEvs, vErr := fmp4test.Collect(vSub, 20*time.Second)
	aEvs, aErr := fmp4test.Collect(aSub, 20*time.Second)
	if vErr != nil || aErr != nil {
		t.Fatalf("the subscriptions ended with %v and %v, not PUBLISH_DONE TRACK_ENDED", vErr, aErr)
	}
	if err := pub.wait(t); err != nil {
		t.Fatalf("moq-pub: %v\n%s", err, pub.stderr.String())
	}
	vGroups := trackObjects(t, "video", in, vEvs)
	aGroups := trackObjects(t, "audio", in, aEvs)

	// 60 frames with a key frame every 15: 4 groups of 15, each starting
	// with its key frame.
	nv, na := 0, 0
	for g, frags := range vGroups {
		nv += len(frags)
		for i, f := range frags {
			if f.TrackID != 1 || f.Keyframe != (i == 0) {
				t.Errorf("video object {%d,%d}: track %d keyframe %v", g, i, f.TrackID, f.Keyframe)
			}
		}
	}
	if len(vGroups) != 4 || nv != want["video"] {
		t.Errorf("video: %d groups, %d objects; want 4 groups, %d objects (ffprobe)", len(vGroups), nv, want["video"])
	}
	// The audio groups are the video's: each starts at its key frame.
	if len(aGroups) != len(vGroups) {
		t.Errorf("audio has %d groups, video %d", len(aGroups), len(vGroups))
	}
	vTS, aTS := in.Tracks[0].Timescale, in.Tracks[1].Timescale
	for g, frags := range aGroups {
		na += len(frags)
		if g == 0 || g >= len(vGroups) {
			continue
		}
		key := float64(vGroups[g][0].DecodeTime) / float64(vTS)
		start := float64(frags[0].DecodeTime) / float64(aTS)
		prev := aGroups[g-1][len(aGroups[g-1])-1]
		prevEnd := float64(prev.DecodeTime+prev.Duration) / float64(aTS)
		if start < key-0.05 || start > key+0.1 || prevEnd > start+0.001 {
			t.Errorf("audio group %d starts at %.3fs (previous ends at %.3fs); its key frame is at %.3fs", g, start, prevEnd, key)
		}
	}
	if na != want["audio"] {
		t.Errorf("audio: %d objects, want %d (ffprobe)", na, want["audio"])
	}

	// The catalog and init tracks end too: object {0,0}, End of Track {1,0}.
	for _, sub := range []*moqtransport.Subscription{catSub, initSub} {
		evs, err := fmp4test.Collect(sub, 5*time.Second)
		if err != nil {
			t.Errorf("%s ended with %v", sub.Name(), err)
		}
		if !slices.ContainsFunc(evs, func(e fmp4test.Event) bool {
			return e.Status == wire.StatusEndOfTrack && e.Group == 1 && e.Object == 0
		}) {
			t.Errorf("%s: no End of Track at {1,0} in %+v", sub.Name(), evs)
		}
	}
	for _, s := range []string{"publishing", "1.m4s video avc1", "2.m4s audio mp4a.40.2", "input ended", "tracks ended"} {
		if !strings.Contains(pub.stderr.String(), s) {
			t.Errorf("no %q in the log:\n%s", s, pub.stderr.String())
		}
	}
}

// TestPublishAudioOnly: without video, groups span --group-duration of
// media time.
func TestPublishAudioOnly(t *testing.T) {
	media := fmp4test.Encode(t, "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3.5", "-c:a", "aac")
	in, initBytes, rest := splitInit(t, media)
	r := fmp4test.StartRelay(t)
	pub := startPub(t, r, "https", "--name", "tone", "--group-duration", "1s")
	c := r.Connect(t, "moqt")
	// The track appears with the init segment: wait for it.
	catSub := c.Subscribe(t, "tone", ".catalog", wire.Filter{Type: wire.FilterAbsoluteStart})
	pub.write(t, initBytes)
	fmp4test.First(t, catSub)
	sub := c.Subscribe(t, "tone", "1.m4s", wire.Filter{Type: wire.FilterNextGroupStart})
	pub.write(t, rest)
	_ = pub.in.Close()
	evs, err := fmp4test.Collect(sub, 20*time.Second)
	if err != nil {
		t.Fatalf("subscription: %v", err)
	}
	if err := pub.wait(t); err != nil {
		t.Fatalf("moq-pub: %v\n%s", err, pub.stderr.String())
	}
	groups := trackObjects(t, "audio", in, evs)
	if len(groups) != 4 {
		t.Errorf("%d groups, want 4 for 3.5 s in groups of 1 s", len(groups))
	}
	first := groups[0][0].DecodeTime
	ts := uint64(in.Tracks[0].Timescale)
	for g, frags := range groups {
		for i, f := range frags {
			if want := (f.DecodeTime - first) / ts; want != uint64(g) {
				t.Errorf("object {%d,%d} at %.3fs belongs in group %d", g, i, float64(f.DecodeTime-first)/float64(ts), want)
			}
		}
	}
	if !strings.Contains(pub.stderr.String(), `groups="every 1s of track 1"`) {
		t.Errorf("the log does not say how it groups:\n%s", pub.stderr.String())
	}
}

// TestPublishCodecs: any codec the catalog can name is published; a track
// it cannot name is left out with a warning.
func TestPublishCodecs(t *testing.T) {
	v1s := []string{"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=1"}
	a1s := []string{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=1"}
	maps := []string{"-map", "0", "-map", "1"}
	vtt := filepath.Join(t.TempDir(), "s.vtt")
	if err := os.WriteFile(vtt, []byte("WEBVTT\n\n00:00:00.000 --> 00:00:00.900\nhello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		args   []string
		codecs []string // catalog codec prefixes of the tracks published
		warn   string
	}{
		{"hevc+opus", slices.Concat(v1s, a1s, maps, []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=none:keyint=15:min-keyint=15:bframes=0", "-tag:v", "hvc1", "-pix_fmt", "yuv420p", "-c:a", "libopus"}),
			[]string{"hvc1.1.6.", "opus"}, ""},
		{"vp9+flac", slices.Concat(v1s, a1s, maps, []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-g", "15", "-pix_fmt", "yuv420p", "-c:a", "flac", "-strict", "-2"}),
			[]string{"vp09.00.", "flac"}, ""},
		{"av1+ac3", slices.Concat(v1s, a1s, maps, []string{"-c:v", "libsvtav1", "-preset", "12", "-g", "15", "-svtav1-params", "lp=1", "-pix_fmt", "yuv420p", "-c:a", "ac3"}),
			[]string{"av01.0.", "ac-3"}, ""},
		{"h264+subtitles", slices.Concat(v1s, []string{"-i", vtt, "-map", "0", "-map", "1"}, h264, []string{"-c:s", "mov_text"}),
			[]string{"avc1."}, `leaving out a track whose codec the catalog cannot name" track=2 kind=text`},
	} {
		t.Run(c.name, func(t *testing.T) {
			media := fmp4test.Encode(t, c.args...)
			in, initBytes, rest := splitInit(t, media)
			r := fmp4test.StartRelay(t)
			pub := startPub(t, r, "moqt", "--name", "codecs")
			cl := r.Connect(t, "moqt")
			catSub := cl.Subscribe(t, "codecs", ".catalog", wire.Filter{Type: wire.FilterAbsoluteStart})
			pub.write(t, initBytes)
			cat, err := catalog.Parse(fmp4test.First(t, catSub))
			if err != nil {
				t.Fatal(err)
			}
			if len(cat.Tracks) != len(c.codecs) {
				t.Fatalf("catalog has %d tracks, want %d", len(cat.Tracks), len(c.codecs))
			}
			var subs []*moqtransport.Subscription
			for i, ct := range cat.Tracks {
				if codec := *ct.SelectionParams.Codec; !strings.HasPrefix(codec, c.codecs[i]) {
					t.Errorf("track %s: codec %q, want %q...", ct.Name, codec, c.codecs[i])
				}
				subs = append(subs, cl.Subscribe(t, "codecs", ct.Name, wire.Filter{Type: wire.FilterNextGroupStart}))
			}
			pub.write(t, rest)
			_ = pub.in.Close()
			frags := fragments(t, media)
			for i, sub := range subs {
				evs, err := fmp4test.Collect(sub, 20*time.Second)
				if err != nil {
					t.Fatalf("%s: %v", sub.Name(), err)
				}
				groups := trackObjects(t, sub.Name().Name, in, evs)
				id := in.Tracks[i].ID
				want := 0
				for _, f := range frags {
					if f.TrackID == id {
						want++
					}
				}
				n := 0
				for g, fs := range groups {
					n += len(fs)
					if in.Tracks[i].Kind == fmp4.KindVideo && !fs[0].Keyframe {
						t.Errorf("%s: group %d does not start with a key frame", sub.Name(), g)
					}
				}
				if n != want {
					t.Errorf("%s: %d objects, want %d", sub.Name(), n, want)
				}
			}
			if err := pub.wait(t); err != nil {
				t.Fatalf("moq-pub: %v\n%s", err, pub.stderr.String())
			}
			if c.warn != "" && !strings.Contains(pub.stderr.String(), c.warn) {
				t.Errorf("no %q in the log:\n%s", c.warn, pub.stderr.String())
			}
		})
	}
}

// TestPubBadInput: input moq-pub cannot publish ends it with a clear error and
// exit status 3, never a panic.
func TestPubBadInput(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	_, initBytes, rest := splitInit(t, media)
	frags := fragments(t, media)
	moofOnly := slices.Concat(initBytes, frags[0].Data[:bytes.Index(frags[0].Data, []byte("mdat"))-4])
	ffmpeg, _ := fmp4test.Tools(t)
	plain := filepath.Join(t.TempDir(), "plain.mp4")
	out, err := exec.Command(ffmpeg, slices.Concat([]string{"-hide_banner", "-nostdin", "-v", "error"}, video2s, h264, []string{"-movflags", "+faststart", plain})...).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	plainBytes, err := os.ReadFile(plain)
	if err != nil {
		t.Fatal(err)
	}
	garbage := make([]byte, 4096)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	r := fmp4test.StartRelay(t)
	for _, c := range []struct {
		name  string
		input []byte
		want  string
	}{
		{"empty", nil, "the input is empty"},
		{"garbage", garbage, "the input is not MP4"},
		{"text", []byte("this is not a video\n"), `the input is not MP4: it starts with "this is "`},
		{"truncated init", initBytes[:len(initBytes)/2], "truncated"},
		{"truncated fragment", media[:len(initBytes)+len(rest)/2], "truncated"},
		{"moof without mdat", moofOnly, "has no mdat: the input ended after it"},
		{"mdat without moof", slices.Concat(initBytes, frags[0].Data[bytes.Index(frags[0].Data, []byte("mdat"))-4:]), "mdat at offset"},
		{"not fragmented", plainBytes, "not fragmented MP4"},
		{"second init", slices.Concat(media, media), "a second ftyp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, err := execute(t, bytes.NewReader(c.input), "--fingerprint", r.Fingerprint, "--name", "bad", r.URL("moqt"))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want it to contain %q\n%s", err, c.want, stderr)
			}
			if code := exitCode(err); code != exitBadInput {
				t.Errorf("exit status %d, want %d", code, exitBadInput)
			}
			if strings.Contains(stderr, "panic") {
				t.Errorf("panic:\n%s", stderr)
			}
		})
	}
}

// TestPubInputErrorEndsSubscriptions: after a failure mid-stream the
// subscribers get PUBLISH_DONE with an error, not a clean end.
func TestPubInputErrorEndsSubscriptions(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	_, initBytes, rest := splitInit(t, media)
	r := fmp4test.StartRelay(t)
	pub := startPub(t, r, "moqt", "--name", "broken")
	c := r.Connect(t, "moqt")
	catSub := c.Subscribe(t, "broken", ".catalog", wire.Filter{Type: wire.FilterAbsoluteStart})
	pub.write(t, initBytes)
	fmp4test.First(t, catSub)
	sub := c.Subscribe(t, "broken", "1.m4s", wire.Filter{Type: wire.FilterNextGroupStart})
	pub.write(t, rest[:len(rest)/2])
	_ = pub.in.Close()
	_, subErr := fmp4test.Collect(sub, 10*time.Second)
	var re *moqtransport.RequestError
	if !errors.As(subErr, &re) || re.Code != uint64(wire.DoneInternalError) || !strings.Contains(re.Reason, "truncated") {
		t.Errorf("subscription ended with %v, want PUBLISH_DONE INTERNAL_ERROR saying the input is truncated", subErr)
	}
	if err := pub.wait(t); err == nil || exitCode(err) != exitBadInput {
		t.Errorf("moq-pub: %v", err)
	}
}

// TestPubInterrupt: the first signal ends the tracks cleanly (End of Track,
// PUBLISH_DONE TRACK_ENDED) and exits 0.
func TestPubInterrupt(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	_, initBytes, rest := splitInit(t, media)
	r := fmp4test.StartRelay(t)
	pub := startPub(t, r, "moqt", "--name", "live")
	c := r.Connect(t, "moqt")
	catSub := c.Subscribe(t, "live", ".catalog", wire.Filter{Type: wire.FilterAbsoluteStart})
	pub.write(t, initBytes)
	fmp4test.First(t, catSub)
	sub := c.Subscribe(t, "live", "1.m4s", wire.Filter{Type: wire.FilterNextGroupStart})
	pub.write(t, rest[:len(rest)/2])
	pub.stderr.waitFor(t, "moq-pub", "group=1")
	pub.cancel()
	evs, err := fmp4test.Collect(sub, 10*time.Second)
	if err != nil {
		t.Errorf("subscription ended with %v", err)
	}
	if !slices.ContainsFunc(evs, func(e fmp4test.Event) bool { return e.Status == wire.StatusEndOfTrack }) {
		t.Errorf("no End of Track in %d events", len(evs))
	}
	if err := pub.wait(t); err != nil {
		t.Errorf("moq-pub: %v", err)
	}
	if !strings.Contains(pub.stderr.String(), "interrupted: ending the tracks") {
		t.Errorf("log:\n%s", pub.stderr.String())
	}
}

// TestPubRelayGone: when the relay goes away moq-pub fails with exit status 1.
func TestPubRelayGone(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	_, initBytes, _ := splitInit(t, media)
	r := fmp4test.StartRelay(t)
	pub := startPub(t, r, "moqt", "--name", "gone")
	pub.write(t, initBytes)
	pub.stderr.waitFor(t, "moq-pub", "publishing")
	r.Stop()
	err := pub.wait(t)
	if err == nil || !strings.Contains(err.Error(), "session ended") || exitCode(err) != exitFailure {
		t.Errorf("moq-pub after the relay closed: %v", err)
	}
}

func TestPubExitCode(t *testing.T) {
	if c := exitCode(fmt.Errorf("x: %w", &inputError{errors.New("bad")})); c != exitBadInput {
		t.Errorf("input error: %d", c)
	}
	if c := exitCode(errors.New("other")); c != exitFailure {
		t.Errorf("other error: %d", c)
	}
}

// checkMSF: the MSF catalog on track "catalog" is draft-01 and describes
// the tracks of the init segment, each with its own init segment.
func checkMSF(t *testing.T, js []byte, in *fmp4.Init) {
	t.Helper()
	if !bytes.Contains(js, []byte(`"version":"draft-01"`)) {
		t.Errorf("MSF catalog version:\n%s", js)
	}
	m, err := catalog.ParseMSF(js)
	if err != nil {
		t.Fatalf("MSF catalog: %v\n%s", err, js)
	}
	v, okV := m.Track("1.m4s")
	a, okA := m.Track("2.m4s")
	switch {
	case !okV || !okA || len(m.Tracks) != 2:
		t.Fatalf("MSF catalog tracks:\n%s", js)
	case v.Role != catalog.MSFRoleVideo || a.Role != catalog.MSFRoleAudio || v.Packaging != "cmaf" || !v.IsLive || v.Namespace != nil:
		t.Errorf("MSF track fields:\n%s", js)
	case !strings.HasPrefix(v.Codec, "avc1.") || *v.Width != 320 || *v.Height != 240 || v.Framerate == nil || *v.Framerate != 30:
		t.Errorf("MSF video fields:\n%s", js)
	case a.Codec != "mp4a.40.2" || *a.Samplerate != 48000:
		t.Errorf("MSF audio fields:\n%s", js)
	}
	for _, tr := range []catalog.MSFTrackInfo{v, a} {
		one, err := fmp4.ParseInit(tr.InitData)
		if err != nil {
			t.Fatalf("%s: init data: %v", tr.Name, err)
		}
		want := strconv.FormatUint(uint64(one.Tracks[0].ID), 10) + ".m4s"
		if len(one.Tracks) != 1 || want != tr.Name {
			t.Errorf("%s: its init data has tracks %v", tr.Name, one.Tracks)
		}
	}
	if len(in.Tracks) != 2 {
		t.Errorf("input tracks %v", in.Tracks)
	}
}
