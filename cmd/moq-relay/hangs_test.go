package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// stallConn is a real connection whose application stops reading the
// control stream once stall is closed.
type stallConn struct {
	moqtransport.Conn
	stall chan struct{}
}

func (c *stallConn) OpenStreamSync(ctx context.Context) (moqtransport.Stream, error) {
	s, err := c.Conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return &stallStream{Stream: s, c: c}, nil
}

type stallStream struct {
	moqtransport.Stream
	c *stallConn
}

func (s *stallStream) Read(b []byte) (int, error) {
	select {
	case <-s.c.stall:
		<-s.c.Conn.Context().Done()
		return s.Stream.Read(b)
	default:
		return s.Stream.Read(b)
	}
}

// TestRelaySecondSignalExits: while a publisher has stopped reading its
// control stream (the relay's writes to it are stuck on flow control) and
// a subscriber keeps its subscription open, the first signal starts a
// drain that could last a minute; the second makes run return.
func TestRelaySecondSignalExits(t *testing.T) {
	force := make(chan struct{})
	var logs syncBuffer
	r := startRelayConfig(t, config{drainTimeout: time.Minute, stderr: &logs, force: force})
	sub, wait := blockRelay(t, r.addr.String(), r.fpHex)
	defer wait()

	r.cancel() // the first signal
	select {
	case <-sub.GoAway():
	case <-time.After(10 * time.Second):
		t.Fatal("no GOAWAY on drain")
	}
	close(force) // the second signal
	r.stop(t)    // within 10s, not the minute's drain
}

// blockRelay sets up, on the relay at addr, what makes a drain block: a
// subscriber that keeps its subscription (the drain waits for it), and a
// publisher that stops reading its control stream once the relay's
// upstream SUBSCRIBEs fill its receive window (the relay's writes to it
// are stuck). It returns the subscriber, and wait, which waits for the
// SUBSCRIBEs' goroutines.
func blockRelay(t *testing.T, addr, fpHex string) (*moqtransport.Session, func()) {
	t.Helper()
	raw, _ := hex.DecodeString(fpHex)
	var fp [32]byte
	copy(fp[:], raw)
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(tcancel)
	connect := func(scheme string, h *moqtransport.Tracks, stall chan struct{}, tr moqtransport.Tracer) *moqtransport.Session {
		d, err := moqnative.Dial(tctx, fmt.Sprintf("%s://%s/", scheme, addr), moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		var conn moqtransport.Conn = d.Conn
		if stall != nil {
			conn = &stallConn{Conn: d.Conn, stall: stall}
		}
		s, err := moqtransport.Connect(tctx, conn, &moqtransport.Config{Handler: handlerOf(h), Path: d.Path, Authority: d.Authority, MaxRequests: 1000, Tracer: tr})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}

	// A healthy publisher and a subscriber that stays: the drain waits
	// for it.
	tracks := &moqtransport.Tracks{}
	ns := wire.Namespace{"clock"}
	tracks.Add(moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "now"}, moqtransport.TrackConfig{}))
	pub := connect("moqt", tracks, nil, nil)
	if _, err := pub.PublishNamespace(tctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	sub := connect("https", nil, nil, nil)
	if _, err := sub.Subscribe(tctx, ns, "now", moqtransport.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}

	// A publisher that stops reading, and enough upstream SUBSCRIBEs to
	// fill its receive window.
	stall := make(chan struct{})
	stuck := connect("moqt", &moqtransport.Tracks{}, stall, nil)
	stuckNS := wire.Namespace{"stuck"}
	if _, err := stuck.PublishNamespace(tctx, stuckNS, nil); err != nil {
		t.Fatal(err)
	}
	close(stall)
	var wg sync.WaitGroup
	long := strings.Repeat("x", 4000)
	const perSession = 90
	for i := range 2 {
		tr := &subscribeCounter{sent: make(chan struct{}, perSession)}
		s := connect("moqt", nil, nil, tr)
		for j := range perSession {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = s.Subscribe(tctx, stuckNS, fmt.Sprintf("%d-%d-%s", i, j, long), moqtransport.SubscribeOptions{})
			}()
		}
		for range perSession {
			<-tr.sent
		}
		// A round trip: the relay has read the SUBSCRIBEs before it.
		if _, err := s.Subscribe(tctx, ns, "now", moqtransport.SubscribeOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	return sub, wg.Wait
}

// subscribeCounter tells of each SUBSCRIBE its session sends.
type subscribeCounter struct {
	sent chan struct{}
}

func (c *subscribeCounter) ControlMessage(created bool, m wire.Message) {
	if _, ok := m.(*wire.Subscribe); ok && created {
		select {
		case c.sent <- struct{}{}:
		default:
		}
	}
}
func (*subscribeCounter) SubgroupHeader(bool, *wire.SubgroupHeader)                     {}
func (*subscribeCounter) SubgroupObject(bool, *wire.SubgroupHeader, *wire.ObjectHeader) {}
func (*subscribeCounter) FetchHeader(bool, uint64)                                      {}
func (*subscribeCounter) FetchObject(bool, *wire.ObjectHeader)                          {}
func (*subscribeCounter) Datagram(bool, *wire.Datagram)                                 {}

// runAsRelay is the environment variable that makes the test binary run
// moq-relay's main with the arguments it holds (TestMain), so that a test
// can signal a real moq-relay process without building one.
const runAsRelay = "MOQ_RELAY_TEST_MAIN"

// TestRelayProcessTwoSignals runs moq-relay as a process, blocks its drain
// as TestRelaySecondSignalExits does, and sends it two SIGTERMs: it exits
// with status 0 (run returned; not the last-resort exit after the grace).
func TestRelayProcessTwoSignals(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), runAsRelay+"=--bind 127.0.0.1:0 --drain-timeout 1m")
	stderr, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default: // nobody reads any more
			}
		}
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	var addr, fp string
	fpRe := regexp.MustCompile(`fingerprint=([0-9a-f]{64})`)
	addrRe := regexp.MustCompile(`msg="relay serving" addr=(\S+)`)
	for addr == "" {
		select {
		case l := <-lines:
			if m := fpRe.FindStringSubmatch(l); m != nil {
				fp = m[1]
			}
			if m := addrRe.FindStringSubmatch(l); m != nil {
				addr = m[1]
			}
		case err := <-exited:
			t.Fatalf("moq-relay exited: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatal("moq-relay did not start")
		}
	}
	sub, wait := blockRelay(t, addr, fp)
	defer wait()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sub.GoAway():
	case <-time.After(10 * time.Second):
		t.Fatal("no GOAWAY after the first SIGTERM")
	}
	second := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		t.Logf("moq-relay exited %v after the second SIGTERM", time.Since(second).Round(time.Millisecond))
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("moq-relay exited with %v after the second SIGTERM, want status 0", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("moq-relay still runs after the second SIGTERM")
	}
}
