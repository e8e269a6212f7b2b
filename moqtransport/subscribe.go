package moqtransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// DefaultPriority is the subscriber priority the draft recommends when an
// application has no preference (lower values are more urgent).
const DefaultPriority = 128

// SubscribeOptions are the fields of a SUBSCRIBE. The zero value asks for
// the newest objects (Largest Object filter), forwarding on, the
// publisher's group order, and priority 0 (use DefaultPriority for the
// draft's recommended 128).
type SubscribeOptions struct {
	Priority   uint8
	GroupOrder GroupOrder
	// Filter defaults to Largest Object when its Type is 0.
	Filter Filter
	// Paused subscribes with Forward 0: the subscription exists but no
	// objects flow until Update turns forwarding on.
	Paused bool
	Params Parameters
}

// Subscription is a track we subscribed to. ReadObject (or the Objects
// iterator) reads the objects it receives; they go into Track(), which any
// number of TrackReaders can read too, with the end of each subgroup.
type Subscription struct {
	s     *Session
	id    uint64
	name  FullTrackName
	track *Track

	// upd, holding one token, makes each Update one step, from its check
	// of the new range to its SUBSCRIBE_UPDATE on the wire (see Update);
	// a channel, so that a waiting Update still honours its context and
	// the subscription's end.
	upd chan struct{}

	// filter: the SUBSCRIBE's filter type (a joining FETCH needs
	// LargestObject).
	filter FilterType

	mu       sync.Mutex
	ok       wire.SubscribeOK
	start    Location
	hasEnd   bool
	endGroup uint64
	// Data streams: how many arrived, how many are still being read, and
	// the count PUBLISH_DONE announced.
	streams   uint64
	active    int
	doneCount uint64
	doneMsg   *wire.PublishDone
	doneTimer *time.Timer
	// noMoreStreams: PUBLISH_DONE's grace passed (graceOver); a stream
	// that comes now is stopped.
	noMoreStreams bool
	unsubscribe   bool
	// incoming: the peer pushed this track with PUBLISH; its request is
	// the peer's, and ends with the subscription.
	incoming bool
	// skipBefore: SkipTo's group; reading: the data streams being read,
	// by group, so that SkipTo can stop the older ones.
	skipBefore uint64
	reading    map[ReceiveStream]uint64
	// ended and endErr: how the subscription ended, set before its track
	// closes, so that ReadObject tells the two apart. rd: ReadObject's
	// reader of the track, made by its first call.
	ended  bool
	endErr error
	rd     *TrackReader

	once sync.Once
	done chan struct{}
	err  error
}

// RequestID returns the SUBSCRIBE's request ID.
func (sub *Subscription) RequestID() uint64 { return sub.id }

// Name returns the track's full name.
func (sub *Subscription) Name() FullTrackName { return sub.name }

// Track returns the track that holds the received objects.
func (sub *Subscription) Track() *Track { return sub.track }

// OK returns the publisher's SUBSCRIBE_OK: track alias, group order, and
// the largest location when content exists.
func (sub *Subscription) OK() SubscribeOK {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.ok
}

// Largest returns the largest location SUBSCRIBE_OK named, and false when
// the track had no content yet. A Largest Object subscription starts
// right after it; a joining FETCH (SubscribeJoin) gets its group from the
// start.
func (sub *Subscription) Largest() (Location, bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.ok.Largest, sub.ok.ContentExists
}

// Done is closed when the subscription has ended: PUBLISH_DONE arrived
// and its streams were read, we unsubscribed, or the session ended.
func (sub *Subscription) Done() <-chan struct{} { return sub.done }

// Err says how the subscription ended: nil for PUBLISH_DONE TRACK_ENDED or
// SUBSCRIPTION_ENDED, or after Unsubscribe; a *RequestError carrying the
// PUBLISH_DONE status otherwise; the session's error if it ended first.
// DoneStatus tells TRACK_ENDED and SUBSCRIPTION_ENDED apart.
func (sub *Subscription) Err() error {
	<-sub.done
	return sub.err
}

// DoneStatus returns the status code and reason of the PUBLISH_DONE the
// publisher sent for the subscription, and false if none came: the
// subscription is live, or Unsubscribe or the session's end ended it
// before one arrived. It tells apart what Err does not: TRACK_ENDED (the track is over
// for every subscriber) and SUBSCRIPTION_ENDED (the publisher ended this
// subscription, as at its end group, or a relay giving it up: the track
// may go on, and subscribing again can find it). Once it reports a
// PUBLISH_DONE, objects may still arrive until Done is closed.
func (sub *Subscription) DoneStatus() (code PublishDoneCode, reason string, ok bool) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.doneMsg == nil {
		return 0, "", false
	}
	return sub.doneMsg.StatusCode, sub.doneMsg.Reason, true
}

func (sub *Subscription) end(err error) { sub.endWith(err, err) }

// endWith ends the subscription with err and closes its track with
// trackErr, the error the track's readers (and a relay's subscribers) get.
func (sub *Subscription) endWith(err, trackErr error) {
	sub.once.Do(func() {
		sub.err = err
		sub.mu.Lock()
		sub.ended, sub.endErr = true, err
		if sub.doneTimer != nil {
			sub.doneTimer.Stop()
		}
		sub.mu.Unlock()
		// Its streams still open are stopped (§9.12: STOP_SENDING "on all
		// streams related to the subscription"): they went on being read,
		// an object of up to 64 MiB each, into a closed track.
		sub.stopReading()
		sub.track.Close(trackErr)
		s := sub.s
		s.mu.Lock()
		delete(s.subs, sub.id)
		if s.subsByAlas[sub.ok.TrackAlias] == sub {
			// Its late data streams are stopped at once, from here on.
			delete(s.subsByAlas, sub.ok.TrackAlias)
			s.aliasEndedLocked(sub.ok.TrackAlias)
		}
		s.mu.Unlock()
		close(sub.done)
		if sub.incoming && s.ctx.Err() == nil {
			s.requestDone()
		}
	})
}

// Subscribe sends SUBSCRIBE for a track and waits for SUBSCRIBE_OK. A
// refusal is a *RequestError with the SUBSCRIBE_ERROR code.
func (s *Session) Subscribe(ctx context.Context, ns Namespace, name string, opts SubscribeOptions) (*Subscription, error) {
	return s.subscribe(ctx, ns, name, opts, nil)
}

// subscribe is Subscribe; onID, when set, is called with the subscription
// once its request ID is taken, before the SUBSCRIBE is sent (s.reqMu is
// held: a request onID starts goes on the wire after it).
func (s *Session) subscribe(ctx context.Context, ns Namespace, name string, opts SubscribeOptions, onID func(*Subscription)) (*Subscription, error) {
	full := FullTrackName{Namespace: ns, Name: name}
	if err := full.Validate(); err != nil {
		return nil, err
	}
	if opts.Filter.Type == 0 {
		opts.Filter.Type = FilterLargestObject
	}
	sub := &Subscription{s: s, name: full, track: NewTrack(full, s.cfg.Track), done: make(chan struct{}), upd: make(chan struct{}, 1)}
	sub.start, sub.filter = opts.Filter.Start, opts.Filter.Type
	sub.hasEnd, sub.endGroup = opts.Filter.Type == FilterAbsoluteRange, opts.Filter.EndGroup
	registered := false
	_, resp, err := s.request(ctx, func(id uint64) wire.Message {
		return &wire.Subscribe{
			RequestID: id, Namespace: ns, Name: name,
			SubscriberPriority: opts.Priority, GroupOrder: opts.GroupOrder,
			Forward: !opts.Paused, Filter: opts.Filter, Params: opts.Params,
		}
	}, requestHooks{register: func(id uint64) {
		sub.id, registered = id, true
		s.mu.Lock()
		setIn(&s.subs, id, sub)
		s.mu.Unlock()
		if onID != nil {
			onID(sub)
		}
	}})
	if err != nil {
		if registered && ctx.Err() != nil && s.ctx.Err() == nil {
			// We gave up waiting: tell the publisher.
			s.sendOrFail(&wire.Unsubscribe{RequestID: sub.id})
		}
		sub.end(err)
		return nil, err
	}
	switch r := resp.(type) {
	case *wire.SubscribeOK:
		return sub, nil
	case *wire.SubscribeError:
		err := &RequestError{Message: wire.TypeSubscribeError, Code: uint64(r.Code), Reason: r.Reason}
		sub.end(err)
		return nil, err
	}
	return nil, violation("%s in answer to SUBSCRIBE", resp.Type())
}

// handleSubscribeOK learns the track alias before anything else can read
// data for it, then hands the answer to the waiting Subscribe.
func (s *Session) handleSubscribeOK(m *wire.SubscribeOK) error {
	s.endDrainingAlias(m.TrackAlias, m.RequestID)
	s.mu.Lock()
	sub, ok := s.subs[m.RequestID]
	if ok {
		if other, dup := s.subsByAlas[m.TrackAlias]; dup && other != sub {
			s.mu.Unlock()
			return &SessionError{Code: wire.DuplicateTrackAlias, Reason: "SUBSCRIBE_OK reuses a track alias in use"}
		}
		// The answer is the subscription's before its alias is: once
		// the alias is in subsByAlas, a datagram or stream can end the
		// subscription (a malformed track), and ending reads
		// sub.ok.TrackAlias under s.mu to remove the alias again.
		sub.mu.Lock()
		sub.ok = *m
		if sub.filter == FilterLargestObject || sub.filter == FilterNextGroupStart {
			// The start these filters name is the publisher's largest
			// location then (§9.7): Update checks a new start against
			// it. Left at {0, 0}, an Update that kept the start sent
			// {0, 0}, a start moved back, and the publisher closed the
			// session (§9.10).
			sub.start, _, _, _ = filterRange(wire.Filter{Type: sub.filter}, m.Largest, m.ContentExists)
		}
		sub.mu.Unlock()
		setIn(&s.subsByAlas, m.TrackAlias, sub)
		s.aliasLearnedLocked(m.TrackAlias)
	} else if _, gaveUp := s.abandoned[m.RequestID]; gaveUp {
		// A late answer to a SUBSCRIBE we gave up (and UNSUBSCRIBEd):
		// the streams the publisher sends before it reads the
		// UNSUBSCRIBE carry this alias.
		s.aliasEndedLocked(m.TrackAlias)
	}
	s.mu.Unlock()
	if ok {
		if m.ContentExists {
			sub.track.noteLargest(m.Largest)
		}
		delivery, _ := m.Params.DeliveryTimeout()
		maxCache, _ := m.Params.MaxCacheDuration()
		sub.track.setTimeouts(delivery, maxCache)
	}
	return s.respond(m.RequestID, m)
}

// SkipTo abandons every group before group: their data streams, those
// being read and those that arrive later, are stopped (STOP_SENDING with
// CANCELLED), so that the link carries newer groups instead, and their
// subgroups in Track() end with EventSubgroupAbort. A player that falls
// behind calls it when a newer group starts, together with
// TrackReader.SkipTo; subscribing with descending group order makes the
// newest group arrive first. Groups only move forward: a smaller group
// than before does nothing.
func (sub *Subscription) SkipTo(group uint64) {
	sub.mu.Lock()
	if group <= sub.skipBefore {
		sub.mu.Unlock()
		return
	}
	sub.skipBefore = group
	var stop []ReceiveStream
	for str, g := range sub.reading {
		if g < group {
			stop = append(stop, str)
			delete(sub.reading, str)
		}
	}
	sub.mu.Unlock()
	for _, str := range stop {
		str.CancelRead(uint64(ResetCancelled))
	}
}

// Unsubscribe ends the subscription (UNSUBSCRIBE). Objects already
// received stay readable in Track().
func (sub *Subscription) Unsubscribe() error {
	sub.mu.Lock()
	already := sub.unsubscribe
	sub.unsubscribe = true
	sub.mu.Unlock()
	if already {
		return nil
	}
	select {
	case <-sub.done:
		return nil
	default:
	}
	err := sub.s.send(&wire.Unsubscribe{RequestID: sub.id})
	sub.end(nil)
	return err
}

// UpdateOptions are the fields of a SUBSCRIBE_UPDATE (§9.10). A
// subscription can only be narrowed: its start may not move back, and an
// end group may not grow or be removed. The zero Start and HasEnd false
// keep the subscription's current start and end; Priority and Paused are
// set as given, as in SubscribeOptions.
type UpdateOptions struct {
	// Start moves the subscription's start forward; the zero Location
	// keeps the current start.
	Start Location
	// EndGroup, with HasEnd, ends the subscription after that group
	// (inclusive). It must be at least Start's group and, if the
	// subscription already has an end, at most that end.
	EndGroup uint64
	HasEnd   bool
	// Priority is the new subscriber priority (lower is more urgent; see
	// DefaultPriority).
	Priority uint8
	// Paused stops forwarding (Forward 0) until an Update without it.
	Paused bool
	// Params are sent with the update; a parameter of the SUBSCRIBE that
	// is not repeated keeps its value (§9.10).
	Params Parameters
}

// Update changes the subscription with SUBSCRIBE_UPDATE. The publisher
// sends no answer; objects it sent before it got the update may still
// arrive (and reach Track and ReadObject). Update refuses, without
// sending anything, what the draft makes a protocol violation: a start
// before the current start, an end group past the current end or before
// the start, removing an end. It returns ErrSubscriptionEnded once the
// subscription has ended.
func (sub *Subscription) Update(ctx context.Context, opts UpdateOptions) error {
	select {
	case <-sub.done:
		return ErrSubscriptionEnded
	default:
	}
	// Updates go out in the order they are checked: two that each passed
	// the check against the range before them, sent in the other order,
	// would move the start back, and the publisher closes the session for
	// that (§9.10). Another Update waits, as the request ID it takes would.
	select {
	case sub.upd <- struct{}{}:
		defer func() { <-sub.upd }()
	case <-ctx.Done():
		return ctx.Err()
	case <-sub.done:
		return ErrSubscriptionEnded
	}
	sub.mu.Lock()
	start, hasEnd, endGroup := opts.Start, opts.HasEnd, opts.EndGroup
	if start == (Location{}) {
		start = sub.start
	}
	if !hasEnd {
		hasEnd, endGroup = sub.hasEnd, sub.endGroup
	}
	var err error
	switch {
	case start.Less(sub.start):
		err = fmt.Errorf("moqt: Subscription.Update: start %v is before the current start %v; a subscription can only be narrowed (FETCH the earlier objects)", start, sub.start)
	case sub.hasEnd && endGroup > sub.endGroup:
		err = fmt.Errorf("moqt: Subscription.Update: end group %d is past the current end group %d; a subscription can only be narrowed", endGroup, sub.endGroup)
	case hasEnd && endGroup < start.Group:
		err = fmt.Errorf("moqt: Subscription.Update: end group %d is before the start %v", endGroup, start)
	}
	if err != nil {
		sub.mu.Unlock()
		return err
	}
	sub.mu.Unlock()
	s := sub.s
	if err := s.checkOpen(); err != nil {
		return err
	}
	id, err := s.takeID(ctx)
	if err != nil {
		return err // nothing sent: the range stays as the publisher has it
	}
	defer s.reqMu.Unlock()
	m := &wire.SubscribeUpdate{
		RequestID: id, SubscriptionRequestID: sub.id, Start: start,
		HasEndGroup: hasEnd, EndGroup: endGroup, SubscriberPriority: opts.Priority, Forward: !opts.Paused,
		Params: opts.Params,
	}
	b, err := s.encodeRequest(id, m)
	if err != nil {
		return err // the ID goes back: the range stays as the publisher has it
	}
	if err := s.queue(b, m); err != nil {
		return err
	}
	// The range the next Update is checked against is the one sent
	// (upd keeps Updates one at a time).
	sub.mu.Lock()
	sub.start, sub.hasEnd, sub.endGroup = start, hasEnd, endGroup
	sub.mu.Unlock()
	return nil
}

// handlePublishDone: the publisher ended the subscription. The track
// closes once the streams PUBLISH_DONE counts have been read, or after a
// grace period for streams that never come.
func (s *Session) handlePublishDone(m *wire.PublishDone) error {
	s.mu.Lock()
	sub, ok := s.subs[m.RequestID]
	s.mu.Unlock()
	if !ok {
		if s.ownID(m.RequestID) && m.RequestID < s.nextOwnID() {
			return nil // a subscription we already ended
		}
		if !s.ownID(m.RequestID) && m.RequestID < s.peerNextID() {
			return nil // the peer's PUBLISH, which we UNSUBSCRIBEd from
		}
		return violation("PUBLISH_DONE for request %d, which is not a subscription of ours", m.RequestID)
	}
	sub.mu.Lock()
	sub.doneMsg, sub.doneCount = m, m.StreamCount
	grace := s.cfg.PendingStreamTimeout
	if d, ok := sub.ok.Params.DeliveryTimeout(); ok && d > grace {
		grace = d // §9.12: the timeout is "at least its delivery timeout"
	}
	sub.doneTimer = time.AfterFunc(grace, func() { sub.graceOver(grace) })
	sub.mu.Unlock()
	sub.maybeFinish()
	return nil
}

// graceOver: PUBLISH_DONE's grace for streams still to come has passed.
// No new stream is taken from now on (readDataStream stops it); the
// subscription ends once the streams being read have ended, and those
// still open after one more grace are stopped (they held the end for as
// long as the publisher liked). It used to end the subscription at once,
// a normal end (io.EOF, no error) with a stream still delivering its
// last objects, which were dropped.
func (sub *Subscription) graceOver(grace time.Duration) {
	sub.mu.Lock()
	if sub.ended {
		sub.mu.Unlock()
		return
	}
	sub.noMoreStreams = true
	sub.doneTimer = time.AfterFunc(grace, sub.stopReading)
	sub.mu.Unlock()
	sub.maybeFinish()
}

// stopReading stops the data streams the subscription is still reading
// (STOP_SENDING CANCELLED); their readers end, and the subscription with
// the last.
func (sub *Subscription) stopReading() {
	sub.mu.Lock()
	strs := make([]ReceiveStream, 0, len(sub.reading))
	for str := range sub.reading {
		strs = append(strs, str)
	}
	sub.mu.Unlock()
	for _, str := range strs {
		str.CancelRead(uint64(ResetCancelled))
	}
}

// endDrainingAlias ends, at once, the subscription that holds alias if
// its PUBLISH_DONE came (it only waits for its last data streams): a
// SUBSCRIBE_OK or PUBLISH naming the alias again is then no duplicate.
// Draft-14 forbids one alias for two tracks at the same time (§9.8), and
// the publisher ended that subscription; refused, as it used to be, the
// publisher's next subscription closed the session (DUPLICATE_TRACK_ALIAS)
// until PendingStreamTimeout after the PUBLISH_DONE. Streams of the old
// subscription that come after this are read as the new one's: nothing
// tells them apart. The subscription of request id (the message's own)
// is left alone.
func (s *Session) endDrainingAlias(alias, id uint64) {
	s.mu.Lock()
	other := s.subsByAlas[alias]
	s.mu.Unlock()
	if other == nil || other.id == id {
		return
	}
	other.mu.Lock()
	done := other.doneMsg != nil
	other.mu.Unlock()
	if done {
		other.finishDone()
	}
}

// maybeFinish ends a subscription whose PUBLISH_DONE arrived once all its
// streams have been read: the number PUBLISH_DONE counts, or, when it
// does not know it (StreamCountUnknown), those that came within the grace
// (graceOver). With an unknown count it used to end at once, and the
// streams opened just after PUBLISH_DONE (the control stream often
// overtakes them, §9.12) were stopped as those of an ended subscription.
func (sub *Subscription) maybeFinish() {
	sub.mu.Lock()
	counted := sub.doneCount != wire.StreamCountUnknown && sub.streams >= sub.doneCount
	ready := sub.doneMsg != nil && sub.active == 0 && (counted || sub.noMoreStreams)
	sub.mu.Unlock()
	if ready {
		sub.finishDone()
	}
}

func (sub *Subscription) finishDone() {
	sub.mu.Lock()
	m := sub.doneMsg
	sub.mu.Unlock()
	var err error
	if m.StatusCode != wire.DoneTrackEnded && m.StatusCode != wire.DoneSubscriptionEnded {
		err = &RequestError{Message: wire.TypePublishDone, Code: uint64(m.StatusCode), Reason: m.Reason}
	}
	sub.end(err)
}

// acceptUniStreams takes the peer's data streams for as long as the
// session runs.
func (s *Session) acceptUniStreams() {
	s.uniRoom.start(s.conn)
	for {
		str, err := s.conn.AcceptUniStream(s.ctx)
		if err != nil {
			return
		}
		s.uniRoom.opened()
		s.goFunc(func() {
			defer s.uniRoom.closed()
			s.readDataStream(str)
		})
	}
}

// acceptBidiStreams refuses any bidirectional stream after the control
// stream: draft-14 has no use for one (§3.3).
func (s *Session) acceptBidiStreams() {
	if _, err := s.conn.AcceptStream(s.ctx); err == nil {
		s.fail(violation("a second bidirectional stream"))
	}
}

// subscriptionFor finds the subscription of a track alias, waiting a
// bounded time for a SUBSCRIBE_OK still on its way. It returns nil at once
// for the alias of a subscription that ended (see aliases.go), and for any
// alias no control message to come can name (aliasMayComeLocked); a
// waiting stream gives up as soon as either becomes true.
//
// At most Config.MaxPendingStreams streams wait. When they all do, the
// one that has waited longest gives its place to the new one: it is the
// likeliest to wait for nothing, while the new one may well be the first
// of a subscription whose SUBSCRIBE_OK is a moment behind. (Streams of
// subscriptions we ended no longer take places; streams for aliases that
// were never named still can, while a SUBSCRIBE of ours is unanswered.)
func (s *Session) subscriptionFor(alias uint64) (*Subscription, string) {
	s.mu.Lock()
	if sub, ok := s.subsByAlas[alias]; ok {
		s.mu.Unlock()
		return sub, ""
	}
	if why := s.aliasHopelessLocked(alias); why != "" {
		s.mu.Unlock()
		return nil, why
	}
	if s.cfg.MaxPendingStreams <= 0 {
		s.mu.Unlock()
		return nil, "no place to wait for its alias (MaxPendingStreams)"
	}
	if len(s.waiting) >= s.cfg.MaxPendingStreams {
		close(s.waiting[0])
		s.waiting = slices.Delete(s.waiting, 0, 1)
	}
	evicted := make(chan struct{})
	s.waiting = append(s.waiting, evicted)
	defer func() {
		s.mu.Lock()
		if i := slices.Index(s.waiting, evicted); i >= 0 {
			s.waiting = slices.Delete(s.waiting, i, i+1)
		}
		s.mu.Unlock()
	}()
	timer := time.NewTimer(s.cfg.PendingStreamTimeout)
	defer timer.Stop()
	for {
		wait := s.aliasNews
		s.mu.Unlock()
		select {
		case <-wait:
		case <-evicted:
			return nil, "it gave its place to a newer stream waiting for its alias (MaxPendingStreams)"
		case <-timer.C:
			return nil, "no SUBSCRIBE_OK or PUBLISH named its alias within PendingStreamTimeout"
		case <-s.ctx.Done():
			return nil, "the session ended"
		}
		s.mu.Lock()
		if sub, ok := s.subsByAlas[alias]; ok {
			s.mu.Unlock()
			return sub, ""
		}
		if why := s.aliasHopelessLocked(alias); why != "" {
			s.mu.Unlock()
			return nil, why
		}
	}
}

// aliasHopelessLocked says why a stream for an alias no subscription
// holds cannot become valid, or "" while it can. Called with s.mu held.
func (s *Session) aliasHopelessLocked(alias uint64) string {
	switch {
	case s.endedAliases.has(alias):
		return "its subscription ended"
	case !s.aliasMayComeLocked():
		return "no SUBSCRIBE of ours waits for an answer that could name its alias, and PUBLISH is not taken"
	}
	return ""
}

// headerWaitsPerPending scales Config.MaxPendingStreams into the number of
// data streams that may wait for their header at once.
const headerWaitsPerPending = 16

// readDataStream reads one subgroup stream into its subscription's track.
func (s *Session) readDataStream(str ReceiveStream) {
	// A stream whose header has not arrived yet holds a goroutine: at most
	// headerWaitsPerPending*MaxPendingStreams of them wait at once, each
	// for at most PendingStreamTimeout. (The header normally comes in the
	// stream's first packet, so the limit is generous: a burst of new
	// group streams must not be refused.)
	s.mu.Lock()
	if s.headerWaits >= headerWaitsPerPending*max(s.cfg.MaxPendingStreams, 1) {
		s.mu.Unlock()
		str.CancelRead(uint64(ResetCancelled))
		return
	}
	s.headerWaits++
	s.mu.Unlock()
	timer := time.AfterFunc(s.cfg.PendingStreamTimeout, func() { str.CancelRead(uint64(ResetCancelled)) })
	r, err := wire.NewStreamReader(str, s.cfg.Reader)
	late := !timer.Stop()
	s.mu.Lock()
	s.headerWaits--
	s.mu.Unlock()
	if late {
		if err == nil {
			// The header came as the timer stopped the stream: its
			// buffer goes back to the in-flight budget.
			r.Release()
		}
		return
	}
	if err != nil {
		s.streamFailed(str, err)
		return
	}
	defer r.Release()
	h := r.Header()
	tr := s.cfg.Tracer
	if h.IsFetch() {
		if tr != nil {
			tr.FetchHeader(false, h.FetchID)
		}
		s.readFetchStream(str, r)
		return
	}
	if tr != nil {
		tr.SubgroupHeader(false, &h.Subgroup)
	}
	sub, why := s.subscriptionFor(h.Subgroup.TrackAlias)
	if sub == nil {
		// CANCELLED: the draft's reset code for data the subscriber
		// cancelled or no longer wants; nothing is wrong with the
		// stream itself.
		s.log.Debug("stopping a data stream for a track alias no subscription holds", "alias", h.Subgroup.TrackAlias, "why", why)
		str.CancelRead(uint64(ResetCancelled))
		return
	}
	sub.mu.Lock()
	sub.streams++
	sub.active++
	stale := h.Subgroup.GroupID < sub.skipBefore || sub.noMoreStreams || sub.ended
	if !stale {
		if sub.reading == nil {
			sub.reading = map[ReceiveStream]uint64{}
		}
		sub.reading[str] = h.Subgroup.GroupID
	}
	sub.mu.Unlock()
	defer func() {
		sub.mu.Lock()
		sub.active--
		delete(sub.reading, str)
		sub.mu.Unlock()
		sub.maybeFinish()
	}()
	if stale {
		// SkipTo abandoned its group, or the subscription ended or takes
		// no more streams.
		str.CancelRead(uint64(ResetCancelled))
		return
	}
	var w *SubgroupWriter
	for {
		o, err := r.ReadObject()
		if err == io.EOF {
			if w != nil {
				_ = w.Close()
			}
			return
		}
		if err != nil {
			if w != nil {
				w.Abort(resetCode(err))
			}
			s.streamFailed(str, err)
			return
		}
		if tr != nil {
			sh := r.Header().Subgroup
			tr.SubgroupObject(false, &sh, &o.ObjectHeader)
		}
		if w == nil {
			sh := r.Header().Subgroup
			if w, err = sub.track.OpenSubgroup(sh.GroupID, sh.SubgroupID, SubgroupOptions{Priority: sh.PublisherPriority, EndOfGroup: sh.EndOfGroup, Extensions: sh.Extensions}); err != nil {
				s.log.Debug("dropping a data stream the track refuses", "request", sub.id, "err", err)
				str.CancelRead(uint64(wire.ResetCancelled))
				sub.refused(err)
				return
			}
		}
		if o.Status == StatusNormal && o.PayloadLength > 0 {
			err = w.WriteObject(o.ID, o.Payload, o.Extensions)
		} else {
			err = w.WriteStatus(o.ID, o.Status, o.Extensions)
		}
		if err != nil {
			s.log.Debug("dropping a data stream the track refuses", "request", sub.id, "err", err)
			w.Abort(uint64(wire.ResetInternalError))
			str.CancelRead(uint64(wire.ResetCancelled))
			sub.refused(err)
			return
		}
	}
}

// refused acts on an object the subscription's track refused. A malformed
// track (§2.5: a forwarding preference that changes, an object past the
// end of its subgroup, group or track, ...) ends the subscription: we
// UNSUBSCRIBE from the publisher, and the track closes with PUBLISH_DONE
// MALFORMED_TRACK, which is what a relay's downstream subscribers get.
// Other refusals (the track already closed) only drop the object.
func (sub *Subscription) refused(err error) {
	if errors.Is(err, ErrMalformedTrack) {
		sub.s.trackMalformed(sub.name, err)
	}
}

// trackMalformed acts on a track from the peer found malformed (§2.5):
// every subscription to it is unsubscribed and ended with PUBLISH_DONE
// MALFORMED_TRACK, and every fetch of it is cancelled (FETCH_CANCEL; its
// ReadObject returns err).
func (s *Session) trackMalformed(name FullTrackName, err error) {
	k := trackKey(name)
	s.mu.Lock()
	var subs []*Subscription
	for _, sub := range s.subs {
		if trackKey(sub.name) == k {
			subs = append(subs, sub)
		}
	}
	var fetches []*Fetch
	for id, f := range s.fetches {
		if trackKey(f.name) == k {
			fetches = append(fetches, f)
			delete(s.fetches, id)
		}
	}
	s.mu.Unlock()
	for _, sub := range subs {
		sub.malformed(err)
	}
	for _, f := range fetches {
		f.malformed(err)
	}
}

// malformed ends a subscription to a malformed track.
func (sub *Subscription) malformed(err error) {
	s := sub.s
	s.log.Warn("malformed track: unsubscribing", "track", sub.name.String(), "request", sub.id, "err", err)
	sub.mu.Lock()
	already := sub.unsubscribe
	sub.unsubscribe = true
	sub.mu.Unlock()
	select {
	case <-sub.done:
		return
	default:
	}
	if !already {
		s.sendOrFail(&wire.Unsubscribe{RequestID: sub.id})
	}
	done := PublishDoneError(wire.DoneMalformedTrack, err.Error())
	sub.endWith(done, done)
}

// resetCode is the code a stream error carries, for the subgroup's readers.
func resetCode(err error) uint64 {
	var se *StreamError
	if errors.As(err, &se) {
		return se.Code
	}
	return uint64(ResetInternalError)
}

// streamFailed handles a data stream that ended in an error: a protocol
// violation ends the session, a local limit stops the stream, and the
// peer's reset or the session's end need nothing more.
func (s *Session) streamFailed(str ReceiveStream, err error) {
	var se *SessionError
	switch {
	case errors.As(err, &se):
		s.fail(err)
	case errors.Is(err, wire.ErrObjectTooLarge):
		s.log.Warn("stopping a data stream", "err", err)
		str.CancelRead(uint64(ResetInternalError))
	case errors.Is(err, wire.ErrBudgetExhausted):
		s.log.Warn("cancelling a data stream: Config.MaxBytesInFlight reached", "err", err)
		str.CancelRead(uint64(ResetCancelled))
	}
}

// receiveDatagrams reads OBJECT_DATAGRAMs for as long as the session runs.
func (s *Session) receiveDatagrams() {
	for {
		b, err := s.conn.ReceiveDatagram(s.ctx)
		if err != nil {
			return
		}
		d, err := wire.ParseDatagram(b)
		if err != nil {
			s.fail(err)
			return
		}
		if s.cfg.Tracer != nil {
			s.cfg.Tracer.Datagram(false, &d)
		}
		s.mu.Lock()
		sub := s.subsByAlas[d.TrackAlias]
		s.mu.Unlock()
		if sub == nil {
			continue // unknown alias: dropped, as the draft allows
		}
		o := Object{Group: d.Group, ID: d.Object, PublisherPriority: d.PublisherPriority, Extensions: d.Extensions, Payload: d.Payload, EndOfGroup: d.EndOfGroup}
		if d.IsStatus {
			o.Status = d.Status
		}
		if err := sub.track.WriteDatagram(o); err != nil {
			s.log.Debug("dropping a datagram the track refuses", "request", sub.id, "err", err)
			sub.refused(err)
		}
	}
}
