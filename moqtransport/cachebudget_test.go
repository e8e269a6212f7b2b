package moqtransport

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

func budgetTrack(name string, b *CacheBudget) *Track {
	return NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"budget"}, Name: name}, TrackConfig{MaxGroups: 1000, MaxBytes: 1 << 30, Budget: b})
}

// drain reads every event ready on r, as a subscriber keeping up would.
func drain(t *testing.T, r *TrackReader) (objects, skipped int) {
	t.Helper()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		ev, err := r.Next(ctx)
		cancel()
		if err != nil {
			return
		}
		switch ev.Kind {
		case EventObject:
			objects++
		case EventSkipped:
			skipped++
		}
	}
}

// Two tracks share a budget; one is read as it is written, the other is
// not. The unread one loses its older groups first; the read one loses
// nothing while the unread one has older groups to give.
func TestCacheBudgetEvictsLeastRecentlyRead(t *testing.T) {
	const size = 10_000
	per := groupSize(1, size)
	b := NewCacheBudget(20 * per)
	read, unread := budgetTrack("read", b), budgetTrack("unread", b)
	defer read.Close(nil)
	defer unread.Close(nil)
	r := read.NewReader(ReaderFilter{})
	defer r.Close()
	got := 0
	for g := range uint64(30) {
		writeGroup(t, unread, g, 1, size)
		writeGroup(t, read, g, 1, size)
		n, skipped := drain(t, r)
		got += n
		if skipped > 0 {
			t.Fatalf("group %d: the track being read lost events while the unread one had groups to give", g)
		}
		if st := b.Stats(); st.Used > st.Limit {
			t.Fatalf("group %d: %d bytes cached, budget %d", g, st.Used, st.Limit)
		}
	}
	st := b.Stats()
	rs, us := read.Cache().Stats(), unread.Cache().Stats()
	t.Logf("budget %+v; read track %+v, unread track %+v", st, rs, us)
	if got != 30 {
		t.Errorf("the reader got %d objects, want 30", got)
	}
	if rs.Groups <= us.Groups || st.EvictedGroups == 0 {
		t.Errorf("read track keeps %d groups, unread %d: want the unread one evicted first", rs.Groups, us.Groups)
	}
	if st.Used != rs.Bytes+us.Bytes || st.Tracks != 2 {
		t.Errorf("budget counts %d bytes in %d tracks, the tracks hold %d", st.Used, st.Tracks, rs.Bytes+us.Bytes)
	}
}

// Tracks of one ever-growing group each (nothing older to evict): the
// budget truncates the newest groups of the least recently read tracks,
// keeping each track's last event.
func TestCacheBudgetTruncatesNewestGroups(t *testing.T) {
	const tracks, objects, size = 12, 100, 1000
	limit := int64(tracks * 20 * (size + CacheEntryOverhead))
	b := NewCacheBudget(limit)
	var ts []*Track
	for i := range tracks {
		tr := budgetTrack(fmt.Sprint(i), b)
		defer tr.Close(nil)
		ts = append(ts, tr)
	}
	for _, tr := range ts {
		w := mustOpen(t, tr, 0, 0, false)
		for i := range uint64(objects) {
			if err := w.WriteObject(i, make([]byte, size), nil); err != nil {
				t.Fatal(err)
			}
			if st := b.Stats(); st.Used > limit {
				t.Fatalf("%d bytes cached, budget %d", st.Used, limit)
			}
		}
	}
	var sum int64
	for i, tr := range ts {
		st := tr.Cache().Stats()
		sum += st.Bytes
		if st.Objects == 0 {
			t.Errorf("track %d lost every object", i)
		}
	}
	st := b.Stats()
	t.Logf("budget %+v", st)
	if st.Used != sum || st.EvictedBytes < tracks*objects*(size+CacheEntryOverhead)-limit {
		t.Errorf("budget %+v, tracks hold %d", st, sum)
	}
	if !ts[0].Cache().Truncated(0) {
		t.Error("the first track's group was not truncated")
	}
}

// Closing a track takes its bytes out of the budget; a track closed while
// the budget evicts is left alone. Several writers at once (go test -race)
// keep the total within the budget plus the objects being written.
func TestCacheBudgetConcurrentAndClose(t *testing.T) {
	const writers, groups, size = 4, 200, 4000
	limit := int64(50 * (size + 2*CacheEntryOverhead))
	b := NewCacheBudget(limit)
	var wg sync.WaitGroup
	ts := make([]*Track, writers)
	for i := range ts {
		ts[i] = budgetTrack(fmt.Sprint(i), b)
	}
	over := make(chan int64, writers*groups)
	for i, tr := range ts {
		r := tr.NewReader(ReaderFilter{})
		wg.Go(func() {
			defer r.Close()
			for g := range uint64(groups) {
				writeGroup(t, tr, g, 1, size)
				if i%2 == 0 {
					drain(t, r)
				}
				if u := b.Stats().Used; u > limit+writers*(size+2*CacheEntryOverhead) {
					over <- u
				}
			}
		})
	}
	wg.Wait()
	close(over)
	for u := range over {
		t.Errorf("%d bytes cached, budget %d and %d writers; %+v", u, limit, writers, b.Stats())
	}
	for _, tr := range ts {
		tr.Close(nil)
	}
	if st := b.Stats(); st.Used != 0 || st.Tracks != 0 {
		t.Errorf("after every track closed: %+v, want nothing", st)
	}
}

// The budget holds its tracks weakly: one dropped without Close gives its
// bytes back when the garbage collector frees it.
func TestCacheBudgetForgetsDroppedTracks(t *testing.T) {
	b := NewCacheBudget(1 << 20)
	func() {
		tr := budgetTrack("dropped", b)
		writeGroup(t, tr, 0, 3, 1000)
	}()
	if st := b.Stats(); st.Used == 0 || st.Tracks != 1 {
		t.Fatalf("budget %+v with a track of 3 objects", st)
	}
	deadline := time.Now().Add(5 * time.Second)
	for st := b.Stats(); st.Used != 0 || st.Tracks != 0; st = b.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("budget %+v: the dropped track is still counted", st)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// When every track is down to its last event, writes do not rescan the
// tracks until the total grows by a sixteenth of the limit; closing a track
// ends that.
func TestCacheBudgetStuck(t *testing.T) {
	const size = 10_000
	per := int64(size + CacheEntryOverhead)
	b := NewCacheBudget(4 * per)
	var ts []*Track
	for i := range 6 { // six single objects: more than the budget, nothing evictable
		tr := budgetTrack(fmt.Sprint(i), b)
		defer tr.Close(nil)
		w := mustOpen(t, tr, 0, 0, false)
		mustWrite(t, w, 0, string(make([]byte, size)))
		ts = append(ts, tr)
	}
	st := b.Stats()
	if st.Used != 6*per || b.stuck.Load() == 0 {
		t.Fatalf("budget %+v, stuck at %d: want 6 objects kept and the budget stuck", st, b.stuck.Load())
	}
	ts[0].Close(nil)
	if b.stuck.Load() != 0 {
		t.Error("closing a track did not unstick the budget")
	}
	// A new group on a track makes its older one evictable again.
	writeGroup(t, ts[1], 1, 1, size)
	if st := b.Stats(); st.Used > 5*per+CacheEntryOverhead || st.EvictedGroups == 0 {
		t.Errorf("budget %+v after a new group: want the older group evicted", st)
	}
}
