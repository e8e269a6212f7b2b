// Package mlog writes a MoQT session's events as a qlog log, in the
// JSON-SEQ format of RFC 7464: each record is the byte 0x1E, one JSON
// object and a line feed. A *Logger is a moqtransport.Tracer:
//
//	l := mlog.New(f, "server", "moq-go relay")
//	defer l.Close()
//	s, err := moqtransport.Accept(ctx, conn, path, &moqtransport.Config{Tracer: l})
//
// or, one file per connection:
//
//	newLog := mlog.Dir("/var/log/moq")
//	l, err := newLog("server", conn.RemoteAddr().String())
//
// # Records
//
// The first record is the qlog header:
//
//	{"qlog_version":"0.3","qlog_format":"JSON-SEQ","title":"…",
//	 "description":"MoQ Transport events (draft-ietf-moq-transport-14)",
//	 "trace":{"vantage_point":{"type":"server"},
//	  "common_fields":{"time_format":"relative","reference_time":<ms since 1970>},
//	  "event_schemas":["urn:ietf:params:qlog:events:moqt"]}}
//
// Every other record is one event:
//
//	{"time":<ms since New, µs precision>,"name":"moqt:<event>","data":{…}}
//
// # Schema
//
// The events follow draft-pardue-moq-qlog-moq-events-03, the revision of
// the qlog MoQT event schema written against draft-ietf-moq-transport-14
// (later revisions track later transport drafts). The event names are
// control_message_created/parsed, subgroup_header_created/parsed,
// subgroup_object_created/parsed, fetch_header_created/parsed,
// fetch_object_created/parsed and object_datagram_created/parsed, with
// "_created" for what this endpoint wrote and "_parsed" for what it read.
//
// A control message event's data holds the message as the draft's
// MOQTControlMessage: {"message":{"type":"subscribe","request_id":1,…}},
// every field of the message under the draft's name. Following the draft:
// track namespaces are arrays of MOQTByteString ({"value":"text"}, or
// {"value_bytes":"<hex>"} for a field that is not UTF-8), track names are
// one MOQTByteString, locations are {"group":g,"object":o}, group_order,
// filter_type, fetch_type, error_code and status_code are numbers, boolean
// fields (forward, content_exists, end_of_track) are 0 or 1, a reason
// phrase is "reason", or "reason_bytes" in hex when it is not UTF-8, GOAWAY's
// URI is a RawInfo ({"length":n,"data":"<hex>"}), and parameters are
// number_of_parameters plus an array of {"name":"delivery_timeout",
// "value":5000}-style objects; a parameter the draft does not name is
// {"name":"unknown","name_bytes":<type>,"value":v} or, for a byte value,
// {…,"length":n,"value_bytes":{"length":n,"data":"<hex, at most 256 bytes>"}}.
// Setup parameters use the names of the draft's later revisions (path,
// max_request_id, authorization_token, max_auth_token_cache_size,
// authority, implementation), which -03 lacks. An AUTHORIZATION TOKEN is
// logged with its alias type, alias and token type, and only the length
// of its value: tokens are credentials.
//
// Data events carry group_id, subgroup_id, object_id, publisher_priority
// (where the wire has it per object), extension_headers_length (bytes, as on
// the wire) with extension_headers [{"header_type":t,"header_value":v} or
// {"header_type":t,"header_length":n}], object_payload_length, and
// object_status when the wire carries one (a zero-length object, a status
// datagram). Payload bytes are never logged.
//
// # Departures from the draft
//
// stream_id, which the draft requires for control messages, stream headers
// and stream objects, is left out: moqtransport.Tracer does not carry
// stream IDs (moq-rs writes a placeholder 0 instead). The length of a
// control message is left out likewise.
//
// Members the draft does not define, added where a draft-14 log needs them
// (the draft's extension sockets allow them):
//   - control messages: "message_type" beside "message", the same name as
//     message.type, for filtering records without descending into message;
//     "error_code_name" and "status_code_name" beside error_code and
//     status_code ("TRACK_DOES_NOT_EXIST"); SUBSCRIBE_UPDATE's
//     "subscription_request_id" (draft-14 added it; end_group is the wire's
//     value, the end group plus one, 0 for open-ended); an absolute joining
//     FETCH's "joining_start" (a relative one uses the draft's
//     preceding_group_offset); "malformed" on a token that does not decode.
//   - subgroup headers: "subgroup_id_mode" (0 zero, 1 first object's ID, 2
//     explicit), "contains_end_of_group" and "extensions_present", as in the
//     draft's later revisions. subgroup_id is absent from a parsed header
//     whose ID is the first object's, until that object arrives.
//   - datagrams: draft-14 folds the status datagram into OBJECT_DATAGRAM
//     (types 0x20-0x21), so both are object_datagram events, as in the
//     draft's later revisions, with "end_of_group", "object_status" for a
//     status datagram and "object_payload_length" otherwise. (-03 still
//     has separate object_datagram_status events from earlier transport
//     drafts.)
//
// The header's event_schemas names the final URI, as moq-rs does; the
// draft asks implementations of its drafts to append "-03".
//
// # Why not quic-go's qlogwriter
//
// moqnative writes its QUIC qlog through quic-go's qlogwriter; this
// package keeps its own small encoder (json.go) and writer. Checked against
// quic-go v0.64.1 (and still so in v0.66.0), qlogwriter does not fit, for these reasons:
//   - The header. FileSeq writes quic-go's own header record (title "quic-go
//     qlog", quic-go's code_version, file_schema, reference_time as a
//     clock object) and takes no title, description or time format: the
//     header above, which moq-rs's mlog readers expect, cannot be written
//     through it.
//   - Blocking and lifetime. FileSeq hands every event to its own
//     goroutine through a channel of 50: once a slow disk fills it, every
//     session goroutine that traces (delivery included) waits for the
//     disk. A Recorder must not be used concurrently with its Close, while
//     a Tracer is called from session goroutines that can outlive the
//     relay's Close of the session's log; an event that races with the
//     close is sent on a channel whose reader may be gone. This Logger
//     blocks a session goroutine for one buffered write at most, and
//     drops events after Close.
//   - Errors. FileSeq reports a write error through the standard log
//     package at its end; this package is silent and reports it with Err.
//   - The encoder. qlogwriter/jsontext writes strings that are not UTF-8 as
//     they are, which makes the record invalid JSON (peers choose many of
//     the strings logged here: reason phrases, namespaces, paths), and it
//     makes several Write calls per token. Encoding a subgroup object
//     record with it took 924 ns and 2 allocations (a new Encoder per
//     record) against this package's 183 ns and none
//     (BenchmarkSubgroupObject, same machine).
//
// What would fit later is the other direction: MoQT events recorded as a
// second producer into the connection's own qlog trace (qlogwriter.Trace
// AddProducer, whose Event interface takes a jsontext.Encoder), one file
// with the QUIC and the MoQT events, beside the .mlog file moq-rs tools
// read.
//
// # Buffering and errors
//
// See Logger: records are buffered, control messages flushed at once and
// data events within FlushInterval; the first write error turns the logger
// off and is reported by Err, never to the session.
package mlog
