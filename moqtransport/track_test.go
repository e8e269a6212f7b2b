package moqtransport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqtransport/wire"
)

var testTrackName = wire.FullTrackName{Namespace: wire.Namespace{"test"}, Name: "track"}

// fakeClock is a settable clock for TrackConfig.Now.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// nextEvent reads one event, failing the test if none comes within a second.
func nextEvent(t *testing.T, r *TrackReader) Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ev, err := r.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return ev
}

// endGroupPassed checks that r, past its filter's end group, has ended.
func endGroupPassed(t *testing.T, r *TrackReader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if ev, err := r.Next(ctx); err != ErrEndGroupPassed {
		t.Fatalf("Next past the end group: %s, %v; want ErrEndGroupPassed", describe(ev), err)
	}
}

// noEvent checks that no event is ready.
func noEvent(t *testing.T, r *TrackReader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if ev, err := r.Next(ctx); err == nil {
		t.Fatalf("unexpected event %s", describe(ev))
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next: %v, want a deadline", err)
	}
}

func describe(ev Event) string {
	switch ev.Kind {
	case EventObject:
		return fmt.Sprintf("obj{%d,%d,%d}", ev.Object.Group, ev.Object.Subgroup, ev.Object.ID)
	case EventSubgroupEnd:
		return fmt.Sprintf("end{%d,%d}", ev.Group, ev.Subgroup)
	case EventSubgroupAbort:
		return fmt.Sprintf("abort{%d,%d,code=%d}", ev.Group, ev.Subgroup, ev.Code)
	case EventSkipped:
		return "skipped"
	}
	return ev.Kind.String()
}

// expectEvents reads len(want) events and compares their descriptions.
func expectEvents(t *testing.T, r *TrackReader, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := describe(nextEvent(t, r)); got != w {
			t.Fatalf("event %d: got %s, want %s", i, got, w)
		}
	}
}

func mustOpen(t testing.TB, tr *Track, group, subgroup uint64, eog bool) *SubgroupWriter {
	t.Helper()
	w, err := tr.OpenSubgroup(group, subgroup, SubgroupOptions{Priority: 128, EndOfGroup: eog})
	if err != nil {
		t.Fatalf("OpenSubgroup(%d,%d): %v", group, subgroup, err)
	}
	return w
}

func mustWrite(t testing.TB, w *SubgroupWriter, id uint64, payload string) {
	t.Helper()
	if err := w.WriteObject(id, []byte(payload), nil); err != nil {
		t.Fatalf("Write(%d): %v", id, err)
	}
}

func mustClose(t testing.TB, w *SubgroupWriter) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// writeGroup writes a group as one subgroup of n objects and closes it.
func writeGroup(t testing.TB, tr *Track, group uint64, n int, size int) {
	t.Helper()
	w := mustOpen(t, tr, group, 0, false)
	for i := range n {
		if err := w.WriteObject(uint64(i), make([]byte, size), nil); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
	mustClose(t, w)
}

func TestTrackArrivalOrderTwoSubgroups(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	r := tr.NewReader(ReaderFilter{})
	a := mustOpen(t, tr, 0, 0, false)
	b := mustOpen(t, tr, 0, 1, true)
	mustWrite(t, a, 0, "a0")
	mustWrite(t, b, 1, "b1")
	mustWrite(t, a, 2, "a2")
	mustClose(t, a)
	mustWrite(t, b, 3, "b3")
	b.Abort(uint64(wire.ResetDeliveryTimeout))

	var evs []Event
	for range 6 {
		evs = append(evs, nextEvent(t, r))
	}
	want := []string{"obj{0,0,0}", "obj{0,1,1}", "obj{0,0,2}", "end{0,0}", "obj{0,1,3}", "abort{0,1,code=2}"}
	for i, ev := range evs {
		if got := describe(ev); got != want[i] {
			t.Fatalf("event %d: got %s, want %s", i, got, want[i])
		}
		if ev.EndOfGroup != (ev.Subgroup == 1) {
			t.Errorf("event %d (%s): EndOfGroup = %v", i, describe(ev), ev.EndOfGroup)
		}
		if ev.Datagram {
			t.Errorf("event %d: Datagram set", i)
		}
	}
	if string(evs[2].Object.Payload) != "a2" || evs[2].Object.PublisherPriority != 128 || evs[2].Object.Status != wire.StatusNormal {
		t.Errorf("object %+v", evs[2].Object)
	}
	if evs[0].Object.Received.IsZero() {
		t.Error("Received not set")
	}
	noEvent(t, r)
}

func TestTrackFilters(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	for g := range uint64(3) {
		writeGroup(t, tr, g, 4, 1)
	}

	t.Run("FromCache start inside group, end group", func(t *testing.T) {
		r := tr.NewReader(ReaderFilter{Start: wire.Location{Group: 1, Object: 2}, EndGroup: 2, HasEnd: true, FromCache: true})
		defer r.Close()
		expectEvents(t, r, "obj{1,0,2}", "obj{1,0,3}", "end{1,0}",
			"obj{2,0,0}", "obj{2,0,1}", "obj{2,0,2}", "obj{2,0,3}", "end{2,0}")
		noEvent(t, r)
	})
	t.Run("FromCache from zero", func(t *testing.T) {
		r := tr.NewReader(ReaderFilter{FromCache: true})
		defer r.Close()
		for g := range 3 {
			for i := range 4 {
				expectEvents(t, r, fmt.Sprintf("obj{%d,0,%d}", g, i))
			}
			expectEvents(t, r, fmt.Sprintf("end{%d,0}", g))
		}
		noEvent(t, r)
	})
	t.Run("live only", func(t *testing.T) {
		r := tr.NewReader(ReaderFilter{})
		defer r.Close()
		noEvent(t, r)
		writeGroup(t, tr, 3, 1, 1)
		expectEvents(t, r, "obj{3,0,0}", "end{3,0}")
		noEvent(t, r)
	})
	t.Run("live with end group", func(t *testing.T) {
		r := tr.NewReader(ReaderFilter{Start: wire.Location{Group: 4, Object: 1}, EndGroup: 4, HasEnd: true})
		defer r.Close()
		writeGroup(t, tr, 4, 3, 1)
		writeGroup(t, tr, 5, 3, 1)
		expectEvents(t, r, "obj{4,0,1}", "obj{4,0,2}", "end{4,0}")
		endGroupPassed(t, r)
	})
}

func TestTrackSetFilterNarrowing(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	r := tr.NewReader(ReaderFilter{})
	w0 := mustOpen(t, tr, 0, 0, true)
	mustWrite(t, w0, 0, "x")
	expectEvents(t, r, "obj{0,0,0}")

	// Start moves past group 0: its open subgroup is aborted at once.
	r.SetFilter(ReaderFilter{Start: wire.Location{Group: 1}})
	ev := nextEvent(t, r)
	if describe(ev) != "abort{0,0,code=1}" || !ev.EndOfGroup {
		t.Fatalf("got %s (EndOfGroup %v), want abort{0,0,code=1} with EndOfGroup", describe(ev), ev.EndOfGroup)
	}
	mustWrite(t, w0, 1, "y")
	mustClose(t, w0)
	noEvent(t, r) // neither the object nor the end of a subgroup it no longer has

	// Start moves inside an open subgroup's group: the subgroup is aborted
	// when its next object fails the filter, and a later passing object
	// opens it again.
	w1 := mustOpen(t, tr, 1, 0, false)
	mustWrite(t, w1, 0, "a")
	expectEvents(t, r, "obj{1,0,0}")
	r.SetFilter(ReaderFilter{Start: wire.Location{Group: 1, Object: 5}})
	noEvent(t, r)
	mustWrite(t, w1, 1, "b")
	expectEvents(t, r, "abort{1,0,code=1}")
	mustWrite(t, w1, 5, "c")
	mustClose(t, w1)
	expectEvents(t, r, "obj{1,0,5}", "end{1,0}")

	// End group narrows below an open subgroup's group; a blocked Next
	// wakes up for the abort.
	w2 := mustOpen(t, tr, 2, 0, false)
	mustWrite(t, w2, 0, "d")
	expectEvents(t, r, "obj{2,0,0}")
	got := make(chan string, 1)
	go func() {
		ev, err := r.Next(context.Background())
		if err != nil {
			got <- err.Error()
			return
		}
		got <- describe(ev)
	}()
	time.Sleep(10 * time.Millisecond)
	r.SetFilter(ReaderFilter{Start: wire.Location{Group: 1, Object: 5}, EndGroup: 1, HasEnd: true})
	select {
	case s := <-got:
		if s != "abort{2,0,code=1}" {
			t.Fatalf("got %s", s)
		}
	case <-time.After(time.Second):
		t.Fatal("blocked Next did not wake for the abort")
	}
	mustWrite(t, w2, 1, "e")
	mustClose(t, w2)
	writeGroup(t, tr, 3, 1, 1)
	endGroupPassed(t, r)
	r.Close()
	goleak.VerifyNone(t)
}

func TestTrackSubgroupEventsOnlyForSeenSubgroups(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	r := tr.NewReader(ReaderFilter{Start: wire.Location{Group: 0, Object: 5}})
	a := mustOpen(t, tr, 0, 0, false)
	b := mustOpen(t, tr, 0, 1, false)
	empty := mustOpen(t, tr, 0, 2, false)
	mustWrite(t, a, 0, "a0")
	mustWrite(t, a, 2, "a2")
	mustWrite(t, b, 5, "b5")
	mustClose(t, a)
	mustClose(t, empty)
	mustWrite(t, b, 6, "b6")
	b.Abort(uint64(wire.ResetCancelled))
	expectEvents(t, r, "obj{0,1,5}", "obj{0,1,6}", "abort{0,1,code=1}")
	noEvent(t, r)
	if s := tr.Cache().Stats(); s.Events != 6 { // 4 objects, a's end and b's abort; nothing for the empty subgroup
		t.Errorf("cached events = %d, want 6", s.Events)
	}
	// A datagram never has subgroup events.
	tr2 := NewTrack(testTrackName, TrackConfig{})
	r2 := tr2.NewReader(ReaderFilter{})
	if err := tr2.WriteDatagram(Object{Group: 3, ID: 7, Payload: []byte("d"), EndOfGroup: true}); err != nil {
		t.Fatal(err)
	}
	ev := nextEvent(t, r2)
	if !ev.Datagram || !ev.EndOfGroup || ev.Object.Subgroup != 7 || ev.Subgroup != 7 || describe(ev) != "obj{3,7,7}" {
		t.Fatalf("datagram event %+v %+v", ev, ev.Object)
	}
	if tr2.Forwarding() != ForwardDatagram {
		t.Error("forwarding preference not latched")
	}
	noEvent(t, r2)
}

func TestTrackIncreasingObjectIDs(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	w := mustOpen(t, tr, 0, 0, false)
	mustWrite(t, w, 3, "x")
	for _, id := range []uint64{3, 2, 0} {
		if err := w.WriteObject(id, []byte("y"), nil); !errors.Is(err, ErrMalformedTrack) {
			t.Errorf("Write(%d) after 3: %v, want ErrMalformedTrack", id, err)
		}
		if err := w.WriteStatus(id, wire.StatusDoesNotExist, nil); !errors.Is(err, ErrMalformedTrack) {
			t.Errorf("WriteStatus(%d) after 3: %v, want ErrMalformedTrack", id, err)
		}
	}
	mustWrite(t, w, 4, "z")
	if err := w.WriteStatus(5, wire.StatusNormal, nil); err != nil { // a zero-length Normal object
		t.Fatal(err)
	}
	// Another subgroup of the same group has its own sequence.
	w2 := mustOpen(t, tr, 0, 1, false)
	mustWrite(t, w2, 1, "other")

	// Status rules.
	ext, _ := wire.BuildExtensions(wire.KeyValue{Type: 2, Value: 1})
	if err := w.WriteStatus(6, wire.StatusDoesNotExist, ext); !errors.Is(err, ErrInvalidObject) {
		t.Errorf("Does Not Exist with extensions: %v", err)
	}
	if err := w.WriteStatus(6, wire.ObjectStatus(2), nil); !errors.Is(err, ErrInvalidObject) {
		t.Errorf("status 0x2: %v", err)
	}
	if err := w.WriteStatus(6, wire.StatusDoesNotExist, nil); err != nil {
		t.Errorf("Does Not Exist: %v", err)
	}
	if err := tr.WriteDatagram(Object{Group: 1, Status: wire.StatusEndOfGroup, Payload: []byte("x")}); !errors.Is(err, ErrInvalidObject) {
		t.Errorf("status datagram with payload: %v", err)
	}
	if err := tr.WriteDatagram(Object{Group: 1, Payload: []byte("x")}); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("datagram on a subgroup track: %v", err)
	}
	dg := NewTrack(testTrackName, TrackConfig{})
	if err := dg.WriteDatagram(Object{Payload: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := dg.OpenSubgroup(0, 0, SubgroupOptions{Priority: 0, EndOfGroup: false}); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("subgroup on a datagram track: %v", err)
	}

	// Writes after the subgroup or the track closed.
	mustClose(t, w)
	if err := w.WriteObject(7, []byte("late"), nil); !errors.Is(err, ErrSubgroupClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrSubgroupClosed) {
		t.Errorf("second Close: %v", err)
	}
	w.Abort(1) // no effect after Close
	tr.Close(nil)
	if err := w2.WriteObject(2, []byte("late"), nil); !errors.Is(err, ErrTrackClosed) {
		t.Errorf("Write after track Close: %v", err)
	}
	if _, err := tr.OpenSubgroup(1, 0, SubgroupOptions{Priority: 0, EndOfGroup: false}); !errors.Is(err, ErrTrackClosed) {
		t.Errorf("OpenSubgroup after track Close: %v", err)
	}
	if err := tr.WriteDatagram(Object{Group: 5}); !errors.Is(err, ErrTrackClosed) {
		t.Errorf("WriteDatagram after track Close: %v", err)
	}
}

func TestTrackEndOfTrackAndGroup(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	a := mustOpen(t, tr, 0, 0, false)
	mustWrite(t, a, 0, "0")
	mustWrite(t, a, 2, "2")
	b := mustOpen(t, tr, 0, 1, false)
	if err := b.WriteStatus(2, wire.StatusEndOfTrack, nil); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("End of Track not past the largest object: %v", err)
	}
	if err := a.WriteStatus(3, wire.StatusEndOfTrack, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.WriteObject(4, []byte("past"), nil); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("object past End of Track: %v", err)
	}
	if err := b.WriteObject(3, []byte("at"), nil); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("object at End of Track: %v", err)
	}
	c := mustOpen(t, tr, 1, 0, false)
	if err := c.WriteObject(0, []byte("next group"), nil); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("object in a later group: %v", err)
	}
	if err := tr.WriteDatagram(Object{Group: 0, ID: 9}); !errors.Is(err, ErrMalformedTrack) {
		// (also the wrong forwarding preference; either way malformed)
		t.Errorf("datagram past End of Track: %v", err)
	}
	// A late object before the end is fine.
	mustWrite(t, b, 1, "1")
	if l, _ := tr.Largest(); l != (wire.Location{Group: 0, Object: 3}) {
		t.Errorf("Largest = %v", l)
	}

	// End of Group.
	tg := NewTrack(testTrackName, TrackConfig{})
	g := mustOpen(t, tg, 5, 0, false)
	mustWrite(t, g, 0, "0")
	mustWrite(t, g, 1, "1")
	h := mustOpen(t, tg, 5, 1, false)
	if err := h.WriteStatus(1, wire.StatusEndOfGroup, nil); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("End of Group not past the group's objects: %v", err)
	}
	if err := g.WriteStatus(2, wire.StatusEndOfGroup, nil); err != nil {
		t.Fatal(err)
	}
	if err := h.WriteObject(2, []byte("x"), nil); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("object at End of Group: %v", err)
	}
	if err := h.WriteStatus(7, wire.StatusEndOfGroup, nil); !errors.Is(err, ErrMalformedTrack) {
		t.Errorf("second End of Group: %v", err)
	}
	// Other groups are unaffected.
	k := mustOpen(t, tg, 6, 0, false)
	mustWrite(t, k, 5, "ok")
}

func TestTrackLargest(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	if _, ok := tr.Largest(); ok {
		t.Fatal("empty track has a Largest")
	}
	check := func(g, o uint64) {
		t.Helper()
		l, ok := tr.Largest()
		if !ok || l != (wire.Location{Group: g, Object: o}) {
			t.Fatalf("Largest = %v %v, want {%d,%d}", l, ok, g, o)
		}
	}
	w := mustOpen(t, tr, 2, 0, false)
	mustWrite(t, w, 3, "x")
	check(2, 3)
	late := mustOpen(t, tr, 1, 0, false)
	mustWrite(t, late, 9, "late")
	check(2, 3) // a smaller location does not lower it
	w2 := mustOpen(t, tr, 2, 1, false)
	if err := w2.WriteStatus(4, wire.StatusDoesNotExist, nil); err != nil {
		t.Fatal(err)
	}
	check(2, 4)
	if err := w.WriteStatus(5, wire.StatusEndOfGroup, nil); err != nil {
		t.Fatal(err)
	}
	check(2, 5) // End of Group counts (documented choice)
	if tr.GroupOrder() != wire.GroupOrderAscending {
		t.Errorf("default group order %v", tr.GroupOrder())
	}
	if tr.Name().Name != "track" {
		t.Errorf("Name %v", tr.Name())
	}
	if d := NewTrack(testTrackName, TrackConfig{GroupOrder: wire.GroupOrderDescending}); d.GroupOrder() != wire.GroupOrderDescending {
		t.Error("GroupOrder not kept")
	}
}

// groupSize is what a group written by writeGroup counts against MaxBytes.
func groupSize(n, size int) int64 {
	return int64(n)*int64(size+CacheEntryOverhead) + CacheEntryOverhead
}

func TestTrackEvictionByGroups(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 3})
	for g := range uint64(5) {
		writeGroup(t, tr, g, 2, 100)
	}
	oldest, newest, ok := tr.Cache().Groups()
	if !ok || oldest != 2 || newest != 4 {
		t.Fatalf("Cache().Groups() = %d %d %v, want 2 4", oldest, newest, ok)
	}
	s := tr.Cache().Stats()
	if want := (CacheStats{Groups: 3, Objects: 6, Events: 9, Bytes: 3 * groupSize(2, 100)}); s != want {
		t.Fatalf("stats %+v, want %+v", s, want)
	}
	if tr.Cache().Objects(1) != nil {
		t.Error("evicted group still has objects")
	}
	// A late object for a group older than the cache is cached, then evicted
	// at once (it is the smallest group), and the accounting stays exact.
	writeGroup(t, tr, 0, 1, 100)
	if s2 := tr.Cache().Stats(); s2 != s {
		t.Fatalf("stats after a late group %+v, want %+v", s2, s)
	}
}

func TestTrackEvictionByBytes(t *testing.T) {
	per := groupSize(4, 1000)
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 100, MaxBytes: 3 * per})
	for g := range uint64(10) {
		writeGroup(t, tr, g, 4, 1000)
		if s := tr.Cache().Stats(); s.Bytes > 3*per {
			t.Fatalf("after group %d: %d bytes cached, limit %d", g, s.Bytes, 3*per)
		}
	}
	oldest, newest, _ := tr.Cache().Groups()
	if oldest != 7 || newest != 9 {
		t.Fatalf("Cache().Groups() = %d..%d, want 7..9", oldest, newest)
	}
	if s := tr.Cache().Stats(); s.Bytes != 3*per || s.Objects != 12 {
		t.Fatalf("stats %+v", s)
	}

	// The newest group alone over MaxBytes is truncated from its oldest
	// events, keeping at least the object just written.
	small := NewTrack(testTrackName, TrackConfig{MaxBytes: 5 * (100 + CacheEntryOverhead)})
	behind := small.NewReader(ReaderFilter{})
	w := mustOpen(t, small, 0, 0, false)
	for i := range uint64(20) {
		if err := w.WriteObject(i, make([]byte, 100), nil); err != nil {
			t.Fatal(err)
		}
	}
	if s := small.Cache().Stats(); s.Objects != 5 || s.Bytes != 5*(100+CacheEntryOverhead) {
		t.Fatalf("truncated stats %+v", s)
	}
	if !small.Cache().Truncated(0) {
		t.Error("group 0 not marked truncated")
	}
	objs := small.Cache().Objects(0)
	if len(objs) != 5 || objs[0].ID != 15 {
		t.Fatalf("truncated group holds %d objects from %d", len(objs), objs[0].ID)
	}
	expectEvents(t, behind, "skipped", "obj{0,0,15}")
	if err := w.WriteObject(20, make([]byte, 10_000), nil); err != nil { // larger than MaxBytes
		t.Fatal(err)
	}
	if s := small.Cache().Stats(); s.Objects != 1 {
		t.Fatalf("an object larger than MaxBytes: stats %+v", s)
	}
	expectEvents(t, behind, "skipped", "obj{0,0,20}")
}

func TestTrackEvictionByAge(t *testing.T) {
	clock := newFakeClock()
	tr := NewTrack(testTrackName, TrackConfig{MaxAge: 10 * time.Second, Now: clock.Now})
	writeGroup(t, tr, 0, 1, 10) // t=0
	clock.Advance(5 * time.Second)
	writeGroup(t, tr, 1, 1, 10) // t=5
	clock.Advance(7 * time.Second)
	writeGroup(t, tr, 2, 1, 10) // t=12: group 0 is 12s old
	if o, n, _ := tr.Cache().Groups(); o != 1 || n != 2 {
		t.Fatalf("Cache().Groups() = %d..%d, want 1..2", o, n)
	}
	// Without writes, the age limit still applies when the cache is read.
	clock.Advance(4 * time.Second) // t=16: group 1 is 11s old
	if o, n, _ := tr.Cache().Groups(); o != 2 || n != 2 {
		t.Fatalf("Cache().Groups() = %d..%d, want 2..2", o, n)
	}
	if s := tr.Cache().Stats(); s != (CacheStats{Groups: 1, Objects: 1, Events: 2, Bytes: groupSize(1, 10)}) {
		t.Fatalf("stats %+v", s)
	}
	// The newest group stays however old.
	clock.Advance(time.Hour)
	if o, n, ok := tr.Cache().Groups(); !ok || o != 2 || n != 2 {
		t.Fatalf("newest group evicted: %d..%d %v", o, n, ok)
	}
	if objs := tr.Cache().Objects(2); len(objs) != 1 {
		t.Fatalf("Cache().Objects(2) = %d objects", len(objs))
	}
}

// TestTrackEvictionFreesMemory checks that evicted objects are unreachable
// even while a reader that never read them exists.
func TestTrackEvictionFreesMemory(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 2})
	r := tr.NewReader(ReaderFilter{FromCache: true})
	defer r.Close()
	weakPayloads := func() []weak.Pointer[byte] {
		var ps []weak.Pointer[byte]
		for g := range uint64(3) {
			w := mustOpen(t, tr, g, 0, false)
			p := make([]byte, 1<<20)
			ps = append(ps, weak.Make(&p[0]))
			if err := w.WriteObject(0, p, nil); err != nil {
				t.Fatal(err)
			}
			mustClose(t, w)
		}
		return ps
	}()
	runtime.GC()
	runtime.GC()
	if weakPayloads[0].Value() != nil {
		t.Error("the evicted group's payload is still reachable")
	}
	if weakPayloads[2].Value() == nil {
		t.Error("a cached payload was freed")
	}
	runtime.KeepAlive(tr)
}

func TestTrackSlowReaderSkips(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 4})
	fast := tr.NewReader(ReaderFilter{})
	slow := tr.NewReader(ReaderFilter{})
	var fastGot []string
	for g := range uint64(10) {
		writeGroup(t, tr, g, 3, 10)
		for range 4 {
			fastGot = append(fastGot, describe(nextEvent(t, fast)))
		}
	}
	for g := range 10 {
		for i := range 3 {
			if w := fmt.Sprintf("obj{%d,0,%d}", g, i); fastGot[g*4+i] != w {
				t.Fatalf("fast reader event %d = %s, want %s", g*4+i, fastGot[g*4+i], w)
			}
		}
	}
	// The slow reader catches up at the start of the newest group, not
	// at the oldest cached one (6): that is where a viewer can start.
	expectEvents(t, slow, "skipped", "obj{9,0,0}", "obj{9,0,1}", "obj{9,0,2}", "end{9,0}")
	noEvent(t, slow)
	// Objects of older groups that arrive later are ignored.
	w := mustOpen(t, tr, 8, 1, false)
	mustWrite(t, w, 5, "late")
	mustClose(t, w)
	writeGroup(t, tr, 10, 1, 1)
	expectEvents(t, slow, "obj{10,0,0}", "end{10,0}")
	noEvent(t, slow)

	// A reader that is mid-subgroup when its group is evicted: after the
	// skip no end comes for the subgroup it had (its stream was reset).
	mid := tr.NewReader(ReaderFilter{})
	w = mustOpen(t, tr, 11, 0, false)
	mustWrite(t, w, 0, "a")
	expectEvents(t, mid, "obj{11,0,0}")
	mustWrite(t, w, 1, "b")
	mustClose(t, w)
	for g := uint64(12); g < 16; g++ {
		writeGroup(t, tr, g, 1, 1)
	}
	expectEvents(t, mid, "skipped", "obj{15,0,0}", "end{15,0}")

	// A reader that is behind only on events it would not get is not
	// told to skip.
	filtered := tr.NewReader(ReaderFilter{Start: wire.Location{Group: 100}})
	for g := uint64(16); g < 30; g++ {
		writeGroup(t, tr, g, 1, 1)
	}
	writeGroup(t, tr, 100, 1, 1)
	expectEvents(t, filtered, "obj{100,0,0}", "end{100,0}")
}

// TestTrackLateGroupsCompaction writes many late groups that are evicted
// in the middle of the log: the log stays bounded and readers keep their
// place.
func TestTrackLateGroupsCompaction(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 2})
	live := tr.NewReader(ReaderFilter{})
	lagging := tr.NewReader(ReaderFilter{})
	writeGroup(t, tr, 1000, 1, 1)
	expectEvents(t, live, "obj{1000,0,0}", "end{1000,0}")
	for g := uint64(1); g <= 500; g++ {
		writeGroup(t, tr, g, 1, 1)
		expectEvents(t, live, fmt.Sprintf("obj{%d,0,0}", g), fmt.Sprintf("end{%d,0}", g))
	}
	tr.mu.Lock()
	logLen := len(tr.log)
	tr.mu.Unlock()
	if logLen > 100 {
		t.Errorf("log holds %d entries for %d live events", logLen, tr.Cache().Stats().Events)
	}
	if s := tr.Cache().Stats(); s.Groups != 2 || s.Events != 4 {
		t.Errorf("stats %+v", s)
	}
	// The lagging reader skips to the newest group, 1000, which it has
	// read: the older groups that arrived after it are ignored.
	expectEvents(t, lagging, "obj{1000,0,0}", "end{1000,0}", "skipped")
	noEvent(t, lagging)
	noEvent(t, live)
}

func TestTrackConcurrentReaders(t *testing.T) {
	const (
		readers = 8
		groups  = 200
		objects = 5
	)
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: groups, MaxBytes: 1 << 30})
	var rs []*TrackReader
	for range readers {
		rs = append(rs, tr.NewReader(ReaderFilter{}))
	}
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	for _, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			errs <- func() error {
				ctx := context.Background()
				for g := range uint64(groups) {
					for i := range uint64(objects) {
						ev, err := r.Next(ctx)
						if err != nil {
							return err
						}
						if ev.Kind != EventObject || ev.Object.Group != g || ev.Object.ID != i || len(ev.Object.Payload) != 100 || ev.Object.Payload[0] != byte(g) {
							return fmt.Errorf("got %s, want obj{%d,0,%d}", describe(ev), g, i)
						}
					}
					ev, err := r.Next(ctx)
					if err != nil {
						return err
					}
					if ev.Kind != EventSubgroupEnd || ev.Group != g {
						return fmt.Errorf("got %s, want end{%d,0}", describe(ev), g)
					}
				}
				if _, err := r.Next(ctx); err != io.EOF {
					return fmt.Errorf("after the last event: %v, want io.EOF", err)
				}
				return nil
			}()
		}()
	}
	for g := range uint64(groups) {
		w := mustOpen(t, tr, g, 0, false)
		for i := range uint64(objects) {
			p := make([]byte, 100)
			p[0] = byte(g)
			if err := w.WriteObject(i, p, nil); err != nil {
				t.Fatal(err)
			}
		}
		mustClose(t, w)
	}
	tr.Close(nil)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	goleak.VerifyNone(t)
}

func TestTrackPayloadShared(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	r1 := tr.NewReader(ReaderFilter{})
	r2 := tr.NewReader(ReaderFilter{})
	payload := []byte("shared payload")
	w := mustOpen(t, tr, 0, 0, false)
	if err := w.WriteObject(0, payload, nil); err != nil {
		t.Fatal(err)
	}
	e1, e2 := nextEvent(t, r1), nextEvent(t, r2)
	if e1.Object != e2.Object {
		t.Error("readers got different *Object")
	}
	if &e1.Object.Payload[0] != &e2.Object.Payload[0] || &e1.Object.Payload[0] != &payload[0] {
		t.Error("payload was copied")
	}
	if objs := tr.Cache().Objects(0); &objs[0].Payload[0] != &payload[0] {
		t.Error("Cache().Objects copied the payload")
	}
}

func TestTrackNextContextCancel(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	r := tr.NewReader(ReaderFilter{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := r.Next(ctx)
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Next: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("Next took %v to return after cancel", d)
		}
	case <-time.After(time.Second):
		t.Fatal("Next did not return after cancel")
	}
	// The reader still works; Close wakes a blocked Next.
	go func() {
		_, err := r.Next(context.Background())
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	r.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTrackReaderClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Close did not wake Next")
	}
	goleak.VerifyNone(t)
}

func TestTrackClose(t *testing.T) {
	t.Run("normal end", func(t *testing.T) {
		tr := NewTrack(testTrackName, TrackConfig{})
		r := tr.NewReader(ReaderFilter{})
		writeGroup(t, tr, 0, 2, 1)
		open := mustOpen(t, tr, 1, 0, true)
		mustWrite(t, open, 0, "x")
		idle := mustOpen(t, tr, 1, 1, false) // no objects: no event
		_ = idle
		tr.Close(nil)
		select {
		case <-tr.Done():
		default:
			t.Fatal("Done not closed")
		}
		if tr.Err() != nil {
			t.Errorf("Err = %v", tr.Err())
		}
		expectEvents(t, r, "obj{0,0,0}", "obj{0,0,1}", "end{0,0}", "obj{1,0,0}", "abort{1,0,code=1}")
		for range 2 {
			if _, err := r.Next(context.Background()); err != io.EOF {
				t.Fatalf("after the last event: %v, want io.EOF", err)
			}
		}
		if err := open.Close(); !errors.Is(err, ErrTrackClosed) {
			t.Errorf("subgroup Close after track Close: %v", err)
		}
		tr.Close(errors.New("ignored")) // the first Close decides
		// A reader opened after the end reads the cache, then io.EOF.
		late := tr.NewReader(ReaderFilter{FromCache: true})
		expectEvents(t, late, "obj{0,0,0}", "obj{0,0,1}", "end{0,0}", "obj{1,0,0}", "abort{1,0,code=1}")
		if _, err := late.Next(context.Background()); err != io.EOF {
			t.Fatalf("late reader: %v, want io.EOF", err)
		}
		late.Close()
		if _, err := late.Next(context.Background()); !errors.Is(err, ErrTrackReaderClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	})
	t.Run("failure", func(t *testing.T) {
		tr := NewTrack(testTrackName, TrackConfig{})
		r := tr.NewReader(ReaderFilter{})
		writeGroup(t, tr, 0, 1, 1)
		// A blocked reader is woken by Close once it has read everything.
		expectEvents(t, r, "obj{0,0,0}", "end{0,0}")
		fail := errors.New("upstream went away")
		done := make(chan error, 1)
		go func() {
			_, err := r.Next(context.Background())
			done <- err
		}()
		time.Sleep(10 * time.Millisecond)
		tr.Close(fail)
		select {
		case err := <-done:
			if err != fail {
				t.Fatalf("Next: %v, want %v", err, fail)
			}
		case <-time.After(time.Second):
			t.Fatal("Close did not wake Next")
		}
		if tr.Err() != fail {
			t.Errorf("Err = %v", tr.Err())
		}
		goleak.VerifyNone(t)
	})
	// §10.4.3: a subscription the publisher ended (PUBLISH_DONE with a
	// status) resets its streams with CANCELLED; INTERNAL_ERROR is for a
	// failure (a relay ending tracks at a grant's end reset them with it).
	for _, tc := range []struct {
		err  error
		code wire.StreamResetCode
	}{
		{PublishDoneError(wire.DoneTrackEnded, "the publisher's grant ended"), ResetCancelled},
		{PublishDoneError(wire.DoneExpired, "expired"), ResetCancelled},
		{PublishDoneError(wire.DoneInternalError, "broken"), ResetInternalError},
		{errors.New("upstream went away"), ResetInternalError},
	} {
		t.Run("reset code after "+tc.err.Error(), func(t *testing.T) {
			tr := NewTrack(testTrackName, TrackConfig{})
			r := tr.NewReader(ReaderFilter{})
			mustWrite(t, mustOpen(t, tr, 0, 0, false), 0, "x")
			tr.Close(tc.err)
			expectEvents(t, r, "obj{0,0,0}", fmt.Sprintf("abort{0,0,code=%d}", tc.code))
		})
	}
}

func TestTrackCacheObjects(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 2})
	if _, _, ok := tr.Cache().Groups(); ok {
		t.Fatal("empty track has cached groups")
	}
	even := mustOpen(t, tr, 0, 0, false)
	odd := mustOpen(t, tr, 0, 1, false)
	for _, id := range []uint64{1, 0, 3, 2, 5, 4} {
		w := even
		if id%2 == 1 {
			w = odd
		}
		mustWrite(t, w, id, fmt.Sprint(id))
	}
	objs := tr.Cache().Objects(0)
	if len(objs) != 6 {
		t.Fatalf("%d objects", len(objs))
	}
	for i, o := range objs {
		if o.ID != uint64(i) || string(o.Payload) != fmt.Sprint(i) || o.Subgroup != uint64(i%2) {
			t.Errorf("objects[%d] = {%d,%d,%q}", i, o.Subgroup, o.ID, o.Payload)
		}
	}
	writeGroup(t, tr, 1, 1, 1)
	writeGroup(t, tr, 3, 1, 1)
	if o, n, ok := tr.Cache().Groups(); !ok || o != 1 || n != 3 {
		t.Fatalf("Cache().Groups() = %d..%d %v, want 1..3", o, n, ok)
	}
	if tr.Cache().Objects(0) != nil || tr.Cache().Objects(2) != nil {
		t.Error("objects for a group that is not cached")
	}
	// The evicted group's open subgroups keep writing: the late objects
	// re-create the group, which is the oldest and so evicted at once.
	mustWrite(t, even, 6, "6")
	if tr.Cache().Objects(0) != nil {
		t.Error("late object of an evicted group is cached beyond the limit")
	}
}

// TestTrackLateObjectBelowWindow: an object for a group older than every
// cached group, in a full cache, is evicted by its own write. Readers that
// never opened its subgroup do not notice; a reader that has the subgroup
// open skips (its stream would miss an object).
func TestTrackLateObjectBelowWindow(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 2})
	old := mustOpen(t, tr, 0, 0, false)
	all := tr.NewReader(ReaderFilter{})
	mustWrite(t, old, 0, "a")
	expectEvents(t, all, "obj{0,0,0}")
	writeGroup(t, tr, 1, 1, 1)
	writeGroup(t, tr, 2, 1, 1) // evicts group 0
	expectEvents(t, all, "obj{1,0,0}", "end{1,0}", "obj{2,0,0}", "end{2,0}")
	fresh := tr.NewReader(ReaderFilter{})
	mustWrite(t, old, 1, "b") // evicted at once
	if tr.Cache().Objects(0) != nil {
		t.Fatal("late object cached beyond the limit")
	}
	other := mustOpen(t, tr, 0, 1, false)
	mustWrite(t, other, 9, "c") // a new subgroup of the old group: nobody has it open
	if err := tr.WriteDatagram(Object{Group: 0, ID: 10}); !errors.Is(err, ErrMalformedTrack) {
		t.Fatalf("datagram on a subgroup track: %v", err)
	}
	writeGroup(t, tr, 3, 1, 1)
	expectEvents(t, all, "skipped", "obj{3,0,0}", "end{3,0}")
	expectEvents(t, fresh, "obj{3,0,0}", "end{3,0}")
	noEvent(t, fresh)
}

// BenchmarkTrackFanout measures one writer and 8 readers: each op writes
// one 1 KiB object that all 8 readers read.
func BenchmarkTrackFanout(b *testing.B) {
	const readers = 8
	const perGroup = 100
	// A cache that holds the whole run, so that no reader skips: the payload
	// is one shared slice, so this costs only the bookkeeping.
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 1 << 30, MaxBytes: 1 << 50})
	payload := make([]byte, 1024)
	var skips atomic.Int64
	var wg sync.WaitGroup
	for range readers {
		r := tr.NewReader(ReaderFilter{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				ev, err := r.Next(context.Background())
				if err != nil {
					return
				}
				if ev.Kind == EventSkipped {
					skips.Add(1)
				}
			}
		}()
	}
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	b.ResetTimer()
	var w *SubgroupWriter
	for i := range b.N {
		id := uint64(i % perGroup)
		if id == 0 {
			if w != nil {
				_ = w.Close()
			}
			var err error
			if w, err = tr.OpenSubgroup(uint64(i/perGroup), 0, SubgroupOptions{Priority: 128}); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.WriteObject(id, payload, nil); err != nil {
			b.Fatal(err)
		}
	}
	tr.Close(nil)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*readers), "ns/read")
	b.ReportMetric(float64(skips.Load()), "skips")
}

func TestTrackReaderSkipTo(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	r := tr.NewReader(ReaderFilter{})
	old := mustOpen(t, tr, 1, 0, false)
	mustWrite(t, old, 0, "a")
	expectEvents(t, r, "obj{1,0,0}")
	r.SkipTo(2)
	expectEvents(t, r, "abort{1,0,code=1}")
	mustWrite(t, old, 1, "b") // ignored: group 1 is behind the reader
	r.SkipTo(1)               // backwards: nothing
	writeGroup(t, tr, 2, 1, 1)
	mustClose(t, old)
	expectEvents(t, r, "obj{2,0,0}", "end{2,0}")
	noEvent(t, r)
}

// Objects that arrive out of ID order (subgroups interleaved, falling
// IDs) are read back in ID order, also after more arrive following a
// read; an ID repeated in another subgroup is refused (§8.1: a malformed
// track) and not cached.
func TestTrackCacheObjectsInterleaved(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	ws := []*SubgroupWriter{mustOpen(t, tr, 0, 0, false), mustOpen(t, tr, 0, 1, false), mustOpen(t, tr, 0, 2, false)}
	write := func(sub int, id uint64) { t.Helper(); mustWrite(t, ws[sub], id, fmt.Sprintf("%d/%d", sub, id)) }
	want := func(ids ...string) {
		t.Helper()
		objs := tr.Cache().Objects(0)
		var got []string
		for _, o := range objs {
			got = append(got, string(o.Payload))
		}
		if !slices.Equal(got, ids) {
			t.Fatalf("cached objects %v, want %v", got, ids)
		}
	}
	write(2, 20)
	write(1, 10)
	write(0, 0)
	write(2, 21)
	write(1, 11)
	write(0, 1)
	want("0/0", "0/1", "1/10", "1/11", "2/20", "2/21")
	write(0, 2)  // in order after the read
	write(1, 12) // ...
	if err := ws[0].WriteObject(11, []byte("0/11"), nil); !errors.Is(err, ErrMalformedTrack) {
		t.Fatalf("object 11 again in another subgroup: %v, want ErrMalformedTrack", err)
	}
	write(0, 3) // out of order again
	write(2, 22)
	want("0/0", "0/1", "0/2", "0/3", "1/10", "1/11", "1/12", "2/20", "2/21", "2/22")
}

// A reader that has read the newest event waits for the next write
// without the track's lock (TrackReader.idle): writes, SetFilter, SkipTo,
// Close of the reader or of the track, and its context still reach it.
func TestTrackCaughtUpReaderWakes(t *testing.T) {
	tr := NewTrack(testTrackName, TrackConfig{})
	r := tr.NewReader(ReaderFilter{})
	w0 := mustOpen(t, tr, 0, 0, false)
	mustWrite(t, w0, 0, "a")
	expectEvents(t, r, "obj{0,0,0}") // caught up
	// Each action runs while another goroutine's Next waits.
	waitFor := func(r *TrackReader, act func(), want string) {
		t.Helper()
		got := make(chan string, 1)
		waiting := make(chan struct{})
		r.waitHook = sync.OnceFunc(func() { close(waiting) })
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ev, err := r.Next(ctx)
			if err != nil {
				got <- err.Error()
				return
			}
			got <- describe(ev)
		}()
		<-waiting // Next found nothing to return: act wakes it
		act()
		if g := <-got; g != want {
			t.Fatalf("got %s, want %s", g, want)
		}
	}
	waitFor(r, func() { mustWrite(t, w0, 1, "b") }, "obj{0,0,1}")
	waitFor(r, func() { r.SetFilter(ReaderFilter{Start: Location{Group: 1}}) }, fmt.Sprintf("abort{0,0,code=%d}", ResetCancelled))
	w1 := mustOpen(t, tr, 1, 0, false)
	waitFor(r, func() { mustWrite(t, w1, 0, "c") }, "obj{1,0,0}")
	waitFor(r, func() { r.SkipTo(2) }, fmt.Sprintf("abort{1,0,code=%d}", ResetCancelled))
	w2 := mustOpen(t, tr, 2, 0, false)
	waitFor(r, func() { mustWrite(t, w2, 0, "d") }, "obj{2,0,0}")
	waitFor(r, func() { tr.Close(nil) }, fmt.Sprintf("abort{2,0,code=%d}", ResetCancelled))
	if _, err := r.Next(context.Background()); err != io.EOF {
		t.Fatalf("after the track's end: %v, want io.EOF", err)
	}

	tr2 := NewTrack(testTrackName, TrackConfig{})
	r2 := tr2.NewReader(ReaderFilter{})
	w := mustOpen(t, tr2, 0, 0, false)
	mustWrite(t, w, 0, "a")
	expectEvents(t, r2, "obj{0,0,0}") // caught up
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r2.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next with a cancelled context: %v", err)
	}
	mustWrite(t, w, 1, "b")
	expectEvents(t, r2, "obj{0,0,1}") // caught up again
	waitFor(r2, r2.Close, ErrTrackReaderClosed.Error())
	goleak.VerifyNone(t)
}

// Readers read side by side (Next holds the track's lock shared) while the
// track is written, evicts, and their filters change from other
// goroutines: every reader sees each subgroup's objects in order, no
// object after the end of its subgroup, and the track's end. Run with
// -race, it checks what Next touches under the shared lock.
func TestTrackReadersSideBySide(t *testing.T) {
	const (
		readers = 8
		groups  = 120
		objects = 4
	)
	tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 3})
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	var rs []*TrackReader
	for i := range readers {
		r := tr.NewReader(ReaderFilter{})
		rs = append(rs, r)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- func() error {
				last := map[trackSubgroupKey]uint64{}
				for {
					ev, err := r.Next(context.Background())
					if err == io.EOF {
						return nil
					}
					if err != nil {
						return err
					}
					k := trackSubgroupKey{ev.Group, ev.Subgroup}
					switch ev.Kind {
					case EventObject:
						if id, ok := last[k]; ok && ev.Object.ID <= id {
							return fmt.Errorf("reader %d: %s after object %d", i, describe(ev), id)
						}
						last[k] = ev.Object.ID
					case EventSubgroupEnd, EventSubgroupAbort:
						if _, ok := last[k]; !ok {
							return fmt.Errorf("reader %d: %s of a subgroup it has no object of", i, describe(ev))
						}
						delete(last, k)
					case EventSkipped:
						clear(last)
					}
				}
			}()
		}()
	}
	// Filters move forward from another goroutine meanwhile.
	stop := make(chan struct{})
	var fwg sync.WaitGroup
	fwg.Add(1)
	go func() {
		defer fwg.Done()
		for g := uint64(0); ; g++ {
			select {
			case <-stop:
				return
			default:
			}
			rs[int(g)%readers].SetFilter(ReaderFilter{Start: Location{Group: g / 8}})
			rs[int(g+1)%readers].SkipTo(g / 8)
			_, _ = tr.Largest()
			_ = tr.Cache().Stats()
		}
	}()
	for g := range uint64(groups) {
		writeGroup(t, tr, g, objects, 10)
	}
	close(stop)
	fwg.Wait()
	tr.Close(nil)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// Evicting by age goes by arrival, so a group can go while one of a smaller
// ID stays (group 6 arrived before a late group 5): a FETCH of a range
// that may cross the evicted group is refused UNKNOWN_STATUS_IN_RANGE. It
// was answered with groups 5 and 7 only, which the subscriber reads as
// "group 6 does not exist" (§9.16). A range past the evicted group is
// answered.
func TestFetchFromTrackAfterAgeEvictionHole(t *testing.T) {
	clock := newFakeClock()
	tr := NewTrack(testTrackName, TrackConfig{MaxAge: 10 * time.Second, Now: clock.Now})
	writeGroup(t, tr, 6, 1, 10) // t=0
	clock.Advance(3 * time.Second)
	writeGroup(t, tr, 5, 1, 10) // t=3: late
	clock.Advance(5 * time.Second)
	writeGroup(t, tr, 7, 1, 10)    // t=8
	clock.Advance(3 * time.Second) // t=11: group 6 is 11 s old
	if o, n, _ := tr.Cache().Groups(); o != 5 || n != 7 || len(tr.Cache().Objects(6)) != 0 {
		t.Fatalf("cache holds %d..%d, group 6 %d objects; want 5..7 without group 6", o, n, len(tr.Cache().Objects(6)))
	}
	_, err := FetchFromTrack(tr, &FetchRequest{Start: Location{Group: 5}, End: Location{Group: 8}})
	if !errors.Is(err, FetchError(wire.FetchUnknownStatusInRange, "")) {
		t.Fatalf("FETCH of groups 5-7 across the evicted group 6: %v, want UNKNOWN_STATUS_IN_RANGE", err)
	}
	if _, err := FetchFromTrack(tr, &FetchRequest{Start: Location{Group: 7}, End: Location{Group: 8}}); err != nil {
		t.Fatalf("FETCH of group 7, past the evicted group: %v", err)
	}
}
