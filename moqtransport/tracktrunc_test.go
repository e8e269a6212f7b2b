package moqtransport

import (
	"errors"
	"slices"
	"testing"
)

// A group alone over MaxBytes drops its objects oldest arrival first, also
// when a read sorted them by ID in between (subgroups interleaved, one of
// falling IDs): the newest arrivals stay, read in ID order. The duplicate
// check knows the objects left, and only those.
func TestTrackTruncateArrivalOrder(t *testing.T) {
	const keep = 6
	tr := NewTrack(testTrackName, TrackConfig{MaxBytes: keep * (1 + CacheEntryOverhead)})
	hi, lo := mustOpen(t, tr, 0, 0, false), mustOpen(t, tr, 0, 1, false)
	var arrived []uint64
	for i := range uint64(20) {
		mustWrite(t, hi, 100+i, "h")
		arrived = append(arrived, 100+i)
		if i%3 == 0 { // read between some writes only
			tr.Cache().Objects(0)
		}
		mustWrite(t, lo, i, "l")
		arrived = append(arrived, i)
		// Truncating keeps them in arrival order, so that the
		// oldest is the first, dropped without moving the others.
		want := slices.Clone(arrived[max(len(arrived)-keep, 0):])
		tr.mu.Lock()
		var order []uint64
		for _, o := range tr.group(0, false).objects {
			order = append(order, o.ID)
		}
		tr.mu.Unlock()
		if len(arrived) > keep && !slices.Equal(order, want) {
			t.Fatalf("after %d writes: objects in the order %v, want the arrival order %v", len(arrived), order, want)
		}
		slices.Sort(want)
		if got := cachedIDs(tr, 0); !slices.Equal(got, want) {
			t.Fatalf("after %d writes: cached IDs %v, want %v", len(arrived), got, want)
		}
		if s := tr.Cache().Stats(); s.Objects != len(want) || s.Bytes != int64(len(want))*(1+CacheEntryOverhead) {
			t.Fatalf("after %d writes: stats %+v, want %d objects", len(arrived), s, len(want))
		}
	}
	if !tr.Cache().Truncated(0) {
		t.Error("group 0 not marked truncated")
	}
	again := mustOpen(t, tr, 0, 1, false)
	if err := again.WriteObject(19, []byte("L"), nil); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("cached object 19 again with another payload: %v, want ErrMalformedTrack", err)
	}
	// Object 16 was dropped: not known any more, it is cached again.
	if err := again.WriteObject(16, []byte("L"), nil); err != nil {
		t.Errorf("object 16, dropped, sent again: %v", err)
	}
	if got := cachedIDs(tr, 0); !slices.Contains(got, 16) || len(got) != keep {
		t.Errorf("cached IDs %v, want 16 among %d", got, keep)
	}
}
