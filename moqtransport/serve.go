package moqtransport

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// servedSubscription is a SUBSCRIBE from the peer that we serve from a
// track.
type servedSubscription struct {
	s      *Session
	req    *wire.Subscribe
	key    string // full track name, to refuse a second subscription to it
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
	forward  bool
	// deliveryTimeout is the subscriber's DELIVERY TIMEOUT (0: none).
	deliveryTimeout time.Duration
	track           *Track
	streams         map[subgroupKey]*outStream
	opened          uint64
	// unsubscribed is set by UNSUBSCRIBE: the subscription ends with
	// SUBSCRIPTION_ENDED.
	unsubscribed bool
	// refused is set by PUBLISH_ERROR for a PUBLISH we sent: delivery
	// stops and no PUBLISH_DONE follows.
	refused bool
	// writing is the stream a Write of ours may be blocked on (flow
	// control): when sv.ctx ends, it is reset so that the Write returns.
	writing SendStream
}

// write writes b to str; UNSUBSCRIBE or the session's end (sv.ctx) resets
// str if the write is blocked.
func (sv *servedSubscription) write(str SendStream, b []byte) error {
	sv.mu.Lock()
	if err := sv.ctx.Err(); err != nil {
		sv.mu.Unlock()
		return err
	}
	sv.writing = str
	sv.mu.Unlock()
	_, err := str.Write(b)
	sv.mu.Lock()
	sv.writing = nil
	sv.mu.Unlock()
	return err
}

// unblockWriter runs when sv.ctx ends.
func (sv *servedSubscription) unblockWriter() {
	sv.mu.Lock()
	str := sv.writing
	sv.mu.Unlock()
	if str != nil {
		str.CancelWrite(uint64(wire.ResetCancelled))
	}
}

type subgroupKey struct{ group, subgroup uint64 }

// outStream is one subgroup stream we write.
type outStream struct {
	str   SendStream
	state *wire.SubgroupState
	buf   []byte
}

func (s *Session) handleSubscribe(m *wire.Subscribe) error {
	key := trackKey(wire.FullTrackName{Namespace: m.Namespace, Name: m.Name})
	s.mu.Lock()
	for _, other := range s.served {
		if other.key == key && !other.isUnsubscribed() {
			s.mu.Unlock()
			return violation("a second SUBSCRIBE for track %s in one session", m.Namespace.String()+"/"+m.Name)
		}
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
		deliveryTimeout: timeout,
		ctx:             ctx, cancel: cancel,
		priority: req.SubscriberPriority, forward: req.Forward,
		streams:  map[subgroupKey]*outStream{},
		answered: make(chan struct{}),
		ended:    make(chan struct{}),
	}
	// The range an absolute filter names is known now: a SUBSCRIBE_UPDATE
	// that arrives before run resolves the filter is checked against it.
	switch req.Filter.Type {
	case wire.FilterAbsoluteRange:
		sv.hasEnd, sv.endGroup = true, req.Filter.EndGroup
		fallthrough
	case wire.FilterAbsoluteStart:
		sv.start = req.Filter.Start
	}
	s.served[req.RequestID] = sv
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
		code, reason := requestCode(err, uint64(wire.SubscribeInternalError))
		s.sendOrFail(&wire.SubscribeError{RequestID: sv.req.RequestID, Code: wire.SubscribeErrorCode(code), Reason: reason})
		return
	}
	largest, exists := track.Largest()
	start, hasEnd, endGroup, ok := filterRange(sv.req.Filter, largest, exists)
	if !ok {
		s.sendOrFail(&wire.SubscribeError{RequestID: sv.req.RequestID, Code: wire.SubscribeInvalidRange,
			Reason: "the end group is before the start or already published"})
		return
	}
	sv.mu.Lock()
	// A SUBSCRIBE_UPDATE handled meanwhile may have narrowed the range:
	// keep the narrower of the two.
	if sv.start.Less(start) {
		sv.start = start
	}
	if hasEnd && (!sv.hasEnd || endGroup < sv.endGroup) {
		sv.hasEnd, sv.endGroup = true, endGroup
	}
	sv.reader = track.NewReader(ReaderFilter{Start: sv.start, HasEnd: sv.hasEnd, EndGroup: sv.endGroup})
	sv.largest, sv.exists, sv.track = largest, exists, track
	sv.mu.Unlock()
	defer sv.reader.Close()
	order := sv.req.GroupOrder
	if order == wire.GroupOrderPublisher {
		order = track.GroupOrder()
	}
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
// the session ended or the request was refused (PUBLISH_ERROR).
func (sv *servedSubscription) deliverAndFinish() {
	s := sv.s
	defer context.AfterFunc(sv.ctx, sv.unblockWriter)()
	code, reason := sv.deliver()
	sv.mu.Lock()
	opened, refused := sv.opened, sv.refused
	sv.mu.Unlock()
	if s.ctx.Err() != nil || refused {
		return
	}
	s.sendOrFail(&wire.PublishDone{RequestID: sv.req.RequestID, StatusCode: code, StreamCount: opened, Reason: reason})
}

// deliver writes the track's objects until the track ends, the peer
// unsubscribes, or the session ends, and says how it ended.
func (sv *servedSubscription) deliver() (wire.PublishDoneCode, string) {
	for {
		ev, err := sv.reader.Next(sv.ctx)
		if err != nil {
			return sv.finish(err)
		}
		switch ev.Kind {
		case EventObject:
			if err := sv.writeObject(ev); err != nil {
				if sv.ctx.Err() != nil {
					return sv.finish(sv.ctx.Err())
				}
				sv.s.log.Debug("subgroup stream failed", "group", ev.Group, "subgroup", ev.Subgroup, "err", err)
				sv.resetStream(subgroupKey{ev.Group, ev.Subgroup}, wire.ResetInternalError)
			}
		case EventSubgroupEnd:
			sv.closeStream(subgroupKey{ev.Group, ev.Subgroup})
		case EventSubgroupAbort:
			sv.resetStream(subgroupKey{ev.Group, ev.Subgroup}, wire.StreamResetCode(ev.Code))
		case EventSkipped:
			// The subscriber fell behind the cache: the subgroups in
			// flight cannot be completed.
			sv.resetAll(wire.ResetCancelled)
		}
	}
}

// finish closes the open streams and picks the PUBLISH_DONE status.
func (sv *servedSubscription) finish(err error) (wire.PublishDoneCode, string) {
	sv.mu.Lock()
	unsubscribed := sv.unsubscribed
	sv.mu.Unlock()
	switch {
	case errors.Is(err, io.EOF):
		for k := range sv.streams {
			sv.closeStream(k)
		}
		return wire.DoneTrackEnded, "track ended"
	case unsubscribed:
		sv.resetAll(wire.ResetCancelled)
		return wire.DoneSubscriptionEnded, "unsubscribed"
	case sv.isRefused():
		sv.resetAll(wire.ResetCancelled)
		return wire.DoneSubscriptionEnded, "refused"
	case sv.s.ctx.Err() != nil:
		sv.resetAll(wire.ResetSessionClosed)
		return wire.DoneGoingAway, "session closed"
	}
	sv.resetAll(wire.ResetInternalError)
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

// tooOld says whether an object may no longer be sent: past the
// subscription's delivery timeout (the smaller of the subscriber's and the
// publisher's) or, for a relay, past the publisher's MAX_CACHE_DURATION.
func (sv *servedSubscription) tooOld(o *Object) (late bool, timedOut bool) {
	if sv.track == nil || o.Received.IsZero() {
		return false, false
	}
	age := sv.track.Now().Sub(o.Received)
	delivery, maxCache := sv.track.Timeouts()
	sv.mu.Lock()
	if sv.deliveryTimeout > 0 && (delivery == 0 || sv.deliveryTimeout < delivery) {
		delivery = sv.deliveryTimeout
	}
	sv.mu.Unlock()
	if delivery > 0 && age > delivery {
		return true, true
	}
	return maxCache > 0 && age > maxCache, false
}

func (sv *servedSubscription) writeObject(ev Event) error {
	sv.mu.Lock()
	forward, priority := sv.forward, sv.priority
	sv.mu.Unlock()
	if !forward {
		return nil
	}
	o := ev.Object
	if late, timedOut := sv.tooOld(o); late {
		if timedOut && !ev.Datagram {
			// §9.2.1.2: a subgroup object past the delivery timeout
			// resets its stream; later objects start a new one.
			sv.resetStream(subgroupKey{ev.Group, ev.Subgroup}, wire.ResetDeliveryTimeout)
		}
		return nil
	}
	if ev.Datagram {
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
	k := subgroupKey{ev.Group, ev.Subgroup}
	st := sv.streams[k]
	if st != nil && len(o.Extensions) > 0 && !st.state.Header.Extensions {
		// The stream's type carries no extensions: start the subgroup
		// again on a stream whose type does.
		sv.resetStream(k, wire.ResetInternalError)
		st = nil
	}
	if st == nil {
		var err error
		if st, err = sv.openStream(ev, priority); err != nil {
			return err
		}
		sv.streams[k] = st
	}
	h := wire.ObjectHeader{ID: o.ID, Status: o.Status, Extensions: o.Extensions, PayloadLength: uint64(len(o.Payload))}
	var err error
	if st.buf, err = st.state.AppendObject(st.buf[:0], &h); err != nil {
		return err
	}
	if tr := sv.s.cfg.Tracer; tr != nil {
		tr.SubgroupObject(true, &st.state.Header, &h)
	}
	if err := sv.write(st.str, st.buf); err != nil {
		return err
	}
	if len(o.Payload) > 0 {
		if err := sv.write(st.str, o.Payload); err != nil {
			return err
		}
	}
	return nil
}

// openStream opens a subgroup stream with the smallest header type that
// fits the subgroup's first object.
func (sv *servedSubscription) openStream(ev Event, priority uint8) (*outStream, error) {
	o := ev.Object
	h := wire.SubgroupHeader{
		TrackAlias: sv.req.RequestID, GroupID: o.Group, SubgroupID: o.Subgroup,
		PublisherPriority: o.PublisherPriority, Extensions: ev.Extensions || len(o.Extensions) > 0, EndOfGroup: ev.EndOfGroup,
	}
	switch o.Subgroup {
	case 0:
		h.IDMode = wire.SubgroupIDZero
	case o.ID:
		h.IDMode = wire.SubgroupIDFirstObject
	default:
		h.IDMode = wire.SubgroupIDExplicit
	}
	str, err := sv.s.conn.OpenUniStreamSync(sv.ctx)
	if err != nil {
		return nil, err
	}
	sv.mu.Lock()
	sv.opened++
	sv.mu.Unlock()
	str.SetPriority(priority)
	st := &outStream{str: str, state: wire.NewSubgroupState(h)}
	if st.buf, err = wire.AppendSubgroupHeader(make([]byte, 0, 64), &h); err != nil {
		str.CancelWrite(uint64(wire.ResetInternalError))
		return nil, err
	}
	if err := sv.write(str, st.buf); err != nil {
		str.CancelWrite(uint64(wire.ResetInternalError))
		return nil, err
	}
	if tr := sv.s.cfg.Tracer; tr != nil {
		tr.SubgroupHeader(true, &h)
	}
	return st, nil
}

func (sv *servedSubscription) closeStream(k subgroupKey) {
	if st := sv.streams[k]; st != nil {
		_ = st.str.Close()
		delete(sv.streams, k)
	}
}

func (sv *servedSubscription) resetStream(k subgroupKey, code wire.StreamResetCode) {
	if st := sv.streams[k]; st != nil {
		st.str.CancelWrite(uint64(code))
		delete(sv.streams, k)
	}
}

func (sv *servedSubscription) resetAll(code wire.StreamResetCode) {
	for k := range sv.streams {
		sv.resetStream(k, code)
	}
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
	sv.priority, sv.forward = m.SubscriberPriority, m.Forward
	if d, ok := m.Params.DeliveryTimeout(); ok {
		sv.deliveryTimeout = d
	}
	if sv.reader != nil {
		sv.reader.SetFilter(ReaderFilter{Start: sv.start, HasEnd: sv.hasEnd, EndGroup: sv.endGroup})
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
