package moqtransport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// recordConn is a Conn whose one unidirectional stream records its
// writes; the first write waits for release.
type recordConn struct {
	sinkConn
	str *recordStream
}

func (c *recordConn) OpenUniStreamSync(context.Context) (SendStream, error) { return c.str, nil }

type recordStream struct {
	entered chan struct{} // closed when the first write starts
	release chan struct{} // the first write returns once closed
	closed  chan struct{}
	mu      sync.Mutex
	writes  [][]byte
}

func (s *recordStream) Write(b []byte) (int, error) {
	s.mu.Lock()
	first := len(s.writes) == 0
	s.writes = append(s.writes, bytes.Clone(b))
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	return len(b), nil
}
func (s *recordStream) Close() error                     { close(s.closed); return nil }
func (s *recordStream) CancelWrite(uint64)               {}
func (s *recordStream) SetPriority(uint8)                {}
func (s *recordStream) SetWriteDeadline(time.Time) error { return nil }

// TestWriterCoalesces: objects queued while the writer is blocked go out
// in one write after it, and the stream's bytes are the subgroup's header
// and objects, in order.
func TestWriterCoalesces(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	str := &recordStream{entered: make(chan struct{}), release: make(chan struct{}), closed: make(chan struct{})}
	conn := &recordConn{sinkConn: sinkConn{ctx: ctx}, str: str}
	s := newSession(conn, &Config{DefaultDeliveryTimeout: 10 * time.Second}, false)
	defer s.cancel()
	name := wire.FullTrackName{Namespace: wire.Namespace{"t"}, Name: "coalesce"}
	track := NewTrack(name, TrackConfig{})
	sv := s.newServed(&wire.Subscribe{RequestID: 0, Namespace: name.Namespace, Name: name.Name, Forward: true,
		Filter: wire.Filter{Type: wire.FilterNextGroupStart}})
	sv.reader, sv.track = track.NewReader(ReaderFilter{}), track
	done := make(chan struct{})
	go func() {
		defer close(done)
		sv.deliver()
		sv.wg.Wait()
	}()
	w, err := track.OpenSubgroup(0, 0, SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	payloads := [][]byte{[]byte("zero"), bytes.Repeat([]byte{1}, 1000), bytes.Repeat([]byte{2}, 3000), nil}
	if err := w.WriteObject(0, payloads[0], nil); err != nil {
		t.Fatal(err)
	}
	select {
	case <-str.entered:
	case <-ctx.Done():
		t.Fatal("no write")
	}
	var queued int64
	for id, p := range payloads[1:] {
		if err := w.WriteObject(uint64(id+1), p, nil); err != nil {
			t.Fatal(err)
		}
		queued += int64(len(p)) + CacheEntryOverhead
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// The dispatcher queues the three objects behind the blocked write.
	for sv.backlog.Load() != queued {
		select {
		case <-ctx.Done():
			t.Fatalf("backlog %d, want %d", sv.backlog.Load(), queued)
		case <-time.After(time.Millisecond):
		}
	}
	close(str.release)
	select {
	case <-str.closed:
	case <-ctx.Done():
		t.Fatal("stream not closed")
	}
	track.Close(nil)
	<-done
	str.mu.Lock()
	writes := str.writes
	str.mu.Unlock()
	if len(writes) != 2 {
		t.Fatalf("%d writes, want 2 (the first object, then the three queued behind it)", len(writes))
	}
	r, err := wire.NewStreamReader(bytes.NewReader(bytes.Join(writes, nil)), wire.StreamReaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	for id, p := range payloads {
		o, err := r.ReadObject()
		if err != nil {
			t.Fatalf("object %d: %v", id, err)
		}
		if o.ID != uint64(id) || !bytes.Equal(o.Payload, p) {
			t.Fatalf("object %d: got ID %d, %d bytes", id, o.ID, len(o.Payload))
		}
	}
	if _, err := r.ReadObject(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last object: %v, want io.EOF", err)
	}
}

// TestWriteCoalesceHolds: with Config.WriteCoalesce, a writer holds a small
// object of a stream whose objects come close together until the objects
// behind it fill a write or the subgroup ends (with a window of an hour and
// arrivals an hour ahead, only those end the hold), and then writes them
// together.
func TestWriteCoalesceHolds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int // the first two are written alone: the stream has no pace yet
		close bool  // end the subgroup before waiting for the third write
	}{
		{"subgroup end", []int{1, 1, 1, 1000, 1}, true},
		{"full write", []int{1, 1, 1, 3000, 3000, 3000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rg := newHoldRig(t, Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: time.Hour}, 2)
			base := time.Now().Add(time.Hour)
			for i, n := range tc.sizes {
				rg.push(n, base.Add(time.Duration(i)*time.Millisecond))
				switch i {
				case 0, 1:
					rg.waitWrites(i + 1)
				case 2:
					waitHolding(t, rg.ctx, rg.s, rg.sv)
				}
			}
			if tc.close {
				rg.end()
			}
			if h := rg.waitHold(); h.objects != len(tc.sizes)-2 {
				t.Fatalf("the held write carried %d objects, want %d", h.objects, len(tc.sizes)-2)
			}
			rg.waitWrites(3) // the first two objects, then the held one with those behind it
			if !tc.close {
				rg.end()
			}
			rg.checkObjects(len(tc.sizes), true)
			rg.waitWrites(3)
		})
	}
}

// TestWriteCoalesceWindowPasses: a held object goes out at the window's
// end without more objects or the subgroup's end, and the objects arrive
// in order.
func TestWriteCoalesceWindowPasses(t *testing.T) {
	rg := newHoldRig(t, Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: 500 * time.Millisecond}, 2) // long enough for a busy machine to pop object 2 within it
	now := time.Now()
	for i := range 3 {
		rg.push(100, now.Add(time.Duration(i-3)*time.Millisecond))
		if i < 2 {
			rg.waitWrites(i + 1)
		}
	}
	// Object 2 is held (the next was due half a millisecond from now),
	// and nothing else comes: the window ends the hold.
	if h := rg.waitHold(); h.objects != 1 {
		t.Fatalf("the held write carried %d objects, want 1", h.objects)
	}
	rg.checkObjects(3, false)
	rg.end()
	rg.checkObjects(3, true)
}

// countObjects returns how many whole objects b, a subgroup stream's
// first bytes, carries.
func countObjects(t *testing.T, b []byte) int {
	t.Helper()
	if len(b) == 0 {
		return 0
	}
	r, err := wire.NewStreamReader(bytes.NewReader(b), wire.StreamReaderConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	n := 0
	for {
		if _, err := r.ReadObject(); err != nil {
			return n
		}
		n++
	}
}

// waitHolding waits until the writer of sv's one stream holds an object.
func waitHolding(t *testing.T, ctx context.Context, s *Session, sv *servedSubscription) {
	t.Helper()
	for {
		if list := s.sched.streamsOf(sv); len(list) == 1 {
			st := list[0]
			st.mu.Lock()
			held := st.held
			st.mu.Unlock()
			if held > 0 {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("the writer does not hold the object")
		case <-time.After(time.Millisecond):
		}
	}
}

// holdRig is a served subscription whose one subgroup stream records its
// writes (none blocks), on a track with two readers (a fan-out: one reader
// is never held). A test hands objects to the subscription's dispatcher
// (dispatch) with the arrival times it chooses, as the track would: with
// arrivals in the future, hold's timer is hours away and only arrivals and
// the subgroup's end release a held object, so what each write carries
// does not depend on timing.
type holdRig struct {
	t     *testing.T
	ctx   context.Context
	s     *Session
	sv    *servedSubscription
	str   *recordStream
	holds chan holdReport // ObserveHold's calls
	next  uint64          // the next object ID
}

type holdReport struct {
	held    time.Duration
	objects int
}

func newHoldRig(t *testing.T, cfg Config, readers int) *holdRig {
	release := make(chan struct{})
	close(release)
	return newHoldRigReleasing(t, cfg, readers, release)
}

// newHoldRigReleasing is newHoldRig whose stream's first write returns
// once release is closed.
func newHoldRigReleasing(t *testing.T, cfg Config, readers int, release chan struct{}) *holdRig {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	str := &recordStream{entered: make(chan struct{}), release: release, closed: make(chan struct{})}
	rg := &holdRig{t: t, ctx: ctx, str: str, holds: make(chan holdReport, 100)}
	cfg.ObserveHold = func(held time.Duration, objects int) { rg.holds <- holdReport{held, objects} }
	rg.s = newSession(&recordConn{sinkConn: sinkConn{ctx: ctx}, str: str}, &cfg, false)
	name := wire.FullTrackName{Namespace: wire.Namespace{"t"}, Name: "rig"}
	track := NewTrack(name, TrackConfig{})
	rg.sv = rg.s.newServed(&wire.Subscribe{RequestID: 0, Namespace: name.Namespace, Name: name.Name, Forward: true,
		Filter: wire.Filter{Type: wire.FilterNextGroupStart}})
	rg.sv.reader, rg.sv.track = track.NewReader(ReaderFilter{}), track
	for range readers - 1 {
		track.NewReader(ReaderFilter{})
	}
	t.Cleanup(func() {
		rg.s.cancel()
		rg.sv.wg.Wait()
	})
	return rg
}

// push hands the subgroup's next object, of size bytes, arrived at at, to
// the dispatcher.
func (rg *holdRig) push(size int, at time.Time) {
	o := &Object{Group: 0, Subgroup: 0, ID: rg.next, Payload: bytes.Repeat([]byte{byte(rg.next)}, size), Received: at}
	rg.next++
	rg.sv.dispatch(Event{Kind: EventObject, Group: 0, Subgroup: 0, Object: o})
}

// end ends the subgroup, as the dispatcher does at its end event.
func (rg *holdRig) end() {
	rg.sv.streams[subgroupKey{0, 0}].finish(false, 0)
}

// waitWrites waits until the stream has n writes and returns them.
func (rg *holdRig) waitWrites(n int) [][]byte {
	rg.t.Helper()
	for {
		rg.str.mu.Lock()
		writes := slices.Clone(rg.str.writes)
		rg.str.mu.Unlock()
		if len(writes) > n {
			rg.t.Fatalf("%d writes, want %d", len(writes), n)
		}
		if len(writes) == n {
			return writes
		}
		select {
		case <-rg.ctx.Done():
			rg.t.Fatalf("%d writes, want %d", len(writes), n)
		case <-time.After(time.Millisecond):
		}
	}
}

// waitHold waits for the next write that followed a hold.
func (rg *holdRig) waitHold() holdReport {
	rg.t.Helper()
	select {
	case h := <-rg.holds:
		return h
	case <-rg.ctx.Done():
		rg.t.Fatal("no write followed a hold")
	}
	return holdReport{}
}

// noHolds fails if a write followed a hold.
func (rg *holdRig) noHolds() {
	rg.t.Helper()
	select {
	case h := <-rg.holds:
		rg.t.Fatalf("a write followed a hold of %v (%d objects); want none", h.held, h.objects)
	default:
	}
}

// checkObjects checks that the stream carries objects 0..n-1 in order,
// and the subgroup's end if ended.
func (rg *holdRig) checkObjects(n int, ended bool) {
	rg.t.Helper()
	if ended {
		select {
		case <-rg.str.closed:
		case <-rg.ctx.Done():
			rg.t.Fatal("stream not closed")
		}
	}
	rg.str.mu.Lock()
	all := bytes.Join(rg.str.writes, nil)
	rg.str.mu.Unlock()
	r, err := wire.NewStreamReader(bytes.NewReader(all), wire.StreamReaderConfig{})
	if err != nil {
		rg.t.Fatal(err)
	}
	defer r.Release()
	for id := range n {
		o, err := r.ReadObject()
		if err != nil {
			rg.t.Fatalf("object %d: %v", id, err)
		}
		if o.ID != uint64(id) || len(o.Payload) == 0 || o.Payload[0] != byte(id) {
			rg.t.Fatalf("object %d: got ID %d, %d bytes", id, o.ID, len(o.Payload))
		}
	}
	if _, err := r.ReadObject(); ended && !errors.Is(err, io.EOF) {
		rg.t.Fatalf("after the last object: %v, want io.EOF", err)
	} else if !ended && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		rg.t.Fatalf("after the last object: %v", err)
	}
}

// TestWriteCoalesceWindow: objects 1 ms apart under a 3 ms window are
// written in threes after the first two (the stream has no pace yet): the
// held object waits for the ones arriving within the window of it, and no
// later one (the next after the third would come 3.5 ms after it); a
// write's objects arrive in order; the subgroup's end releases a held
// object at once.
func TestWriteCoalesceWindow(t *testing.T) {
	const gap = time.Millisecond
	rg := newHoldRig(t, Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: 3 * gap}, 2)
	base := time.Now().Add(time.Hour) // hold's timer never ends a hold here
	at := func(i int) time.Time { return base.Add(time.Duration(i) * gap) }
	for i := range 2 {
		rg.push(100, at(i))
		rg.waitWrites(i + 1)
	}
	rg.push(100, at(2))
	waitHolding(t, rg.ctx, rg.s, rg.sv)
	rg.push(100, at(3))
	rg.push(100, at(4))
	if h := rg.waitHold(); h.objects != 3 {
		t.Fatalf("the held write carried %d objects, want 3 (those arriving within 3 ms of the held one)", h.objects)
	}
	rg.waitWrites(3)
	rg.push(100, at(5))
	waitHolding(t, rg.ctx, rg.s, rg.sv)
	rg.end() // the subgroup's last object is not kept waiting
	if h := rg.waitHold(); h.objects != 1 {
		t.Fatalf("the last write carried %d objects, want 1", h.objects)
	}
	rg.checkObjects(6, true)
	rg.waitWrites(4)
	rg.noHolds()
}

// TestWriteCoalesceNotHeld: objects are written at once, each in its own
// write, on a track whose objects come further apart than the window
// (audio, video frames), on a track with one reader, in a burst, and when the
// object's delivery deadline is less than two windows away. Each object
// is handed over only after the previous one was written, so a hold would
// keep its write waiting for an hour (and fail the test).
func TestWriteCoalesceNotHeld(t *testing.T) {
	paced := func(gap time.Duration) func(int) time.Duration {
		return func(i int) time.Duration { return time.Duration(i) * gap }
	}
	for _, tc := range []struct {
		name     string
		cfg      Config
		readers  int
		at       func(i int) time.Duration // object i's arrival
		deadline bool                      // arrivals now (the deadline counts from them), not in an hour
	}{
		{"slower than the window", Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: 3 * time.Millisecond}, 2, paced(3 * time.Millisecond), false},
		// 30 ms apart, but pairs 1 ms apart: a single short gap is
		// not a pace.
		{"slow with pairs", Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: 6 * time.Millisecond}, 2,
			func(i int) time.Duration {
				return time.Duration(i/2)*30*time.Millisecond + time.Duration(i%2)*time.Millisecond
			}, false},
		{"one reader", Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: time.Hour}, 1, paced(time.Millisecond), false},
		{"burst", Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: time.Hour}, 2, paced(burstGap / 10), false},
		{"deadline near", Config{DefaultDeliveryTimeout: 90 * time.Minute, WriteCoalesce: time.Hour}, 2, paced(time.Millisecond), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rg := newHoldRig(t, tc.cfg, tc.readers)
			base := time.Now()
			if !tc.deadline {
				base = base.Add(time.Hour)
			}
			const n = 6
			for i := range n {
				rg.push(100, base.Add(tc.at(i)))
				rg.waitWrites(i + 1)
			}
			rg.end()
			rg.checkObjects(n, true)
			rg.noHolds()
		})
	}
}

// TestWriteCoalesceBurst: a burst (objects under burstGap apart) releases
// a held object, and its own objects are not held: they go out with the
// held one or right behind it, none waiting for the window (an hour here)
// after the burst's last one.
func TestWriteCoalesceBurst(t *testing.T) {
	rg := newHoldRig(t, Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: time.Hour}, 2)
	base := time.Now().Add(time.Hour)
	for i := range 2 {
		rg.push(100, base.Add(time.Duration(i)*time.Millisecond))
		rg.waitWrites(i + 1)
	}
	rg.push(100, base.Add(2*time.Millisecond))
	waitHolding(t, rg.ctx, rg.s, rg.sv)
	const paced, burst = 3, 5
	for i := range burst {
		rg.push(100, base.Add(3*time.Millisecond+time.Duration(i)*time.Microsecond))
	}
	if h := rg.waitHold(); h.objects < 2 {
		t.Fatalf("the held write carried %d objects, want the held one and the burst's first at least", h.objects)
	}
	for {
		rg.str.mu.Lock()
		n := countObjects(t, bytes.Join(rg.str.writes, nil))
		rg.str.mu.Unlock()
		if n == paced+burst {
			break
		}
		select {
		case <-rg.ctx.Done():
			t.Fatalf("%d objects written, want %d", n, paced+burst)
		case <-time.After(time.Millisecond):
		}
	}
	rg.noHolds()
	rg.end()
	rg.checkObjects(paced+burst, true)
	rg.noHolds()
}

// TestWriteCoalesceFillsPackets: a hold ends as soon as the write fills
// its packets (fillsPackets), long before the window does: 1 KiB objects
// 2 ms apart under a 20 ms window go four to a write (4,112 bytes, three
// full packets), not three (three packets, the last a quarter full) nor
// as many as the window or coalesceBytes would take.
func TestWriteCoalesceFillsPackets(t *testing.T) {
	const gap, size = 2 * time.Millisecond, 1 << 10
	rg := newHoldRig(t, Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: 20 * time.Millisecond}, 2)
	base := time.Now().Add(time.Hour) // hold's timer never ends a hold here
	at := func(i int) time.Time { return base.Add(time.Duration(i) * gap) }
	for i := range 2 {
		rg.push(size, at(i))
		rg.waitWrites(i + 1)
	}
	for round := range 2 {
		first := 2 + 4*round
		rg.push(size, at(first))
		waitHolding(t, rg.ctx, rg.s, rg.sv)
		for i := first + 1; i < first+4; i++ {
			rg.push(size, at(i))
		}
		if h := rg.waitHold(); h.objects != 4 {
			t.Fatalf("round %d: the held write carried %d objects, want 4 (three full packets)", round, h.objects)
		}
		rg.waitWrites(3 + round)
	}
	rg.end()
	rg.checkObjects(10, true)
	rg.noHolds()
	one := int64(size + objectHeaderBytes)
	if !fillsPackets(4*one) || fillsPackets(3*one) || fillsPackets(5*one) {
		t.Errorf("fillsPackets of 3, 4 and 5 objects of %d bytes: %v, %v, %v; want false, true, false", size,
			fillsPackets(3*one), fillsPackets(4*one), fillsPackets(5*one))
	}
	const p = packetStreamBytes
	for n, want := range map[int64]bool{p: false, 2*p - p/8 - 1: false, 2*p - p/8: true, 2 * p: true, 2*p + 1: false, 3*p - p/8: true, 3*p - p/8 - 1: false} {
		if fillsPackets(n) != want {
			t.Errorf("fillsPackets(%d) = %v, want %v (packets of %d bytes)", n, !want, want, p)
		}
	}
}

// TestWriteCoalesceFullQueueNotHeld: a writer that fell behind (its first
// write blocked while four 1 KiB objects queued) writes the next object
// with the three queued behind it at once: they fill three packets
// already, so holding them for a fifth would only add latency.
func TestWriteCoalesceFullQueueNotHeld(t *testing.T) {
	const gap, size = 2 * time.Millisecond, 1 << 10
	release := make(chan struct{})
	rg := newHoldRigReleasing(t, Config{DefaultDeliveryTimeout: 10 * time.Hour, WriteCoalesce: 20 * time.Millisecond}, 2, release)
	base := time.Now().Add(time.Hour) // hold's timer never ends a hold here
	rg.push(size, base)
	select {
	case <-rg.str.entered:
	case <-rg.ctx.Done():
		t.Fatal("the first write did not start")
	}
	for i := 1; i <= 4; i++ {
		rg.push(size, base.Add(time.Duration(i)*gap))
	}
	close(release)
	writes := rg.waitWrites(2)
	if n := countObjects(t, bytes.Join(writes, nil)); n != 5 {
		t.Fatalf("%d objects written, want all 5 without a hold", n)
	}
	rg.noHolds()
	rg.end()
	rg.checkObjects(5, true)
}
