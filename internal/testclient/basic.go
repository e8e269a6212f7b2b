package testclient

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// The scenarios of moq-rs's moq-test-client, with stricter pass criteria.

// announceHold is how long announce-only watches the namespace and the
// session after PUBLISH_NAMESPACE_OK (moq-rs: 2 s).
const announceHold = time.Second

// setupOnly: SETUP completes with draft-14, and the session is still up
// until we close it.
func setupOnly(ctx context.Context, e *env) error {
	s, err := e.connect(ctx, "client", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	if v := s.Version(); v != wire.Draft14 {
		return fmt.Errorf("negotiated version %v, want %v", v, wire.Draft14)
	}
	e.log.Info("setup complete", "version", s.Version().String(), "peer", s.PeerImplementation())
	if err := alive(s, "client"); err != nil {
		return err
	}
	return s.Close()
}

// announceOnly: PUBLISH_NAMESPACE gets PUBLISH_NAMESPACE_OK (not only "no
// error"), and neither the namespace (PUBLISH_NAMESPACE_CANCEL) nor the
// session ends for announceHold.
func announceOnly(ctx context.Context, e *env) error {
	ns := e.ns()
	s, _, pub, err := e.startPublisher(ctx, "publisher", ns)
	if err != nil {
		return err
	}
	t := time.NewTimer(announceHold)
	defer t.Stop()
	select {
	case <-pub.Done():
		return fmt.Errorf("the relay ended the namespace %s within %v: %w", ns, announceHold, pub.Err())
	case <-s.Done():
		return fmt.Errorf("the session ended within %v of PUBLISH_NAMESPACE_OK: %w", announceHold, s.Err())
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
	}
	return pub.Close()
}

// subscribeError: SUBSCRIBE for a namespace nobody publishes gets
// SUBSCRIBE_ERROR with TRACK_DOES_NOT_EXIST (moq-rs accepts any error),
// and the session survives it.
func subscribeError(ctx context.Context, e *env) error {
	s, err := e.connect(ctx, "subscriber", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	ns := wire.Namespace{"nonexistent-" + e.id, "namespace"}
	sub, err := s.Subscribe(ctx, ns, trackName, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
	if err == nil {
		_ = sub.Unsubscribe()
	}
	if err := wantRequestError(err, fmt.Sprintf("SUBSCRIBE %s/%s", ns, trackName), wire.TypeSubscribeError,
		uint64(wire.SubscribeTrackDoesNotExist), "TRACK_DOES_NOT_EXIST"); err != nil {
		return err
	}
	return alive(s, "subscriber")
}

// announceSubscribe: a publisher and a subscriber, two sessions. The
// subscriber gets exactly the objects the publisher writes after SUBSCRIBE_OK
// (two groups, one stream each), with their group and object IDs and
// payloads, and then the end of the track (PUBLISH_DONE, a normal end).
func announceSubscribe(ctx context.Context, e *env) error {
	ns := e.ns()
	track := newTrack(ns, trackName)
	if _, _, _, err := e.startPublisher(ctx, "publisher", ns, track); err != nil {
		return err
	}
	s, err := e.connect(ctx, "subscriber", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	return deliver(ctx, e, s, track, ns)
}

// deliver subscribes to track through s, writes two groups and ends the
// track, and checks that exactly those objects and the end arrive.
func deliver(ctx context.Context, e *env, s *moqtransport.Session, track *moqtransport.Track, ns wire.Namespace) error {
	sub, r, err := subscribe(ctx, s, "subscriber", ns, trackName)
	if err != nil {
		return err
	}
	defer r.Close()
	return writeAndCheck(ctx, e, track, sub, r)
}

// writeAndCheck writes two groups to track and ends it; the subscription
// must get exactly those objects, then end normally.
func writeAndCheck(ctx context.Context, e *env, track *moqtransport.Track, sub *moqtransport.Subscription, r *moqtransport.TrackReader) error {
	want, err := e.writeGroups(track, 3, 2)
	if err != nil {
		return err
	}
	track.Close(nil)
	got, err := readObjects(ctx, r, -1)
	if err != nil {
		return fmt.Errorf("subscriber: %w", err)
	}
	if err := sameObjects("subscriber received", got, want); err != nil {
		return err
	}
	// Subscription.Err is nil for PUBLISH_DONE TRACK_ENDED and for
	// SUBSCRIPTION_ENDED alike, and this accepts either: a relay may end
	// its subscribers' subscriptions to a track that ended either way
	// (Subscription.DoneStatus tells them apart).
	if err := waitDone(ctx, sub, "subscriber"); err != nil {
		return fmt.Errorf("subscriber: the subscription ended with %w, want PUBLISH_DONE TRACK_ENDED (or SUBSCRIPTION_ENDED)", err)
	}
	return nil
}

// subscribeBeforeAnnounce: a SUBSCRIBE for a namespace that is not
// published yet must be answered (moq-rs only logs what happens). A relay
// may refuse it with TRACK_DOES_NOT_EXIST, or hold it until the namespace
// appears; either way, once the publisher has published the namespace,
// the subscriber (retrying after a refusal) gets the publisher's objects.
func subscribeBeforeAnnounce(ctx context.Context, e *env) error {
	ns := e.ns()
	s, err := e.connect(ctx, "subscriber", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	type result struct {
		sub *moqtransport.Subscription
		err error
	}
	early := make(chan result, 1)
	go func() {
		sub, err := s.Subscribe(ctx, ns, trackName, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
		early <- result{sub, err}
	}()
	// Let the SUBSCRIBE reach the relay before the publisher exists.
	if err := sleep(ctx, 300*time.Millisecond); err != nil {
		return err
	}
	track := newTrack(ns, trackName)
	_, h, _, err := e.startPublisher(ctx, "publisher", ns, track)
	if err != nil {
		return err
	}
	var sub *moqtransport.Subscription
	var res result
	select {
	case res = <-early:
	case <-ctx.Done():
		return fmt.Errorf("subscriber: no answer to the SUBSCRIBE sent before the namespace was published: %w", ctx.Err())
	}
	var re *moqtransport.RequestError
	switch {
	case res.err == nil:
		e.log.Info("the relay held the early SUBSCRIBE until the namespace was published")
		sub = res.sub
		// Objects flow once the relay has subscribed upstream.
		if err := h.waitSubscribed(ctx, trackName); err != nil {
			return err
		}
	case errors.As(res.err, &re) && re.Message == wire.TypeSubscribeError && re.Code == uint64(wire.SubscribeTrackDoesNotExist):
		e.log.Info("the early SUBSCRIBE was refused; subscribing again", "err", res.err)
		if sub, err = s.Subscribe(ctx, ns, trackName, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority}); err != nil {
			return fmt.Errorf("subscriber: SUBSCRIBE after the namespace was published: %w", err)
		}
	default:
		return fmt.Errorf("subscriber: the SUBSCRIBE sent before the namespace was published got %w; want SUBSCRIBE_OK once it is published or SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST", res.err)
	}
	r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	return writeAndCheck(ctx, e, track, sub, r)
}

// publishNamespaceDone: the publisher serves two tracks. A subscriber
// gets an object of the first through the relay (so the namespace is
// routed), then the publisher withdraws the namespace. A SUBSCRIBE for the
// second track, which the relay has never subscribed to, must then get
// TRACK_DOES_NOT_EXIST: on the publisher's own session (which the relay
// reads in order, so the withdrawal has been handled) and on the
// subscriber's. Another session can then publish the namespace, and the
// publisher's session is still up.
//
// The second track keeps the check independent of what the relay does
// with its upstream subscription to the first one: a relay may serve new
// subscribers of a track it still receives.
func publishNamespaceDone(ctx context.Context, e *env) error {
	ns := e.ns()
	probe, track := newTrack(ns, "probe-track"), newTrack(ns, trackName)
	ps, _, pub, err := e.startPublisher(ctx, "publisher", ns, probe, track)
	if err != nil {
		return err
	}
	s, err := e.connect(ctx, "subscriber", moqtransport.Handler{}, nil)
	if err != nil {
		return err
	}
	sub, r, err := subscribe(ctx, s, "subscriber", ns, "probe-track")
	if err != nil {
		return err
	}
	defer r.Close()
	want, _, err := e.writeGroup(probe, 0, 1, true)
	if err != nil {
		return err
	}
	got, err := readObjects(ctx, r, 1)
	if err != nil {
		return fmt.Errorf("subscriber: %w", err)
	}
	if err := sameObjects("subscriber received", got, want); err != nil {
		return err
	}
	if err := sub.Unsubscribe(); err != nil {
		return fmt.Errorf("subscriber: UNSUBSCRIBE: %w", err)
	}

	if err := pub.Close(); err != nil {
		return fmt.Errorf("publisher: PUBLISH_NAMESPACE_DONE: %w", err)
	}
	opts := moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority}
	for _, c := range []struct {
		role string
		s    *moqtransport.Session
	}{{"publisher", ps}, {"subscriber", s}} {
		sub, err := c.s.Subscribe(ctx, ns, trackName, opts)
		if err == nil {
			_ = sub.Unsubscribe()
		}
		if err := wantRequestError(err, fmt.Sprintf("%s: SUBSCRIBE %s/%s after PUBLISH_NAMESPACE_DONE", c.role, ns, trackName),
			wire.TypeSubscribeError, uint64(wire.SubscribeTrackDoesNotExist), "TRACK_DOES_NOT_EXIST"); err != nil {
			return err
		}
	}
	if _, _, _, err := e.startPublisher(ctx, "second publisher", ns); err != nil {
		return fmt.Errorf("publishing the withdrawn namespace from another session: %w", err)
	}
	if err := alive(ps, "publisher"); err != nil {
		return err
	}
	return alive(s, "subscriber")
}
