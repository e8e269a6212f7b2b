package moqtransport

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
)

// Objects received again (§2.3: a subgroup is sent again on another stream
// after a reset; §8.1: a duplicate is dropped, a differing one makes the
// track malformed).

// allEvents closes tr and returns the description of every event r gets.
func allEvents(t *testing.T, tr *Track, r *TrackReader) []string {
	t.Helper()
	tr.Close(nil)
	var got []string
	for {
		ev, err := r.Next(context.Background())
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		got = append(got, describe(ev))
	}
}

func cachedIDs(tr *Track, group uint64) []uint64 {
	var ids []uint64
	for _, o := range tr.Cache().Objects(group) {
		ids = append(ids, o.ID)
	}
	return ids
}

// fetchedIDs returns the object IDs a FETCH of group from the cache carries.
func fetchedIDs(t *testing.T, tr *Track, group uint64) []uint64 {
	t.Helper()
	cr, err := tr.cachedRange(Location{Group: group}, Location{Group: group, Object: wire.MaxVarint}, 0, false)
	if err != nil {
		t.Fatalf("cachedRange: %v", err)
	}
	var ids []uint64
	for _, o := range cr.objs {
		ids = append(ids, o.ID)
	}
	return ids
}

// A subgroup sent again on a second stream: the objects the cache holds
// already are dropped (the writer gets nil and goes on), the new ones are
// cached; readers and a FETCH from the cache get each object once.
func TestTrackDuplicateDropped(t *testing.T) {
	for _, first := range []string{"FIN", "reset"} {
		t.Run(first, func(t *testing.T) {
			tr := NewTrack(testTrackName, TrackConfig{})
			r := tr.NewReader(ReaderFilter{})
			a := mustOpen(t, tr, 0, 0, false)
			mustWrite(t, a, 0, "a")
			mustWrite(t, a, 1, "b")
			want := []string{"obj{0,0,0}", "obj{0,0,1}"}
			if first == "FIN" {
				mustClose(t, a)
				want = append(want, "end{0,0}")
			} else {
				a.Abort(uint64(wire.ResetCancelled))
				want = append(want, "abort{0,0,code=1}")
			}
			b := mustOpen(t, tr, 0, 0, false)
			mustWrite(t, b, 0, "a") // dropped
			mustWrite(t, b, 1, "b") // dropped
			mustWrite(t, b, 2, "c")
			mustClose(t, b)
			want = append(want, "obj{0,0,2}", "end{0,0}")
			if got := cachedIDs(tr, 0); !slices.Equal(got, []uint64{0, 1, 2}) {
				t.Errorf("cached IDs %v, want [0 1 2]", got)
			}
			if s := tr.Cache().Stats(); s.Objects != 3 || s.Bytes != 3*(1+CacheEntryOverhead)+2*CacheEntryOverhead {
				t.Errorf("stats %+v, want 3 objects and 2 subgroup ends", s)
			}
			if got := fetchedIDs(t, tr, 0); !slices.Equal(got, []uint64{0, 1, 2}) {
				t.Errorf("a FETCH from the cache carries %v, want [0 1 2]", got)
			}
			if l, _ := tr.Largest(); l != (Location{Group: 0, Object: 2}) {
				t.Errorf("Largest %v, want {0 2}", l)
			}
			if got := allEvents(t, tr, r); !slices.Equal(got, want) {
				t.Errorf("reader got %v, want %v", got, want)
			}
		})
	}
}

// The End of Group and End of Track objects sent again are duplicates, not
// objects past the end; a subgroup of duplicates only that declared End of
// Group still tells the group's end.
func TestTrackDuplicateEnds(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	a, err := tr.OpenSubgroup(0, 0, SubgroupOptions{EndOfGroup: true})
	if err != nil {
		t.Fatal(err)
	}
	mustWrite(t, a, 0, "a")
	if err := a.WriteStatus(1, StatusEndOfGroup, nil); err != nil {
		t.Fatal(err)
	}
	a.Abort(uint64(wire.ResetCancelled)) // no FIN: the group's end is the End of Group object's
	b, _ := tr.OpenSubgroup(0, 0, SubgroupOptions{EndOfGroup: true})
	mustWrite(t, b, 0, "a")
	if err := b.WriteStatus(1, StatusEndOfGroup, nil); err != nil {
		t.Fatalf("End of Group sent again: %v", err)
	}
	mustClose(t, b)
	if got := cachedIDs(tr, 0); !slices.Equal(got, []uint64{0, 1}) {
		t.Errorf("cached IDs %v, want [0 1]", got)
	}
	tr.mu.Lock()
	end, ok := tr.group(0, false).knownEnd()
	tr.mu.Unlock()
	if !ok || end != 1 {
		t.Errorf("group 0 known end %d, %v; want 1", end, ok)
	}

	// A subgroup declaring End of Group, reset; sent again with FIN: the
	// group's end is known although every object was a duplicate.
	c, _ := tr.OpenSubgroup(1, 0, SubgroupOptions{EndOfGroup: true})
	mustWrite(t, c, 0, "a")
	mustWrite(t, c, 1, "b")
	c.Abort(uint64(wire.ResetCancelled))
	d, _ := tr.OpenSubgroup(1, 0, SubgroupOptions{EndOfGroup: true})
	mustWrite(t, d, 0, "a")
	mustWrite(t, d, 1, "b")
	mustClose(t, d)
	tr.mu.Lock()
	end, ok = tr.group(1, false).knownEnd()
	tr.mu.Unlock()
	if !ok || end != 1 {
		t.Errorf("group 1 known end %d, %v; want 1 (the FIN'd subgroup declared End of Group)", end, ok)
	}

	e, _ := tr.OpenSubgroup(2, 0, SubgroupOptions{})
	if err := e.WriteStatus(0, StatusEndOfTrack, nil); err != nil {
		t.Fatal(err)
	}
	f, _ := tr.OpenSubgroup(2, 0, SubgroupOptions{})
	if err := f.WriteStatus(0, StatusEndOfTrack, nil); err != nil {
		t.Fatalf("End of Track sent again: %v", err)
	}
	if got := cachedIDs(tr, 2); !slices.Equal(got, []uint64{0}) {
		t.Errorf("cached IDs %v, want [0]", got)
	}
}

// A duplicate that differs from the cached object in an immutable property
// makes the track malformed (§8.1); a change to or from Object Does Not
// Exist and other extension headers do not, and are dropped.
func TestTrackDuplicateDiffers(t *testing.T) {
	ext, _ := wire.BuildExtensions(wire.KeyValue{Type: 0x20, Value: 1})
	cases := []struct {
		name      string
		write     func(tr *Track) error // sends object {0, 1} again
		malformed bool
	}{
		{"payload", func(tr *Track) error {
			w, _ := tr.OpenSubgroup(0, 0, SubgroupOptions{Priority: 128})
			return w.WriteObject(1, []byte("B"), nil)
		}, true},
		{"priority", func(tr *Track) error {
			w, _ := tr.OpenSubgroup(0, 0, SubgroupOptions{Priority: 1})
			return w.WriteObject(1, []byte("b"), nil)
		}, true},
		{"subgroup", func(tr *Track) error {
			w, _ := tr.OpenSubgroup(0, 7, SubgroupOptions{Priority: 128})
			return w.WriteObject(1, []byte("b"), nil)
		}, true},
		{"status", func(tr *Track) error {
			w, _ := tr.OpenSubgroup(0, 0, SubgroupOptions{Priority: 128})
			return w.WriteStatus(1, StatusEndOfGroup, nil)
		}, true},
		{"to Does Not Exist", func(tr *Track) error {
			w, _ := tr.OpenSubgroup(0, 0, SubgroupOptions{Priority: 128})
			return w.WriteStatus(1, StatusDoesNotExist, nil)
		}, false},
		{"extensions", func(tr *Track) error {
			w, _ := tr.OpenSubgroup(0, 0, SubgroupOptions{Priority: 128})
			return w.WriteObject(1, []byte("b"), ext)
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewTrack(testTrackName, TrackConfig{})
			a := mustOpen(t, tr, 0, 0, false)
			mustWrite(t, a, 0, "a")
			mustWrite(t, a, 1, "b")
			mustClose(t, a)
			err := tc.write(tr)
			if tc.malformed != errors.Is(err, ErrMalformedTrack) || !tc.malformed && err != nil {
				t.Fatalf("sent again %s: %v, want malformed %v", tc.name, err, tc.malformed)
			}
			objs := tr.Cache().Objects(0)
			if len(objs) != 2 || objs[1].Status != StatusNormal || string(objs[1].Payload) != "b" || len(objs[1].Extensions) != 0 {
				t.Errorf("cached %d objects, the second %+v; want the first {0, 1} only", len(objs), objs[len(objs)-1])
			}
		})
	}

	// Does Not Exist first: a Normal object of its ID, arriving late, is
	// dropped (§8.1: not cached or forwarded).
	tr := NewTrack(testTrackName, TrackConfig{})
	a := mustOpen(t, tr, 0, 0, false)
	if err := a.WriteStatus(0, StatusDoesNotExist, nil); err != nil {
		t.Fatal(err)
	}
	b := mustOpen(t, tr, 0, 0, false)
	if err := b.WriteObject(0, []byte("late"), nil); err != nil {
		t.Fatalf("Normal after Does Not Exist: %v", err)
	}
	if objs := tr.Cache().Objects(0); len(objs) != 1 || objs[0].Status != StatusDoesNotExist {
		t.Errorf("cached %d objects, want the Does Not Exist only", len(objs))
	}
}

// Subgroups interleaved out of ID order (the group's objects indexed by
// ID), then one of them sent again: the duplicates are found and dropped,
// an object sent again in another subgroup is malformed.
func TestTrackDuplicateInterleaved(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	r := tr.NewReader(ReaderFilter{})
	even, odd := mustOpen(t, tr, 0, 0, false), mustOpen(t, tr, 0, 1, false)
	for i := uint64(0); i < 10; i += 2 {
		mustWrite(t, even, i+2, "e")
		mustWrite(t, odd, i+1, "o")
	}
	odd.Abort(uint64(wire.ResetCancelled))
	again := mustOpen(t, tr, 0, 1, false)
	for i := uint64(1); i < 13; i += 2 {
		mustWrite(t, again, i, "o") // 1..9 dropped, 11 cached
	}
	if got := cachedIDs(tr, 0); !slices.Equal(got, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}) {
		t.Errorf("cached IDs %v, want 1..11", got)
	}
	other := mustOpen(t, tr, 0, 2, false)
	if err := other.WriteObject(4, []byte("e"), nil); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("object 4 again in subgroup 2: %v, want ErrMalformedTrack", err)
	}
	n := 0
	for _, ev := range allEvents(t, tr, r) {
		if ev == "obj{0,1,1}" || ev == "obj{0,1,11}" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("the reader got objects {0,1} and {0,11} %d times in all, want 2", n)
	}
}

// A datagram received twice is cached once.
func TestTrackDuplicateDatagram(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	for range 3 {
		if err := tr.WriteDatagram(Object{Group: 0, ID: 0, Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	if s := tr.Cache().Stats(); s.Objects != 1 {
		t.Errorf("%d objects cached, want 1", s.Objects)
	}
	if err := tr.WriteDatagram(Object{Group: 0, ID: 0, Payload: []byte("y")}); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("a datagram again with another payload: %v, want ErrMalformedTrack", err)
	}
}
