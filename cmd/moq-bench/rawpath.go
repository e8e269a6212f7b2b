package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
)

const (
	rawALPN = "moq-bench-raw"
	// rawUrgency is the urgency the session gives its data streams for
	// DefaultPriority (priority/32, non-incremental).
	rawUrgency = moqtransport.DefaultPriority / 32
)

// rawQUICConfig has the values of moqnative's quic.Config (its exported
// constants).
func rawQUICConfig() *quic.Config {
	return &quic.Config{
		EnableDatagrams:                  true,
		EnableStreamResetPartialDelivery: true,
		MaxIncomingUniStreams:            moqnative.MaxIncomingUniStreams,
		MaxIncomingStreams:               moqnative.MaxIncomingStreams,
		KeepAlivePeriod:                  moqnative.KeepAlivePeriod,
		MaxIdleTimeout:                   moqnative.MaxIdleTimeout,
		InitialStreamReceiveWindow:       moqnative.InitialStreamReceiveWindow,
		MaxStreamReceiveWindow:           moqnative.MaxStreamReceiveWindow,
		InitialConnectionReceiveWindow:   moqnative.InitialConnectionReceiveWindow,
		MaxConnectionReceiveWindow:       moqnative.MaxConnectionReceiveWindow,
	}
}

// rawPath is the baseline: the origin (origin.go) in a child process
// sends the objects straight to N thin subscribers in this process, which
// read them with the same parser as the relay path's (thin.go), with no
// MoQT handshake before.
type rawPath struct {
	prm     *params
	rec     *recorder
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup // receivers
	mu      sync.Mutex
	clients []*thinConn
	socks   *thinSockets // the clients' sockets

	cmd    *exec.Cmd
	pid    int
	stdin  io.WriteCloser
	lines  chan string   // the origin's stdout
	exited chan struct{} // the origin's stdout and stderr ended
	stderr lockedBuffer  // the origin's errors

	inMu   sync.Mutex // the publishers write records to stdin
	record [originRecord]byte
}

func newRawPath(prm *params, rec *recorder) *rawPath {
	r := &rawPath{prm: prm, rec: rec, lines: make(chan string, 4), exited: make(chan struct{}), socks: &thinSockets{n: prm.clientSockets}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

func (r *rawPath) name() string { return "raw-quic" }

// serverPID is the origin's pid, for its CPU and RSS.
func (r *rawPath) serverPID() int { return r.pid }

// line returns the origin's next stdout line.
func (r *rawPath) line(ctx context.Context, what string) (string, error) {
	select {
	case l, ok := <-r.lines:
		if ok {
			return l, nil
		}
	case <-ctx.Done():
		return "", fmt.Errorf("origin: waiting for %s: %w", what, ctx.Err())
	}
	<-r.exited
	return "", fmt.Errorf("origin exited before %s: %s", what, strings.TrimSpace(r.stderr.String()))
}

func (r *rawPath) setup(ctx context.Context) error {
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	cfg, _ := json.Marshal(originConfig{Pubs: r.prm.pubs, Subs: r.prm.subs, Size: r.prm.size, GroupObjects: r.prm.groupObjects})
	r.cmd = exec.Command(self)
	r.cmd.Env = append(os.Environ(), originEnv+"="+string(cfg), "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true")
	r.cmd.Stderr = &r.stderr
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if r.stdin, err = r.cmd.StdinPipe(); err != nil {
		return err
	}
	if err := r.cmd.Start(); err != nil {
		return fmt.Errorf("starting the origin: %w", err)
	}
	r.pid = r.cmd.Process.Pid
	go func() {
		defer close(r.exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			r.lines <- sc.Text()
		}
		close(r.lines)
		_ = r.cmd.Wait() // after stdout ended; stderr is then complete
	}()
	l, err := r.line(ctx, "listening")
	if err != nil {
		return err
	}
	addrS, fpS, _ := strings.Cut(l, " ")
	addr, err := net.ResolveUDPAddr("udp", addrS)
	fp, ferr := hex.DecodeString(fpS)
	if err != nil || ferr != nil || len(fp) != 32 {
		return fmt.Errorf("origin: unexpected first line %q", l)
	}
	clientTLS := pinnedTLS("localhost", rawALPN, [][32]byte{[32]byte(fp)})
	// The same handshake as the relay path's thin subscribers
	// (--tls-key-exchange), so that setup times and CPU compare.
	clientTLS.CurvePreferences = keyExchanges[r.prm.keyExchange]
	aliases := make([]uint64, r.prm.pubs) // the origin's track alias of publisher i is i
	for i := range aliases {
		aliases[i] = uint64(i)
	}
	err = dialAll(ctx, r.prm.subs, func(ctx context.Context, i int) error {
		c, err := r.socks.dial(ctx, addr, clientTLS)
		if err != nil {
			return fmt.Errorf("raw subscriber %d: %w", i, err)
		}
		r.mu.Lock()
		r.clients = append(r.clients, c)
		r.mu.Unlock()
		tr := &thinReceiver{i: i, conn: c.conn, aliases: aliases, maxObj: uint64(r.prm.size), sink: r.rec.recordAt, bad: &r.rec.bad, wg: &r.wg, ctx: r.ctx}
		r.wg.Go(tr.run)
		return nil
	})
	if err != nil {
		return err
	}
	if l, err := r.line(ctx, "ready"); err != nil || l != "ready" {
		return fmt.Errorf("origin: want ready, got %q: %v", l, err)
	}
	return nil
}

// publish sends object k of publisher i to the origin.
func (r *rawPath) publish(i int, k int64, at int64) error {
	r.inMu.Lock()
	defer r.inMu.Unlock()
	binary.BigEndian.PutUint64(r.record[0:], uint64(i))
	binary.BigEndian.PutUint64(r.record[8:], uint64(k))
	binary.BigEndian.PutUint64(r.record[16:], uint64(at))
	if _, err := r.stdin.Write(r.record[:]); err != nil {
		return fmt.Errorf("origin: %w (%s)", err, strings.TrimSpace(r.stderr.String()))
	}
	return nil
}

func (r *rawPath) endPublish(int) {}

// finishSenders tells the origin that no more objects come: it writes
// what it holds and closes its streams.
func (r *rawPath) finishSenders() {
	r.inMu.Lock()
	defer r.inMu.Unlock()
	if r.stdin != nil {
		_ = r.stdin.Close()
	}
}

// err is what the origin reported so far.
func (r *rawPath) err() error {
	if s := strings.TrimSpace(r.stderr.String()); s != "" {
		return errors.New("origin: " + s)
	}
	return nil
}

// lockedBuffer is a bytes.Buffer that a child's output can be copied into
// while it is read.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil // enough to say what went wrong
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// packetsReceived counts the subscribers' packets.
func (r *rawPath) packetsReceived() (uint64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return thinPackets(r.clients), len(r.clients) > 0
}

func (r *rawPath) close() {
	r.finishSenders()
	r.mu.Lock()
	clients := r.clients
	r.mu.Unlock()
	for _, c := range clients {
		_ = c.conn.CloseWithError(0, "")
	}
	r.cancel()
	r.wg.Wait()
	for _, c := range clients {
		c.close(0, "")
	}
	r.socks.close()
	if r.cmd != nil && r.cmd.Process != nil {
		t := time.AfterFunc(5*time.Second, func() { _ = r.cmd.Process.Kill() })
		<-r.exited
		t.Stop()
	}
}
