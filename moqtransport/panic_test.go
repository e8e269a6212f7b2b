package moqtransport_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A panic in a Handler or Authorizer callback is recovered: a request
// function's request is answered with INTERNAL_ERROR and its session goes
// on, a notification's session closes with INTERNAL_ERROR, the panic is
// logged at Error with its stack, and the other sessions of the server
// keep working (the test process survives).
func TestCallbackPanicRecovered(t *testing.T) {
	logs := &logBuffer{}
	tracks := heldTracks()
	cfg := &moqtransport.Config{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError})),
		Authorize: func(_ *moqtransport.Session, m moqtransport.Message, _ []moqtransport.AuthToken) error {
			if r, ok := m.(*moqtransport.TrackStatusRequest); ok && r.Name == "authboom" {
				panic("authorizer bug")
			}
			return nil
		},
		Handler: moqtransport.Handler{
			Subscribe: func(ctx context.Context, s *moqtransport.Session, req *moqtransport.SubscribeRequest) (*moqtransport.Track, error) {
				if req.Name == "boom" {
					panic("handler bug")
				}
				return tracks.Handler().Subscribe(ctx, s, req)
			},
			TrackStatus: func(context.Context, *moqtransport.Session, *moqtransport.TrackStatusRequest) (*moqtransport.TrackStatusOK, error) {
				return nil, moqtransport.ErrTrackNotFound
			},
			PublishNamespace: func(context.Context, *moqtransport.Session, *moqtransport.PublishNamespaceRequest) error { return nil },
			PublishNamespaceDone: func(*moqtransport.Session, moqtransport.Namespace) {
				panic("notification bug")
			},
		},
	}
	e := newEnv(t, "moqt", cfg)
	ctx := timeout(t)
	c1, s1 := e.dial(nil)
	c2, _ := e.dial(nil)

	var re *moqtransport.RequestError
	_, err := c1.Subscribe(ctx, wire.Namespace{"a"}, "boom", moqtransport.SubscribeOptions{})
	if !errors.As(err, &re) || re.Message != wire.TypeSubscribeError || re.Code != uint64(wire.SubscribeInternalError) {
		t.Fatalf("SUBSCRIBE whose handler panics: %v, want SUBSCRIBE_ERROR INTERNAL_ERROR", err)
	}
	_, err = c1.TrackStatus(ctx, wire.Namespace{"a"}, "authboom")
	if !errors.As(err, &re) || re.Message != wire.TypeTrackStatusError || re.Code != uint64(wire.SubscribeInternalError) {
		t.Fatalf("TRACK_STATUS whose Authorizer panics: %v, want TRACK_STATUS_ERROR INTERNAL_ERROR", err)
	}
	if _, err := c1.Subscribe(ctx, heldNS, heldName, moqtransport.SubscribeOptions{}); err != nil {
		t.Fatalf("the session whose handler panicked: SUBSCRIBE: %v", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "handler bug") ||
		!strings.Contains(logs.String(), "authorizer bug") || !strings.Contains(logs.String(), "panic_test.go") {
		t.Errorf("the panics are not logged at Error with their stacks:\n%s", logs.String())
	}

	// A notification has no answer: its session closes.
	pub, err := c1.PublishNamespace(ctx, wire.Namespace{"ns"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = pub.Close() // PUBLISH_NAMESPACE_DONE: the server's notification panics
	expectSessionEnd(t, s1, wire.InternalError)
	<-c1.Done()
	if got := wire.SessionCode(c1.Err()); got != wire.InternalError {
		t.Errorf("the client's session ended with %v, want INTERNAL_ERROR", c1.Err())
	}

	// The server's other session is untouched.
	if _, err := c2.Subscribe(ctx, heldNS, heldName, moqtransport.SubscribeOptions{}); err != nil {
		t.Fatalf("another session of the server: SUBSCRIBE: %v", err)
	}
}

// A FetchResponse.Next that panics resets the fetch stream and is logged; the session and the process go on (it
// crashed the process).
func TestFetchNextPanicRecovered(t *testing.T) {
	logs := &logBuffer{}
	calls := 0
	cfg := &moqtransport.Config{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError})),
		Handler: moqtransport.Handler{
			Fetch: func(_ context.Context, _ *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
				return &moqtransport.FetchResponse{End: wire.Location{Group: 1}, Next: func(context.Context) (*moqtransport.Object, error) {
					if calls++; calls > 1 {
						panic("next bug")
					}
					return &moqtransport.Object{Group: 0, ID: 0, Payload: []byte("first")}, nil
				}}, nil
			},
		},
	}
	e := newEnv(t, "moqt", cfg)
	ctx := timeout(t)
	c, _ := e.dial(nil)
	f, err := c.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"a"}, Name: "t", End: wire.Location{Group: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// The reset may overtake the first object (RESET_STREAM drops what
	// is unread): the fetch ends with an error either way, never io.EOF.
	var err2 error
	for err2 == nil {
		_, err2 = f.ReadObject(ctx)
	}
	if err2 == io.EOF || ctx.Err() != nil {
		t.Errorf("the fetch whose Next panicked: %v, want the stream's reset", err2)
	}
	if _, err := c.TrackStatus(ctx, wire.Namespace{"a"}, "x"); err != nil && c.Err() != nil {
		t.Fatalf("the session after the panic: %v", c.Err())
	}
	if !strings.Contains(logs.String(), "next bug") {
		t.Errorf("the panic was not logged: %q", logs.String())
	}
}

// panickyTracer panics at every SubgroupObject, and counts the calls it
// gets.
type panickyTracer struct {
	calls atomic.Int64
}

func (p *panickyTracer) ControlMessage(bool, wire.Message) { p.calls.Add(1) }
func (p *panickyTracer) SubgroupHeader(bool, *wire.SubgroupHeader) {
	p.calls.Add(1)
}
func (p *panickyTracer) SubgroupObject(bool, *wire.SubgroupHeader, *wire.ObjectHeader) {
	p.calls.Add(1)
	panic("tracer bug")
}
func (p *panickyTracer) FetchHeader(bool, uint64)             { p.calls.Add(1) }
func (p *panickyTracer) FetchObject(bool, *wire.ObjectHeader) { p.calls.Add(1) }
func (p *panickyTracer) Datagram(bool, *wire.Datagram)        { p.calls.Add(1) }

// A Tracer or an ObserveDelivery that panics is logged and not called
// again: the session delivers every object (they ran on the delivery and
// reading goroutines, where the panic crashed the process).
func TestObserverPanicRecovered(t *testing.T) {
	logs := &logBuffer{}
	tracks := &moqtransport.Tracks{}
	name := wire.FullTrackName{Namespace: wire.Namespace{"live"}, Name: "video"}
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks.Add(tr)
	var observed atomic.Int64
	serverTracer := &panickyTracer{}
	e := newEnv(t, "moqt", &moqtransport.Config{
		Handler: tracks.Handler(),
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError})),
		Tracer:  serverTracer,
		ObserveDelivery: func(time.Duration) {
			observed.Add(1)
			panic("observer bug")
		},
	})
	clientTracer := &panickyTracer{}
	client, _ := e.dial(&moqtransport.Config{Tracer: clientTracer})
	ctx := timeout(t)
	sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var got []*moqtransport.Object
	var readErr error
	go func() {
		defer close(done)
		got, readErr = collect(ctx, sub.Track())
	}()
	publishObjects(t, tr, 0, 3, 4)
	tr.Close(nil)
	<-done
	if readErr != io.EOF || len(got) != 12 {
		t.Fatalf("read %d objects, then %v; want 12, then io.EOF", len(got), readErr)
	}
	if n := observed.Load(); n != 1 {
		t.Errorf("ObserveDelivery called %d times, want once (not after its panic)", n)
	}
	for _, tc := range []struct {
		side string
		tr   *panickyTracer
	}{{"server", serverTracer}, {"client", clientTracer}} {
		// The calls up to and including the first SubgroupObject: the
		// control messages and one subgroup header, nothing after.
		n := tc.tr.calls.Load()
		tc.tr.calls.Store(0)
		if _, err := client.TrackStatus(ctx, wire.Namespace{"none"}, "x"); err == nil || client.Err() != nil {
			t.Fatalf("TRACK_STATUS after the panics: %v (session %v)", err, client.Err())
		}
		if after := tc.tr.calls.Load(); after != 0 || n == 0 {
			t.Errorf("%s Tracer: %d calls before, %d after its panic; want some, then none", tc.side, n, after)
		}
	}
	for _, want := range []string{"tracer bug", "observer bug", "panic_test.go"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the server's log lacks %q:\n%s", want, logs.String())
		}
	}
}
