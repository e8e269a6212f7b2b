package moqnative

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"
	h3qlog "github.com/quic-go/quic-go/http3/qlog"
	"github.com/quic-go/quic-go/qlog"
	"github.com/quic-go/quic-go/qlogwriter"
)

// QUIC settings shared by the server and the client.
const (
	// MaxIncomingUniStreams is the default of ServerConfig and
	// ClientConfig.MaxIncomingUniStreams: how many unidirectional streams
	// the peer may have open at once on a connection. MoQT sends every
	// subgroup on its own stream, so a session needs a few per track it
	// receives (the groups in flight: usually one or two, more when
	// groups overlap or arrive late); 1024 is room for hundreds of tracks.
	// The peer opens more as its streams end (QUIC MAX_STREAMS), so the
	// limit bounds concurrency, not throughput. It matches what a session
	// reads at once: moqtransport waits for at most 16*MaxPendingStreams
	// (1024 by default) stream headers, and every open stream's reader
	// buffer and object in progress count against the session's
	// Config.MaxBytesInFlight. (It was 10,000: with objects allocated at
	// their declared length, a peer could pin a MiB on each.)
	MaxIncomingUniStreams = 1024
	// h3UniStreams are the unidirectional streams HTTP/3 opens for itself
	// (control, QPACK encoder and decoder) on a WebTransport connection,
	// on top of the session's.
	h3UniStreams = 3
	// MaxIncomingStreams: MoQT uses one bidirectional stream (the control
	// stream, §3.3). Over WebTransport the HTTP/3 CONNECT request stream
	// is a second one. A few more leave room for a misbehaving peer to be
	// told off by the session (PROTOCOL_VIOLATION) rather than by flow control.
	MaxIncomingStreams = 16
	// KeepAlivePeriod keeps NAT bindings open and lets an idle subscriber
	// (waiting for the next group) stay connected.
	KeepAlivePeriod = 10 * time.Second
	// MaxIdleTimeout closes a connection whose peer has vanished.
	MaxIdleTimeout = 30 * time.Second
	// Receive windows: a stream carries a subgroup, for video a GOP of up
	// to a few MB at high bit rates; quic-go grows the windows from the
	// initial values up to the maximum as the application keeps reading.
	InitialStreamReceiveWindow     = 512 << 10
	MaxStreamReceiveWindow         = 4 << 20
	InitialConnectionReceiveWindow = 2 << 20
	MaxConnectionReceiveWindow     = 16 << 20
)

// quicConfig builds the quic.Config of every server and client connection.
// qlogDir, when set, is where each connection writes a qlog file; maxUni is
// the peer's concurrent unidirectional streams for the MoQT session (0:
// MaxIncomingUniStreams).
//
// WebTransport streams are QUIC streams of the connection that carries the
// session, so the QUIC limit bounds them too; webtransport-go's own
// per-session limits (WT_MAX_STREAMS) are not enabled, as they would also
// turn on WebTransport data flow control, which browsers may not speak.
//
// The send side, where a relay spends its CPU, is left at quic-go's
// defaults: measured at 1:100 × 16 KiB objects (quic-go v0.66.0, loopback,
// perf profiles of the relay and of a bare quic-go sender), the relay's CPU
// per GB is the bare sender's (0.9–1.1×), and quic-go and the kernel take
// 85–90% of both. No quic.Config field lowers it: packets are at most
// 1452 bytes whatever the path MTU (quic-go's packet buffer size, so
// InitialPacketSize and MTU discovery change only the first seconds), GSO
// (on where the kernel has it) sends at most 20 KiB per sendmsg, i.e. up to
// 14 packets (measured: 1.2 sendmsg per 16 KiB object, 9–10 packets
// each, the same for the relay and the bare sender), pacing and
// the congestion controller (NewReno) have no knobs, and the receive
// windows above are the peer's send limits, not a cost here. Turning GSO
// off (QUIC_GO_DISABLE_GSO) cost about 35% more CPU per GB.
func quicConfig(qlogDir string, qlogs *qlogWriters, logger *slog.Logger, maxUni int64) *quic.Config {
	if maxUni <= 0 {
		maxUni = MaxIncomingUniStreams
	}
	conf := &quic.Config{
		// MoQT requires the QUIC DATAGRAM extension (§3.1), and
		// WebTransport over HTTP/3 does too.
		EnableDatagrams: true,
		// RESET_STREAM_AT: webtransport-go requires it (it resets a stream
		// while still delivering its header), and MoQT can use it to
		// deliver a subgroup header reliably before a reset (§10.4.3).
		EnableStreamResetPartialDelivery: true,
		MaxIncomingUniStreams:            maxUni + h3UniStreams,
		MaxIncomingStreams:               MaxIncomingStreams,
		KeepAlivePeriod:                  KeepAlivePeriod,
		MaxIdleTimeout:                   MaxIdleTimeout,
		InitialStreamReceiveWindow:       InitialStreamReceiveWindow,
		MaxStreamReceiveWindow:           MaxStreamReceiveWindow,
		InitialConnectionReceiveWindow:   InitialConnectionReceiveWindow,
		MaxConnectionReceiveWindow:       MaxConnectionReceiveWindow,
		// 0-RTT stays off (Allow0RTT false): MoQT setup messages are not
		// replay safe, and the client dials without a session cache.
	}
	if qlogDir != "" {
		conf.Tracer = qlogTracer(qlogDir, qlogs, logger)
	}
	return conf
}

// The trace header names every event schema registered with qlogwriter
// (since quic-go v0.66): quic-go's qlog package registers the QUIC events
// and http3/qlog the HTTP/3 events that WebTransport connections record;
// both are imported here so that the files of both transports declare them.
var (
	_ = qlog.EventSchema
	_ = h3qlog.EventSchema
)

// qlogTracer returns a quic.Config.Tracer that writes one JSON-SEQ qlog file
// per connection into dir, named <role>_<original destination connection
// ID>.sqlog (the same ID names the client's and the server's file of one
// connection). Each file has a writer goroutine (qlogwriter.FileSeq.Run)
// that quic-go ends by closing its recorder when the connection ends; it
// is counted in ws, so that closing a Dialed or a Server can wait until
// the files are complete.
//
// The client chooses the original connection ID, so two connections can
// have the same one (a client that reuses it, or one that means to
// overwrite another connection's trace): a file that exists already is
// never opened again, as truncating it would mix two connections in a
// file whose first writer is still writing. The later connection's file
// gets a sequence number, <role>_<ID>.<n>.sqlog (see createQlogFile).
func qlogTracer(dir string, ws *qlogWriters, logger *slog.Logger) func(context.Context, bool, quic.ConnectionID) qlogwriter.Trace {
	return func(_ context.Context, isClient bool, connID quic.ConnectionID) qlogwriter.Trace {
		role := "server"
		if isClient {
			role = "client"
		}
		f, err := createQlogFile(dir, fmt.Sprintf("%s_%s", role, connID))
		if err != nil {
			logger.Warn("cannot create qlog file; the connection is not traced", "dir", dir, "error", err)
			return nil
		}
		seq := qlogwriter.NewConnectionFileSeq(&bufferedFile{Writer: bufio.NewWriter(f), f: f}, isClient, connID)
		ws.run(seq.Run)
		return seq
	}
}

// qlogSeq numbers the qlog files whose name was taken (see qlogTracer).
// It is shared by every directory and never reset, so a name is tried
// once: a busy name costs one more attempt, not a search from 1.
var qlogSeq atomic.Uint64

// qlogNameAttempts bounds createQlogFile's attempts at a free name. Each
// number is used once in the process, so a name is only taken if a file
// of that name predates the process (or another process writes to dir).
const qlogNameAttempts = 100

// createQlogFile creates a new file for a connection's trace in dir,
// named base + ".sqlog", or base + ".<n>.sqlog" when that exists: it
// never opens an existing file (O_EXCL).
func createQlogFile(dir, base string) (*os.File, error) {
	name := base + ".sqlog"
	for range qlogNameAttempts {
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if !errors.Is(err, fs.ErrExist) {
			return f, err
		}
		name = fmt.Sprintf("%s.%d.sqlog", base, qlogSeq.Add(1))
	}
	return nil, fmt.Errorf("no free file name for %s.sqlog after %d attempts", base, qlogNameAttempts)
}

// qlogWriters counts the qlog writer goroutines of a Dialed or a Server.
// (Not a WaitGroup: a server's connection may start a writer while Close
// waits.)
type qlogWriters struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n falls to 0; made by wait
}

// qlogFlushWait bounds how long closing waits for qlog files to be
// written: quic-go closes a connection's recorder as the connection ends,
// so this is only a guard against a recorder that is never closed.
const qlogFlushWait = 5 * time.Second

// run runs f, a writer, on a goroutine of its own.
func (ws *qlogWriters) run(f func()) {
	ws.mu.Lock()
	ws.n++
	ws.mu.Unlock()
	go func() {
		f()
		ws.mu.Lock()
		if ws.n--; ws.n == 0 && ws.idle != nil {
			close(ws.idle)
			ws.idle = nil
		}
		ws.mu.Unlock()
	}()
}

// wait waits, at most qlogFlushWait, for the writers to finish their files.
// It is called after the connections are closed.
func (ws *qlogWriters) wait() {
	ws.mu.Lock()
	if ws.n == 0 {
		ws.mu.Unlock()
		return
	}
	if ws.idle == nil {
		ws.idle = make(chan struct{})
	}
	idle := ws.idle
	ws.mu.Unlock()
	t := time.NewTimer(qlogFlushWait)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

// bufferedFile flushes its buffer before closing the file.
type bufferedFile struct {
	*bufio.Writer
	f *os.File
}

var _ io.WriteCloser = (*bufferedFile)(nil)

func (b *bufferedFile) Close() error {
	err := b.Flush()
	if cerr := b.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// ensureDir creates the qlog directory when it is configured.
func ensureDir(dir string) error {
	if dir == "" {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("moqnative: qlog directory: %w", err)
	}
	return nil
}

// loggerOrDiscard returns l, or a logger that drops everything when l is
// nil: libraries are silent unless asked.
func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
