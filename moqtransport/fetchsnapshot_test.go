package moqtransport_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestFetchFromTrackWhileEvicting: FetchFromTrack answers from one view of
// the cache while the track is written and its oldest groups evicted. It
// used to read the largest location, the oldest cached group, and each
// group's objects in separate steps: a group evicted between the check
// that the range's start is cached and the reading of its objects was
// left out of a FETCH_OK'd answer, and the subscriber, who reads a gap in
// a fetch as objects that do not exist (§9.16), lost it for good.
func TestFetchFromTrackWhileEvicting(t *testing.T) {
	const groupObjects = 4
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"evict"}, Name: "t"},
		moqtransport.TrackConfig{MaxGroups: 3})
	var wg sync.WaitGroup
	defer wg.Wait()
	stop := make(chan struct{})
	defer close(stop)
	wg.Go(func() {
		for g := uint64(0); ; g++ {
			w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			for id := range uint64(groupObjects) {
				select {
				case <-stop:
					return
				default:
				}
				if err := w.WriteObject(id, []byte{byte(id)}, nil); err != nil {
					t.Error(err)
					return
				}
				runtime.Gosched()
			}
			_ = w.Close()
		}
	})
	ctx := timeout(t)
	answered := 0
	deadline := time.Now().Add(time.Second)
	for i := 0; i < 1000000 && time.Now().Before(deadline); i++ {
		oldest, newest, ok := tr.Cache().Groups()
		if !ok {
			runtime.Gosched()
			continue
		}
		start := wire.Location{Group: oldest}
		resp, err := moqtransport.FetchFromTrack(tr, &moqtransport.FetchRequest{Start: start, End: wire.Location{Group: newest}})
		if err != nil {
			// The start was evicted after Groups: refused, not answered
			// with a gap.
			var re *moqtransport.RequestError
			if !errors.As(err, &re) || re.Code != uint64(wire.FetchUnknownStatusInRange) {
				t.Fatalf("fetch %d from %v: %v, want objects or UNKNOWN_STATUS_IN_RANGE", i, start, err)
			}
			continue
		}
		answered++
		next := func(l wire.Location) wire.Location {
			if l.Object+1 == groupObjects {
				return wire.Location{Group: l.Group + 1}
			}
			return wire.Location{Group: l.Group, Object: l.Object + 1}
		}
		// Just past the last object FETCH_OK's end covers: {G, 0} is all
		// of group G.
		wantEnd := wire.Location{Group: resp.End.Group + 1}
		if resp.End.Object > 0 {
			wantEnd = next(wire.Location{Group: resp.End.Group, Object: resp.End.Object - 1})
		}
		want := start
		for {
			o, err := resp.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Location() != want {
				t.Fatalf("fetch %d from %v (FETCH_OK end %v): object %v, want %v: the objects in between were left out", i, start, resp.End, o.Location(), want)
			}
			want = next(want)
		}
		if want != wantEnd {
			t.Fatalf("fetch %d from %v: FETCH_OK's end is %v, but the objects stopped before %v", i, start, resp.End, want)
		}
	}
	if answered == 0 {
		t.Fatal("no fetch was answered")
	}
}

// TestFetchFromTrackSparseGroups: a FETCH over a range whose group IDs are
// far apart is answered from the groups the cache holds. FetchFromTrack
// used to look up every group ID of the range in turn, taking the track's
// lock twice for each: a publisher whose group IDs jump (a timestamp, or
// 2^62-1) held a goroutine for as long as it took to count to the jump.
func TestFetchFromTrackSparseGroups(t *testing.T) {
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"sparse"}, Name: "t"}, moqtransport.TrackConfig{})
	const far = 1 << 40
	for _, g := range []uint64{0, far} {
		w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteObject(0, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
		_ = w.Close()
	}
	type answer struct {
		resp *moqtransport.FetchResponse
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := moqtransport.FetchFromTrack(tr, &moqtransport.FetchRequest{End: wire.Location{Group: far + 1}})
		done <- answer{resp, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("FetchFromTrack over groups 0..%d has not answered after 5 s", uint64(far))
	}
	if a.err != nil {
		t.Fatal(a.err)
	}
	ctx := context.Background()
	var got []wire.Location
	for {
		o, err := a.resp.Next(ctx)
		if err != nil {
			break
		}
		got = append(got, o.Location())
	}
	if len(got) != 2 || got[0] != (wire.Location{}) || got[1] != (wire.Location{Group: far}) {
		t.Errorf("fetched %v, want 0/0 and %d/0", got, uint64(far))
	}
}

// TestFetchFromTrackPastMaxCacheDuration: an object of the range that is
// past the track's MAX_CACHE_DURATION makes the range's status unknown
// (§9.2.1.3: "their state becomes unknown, and a relay ... re-requests
// them"), so FetchFromTrack refuses it with UNKNOWN_STATUS_IN_RANGE, which
// a relay forwards upstream. It used to leave the object out of the
// answer, and the subscriber took the gap for an object that does not
// exist.
func TestFetchFromTrackPastMaxCacheDuration(t *testing.T) {
	now := time.Unix(1000, 0)
	var mu sync.Mutex
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	advance := func(d time.Duration) {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
	}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"mcd"}, Name: "t"},
		moqtransport.TrackConfig{Now: clock, MaxCacheDuration: time.Second})
	w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = w.WriteObject(0, []byte("old"), nil)
	advance(2 * time.Second)
	_ = w.WriteObject(1, []byte("fresh"), nil)
	advance(500 * time.Millisecond)

	resp, err := moqtransport.FetchFromTrack(tr, &moqtransport.FetchRequest{Start: wire.Location{Group: 0, Object: 1}, End: wire.Location{Group: 0, Object: 2}})
	if err != nil {
		t.Fatalf("fetch of the fresh object: %v", err)
	}
	if o, err := resp.Next(context.Background()); err != nil || string(o.Payload) != "fresh" {
		t.Fatalf("fetch of the fresh object: %v, %v", o, err)
	}

	resp, err = moqtransport.FetchFromTrack(tr, &moqtransport.FetchRequest{End: wire.Location{Group: 0, Object: 2}})
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != uint64(wire.FetchUnknownStatusInRange) {
		var got []wire.Location
		for resp != nil {
			o, err := resp.Next(context.Background())
			if err != nil {
				break
			}
			got = append(got, o.Location())
		}
		t.Fatalf("fetch of 0/0 (past MAX_CACHE_DURATION) and 0/1: %v, objects %v; want UNKNOWN_STATUS_IN_RANGE", err, got)
	}
}

// BenchmarkFetchFromTrack answers a FETCH of a whole cache of 64 groups of
// 30 objects (a joining FETCH of a live track's cache, or a relay's).
func BenchmarkFetchFromTrack(b *testing.B) {
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"bench"}, Name: "t"}, moqtransport.TrackConfig{})
	for g := range uint64(64) {
		w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			b.Fatal(err)
		}
		for id := range uint64(30) {
			_ = w.WriteObject(id, []byte{1}, nil)
		}
		_ = w.Close()
	}
	req := &moqtransport.FetchRequest{End: wire.Location{Group: 63}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := moqtransport.FetchFromTrack(tr, req); err != nil {
			b.Fatal(err)
		}
	}
}
