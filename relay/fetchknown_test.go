package relay_test

import (
	"context"
	"io"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// splitPublisher is a publisher whose subscriptions are served from live
// and whose FETCHes from full: what a relay subscribed to it receives is
// live, where the test withholds or resets subgroup streams, while the
// publisher still has every object to answer a FETCH with (as an origin
// does when a stream to the relay was late or cut by a delivery timeout).
type splitPublisher struct {
	live, full *moqtransport.Track
	fetches    atomic.Int32
	delay      time.Duration // before each FETCH's answer
}

func (p *splitPublisher) Handler() moqtransport.Handler {
	return moqtransport.Handler{
		Subscribe: func(_ context.Context, _ *moqtransport.Session, req *moqtransport.SubscribeRequest) (*moqtransport.Track, error) {
			if req.Name != p.live.Name().Name {
				return nil, moqtransport.ErrTrackNotFound
			}
			return p.live, nil
		},
		Fetch: func(ctx context.Context, _ *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			p.fetches.Add(1)
			if p.delay > 0 {
				select {
				case <-time.After(p.delay): // an archive taking its time
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return moqtransport.FetchFromTrack(p.full, req)
		},
	}
}

// splitPublisherOn connects a splitPublisher of track ns/t to the relay.
// full is live when same.
func (e *relayEnv) splitPublisherOn(ns wire.Namespace, same bool) *splitPublisher {
	e.t.Helper()
	name := wire.FullTrackName{Namespace: ns, Name: "t"}
	p := &splitPublisher{live: moqtransport.NewTrack(name, moqtransport.TrackConfig{})}
	p.full = p.live
	if !same {
		p.full = moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	}
	s := e.connect("/", p)
	if _, err := s.PublishNamespace(ctxFor(e.t), ns, nil); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// writeSubgroup writes objects ids (payload "g/id") as subgroup sg of group
// g of each track, and ends it with FIN unless open.
func writeSubgroup(t *testing.T, g, sg uint64, eog, open bool, ids []uint64, trs ...*moqtransport.Track) {
	t.Helper()
	for _, tr := range trs {
		w, err := tr.OpenSubgroup(g, sg, moqtransport.SubgroupOptions{EndOfGroup: eog})
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if err := w.WriteObject(id, []byte(locString(g, id)), nil); err != nil {
				t.Fatal(err)
			}
		}
		if !open {
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func locString(g, id uint64) string { return wire.Location{Group: g, Object: id}.String() }

// cachedAt waits until a subscriber's track holds objects ids of group g:
// the relay, which caches an object before it forwards it, holds them too.
func cachedAt(t *testing.T, sub *moqtransport.Subscription, g uint64, ids ...uint64) {
	t.Helper()
	waitFor(t, "the subscriber's objects", func() bool {
		var have []uint64
		for _, o := range sub.Track().Cache().Objects(g) {
			have = append(have, o.ID)
		}
		return slices.Equal(have, ids)
	})
}

// fetchLocations fetches ns/t through s and returns the objects' locations,
// checking each payload.
func fetchLocations(t *testing.T, s *moqtransport.Session, opts moqtransport.FetchOptions) []string {
	t.Helper()
	ctx := ctxFor(t)
	f, err := s.Fetch(ctx, opts)
	if err != nil {
		t.Fatalf("FETCH: %v", err)
	}
	var got []string
	for {
		o, err := f.ReadObject(ctx)
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("FETCH: %v", err)
		}
		l := locString(o.Group, o.ID)
		if string(o.Payload) != l {
			t.Errorf("object %s: payload %q", l, o.Payload)
		}
		got = append(got, l)
	}
}

func locs(groups ...[]uint64) []string { // groups[g] = object IDs of group g
	var out []string
	for g, ids := range groups {
		for _, id := range ids {
			out = append(out, locString(uint64(g), id))
		}
	}
	return out
}

// splitRelay starts a relay with a splitPublisher of ns/t (full apart from
// live) and a subscriber of the track through it.
func splitRelay(t *testing.T, scheme string, ns wire.Namespace) (*relayEnv, *splitPublisher, *moqtransport.Subscription) {
	t.Helper()
	e := startRelay(t, scheme)
	p := e.splitPublisherOn(ns, false)
	sub, err := e.connect("/", nil).Subscribe(ctxFor(t), ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return e, p, sub
}

// fetchedWhole fetches groups 0-1 of ns/t through the relay: objects 0-3
// of group 0 and 0-1 of group 1, from the publisher's one FETCH.
func fetchedWhole(t *testing.T, e *relayEnv, p *splitPublisher, ns wire.Namespace) {
	t.Helper()
	got := fetchLocations(t, e.connect("/", nil), moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 1}})
	if want := locs([]uint64{0, 1, 2, 3}, []uint64{0, 1}); !slices.Equal(got, want) {
		t.Errorf("FETCH of groups 0-1 through the relay: %v, want %v", got, want)
	}
	if n := p.fetches.Load(); n != 1 {
		t.Errorf("the publisher saw %d FETCHes, want the one forwarded", n)
	}
}

// TestFetchForwardedWhenASubgroupIsLate: group 0's second subgroup stream
// has not reached the relay (the publisher withholds it) when a FETCH of
// groups 0 and 1 arrives. The relay's cache holds group 0's first subgroup
// and all of group 1, but cannot know that group 0 is complete, so it
// forwards the FETCH and the subscriber gets every object. It used to
// answer from the cache once the range's start was cached, leaving out
// objects 0/2 and 0/3, which the subscriber takes for objects that do not
// exist (§9.16).
func TestFetchForwardedWhenASubgroupIsLate(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e, p, sub := splitRelay(t, scheme, wire.Namespace{"late"})
		ns := p.live.Name().Namespace
		writeSubgroup(t, 0, 0, false, false, []uint64{0, 1}, p.live, p.full)
		writeSubgroup(t, 0, 1, true, false, []uint64{2, 3}, p.full) // withheld from the relay
		writeSubgroup(t, 1, 0, true, false, []uint64{0, 1}, p.live, p.full)
		cachedAt(t, sub, 0, 0, 1)
		cachedAt(t, sub, 1, 0, 1)

		fetchedWhole(t, e, p, ns)
	})
}

// TestFetchForwardedWhenASubgroupWasReset: group 0's only subgroup, which
// declared End of Group, is reset after two objects on its way to the
// relay. The reset tells the relay nothing of the group's end (§10.4.2),
// so a FETCH of the group is forwarded and the subscriber gets the objects
// the stream lost. It used to be answered from the cache with two objects.
func TestFetchForwardedWhenASubgroupWasReset(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e, p, sub := splitRelay(t, scheme, wire.Namespace{"reset"})
		ns := p.live.Name().Namespace
		writeSubgroup(t, 0, 0, true, false, []uint64{0, 1, 2, 3}, p.full)
		w, err := p.live.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
		if err != nil {
			t.Fatal(err)
		}
		for id := range uint64(2) {
			if err := w.WriteObject(id, []byte(locString(0, id)), nil); err != nil {
				t.Fatal(err)
			}
		}
		cachedAt(t, sub, 0, 0, 1)
		w.Abort(uint64(wire.ResetDeliveryTimeout))
		writeSubgroup(t, 1, 0, true, false, []uint64{0, 1}, p.live, p.full)
		cachedAt(t, sub, 1, 0, 1)

		fetchedWhole(t, e, p, ns)
	})
}

// TestFetchCompleteGroupsFromCache: groups whose subgroups declared End of
// Group and ended with FIN are answered from the relay's cache, and so is a
// joining FETCH of the group still being written, up to the subscription's
// largest location (one open subgroup stream): the publisher sees no
// FETCH.
func TestFetchCompleteGroupsFromCache(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelay(t, scheme)
		ns := wire.Namespace{"complete"}
		p := e.splitPublisherOn(ns, true)
		ctx := ctxFor(t)
		sub, err := e.connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for g := range uint64(3) {
			writeSubgroup(t, g, 0, true, false, []uint64{0, 1}, p.live)
		}
		writeSubgroup(t, 3, 0, true, true, []uint64{0, 1}, p.live) // still being written
		cachedAt(t, sub, 3, 0, 1)

		s := e.connect("/", nil)
		got := fetchLocations(t, s, moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 2}})
		if want := locs([]uint64{0, 1}, []uint64{0, 1}, []uint64{0, 1}); !slices.Equal(got, want) {
			t.Errorf("FETCH of groups 0-2: %v, want %v", got, want)
		}
		joined, err := s.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l := joined.OK().Largest; l != (wire.Location{Group: 3, Object: 1}) {
			t.Fatalf("SUBSCRIBE_OK's largest %v, want 3/1", l)
		}
		got = fetchLocations(t, s, moqtransport.FetchOptions{Joining: joined, JoiningStart: 0})
		if want := locs(nil, nil, nil, []uint64{0, 1}); !slices.Equal(got, want) {
			t.Errorf("joining FETCH of the group being written: %v, want %v", got, want)
		}
		got = fetchLocations(t, s, moqtransport.FetchOptions{Joining: joined, JoiningStart: 1})
		if want := locs(nil, nil, []uint64{0, 1}, []uint64{0, 1}); !slices.Equal(got, want) {
			t.Errorf("joining FETCH of the last two groups: %v, want %v", got, want)
		}
		if n := p.fetches.Load(); n != 0 {
			t.Errorf("the publisher saw %d FETCHes, want all answered from the relay's cache", n)
		}
	})
}

// TestFetchCacheFallbackWhenPublisherIgnoresFetch: a publisher that never
// answers FETCH (moq-rs drops it) and declares no group ends, so the
// relay's cache never knows a group complete. A FETCH of cached groups is
// forwarded, waited for TrackStatusTimeout, then answered from the cache;
// the next FETCH is answered from the cache at once, the publisher not
// asked again until the pause is over. Without the fallback the
// subscriber got FETCH_ERROR TIMEOUT after UpstreamTimeout, for every
// FETCH. Once the pause is over, the publisher is asked again (it was
// never asked again: see TestFetchSlowPublisherAskedAgain), and left
// unanswered again, paused again.
func TestFetchCacheFallbackWhenPublisherIgnoresFetch(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e, p, ns, s := silentFetchSetup(t, scheme, "silent")
		want := locs([]uint64{0, 1}, []uint64{0, 1})
		for i := range 2 {
			got := fetchLocations(t, s, moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 1}})
			if !slices.Equal(got, want) {
				t.Errorf("FETCH %d of groups 0-1 through the relay: %v, want %v", i, got, want)
			}
			if n := p.fetches.Load(); n != 1 {
				t.Errorf("after FETCH %d the publisher saw %d FETCHes, want the first one only", i, n)
			}
		}
		if !relay.EndFetchPause(e.rs.Relay, "", ns) {
			t.Fatal("the relay is not pausing its FETCHes to the silent publisher")
		}
		for i := range 2 {
			got := fetchLocations(t, s, moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 1}})
			if !slices.Equal(got, want) {
				t.Errorf("FETCH %d after the pause: %v, want %v", i, got, want)
			}
			if n := p.fetches.Load(); n != 2 {
				t.Errorf("after FETCH %d after the pause the publisher saw %d FETCHes, want 2: asked again once", i, n)
			}
		}
	})
}

// TestFetchSlowPublisherAskedAgain: a publisher that once answered a FETCH
// later than TrackStatusTimeout (an archive under load) is asked again
// once the relay's pause is over, and its answers are forwarded from then
// on. The relay answered every FETCH of such a publisher's tracks from its
// cache for as long as its namespace stayed published.
func TestFetchSlowPublisherAskedAgain(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e, p, ns, s := silentFetchSetup(t, scheme, "slow-once")
		opts := moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 1}}
		fetchLocations(t, s, opts) // left unanswered: from the cache
		if !relay.EndFetchPause(e.rs.Relay, "", ns) {
			t.Fatal("the relay is not pausing its FETCHes to the publisher that left one unanswered")
		}
		p.answer.Store(true)
		want := locs([]uint64{0, 1}, []uint64{0, 1})
		for i := range 3 {
			got := fetchLocations(t, s, opts)
			if !slices.Equal(got, want) {
				t.Errorf("FETCH %d after the pause: %v, want %v", i, got, want)
			}
			if n, a := p.fetches.Load(), p.answered.Load(); n != int32(2+i) || a != int32(1+i) {
				t.Errorf("after FETCH %d after the pause the publisher saw %d FETCHes and answered %d, want %d and %d: asked each time", i, n, a, 2+i, 1+i)
			}
		}
	})
}

// silentFetchSetup starts a relay (TrackStatusTimeout 200 ms) with a
// silentFetchPublisher of namespace name, whose groups 0 and 1 (objects
// 0 and 1, no group ends) are in the relay's cache, and a session to ask
// it with.
func silentFetchSetup(t *testing.T, scheme, name string) (*relayEnv, *silentFetchPublisher, wire.Namespace, *moqtransport.Session) {
	t.Helper()
	e := startRelayWith(t, scheme, relay.Config{UpstreamTimeout: time.Minute, TrackStatusTimeout: 200 * time.Millisecond})
	ns := wire.Namespace{name}
	p := &silentFetchPublisher{track: moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{})}
	if _, err := e.connect("/", p).PublishNamespace(ctxFor(t), ns, nil); err != nil {
		t.Fatal(err)
	}
	sub, err := e.connect("/", nil).Subscribe(ctxFor(t), ns, "t", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	writeSubgroup(t, 0, 0, false, false, []uint64{0, 1}, p.track)
	writeSubgroup(t, 1, 0, false, false, []uint64{0, 1}, p.track)
	cachedAt(t, sub, 1, 0, 1)
	return e, p, ns, e.connect("/", nil)
}

// silentFetchPublisher serves one track and never answers FETCH, or,
// once answer is set, answers it from the track.
type silentFetchPublisher struct {
	track    *moqtransport.Track
	fetches  atomic.Int32
	answer   atomic.Bool
	answered atomic.Int32
}

func (p *silentFetchPublisher) Handler() moqtransport.Handler {
	return moqtransport.Handler{
		Subscribe: func(_ context.Context, _ *moqtransport.Session, req *moqtransport.SubscribeRequest) (*moqtransport.Track, error) {
			if req.Name != p.track.Name().Name {
				return nil, moqtransport.ErrTrackNotFound
			}
			return p.track, nil
		},
		Fetch: func(ctx context.Context, _ *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			p.fetches.Add(1)
			if p.answer.Load() {
				p.answered.Add(1)
				return moqtransport.FetchFromTrack(p.track, req)
			}
			<-ctx.Done() // FETCH_CANCEL or the session's end
			return nil, ctx.Err()
		},
	}
}

// TestFetchEvictedStartWaitsForSlowPublisher: a FETCH whose start the
// relay's cache no longer holds has no cache answer to fall back to, so a
// publisher slower than TrackStatusTimeout is still waited for, and still
// asked the next time: the fallback is only for a cache that holds the
// range. It was cut at TrackStatusTimeout and answered
// UNKNOWN_STATUS_IN_RANGE, and the publisher was never asked again.
func TestFetchEvictedStartWaitsForSlowPublisher(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := startRelayWith(t, scheme, relay.Config{UpstreamTimeout: time.Minute, TrackStatusTimeout: 100 * time.Millisecond,
			Track: moqtransport.TrackConfig{MaxGroups: 2}})
		ns := wire.Namespace{"slow"}
		p := e.splitPublisherOn(ns, true)
		p.delay = 300 * time.Millisecond
		sub, err := e.connect("/", nil).Subscribe(ctxFor(t), ns, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for g := range uint64(4) {
			writeSubgroup(t, g, 0, true, false, []uint64{0, 1}, p.live)
			// Each group read before the next is written: a subscriber
			// that fell more than the relay's two cached groups behind
			// (a loaded machine) would skip to them, its group in
			// flight dropped (once in a -race run of every package).
			cachedAt(t, sub, g, 0, 1)
		}
		s := e.connect("/", nil)
		for i := range 2 {
			got := fetchLocations(t, s, moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 0}})
			if want := locs([]uint64{0, 1}); !slices.Equal(got, want) {
				t.Errorf("FETCH %d of evicted group 0 through the relay: %v, want %v", i, got, want)
			}
			if n := p.fetches.Load(); n != int32(i+1) {
				t.Errorf("after FETCH %d the publisher saw %d FETCHes, want %d", i, n, i+1)
			}
		}
	})
}
