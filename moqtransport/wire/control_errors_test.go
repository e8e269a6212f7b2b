package wire

import (
	"bytes"
	"errors"
	"io"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// Tests that every draft-14 limit and rule on control messages is enforced
// with the right session code: on decode from hand-built bytes, and on
// encode (AppendMessage fails and leaves the buffer as it was).

// ---- helpers to build payloads by hand ----

func vi(v uint64) []byte {
	b, err := AppendVarint(nil, v)
	if err != nil {
		panic(err)
	}
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// lp is a length-prefixed string.
func lp(s string) []byte { return cat(vi(uint64(len(s))), []byte(s)) }

// nsb is a namespace tuple.
func nsb(fields ...string) []byte {
	b := vi(uint64(len(fields)))
	for _, f := range fields {
		b = append(b, lp(f)...)
	}
	return b
}

// nFields returns n one-byte fields.
func nFields(n int) []string {
	f := make([]string, n)
	for i := range f {
		f[i] = string(rune('a' + i%26))
	}
	return f
}

// kvv is an even-typed pair, kvb an odd-typed pair.
func kvv(t, v uint64) []byte        { return cat(vi(t), vi(v)) }
func kvb(t uint64, b []byte) []byte { return cat(vi(t), vi(uint64(len(b))), b) }

// pl is a count-prefixed parameter list.
func pl(kvs ...[]byte) []byte { return cat(append([][]byte{vi(uint64(len(kvs)))}, kvs...)...) }

var noParams = pl()

func by(b ...byte) []byte { return b }

// Message bodies with the interesting bytes as arguments.
func subscribeBody(order, fwd byte, filter, params []byte) []byte {
	return cat(vi(0), nsb("a"), lp("b"), by(0x80, order, fwd), filter, params)
}

func subscribeOKBody(order, ce byte, params []byte) []byte {
	b := cat(vi(0), vi(1), vi(0), by(order, ce))
	if ce == 1 {
		b = append(b, 5, 3)
	}
	return append(b, params...)
}

func subscribeUpdateBody(fwd byte, params []byte) []byte {
	return cat(vi(2), vi(0), vi(0), vi(0), vi(0), by(0x80, fwd), params)
}

func publishBody(order, ce, fwd byte, params []byte) []byte {
	b := cat(vi(1), nsb("a"), lp("b"), vi(7), by(order, ce))
	if ce == 1 {
		b = append(b, 5, 3)
	}
	return cat(b, by(fwd), params)
}

func publishOKBody(fwd, order byte, filter, params []byte) []byte {
	return cat(vi(1), by(fwd, 0x80, order), filter, params)
}

func fetchBody(order byte, fetchType uint64, params []byte) []byte {
	b := cat(vi(0), by(0x80, order), vi(fetchType))
	switch fetchType {
	case 1:
		b = cat(b, nsb("a"), lp("b"), vi(0), vi(0), vi(1), vi(0))
	default:
		b = cat(b, vi(0), vi(1))
	}
	return append(b, params...)
}

func fetchOKBody(order, eot byte, params []byte) []byte {
	return cat(vi(0), by(order, eot), vi(4), vi(0), params)
}

func clientSetupBody(params []byte) []byte {
	return cat(vi(1), vi(uint64(Draft14)), params)
}

func serverSetupBody(params []byte) []byte {
	return cat(vi(uint64(Draft14)), params)
}

var filterNext = vi(1)

type decodeCase struct {
	name string
	typ  MessageType
	body []byte
	want SessionErrorCode // NoError: must parse
}

// checkDecode parses body both bare and framed and checks the session code.
func checkDecode(t *testing.T, c decodeCase) {
	t.Helper()
	m, err := ParseMessageBody(c.typ, c.body)
	if got := SessionCode(err); got != c.want {
		t.Fatalf("ParseMessageBody: err = %v (code %s), want %s", err, got, c.want)
	}
	if c.want != NoError {
		var se *SessionError
		if !errors.As(err, &se) {
			t.Fatalf("ParseMessageBody error %v (%T) is not a *SessionError", err, err)
		}
		if m != nil {
			t.Fatalf("message returned with an error")
		}
	}
	if len(c.body) > MaxControlPayload {
		return
	}
	wire := frame(c.typ, c.body)
	m2, n, err := ParseMessage(wire)
	if got := SessionCode(err); got != c.want {
		t.Fatalf("ParseMessage: err = %v (code %s), want %s", err, got, c.want)
	}
	if c.want != NoError {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("ParseMessage gave io.ErrUnexpectedEOF for a complete frame")
		}
		return
	}
	if n != len(wire) || !reflect.DeepEqual(m, m2) {
		t.Fatalf("ParseMessage: n=%d of %d, ParseMessageBody and ParseMessage disagree", n, len(wire))
	}
	// What is accepted re-encodes to the same bytes (every hand-built
	// varint here is minimal).
	again, err := AppendMessage(nil, m2)
	if err != nil {
		t.Fatalf("re-encoding an accepted message: %v", err)
	}
	if !bytes.Equal(again, wire) {
		t.Fatalf("re-encoding\n got % x\nwant % x", again, wire)
	}
}

func TestControlErrorsUnknownTypes(t *testing.T) {
	for _, typ := range []uint64{0x00, 0x01, 0x1B, 0x1C, 0x22, 0x3f, 0x40, 0x41, 0x1234, MaxVarint} {
		if NewMessage(MessageType(typ)) != nil {
			t.Errorf("NewMessage(0x%x) is not nil", typ)
		}
		for _, body := range [][]byte{nil, {0x00}} {
			wire := frame(MessageType(typ), body)
			m, n, err := ParseMessage(wire)
			if m != nil || n != 0 || SessionCode(err) != ProtocolViolation || !errors.Is(err, ErrProtocolViolation) {
				t.Errorf("ParseMessage(% x) = %v, %d, %v; want PROTOCOL_VIOLATION", wire, m, n, err)
			}
			m, err = ParseMessageBody(MessageType(typ), body)
			if m != nil || SessionCode(err) != ProtocolViolation {
				t.Errorf("ParseMessageBody(0x%x) = %v, %v; want PROTOCOL_VIOLATION", typ, m, err)
			}
		}
		// The type alone is enough to reject: no need to wait for the
		// length.
		typeOnly := vi(typ)
		if _, _, err := ParseMessage(typeOnly); SessionCode(err) != ProtocolViolation || errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ParseMessage(type 0x%x only) = %v, want PROTOCOL_VIOLATION", typ, err)
		}
	}
	// A truncated type varint is not an error yet.
	for _, b := range [][]byte{nil, {0x40}, {0x80, 0x00}, {0xc0, 0, 0, 0, 0, 0, 0}} {
		if _, _, err := ParseMessage(b); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("ParseMessage(% x) = %v, want io.ErrUnexpectedEOF", b, err)
		}
	}
}

func TestControlErrorsDecode(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	var cases []decodeCase
	add := func(name string, typ MessageType, body []byte, want SessionErrorCode) {
		cases = append(cases, decodeCase{name, typ, body, want})
	}

	// Namespaces: 1 to 32 fields.
	add("PUBLISH_NAMESPACE 0 fields", TypePublishNamespace, cat(vi(0), nsb(), noParams), ProtocolViolation)
	add("PUBLISH_NAMESPACE 33 fields", TypePublishNamespace, cat(vi(0), nsb(nFields(33)...), noParams), ProtocolViolation)
	add("PUBLISH_NAMESPACE 32 fields", TypePublishNamespace, cat(vi(0), nsb(nFields(32)...), noParams), NoError)
	add("PUBLISH_NAMESPACE huge field count", TypePublishNamespace, cat(vi(0), vi(MaxVarint), noParams), ProtocolViolation)
	add("SUBSCRIBE_NAMESPACE 0 fields", TypeSubscribeNamespace, cat(vi(0), nsb(), noParams), ProtocolViolation)
	add("SUBSCRIBE_NAMESPACE 33 fields", TypeSubscribeNamespace, cat(vi(0), nsb(nFields(33)...), noParams), ProtocolViolation)
	add("UNSUBSCRIBE_NAMESPACE 0 fields", TypeUnsubscribeNamespace, nsb(), ProtocolViolation)
	add("UNSUBSCRIBE_NAMESPACE 33 fields", TypeUnsubscribeNamespace, nsb(nFields(33)...), ProtocolViolation)
	add("PUBLISH_NAMESPACE_DONE 0 fields", TypePublishNamespaceDone, nsb(), ProtocolViolation)
	add("PUBLISH_NAMESPACE_DONE 33 fields", TypePublishNamespaceDone, nsb(nFields(33)...), ProtocolViolation)
	add("PUBLISH_NAMESPACE_CANCEL 0 fields", TypePublishNamespaceCancel, cat(nsb(), vi(0), lp("")), ProtocolViolation)

	// Full track name: namespace fields + name <= 4096 bytes.
	ftnRaw := func(typ MessageType, ns, name []byte) []byte {
		switch typ {
		case TypeSubscribe, TypeTrackStatus:
			return cat(vi(0), ns, name, by(0, 0, 1), filterNext, noParams)
		case TypePublish:
			return cat(vi(1), ns, name, vi(7), by(1, 0, 1), noParams)
		case TypeFetch:
			return cat(vi(0), by(0, 0), vi(1), ns, name, vi(0), vi(0), vi(1), vi(0), noParams)
		}
		panic("no full track name in " + typ.String())
	}
	ftn := func(typ MessageType, nsLen, nameLen int) []byte {
		return ftnRaw(typ, nsb(long(nsLen)), lp(strings.Repeat("y", nameLen)))
	}
	for _, typ := range []MessageType{TypeSubscribe, TypeTrackStatus, TypePublish, TypeFetch} {
		add(typ.String()+" full track name 4096", typ, ftn(typ, 2048, 2048), NoError)
		add(typ.String()+" full track name 4096 in namespace", typ, ftn(typ, 4096, 0), NoError)
		add(typ.String()+" full track name 4097", typ, ftn(typ, 2048, 2049), ProtocolViolation)
		add(typ.String()+" full track name 4097 in namespace", typ, ftn(typ, 4097, 0), ProtocolViolation)
		add(typ.String()+" name alone 4097", typ, ftn(typ, 0, 4097), ProtocolViolation)
		add(typ.String()+" name length huge", typ, ftnRaw(typ, nsb("a"), vi(MaxVarint)), ProtocolViolation)
		add(typ.String()+" 0 fields", typ, ftnRaw(typ, nsb(), lp("b")), ProtocolViolation)
		add(typ.String()+" 33 fields", typ, ftnRaw(typ, nsb(nFields(33)...), lp("b")), ProtocolViolation)
		add(typ.String()+" 32 fields", typ, ftnRaw(typ, nsb(nFields(32)...), lp("b")), NoError)
	}
	// Several fields adding up to more than 4096.
	add("SUBSCRIBE two fields 4097", TypeSubscribe, cat(vi(0), nsb(long(2000), long(2097)), lp(""), by(0, 0, 1), filterNext, noParams), ProtocolViolation)
	// Namespace-only messages: the fields alone are limited to 4096.
	add("PUBLISH_NAMESPACE_DONE 4096 bytes", TypePublishNamespaceDone, nsb(long(4000), long(96)), NoError)
	add("PUBLISH_NAMESPACE_DONE 4097 bytes", TypePublishNamespaceDone, nsb(long(4000), long(97)), ProtocolViolation)
	add("PUBLISH_NAMESPACE 4097 bytes", TypePublishNamespace, cat(vi(0), nsb(long(4097)), noParams), ProtocolViolation)
	add("SUBSCRIBE_NAMESPACE 4097 bytes", TypeSubscribeNamespace, cat(vi(0), nsb(long(1), long(4096)), noParams), ProtocolViolation)
	add("UNSUBSCRIBE_NAMESPACE 4097 bytes", TypeUnsubscribeNamespace, nsb(long(4097)), ProtocolViolation)
	add("PUBLISH_NAMESPACE_CANCEL 4097 bytes", TypePublishNamespaceCancel, cat(nsb(long(4097)), vi(0), lp("")), ProtocolViolation)

	// Reason phrases: at most 1024 bytes, in every message that has one.
	reason := func(typ MessageType, r []byte) []byte {
		switch typ {
		case TypePublishDone:
			return cat(vi(0), vi(2), vi(0), r)
		case TypePublishNamespaceCancel:
			return cat(nsb("a"), vi(0), r)
		}
		return cat(vi(0), vi(1), r)
	}
	for _, typ := range []MessageType{TypeSubscribeError, TypeTrackStatusError, TypePublishError, TypeFetchError,
		TypePublishNamespaceError, TypeSubscribeNamespaceError, TypePublishDone, TypePublishNamespaceCancel} {
		add(typ.String()+" reason 1024", typ, reason(typ, lp(long(1024))), NoError)
		add(typ.String()+" reason 1025", typ, reason(typ, lp(long(1025))), ProtocolViolation)
		// The limit is checked before the bytes are looked for.
		add(typ.String()+" reason length huge", typ, reason(typ, vi(MaxVarint)), ProtocolViolation)
	}
	// GOAWAY URI: at most 8192 bytes.
	add("GOAWAY URI 8192", TypeGoAway, lp(long(8192)), NoError)
	add("GOAWAY URI 8193", TypeGoAway, lp(long(8193)), ProtocolViolation)
	add("GOAWAY URI length 8193, no bytes", TypeGoAway, vi(8193), ProtocolViolation)

	// Odd KVP values: at most 65535 bytes; the limit is checked before the
	// bytes (a message cannot hold 65536 bytes anyway).
	add("SUBSCRIBE_NAMESPACE odd param length 65536", TypeSubscribeNamespace,
		cat(vi(0), nsb("a"), vi(1), vi(0x21), vi(65536)), ProtocolViolation)
	add("CLIENT_SETUP odd param length huge", TypeClientSetup,
		cat(vi(1), vi(uint64(Draft14)), vi(1), vi(0x21), vi(MaxVarint)), ProtocolViolation)

	// One-byte flags: 0 or 1.
	add("SUBSCRIBE forward 2", TypeSubscribe, subscribeBody(0, 2, filterNext, noParams), ProtocolViolation)
	add("SUBSCRIBE forward 0xff", TypeSubscribe, subscribeBody(0, 0xff, filterNext, noParams), ProtocolViolation)
	add("TRACK_STATUS forward 2", TypeTrackStatus, subscribeBody(0, 2, filterNext, noParams), ProtocolViolation)
	add("SUBSCRIBE_UPDATE forward 2", TypeSubscribeUpdate, subscribeUpdateBody(2, noParams), ProtocolViolation)
	add("SUBSCRIBE_UPDATE forward 1", TypeSubscribeUpdate, subscribeUpdateBody(1, noParams), NoError)
	add("PUBLISH forward 2", TypePublish, publishBody(1, 0, 2, noParams), ProtocolViolation)
	add("PUBLISH_OK forward 2", TypePublishOK, publishOKBody(2, 1, filterNext, noParams), ProtocolViolation)
	add("SUBSCRIBE_OK content exists 2", TypeSubscribeOK, subscribeOKBody(1, 2, noParams), ProtocolViolation)
	add("TRACK_STATUS_OK content exists 2", TypeTrackStatusOK, subscribeOKBody(1, 2, noParams), ProtocolViolation)
	add("PUBLISH content exists 2", TypePublish, publishBody(1, 2, 1, noParams), ProtocolViolation)
	add("FETCH_OK end of track 2", TypeFetchOK, fetchOKBody(1, 2, noParams), ProtocolViolation)
	add("FETCH_OK end of track 1", TypeFetchOK, fetchOKBody(1, 1, noParams), NoError)

	// Group order: > 2 is an error everywhere; 0 only in SUBSCRIBE,
	// TRACK_STATUS and FETCH.
	groupOrder := []struct {
		typ       MessageType
		body      func(order byte) []byte
		zeroAllow bool
	}{
		{TypeSubscribe, func(o byte) []byte { return subscribeBody(o, 1, filterNext, noParams) }, true},
		{TypeTrackStatus, func(o byte) []byte { return subscribeBody(o, 1, filterNext, noParams) }, true},
		{TypeFetch, func(o byte) []byte { return fetchBody(o, 1, noParams) }, true},
		{TypeSubscribeOK, func(o byte) []byte { return subscribeOKBody(o, 0, noParams) }, false},
		{TypeTrackStatusOK, func(o byte) []byte { return subscribeOKBody(o, 1, noParams) }, false},
		{TypePublish, func(o byte) []byte { return publishBody(o, 0, 1, noParams) }, false},
		{TypePublishOK, func(o byte) []byte { return publishOKBody(1, o, filterNext, noParams) }, false},
		// FETCH_OK's 0x0 parses; the session decides (peer deviations).
		{TypeFetchOK, func(o byte) []byte { return fetchOKBody(o, 0, noParams) }, true},
	}
	for _, g := range groupOrder {
		zero := SessionErrorCode(ProtocolViolation)
		if g.zeroAllow {
			zero = NoError
		}
		add(g.typ.String()+" group order 0", g.typ, g.body(0), zero)
		add(g.typ.String()+" group order 1", g.typ, g.body(1), NoError)
		add(g.typ.String()+" group order 2", g.typ, g.body(2), NoError)
		add(g.typ.String()+" group order 3", g.typ, g.body(3), ProtocolViolation)
		add(g.typ.String()+" group order 0xff", g.typ, g.body(0xff), ProtocolViolation)
	}

	// Filter types 1..4.
	for _, ft := range []uint64{0, 5, 0x40, MaxVarint} {
		f := vi(ft)
		add("SUBSCRIBE filter type "+hexU(ft), TypeSubscribe, subscribeBody(0, 1, f, noParams), ProtocolViolation)
		add("TRACK_STATUS filter type "+hexU(ft), TypeTrackStatus, subscribeBody(0, 1, f, noParams), ProtocolViolation)
		add("PUBLISH_OK filter type "+hexU(ft), TypePublishOK, publishOKBody(1, 1, f, noParams), ProtocolViolation)
	}
	add("SUBSCRIBE AbsoluteRange", TypeSubscribe, subscribeBody(0, 1, cat(vi(4), vi(1), vi(2), vi(3)), noParams), NoError)
	// Fetch types 1..3.
	for _, ft := range []uint64{0, 4, 0x40, MaxVarint} {
		add("FETCH fetch type "+hexU(ft), TypeFetch, cat(vi(0), by(0x80, 1), vi(ft), vi(0), vi(1), noParams), ProtocolViolation)
	}

	// Parameters: duplicates.
	dt1, dt2 := kvv(ParamDeliveryTimeout, 1), kvv(ParamDeliveryTimeout, 2)
	mcd1, mcd2 := kvv(ParamMaxCacheDuration, 1), kvv(ParamMaxCacheDuration, 2)
	tok := kvb(ParamAuthorizationToken, by(0x02, 0x07))            // USE_ALIAS 7
	tok2 := kvb(ParamAuthorizationToken, by(0x03, 0x00, 's'))      // USE_VALUE type 0 "s"
	unkE1, unkE2 := kvv(0x40, 1), kvv(0x40, 1)                     // unknown even, identical twice
	unkO1, unkO2 := kvb(0x41, []byte("a")), kvb(0x41, []byte("b")) // unknown odd
	add("SUBSCRIBE duplicate DELIVERY_TIMEOUT", TypeSubscribe, subscribeBody(0, 1, filterNext, pl(dt1, dt2)), ProtocolViolation)
	add("SUBSCRIBE duplicate DELIVERY_TIMEOUT apart", TypeSubscribe, subscribeBody(0, 1, filterNext, pl(dt1, tok, unkE1, dt1)), ProtocolViolation)
	add("TRACK_STATUS duplicate DELIVERY_TIMEOUT", TypeTrackStatus, subscribeBody(0, 1, filterNext, pl(dt1, dt2)), ProtocolViolation)
	add("SUBSCRIBE_UPDATE duplicate DELIVERY_TIMEOUT", TypeSubscribeUpdate, subscribeUpdateBody(1, pl(dt1, dt2)), ProtocolViolation)
	add("SUBSCRIBE_OK duplicate DELIVERY_TIMEOUT", TypeSubscribeOK, subscribeOKBody(1, 0, pl(dt1, dt2)), ProtocolViolation)
	add("TRACK_STATUS_OK duplicate DELIVERY_TIMEOUT", TypeTrackStatusOK, subscribeOKBody(1, 0, pl(dt1, dt2)), ProtocolViolation)
	add("PUBLISH duplicate DELIVERY_TIMEOUT", TypePublish, publishBody(1, 0, 1, pl(dt1, dt2)), ProtocolViolation)
	add("PUBLISH_OK duplicate DELIVERY_TIMEOUT", TypePublishOK, publishOKBody(1, 1, filterNext, pl(dt1, dt2)), ProtocolViolation)
	add("SUBSCRIBE_OK duplicate MAX_CACHE_DURATION", TypeSubscribeOK, subscribeOKBody(1, 0, pl(mcd1, mcd2)), ProtocolViolation)
	add("TRACK_STATUS_OK duplicate MAX_CACHE_DURATION", TypeTrackStatusOK, subscribeOKBody(1, 0, pl(mcd1, mcd2)), ProtocolViolation)
	add("PUBLISH duplicate MAX_CACHE_DURATION", TypePublish, publishBody(1, 0, 1, pl(mcd1, mcd2)), ProtocolViolation)
	add("FETCH_OK duplicate MAX_CACHE_DURATION", TypeFetchOK, fetchOKBody(1, 0, pl(mcd1, mcd2)), ProtocolViolation)
	add("SUBSCRIBE_OK one of each", TypeSubscribeOK, subscribeOKBody(1, 0, pl(dt1, mcd1)), NoError)
	add("PUBLISH one of each, two tokens", TypePublish, publishBody(1, 0, 1, pl(dt1, mcd1, tok, tok2)), NoError)
	// Tokens may repeat wherever they are defined.
	add("SUBSCRIBE duplicate token", TypeSubscribe, subscribeBody(0, 1, filterNext, pl(tok, tok)), NoError)
	add("SUBSCRIBE_UPDATE duplicate token", TypeSubscribeUpdate, subscribeUpdateBody(1, pl(tok, tok2, tok)), NoError)
	add("FETCH duplicate token", TypeFetch, fetchBody(0, 2, pl(tok, tok)), NoError)
	add("PUBLISH_NAMESPACE duplicate token", TypePublishNamespace, cat(vi(0), nsb("a"), pl(tok, tok)), NoError)
	add("SUBSCRIBE_NAMESPACE duplicate token", TypeSubscribeNamespace, cat(vi(0), nsb("a"), pl(tok, tok)), NoError)
	add("CLIENT_SETUP duplicate token", TypeClientSetup, clientSetupBody(pl(tok, tok)), NoError)
	add("SERVER_SETUP duplicate token", TypeServerSetup, serverSetupBody(pl(tok, tok)), NoError)
	// Unknown parameters may repeat.
	add("SUBSCRIBE duplicate unknown", TypeSubscribe, subscribeBody(0, 1, filterNext, pl(unkE1, unkE2, unkO1, unkO2)), NoError)
	add("SUBSCRIBE_OK duplicate unknown", TypeSubscribeOK, subscribeOKBody(1, 0, pl(unkO1, unkO1, unkE1, unkE1)), NoError)
	add("CLIENT_SETUP duplicate unknown", TypeClientSetup, clientSetupBody(pl(unkE1, unkE2, unkO1, unkO2, kvb(0x3f, nil), kvb(0x3f, nil))), NoError)
	// A known parameter in a message that does not define it is ignored,
	// duplicates included.
	add("FETCH_OK duplicate DELIVERY_TIMEOUT ignored", TypeFetchOK, fetchOKBody(1, 0, pl(dt1, dt2)), NoError)
	add("PUBLISH_NAMESPACE duplicate DELIVERY_TIMEOUT ignored", TypePublishNamespace, cat(vi(0), nsb("a"), pl(dt1, dt2)), NoError)
	add("SUBSCRIBE_NAMESPACE duplicate DELIVERY_TIMEOUT ignored", TypeSubscribeNamespace, cat(vi(0), nsb("a"), pl(dt1, dt1)), NoError)
	add("FETCH duplicate DELIVERY_TIMEOUT ignored", TypeFetch, fetchBody(0, 1, pl(dt1, dt2)), NoError)
	add("PUBLISH_OK duplicate MAX_CACHE_DURATION ignored", TypePublishOK, publishOKBody(1, 1, filterNext, pl(mcd1, mcd2)), NoError)
	add("SUBSCRIBE duplicate MAX_CACHE_DURATION ignored", TypeSubscribe, subscribeBody(0, 1, filterNext, pl(mcd1, mcd2)), NoError)
	// Setup parameters: PATH, MAX_REQUEST_ID, MAX_AUTH_TOKEN_CACHE_SIZE,
	// AUTHORITY and MOQT_IMPLEMENTATION appear at most once.
	path := kvb(SetupParamPath, []byte("/a"))
	mri := kvv(SetupParamMaxRequestID, 10)
	add("CLIENT_SETUP duplicate PATH", TypeClientSetup, clientSetupBody(pl(path, path)), ProtocolViolation)
	add("CLIENT_SETUP duplicate MAX_REQUEST_ID", TypeClientSetup, clientSetupBody(pl(mri, path, mri)), ProtocolViolation)
	add("SERVER_SETUP duplicate MAX_REQUEST_ID", TypeServerSetup, serverSetupBody(pl(mri, mri)), ProtocolViolation)
	add("CLIENT_SETUP duplicate MAX_AUTH_TOKEN_CACHE_SIZE", TypeClientSetup,
		clientSetupBody(pl(kvv(SetupParamMaxAuthTokenCacheSize, 1), kvv(SetupParamMaxAuthTokenCacheSize, 1))), ProtocolViolation)
	add("CLIENT_SETUP duplicate AUTHORITY", TypeClientSetup,
		clientSetupBody(pl(kvb(SetupParamAuthority, []byte("h")), kvb(SetupParamAuthority, []byte("h")))), ProtocolViolation)
	add("CLIENT_SETUP duplicate MOQT_IMPLEMENTATION", TypeClientSetup,
		clientSetupBody(pl(kvb(SetupParamMOQTImplementation, []byte("x")), kvb(SetupParamMOQTImplementation, []byte("y")))), ProtocolViolation)
	add("CLIENT_SETUP PATH and MAX_REQUEST_ID once", TypeClientSetup, clientSetupBody(pl(path, mri)), NoError)

	// Authorization tokens that do not decode: KEY_VALUE_FORMATTING_ERROR
	// where the token is a defined parameter, ignored elsewhere.
	badTokens := []struct {
		name string
		v    []byte
	}{
		{"alias type 7", by(0x07, 0x01)},
		{"alias type huge", vi(MaxVarint)},
		{"empty", nil},
		{"DELETE truncated", by(0x00)},
		{"REGISTER truncated", by(0x01, 0x05)},
		{"USE_ALIAS truncated", by(0x02)},
		{"USE_VALUE truncated", by(0x03)},
		{"DELETE trailing bytes", by(0x00, 0x05, 0xff)},
		{"USE_ALIAS trailing bytes", by(0x02, 0x05, 0x00)},
		{"truncated varint alias", by(0x00, 0x40)},
	}
	for _, bt := range badTokens {
		bad := kvb(ParamAuthorizationToken, bt.v)
		kvfe := SessionErrorCode(KeyValueFormattingError)
		add("SUBSCRIBE token "+bt.name, TypeSubscribe, subscribeBody(0, 1, filterNext, pl(bad)), kvfe)
		add("SUBSCRIBE token after good "+bt.name, TypeSubscribe, subscribeBody(0, 1, filterNext, pl(tok, bad)), kvfe)
		add("TRACK_STATUS token "+bt.name, TypeTrackStatus, subscribeBody(0, 1, filterNext, pl(bad)), kvfe)
		add("SUBSCRIBE_UPDATE token "+bt.name, TypeSubscribeUpdate, subscribeUpdateBody(1, pl(bad)), kvfe)
		add("PUBLISH token "+bt.name, TypePublish, publishBody(1, 0, 1, pl(bad)), kvfe)
		add("FETCH token "+bt.name, TypeFetch, fetchBody(0, 1, pl(bad)), kvfe)
		add("PUBLISH_NAMESPACE token "+bt.name, TypePublishNamespace, cat(vi(0), nsb("a"), pl(bad)), kvfe)
		add("SUBSCRIBE_NAMESPACE token "+bt.name, TypeSubscribeNamespace, cat(vi(0), nsb("a"), pl(bad)), kvfe)
		add("CLIENT_SETUP token "+bt.name, TypeClientSetup, clientSetupBody(pl(bad)), kvfe)
		add("SERVER_SETUP token "+bt.name, TypeServerSetup, serverSetupBody(pl(bad)), kvfe)
		// Not a defined parameter here: ignored (and kept).
		add("SUBSCRIBE_OK token ignored "+bt.name, TypeSubscribeOK, subscribeOKBody(1, 0, pl(bad)), NoError)
		add("TRACK_STATUS_OK token ignored "+bt.name, TypeTrackStatusOK, subscribeOKBody(1, 0, pl(bad)), NoError)
		add("PUBLISH_OK token ignored "+bt.name, TypePublishOK, publishOKBody(1, 1, filterNext, pl(bad)), NoError)
		add("FETCH_OK token ignored "+bt.name, TypeFetchOK, fetchOKBody(1, 0, pl(bad)), NoError)
	}

	// CLIENT_SETUP version list.
	add("CLIENT_SETUP 0 versions", TypeClientSetup, cat(vi(0), noParams), ProtocolViolation)
	add("CLIENT_SETUP version count beyond the payload", TypeClientSetup, cat(vi(1000), vi(uint64(Draft14)), noParams), ProtocolViolation)
	add("CLIENT_SETUP version count one too many", TypeClientSetup, cat(vi(2), vi(uint64(Draft14)), noParams), ProtocolViolation)
	add("CLIENT_SETUP version count 2^62-1", TypeClientSetup, cat(vi(MaxVarint), vi(uint64(Draft14)), noParams), ProtocolViolation)
	add("CLIENT_SETUP param count 2^62-1", TypeClientSetup, clientSetupBody(vi(MaxVarint)), ProtocolViolation)
	add("SERVER_SETUP param count 2^62-1", TypeServerSetup, serverSetupBody(vi(MaxVarint)), ProtocolViolation)
	add("SUBSCRIBE param count 2^62-1", TypeSubscribe, subscribeBody(0, 1, filterNext, vi(MaxVarint)), ProtocolViolation)
	add("SUBSCRIBE param count 2, one present", TypeSubscribe, subscribeBody(0, 1, filterNext, cat(vi(2), dt1)), ProtocolViolation)
	add("SERVER_SETUP empty", TypeServerSetup, nil, ProtocolViolation)

	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) { checkDecode(t, c) })
	}
}

func hexU(v uint64) string { return "0x" + strconv.FormatUint(v, 16) }

func uhex(v uint64) string { return strconv.FormatUint(v, 10) }

// ---- encode side ----

type encodeCase struct {
	name string
	msg  Message
	want SessionErrorCode // the code the error carries; InternalError = a plain (non-session) error; NoError = must encode
}

func checkEncode(t *testing.T, c encodeCase) {
	t.Helper()
	prefix := []byte{0xca, 0xfe}
	buf := make([]byte, len(prefix), 1<<17)
	copy(buf, prefix)
	out, err := AppendMessage(buf, c.msg)
	if c.want == NoError {
		if err != nil {
			t.Fatalf("AppendMessage: %v", err)
		}
		if !bytes.Equal(out[:2], prefix) {
			t.Fatalf("prefix changed")
		}
		m, n, err := ParseMessage(out[2:])
		if err != nil || n != len(out)-2 {
			t.Fatalf("parsing the encoding back: n=%d err=%v", n, err)
		}
		if !reflect.DeepEqual(m, c.msg) {
			t.Fatalf("round trip\n got %#v\nwant %#v", m, c.msg)
		}
		return
	}
	if err == nil {
		t.Fatalf("AppendMessage succeeded (% x), want an error", out)
	}
	if got := SessionCode(err); got != c.want {
		t.Fatalf("AppendMessage: err = %v (code %s), want %s", err, got, c.want)
	}
	if !bytes.Equal(out, prefix) {
		t.Fatalf("AppendMessage changed the buffer to % x, want % x", out, prefix)
	}
	out, err = AppendMessage(nil, c.msg)
	if err == nil || len(out) != 0 {
		t.Fatalf("AppendMessage(nil) = % x, %v; want nothing and an error", out, err)
	}
}

func TestControlErrorsEncode(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	const pv, kvfe, plain = ProtocolViolation, KeyValueFormattingError, InternalError
	var cases []encodeCase
	add := func(name string, m Message, want SessionErrorCode) {
		cases = append(cases, encodeCase{name, m, want})
	}

	sub := func(f func(*Subscribe)) *Subscribe {
		m := &Subscribe{RequestID: 0, Namespace: Namespace{"a"}, Name: "b", GroupOrder: GroupOrderAscending,
			Forward: true, Filter: Filter{Type: FilterNextGroupStart}}
		f(m)
		return m
	}
	ts := func(f func(*Subscribe)) *TrackStatus { return (*TrackStatus)(sub(f)) }
	pub := func(f func(*Publish)) *Publish {
		m := &Publish{RequestID: 1, Namespace: Namespace{"a"}, Name: "b", TrackAlias: 1, GroupOrder: GroupOrderAscending, Forward: true}
		f(m)
		return m
	}
	fetch := func(f func(*Fetch)) *Fetch {
		m := &Fetch{RequestID: 0, GroupOrder: GroupOrderAscending, FetchType: FetchStandalone,
			Namespace: Namespace{"a"}, Name: "b", End: Location{1, 0}}
		f(m)
		return m
	}
	subOK := func(f func(*SubscribeOK)) *SubscribeOK {
		m := &SubscribeOK{GroupOrder: GroupOrderAscending}
		f(m)
		return m
	}
	pubOK := func(f func(*PublishOK)) *PublishOK {
		m := &PublishOK{Forward: true, GroupOrder: GroupOrderAscending, Filter: Filter{Type: FilterNextGroupStart}}
		f(m)
		return m
	}
	fetchOK := func(f func(*FetchOK)) *FetchOK {
		m := &FetchOK{GroupOrder: GroupOrderAscending}
		f(m)
		return m
	}
	upd := func(f func(*SubscribeUpdate)) *SubscribeUpdate {
		m := &SubscribeUpdate{RequestID: 2, Forward: true}
		f(m)
		return m
	}

	// Namespaces: 1 to 32 fields, 4096 bytes.
	for _, n := range []int{0, 33} {
		ns := Namespace(nFields(n))
		if n == 0 {
			ns = nil
		}
		sfx := " " + uhex(uint64(n)) + " fields"
		add("SUBSCRIBE"+sfx, sub(func(m *Subscribe) { m.Namespace = ns }), pv)
		add("TRACK_STATUS"+sfx, ts(func(m *Subscribe) { m.Namespace = ns }), pv)
		add("PUBLISH"+sfx, pub(func(m *Publish) { m.Namespace = ns }), pv)
		add("FETCH"+sfx, fetch(func(m *Fetch) { m.Namespace = ns }), pv)
		add("PUBLISH_NAMESPACE"+sfx, &PublishNamespace{Namespace: ns}, pv)
		add("PUBLISH_NAMESPACE_DONE"+sfx, &PublishNamespaceDone{Namespace: ns}, pv)
		add("PUBLISH_NAMESPACE_CANCEL"+sfx, &PublishNamespaceCancel{Namespace: ns}, pv)
		add("SUBSCRIBE_NAMESPACE"+sfx, &SubscribeNamespace{Prefix: ns}, pv)
		add("UNSUBSCRIBE_NAMESPACE"+sfx, &UnsubscribeNamespace{Prefix: ns}, pv)
	}
	add("PUBLISH_NAMESPACE empty non-nil", &PublishNamespace{Namespace: Namespace{}}, pv)
	add("PUBLISH_NAMESPACE 32 fields", &PublishNamespace{Namespace: Namespace(nFields(32))}, NoError)
	add("FETCH joining ignores the namespace", fetch(func(m *Fetch) {
		m.FetchType, m.Namespace, m.Name, m.End = FetchRelativeJoining, nil, "", Location{}
	}), NoError)

	add("SUBSCRIBE full track name 4096", sub(func(m *Subscribe) { m.Namespace, m.Name = Namespace{long(2048)}, long(2048) }), NoError)
	add("SUBSCRIBE full track name 4097", sub(func(m *Subscribe) { m.Namespace, m.Name = Namespace{long(2048)}, long(2049) }), pv)
	add("SUBSCRIBE name 4097", sub(func(m *Subscribe) { m.Namespace, m.Name = Namespace{""}, long(4097) }), pv)
	add("TRACK_STATUS full track name 4097", ts(func(m *Subscribe) { m.Namespace, m.Name = Namespace{long(4000), long(96)}, "z" }), pv)
	add("PUBLISH full track name 4096", pub(func(m *Publish) { m.Namespace, m.Name = Namespace{long(4095)}, "z" }), NoError)
	add("PUBLISH full track name 4097", pub(func(m *Publish) { m.Namespace, m.Name = Namespace{long(4096)}, "z" }), pv)
	add("FETCH full track name 4097", fetch(func(m *Fetch) { m.Namespace, m.Name = Namespace{long(1)}, long(4096) }), pv)
	add("PUBLISH_NAMESPACE_DONE 4096 bytes", &PublishNamespaceDone{Namespace: Namespace{long(4000), long(96)}}, NoError)
	add("PUBLISH_NAMESPACE_DONE 4097 bytes", &PublishNamespaceDone{Namespace: Namespace{long(4000), long(97)}}, pv)
	add("PUBLISH_NAMESPACE 4097 bytes", &PublishNamespace{Namespace: Namespace{long(4097)}}, pv)
	add("SUBSCRIBE_NAMESPACE 4097 bytes", &SubscribeNamespace{Prefix: Namespace{long(4097)}}, pv)
	add("UNSUBSCRIBE_NAMESPACE 4097 bytes", &UnsubscribeNamespace{Prefix: Namespace{long(2), long(4095)}}, pv)
	add("PUBLISH_NAMESPACE_CANCEL 4097 bytes", &PublishNamespaceCancel{Namespace: Namespace{long(4097)}}, pv)

	// Reason phrases and the GOAWAY URI.
	for _, n := range []int{1024, 1025} {
		r := long(n)
		want := SessionErrorCode(NoError)
		if n > MaxReasonPhraseLen {
			want = pv
		}
		sfx := " reason " + uhex(uint64(n))
		add("SUBSCRIBE_ERROR"+sfx, &SubscribeError{Reason: r}, want)
		add("TRACK_STATUS_ERROR"+sfx, &TrackStatusError{Reason: r}, want)
		add("PUBLISH_ERROR"+sfx, &PublishError{Reason: r}, want)
		add("FETCH_ERROR"+sfx, &FetchError{Reason: r}, want)
		add("PUBLISH_NAMESPACE_ERROR"+sfx, &PublishNamespaceError{Reason: r}, want)
		add("SUBSCRIBE_NAMESPACE_ERROR"+sfx, &SubscribeNamespaceError{Reason: r}, want)
		add("PUBLISH_DONE"+sfx, &PublishDone{Reason: r}, want)
		add("PUBLISH_NAMESPACE_CANCEL"+sfx, &PublishNamespaceCancel{Namespace: Namespace{"a"}, Reason: r}, want)
	}
	add("GOAWAY URI 8192", &GoAway{NewSessionURI: long(8192)}, NoError)
	add("GOAWAY URI 8193", &GoAway{NewSessionURI: long(8193)}, pv)

	// Key-value pairs.
	add("SUBSCRIBE even param with bytes", sub(func(m *Subscribe) { m.Params = Parameters{{Type: 0x40, Bytes: []byte{1}}} }), plain)
	add("SUBSCRIBE even param with empty bytes", sub(func(m *Subscribe) { m.Params = Parameters{{Type: ParamDeliveryTimeout, Bytes: []byte{}}} }), plain)
	add("CLIENT_SETUP even param with bytes", &ClientSetup{Versions: []Version{Draft14}, Params: Parameters{{Type: SetupParamMaxRequestID, Bytes: []byte("1")}}}, plain)
	add("SUBSCRIBE odd param with an integer", sub(func(m *Subscribe) { m.Params = Parameters{{Type: 0x41, Value: 5}} }), plain)
	add("SUBSCRIBE_NAMESPACE odd param 65536 bytes", &SubscribeNamespace{Prefix: Namespace{"a"}, Params: Parameters{{Type: 0x41, Bytes: make([]byte, 65536)}}}, pv)
	add("SUBSCRIBE param type 2^62", sub(func(m *Subscribe) { m.Params = Parameters{{Type: 1 << 62, Value: 1}} }), plain)
	add("SUBSCRIBE param value 2^62", sub(func(m *Subscribe) { m.Params = Parameters{{Type: 0x40, Value: 1 << 62}} }), plain)

	// Parameter rules: the encoder refuses what the decoder rejects.
	dt := KeyValue{Type: ParamDeliveryTimeout, Value: 1}
	mcd := KeyValue{Type: ParamMaxCacheDuration, Value: 1}
	goodTok := tokenKV(Token{AliasType: TokenUseAlias, Alias: 1})
	add("SUBSCRIBE duplicate DELIVERY_TIMEOUT", sub(func(m *Subscribe) { m.Params = Parameters{dt, dt} }), pv)
	add("SUBSCRIBE_UPDATE duplicate DELIVERY_TIMEOUT", upd(func(m *SubscribeUpdate) { m.Params = Parameters{dt, dt} }), pv)
	add("SUBSCRIBE_OK duplicate MAX_CACHE_DURATION", subOK(func(m *SubscribeOK) { m.Params = Parameters{mcd, mcd} }), pv)
	add("FETCH_OK duplicate MAX_CACHE_DURATION", fetchOK(func(m *FetchOK) { m.Params = Parameters{mcd, mcd} }), pv)
	add("PUBLISH_OK duplicate DELIVERY_TIMEOUT", pubOK(func(m *PublishOK) { m.Params = Parameters{dt, dt} }), pv)
	add("SUBSCRIBE duplicate token", sub(func(m *Subscribe) { m.Params = Parameters{goodTok, goodTok} }), NoError)
	add("SUBSCRIBE duplicate unknown", sub(func(m *Subscribe) { m.Params = Parameters{{Type: 0x40, Value: 1}, {Type: 0x40, Value: 1}} }), NoError)
	add("FETCH_OK duplicate DELIVERY_TIMEOUT ignored", fetchOK(func(m *FetchOK) { m.Params = Parameters{dt, dt} }), NoError)
	add("PUBLISH_NAMESPACE duplicate DELIVERY_TIMEOUT ignored", &PublishNamespace{Namespace: Namespace{"a"}, Params: Parameters{dt, dt}}, NoError)
	add("CLIENT_SETUP duplicate PATH", &ClientSetup{Versions: []Version{Draft14}, Params: Parameters{
		{Type: SetupParamPath, Bytes: []byte("/a")}, {Type: SetupParamPath, Bytes: []byte("/b")}}}, pv)
	add("SERVER_SETUP duplicate MAX_REQUEST_ID", &ServerSetup{Version: Draft14, Params: Parameters{
		{Type: SetupParamMaxRequestID, Value: 1}, {Type: SetupParamMaxRequestID, Value: 2}}}, pv)
	badTok := KeyValue{Type: ParamAuthorizationToken, Bytes: []byte{0x07}}
	trailingTok := KeyValue{Type: ParamAuthorizationToken, Bytes: []byte{0x00, 0x01, 0x02}}
	add("SUBSCRIBE undecodable token", sub(func(m *Subscribe) { m.Params = Parameters{badTok} }), kvfe)
	add("SUBSCRIBE token with trailing bytes", sub(func(m *Subscribe) { m.Params = Parameters{trailingTok} }), kvfe)
	add("SUBSCRIBE token with nil value", sub(func(m *Subscribe) { m.Params = Parameters{{Type: ParamAuthorizationToken}} }), kvfe)
	add("CLIENT_SETUP undecodable token", &ClientSetup{Versions: []Version{Draft14}, Params: Parameters{badTok}}, kvfe)
	add("SUBSCRIBE_OK undecodable token ignored", subOK(func(m *SubscribeOK) { m.Params = Parameters{badTok} }), NoError)

	// Group order, filter type, fetch type.
	for _, g := range []GroupOrder{0, 3, 0xff} {
		want := SessionErrorCode(pv)
		sfx := " group order " + uhex(uint64(g))
		if g == GroupOrderPublisher {
			want = NoError
		}
		add("SUBSCRIBE"+sfx, sub(func(m *Subscribe) { m.GroupOrder = g }), want)
		add("TRACK_STATUS"+sfx, ts(func(m *Subscribe) { m.GroupOrder = g }), want)
		add("FETCH"+sfx, fetch(func(m *Fetch) { m.GroupOrder = g }), want)
		add("SUBSCRIBE_OK"+sfx, subOK(func(m *SubscribeOK) { m.GroupOrder = g }), pv)
		add("TRACK_STATUS_OK"+sfx, (*TrackStatusOK)(subOK(func(m *SubscribeOK) { m.GroupOrder = g })), pv)
		add("PUBLISH"+sfx, pub(func(m *Publish) { m.GroupOrder = g }), pv)
		add("PUBLISH_OK"+sfx, pubOK(func(m *PublishOK) { m.GroupOrder = g }), pv)
		add("FETCH_OK"+sfx, fetchOK(func(m *FetchOK) { m.GroupOrder = g }), want) // 0x0: see FetchOK.parseBody
	}
	for _, ft := range []FilterType{0, 5, 1 << 62} {
		sfx := " filter type " + uhex(uint64(ft))
		add("SUBSCRIBE"+sfx, sub(func(m *Subscribe) { m.Filter.Type = ft }), pv)
		add("TRACK_STATUS"+sfx, ts(func(m *Subscribe) { m.Filter.Type = ft }), pv)
		add("PUBLISH_OK"+sfx, pubOK(func(m *PublishOK) { m.Filter.Type = ft }), pv)
	}
	for _, ft := range []FetchType{0, 4} {
		add("FETCH fetch type "+uhex(uint64(ft)), fetch(func(m *Fetch) { m.FetchType = ft }), pv)
	}
	// Too large for a varint: the varint check fires first.
	add("FETCH fetch type 2^62", fetch(func(m *Fetch) { m.FetchType = 1 << 62 }), plain)

	// CLIENT_SETUP must offer a version.
	add("CLIENT_SETUP no versions", &ClientSetup{}, pv)
	add("CLIENT_SETUP empty versions", &ClientSetup{Versions: []Version{}}, pv)

	// Values that do not fit in a varint.
	const big = uint64(1) << 62
	add("SUBSCRIBE request ID 2^62", sub(func(m *Subscribe) { m.RequestID = big }), plain)
	add("SUBSCRIBE request ID MaxUint64", sub(func(m *Subscribe) { m.RequestID = math.MaxUint64 }), plain)
	add("SUBSCRIBE start group 2^62", sub(func(m *Subscribe) { m.Filter = Filter{Type: FilterAbsoluteStart, Start: Location{big, 0}} }), plain)
	add("SUBSCRIBE start object 2^62", sub(func(m *Subscribe) { m.Filter = Filter{Type: FilterAbsoluteStart, Start: Location{0, big}} }), plain)
	add("SUBSCRIBE end group 2^62", sub(func(m *Subscribe) { m.Filter = Filter{Type: FilterAbsoluteRange, EndGroup: big} }), plain)
	add("SUBSCRIBE_OK track alias 2^62", subOK(func(m *SubscribeOK) { m.TrackAlias = big }), plain)
	add("SUBSCRIBE_OK expires 2^62", subOK(func(m *SubscribeOK) { m.Expires = big }), plain)
	add("SUBSCRIBE_OK largest 2^62", subOK(func(m *SubscribeOK) { m.ContentExists, m.Largest = true, Location{big, 0} }), plain)
	add("PUBLISH track alias 2^62", pub(func(m *Publish) { m.TrackAlias = big }), plain)
	add("FETCH joining start 2^62", fetch(func(m *Fetch) { m.FetchType, m.JoiningStart = FetchAbsoluteJoining, big }), plain)
	add("FETCH joining request ID 2^62", fetch(func(m *Fetch) { m.FetchType, m.JoiningRequestID = FetchRelativeJoining, big }), plain)
	add("FETCH end object 2^62", fetch(func(m *Fetch) { m.End = Location{0, big} }), plain)
	add("FETCH_OK end 2^62", fetchOK(func(m *FetchOK) { m.End = Location{big, 0} }), plain)
	add("PUBLISH_DONE stream count 2^62", &PublishDone{StreamCount: big}, plain)
	add("PUBLISH_DONE status 2^62", &PublishDone{StatusCode: PublishDoneCode(big)}, plain)
	add("SUBSCRIBE_ERROR code 2^62", &SubscribeError{Code: SubscribeErrorCode(big)}, plain)
	add("PUBLISH_NAMESPACE_CANCEL code 2^62", &PublishNamespaceCancel{Namespace: Namespace{"a"}, Code: PublishNamespaceErrorCode(big)}, plain)
	add("MAX_REQUEST_ID 2^62", &MaxRequestID{Max: big}, plain)
	add("REQUESTS_BLOCKED 2^62", &RequestsBlocked{Max: big}, plain)
	add("UNSUBSCRIBE 2^62", &Unsubscribe{RequestID: big}, plain)
	add("FETCH_CANCEL 2^62", &FetchCancel{RequestID: big}, plain)
	add("PUBLISH_NAMESPACE_OK 2^62", &PublishNamespaceOK{RequestID: big}, plain)
	add("SUBSCRIBE_NAMESPACE_OK 2^62", &SubscribeNamespaceOK{RequestID: big}, plain)
	add("CLIENT_SETUP version 2^62", &ClientSetup{Versions: []Version{Draft14, Version(big)}}, plain)
	add("SERVER_SETUP version 2^62", &ServerSetup{Version: Version(big)}, plain)
	add("SUBSCRIBE_UPDATE request ID 2^62", upd(func(m *SubscribeUpdate) { m.RequestID = big }), plain)
	add("SUBSCRIBE_UPDATE subscription request ID 2^62", upd(func(m *SubscribeUpdate) { m.SubscriptionRequestID = big }), plain)

	// SUBSCRIBE_UPDATE end group is sent plus one.
	add("SUBSCRIBE_UPDATE end group 2^62-2", upd(func(m *SubscribeUpdate) { m.HasEndGroup, m.EndGroup = true, MaxVarint-1 }), NoError)
	add("SUBSCRIBE_UPDATE end group 2^62-1", upd(func(m *SubscribeUpdate) { m.HasEndGroup, m.EndGroup = true, MaxVarint }), pv)
	add("SUBSCRIBE_UPDATE end group MaxUint64", upd(func(m *SubscribeUpdate) { m.HasEndGroup, m.EndGroup = true, math.MaxUint64 }), pv)

	names := map[string]bool{}
	for _, c := range cases {
		if names[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		names[c.name] = true
		t.Run(c.name, func(t *testing.T) { checkEncode(t, c) })
	}
}

// TestControlErrorsPayloadLimit: the 16-bit length field caps the payload
// at 65535 bytes.
func TestControlErrorsPayloadLimit(t *testing.T) {
	// PUBLISH_NAMESPACE id=0 ns=("a") with one odd param 0x21 of n bytes:
	// payload = 1 + 1+1+1 + 1 + 1 + 4 (length varint for n >= 16384) + n.
	msg := func(n int) *PublishNamespace {
		return &PublishNamespace{Namespace: Namespace{"a"}, Params: Parameters{{Type: 0x21, Bytes: bytes.Repeat([]byte{0x5a}, n)}}}
	}
	ok := msg(65535 - 10)
	b, err := AppendMessage(nil, ok)
	if err != nil {
		t.Fatalf("65535-byte payload: %v", err)
	}
	if len(b) != 3+65535 || b[1] != 0xff || b[2] != 0xff {
		t.Fatalf("65535-byte payload: frame is %d bytes, length field % x", len(b), b[1:3])
	}
	m, n, err := ParseMessage(b)
	if err != nil || n != len(b) || !reflect.DeepEqual(m, ok) {
		t.Fatalf("parsing the 65535-byte payload: n=%d err=%v", n, err)
	}

	for _, extra := range []int{1, 2, 1000} {
		prefix := []byte{9, 8, 7}
		out, err := AppendMessage(prefix, msg(65535-10+extra))
		if err == nil {
			t.Fatalf("payload of %d bytes encoded", 65535+extra)
		}
		if !bytes.Equal(out, prefix) {
			t.Fatalf("payload of %d bytes: buffer changed", 65535+extra)
		}
	}
	// Many parameters, each valid, adding up to more than 65535 bytes.
	var ps Parameters
	for i := 0; i < 20; i++ {
		ps = append(ps, KeyValue{Type: 0x21, Bytes: make([]byte, 4000)})
	}
	if _, err := AppendMessage(nil, &Subscribe{Namespace: Namespace{"a"}, Filter: Filter{Type: FilterNextGroupStart}, GroupOrder: 1, Params: ps}); err == nil {
		t.Fatalf("SUBSCRIBE with an 80000-byte payload encoded")
	}
}

// TestControlErrorsNoAllocForCounts: counts in the input (versions,
// parameters, namespace fields) are checked against the bytes present before
// anything is allocated for them.
func TestControlErrorsNoAllocForCounts(t *testing.T) {
	cases := []struct {
		name string
		typ  MessageType
		body []byte
	}{
		{"CLIENT_SETUP version count 2^62-1", TypeClientSetup, cat(vi(MaxVarint), vi(uint64(Draft14)), noParams)},
		{"CLIENT_SETUP version count 60000", TypeClientSetup, cat(vi(60000), vi(uint64(Draft14)), noParams)},
		{"CLIENT_SETUP version count 2", TypeClientSetup, cat(vi(2), by(1))},
		{"CLIENT_SETUP param count 2^62-1", TypeClientSetup, clientSetupBody(vi(MaxVarint))},
		{"CLIENT_SETUP param count 60000", TypeClientSetup, clientSetupBody(cat(vi(60000), kvv(0x40, 1)))},
		{"SERVER_SETUP param count 2^62-1", TypeServerSetup, serverSetupBody(vi(MaxVarint))},
		{"SUBSCRIBE param count 2^62-1", TypeSubscribe, subscribeBody(0, 1, filterNext, vi(MaxVarint))},
		{"SUBSCRIBE_NAMESPACE param count 30000", TypeSubscribeNamespace, cat(vi(0), nsb("a"), vi(30000), kvv(0x40, 1))},
		{"PUBLISH_NAMESPACE field count 2^62-1", TypePublishNamespace, cat(vi(0), vi(MaxVarint), lp("a"))},
		{"GOAWAY URI length 2^62-1", TypeGoAway, vi(MaxVarint)},
		{"SUBSCRIBE_ERROR reason length 2^62-1", TypeSubscribeError, cat(vi(0), vi(0), vi(MaxVarint))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			run := func() { _, err = ParseMessageBody(c.typ, c.body) }
			run()
			if SessionCode(err) != ProtocolViolation {
				t.Fatalf("err = %v, want PROTOCOL_VIOLATION", err)
			}
			if allocs := testing.AllocsPerRun(100, run); allocs > 16 {
				t.Errorf("%v allocations per parse, want a small constant", allocs)
			}
			// Bytes, not just allocation count: a make() sized by the
			// count would show here.
			const runs = 50
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for i := 0; i < runs; i++ {
				run()
			}
			runtime.ReadMemStats(&after)
			if per := (after.TotalAlloc - before.TotalAlloc) / runs; per > 2048 {
				t.Errorf("%d bytes allocated per parse, want a small constant", per)
			}
		})
	}
}
