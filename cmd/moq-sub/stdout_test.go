package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/internal/fmp4/fmp4test"
)

// The stdout tests run the moq-sub binary with stdout a pipe that the test
// reads as it pleases: not at all, not yet, or never (read end closed).

// testQueue is the --output-queue of these tests: with the pipe's own
// 64 KiB, far less than the media.
const testQueue = 64 << 10

// stdoutMedia is 4 s of video at 30 fps with a key frame (a group) every
// 10 frames, at a high quality so that it has a few MB.
func stdoutMedia(t *testing.T) (media []byte, init []byte, frags []*fmp4.Fragment, groups []uint64) {
	t.Helper()
	media = fmp4test.Encode(t,
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30:duration=4",
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "10", "-g", "10", "-keyint_min", "10",
		"-sc_threshold", "0", "-bf", "0", "-pix_fmt", "yuv420p")
	_, init, frags, groups = splitStream(t, media)
	if len(media) < 4*(testQueue+64<<10) {
		t.Fatalf("the test media has %d bytes: too few to fill the output", len(media))
	}
	return media, init, frags, groups
}

// fragsBytes is the media of fragments [from, to).
func fragsBytes(media []byte, frags []*fmp4.Fragment, from, to int) []byte {
	end := len(media)
	if to < len(frags) {
		end = int(frags[to].Offset)
	}
	return media[frags[from].Offset:end]
}

// subCmd is a moq-sub process.
type subCmd struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	err    error // Wait's, once done is closed
}

// startSubProcess runs moq-sub with stdout the pipe's write end, which the
// test no longer holds once it started.
func startSubProcess(t *testing.T, r *fmp4test.Relay, stdout *os.File, args ...string) *subCmd {
	t.Helper()
	s := &subCmd{stderr: newSyncBuffer(), done: make(chan struct{})}
	s.cmd = exec.Command(subBinary(t), append([]string{"--fingerprint", r.Fingerprint, "--log-level", "debug"}, append(args, r.URL("moqt"))...)...)
	// A race-enabled binary sleeps a second at exit unless told not to; a
	// race still fails the test (exit status 66).
	s.cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0")
	s.cmd.Stdout = stdout
	s.cmd.Stderr = s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	_ = stdout.Close()
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("moq-sub's stderr:\n%s", s.stderr.String())
		}
		select {
		case <-s.done:
		default:
			_ = s.cmd.Process.Kill()
			<-s.done
			t.Errorf("moq-sub was still running:\n%s", s.stderr.String())
		}
	})
	return s
}

// wait returns how long moq-sub took to exit, at most within.
func (s *subCmd) wait(t *testing.T, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	select {
	case <-s.done:
		return time.Since(start)
	case <-time.After(within):
		t.Fatalf("moq-sub did not exit within %v:\n%s", within, s.stderr.String())
		return 0
	}
}

// startStdoutPub starts moq-pub with the init segment and the first group.
func startStdoutPub(t *testing.T, r *fmp4test.Relay, name string, media, init []byte, frags []*fmp4.Fragment, groups []uint64) (*pubProc, int) {
	t.Helper()
	pub := startPub(t, r, "moqt", "--name", name, "--log-level", "debug")
	pub.write(t, init)
	n := 1
	for n < len(frags) && groups[n] == 0 {
		n++
	}
	pub.write(t, fragsBytes(media, frags, 0, n))
	pub.stderr.waitFor(t, "moq-pub", "msg=group track=1 group=0")
	return pub, n
}

// TestSubStdoutStalledInterrupt: with a reader that never reads, moq-sub
// keeps taking media (dropping it past its queue), and the first SIGINT
// ends it with status 0 within a bound, although stdout never drains.
func TestSubStdoutStalledInterrupt(t *testing.T) {
	media, init, frags, groups := stdoutMedia(t)
	r := fmp4test.StartRelay(t)
	pub, n := startStdoutPub(t, r, "stall", media, init, frags, groups)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	sub := startSubProcess(t, r, pw, "--name", "stall", "--output-queue", strconv.Itoa(testQueue))
	sub.stderr.waitFor(t, "moq-sub", "msg=subscribed") // media written from now on reaches it
	pub.write(t, fragsBytes(media, frags, n, len(frags)))
	sub.stderr.waitFor(t, "moq-sub", "stdout is not keeping up")
	if err := sub.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	took := sub.wait(t, 5*time.Second)
	t.Logf("moq-sub exited %v after SIGINT", took)
	if sub.err != nil {
		t.Errorf("moq-sub: %v, want status 0:\n%s", sub.err, sub.stderr.String())
	}
	sub.stderr.waitFor(t, "moq-sub", "stdout did not take the rest of the output")
}

// TestSubStdoutReaderGone: when the pipe's reader is gone, moq-sub says so
// and exits 0 instead of dying of SIGPIPE.
func TestSubStdoutReaderGone(t *testing.T) {
	media, init, frags, groups := stdoutMedia(t)
	r := fmp4test.StartRelay(t)
	startStdoutPub(t, r, "gone", media, init, frags, groups)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	_ = pr.Close()
	sub := startSubProcess(t, r, pw, "--name", "gone")
	sub.wait(t, 15*time.Second)
	if sub.err != nil {
		t.Errorf("moq-sub: %v, want status 0:\n%s", sub.err, sub.stderr.String())
	}
	sub.stderr.waitFor(t, "moq-sub", "stopped: stdout's reader went away (broken pipe)")
}

// TestSubStdoutPauseResume: a reader that stops reading and then reads
// again gets media that resumes at a group start: the output is a valid
// fMP4 stream whose fragments are the input's in order, and after every gap
// the next fragment is a group's key frame. The queue never held more than
// its bound (and an object).
func TestSubStdoutPauseResume(t *testing.T) {
	media, init, frags, groups := stdoutMedia(t)
	r := fmp4test.StartRelay(t)
	pub, n := startStdoutPub(t, r, "pause", media, init, frags, groups)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	// --skip-behind 0: every gap in the output is the output's doing.
	sub := startSubProcess(t, r, pw, "--name", "pause", "--output-queue", strconv.Itoa(testQueue), "--skip-behind", "0")
	sub.stderr.waitFor(t, "moq-sub", "msg=subscribed") // media written from now on reaches it
	// The reader is paused while the first half goes out.
	half := len(frags) / 2
	for groups[half] == groups[half-1] {
		half++
	}
	pub.write(t, fragsBytes(media, frags, n, half))
	sub.stderr.waitFor(t, "moq-sub", "stdout is not keeping up")
	// The reader reads again; the second half goes out and ends the track.
	read := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(pr)
		read <- b
	}()
	pub.write(t, fragsBytes(media, frags, half, len(frags)))
	_ = pub.stdin.Close()
	if err := pub.wait(t); err != nil {
		t.Fatalf("moq-pub: %v\n%s", err, pub.stderr.String())
	}
	sub.wait(t, 20*time.Second)
	if sub.err != nil {
		t.Fatalf("moq-sub: %v\n%s", sub.err, sub.stderr.String())
	}
	sub.stderr.waitFor(t, "moq-sub", "stdout caught up: resumed at a group start")
	out := <-read

	index := map[string]int{}
	for i, f := range frags {
		index[string(f.Data)] = i
	}
	sp := fmp4.NewSplitter(bytes.NewReader(out))
	if _, err := sp.Init(); err != nil {
		t.Fatalf("the output's init segment: %v", err)
	}
	prev, got, gaps := -1, 0, 0
	for {
		f, err := sp.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("the output after %d fragments: %v", got, err)
		}
		i, ok := index[string(f.Data)]
		switch {
		case !ok:
			t.Fatalf("output fragment %d is not one of the input's", got)
		case i <= prev:
			t.Fatalf("output fragment %d is input fragment %d, after %d", got, i, prev)
		case i != prev+1:
			gaps++
			if !f.Keyframe || (i > 0 && groups[i] == groups[i-1]) {
				t.Errorf("after a gap (input fragments %d to %d dropped) the output resumes inside group %d, not at its key frame", prev+1, i-1, groups[i])
			}
		}
		prev = i
		got++
	}
	t.Logf("%d of %d fragments (%d bytes of %d) written, %d gaps", got, len(frags), len(out), len(media), gaps)
	if gaps == 0 || got == len(frags) {
		t.Errorf("no media was dropped, yet the reader paused")
	}
	if prev < half {
		t.Errorf("the output ends at input fragment %d: nothing of the second half (from %d) came after the reader resumed", prev, half)
	}
	if pk := fmp4test.Packets(t, fmp4test.WriteFile(t, "out.mp4", out))["video"]; pk != got {
		t.Errorf("ffprobe reads %d packets, want %d", pk, got)
	}
	m := regexp.MustCompile(`peak_queued_bytes=(\d+)`).FindStringSubmatch(sub.stderr.String())
	if m == nil {
		t.Fatalf("no peak_queued_bytes in:\n%s", sub.stderr.String())
	}
	peak, _ := strconv.Atoi(m[1])
	largest := 0
	for _, f := range frags {
		largest = max(largest, len(f.Data))
	}
	if peak > testQueue+largest {
		t.Errorf("the queue held %d bytes, over its bound %d (and an object, %d)", peak, testQueue, largest)
	}
	t.Logf("peak queued %d bytes (bound %d)", peak, testQueue)
}
