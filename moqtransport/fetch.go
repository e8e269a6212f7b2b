package moqtransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// FetchOptions are the fields of a FETCH. A standalone fetch names a track
// and a range; a joining fetch names one of our subscriptions (Joining) and
// asks for the groups before its SUBSCRIBE_OK's largest location: the last
// JoiningStart groups (relative), or from group JoiningStart (absolute).
type FetchOptions struct {
	Priority   uint8
	GroupOrder GroupOrder

	// Standalone fetch: objects from Start up to End, where End {G, 0}
	// means all of group G and {G, N} means objects before N.
	Namespace  Namespace
	Name       string
	Start, End Location

	// Joining fetch.
	Joining      *Subscription
	Absolute     bool
	JoiningStart uint64

	Params Parameters

	// StreamTimeout, when positive, bounds the wait for the fetch stream
	// after FETCH_OK: a publisher that could have opened it (it had
	// unidirectional stream credit from this session) for StreamTimeout
	// since FETCH_OK, and did not, is not going to. The fetch is then
	// cancelled (FETCH_CANCEL) and ReadObject returns
	// ErrFetchStreamTimeout. Time the publisher spent with every stream
	// it may open already open does not count: its stream may be queued
	// behind the others, waiting for credit. The credit is known from a
	// Conn that implements UniStreamLimitConn (moqnative's do); over
	// another the whole wait counts. Zero: the fetch waits for its stream
	// as long as ReadObject's context lets it (see ReadObject).
	StreamTimeout time.Duration
}

// Fetch is a FETCH we sent: ReadObject and Objects yield its objects in
// the order they come.
type Fetch struct {
	s     *Session
	id    uint64
	ok    wire.FetchOK
	ch    chan *Object
	mu    sync.Mutex
	err   error           // why the stream ended, once ch is closed
	str   ReceiveStream   // the fetch stream, once it came
	order wire.GroupOrder // from FETCH_OK, once it came: the order objects must keep
	// rose, fell: a group of a larger (smaller) ID followed another
	// while order was not known yet (setOrder checks them).
	rose, fell bool
	bad        error // the track was found malformed: what ReadObject returns

	name wire.FullTrackName

	streamOnce sync.Once
	stream     chan struct{} // closed once a stream arrived for it, or the fetch ended without one
	cancelOnce sync.Once
	cancelled  chan struct{} // closed by Cancel
	watch      *time.Timer   // FetchOptions.StreamTimeout's, until the stream comes
}

// ErrFetchCancelled is what ReadObject returns after Cancel.
var ErrFetchCancelled = errors.New("moqt: fetch cancelled")

// abort ends a fetch whose stream never came. It reports whether it did:
// false when the stream came first, or the fetch had ended already.
func (f *Fetch) abort(err error) (ran bool) {
	f.stopWatch()
	f.streamOnce.Do(func() {
		ran = true
		close(f.stream)
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
		close(f.ch)
	})
	return ran
}

// OK returns the FETCH_OK: group order, end of track, end location.
func (f *Fetch) OK() FetchOK { return f.ok }

// ReadObject returns the next object, io.EOF after the last one, or the
// error that ended the fetch (a reset stream, the session's end, Cancel,
// ErrFetchStreamTimeout). Objects come in the order of the FETCH_OK's
// group order. Fetch.Objects is the same as an iterator.
//
// ctx bounds the wait, including the wait for the fetch stream itself: a
// publisher may send FETCH_OK and never open the stream, and then only
// ctx (or FetchOptions.StreamTimeout) ends the wait. ReadObject returns
// ctx's error and the fetch stays open: call Cancel to give it up, which
// tells the publisher (FETCH_CANCEL).
func (f *Fetch) ReadObject(ctx context.Context) (*Object, error) {
	select {
	case <-f.cancelled:
		return nil, ErrFetchCancelled
	default:
	}
	select {
	case o, ok := <-f.ch:
		if !ok {
			f.mu.Lock()
			defer f.mu.Unlock()
			return nil, f.err
		}
		return o, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Cancel stops the fetch (FETCH_CANCEL): the stream is stopped, the
// goroutine reading it ends, and ReadObject returns ErrFetchCancelled.
func (f *Fetch) Cancel() error {
	var err error
	f.cancelOnce.Do(func() {
		close(f.cancelled)
		f.s.mu.Lock()
		_, open := f.s.fetches[f.id]
		delete(f.s.fetches, f.id)
		f.s.mu.Unlock()
		f.abort(ErrFetchCancelled) // a stream that comes later is refused
		f.mu.Lock()
		str := f.str
		f.mu.Unlock()
		if str != nil {
			str.CancelRead(uint64(wire.ResetCancelled))
		}
		if open {
			err = f.s.send(&wire.FetchCancel{RequestID: f.id})
		}
	})
	return err
}

// malformed ends a fetch of a malformed track: FETCH_CANCEL, its stream
// stopped, and ReadObject returns err.
func (f *Fetch) malformed(err error) {
	f.s.log.Warn("malformed track: cancelling a fetch", "track", f.name.String(), "request", f.id, "err", err)
	f.abort(err) // no stream yet: ReadObject returns err
	f.mu.Lock()
	str := f.str
	// f.err too: the stream may have been read to its end already (see
	// setOrder); a reader still running sets it again from f.bad.
	f.bad, f.err = err, err
	f.mu.Unlock()
	if str != nil {
		str.CancelRead(uint64(wire.ResetCancelled))
	}
	f.s.sendOrFail(&wire.FetchCancel{RequestID: f.id})
}

// joinableBy checks that a joining FETCH of s may name sub (§9.16.2): a
// SUBSCRIBE of s's own with the Largest Object filter. The publisher
// closes the session (PROTOCOL_VIOLATION) at a joining FETCH of any other
// filter, and knows no SUBSCRIBE by the request ID of another session's
// subscription or of a track it pushed (PUBLISH).
func (sub *Subscription) joinableBy(s *Session) error {
	switch {
	case sub.s != s:
		return errors.New("moqt: Fetch: FetchOptions.Joining is a subscription of another session")
	case sub.incoming:
		return errors.New("moqt: Fetch: FetchOptions.Joining is a track the peer pushed (PUBLISH), not a SUBSCRIBE of ours")
	case sub.filter != FilterLargestObject:
		return fmt.Errorf("moqt: Fetch: a joining FETCH needs a subscription with the Largest Object filter; FetchOptions.Joining's is %s (the publisher would close the session)", sub.filter)
	}
	return nil
}

// Fetch sends FETCH and waits for FETCH_OK; the objects then come through
// ReadObject. A refusal is a *RequestError with the FETCH_ERROR code.
func (s *Session) Fetch(ctx context.Context, opts FetchOptions) (*Fetch, error) {
	f := &Fetch{s: s, ch: make(chan *Object, 16), stream: make(chan struct{}), cancelled: make(chan struct{})}
	m := &wire.Fetch{SubscriberPriority: opts.Priority, GroupOrder: opts.GroupOrder, Params: opts.Params}
	f.name = wire.FullTrackName{Namespace: opts.Namespace, Name: opts.Name}
	if opts.Joining != nil {
		if err := opts.Joining.joinableBy(s); err != nil {
			return nil, err
		}
		f.name = opts.Joining.name
		m.FetchType = wire.FetchRelativeJoining
		if opts.Absolute {
			m.FetchType = wire.FetchAbsoluteJoining
		}
		m.JoiningRequestID, m.JoiningStart = opts.Joining.id, opts.JoiningStart
	} else {
		full := wire.FullTrackName{Namespace: opts.Namespace, Name: opts.Name}
		if err := full.Validate(); err != nil {
			return nil, err
		}
		m.FetchType = wire.FetchStandalone
		m.Namespace, m.Name, m.Start, m.End = opts.Namespace, opts.Name, opts.Start, opts.End
	}
	sent := false
	_, resp, err := s.request(ctx, func(id uint64) wire.Message {
		m.RequestID = id
		return m
	}, requestHooks{register: func(id uint64) {
		f.id, sent = id, true
		s.mu.Lock()
		setIn(&s.fetches, id, f)
		s.mu.Unlock()
	}})
	if err != nil {
		if !sent {
			return nil, err // no request ID: nothing registered, nothing came
		}
		s.mu.Lock()
		delete(s.fetches, f.id)
		s.mu.Unlock()
		// A fetch stream that came already is stopped and its reader
		// ends (it blocked on the full channel until the session's end);
		// no longer registered, Cancel sends nothing.
		_ = f.Cancel()
		if ctx.Err() != nil && s.ctx.Err() == nil {
			// We gave up waiting: tell the publisher.
			s.sendOrFail(&wire.FetchCancel{RequestID: f.id})
		}
		return nil, err
	}
	switch r := resp.(type) {
	case *wire.FetchOK:
		if r.GroupOrder == wire.GroupOrderPublisher {
			order := m.GroupOrder
			if order == wire.GroupOrderPublisher {
				order = wire.GroupOrderAscending
			}
			if err := s.tolerate(deviationFetchOKGroupOrder, "FETCH_OK for request %d has group order 0x0; reading it as %s", f.id, order); err != nil {
				s.fail(err)
				return nil, err
			}
			r.GroupOrder = order
		}
		// What the stream's order is checked against (noteFetchOK has
		// set it, unless the fetch's stream had been read to its end).
		f.setOrder(r.GroupOrder)
		if m.FetchType == wire.FetchStandalone && fetchLast(r.End).Less(m.Start) {
			err := violation("FETCH_OK end %v is before the FETCH start %v", r.End, m.Start)
			s.fail(err)
			return nil, err
		}
		f.ok = *r
		if opts.StreamTimeout > 0 {
			f.watchStream(opts.StreamTimeout)
		}
		return f, nil
	case *wire.FetchError:
		s.mu.Lock()
		delete(s.fetches, f.id)
		s.mu.Unlock()
		_ = f.Cancel() // no FETCH_CANCEL (no longer registered): a stream that came is stopped
		return nil, &RequestError{Message: wire.TypeFetchError, Code: uint64(r.Code), Reason: r.Reason}
	}
	return nil, violation("%s in answer to FETCH", resp.Type())
}

// endAfter is the end location, as FETCH and FETCH_OK carry it (plus one),
// of a range whose last object is l. An object ID of 2^62-1 has no "plus
// one" on the wire: {G, 0}, all of group G, covers it.
func endAfter(l wire.Location) wire.Location {
	if l.Object >= wire.MaxVarint {
		return wire.Location{Group: l.Group}
	}
	return wire.Location{Group: l.Group, Object: l.Object + 1}
}

// noteFetchOK gives a fetch the group order its FETCH_OK names, before the
// answer reaches Fetch: the fetch stream may already be read.
func (s *Session) noteFetchOK(m *wire.FetchOK) {
	s.mu.Lock()
	f := s.fetches[m.RequestID]
	s.mu.Unlock()
	if f != nil && m.GroupOrder != wire.GroupOrderPublisher {
		f.setOrder(m.GroupOrder)
	}
}

// setOrder gives a fetch the group order its objects must keep, and
// checks the objects read before it was known: a fetch stream may be read
// before its FETCH_OK, and its groups going the other way were let
// through until then. A fetch found out of order is malformed (§2.5).
// Only the first call acts: noteFetchOK's, or Fetch's when noteFetchOK
// found the fetch over already (its whole stream read before FETCH_OK).
func (f *Fetch) setOrder(order wire.GroupOrder) {
	f.mu.Lock()
	if f.order != 0 {
		f.mu.Unlock()
		return
	}
	f.order = order
	wrong := (order == wire.GroupOrderAscending && f.fell) || (order == wire.GroupOrderDescending && f.rose)
	f.mu.Unlock()
	if !wrong {
		return
	}
	err := fmt.Errorf("%w: the fetch stream's groups, read before FETCH_OK, are not in its %s group order", ErrMalformedTrack, order)
	// Every subscription and fetch of the track ends (§2.5), this one
	// too if it is still registered; if its stream was read to the end
	// already, ReadObject returns err after the objects.
	f.s.trackMalformed(f.name, err)
	f.mu.Lock()
	if f.bad == nil {
		f.bad, f.err = err, err
	}
	f.mu.Unlock()
}

// checkFetchOrder applies §2.5's rules on the order of a fetch stream's
// objects: object IDs rise within a group, and groups follow the FETCH_OK
// group order.
func (f *Fetch) checkFetchOrder(prev, o wire.Location) error {
	f.mu.Lock()
	order := f.order
	if order == 0 {
		// Read before FETCH_OK: the order is checked when it comes
		// (setOrder). Under f.mu, so that setOrder sees every group
		// change read before it.
		f.rose = f.rose || o.Group > prev.Group
		f.fell = f.fell || o.Group < prev.Group
	}
	f.mu.Unlock()
	switch {
	case o.Group == prev.Group && o.Object <= prev.Object:
		return fmt.Errorf("%w: fetch object %v after %v in the same group", ErrMalformedTrack, o, prev)
	case order == wire.GroupOrderAscending && o.Group < prev.Group:
		return fmt.Errorf("%w: fetch object %v after %v in an ascending fetch", ErrMalformedTrack, o, prev)
	case order == wire.GroupOrderDescending && o.Group > prev.Group:
		return fmt.Errorf("%w: fetch object %v after %v in a descending fetch", ErrMalformedTrack, o, prev)
	}
	return nil
}

// fetchLast is the last location an end location (sent plus one) covers:
// {G, 0} covers all of group G.
func fetchLast(end wire.Location) wire.Location {
	if end.Object == 0 {
		return wire.Location{Group: end.Group, Object: wire.MaxVarint}
	}
	return wire.Location{Group: end.Group, Object: end.Object - 1}
}

// readFetchStream delivers a fetch stream's objects to its Fetch.
func (s *Session) readFetchStream(str ReceiveStream, r *wire.StreamReader) {
	id := r.Header().FetchID
	s.mu.Lock()
	f := s.fetches[id]
	s.mu.Unlock()
	if f == nil {
		str.CancelRead(uint64(wire.ResetCancelled))
		return
	}
	first := false
	f.streamOnce.Do(func() {
		first = true
		f.mu.Lock()
		f.str = str
		f.mu.Unlock()
		close(f.stream)
	})
	if !first {
		f.mu.Lock()
		ended := f.str == nil // without a stream: Cancel, ErrFetchStreamTimeout, ...
		f.mu.Unlock()
		select {
		case <-f.cancelled:
			ended = true
		default:
		}
		if ended {
			str.CancelRead(uint64(wire.ResetCancelled))
		} else {
			s.fail(violation("a second stream for FETCH %d", id))
		}
		return
	}
	f.stopWatch()
	select {
	case <-f.cancelled:
		str.CancelRead(uint64(wire.ResetCancelled))
	default:
	}
	var end error
	defer func() {
		// The fetch is over before ReadObject can see its end: a Cancel made
		// after Next returned sends no FETCH_CANCEL for it.
		s.mu.Lock()
		delete(s.fetches, id)
		s.mu.Unlock()
		f.mu.Lock()
		f.err = end
		if f.bad != nil {
			f.err = f.bad
		}
		f.mu.Unlock()
		close(f.ch)
	}()
	var prev wire.Location
	for i := 0; ; i++ {
		o, err := r.ReadObject()
		if err != nil {
			end = err
			if err != io.EOF {
				s.streamFailed(str, err)
			}
			return
		}
		if s.cfg.Tracer != nil {
			s.cfg.Tracer.FetchObject(false, &o.ObjectHeader)
		}
		loc := wire.Location{Group: o.Group, Object: o.ID}
		var bad error
		if i > 0 {
			bad = f.checkFetchOrder(prev, loc)
		}
		if bad == nil {
			if err := o.Extensions.CheckRules(loc); err != nil {
				bad = fmt.Errorf("%w: %v", ErrMalformedTrack, err)
			}
		}
		if bad != nil {
			str.CancelRead(uint64(wire.ResetCancelled))
			end = bad
			s.trackMalformed(f.name, bad)
			return
		}
		prev = loc
		obj := &Object{Group: o.Group, Subgroup: o.Subgroup, ID: o.ID, PublisherPriority: o.PublisherPriority,
			Status: o.Status, Extensions: o.Extensions, Payload: o.Payload}
		select {
		case f.ch <- obj:
		case <-f.cancelled:
			str.CancelRead(uint64(wire.ResetCancelled))
			end = ErrFetchCancelled
			return
		case <-s.ctx.Done():
			end = s.closedErr()
			return
		}
	}
}

// servedFetch is a FETCH from the peer that we answer from a track.
// cancel ends its context with the *RequestError EndFetch was given; cut
// ends, with errFetchCancelled, the context a FETCH_CANCEL ends (see
// writeFetch), and with it the fetch's context if it has not ended.
type servedFetch struct {
	cancel context.CancelCauseFunc
	cut    context.CancelCauseFunc
}

// errFetchCancelled is the cause of a served fetch's end at FETCH_CANCEL.
var errFetchCancelled = errors.New("moqt: the peer cancelled the fetch")

// EndFetch ends a FETCH this session serves before its objects are all
// sent, as EndSubscription ends a subscription. A FETCH not answered yet
// (its handler still deciding) gets FETCH_ERROR with code and reason; one
// whose objects are being sent has its stream reset with CANCELLED
// (§10.4.3: the publisher ended the request; draft-14 has no message that
// carries a code once FETCH_OK is sent). The stream is opened even when
// the FETCH ends before its first object, and the reset never overtakes
// its header, over WebTransport too (see writeFetch), so the peer always
// learns that its FETCH ended. It reports whether requestID
// named a FETCH still served; ending one that is ending already does
// nothing.
func (s *Session) EndFetch(requestID uint64, code FetchErrorCode, reason string) bool {
	s.mu.Lock()
	f := s.servedFetches[requestID]
	s.mu.Unlock()
	if f == nil {
		return false
	}
	f.cancel(&RequestError{Message: wire.TypeFetchError, Code: uint64(code), Reason: reason})
	return true
}

// fetchEnded answers a FETCH whose context ended before its answer: with
// FETCH_ERROR when EndFetch ended it; a FETCH_CANCEL or the session's end
// need no answer.
func (s *Session) fetchEnded(ctx context.Context, id uint64) {
	var re *RequestError
	if errors.As(context.Cause(ctx), &re) && s.ctx.Err() == nil {
		s.fetchError(id, FetchErrorCode(re.Code), re.Reason)
	}
}

func (s *Session) handleFetch(m *wire.Fetch) error {
	var joined *servedSubscription
	if m.FetchType != wire.FetchStandalone {
		s.mu.Lock()
		joined = s.served[m.JoiningRequestID]
		s.mu.Unlock()
		if joined != nil && joined.req.Filter.Type != wire.FilterLargestObject {
			return violation("joining FETCH on subscription %d, whose filter is %s, not LargestObject", m.JoiningRequestID, joined.req.Filter.Type)
		}
	}
	// cut ends at FETCH_CANCEL or the session's end, even after
	// EndFetch; ctx ends with it, and at EndFetch.
	cut, cutNow := context.WithCancelCause(s.ctx)
	ctx, cancel := context.WithCancelCause(cut)
	s.mu.Lock()
	setIn(&s.servedFetches, m.RequestID, &servedFetch{cancel: cancel, cut: cutNow})
	s.mu.Unlock()
	s.goFunc(func() {
		defer func() {
			cancel(nil)
			cutNow(nil)
			s.mu.Lock()
			delete(s.servedFetches, m.RequestID)
			s.mu.Unlock()
			if s.ctx.Err() == nil {
				s.requestDone()
			}
		}()
		s.serveFetch(ctx, cut, m, joined)
	})
	return nil
}

// refuseFetch answers a FETCH the session refuses itself (no handler, or
// a standalone range that ends before it starts) and reports whether it
// did. It runs before the Authorizer, as refuseSubscribeNamespace does,
// so that a FETCH the Authorizer allows reaches the handler (a relay
// notes the exp of the request's own token until its handler takes it).
func (s *Session) refuseFetch(m *wire.Fetch) bool {
	switch {
	case s.cfg.Handler.Fetch == nil:
		s.refuse(&wire.FetchError{RequestID: m.RequestID, Code: wire.FetchNotSupported, Reason: "FETCH is not supported by this endpoint"})
	case m.FetchType == wire.FetchStandalone && fetchLast(m.End).Less(m.Start):
		s.refuse(&wire.FetchError{RequestID: m.RequestID, Code: wire.FetchInvalidRange, Reason: fmt.Sprintf("end %v is before start %v", m.End, m.Start)})
	default:
		return false
	}
	return true
}

func (s *Session) handleFetchCancel(m *wire.FetchCancel) {
	s.mu.Lock()
	f := s.servedFetches[m.RequestID]
	s.mu.Unlock()
	if f != nil {
		f.cut(errFetchCancelled)
	}
}

func (s *Session) fetchError(id uint64, code wire.FetchErrorCode, reason string) {
	s.sendOrFail(&wire.FetchError{RequestID: id, Code: code, Reason: reason})
}

// serveFetch resolves one FETCH's track and range and answers it with
// what the handler's Fetch gives. ctx is the fetch's, cut what ends at
// FETCH_CANCEL (handleFetch).
func (s *Session) serveFetch(ctx, cut context.Context, m *wire.Fetch, joined *servedSubscription) {
	var (
		ns         wire.Namespace
		name       string
		start, end wire.Location // end as on the wire: plus one, {G,0} = whole group
	)
	switch m.FetchType {
	case wire.FetchStandalone:
		ns, name, start, end = m.Namespace, m.Name, m.Start, m.End
	default:
		if joined == nil {
			s.fetchError(m.RequestID, wire.FetchInvalidJoiningRequestID, fmt.Sprintf("request %d is not a subscription of this session", m.JoiningRequestID))
			return
		}
		select {
		case <-joined.answered:
		case <-ctx.Done():
			s.fetchEnded(ctx, m.RequestID)
			return
		}
		joined.mu.Lock()
		largest, exists, accepted := joined.largest, joined.exists, joined.accepted
		joined.mu.Unlock()
		if !accepted {
			s.fetchError(m.RequestID, wire.FetchInvalidJoiningRequestID, fmt.Sprintf("subscription %d was refused", m.JoiningRequestID))
			return
		}
		if !exists {
			s.fetchError(m.RequestID, wire.FetchInvalidRange, "the joined subscription had no content when it started")
			return
		}
		ns, name = joined.req.Namespace, joined.req.Name
		end = endAfter(largest)
		if m.FetchType == wire.FetchAbsoluteJoining {
			start = wire.Location{Group: m.JoiningStart}
		} else if m.JoiningStart <= largest.Group {
			start = wire.Location{Group: largest.Group - m.JoiningStart}
		}
	}
	last := fetchLast(end)
	if last.Less(start) {
		s.fetchError(m.RequestID, wire.FetchInvalidRange, fmt.Sprintf("end %v is before start %v", end, start))
		return
	}
	h := s.cfg.Handler.Fetch // not nil: refuseFetch answered a nil one
	var resp *FetchResponse
	err := s.callbackErr("Handler.Fetch", func() (err error) {
		resp, err = h(ctx, s, newFetchRequest(m, ns, name, start, end))
		return err
	})
	if ctx.Err() != nil {
		if err == nil && resp != nil && resp.Close != nil {
			s.guard("FetchResponse.Close", resp.Close)
		}
		s.fetchEnded(ctx, m.RequestID)
		return
	}
	if err == nil && resp == nil {
		err = FetchError(wire.FetchTrackDoesNotExist, "no track to fetch from")
	}
	if err != nil {
		// Translated by name: ErrTrackNotFound is FETCH_ERROR
		// TRACK_DOES_NOT_EXIST here.
		code, reason := requestCode(err, wire.TypeFetchError, uint64(wire.FetchInternalError))
		s.fetchError(m.RequestID, wire.FetchErrorCode(code), reason)
		return
	}
	s.serveFetchResponse(ctx, cut, m, resp)
}

// FetchFromTrack answers a FETCH from what t's cache holds: the objects of
// the requested range, in the requested group order (the track's when the
// request leaves it to the publisher). A range the cache cannot answer is
// refused with its draft-14 code: INVALID_RANGE when it starts past the
// largest object, UNKNOWN_STATUS_IN_RANGE when part of it is no longer (or
// only partly) cached or past the track's MAX_CACHE_DURATION (§9.2.1.3:
// its state is then unknown; a relay asks upstream), NO_OBJECTS when
// nothing in it is cached. A track found malformed
// while the objects are sent resets the fetch stream (§2.5).
//
// It is what a Handler.Fetch returns for a track served from memory; the
// objects are collected when it is called.
func FetchFromTrack(t *Track, req *FetchRequest) (*FetchResponse, error) {
	return fetchFromTrack(t, req, false)
}

// FetchFromRelayedTrack answers a FETCH from the cache of a track received
// from a peer, as FetchFromTrack does, but only when the cache knows every
// object of the range; otherwise it refuses it with
// UNKNOWN_STATUS_IN_RANGE, and a relay forwards the FETCH upstream
// (§9.16: an object that is not cached and whose status is unknown is
// confirmed upstream, never left out of the answer, where the subscriber
// would take it for an object that does not exist).
//
// The cache knows the objects of a group from ID lo to hi when each of
// them is cached: a subgroup's objects arrive on a stream of their own,
// late or never (a reset stream), so an ID in between that is not cached
// may be an object on its way, and gaps in object IDs, though legal, are
// not taken to mean that objects do not exist. A range that runs past a
// group needs the group's end: an End of Group or End of Track object, or
// the FIN of a subgroup stream that declared End of Group (the subgroup
// header types 0x18-0x1D), or a datagram with the End Of Group bit. A
// newer group's arrival proves nothing about an older one, and every group
// ID of the range must be cached (a missing group may be late, not
// nonexistent). Object and group IDs that a cached object's Prior Object ID
// Gap or Prior Group ID Gap extension declares nonexistent need no
// object. The range's last group is known up to the track's largest
// location, which is then the FETCH_OK's end: so a joining FETCH of the
// group being written, up to its subscription's largest location, is
// answered from the cache while that group's only subgroup stream is still
// open.
//
// Trust: a group's end is its publisher's word (an End of Group object, or
// a subgroup declared to end the group); a source that contradicts itself
// (an object past its declared end, two ends) is believed neither way, and
// its group is forwarded.
//
// A track whose cache is the only source (an original publisher's, or a
// track pushed with PUBLISH, which has no one to forward to) is answered
// with FetchFromTrack.
func FetchFromRelayedTrack(t *Track, req *FetchRequest) (*FetchResponse, error) {
	return fetchFromTrack(t, req, true)
}

func fetchFromTrack(t *Track, req *FetchRequest, known bool) (*FetchResponse, error) {
	start, end := req.Start, req.End
	last := fetchLast(end)
	if last.Less(start) {
		return nil, FetchError(wire.FetchInvalidRange, fmt.Sprintf("end %v is before start %v", end, start))
	}
	// The range is read from one view of the cache (cachedRange): the
	// track is written, and its groups evicted, while a FETCH is answered.
	_, maxCache := t.Timeouts()
	cr, err := t.cachedRange(start, last, maxCache, known)
	if err != nil {
		return nil, err
	}
	largest, objs := cr.largest, cr.objs
	okEnd := end
	if largest.Less(last) {
		okEnd = endAfter(largest)
		last = largest
	}
	order := req.GroupOrder
	if order == GroupOrderPublisher {
		order = t.GroupOrder()
	}
	if order == GroupOrderDescending {
		objs = descendingGroups(objs)
	}
	next := sliceObjects(objs)
	return &FetchResponse{
		GroupOrder: order,
		EndOfTrack: cr.ended && !last.Less(largest),
		End:        okEnd,
		Next: func(ctx context.Context) (*Object, error) {
			if err := t.Err(); isMalformed(err) {
				return nil, err
			}
			return next(ctx)
		},
	}, nil
}

// cachedRange is what a track's cache holds of a FETCH's range.
type cachedRange struct {
	largest Location  // the track's largest location
	objs    []*Object // the range's objects, by location
	ended   bool      // the track had ended normally: nothing follows largest
}

// cachedRange collects the objects of [start, last] that the cache holds,
// or refuses the range with its FETCH_ERROR: INVALID_RANGE when start is
// past the largest location, UNKNOWN_STATUS_IN_RANGE when the start is no
// longer cached, a group of the range is only partly cached, or an object
// of it is past maxCache (MAX_CACHE_DURATION), NO_OBJECTS when nothing of
// it is cached. Every check and the objects come from one hold of t.mu: an
// eviction between a check and the reading of the objects it passed would
// leave cached groups out of an answer whose gaps the subscriber takes for
// objects that do not exist (§9.16), and the largest location and the
// track's end, read apart from the objects, could name a different end
// than the objects sent. Only the cached groups are visited, however far
// apart their IDs are. With known, the range is also refused with
// UNKNOWN_STATUS_IN_RANGE unless the cache knows every object of it
// (FetchFromRelayedTrack gives the rule).
func (t *Track) cachedRange(start, last Location, maxCache time.Duration, known bool) (cachedRange, error) {
	t.touch()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.expire()
	if !t.hasLargest || t.largest.Less(start) {
		return cachedRange{}, FetchError(wire.FetchInvalidRange, fmt.Sprintf("start %v is past the largest object", start))
	}
	if len(t.groups) == 0 || start.Group < t.groups[0].id {
		return cachedRange{}, FetchError(wire.FetchUnknownStatusInRange, "the start of the range is no longer cached")
	}
	if t.hasEvicted && start.Group <= t.evictedMax {
		// An older-arriving group of a larger ID was evicted by age
		// while this one stayed: the range may cross it, and a group
		// left out reads as one that does not exist (§9.16).
		return cachedRange{}, FetchError(wire.FetchUnknownStatusInRange, fmt.Sprintf("group %d of the range may have been evicted", t.evictedMax))
	}
	if t.largest.Less(last) {
		last = t.largest
	}
	var now time.Time
	if maxCache > 0 {
		now = t.now()
	}
	i := t.groupIndex(start.Group)
	// One allocation for the answer: the range's groups hold at most this
	// many of its objects (appending grew it, copying, to three times the
	// size of a whole cache's answer).
	n := 0
	for j := i; j < len(t.groups) && t.groups[j].id <= last.Group; j++ {
		n += len(t.groups[j].objects)
	}
	objs := make([]*Object, 0, n)
	next := start.Group // with known: the group ID the range needs next
	for ; i < len(t.groups) && t.groups[i].id <= last.Group; i++ {
		g := t.groups[i]
		if g.truncated {
			return cachedRange{}, FetchError(wire.FetchUnknownStatusInRange, fmt.Sprintf("group %d is only partly cached", g.id))
		}
		if known {
			if g.id != next && g.groupGap() < g.id-next {
				return cachedRange{}, FetchError(wire.FetchUnknownStatusInRange, fmt.Sprintf("group %d is not cached: it may exist", next))
			}
			lo, hi := uint64(0), uint64(wire.MaxVarint)
			if g.id == start.Group {
				lo = start.Object
			}
			if g.id == last.Group {
				hi = last.Object
			}
			if !g.knows(lo, hi) {
				return cachedRange{}, FetchError(wire.FetchUnknownStatusInRange, fmt.Sprintf("group %d is not known complete in the cache (a subgroup stream may be late or was reset)", g.id))
			}
			next = g.id + 1
		}
		for _, o := range g.sortedObjects() {
			if l := o.Location(); l.Less(start) || last.Less(l) {
				continue
			}
			if maxCache > 0 && now.Sub(o.Received) > maxCache {
				// §9.2.1.3: an object past MAX_CACHE_DURATION is not
				// forwarded, and its state is unknown (a relay asks
				// upstream). Left out, it would read as an object
				// that does not exist.
				return cachedRange{}, FetchError(wire.FetchUnknownStatusInRange, fmt.Sprintf("object %v is past the track's MAX_CACHE_DURATION (%v)", o.Location(), maxCache))
			}
			objs = append(objs, o)
		}
	}
	if known && next <= last.Group {
		return cachedRange{}, FetchError(wire.FetchUnknownStatusInRange, fmt.Sprintf("group %d is not cached: it may exist", next))
	}
	if len(objs) == 0 {
		return cachedRange{}, FetchError(wire.FetchNoObjects, "no objects in the range")
	}
	return cachedRange{largest: t.largest, objs: objs, ended: t.closed && t.closeErr == io.EOF}, nil
}

// isMalformed reports whether a track ended because it was malformed.
func isMalformed(err error) bool {
	var re *RequestError
	return errors.Is(err, ErrMalformedTrack) ||
		errors.As(err, &re) && re.Message == wire.TypePublishDone && re.Code == uint64(wire.DoneMalformedTrack)
}

// descendingGroups reorders objects sorted by location so that groups go
// newest first, objects within a group still in ID order.
func descendingGroups(objs []*Object) []*Object {
	out := make([]*Object, 0, len(objs))
	for i := len(objs); i > 0; {
		j := i - 1
		for j > 0 && objs[j-1].Group == objs[i-1].Group {
			j--
		}
		out = append(out, objs[j:i]...)
		i = j
	}
	return out
}

// sliceObjects iterates over objs, then io.EOF.
func sliceObjects(objs []*Object) func(context.Context) (*Object, error) {
	return func(context.Context) (*Object, error) {
		if len(objs) == 0 {
			return nil, io.EOF
		}
		o := objs[0]
		objs = objs[1:]
		return o, nil
	}
}

// writeFetch writes the fetch stream: header, then each object next
// yields until io.EOF. Another error resets the stream. ctx ends with the
// fetch; cut, at FETCH_CANCEL or the session's end (handleFetch).
func (s *Session) writeFetch(ctx, cut context.Context, m *wire.Fetch, next func(context.Context) (*Object, error)) (err error) {
	// The peer has FETCH_OK and waits for the stream: one ended by
	// EndFetch is still opened, its header written at once, and reset,
	// so that the peer learns of the end. The reset must not overtake
	// the header: a peer that has not read the header when the reset
	// comes cannot tell which FETCH the stream was for, and waits for
	// it forever. Over raw QUIC the header is marked reliable
	// (RESET_STREAM_AT). webtransport-go 0.13 offers no such mark for
	// what follows its own stream header, so there the reset waits
	// until a probe timeout after the header was handed over (resetAfter):
	// by then the header has been acknowledged, or declared lost and
	// sent again.
	//
	// FETCH_CANCEL or the session's end (cut), not EndFetch, cuts the
	// stream before its header is out, even after an EndFetch: the wait
	// for stream credit, and a header write blocked on flow control
	// (quic-go takes a header this small at once, but webtransport-go's
	// session flow control, WT_MAX_DATA, can stop it), which only a reset
	// ends. The peer that cancelled needs nothing more on the stream.
	str, err := s.conn.OpenUniStreamSync(cut)
	if err != nil {
		return err
	}
	setUrgency(str, fetchUrgency(m.SubscriberPriority))
	buf, _ := wire.AppendFetchHeader(make([]byte, 0, 256), m.RequestID)
	tr := s.cfg.Tracer
	if tr != nil {
		tr.FetchHeader(true, m.RequestID)
	}
	stopHeader := context.AfterFunc(cut, func() { str.CancelWrite(uint64(wire.ResetCancelled)) })
	_, err = str.Write(buf)
	stopHeader()
	if err != nil {
		return err
	}
	reset := s.resetAfter(str, time.Now())
	// next is application code (FetchResponse.Next), as a Handler is: a
	// panic in it resets the stream (INTERNAL_ERROR) and is logged; it
	// crashed the process. Recovered once here, not around each call.
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("FetchResponse.Next panicked; the fetch stream is reset with INTERNAL_ERROR", "request", m.RequestID, "panic", v, "stack", string(debug.Stack()))
			reset(wire.ResetInternalError)
			err = errCallbackPanicked
		}
	}()
	buf = buf[:0]
	stop := context.AfterFunc(ctx, func() { reset(wire.ResetCancelled) })
	defer stop()
	for {
		if ctx.Err() != nil {
			// Cancelled or ended (EndFetch): a next that ignores ctx
			// would go on yielding objects while the reset waits
			// (resetAfter), and they would still be written.
			reset(wire.ResetCancelled)
			return context.Cause(ctx)
		}
		o, err := next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			if ctx.Err() != nil {
				// Cancelled or ended (EndFetch): the AfterFunc's code.
				reset(wire.ResetCancelled)
			} else {
				reset(wire.ResetInternalError)
			}
			return err
		}
		h := wire.ObjectHeader{Group: o.Group, Subgroup: o.Subgroup, ID: o.ID, PublisherPriority: o.PublisherPriority,
			Status: o.Status, Extensions: o.Extensions, PayloadLength: uint64(len(o.Payload))}
		if buf, err = wire.AppendFetchObject(buf, &h); err != nil {
			reset(wire.ResetInternalError)
			return err
		}
		if tr != nil {
			tr.FetchObject(true, &h)
		}
		if _, err := str.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
		if len(o.Payload) > 0 {
			if _, err := str.Write(o.Payload); err != nil {
				return err
			}
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return str.Close()
}

// resetAfter marks what was written to str, a fetch stream whose header
// was handed over at headerAt, as data its reset must still deliver, and
// returns the reset: with the first code it is given, at once when str
// can mark that data reliable (RESET_STREAM_AT, moqnative's raw QUIC),
// otherwise no sooner than a probe timeout after headerAt, on a timer
// (see writeFetch). Codes are wire.StreamResetCode.
func (s *Session) resetAfter(str SendStream, headerAt time.Time) func(code wire.StreamResetCode) {
	var wait time.Duration
	if rb, ok := str.(interface{ SetReliableBoundary() }); ok {
		rb.SetReliableBoundary()
	} else {
		wait = s.probeTimeout()
	}
	var once sync.Once
	return func(code wire.StreamResetCode) {
		once.Do(func() {
			if left := wait - time.Since(headerAt); left > 0 {
				time.AfterFunc(left, func() { str.CancelWrite(uint64(code)) })
				return
			}
			str.CancelWrite(uint64(code))
		})
	}
}

// FetchRequest is a FETCH as Handler.Fetch sees it, with its track and
// range resolved: for a joining fetch, from the joined subscription, so a
// handler answers a standalone and a joining fetch alike.
type FetchRequest struct {
	// RequestID is the FETCH's request ID (for logs).
	RequestID uint64
	// Namespace and Name are the track fetched.
	Namespace Namespace
	Name      string
	// Start is the first location asked for. End is as on the wire: {G, 0}
	// is all of group G, {G, N} the objects before N.
	Start, End Location
	// Priority is the subscriber priority; GroupOrder the order asked for
	// (GroupOrderPublisher leaves it to the publisher).
	Priority   uint8
	GroupOrder GroupOrder
	// Params are the FETCH's parameters; authorization tokens among them
	// were already checked by Config.Authorize.
	Params Parameters
	// Joining tells a joining fetch (§9.16.2); JoinedRequestID is then the
	// request ID of the subscription it joined on this session.
	Joining         bool
	JoinedRequestID uint64
}

// newFetchRequest is m with its track and range resolved.
func newFetchRequest(m *wire.Fetch, ns Namespace, name string, start, end Location) *FetchRequest {
	req := &FetchRequest{
		RequestID: m.RequestID, Namespace: ns, Name: name, Start: start, End: end,
		Priority: m.SubscriberPriority, GroupOrder: m.GroupOrder, Params: m.Params,
	}
	if m.FetchType != wire.FetchStandalone {
		req.Joining, req.JoinedRequestID = true, m.JoiningRequestID
	}
	return req
}

// FetchResponse answers a FETCH from Handler.Fetch: the FETCH_OK fields,
// and the objects in the order they go on the stream (FetchFromTrack
// builds one from a track's cache).
type FetchResponse struct {
	// GroupOrder is the order of the groups sent; GroupOrderPublisher
	// is sent as ascending.
	GroupOrder GroupOrder
	// EndOfTrack tells that End is the end of the track.
	EndOfTrack bool
	// End is the FETCH_OK end location, as on the wire: {G, 0} is all of
	// group G, {G, N} the objects before N. The zero value, with
	// Objects, is just past the last of them; with Next it is {0, 0}, all
	// of group 0, so set it. An End before the requested start is
	// refused with FETCH_ERROR INTERNAL_ERROR (the peer would close the
	// session for it).
	End Location
	// Objects are the objects to send, in order, when Next is nil: an
	// application's store answers with the objects it holds. None (and
	// no Next) is answered with FETCH_ERROR NO_OBJECTS.
	Objects []*Object
	// Next, when set, returns the next object, io.EOF after the last; any
	// other error resets the fetch stream. It suits a response produced
	// as it is sent (a relay forwarding a FETCH upstream).
	Next func(ctx context.Context) (*Object, error)
	// Close, if set, is called when the response is done or cancelled.
	Close func()
}

// FetchError returns a handler error that refuses a FETCH with code.
func FetchError(code FetchErrorCode, reason string) error {
	return &RequestError{Message: wire.TypeFetchError, Code: uint64(code), Reason: reason}
}

// serveFetchResponse sends FETCH_OK and streams a handler's objects.
func (s *Session) serveFetchResponse(ctx, cut context.Context, m *wire.Fetch, resp *FetchResponse) {
	if resp.Close != nil {
		defer s.guard("FetchResponse.Close", resp.Close)
	}
	order := resp.GroupOrder
	if order == GroupOrderPublisher {
		order = GroupOrderAscending
	}
	next, end := resp.Next, resp.End
	if next == nil && len(resp.Objects) == 0 {
		s.fetchError(m.RequestID, FetchNoObjects, "no objects in the range")
		return
	}
	if next == nil {
		next = sliceObjects(resp.Objects)
		if end == (Location{}) && len(resp.Objects) > 0 {
			// Just past the largest location sent.
			largest := resp.Objects[0].Location()
			for _, o := range resp.Objects[1:] {
				if l := o.Location(); largest.Less(l) {
					largest = l
				}
			}
			end = endAfter(largest)
		}
	}
	if m.FetchType == wire.FetchStandalone && fetchLast(end).Less(m.Start) {
		// Sent, it would make the peer close the session (§9.17): most
		// likely a handler with Next that left End unset ({0, 0}).
		s.log.Error("a Fetch handler's FetchResponse.End is before the requested start; refusing the FETCH (set End with Next)", "request", m.RequestID, "end", end, "start", m.Start)
		s.fetchError(m.RequestID, FetchInternalError, "the publisher's answer ends before the requested start")
		return
	}
	if ctx.Err() != nil {
		s.fetchEnded(ctx, m.RequestID)
		return
	}
	if err := s.send(&wire.FetchOK{RequestID: m.RequestID, GroupOrder: order, EndOfTrack: resp.EndOfTrack, End: end}); err != nil {
		// A handler's FETCH_OK that cannot be encoded still gets an answer.
		s.sendOrFail(&wire.FetchError{RequestID: m.RequestID, Code: FetchInternalError, Reason: err.Error()})
		return
	}
	if err := s.writeFetch(ctx, cut, m, next); err != nil && s.ctx.Err() == nil {
		s.log.Debug("fetch stream failed", "request", m.RequestID, "err", err)
	}
}
