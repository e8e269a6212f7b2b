package moqtransport

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
	"go.uber.org/goleak"
)

// aheadConn is a Conn whose unidirectional streams either take every
// write at once or, for the streams stall names (by opening order, from
// 0), never take one: Write blocks until CancelWrite or the connection's
// end, as quic-go's does for a stream the peer stopped reading once its
// flow control is spent. It records the bytes inside blocked writes.
type aheadConn struct {
	sinkConn
	stall func(n int) bool

	mu       sync.Mutex
	opened   int
	blocked  int   // writes inside Write now
	inWrite  int64 // their bytes
	maxBytes int64 // the most inWrite reached
	maxCount int
	taken    atomic.Int64 // bytes taken by the streams that take
}

type aheadStream struct {
	c      *aheadConn
	stall  bool
	cancel chan struct{}
	once   sync.Once
}

func (c *aheadConn) OpenUniStreamSync(context.Context) (SendStream, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := &aheadStream{c: c, stall: c.stall(c.opened), cancel: make(chan struct{})}
	c.opened++
	return st, nil
}

func (s *aheadStream) Write(b []byte) (int, error) {
	c := s.c
	if !s.stall {
		c.taken.Add(int64(len(b)))
		return len(b), nil
	}
	c.mu.Lock()
	c.blocked++
	c.inWrite += int64(len(b))
	c.maxBytes = max(c.maxBytes, c.inWrite)
	c.maxCount = max(c.maxCount, c.blocked)
	c.mu.Unlock()
	select {
	case <-s.cancel:
	case <-c.ctx.Done():
	}
	c.mu.Lock()
	c.blocked--
	c.inWrite -= int64(len(b))
	c.mu.Unlock()
	return 0, &StreamError{Code: uint64(wire.ResetCancelled)}
}

func (s *aheadStream) Close() error                     { return nil }
func (s *aheadStream) CancelWrite(uint64)               { s.once.Do(func() { close(s.cancel) }) }
func (s *aheadStream) SetPriority(uint8)                {}
func (s *aheadStream) SetWriteDeadline(time.Time) error { return nil }

func (c *aheadConn) state() (opened, blocked int, inWrite int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.opened, c.blocked, c.inWrite
}

// serveAhead serves track to one subscription on a session over conn, and
// returns the session and a function that ends the subscription and waits
// for its delivery to end.
func serveAhead(t *testing.T, conn Conn, cfg *Config, track *Track) (*Session, func()) {
	t.Helper()
	return serveAheadOrder(t, conn, cfg, track, wire.GroupOrderAscending)
}

// serveAheadOrder is serveAhead with the subscription's group order.
func serveAheadOrder(t *testing.T, conn Conn, cfg *Config, track *Track, order wire.GroupOrder) (*Session, func()) {
	t.Helper()
	s := newSession(conn, cfg, false)
	sv := s.newServed(&wire.Subscribe{RequestID: 0, Namespace: track.name.Namespace, Name: track.name.Name,
		SubscriberPriority: DefaultPriority, GroupOrder: order, Forward: true,
		Filter: wire.Filter{Type: wire.FilterNextGroupStart}})
	sv.reader = track.NewReader(ReaderFilter{})
	sv.track = track
	done := make(chan struct{})
	go func() {
		defer close(done)
		sv.deliver()
		sv.wg.Wait()
	}()
	return s, func() {
		sv.cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("delivery did not end")
		}
		s.cancel()
	}
}

// TestWriteAheadBounded: a subscriber whose streams take nothing (a peer
// that stopped reading, its flow control spent) and a track that publishes
// 12 groups of 8 objects of 4 KiB. Every group's stream gets a writer;
// without the bound each one blocks inside the transport holding a copy of
// up to 16 KiB of objects (here ~12 × 16 KiB); with the default bound the
// blocked writes hold at most DefaultMaxWriteAhead, and the other writers
// wait holding nothing. Stream-limit abandons keep working
// (maxOpenSubgroups) and the subscription ends cleanly.
//
// A writer more urgent than every write that counts goes past the bound
// (TestWriteAheadMoreUrgentFirst). Published one group after another, in
// ascending order each new writer is less urgent than those before it and
// the bound holds exactly. Published at once, the writers reach the bound
// in the order the Go scheduler runs them: an older group's writer that
// comes after newer ones goes past it, at most one write per urgency.
func TestWriteAheadBounded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const groups, objects, size = 12, 8, 4 << 10
	maxWrite := int64(writeBufSizes[len(writeBufSizes)-1])
	for _, tc := range []struct {
		name   string
		limit  int64
		atOnce bool
		bound  int64 // for the default limit
	}{
		{"default", 0, false, DefaultMaxWriteAhead},
		{"default at once", 0, true, DefaultMaxWriteAhead + dataUrgencies*maxWrite},
		{"unbounded", -1, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			conn := &aheadConn{sinkConn: sinkConn{ctx: ctx}, stall: func(int) bool { return true }}
			track := NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"ahead"}, Name: "t"}, TrackConfig{})
			s, end := serveAhead(t, conn, &Config{MaxWriteAhead: tc.limit}, track)
			payload := make([]byte, size)
			for g := range uint64(groups) {
				writeObjects(t, track, g, objects, payload)
				if !tc.atOnce {
					waitAhead(t, "the group's writer blocked or waiting", func() bool {
						opened, blocked, _ := conn.state()
						_, waiting := s.ahead.held()
						return opened == int(g)+1 && blocked+waiting == int(g)+1
					})
				}
			}
			// Every group's stream is open and its writer either blocked in
			// the transport or waiting for write-ahead.
			var blocked int
			var inWrite int64
			waitAhead(t, "every writer blocked or waiting", func() bool {
				var opened int
				opened, blocked, inWrite = conn.state()
				_, waiting := s.ahead.held()
				return opened == groups && blocked+waiting == groups
			})
			used, waiting := s.ahead.held()
			t.Logf("%s: %d writes blocked holding %d bytes (at most %d bytes, %d writes); %d writers waiting; write-ahead counts %d",
				tc.name, blocked, inWrite, conn.maxBytes, conn.maxCount, waiting, used)
			if tc.limit == 0 {
				if conn.maxBytes > tc.bound {
					t.Errorf("blocked writes held up to %d bytes, want at most %d (DefaultMaxWriteAhead %d)", conn.maxBytes, tc.bound, DefaultMaxWriteAhead)
				}
				if used > tc.bound {
					t.Errorf("write-ahead counts %d bytes, over its bound %d", used, tc.bound)
				}
			} else if conn.maxBytes <= DefaultMaxWriteAhead {
				// The contrast: what the bound saves.
				t.Errorf("unbounded, blocked writes held only %d bytes: the test does not load the writers", conn.maxBytes)
			}
			end()
			if used, waiting := s.ahead.held(); used != 0 || waiting != 0 {
				t.Errorf("after the end, write-ahead counts %d bytes and %d waiting writers", used, waiting)
			}
		})
	}
}

// TestWriteAheadStalledStreams: streams the peer does not read (here every
// third group's) block their writes for good, with no delivery timeout to
// cut them. They must not hold up the session's other streams: each
// write that returns passes the stalled ones, which then stop counting
// against the bound. Every object of the other groups is written.
func TestWriteAheadStalledStreams(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const groups, objects, size = 9, 4, 16 << 10 // one write per object: the bound's half
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := &aheadConn{sinkConn: sinkConn{ctx: ctx}, stall: func(n int) bool { return n%3 == 0 }}
	track := NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"ahead"}, Name: "stalled"}, TrackConfig{})
	s, end := serveAhead(t, conn, &Config{}, track)
	defer end()
	payload := make([]byte, size)
	var want int64
	for g := range uint64(groups) {
		writeObjects(t, track, g, objects, payload)
		if g%3 != 0 {
			want += objects * size
		}
		// The next group starts once this one is written or stalled, so
		// the stalled streams' writes come in between the others'.
		waitAhead(t, "the group written or stalled", func() bool {
			opened, blocked, _ := conn.state()
			return opened == int(g)+1 && conn.taken.Load() >= want && blocked == int(g)/3+1
		})
	}
	used, waiting := s.ahead.held()
	_, blocked, inWrite := conn.state()
	t.Logf("%d bytes taken; %d stalled writes hold %d bytes; write-ahead counts %d, %d waiting", conn.taken.Load(), blocked, inWrite, used, waiting)
	if blocked < 3 {
		t.Errorf("%d stalled writes, want 3", blocked)
	}
}

// waitAhead polls cond until it holds, for at most 10 s.
// writeObjects opens subgroup 0 of group g and writes objects 0..n-1 of
// payload to it; it returns the subgroup's writer.
func writeObjects(t *testing.T, track *Track, g uint64, n int, payload []byte) *SubgroupWriter {
	t.Helper()
	w, err := track.OpenSubgroup(g, 0, SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for id := range uint64(n) {
		if err := w.WriteObject(id, payload, nil); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func waitAhead(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestWriteAheadLessUrgentStalled: the peer reads the oldest group's
// stream (the most urgent, ascending order) but never the two newer ones,
// whose blocked writes fill the bound. Nothing at least as urgent returns
// to pass them, so the oldest group's next object would wait for write-ahead
// forever (until a delivery timeout or a backlog abandon dropped the very
// group the peer reads). It waits a probe timeout, then goes over the bound.
func TestWriteAheadLessUrgentStalled(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const size = 16 << 10 // one write per object: the bound's half
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := &aheadConn{sinkConn: sinkConn{ctx: ctx}, stall: func(n int) bool { return n > 0 }}
	track := NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"ahead"}, Name: "urgent"}, TrackConfig{})
	s, end := serveAhead(t, conn, &Config{}, track)
	defer end()
	payload := make([]byte, size)
	oldest := writeObjects(t, track, 0, 1, payload)
	waitAhead(t, "the oldest group's first object", func() bool { return conn.taken.Load() >= size })
	for g := uint64(1); g <= 2; g++ {
		writeObjects(t, track, g, 1, payload)
	}
	waitAhead(t, "the newer groups' writes to block", func() bool {
		_, blocked, _ := conn.state()
		used, _ := s.ahead.held()
		return blocked == 2 && used >= s.ahead.limit
	})
	if err := oldest.WriteObject(1, payload, nil); err != nil {
		t.Fatal(err)
	}
	waitAhead(t, "the oldest group's next object past the full bound", func() bool { return conn.taken.Load() >= 2*size })
}

// BenchmarkWriteAheadGrant: one release that grants the next waiting
// writer, with n writers of mixed urgencies in line (a relay-to-relay
// session carrying many tracks, each with a stream waiting). The released
// stream lines up again, so the line keeps its length.
func BenchmarkWriteAheadGrant(b *testing.B) {
	for _, n := range []int{1, 16, 256, 1024} {
		b.Run(fmt.Sprintf("waiting=%d", n), func(b *testing.B) {
			const size = 4 << 10
			w := &writeAhead{limit: size} // one write at a time
			streams := make([]*outStream, n+1)
			for i := range streams {
				st := &outStream{wake: make(chan struct{}, 1)}
				st.due.Store(int32(1+i%dataUrgencies) + 1)
				streams[i] = st
			}
			w.mu.Lock()
			w.admitLocked(streams[0], size)
			for _, st := range streams[1:] {
				w.enqueueLocked(st, size)
			}
			w.mu.Unlock()
			cur := streams[0]
			b.ReportAllocs()
			for b.Loop() {
				w.release(cur)
				w.mu.Lock()
				next := w.active[0]
				w.enqueueLocked(cur, size)
				w.mu.Unlock()
				cur = next
			}
		})
	}
}

// TestWriteAheadLineOrder: the line of writers waiting for write-ahead,
// under random line-ups, give-ups (abandon, deadline, patience), returned
// writes and rankings that change streams' urgencies (waiting ones and
// ones writing), admits exactly the streams a scan picks: at each return
// and each ranking, while the line's head (the most urgent as ranked now,
// then the one that has waited longest) fits the bound or is more urgent
// than every write in progress, it goes. A ranking that makes a waiting
// stream more urgent than every write in progress admits it at once.
func TestWriteAheadLineOrder(t *testing.T) {
	const streams, steps, size = 40, 20000, 4 << 10
	rng := rand.New(rand.NewPCG(12, 13))
	sv := &servedSubscription{s: &Session{}}
	w := &sv.s.ahead
	w.limit = size // one write fits: more go only past the bound
	all := make([]*outStream, streams)
	for i := range all {
		all[i] = &outStream{sv: sv, wake: make(chan struct{}, 1)}
		if i%5 != 0 { // the others not ranked yet: the least urgent
			all[i].due.Store(int32(1+rng.IntN(dataUrgencies)) + 1)
		}
	}
	waiting := map[*outStream]bool{}
	active := map[*outStream]bool{all[0]: true}
	w.mu.Lock()
	w.admitLocked(all[0], size)
	w.mu.Unlock()
	// expect moves the streams a scan admits from waiting to active. It
	// runs before the operation it predicts: an admission renumbers the
	// stream's aheadSeq.
	expect := func() {
		for len(waiting) > 0 {
			var head *outStream
			for o := range waiting {
				if head == nil || urgencyOf(o) < urgencyOf(head) || (urgencyOf(o) == urgencyOf(head) && o.aheadSeq < head.aheadSeq) {
					head = o
				}
			}
			more := len(active) == 0
			if !more {
				more = true
				for o := range active {
					if urgencyOf(o) <= urgencyOf(head) {
						more = false
					}
				}
			}
			if !more {
				return
			}
			delete(waiting, head)
			active[head] = true
		}
	}
	check := func(step int, what string) {
		t.Helper()
		w.mu.Lock()
		defer w.mu.Unlock()
		got := map[*outStream]bool{}
		for _, o := range w.active {
			got[o] = true
		}
		if len(got) != len(active) || len(w.active) != len(active) {
			t.Fatalf("step %d (%s): %d writes admitted, want %d", step, what, len(w.active), len(active))
		}
		for o := range active {
			if !got[o] {
				t.Fatalf("step %d (%s): a stream of urgency %d is not admitted; the scan admits it", step, what, urgencyOf(o))
			}
			if o.aheadWaiting.Load() {
				t.Fatalf("step %d (%s): an admitted stream is still marked waiting", step, what)
			}
		}
		if len(w.waiting) != len(waiting) {
			t.Fatalf("step %d (%s): %d in line, want %d", step, what, len(w.waiting), len(waiting))
		}
		if w.used != int64(size*len(active)) {
			t.Fatalf("step %d (%s): %d bytes counted, want %d", step, what, w.used, size*len(active))
		}
		if len(active) == 0 && len(waiting) > 0 {
			t.Fatalf("step %d (%s): %d streams wait with no write admitted", step, what, len(waiting))
		}
	}
	grants, rankGrants := 0, 0
	for step := range steps {
		st := all[rng.IntN(streams)]
		switch op := rng.IntN(10); {
		case op < 4 && !active[st] && !waiting[st]:
			// As acquire: admitted at once when nothing is in progress,
			// or when st is more urgent than every write in progress and
			// every waiting stream; else in line.
			now := len(active) == 0
			if !now {
				now = true
				for o := range active {
					if urgencyOf(o) <= urgencyOf(st) {
						now = false
					}
				}
				for o := range waiting {
					if urgencyOf(o) <= urgencyOf(st) {
						now = false
					}
				}
			}
			w.mu.Lock()
			if w.admitsNowLocked(st, size) != now {
				t.Fatalf("step %d: acquire would admit a stream of urgency %d at once: %v; the model says %v", step, urgencyOf(st), !now, now)
			}
			if now {
				w.admitLocked(st, size)
				active[st] = true
			} else {
				w.enqueueLocked(st, size)
				waiting[st] = true
			}
			w.mu.Unlock()
			check(step, "line-up")
		case op < 7:
			// A ranking changes st's urgency, whether it waits, writes
			// or neither.
			st.due.Store(int32(1+rng.IntN(dataUrgencies)) + 1)
			before := len(active)
			expect()
			setUrgenciesDue([]*outStream{st})
			rankGrants += len(active) - before
			check(step, "ranking")
		case op < 8 && waiting[st]:
			w.mu.Lock()
			w.leaveLocked(st)
			w.mu.Unlock()
			delete(waiting, st)
			check(step, "give-up")
		case op < 10 && len(active) > 0:
			var done *outStream
			for o := range active {
				if done == nil || o.aheadSeq < done.aheadSeq {
					done = o // the oldest write returns
				}
			}
			before := len(active)
			delete(active, done)
			expect()
			w.release(done)
			grants += len(active) - before + 1
			check(step, "return")
		}
	}
	if grants < steps/10 || rankGrants < steps/100 {
		t.Errorf("%d grants at returns and %d at rankings in %d steps: the test does not exercise the line", grants, rankGrants, steps)
	}
}

// slowRTTConn reports a long RTT: a writer's patience (a probe timeout)
// outlasts the test, so what goes past the bound goes by the urgency rule.
type slowRTTConn struct{ *aheadConn }

func (slowRTTConn) RTT() (time.Duration, time.Duration) { return time.Hour, 0 }

// TestWriteAheadMoreUrgentFirst: in descending group order, the writes of
// two older groups fill the bound and do not return (a slow link: the
// transport sends them only as fast as it carries them, here never). A new
// group opens, the most urgent stream of the session: its first object
// must reach the transport at once, not wait for the less urgent writes to
// return, which the transport sends after it anyway. Held back, it waited
// hundreds of milliseconds on a slow link and missed its delivery timeout
// (TestLiveSlowViewerWithDeliveryTimeout's lost key frames); here it would
// wait for the writer's patience, an hour.
func TestWriteAheadMoreUrgentFirst(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	const size = 16 << 10 // one write per object: the bound's half
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conn := &aheadConn{sinkConn: sinkConn{ctx: ctx}, stall: func(n int) bool { return n < 2 }}
	track := NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"ahead"}, Name: "newest"}, TrackConfig{})
	s, end := serveAheadOrder(t, slowRTTConn{conn}, &Config{}, track, wire.GroupOrderDescending)
	defer end()
	payload := make([]byte, size)
	for g := uint64(0); g <= 1; g++ {
		writeObjects(t, track, g, 1, payload)
		waitAhead(t, "the older group's write to block", func() bool {
			_, blocked, _ := conn.state()
			return blocked == int(g)+1
		})
	}
	if used, _ := s.ahead.held(); used < s.ahead.limit {
		t.Fatalf("the older groups' writes count %d bytes, not the whole bound %d: the test does not fill it", used, s.ahead.limit)
	}
	writeObjects(t, track, 2, 1, payload)
	waitAhead(t, "the newest group's first object past the full bound", func() bool { return conn.taken.Load() >= size })
}
