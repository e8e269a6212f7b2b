package moqtransport_test

// An in-memory moqtransport.Conn pair for tests that need no network: the
// session fuzz target drives a Session through it. It keeps the semantics a
// session relies on from QUIC: streams are ordered byte pipes with FIN,
// RESET_STREAM (CancelWrite) and STOP_SENDING (CancelRead); a write blocks
// while the peer has a window of unread bytes, like flow control; datagrams
// may be dropped; closing the connection fails every stream and pending
// Accept on both sides with a *ConnError carrying the close code, Remote on
// the side that did not close.

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"github.com/moqgo/moq/moqtransport"
)

// memWindow is how many unread bytes a stream holds before its writer
// waits: QUIC's stream flow control, in small.
const memWindow = 256 << 10

// memLink is what the two ends of a connection share.
type memLink struct {
	mu       sync.Mutex
	closed   bool
	code     uint64
	reason   string
	closedBy int // the side that closed: 0 or 1
	pipes    map[*memPipe]struct{}
	ends     [2]*memConn
}

// memConn is one end of an in-memory connection.
type memConn struct {
	link  *memLink
	side  int
	proto moqtransport.Protocol
	ctx   context.Context

	cancel context.CancelFunc
	bidi   chan *memStream
	uni    chan *memStream
	dgrams chan []byte
}

// newMemConnPair returns the two ends of a connection over protocol p.
func newMemConnPair(p moqtransport.Protocol) (*memConn, *memConn) {
	l := &memLink{pipes: map[*memPipe]struct{}{}}
	for i := range l.ends {
		ctx, cancel := context.WithCancel(context.Background())
		l.ends[i] = &memConn{link: l, side: i, proto: p, ctx: ctx, cancel: cancel,
			bidi: make(chan *memStream, 128), uni: make(chan *memStream, 128), dgrams: make(chan []byte, 64)}
	}
	return l.ends[0], l.ends[1]
}

// err is the error side sees once the link is closed, nil before.
func (l *memLink) err(side int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errLocked(side)
}

func (l *memLink) errLocked(side int) error {
	if !l.closed {
		return nil
	}
	return &moqtransport.ConnError{Code: moqtransport.SessionErrorCode(l.code), Reason: l.reason, Remote: side != l.closedBy}
}

// closeCode returns the code the link was closed with and by which side.
func (l *memLink) closeCode() (code uint64, by int, closed bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.code, l.closedBy, l.closed
}

func (c *memConn) peer() *memConn { return c.link.ends[1-c.side] }

// newStream makes a stream c opens: c writes on out and reads in (in is nil
// for a unidirectional stream).
func (c *memConn) newStream(bidi bool) (local, remote *memStream) {
	out := c.link.newPipe()
	local = &memStream{link: c.link, side: c.side, send: out}
	remote = &memStream{link: c.link, side: 1 - c.side, recv: out}
	if bidi {
		in := c.link.newPipe()
		local.recv, remote.send = in, in
	}
	return local, remote
}

func (l *memLink) newPipe() *memPipe {
	p := &memPipe{link: l, wrote: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	l.mu.Lock()
	if l.closed {
		p.connDone = true
	} else {
		l.pipes[p] = struct{}{}
	}
	l.mu.Unlock()
	return p
}

func (c *memConn) open(ctx context.Context, bidi bool) (*memStream, error) {
	if err := c.link.err(c.side); err != nil {
		return nil, err
	}
	local, remote := c.newStream(bidi)
	q := c.peer().uni
	if bidi {
		q = c.peer().bidi
	}
	select {
	case q <- remote:
		return local, nil
	case <-c.ctx.Done():
		return nil, c.link.err(c.side)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *memConn) accept(ctx context.Context, q chan *memStream) (*memStream, error) {
	// Streams the peer opened before the close stay acceptable, as in
	// QUIC only until the close: check the close first.
	if err := c.link.err(c.side); err != nil {
		return nil, err
	}
	select {
	case s := <-q:
		return s, nil
	case <-c.ctx.Done():
		return nil, c.link.err(c.side)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *memConn) OpenStreamSync(ctx context.Context) (moqtransport.Stream, error) {
	s, err := c.open(ctx, true)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c *memConn) AcceptStream(ctx context.Context) (moqtransport.Stream, error) {
	s, err := c.accept(ctx, c.bidi)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c *memConn) OpenUniStreamSync(ctx context.Context) (moqtransport.SendStream, error) {
	s, err := c.open(ctx, false)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c *memConn) AcceptUniStream(ctx context.Context) (moqtransport.ReceiveStream, error) {
	s, err := c.accept(ctx, c.uni)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (c *memConn) SendDatagram(b []byte) error {
	if err := c.link.err(c.side); err != nil {
		return err
	}
	select {
	case c.peer().dgrams <- append([]byte(nil), b...):
	default: // the receiver's queue is full: dropped, as datagrams may be
	}
	return nil
}

func (c *memConn) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	if err := c.link.err(c.side); err != nil {
		return nil, err
	}
	select {
	case b := <-c.dgrams:
		return b, nil
	case <-c.ctx.Done():
		return nil, c.link.err(c.side)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// CloseWithError closes the connection; the first close wins.
func (c *memConn) CloseWithError(code uint64, reason string) error {
	l := c.link
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed, l.code, l.reason, l.closedBy = true, code, reason, c.side
	pipes := l.pipes
	l.pipes = nil
	l.mu.Unlock()
	for p := range pipes {
		p.mu.Lock()
		p.connDone = true
		p.cond.Broadcast()
		p.mu.Unlock()
	}
	for _, e := range l.ends {
		e.cancel()
	}
	return nil
}

func (c *memConn) Context() context.Context        { return c.ctx }
func (c *memConn) Protocol() moqtransport.Protocol { return c.proto }

// memPipe is one direction of a stream.
type memPipe struct {
	link *memLink
	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte
	// fin: the writer closed; reset: the writer reset (code resetCode);
	// stopped: the reader sent STOP_SENDING (code stopCode); connDone: the
	// connection closed.
	fin, reset, stopped, connDone bool
	resetCode, stopCode           uint64
	// written counts the bytes written; wrote is closed and replaced on
	// each write.
	written int64
	wrote   chan struct{}
}

// memStream is one end of a stream: send is nil on the receiving end of a
// unidirectional stream, recv on its sending end.
type memStream struct {
	link       *memLink
	side       int
	send, recv *memPipe
}

var errMemStreamDone = errors.New("memconn: write on a closed stream")

func (s *memStream) Write(b []byte) (int, error) {
	p := s.send
	if p == nil {
		return 0, errors.New("memconn: write on a receive stream")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.connDone:
			return 0, s.link.err(s.side)
		case p.stopped:
			return 0, &moqtransport.StreamError{Code: p.stopCode, Remote: true}
		case p.fin || p.reset:
			return 0, errMemStreamDone
		}
		if len(p.buf) < memWindow {
			break
		}
		p.cond.Wait()
	}
	p.buf = append(p.buf, b...)
	p.written += int64(len(b))
	close(p.wrote)
	p.wrote = make(chan struct{})
	p.cond.Broadcast()
	return len(b), nil
}

func (s *memStream) Close() error {
	p := s.send
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.connDone {
		return s.link.err(s.side)
	}
	p.fin = true
	p.cond.Broadcast()
	return nil
}

func (s *memStream) CancelWrite(code uint64) {
	p := s.send
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.fin && !p.reset {
		p.reset, p.resetCode = true, code
		p.buf = nil // a reset discards what was not read
	}
	p.cond.Broadcast()
}

func (s *memStream) SetPriority(uint8) {}

func (s *memStream) Read(b []byte) (int, error) {
	p := s.recv
	if p == nil {
		return 0, errors.New("memconn: read on a send stream")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for {
		switch {
		case p.connDone:
			return 0, s.link.err(s.side)
		case p.stopped:
			return 0, &moqtransport.StreamError{Code: p.stopCode}
		case p.reset:
			return 0, &moqtransport.StreamError{Code: p.resetCode, Remote: true}
		case len(p.buf) > 0:
			n := copy(b, p.buf)
			p.buf = p.buf[n:]
			if len(p.buf) == 0 {
				p.buf = nil
			}
			p.cond.Broadcast()
			return n, nil
		case p.fin:
			return 0, io.EOF
		}
		p.cond.Wait()
	}
}

func (s *memStream) CancelRead(code uint64) {
	p := s.recv
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		p.stopped, p.stopCode = true, code
		p.buf = nil
	}
	p.cond.Broadcast()
}

// settled reports whether the reader of p has taken every byte, or will
// take no more (the stream or the connection ended for it).
func (p *memPipe) settled() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.connDone || p.stopped || p.reset || len(p.buf) == 0
}

// writes returns how many bytes were written to p, and a channel closed at
// the next write.
func (p *memPipe) writes() (int64, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.written, p.wrote
}

// memSessions connects a client session to a server session with srvCfg
// over an in-memory raw QUIC connection; both close when the test ends.
func memSessions(t *testing.T, ctx context.Context, srvCfg *moqtransport.Config) (client, server *moqtransport.Session) {
	t.Helper()
	cc, sc := newMemConnPair(moqtransport.ProtocolQUIC)
	accepted := make(chan *moqtransport.Session, 1)
	go func() {
		s, err := moqtransport.Accept(ctx, sc, "/", srvCfg)
		if err != nil {
			t.Error(err)
		}
		accepted <- s
	}()
	client, err := moqtransport.Connect(ctx, cc, &moqtransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.FailNow()
	}
	t.Cleanup(func() {
		_ = client.Close()
		_ = server.Close()
	})
	return client, server
}
