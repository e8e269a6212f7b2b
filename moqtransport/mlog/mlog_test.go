package mlog

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

type record = map[string]any

// parseLog splits a JSON-SEQ log into its records and decodes each. Every
// record must start with 0x1E and end with a line feed.
func parseLog(t *testing.T, b []byte) []record {
	t.Helper()
	if len(b) == 0 || b[0] != recordSeparator {
		t.Fatalf("log does not start with 0x1E: %q", b[:min(len(b), 20)])
	}
	var out []record
	for i, chunk := range bytes.Split(b[1:], []byte{recordSeparator}) {
		if !bytes.HasSuffix(chunk, []byte("\n")) {
			t.Fatalf("record %d does not end with a line feed: %q", i, chunk)
		}
		var r record
		d := json.NewDecoder(bytes.NewReader(chunk))
		d.UseNumber()
		if err := d.Decode(&r); err != nil {
			t.Fatalf("record %d: %v: %s", i, err, chunk)
		}
		if d.More() {
			t.Fatalf("record %d holds more than one JSON value: %s", i, chunk)
		}
		out = append(out, r)
	}
	return out
}

// get follows a path of object keys and array indexes ("data.message.type",
// "data.message.track_namespace.0.value") and returns what is there.
func get(r record, path string) any {
	var v any = r
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[k]; !ok {
				return nil
			}
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// str renders what get returns for comparison: numbers as their digits,
// strings as themselves, anything else as JSON.
func str(r record, path string) string {
	switch v := get(r, path).(type) {
	case nil:
		return "<absent>"
	case string:
		return v
	case json.Number:
		return v.String()
	default:
		b, _ := json.Marshal(v)
		return string(b)
	}
}

type want map[string]string

func check(t *testing.T, r record, w want) {
	t.Helper()
	for path, v := range w {
		if got := str(r, path); got != v {
			t.Errorf("%s: %s = %s, want %s", str(r, "name"), path, got, v)
		}
	}
}

func mustToken(t *testing.T, tok wire.Token) wire.KeyValue {
	t.Helper()
	kv, err := wire.TokenParam(tok)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// session logs a session's worth of events, built from wire types, and
// returns the wants for each record after the header, in order.
func session(t *testing.T, l *Logger) []want {
	t.Helper()
	var ws []want
	add := func(w want) { ws = append(ws, w) }

	token := mustToken(t, wire.Token{AliasType: wire.TokenRegister, Alias: 7, Type: 1, Value: []byte("s3cret-token")})
	l.ControlMessage(true, &wire.ClientSetup{
		Versions: []wire.Version{wire.Draft14, wire.Draft13},
		Params: wire.Parameters{
			{Type: wire.SetupParamPath, Bytes: []byte("/app")},
			{Type: wire.SetupParamMaxRequestID, Value: 100},
			{Type: wire.SetupParamMOQTImplementation, Bytes: []byte("moq-go/test")},
			token,
			{Type: 0x3f, Bytes: []byte{1, 2}},
		},
	})
	add(want{
		"name":              "moqt:control_message_created",
		"data.message_type": "client_setup",
		"data.message.type": "client_setup",
		"data.message.number_of_supported_versions": "2",
		"data.message.supported_versions":           fmt.Sprintf("[%d,%d]", wire.Draft14, wire.Draft13),
		"data.message.number_of_parameters":         "5",
		"data.message.setup_parameters.0":           `{"name":"path","value":"/app"}`,
		"data.message.setup_parameters.1":           `{"name":"max_request_id","value":100}`,
		"data.message.setup_parameters.2":           `{"name":"implementation","value":"moq-go/test"}`,
		"data.message.setup_parameters.3":           `{"alias_type":"register","name":"authorization_token","token_alias":7,"token_type":1,"token_value":{"length":12}}`,
		"data.message.setup_parameters.4":           `{"length":2,"name":"unknown","name_bytes":63,"value_bytes":{"data":"0102","length":2}}`,
	})

	l.ControlMessage(false, &wire.ServerSetup{Version: wire.Draft14, Params: wire.Parameters{{Type: wire.SetupParamMaxRequestID, Value: 50}}})
	add(want{
		"name":                              "moqt:control_message_parsed",
		"data.message.type":                 "server_setup",
		"data.message.selected_version":     fmt.Sprint(uint64(wire.Draft14)),
		"data.message.setup_parameters.0":   `{"name":"max_request_id","value":50}`,
		"data.message.number_of_parameters": "1",
	})

	ns := wire.Namespace{"live", "\xff\x00cam"}
	filters := []struct {
		f     wire.Filter
		start string
		end   string
	}{
		{wire.Filter{Type: wire.FilterNextGroupStart}, "<absent>", "<absent>"},
		{wire.Filter{Type: wire.FilterLargestObject}, "<absent>", "<absent>"},
		{wire.Filter{Type: wire.FilterAbsoluteStart, Start: wire.Location{Group: 5, Object: 2}}, `{"group":5,"object":2}`, "<absent>"},
		{wire.Filter{Type: wire.FilterAbsoluteRange, Start: wire.Location{Group: 5, Object: 0}, EndGroup: 9}, `{"group":5,"object":0}`, "9"},
	}
	for i, f := range filters {
		l.ControlMessage(true, &wire.Subscribe{
			RequestID: uint64(2 * i), Namespace: ns, Name: "video", SubscriberPriority: 128,
			GroupOrder: wire.GroupOrderDescending, Forward: true, Filter: f.f,
			Params: wire.Parameters{
				{Type: wire.ParamDeliveryTimeout, Value: 5000},
				mustToken(t, wire.Token{AliasType: wire.TokenUseValue, Type: 2, Value: []byte("hunter2")}),
				{Type: 0x40, Value: 9},
			},
		})
		add(want{
			"name":                              "moqt:control_message_created",
			"data.message_type":                 "subscribe",
			"data.message.request_id":           fmt.Sprint(2 * i),
			"data.message.track_namespace":      `[{"value":"live"},{"value_bytes":"ff0063616d"}]`,
			"data.message.track_name":           `{"value":"video"}`,
			"data.message.subscriber_priority":  "128",
			"data.message.group_order":          "2",
			"data.message.forward":              "1",
			"data.message.filter_type":          fmt.Sprint(uint64(f.f.Type)),
			"data.message.start_location":       f.start,
			"data.message.end_group":            f.end,
			"data.message.number_of_parameters": "3",
			"data.message.parameters.0":         `{"name":"delivery_timeout","value":5000}`,
			"data.message.parameters.1":         `{"alias_type":3,"name":"authorization_token","token_type":2,"token_value":{"length":7}}`,
			"data.message.parameters.2":         `{"name":"unknown","name_bytes":64,"value":9}`,
		})
	}

	l.ControlMessage(false, &wire.SubscribeOK{RequestID: 0, TrackAlias: 0, Expires: 30000, GroupOrder: wire.GroupOrderAscending,
		ContentExists: true, Largest: wire.Location{Group: 12, Object: 3},
		Params: wire.Parameters{{Type: wire.ParamMaxCacheDuration, Value: 1000}}})
	add(want{
		"data.message.type":             "subscribe_ok",
		"data.message.request_id":       "0",
		"data.message.track_alias":      "0",
		"data.message.expires":          "30000",
		"data.message.group_order":      "1",
		"data.message.content_exists":   "1",
		"data.message.largest_location": `{"group":12,"object":3}`,
		"data.message.parameters":       `[{"name":"max_cache_duration","value":1000}]`,
	})

	l.ControlMessage(false, &wire.SubscribeError{RequestID: 2, Code: wire.SubscribeTrackDoesNotExist, Reason: "no such track"})
	add(want{
		"data.message.type":            "subscribe_error",
		"data.message.request_id":      "2",
		"data.message.error_code":      "4",
		"data.message.error_code_name": "TRACK_DOES_NOT_EXIST",
		"data.message.reason":          "no such track",
		"data.message.reason_bytes":    "<absent>",
	})
	l.ControlMessage(false, &wire.SubscribeError{RequestID: 4, Code: 0x99, Reason: "bad\xffbyte"})
	add(want{
		"data.message.error_code":      "153",
		"data.message.error_code_name": "0x99",
		"data.message.reason":          "<absent>",
		"data.message.reason_bytes":    hex.EncodeToString([]byte("bad\xffbyte")),
	})

	l.ControlMessage(false, &wire.PublishDone{RequestID: 0, StatusCode: wire.DoneTrackEnded, StreamCount: 3, Reason: "bye"})
	add(want{
		"data.message.type":             "publish_done",
		"data.message.status_code":      "2",
		"data.message.status_code_name": "TRACK_ENDED",
		"data.message.stream_count":     "3",
		"data.message.reason":           "bye",
	})

	l.ControlMessage(true, &wire.Fetch{RequestID: 8, SubscriberPriority: 1, GroupOrder: wire.GroupOrderPublisher,
		FetchType: wire.FetchStandalone, Namespace: wire.Namespace{"vod"}, Name: "a",
		Start: wire.Location{Group: 1, Object: 0}, End: wire.Location{Group: 3, Object: 0}})
	add(want{
		"data.message.type":                 "fetch",
		"data.message.request_id":           "8",
		"data.message.group_order":          "0",
		"data.message.fetch_type":           "1",
		"data.message.track_namespace":      `[{"value":"vod"}]`,
		"data.message.track_name":           `{"value":"a"}`,
		"data.message.start_location":       `{"group":1,"object":0}`,
		"data.message.end_location":         `{"group":3,"object":0}`,
		"data.message.joining_request_id":   "<absent>",
		"data.message.number_of_parameters": "0",
		"data.message.parameters":           "<absent>",
	})
	l.ControlMessage(true, &wire.Fetch{RequestID: 10, FetchType: wire.FetchRelativeJoining, GroupOrder: wire.GroupOrderAscending, JoiningRequestID: 0, JoiningStart: 2})
	add(want{
		"data.message.fetch_type":             "2",
		"data.message.track_namespace":        `[]`,
		"data.message.track_name":             "<absent>",
		"data.message.joining_request_id":     "0",
		"data.message.preceding_group_offset": "2",
	})

	l.ControlMessage(false, &wire.GoAway{NewSessionURI: "moqt://b"})
	add(want{
		"data.message.type":            "goaway",
		"data.message.new_session_uri": fmt.Sprintf(`{"data":"%x","length":8}`, "moqt://b"),
	})

	// A subgroup stream read: explicit subgroup ID, extensions.
	sh := wire.SubgroupHeader{TrackAlias: 0, GroupID: 12, SubgroupID: 4, PublisherPriority: 7, IDMode: wire.SubgroupIDExplicit, Extensions: true, EndOfGroup: true}
	l.SubgroupHeader(false, &sh)
	add(want{
		"name":                       "moqt:subgroup_header_parsed",
		"data.track_alias":           "0",
		"data.group_id":              "12",
		"data.subgroup_id":           "4",
		"data.publisher_priority":    "7",
		"data.subgroup_id_mode":      "2",
		"data.contains_end_of_group": "true",
		"data.extensions_present":    "true",
	})
	ext, err := wire.BuildExtensions(wire.KeyValue{Type: 0x3c, Value: 2}, wire.KeyValue{Type: 0x21, Bytes: []byte("meta")})
	if err != nil {
		t.Fatal(err)
	}
	objs := []struct {
		o wire.ObjectHeader
		w want
	}{
		{wire.ObjectHeader{Group: 12, Subgroup: 4, ID: 0, PayloadLength: 1200},
			want{"data.object_id": "0", "data.object_payload_length": "1200", "data.object_status": "<absent>", "data.extension_headers_length": "0", "data.extension_headers": "<absent>"}},
		{wire.ObjectHeader{Group: 12, Subgroup: 4, ID: 1, PayloadLength: 900, Extensions: ext},
			want{"data.object_id": "1", "data.extension_headers_length": fmt.Sprint(len(ext)),
				"data.extension_headers": `[{"header_type":60,"header_value":2},{"header_length":4,"header_type":33}]`}},
		{wire.ObjectHeader{Group: 12, Subgroup: 4, ID: 2, Status: wire.StatusEndOfGroup},
			want{"data.object_id": "2", "data.object_payload_length": "0", "data.object_status": "3"}},
	}
	for _, o := range objs {
		l.SubgroupObject(false, &sh, &o.o)
		o.w["name"] = "moqt:subgroup_object_parsed"
		o.w["data.group_id"] = "12"
		o.w["data.subgroup_id"] = "4"
		add(o.w)
	}

	// A subgroup stream written: the subgroup ID is the first object's, and
	// the written object headers leave group and subgroup 0.
	ch := wire.SubgroupHeader{TrackAlias: 1, GroupID: 3, SubgroupID: 5, PublisherPriority: 2, IDMode: wire.SubgroupIDFirstObject}
	l.SubgroupHeader(true, &ch)
	add(want{"name": "moqt:subgroup_header_created", "data.subgroup_id": "5", "data.subgroup_id_mode": "1", "data.contains_end_of_group": "false"})
	l.SubgroupObject(true, &ch, &wire.ObjectHeader{ID: 5, PayloadLength: 10})
	add(want{"name": "moqt:subgroup_object_created", "data.group_id": "3", "data.subgroup_id": "5", "data.object_id": "5"})
	// Parsed with the first object's ID as subgroup ID: not yet known.
	l.SubgroupHeader(false, &wire.SubgroupHeader{GroupID: 3, IDMode: wire.SubgroupIDFirstObject})
	add(want{"name": "moqt:subgroup_header_parsed", "data.subgroup_id": "<absent>"})

	l.FetchHeader(false, 8)
	add(want{"name": "moqt:fetch_header_parsed", "data.request_id": "8"})
	l.FetchObject(false, &wire.ObjectHeader{Group: 1, Subgroup: 2, ID: 3, PublisherPriority: 9, Status: wire.StatusDoesNotExist})
	add(want{"name": "moqt:fetch_object_parsed", "data.group_id": "1", "data.subgroup_id": "2", "data.object_id": "3",
		"data.publisher_priority": "9", "data.object_payload_length": "0", "data.object_status": "1", "data.extension_headers_length": "0"})

	l.Datagram(true, &wire.Datagram{TrackAlias: 1, Group: 4, Object: 0, PublisherPriority: 3, EndOfGroup: true, Payload: []byte("secret payload")})
	add(want{"name": "moqt:object_datagram_created", "data.track_alias": "1", "data.group_id": "4", "data.object_id": "0",
		"data.publisher_priority": "3", "data.object_payload_length": "14", "data.object_status": "<absent>", "data.end_of_group": "true"})
	l.Datagram(false, &wire.Datagram{TrackAlias: 1, Group: 4, Object: 1, IsStatus: true, Status: wire.StatusEndOfTrack})
	add(want{"name": "moqt:object_datagram_parsed", "data.object_status": "4", "data.object_payload_length": "<absent>", "data.end_of_group": "false"})
	return ws
}

func TestSessionLog(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "client", "test session")
	ws := session(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs := parseLog(t, buf.Bytes())
	if len(recs) != len(ws)+1 {
		t.Fatalf("%d records, want the header and %d events", len(recs), len(ws))
	}
	check(t, recs[0], want{
		"qlog_version":                    "0.3",
		"qlog_format":                     "JSON-SEQ",
		"title":                           "test session",
		"trace.vantage_point.type":        "client",
		"trace.event_schemas":             `["urn:ietf:params:qlog:events:moqt"]`,
		"trace.common_fields.time_format": "relative",
	})
	if ref, ok := get(recs[0], "trace.common_fields.reference_time").(json.Number); !ok {
		t.Errorf("no reference_time")
	} else if f, _ := ref.Float64(); time.Since(time.UnixMilli(int64(f))).Abs() > time.Minute {
		t.Errorf("reference_time %s is not now", ref)
	}
	last := -1.0
	for i, w := range ws {
		r := recs[i+1]
		if len(r) != 3 {
			t.Errorf("record %d has members %v, want time, name and data", i+1, r)
		}
		tm, ok := r["time"].(json.Number)
		f, err := tm.Float64()
		if !ok || err != nil || f < last || f > 60000 {
			t.Errorf("record %d: time %v after %v", i+1, r["time"], last)
		}
		last = f
		check(t, r, w)
	}
	for _, secret := range []string{"s3cret", "hunter2", "secret payload"} {
		for _, form := range []string{secret, hex.EncodeToString([]byte(secret))} {
			if bytes.Contains(buf.Bytes(), []byte(form)) {
				t.Errorf("the log holds %q", form)
			}
		}
	}
	if testing.Verbose() {
		t.Logf("log:\n%s", bytes.ReplaceAll(buf.Bytes(), []byte{recordSeparator}, nil))
	}
}

// TestEveryMessage logs every draft-14 message type, zero-valued, and
// checks the name and that the record is JSON.
func TestEveryMessage(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, "server", "")
	var names []string
	for typ := wire.MessageType(0); typ <= 0x41; typ++ {
		m := wire.NewMessage(typ)
		if m == nil {
			continue
		}
		l.ControlMessage(false, m)
		names = append(names, strings.ToLower(typ.String()))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs := parseLog(t, buf.Bytes())
	if len(names) < 30 || len(recs) != len(names)+1 {
		t.Fatalf("%d messages, %d records", len(names), len(recs))
	}
	for i, n := range names {
		check(t, recs[i+1], want{"name": "moqt:control_message_parsed", "data.message_type": n, "data.message.type": n})
	}
	for _, n := range []string{"goaway", "publish_namespace_cancel", "requests_blocked", "track_status_ok", "unsubscribe_namespace"} {
		if !strings.Contains(strings.Join(names, " "), n) {
			t.Errorf("no message named %s", n)
		}
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "\n\r\t\x00\x1f\x7f", "ünïcødé 🎥", "bad\xff\xfe", "\u2028", "a\xc3"} {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Errorf("%q gives %s: %v", s, b, err)
			continue
		}
		if want := fixUTF8(s); got != want {
			t.Errorf("%q gives %s, decoded %q, want %q", s, b, got, want)
		}
	}
}

// fixUTF8 replaces each byte that is not part of a UTF-8 sequence by U+FFFD.
func fixUTF8(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.b.Write(p)
}

func (w *lockedBuffer) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.b.Bytes())
}

func TestConcurrentEvents(t *testing.T) {
	const goroutines, perG = 8, 300
	w := &lockedBuffer{}
	l := New(w, "server", "race")
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := wire.SubgroupHeader{TrackAlias: uint64(g), GroupID: 1, IDMode: wire.SubgroupIDZero}
			for i := range perG {
				switch i % 5 {
				case 0:
					l.ControlMessage(i%2 == 0, &wire.Subscribe{RequestID: uint64(i), Namespace: wire.Namespace{fmt.Sprint(g)}, Name: "t"})
				case 1:
					l.SubgroupHeader(true, &h)
				case 2:
					l.SubgroupObject(false, &h, &wire.ObjectHeader{ID: uint64(i), PayloadLength: 10})
				case 3:
					l.Datagram(true, &wire.Datagram{TrackAlias: uint64(g), Object: uint64(i), Payload: []byte("x")})
				case 4:
					l.FetchObject(false, &wire.ObjectHeader{ID: uint64(i), PayloadLength: 1})
				}
			}
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs := parseLog(t, w.bytes())
	if len(recs) != 1+goroutines*perG {
		t.Fatalf("%d records, want %d", len(recs), 1+goroutines*perG)
	}
	last := 0.0
	for i, r := range recs[1:] {
		f, _ := r["time"].(json.Number).Float64()
		if f < last {
			t.Fatalf("record %d at %v ms after one at %v", i+1, f, last)
		}
		last = f
	}
}

// failingWriter accepts ok writes, then fails every one.
type failingWriter struct {
	mu     sync.Mutex
	ok     int
	writes int
	closed bool
}

var errDisk = errors.New("disk full")

func (w *failingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	if w.writes > w.ok {
		return 0, errDisk
	}
	return len(p), nil
}

func (w *failingWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

func TestWriteErrorTurnsLoggerOff(t *testing.T) {
	w := &failingWriter{ok: 1} // the header only
	l := New(w, "client", "")
	if err := l.Err(); err != nil {
		t.Fatalf("Err after the header: %v", err)
	}
	l.ControlMessage(true, &wire.Unsubscribe{RequestID: 1})
	err := l.Err()
	if !errors.Is(err, errDisk) {
		t.Fatalf("Err = %v, want %v", err, errDisk)
	}
	for range 100 {
		l.ControlMessage(true, &wire.Unsubscribe{RequestID: 1})
		l.SubgroupObject(false, &wire.SubgroupHeader{}, &wire.ObjectHeader{PayloadLength: 1})
	}
	if err := l.Flush(); !errors.Is(err, errDisk) {
		t.Errorf("Flush = %v", err)
	}
	if w.writes != 2 {
		t.Errorf("%d writes, want 2: the logger kept writing after the error", w.writes)
	}
	if err := l.Close(); !errors.Is(err, errDisk) {
		t.Errorf("Close = %v, want the write error", err)
	}
	if !w.closed {
		t.Error("Close did not close the writer")
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	l.ControlMessage(true, &wire.Unsubscribe{RequestID: 1}) // after Close: dropped
}

func TestWriteErrorOnHeader(t *testing.T) {
	w := &failingWriter{}
	l := New(w, "server", "")
	if !errors.Is(l.Err(), errDisk) {
		t.Fatalf("Err = %v", l.Err())
	}
	l.Datagram(false, &wire.Datagram{})
	if w.writes != 1 {
		t.Errorf("%d writes", w.writes)
	}
}

// A data event written alone reaches the writer within FlushInterval.
func TestDataEventsFlushedPeriodically(t *testing.T) {
	w := &lockedBuffer{}
	l := New(w, "server", "")
	defer l.Close()
	l.FetchHeader(true, 3)
	if n := len(parseLog(t, w.bytes())); n != 1 {
		t.Fatalf("%d records written at once, want only the header: data events are buffered", n)
	}
	deadline := time.Now().Add(10 * FlushInterval)
	for len(parseLog(t, w.bytes())) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("the data event was not flushed")
		}
		time.Sleep(FlushInterval / 10)
	}
	// A control message is flushed at once, with what is buffered.
	l.FetchHeader(true, 4)
	l.ControlMessage(false, &wire.FetchCancel{RequestID: 4})
	if n := len(parseLog(t, w.bytes())); n != 4 {
		t.Fatalf("%d records after a control message, want 4", n)
	}
}

func TestDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "logs", "mlog")
	newLog := Dir(dir)
	l, err := newLog("server", "127.0.0.1:4433")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "127.0.0.1_4433_server.mlog")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&^0o644 != 0 {
		t.Errorf("mode %v, want at most 0644", fi.Mode())
	}
	l.SubgroupHeader(false, &wire.SubgroupHeader{GroupID: 1}) // buffered
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := parseLog(t, b)
	if len(recs) != 2 {
		t.Fatalf("%d records in the file, want 2: Close must flush", len(recs))
	}
	check(t, recs[0], want{"title": "moq-go 127.0.0.1:4433", "trace.vantage_point.type": "server"})
	check(t, recs[1], want{"name": "moqt:subgroup_header_parsed"})

	// The same connection name again: a new file, the old one kept.
	l2, err := newLog("server", "127.0.0.1:4433")
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "127.0.0.1_4433_server-2.mlog")); err != nil {
		t.Error(err)
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(b, b2) {
		t.Error("the first file changed")
	}

	// Names that are not file names stay inside dir.
	l3, err := newLog("client", "../[::1]:443/x")
	if err != nil {
		t.Fatal(err)
	}
	_ = l3.Close()
	if _, err := os.Stat(filepath.Join(dir, "..____1__443_x_client.mlog")); err != nil {
		t.Error(err)
	}
}

func BenchmarkSubgroupObject(b *testing.B) {
	l := New(discard{}, "server", "")
	defer l.Close()
	h := wire.SubgroupHeader{TrackAlias: 1, GroupID: 100, SubgroupID: 0}
	o := wire.ObjectHeader{ID: 7, PayloadLength: 1200}
	b.ReportAllocs()
	for b.Loop() {
		l.SubgroupObject(false, &h, &o)
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
