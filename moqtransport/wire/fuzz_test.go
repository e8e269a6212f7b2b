package wire

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"testing"
)

// The fuzz targets check three things on any input: no panic; an input a
// parser accepts re-encodes, and the re-encoding parses to the same value;
// the slice parsers and the stream readers agree. Their seed corpora live in
// testdata/fuzz/<target>/ and are made from the case tables; run
//
//	go test ./moqtransport/wire/ -run TestFuzzSeedCorpus -update-corpus
//
// after changing a table.

var updateCorpus = flag.Bool("update-corpus", false, "rewrite testdata/fuzz seed corpora from the case tables")

// seedInputs returns every fuzz target's seeds, by target name.
func seedInputs(t testing.TB) map[string]map[string][]byte {
	seeds := map[string]map[string][]byte{
		"FuzzControlMessage": {},
		"FuzzSubgroupStream": {},
		"FuzzFetchStream":    {},
		"FuzzDatagram":       {},
	}
	for _, c := range controlCases {
		b := c.wire
		if b == nil {
			var err error
			if b, err = AppendMessage(nil, c.msg); err != nil {
				continue // a case that documents an encoder refusal
			}
		}
		seeds["FuzzControlMessage"][c.name] = b
	}
	for _, c := range subgroupStreamCases {
		seeds["FuzzSubgroupStream"][c.name] = c.wire
	}
	for _, c := range fetchStreamCases {
		seeds["FuzzFetchStream"][c.name] = c.wire
	}
	for _, c := range datagramCases {
		seeds["FuzzDatagram"][c.name] = c.wire
	}
	for target, m := range seeds {
		if len(m) == 0 {
			t.Fatalf("%s has no seeds: its case table is empty", target)
		}
	}
	return seeds
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

func corpusFile(b []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
}

// TestFuzzSeedCorpus checks that the committed seed corpora hold exactly the
// case tables' encodings, so the fuzzers start from every message and
// stream shape the tests know.
func TestFuzzSeedCorpus(t *testing.T) {
	for target, cases := range seedInputs(t) {
		dir := filepath.Join("testdata", "fuzz", target)
		want := map[string][]byte{}
		for name, b := range cases {
			want["seed-"+unsafeName.ReplaceAllString(name, "_")] = corpusFile(b)
		}
		if *updateCorpus {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			old, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
			for _, f := range old {
				if err := os.Remove(f); err != nil {
					t.Fatal(err)
				}
			}
			for name, b := range want {
				if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		have, err := filepath.Glob(filepath.Join(dir, "seed-*"))
		if err != nil {
			t.Fatal(err)
		}
		if len(have) != len(want) {
			t.Errorf("%s: %d seed files, the tables give %d; run with -update-corpus", dir, len(have), len(want))
		}
		for name, b := range want {
			got, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil || !bytes.Equal(got, b) {
				t.Errorf("%s/%s is missing or stale; run with -update-corpus", dir, name)
			}
		}
	}
}

// addSeeds adds a target's seeds to f as well, so that they run even
// without the testdata directory.
func addSeeds(f *testing.F, target string) {
	for _, b := range seedInputs(f)[target] {
		f.Add(b)
	}
}

func FuzzControlMessage(f *testing.F) {
	addSeeds(f, "FuzzControlMessage")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, n, err := ParseMessage(data)
		checkDecodeError(t, err)
		// The stream reader must agree with the slice parser.
		rm, rerr := NewControlReader(bytes.NewReader(data)).ReadMessage()
		if (err == nil) != (rerr == nil) {
			t.Fatalf("ParseMessage error %v, ControlReader error %v", err, rerr)
		}
		if err != nil {
			return
		}
		if n > len(data) {
			t.Fatalf("consumed %d of %d bytes", n, len(data))
		}
		if !reflect.DeepEqual(m, rm) {
			t.Fatalf("ParseMessage %#v, ControlReader %#v", m, rm)
		}
		enc, err := AppendMessage(nil, m)
		if err != nil {
			t.Fatalf("a parsed %s does not re-encode: %v", m.Type(), err)
		}
		m2, n2, err := ParseMessage(enc)
		if err != nil || n2 != len(enc) {
			t.Fatalf("re-encoded %s does not parse: %v (%d of %d bytes)", m.Type(), err, n2, len(enc))
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip changed the message:\n%#v\n%#v", m, m2)
		}
	})
}

// checkDecodeError fails unless err is nil, io.ErrUnexpectedEOF or a
// *SessionError with a code other than NO_ERROR.
func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	if err == nil || errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	var se *SessionError
	if !errors.As(err, &se) || se.Code == NoError {
		t.Fatalf("decode error %v (%T) names no session code", err, err)
	}
}

// readAll reads every object of a stream with a StreamReader.
func readAll(data []byte) (StreamHeader, []Object, error) {
	r, err := NewStreamReader(bytes.NewReader(data), StreamReaderConfig{})
	if err != nil {
		return StreamHeader{}, nil, err
	}
	var objs []Object
	for {
		o, err := r.ReadObject()
		if err == io.EOF {
			return r.Header(), objs, nil
		}
		if err != nil {
			return r.Header(), objs, err
		}
		objs = append(objs, o)
	}
}

// parseAll reads the same stream with the slice parsers.
func parseAll(data []byte) (StreamHeader, []Object, error) {
	h, n, err := ParseStreamHeader(data)
	if err != nil {
		return h, nil, err
	}
	var objs []Object
	var state *SubgroupState
	if !h.IsFetch() {
		state = NewSubgroupState(h.Subgroup)
	}
	for n < len(data) {
		var oh ObjectHeader
		var m int
		if state != nil {
			oh, m, err = state.ParseObject(data[n:])
		} else {
			oh, m, err = ParseFetchObject(data[n:])
		}
		if err != nil {
			return h, objs, err
		}
		n += m
		if uint64(len(data)-n) < oh.PayloadLength {
			return h, objs, io.ErrUnexpectedEOF
		}
		o := Object{ObjectHeader: oh}
		if oh.PayloadLength > 0 {
			o.Payload = data[n : n+int(oh.PayloadLength)]
		}
		if len(oh.Extensions) > 0 {
			o.Extensions = append(Extensions{}, oh.Extensions...)
		} else {
			o.Extensions = nil
		}
		n += int(oh.PayloadLength)
		objs = append(objs, o)
	}
	if state != nil {
		h.Subgroup = state.Header
	}
	return h, objs, nil
}

// encodeAll writes a stream from a header and objects.
func encodeAll(t *testing.T, h StreamHeader, objs []Object) []byte {
	t.Helper()
	var b []byte
	var err error
	var state *SubgroupState
	if h.IsFetch() {
		b, err = AppendFetchHeader(b, h.FetchID)
	} else {
		b, err = AppendSubgroupHeader(b, &h.Subgroup)
		state = NewSubgroupState(h.Subgroup)
	}
	if err != nil {
		t.Fatalf("header %+v does not re-encode: %v", h, err)
	}
	for _, o := range objs {
		if state != nil {
			b, err = state.AppendObject(b, &o.ObjectHeader)
		} else {
			b, err = AppendFetchObject(b, &o.ObjectHeader)
		}
		if err != nil {
			t.Fatalf("object %+v does not re-encode: %v", o.ObjectHeader, err)
		}
		b = append(b, o.Payload...)
	}
	return b
}

func fuzzStream(t *testing.T, data []byte) {
	rh, robjs, rerr := readAll(data)
	ph, pobjs, perr := parseAll(data)
	checkDecodeError(t, perr)
	if rerr != nil && !errors.Is(rerr, ErrObjectTooLarge) {
		if code := SessionCode(rerr); code != ProtocolViolation {
			t.Fatalf("StreamReader error %v has code %s, want PROTOCOL_VIOLATION", rerr, code)
		}
	}
	if errors.Is(rerr, ErrObjectTooLarge) {
		return // a local limit the slice parser does not have
	}
	// The reader turns a truncated stream into a protocol violation; the
	// slice parser says io.ErrUnexpectedEOF. Otherwise both agree.
	if (rerr == nil) != (perr == nil) {
		t.Fatalf("StreamReader error %v, slice parser error %v", rerr, perr)
	}
	if rerr != nil {
		return
	}
	if !reflect.DeepEqual(rh, ph) || !reflect.DeepEqual(normalise(robjs), normalise(pobjs)) {
		t.Fatalf("StreamReader and slice parser disagree:\n%+v %+v\n%+v %+v", rh, robjs, ph, pobjs)
	}
	enc := encodeAll(t, rh, robjs)
	h2, objs2, err := readAll(enc)
	if err != nil {
		t.Fatalf("re-encoded stream does not read: %v", err)
	}
	if !reflect.DeepEqual(rh, h2) || !reflect.DeepEqual(normalise(robjs), normalise(objs2)) {
		t.Fatalf("round trip changed the stream:\n%+v %+v\n%+v %+v", rh, robjs, h2, objs2)
	}
}

// normalise maps empty payloads and extensions to nil for comparison.
func normalise(objs []Object) []Object {
	out := make([]Object, len(objs))
	for i, o := range objs {
		if len(o.Payload) == 0 {
			o.Payload = nil
		}
		if len(o.Extensions) == 0 {
			o.Extensions = nil
		}
		out[i] = o
	}
	return out
}

func FuzzSubgroupStream(f *testing.F) {
	addSeeds(f, "FuzzSubgroupStream")
	f.Fuzz(fuzzStream)
}

func FuzzFetchStream(f *testing.F) {
	addSeeds(f, "FuzzFetchStream")
	f.Fuzz(fuzzStream)
}

func FuzzDatagram(f *testing.F) {
	addSeeds(f, "FuzzDatagram")
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDatagram(data)
		checkDecodeError(t, err)
		if err != nil {
			return
		}
		enc, err := AppendDatagram(nil, &d)
		if err != nil {
			t.Fatalf("a parsed datagram does not re-encode: %v", err)
		}
		d2, err := ParseDatagram(enc)
		if err != nil {
			t.Fatalf("re-encoded datagram does not parse: %v", err)
		}
		if !reflect.DeepEqual(d, d2) {
			t.Fatalf("round trip changed the datagram:\n%+v\n%+v", d, d2)
		}
	})
}
