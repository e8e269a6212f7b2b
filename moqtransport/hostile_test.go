package moqtransport_test

// Hostile and broken peers. A "raw" peer speaks MoQT by hand over a real
// moqnative connection (raw QUIC or WebTransport): it writes control
// messages built with the wire codec, or bytes made by hand where the codec
// refuses to build them, and checks how the moq-go session on the other side
// ends: the peer's next AcceptStream returns a *moqtransport.ConnError whose
// Code is the draft-14 session code (Remote true), the moq-go session's Err
// carries the same code, and the moq-go session's goroutines exit (Close
// returns promptly; TestMain's goleak check covers the rest).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/quicvarint"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// hostileWait bounds every wait for a reply or a stream event, closeWait
// the wait for a session close: loopback round trips take milliseconds, so
// a test that fails still fails fast. setupTimeout is the SetupTimeout of
// the cases about it; the other cases use a long one, so that a slow
// machine does not turn their violation into a timeout.
const setupTimeout = 300 * time.Millisecond
const (
	hostileWait = 10 * time.Second
	closeWait   = 3 * time.Second
)

// The track the hostile tests' server handler serves and never ends, so a
// SUBSCRIBE to it stays open.
var (
	heldNS   = wire.Namespace{"hostile"}
	heldName = "held"
)

func heldTracks() *moqtransport.Tracks {
	ts := &moqtransport.Tracks{}
	ts.Add(moqtransport.NewTrack(wire.FullTrackName{Namespace: heldNS, Name: heldName}, moqtransport.TrackConfig{}))
	return ts
}

// ---------------------------------------------------------------------------
// Hand-made bytes

func putVarint(b []byte, v uint64) []byte { return quicvarint.Append(b, v) }

// putBytes appends a varint length and s.
func putBytes(b []byte, s []byte) []byte { return append(putVarint(b, uint64(len(s))), s...) }

// frameControl frames body as a control message: Type (i), Length (16), body.
func frameControl(t uint64, body []byte) []byte {
	b := putVarint(nil, t)
	b = append(b, byte(len(body)>>8), byte(len(body)))
	return append(b, body...)
}

// mustEncode builds m with the codec; m must be valid.
func mustEncode(t *testing.T, m wire.Message) []byte {
	t.Helper()
	b, err := wire.AppendMessage(nil, m)
	if err != nil {
		t.Fatalf("encoding %s: %v", m.Type(), err)
	}
	return b
}

// subFields are the fields of a SUBSCRIBE, as bytes where a test breaks
// them: the codec refuses to encode the broken values.
type subFields struct {
	id      uint64
	ns      []string
	name    string
	prio    byte
	order   byte
	forward byte
	filter  []byte // filter type and its fields
	params  []byte // parameter count and the pairs
}

func validSub(id uint64, ns wire.Namespace, name string) subFields {
	return subFields{id: id, ns: ns, name: name, prio: 128, order: 1, forward: 1,
		filter: putVarint(nil, uint64(wire.FilterLargestObject)), params: putVarint(nil, 0)}
}

func (f subFields) body() []byte {
	b := putVarint(nil, f.id)
	b = putVarint(b, uint64(len(f.ns)))
	for _, s := range f.ns {
		b = putBytes(b, []byte(s))
	}
	b = putBytes(b, []byte(f.name))
	b = append(b, f.prio, f.order, f.forward)
	b = append(b, f.filter...)
	return append(b, f.params...)
}

func (f subFields) bytes() []byte { return frameControl(uint64(wire.TypeSubscribe), f.body()) }

// The hand-made SUBSCRIBE is the codec's, byte for byte, so that each broken
// variant differs from a valid message in the one field it breaks.
func TestRawSubscribeBytesMatchCodec(t *testing.T) {
	want := mustEncode(t, &wire.Subscribe{RequestID: 6, Namespace: wire.Namespace{"a", "b"}, Name: "c",
		SubscriberPriority: 128, GroupOrder: wire.GroupOrderAscending, Forward: true,
		Filter: wire.Filter{Type: wire.FilterLargestObject}})
	if got := validSub(6, wire.Namespace{"a", "b"}, "c").bytes(); !bytes.Equal(got, want) {
		t.Fatalf("hand-made SUBSCRIBE\n%x\nwant\n%x", got, want)
	}
}

// ---------------------------------------------------------------------------
// Checks shared by both directions

// expectConnClosed checks that err, from the raw peer's AcceptStream, is the
// peer closing with code.
func expectConnClosed(t *testing.T, who string, err error, code wire.SessionErrorCode) {
	t.Helper()
	var ce *moqtransport.ConnError
	if !errors.As(err, &ce) {
		t.Fatalf("%s: waiting for the close: %v, want a ConnError with %s", who, err, code)
	}
	if ce.Code != code || !ce.Remote {
		t.Errorf("%s: connection closed with %s (remote %v, reason %q), want %s from the peer",
			who, ce.Code, ce.Remote, ce.Reason, code)
		return
	}
	t.Logf("closed with %s: %s", code, ce.Reason)
}

// expectSessionEnd waits for s to end with code, then for its goroutines.
func expectSessionEnd(t *testing.T, s *moqtransport.Session, code wire.SessionErrorCode) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(closeWait):
		t.Fatalf("the moq-go session did not end; want %s", code)
	}
	if got := wire.SessionCode(s.Err()); got != code {
		t.Errorf("the moq-go session ended with %v (%s), want %s", s.Err(), got, code)
	}
	closeWithin(t, s)
}

// closeWithin closes s and fails if its goroutines do not all return soon.
func closeWithin(t *testing.T, s *moqtransport.Session) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		_ = s.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("Session.Close did not return within 3s: a session goroutine is stuck")
	}
}

// streamStopped writes to str every 20ms until the write fails, and returns
// the error and when it failed; nil after limit.
func streamStopped(str moqtransport.SendStream, limit time.Duration) (error, time.Duration) {
	start := time.Now()
	for time.Since(start) < limit {
		if _, err := str.Write([]byte{0}); err != nil {
			return err, time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, limit
}

// ---------------------------------------------------------------------------
// A raw client against a moq-go server

type hostileClient struct {
	t      *testing.T
	e      *env
	d      *moqnative.Dialed
	conn   moqtransport.Conn
	ctrl   moqtransport.Stream
	msgs   chan wire.Message
	done   chan struct{} // closed when the control reader stops
	rdErr  error         // why it stopped
	server *moqtransport.Session
	nextID uint64
}

// newHostileClient dials e and opens the control stream, sending nothing.
func newHostileClient(t *testing.T, e *env) *hostileClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	d, err := moqnative.Dial(ctx, e.url("/app"), e.clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	c := &hostileClient{t: t, e: e, d: d, conn: d.Conn, msgs: make(chan wire.Message, 256), done: make(chan struct{})}
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		_ = d.Close()
		if c.ctrl != nil {
			<-c.done // the reader ends with the connection
		}
	})
	if c.ctrl, err = d.Conn.OpenStreamSync(ctx); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(c.done)
		r := wire.NewControlReader(c.ctrl)
		for {
			m, err := r.ReadMessage()
			if err != nil {
				c.rdErr = err
				return
			}
			select {
			case c.msgs <- m:
			case <-stop:
				return
			}
		}
	}()
	return c
}

func (c *hostileClient) write(bs ...[]byte) {
	c.t.Helper()
	if _, err := c.ctrl.Write(bytes.Join(bs, nil)); err != nil {
		// The peer may close the session on an earlier byte: what it
		// closes with is checked by expectClose.
		c.t.Logf("writing to the control stream: %v", err)
	}
}

func (c *hostileClient) send(ms ...wire.Message) {
	c.t.Helper()
	var b []byte
	for _, m := range ms {
		b = append(b, mustEncode(c.t, m)...)
	}
	c.write(b)
}

// clientSetup is a valid CLIENT_SETUP granting the server 100 requests.
func (c *hostileClient) clientSetup(extra ...wire.KeyValue) *wire.ClientSetup {
	ps := wire.Parameters{}.WithVarint(wire.SetupParamMaxRequestID, 100)
	if c.conn.Protocol() == moqtransport.ProtocolQUIC {
		ps = ps.WithBytes(wire.SetupParamPath, []byte(c.d.Path))
	}
	return &wire.ClientSetup{Versions: []wire.Version{wire.Draft14}, Params: append(ps, extra...)}
}

// setup runs a valid setup and returns the server's session.
func (c *hostileClient) setup() *moqtransport.Session {
	c.t.Helper()
	c.send(c.clientSetup())
	if m, ok := c.next().(*wire.ServerSetup); !ok || m.Version != wire.Draft14 {
		c.t.Fatalf("got %v, want SERVER_SETUP draft-14", m)
	}
	select {
	case c.server = <-c.e.sessions:
	case err := <-c.e.errs:
		c.t.Fatalf("server setup: %v", err)
	case <-time.After(hostileWait):
		c.t.Fatal("the server session did not start")
	}
	return c.server
}

// next returns the next control message other than MAX_REQUEST_ID.
func (c *hostileClient) next() wire.Message {
	c.t.Helper()
	deadline := time.After(hostileWait)
	for {
		select {
		case m := <-c.msgs:
			if _, ok := m.(*wire.MaxRequestID); ok {
				continue
			}
			return m
		case <-c.done:
			c.t.Fatalf("control stream ended: %v", c.rdErr)
		case <-deadline:
			c.t.Fatal("no control message")
		}
	}
}

func (c *hostileClient) id() uint64 {
	id := c.nextID
	c.nextID += 2
	return id
}

// subscribeHeld subscribes to the held track and waits for SUBSCRIBE_OK.
func (c *hostileClient) subscribeHeld() uint64 {
	c.t.Helper()
	id := c.id()
	c.write(validSub(id, heldNS, heldName).bytes())
	if ok, isOK := c.next().(*wire.SubscribeOK); !isOK || ok.RequestID != id {
		c.t.Fatalf("got %v, want SUBSCRIBE_OK for request %d", ok, id)
	}
	return id
}

// expectAlive makes a round trip: SUBSCRIBE to a track that does not exist
// gets SUBSCRIBE_ERROR, and the session is still up.
func (c *hostileClient) expectAlive() {
	c.t.Helper()
	id := c.id()
	c.write(validSub(id, wire.Namespace{"probe"}, fmt.Sprint(id)).bytes())
	m := c.next()
	if se, ok := m.(*wire.SubscribeError); !ok || se.RequestID != id || se.Code != wire.SubscribeTrackDoesNotExist {
		c.t.Fatalf("probe SUBSCRIBE %d: got %#v, want SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST", id, m)
	}
	if err := c.server.Err(); err != nil {
		c.t.Fatalf("the server session ended: %v", err)
	}
}

// expectClose checks that the server closed the session with code: the
// raw client sees it, the server's session (or Accept) reports it, and the
// server session's goroutines end.
func (c *hostileClient) expectClose(code wire.SessionErrorCode) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	_, err := c.conn.AcceptStream(ctx)
	expectConnClosed(c.t, "raw client", err, code)
	if c.server != nil {
		expectSessionEnd(c.t, c.server, code)
		return
	}
	select {
	case err := <-c.e.errs:
		if got := wire.SessionCode(err); got != code {
			c.t.Errorf("server Accept failed with %v (%s), want %s", err, got, code)
		}
	case <-time.After(hostileWait):
		c.t.Error("server Accept did not fail")
	}
}

// ---------------------------------------------------------------------------
// Server side: setup

func TestHostileServerSetup(t *testing.T) {
	cases := []struct {
		name string
		only string // run over this transport only
		run  func(c *hostileClient)
		code wire.SessionErrorCode
	}{
		{"only draft-13 offered", "", func(c *hostileClient) {
			cs := c.clientSetup()
			cs.Versions = []wire.Version{wire.Draft13}
			c.send(cs)
		}, wire.VersionNegotiationFailed},
		{"first message SUBSCRIBE", "", func(c *hostileClient) {
			c.write(validSub(0, heldNS, heldName).bytes())
		}, wire.ProtocolViolation},
		{"first message MAX_REQUEST_ID", "", func(c *hostileClient) {
			c.send(&wire.MaxRequestID{Max: 10})
		}, wire.ProtocolViolation},
		{"PATH over WebTransport", "https", func(c *hostileClient) {
			c.send(c.clientSetup(wire.KeyValue{Type: wire.SetupParamPath, Bytes: []byte("/app")}))
		}, wire.InvalidPath},
		{"PATH without a leading slash", "moqt", func(c *hostileClient) {
			cs := c.clientSetup()
			cs.Params = cs.Params.WithBytes(wire.SetupParamPath, []byte("app"))
			c.send(cs)
		}, wire.MalformedPath},
		{"PATH with a space", "moqt", func(c *hostileClient) {
			cs := c.clientSetup()
			cs.Params = cs.Params.WithBytes(wire.SetupParamPath, []byte("/a b"))
			c.send(cs)
		}, wire.MalformedPath},
		{"no CLIENT_SETUP", "", func(c *hostileClient) {}, wire.ControlMessageTimeout},
		{"half a CLIENT_SETUP", "", func(c *hostileClient) {
			c.write(mustEncode(c.t, c.clientSetup())[:5])
		}, wire.ControlMessageTimeout},
		{"control stream FIN inside CLIENT_SETUP", "", func(c *hostileClient) {
			c.write(mustEncode(c.t, c.clientSetup())[:5])
			_ = c.ctrl.Close()
		}, wire.ProtocolViolation},
		{"CLIENT_SETUP with a trailing byte", "", func(c *hostileClient) {
			body := mustEncode(c.t, c.clientSetup())[3:] // type 0x20 is one byte, then 2 length bytes
			c.write(frameControl(uint64(wire.TypeClientSetup), append(body, 0)))
		}, wire.ProtocolViolation},
		{"CLIENT_SETUP with a duplicate MAX_REQUEST_ID", "", func(c *hostileClient) {
			cs := c.clientSetup()
			// The parameters again, with a second MAX_REQUEST_ID.
			var b []byte
			b = putVarint(b, 1)
			b = putVarint(b, uint64(wire.Draft14))
			b = putVarint(b, uint64(len(cs.Params)+1))
			for _, kv := range cs.Params {
				b, _ = wire.AppendKeyValue(b, kv)
			}
			b, _ = wire.AppendKeyValue(b, wire.KeyValue{Type: wire.SetupParamMaxRequestID, Value: 5})
			c.write(frameControl(uint64(wire.TypeClientSetup), b))
		}, wire.ProtocolViolation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, scheme string) {
				if tc.only != "" && tc.only != scheme {
					t.Skip("not defined over this transport")
				}
				timeout := 5 * time.Second
				if tc.code == wire.ControlMessageTimeout {
					timeout = setupTimeout
				}
				e := newEnv(t, scheme, &moqtransport.Config{SetupTimeout: timeout, Handler: heldTracks().Handler()})
				c := newHostileClient(t, e)
				tc.run(c)
				c.expectClose(tc.code)
			})
		})
	}
}

// ---------------------------------------------------------------------------
// Server side: after setup

func TestHostileServerControl(t *testing.T) {
	type tcase struct {
		name string
		cfg  *moqtransport.Config // nil: the held track, default limits
		run  func(c *hostileClient)
		code wire.SessionErrorCode
	}
	msgBody := func(c *hostileClient, m wire.Message) []byte {
		b := mustEncode(c.t, m)
		_, n, _ := quicvarint.Parse(b)
		return b[n+2:]
	}
	cases := []tcase{
		// Framing.
		{name: "unknown type 0x1B, rejected before its payload", run: func(c *hostileClient) {
			c.write(putVarint(nil, 0x1B), []byte{0, 100}) // 100 bytes announced, none sent
		}, code: wire.ProtocolViolation},
		{name: "unknown type 0x40", run: func(c *hostileClient) {
			c.write(frameControl(0x40, []byte{1}))
		}, code: wire.ProtocolViolation},
		{name: "MAX_REQUEST_ID with a trailing byte", run: func(c *hostileClient) {
			body := msgBody(c, &wire.MaxRequestID{Max: 200}) // 200 > 100: valid but for the byte
			c.write(frameControl(uint64(wire.TypeMaxRequestID), append(body, 0)))
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE one byte short", run: func(c *hostileClient) {
			body := validSub(0, wire.Namespace{"x"}, "y").body()
			c.write(frameControl(uint64(wire.TypeSubscribe), body[:len(body)-1]), body[len(body)-1:])
		}, code: wire.ProtocolViolation},
		{name: "control stream FIN inside a message", run: func(c *hostileClient) {
			b := validSub(0, wire.Namespace{"x"}, "y").bytes()
			c.write(b[:len(b)-3])
			_ = c.ctrl.Close()
		}, code: wire.ProtocolViolation},
		{name: "control stream FIN between messages", run: func(c *hostileClient) {
			_ = c.ctrl.Close()
		}, code: wire.ProtocolViolation},
		{name: "control stream reset", run: func(c *hostileClient) {
			c.ctrl.CancelWrite(0)
		}, code: wire.ProtocolViolation},
		{name: "control stream STOP_SENDING, then a request", run: func(c *hostileClient) {
			c.ctrl.CancelRead(0)
			time.Sleep(50 * time.Millisecond)
			c.send(&wire.Fetch{RequestID: c.id(), FetchType: wire.FetchStandalone, Namespace: wire.Namespace{"x"}, Name: "y",
				End: wire.Location{Group: 1}})
		}, code: wire.ProtocolViolation},
		{name: "second CLIENT_SETUP", run: func(c *hostileClient) {
			c.send(c.clientSetup())
		}, code: wire.ProtocolViolation},
		{name: "SERVER_SETUP from the client", run: func(c *hostileClient) {
			c.send(&wire.ServerSetup{Version: wire.Draft14})
		}, code: wire.ProtocolViolation},

		// Request IDs (§9.1).
		{name: "request ID 1 has the server's parity", run: func(c *hostileClient) {
			c.write(validSub(1, wire.Namespace{"x"}, "y").bytes())
		}, code: wire.InvalidRequestID},
		{name: "request ID 0 reused", run: func(c *hostileClient) {
			c.write(validSub(0, wire.Namespace{"x"}, "y").bytes())
			c.next()
			c.write(validSub(0, wire.Namespace{"x"}, "z").bytes())
		}, code: wire.InvalidRequestID},
		{name: "request ID 0 then 4", run: func(c *hostileClient) {
			c.write(validSub(0, wire.Namespace{"x"}, "y").bytes())
			c.next()
			c.write(validSub(4, wire.Namespace{"x"}, "z").bytes())
		}, code: wire.InvalidRequestID},
		{name: "request ID 2 with SUBSCRIBE_UPDATE skipping", run: func(c *hostileClient) {
			c.send(&wire.SubscribeUpdate{RequestID: 2, SubscriptionRequestID: 0})
		}, code: wire.InvalidRequestID},
		{name: "request ID at MAX_REQUEST_ID while request 0 is open",
			cfg: &moqtransport.Config{Handler: heldTracks().Handler(), MaxRequests: 1},
			run: func(c *hostileClient) {
				c.subscribeHeld() // ID 0 stays open; the grant is 2
				c.write(validSub(2, wire.Namespace{"x"}, "y").bytes())
			}, code: wire.TooManyRequests},
		{name: "MAX_REQUEST_ID equal to the setup grant", run: func(c *hostileClient) {
			c.send(&wire.MaxRequestID{Max: 100})
		}, code: wire.ProtocolViolation},
		{name: "MAX_REQUEST_ID decreasing", run: func(c *hostileClient) {
			c.send(&wire.MaxRequestID{Max: 200}, &wire.MaxRequestID{Max: 150})
		}, code: wire.ProtocolViolation},

		// GOAWAY (§9.4).
		{name: "GOAWAY with a URI from the client", run: func(c *hostileClient) {
			c.send(&wire.GoAway{NewSessionURI: "moqt://elsewhere/"})
		}, code: wire.ProtocolViolation},
		{name: "second GOAWAY", run: func(c *hostileClient) {
			c.send(&wire.GoAway{})
			c.expectAlive()
			c.send(&wire.GoAway{})
		}, code: wire.ProtocolViolation},
		{name: "GOAWAY URI over 8192 bytes", run: func(c *hostileClient) {
			c.write(frameControl(uint64(wire.TypeGoAway), putBytes(nil, bytes.Repeat([]byte("a"), 8193))))
		}, code: wire.ProtocolViolation},

		// Fields the codec refuses.
		{name: "SUBSCRIBE forward 2", run: func(c *hostileClient) {
			f := validSub(0, wire.Namespace{"x"}, "y")
			f.forward = 2
			c.write(f.bytes())
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE group order 3", run: func(c *hostileClient) {
			f := validSub(0, wire.Namespace{"x"}, "y")
			f.order = 3
			c.write(f.bytes())
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE filter type 5", run: func(c *hostileClient) {
			f := validSub(0, wire.Namespace{"x"}, "y")
			f.filter = putVarint(nil, 5)
			c.write(f.bytes())
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE filter type 0", run: func(c *hostileClient) {
			f := validSub(0, wire.Namespace{"x"}, "y")
			f.filter = putVarint(nil, 0)
			c.write(f.bytes())
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE namespace of 33 fields", run: func(c *hostileClient) {
			c.write(validSub(0, strings.Split(strings.Repeat("a/", 32)+"a", "/"), "y").bytes())
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE namespace of 0 fields", run: func(c *hostileClient) {
			c.write(validSub(0, nil, "y").bytes())
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE full track name over 4096 bytes", run: func(c *hostileClient) {
			c.write(validSub(0, wire.Namespace{strings.Repeat("n", 4000)}, strings.Repeat("t", 97)).bytes())
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE_ERROR with a 1025-byte reason", run: func(c *hostileClient) {
			b := putVarint(nil, 1)
			b = putVarint(b, 0)
			b = putBytes(b, bytes.Repeat([]byte("r"), 1025))
			c.write(frameControl(uint64(wire.TypeSubscribeError), b))
		}, code: wire.ProtocolViolation},
		{name: "PUBLISH_NAMESPACE_CANCEL with a 1025-byte reason", run: func(c *hostileClient) {
			// The same message with 1024 bytes is harmless (see
			// TestHostileServerSurvives): only the length is wrong.
			c.write(frameControl(uint64(wire.TypePublishNamespaceCancel), nsCancelBody(1025)))
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE with an AUTHORIZATION TOKEN that does not decode", run: func(c *hostileClient) {
			f := validSub(0, wire.Namespace{"x"}, "y")
			f.params = putVarint(nil, 1)
			f.params, _ = wire.AppendKeyValue(f.params, wire.KeyValue{Type: wire.ParamAuthorizationToken, Bytes: []byte{0x07}})
			c.write(f.bytes())
		}, code: wire.KeyValueFormattingError},
		{name: "SUBSCRIBE with a duplicate DELIVERY TIMEOUT", run: func(c *hostileClient) {
			f := validSub(0, wire.Namespace{"x"}, "y")
			f.params = putVarint(nil, 2)
			for range 2 {
				f.params, _ = wire.AppendKeyValue(f.params, wire.KeyValue{Type: wire.ParamDeliveryTimeout, Value: 100})
			}
			c.write(f.bytes())
		}, code: wire.ProtocolViolation},

		// Subscriptions (§5.1, §9.10).
		{name: "second SUBSCRIBE to the same track", run: func(c *hostileClient) {
			c.subscribeHeld()
			c.write(validSub(c.id(), heldNS, heldName).bytes())
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE_UPDATE for a subscription that never existed", run: func(c *hostileClient) {
			c.send(&wire.SubscribeUpdate{RequestID: c.id(), SubscriptionRequestID: 8, Start: wire.Location{Group: 1}})
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE_UPDATE naming itself", run: func(c *hostileClient) {
			c.send(&wire.SubscribeUpdate{RequestID: 0, SubscriptionRequestID: 0})
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE_UPDATE moving the start back", run: func(c *hostileClient) {
			id := c.id()
			f := validSub(id, heldNS, heldName)
			f.filter = putVarint(putVarint(putVarint(nil, uint64(wire.FilterAbsoluteStart)), 5), 0)
			c.write(f.bytes())
			if _, ok := c.next().(*wire.SubscribeOK); !ok {
				c.t.Fatal("want SUBSCRIBE_OK")
			}
			c.send(&wire.SubscribeUpdate{RequestID: c.id(), SubscriptionRequestID: id, Start: wire.Location{Group: 4}, Forward: true})
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE_UPDATE raising the end group", run: func(c *hostileClient) {
			id := c.id()
			f := validSub(id, heldNS, heldName)
			f.filter = putVarint(putVarint(putVarint(putVarint(nil, uint64(wire.FilterAbsoluteRange)), 5), 0), 9)
			c.write(f.bytes())
			if _, ok := c.next().(*wire.SubscribeOK); !ok {
				c.t.Fatal("want SUBSCRIBE_OK")
			}
			c.send(&wire.SubscribeUpdate{RequestID: c.id(), SubscriptionRequestID: id, Start: wire.Location{Group: 5},
				HasEndGroup: true, EndGroup: 10, Forward: true})
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE_UPDATE moving the start back, sent before SUBSCRIBE_OK", run: func(c *hostileClient) {
			// A subscriber may send SUBSCRIBE_UPDATE right behind its
			// SUBSCRIBE. The widening must be caught all the same.
			id := c.id()
			f := validSub(id, heldNS, heldName)
			f.filter = putVarint(putVarint(putVarint(nil, uint64(wire.FilterAbsoluteStart)), 5), 0)
			upd := mustEncode(c.t, &wire.SubscribeUpdate{RequestID: c.id(), SubscriptionRequestID: id, Start: wire.Location{Group: 4}, Forward: true})
			c.write(f.bytes(), upd)
		}, code: wire.ProtocolViolation},

		// FETCH (§9.16).
		{name: "FETCH of unknown fetch type 4", run: func(c *hostileClient) {
			b := putVarint(nil, 0)
			b = append(b, 1, 1) // priority, group order
			b = putVarint(b, 4)
			b = putVarint(putVarint(b, 0), 0)
			c.write(frameControl(uint64(wire.TypeFetch), putVarint(b, 0)))
		}, code: wire.ProtocolViolation},
		{name: "joining FETCH on an AbsoluteStart subscription", run: func(c *hostileClient) {
			id := c.id()
			f := validSub(id, heldNS, heldName)
			f.filter = putVarint(putVarint(putVarint(nil, uint64(wire.FilterAbsoluteStart)), 0), 0)
			c.write(f.bytes())
			if _, ok := c.next().(*wire.SubscribeOK); !ok {
				c.t.Fatal("want SUBSCRIBE_OK")
			}
			c.send(&wire.Fetch{RequestID: c.id(), FetchType: wire.FetchRelativeJoining, JoiningRequestID: id, JoiningStart: 1})
		}, code: wire.ProtocolViolation},

		// Responses to requests the server never sent.
		{name: "SUBSCRIBE_OK for request 1, never sent", run: func(c *hostileClient) {
			c.send(&wire.SubscribeOK{RequestID: 1, TrackAlias: 1, GroupOrder: wire.GroupOrderAscending})
		}, code: wire.ProtocolViolation},
		{name: "SUBSCRIBE_OK for request 0, the client's own parity", run: func(c *hostileClient) {
			c.send(&wire.SubscribeOK{RequestID: 0, TrackAlias: 1, GroupOrder: wire.GroupOrderAscending})
		}, code: wire.ProtocolViolation},
		{name: "PUBLISH_NAMESPACE_OK for a request never sent", run: func(c *hostileClient) {
			c.send(&wire.PublishNamespaceOK{RequestID: 1})
		}, code: wire.ProtocolViolation},
		{name: "PUBLISH_DONE for a subscription never made", run: func(c *hostileClient) {
			c.send(&wire.PublishDone{RequestID: 1, StatusCode: wire.DoneTrackEnded})
		}, code: wire.ProtocolViolation},

		// Streams.
		{name: "second bidirectional stream", run: func(c *hostileClient) {
			ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
			defer cancel()
			str, err := c.conn.OpenStreamSync(ctx)
			if err != nil {
				c.t.Fatal(err)
			}
			if _, err := str.Write(mustEncode(c.t, &wire.MaxRequestID{Max: 300})); err != nil {
				c.t.Logf("writing to the second stream: %v", err) // the server may have closed already
			}
		}, code: wire.ProtocolViolation},
		{name: "unknown data stream type 0x16", run: func(c *hostileClient) {
			c.uni(putVarint(putVarint(putVarint(nil, 0x16), 1), 0), []byte{0})
		}, code: wire.ProtocolViolation},
		{name: "unknown data stream type 0x1F", run: func(c *hostileClient) {
			c.uni(putVarint(nil, 0x1F))
		}, code: wire.ProtocolViolation},
		{name: "data stream FIN inside its header", run: func(c *hostileClient) {
			c.uniFIN(putVarint(putVarint(nil, 0x14), 1)) // alias, then no group
		}, code: wire.ProtocolViolation},
		// A session reads datagrams once it knows a track alias: the
		// peer's PUBLISH gives one here. Datagrams sent before wait in
		// the transport and are read then.
		{name: "datagram of unknown type 0x08", cfg: acceptPublish(), run: func(c *hostileClient) {
			c.datagrams(putVarint(putVarint(putVarint(putVarint(nil, 0x08), 1), 0), 0), []byte{0, 'x'})
			c.expectAlive() // no alias yet: nothing reads the datagrams
			c.send(&wire.Publish{RequestID: c.id(), Namespace: heldNS, Name: "mine", TrackAlias: 3, GroupOrder: wire.GroupOrderAscending, Forward: true})
		}, code: wire.ProtocolViolation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, scheme string) {
				cfg := tc.cfg
				if cfg == nil {
					cfg = &moqtransport.Config{Handler: heldTracks().Handler()}
				}
				e := newEnv(t, scheme, cfg)
				c := newHostileClient(t, e)
				c.setup()
				tc.run(c)
				c.expectClose(tc.code)
			})
		})
	}
}

// acceptPublish is a server configuration that serves the held track and
// takes every PUBLISH.
func acceptPublish() *moqtransport.Config {
	h := heldTracks().Handler()
	h.Publish = func(context.Context, *moqtransport.Session, *moqtransport.PublishRequest, *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
		return moqtransport.SubscribeOptions{}, nil
	}
	return &moqtransport.Config{Handler: h}
}

func nsCancelBody(reasonLen int) []byte {
	b := putVarint(nil, 1)
	b = putBytes(b, []byte("never-published"))
	b = putVarint(b, uint64(wire.NamespaceInternalError))
	return putBytes(b, bytes.Repeat([]byte("r"), reasonLen))
}

// uni opens a unidirectional stream and writes bs, leaving it open.
func (c *hostileClient) uni(bs ...[]byte) moqtransport.SendStream {
	c.t.Helper()
	return openUni(c.t, c.conn, bs...)
}

// uniFIN opens a unidirectional stream, writes bs and ends it with a FIN.
func (c *hostileClient) uniFIN(bs ...[]byte) {
	c.t.Helper()
	finishStream(c.t, c.uni(bs...))
}

// finishStream ends str with a FIN. The receiver may have stopped the stream
// already (STOP_SENDING), which is no failure of the test: what counts is
// what the receiver does.
func finishStream(t *testing.T, str moqtransport.SendStream) {
	t.Helper()
	if err := str.Close(); err != nil {
		t.Logf("closing the stream: %v", err)
	}
}

// datagrams sends b every 20ms until the connection closes (a datagram can
// be lost).
func (c *hostileClient) datagrams(bs ...[]byte) { sendDatagrams(c.t, c.conn, bytes.Join(bs, nil)) }

func openUni(t *testing.T, conn moqtransport.Conn, bs ...[]byte) moqtransport.SendStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	str, err := conn.OpenUniStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := str.Write(bytes.Join(bs, nil)); err != nil {
		t.Logf("writing to the stream: %v", err) // stopped by the receiver already
	}
	return str
}

func sendDatagrams(t *testing.T, conn moqtransport.Conn, b []byte) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { <-done })
	go func() {
		defer close(done)
		for i := 0; i < 100; i++ {
			if conn.SendDatagram(b) != nil {
				return
			}
			select {
			case <-conn.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
}

// Things a peer may do that must not end the session.
func TestHostileServerSurvives(t *testing.T) {
	cases := []struct {
		name string
		run  func(c *hostileClient)
	}{
		{"REQUESTS_BLOCKED and an increasing MAX_REQUEST_ID", func(c *hostileClient) {
			c.send(&wire.RequestsBlocked{Max: 100}, &wire.MaxRequestID{Max: 102}, &wire.MaxRequestID{Max: 500})
		}},
		{"one GOAWAY without a URI", func(c *hostileClient) {
			c.send(&wire.GoAway{})
		}},
		{"PUBLISH_NAMESPACE_CANCEL with a 1024-byte reason for an unknown namespace", func(c *hostileClient) {
			c.write(frameControl(uint64(wire.TypePublishNamespaceCancel), nsCancelBody(1024)))
		}},
		{"SUBSCRIBE with a valid AUTHORIZATION TOKEN", func(c *hostileClient) {
			f := validSub(c.id(), wire.Namespace{"x"}, "y")
			kv, err := wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Type: 1, Value: []byte("secret")})
			if err != nil {
				c.t.Fatal(err)
			}
			f.params, _ = wire.AppendKeyValue(putVarint(nil, 1), kv)
			c.write(f.bytes())
			if se, ok := c.next().(*wire.SubscribeError); !ok || se.Code != wire.SubscribeTrackDoesNotExist {
				c.t.Fatalf("got %#v, want SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST", se)
			}
		}},
		{"SUBSCRIBE_UPDATE narrowing a subscription", func(c *hostileClient) {
			id := c.id()
			f := validSub(id, heldNS, heldName)
			f.filter = putVarint(putVarint(putVarint(putVarint(nil, uint64(wire.FilterAbsoluteRange)), 5), 0), 9)
			c.write(f.bytes())
			if _, ok := c.next().(*wire.SubscribeOK); !ok {
				c.t.Fatal("want SUBSCRIBE_OK")
			}
			c.send(&wire.SubscribeUpdate{RequestID: c.id(), SubscriptionRequestID: id, Start: wire.Location{Group: 6},
				HasEndGroup: true, EndGroup: 8, Forward: true})
		}},
		{"UNSUBSCRIBE, FETCH_CANCEL, UNSUBSCRIBE_NAMESPACE and PUBLISH_NAMESPACE_DONE for nothing", func(c *hostileClient) {
			c.send(&wire.Unsubscribe{RequestID: 40}, &wire.FetchCancel{RequestID: 40},
				&wire.UnsubscribeNamespace{Prefix: wire.Namespace{"x"}}, &wire.PublishNamespaceDone{Namespace: wire.Namespace{"x"}})
		}},
		{"FETCH stream for no fetch", func(c *hostileClient) {
			c.uniFIN(putVarint(putVarint(nil, wire.StreamTypeFetch), 0))
		}},
		{"datagram for an unknown alias", func(c *hostileClient) {
			b, err := wire.AppendDatagram(nil, &wire.Datagram{TrackAlias: 77, Payload: []byte("x")})
			if err != nil {
				c.t.Fatal(err)
			}
			for range 3 {
				_ = c.conn.SendDatagram(b)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, scheme string) {
				e := newEnv(t, scheme, &moqtransport.Config{Handler: heldTracks().Handler()})
				c := newHostileClient(t, e)
				c.setup()
				tc.run(c)
				c.expectAlive()
			})
		})
	}
}

// Every request gets its answer, never silence: the ones this endpoint
// does not support get their error message with NOT_SUPPORTED, and the
// request IDs stay in step.
func TestHostileServerEveryRequestAnswered(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := newEnv(t, scheme, &moqtransport.Config{Handler: heldTracks().Handler()})
		c := newHostileClient(t, e)
		c.setup()
		fetch := c.id()
		c.send(&wire.Fetch{RequestID: fetch, SubscriberPriority: 1, GroupOrder: wire.GroupOrderAscending, FetchType: wire.FetchStandalone,
			Namespace: wire.Namespace{"no"}, Name: "such", End: wire.Location{Group: 3}})
		if m, ok := c.next().(*wire.FetchError); !ok || m.RequestID != fetch || m.Code != wire.FetchTrackDoesNotExist {
			t.Errorf("FETCH of an unknown track: got %#v, want FETCH_ERROR TRACK_DOES_NOT_EXIST", m)
		}
		fetch = c.id()
		c.send(&wire.Fetch{RequestID: fetch, FetchType: wire.FetchRelativeJoining, JoiningRequestID: 40, JoiningStart: 1})
		if m, ok := c.next().(*wire.FetchError); !ok || m.RequestID != fetch || m.Code != wire.FetchInvalidJoiningRequestID {
			t.Errorf("joining FETCH of no subscription: got %#v, want FETCH_ERROR INVALID_JOINING_REQUEST_ID", m)
		}
		ts := c.id()
		c.send(&wire.TrackStatus{RequestID: ts, Namespace: heldNS, Name: heldName, Forward: true, Filter: wire.Filter{Type: wire.FilterLargestObject}})
		if m, ok := c.next().(*wire.TrackStatusOK); !ok || m.RequestID != ts || m.ContentExists {
			t.Errorf("TRACK_STATUS: got %#v, want TRACK_STATUS_OK without content", m)
		}
		ts = c.id()
		c.send(&wire.TrackStatus{RequestID: ts, Namespace: wire.Namespace{"no"}, Name: "such", Forward: true, Filter: wire.Filter{Type: wire.FilterLargestObject}})
		if m, ok := c.next().(*wire.TrackStatusError); !ok || m.RequestID != ts || m.Code != wire.SubscribeTrackDoesNotExist {
			t.Errorf("TRACK_STATUS of an unknown track: got %#v, want TRACK_STATUS_ERROR TRACK_DOES_NOT_EXIST", m)
		}
		sn := c.id()
		c.send(&wire.SubscribeNamespace{RequestID: sn, Prefix: heldNS})
		if m, ok := c.next().(*wire.SubscribeNamespaceError); !ok || m.RequestID != sn || m.Code != wire.SubscribeNamespaceNotSupported {
			t.Errorf("SUBSCRIBE_NAMESPACE: got %#v, want SUBSCRIBE_NAMESPACE_ERROR NOT_SUPPORTED", m)
		}
		pub := c.id()
		c.send(&wire.Publish{RequestID: pub, Namespace: heldNS, Name: "mine", TrackAlias: 3, GroupOrder: wire.GroupOrderAscending, Forward: true})
		if m, ok := c.next().(*wire.PublishError); !ok || m.RequestID != pub || m.Code != wire.PublishNotSupported {
			t.Errorf("PUBLISH: got %#v, want PUBLISH_ERROR NOT_SUPPORTED", m)
		}
		pn := c.id()
		c.send(&wire.PublishNamespace{RequestID: pn, Namespace: heldNS})
		if m, ok := c.next().(*wire.PublishNamespaceError); !ok || m.RequestID != pn || m.Code != wire.NamespaceNotSupported {
			t.Errorf("PUBLISH_NAMESPACE to a Tracks handler: got %#v, want PUBLISH_NAMESPACE_ERROR NOT_SUPPORTED", m)
		}
		c.expectAlive()
	})
}

// A refused request frees its request ID: with a window of one request, a
// client can send refused requests one after the other, each time waiting
// for the MAX_REQUEST_ID that the refusal triggers.
func TestHostileServerWindowOfOne(t *testing.T) {
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: heldTracks().Handler(), MaxRequests: 1})
	c := newHostileClient(t, e)
	c.setup()
	for i := range 5 {
		id := c.id()
		c.send(&wire.Fetch{RequestID: id, FetchType: wire.FetchStandalone, Namespace: heldNS, Name: heldName, End: wire.Location{Group: 1}})
		var gotErr, gotMax bool
		for !(gotErr && gotMax) {
			select {
			case m := <-c.msgs:
				switch m := m.(type) {
				case *wire.FetchError:
					gotErr = m.RequestID == id
				case *wire.MaxRequestID:
					gotMax = m.Max > id+2
				}
			case <-time.After(hostileWait):
				t.Fatalf("request %d: FETCH_ERROR %v, MAX_REQUEST_ID %v", i, gotErr, gotMax)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Server side: data streams from the peer and what they cost

// streamsStopped reports which of strs the receiver stopped (STOP_SENDING):
// a write fails once it has.
func streamsStopped(strs []moqtransport.SendStream, stopped []bool) int {
	n := 0
	for i, s := range strs {
		if !stopped[i] {
			if _, err := s.Write([]byte{0}); err != nil {
				stopped[i] = true
			}
		}
		if stopped[i] {
			n++
		}
	}
	return n
}

// A peer opens 200 data streams for an alias nobody announced and sends
// nothing after the header. The session holds at most MaxPendingStreams of
// them waiting for the alias and stops the others at once; the waiting ones
// are stopped after PendingStreamTimeout. Measured: which streams got
// STOP_SENDING and when, the goroutine count, and a control round trip.
// (The server takes PUBLISH, so a PUBLISH to come could name the alias
// and the streams may wait; without it they are stopped at once, see
// TestRawServerStreamNoRequestCanNameStoppedAtOnce.)
func TestHostilePendingStreamsBounded(t *testing.T) {
	const (
		streams = 200
		maxWait = 16
		timeout = time.Second
	)
	forEachTransport(t, func(t *testing.T, scheme string) {
		h := heldTracks().Handler()
		h.Publish = refusePublish
		e := newEnv(t, scheme, &moqtransport.Config{Handler: h, MaxPendingStreams: maxWait, PendingStreamTimeout: timeout})
		c := newHostileClient(t, e)
		c.setup()
		before := runtime.NumGoroutine()
		start := time.Now()
		hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 99, GroupID: 1})
		strs := make([]moqtransport.SendStream, streams)
		for i := range strs {
			strs[i] = c.uni(hdr)
		}
		stopped := make([]bool, streams)
		n := 0
		for n < streams-maxWait && time.Since(start) < timeout/2 {
			time.Sleep(20 * time.Millisecond)
			n = streamsStopped(strs, stopped)
		}
		peak := runtime.NumGoroutine()
		elapsed := time.Since(start)
		t.Logf("%s: %d of %d streams stopped after %v; goroutines %d before, %d with the streams held", scheme, n, streams, elapsed.Round(time.Millisecond), before, peak)
		if n < streams-maxWait {
			t.Errorf("only %d streams stopped after %v: the session holds %d waiting, more than MaxPendingStreams %d", n, elapsed, streams-n, maxWait)
		}
		if elapsed < timeout && n == streams {
			t.Errorf("all streams stopped after %v, before PendingStreamTimeout %v: none was held for its alias", elapsed, timeout)
		}
		if grow := peak - before; grow > maxWait+32 {
			t.Errorf("goroutines grew by %d with %d streams held (limit %d waiting): bound is MaxPendingStreams plus a margin", grow, streams-n, maxWait)
		}
		c.expectAlive() // the control stream is unaffected
		for n < streams && time.Since(start) < timeout+3*time.Second {
			time.Sleep(50 * time.Millisecond)
			n = streamsStopped(strs, stopped)
		}
		if n != streams {
			t.Errorf("%d streams still held %v after they opened (PendingStreamTimeout %v)", streams-n, time.Since(start), timeout)
		}
		c.expectAlive()
	})
}

// Streams that stop inside their header (the stream type and nothing else)
// must not pin a goroutine each forever: at most 16*MaxPendingStreams of
// them wait at once (the session's header-wait limit), and each is stopped
// after PendingStreamTimeout. Raw QUIC only: the streams are opened with quic-go
// directly, whose SendStream.Context ends when the peer sends STOP_SENDING,
// so the test observes the stop without writing (any byte written would
// complete the header).
func TestHostileHeaderlessStreamsBounded(t *testing.T) {
	const (
		streams  = 200
		maxWait  = 4  // MaxPendingStreams
		maxHeads = 64 // 16 * MaxPendingStreams wait for a header at once
		timeout  = 500 * time.Millisecond
	)
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: heldTracks().Handler(), MaxPendingStreams: maxWait, PendingStreamTimeout: timeout})
	c := newHostileClient(t, e)
	c.setup()
	qc, ok := moqnative.QUICConn(c.conn)
	if !ok {
		t.Fatal("no QUIC connection")
	}
	before := runtime.NumGoroutine()
	start := time.Now()
	strs := make([]*quic.SendStream, streams)
	for i := range strs {
		str, err := qc.OpenUniStreamSync(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		// SUBGROUP_HEADER type 0x14: alias, group, subgroup and priority to come.
		if _, err := str.Write(putVarint(nil, 0x14)); err != nil {
			t.Fatal(err)
		}
		strs[i] = str
	}
	c.expectAlive()
	time.Sleep(100 * time.Millisecond)
	peak := runtime.NumGoroutine()
	stopped := func() int {
		n := 0
		for _, str := range strs {
			if str.Context().Err() != nil {
				n++
			}
		}
		return n
	}
	n := stopped()
	for n < streams && time.Since(start) < timeout+3*time.Second {
		time.Sleep(50 * time.Millisecond)
		n = stopped()
	}
	t.Logf("goroutines %d before, %d with %d header-less streams open; %d stopped after %v",
		before, peak, streams, n, time.Since(start).Round(time.Millisecond))
	if grow := peak - before; grow > maxHeads+32 {
		t.Errorf("goroutines grew by %d for %d streams stuck in their header (limit %d): each pins a goroutine and a 2 KiB reader",
			grow, streams, maxHeads)
	}
	if n != streams {
		t.Errorf("%d of %d streams stuck in their header were never stopped (PendingStreamTimeout %v)", streams-n, streams, timeout)
	}
}

// A subscriber that never reads its data streams: the track publishes 2000
// objects at once, in 200 groups of 10 (one stream each), with the default
// track cache (16 groups, 32 MiB). What the process holds afterwards is
// bounded by the track cache and QUIC flow control (the raw client's
// receive windows, filled with unread data, are in this process too), not
// by the amount published. Measured: HeapInuse after a GC, before and after.
func TestHostileSlowSubscriberMemory(t *testing.T) {
	for _, size := range []int{1 << 10, 16 << 10} {
		t.Run(fmt.Sprintf("%dKiB", size>>10), func(t *testing.T) {
			name := wire.FullTrackName{Namespace: heldNS, Name: "firehose"}
			tracks := heldTracks()
			tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
			tracks.Add(tr)
			e := newEnv(t, "moqt", &moqtransport.Config{Handler: tracks.Handler()})
			c := newHostileClient(t, e)
			server := c.setup()
			id := c.id()
			c.write(validSub(id, name.Namespace, name.Name).bytes())
			if _, ok := c.next().(*wire.SubscribeOK); !ok {
				t.Fatal("want SUBSCRIBE_OK")
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			gBefore := runtime.NumGoroutine()
			const groups, perGroup = 200, 10
			for g := range uint64(groups) {
				w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for i := range uint64(perGroup) {
					if err := w.WriteObject(i, make([]byte, size), nil); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(500 * time.Millisecond) // the server writes until flow control stops it
			runtime.GC()
			runtime.ReadMemStats(&after)
			grow := int64(after.HeapInuse) - int64(before.HeapInuse)
			published := groups * perGroup * size
			t.Logf("published %.1f MiB; HeapInuse %.1f MiB -> %.1f MiB (%+.1f MiB); track cache %+v; goroutines %d -> %d",
				float64(published)/(1<<20), toMiB(before.HeapInuse), toMiB(after.HeapInuse), float64(grow)/(1<<20),
				tr.Cache().Stats(), gBefore, runtime.NumGoroutine())
			if grow > 64<<20 {
				t.Errorf("heap grew by %.1f MiB for a subscriber that reads nothing; want < 64 MiB", float64(grow)/(1<<20))
			}
			if g := runtime.NumGoroutine() - gBefore; g > 16 {
				t.Errorf("goroutines grew by %d serving one subscription", g)
			}
			if server.Err() != nil {
				t.Fatalf("server session ended: %v", server.Err())
			}
			closeWithin(t, server) // a writer blocked on flow control must not hold Close up
		})
	}
}

func toMiB(v uint64) float64 { return float64(v) / (1 << 20) }

// A subscriber that does not read a big subgroup, then UNSUBSCRIBEs. The
// publisher "MUST reset any open streams associated with the SUBSCRIBE" and
// ends with PUBLISH_DONE, even while its writer is blocked by flow control.
func TestHostileUnsubscribeWhileFlowControlled(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		name := wire.FullTrackName{Namespace: heldNS, Name: "big"}
		tracks := heldTracks()
		tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
		tracks.Add(tr)
		e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler()})
		c := newHostileClient(t, e)
		c.setup()
		id := c.id()
		c.write(validSub(id, name.Namespace, name.Name).bytes())
		if _, ok := c.next().(*wire.SubscribeOK); !ok {
			t.Fatal("want SUBSCRIBE_OK")
		}
		// 1 MiB on one stream: over the 512 KiB stream window, under the
		// 2 MiB connection window, so the control stream still flows.
		w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(1024) {
			if err := w.WriteObject(i, make([]byte, 1024), nil); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(200 * time.Millisecond)
		c.send(&wire.Unsubscribe{RequestID: id})
		deadline := time.After(closeWait)
		for {
			select {
			case m := <-c.msgs:
				if _, ok := m.(*wire.MaxRequestID); ok {
					continue
				}
				if d, ok := m.(*wire.PublishDone); !ok || d.RequestID != id || d.StatusCode != wire.DoneSubscriptionEnded {
					t.Fatalf("after UNSUBSCRIBE: got %#v, want PUBLISH_DONE SUBSCRIPTION_ENDED", m)
				}
				return
			case <-deadline:
				t.Fatalf("no PUBLISH_DONE %v after UNSUBSCRIBE: the subscription's writer is stuck on flow control and nothing resets its stream", closeWait)
			}
		}
	})
}

// ---------------------------------------------------------------------------
// A raw server against a moq-go client

type hostileServer struct {
	t      *testing.T
	conn   moqtransport.Conn // the server's side of the connection
	ctrl   moqtransport.Stream
	msgs   chan wire.Message
	done   chan struct{}
	rdErr  error
	setup  *wire.ClientSetup
	client *moqtransport.Session // set once Connect returned
	cErr   error
	conned chan struct{} // closed when Connect returned
}

// newHostileServer listens, dials it with a moq-go client session (Connect runs
// in the background) and reads the client's CLIENT_SETUP.
func newHostileServer(t *testing.T, scheme string, cfg moqtransport.Config) *hostileServer {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	fp, _ := srv.Fingerprint()
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	d, err := moqnative.Dial(ctx, fmt.Sprintf("%s://%s/app", scheme, srv.Addr()),
		moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Path, cfg.Authority = d.Path, d.Authority
	rs := &hostileServer{t: t, msgs: make(chan wire.Message, 256), conned: make(chan struct{})}
	go func() {
		defer close(rs.conned)
		rs.client, rs.cErr = moqtransport.Connect(context.Background(), d.Conn, &cfg)
	}()
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		_ = d.Close()
		<-rs.conned
		if rs.client != nil {
			_ = rs.client.Close()
		}
		if rs.conn != nil {
			_ = rs.conn.CloseWithError(0, "")
		}
		if rs.done != nil {
			<-rs.done
		}
	})
	in, err := srv.Accept(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rs.conn = in.Conn
	if rs.ctrl, err = in.Conn.AcceptStream(ctx); err != nil {
		t.Fatal(err)
	}
	rs.done = make(chan struct{})
	go func() {
		defer close(rs.done)
		r := wire.NewControlReader(rs.ctrl)
		for {
			m, err := r.ReadMessage()
			if err != nil {
				rs.rdErr = err
				return
			}
			select {
			case rs.msgs <- m:
			case <-stop:
				return
			}
		}
	}()
	cs, ok := rs.next().(*wire.ClientSetup)
	if !ok {
		t.Fatalf("first message from the client is not CLIENT_SETUP")
	}
	rs.setup = cs
	return rs
}

func (rs *hostileServer) next() wire.Message {
	rs.t.Helper()
	deadline := time.After(hostileWait)
	for {
		select {
		case m := <-rs.msgs:
			if _, ok := m.(*wire.MaxRequestID); ok {
				continue
			}
			return m
		case <-rs.done:
			rs.t.Fatalf("control stream ended: %v", rs.rdErr)
		case <-deadline:
			rs.t.Fatal("no control message")
		}
	}
}

func (rs *hostileServer) write(bs ...[]byte) {
	rs.t.Helper()
	if _, err := rs.ctrl.Write(bytes.Join(bs, nil)); err != nil {
		// The peer may close the session on an earlier byte: what it
		// closes with is checked by expectClose.
		rs.t.Logf("writing to the control stream: %v", err)
	}
}

func (rs *hostileServer) send(ms ...wire.Message) {
	rs.t.Helper()
	var b []byte
	for _, m := range ms {
		b = append(b, mustEncode(rs.t, m)...)
	}
	rs.write(b)
}

func serverSetup(extra ...wire.KeyValue) *wire.ServerSetup {
	return &wire.ServerSetup{Version: wire.Draft14, Params: append(wire.Parameters{{Type: wire.SetupParamMaxRequestID, Value: 100}}, extra...)}
}

// connect answers with a valid SERVER_SETUP and returns the client session.
func (rs *hostileServer) connect() *moqtransport.Session {
	rs.t.Helper()
	rs.send(serverSetup())
	select {
	case <-rs.conned:
	case <-time.After(hostileWait):
		rs.t.Fatal("Connect did not return")
	}
	if rs.cErr != nil {
		rs.t.Fatalf("Connect: %v", rs.cErr)
	}
	return rs.client
}

// expectClose checks that the client closed the session with code.
func (rs *hostileServer) expectClose(code wire.SessionErrorCode) {
	rs.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), closeWait)
	defer cancel()
	_, err := rs.conn.AcceptStream(ctx)
	expectConnClosed(rs.t, "raw server", err, code)
	select {
	case <-rs.conned:
	case <-time.After(hostileWait):
		rs.t.Fatal("Connect did not return")
	}
	if rs.client == nil {
		if got := wire.SessionCode(rs.cErr); got != code {
			rs.t.Errorf("Connect failed with %v (%s), want %s", rs.cErr, got, code)
		}
		return
	}
	expectSessionEnd(rs.t, rs.client, code)
}

// subscribe runs client.Subscribe in the background and returns the
// SUBSCRIBE the raw server read, and where the result will arrive.
func (rs *hostileServer) subscribe(name string) (*wire.Subscribe, chan subResult) {
	rs.t.Helper()
	ch := make(chan subResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	go func() {
		defer cancel()
		sub, err := rs.client.Subscribe(ctx, heldNS, name, moqtransport.SubscribeOptions{})
		ch <- subResult{sub, err}
	}()
	rs.t.Cleanup(func() { <-ch })
	m, ok := rs.next().(*wire.Subscribe)
	if !ok {
		rs.t.Fatalf("got %v, want SUBSCRIBE", m)
	}
	return m, ch
}

// fetch runs client.Fetch in the background and returns the FETCH the raw
// server read, and where the result will arrive.
func (rs *hostileServer) fetch(opts moqtransport.FetchOptions) (*wire.Fetch, chan error) {
	rs.t.Helper()
	return rs.fetchFor(opts, hostileWait)
}

// fetchFor is fetch with the client giving up after d.
func (rs *hostileServer) fetchFor(opts moqtransport.FetchOptions, d time.Duration) (*wire.Fetch, chan error) {
	rs.t.Helper()
	ch := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	go func() {
		defer cancel()
		_, err := rs.client.Fetch(ctx, opts)
		ch <- err
	}()
	rs.t.Cleanup(func() { <-ch })
	m, ok := rs.next().(*wire.Fetch)
	if !ok {
		rs.t.Fatalf("got %v, want FETCH", m)
	}
	return m, ch
}

type subResult struct {
	sub *moqtransport.Subscription
	err error
}

func waitSubscribe(t *testing.T, ch chan subResult) subResult {
	t.Helper()
	select {
	case r := <-ch:
		ch <- r // for the cleanup
		return r
	case <-time.After(hostileWait):
		t.Fatal("Subscribe did not return")
	}
	return subResult{}
}

// subscribed subscribes to name and answers SUBSCRIBE_OK with alias.
func (rs *hostileServer) subscribed(name string, alias uint64) *moqtransport.Subscription {
	rs.t.Helper()
	req, ch := rs.subscribe(name)
	rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: alias, GroupOrder: wire.GroupOrderAscending})
	r := waitSubscribe(rs.t, ch)
	if r.err != nil {
		rs.t.Fatalf("Subscribe: %v", r.err)
	}
	return r.sub
}

// ---------------------------------------------------------------------------
// Client side: setup

func TestRawServerSetup(t *testing.T) {
	cases := []struct {
		name string
		run  func(rs *hostileServer)
		code wire.SessionErrorCode
	}{
		{"version not offered", func(rs *hostileServer) {
			ss := serverSetup()
			ss.Version = wire.Draft13
			rs.send(ss)
		}, wire.VersionNegotiationFailed},
		{"PATH from the server", func(rs *hostileServer) {
			rs.send(serverSetup(wire.KeyValue{Type: wire.SetupParamPath, Bytes: []byte("/app")}))
		}, wire.InvalidPath},
		{"first message MAX_REQUEST_ID", func(rs *hostileServer) {
			rs.send(&wire.MaxRequestID{Max: 10})
		}, wire.ProtocolViolation},
		{"first message SUBSCRIBE", func(rs *hostileServer) {
			rs.write(validSub(1, heldNS, heldName).bytes())
		}, wire.ProtocolViolation},
		{"first message CLIENT_SETUP", func(rs *hostileServer) {
			rs.send(&wire.ClientSetup{Versions: []wire.Version{wire.Draft14}})
		}, wire.ProtocolViolation},
		{"no SERVER_SETUP", func(rs *hostileServer) {}, wire.ControlMessageTimeout},
		{"half a SERVER_SETUP", func(rs *hostileServer) {
			rs.write(mustEncode(rs.t, serverSetup())[:4])
		}, wire.ControlMessageTimeout},
		{"control stream FIN before SERVER_SETUP", func(rs *hostileServer) {
			_ = rs.ctrl.Close()
		}, wire.ProtocolViolation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, scheme string) {
				timeout := 5 * time.Second
				if tc.code == wire.ControlMessageTimeout {
					timeout = setupTimeout
				}
				rs := newHostileServer(t, scheme, moqtransport.Config{SetupTimeout: timeout})
				if v := rs.setup.Versions; len(v) != 1 || v[0] != wire.Draft14 {
					t.Errorf("CLIENT_SETUP offers %v, want [draft-14]", v)
				}
				_, hasPath := rs.setup.Params.Get(wire.SetupParamPath)
				if hasPath != (scheme == "moqt") {
					t.Errorf("CLIENT_SETUP over %s has PATH: %v", scheme, hasPath)
				}
				tc.run(rs)
				rs.expectClose(tc.code)
			})
		})
	}
}

// ---------------------------------------------------------------------------
// Client side: after setup

func TestRawServerControl(t *testing.T) {
	cases := []struct {
		name string
		run  func(rs *hostileServer)
		code wire.SessionErrorCode
	}{
		{"second SERVER_SETUP", func(rs *hostileServer) {
			rs.send(serverSetup())
		}, wire.ProtocolViolation},
		{"SUBSCRIBE with the client's parity", func(rs *hostileServer) {
			rs.write(validSub(0, heldNS, heldName).bytes())
		}, wire.InvalidRequestID},
		{"SUBSCRIBE with request ID 3 first", func(rs *hostileServer) {
			rs.write(validSub(3, heldNS, heldName).bytes())
		}, wire.InvalidRequestID},
		{"MAX_REQUEST_ID not increasing", func(rs *hostileServer) {
			rs.send(&wire.MaxRequestID{Max: 100})
		}, wire.ProtocolViolation},
		{"second GOAWAY", func(rs *hostileServer) {
			rs.send(&wire.GoAway{NewSessionURI: "moqt://a/"}, &wire.GoAway{})
		}, wire.ProtocolViolation},
		{"SUBSCRIBE_OK for a request never sent", func(rs *hostileServer) {
			rs.send(&wire.SubscribeOK{RequestID: 0, TrackAlias: 1, GroupOrder: wire.GroupOrderAscending})
		}, wire.ProtocolViolation},
		{"SUBSCRIBE_ERROR for a request never sent", func(rs *hostileServer) {
			rs.send(&wire.SubscribeError{RequestID: 4, Code: wire.SubscribeInternalError})
		}, wire.ProtocolViolation},
		{"PUBLISH_DONE for a subscription never made", func(rs *hostileServer) {
			rs.send(&wire.PublishDone{RequestID: 0, StatusCode: wire.DoneTrackEnded})
		}, wire.ProtocolViolation},
		{"SUBSCRIBE_OK with group order 0", func(rs *hostileServer) {
			req, _ := rs.subscribe("t")
			b := putVarint(nil, req.RequestID)
			b = putVarint(b, 1) // alias
			b = putVarint(b, 0) // expires
			b = append(b, 0, 0) // group order 0 (not allowed here), content exists 0
			b = putVarint(b, 0) // parameters
			rs.write(frameControl(uint64(wire.TypeSubscribeOK), b))
		}, wire.ProtocolViolation},
		{"SUBSCRIBE_ERROR with a 1025-byte reason", func(rs *hostileServer) {
			req, _ := rs.subscribe("t")
			b := putVarint(nil, req.RequestID)
			b = putVarint(b, uint64(wire.SubscribeTrackDoesNotExist))
			b = putBytes(b, bytes.Repeat([]byte("r"), 1025))
			rs.write(frameControl(uint64(wire.TypeSubscribeError), b))
		}, wire.ProtocolViolation},
		{"two responses to one SUBSCRIBE", func(rs *hostileServer) {
			req, ch := rs.subscribe("t")
			rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 1, GroupOrder: wire.GroupOrderAscending})
			if r := waitSubscribe(rs.t, ch); r.err != nil {
				rs.t.Fatal(r.err)
			}
			rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 2, GroupOrder: wire.GroupOrderAscending})
		}, wire.ProtocolViolation},
		{"SUBSCRIBE_ERROR after SUBSCRIBE_OK", func(rs *hostileServer) {
			req, ch := rs.subscribe("t")
			rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 1, GroupOrder: wire.GroupOrderAscending})
			if r := waitSubscribe(rs.t, ch); r.err != nil {
				rs.t.Fatal(r.err)
			}
			rs.send(&wire.SubscribeError{RequestID: req.RequestID, Code: wire.SubscribeInternalError})
		}, wire.ProtocolViolation},
		{"one track alias for two subscriptions", func(rs *hostileServer) {
			rs.subscribed("a", 5)
			req, _ := rs.subscribe("b")
			rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 5, GroupOrder: wire.GroupOrderAscending})
		}, wire.DuplicateTrackAlias},

		{"FETCH_OK in answer to a SUBSCRIBE", func(rs *hostileServer) {
			req, _ := rs.subscribe("t")
			rs.send(&wire.FetchOK{RequestID: req.RequestID, GroupOrder: wire.GroupOrderAscending, End: wire.Location{Group: 1}})
		}, wire.ProtocolViolation},
		{"FETCH_OK whose end is before the start", func(rs *hostileServer) {
			req, _ := rs.fetch(moqtransport.FetchOptions{Namespace: heldNS, Name: "t", Start: wire.Location{Group: 5}, End: wire.Location{Group: 6}})
			rs.send(&wire.FetchOK{RequestID: req.RequestID, GroupOrder: wire.GroupOrderAscending, End: wire.Location{Group: 4, Object: 1}})
		}, wire.ProtocolViolation},
		{"two streams for one FETCH", func(rs *hostileServer) {
			req, ch := rs.fetch(moqtransport.FetchOptions{Namespace: heldNS, Name: "t", End: wire.Location{Group: 1}})
			rs.send(&wire.FetchOK{RequestID: req.RequestID, GroupOrder: wire.GroupOrderAscending, End: wire.Location{Group: 1}})
			select {
			case err := <-ch:
				ch <- err
				if err != nil {
					rs.t.Fatal(err)
				}
			case <-time.After(hostileWait):
				rs.t.Fatal("Fetch did not return")
			}
			hdr, _ := wire.AppendFetchHeader(nil, req.RequestID)
			openUni(rs.t, rs.conn, hdr)
			openUni(rs.t, rs.conn, hdr)
		}, wire.ProtocolViolation},
		{"fetch stream FIN in the middle of an object", func(rs *hostileServer) {
			req, ch := rs.fetch(moqtransport.FetchOptions{Namespace: heldNS, Name: "t", End: wire.Location{Group: 1}})
			rs.send(&wire.FetchOK{RequestID: req.RequestID, GroupOrder: wire.GroupOrderAscending, End: wire.Location{Group: 1}})
			select {
			case err := <-ch:
				ch <- err
			case <-time.After(hostileWait):
				rs.t.Fatal("Fetch did not return")
			}
			hdr, _ := wire.AppendFetchHeader(nil, req.RequestID)
			obj, _ := wire.AppendFetchObject(nil, &wire.ObjectHeader{PayloadLength: 10})
			finishStream(rs.t, openUni(rs.t, rs.conn, hdr, obj, []byte("abc")))
		}, wire.ProtocolViolation},

		// Data plane.
		{"unknown stream type 0x16", func(rs *hostileServer) {
			rs.subscribed("t", 7)
			openUni(rs.t, rs.conn, putVarint(putVarint(putVarint(nil, 0x16), 7), 0), []byte{0})
		}, wire.ProtocolViolation},
		{"object status 2", func(rs *hostileServer) {
			rs.subscribed("t", 7)
			hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 7})
			openUni(rs.t, rs.conn, hdr, putVarint(putVarint(putVarint(nil, 0), 0), 2)) // delta 0, length 0, status 2
		}, wire.ProtocolViolation},
		{"FIN in the middle of an object", func(rs *hostileServer) {
			rs.subscribed("t", 7)
			hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 7})
			str := openUni(rs.t, rs.conn, hdr, putVarint(putVarint(nil, 0), 10), []byte("abc")) // 10 bytes announced, 3 sent
			finishStream(rs.t, str)
		}, wire.ProtocolViolation},
		{"FIN in the middle of an object's extensions", func(rs *hostileServer) {
			rs.subscribed("t", 7)
			hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 7, Extensions: true})
			str := openUni(rs.t, rs.conn, hdr, putVarint(putVarint(nil, 0), 8), []byte{0x02})
			finishStream(rs.t, str)
		}, wire.ProtocolViolation},
		{"DoesNotExist object with extensions", func(rs *hostileServer) {
			rs.subscribed("t", 7)
			hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 7, Extensions: true})
			ext, _ := wire.BuildExtensions(wire.KeyValue{Type: 0x20, Value: 1})
			openUni(rs.t, rs.conn, hdr, putBytes(putVarint(nil, 0), ext), putVarint(putVarint(nil, 0), uint64(wire.StatusDoesNotExist)))
		}, wire.ProtocolViolation},
		{"datagram of unknown type 0x08", func(rs *hostileServer) {
			rs.subscribed("t", 7)
			sendDatagrams(rs.t, rs.conn, append(putVarint(putVarint(putVarint(putVarint(nil, 0x08), 7), 0), 0), 0, 'x'))
		}, wire.ProtocolViolation},
		{"datagram with extensions of length 0", func(rs *hostileServer) {
			rs.subscribed("t", 7)
			// Type 0x01: object ID present, extensions present.
			b := putVarint(putVarint(putVarint(putVarint(nil, 0x01), 7), 0), 0)
			b = append(b, 0)
			b = putVarint(b, 0)
			sendDatagrams(rs.t, rs.conn, append(b, 'x'))
		}, wire.ProtocolViolation},
		{"status datagram with status 2", func(rs *hostileServer) {
			rs.subscribed("t", 7)
			b := putVarint(putVarint(putVarint(putVarint(nil, 0x20), 7), 0), 0)
			sendDatagrams(rs.t, rs.conn, putVarint(append(b, 0), 2))
		}, wire.ProtocolViolation},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, scheme string) {
				rs := newHostileServer(t, scheme, moqtransport.Config{PendingStreamTimeout: 300 * time.Millisecond})
				rs.connect()
				tc.run(rs)
				rs.expectClose(tc.code)
			})
		})
	}
}

// The SUBSCRIBE_ERROR control for the 1025-byte case above: 1024 bytes is a
// refusal, not a violation.
func TestRawServerLongestReason(t *testing.T) {
	rs := newHostileServer(t, "moqt", moqtransport.Config{})
	rs.connect()
	req, ch := rs.subscribe("t")
	rs.send(&wire.SubscribeError{RequestID: req.RequestID, Code: wire.SubscribeTrackDoesNotExist, Reason: strings.Repeat("r", 1024)})
	r := waitSubscribe(t, ch)
	var re *moqtransport.RequestError
	if !errors.As(r.err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) || len(re.Reason) != 1024 {
		t.Fatalf("Subscribe: %v, want SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST with the 1024-byte reason", r.err)
	}
	if err := rs.client.Err(); err != nil {
		t.Fatalf("session ended: %v", err)
	}
}

// Data that arrives before the SUBSCRIBE_OK announcing its alias is held
// and delivered.
func TestRawServerDataBeforeSubscribeOK(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{PendingStreamTimeout: 2 * time.Second})
		rs.connect()
		req, ch := rs.subscribe("t")
		h := wire.SubgroupHeader{TrackAlias: 9, GroupID: 3, PublisherPriority: 5}
		b, _ := wire.AppendSubgroupHeader(nil, &h)
		st := wire.NewSubgroupState(h)
		b, err := st.AppendObject(b, &wire.ObjectHeader{ID: 0, PayloadLength: 5})
		if err != nil {
			t.Fatal(err)
		}
		finishStream(t, openUni(t, rs.conn, b, []byte("early")))
		time.Sleep(200 * time.Millisecond)
		rs.send(&wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 9, GroupOrder: wire.GroupOrderAscending})
		r := waitSubscribe(t, ch)
		if r.err != nil {
			t.Fatal(r.err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
		defer cancel()
		rd := r.sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer rd.Close()
		for {
			ev, err := rd.Next(ctx)
			if err != nil {
				t.Fatalf("the early object never reached the track: %v", err)
			}
			if ev.Kind != moqtransport.EventObject {
				continue
			}
			if o := ev.Object; o.Group != 3 || o.ID != 0 || o.PublisherPriority != 5 || string(o.Payload) != "early" {
				t.Errorf("got object {%d,%d} prio %d %q, want {3,0} prio 5 \"early\"", o.Group, o.ID, o.PublisherPriority, o.Payload)
			}
			break
		}
		if err := rs.client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// Data for an alias that is never announced is stopped after
// PendingStreamTimeout, and the session goes on. (It waits because the
// SUBSCRIBE for "u" is unanswered: its SUBSCRIBE_OK could name alias 99.)
func TestRawServerDataForUnknownAlias(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		const timeout = 300 * time.Millisecond
		rs := newHostileServer(t, scheme, moqtransport.Config{PendingStreamTimeout: timeout})
		client := rs.connect()
		rs.subscribed("t", 7)
		req, ch := rs.subscribe("u")
		hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 99})
		str := openUni(t, rs.conn, hdr, putVarint(putVarint(nil, 0), 1), []byte("x"))
		err, after := streamStopped(str, 3*time.Second)
		var se *moqtransport.StreamError
		if !errors.As(err, &se) || se.Code != uint64(wire.ResetCancelled) {
			t.Fatalf("writing to a stream for an unknown alias: %v after %v, want STOP_SENDING CANCELLED", err, after)
		}
		if after < timeout*3/4 {
			t.Errorf("stream stopped after %v, before PendingStreamTimeout %v", after, timeout)
		}
		if err := client.Err(); err != nil {
			t.Fatalf("the session ended: %v", err)
		}
		// A round trip on the control stream.
		rs.send(&wire.SubscribeError{RequestID: req.RequestID, Code: wire.SubscribeTrackDoesNotExist})
		var re *moqtransport.RequestError
		if r := waitSubscribe(t, ch); !errors.As(r.err, &re) {
			t.Fatalf("Subscribe after the dropped stream: %v", r.err)
		}
	})
}

// The moq-go client answers every request a server sends, refusing what
// its handler (the zero Handler) does not serve.
func TestRawServerEveryRequestAnswered(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{})
		rs.connect()
		rs.write(validSub(1, heldNS, heldName).bytes())
		if m, ok := rs.next().(*wire.SubscribeError); !ok || m.RequestID != 1 || m.Code != wire.SubscribeTrackDoesNotExist {
			t.Errorf("SUBSCRIBE: got %#v, want SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST", m)
		}
		rs.send(&wire.Fetch{RequestID: 3, FetchType: wire.FetchStandalone, Namespace: heldNS, Name: heldName, End: wire.Location{Group: 1}})
		if m, ok := rs.next().(*wire.FetchError); !ok || m.RequestID != 3 {
			t.Errorf("FETCH: got %#v, want FETCH_ERROR", m)
		}
		rs.send(&wire.TrackStatus{RequestID: 5, Namespace: heldNS, Name: heldName, Forward: true, Filter: wire.Filter{Type: wire.FilterLargestObject}})
		if m, ok := rs.next().(*wire.TrackStatusError); !ok || m.RequestID != 5 {
			t.Errorf("TRACK_STATUS: got %#v, want TRACK_STATUS_ERROR", m)
		}
		rs.send(&wire.Publish{RequestID: 7, Namespace: heldNS, Name: "p", TrackAlias: 1, GroupOrder: wire.GroupOrderAscending, Forward: true})
		if m, ok := rs.next().(*wire.PublishError); !ok || m.RequestID != 7 {
			t.Errorf("PUBLISH: got %#v, want PUBLISH_ERROR", m)
		}
		rs.send(&wire.PublishNamespace{RequestID: 9, Namespace: heldNS})
		if m, ok := rs.next().(*wire.PublishNamespaceError); !ok || m.RequestID != 9 || m.Code != wire.NamespaceNotSupported {
			t.Errorf("PUBLISH_NAMESPACE: got %#v, want PUBLISH_NAMESPACE_ERROR NOT_SUPPORTED", m)
		}
		if err := rs.client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// An object that declares an enormous payload is a local limit, not a
// protocol error: the stream is stopped and the session goes on, having
// allocated little.
func TestRawServerHugeDeclaredObject(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{})
		client := rs.connect()
		rs.subscribed("t", 7)
		for _, tc := range []struct {
			name string
			obj  []byte
		}{
			{"payload of 2^40 bytes", putVarint(putVarint(nil, 0), 1<<40)},
			{"payload of 64 MiB + 1", putVarint(putVarint(nil, 0), wire.DefaultMaxObjectPayload+1)},
		} {
			hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 7, GroupID: 1})
			str := openUni(t, rs.conn, hdr, tc.obj, []byte("abc"))
			err, after := streamStopped(str, hostileWait)
			var se *moqtransport.StreamError
			if !errors.As(err, &se) {
				t.Errorf("%s: stream not stopped after %v: %v", tc.name, after, err)
			}
		}
		if err := client.Err(); err != nil {
			t.Fatalf("session ended: %v", err)
		}
	})
}

// A server that lets the client open only one request: the client blocks,
// says REQUESTS_BLOCKED once, and goes on when MAX_REQUEST_ID arrives.
func TestRawServerRequestsBlocked(t *testing.T) {
	rs := newHostileServer(t, "moqt", moqtransport.Config{})
	rs.send(&wire.ServerSetup{Version: wire.Draft14, Params: wire.Parameters{{Type: wire.SetupParamMaxRequestID, Value: 2}}})
	select {
	case <-rs.conned:
	case <-time.After(hostileWait):
		t.Fatal("Connect did not return")
	}
	if rs.cErr != nil {
		t.Fatal(rs.cErr)
	}
	rs.subscribed("a", 1)
	ch := make(chan subResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
		defer cancel()
		sub, err := rs.client.Subscribe(ctx, heldNS, "b", moqtransport.SubscribeOptions{})
		ch <- subResult{sub, err}
	}()
	t.Cleanup(func() { <-ch })
	if m, ok := rs.next().(*wire.RequestsBlocked); !ok || m.Max != 2 {
		t.Fatalf("got %#v, want REQUESTS_BLOCKED 2", m)
	}
	rs.send(&wire.MaxRequestID{Max: 4})
	req, ok := rs.next().(*wire.Subscribe)
	if !ok || req.RequestID != 2 {
		t.Fatalf("got %#v, want SUBSCRIBE 2", req)
	}
	rs.send(&wire.SubscribeOK{RequestID: 2, TrackAlias: 2, GroupOrder: wire.GroupOrderAscending})
	if r := waitSubscribe(t, ch); r.err != nil {
		t.Fatal(r.err)
	}
}
