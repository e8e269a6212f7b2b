package moqtransport

import (
	"context"

	"github.com/moqgo/moq/moqtransport/wire"
)

// PublishOptions are the fields of a PUBLISH we send.
type PublishOptions struct {
	// Paused sends Forward 0: no objects flow until the subscriber's
	// PUBLISH_OK turns forwarding on. By default objects flow at once,
	// before PUBLISH_OK, as draft-14 allows.
	Paused bool
	Params Parameters
}

// Publication is a track we pushed to the peer with PUBLISH and it
// accepted. It ends like a subscription the peer made: the track ends,
// or the peer sends UNSUBSCRIBE.
type Publication struct {
	sv *servedSubscription
	ok wire.PublishOK
}

// RequestID returns the PUBLISH's request ID (the track alias too).
func (p *Publication) RequestID() uint64 { return p.sv.req.RequestID }

// OK returns the subscriber's PUBLISH_OK: its forward flag, priority,
// group order and filter.
func (p *Publication) OK() PublishOK { return p.ok }

// Done is closed when delivery has ended.
func (p *Publication) Done() <-chan struct{} { return p.sv.ended }

// Publish pushes a track to the peer (PUBLISH) and waits for its answer.
// Objects written to the track from now on flow at once; PUBLISH_OK then
// sets the subscriber's filter, priority and forwarding. A refusal is a
// *RequestError with the PUBLISH_ERROR code, and delivery stops.
func (s *Session) Publish(ctx context.Context, t *Track, opts PublishOptions) (*Publication, error) {
	name := t.Name()
	if err := name.Validate(); err != nil {
		return nil, err
	}
	var sv *servedSubscription
	var m *wire.Publish
	started := false
	_, resp, err := s.request(ctx, func(id uint64) wire.Message {
		// Checked with the largest Largest there is: the track's own,
		// filled in by register, encodes in no more bytes.
		m = &wire.Publish{RequestID: id, Namespace: name.Namespace, Name: name.Name, TrackAlias: id,
			GroupOrder: t.GroupOrder(), ContentExists: true, Largest: Location{Group: wire.MaxVarint, Object: wire.MaxVarint},
			Forward: !opts.Paused, Params: mergeParams(timeoutParams(t), opts.Params)}
		return m
	}, requestHooks{register: func(id uint64) {
		req := &wire.Subscribe{RequestID: id, Namespace: name.Namespace, Name: name.Name,
			SubscriberPriority: DefaultPriority, GroupOrder: t.GroupOrder(), Forward: !opts.Paused,
			Filter: wire.Filter{Type: wire.FilterLargestObject}}
		s.mu.Lock()
		sv = s.newServedLocked(req)
		sv.pushed = true // under s.mu: a SUBSCRIBE of the peer's reads it (handleSubscribe)
		s.mu.Unlock()
		// PUBLISH's Largest and the reader's start are taken together
		// (newReaderAt), so no object falls between them.
		var largest Location
		var exists bool
		sv.reader, largest, exists = t.newReaderAt(func(largest Location, exists bool) (ReaderFilter, bool) {
			sv.start, _, _, _ = filterRange(req.Filter, largest, exists)
			return ReaderFilter{Start: sv.start}, true
		})
		sv.largest, sv.exists, sv.accepted, sv.track = largest, exists, true, t
		close(sv.answered)
		m.ContentExists, m.Largest = exists, Location{}
		if exists {
			m.Largest = largest
		}
	}, queued: func(uint64) {
		// Delivery starts once the PUBLISH is queued, ahead of every
		// data stream: no object goes out under an alias the peer
		// never learns.
		started = true
		s.goFunc(sv.runPublish)
	}})
	if err != nil {
		if sv != nil {
			switch {
			case !started:
				// Not sent (the session ended): nothing to tell the peer.
				sv.refuse()
				sv.endPublish()
			case ctx.Err() != nil && s.ctx.Err() == nil:
				// We gave up waiting for PUBLISH_OK: the peer may
				// accept still, so it is told the subscription ended
				// (PUBLISH_DONE); refused, it would wait for objects
				// that never come.
				s.EndSubscription(sv.req.RequestID, wire.DoneSubscriptionEnded, "the publisher stopped waiting for PUBLISH_OK")
			default:
				sv.refuse()
			}
		}
		return nil, err
	}
	switch r := resp.(type) {
	case *wire.PublishOK:
		return &Publication{sv: sv, ok: *r}, nil
	case *wire.PublishError:
		sv.refuse()
		return nil, &RequestError{Message: wire.TypePublishError, Code: uint64(r.Code), Reason: r.Reason}
	}
	return nil, violation("%s in answer to PUBLISH", resp.Type())
}

// refuse stops a PUBLISH the peer refused: no PUBLISH_DONE follows.
func (sv *servedSubscription) refuse() {
	sv.mu.Lock()
	sv.refused = true
	sv.mu.Unlock()
	sv.cancel()
}

// runPublish delivers a PUBLISH-initiated subscription.
func (sv *servedSubscription) runPublish() {
	defer sv.endPublish()
	sv.deliverAndFinish()
}

// endPublish ends a PUBLISH-initiated subscription: its reader, its
// context and its place among the subscriptions served.
func (sv *servedSubscription) endPublish() {
	s := sv.s
	sv.reader.Close()
	sv.cancel()
	s.mu.Lock()
	delete(s.served, sv.req.RequestID)
	s.mu.Unlock()
	close(sv.ended)
}

// mergeParams is base with over appended, where a parameter of over
// replaces base's parameters of its type: a request's own DELIVERY_TIMEOUT
// wins over the track's (sent twice, the request would not encode).
func mergeParams(base, over wire.Parameters) wire.Parameters {
	if len(over) == 0 {
		return base
	}
	out := make(wire.Parameters, 0, len(base)+len(over))
	for _, kv := range base {
		if _, replaced := over.Get(kv.Type); !replaced {
			out = append(out, kv)
		}
	}
	return append(out, over...)
}

// applyPublishOK applies the subscriber's choices to a PUBLISH we sent:
// forwarding, priority, group order and filter (§9.14).
func (s *Session) applyPublishOK(m *wire.PublishOK) error {
	s.mu.Lock()
	p := s.pending[m.RequestID]
	sv := s.served[m.RequestID]
	s.mu.Unlock()
	// Only the answer to a PUBLISH of ours that waits for it applies:
	// served also holds the peer's own SUBSCRIBEs (whose reader may not
	// exist yet), and a PUBLISH is pending only once it is built. respond
	// refuses anything else as a protocol violation.
	if p == nil || p.kind != wire.TypePublish || sv == nil {
		return nil
	}
	// The subscriber's group order overwrites the PUBLISH's (it was kept,
	// so a subscriber asking for descending got ascending).
	s.sched.setOrder(sv, m.GroupOrder)
	sv.mu.Lock()
	defer sv.mu.Unlock()
	start, hasEnd, endGroup, _ := filterRange(m.Filter, sv.largest, sv.exists)
	sv.start, sv.hasEnd, sv.endGroup = start, hasEnd, endGroup
	sv.priority = m.SubscriberPriority
	sv.forward.Store(m.Forward)
	if d, ok := m.Params.DeliveryTimeout(); ok {
		sv.deliveryTimeout.Store(int64(d))
	}
	sv.reader.SetFilter(ReaderFilter{Start: start, HasEnd: hasEnd, EndGroup: endGroup})
	// The subscriber priority is the scheduler's first key (§7): a
	// pushed track was ranked at DefaultPriority whatever PUBLISH_OK said.
	if uint32(m.SubscriberPriority) != sv.subPrio.Swap(uint32(m.SubscriberPriority)) {
		s.sched.rerank(sv)
	}
	return nil
}

// PublishError returns a handler error that refuses a PUBLISH with code.
func PublishError(code PublishErrorCode, reason string) error {
	return &RequestError{Message: wire.TypePublishError, Code: uint64(code), Reason: reason}
}

// handlePublish takes a track the peer pushes: its objects are received
// under the announced alias at once, and the handler decides.
func (s *Session) handlePublish(m *wire.Publish) error {
	h := s.cfg.Handler.Publish
	if h == nil {
		s.publishRefused(m.TrackAlias)
		s.refuse(&wire.PublishError{RequestID: m.RequestID, Code: wire.PublishNotSupported, Reason: "PUBLISH is not supported by this endpoint"})
		return nil
	}
	full := wire.FullTrackName{Namespace: m.Namespace, Name: m.Name}
	sub := &Subscription{s: s, id: m.RequestID, name: full, track: NewTrack(full, s.cfg.Track), done: make(chan struct{}), upd: make(chan struct{}, 1), incoming: true}
	sub.ok = wire.SubscribeOK{RequestID: m.RequestID, TrackAlias: m.TrackAlias, GroupOrder: m.GroupOrder, ContentExists: m.ContentExists, Largest: m.Largest}
	if m.ContentExists {
		sub.track.noteLargest(m.Largest)
	}
	delivery, _ := m.Params.DeliveryTimeout()
	maxCache, _ := m.Params.MaxCacheDuration()
	sub.track.setTimeouts(delivery, maxCache)
	s.endDrainingAlias(m.TrackAlias, m.RequestID)
	s.mu.Lock()
	if _, dup := s.subsByAlas[m.TrackAlias]; dup {
		s.mu.Unlock()
		return &wire.SessionError{Code: wire.DuplicateTrackAlias, Reason: "PUBLISH reuses a track alias in use"}
	}
	setIn(&s.subs, m.RequestID, sub)
	setIn(&s.subsByAlas, m.TrackAlias, sub)
	s.aliasLearnedLocked(m.TrackAlias)
	s.mu.Unlock()
	s.goFunc(func() {
		var opts SubscribeOptions
		err := s.callbackErr("Handler.Publish", func() (err error) {
			opts, err = h(s.ctx, s, m, sub)
			return err
		})
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			code, reason := requestCode(err, wire.TypePublishError, uint64(wire.PublishInternalError))
			s.sendOrFail(&wire.PublishError{RequestID: m.RequestID, Code: wire.PublishErrorCode(code), Reason: reason})
			sub.end(err)
			return
		}
		if opts.Filter.Type == 0 {
			opts.Filter.Type = wire.FilterLargestObject
		}
		order := opts.GroupOrder
		if order == wire.GroupOrderPublisher {
			order = m.GroupOrder
		}
		sub.mu.Lock()
		// The start as the publisher resolves it from its PUBLISH
		// (applyPublishOK): Update checks a new start against it.
		sub.start, _, _, _ = filterRange(opts.Filter, m.Largest, m.ContentExists)
		sub.hasEnd, sub.endGroup = opts.Filter.Type == wire.FilterAbsoluteRange, opts.Filter.EndGroup
		sub.mu.Unlock()
		s.sendOrFail(&wire.PublishOK{RequestID: m.RequestID, Forward: !opts.Paused, SubscriberPriority: opts.Priority,
			GroupOrder: order, Filter: opts.Filter, Params: opts.Params})
	})
	return nil
}
