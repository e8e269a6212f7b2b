package browser

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// watchStats is the part of the watch page's window.watchStats the test
// reads.
type watchStats struct {
	State         string   `json:"state"`
	Connects      int      `json:"connects"`
	Broadcasts    []string `json:"broadcasts"`
	Catalog       string   `json:"catalog"`
	Codec         string   `json:"codec"`
	AudioCodec    string   `json:"audioCodec"`
	AudioState    string   `json:"audioState"`
	Resolution    string   `json:"resolution"`
	FirstFrame    *float64 `json:"firstFrame"`
	Latency       *float64 `json:"latency"`
	Bitrate       float64  `json:"bitrate"`
	FramesDecoded int      `json:"framesDecoded"`
	FramesDrawn   int      `json:"framesDrawn"`
	FramesDropped int      `json:"framesDropped"`
	GroupsSkipped int      `json:"groupsSkipped"`
	GroupsCut     int      `json:"groupsCut"`
	Bytes         int64    `json:"bytes"`
	Delay         int      `json:"delay"`
	AudioFrames   int      `json:"audioFrames"`
	AudioLate     int      `json:"audioLate"`
}

// canvasJS samples the page's canvas on a 32x18 grid: how many distinct
// colours it has and a checksum of its pixels.
const canvasJS = `(() => {
  const c = document.getElementById("video");
  const s = document.createElement("canvas");
  s.width = 32; s.height = 18;
  const g = s.getContext("2d");
  g.drawImage(c, 0, 0, 32, 18);
  const d = g.getImageData(0, 0, 32, 18).data;
  const colours = new Set();
  let sum = 0;
  for (let i = 0; i < d.length; i += 4) {
    colours.add((d[i] >> 4) << 8 | (d[i + 1] >> 4) << 4 | d[i + 2] >> 4);
    sum = (sum * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) >>> 0;
  }
  return JSON.stringify({colours: colours.size, sum});
})()`

type canvasSample struct {
	Colours int    `json:"colours"`
	Sum     uint32 `json:"sum"`
}

// TestWatchPage runs moq-relay --dev and moq-pub fed by ffmpeg's test
// pattern (H.264 video and AAC audio, fragmented MP4), and loads the page
// the relay serves at http://ADDR/ in headless Chromium. The page must
// list the broadcast, play it (video frames decoded and drawn: the canvas
// is not blank and changes; audio decoded), list a broadcast published
// after it opened and drop it from the list once it ends, play from
// moq-pub's MSF catalog, play VP9 and Opus too, and play again after the
// relay restarts.
//
// WATCH_SCREENSHOT=file.png saves a screenshot of the page playing (the
// README's picture).
func TestWatchPage(t *testing.T) {
	chromium := findChromium(t)
	for _, tool := range []string{"ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: this test needs it (Debian: apt-get install -y ffmpeg)", tool)
		}
	}
	bin := buildBinaries(t)

	ctx, cancel := context.WithTimeout(t.Context(), runTimeout)
	defer cancel()

	relayArgs := []string{"--dev", "--drain-timeout", "1s"}
	relayProc, relayAddr, fingerprint := startRelayAt(ctx, t, bin, "", relayArgs...)
	one := startPub(ctx, t, bin, relayAddr, fingerprint, "live/one")
	browser := startChromium(ctx, t, chromium, chromedp.Flag("autoplay-policy", "no-user-gesture-required"))

	tab, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	browserLog := listenLog(t, tab)
	q := url.Values{"name": {"live/one"}, "prefix": {"live"}}
	pageURL := "http://" + relayAddr + "/?" + q.Encode()
	t.Logf("loading %s", pageURL)
	opened := time.Now()
	if err := chromedp.Do(tab, chromedp.Navigate(pageURL)); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	fail, stats := watchPage(t, tab, browserLog)
	// waitFor polls the page's stats until cond holds.
	waitFor := func(what string, cond func(watchStats) bool) watchStats {
		t.Helper()
		js := `(() => { const s = window.watchStats; return s && (` + what + `) ? JSON.stringify(s) : null; })()`
		raw, err := chromedp.Run(tab, chromedp.Poll[string](js,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
		if err != nil {
			fail("waiting for %s: %v; stats %+v", what, err, stats())
		}
		var s watchStats
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			fail("window.watchStats is not JSON: %v", err)
		}
		if cond != nil && !cond(s) {
			fail("%s, but %+v", what, s)
		}
		return s
	}

	s := waitFor(`s.broadcasts.includes("live/one")`, nil)
	t.Logf("listed after %v: %q", time.Since(opened).Round(time.Millisecond), s.Broadcasts)

	s = waitFor(`s.framesDrawn >= 10 && s.audioFrames >= 10`, nil)
	first, err := chromedp.Run(tab, chromedp.Evaluate[string](canvasJS))
	if err != nil {
		fail("sampling the canvas: %v", err)
	}
	var c1 canvasSample
	_ = json.Unmarshal([]byte(first), &c1)
	// testsrc has a rolling gradient and a frame counter: the picture
	// changes every frame.
	drawn := s.FramesDrawn
	waitFor(fmt.Sprintf(`s.framesDrawn >= %d`, drawn+15), nil)
	second, err := chromedp.Run(tab, chromedp.Evaluate[string](canvasJS))
	if err != nil {
		fail("sampling the canvas: %v", err)
	}
	var c2 canvasSample
	_ = json.Unmarshal([]byte(second), &c2)
	if c1.Colours < 8 || c2.Colours < 8 {
		fail("the canvas looks blank: %d and %d colours", c1.Colours, c2.Colours)
	}
	if c1.Sum == c2.Sum {
		fail("the canvas did not change over %d frames (checksum %08x)", 15, c1.Sum)
	}
	s = stats()
	if s.Resolution != "320x240" || !strings.HasPrefix(s.Codec, "avc1.") || !strings.HasPrefix(s.AudioCodec, "mp4a.") {
		fail("playing %s %s with audio %s, want 320x240 H.264 and AAC", s.Resolution, s.Codec, s.AudioCodec)
	}
	if s.FirstFrame == nil || s.Latency == nil {
		fail("no first-frame time or latency: %+v", s)
	}
	t.Logf("playing: %s %s, audio %s (%s), first frame %.0f ms after the page started, latency %.0f ms, %d frames decoded, %d drawn, %d dropped, %d audio frames, %d groups skipped, %.0f kb/s",
		s.Resolution, s.Codec, s.AudioCodec, s.AudioState, *s.FirstFrame, *s.Latency, s.FramesDecoded, s.FramesDrawn, s.FramesDropped, s.AudioFrames, s.GroupsSkipped, s.Bitrate/1000)
	if path := os.Getenv("WATCH_SCREENSHOT"); path != "" {
		if _, err := chromedp.Run(tab, chromedp.EmulateViewport(1000, 660)); err != nil {
			fail("screenshot: %v", err)
		}
		waitFor(fmt.Sprintf(`s.framesDrawn >= %d`, stats().FramesDrawn+10), nil)
		png, err := chromedp.Run(tab, chromedp.CaptureScreenshot())
		if err != nil {
			fail("screenshot: %v", err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", path)
	}

	// A broadcast that starts now appears in the list, and goes once it
	// ends.
	two := startPub(ctx, t, bin, relayAddr, fingerprint, "live/two")
	s = waitFor(`s.broadcasts.includes("live/two")`, nil)
	t.Logf("listed: %q", s.Broadcasts)
	two.stop()
	s = waitFor(`!s.broadcasts.includes("live/two") && s.broadcasts.includes("live/one")`, nil)
	t.Logf("after live/two ended: %q; still playing live/one: latency %.0f ms, %d frames drawn, %d dropped, %d audio frames (%d late), %d groups skipped",
		s.Broadcasts, *s.Latency, s.FramesDrawn, s.FramesDropped, s.AudioFrames, s.AudioLate, s.GroupsSkipped)

	// playTab plays a broadcast in a tab of its own until it has drawn and
	// decoded enough, and returns its stats.
	playTab := func(query string) watchStats {
		t.Helper()
		tab2, closeTab2 := chromedp.NewContext(browser)
		defer closeTab2()
		if err := chromedp.Do(tab2, chromedp.Navigate("http://"+relayAddr+"/?"+query)); err != nil {
			fail("loading the page: %v", err)
		}
		raw, err := chromedp.Run(tab2, chromedp.Poll[string](`(() => { const s = window.watchStats; return s && s.framesDrawn >= 10 && s.audioFrames >= 10 ? JSON.stringify(s) : null; })()`,
			chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second)))
		if err != nil {
			pageLog, _ := chromedp.Run(tab2, chromedp.Evaluate[string](`document.getElementById("log").textContent`))
			fail("?%s did not play: %v\npage log:\n%s", query, err, pageLog)
		}
		var v watchStats
		if err := json.Unmarshal([]byte(raw), &v); err != nil {
			fail("window.watchStats is not JSON: %v", err)
		}
		t.Logf("?%s: catalog %s, %s %s, audio %s, first frame %.0f ms, %d frames drawn, %d audio frames",
			query, v.Catalog, v.Resolution, v.Codec, v.AudioCodec, *v.FirstFrame, v.FramesDrawn, v.AudioFrames)
		return v
	}

	// moq-pub's MSF catalog describes the same broadcast.
	if v := playTab("name=live/one&catalog=msf"); !strings.Contains(v.Catalog, "MSF") || !strings.HasPrefix(v.Codec, "avc1.") {
		fail("?catalog=msf played from the %s catalog (%s), want the MSF one", v.Catalog, v.Codec)
	}

	// VP9 and Opus play too.
	vp9 := startPub(ctx, t, bin, relayAddr, fingerprint, "live/vp9", vp9Opus...)
	if v := playTab("name=live/vp9"); !strings.HasPrefix(v.Codec, "vp09.") || v.AudioCodec != "opus" {
		fail("live/vp9 plays %s and %s, want VP9 and Opus", v.Codec, v.AudioCodec)
	}
	vp9.stop()

	// The relay restarts (GOAWAY to every session, then a new process with
	// a new certificate on the same port) and the publisher with it: the
	// page reconnects, pins the new certificate and plays again.
	drawn = stats().FramesDrawn
	relayProc.stop()
	one.stop()
	_, _, fingerprint = startRelayAt(ctx, t, bin, relayAddr, relayArgs...)
	startPub(ctx, t, bin, relayAddr, fingerprint, "live/one")
	s = waitFor(fmt.Sprintf(`s.connects >= 2 && s.state === "playing" && s.framesDrawn >= %d && s.broadcasts.includes("live/one")`, drawn+15), nil)
	t.Logf("after the relay restarted: %d connects, %d frames drawn, %q", s.Connects, s.FramesDrawn, s.Broadcasts)
	pageLog, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("log").textContent`))
	if err != nil {
		fail("reading the page's log: %v", err)
	}
	if !strings.Contains(pageLog, "GOAWAY") {
		fail("the page did not log the draining relay's GOAWAY:\n%s", pageLog)
	}
}

// Encoders for the test pattern: H.264 and AAC by default.
var (
	h264AAC = []string{"-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-c:a", "aac", "-b:a", "64k"}
	vp9Opus = []string{"-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", "-c:a", "libopus", "-b:a", "48k"}
)

// startPub publishes ffmpeg's test pattern (320x240 at 30 fps, a key frame
// every 15 frames, and a 440 Hz tone) as NAME through moq-pub, encoded
// with codecs (ffmpeg arguments; h264AAC when none), and waits until
// moq-pub is publishing its tracks. Stopping the returned process ends the
// broadcast (ffmpeg then ends on its closed pipe).
func startPub(ctx context.Context, t *testing.T, bin, relayAddr, fingerprint, name string, codecs ...string) *process {
	t.Helper()
	if len(codecs) == 0 {
		codecs = h264AAC
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin",
		"-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-re", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-map", "0:v", "-map", "1:a", "-pix_fmt", "yuv420p",
		"-g", "15", "-keyint_min", "15", "-sc_threshold", "0", "-bf", "0"}
	args = append(args, codecs...)
	args = append(args, "-f", "mp4", "-movflags", "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame", "-")
	ff := exec.Command("ffmpeg", args...)
	ff.Stdout = pw
	pub := exec.Command(filepath.Join(bin, "moq-pub"), "--name", name, "--fingerprint", fingerprint, "moqt://"+relayAddr+"/")
	pub.Stdin = pr
	pub.Stdout = io.Discard
	p := startCmd(t, "moq-pub "+name, pub)
	f := startCmd(t, "ffmpeg "+name, ff)
	pr.Close()
	pw.Close()
	t.Cleanup(f.stop)
	if _, err := p.waitLine(ctx, "publishing"); err != nil {
		t.Fatalf("moq-pub %s: %v", name, err)
	}
	return p
}

// watchPage gives a test of the watch page open in tab its two common
// helpers: fail logs the browser's console and the page's log and ends
// the test; stats reads window.watchStats.
func watchPage(t *testing.T, tab context.Context, browserLog func() []string) (fail func(format string, args ...any), stats func() watchStats) {
	fail = func(format string, args ...any) {
		t.Helper()
		for _, l := range browserLog() {
			t.Logf("browser: %s", l)
		}
		if pageLog, err := chromedp.Run(tab, chromedp.Evaluate[string](`document.getElementById("log").textContent`)); err == nil {
			t.Logf("page log:\n%s", pageLog)
		}
		t.Fatalf(format, args...)
	}
	stats = func() watchStats {
		t.Helper()
		raw, err := chromedp.Run(tab, chromedp.Evaluate[string](`JSON.stringify(window.watchStats || {})`))
		if err != nil {
			fail("reading window.watchStats: %v", err)
		}
		var s watchStats
		if err := json.Unmarshal([]byte(raw), &s); err != nil {
			fail("window.watchStats is not JSON: %v\n%s", err, raw)
		}
		return s
	}
	return fail, stats
}

// listenLog collects the tab's console and exceptions.
func listenLog(t *testing.T, tab context.Context) func() []string {
	var mu sync.Mutex
	var lines []string
	if err := chromedp.Listen(tab, func(ev any) {
		var line string
		switch ev := ev.(type) {
		case *log.EventEntryAdded:
			line = fmt.Sprintf("%s %s: %s", ev.Entry.Source, ev.Entry.Level, ev.Entry.Text)
		case *runtime.EventConsoleAPICalled:
			var args []string
			for _, a := range ev.Args {
				args = append(args, strings.Trim(string(a.Value), `"`))
			}
			line = "console: " + strings.Join(args, " ")
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			line = fmt.Sprintf("exception at %d:%d: %s", d.LineNumber+1, d.ColumnNumber+1, d.Text)
			if d.Exception != nil && d.Exception.Description != "" {
				line += " " + d.Exception.Description
			}
		default:
			return
		}
		mu.Lock()
		lines = append(lines, line)
		mu.Unlock()
	}); err != nil {
		t.Fatalf("opening a tab: %v", err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(lines)
	}
}
