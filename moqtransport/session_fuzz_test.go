package moqtransport_test

// FuzzSession drives a whole Session, not only the codec: a scripted peer
// sends arbitrary control bytes, data streams and datagrams to a moq-go
// session over the in-memory transport (memconn_test.go), in either role,
// while the application on the moq-go side makes its own requests. After
// each script it checks the session's invariants:
//
//   - no panic (a panic in any session goroutine crashes the run);
//   - no hang: setup, Close and every application call return within
//     fuzzHang, and no goroutine started for the script outlives it;
//   - bounded memory: the bytes the script made the process allocate stay
//     within a budget computed from the session's configured limits and
//     the script's size;
//   - every close the session makes carries a draft-14 session error code
//     (§13.1.1).
//
// A script is a flags byte, then operations of four bytes or more:
// [op][arg][len hi][len lo][len bytes of data]; see the fuzzOp constants.
// The seed corpus (fuzzSeeds) holds valid sessions in both roles: setup,
// SUBSCRIBE and objects, PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE, PUBLISH,
// FETCH, GOAWAY. Run it with
//
//	go test -run '^$' -fuzz FuzzSession -parallel 1 -fuzztime 10m -fuzzminimizetime 3s ./moqtransport/
//
// An execution takes milliseconds (a session's goroutines, the leak and
// memory checks), so the default minimization budget of 60 s per new
// input would take most of the run: -fuzzminimizetime keeps it short.
// As a plain test (CI) it runs the seeds and testdata/fuzz/FuzzSession.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Script flags, the first byte.
const (
	fuzzFlagClient       = 1 << iota // the moq-go session is the client (else the server)
	fuzzFlagWebTransport             // the transport says WebTransport (else raw QUIC)
	fuzzFlagPeerCloses               // the peer closes the connection at the end (else the session's Close)
)

// Script operations.
const (
	fuzzOpControl     = iota // write data on the control stream
	fuzzOpUniFin             // open a uni stream, write data, FIN
	fuzzOpUniOpen            // open a uni stream and write data, keep it open
	fuzzOpUniMore            // write data on kept-open uni stream arg
	fuzzOpUniReset           // reset kept-open uni stream arg (code arg)
	fuzzOpDatagram           // send data as a datagram
	fuzzOpBidi               // open a bidi stream, write data, FIN
	fuzzOpControlFin         // FIN the control stream
	fuzzOpAction             // the moq-go application makes request arg (fuzzAction)
	fuzzOpStopSending        // STOP_SENDING on data stream arg the session opened
	fuzzOpSettle             // let the session read what it was sent
	fuzzOpAwait              // wait until the session has sent arg control messages
	fuzzOpCount
)

// Application calls on the moq-go side, fuzzOpAction's arg modulo
// fuzzActionCount.
const (
	fuzzActSubscribe = iota
	fuzzActFetch
	fuzzActPublishNamespace
	fuzzActSubscribeNamespace
	fuzzActTrackStatus
	fuzzActPublish
	fuzzActGoAway
	fuzzActUnsubscribe
	fuzzActCancelNamespace
	fuzzActJoiningFetch
	fuzzActUnpublishNamespace
	fuzzActUpdate
	fuzzActionCount
)

const (
	// fuzzHang bounds every wait for the session: far above what an
	// in-memory session needs, even on a loaded machine.
	fuzzHang = 10 * time.Second
	// fuzzScriptLimit bounds a whole script.
	fuzzScriptLimit = 45 * time.Second
	// fuzzSettle bounds how long a settle waits for the session to read
	// what it was sent (coverage only: nothing is asserted on it).
	fuzzSettle = 5 * time.Millisecond

	// The session's limits in the harness. The object limits are the
	// defaults: a reader allocates at most wire.EagerObjectBytes ahead of
	// the bytes that arrived, so the memory budget does not depend on
	// them, and a peer that declares a large object and sends little is
	// held to that (see the budget in runFuzzScript).
	fuzzMaxPayload = wire.DefaultMaxObjectPayload
	fuzzMaxExt     = wire.DefaultMaxExtensionsLen
	fuzzCacheBytes = 1 << 20
)

var fuzzNS = wire.Namespace{"fuzz"}

const fuzzTrack = "t"

func FuzzSession(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		runFuzzScript(t, script, fuzzFast)
	})
}

// TestFuzzSessionSeedsReachTheSession checks that the seeds are what they
// claim: each valid seed gets its session set up and exchanging messages,
// so the fuzz target starts from deep states, not from setup errors.
func TestFuzzSessionSeedsReachTheSession(t *testing.T) {
	for i, s := range fuzzSeeds(t) {
		r := runFuzzScript(t, s, fuzzPatient)
		if r.setupErr != nil {
			t.Errorf("seed %d: setup failed: %v", i, r.setupErr)
		}
		if r.received < 2 || r.awaitsMissed > 0 {
			t.Errorf("seed %d: the session sent %d control messages; %d awaits missed", i, r.received, r.awaitsMissed)
		}
		// The session ended because the script did, not on an error.
		var ce *moqtransport.ConnError
		if !errors.As(r.err, &ce) || ce.Code != wire.NoError {
			t.Errorf("seed %d: the session ended with %v", i, r.err)
		}
	}
}

// TestPublishOKForPeerSubscribe: a PUBLISH_OK whose request ID is the
// peer's own SUBSCRIBE (not a PUBLISH of ours) is a protocol violation. It
// used to reach the served subscription before its handler answered, and
// dereference its nil reader: a panic in the control goroutine, which ends
// the process (FuzzSession's first finding; its seed is
// testdata/fuzz/FuzzSession/publish-ok-for-peer-subscribe).
func TestPublishOKForPeerSubscribe(t *testing.T) {
	setup := &wire.ClientSetup{Versions: []wire.Version{wire.Draft14}, Params: wire.Parameters{}.WithVarint(wire.SetupParamMaxRequestID, 100)}
	sub := &wire.Subscribe{RequestID: 0, Namespace: fuzzNS, Name: fuzzTrack, SubscriberPriority: 1,
		GroupOrder: wire.GroupOrderAscending, Forward: true, Filter: wire.Filter{Type: wire.FilterLargestObject}}
	ok := &wire.PublishOK{RequestID: 0, Forward: true, GroupOrder: wire.GroupOrderAscending, Filter: wire.Filter{Type: wire.FilterLargestObject}}
	// Each script ends awaiting more messages than come: it waits until
	// the session closes the connection.
	for _, script := range [][]byte{
		newFuzzScript(0).control(t, setup, sub, ok).op(fuzzOpAwait, 255, nil).b,                                    // before the handler answers
		newFuzzScript(0).control(t, setup, sub).op(fuzzOpAwait, 2, nil).control(t, ok).op(fuzzOpAwait, 255, nil).b, // after SUBSCRIBE_OK
	} {
		r := runFuzzScript(t, script, fuzzPatient)
		var se *wire.SessionError
		if !errors.As(r.err, &se) || se.Code != wire.ProtocolViolation {
			t.Errorf("the session ended with %v, want PROTOCOL_VIOLATION", r.err)
		}
	}
}

// fuzzResult is what a script run observed, for the seed check.
type fuzzResult struct {
	setupErr     error
	received     int   // control messages the session sent
	awaitsMissed int   // awaits whose messages did not come
	err          error // the session's Err after Close
}

// fuzzHandler is the moq-go side's application: it serves fuzzNS/fuzzTrack
// from a cache holding a few objects, and accepts every namespace, namespace
// subscription and PUBLISH.
func fuzzHandler(tracks *moqtransport.Tracks) moqtransport.Handler {
	h := tracks.Handler()
	h.PublishNamespace = func(context.Context, *moqtransport.Session, *wire.PublishNamespace) error { return nil }
	h.PublishNamespaceDone = func(*moqtransport.Session, wire.Namespace) {}
	h.SubscribeNamespace = func(context.Context, *moqtransport.Session, *wire.SubscribeNamespace) error { return nil }
	h.NamespaceSubscribed = func(*moqtransport.Session, wire.Namespace) {}
	h.UnsubscribeNamespace = func(*moqtransport.Session, wire.Namespace) {}
	h.Publish = func(context.Context, *moqtransport.Session, *wire.Publish, *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
		return moqtransport.SubscribeOptions{}, nil
	}
	return h
}

// fuzzAuthorize decides by the tokens' values, so that scripts reach
// every answer of an Authorizer: a value starting with "deny", "expired" or
// "bad" refuses with the matching error, "close" closes the session (in
// setup) with UNAUTHORIZED; anything else allows.
func fuzzAuthorize(_ *moqtransport.Session, _ wire.Message, tokens []moqtransport.AuthToken) error {
	for _, tok := range tokens {
		v := string(tok.Value)
		switch {
		case strings.HasPrefix(v, "deny"):
			return moqtransport.ErrUnauthorized
		case strings.HasPrefix(v, "expired"):
			return moqtransport.ErrExpiredToken
		case strings.HasPrefix(v, "bad"):
			return moqtransport.ErrMalformedToken
		case strings.HasPrefix(v, "close"):
			return &wire.SessionError{Code: wire.Unauthorized, Reason: "fuzz: refused"}
		}
	}
	return nil
}

// fuzzLocalTrack returns the track the moq-go side serves: group 0 ended
// with three objects, group 1 open with one.
func fuzzLocalTrack(t testing.TB) *moqtransport.Track {
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: fuzzNS, Name: fuzzTrack}, moqtransport.TrackConfig{MaxBytes: fuzzCacheBytes})
	w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
	if err != nil {
		t.Fatal(err)
	}
	for id := range uint64(3) {
		if err := w.WriteObject(id, []byte("object"), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = tr.OpenSubgroup(1, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteObject(0, []byte("next"), nil); err != nil {
		t.Fatal(err)
	}
	return tr
}

// fuzzPeer is the scripted peer and what it saw.
type fuzzPeer struct {
	t    *testing.T
	conn *memConn
	ctrl moqtransport.Stream
	uni  []moqtransport.SendStream // kept open
	sent []*memPipe                // every pipe we wrote, to settle

	ctrlSent []byte // the control bytes the script wrote

	mu       sync.Mutex
	answered map[uint64]bool              // request IDs the session answered
	received int                          // control messages the session sent
	msgEvent chan struct{}                // closed and replaced on each
	incoming []moqtransport.ReceiveStream // data streams the session opened
	wg       sync.WaitGroup               // the drain goroutines
}

func (p *fuzzPeer) msgCount() (int, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.received, p.msgEvent
}

// drainControl reads the session's control messages until the stream ends.
func (p *fuzzPeer) drainControl(ctrl moqtransport.Stream) {
	defer p.wg.Done()
	r := wire.NewControlReader(ctrl)
	for {
		m, err := r.ReadMessage()
		if err != nil {
			// The session only sends valid messages; anything else
			// is the stream or the connection ending.
			var se *wire.SessionError
			if errors.As(err, &se) {
				p.t.Errorf("the session sent an invalid control message: %v", err)
			}
			return
		}
		p.mu.Lock()
		p.received++
		if id, kind := requestOf(m); kind == fuzzAnswer {
			p.answered[id] = true
		}
		close(p.msgEvent)
		p.msgEvent = make(chan struct{})
		p.mu.Unlock()
	}
}

// drainUni accepts the session's data streams and reads them to the end.
func (p *fuzzPeer) drainUni() {
	defer p.wg.Done()
	for {
		str, err := p.conn.AcceptUniStream(context.Background())
		if err != nil {
			return
		}
		p.mu.Lock()
		p.incoming = append(p.incoming, str)
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var buf [4096]byte
			for {
				if _, err := str.Read(buf[:]); err != nil {
					return
				}
			}
		}()
	}
}

// drainBidi refuses the bidi streams the session opens after the control
// stream (it opens none).
func (p *fuzzPeer) drainBidi() {
	defer p.wg.Done()
	for {
		str, err := p.conn.AcceptStream(context.Background())
		if err != nil {
			return
		}
		p.t.Errorf("the session opened a second bidirectional stream")
		str.CancelRead(0)
		str.CancelWrite(0)
	}
}

func (p *fuzzPeer) drainDatagrams() {
	defer p.wg.Done()
	for {
		if _, err := p.conn.ReceiveDatagram(context.Background()); err != nil {
			return
		}
	}
}

func (p *fuzzPeer) openUni(data []byte) moqtransport.SendStream {
	ctx, cancel := context.WithTimeout(context.Background(), fuzzHang)
	defer cancel()
	str, err := p.conn.OpenUniStreamSync(ctx)
	if err != nil {
		// Closed, or the session does not accept streams any more
		// (the accept queue stays full): both are the session's call.
		return nil
	}
	p.sent = append(p.sent, str.(*memStream).send)
	_, _ = str.Write(data)
	return str
}

// settle waits, at most fuzzSettle, until the session has read every byte
// the peer sent, or will not.
func (p *fuzzPeer) settle() {
	deadline := time.Now().Add(fuzzSettle)
	for _, pipe := range p.sent {
		for !pipe.settled() && time.Now().Before(deadline) {
			runtime.Gosched()
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// await waits, at most limit, until the session has sent n control
// messages, or its connection closed; it reports whether they came.
func (p *fuzzPeer) await(n int, limit time.Duration) bool {
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		c, event := p.msgCount()
		if c >= n {
			return true
		}
		select {
		case <-event:
		case <-p.conn.Context().Done():
			return false
		case <-timer.C:
			return false
		}
	}
}

// Kinds of control message, for the every-request-gets-an-answer check.
const (
	fuzzOther = iota
	fuzzRequest
	fuzzAnswer
	fuzzCancel // ends a request the session may then leave unanswered
)

// requestOf classifies m and returns the request ID it carries.
func requestOf(m wire.Message) (uint64, int) {
	switch m := m.(type) {
	case *wire.Subscribe:
		return m.RequestID, fuzzRequest
	case *wire.Fetch:
		return m.RequestID, fuzzRequest
	case *wire.TrackStatus:
		return m.RequestID, fuzzRequest
	case *wire.PublishNamespace:
		return m.RequestID, fuzzRequest
	case *wire.SubscribeNamespace:
		return m.RequestID, fuzzRequest
	case *wire.Publish:
		return m.RequestID, fuzzRequest
	case *wire.SubscribeOK:
		return m.RequestID, fuzzAnswer
	case *wire.SubscribeError:
		return m.RequestID, fuzzAnswer
	case *wire.FetchOK:
		return m.RequestID, fuzzAnswer
	case *wire.FetchError:
		return m.RequestID, fuzzAnswer
	case *wire.TrackStatusOK:
		return m.RequestID, fuzzAnswer
	case *wire.TrackStatusError:
		return m.RequestID, fuzzAnswer
	case *wire.PublishNamespaceOK:
		return m.RequestID, fuzzAnswer
	case *wire.PublishNamespaceError:
		return m.RequestID, fuzzAnswer
	case *wire.SubscribeNamespaceOK:
		return m.RequestID, fuzzAnswer
	case *wire.SubscribeNamespaceError:
		return m.RequestID, fuzzAnswer
	case *wire.PublishOK:
		return m.RequestID, fuzzAnswer
	case *wire.PublishError:
		return m.RequestID, fuzzAnswer
	case *wire.Unsubscribe:
		return m.RequestID, fuzzCancel
	case *wire.FetchCancel:
		return m.RequestID, fuzzCancel
	}
	return 0, fuzzOther
}

// checkAnswers checks that the session answers every request the script
// sent (a request the script later cancelled, or withdrew by namespace,
// excepted) while the connection is open: it waits for the answers, at
// most fuzzHang, and reports the requests left unanswered if the
// connection is still open then.
func (p *fuzzPeer) checkAnswers() {
	want := map[uint64]wire.MessageType{}
	r := wire.NewControlReader(bytes.NewReader(p.ctrlSent))
	for {
		m, err := r.ReadMessage()
		if err != nil {
			break // the end, or bytes the session refuses too
		}
		id, kind := requestOf(m)
		switch kind {
		case fuzzRequest:
			want[id] = m.Type()
		case fuzzCancel:
			delete(want, id)
		}
		switch m.(type) {
		case *wire.PublishNamespaceDone, *wire.UnsubscribeNamespace:
			// They name a namespace, not a request: drop every
			// request of that kind rather than match namespaces.
			for id, t := range want {
				if t == wire.TypePublishNamespace || t == wire.TypeSubscribeNamespace {
					delete(want, id)
				}
			}
		}
	}
	if len(want) == 0 {
		return
	}
	timer := time.NewTimer(fuzzHang)
	defer timer.Stop()
	for {
		p.mu.Lock()
		var missing []string
		for id, t := range want {
			if !p.answered[id] {
				missing = append(missing, fmt.Sprintf("%s %d", t, id))
			}
		}
		event := p.msgEvent
		p.mu.Unlock()
		if len(missing) == 0 {
			return
		}
		select {
		case <-event:
		case <-p.conn.Context().Done():
			return // the session ended: no answer is owed
		case <-timer.C:
			p.t.Errorf("the session left requests unanswered for %v while open: %v", fuzzHang, missing)
			return
		}
	}
}

// fuzzApp is the moq-go side's application: its calls run on goroutines
// the harness waits for.
type fuzzApp struct {
	t     *testing.T
	ctx   context.Context
	s     *moqtransport.Session
	local *moqtransport.Track
	wg    sync.WaitGroup

	wait time.Duration // how long a call waits for another's subscription

	mu       sync.Mutex
	subs     []*moqtransport.Subscription
	subAdded chan struct{} // closed and replaced when a subscription is added
	pubs     []*moqtransport.NamespacePublication
}

// lastSub returns the newest subscription, waiting for one made by a call
// still in flight for at most the timing's action wait.
func (a *fuzzApp) lastSub() *moqtransport.Subscription {
	timer := time.NewTimer(a.wait)
	defer timer.Stop()
	for {
		a.mu.Lock()
		n, added := len(a.subs), a.subAdded
		if n > 0 {
			sub := a.subs[n-1]
			a.mu.Unlock()
			return sub
		}
		a.mu.Unlock()
		select {
		case <-added:
		case <-timer.C:
			return nil
		case <-a.ctx.Done():
			return nil
		}
	}
}

// readTrack reads a received track until it ends or the script does.
func (a *fuzzApp) readTrack(tr *moqtransport.Track) {
	rd := tr.NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer rd.Close()
	for {
		if _, err := rd.Next(a.ctx); err != nil {
			return
		}
	}
}

func (a *fuzzApp) do(act byte) {
	s, ctx := a.s, a.ctx
	switch act % fuzzActionCount {
	case fuzzActSubscribe:
		sub, err := s.Subscribe(ctx, fuzzNS, fuzzTrack, moqtransport.SubscribeOptions{Priority: act})
		if err == nil {
			a.mu.Lock()
			a.subs = append(a.subs, sub)
			close(a.subAdded)
			a.subAdded = make(chan struct{})
			a.mu.Unlock()
			a.readTrack(sub.Track())
		}
	case fuzzActFetch:
		f, err := s.Fetch(ctx, moqtransport.FetchOptions{Namespace: fuzzNS, Name: fuzzTrack, End: wire.Location{Group: 4}})
		if err == nil {
			for {
				if _, err := f.ReadObject(ctx); err != nil {
					break
				}
			}
		}
	case fuzzActPublishNamespace:
		if p, err := s.PublishNamespace(ctx, fuzzNS, nil); err == nil {
			a.mu.Lock()
			a.pubs = append(a.pubs, p)
			a.mu.Unlock()
		}
	case fuzzActSubscribeNamespace:
		_, _ = s.SubscribeNamespace(ctx, fuzzNS, nil)
	case fuzzActTrackStatus:
		_, _ = s.TrackStatus(ctx, fuzzNS, fuzzTrack)
	case fuzzActPublish:
		_, _ = s.Publish(ctx, a.local, moqtransport.PublishOptions{})
	case fuzzActGoAway:
		_ = s.SendGoAway("")
	case fuzzActUnsubscribe:
		if sub := a.lastSub(); sub != nil {
			_ = sub.Unsubscribe()
		}
	case fuzzActCancelNamespace:
		_ = s.CancelNamespace(fuzzNS, wire.NamespaceInternalError, "fuzz")
	case fuzzActJoiningFetch:
		if sub := a.lastSub(); sub != nil {
			f, err := s.Fetch(ctx, moqtransport.FetchOptions{Joining: sub, JoiningStart: uint64(act >> 4)})
			if err == nil {
				for {
					if _, err := f.ReadObject(ctx); err != nil {
						break
					}
				}
			}
		}
	case fuzzActUnpublishNamespace:
		a.mu.Lock()
		var p *moqtransport.NamespacePublication
		if len(a.pubs) > 0 {
			p = a.pubs[len(a.pubs)-1]
		}
		a.mu.Unlock()
		if p != nil {
			_ = p.Close()
		}
	case fuzzActUpdate:
		if sub := a.lastSub(); sub != nil {
			_ = sub.Update(ctx, moqtransport.UpdateOptions{Start: moqtransport.Location{Group: uint64(act >> 4)}, Priority: act, Paused: act&1 != 0})
		}
	}
}

// awaitClosed fails the test, with every goroutine's stack, if done is not
// closed within fuzzHang.
func awaitClosed(t *testing.T, what string, done <-chan struct{}) bool {
	t.Helper()
	select {
	case <-done:
		return true
	case <-time.After(fuzzHang):
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Errorf("hang: %s did not happen within %v\n%s", what, fuzzHang, buf)
		return false
	}
}

// fuzzTiming is how long a script run waits where only coverage, not an
// invariant, depends on the wait.
type fuzzTiming struct {
	// setup is the session's SetupTimeout: a script that never completes
	// setup costs that much.
	setup time.Duration
	// action bounds how long an application call may take to send its
	// request, and an await for the session's messages, before the script
	// goes on (a call that waits for request-ID credit sends nothing).
	action time.Duration
}

var (
	// fuzzFast keeps the fuzzer's executions short.
	fuzzFast = fuzzTiming{setup: 10 * time.Millisecond, action: 10 * time.Millisecond}
	// fuzzPatient is for the seed check, so that its seeds run the same
	// on a loaded machine.
	fuzzPatient = fuzzTiming{setup: fuzzHang, action: fuzzHang}
)

// runFuzzScript runs one script and checks the invariants.
func runFuzzScript(t *testing.T, script []byte, timing fuzzTiming) fuzzResult {
	t.Helper()
	var res fuzzResult
	if len(script) == 0 {
		return res
	}
	// The per-script limit: a hang anywhere, even where no wait below
	// is bounded, crashes the run with every goroutine's stack, so that
	// the fuzzer records the script.
	watchdog := time.AfterFunc(fuzzScriptLimit, func() {
		buf := make([]byte, 4<<20)
		buf = buf[:runtime.Stack(buf, true)]
		panic(fmt.Sprintf("hang: a session script ran over %v\n%s", fuzzScriptLimit, buf))
	})
	defer watchdog.Stop()
	flags, ops := script[0], script[1:]
	proto := moqtransport.ProtocolQUIC
	if flags&fuzzFlagWebTransport != 0 {
		proto = moqtransport.ProtocolWebTransport
	}
	client := flags&fuzzFlagClient != 0

	leakOpts := []goleak.Option{goleak.IgnoreCurrent()}
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	local, remote := newMemConnPair(proto)
	served := fuzzLocalTrack(t)
	defer served.Close(nil)
	tracks := &moqtransport.Tracks{}
	tracks.Add(served)
	cfg := &moqtransport.Config{
		Handler:               fuzzHandler(tracks),
		SetupTimeout:          timing.setup,
		MaxRequests:           8,
		MaxPendingStreams:     8,
		PendingStreamTimeout:  200 * time.Millisecond,
		MaxAuthTokenCacheSize: 256,
		Authorize:             fuzzAuthorize,
		Track:                 moqtransport.TrackConfig{MaxBytes: fuzzCacheBytes},
		Reader:                wire.StreamReaderConfig{MaxObjectPayload: fuzzMaxPayload, MaxExtensionsLen: fuzzMaxExt},
	}

	var sess *moqtransport.Session
	setupDone := make(chan struct{})
	go func() {
		defer close(setupDone)
		if client {
			sess, res.setupErr = moqtransport.Connect(context.Background(), local, cfg)
		} else {
			sess, res.setupErr = moqtransport.Accept(context.Background(), local, "", cfg)
		}
	}()

	p := &fuzzPeer{t: t, conn: remote, msgEvent: make(chan struct{}), answered: map[uint64]bool{}}
	octx, ocancel := context.WithTimeout(context.Background(), fuzzHang)
	var err error
	if client {
		p.ctrl, err = remote.AcceptStream(octx)
	} else {
		p.ctrl, err = remote.OpenStreamSync(octx)
	}
	ocancel()
	if err != nil {
		if remote.link.err(remote.side) == nil {
			t.Fatalf("the control stream: %v", err)
		}
		// The session gave up first (its setup timed out): the
		// script's bytes go nowhere, and the checks below still run.
		p.ctrl, _ = remote.newStream(true)
	}
	p.sent = append(p.sent, p.ctrl.(*memStream).send)
	p.wg.Add(4)
	go p.drainControl(p.ctrl)
	go p.drainUni()
	go p.drainBidi()
	go p.drainDatagrams()

	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	app := &fuzzApp{t: t, ctx: actx, local: fuzzLocalTrack(t), wait: timing.action, subAdded: make(chan struct{})}
	defer app.local.Close(nil)
	setupWaited := false
	streams := 0
	for len(ops) >= 4 {
		op, arg := ops[0], ops[1]
		n := int(binary.BigEndian.Uint16(ops[2:4]))
		ops = ops[4:]
		n = min(n, len(ops))
		data := ops[:n]
		ops = ops[n:]
		switch op % fuzzOpCount {
		case fuzzOpControl:
			if _, err := p.ctrl.Write(data); err == nil {
				p.ctrlSent = append(p.ctrlSent, data...)
			}
		case fuzzOpUniFin:
			if str := p.openUni(data); str != nil {
				_ = str.Close()
				streams++
			}
		case fuzzOpUniOpen:
			if str := p.openUni(data); str != nil {
				p.uni = append(p.uni, str)
				streams++
			}
		case fuzzOpUniMore:
			if len(p.uni) > 0 {
				_, _ = p.uni[int(arg)%len(p.uni)].Write(data)
			}
		case fuzzOpUniReset:
			if len(p.uni) > 0 {
				p.uni[int(arg)%len(p.uni)].CancelWrite(uint64(arg))
			}
		case fuzzOpDatagram:
			_ = remote.SendDatagram(data)
		case fuzzOpBidi:
			ctx, cancel := context.WithTimeout(context.Background(), fuzzHang)
			if str, err := remote.OpenStreamSync(ctx); err == nil {
				p.sent = append(p.sent, str.(*memStream).send)
				_, _ = str.Write(data)
				_ = str.Close()
				streams++
			}
			cancel()
		case fuzzOpControlFin:
			_ = p.ctrl.Close()
		case fuzzOpAction:
			if !setupWaited {
				setupWaited = true
				if !awaitClosed(t, "setup", setupDone) {
					return res
				}
				app.s = sess // before any call's goroutine
				if sess != nil {
					// Setup can complete before the session's own
					// SETUP is in the pipe (the script answers it
					// without waiting for it): wait for it to be, so
					// that its write is not taken below for the
					// call's request.
					p.await(1, timing.action)
				}
			}
			if sess == nil {
				continue
			}
			// Run the call, and wait until it wrote its request
			// (or returned, or the session ended) so that the
			// script's next bytes can answer it.
			out := p.ctrl.(*memStream).recv
			before, wrote := out.writes()
			called := make(chan struct{})
			app.wg.Add(1)
			go func() {
				defer app.wg.Done()
				defer close(called)
				app.do(arg)
			}()
			if n, _ := out.writes(); n == before {
				select {
				case <-wrote:
				case <-called:
				case <-sess.Done():
				case <-time.After(timing.action):
				}
			}
		case fuzzOpStopSending:
			p.mu.Lock()
			if len(p.incoming) > 0 {
				p.incoming[int(arg)%len(p.incoming)].CancelRead(uint64(arg))
			}
			p.mu.Unlock()
		case fuzzOpSettle:
			p.settle()
		case fuzzOpAwait:
			if !p.await(int(arg), timing.action) {
				res.awaitsMissed++
			}
		}
	}

	// The end: the session reads what is left and answers every request
	// of the script's it has not been told to drop, unless the connection
	// closed; then the peer or the application closes; everything must
	// wind down.
	p.settle()
	if !setupWaited {
		// Answers need the session up (or gone).
		if !awaitClosed(t, "setup", setupDone) {
			return res
		}
	}
	p.checkAnswers()
	if flags&fuzzFlagPeerCloses != 0 {
		_ = remote.CloseWithError(uint64(wire.NoError), "the fuzz peer is done")
	}
	if !awaitClosed(t, "setup", setupDone) {
		return res
	}
	if sess != nil {
		if flags&fuzzFlagPeerCloses != 0 && !awaitClosed(t, "the session to see the peer's close", sess.Done()) {
			return res
		}
		closed := make(chan struct{})
		go func() {
			defer close(closed)
			_ = sess.Close()
		}()
		if !awaitClosed(t, "Session.Close", closed) {
			return res
		}
	}
	acancel()
	appDone := make(chan struct{})
	go func() {
		defer close(appDone)
		app.wg.Wait()
	}()
	if !awaitClosed(t, "the application's calls to return", appDone) {
		return res
	}
	// Whoever closed, the connection is closed now, and if the session
	// closed it, with a draft-14 code.
	code, by, closed := remote.link.closeCode()
	if !closed {
		t.Errorf("the connection is still open after the session ended")
	} else if by == local.side {
		if name := wire.SessionErrorCode(code).String(); len(name) > 1 && name[:2] == "0x" {
			t.Errorf("the session closed the connection with code 0x%x, not a draft-14 session error code", code)
		}
	}
	if sess != nil {
		if res.err = sess.Err(); res.err == nil {
			t.Errorf("Session.Err is nil after Close")
		}
	}
	peerDone := make(chan struct{})
	go func() {
		defer close(peerDone)
		p.wg.Wait()
	}()
	if !awaitClosed(t, "the peer's readers to end", peerDone) {
		return res
	}
	p.mu.Lock()
	res.received = p.received
	p.mu.Unlock()

	// Memory: what the script made the process allocate, against a
	// budget from the limits: a fixed part for the session and its
	// tracks, a multiple of the script's bytes (each is parsed, copied
	// into a cache, and written out again), and per stream the peer
	// opened what a reader may allocate ahead of the bytes that arrived:
	// an extension block and a payload of up to wire.EagerObjectBytes
	// each. Not the declared lengths: fuzzMaxPayload is 64 MiB, so a
	// reader that trusted a declared length would blow this budget.
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	budget := uint64(8<<20) + 64*uint64(len(script)) + uint64(streams+1)*2*wire.EagerObjectBytes
	if got := after.TotalAlloc - before.TotalAlloc; got > budget {
		t.Errorf("the script (%d bytes, %d streams) allocated %d bytes, over the budget of %d", len(script), streams, got, budget)
	}
	if err := goleak.Find(leakOpts...); err != nil {
		t.Errorf("goroutines outlived the script: %v", err)
	}
	return res
}

// ---------------------------------------------------------------------------
// Seeds

// fuzzScript builds a script.
type fuzzScript struct{ b []byte }

func newFuzzScript(flags byte) *fuzzScript { return &fuzzScript{b: []byte{flags}} }

func (s *fuzzScript) op(op, arg byte, data []byte) *fuzzScript {
	s.b = append(s.b, op, arg)
	s.b = binary.BigEndian.AppendUint16(s.b, uint16(len(data)))
	s.b = append(s.b, data...)
	return s
}

func (s *fuzzScript) control(t testing.TB, ms ...wire.Message) *fuzzScript {
	t.Helper()
	var b []byte
	for _, m := range ms {
		var err error
		if b, err = wire.AppendMessage(b, m); err != nil {
			t.Fatalf("encoding %s: %v", m.Type(), err)
		}
	}
	return s.op(fuzzOpControl, 0, b)
}

func (s *fuzzScript) action(a byte) *fuzzScript { return s.op(fuzzOpAction, a, nil) }

// fuzzSubgroup is a subgroup stream of alias with n small objects.
func fuzzSubgroup(t testing.TB, alias, group uint64, n int) []byte {
	t.Helper()
	h := wire.SubgroupHeader{TrackAlias: alias, GroupID: group, PublisherPriority: 128}
	b, err := wire.AppendSubgroupHeader(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	st := wire.NewSubgroupState(h)
	for i := range n {
		payload := []byte(fmt.Sprintf("payload %d", i))
		if b, err = st.AppendObject(b, &wire.ObjectHeader{ID: uint64(i), PayloadLength: uint64(len(payload))}); err != nil {
			t.Fatal(err)
		}
		b = append(b, payload...)
	}
	return b
}

// fuzzLyingSubgroup is a subgroup stream of alias whose one object
// declares a payload of declared bytes and carries a few.
func fuzzLyingSubgroup(t testing.TB, alias, group, declared uint64) []byte {
	t.Helper()
	h := wire.SubgroupHeader{TrackAlias: alias, GroupID: group, PublisherPriority: 128}
	b, err := wire.AppendSubgroupHeader(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	st := wire.NewSubgroupState(h)
	if b, err = st.AppendObject(b, &wire.ObjectHeader{PayloadLength: declared}); err != nil {
		t.Fatal(err)
	}
	return append(b, "a lie"...)
}

func fuzzSeeds(t testing.TB) [][]byte {
	t.Helper()
	clientSetup := &wire.ClientSetup{Versions: []wire.Version{wire.Draft14},
		Params: wire.Parameters{}.WithVarint(wire.SetupParamMaxRequestID, 100).WithBytes(wire.SetupParamPath, []byte("/fuzz"))}
	wtClientSetup := &wire.ClientSetup{Versions: []wire.Version{wire.Draft14},
		Params: wire.Parameters{}.WithVarint(wire.SetupParamMaxRequestID, 100)}
	serverSetup := &wire.ServerSetup{Version: wire.Draft14, Params: wire.Parameters{}.WithVarint(wire.SetupParamMaxRequestID, 100)}
	sub := func(id uint64, name string) *wire.Subscribe {
		return &wire.Subscribe{RequestID: id, Namespace: fuzzNS, Name: name, SubscriberPriority: 128,
			GroupOrder: wire.GroupOrderAscending, Forward: true, Filter: wire.Filter{Type: wire.FilterLargestObject}}
	}
	var seeds [][]byte
	// The moq-go server: a client subscribes to its track and reads
	// objects, then unsubscribes.
	seeds = append(seeds, newFuzzScript(0).
		control(t, clientSetup, sub(0, fuzzTrack)).op(fuzzOpAwait, 2, nil).
		control(t, &wire.Unsubscribe{RequestID: 0}).op(fuzzOpAwait, 3, nil).b)
	// ... over WebTransport, the peer closing, with a FETCH and a
	// TRACK_STATUS.
	seeds = append(seeds, newFuzzScript(fuzzFlagWebTransport|fuzzFlagPeerCloses).
		control(t, wtClientSetup,
			&wire.Fetch{RequestID: 0, SubscriberPriority: 1, GroupOrder: wire.GroupOrderAscending, FetchType: wire.FetchStandalone,
				Namespace: fuzzNS, Name: fuzzTrack, Start: wire.Location{}, End: wire.Location{Group: 2}},
			&wire.TrackStatus{RequestID: 2, Namespace: fuzzNS, Name: fuzzTrack, GroupOrder: wire.GroupOrderAscending, Filter: wire.Filter{Type: wire.FilterLargestObject}}).
		op(fuzzOpAwait, 3, nil).b)
	// The moq-go server: a client publishes a namespace and a track,
	// sends its objects on a stream and a datagram, and subscribes to
	// namespaces.
	pub := &wire.Publish{RequestID: 2, Namespace: fuzzNS, Name: "pushed", TrackAlias: 7, GroupOrder: wire.GroupOrderAscending, Forward: true}
	seeds = append(seeds, newFuzzScript(0).
		control(t, clientSetup, &wire.PublishNamespace{RequestID: 0, Namespace: fuzzNS}, pub).
		op(fuzzOpUniFin, 0, fuzzSubgroup(t, 7, 0, 3)).
		op(fuzzOpDatagram, 0, mustDatagram(t, 7, 1)).
		control(t, &wire.SubscribeNamespace{RequestID: 4, Prefix: fuzzNS}).op(fuzzOpAwait, 4, nil).
		control(t, &wire.PublishNamespaceDone{Namespace: fuzzNS}, &wire.GoAway{}).op(fuzzOpSettle, 0, nil).b)
	// The moq-go client subscribes; the server accepts and sends
	// objects, then ends the subscription.
	seeds = append(seeds, newFuzzScript(fuzzFlagClient).
		control(t, serverSetup).action(fuzzActSubscribe).
		control(t, &wire.SubscribeOK{RequestID: 0, TrackAlias: 3, GroupOrder: wire.GroupOrderAscending}).
		op(fuzzOpUniOpen, 0, fuzzSubgroup(t, 3, 0, 2)).
		op(fuzzOpDatagram, 0, mustDatagram(t, 3, 1)).
		op(fuzzOpSettle, 0, nil).
		action(fuzzActJoiningFetch).op(fuzzOpAwait, 3, nil).
		control(t, &wire.PublishDone{RequestID: 0, StatusCode: wire.DoneTrackEnded, StreamCount: 1}).b)
	// Declared-length lies: the server accepts the subscription and opens
	// streams whose object declares 32 MiB (within fuzzMaxPayload) but
	// sends a few bytes, then stalls; the memory budget holds the reader
	// to what arrived.
	lies := newFuzzScript(fuzzFlagClient).
		control(t, serverSetup).action(fuzzActSubscribe).
		control(t, &wire.SubscribeOK{RequestID: 0, TrackAlias: 3, GroupOrder: wire.GroupOrderAscending})
	for g := range uint64(4) {
		lies.op(fuzzOpUniOpen, 0, fuzzLyingSubgroup(t, 3, g, 32<<20))
	}
	seeds = append(seeds, lies.op(fuzzOpSettle, 0, nil).
		control(t, &wire.PublishDone{RequestID: 0, StatusCode: wire.DoneTrackEnded, StreamCount: 4}).b)
	// The moq-go client publishes a namespace, subscribes to namespaces,
	// pushes a track, and is told to go away.
	seeds = append(seeds, newFuzzScript(fuzzFlagClient|fuzzFlagWebTransport|fuzzFlagPeerCloses).
		control(t, serverSetup).action(fuzzActPublishNamespace).
		control(t, &wire.PublishNamespaceOK{RequestID: 0}).action(fuzzActSubscribeNamespace).
		control(t, &wire.SubscribeNamespaceOK{RequestID: 2}, &wire.PublishNamespace{RequestID: 1, Namespace: wire.Namespace{"fuzz", "x"}}).
		op(fuzzOpAwait, 4, nil).action(fuzzActPublish).
		control(t, &wire.PublishOK{RequestID: 4, Forward: true, SubscriberPriority: 1, GroupOrder: wire.GroupOrderAscending,
			Filter: wire.Filter{Type: wire.FilterLargestObject}}).
		op(fuzzOpAwait, 5, nil).control(t, &wire.GoAway{}).b)
	// Tokens: CLIENT_SETUP registers an alias, a SUBSCRIBE uses it, one
	// is refused by its value, and the alias is deleted.
	param := func(tok wire.Token) wire.Parameters {
		kv, err := wire.TokenParam(tok)
		if err != nil {
			t.Fatal(err)
		}
		return wire.Parameters{kv}
	}
	tokSetup := &wire.ClientSetup{Versions: []wire.Version{wire.Draft14},
		Params: append(wire.Parameters{}.WithVarint(wire.SetupParamMaxRequestID, 100),
			param(wire.Token{AliasType: wire.TokenRegister, Alias: 1, Type: 0, Value: []byte("ok")})...)}
	s1, s2 := sub(0, fuzzTrack), sub(2, fuzzTrack)
	s1.Params = param(wire.Token{AliasType: wire.TokenUseAlias, Alias: 1})
	s2.Params = param(wire.Token{AliasType: wire.TokenUseValue, Value: []byte("deny")})
	seeds = append(seeds, newFuzzScript(0).
		control(t, tokSetup, s1, s2).op(fuzzOpAwait, 3, nil).
		control(t, &wire.Unsubscribe{RequestID: 0}).op(fuzzOpAwait, 4, nil).b)
	return seeds
}

func mustDatagram(t testing.TB, alias, group uint64) []byte {
	t.Helper()
	b, err := wire.AppendDatagram(nil, &wire.Datagram{TrackAlias: alias, Group: group, Payload: []byte("datagram")})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
