package wire

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// ControlReader reads framed control messages from a control stream.
type ControlReader struct {
	r   *bufio.Reader
	buf []byte
}

// NewControlReader returns a reader of the control messages on r.
func NewControlReader(r io.Reader) *ControlReader {
	return &ControlReader{r: bufio.NewReaderSize(r, 4096)}
}

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
	return ParseMessageBody(MessageType(t), body)
}

// readVarint reads a varint from r. It returns io.EOF only when the stream
// ends before the varint's first byte, and io.ErrUnexpectedEOF when it ends
// inside it.
func readVarint(r *bufio.Reader) (uint64, error) {
	first, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	l := 1 << (first >> 6)
	v := uint64(first & 0x3f)
	for i := 1; i < l; i++ {
		b, err := r.ReadByte()
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		v = v<<8 | uint64(b)
	}
	return v, nil
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
}

// Object is an object read from a data stream. Extensions and Payload are
// allocated for this object alone, at their declared sizes once those are
// checked against the reader's limits.
type Object struct {
	ObjectHeader
	Payload []byte
}

// StreamReader reads the header and then the objects of a subgroup or fetch
// stream. Each payload is copied once, from the stream into the Object.
type StreamReader struct {
	r        *bufio.Reader
	cfg      StreamReaderConfig
	header   StreamHeader
	subgroup SubgroupState
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
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	s := &StreamReader{r: br, cfg: cfg}
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

// readerPool recycles the buffered readers of data streams: a relay opens
// one stream per group per subscription, and each would otherwise cost a
// fresh 2 KiB buffer.
var readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 2048) }}

// Release returns the reader's buffer for reuse. Call it once the stream
// is done; the StreamReader must not be used afterwards. Objects already
// read stay valid: they never alias the buffer.
func (s *StreamReader) Release() {
	if s.r == nil {
		return
	}
	s.r.Reset(nil)
	readerPool.Put(s.r)
	s.r = nil
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
	// into a buffer of their own size first.
	var ext []byte
	if extLen > 0 {
		ext = make([]byte, extLen)
		if _, err := io.ReadFull(s.r, ext); err != nil {
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
		if o.Payload, err = s.readPayload(int(o.PayloadLength)); err != nil {
			return o, streamErr(err, fmt.Sprintf("data stream ended inside the %d-byte payload of object %d", o.PayloadLength, o.ID))
		}
	}
	return o, nil
}

// eagerPayload is the payload size up to which the reader allocates the
// whole payload at once. Above it, the buffer grows as bytes arrive, so a
// peer that declares a large object and sends little costs little memory.
const eagerPayload = 1 << 20

// readPayload reads exactly n bytes. Up to eagerPayload it allocates once
// and copies each byte once; above, it doubles its buffer as data arrives,
// which bounds memory by twice what was received.
func (s *StreamReader) readPayload(n int) ([]byte, error) {
	if n <= eagerPayload {
		b := make([]byte, n)
		_, err := io.ReadFull(s.r, b)
		return b, err
	}
	b := make([]byte, 0, eagerPayload)
	for len(b) < n {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(cap(b), n-len(b)))
		}
		m, err := io.ReadFull(s.r, b[len(b):min(cap(b), n)])
		b = b[:len(b)+m]
		if err != nil {
			return nil, err
		}
	}
	return b, nil
}
