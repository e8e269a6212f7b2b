package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
	"testing/iotest"
)

// ControlReader: framed control messages read from a stream (§9:
// Type (i), Length (16), Payload).

var errCRRead = errors.New("test: control stream reset")

// crMessages are the messages of crStream, in order. CLIENT_SETUP and
// SUBSCRIBE are what moq-rs sends (moq-rs-vectors.md §8).
func crMessages() []Message {
	return []Message{
		&ClientSetup{Versions: []Version{Draft14}, Params: Parameters{
			{Type: SetupParamMaxRequestID, Value: 100},
			{Type: SetupParamPath, Bytes: []byte("/app")},
		}},
		&Subscribe{RequestID: 0, Namespace: Namespace{"clock"}, Name: "now", SubscriberPriority: 127,
			GroupOrder: GroupOrderPublisher, Forward: true, Filter: Filter{Type: FilterLargestObject}},
		&MaxRequestID{Max: 200},
		&GoAway{NewSessionURI: "https://relay.example/moq"},
		&GoAway{},
	}
}

// crStream frames crMessages back to back and returns the stream and the
// offset at which each message ends.
func crStream(t *testing.T) ([]byte, []int) {
	t.Helper()
	var b []byte
	var ends []int
	for _, m := range crMessages() {
		var err error
		if b, err = AppendMessage(b, m); err != nil {
			t.Fatalf("AppendMessage(%s): %v", m.Type(), err)
		}
		ends = append(ends, len(b))
	}
	// The first two are byte for byte what moq-rs emits.
	want := dpHex("20 00 13 01 c0000000ff00000e 02 02 4064 01 04 2f617070" +
		"| 03 00 11 00 01 05 636c6f636b 03 6e6f77 7f 00 01 02 00")
	if !bytes.Equal(b[:ends[1]], want) {
		t.Fatalf("framed CLIENT_SETUP + SUBSCRIBE\n %x\nwant (moq-rs-vectors.md §8)\n %x", b[:ends[1]], want)
	}
	return b, ends
}

// crReadAll reads messages until an error.
func crReadAll(c *ControlReader, max int) ([]Message, error) {
	var ms []Message
	for range max + 1 {
		m, err := c.ReadMessage()
		if err != nil {
			return ms, err
		}
		ms = append(ms, m)
	}
	return ms, errors.New("too many messages")
}

func TestControlReaderSequence(t *testing.T) {
	stream, _ := crStream(t)
	want := crMessages()
	for _, rd := range dpReaders {
		t.Run(rd.name, func(t *testing.T) {
			ms, err := crReadAll(NewControlReader(rd.wrap(stream)), len(want))
			if err != io.EOF {
				t.Fatalf("after %d messages: %v, want io.EOF", len(ms), err)
			}
			// Compared after all are read: a message must not alias the
			// reader's buffer, which later messages overwrite.
			if !reflect.DeepEqual(ms, want) {
				t.Errorf("messages\n %#v\nwant\n %#v", ms, want)
			}
		})
	}
}

func TestControlReaderPrefixes(t *testing.T) {
	stream, ends := crStream(t)
	want := crMessages()
	for k := range len(stream) {
		whole, boundary := 0, k == 0
		for _, e := range ends {
			if e <= k {
				whole++
			}
			if e == k {
				boundary = true
			}
		}
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader(stream[:k])
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			ms, err := crReadAll(NewControlReader(r), len(want))
			if len(ms) != whole || (whole > 0 && !reflect.DeepEqual(ms, want[:whole])) {
				t.Errorf("prefix %d: read %d messages, want %d", k, len(ms), whole)
			}
			if boundary {
				if err != io.EOF {
					t.Errorf("prefix %d ends between messages: %v, want io.EOF", k, err)
				}
			} else if !dpIsPV(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("prefix %d ends inside message %d: %v, want PROTOCOL_VIOLATION", k, whole, err)
			}
		}
	}
}

// An unknown type is rejected as soon as it is read: the reader does not
// wait for the length or the payload, which an attacker could withhold.
func TestControlReaderUnknownType(t *testing.T) {
	stream, _ := crStream(t)
	for _, typ := range []uint64{0x00, 0x01, 0x1b, 0x1c, 0x22, 0x3f, 0x40, 0x41, 0x3fff, MaxVarint} {
		tb := dpVarint(typ)
		for _, tail := range [][]byte{nil, dpHex("00 05")} {
			// A type (and maybe a length), then a stream that errors.
			r := io.MultiReader(bytes.NewReader(dpCat(tb, tail)), iotest.ErrReader(errCRRead))
			_, err := NewControlReader(r).ReadMessage()
			if !dpIsPV(err) || errors.Is(err, errCRRead) {
				t.Errorf("type 0x%x + %x: %v, want PROTOCOL_VIOLATION", typ, tail, err)
			}
		}
		// After valid messages.
		r := io.MultiReader(bytes.NewReader(dpCat(stream, tb)), iotest.ErrReader(errCRRead))
		ms, err := crReadAll(NewControlReader(r), 10)
		if len(ms) != len(crMessages()) || !dpIsPV(err) {
			t.Errorf("type 0x%x after %d messages: %d messages, %v; want PROTOCOL_VIOLATION", typ, len(crMessages()), len(ms), err)
		}
	}
}

func TestControlReaderLengthBeyondStream(t *testing.T) {
	for _, c := range []struct {
		name string
		wire []byte
	}{
		{"MAX_REQUEST_ID claims 5 bytes, has 1", dpHex("15 00 05 01")},
		{"GOAWAY claims 256 bytes, has 2", dpHex("10 01 00 01 61")},
		{"SUBSCRIBE claims 65535 bytes, has none", dpHex("03 ff ff")},
		{"length cut", dpHex("15 00")},
	} {
		for _, rd := range dpReaders {
			_, err := NewControlReader(rd.wrap(c.wire)).ReadMessage()
			if !dpIsPV(err) || errors.Is(err, io.EOF) {
				t.Errorf("%s (%s): %v, want PROTOCOL_VIOLATION", c.name, rd.name, err)
			}
		}
	}
}

// The payload must hold exactly one message: a length one byte too long
// leaves a byte over.
func TestControlReaderTrailingByte(t *testing.T) {
	for _, m := range crMessages() {
		b, err := AppendMessage(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		n := len(dpVarint(uint64(m.Type())))
		l := int(b[n])<<8 | int(b[n+1])
		l++
		b[n], b[n+1] = byte(l>>8), byte(l)
		b = append(b, 0x00)
		next, _ := AppendMessage(nil, &MaxRequestID{Max: 1})
		ms, err := crReadAll(NewControlReader(bytes.NewReader(dpCat(b, next))), 5)
		if !dpIsPV(err) || len(ms) != 0 {
			t.Errorf("%s with one byte over: %d messages, %v; want PROTOCOL_VIOLATION", m.Type(), len(ms), err)
		}
	}
	// And a payload one byte short.
	_, err := NewControlReader(bytes.NewReader(dpHex("10 00 02 05 61 | 15 00 01 01"))).ReadMessage()
	if !dpIsPV(err) {
		t.Errorf("GOAWAY one byte short: %v, want PROTOCOL_VIOLATION", err)
	}
}

// A read error that is not the end of the stream comes back unchanged,
// wherever it happens.
func TestControlReaderPassesReadErrors(t *testing.T) {
	stream, ends := crStream(t)
	for k := 0; k <= len(stream); k++ {
		whole := 0
		for _, e := range ends {
			if e <= k {
				whole++
			}
		}
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = io.MultiReader(bytes.NewReader(stream[:k]), iotest.ErrReader(errCRRead))
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			ms, err := crReadAll(NewControlReader(r), 10)
			if !errors.Is(err, errCRRead) || len(ms) != whole || SessionCode(err) != InternalError {
				t.Errorf("error after %d bytes (one-byte %v): %d messages, %v; want %d then the read error", k, oneByte, len(ms), err, whole)
			}
		}
	}
}
