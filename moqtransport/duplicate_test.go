package moqtransport_test

import (
	"slices"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// subgroupStream encodes a subgroup stream of group 0, subgroup 0 of alias
// carrying objects ids, each with the payload "p<id>".
func subgroupStream(t *testing.T, alias uint64, ids ...uint64) []byte {
	t.Helper()
	h := wire.SubgroupHeader{TrackAlias: alias}
	b, err := wire.AppendSubgroupHeader(nil, &h)
	if err != nil {
		t.Fatal(err)
	}
	st := wire.NewSubgroupState(h)
	for _, id := range ids {
		p := []byte{'p', '0' + byte(id)}
		if b, err = st.AppendObject(b, &wire.ObjectHeader{ID: id, PayloadLength: uint64(len(p))}); err != nil {
			t.Fatal(err)
		}
		b = append(b, p...)
	}
	return b
}

// A publisher sends subgroup {0, 0} again on a second stream (§2.3, after
// a reset): the subscriber's track caches and yields object 1 once, and
// the subscription goes on (an identical duplicate is no malformed track).
func TestDuplicateObjectOnSecondStream(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		rs := newHostileServer(t, scheme, moqtransport.Config{})
		rs.connect()
		sub := rs.subscribed("t", 7)
		tr := sub.Track()
		rd := tr.NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer rd.Close()
		ctx := timeout(t)
		var got []uint64
		// next reads the reader's objects up to object id.
		next := func(id uint64) {
			t.Helper()
			for {
				ev, err := rd.Next(ctx)
				if err != nil {
					t.Fatalf("Next: %v (objects so far %v)", err, got)
				}
				if ev.Kind == moqtransport.EventObject {
					got = append(got, ev.Object.ID)
					if ev.Object.ID == id {
						return
					}
				}
			}
		}
		finishStream(t, openUni(t, rs.conn, subgroupStream(t, 7, 0, 1)))
		next(1)
		finishStream(t, openUni(t, rs.conn, subgroupStream(t, 7, 1, 2)))
		next(2) // written after the duplicate, on the same stream
		if !slices.Equal(got, []uint64{0, 1, 2}) {
			t.Errorf("the reader got objects %v, want [0 1 2]", got)
		}
		var cached []uint64
		for _, o := range tr.Cache().Objects(0) {
			cached = append(cached, o.ID)
		}
		if !slices.Equal(cached, []uint64{0, 1, 2}) {
			t.Errorf("the cache holds objects %v, want [0 1 2]", cached)
		}
		if err := tr.Err(); err != nil || tr.Closed() {
			t.Errorf("the track ended (%v): an identical duplicate is no malformed track", err)
		}
	})
}
