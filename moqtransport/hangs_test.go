package moqtransport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// The tests of this file are about hangs: a peer that stops reading, a
// request that waits for credit, Close from a callback, a cancelled fetch,
// locations at the top of the varint range. Each asserts that the call
// returns or the request is answered; none measures a time.

// stallConn is a real transport connection whose application stops reading
// the control stream once stall is closed: what a peer that no longer
// reads its control stream looks like to the other side, whose writes
// then fill the stream's flow-control window.
type stallConn struct {
	moqtransport.Conn
	stall chan struct{}
}

func (c *stallConn) OpenStreamSync(ctx context.Context) (moqtransport.Stream, error) {
	s, err := c.Conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return &stallStream{Stream: s, c: c}, nil
}

type stallStream struct {
	moqtransport.Stream
	c *stallConn
}

func (s *stallStream) Read(b []byte) (int, error) {
	select {
	case <-s.c.stall:
		<-s.c.Conn.Context().Done()
		return s.Stream.Read(b) // the connection's error
	default:
		return s.Stream.Read(b)
	}
}

// dialStalling connects a client session over a stallConn.
func (e *env) dialStalling(cfg moqtransport.Config) (*moqtransport.Session, *moqtransport.Session, *stallConn) {
	e.t.Helper()
	d := e.dialRaw("/app")
	sc := &stallConn{Conn: d.Conn, stall: make(chan struct{})}
	cfg.Path, cfg.Authority = d.Path, d.Authority
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := moqtransport.Connect(ctx, sc, &cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = client.Close() })
	select {
	case s := <-e.sessions:
		return client, s, sc
	case err := <-e.errs:
		e.t.Fatalf("server setup failed: %v", err)
	case <-ctx.Done():
		e.t.Fatal("server session did not start")
	}
	return nil, nil, nil
}

// TestStalledControlStreamClosesSession: a peer stops reading its control
// stream while we have requests to send it. Every request returns, the
// session closes with CONTROL_MESSAGE_TIMEOUT, and a session with another
// peer, on the same server, is answered meanwhile.
//
// Either limit closes it: the write deadline, or (with a deadline longer
// than the test waits) the backlog.
func TestStalledControlStreamClosesSession(t *testing.T) {
	limits := map[string]moqtransport.Config{
		"deadline": {ControlWriteTimeout: 500 * time.Millisecond},
		"backlog":  {ControlWriteTimeout: time.Hour, MaxControlBacklog: 64 << 10},
	}
	for name, limit := range limits {
		t.Run(name, func(t *testing.T) { testStalledControlStream(t, limit) })
	}
}

func testStalledControlStream(t *testing.T, limit moqtransport.Config) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		cfg := limit
		cfg.Handler = heldTracks().Handler()
		e := newEnv(t, scheme, &cfg)
		// The stalled peer grants many requests, so that ours are
		// limited by its control stream only.
		client, server, sc := e.dialStalling(moqtransport.Config{MaxRequests: 1000})
		close(sc.stall)

		// 4 KiB namespaces: 200 of them overflow any receive window
		// the peer offers (512 KiB) and our backlog limit.
		const n = 200
		field := strings.Repeat("n", 4000)
		errs := make(chan error, n)
		for i := range n {
			go func() {
				_, err := server.PublishNamespace(context.Background(), wire.Namespace{fmt.Sprint(i), field}, nil)
				errs <- err
			}()
		}
		// Another peer of the same server gets its answers.
		other, _ := e.dial(nil)
		sub, err := other.Subscribe(timeout(t), heldNS, heldName, moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatalf("a healthy session's SUBSCRIBE: %v", err)
		}
		_ = sub.Unsubscribe()

		for range n {
			select {
			case err := <-errs:
				if err == nil {
					t.Fatal("PUBLISH_NAMESPACE to a peer that reads nothing succeeded")
				}
			case <-time.After(hostileWait):
				t.Fatal("a request to a peer that stopped reading never returned")
			}
		}
		expectSessionEnd(t, server, wire.ControlMessageTimeout)
		select {
		case <-client.Done():
		case <-time.After(hostileWait):
			t.Fatal("the stalled peer's session did not end")
		}
		var ce *moqtransport.ConnError
		if err := client.Err(); !errors.As(err, &ce) || ce.Code != wire.ControlMessageTimeout {
			t.Errorf("the stalled peer's session ended with %v, want code CONTROL_MESSAGE_TIMEOUT", err)
		}
	})
}

// TestRequestCreditWaitHonoursContext: while one request waits for the
// peer's MAX_REQUEST_ID, another request whose context ends returns at
// once, and the waiting one goes out, in ID order, when credit comes.
func TestRequestCreditWaitHonoursContext(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{})
		// Grant one request: ID 0.
		rs.send(&wire.ServerSetup{Version: wire.Draft14, Params: wire.Parameters{{Type: wire.SetupParamMaxRequestID, Value: 2}}})
		select {
		case <-rs.conned:
		case <-time.After(hostileWait):
			t.Fatal("Connect did not return")
		}
		if rs.cErr != nil {
			t.Fatal(rs.cErr)
		}
		first, firstRes := rs.subscribe("a") // takes ID 0; never answered
		if first.RequestID != 0 {
			t.Fatalf("first SUBSCRIBE has ID %d", first.RequestID)
		}
		// The second waits for credit.
		waiting := make(chan subResult, 1)
		wctx, wcancel := context.WithCancel(context.Background())
		defer wcancel()
		go func() {
			sub, err := rs.client.Subscribe(wctx, heldNS, "b", moqtransport.SubscribeOptions{})
			waiting <- subResult{sub, err}
		}()
		if m, ok := rs.next().(*wire.RequestsBlocked); !ok || m.Max != 2 {
			t.Fatalf("got %v, want REQUESTS_BLOCKED 2", m)
		}
		// A third one gives up: it returns, though the second still
		// waits.
		ctx, cancel := context.WithCancel(context.Background())
		third := make(chan error, 1)
		go func() {
			_, err := rs.client.Subscribe(ctx, heldNS, "c", moqtransport.SubscribeOptions{})
			third <- err
		}()
		cancel()
		select {
		case err := <-third:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled Subscribe: %v, want context.Canceled", err)
			}
		case <-time.After(hostileWait):
			t.Fatal("a request whose context ended stayed blocked behind one waiting for credit")
		}
		// Credit comes: the second goes out with ID 2.
		rs.send(&wire.MaxRequestID{Max: 4})
		second, ok := rs.next().(*wire.Subscribe)
		if !ok || second.RequestID != 2 || second.Name != "b" {
			t.Fatalf("after MAX_REQUEST_ID: %v, want SUBSCRIBE 2 for b", second)
		}
		rs.send(&wire.SubscribeError{RequestID: 0, Code: wire.SubscribeTrackDoesNotExist, Reason: "no"},
			&wire.SubscribeError{RequestID: 2, Code: wire.SubscribeTrackDoesNotExist, Reason: "no"})
		if r := waitSubscribe(t, firstRes); r.err == nil {
			t.Error("first Subscribe succeeded")
		}
		select {
		case r := <-waiting:
			var re *moqtransport.RequestError
			if !errors.As(r.err, &re) {
				t.Errorf("second Subscribe: %v, want SUBSCRIBE_ERROR", r.err)
			}
		case <-time.After(hostileWait):
			t.Fatal("second Subscribe did not return")
		}
	})
}

// closingHandler closes its session from inside each callback it is asked
// to close from, and reports when Close returned.
type closingHandler struct {
	onSubscribe, onDone bool
	closed              chan struct{}
	once                sync.Once
}

func (h *closingHandler) close(s *moqtransport.Session) {
	_ = s.Close()
	h.once.Do(func() { close(h.closed) })
}

func (h *closingHandler) Subscribe(_ context.Context, s *moqtransport.Session, _ *wire.Subscribe) (*moqtransport.Track, error) {
	if h.onSubscribe {
		h.close(s)
	}
	return nil, moqtransport.ErrTrackNotFound
}

func (h *closingHandler) PublishNamespace(context.Context, *moqtransport.Session, *wire.PublishNamespace) error {
	return nil
}

func (h *closingHandler) PublishNamespaceDone(s *moqtransport.Session, _ wire.Namespace) {
	if h.onDone {
		h.close(s)
	}
}

func (h *closingHandler) handler() moqtransport.Handler {
	return moqtransport.Handler{Subscribe: h.Subscribe, PublishNamespace: h.PublishNamespace, PublishNamespaceDone: h.PublishNamespaceDone}
}

// TestCloseFromCallbacks: Close called from a Handler method, from an
// Authorizer, and from a callback the session's end runs, returns.
func TestCloseFromCallbacks(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(h *closingHandler) *moqtransport.Config
		run  func(t *testing.T, client *moqtransport.Session)
	}{
		{"Handler.Subscribe", func(h *closingHandler) *moqtransport.Config {
			h.onSubscribe = true
			return &moqtransport.Config{Handler: h.handler()}
		}, func(t *testing.T, client *moqtransport.Session) {
			_, _ = client.Subscribe(timeout(t), heldNS, heldName, moqtransport.SubscribeOptions{})
		}},
		{"Authorizer", func(h *closingHandler) *moqtransport.Config {
			return &moqtransport.Config{Handler: h.handler(), Authorize: func(s *moqtransport.Session, m wire.Message, _ []moqtransport.AuthToken) error {
				if m.Type() == wire.TypeSubscribe {
					h.close(s)
				}
				return nil
			}}
		}, func(t *testing.T, client *moqtransport.Session) {
			_, _ = client.Subscribe(timeout(t), heldNS, heldName, moqtransport.SubscribeOptions{})
		}},
		{"PublishNamespaceDone at the session's end", func(h *closingHandler) *moqtransport.Config {
			h.onDone = true
			return &moqtransport.Config{Handler: h.handler()}
		}, func(t *testing.T, client *moqtransport.Session) {
			if _, err := client.PublishNamespace(timeout(t), heldNS, nil); err != nil {
				t.Fatal(err)
			}
			_ = client.Close() // the server's session ends: PublishNamespaceDone
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, scheme string) {
				h := &closingHandler{closed: make(chan struct{})}
				e := newEnv(t, scheme, tc.cfg(h))
				client, server := e.dial(nil)
				tc.run(t, client)
				select {
				case <-h.closed:
				case <-time.After(hostileWait):
					t.Fatal("Close called from a callback did not return")
				}
				select {
				case <-server.Done():
				case <-time.After(hostileWait):
					t.Fatal("the session did not end")
				}
			})
		})
	}
}

// TestFetchCancelFreesGoroutine: a fetch whose reader stops reading and
// cancels leaves no goroutine behind, on either side, and Next says it was
// cancelled.
func TestFetchCancelFreesGoroutine(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		ns := wire.Namespace{"fetch"}
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
		publishObjects(t, tr, 0, 1, 200) // more than any buffer between the stream and Next
		ts := &moqtransport.Tracks{}
		ts.Add(tr)
		e := newEnv(t, scheme, &moqtransport.Config{Handler: ts.Handler()})
		client, _ := e.dial(nil)
		before := goleak.IgnoreCurrent()
		f, err := client.Fetch(timeout(t), moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 1}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.ReadObject(timeout(t)); err != nil {
			t.Fatal(err)
		}
		if err := f.Cancel(); err != nil {
			t.Fatal(err)
		}
		if _, err := f.ReadObject(timeout(t)); !errors.Is(err, moqtransport.ErrFetchCancelled) {
			t.Errorf("Next after Cancel: %v, want ErrFetchCancelled", err)
		}
		// The connection's own HTTP/3 goroutines may start after the
		// snapshot (webtransport-go handles the peer's control stream
		// when it comes): they are the connection's, not the fetch's.
		goleak.VerifyNone(t, before, goleak.IgnoreAnyFunction("github.com/quic-go/quic-go/http3.(*rawConn).receiveDatagrams"))
	})
}

// TestJoiningFetchAtLargestLocation: a joining FETCH whose subscription's
// largest object has ID 2^62-1 is answered, with the end {G, 0} (there is
// no ID past it), and delivers that object.
func TestJoiningFetchAtLargestLocation(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		ns := wire.Namespace{"edge"}
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
		w, err := tr.OpenSubgroup(wire.MaxVarint, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteObject(wire.MaxVarint-1, []byte("before"), nil); err != nil {
			t.Fatal(err)
		}
		if err := w.WriteObject(wire.MaxVarint, []byte("last"), nil); err != nil {
			t.Fatal(err)
		}
		ts := &moqtransport.Tracks{}
		ts.Add(tr)
		e := newEnv(t, scheme, &moqtransport.Config{Handler: ts.Handler()})
		client, _ := e.dial(nil)
		sub, err := client.Subscribe(timeout(t), ns, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sub.Unsubscribe() }()
		if ok := sub.OK(); !ok.ContentExists || ok.Largest != (wire.Location{Group: wire.MaxVarint, Object: wire.MaxVarint}) {
			t.Fatalf("SUBSCRIBE_OK largest %v (exists %v)", ok.Largest, ok.ContentExists)
		}
		f, err := client.Fetch(timeout(t), moqtransport.FetchOptions{Joining: sub, JoiningStart: 0})
		if err != nil {
			t.Fatalf("joining FETCH at the largest location: %v", err)
		}
		if end := f.OK().End; end != (wire.Location{Group: wire.MaxVarint}) {
			t.Errorf("FETCH_OK end %v, want {2^62-1, 0}", end)
		}
		var ids []uint64
		for {
			o, err := f.ReadObject(timeout(t))
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, o.ID)
		}
		if len(ids) != 2 || ids[1] != wire.MaxVarint {
			t.Errorf("fetched object IDs %v, want [2^62-2 2^62-1]", ids)
		}
	})
}

// TestDatagramOnSubgroupTrackIsMalformed: a datagram for a track whose
// objects came on subgroup streams makes the track malformed (§2.5): the
// subscriber sends UNSUBSCRIBE, and the subscription and its track end
// with PUBLISH_DONE MALFORMED_TRACK, which a relay passes downstream.
func TestDatagramOnSubgroupTrackIsMalformed(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{})
		rs.connect()
		sub := rs.subscribed("t", 7)
		hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 7, GroupID: 1})
		str := openUni(t, rs.conn, hdr, putVarint(putVarint(nil, 0), 1), []byte("s"))
		defer finishStream(t, str)
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		if ev, err := r.Next(timeout(t)); err != nil || ev.Kind != moqtransport.EventObject {
			t.Fatalf("first event %v, %v; want the subgroup object", ev, err)
		}
		dg, _ := wire.AppendDatagram(nil, &wire.Datagram{TrackAlias: 7, Group: 2, Payload: []byte("d")})
		sendDatagrams(t, rs.conn, dg)
		m, ok := rs.next().(*wire.Unsubscribe)
		if !ok || m.RequestID != sub.RequestID() {
			t.Fatalf("got %v, want UNSUBSCRIBE %d", m, sub.RequestID())
		}
		var re *moqtransport.RequestError
		if err := sub.Err(); !errors.As(err, &re) || re.Code != uint64(wire.DoneMalformedTrack) {
			t.Errorf("subscription ended with %v, want PUBLISH_DONE MALFORMED_TRACK", err)
		}
		if err := sub.Track().Err(); !errors.As(err, &re) || re.Message != wire.TypePublishDone || re.Code != uint64(wire.DoneMalformedTrack) {
			t.Errorf("track ended with %v, want PUBLISH_DONE MALFORMED_TRACK", err)
		}
		_ = rs.conn.CloseWithError(0, "") // stops the datagrams
	})
}

// TestRequestsAtLocationLimits: requests whose locations sit at 2^62-1,
// the largest varint, are each answered (OK or an error), never left
// waiting: every filter type, a standalone FETCH, TRACK_STATUS.
func TestRequestsAtLocationLimits(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		const top = wire.MaxVarint
		ns := wire.Namespace{"edge"}
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})
		w, err := tr.OpenSubgroup(top, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteObject(top, []byte("last"), nil); err != nil {
			t.Fatal(err)
		}
		ts := &moqtransport.Tracks{}
		ts.Add(tr)
		e := newEnv(t, scheme, &moqtransport.Config{Handler: ts.Handler()})
		client, _ := e.dial(nil)
		filters := []wire.Filter{
			{Type: wire.FilterLargestObject},
			{Type: wire.FilterNextGroupStart},
			{Type: wire.FilterAbsoluteStart, Start: wire.Location{Group: top, Object: top}},
			{Type: wire.FilterAbsoluteRange, Start: wire.Location{Group: top, Object: top}, EndGroup: top},
		}
		for _, f := range filters {
			sub, err := client.Subscribe(timeout(t), ns, "t", moqtransport.SubscribeOptions{Filter: f})
			if err != nil {
				var re *moqtransport.RequestError
				if !errors.As(err, &re) {
					t.Errorf("SUBSCRIBE with %v filter: %v, want an answer", f.Type, err)
				}
				continue
			}
			_ = sub.Unsubscribe()
		}
		f, err := client.Fetch(timeout(t), moqtransport.FetchOptions{Namespace: ns, Name: "t",
			Start: wire.Location{Group: top, Object: top}, End: wire.Location{Group: top}})
		if err != nil {
			t.Fatalf("standalone FETCH of {2^62-1, 2^62-1}: %v", err)
		}
		if o, err := f.ReadObject(timeout(t)); err != nil || o.ID != top {
			t.Errorf("fetched %v, %v; want object 2^62-1", o, err)
		}
		_ = f.Cancel()
		st, err := client.TrackStatus(timeout(t), ns, "t")
		if err != nil || st.Largest != (wire.Location{Group: top, Object: top}) {
			t.Errorf("TRACK_STATUS: %+v, %v", st, err)
		}
	})
}

// TestFetchOutOfOrderIsMalformed: a fetch stream whose object IDs do not
// rise within a group makes the track malformed (§2.5): the subscriber
// cancels the fetch (FETCH_CANCEL) and unsubscribes from the same track
// (UNSUBSCRIBE); Next and the subscription report MALFORMED_TRACK.
func TestFetchOutOfOrderIsMalformed(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{})
		rs.connect()
		sub := rs.subscribed("t", 7)
		type res struct {
			f   *moqtransport.Fetch
			err error
		}
		got := make(chan res, 1)
		go func() {
			f, err := rs.client.Fetch(timeout(t), moqtransport.FetchOptions{Namespace: heldNS, Name: "t", End: wire.Location{Group: 2}})
			got <- res{f, err}
		}()
		req, ok := rs.next().(*wire.Fetch)
		if !ok {
			t.Fatalf("got %v, want FETCH", req)
		}
		rs.send(&wire.FetchOK{RequestID: req.RequestID, GroupOrder: wire.GroupOrderAscending, End: wire.Location{Group: 2}})
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
		b, _ := wire.AppendFetchHeader(nil, req.RequestID)
		for range 2 { // the same object twice
			b, _ = wire.AppendFetchObject(b, &wire.ObjectHeader{Group: 1, ID: 1, PayloadLength: 1})
			b = append(b, 'x')
		}
		str := openUni(t, rs.conn, b)
		defer finishStream(t, str)
		seen := map[wire.MessageType]bool{}
		for len(seen) < 2 {
			switch m := rs.next().(type) {
			case *wire.FetchCancel:
				if m.RequestID != req.RequestID {
					t.Fatalf("FETCH_CANCEL %d, want %d", m.RequestID, req.RequestID)
				}
				seen[m.Type()] = true
			case *wire.Unsubscribe:
				if m.RequestID != sub.RequestID() {
					t.Fatalf("UNSUBSCRIBE %d, want %d", m.RequestID, sub.RequestID())
				}
				seen[m.Type()] = true
			default:
				t.Fatalf("got %v, want FETCH_CANCEL and UNSUBSCRIBE", m)
			}
		}
		var err error
		for err == nil {
			_, err = r.f.ReadObject(timeout(t))
		}
		if !errors.Is(err, moqtransport.ErrMalformedTrack) {
			t.Errorf("Next: %v, want ErrMalformedTrack", err)
		}
		var re *moqtransport.RequestError
		if err := sub.Err(); !errors.As(err, &re) || re.Code != uint64(wire.DoneMalformedTrack) {
			t.Errorf("subscription ended with %v, want PUBLISH_DONE MALFORMED_TRACK", err)
		}
	})
}
