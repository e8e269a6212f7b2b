package moqtransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// readControl reads the control stream until the session ends. Every
// message is handled here, in order; requests that need the application go
// to a goroutine of their own.
func (s *Session) readControl() {
	for {
		m, err := s.reader.ReadMessage()
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			if err == io.EOF {
				err = &wire.SessionError{Code: wire.ProtocolViolation, Reason: "the peer closed the control stream"}
			}
			s.fail(controlStreamErr(err))
			return
		}
		if s.ctx.Err() != nil {
			// Closed (by a callback of the last message, or while it
			// ran): Close may have returned, so a message read from
			// what was buffered is not handled.
			return
		}
		s.log.Debug("received", "message", m.Type().String())
		if s.cfg.Tracer != nil {
			s.cfg.Tracer.ControlMessage(false, m)
		}
		if err := s.handle(m); err != nil {
			s.fail(err)
			return
		}
	}
}

// controlStreamErr turns a reset (RESET_STREAM) or STOP_SENDING of the
// control stream into the PROTOCOL_VIOLATION of §3.3: "The control stream
// MUST NOT be closed at the underlying transport layer while the session
// is active."
func controlStreamErr(err error) error {
	var se *StreamError
	if errors.As(err, &se) {
		return violation("the peer reset or stopped the control stream (code 0x%x)", se.Code)
	}
	return err
}

func violation(format string, args ...any) error {
	return &wire.SessionError{Code: wire.ProtocolViolation, Reason: fmt.Sprintf(format, args...)}
}

// handle acts on one control message. A returned error closes the session
// with the code it carries.
func (s *Session) handle(m wire.Message) error {
	switch m := m.(type) {
	case *wire.ClientSetup, *wire.ServerSetup:
		return violation("%s after setup", m.Type())

	case *wire.MaxRequestID:
		s.noGrant.Store(false)
		return s.ids.setPeerMax(m.Max, false)
	case *wire.RequestsBlocked:
		if grant := s.ids.peerBlocked(); grant > 0 {
			s.sendOrFail(&wire.MaxRequestID{Max: grant})
		}
		return nil
	case *wire.GoAway:
		return s.handleGoAway(m)

	// Responses to our requests.
	case *wire.SubscribeOK:
		return s.handleSubscribeOK(m)
	case *wire.SubscribeError:
		return s.respond(m.RequestID, m)
	case *wire.PublishNamespaceOK:
		return s.respond(m.RequestID, m)
	case *wire.PublishNamespaceError:
		return s.respond(m.RequestID, m)
	case *wire.TrackStatusOK:
		return s.respond(m.RequestID, m)
	case *wire.TrackStatusError:
		return s.respond(m.RequestID, m)
	case *wire.FetchOK:
		s.noteFetchOK(m)
		return s.respond(m.RequestID, m)
	case *wire.FetchError:
		return s.respond(m.RequestID, m)
	case *wire.SubscribeNamespaceOK:
		return s.respond(m.RequestID, m)
	case *wire.SubscribeNamespaceError:
		return s.respond(m.RequestID, m)
	case *wire.PublishOK:
		if err := s.applyPublishOK(m); err != nil {
			return err
		}
		return s.respond(m.RequestID, m)
	case *wire.PublishError:
		return s.respond(m.RequestID, m)
	case *wire.PublishDone:
		return s.handlePublishDone(m)
	case *wire.PublishNamespaceCancel:
		s.handleNamespaceCancel(m)
		return nil

	// Requests from the peer.
	case *wire.Subscribe:
		if err := s.ids.accept(m.RequestID); err != nil {
			return err
		}
		if s.refuseSubscribe(m) {
			return s.registerTokens(m.Params)
		}
		if refused, err := s.authorize(m, m.RequestID, m.Params); refused || err != nil {
			return err
		}
		return s.handleSubscribe(m)
	case *wire.SubscribeUpdate:
		if err := s.ids.accept(m.RequestID); err != nil {
			return err
		}
		_, unknownAlias, err := s.tokens.resolve(m.Params, false)
		if err != nil {
			return err
		}
		if unknownAlias != nil {
			// §9.2.1.1: a message naming an unregistered alias is
			// rejected with UNKNOWN_AUTH_TOKEN_ALIAS; SUBSCRIBE_UPDATE
			// has no error reply, so the session closes with it (as
			// for a DELETE of an unknown alias).
			return &wire.SessionError{Code: wire.UnknownAuthTokenAlias, Reason: fmt.Sprintf("SUBSCRIBE_UPDATE %d: %v", m.RequestID, unknownAlias)}
		}
		s.requestDone()
		return s.handleSubscribeUpdate(m)
	case *wire.Unsubscribe:
		s.handleUnsubscribe(m)
		return nil
	case *wire.PublishNamespace:
		if err := s.ids.accept(m.RequestID); err != nil {
			return err
		}
		if refused, err := s.authorize(m, m.RequestID, m.Params); refused || err != nil {
			return err
		}
		s.handlePublishNamespace(m)
		return nil
	case *wire.PublishNamespaceDone:
		s.handlePublishNamespaceDone(m)
		return nil

	// Requests this version of the library refuses, each with the error
	// its registry has for it.
	case *wire.Fetch:
		if err := s.ids.accept(m.RequestID); err != nil {
			return err
		}
		if s.refuseFetch(m) {
			return s.registerTokens(m.Params)
		}
		if refused, err := s.authorize(m, m.RequestID, m.Params); refused || err != nil {
			return err
		}
		return s.handleFetch(m)
	case *wire.FetchCancel:
		s.handleFetchCancel(m)
		return nil
	case *wire.TrackStatus:
		if err := s.ids.accept(m.RequestID); err != nil {
			return err
		}
		if refused, err := s.authorize(m, m.RequestID, m.Params); refused || err != nil {
			return err
		}
		s.goFunc(func() { s.answerTrackStatus(m) })
		return nil
	case *wire.SubscribeNamespace:
		if err := s.ids.accept(m.RequestID); err != nil {
			return err
		}
		if s.refuseSubscribeNamespace(m) {
			return s.registerTokens(m.Params)
		}
		if refused, err := s.authorize(m, m.RequestID, m.Params); refused || err != nil {
			return err
		}
		s.handleSubscribeNamespace(m)
		return nil
	case *wire.UnsubscribeNamespace:
		s.handleUnsubscribeNamespace(m)
		return nil
	case *wire.Publish:
		if err := s.ids.accept(m.RequestID); err != nil {
			return err
		}
		if refused, err := s.authorize(m, m.RequestID, m.Params); refused || err != nil {
			if refused {
				s.publishRefused(m.TrackAlias)
			}
			return err
		}
		return s.handlePublish(m)
	}
	return violation("unexpected %s", m.Type())
}

// refuse answers a request with an error message; the request is over.
func (s *Session) refuse(m wire.Message) {
	s.sendOrFail(m)
	s.requestDone()
}

// requestDone ends one of the peer's requests and tops up its grant.
func (s *Session) requestDone() {
	if grant := s.ids.finish(); grant > 0 {
		s.sendOrFail(&wire.MaxRequestID{Max: grant})
	}
}

// requestHooks are what a request does around its message.
type requestHooks struct {
	// register, when set, runs once the message encodes, before it is
	// queued, with s.reqMu held (a request it starts goes on the wire
	// after this one): it registers what the answer and the data that
	// follow need. It may fill in fields of the message as long as their
	// encoding cannot fail or grow (the message is encoded again).
	register func(id uint64)
	// queued, when set, runs once the message is queued for the peer.
	queued func(id uint64)
}

// request sends a request that takes a new request ID and waits for its
// response. build makes the message for the allocated ID; it must have no
// side effect: a message that does not encode is not sent, and its ID goes
// back, so that the next request carries it (§9.1: the peer closes the
// session on a gap in the IDs).
func (s *Session) request(ctx context.Context, build func(id uint64) wire.Message, h requestHooks) (uint64, wire.Message, error) {
	if err := s.checkOpen(); err != nil {
		return 0, nil, err
	}
	// Request IDs must reach the peer in order: takeID returns with
	// s.reqMu held, and the message is queued before it is released.
	id, err := s.takeID(ctx)
	if err != nil {
		return 0, nil, err
	}
	m := build(id)
	b, err := s.encodeRequest(id, m)
	if err != nil {
		s.reqMu.Unlock()
		return 0, nil, err
	}
	if h.register != nil {
		h.register(id)
		if b, err = wire.AppendMessage(b[:0], m); err != nil {
			// register broke its contract; the ID is lost, and the
			// peer would see a gap.
			s.reqMu.Unlock()
			err = fmt.Errorf("moqt: %s %d changed after it was checked: %w", m.Type(), id, err)
			s.fail(err)
			return id, nil, err
		}
	}
	p := &pendingRequest{ch: make(chan wire.Message, 1), kind: m.Type()}
	s.mu.Lock()
	setIn(&s.pending, id, p)
	if p.kind == wire.TypeSubscribe {
		s.subscribesOut++
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		if _, still := s.pending[id]; still {
			// Given up before the answer: a late one is dropped.
			s.unpendLocked(id, p)
			setIn(&s.abandoned, id, struct{}{})
		}
		s.mu.Unlock()
	}()
	err = s.queue(b, m)
	s.reqMu.Unlock()
	if err != nil {
		return id, nil, err
	}
	if h.queued != nil {
		h.queued(id)
	}
	select {
	case m := <-p.ch:
		return id, m, nil
	case <-ctx.Done():
		return id, nil, ctx.Err()
	case <-s.closed:
		return id, nil, s.closedErr()
	}
}

// encodeRequest encodes request m, which has taken request ID id (s.reqMu
// is held). A message that does not encode gives its ID back: it is never
// sent, and the next request must carry that ID.
func (s *Session) encodeRequest(id uint64, m wire.Message) ([]byte, error) {
	b, err := wire.AppendMessage(nil, m)
	if err != nil {
		s.ids.giveBack(id)
		return nil, fmt.Errorf("moqt: %w: %s cannot be encoded (%v): check its fields and parameters", ErrRequestNotSent, m.Type(), err)
	}
	return b, nil
}

// takeID takes our next request ID and returns with s.reqMu held: the
// caller queues its request and then unlocks. While the peer's
// MAX_REQUEST_ID leaves no ID, it waits without the lock, telling the peer
// with REQUESTS_BLOCKED, until the grant rises, ctx ends,
// Config.RequestIDTimeout passes or the session ends; so a request that
// waits for credit never holds up another one's context.
func (s *Session) takeID(ctx context.Context) (uint64, error) {
	if d := s.cfg.RequestIDTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, ErrRequestsBlocked)
		defer cancel()
	}
	for {
		s.reqMu.Lock()
		id, wait, limit, notify, err := s.ids.tryAllocate()
		if err != nil {
			s.reqMu.Unlock()
			return 0, err
		}
		if wait == nil {
			return id, nil
		}
		s.reqMu.Unlock()
		if notify {
			if s.noGrant.Load() {
				s.log.Warn("the peer granted no request IDs: its SETUP had no MAX_REQUEST_ID; requests wait for a MAX_REQUEST_ID message")
			} else {
				s.log.Debug("blocked on the peer's MAX_REQUEST_ID", "limit", limit)
			}
			s.sendOrFail(&wire.RequestsBlocked{Max: limit})
		}
		select {
		case <-wait:
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), ErrRequestsBlocked) {
				why := "it has not raised MAX_REQUEST_ID"
				if s.noGrant.Load() {
					why = "its SETUP had no MAX_REQUEST_ID and no MAX_REQUEST_ID message came"
				}
				return 0, fmt.Errorf("%w: waited %v for the peer to allow another request (%s): the peer cannot take requests from this session", ErrRequestsBlocked, s.cfg.RequestIDTimeout, why)
			}
			return 0, fmt.Errorf("moqt: waiting for the peer to allow request ID %d (MAX_REQUEST_ID is %d), %w: %w", limit, limit, ErrRequestNotSent, ctx.Err())
		case <-s.closed:
			return 0, s.closedErr()
		}
	}
}

// pendingRequest is a request of ours waiting for its answer.
type pendingRequest struct {
	ch   chan wire.Message
	kind wire.MessageType
}

// answers lists the messages that answer each kind of request.
var answers = map[wire.MessageType][2]wire.MessageType{
	wire.TypeSubscribe:          {wire.TypeSubscribeOK, wire.TypeSubscribeError},
	wire.TypePublishNamespace:   {wire.TypePublishNamespaceOK, wire.TypePublishNamespaceError},
	wire.TypeTrackStatus:        {wire.TypeTrackStatusOK, wire.TypeTrackStatusError},
	wire.TypeFetch:              {wire.TypeFetchOK, wire.TypeFetchError},
	wire.TypeSubscribeNamespace: {wire.TypeSubscribeNamespaceOK, wire.TypeSubscribeNamespaceError},
	wire.TypePublish:            {wire.TypePublishOK, wire.TypePublishError},
}

// respond hands a response to the request waiting for it. A response to a
// request we never sent, a second response, or a response of the wrong
// kind is a protocol violation; a late answer to a request whose caller
// gave up is dropped.
func (s *Session) respond(id uint64, m wire.Message) error {
	s.mu.Lock()
	p, ok := s.pending[id]
	_, abandoned := s.abandoned[id]
	if ok {
		s.unpendLocked(id, p)
	}
	if abandoned {
		delete(s.abandoned, id)
	}
	s.mu.Unlock()
	if !ok {
		if abandoned {
			return nil
		}
		return violation("%s for request %d, which is not a request of ours waiting for an answer", m.Type(), id)
	}
	if a := answers[p.kind]; m.Type() != a[0] && m.Type() != a[1] {
		return violation("%s in answer to %s %d", m.Type(), p.kind, id)
	}
	p.ch <- m
	return nil
}

// unpendLocked removes a request of ours from the ones waiting for an
// answer. A SUBSCRIBE answered or given up can no longer name the alias
// of a data stream waiting for one: those streams look again (see
// aliasMayComeLocked). Called with s.mu held.
func (s *Session) unpendLocked(id uint64, p *pendingRequest) {
	delete(s.pending, id)
	if p.kind == wire.TypeSubscribe {
		s.subscribesOut--
		s.aliasNewsLocked()
	}
}

func (s *Session) ownID(id uint64) bool { return (id%2 == 0) == s.client }

func (s *Session) nextOwnID() uint64 {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	return s.ids.next
}

// peerNextID is the ID the peer's next request must have: every ID of
// its parity below it named a request it made.
func (s *Session) peerNextID() uint64 {
	s.ids.mu.Lock()
	defer s.ids.mu.Unlock()
	return s.ids.peerNext
}

func (s *Session) checkOpen() error {
	select {
	case <-s.closed:
		return s.closedErr()
	default:
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.goAwayReceived {
		return ErrGoingAway
	}
	return nil
}

func (s *Session) closedErr() error {
	if err := s.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrSessionClosed, err)
	}
	return ErrSessionClosed
}

func (s *Session) handleGoAway(m *wire.GoAway) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.goAwayReceived {
		return violation("second GOAWAY")
	}
	if !s.client && m.NewSessionURI != "" {
		return violation("GOAWAY with a new session URI sent to a server")
	}
	s.goAwayReceived, s.goAwayURI = true, m.NewSessionURI
	close(s.goAway)
	s.log.Info("peer sent GOAWAY", "uri", m.NewSessionURI)
	return nil
}

// GoAway is closed when the peer sends GOAWAY: finish what is open and
// start new requests on a new session.
func (s *Session) GoAway() <-chan struct{} { return s.goAway }

// GoAwayURI is the URI a GOAWAY named, or "" for "reconnect to the same
// URI".
func (s *Session) GoAwayURI() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.goAwayURI
}

// SendGoAway tells the peer to move to uri (empty: the same URI). Only a
// server may name a URI.
func (s *Session) SendGoAway(uri string) error {
	if !s.client || uri == "" {
		s.mu.Lock()
		sent := s.goAwaySent
		s.goAwaySent = true
		s.mu.Unlock()
		if sent {
			return errors.New("moqt: GOAWAY already sent")
		}
		return s.send(&wire.GoAway{NewSessionURI: uri})
	}
	return errors.New("moqt: a client cannot send a GOAWAY URI")
}

// Drain sends GOAWAY (with uri, empty for "reconnect to the same URI";
// only a server may name one) and waits for the session's subscriptions and
// fetches, in both directions, to end: then it closes the session with
// NO_ERROR. If ctx ends first, it closes with GOAWAY_TIMEOUT (§3.5).
func (s *Session) Drain(ctx context.Context, uri string) error {
	if err := s.SendGoAway(uri); err != nil {
		return err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.idle() {
			// Leave the peer time to read GOAWAY and close first: a
			// CONNECTION_CLOSE right behind it could overtake it.
			select {
			case <-s.closed:
			case <-ctx.Done():
			case <-time.After(drainLinger):
			}
			return s.Close()
		}
		select {
		case <-s.closed:
			return nil
		case <-ctx.Done():
			s.CloseWithError(wire.GoawayTimeout, "requests still open after GOAWAY")
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// drainLinger is how long Drain waits for an idle peer to close after
// GOAWAY before closing itself.
const drainLinger = 500 * time.Millisecond

// idle reports whether no subscription or fetch is open in either
// direction.
func (s *Session) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.served) == 0 && len(s.subs) == 0 && len(s.servedFetches) == 0 && len(s.fetches) == 0
}
