package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/quic-go/quic-go/quicvarint"
)

// ControlReader reads framed control messages from a control stream.
type ControlReader struct {
	r   *bufio.Reader
	buf []byte
}

// NewControlReader returns a reader of the control messages on r.
func NewControlReader(r io.Reader) *ControlReader {
	return &ControlReader{r: bufio.NewReaderSize(r, controlReadBuffer)}
}

// controlReadBuffer is the read buffer of a ControlReader, kept for the
// session's life: a relay holds one per viewer, whose control stream
// carries a few small messages (a SUBSCRIBE is tens of bytes). A larger
// message is read straight into the message buffer.
const controlReadBuffer = 512

// keptMessageBuffer bounds the message buffer a ControlReader keeps
// between messages: a larger one (up to 64 KiB for the largest message)
// is dropped once its message is parsed.
const keptMessageBuffer = 4 << 10

// ReadMessage reads the next message. It returns io.EOF when the stream ends
// between messages (for a control stream that is itself a
// PROTOCOL_VIOLATION, which the session decides), a *SessionError with
// PROTOCOL_VIOLATION when it ends inside one or the message is malformed,
// and other errors from the stream as they are. An unknown type is
// rejected before its payload is read.
func (c *ControlReader) ReadMessage() (Message, error) {
	t, err := readVarint(c.r)
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, streamErr(err, "control stream ended inside a message type")
	}
	if NewMessage(MessageType(t)) == nil {
		return nil, violation("unknown control message type 0x%x", t)
	}
	var l [2]byte
	if _, err := io.ReadFull(c.r, l[:]); err != nil {
		return nil, streamErr(err, "control stream ended inside the length of "+MessageType(t).String())
	}
	n := int(l[0])<<8 | int(l[1])
	if cap(c.buf) < n {
		c.buf = make([]byte, n) // at most 65535 bytes: the length field is 16 bits
	}
	body := c.buf[:n]
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, streamErr(err, fmt.Sprintf("control stream ended inside a %d-byte %s", n, MessageType(t)))
	}
	m, err := ParseMessageBody(MessageType(t), body)
	if cap(c.buf) > keptMessageBuffer {
		c.buf = nil // parsed messages do not refer to it
	}
	return m, err
}

// readVarint reads a varint from r with quicvarint.Read. It returns io.EOF
// only when the stream ends before the varint's first byte, and
// io.ErrUnexpectedEOF when it ends inside it (quicvarint.Read reports both
// as io.EOF): Peek tells the two apart without consuming a byte.
func readVarint(r *bufio.Reader) (uint64, error) {
	if _, err := r.Peek(1); err != nil {
		return 0, err
	}
	v, err := quicvarint.Read(r)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return v, err
}

// streamErr turns the end of a stream inside a structure into a protocol
// violation and passes other read errors through.
func streamErr(err error, what string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return violation("%s", what)
	}
	return err
}

// ErrObjectTooLarge is returned (wrapped) when an object's payload or
// extensions exceed the reader's limits. It is a local limit, not a
// protocol error: the receiver should stop reading the stream
// (STOP_SENDING) rather than close the session.
var ErrObjectTooLarge = errors.New("wire: object exceeds the reader's size limit")

// Default reader limits.
const (
	DefaultMaxObjectPayload = 64 << 20
	DefaultMaxExtensionsLen = 256 << 10 // room for a few maximum-size (65535-byte) extensions
)

// StreamReaderConfig bounds what a StreamReader allocates for one object.
// The zero value uses the defaults.
type StreamReaderConfig struct {
	MaxObjectPayload uint64 // default DefaultMaxObjectPayload
	MaxExtensionsLen uint64 // default DefaultMaxExtensionsLen
	// Budget, when set, is charged with the reader's buffer (ReaderBufferSize)
	// for the stream's life and with the buffers of the object being read
	// until ReadObject returns it; a reservation it refuses fails the read
	// with ErrBudgetExhausted. Readers of one session share one budget.
	Budget *ByteBudget
}

// Object is an object read from a data stream. Extensions and Payload are
// allocated for this object alone. They grow as their bytes arrive, never
// ahead of them to a declared length: see EagerObjectBytes.
type Object struct {
	ObjectHeader
	Payload []byte
}

// StreamReader reads the header and then the objects of a subgroup or fetch
// stream. Each payload is copied once from the stream, into the Object or,
// when it is larger than EagerObjectBytes, into chunks taken as its bytes
// arrive, and then once more into the Object.
type StreamReader struct {
	r        *bufio.Reader
	cfg      StreamReaderConfig
	header   StreamHeader
	subgroup SubgroupState
	chunks   []*[]byte // an object's chunks while it arrives (readGrowing)
	held     int64     // reserved from cfg.Budget for the object being read
	charged  bool      // ReaderBufferSize is reserved from cfg.Budget
}

// NewStreamReader reads the stream header from r. An unknown stream type is a
// PROTOCOL_VIOLATION; a stream that ends inside the header is one too.
func NewStreamReader(r io.Reader, cfg StreamReaderConfig) (*StreamReader, error) {
	if cfg.MaxObjectPayload == 0 {
		cfg.MaxObjectPayload = DefaultMaxObjectPayload
	}
	if cfg.MaxExtensionsLen == 0 {
		cfg.MaxExtensionsLen = DefaultMaxExtensionsLen
	}
	if !cfg.Budget.Reserve(ReaderBufferSize) {
		return nil, fmt.Errorf("%w: no room for another stream's %d-byte reader", ErrBudgetExhausted, ReaderBufferSize)
	}
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	s := &StreamReader{r: br, cfg: cfg, charged: cfg.Budget != nil}
	t, err := readVarint(s.r)
	if err != nil {
		s.Release()
		return nil, streamErr(err, "data stream ended before its type")
	}
	s.header.Type = t
	switch {
	case t == StreamTypeFetch:
		s.header.FetchID, err = readVarint(s.r)
	case IsSubgroupStreamType(t):
		err = s.readSubgroupHeader(t)
	default:
		s.Release()
		return nil, violation("unknown data stream type 0x%x", t)
	}
	if err != nil {
		s.Release()
		return nil, streamErr(err, "data stream ended inside its header")
	}
	return s, nil
}

func (s *StreamReader) readSubgroupHeader(t uint64) error {
	h := subgroupFlags(t)
	var err error
	if h.TrackAlias, err = readVarint(s.r); err != nil {
		return err
	}
	if h.GroupID, err = readVarint(s.r); err != nil {
		return err
	}
	if h.IDMode == SubgroupIDExplicit {
		if h.SubgroupID, err = readVarint(s.r); err != nil {
			return err
		}
	}
	if h.PublisherPriority, err = s.r.ReadByte(); err != nil {
		return err
	}
	s.header.Subgroup = h
	s.subgroup = SubgroupState{Header: h}
	return nil
}

// ReaderBufferSize is the size of a data stream reader's buffer.
const ReaderBufferSize = 2048

// readerPool recycles the buffered readers of data streams: a relay opens
// one stream per group per subscription, and each would otherwise cost a
// fresh 2 KiB buffer.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, ReaderBufferSize) }}

// Release returns the reader's buffer for reuse, and its reservations to
// the budget. Call it once the stream is done; the StreamReader must not be
// used afterwards. Objects already read stay valid: they never alias the
// buffer.
func (s *StreamReader) Release() {
	if s.r == nil {
		return
	}
	s.r.Reset(nil)
	readerPool.Put(s.r)
	s.r = nil
	s.unhold()
	if s.charged {
		s.cfg.Budget.Release(ReaderBufferSize)
		s.charged = false
	}
}

// unhold returns what the object being read reserved.
func (s *StreamReader) unhold() {
	s.cfg.Budget.Release(s.held)
	s.held = 0
}

// Header returns the stream header. For a subgroup stream whose Subgroup ID
// is its first object's ID, the ID is known once that object is read.
func (s *StreamReader) Header() StreamHeader {
	h := s.header
	h.Subgroup = s.subgroup.Header
	return h
}

// ReadObject reads the next object. It returns io.EOF when the stream ends
// cleanly between objects, and a *SessionError with PROTOCOL_VIOLATION when
// it ends inside one (a FIN in the middle of an object) or an object is
// malformed. Other read errors, such as a stream reset, pass through.
func (s *StreamReader) ReadObject() (Object, error) {
	// The object's buffers leave the budget when it is returned: from then
	// on they are the caller's (a track's cache counts them).
	defer s.unhold()
	var o Object
	first, err := readVarint(s.r)
	if err != nil {
		if err == io.EOF {
			return o, io.EOF
		}
		return o, streamErr(err, "data stream ended inside an object")
	}
	var extLen uint64
	var delta uint64
	if s.header.Type == StreamTypeFetch {
		o.Group = first
		if o.Subgroup, err = readVarint(s.r); err != nil {
			return o, streamErr(err, "data stream ended inside an object")
		}
		if o.ID, err = readVarint(s.r); err != nil {
			return o, streamErr(err, "data stream ended inside an object")
		}
		if o.PublisherPriority, err = s.r.ReadByte(); err != nil {
			return o, streamErr(err, "data stream ended inside an object")
		}
	} else {
		delta = first
	}
	withExt := s.header.Type == StreamTypeFetch || s.subgroup.Header.Extensions
	if withExt {
		if extLen, err = readVarint(s.r); err != nil {
			return o, streamErr(err, "data stream ended inside an object")
		}
		if extLen > s.cfg.MaxExtensionsLen {
			return o, fmt.Errorf("%w: %d bytes of extensions, limit %d", ErrObjectTooLarge, extLen, s.cfg.MaxExtensionsLen)
		}
	}
	// Extensions come before the payload length on the wire: read them
	// into a buffer of their own first.
	if extLen > 0 {
		ext, err := s.readGrowing(int(extLen))
		if err != nil {
			return o, streamErr(err, "data stream ended inside an object's extensions")
		}
		if err := validateExtensions(ext); err != nil {
			return o, err
		}
		o.Extensions = ext
	}
	if o.PayloadLength, err = readVarint(s.r); err != nil {
		return o, streamErr(err, "data stream ended inside an object")
	}
	if o.PayloadLength == 0 {
		st, err := readVarint(s.r)
		if err != nil {
			return o, streamErr(err, "data stream ended inside an object's status")
		}
		o.Status = ObjectStatus(st)
	}
	if err := checkStatus(o.Status, o.PayloadLength, len(o.Extensions)); err != nil {
		return o, err
	}
	if o.PayloadLength > s.cfg.MaxObjectPayload {
		return o, fmt.Errorf("%w: %d-byte payload, limit %d", ErrObjectTooLarge, o.PayloadLength, s.cfg.MaxObjectPayload)
	}
	if s.header.Type != StreamTypeFetch {
		if err := s.subgroup.accept(&o.ObjectHeader, delta); err != nil {
			return o, err
		}
	}
	if o.PayloadLength > 0 {
		if o.Payload, err = s.readGrowing(int(o.PayloadLength)); err != nil {
			return o, streamErr(err, fmt.Sprintf("data stream ended inside the %d-byte payload of object %d", o.PayloadLength, o.ID))
		}
	}
	return o, nil
}

// EagerObjectBytes is the size up to which a reader allocates a payload or
// an extension block at once, at its declared length. A larger one is read
// into chunks of this size, taken as its bytes arrive, and copied into a
// buffer of its exact length once the last byte is in. So a peer that
// declares a large object and sends little makes the reader hold one chunk,
// and one that sends m bytes of it about m; an object that arrives whole
// costs one allocation of its size, as a small one does, and one copy.
const EagerObjectBytes = 16 << 10

// chunkPool recycles the chunks of objects larger than EagerObjectBytes.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, EagerObjectBytes); return &b }}

// readGrowing reads exactly n bytes, charging what it holds to the budget
// until the object is returned. The chunks are charged; the final buffer
// is not, as it replaces them within one copy.
func (s *StreamReader) readGrowing(n int) ([]byte, error) {
	if n <= EagerObjectBytes {
		if err := s.hold(n); err != nil {
			return nil, err
		}
		b := make([]byte, n)
		_, err := io.ReadFull(s.r, b)
		return b, err
	}
	chunks := s.chunks[:0]
	defer func() {
		for i, c := range chunks {
			chunkPool.Put(c)
			chunks[i] = nil
		}
		s.chunks = chunks[:0] // the list is kept for the stream's next object
	}()
	for got := 0; got < n; {
		if err := s.hold(EagerObjectBytes); err != nil {
			return nil, err
		}
		c := chunkPool.Get().(*[]byte)
		chunks = append(chunks, c)
		m := min(EagerObjectBytes, n-got)
		if _, err := io.ReadFull(s.r, (*c)[:m]); err != nil {
			return nil, err
		}
		got += m
	}
	b := make([]byte, n)
	off := 0
	for _, c := range chunks {
		off += copy(b[off:], *c)
	}
	return b, nil
}

// hold reserves n more bytes for the object being read.
func (s *StreamReader) hold(n int) error {
	if !s.cfg.Budget.Reserve(int64(n)) {
		st := s.cfg.Budget.Stats()
		return fmt.Errorf("%w: %d more bytes for an object, %d of %d in use", ErrBudgetExhausted, n, st.Used, st.Limit)
	}
	s.held += int64(n)
	return nil
}
