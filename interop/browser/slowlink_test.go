package browser

import (
	"context"
	"net/url"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/moqgo/moq/internal/netem"
)

// slowLinkCodecs encodes the test pattern at about 700 kb/s: H.264 at
// 640 kb/s and AAC at 64 kb/s.
var slowLinkCodecs = append(append([]string(nil), h264AAC...), "-b:v", "640k", "-maxrate", "640k", "-bufsize", "640k")

// Slow-link shaping for TestWatchPageSlowLink: the test pattern is about
// 700 kb/s (320x240 H.264 at 30 fps with a key frame every 0.5 s, and
// 64 kb/s AAC); the browser's link down carries about 60% of it, behind a
// 200 ms queue.
const (
	slowLinkRate  = 430_000
	slowLinkDelay = 10 * time.Millisecond
	// slowLinkPlay is how long the test measures by default;
	// WATCH_SLOW_SECONDS=N measures N seconds instead.
	slowLinkPlay = 10 * time.Second
)

// TestWatchPageSlowLink plays the test pattern in the watch page through a
// shaping proxy (internal/netem) on the browser's WebTransport path, whose
// downlink carries about 60% of the stream's rate, and measures what the
// page makes of it: frames drawn, groups skipped, bytes received, and how
// far behind live it plays. It asserts that the page stays live and draws
// a steady share of the frames (dropping group tails, not whole groups),
// and logs the figures (go test -v -run TestWatchPageSlowLink).
func TestWatchPageSlowLink(t *testing.T) {
	chromium := findChromium(t)
	bin := buildBinaries(t)
	play := slowLinkPlay
	if v := os.Getenv("WATCH_SLOW_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 600 {
			t.Fatalf("WATCH_SLOW_SECONDS=%q: want whole seconds, 1 to 600", v)
		}
		play = time.Duration(n) * time.Second
	}

	ctx, cancel := context.WithTimeout(t.Context(), runTimeout+play)
	defer cancel()

	_, relayAddr, fingerprint := startRelayAt(ctx, t, bin, "", "--dev")
	startPub(ctx, t, bin, relayAddr, fingerprint, "live/slow", slowLinkCodecs...)
	proxy, err := netem.New(relayAddr, netem.Config{
		Up:   netem.Link{Delay: slowLinkDelay},
		Down: netem.Link{RateBitsPerSec: slowLinkRate, Delay: slowLinkDelay},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	browser := startChromium(ctx, t, chromium, chromedp.Flag("autoplay-policy", "no-user-gesture-required"))
	tab, closeTab := chromedp.NewContext(browser)
	defer closeTab()
	browserLog := listenLog(t, tab)

	// The page comes from the relay over TCP; its WebTransport session
	// goes through the proxy.
	q := url.Values{"name": {"live/slow"}, "relay": {"https://" + proxy.Addr().String() + "/"}, "hash": {fingerprint}}
	if err := chromedp.Do(tab, chromedp.Navigate("http://"+relayAddr+"/?"+q.Encode())); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	fail, stats := watchPage(t, tab, browserLog)
	if _, err := chromedp.Run(tab, chromedp.Poll[bool](`(() => { const s = window.watchStats; return !!s && s.framesDrawn >= 10; })()`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(15*time.Second))); err != nil {
		fail("the page did not start playing through the proxy: %v; stats %+v", err, stats())
	}

	// Measure from here: a sample every second, and the totals over the
	// window.
	start, t0 := stats(), time.Now()
	down0 := proxy.Stats().Down
	var maxLatency float64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for time.Since(t0) < play {
		select {
		case <-ctx.Done():
			fail("timed out: %v", ctx.Err())
		case <-tick.C:
		}
		s := stats()
		if s.Latency != nil {
			maxLatency = max(maxLatency, *s.Latency)
			t.Logf("%4.0fs latency %5.0f ms (delay %4d ms), drawn %4d, dropped %4d, groups skipped %3d, cut short %3d, audio late %3d, %4.0f kb/s",
				time.Since(t0).Seconds(), *s.Latency, s.Delay, s.FramesDrawn-start.FramesDrawn, s.FramesDropped-start.FramesDropped,
				s.GroupsSkipped-start.GroupsSkipped, s.GroupsCut-start.GroupsCut, s.AudioLate-start.AudioLate, s.Bitrate/1000)
		}
	}
	end, secs := stats(), time.Since(t0).Seconds()
	down := proxy.Stats().Down
	drawn := end.FramesDrawn - start.FramesDrawn
	groups := secs * 2 // a key frame every 15 frames at 30 fps
	skipped := end.GroupsSkipped - start.GroupsSkipped
	cut := end.GroupsCut - start.GroupsCut
	linkKbps := float64(down.Bytes-down0.Bytes) * 8 / secs / 1000
	pageKbps := float64(end.Bytes-start.Bytes) * 8 / secs / 1000
	t.Logf("over %.1f s on a %d kb/s link: %d frames drawn (%.1f/s of 30), %d of ~%.0f groups skipped whole and %d cut short, "+
		"media %.0f kb/s reached the page (link carried %.0f kb/s, %d packets dropped at its queue), latency %.0f ms at the end, %.0f ms at most, playout delay %d ms",
		secs, slowLinkRate/1000, drawn, float64(drawn)/secs, skipped, groups, cut, pageKbps, linkKbps, down.Dropped-down0.Dropped,
		ptrOr(end.Latency), maxLatency, end.Delay)

	// Live: the page's own latency figure stays within a few seconds (it
	// used to fall further behind each second).
	if end.Latency == nil || *end.Latency > 4000 {
		fail("the page is not live on the slow link: latency %v ms", ptrOr(end.Latency))
	}
	// A steady share of frames: the start of nearly every group (its key
	// frame and the deltas that fit), not a key frame now and then.
	if rate := float64(drawn) / secs; rate < minSlowLinkFPS {
		fail("the page drew %.1f frames a second on the slow link, want at least %.1f (it skipped %d groups whole, cut %d short)", rate, minSlowLinkFPS, skipped, cut)
	}
	if float64(skipped) > groups/3 {
		fail("the page skipped %d of ~%.0f groups whole on the slow link, want at most a third", skipped, groups)
	}
}

// minSlowLinkFPS is the least frame rate the page must draw on the slow
// link. The link carries about 4 frames of each 15-frame group (the key
// frame is about 11 KB, a delta 1.5 KB, and audio goes first); measured:
// 5.8 to 8.1 a second. The page that abandoned groups drew 3 to 4.
const minSlowLinkFPS = 4.5

func ptrOr(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}
