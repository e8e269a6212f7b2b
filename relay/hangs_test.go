package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// stallConn is a real connection whose application stops reading the
// control stream once stall is closed.
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

// connectStalling connects a session whose control stream stops being read
// when the returned channel is closed.
func (e *relayEnv) connectStalling(cfg moqtransport.Config) (*moqtransport.Session, chan struct{}) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fp, _ := e.srv.Fingerprint()
	d, err := moqnative.Dial(ctx, fmt.Sprintf("%s://%s/", e.scheme, e.srv.Addr()),
		moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		e.t.Fatal(err)
	}
	sc := &stallConn{Conn: d.Conn, stall: make(chan struct{})}
	cfg.Path, cfg.Authority = d.Path, d.Authority
	s, err := moqtransport.Connect(ctx, sc, &cfg)
	if err != nil {
		_ = d.Close()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = d.Close()
		_ = s.Close()
	})
	return s, sc.stall
}

// TestStalledPublisherDoesNotHangTheRelay: a publisher stops reading its
// control stream, and 200 SUBSCRIBEs for its tracks (with long names, so
// that the relay's upstream SUBSCRIBEs overflow the publisher's receive
// window) arrive at the relay. Every one is answered, the publisher's
// session is closed with CONTROL_MESSAGE_TIMEOUT, and subscribers of
// another publisher are served meanwhile.
func TestStalledPublisherDoesNotHangTheRelay(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelayWith(t, scheme, relay.Config{Session: moqtransport.Config{ControlWriteTimeout: time.Second}})
		ns := wire.Namespace{"stalled"}
		pub, stall := e.connectStalling(moqtransport.Config{Handler: (&moqtransport.Tracks{}).Handler(), MaxRequests: 1000})
		if _, err := pub.PublishNamespace(ctxFor(t), ns, nil); err != nil {
			t.Fatal(err)
		}
		close(stall)
		_, healthyTrack, _ := e.publisher("/", wire.Namespace{"healthy"}, "t")
		write(t, healthyTrack, 0, 1, 1)

		start := time.Now()
		const sessions, perSession = 4, 50
		long := strings.Repeat("x", 4000)
		ctx := ctxFor(t)
		errs := make(chan error, sessions*perSession)
		var wg sync.WaitGroup
		for i := range sessions {
			sub := e.connect("/", nil)
			for j := range perSession {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := sub.Subscribe(ctx, ns, fmt.Sprintf("%d-%d-%s", i, j, long), moqtransport.SubscribeOptions{})
					if err == nil {
						_ = s.Unsubscribe()
					}
					errs <- err
				}()
			}
		}
		// Another publisher's subscriber is answered and served.
		healthy := e.connect("/", nil)
		hs, err := healthy.Subscribe(ctx, wire.Namespace{"healthy"}, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatalf("a healthy publisher's subscriber: %v", err)
		}
		_ = hs.Unsubscribe()

		wg.Wait()
		close(errs)
		answered := 0
		for err := range errs {
			var re *moqtransport.RequestError
			if !errors.As(err, &re) || re.Message != wire.TypeSubscribeError {
				t.Errorf("SUBSCRIBE to the stalled publisher's track: %v, want SUBSCRIBE_ERROR", err)
				continue
			}
			answered++
		}
		t.Logf("%d of %d SUBSCRIBEs for the stalled publisher's tracks answered in %v", answered, sessions*perSession, time.Since(start).Round(time.Millisecond))
		if answered != sessions*perSession {
			t.Fatalf("%d of %d SUBSCRIBEs answered", answered, sessions*perSession)
		}
		select {
		case <-pub.Done():
		case <-ctx.Done():
			t.Fatal("the stalled publisher's session was not closed")
		}
		var ce *moqtransport.ConnError
		if err := pub.Err(); !errors.As(err, &ce) || ce.Code != wire.ControlMessageTimeout {
			t.Errorf("the stalled publisher's session ended with %v, want CONTROL_MESSAGE_TIMEOUT", err)
		}
	})
}

// TestMalformedUpstreamTrackEndsDownstream: when the relay's upstream
// track turns out malformed (a datagram on a subgroup track), its
// downstream subscribers get PUBLISH_DONE MALFORMED_TRACK and the relay
// unsubscribes upstream (§2.5).
func TestMalformedUpstreamTrackEndsDownstream(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"bad"}
		p := e.rawPublisher(ns)
		sub := e.connect("/", nil)
		ctx := ctxFor(t)
		type res struct {
			s   *moqtransport.Subscription
			err error
		}
		got := make(chan res, 1)
		go func() {
			s, err := sub.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
			got <- res{s, err}
		}()
		req, ok := p.next(t).(*wire.Subscribe)
		if !ok {
			t.Fatalf("the relay sent %v, want SUBSCRIBE", req)
		}
		p.send(t, &wire.SubscribeOK{RequestID: req.RequestID, TrackAlias: 5, GroupOrder: wire.GroupOrderAscending})
		r := <-got
		if r.err != nil {
			t.Fatal(r.err)
		}
		// A subgroup object, then a datagram for the same track.
		str, err := p.conn.OpenUniStreamSync(ctx)
		if err != nil {
			t.Fatal(err)
		}
		hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 5, GroupID: 1})
		obj := []byte{0, 1, 's'} // object ID delta 0, length 1, payload
		if _, err := str.Write(append(hdr, obj...)); err != nil {
			t.Fatal(err)
		}
		rd := r.s.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer rd.Close()
		if ev, err := rd.Next(ctx); err != nil || ev.Kind != moqtransport.EventObject {
			t.Fatalf("first event downstream: %+v, %v", ev, err)
		}
		dg, _ := wire.AppendDatagram(nil, &wire.Datagram{TrackAlias: 5, Group: 2, Payload: []byte("d")})
		stop := make(chan struct{})
		defer close(stop)
		go func() { // a datagram may be lost: repeat it
			for {
				if p.conn.SendDatagram(dg) != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-p.conn.Context().Done():
					return
				case <-time.After(20 * time.Millisecond):
				}
			}
		}()
		if m, ok := p.next(t).(*wire.Unsubscribe); !ok || m.RequestID != req.RequestID {
			t.Fatalf("the relay sent %v, want UNSUBSCRIBE %d", m, req.RequestID)
		}
		var re *moqtransport.RequestError
		if err := r.s.Err(); !errors.As(err, &re) || re.Code != uint64(wire.DoneMalformedTrack) {
			t.Errorf("downstream subscription ended with %v, want PUBLISH_DONE MALFORMED_TRACK", err)
		}
		_ = str.Close()
	})
}

// rawPublisher is a publisher that speaks the wire itself, to send what a
// moq-go publisher never would.
type rawPublisher struct {
	conn moqtransport.Conn
	ctrl moqtransport.Stream
	msgs chan wire.Message
}

func (e *relayEnv) rawPublisher(ns wire.Namespace) *rawPublisher {
	e.t.Helper()
	p := e.rawClient()
	p.send(e.t, &wire.PublishNamespace{RequestID: 0, Namespace: ns})
	if _, ok := p.next(e.t).(*wire.PublishNamespaceOK); !ok {
		e.t.Fatal("no PUBLISH_NAMESPACE_OK")
	}
	return p
}

// rawClient dials the relay and runs setup by hand (CLIENT_SETUP granting
// 100 requests, SERVER_SETUP), with no moqtransport session on this side.
func (e *relayEnv) rawClient() *rawPublisher {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fp, _ := e.srv.Fingerprint()
	d, err := moqnative.Dial(ctx, fmt.Sprintf("%s://%s/", e.scheme, e.srv.Addr()),
		moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		e.t.Fatal(err)
	}
	p := &rawPublisher{conn: d.Conn, msgs: make(chan wire.Message, 64)}
	if p.ctrl, err = d.Conn.OpenStreamSync(ctx); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	e.t.Cleanup(func() {
		_ = d.Close()
		<-done
	})
	go func() {
		defer close(done)
		defer close(p.msgs)
		r := wire.NewControlReader(p.ctrl)
		for {
			m, err := r.ReadMessage()
			if err != nil {
				return
			}
			if _, skip := m.(*wire.MaxRequestID); skip {
				continue
			}
			p.msgs <- m
		}
	}()
	params := wire.Parameters{}.WithVarint(wire.SetupParamMaxRequestID, 100)
	if d.Conn.Protocol() == moqtransport.ProtocolQUIC {
		params = params.WithBytes(wire.SetupParamPath, []byte(d.Path))
	}
	p.send(e.t, &wire.ClientSetup{Versions: []wire.Version{wire.Draft14}, Params: params})
	if _, ok := p.next(e.t).(*wire.ServerSetup); !ok {
		e.t.Fatal("no SERVER_SETUP")
	}
	return p
}

func (p *rawPublisher) send(t *testing.T, m wire.Message) {
	t.Helper()
	b, err := wire.AppendMessage(nil, m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ctrl.Write(b); err != nil {
		t.Fatal(err)
	}
}

func (p *rawPublisher) next(t *testing.T) wire.Message {
	t.Helper()
	select {
	case m, ok := <-p.msgs:
		if !ok {
			t.Fatal("the relay closed the control stream")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no control message from the relay")
	}
	return nil
}
