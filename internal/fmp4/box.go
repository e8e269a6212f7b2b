// Package fmp4 is the fragmented MP4 (ISO BMFF, CMAF) code that moq-pub and
// moq-sub share: a reader of top-level boxes from a stream, the init segment
// (ftyp and moov) and its tracks, fragments (one moof with its mdat) and
// what a publisher needs to know about them (track, sync samples, decode
// time), the grouping of fragments into MoQT groups, and the rewriting of an
// init segment down to some of its tracks.
//
// Every error about the input wraps ErrInvalid; the parsers never panic and
// bound what they allocate by the input's size and MaxBoxSize.
package fmp4

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	mp4 "github.com/abema/go-mp4"
)

// ErrInvalid is wrapped by every error about the input: not MP4, truncated,
// not fragmented, or a structure moq-pub cannot publish.
var ErrInvalid = errors.New("invalid fragmented MP4")

// DefaultMaxBoxSize bounds a top-level box read from a stream (a moof with
// its mdat, as one object, must fit in a MoQT object of the default size
// limit, 64 MiB).
const DefaultMaxBoxSize = 64 << 20

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Box is one top-level box read from a stream.
type Box struct {
	Type   string
	Offset int64  // of its first byte in the stream
	Data   []byte // the whole box, header included; owned by the caller
	Header int    // the header's length: 8, or 16 with a 64-bit size
}

// Payload is the box without its header.
func (b *Box) Payload() []byte { return b.Data[b.Header:] }

// BoxReader reads top-level boxes from a stream, one allocation per box.
type BoxReader struct {
	r   io.Reader
	off int64
	// MaxSize bounds a box's size (header included); 0 means
	// DefaultMaxBoxSize.
	MaxSize int64
}

// NewBoxReader reads boxes from r.
func NewBoxReader(r io.Reader) *BoxReader { return &BoxReader{r: r} }

// Offset is the stream offset of the next box.
func (br *BoxReader) Offset() int64 { return br.off }

// streamStart are the box types an MP4 stream can start with.
var streamStart = map[string]bool{
	"ftyp": true, "styp": true, "moov": true, "moof": true, "mdat": true, "free": true, "skip": true,
	"wide": true, "uuid": true, "sidx": true, "prft": true, "emsg": true, "pdin": true, "meta": true,
}

// printableType reports whether a box type is four printable ASCII bytes,
// as every registered box type is; anything else means the input is not
// (or no longer) a sequence of boxes.
func printableType(t []byte) bool {
	for _, c := range t {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// Next reads the next box. It returns io.EOF when the stream ends cleanly
// between boxes, and an error wrapping ErrInvalid for a truncated box, a
// size that cannot be, a box over MaxSize, or bytes that are not a box
// header. Other read errors are returned as they are.
func (br *BoxReader) Next() (Box, error) {
	b, _, err := br.read(nil)
	return b, err
}

// read reads the next box into a buffer that starts with a copy of prefix,
// and returns the box (Data a slice of that buffer) and the whole buffer:
// a moof and its mdat become one allocation.
func (br *BoxReader) read(prefix []byte) (Box, []byte, error) {
	maxSize := br.MaxSize
	if maxSize <= 0 {
		maxSize = DefaultMaxBoxSize
	}
	off := br.off
	var hdr [16]byte
	n, err := io.ReadFull(br.r, hdr[:8])
	br.off += int64(n)
	switch {
	case err == io.EOF:
		return Box{}, nil, io.EOF
	case err == io.ErrUnexpectedEOF:
		return Box{}, nil, invalid("truncated box header at offset %d (%d of 8 bytes)", off, n)
	case err != nil:
		return Box{}, nil, err
	}
	typ := hdr[4:8]
	if !printableType(typ) {
		return Box{}, nil, invalid("no box at offset %d (bytes % x): the input is not MP4", off, hdr[:8])
	}
	if off == 0 && !streamStart[string(typ)] {
		return Box{}, nil, invalid("the input is not MP4: it starts with %q (bytes % x), not with a box such as ftyp or moov", hdr[:8], hdr[:8])
	}
	size := uint64(binary.BigEndian.Uint32(hdr[:4]))
	hlen := 8
	switch {
	case size == 1:
		n, err := io.ReadFull(br.r, hdr[8:16])
		br.off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return Box{}, nil, invalid("truncated header of box %q at offset %d", typ, off)
		}
		if err != nil {
			return Box{}, nil, err
		}
		size, hlen = binary.BigEndian.Uint64(hdr[8:16]), 16
	case size == 0:
		return Box{}, nil, invalid("box %q at offset %d has size 0 (\"to the end of the file\"), which a stream cannot have", typ, off)
	}
	if size < uint64(hlen) {
		return Box{}, nil, invalid("box %q at offset %d has size %d, less than its %d-byte header", typ, off, size, hlen)
	}
	if size > uint64(maxSize) || size+uint64(len(prefix)) > uint64(maxSize) {
		if len(prefix) > 0 {
			return Box{}, nil, invalid("box %q at offset %d has %d bytes, which with the %d before it is over the limit of %d", typ, off, size, len(prefix), maxSize)
		}
		return Box{}, nil, invalid("box %q at offset %d has %d bytes, over the limit of %d", typ, off, size, maxSize)
	}
	buf := make([]byte, len(prefix)+int(size))
	copy(buf, prefix)
	data := buf[len(prefix):]
	copy(data, hdr[:hlen])
	n, err = io.ReadFull(br.r, data[hlen:])
	br.off += int64(n)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return Box{}, nil, invalid("box %q at offset %d is truncated: %d bytes declared, the input ended after %d", typ, off, size, hlen+n)
	}
	if err != nil {
		return Box{}, nil, err
	}
	return Box{Type: string(typ), Offset: off, Data: data, Header: hlen}, buf, nil
}

// child is a box inside a payload.
type child struct {
	typ     string
	payload []byte
	raw     []byte // header included
}

// children splits a payload that boxes fill exactly.
func children(b []byte, where string) ([]child, error) {
	var out []child
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, invalid("%s: %d trailing bytes, too few for a box", where, len(b))
		}
		size := uint64(binary.BigEndian.Uint32(b))
		typ := string(b[4:8])
		hlen := uint64(8)
		switch size {
		case 0:
			size = uint64(len(b))
		case 1:
			if len(b) < 16 {
				return nil, invalid("%s: truncated header of box %q", where, typ)
			}
			size, hlen = binary.BigEndian.Uint64(b[8:]), 16
		}
		if size < hlen || size > uint64(len(b)) {
			return nil, invalid("%s: box %q has size %d with %d bytes left", where, typ, size, len(b))
		}
		out = append(out, child{typ: typ, payload: b[hlen:size], raw: b[:size]})
		b = b[size:]
	}
	return out, nil
}

func find(cs []child, typ string) (child, bool) {
	for _, c := range cs {
		if c.typ == typ {
			return c, true
		}
	}
	return child{}, false
}

// unmarshal decodes a fixed-layout box payload with go-mp4. A panic inside
// go-mp4 becomes an error: the parsers promise not to panic.
func unmarshal(payload []byte, dst mp4.IBox, where string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = invalid("%s: %s: %v", where, dst.GetType(), r)
		}
	}()
	n, err := mp4.Unmarshal(bytes.NewReader(payload), uint64(len(payload)), dst, mp4.Context{})
	if err != nil {
		return invalid("%s: %s: %v", where, dst.GetType(), err)
	}
	if n > uint64(len(payload)) {
		return invalid("%s: %s: read past the box", where, dst.GetType())
	}
	return nil
}

// appendBox appends a box with payload parts to b, with a 32-bit size when
// it fits.
func appendBox(b []byte, typ string, parts ...[]byte) []byte {
	size := uint64(8)
	for _, p := range parts {
		size += uint64(len(p))
	}
	if size <= 0xffffffff {
		b = binary.BigEndian.AppendUint32(b, uint32(size))
		b = append(b, typ...)
	} else {
		b = binary.BigEndian.AppendUint32(b, 1)
		b = append(b, typ...)
		b = binary.BigEndian.AppendUint64(b, size+8)
	}
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
