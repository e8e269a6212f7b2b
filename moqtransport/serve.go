package moqtransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// servedSubscription is a SUBSCRIBE from the peer that we serve from a
// track.
type servedSubscription struct {
	s      *Session
	req    *wire.Subscribe
	key    string // full track name, to refuse a second subscription to it
	pushed bool   // a PUBLISH of ours, not the peer's SUBSCRIBE
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	reader   *TrackReader
	largest  wire.Location // SUBSCRIBE_OK's, for joining fetches
	exists   bool
	accepted bool
	// answered is closed once SUBSCRIBE_OK or SUBSCRIBE_ERROR is sent.
	answered chan struct{}
	// ended is closed when delivery is over.
	ended    chan struct{}
	start    wire.Location
	hasEnd   bool
	endGroup uint64
	priority uint8
	// forward and deliveryTimeout (the subscriber's DELIVERY TIMEOUT, a
	// time.Duration, 0 for none) are read per object by the dispatcher
	// and the writers, without mu; they are set under mu.
	forward         atomic.Bool
	deliveryTimeout atomic.Int64
	track           *Track
	opened          uint64
	// unsubscribed is set by UNSUBSCRIBE: the subscription ends with
	// SUBSCRIPTION_ENDED.
	unsubscribed bool
	// over is set just before the subscription's last message to the
	// peer (SUBSCRIBE_ERROR or PUBLISH_DONE) is queued: from then on the
	// peer may SUBSCRIBE to the track again, though the subscription
	// stays in served until run has returned.
	over atomic.Bool
	// refused is set by PUBLISH_ERROR for a PUBLISH we sent: delivery
	// stops and no PUBLISH_DONE follows.
	refused bool
	// endedBy is set by EndSubscription: the PUBLISH_DONE to end with.
	endedBy *RequestError

	// The scheduler's view (sched.go). streams is the dispatcher's:
	// the subgroups it has handed to a writer, live or abandoned.
	streams map[subgroupKey]*outStream
	// paused: the subgroups not open when forwarding paused dropped one
	// of their objects; the rest of each is dropped too (dispatch),
	// until its end. The dispatcher's, like streams.
	paused  map[subgroupKey]struct{}
	wg      sync.WaitGroup // the writers
	backlog atomic.Int64   // bytes of objects queued for the writers
	subPrio atomic.Uint32  // subscriber priority, for the scheduler
	order   wire.GroupOrder
	// Finished streams to reset at their delivery deadline (sched.go).
	expMu    sync.Mutex
	expiring []expiry
	expTimer *time.Timer
}

type subgroupKey struct{ group, subgroup uint64 }

// endCode is the reset code for the streams of a subscription that ends.
func (sv *servedSubscription) endCode() wire.StreamResetCode {
	if sv.s.ctx.Err() != nil {
		return wire.ResetSessionClosed
	}
	return wire.ResetCancelled
}

// refuseSubscribe refuses, before it is authorized, a SUBSCRIBE that
// crossed our PUBLISH of the same track, and reports whether it did.
// Checked first, as refuseFetch is, so that an authorizer is not asked
// about (and does not note a grant for) a request that cannot be served;
// its token REGISTERs are then taken by the caller (registerTokens). The
// peer's second SUBSCRIBE of a track, a protocol violation, is left to
// handleSubscribe, after authorization, as it was.
func (s *Session) refuseSubscribe(m *wire.Subscribe) bool {
	s.mu.Lock()
	other := s.servingLocked(m)
	s.mu.Unlock()
	if other == nil || !other.pushed {
		return false
	}
	refused, _ := s.refuseServed(m, other)
	return refused
}

// servingLocked returns the live subscription this session serves for
// m's track, if any. Called with s.mu held.
func (s *Session) servingLocked(m *wire.Subscribe) *servedSubscription {
	key := trackKey(wire.FullTrackName{Namespace: m.Namespace, Name: m.Name})
	for _, other := range s.served {
		if other.key == key && !other.isUnsubscribed() && !other.over.Load() {
			return other
		}
	}
	return nil
}

// refuseServed answers SUBSCRIBE m for a track that other serves already
// (nothing if other is nil).
func (s *Session) refuseServed(m *wire.Subscribe, other *servedSubscription) (refused bool, err error) {
	if other == nil {
		return false, nil
	}
	if other.pushed {
		// Our PUBLISH of the track crossed the peer's SUBSCRIBE (§5.1
		// forbids two subscriptions to a track, but the peer could not
		// know of ours): refused, not a violation.
		s.refuse(&wire.SubscribeError{RequestID: m.RequestID, Code: wire.SubscribeInternalError,
			Reason: fmt.Sprintf("track %s is already published to this session (PUBLISH request %d)", m.Namespace.String()+"/"+m.Name, other.req.RequestID)})
		return true, nil
	}
	return false, violation("a second SUBSCRIBE for track %s in one session", m.Namespace.String()+"/"+m.Name)
}

func (s *Session) handleSubscribe(m *wire.Subscribe) error {
	s.mu.Lock()
	// Checked again: our PUBLISH of the track may have been registered
	// since refuseSubscribe.
	if other := s.servingLocked(m); other != nil {
		s.mu.Unlock()
		_, err := s.refuseServed(m, other)
		return err
	}
	sv := s.newServedLocked(m)
	s.mu.Unlock()
	s.goFunc(sv.run)
	return nil
}

// newServed registers a subscription we serve (a SUBSCRIBE from the peer,
// or a PUBLISH we send).
func (s *Session) newServed(req *wire.Subscribe) *servedSubscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newServedLocked(req)
}

func (s *Session) newServedLocked(req *wire.Subscribe) *servedSubscription {
	ctx, cancel := context.WithCancel(s.ctx)
	timeout, _ := req.Params.DeliveryTimeout()
	sv := &servedSubscription{
		s: s, req: req, key: trackKey(wire.FullTrackName{Namespace: req.Namespace, Name: req.Name}),
		ctx: ctx, cancel: cancel,
		priority: req.SubscriberPriority,
		order:    req.GroupOrder, // run resolves GroupOrderPublisher
		streams:  map[subgroupKey]*outStream{},
		answered: make(chan struct{}),
		ended:    make(chan struct{}),
	}
	// The subscription's end cuts its streams' blocked writes
	// (streamctx.go); sv.cancel always runs when it ends.
	context.AfterFunc(ctx, sv.cutStreams)
	sv.subPrio.Store(uint32(req.SubscriberPriority))
	sv.forward.Store(req.Forward)
	sv.deliveryTimeout.Store(int64(timeout))
	// The range an absolute filter names is known now: a SUBSCRIBE_UPDATE
	// that arrives before run resolves the filter is checked against it.
	switch req.Filter.Type {
	case wire.FilterAbsoluteRange:
		sv.hasEnd, sv.endGroup = true, req.Filter.EndGroup
		fallthrough
	case wire.FilterAbsoluteStart:
		sv.start = req.Filter.Start
	}
	setIn(&s.served, req.RequestID, sv)
	return sv
}

// run asks the handler for the track, answers the SUBSCRIBE, and delivers
// objects until the subscription ends.
func (sv *servedSubscription) run() {
	s := sv.s
	answered := false
	answer := func() {
		if !answered {
			answered = true
			close(sv.answered)
		}
	}
	defer func() {
		answer()
		sv.cancel()
		s.mu.Lock()
		delete(s.served, sv.req.RequestID)
		s.mu.Unlock()
		close(sv.ended)
		if s.ctx.Err() == nil {
			s.requestDone()
		}
	}()
	track, release, err := s.handlerTrack(sv.ctx, sv.req)
	defer release()
	if s.ctx.Err() != nil {
		return
	}
	if err != nil {
		code, reason := requestCode(err, wire.TypeSubscribeError, uint64(wire.SubscribeInternalError))
		sv.over.Store(true)
		s.sendOrFail(&wire.SubscribeError{RequestID: sv.req.RequestID, Code: wire.SubscribeErrorCode(code), Reason: reason})
		return
	}
	sv.mu.Lock()
	reader, largest, exists := track.newReaderAt(func(largest Location, exists bool) (ReaderFilter, bool) {
		start, hasEnd, endGroup, ok := filterRange(sv.req.Filter, largest, exists)
		if !ok {
			return ReaderFilter{}, false
		}
		// A SUBSCRIBE_UPDATE handled meanwhile may have narrowed the
		// range: keep the narrower of the two.
		if sv.start.Less(start) {
			sv.start = start
		}
		if hasEnd && (!sv.hasEnd || endGroup < sv.endGroup) {
			sv.hasEnd, sv.endGroup = true, endGroup
		}
		return ReaderFilter{Start: sv.start, HasEnd: sv.hasEnd, EndGroup: sv.endGroup}, true
	})
	if reader == nil {
		sv.mu.Unlock()
		sv.over.Store(true)
		s.sendOrFail(&wire.SubscribeError{RequestID: sv.req.RequestID, Code: wire.SubscribeInvalidRange,
			Reason: "the end group is before the start or already published"})
		return
	}
	sv.reader = reader
	sv.largest, sv.exists, sv.track = largest, exists, track
	sv.mu.Unlock()
	defer sv.reader.Close()
	order := sv.req.GroupOrder
	if order == wire.GroupOrderPublisher {
		order = track.GroupOrder()
	}
	sv.order = order
	answerOK := &wire.SubscribeOK{RequestID: sv.req.RequestID, TrackAlias: sv.req.RequestID, GroupOrder: order, ContentExists: exists}
	if exists {
		answerOK.Largest = largest
	}
	answerOK.Params = timeoutParams(track)
	sv.mu.Lock()
	sv.accepted = true
	sv.mu.Unlock()
	err = s.send(answerOK)
	answer()
	if err != nil {
		return
	}
	sv.deliverAndFinish()
}

// filterRange turns a subscription filter into the range it selects, given
// the track's largest location: the start, and the inclusive end group when
// there is one. ok is false for a range that cannot be satisfied: an end
// before the start, or already published (INVALID_RANGE).
func filterRange(f wire.Filter, largest wire.Location, exists bool) (start wire.Location, hasEnd bool, endGroup uint64, ok bool) {
	switch f.Type {
	case wire.FilterNextGroupStart:
		if exists {
			start = wire.Location{Group: largest.Group + 1}
		}
	case wire.FilterLargestObject:
		if exists {
			start = wire.Location{Group: largest.Group, Object: largest.Object + 1}
		}
	case wire.FilterAbsoluteStart:
		start = f.Start
	case wire.FilterAbsoluteRange:
		start, hasEnd, endGroup = f.Start, true, f.EndGroup
		if f.EndGroup < f.Start.Group || (exists && f.EndGroup < largest.Group) {
			return start, hasEnd, endGroup, false
		}
	}
	return start, hasEnd, endGroup, true
}

// deliverAndFinish delivers the track and then sends PUBLISH_DONE, unless
// the session ended or the request was refused (PUBLISH_ERROR). PUBLISH_DONE
// follows the end of every stream, so that its count is final.
func (sv *servedSubscription) deliverAndFinish() {
	s := sv.s
	code, reason := sv.deliver()
	sv.wg.Wait()
	sv.mu.Lock()
	opened, refused := sv.opened, sv.refused
	sv.mu.Unlock()
	if s.ctx.Err() != nil || refused {
		return
	}
	sv.over.Store(true)
	s.sendOrFail(&wire.PublishDone{RequestID: sv.req.RequestID, StatusCode: code, StreamCount: opened, Reason: reason})
}

// deliver dispatches the track's events to the subgroups' writers until the
// track ends, the peer unsubscribes, or the session ends, and says how it
// ended. It never waits for the network: see sched.go.
//
// A thousand dispatchers of one track all wake at each write. They read
// the track holding its lock shared, and the write wakes them only after
// it let go of the lock, so they do not queue on it one by one (at 1:1000
// that queue was nearly all of the relay's mutex wait: 0.5 s of waiting
// per object in BenchmarkServeFanout's paced case, now under 1 ms).
// Handing events over inline instead, from the writing goroutine under the
// lock, also ended the queue but cost about 40% more CPU in
// BenchmarkServeFanout (one goroutine readying a thousand writers in a
// row, and less batching), so the dispatchers stay.
func (sv *servedSubscription) deliver() (wire.PublishDoneCode, string) {
	for {
		ev, err := sv.reader.Next(sv.ctx)
		if err != nil {
			return sv.finish(err)
		}
		k := subgroupKey{ev.Group, ev.Subgroup}
		switch ev.Kind {
		case EventObject:
			if ev.Datagram {
				if err := sv.sendDatagram(ev); err != nil && sv.ctx.Err() == nil {
					sv.s.log.Debug("datagram not sent", "request", sv.req.RequestID, "group", ev.Group, "object", ev.Object.ID, "err", err)
				}
				continue
			}
			sv.dispatch(ev)
		case EventSubgroupEnd:
			delete(sv.paused, k)
			if st := sv.streams[k]; st != nil {
				st.finish(false, 0)
				delete(sv.streams, k)
			}
		case EventSubgroupAbort:
			delete(sv.paused, k)
			if st := sv.streams[k]; st != nil {
				st.finish(true, wire.StreamResetCode(ev.Code))
				delete(sv.streams, k)
			}
		case EventSkipped:
			// The subscriber fell behind the cache: the subgroups in
			// flight cannot be completed.
			sv.abandonAll(wire.ResetCancelled)
			clear(sv.paused)
		}
	}
}

// dispatch hands a subgroup object to its stream's writer, starting one
// for a new subgroup, and keeps the subscription's backlog within
// Config.MaxBacklogBytes by abandoning the oldest groups.
//
// While forwarding is paused (Forward 0), objects are dropped, and so is
// the rest of every subgroup they belong to, after the pause too: a
// subgroup stream that has not carried all of its objects from the
// subscription's start ends with RESET_STREAM, never a FIN (draft-14,
// "Closing Subgroup Streams"; with an End of Group header type, a FIN
// tells the subscriber the group ended at the last object it got). An
// open stream is reset at the first object dropped; a subgroup not open
// yet is remembered (paused) until its end, so that forwarding resumed
// mid-subgroup opens no stream for its tail.
func (sv *servedSubscription) dispatch(ev Event) {
	const maxPausedSubgroups = 256
	k := subgroupKey{ev.Group, ev.Subgroup}
	if !sv.forward.Load() {
		if st := sv.streams[k]; st != nil {
			st.abandon(wire.ResetCancelled) // kept in streams: dead, the rest is dropped
		} else {
			if sv.paused == nil {
				sv.paused = map[subgroupKey]struct{}{}
			}
			if len(sv.paused) >= maxPausedSubgroups {
				// Subgroups whose end never came (a track that
				// drops them): the older groups' are forgotten.
				maps.DeleteFunc(sv.paused, func(p subgroupKey, _ struct{}) bool { return p.group < ev.Group })
			}
			sv.paused[k] = struct{}{}
		}
		return
	}
	if _, skipped := sv.paused[k]; skipped {
		return
	}
	st := sv.streams[k]
	if st != nil && st.dead() {
		return // abandoned: the rest of the subgroup is dropped
	}
	if st != nil && len(ev.Object.Extensions) > 0 && !st.hdrExt {
		// The stream's type carries no extensions: end it and start the
		// subgroup again on a stream whose type does.
		st.finish(true, wire.ResetInternalError)
		st = nil
	}
	if st == nil {
		st = sv.newStream(ev)
		sv.streams[k] = st
	}
	var own int64 // the backlog's bytes that are this object
	if st.push(ev) {
		own = ev.Object.size()
	}
	limit := sv.s.cfg.MaxBacklogBytes
	for sv.backlog.Load() > limit {
		victim := sv.s.sched.oldest(sv, st)
		if victim == nil {
			// Only this object's stream is left. It is given up only
			// if its queue is over the bound without the object just
			// added: one object larger than MaxBacklogBytes is still
			// sent (it was reset at once, so a relay never forwarded
			// an object of 8 to 64 MiB, and took the subscription's
			// other streams down with it).
			if sv.backlog.Load()-own > limit {
				st.abandon(wire.ResetCancelled)
			}
			break
		}
		victim.abandon(wire.ResetCancelled)
	}
}

// abandonAll resets every stream now and forgets the subgroups.
func (sv *servedSubscription) abandonAll(code wire.StreamResetCode) {
	for k, st := range sv.streams {
		st.abandon(code)
		delete(sv.streams, k)
	}
}

// finishAll ends every stream with a FIN once its queue is written, and
// forgets the subgroups.
func (sv *servedSubscription) finishAll() {
	for k, st := range sv.streams {
		st.finish(false, 0)
		delete(sv.streams, k)
	}
}

// finish ends the open streams and picks the PUBLISH_DONE status.
func (sv *servedSubscription) finish(err error) (wire.PublishDoneCode, string) {
	sv.mu.Lock()
	unsubscribed := sv.unsubscribed
	sv.mu.Unlock()
	switch {
	case errors.Is(err, io.EOF):
		sv.finishAll()
		return wire.DoneTrackEnded, "track ended"
	case errors.Is(err, ErrEndGroupPassed):
		// §9.12: SUBSCRIPTION_ENDED, "reached the end of an associated
		// Subscribe filter". The range's subgroups have ended; a stream
		// left is one already abandoned.
		sv.finishAll()
		return wire.DoneSubscriptionEnded, "reached the end group"
	case sv.endedByApp() != nil:
		sv.abandonAll(wire.ResetCancelled)
		e := sv.endedByApp()
		return wire.PublishDoneCode(e.Code), e.Reason
	case unsubscribed:
		sv.abandonAll(wire.ResetCancelled)
		return wire.DoneSubscriptionEnded, "unsubscribed"
	case sv.isRefused():
		sv.abandonAll(wire.ResetCancelled)
		return wire.DoneSubscriptionEnded, "refused"
	case sv.s.ctx.Err() != nil:
		sv.abandonAll(wire.ResetSessionClosed)
		return wire.DoneGoingAway, "session closed"
	}
	sv.abandonAll(closeResetCode(err)) // as Track.Close resets its subgroups
	var re *RequestError
	if errors.As(err, &re) && re.Message == wire.TypePublishDone {
		return wire.PublishDoneCode(re.Code), re.Reason
	}
	return wire.DoneInternalError, err.Error()
}

// timeoutParams are the DELIVERY TIMEOUT and MAX_CACHE_DURATION a track
// got from its publisher, for our SUBSCRIBE_OK or PUBLISH.
func timeoutParams(t *Track) wire.Parameters {
	var ps wire.Parameters
	delivery, maxCache := t.Timeouts()
	if delivery > 0 {
		ps = ps.WithVarint(wire.ParamDeliveryTimeout, uint64(delivery/time.Millisecond))
	}
	if maxCache > 0 {
		ps = ps.WithVarint(wire.ParamMaxCacheDuration, uint64(maxCache/time.Millisecond))
	}
	return ps
}

// deliveryTimeout is the subscription's delivery timeout: the smaller of
// the subscriber's and the publisher's (§9.2.1.2), or, when neither gave
// one, Config.DefaultDeliveryTimeout; 0 for none.
func (sv *servedSubscription) deliveryTimeoutNow() time.Duration {
	delivery, _ := sv.track.Timeouts()
	if d := time.Duration(sv.deliveryTimeout.Load()); d > 0 && (delivery == 0 || d < delivery) {
		delivery = d
	}
	if delivery == 0 {
		delivery = sv.s.cfg.DefaultDeliveryTimeout
	}
	return delivery
}

// remaining says how long an object may still take to send: until its
// delivery timeout. late says it may no longer be started: past the
// delivery timeout (timedOut) or, for a relay, past the publisher's
// MAX_CACHE_DURATION. remaining is 0 when there is no delivery timeout.
func (sv *servedSubscription) remaining(o *Object, now time.Time) (remaining time.Duration, late, timedOut bool) {
	if sv.track == nil || o.Received.IsZero() {
		return 0, false, false
	}
	if !sv.track.realClock {
		now = sv.track.clock()
	}
	age := now.Sub(o.Received)
	if delivery := sv.deliveryTimeoutNow(); delivery > 0 {
		if age >= delivery {
			return 0, true, true
		}
		remaining = delivery - age
	}
	_, maxCache := sv.track.Timeouts()
	return remaining, maxCache > 0 && age > maxCache, false
}

// observeDelivery reports to Config.ObserveDelivery how long o waited
// since its track received it, at now (the writer's clock reading for its
// write).
func (sv *servedSubscription) observeDelivery(o *Object, now time.Time) {
	f := sv.s.cfg.ObserveDelivery
	if f == nil || sv.track == nil || o.Received.IsZero() {
		return
	}
	if !sv.track.realClock {
		now = sv.track.clock()
	}
	f(now.Sub(o.Received))
}

// sendDatagram sends a datagram object unless it is too old.
func (sv *servedSubscription) sendDatagram(ev Event) error {
	o := ev.Object
	now := time.Now()
	if _, late, _ := sv.remaining(o, now); late || !sv.forward.Load() {
		return nil
	}
	sv.observeDelivery(o, now)
	b, err := wire.AppendDatagram(nil, &wire.Datagram{
		TrackAlias: sv.req.RequestID, Group: o.Group, Object: o.ID, PublisherPriority: o.PublisherPriority,
		EndOfGroup: o.EndOfGroup && o.Status == wire.StatusNormal,
		IsStatus:   o.Status != wire.StatusNormal, Status: o.Status, Extensions: o.Extensions, Payload: o.Payload,
	})
	if err != nil {
		return err
	}
	if tr := sv.s.cfg.Tracer; tr != nil {
		d, _ := wire.ParseDatagram(b)
		tr.Datagram(true, &d)
	}
	return sv.s.conn.SendDatagram(b)
}

func (s *Session) handleUnsubscribe(m *wire.Unsubscribe) {
	s.mu.Lock()
	sv := s.served[m.RequestID]
	s.mu.Unlock()
	if sv == nil {
		return // already ended: PUBLISH_DONE is on its way or sent
	}
	sv.mu.Lock()
	sv.unsubscribed = true
	sv.mu.Unlock()
	sv.cancel()
}

// EndSubscription ends a subscription this session serves (the peer's
// SUBSCRIBE, or a PUBLISH it sent) before its track ends: its streams are
// reset and PUBLISH_DONE carries code and reason (§9.12: a publisher "can
// choose to stop sending objects (and thus send PUBLISH_DONE) for any
// reason"). It reports whether requestID named a subscription still
// served; ending one that is ending already does nothing.
func (s *Session) EndSubscription(requestID uint64, code PublishDoneCode, reason string) bool {
	s.mu.Lock()
	sv := s.served[requestID]
	s.mu.Unlock()
	if sv == nil {
		return false
	}
	sv.mu.Lock()
	if sv.endedBy == nil {
		sv.endedBy = &RequestError{Message: wire.TypePublishDone, Code: uint64(code), Reason: reason}
	}
	sv.mu.Unlock()
	sv.cancel()
	return true
}

func (sv *servedSubscription) endedByApp() *RequestError {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.endedBy
}

// handleSubscribeUpdate narrows a served subscription. Widening it, or
// naming a subscription that never existed, is a protocol violation.
func (s *Session) handleSubscribeUpdate(m *wire.SubscribeUpdate) error {
	s.mu.Lock()
	sv := s.served[m.SubscriptionRequestID]
	s.mu.Unlock()
	if sv == nil {
		if m.SubscriptionRequestID%2 == 0 != s.client && m.SubscriptionRequestID < m.RequestID {
			return nil // a subscription that already ended
		}
		return violation("SUBSCRIBE_UPDATE for request %d, which is not a subscription", m.SubscriptionRequestID)
	}
	sv.mu.Lock()
	defer sv.mu.Unlock()
	if m.Start.Less(sv.start) {
		return violation("SUBSCRIBE_UPDATE moves the start back from %s to %s", sv.start, m.Start)
	}
	if sv.hasEnd && (!m.HasEndGroup || m.EndGroup > sv.endGroup) {
		return violation("SUBSCRIBE_UPDATE moves the end group past %d", sv.endGroup)
	}
	if m.HasEndGroup && m.EndGroup < m.Start.Group {
		return violation("SUBSCRIBE_UPDATE end group %d is before its start group %d", m.EndGroup, m.Start.Group)
	}
	sv.start, sv.hasEnd, sv.endGroup = m.Start, m.HasEndGroup, m.EndGroup
	sv.priority = m.SubscriberPriority
	sv.forward.Store(m.Forward)
	if d, ok := m.Params.DeliveryTimeout(); ok {
		sv.deliveryTimeout.Store(int64(d))
	}
	if sv.reader != nil {
		sv.reader.SetFilter(ReaderFilter{Start: sv.start, HasEnd: sv.hasEnd, EndGroup: sv.endGroup})
	}
	if uint32(m.SubscriberPriority) != sv.subPrio.Swap(uint32(m.SubscriberPriority)) {
		s.sched.rerank(sv)
	}
	return nil
}

func (sv *servedSubscription) isRefused() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.refused
}

// isUnsubscribed reports whether the peer sent UNSUBSCRIBE: the
// subscription is ending and no longer counts as the track's one.
func (sv *servedSubscription) isUnsubscribed() bool {
	sv.mu.Lock()
	defer sv.mu.Unlock()
	return sv.unsubscribed
}
