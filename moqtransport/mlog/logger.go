package mlog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Schema identifies the events in the header record's event_schemas.
const Schema = "urn:ietf:params:qlog:events:moqt"

// FlushInterval is how long a data event (header, object, datagram) may sit
// in the logger's buffer before it is written out. Control messages are
// written out at once.
const FlushInterval = 100 * time.Millisecond

const (
	bufferSize      = 64 << 10 // the bufio.Writer in front of the writer
	recordSeparator = 0x1E     // RFC 7464
	maxScratch      = 64 << 10 // a record buffer grown past this is not kept
)

// Logger writes a session's MoQT events as a qlog JSON-SEQ log. It
// implements moqtransport.Tracer; its methods are safe for concurrent use.
//
// Records go through a bufio.Writer under a mutex. A control message is
// flushed to the writer at once; the more frequent data events are flushed
// when the buffer fills or FlushInterval after the first unflushed one, so
// that a subscription's objects cost no write each. A session goroutine
// therefore blocks only as long as one write to the underlying writer takes
// (a file: microseconds); a writer that can block for long, such as a pipe
// nobody reads, should not be given to New.
//
// The first error from the writer turns the logger off: later events are
// dropped, Err reports the error, and the session never sees it.
type Logger struct {
	off atomic.Bool // set once err is set or the logger is closed

	mu      sync.Mutex
	w       io.Writer
	bw      *bufio.Writer
	start   time.Time
	e       enc // the record being built; reused
	err     error
	closed  bool
	timer   *time.Timer
	pending bool // the timer is armed
}

var _ moqtransport.Tracer = (*Logger)(nil)

// New returns a Logger that writes to w, starting with the qlog header
// record. vantage is the vantage point type, "client" or "server"; title
// names the log. Event times are milliseconds since New.
func New(w io.Writer, vantage, title string) *Logger {
	l := &Logger{w: w, bw: bufio.NewWriterSize(w, bufferSize), start: time.Now()}
	if vantage == "" {
		vantage = "unknown"
	}
	e := &l.e
	e.b = append(e.b[:0], recordSeparator)
	e.begin()
	e.str("qlog_version", "0.3")
	e.str("qlog_format", "JSON-SEQ")
	e.str("title", title)
	e.str("description", "MoQ Transport events (draft-ietf-moq-transport-14)")
	e.obj("trace")
	e.obj("vantage_point")
	e.str("type", vantage)
	e.end()
	e.obj("common_fields")
	e.str("time_format", "relative")
	e.key("reference_time")
	e.b = appendMillis(e.b, time.Duration(l.start.UnixNano()))
	e.end()
	e.arr("event_schemas")
	e.sep()
	e.b = appendString(e.b, Schema)
	e.endArr()
	e.end()
	e.end()
	e.b = append(e.b, '\n')
	l.mu.Lock()
	l.write(e.b, true)
	l.mu.Unlock()
	return l
}

// ControlMessage logs moqt:control_message_created or _parsed.
func (l *Logger) ControlMessage(created bool, m wire.Message) {
	if e := l.begin(created, "control_message"); e != nil {
		controlMessage(e, m)
		l.finish(true)
	}
}

// SubgroupHeader logs moqt:subgroup_header_created or _parsed.
func (l *Logger) SubgroupHeader(created bool, h *wire.SubgroupHeader) {
	if e := l.begin(created, "subgroup_header"); e != nil {
		subgroupHeader(e, created, h)
		l.finish(false)
	}
}

// SubgroupObject logs moqt:subgroup_object_created or _parsed.
func (l *Logger) SubgroupObject(created bool, h *wire.SubgroupHeader, o *wire.ObjectHeader) {
	if e := l.begin(created, "subgroup_object"); e != nil {
		subgroupObject(e, h, o)
		l.finish(false)
	}
}

// FetchHeader logs moqt:fetch_header_created or _parsed.
func (l *Logger) FetchHeader(created bool, requestID uint64) {
	if e := l.begin(created, "fetch_header"); e != nil {
		e.uint("request_id", requestID)
		l.finish(false)
	}
}

// FetchObject logs moqt:fetch_object_created or _parsed.
func (l *Logger) FetchObject(created bool, o *wire.ObjectHeader) {
	if e := l.begin(created, "fetch_object"); e != nil {
		fetchObject(e, o)
		l.finish(false)
	}
}

// Datagram logs moqt:object_datagram_created or _parsed.
func (l *Logger) Datagram(created bool, d *wire.Datagram) {
	if e := l.begin(created, "object_datagram"); e != nil {
		datagram(e, d)
		l.finish(false)
	}
}

// begin locks the logger and starts a record for the event, leaving the
// data object open. It returns nil, unlocked, when the logger is off.
func (l *Logger) begin(created bool, event string) *enc {
	if l.off.Load() {
		return nil
	}
	l.mu.Lock()
	if l.err != nil || l.closed {
		l.mu.Unlock()
		return nil
	}
	e := &l.e
	e.b = append(e.b[:0], recordSeparator)
	e.begin()
	e.key("time")
	e.b = appendMillis(e.b, time.Since(l.start))
	e.key("name")
	e.b = append(e.b, `"moqt:`...)
	e.b = append(e.b, event...)
	if created {
		e.b = append(e.b, `_created"`...)
	} else {
		e.b = append(e.b, `_parsed"`...)
	}
	e.obj("data")
	return e
}

// finish closes the record begun by begin, writes it and unlocks.
func (l *Logger) finish(flush bool) {
	e := &l.e
	e.end()
	e.end()
	e.b = append(e.b, '\n')
	l.write(e.b, flush)
	if cap(e.b) > maxScratch {
		e.b = nil
	}
	l.mu.Unlock()
}

// write writes one record; l.mu is held.
func (l *Logger) write(b []byte, flush bool) {
	if _, err := l.bw.Write(b); err != nil {
		l.fail(err)
		return
	}
	if flush {
		if err := l.bw.Flush(); err != nil {
			l.fail(err)
		}
		return
	}
	if !l.pending && l.bw.Buffered() > 0 {
		l.pending = true
		if l.timer == nil {
			l.timer = time.AfterFunc(FlushInterval, l.tick)
		} else {
			l.timer.Reset(FlushInterval)
		}
	}
}

// tick flushes what the data events left in the buffer.
func (l *Logger) tick() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pending = false
	if l.err == nil && !l.closed {
		if err := l.bw.Flush(); err != nil {
			l.fail(err)
		}
	}
}

// fail turns the logger off with err; l.mu is held.
func (l *Logger) fail(err error) {
	if l.err == nil {
		l.err = fmt.Errorf("mlog: writing the log: %w", err)
	}
	l.off.Store(true)
}

// Err returns the write error that turned the logger off, or nil.
func (l *Logger) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Flush writes out the buffered records. It returns the logger's error, if
// it has one.
func (l *Logger) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil && !l.closed {
		if err := l.bw.Flush(); err != nil {
			l.fail(err)
		}
	}
	return l.err
}

// Close flushes the log, turns the logger off and closes the writer when it
// is an io.Closer. It returns the logger's write error, if any, else the
// writer's Close error. Events after Close are dropped; closing again does
// nothing and returns nil.
func (l *Logger) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	if l.timer != nil {
		l.timer.Stop()
	}
	if l.err == nil {
		if err := l.bw.Flush(); err != nil {
			l.fail(err)
		}
	}
	l.closed = true
	l.off.Store(true)
	err := l.err
	l.mu.Unlock()
	if c, ok := l.w.(io.Closer); ok {
		if cerr := c.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("mlog: closing the log: %w", cerr)
		}
	}
	return err
}

// appendMillis appends d in milliseconds with microsecond precision.
func appendMillis(b []byte, d time.Duration) []byte {
	return strconv.AppendFloat(b, float64(d.Microseconds())/1e3, 'f', -1, 64)
}

// maxFileTries bounds the names Dir tries for one connection.
const maxFileTries = 1000

// Dir returns a factory of Loggers that each write a file in dir, which is
// created (0o755) when missing. The factory's Logger for a connection
// writes <dir>/<connID>_<vantage>.mlog (0o644), titled "moq-go <connID>":
// connID is whatever names the connection to the caller, such as its remote
// address or a counter. In the file name, every character of connID and
// vantage other than an ASCII letter, digit, '.', '-' or '_' becomes '_'
// (127.0.0.1:4433 gives 127.0.0.1_4433_server.mlog). An existing file is
// never overwritten: the factory tries <connID>_<vantage>-2.mlog, -3 and so
// on. Closing the Logger closes the file.
func Dir(dir string) func(vantage, connID string) (*Logger, error) {
	return func(vantage, connID string) (*Logger, error) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("mlog: %w", err)
		}
		base := fileSafe(connID) + "_" + fileSafe(vantage)
		for i := 1; i <= maxFileTries; i++ {
			name := base + ".mlog"
			if i > 1 {
				name = base + "-" + strconv.Itoa(i) + ".mlog"
			}
			f, err := os.OpenFile(filepath.Join(dir, name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
			if errors.Is(err, fs.ErrExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("mlog: %w", err)
			}
			return New(f, vantage, "moq-go "+connID), nil
		}
		return nil, fmt.Errorf("mlog: %s: %d files named %s*.mlog exist already", dir, maxFileTries, base)
	}
}

// fileSafe maps s to a file name component: ASCII letters, digits, '.',
// '-' and '_' stay, anything else becomes '_'. An empty s gives "_".
func fileSafe(s string) string {
	if s == "" {
		return "_"
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '-', c == '_':
		default:
			b[i] = '_'
		}
	}
	return string(b)
}
