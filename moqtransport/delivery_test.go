package moqtransport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// served starts a server with one track and a client session.
func served(t *testing.T, scheme string) (*moqtransport.Track, *moqtransport.Session, wire.FullTrackName) {
	t.Helper()
	tracks := &moqtransport.Tracks{}
	name := wire.FullTrackName{Namespace: wire.Namespace{"d"}, Name: "t"}
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks.Add(tr)
	e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler()})
	client, _ := e.dial(nil)
	return tr, client, name
}

// servedSub is served with the client subscribed to the track, and the
// test's context.
func servedSub(t *testing.T, scheme string) (*moqtransport.Track, *moqtransport.Session, *moqtransport.Subscription, context.Context) {
	t.Helper()
	tr, client, name := served(t, scheme)
	ctx := timeout(t)
	sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return tr, client, sub, ctx
}

// waitObjects reads n objects from r or fails.
func waitObjects(ctx context.Context, t *testing.T, r *moqtransport.TrackReader, n int) []*moqtransport.Object {
	t.Helper()
	var out []*moqtransport.Object
	for len(out) < n {
		ev, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d objects: %v", len(out), n, err)
		}
		if ev.Kind == moqtransport.EventObject {
			out = append(out, ev.Object)
		}
	}
	return out
}

func TestDatagramsEndToEnd(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tr, _, sub, ctx := servedSub(t, scheme)
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		ext, _ := wire.BuildExtensions(wire.KeyValue{Type: 0x3e, Value: 1})
		const n = 10
		for i := range n {
			o := moqtransport.Object{Group: uint64(i), ID: 1, PublisherPriority: 3, Payload: fmt.Appendf(nil, "dg%d", i)}
			if i%2 == 1 {
				o.Extensions = ext
			}
			if i == n-1 {
				o.Payload, o.Status = nil, wire.StatusEndOfTrack
			}
			if err := tr.WriteDatagram(o); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // loopback: keep socket buffers from overflowing under -race
		}
		got := waitObjects(ctx, t, r, n)
		for i, o := range got {
			if o.Group != uint64(i) || o.ID != 1 || o.PublisherPriority != 3 {
				t.Errorf("datagram %d at %v prio %d", i, o.Location(), o.PublisherPriority)
			}
			if i == n-1 {
				if o.Status != wire.StatusEndOfTrack {
					t.Errorf("last datagram status %s, want EndOfTrack", o.Status)
				}
				continue
			}
			if string(o.Payload) != fmt.Sprintf("dg%d", i) || (len(o.Extensions) > 0) != (i%2 == 1) {
				t.Errorf("datagram %d: %q ext %x", i, o.Payload, []byte(o.Extensions))
			}
		}
	})
}

func TestSubgroupHeaderTypesAndStatus(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tr, _, sub, ctx := servedSub(t, scheme)
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		// Subgroup 0 (type with Subgroup ID 0), subgroup 5 starting at
		// object 5 (Subgroup ID = first object), subgroup 9 starting at
		// object 1 (explicit Subgroup ID). Each object ID is in one
		// subgroup only (§8.1).
		write := func(sg, first uint64, status wire.ObjectStatus) {
			w, err := tr.OpenSubgroup(0, sg, moqtransport.SubgroupOptions{Priority: uint8(sg)})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteObject(first, []byte{byte(sg)}, nil); err != nil {
				t.Fatal(err)
			}
			if err := w.WriteStatus(first+3, status, nil); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
		write(0, 0, wire.StatusDoesNotExist)
		write(5, 5, wire.StatusNormal)
		write(9, 1, wire.StatusDoesNotExist)
		got := waitObjects(ctx, t, r, 6)
		seen := map[[2]uint64]*moqtransport.Object{}
		for _, o := range got {
			seen[[2]uint64{o.Subgroup, o.ID}] = o
		}
		for _, c := range []struct {
			sg, id uint64
			status wire.ObjectStatus
		}{{0, 0, 0}, {0, 3, wire.StatusDoesNotExist}, {5, 5, 0}, {5, 8, wire.StatusNormal}, {9, 1, 0}, {9, 4, wire.StatusDoesNotExist}} {
			o := seen[[2]uint64{c.sg, c.id}]
			if o == nil {
				t.Errorf("subgroup %d object %d missing", c.sg, c.id)
				continue
			}
			if o.Status != c.status || o.PublisherPriority != uint8(c.sg) {
				t.Errorf("subgroup %d object %d: status %s prio %d", c.sg, c.id, o.Status, o.PublisherPriority)
			}
		}
	})
}

func TestPausedSubscriptionAndUpdate(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tr, client, name := served(t, scheme)
		ctx := timeout(t)
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{
			Paused: true, Filter: wire.Filter{Type: wire.FilterAbsoluteStart},
		})
		if err != nil {
			t.Fatal(err)
		}
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		publishObjects(t, tr, 0, 2, 2)
		short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		if ev, err := r.Next(short); err == nil {
			t.Fatalf("a paused subscription delivered an event of kind %s", ev.Kind)
		}
		cancel()
		// Forward on, and narrow to groups 3..4.
		if err := sub.Update(ctx, moqtransport.UpdateOptions{Start: moqtransport.Location{Group: 3}, EndGroup: 4, HasEnd: true, Priority: 1}); err != nil {
			t.Fatal(err)
		}
		// A widening update is refused locally.
		for _, bad := range []moqtransport.UpdateOptions{
			{Start: moqtransport.Location{Group: 1}, EndGroup: 4, HasEnd: true, Priority: 1}, // start back
			{Start: moqtransport.Location{Group: 3}, EndGroup: 5, HasEnd: true, Priority: 1}, // end grows
			{Start: moqtransport.Location{Group: 4, Object: 1}, EndGroup: 3, HasEnd: true},   // end before start
		} {
			if err := sub.Update(ctx, bad); err == nil {
				t.Errorf("a widening or invalid update %+v was sent", bad)
			}
		}
		waitUntilServed(ctx, t, client, name) // the update reached the publisher
		publishObjects(t, tr, 2, 6, 2)
		got := waitObjects(ctx, t, r, 4)
		for _, o := range got {
			if o.Group < 3 || o.Group > 4 {
				t.Errorf("object %v outside the updated range 3..4", o.Location())
			}
		}
		short, cancel = context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		for {
			ev, err := r.Next(short)
			if err != nil {
				break
			}
			if ev.Kind == moqtransport.EventObject {
				t.Errorf("an object past the end group arrived: %v", ev.Object.Location())
			}
		}
	})
}

// waitUntilServed returns once the peer has handled the control messages
// sent so far, even those that have no answer (SUBSCRIBE_UPDATE): the peer
// handles its control stream in order, so the answer to a TRACK_STATUS
// sent after them comes after they took effect.
func waitUntilServed(ctx context.Context, t *testing.T, s *moqtransport.Session, name wire.FullTrackName) {
	t.Helper()
	if _, err := s.TrackStatus(ctx, name.Namespace, name.Name); err != nil {
		t.Fatalf("TRACK_STATUS behind the control messages: %v", err)
	}
}

func TestPublishDoneStatusAndStreamCount(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tr, _, sub, ctx := servedSub(t, scheme)
		publishObjects(t, tr, 0, 5, 3)
		tr.Close(moqtransport.PublishDoneError(wire.DoneMalformedTrack, "bad input"))
		err := sub.Err()
		re, ok := err.(*moqtransport.RequestError)
		if !ok || re.Message != wire.TypePublishDone || re.Code != uint64(wire.DoneMalformedTrack) || re.Reason != "bad input" {
			t.Fatalf("subscription ended with %v, want PUBLISH_DONE MALFORMED_TRACK", err)
		}
		// Every object sent before PUBLISH_DONE was read first: the
		// subscriber waited for the streams PUBLISH_DONE counted.
		got, rerr := collect(ctx, sub.Track())
		if rerr == nil || rerr == io.EOF || len(got) != 15 {
			t.Errorf("after PUBLISH_DONE: %d objects, end %v; want 15 and the error", len(got), rerr)
		}
	})
}

func TestTrackStatus(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tr, client, name := served(t, scheme)
		ctx := timeout(t)
		st, err := client.TrackStatus(ctx, name.Namespace, name.Name)
		if err != nil {
			t.Fatal(err)
		}
		if st.ContentExists || st.TrackAlias != 0 || st.GroupOrder != wire.GroupOrderAscending {
			t.Errorf("empty track status %+v", st)
		}
		publishObjects(t, tr, 0, 3, 2)
		if st, err = client.TrackStatus(ctx, name.Namespace, name.Name); err != nil {
			t.Fatal(err)
		}
		if !st.ContentExists || st.Largest != (wire.Location{Group: 2, Object: 2}) {
			t.Errorf("track status %+v, want largest {2,2}", st)
		}
		_, err = client.TrackStatus(ctx, wire.Namespace{"nope"}, "x")
		var re *moqtransport.RequestError
		if !errors.As(err, &re) || re.Message != wire.TypeTrackStatusError || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
			t.Errorf("status of an unknown track: %v, want TRACK_STATUS_ERROR TRACK_DOES_NOT_EXIST", err)
		}
		// TRACK_STATUS opens no subscription: a SUBSCRIBE to the same
		// track is not a duplicate.
		if _, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{}); err != nil {
			t.Errorf("subscribe after TRACK_STATUS: %v", err)
		}
	})
}

func TestDeliveryTimeoutAndMaxCacheDuration(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"dt"}, Name: "t"}
		// The track's clock runs a jump ahead after each reading while
		// jumping is set: an object written then is at least a jump old
		// to any later reading, whichever goroutine makes it. The jump is
		// well past the delivery timeout, and the delivery timeout well
		// past what a loaded machine takes to send a fresh object (the
		// stream of an object is reset at its deadline, so a reader that
		// is slower than the delivery timeout loses it); MAX_CACHE_DURATION
		// is past any number of jumps the few readings made while jumping
		// can add, so the late object is dropped for its delivery timeout
		// alone and its group stays in the cache.
		const (
			jump     = 30 * time.Second
			delivery = 10 * time.Second
			maxCache = time.Hour
		)
		var offset atomic.Int64
		var jumping atomic.Bool
		tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{Now: func() time.Time {
			if jumping.Load() {
				return time.Now().Add(time.Duration(offset.Add(int64(jump)) - int64(jump)))
			}
			return time.Now().Add(time.Duration(offset.Load()))
		}, MaxCacheDuration: maxCache})
		tracks.Add(tr)
		e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler()})
		client, _ := e.dial(nil)
		ctx := timeout(t)
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{
			Params: wire.Parameters{}.WithVarint(wire.ParamDeliveryTimeout, uint64(delivery/time.Millisecond)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if d, c := sub.Track().Timeouts(); d != 0 || c != maxCache {
			t.Errorf("the subscriber learned timeouts %v %v, want MAX_CACHE_DURATION %v", d, c, maxCache)
		}
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		// An object stamped a jump ago is past the delivery timeout: the
		// subgroup is abandoned whole before its first byte, so even its
		// fresh later object is not sent; the next group starts on a
		// stream of its own.
		jumping.Store(true)
		w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
		_ = w.WriteObject(0, []byte("late"), nil)
		jumping.Store(false)
		_ = w.WriteObject(1, []byte("fresh but in a dropped subgroup"), nil)
		_ = w.Close()
		w, _ = tr.OpenSubgroup(1, 0, moqtransport.SubgroupOptions{})
		_ = w.WriteObject(0, []byte("fresh"), nil)
		_ = w.Close()
		got := waitObjects(ctx, t, r, 1)
		if string(got[0].Payload) != "fresh" || got[0].Location() != (wire.Location{Group: 1}) {
			t.Errorf("first object delivered: %v %q, want only group 1's", got[0].Location(), got[0].Payload)
		}
	})
}

// TestSparseSubgroupWithDeliveryTimeout: objects of one subgroup that come
// further apart than the delivery timeout all arrive. Each one is
// delivered long before its deadline, so the open stream must not be
// reset at that deadline (it was, and every later object of the subgroup
// was lost: with the relay's default of 5 s, any subgroup with a pause of
// more than 5 s).
func TestSparseSubgroupWithDeliveryTimeout(t *testing.T) {
	t.Parallel() // most of it is waiting for deadlines to pass
	forEachTransport(t, func(t *testing.T, scheme string) {
		t.Parallel()
		// Long enough that a loaded machine delivers an object within
		// it over loopback; the pause is three timeouts.
		const delivery = 400 * time.Millisecond
		tr, client, name := served(t, scheme)
		ctx := timeout(t)
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{
			Params: wire.Parameters{}.WithVarint(wire.ParamDeliveryTimeout, uint64(delivery/time.Millisecond)),
		})
		if err != nil {
			t.Fatal(err)
		}
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		next := func(want moqtransport.EventKind) moqtransport.Event {
			t.Helper()
			ev, err := r.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Kind != want {
				t.Fatalf("got %v (code %#x), want %v", ev.Kind, ev.Code, want)
			}
			return ev
		}
		w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for id := range uint64(3) {
			if id > 0 {
				// The previous object's deadline passes while the
				// stream is open and idle.
				time.Sleep(3 * delivery)
			}
			if err := w.WriteObject(id, fmt.Appendf(nil, "object %d", id), nil); err != nil {
				t.Fatal(err)
			}
			if ev := next(moqtransport.EventObject); ev.Object.Location() != (wire.Location{Group: 0, Object: id}) {
				t.Fatalf("got object %v, want 0/%d", ev.Object.Location(), id)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		next(moqtransport.EventSubgroupEnd)
	})
}
