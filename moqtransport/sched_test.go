package moqtransport

import (
	"context"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
)

// prioStream is a SendStream that records its priority.
type prioStream struct {
	SendStream
	prio int
}

func (s *prioStream) SetPriority(p uint8) { s.prio = int(p) }

// TestSchedRanks: §7's order (subscriber priority, publisher priority,
// group order) mapped onto urgencies 1-7, re-ranked as streams come and
// go.
func TestSchedRanks(t *testing.T) {
	sess := &Session{} // its scheduler ranks the streams of all its subscriptions
	p := &sess.sched
	sub := func(prio uint8, order wire.GroupOrder) *servedSubscription {
		sv := &servedSubscription{s: sess, order: order}
		sv.subPrio.Store(uint32(prio))
		return sv
	}
	open := func(sv *servedSubscription, group, subgroup uint64, pub uint8) (*outStream, *prioStream) {
		ps := &prioStream{prio: -1}
		st := &outStream{sv: sv, key: subgroupKey{group, subgroup}, pubPrio: pub, str: ps, urgency: -1, applied: -1}
		if victims := p.add(st); len(victims) > 0 {
			t.Fatalf("opening group %d abandons %d streams", group, len(victims))
		}
		return st, ps
	}
	urgency := func(ps *prioStream) int { return ps.prio / 32 }

	desc := sub(128, wire.GroupOrderDescending)
	_, g1 := open(desc, 1, 0, 128)
	if urgency(g1) != 1 {
		t.Fatalf("the only stream has urgency %d, want 1", urgency(g1))
	}
	// A newer group opens: descending order puts it first and demotes g1.
	_, g2 := open(desc, 2, 0, 128)
	if urgency(g2) != 1 || urgency(g1) != 2 {
		t.Fatalf("descending: group 2 at %d, group 1 at %d; want 1 and 2", urgency(g2), urgency(g1))
	}
	// A lower publisher priority (higher number) goes after every group of
	// the better one.
	_, low := open(desc, 3, 1, 200)
	if urgency(low) != 3 {
		t.Fatalf("publisher priority 200 at urgency %d, want 3", urgency(low))
	}
	// Ascending order at a better subscriber priority comes first, oldest
	// group first.
	asc := sub(10, wire.GroupOrderAscending)
	s5, a5 := open(asc, 5, 0, 128)
	s6, a6 := open(asc, 6, 0, 128)
	if urgency(a5) != 1 || urgency(a6) != 2 || urgency(g2) != 3 || urgency(g1) != 4 || urgency(low) != 5 {
		t.Fatalf("urgencies a5 %d a6 %d g2 %d g1 %d low %d, want 1 2 3 4 5", urgency(a5), urgency(a6), urgency(g2), urgency(g1), urgency(low))
	}
	// More ranks than urgencies: the rest share urgency 7.
	var more []*prioStream
	ascStreams := []*outStream{s5, s6}
	for g := uint64(7); g < 12; g++ {
		st, ps := open(asc, g, 0, 128)
		more = append(more, ps)
		ascStreams = append(ascStreams, st)
	}
	// Seven ranks of the better subscription now take urgencies 1-7;
	// the worse subscription's streams share urgency 7 after them.
	for i, ps := range append(more[len(more)-1:], g2, g1, low) {
		if urgency(ps) != 7 {
			t.Fatalf("late rank %d got urgency %d, want 7", i, urgency(ps))
		}
	}
	// The better subscription's streams end: the other one moves up.
	for _, st := range ascStreams {
		p.remove(st)
	}
	if urgency(g2) != 1 || urgency(g1) != 2 || urgency(low) != 3 {
		t.Fatalf("after re-ranking: g2 %d g1 %d low %d, want 1 2 3", urgency(g2), urgency(g1), urgency(low))
	}
}

// referenceUrgencies ranks every stream of p from scratch, as §7 orders
// them: sorted by subscriber priority, publisher priority and the group's
// position in its subscription's group order, each distinct key one rank,
// urgency 1 + rank up to 7.
func referenceUrgencies(p *prioSched) map[*outStream]int8 {
	type keyed struct {
		st  *outStream
		key rankKey
	}
	var all []keyed
	for sv, list := range p.subs {
		var groups []uint64
		for _, st := range list {
			groups = append(groups, st.key.group)
		}
		slices.Sort(groups)
		groups = slices.Compact(groups)
		for _, st := range list {
			i, _ := slices.BinarySearch(groups, st.key.group)
			if sv.order == wire.GroupOrderDescending {
				i = len(groups) - 1 - i
			}
			all = append(all, keyed{st, rankKey{sub: uint8(sv.subPrio.Load()), pub: st.pubPrio, ordinal: i}})
		}
	}
	slices.SortFunc(all, func(a, b keyed) int { return a.key.compare(b.key) })
	want := map[*outStream]int8{}
	r := 0
	for i, k := range all {
		if i > 0 && all[i-1].key.compare(k.key) != 0 {
			r++
		}
		want[k.st] = int8(1 + min(r, dataUrgencies-1))
	}
	return want
}

// TestSchedRanksIncremental: after every stream that opens or ends and
// every subscriber priority change, in a random sequence over several
// subscriptions, each stream has, and has set on its transport stream, the
// urgency a ranking from scratch gives it.
func TestSchedRanksIncremental(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 34))
	sess := &Session{}
	p := &sess.sched
	var svs []*servedSubscription
	next := map[*servedSubscription]uint64{}
	for i := range 6 {
		sv := &servedSubscription{s: sess, order: []wire.GroupOrder{wire.GroupOrderAscending, wire.GroupOrderDescending}[i%2]}
		sv.subPrio.Store(uint32(rng.IntN(3) * 64))
		svs = append(svs, sv)
	}
	var open []*outStream
	for step := range 3000 {
		sv := svs[rng.IntN(len(svs))]
		switch op := rng.IntN(10); {
		case op < 5 && len(p.subs[sv]) < maxOpenSubgroups:
			g := next[sv] + uint64(rng.IntN(2))
			next[sv] = g + uint64(rng.IntN(2))
			st := &outStream{sv: sv, key: subgroupKey{g, uint64(rng.IntN(2))}, pubPrio: uint8(rng.IntN(3) * 100),
				str: &prioStream{prio: -1}, urgency: -1, applied: -1}
			if victims := p.add(st); len(victims) > 0 {
				t.Fatalf("step %d: %d victims below the bound", step, len(victims))
			}
			open = append(open, st)
		case op < 9 && len(open) > 0:
			i := rng.IntN(len(open))
			p.remove(open[i])
			open = slices.Delete(open, i, i+1)
		default:
			sv.subPrio.Store(uint32(rng.IntN(3) * 64))
			p.rerank(sv)
		}
		want := referenceUrgencies(p)
		if len(want) != len(open) {
			t.Fatalf("step %d: %d streams ranked, %d open", step, len(want), len(open))
		}
		for _, st := range open {
			if got := st.str.(*prioStream).prio / 32; st.urgency != want[st] || got != int(want[st]) {
				t.Fatalf("step %d: stream group %d subgroup %d: urgency %d, set %d; want %d", step, st.key.group, st.key.subgroup, st.urgency, got, want[st])
			}
		}
	}
}

// TestWriteBufClasses: a batched write's buffer is the smallest class that
// holds it, and goes back to the pool of its class.
func TestWriteBufClasses(t *testing.T) {
	for _, tc := range []struct{ n, cap int }{
		{100, 2 << 10}, {2 << 10, 2 << 10}, {4<<10 + writeBufHeadroom, 4<<10 + writeBufHeadroom},
		{4<<10 + writeBufHeadroom + 1, 8<<10 + writeBufHeadroom}, {maxBatchedPayload + writeBufHeadroom, maxBatchedPayload + writeBufHeadroom},
	} {
		p := getWriteBuf(writeBufClass(tc.n))
		// A class's pool may hold a buffer grown past the class (an
		// earlier test's large extensions), never one below it.
		limit := 2 * writeBufSizes[len(writeBufSizes)-1]
		for _, size := range writeBufSizes {
			if size > tc.cap {
				limit = size - 1
				break
			}
		}
		if len(*p) != 0 || cap(*p) < tc.cap || cap(*p) > limit {
			t.Errorf("getWriteBuf(%d): len %d cap %d, want 0 and %d..%d", tc.n, len(*p), cap(*p), tc.cap, limit)
		}
		*p = append(*p, 1)
		putWriteBuf(p)
	}
}

// TestFetchUrgency: a fetch stream's subscriber priority maps onto the
// data urgencies 1-7 in order, never onto the control stream's 0, whatever
// the priority, and the stream's SetPriority receives that urgency.
func TestFetchUrgency(t *testing.T) {
	prev := int8(1)
	for sub := 0; sub < 256; sub++ {
		u := fetchUrgency(uint8(sub))
		if u < 1 || u > dataUrgencies {
			t.Fatalf("fetchUrgency(%d) = %d, want 1..%d", sub, u, dataUrgencies)
		}
		if u < prev {
			t.Fatalf("fetchUrgency(%d) = %d < fetchUrgency(%d) = %d: order lost", sub, u, sub-1, prev)
		}
		prev = u
		ps := &prioStream{prio: -1}
		setUrgency(ps, u)
		if got := ps.prio / 32; got != int(u) || got == 0 {
			t.Fatalf("subscriber priority %d: stream urgency %d, want %d (not the control stream's 0)", sub, got, u)
		}
	}
	if fetchUrgency(0) != 1 || fetchUrgency(255) != dataUrgencies {
		t.Fatalf("range not used in full: %d..%d", fetchUrgency(0), fetchUrgency(255))
	}
}

// uniConn is a Conn that opens fetchStreams; the rest is not used.
type uniConn struct {
	Conn
	opened []*fetchStream
}

func (c *uniConn) OpenUniStreamSync(context.Context) (SendStream, error) {
	st := &fetchStream{prio: -1}
	c.opened = append(c.opened, st)
	return st, nil
}

// fetchStream is a SendStream that records its priority and discards its
// data.
type fetchStream struct {
	prio   int
	closed bool
}

func (s *fetchStream) Write(b []byte) (int, error) { return len(b), nil }
func (s *fetchStream) Close() error                { s.closed = true; return nil }
func (s *fetchStream) CancelWrite(uint64)          {}
func (s *fetchStream) SetPriority(p uint8)         { s.prio = int(p) }

// TestWriteFetchUrgency: the stream writeFetch opens gets its urgency from
// fetchUrgency, so a FETCH with subscriber priority 0 does not share the
// control stream's urgency 0.
func TestWriteFetchUrgency(t *testing.T) {
	c := &uniConn{}
	s := &Session{conn: c}
	eof := func(context.Context) (*Object, error) { return nil, io.EOF }
	for i, sub := range []uint8{0, 31, 32, 128, 255} {
		if err := s.writeFetch(context.Background(), context.Background(), &wire.Fetch{RequestID: uint64(2 * i), SubscriberPriority: sub}, eof); err != nil {
			t.Fatalf("writeFetch: %v", err)
		}
		st := c.opened[i]
		if !st.closed {
			t.Errorf("subscriber priority %d: the fetch stream was not closed", sub)
		}
		if st.prio < 0 || st.prio/32 != int(fetchUrgency(sub)) || st.prio/32 == 0 {
			t.Errorf("subscriber priority %d: SetPriority(%d), urgency %d; want urgency %d, never 0", sub, st.prio, st.prio/32, fetchUrgency(sub))
		}
	}
}

// TestWriteFetchStopsWhenEnded: once the fetch's ctx ends (here as
// EndFetch does, whose reset waits a probe timeout on a stream that
// cannot mark its data reliable), writeFetch asks next for no more
// objects, even from a next that ignores ctx.
func TestWriteFetchStopsWhenEnded(t *testing.T) {
	c := &uniConn{}
	s := &Session{conn: c}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	calls := 0
	next := func(context.Context) (*Object, error) {
		calls++
		if calls > 50 {
			return nil, io.EOF
		}
		if calls == 3 {
			cancel(&RequestError{Message: wire.TypeFetchError})
		}
		return &Object{Group: 0, ID: uint64(calls), Payload: []byte("x")}, nil
	}
	if err := s.writeFetch(ctx, context.Background(), &wire.Fetch{RequestID: 0}, next); err == nil {
		t.Error("writeFetch of an ended fetch: nil error")
	}
	if calls != 3 {
		t.Errorf("next called %d times, want 3: objects went on after the fetch ended", calls)
	}
	if c.opened[0].closed {
		t.Error("the ended fetch's stream was closed, not reset")
	}
}

// TestSchedSetOrder: a PUBLISH_OK's group order overwrites the PUBLISH's
// (§9.14), and the streams already open are re-ranked for it (applyPublishOK
// kept the PUBLISH's order: a subscriber asking for descending got the
// oldest group first).
func TestSchedSetOrder(t *testing.T) {
	sess := &Session{}
	p := &sess.sched
	sv := &servedSubscription{s: sess, order: wire.GroupOrderAscending}
	sv.subPrio.Store(128)
	var ps []*prioStream
	for g := uint64(1); g <= 3; g++ {
		s := &prioStream{prio: -1}
		p.add(&outStream{sv: sv, key: subgroupKey{g, 0}, pubPrio: 128, str: s, urgency: -1, applied: -1})
		ps = append(ps, s)
	}
	urgencies := func() []int { return []int{ps[0].prio / 32, ps[1].prio / 32, ps[2].prio / 32} }
	if u := urgencies(); !slices.Equal(u, []int{1, 2, 3}) {
		t.Fatalf("ascending: groups 1-3 at urgencies %v, want [1 2 3]", u)
	}
	p.setOrder(sv, wire.GroupOrderDescending)
	if u := urgencies(); !slices.Equal(u, []int{3, 2, 1}) {
		t.Fatalf("after PUBLISH_OK chose descending: groups 1-3 at urgencies %v, want [3 2 1]", u)
	}
}
