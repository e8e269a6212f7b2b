// Package fmp4test holds what the tests of moq-pub and moq-sub share:
// ffmpeg and ffprobe (which the tests need: dev/test installs them), media
// they encode, and an in-process relay.
package fmp4test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// MovFlags are the ffmpeg -movflags of moq-rs's dev/pub: one fragment per
// frame, one track per fragment, offsets relative to the moof.
const MovFlags = "cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame"

// toolTimeout bounds one ffmpeg or ffprobe run.
const toolTimeout = 60 * time.Second

// Tools returns the paths of ffmpeg and ffprobe. It fails the test (rather
// than skipping it) when they are missing: dev/test installs them, and CI
// must run these tests.
func Tools(t testing.TB) (ffmpeg, ffprobe string) {
	t.Helper()
	var err error
	if ffmpeg, err = exec.LookPath("ffmpeg"); err != nil {
		t.Fatal("ffmpeg is not installed: the media tests need it (dev/test installs it as root; or: apt-get install ffmpeg)")
	}
	if ffprobe, err = exec.LookPath("ffprobe"); err != nil {
		t.Fatal("ffprobe is not installed: the media tests need it (dev/test installs it with ffmpeg as root; or: apt-get install ffmpeg)")
	}
	return ffmpeg, ffprobe
}

var encoded sync.Map // strings.Join(args) -> *encoding

type encoding struct {
	once sync.Once
	b    []byte
	err  string
}

// Encode runs ffmpeg with args (inputs and codec options; -f mp4 and the
// -movflags of MovFlags are added) and returns the fragmented MP4 it
// writes. Results are cached for the test binary's life.
func Encode(t testing.TB, args ...string) []byte {
	t.Helper()
	ffmpeg, _ := Tools(t)
	v, _ := encoded.LoadOrStore(strings.Join(args, "\x00"), &encoding{})
	e := v.(*encoding)
	e.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
		defer cancel()
		full := append([]string{"-hide_banner", "-nostdin", "-v", "error"}, args...)
		full = append(full, "-f", "mp4", "-movflags", MovFlags, "-")
		cmd := exec.CommandContext(ctx, ffmpeg, full...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Run(); err != nil {
			e.err = "ffmpeg " + strings.Join(full, " ") + ": " + err.Error() + "\n" + errOut.String()
			return
		}
		e.b = out.Bytes()
	})
	if e.err != "" {
		t.Fatal(e.err)
	}
	return e.b
}

// WriteFile writes b into the test's temporary directory.
func WriteFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runTool(t testing.TB, tool string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(tool), strings.Join(args, " "), err, errOut.String())
	}
	return out.String()
}

// Packets returns the number of packets ffprobe reads from the file, by
// codec type ("video", "audio"), summed over the streams of each type.
func Packets(t testing.TB, path string) map[string]int {
	t.Helper()
	_, ffprobe := Tools(t)
	out := runTool(t, ffprobe, "-v", "error", "-count_packets", "-show_entries", "stream=codec_type,nb_read_packets", "-of", "csv=p=0", path)
	counts := map[string]int{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		typ, n, ok := strings.Cut(strings.TrimSpace(sc.Text()), ",")
		if !ok {
			continue
		}
		v, err := strconv.Atoi(n)
		if err != nil {
			t.Fatalf("ffprobe: %q", sc.Text())
		}
		counts[typ] += v
	}
	return counts
}

// Streams returns the codec names of the file's streams, in order.
func Streams(t testing.TB, path string) []string {
	t.Helper()
	_, ffprobe := Tools(t)
	out := runTool(t, ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", path)
	return strings.Fields(out)
}

// FrameMD5 returns the lines of ffmpeg's framemd5 of the file's first video
// stream (decoded frames: stream, dts, pts, duration, size, hash), without
// the header comments.
func FrameMD5(t testing.TB, path string) []string {
	t.Helper()
	ffmpeg, _ := Tools(t)
	out := runTool(t, ffmpeg, "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-f", "framemd5", "-")
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	return lines
}

// Relay is an in-process moq-go relay on loopback with a generated
// certificate for 127.0.0.1.
type Relay struct {
	Addr        string
	Fingerprint string // hex SHA-256 of the certificate
	Stop        func()
}

// StartRelay starts a relay that the test's cleanup stops.
func StartRelay(t testing.TB) *Relay {
	t.Helper()
	ss, err := moqnative.GenerateSelfSigned("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{Certificates: []tls.Certificate{ss.Certificate}})
	if err != nil {
		t.Fatal(err)
	}
	rs := relay.NewServer(relay.New(relay.Config{}), srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rs.Serve(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			rs.Close()
			_ = srv.Close()
			<-done
		})
	}
	t.Cleanup(stop)
	fp := ss.Fingerprint()
	return &Relay{Addr: srv.Addr().String(), Fingerprint: hex.EncodeToString(fp[:]), Stop: stop}
}

// URL is the relay's URL for a scheme: "moqt" or "https".
func (r *Relay) URL(scheme string) string { return scheme + "://" + r.Addr + "/" }

// Client is a raw MoQT session to the relay, for tests that look at the
// tracks themselves.
type Client struct {
	Sess *moqtransport.Session
}

// Connect opens a session to the relay, trusting its certificate; the
// test's cleanup closes it.
func (r *Relay) Connect(t testing.TB, scheme string) *Client {
	t.Helper()
	return r.ConnectHandler(t, scheme, moqtransport.Handler{})
}

// ConnectHandler is Connect with a handler for the relay's requests (a
// publisher's tracks).
func (r *Relay) ConnectHandler(t testing.TB, scheme string, h moqtransport.Handler) *Client {
	t.Helper()
	fp, err := hex.DecodeString(r.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	var pin [32]byte
	copy(pin[:], fp)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d, err := moqnative.Dial(ctx, r.URL(scheme), moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{pin}}})
	if err != nil {
		t.Fatal(err)
	}
	sess, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority, Handler: h})
	if err != nil {
		_ = d.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sess.Close()
		_ = d.Close()
	})
	return &Client{Sess: sess}
}

// Event is what a track delivered: an object, or the end of a subgroup.
type Event struct {
	Kind          moqtransport.EventKind
	Group, Object uint64
	Status        wire.ObjectStatus
	Payload       []byte
}

// Subscribe subscribes to a track with filter (zero: Largest Object).
func (c *Client) Subscribe(t testing.TB, ns, name string, filter wire.Filter) *moqtransport.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sub, err := c.Sess.Subscribe(ctx, wire.ParseNamespacePath(ns), name, moqtransport.SubscribeOptions{Filter: filter})
	if err != nil {
		t.Fatalf("subscribing to %s/%s: %v", ns, name, err)
	}
	return sub
}

// Collect reads a subscription's track from its start until it ends (or
// timeout passes) and returns its events and how the subscription ended.
func Collect(sub *moqtransport.Subscription, timeout time.Duration) ([]Event, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	var evs []Event
	for {
		ev, err := r.Next(ctx)
		if err == io.EOF {
			select {
			case <-sub.Done():
				return evs, sub.Err()
			case <-ctx.Done():
				return evs, ctx.Err()
			}
		}
		if err != nil {
			return evs, err
		}
		e := Event{Kind: ev.Kind, Group: ev.Group}
		if o := ev.Object; o != nil {
			e.Object, e.Status, e.Payload = o.ID, o.Status, o.Payload
		}
		evs = append(evs, e)
	}
}

// First waits for the first object of a track and returns its payload.
func First(t testing.TB, sub *moqtransport.Subscription) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	for {
		ev, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for the first object of %s: %v", sub.Name(), err)
		}
		if ev.Kind == moqtransport.EventObject && ev.Object.Status == wire.StatusNormal {
			return ev.Object.Payload
		}
	}
}
