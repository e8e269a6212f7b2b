package soak

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// hostile plays the behaviours of issue 10 against the relay.
type hostile struct {
	cfg     *Config
	c       *counters
	run     string
	legitNS wire.Namespace // a namespace a legitimate publisher owns
}

// behaviour is one hostile action; it records its outcome(s).
type behaviour struct {
	name string
	act  func(h *hostile, ctx context.Context, n int)
}

// behaviours are the rows of issue 10 a client can play, in the order the
// workers cycle through them.
var behaviours = []behaviour{
	{"churn", (*hostile).churn},
	{"bad-path", (*hostile).badPath},
	{"partial-objects", (*hostile).partialObjects},
	{"uni-streams", (*hostile).uniStreams},
	{"deaf-publisher", (*hostile).deafPublisher},
	{"deaf-ns-subscriber", (*hostile).deafNamespaceSubscriber},
	{"publish-hijack", (*hostile).publishHijack},
	{"fake-relay-peer", (*hostile).fakePeer},
	{"extreme-fetch", (*hostile).extremeFetch},
	{"cache-flood", (*hostile).cacheFlood},
}

// worker w cycles through the behaviours until ctx ends, starting at w so
// that workers play different behaviours at once. Its k-th action is
// numbered k*workers+w: no two actions share a number (nor a namespace).
func (h *hostile) worker(ctx context.Context, w int) {
	for k := 0; ctx.Err() == nil; k++ {
		b := behaviours[(w+k)%len(behaviours)]
		b.act(h, ctx, k*h.cfg.HostileWorkers+w)
		sleep(ctx, h.cfg.HostilePause)
	}
}

// ns is a namespace unique to action n of behaviour what.
func (h *hostile) ns(what string, n int) wire.Namespace {
	return wire.Namespace{"soak-" + what, h.run, strconv.Itoa(n)}
}

// ended reports whether the action was cut short by the end of the run;
// its outcome is then not counted.
func ended(ctx context.Context) bool { return ctx.Err() != nil }

// churn: sessions that set up, send PUBLISH_NAMESPACE of one namespace
// and close at once, half of them each under a new PATH; then a live
// session must be able to announce the namespace (no dead session holds
// it).
func (h *hostile) churn(ctx context.Context, n int) {
	const what = "churn"
	count := h.cfg.scaled(50)
	ns := h.ns(what, n)
	var failed int
	for i := range count {
		if ended(ctx) {
			return
		}
		// Every other session comes with a PATH of its own: a scope the
		// relay must delete again.
		path := ""
		if i%2 == 1 {
			path = fmt.Sprintf("/soak-%s-%d-%d", h.run, n, i)
		}
		s, closeFn, err := dial(ctx, h.cfg, path, moqtransport.Config{})
		if err != nil {
			failed++
			continue
		}
		sent := make(chan struct{})
		go func() {
			defer close(sent)
			actx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
			defer cancel()
			_, _ = s.PublishNamespace(actx, ns, nil)
		}()
		closeFn()
		<-sent
	}
	if ended(ctx) {
		return
	}
	if failed > 0 {
		h.c.outcome(what, fmt.Sprintf("%d sessions refused or failed", failed), false)
	}
	h.c.outcome(what, fmt.Sprintf("%d connect-and-close", count), false)
	// The relay sees the sessions end a little later: the owner retries
	// until AnswerWait has passed.
	s, closeFn, ok := h.session(ctx, what, "owner")
	if !ok {
		return
	}
	defer closeFn()
	deadline := time.Now().Add(h.cfg.AnswerWait)
	for {
		actx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
		_, err := s.PublishNamespace(actx, ns, nil)
		cancel()
		switch {
		case ended(ctx):
			return
		case err == nil:
			h.c.outcome(what, "the namespace is free afterwards", false)
			return
		case time.Now().After(deadline) || s.Err() != nil:
			h.c.outcome(what, "the namespace stays held: "+errKind(err), true)
			return
		}
		sleep(ctx, 100*time.Millisecond)
	}
}

// badPath: setups with a malformed PATH, which the relay must refuse.
func (h *hostile) badPath(ctx context.Context, _ int) {
	const what = "bad-path"
	for range h.cfg.scaled(20) {
		s, closeFn, err := dial(ctx, h.cfg, "/bad//path", moqtransport.Config{})
		if ended(ctx) {
			closeFn()
			return
		}
		switch {
		case err != nil:
			h.c.outcome(what, "refused: "+errKind(errors.Unwrap(err)), false)
		default:
			// WebTransport carries the path in CONNECT: the relay may
			// close the session right after setup.
			select {
			case <-s.Done():
				h.c.outcome(what, "closed: "+errKind(s.Err()), false)
			case <-time.After(h.cfg.AnswerWait):
				h.c.outcome(what, "a bad PATH was accepted", true)
			}
		}
		closeFn()
	}
}

// rawConn dials the relay without a session: the caller drives the
// connection's streams itself.
func (h *hostile) rawConn(ctx context.Context) (*moqnative.Dialed, error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return moqnative.Dial(dctx, h.cfg.URL, moqnative.ClientConfig{TLS: h.cfg.TLS})
}

// sessionConfig is the session configuration of a client on d.
func (h *hostile) sessionConfig(d *moqnative.Dialed) *moqtransport.Config {
	c := &moqtransport.Config{Path: d.Path, Authority: d.Authority}
	if h.cfg.Token != "" {
		c.SetupParams = wire.Parameters{tokenParam(h.cfg.Token)}
	}
	return c
}

// session dials the relay and sets up a session. A failure is reported
// as what's outcome, prefixed with role, and gives ok false; otherwise
// the caller calls closeFn.
func (h *hostile) session(ctx context.Context, what, role string) (s *moqtransport.Session, closeFn func(), ok bool) {
	s, closeFn, err := dial(ctx, h.cfg, "", moqtransport.Config{})
	if err != nil {
		if !ended(ctx) {
			if role != "" {
				role += " "
			}
			h.c.outcome(what, role+errKind(err), false)
		}
		return nil, nil, false
	}
	return s, closeFn, true
}

// rawSession dials the relay and runs a session on the connection, so
// that the caller can drive streams of its own on d next to it. A failure
// is reported as what's outcome and gives ok false; otherwise the caller
// calls closeFn.
func (h *hostile) rawSession(ctx context.Context, what string) (d *moqnative.Dialed, s *moqtransport.Session, closeFn func(), ok bool) {
	d, err := h.rawConn(ctx)
	if err != nil {
		if !ended(ctx) {
			h.c.outcome(what, "dial: "+errKind(err), false)
		}
		return nil, nil, nil, false
	}
	cctx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
	defer cancel()
	s, err = moqtransport.Connect(cctx, d.Conn, h.sessionConfig(d))
	if err != nil {
		_ = d.Close()
		if !ended(ctx) {
			h.c.outcome(what, "setup: "+errKind(err), false)
		}
		return nil, nil, nil, false
	}
	return d, s, func() { _ = s.Close(); _ = d.Close() }, true
}

// partialObjects: a publisher PUBLISHes a track, then opens streams of it
// that each declare a 1 MiB object and send a few bytes; half stall, half
// are reset. It holds them for a while and closes.
func (h *hostile) partialObjects(ctx context.Context, n int) {
	const what = "partial-objects"
	d, s, closeFn, ok := h.rawSession(ctx, what)
	if !ok {
		return
	}
	defer closeFn()
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: h.ns(what, n), Name: "big"}, moqtransport.TrackConfig{})
	defer tr.Close(nil)
	pctx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
	defer cancel()
	pub, err := s.Publish(pctx, tr, moqtransport.PublishOptions{})
	if err != nil {
		if !ended(ctx) {
			h.c.outcome(what, "PUBLISH refused: "+errKind(err), false)
		}
		return
	}
	alias := pub.RequestID()
	streams := h.cfg.scaled(300)
	var opened int
	for g := range streams {
		hd := wire.SubgroupHeader{TrackAlias: alias, GroupID: uint64(1000 + g), IDMode: wire.SubgroupIDZero}
		b, _ := wire.AppendSubgroupHeader(nil, &hd)
		b, _ = wire.NewSubgroupState(hd).AppendObject(b, &wire.ObjectHeader{Group: hd.GroupID, ID: 0, PayloadLength: 1 << 20})
		b = append(b, "a few bytes"...)
		octx, ocancel := context.WithTimeout(ctx, time.Second)
		str, err := d.Conn.OpenUniStreamSync(octx)
		ocancel()
		if err != nil {
			break
		}
		opened++
		if _, err := str.Write(b); err != nil {
			break
		}
		if g%2 == 1 {
			str.CancelWrite(0)
		}
	}
	hold(ctx, s, h.cfg.AnswerWait/2)
	if ended(ctx) {
		return
	}
	if s.Err() != nil {
		h.c.outcome(what, fmt.Sprintf("relay closed the session after %d streams: %s", opened, errKind(s.Err())), false)
		return
	}
	h.c.outcome(what, fmt.Sprintf("%d of %d streams opened, session kept", opened, streams), false)
}

// hold waits d, or until s ends or ctx ends.
func hold(ctx context.Context, s *moqtransport.Session, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-s.Done():
	case <-t.C:
	}
}

// uniStreams: many uni streams, each with a subgroup header for a track
// alias the relay never gave, held open.
func (h *hostile) uniStreams(ctx context.Context, n int) {
	const what = "uni-streams"
	d, s, closeFn, ok := h.rawSession(ctx, what)
	if !ok {
		return
	}
	defer closeFn()
	want := h.cfg.scaled(2000)
	opened := 0
	for i := range want {
		hd := wire.SubgroupHeader{TrackAlias: uint64(1<<20 + n), GroupID: uint64(i), IDMode: wire.SubgroupIDZero}
		b, _ := wire.AppendSubgroupHeader(nil, &hd)
		octx, ocancel := context.WithTimeout(ctx, 500*time.Millisecond)
		str, err := d.Conn.OpenUniStreamSync(octx)
		ocancel()
		if err != nil {
			break
		}
		opened++
		if _, err := str.Write(b); err != nil {
			break
		}
	}
	hold(ctx, s, h.cfg.AnswerWait/2)
	if ended(ctx) {
		return
	}
	limit := "all opened"
	if opened < want {
		limit = "stream limit reached"
	}
	end := "session kept"
	if s.Err() != nil {
		end = "relay closed the session: " + errKind(s.Err())
	}
	h.c.outcome(what, fmt.Sprintf("%s, %s", limit, end), false)
}

// rawControl is a client that speaks the control stream itself, so that it
// can stop reading it.
type rawControl struct {
	d    *moqnative.Dialed
	ctrl moqtransport.Stream
	r    *wire.ControlReader
}

// rawSetup dials, sends CLIENT_SETUP and reads SERVER_SETUP.
func (h *hostile) rawSetup(ctx context.Context, maxRequests uint64) (*rawControl, error) {
	d, err := h.rawConn(ctx)
	if err != nil {
		return nil, err
	}
	rc := &rawControl{d: d}
	sctx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
	defer cancel()
	if rc.ctrl, err = d.Conn.OpenStreamSync(sctx); err != nil {
		_ = d.Close()
		return nil, err
	}
	ps := wire.Parameters{}.WithVarint(wire.SetupParamMaxRequestID, maxRequests)
	if d.Conn.Protocol() == moqtransport.ProtocolQUIC {
		ps = ps.WithBytes(wire.SetupParamPath, []byte(d.Path))
	}
	if h.cfg.Token != "" {
		ps = append(ps, tokenParam(h.cfg.Token))
	}
	if err := rc.send(&wire.ClientSetup{Versions: []wire.Version{wire.Draft14}, Params: ps}); err != nil {
		_ = d.Close()
		return nil, err
	}
	rc.r = wire.NewControlReader(rc.ctrl)
	if _, err := rc.expect(sctx, wire.TypeServerSetup); err != nil {
		_ = d.Close()
		return nil, err
	}
	return rc, nil
}

func (rc *rawControl) send(m wire.Message) error {
	b, err := wire.AppendMessage(nil, m)
	if err != nil {
		return err
	}
	_, err = rc.ctrl.Write(b)
	return err
}

// expect reads messages until one of the types ts (skipping MAX_REQUEST_ID
// and the like), or ctx ends (the connection is then closed).
func (rc *rawControl) expect(ctx context.Context, ts ...wire.MessageType) (wire.Message, error) {
	type res struct {
		m   wire.Message
		err error
	}
	ch := make(chan res, 1)
	go func() {
		for {
			m, err := rc.r.ReadMessage()
			if err != nil || slices.Contains(ts, m.Type()) {
				ch <- res{m, err}
				return
			}
			if ctx.Err() != nil {
				ch <- res{nil, ctx.Err()}
				return
			}
		}
	}()
	select {
	case r := <-ch:
		return r.m, r.err
	case <-ctx.Done():
		_ = rc.d.Close() // ends the reader
		<-ch
		return nil, ctx.Err()
	}
}

// rawRequest sets up a raw client, sends req and waits for its answer,
// okType or errType. What fails (setup, no answer within AnswerWait, a
// refusal) is reported as what's outcome and gives nil; otherwise the
// caller owns rc and closes rc.d.
func (h *hostile) rawRequest(ctx context.Context, what string, maxRequests uint64, req wire.Message, okType, errType wire.MessageType) *rawControl {
	rc, err := h.rawSetup(ctx, maxRequests)
	if err != nil {
		if !ended(ctx) {
			h.c.outcome(what, "raw setup: "+errKind(err), false)
		}
		return nil
	}
	if err := rc.send(req); err != nil {
		_ = rc.d.Close()
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
	m, err := rc.expect(actx, okType, errType)
	cancel()
	if err != nil {
		if !ended(ctx) {
			h.c.outcome(what, req.Type().String()+" unanswered: "+errKind(err), errors.Is(err, context.DeadlineExceeded))
		}
		_ = rc.d.Close()
		return nil
	}
	if m.Type() == errType {
		var code uint64
		var reason string
		switch e := m.(type) {
		case *wire.PublishNamespaceError:
			code, reason = uint64(e.Code), e.Reason
		case *wire.SubscribeNamespaceError:
			code, reason = uint64(e.Code), e.Reason
		}
		h.c.outcome(what, fmt.Sprintf("%s refused: 0x%x %s", req.Type(), code, reason), false)
		_ = rc.d.Close()
		return nil
	}
	return rc
}

// deafPublisher: a publisher announces a namespace and then stops reading
// its control stream; SUBSCRIBEs for its tracks arrive from other
// sessions, with long track names, so that the relay's upstream SUBSCRIBEs
// overflow the publisher's receive window. Each must be answered within
// UpstreamWait (the relay may close the deaf session).
func (h *hostile) deafPublisher(ctx context.Context, n int) {
	const what = "deaf-publisher"
	ns := h.ns(what, n)
	rc := h.rawRequest(ctx, what, 1000, &wire.PublishNamespace{RequestID: 0, Namespace: ns}, wire.TypePublishNamespaceOK, wire.TypePublishNamespaceError)
	if rc == nil {
		return
	}
	defer rc.d.Close()
	// From here on nothing reads rc's control stream.
	const probers = 4
	perProber := h.cfg.scaled(50)
	long := strings.Repeat("x", 4000)
	start := time.Now()
	var (
		mu         sync.Mutex
		unanswered int
		wg         sync.WaitGroup
	)
	for p := range probers {
		s, closeFn, ok := h.session(ctx, what, "prober")
		if !ok {
			continue
		}
		defer closeFn()
		for i := range perProber {
			wg.Go(func() {
				sctx, cancel := context.WithTimeout(ctx, h.cfg.UpstreamWait)
				defer cancel()
				sub, err := s.Subscribe(sctx, ns, fmt.Sprintf("%d-%d-%s", p, i, long), moqtransport.SubscribeOptions{})
				switch {
				case err == nil:
					_ = sub.Unsubscribe()
				case errors.Is(err, context.DeadlineExceeded):
					mu.Lock()
					unanswered++
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	took := time.Since(start)
	if ended(ctx) {
		return
	}
	count := probers * perProber
	if unanswered > 0 {
		h.c.outcome(what, fmt.Sprintf("%s of %d SUBSCRIBEs unanswered in %v", someOrAll(unanswered, count), count, h.cfg.UpstreamWait), true)
		return
	}
	closed := "deaf publisher kept"
	select {
	case <-rc.d.Conn.Context().Done():
		closed = "deaf publisher closed by the relay"
	default:
	}
	within := "within " + h.cfg.AnswerWait.String()
	if took > h.cfg.AnswerWait {
		within = "within " + h.cfg.UpstreamWait.String()
	}
	h.c.outcome(what, fmt.Sprintf("all %d SUBSCRIBEs answered %s, %s", count, within, closed), false)
}

func someOrAll(n, of int) string {
	if n == of {
		return "all"
	}
	return "some"
}

// deafNamespaceSubscriber: a SUBSCRIBE_NAMESPACE session that never reads
// its control stream, while another session announces and withdraws
// namespaces under its prefix.
func (h *hostile) deafNamespaceSubscriber(ctx context.Context, n int) {
	const what = "deaf-ns-subscriber"
	prefix := h.ns(what, n)
	rc := h.rawRequest(ctx, what, 100, &wire.SubscribeNamespace{RequestID: 0, Prefix: prefix}, wire.TypeSubscribeNamespaceOK, wire.TypeSubscribeNamespaceError)
	if rc == nil {
		return
	}
	defer rc.d.Close()
	s, closeFn, ok := h.session(ctx, what, "announcer")
	if !ok {
		return
	}
	defer closeFn()
	rounds := h.cfg.scaled(200)
	for i := range rounds {
		pctx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
		p, err := s.PublishNamespace(pctx, append(slices.Clone(prefix), strconv.Itoa(i)), nil)
		cancel()
		if ended(ctx) {
			return
		}
		if err != nil {
			h.c.outcome(what, "announce churn: "+errKind(err), errors.Is(err, context.DeadlineExceeded))
			return
		}
		_ = p.Close()
	}
	h.c.outcome(what, fmt.Sprintf("%d announce/withdraw answered", rounds), false)
}

// publishHijack: PUBLISH of a track under a legitimate publisher's
// namespace, and PUBLISH_NAMESPACE of it; both must be refused.
func (h *hostile) publishHijack(ctx context.Context, _ int) {
	const what = "publish-hijack"
	s, closeFn, ok := h.session(ctx, what, "")
	if !ok {
		return
	}
	defer closeFn()
	h.hijack(ctx, what, s)
}

func (h *hostile) hijack(ctx context.Context, what string, s *moqtransport.Session) {
	actx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
	defer cancel()
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: h.legitNS, Name: "t"}, moqtransport.TrackConfig{})
	defer tr.Close(nil)
	_, err := s.Publish(actx, tr, moqtransport.PublishOptions{})
	if ended(ctx) {
		return
	}
	h.refusal(what, "PUBLISH", err)
	_, err = s.PublishNamespace(actx, h.legitNS, nil)
	if ended(ctx) {
		return
	}
	h.refusal(what, "PUBLISH_NAMESPACE", err)
}

// refusal records the answer to a request that must be refused.
func (h *hostile) refusal(what, req string, err error) {
	switch {
	case err == nil:
		h.c.outcome(what, req+" of another's namespace accepted", true)
	case errors.Is(err, context.DeadlineExceeded):
		h.c.outcome(what, req+" unanswered", true)
	default:
		h.c.outcome(what, req+" refused: "+errKind(err), false)
	}
}

// fakePeer: a client sends the relay-peer setup parameter, then tries to
// take a legitimate publisher's namespace.
func (h *hostile) fakePeer(ctx context.Context, _ int) {
	const what = "fake-relay-peer"
	s, closeFn, err := dial(ctx, h.cfg, "", moqtransport.Config{
		SetupParams: wire.Parameters{}.WithVarint(relay.ParamRelayHop, 1)})
	if err != nil {
		if !ended(ctx) {
			h.c.outcome(what, "session refused: "+errKind(errors.Unwrap(err)), false)
		}
		return
	}
	defer closeFn()
	h.hijack(ctx, what, s)
}

// extremeFetch: a track whose largest object is in group 2^62-1, and
// joining and standalone FETCHes at the ends of the location space; each
// must be answered.
func (h *hostile) extremeFetch(ctx context.Context, n int) {
	const what = "extreme-fetch"
	name := wire.FullTrackName{Namespace: h.ns(what, n), Name: "t"}
	ps, closePub, ok := h.session(ctx, what, "publisher")
	if !ok {
		return
	}
	defer closePub()
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	defer tr.Close(nil)
	actx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
	defer cancel()
	if _, err := ps.Publish(actx, tr, moqtransport.PublishOptions{}); err != nil {
		if !ended(ctx) {
			h.c.outcome(what, "PUBLISH refused: "+errKind(err), false)
		}
		return
	}
	if w, err := tr.OpenSubgroup(wire.MaxVarint, 0, moqtransport.SubgroupOptions{}); err == nil {
		_ = w.WriteObject(0, []byte("last"), nil)
		_ = w.Close()
	}
	s, closeFn, ok := h.session(ctx, what, "fetcher")
	if !ok {
		return
	}
	defer closeFn()
	record := func(req string, err error) {
		switch {
		case ended(ctx):
		case errors.Is(err, context.DeadlineExceeded):
			h.c.outcome(what, req+" unanswered", true)
		case err != nil:
			h.c.outcome(what, req+" answered: "+errKind(err), false)
		default:
			h.c.outcome(what, req+" answered: OK", false)
		}
	}
	for _, j := range []struct {
		req      string
		absolute bool
		start    uint64
	}{
		{"joining FETCH relative 0", false, 0},
		{"joining FETCH relative 2^62-1", false, wire.MaxVarint},
		{"joining FETCH absolute 2^62-1", true, wire.MaxVarint},
	} {
		jctx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
		sub, jf, err := s.SubscribeJoin(jctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{},
			moqtransport.FetchOptions{Absolute: j.absolute, JoiningStart: j.start})
		if err != nil {
			cancel()
			record("SUBSCRIBE with "+j.req, err)
			continue
		}
		f, err := jf.Wait(jctx)
		cancel()
		record(j.req, err)
		if f != nil {
			_ = f.Cancel()
		}
		jf.Cancel()
		_ = sub.Unsubscribe()
	}
	fctx, fcancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
	f, err := s.Fetch(fctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name,
		Start: wire.Location{Group: wire.MaxVarint}, End: wire.Location{Group: wire.MaxVarint}})
	fcancel()
	record("standalone FETCH of group 2^62-1", err)
	if f != nil {
		_ = f.Cancel()
	}
}

// cacheFlood: one session PUBLISHes several tracks and writes 32 MiB into
// each (a relay's per-track cache limit), holds them for a while and
// leaves.
func (h *hostile) cacheFlood(ctx context.Context, n int) {
	const what = "cache-flood"
	const objectSize = 64 << 10
	tracks := h.cfg.scaled(6)
	perTrack := h.cfg.scaled(32) << 20
	s, closeFn, ok := h.session(ctx, what, "")
	if !ok {
		return
	}
	defer closeFn()
	payload := make([]byte, objectSize)
	written := 0
	for k := range tracks {
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: h.ns(what, n), Name: strconv.Itoa(k)},
			moqtransport.TrackConfig{MaxBytes: int64(perTrack) + 1<<20})
		defer tr.Close(nil)
		actx, cancel := context.WithTimeout(ctx, h.cfg.AnswerWait)
		_, err := s.Publish(actx, tr, moqtransport.PublishOptions{})
		cancel()
		if err != nil {
			if !ended(ctx) {
				h.c.outcome(what, "PUBLISH refused: "+errKind(err), false)
			}
			return
		}
		for g := 0; g*16*objectSize < perTrack; g++ {
			w, err := tr.OpenSubgroup(uint64(g), 0, moqtransport.SubgroupOptions{EndOfGroup: true})
			if err != nil {
				break
			}
			for id := range 16 {
				if w.WriteObject(uint64(id), payload, nil) == nil {
					written += objectSize
				}
			}
			_ = w.Close()
		}
	}
	hold(ctx, s, h.cfg.AnswerWait)
	if ended(ctx) {
		return
	}
	end := "session kept"
	if s.Err() != nil {
		end = "relay closed the session: " + errKind(s.Err())
	}
	h.c.outcome(what, fmt.Sprintf("%d MiB written into %d tracks, %s", written>>20, tracks, end), false)
}
