package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/catalog"
	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/internal/fmp4/fmp4test"
	"github.com/moqgo/moq/internal/netem"
	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqtransport"
)

var binDir string // where the tests build moq-pub and moq-sub

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "moq-sub-test-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// Test media: 3 s of 320x240 at 30 fps, a key frame every second and no
// B-frames, and a tone in AAC.
func avArgs() []string {
	return []string{
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=3",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
		"-map", "0", "-map", "1",
		"-c:v", "libx264", "-preset", "ultrafast", "-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k",
	}
}

func execute(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand(config{initTimeout: time.Second})
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestSubVersion(t *testing.T) {
	want := "moq-sub " + version.Version + " (moq-go, draft-ietf-moq-transport-14)\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout, stderr, err := execute(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if stdout != want || stderr != "" {
			t.Errorf("%v: stdout %q stderr %q, want %q", args, stdout, stderr, want)
		}
	}
}

func TestSubBadArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--name", "a"}, "accepts 1 arg"},
		{[]string{"moqt://127.0.0.1:4443/"}, `required flag(s) "name" not set`},
		{[]string{"--name", "", "moqt://127.0.0.1:4443/"}, "--name is empty"},
		{[]string{"--name", "a", "--track", "", "moqt://127.0.0.1:4443/"}, `--track "": not a track name`},
		{[]string{"--name", "a", "http://127.0.0.1:4443/"}, `unsupported scheme "http"`},
		{[]string{"--name", "a", "moqt:///x"}, "has no host"},
		{[]string{"--name", "a", "--fingerprint", "zz", "moqt://127.0.0.1:4443/"}, "64 hex digits"},
		{[]string{"--name", "a", "--log-level", "loud", "moqt://127.0.0.1:4443/"}, "--log-level"},
		{[]string{"--name", "a", "--output-queue", "0", "moqt://127.0.0.1:4443/"}, "--output-queue 0: give a positive number of bytes"},
	} {
		stdout, _, err := execute(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want it to contain %q", c.args, err, c.want)
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

func (l *syncBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.b.Bytes())
}

func (l *syncBuffer) String() string { return string(l.Bytes()) }

func (l *syncBuffer) waitFor(t *testing.T, what string, ss ...string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		l.mu.Lock()
		has, changed := true, l.changed
		for _, s := range ss {
			has = has && strings.Contains(l.b.String(), s)
		}
		l.mu.Unlock()
		if has {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s: no %q in:\n%s", what, ss, l.String())
		}
	}
}

var (
	buildOnce sync.Once
	buildErr  string
)

// pubBinary builds moq-pub and moq-sub (with the race detector when the
// tests have it, so that the packages compiled for the tests are reused)
// and returns moq-pub's path.
func pubBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		args := []string{"build", "-o", binDir + string(filepath.Separator)}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/moqgo/moq/cmd/moq-pub", "github.com/moqgo/moq/cmd/moq-sub")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if out, err := exec.CommandContext(ctx, goTool, args...).CombinedOutput(); err != nil {
			buildErr = "go " + strings.Join(args, " ") + ": " + err.Error() + "\n" + string(out)
		}
	})
	if buildErr != "" {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "moq-pub")
}

// subBinary returns the path of the moq-sub binary built by pubBinary.
func subBinary(t *testing.T) string {
	t.Helper()
	pubBinary(t)
	return filepath.Join(binDir, "moq-sub")
}

// pubProc is a moq-pub process reading a pipe.
type pubProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *syncBuffer
	done   chan error
}

func startPub(t *testing.T, r *fmp4test.Relay, scheme string, args ...string) *pubProc {
	t.Helper()
	bin := pubBinary(t)
	p := &pubProc{stderr: newSyncBuffer(), done: make(chan error, 1)}
	p.cmd = exec.Command(bin, append([]string{"--fingerprint", r.Fingerprint}, append(args, r.URL(scheme))...)...)
	p.cmd.Stderr = p.stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = p.stdin.Close()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			t.Errorf("moq-pub did not stop:\n%s", p.stderr.String())
		}
	})
	p.stderr.waitFor(t, "moq-pub", "namespace published")
	return p
}

func (p *pubProc) write(t *testing.T, b []byte) {
	t.Helper()
	if _, err := p.stdin.Write(b); err != nil {
		t.Fatalf("writing to moq-pub: %v\n%s", err, p.stderr.String())
	}
}

func (p *pubProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("moq-pub did not end:\n%s", p.stderr.String())
		return nil
	}
}

// subProc is moq-sub running in the test.
type subProc struct {
	stdout, stderr *syncBuffer
	ready          chan struct{}
	cancel         context.CancelFunc
	done           chan error
}

func startSub(t *testing.T, r *fmp4test.Relay, scheme string, args ...string) *subProc {
	t.Helper()
	return startSubAt(t, r.URL(scheme), r.Fingerprint, args...)
}

// startSubAt runs moq-sub against the server at url whose certificate has
// the fingerprint fp.
func startSubAt(t *testing.T, url, fp string, args ...string) *subProc {
	t.Helper()
	s := &subProc{stdout: newSyncBuffer(), stderr: newSyncBuffer(), ready: make(chan struct{}), done: make(chan error, 1)}
	var once sync.Once
	cmd := newRootCommand(config{ready: func() { once.Do(func() { close(s.ready) }) }, initTimeout: time.Second})
	cmd.SetOut(s.stdout)
	cmd.SetErr(s.stderr)
	cmd.SetArgs(append([]string{"--fingerprint", fp, "--log-level", "debug"}, append(args, url)...))
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() { s.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			t.Errorf("moq-sub did not stop")
		}
	})
	return s
}

func (s *subProc) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-s.ready:
	case err := <-s.done:
		s.done <- err
		t.Fatalf("moq-sub stopped: %v\n%s", err, s.stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("moq-sub not ready:\n%s", s.stderr.String())
	}
}

func (s *subProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(20 * time.Second):
		t.Fatalf("moq-sub did not end:\n%s", s.stderr.String())
		return nil
	}
}

// splitInit returns the init segment and the fragments of a stream, with
// each fragment's group as moq-pub places it.
func splitStream(t *testing.T, b []byte) (*fmp4.Init, []byte, []*fmp4.Fragment, []uint64) {
	t.Helper()
	sp := fmp4.NewSplitter(bytes.NewReader(b))
	in, err := sp.Init()
	if err != nil {
		t.Fatal(err)
	}
	g := fmp4.NewGrouper(in, 0)
	var frags []*fmp4.Fragment
	var groups []uint64
	for {
		f, err := sp.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frags = append(frags, f)
		groups = append(groups, g.Place(f).Group)
	}
	return in, b[:frags[0].Offset], frags, groups
}

// hashes returns the size and hash columns of framemd5 lines.
func hashes(lines []string) []string {
	var out []string
	for _, l := range lines {
		f := strings.Split(l, ",")
		out = append(out, strings.TrimSpace(f[len(f)-2])+","+strings.TrimSpace(f[len(f)-1]))
	}
	return out
}

// TestSubEndToEnd: ffmpeg → moq-pub → relay → moq-sub → file. The file has
// as many video and audio packets as the input, and its video decodes to
// the same frames (framemd5), over WebTransport and over raw QUIC.
func TestSubEndToEnd(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	inPath := fmp4test.WriteFile(t, "in.mp4", media)
	wantPackets := fmp4test.Packets(t, inPath)
	wantMD5 := fmp4test.FrameMD5(t, inPath)
	if wantPackets["video"] != 90 || wantPackets["audio"] == 0 || len(wantMD5) != 90 {
		t.Fatalf("the input has %v packets and %d frames", wantPackets, len(wantMD5))
	}
	_, initBytes, frags, _ := splitStream(t, media)
	for _, c := range []struct {
		scheme  string
		catalog string // "", --catalog (moq-rs's) or --msf
	}{{"https", ""}, {"moqt", "--catalog"}, {"https", "--msf"}} {
		t.Run(c.scheme+c.catalog, func(t *testing.T) {
			start := time.Now()
			r := fmp4test.StartRelay(t)
			pub := startPub(t, r, c.scheme, "--name", "e2e/av", "--fps", "30")
			// The init segment first; the media once moq-sub subscribed,
			// so that it gets every packet.
			pub.write(t, initBytes)
			pub.stderr.waitFor(t, "moq-pub", "msg=publishing")
			// Every group in order (the output is compared frame by
			// frame): a machine busy with other tests must not make
			// moq-sub skip ahead.
			args := []string{"--name", "e2e/av", "--skip-behind", "0"}
			if c.catalog != "" {
				args = append(args, c.catalog)
			}
			sub := startSub(t, r, c.scheme, args...)
			sub.waitReady(t)
			pub.write(t, media[frags[0].Offset:])
			_ = pub.stdin.Close()
			if err := sub.wait(t); err != nil {
				t.Fatalf("moq-sub: %v\n%s\nmoq-pub:\n%s", err, sub.stderr.String(), pub.stderr.String())
			}
			if err := pub.wait(t); err != nil {
				t.Fatalf("moq-pub: %v\n%s", err, pub.stderr.String())
			}
			out := fmp4test.WriteFile(t, "out.mp4", sub.stdout.Bytes())
			if got := fmp4test.Packets(t, out); got["video"] != wantPackets["video"] || got["audio"] != wantPackets["audio"] {
				t.Errorf("output packets %v, input %v", got, wantPackets)
			}
			if got := fmp4test.FrameMD5(t, out); !slices.Equal(got, wantMD5) {
				t.Errorf("the output's video frames differ from the input's:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(wantMD5, "\n"))
			}
			if got := fmp4test.Streams(t, out); !slices.Equal(got, []string{"h264", "aac"}) {
				t.Errorf("output streams %v", got)
			}
			wantLog := []string{"the tracks ended", `tracks="1.m4s (video), 2.m4s (audio)"`}
			if c.catalog == "--msf" {
				wantLog = append(wantLog, `msg="MSF catalog" version=draft-01 tracks=2`)
			}
			for _, s := range wantLog {
				if !strings.Contains(sub.stderr.String(), s) {
					t.Errorf("no %q in moq-sub's log:\n%s", s, sub.stderr.String())
				}
			}
			t.Logf("%s: %v", c.scheme, time.Since(start))
		})
	}
}

// TestSubLateJoin: a subscriber that joins in the middle of a group gets the
// init segment (FETCH from the relay) and starts at once at that group's
// first object on both tracks (a joining FETCH): before the publisher
// starts the next group, moq-sub has written the current group's key
// frame, and the output decodes to the input's frames from there.
func TestSubLateJoin(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	inPath := fmp4test.WriteFile(t, "in.mp4", media)
	wantMD5 := fmp4test.FrameMD5(t, inPath)
	_, initBytes, frags, groups := splitStream(t, media)
	// Feed up to the 11th video frame of group 1 (frame 40 of 90).
	cut, videoSeen := 0, 0
	for i, f := range frags {
		if f.TrackID == 1 {
			videoSeen++
		}
		if videoSeen == 41 {
			cut = i
			break
		}
	}
	want := map[string]int{}
	var firstOfGroup1 [][]byte // each track's first object of group 1
	seen := map[uint32]bool{}
	for i, f := range frags {
		if groups[i] >= 1 {
			want[map[uint32]string{1: "video", 2: "audio"}[f.TrackID]]++
			if !seen[f.TrackID] {
				seen[f.TrackID] = true
				firstOfGroup1 = append(firstOfGroup1, f.Data)
			}
		}
	}
	if len(firstOfGroup1) != 2 {
		t.Fatalf("group 1 starts on %d tracks", len(firstOfGroup1))
	}
	r := fmp4test.StartRelay(t)
	pub := startPub(t, r, "moqt", "--name", "late", "--log-level", "debug")
	pub.write(t, initBytes)
	pub.write(t, media[frags[0].Offset:frags[cut].Offset])
	pub.stderr.waitFor(t, "moq-pub", "msg=group track=1 group=1", "msg=group track=2 group=1")
	sub := startSub(t, r, "https", "--name", "late", "--catalog", "--skip-behind", "0")
	sub.waitReady(t)
	// Group 2 is not published yet: the output already holds the init
	// segment and each track's group 1 from its first object.
	sub.stderr.waitFor(t, "moq-sub", "track=late/1.m4s group=1", "track=late/2.m4s group=1")
	sub.stdout.waitFor(t, "moq-sub output", string(firstOfGroup1[0]), string(firstOfGroup1[1]))
	if out := sub.stdout.Bytes(); !bytes.HasPrefix(out, initBytes[:8]) {
		t.Errorf("the output does not start with the init segment: % x", out[:min(len(out), 16)])
	}
	pub.write(t, media[frags[cut].Offset:])
	_ = pub.stdin.Close()
	if err := sub.wait(t); err != nil {
		t.Fatalf("moq-sub: %v\n%s", err, sub.stderr.String())
	}
	if err := pub.wait(t); err != nil {
		t.Fatalf("moq-pub: %v\n%s", err, pub.stderr.String())
	}
	for _, s := range []string{"by=fetch", "track=1.m4s largest={1,", "joined the current group with FETCH"} {
		if !strings.Contains(sub.stderr.String(), s) {
			t.Errorf("no %q in moq-sub's log:\n%s", s, sub.stderr.String())
		}
	}
	out := fmp4test.WriteFile(t, "out.mp4", sub.stdout.Bytes())
	if got := fmp4test.Packets(t, out); got["video"] != want["video"] || got["audio"] != want["audio"] || want["video"] != 60 {
		t.Errorf("output packets %v, want %v (groups 1 and later)", got, want)
	}
	// The video starts at the key frame of frame 30 and decodes to the
	// input's frames from there.
	if got, want := hashes(fmp4test.FrameMD5(t, out)), hashes(wantMD5[30:]); !slices.Equal(got, want) {
		t.Errorf("output frames\n%s\nwant the input's from frame 30\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSubTrackSelection: --track plays the tracks named, and the init segment
// written holds only them.
func TestSubTrackSelection(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	wantPackets := fmp4test.Packets(t, fmp4test.WriteFile(t, "in.mp4", media))
	_, initBytes, frags, _ := splitStream(t, media)
	r := fmp4test.StartRelay(t)
	pub := startPub(t, r, "moqt", "--name", "pick")
	pub.write(t, initBytes)
	pub.stderr.waitFor(t, "moq-pub", "msg=publishing")

	_, _, err := execute(t, "--fingerprint", r.Fingerprint, "--name", "pick", "--track", "9.m4s", r.URL("moqt"))
	if err == nil || !strings.Contains(err.Error(), `--track "9.m4s": no such track; the broadcast has 1.m4s (video), 2.m4s (audio)`) {
		t.Errorf("an unknown track: %v", err)
	}
	_, _, err = execute(t, "--fingerprint", r.Fingerprint, "--name", "pick", "--catalog", "--track", "9.m4s", r.URL("moqt"))
	if err == nil || !strings.Contains(err.Error(), `--track "9.m4s" is not in the catalog, which has 1.m4s, 2.m4s`) {
		t.Errorf("an unknown track with --catalog: %v", err)
	}

	sub := startSub(t, r, "moqt", "--name", "pick", "--track", "2.m4s", "--skip-behind", "0")
	sub.waitReady(t)
	pub.write(t, media[frags[0].Offset:])
	_ = pub.stdin.Close()
	if err := sub.wait(t); err != nil {
		t.Fatalf("moq-sub: %v\n%s", err, sub.stderr.String())
	}
	out := fmp4test.WriteFile(t, "out.mp4", sub.stdout.Bytes())
	if got := fmp4test.Streams(t, out); !slices.Equal(got, []string{"aac"}) {
		t.Errorf("output streams %v, want only the audio", got)
	}
	if got := fmp4test.Packets(t, out); got["audio"] != wantPackets["audio"] || got["video"] != 0 {
		t.Errorf("output packets %v, want %d audio\n%s", got, wantPackets["audio"], sub.stderr.String())
	}
	if err := pub.wait(t); err != nil {
		t.Errorf("moq-pub: %v", err)
	}
}

// TestSubscriberErrors: no publisher, and a relay that goes away, end
// moq-sub with an error that says so; an interrupt ends it with nil.
func TestSubscriberErrors(t *testing.T) {
	r := fmp4test.StartRelay(t)
	stdout, _, err := execute(t, "--fingerprint", r.Fingerprint, "--name", "nobody", r.URL("https"))
	if err == nil || !strings.Contains(err.Error(), "subscribing to 0.mp4") || !strings.Contains(err.Error(), "TRACK_DOES_NOT_EXIST") {
		t.Errorf("no publisher: %v", err)
	}
	if stdout != "" {
		t.Errorf("stdout %q", stdout)
	}

	media := fmp4test.Encode(t, avArgs()...)
	_, initBytes, frags, _ := splitStream(t, media)
	pub := startPub(t, r, "moqt", "--name", "gone")
	pub.write(t, initBytes)
	pub.write(t, media[frags[0].Offset:frags[10].Offset])
	pub.stderr.waitFor(t, "moq-pub", "msg=publishing")
	sub := startSub(t, r, "moqt", "--name", "gone")
	sub.waitReady(t)
	interrupted := startSub(t, r, "https", "--name", "gone", "--catalog")
	interrupted.waitReady(t)
	interrupted.cancel()
	if err := interrupted.wait(t); err != nil {
		t.Errorf("interrupted moq-sub: %v", err)
	}
	if !strings.Contains(interrupted.stderr.String(), "interrupted") {
		t.Errorf("interrupted moq-sub's log:\n%s", interrupted.stderr.String())
	}
	r.Stop()
	if err := sub.wait(t); err == nil || !strings.Contains(err.Error(), "session ended") {
		t.Errorf("moq-sub after the relay closed: %v", err)
	}
	var ee *exec.ExitError
	if err := pub.wait(t); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("moq-pub after the relay closed: %v\n%s", err, pub.stderr.String())
	}
}

// TestSubInitThroughForwardedFetch: an init segment published before any
// subscription reaches moq-sub through the relay's forwarded FETCH.
func TestSubInitThroughForwardedFetch(t *testing.T) {
	r := fmp4test.StartRelay(t)
	ns := moqtransport.Namespace{"nofetch"}
	tr := moqtransport.NewTrack(moqtransport.FullTrackName{Namespace: ns, Name: "0.mp4"}, moqtransport.TrackConfig{})
	w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteObject(0, []byte("init"), nil); err != nil {
		t.Fatal(err)
	}
	h := &moqtransport.Tracks{}
	h.Add(tr)
	pubC := r.ConnectHandler(t, "moqt", h.Handler())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := pubC.Sess.PublishNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	// The relay never cached the init object (it was written before
	// anyone subscribed), so it forwards moq-sub's FETCH to the publisher,
	// which has it: moq-sub gets the 4 bytes and refuses them clearly.
	stdout, stderr, err := execute(t, "--fingerprint", r.Fingerprint, "--name", "nofetch", r.URL("moqt"))
	if err == nil || !strings.Contains(err.Error(), "the init segment (track 0.mp4): invalid fragmented MP4") {
		t.Errorf("err = %v\n%s", err, stderr)
	}
	if stdout != "" {
		t.Errorf("stdout %q", stdout)
	}
	tr.Close(nil)
}

func testObject(g, id uint64) *moqtransport.Object {
	return &moqtransport.Object{Group: g, ID: id, Payload: []byte{byte(g), byte(id)}}
}

// TestSubOrderer: objects of later groups wait until the groups before them
// are written; late objects are dropped; a missing group is waited for a
// while; a group is only written from its object 0.
func TestSubOrderer(t *testing.T) {
	var got []string
	now := time.Unix(1000, 0)
	newO := func(start uint64) *orderer {
		got = nil
		o := newOrderer(slog.New(slog.DiscardHandler), start, func(obj *moqtransport.Object) error {
			got = append(got, fmt.Sprintf("%d.%d", obj.Group, obj.ID))
			return nil
		})
		o.now = func() time.Time { return now }
		return o
	}
	run := func(steps ...func() error) {
		t.Helper()
		for i, s := range steps {
			if err := s(); err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
		}
	}
	o := newO(5)
	obj := func(g, id uint64) func() error { return func() error { return o.object(testObject(g, id)) } }
	end := func(g uint64) func() error { return func() error { return o.groupEnd(g, false) } }
	run(
		obj(4, 3), // before the start: dropped
		obj(5, 0), obj(5, 1),
		obj(6, 0), // overtakes the end of 5
		obj(5, 2),
		obj(7, 0), obj(6, 1),
		end(6), // 6 ends before 5
		end(5), // 5, then 6, then 7 so far
		obj(7, 1),
		obj(5, 3), // late: dropped
		func() error {
			return o.object(&moqtransport.Object{Group: 7, ID: 2, Status: moqtransport.StatusEndOfTrack})
		},
		func() error { return o.groupEnd(7, true) },
		obj(9, 0), // group 8 is missing: 9 waits
		o.tick,
		func() error { now = now.Add(maxGapWait); return nil },
		o.tick, // ... until the wait is over
		obj(9, 1),
		func() error { o.skipped(); return nil },
		obj(9, 2),  // after a skip: not a group start, dropped
		obj(10, 0), // a group start
		obj(12, 0), // group 11 is missing
		o.flush,    // the end of the track writes what is held
	)
	want := []string{"5.0", "5.1", "5.2", "6.0", "6.1", "7.0", "7.1", "9.0", "9.1", "10.0", "12.0"}
	if !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
	if o.written != len(want) {
		t.Errorf("written count %d", o.written)
	}

	// A whole group overtakes the one before it.
	o = newO(0)
	run(obj(1, 0), obj(1, 1), end(1), obj(0, 0), obj(0, 1), obj(2, 0), end(0), obj(2, 1), o.flush)
	if want := []string{"0.0", "0.1", "1.0", "1.1", "2.0", "2.1"}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}

	// A current group that never ends is given up once later groups pile
	// up.
	o = newO(1)
	for g := uint64(1); g <= maxPendingGroups+2; g++ {
		run(obj(g, 0))
	}
	if want := []string{"1.0", "2.0"}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}

	// Behind live: a newer key frame that waited skipBehind behind the
	// unfinished current group makes the orderer skip to it, and stop the
	// groups given up.
	o = newO(0)
	var skips []uint64
	o.skipBehind, o.onSkip = time.Second, func(g uint64) { skips = append(skips, g) }
	run(
		obj(0, 0), obj(0, 1),
		obj(2, 0), // the newest key frame: waits behind group 0
		obj(1, 0),
		o.tick,
		func() error { now = now.Add(time.Second); return nil },
		obj(3, 1),            // not a key frame: does not move the skip's target
		o.tick,               // 2's key frame waited a second: skip to 2
		obj(0, 2), obj(1, 1), // given up: dropped
		obj(2, 1),
	)
	if want := []string{"0.0", "0.1", "2.0", "2.1"}; !slices.Equal(got, want) {
		t.Errorf("skipping: written %v, want %v", got, want)
	}
	if !slices.Equal(skips, []uint64{2}) {
		t.Errorf("skipped to %v, want [2]", skips)
	}

	// Waiting for a group that does not come: the same.
	o = newO(0)
	skips = nil
	o.skipBehind, o.onSkip = time.Second, func(g uint64) { skips = append(skips, g) }
	run(
		obj(0, 0), end(0),
		obj(3, 0), // group 1 is missing; 3 is the newest key frame
		obj(2, 0),
		func() error { now = now.Add(time.Second); return nil },
		o.tick, // skips to 3 without waiting for 1 and writing 2
	)
	if want := []string{"0.0", "3.0"}; !slices.Equal(got, want) || !slices.Equal(skips, []uint64{3}) {
		t.Errorf("skipping a gap: written %v, skipped to %v; want %v and [3]", got, skips, want)
	}
}

// TestSubOrdererJoin: the objects of a joining FETCH are written first; a
// joined group that the subscription carries on ends with its subgroup, and
// one that the FETCH had whole ends when a later group comes.
func TestSubOrdererJoin(t *testing.T) {
	var got []string
	newO := func(start uint64) *orderer {
		got = nil
		return newOrderer(slog.New(slog.DiscardHandler), start, func(obj *moqtransport.Object) error {
			got = append(got, fmt.Sprintf("%d.%d", obj.Group, obj.ID))
			return nil
		})
	}
	fetched := []*moqtransport.Object{testObject(3, 0), testObject(3, 1), testObject(3, 2)}

	// The subscription goes on with objects 3 and 4 of group 3; group 4
	// overtakes the end of group 3 and waits for it.
	o := newO(3)
	steps := []func() error{
		func() error { return o.join(fetched) },
		func() error { return o.object(testObject(3, 3)) },
		func() error { return o.object(testObject(4, 0)) },
		func() error { return o.object(testObject(3, 4)) },
		func() error { return o.groupEnd(3, false) },
		func() error { return o.object(testObject(4, 1)) },
	}
	for i, s := range steps {
		if err := s(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if want := []string{"3.0", "3.1", "3.2", "3.3", "3.4", "4.0", "4.1"}; !slices.Equal(got, want) {
		t.Errorf("carried on: written %v, want %v", got, want)
	}

	// The FETCH had all of group 3: group 4 starts without an end of 3.
	o = newO(3)
	if err := o.join(fetched); err != nil {
		t.Fatal(err)
	}
	for _, obj := range []*moqtransport.Object{testObject(4, 0), testObject(4, 1), testObject(3, 3)} {
		if err := o.object(obj); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"3.0", "3.1", "3.2", "4.0", "4.1"}; !slices.Equal(got, want) {
		t.Errorf("whole group fetched: written %v, want %v (a late 3.3 dropped)", got, want)
	}
}

// TestSubMSFTracks: the tracks of an MSF catalog resolve to traks of their
// init data (one each, or a shared one), which merge into the output's
// init segment; --track picks by name; what cannot be played is refused.
func TestSubMSFTracks(t *testing.T) {
	media := fmp4test.Encode(t, avArgs()...)
	in, initBytes, _, _ := splitStream(t, media)
	one := func(id uint32) []byte {
		b, err := fmp4.FilterInit(initBytes, func(t uint32) bool { return t == id })
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cmaf := func(name, role string, init []byte) catalog.MSFTrackInfo {
		return catalog.MSFTrackInfo{Name: name, Packaging: "cmaf", IsLive: true, Role: role, InitData: init}
	}
	check := func(what string, m *catalog.MSF, names []string, want string) []byte {
		t.Helper()
		init, tracks, err := msfTracks(m, moqtransport.Namespace{"live", "demo"}, names, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := describe(tracks); got != want {
			t.Errorf("%s: tracks %s, want %s", what, got, want)
		}
		if _, err := fmp4.ParseInit(init); err != nil {
			t.Errorf("%s: init: %v", what, err)
		}
		return init
	}
	// Per-track init segments, names that are not "{id}.m4s" (as other
	// publishers name them), a track that is not media.
	perTrack := &catalog.MSF{Tracks: []catalog.MSFTrackInfo{cmaf("video", "video", one(1)), cmaf("audio", "audio", one(2)),
		{Name: "timeline", Packaging: "mediatimeline"}}}
	if init := check("per-track", perTrack, nil, "video (video), audio (audio)"); !bytes.Equal(init, in.Data) {
		t.Errorf("the merged init segment differs from the publisher's")
	}
	check("--track audio", perTrack, []string{"audio"}, "audio (audio)")
	// A namespace that is the catalog's own, as mlmpub writes it.
	own := cmaf("video", "video", one(1))
	own.Namespace = new("live/demo")
	check("own namespace", &catalog.MSF{Tracks: []catalog.MSFTrackInfo{own}}, nil, "video (video)")
	// One shared init segment, matched by name and by role.
	shared := &catalog.MSF{Tracks: []catalog.MSFTrackInfo{cmaf("2.m4s", "audio", initBytes), cmaf("v", "video", initBytes)}}
	check("shared", shared, nil, "2.m4s (audio), v (video)")
	// Two tracks with the same single-trak init data: the second is
	// renumbered (TestSubMSFSameTrackID has more).
	check("one trak twice", &catalog.MSF{Tracks: []catalog.MSFTrackInfo{cmaf("a", "video", one(1)), cmaf("b", "video", one(1))}}, nil, "a (video), b (video)")

	for _, c := range []struct {
		name  string
		m     *catalog.MSF
		names []string
		want  string
	}{
		{"unknown --track", perTrack, []string{"x"}, `--track "x" is not in the MSF catalog, which has video, audio, timeline`},
		{"--track of another packaging", perTrack, []string{"timeline"}, `packaging "mediatimeline"`},
		{"no media", &catalog.MSF{Tracks: []catalog.MSFTrackInfo{{Name: "t", Packaging: "loc"}}}, nil, "no cmaf video or audio track (it has t)"},
		{"no init data", &catalog.MSF{Tracks: []catalog.MSFTrackInfo{cmaf("v", "video", nil)}}, nil, "no init data"},
		{"bad init data", &catalog.MSF{Tracks: []catalog.MSFTrackInfo{cmaf("v", "video", []byte("junk"))}}, nil, "the init data of track v"},
		{"no matching trak", &catalog.MSF{Tracks: []catalog.MSFTrackInfo{cmaf("x", "subtitle", initBytes)}}, []string{"x"}, "no trak of its init data"},
		{"another namespace", &catalog.MSF{Tracks: []catalog.MSFTrackInfo{{Name: "v", Namespace: new("other"), Packaging: "cmaf", InitData: one(1)}}}, nil, "namespace"},
	} {
		if _, _, err := msfTracks(c.m, moqtransport.Namespace{"live", "demo"}, c.names, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

// TestSubSkipsAheadOnSlowLink: moq-pub publishes a live stream (paced in
// real time, three groups a second) through a relay that has no delivery
// timeout; moq-sub watches it behind a shaping proxy whose link carries
// less than half of it. moq-sub asks for the newest group first and gives
// up the groups it cannot finish (stopping their streams once a newer key
// frame has waited --skip-behind), so it keeps playing near live: it
// writes the last group's key frame, and the output still decodes.
func TestSubSkipsAheadOnSlowLink(t *testing.T) {
	t.Parallel() // paced in real time, not by the CPU
	const fps, gop, seconds = 30, 10, 3
	media := fmp4test.Encode(t,
		"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=320x240:rate=%d:duration=%d", fps, seconds),
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "10", "-g", fmt.Sprint(gop), "-keyint_min", fmt.Sprint(gop),
		"-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p")
	_, initBytes, frags, groups := splitStream(t, media)
	rate := int64(len(media)) * 8 / seconds
	r := fmp4test.StartRelay(t)
	p, err := netem.New(r.Addr, netem.Config{Down: netem.Link{RateBitsPerSec: rate * 4 / 10, QueueBytes: int(rate / 8 / 10)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	pub := startPub(t, r, "moqt", "--name", "slow", "--log-level", "debug")
	pub.write(t, initBytes)
	pub.write(t, media[frags[0].Offset:frags[1].Offset])
	pub.stderr.waitFor(t, "moq-pub", "msg=group track=1 group=0")
	sub := startSubAt(t, "moqt://"+p.Addr().String()+"/", r.Fingerprint, "--name", "slow", "--catalog")
	sub.waitReady(t)
	// Live: each frame when its time comes.
	tick := time.NewTicker(time.Second / fps)
	defer tick.Stop()
	for i := 1; i < len(frags); i++ {
		<-tick.C
		end := len(media)
		if i+1 < len(frags) {
			end = int(frags[i+1].Offset)
		}
		pub.write(t, media[frags[i].Offset:end])
	}
	// The last group's key frame reaches the output: moq-sub is live.
	last := frags[slices.Index(groups, groups[len(groups)-1])]
	sub.stdout.waitFor(t, "moq-sub output", string(last.Data))
	sub.cancel()
	_ = sub.wait(t)
	for _, l := range strings.Split(sub.stderr.String(), "\n") {
		if strings.Contains(l, "skipping ahead") || strings.Contains(l, "moving on") {
			t.Log(l)
		}
	}
	if log := sub.stderr.String(); !strings.Contains(log, "behind live: skipping ahead") && !strings.Contains(log, "group incomplete: moving on") {
		t.Errorf("moq-sub never gave a group up:\n%s", log)
	}
	out := fmp4test.WriteFile(t, "out.mp4", sub.stdout.Bytes())
	got := fmp4test.Packets(t, out)["video"]
	t.Logf("input %d frames in %d groups at %d kbit/s, link %d kbit/s: moq-sub wrote %d frames", len(frags), groups[len(groups)-1]+1, rate/1000, rate*4/10/1000, got)
	if got == 0 || got >= len(frags) {
		t.Errorf("the output holds %d of %d frames: it should skip some and decode the rest", got, len(frags))
	}
}
