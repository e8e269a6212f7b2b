package moqtransport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// subgroup writes objects ids (payload "g/id") as subgroup sg of group g,
// then ends it: with FIN (end "fin"), a reset (end "reset") or not at all
// (end "open").
func subgroup(t *testing.T, tr *moqtransport.Track, g, sg uint64, eog bool, end string, ids ...uint64) {
	t.Helper()
	w, err := tr.OpenSubgroup(g, sg, moqtransport.SubgroupOptions{EndOfGroup: eog})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := w.WriteObject(id, fmt.Appendf(nil, "%d/%d", g, id), nil); err != nil {
			t.Fatal(err)
		}
	}
	switch end {
	case "fin":
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	case "reset":
		w.Abort(uint64(wire.ResetDeliveryTimeout))
	}
}

// gapExt is an extension block with a Prior Group or Object ID Gap.
func gapExt(t *testing.T, ext, gap uint64) moqtransport.Extensions {
	t.Helper()
	e, err := wire.BuildExtensions(wire.KeyValue{Type: ext, Value: gap})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// fetched reads a FETCH answer's object locations.
func fetched(t *testing.T, resp *moqtransport.FetchResponse) []string {
	t.Helper()
	var got []string
	for {
		o, err := resp.Next(timeout(t))
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d/%d", o.Group, o.ID))
	}
}

// TestFetchFromRelayedTrack: a relay's copy of a track answers a FETCH from
// its cache only when the cache knows every object of the range
// (FetchFromRelayedTrack); otherwise UNKNOWN_STATUS_IN_RANGE, which a relay
// forwards upstream. FetchFromTrack, for a cache that is the only source,
// answers what it holds. Subgroup streams arrive independently: an object
// ID the cache lacks may be on a late or reset stream, and a group's end
// is known only from an End of Group object or a FIN'd subgroup that
// declared End of Group.
func TestFetchFromRelayedTrack(t *testing.T) {
	whole := func(from, to uint64) *moqtransport.FetchRequest { // groups from..to
		return &moqtransport.FetchRequest{Start: wire.Location{Group: from}, End: wire.Location{Group: to}}
	}
	for _, c := range []struct {
		name  string
		write func(t *testing.T, tr *moqtransport.Track)
		req   *moqtransport.FetchRequest
		known []string // FetchFromRelayedTrack's answer; nil: UNKNOWN_STATUS_IN_RANGE
		held  []string // FetchFromTrack's
	}{{
		name: "a FIN'd subgroup that declared End of Group",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "fin", 0, 1)
			subgroup(t, tr, 1, 0, true, "fin", 0)
		},
		req: whole(0, 1), known: []string{"0/0", "0/1", "1/0"}, held: []string{"0/0", "0/1", "1/0"},
	}, {
		name: "a group with no end: its second subgroup may be on its way",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, false, "fin", 0, 1)
			subgroup(t, tr, 1, 0, true, "fin", 0)
		},
		req: whole(0, 1), held: []string{"0/0", "0/1", "1/0"},
	}, {
		name: "a missing object between two subgroups' objects",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, false, "fin", 0, 2)
			subgroup(t, tr, 0, 1, true, "fin", 3) // object 1's subgroup is late
		},
		req: whole(0, 0), held: []string{"0/0", "0/2", "0/3"},
	}, {
		name: "interleaved subgroups, all there",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 1, true, "fin", 1, 3)
			subgroup(t, tr, 0, 0, false, "fin", 0, 2)
		},
		req: whole(0, 0), known: []string{"0/0", "0/1", "0/2", "0/3"}, held: []string{"0/0", "0/1", "0/2", "0/3"},
	}, {
		name: "a reset subgroup that declared End of Group tells no end",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "reset", 0, 1)
			subgroup(t, tr, 1, 0, true, "fin", 0)
		},
		req: whole(0, 1), held: []string{"0/0", "0/1", "1/0"},
	}, {
		name: "the objects a reset subgroup delivered are known",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "reset", 0, 1)
			subgroup(t, tr, 1, 0, true, "fin", 0)
		},
		req:   &moqtransport.FetchRequest{End: wire.Location{Group: 0, Object: 2}},
		known: []string{"0/0", "0/1"}, held: []string{"0/0", "0/1"},
	}, {
		name: "an End of Group object",
		write: func(t *testing.T, tr *moqtransport.Track) {
			w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
			_ = w.WriteObject(0, []byte("x"), nil)
			_ = w.WriteStatus(1, moqtransport.StatusEndOfGroup, nil)
			subgroup(t, tr, 1, 0, true, "fin", 0)
		},
		req: whole(0, 1), known: []string{"0/0", "0/1", "1/0"}, held: []string{"0/0", "0/1", "1/0"},
	}, {
		name: "a gap in object IDs is not taken for objects that do not exist",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "fin", 0, 2)
		},
		req: whole(0, 0), held: []string{"0/0", "0/2"},
	}, {
		name: "an object past a declared end",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "fin", 0, 1)
			subgroup(t, tr, 0, 1, false, "fin", 5)
		},
		req: whole(0, 0), held: []string{"0/0", "0/1", "0/5"},
	}, {
		name: "two subgroups that declare different ends",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "fin", 0, 1)
			subgroup(t, tr, 0, 2, true, "fin", 2, 3)
			subgroup(t, tr, 1, 0, true, "fin", 0)
		},
		req: whole(0, 1), held: []string{"0/0", "0/1", "0/2", "0/3", "1/0"},
	}, {
		name: "a missing group may be late, not nonexistent",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "fin", 0)
			subgroup(t, tr, 2, 0, true, "fin", 0)
		},
		req: whole(0, 2), held: []string{"0/0", "2/0"},
	}, {
		name: "the group being written, up to the largest location (a joining FETCH)",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "fin", 0, 1)
			subgroup(t, tr, 1, 0, true, "open", 0, 1, 2)
		},
		req:   &moqtransport.FetchRequest{Start: wire.Location{Group: 0}, End: wire.Location{Group: 1, Object: 3}},
		known: []string{"0/0", "0/1", "1/0", "1/1", "1/2"}, held: []string{"0/0", "0/1", "1/0", "1/1", "1/2"},
	}, {
		name: "past the largest location: the FETCH_OK ends there",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 1, 0, false, "open", 0, 1)
		},
		req: whole(1, 5), known: []string{"1/0", "1/1"}, held: []string{"1/0", "1/1"},
	}, {
		name: "datagrams with and without the End Of Group bit",
		write: func(t *testing.T, tr *moqtransport.Track) {
			_ = tr.WriteDatagram(moqtransport.Object{Group: 0, ID: 0, Payload: []byte("x")})
			_ = tr.WriteDatagram(moqtransport.Object{Group: 0, ID: 1, Payload: []byte("x"), EndOfGroup: true})
			_ = tr.WriteDatagram(moqtransport.Object{Group: 1, ID: 0, Payload: []byte("x")})
			_ = tr.WriteDatagram(moqtransport.Object{Group: 2, ID: 0, Payload: []byte("x")})
		},
		req: whole(0, 1), held: []string{"0/0", "0/1", "1/0"},
	}, {
		name: "a datagram with the End Of Group bit ends its group",
		write: func(t *testing.T, tr *moqtransport.Track) {
			_ = tr.WriteDatagram(moqtransport.Object{Group: 0, ID: 0, Payload: []byte("x")})
			_ = tr.WriteDatagram(moqtransport.Object{Group: 0, ID: 1, Payload: []byte("x"), EndOfGroup: true})
			_ = tr.WriteDatagram(moqtransport.Object{Group: 1, ID: 0, Payload: []byte("x")})
		},
		req: whole(0, 0), known: []string{"0/0", "0/1"}, held: []string{"0/0", "0/1"},
	}, {
		name: "object IDs a Prior Object ID Gap declares nonexistent",
		write: func(t *testing.T, tr *moqtransport.Track) {
			w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
			_ = w.WriteObject(0, []byte("x"), nil)
			_ = w.WriteObject(3, []byte("x"), gapExt(t, wire.ExtPriorObjectIDGap, 2)) // 1 and 2 do not exist
			_ = w.Close()
		},
		req: whole(0, 0), known: []string{"0/0", "0/3"}, held: []string{"0/0", "0/3"},
	}, {
		name: "a Prior Object ID Gap too short",
		write: func(t *testing.T, tr *moqtransport.Track) {
			w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
			_ = w.WriteObject(0, []byte("x"), nil)
			_ = w.WriteObject(3, []byte("x"), gapExt(t, wire.ExtPriorObjectIDGap, 1)) // 1 may exist
			_ = w.Close()
		},
		req: whole(0, 0), held: []string{"0/0", "0/3"},
	}, {
		name: "groups a Prior Group ID Gap declares nonexistent",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "fin", 0)
			w, _ := tr.OpenSubgroup(3, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
			_ = w.WriteObject(0, []byte("x"), gapExt(t, wire.ExtPriorGroupIDGap, 2)) // 1 and 2 do not exist
			_ = w.Close()
		},
		req: whole(0, 3), known: []string{"0/0", "3/0"}, held: []string{"0/0", "3/0"},
	}, {
		name: "a Prior Group ID Gap too short",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "fin", 0)
			w, _ := tr.OpenSubgroup(3, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
			_ = w.WriteObject(0, []byte("x"), gapExt(t, wire.ExtPriorGroupIDGap, 1)) // 1 may exist
			_ = w.Close()
		},
		req: whole(0, 3), held: []string{"0/0", "3/0"},
	}, {
		name: "two objects of a group declaring different Prior Group ID Gaps",
		write: func(t *testing.T, tr *moqtransport.Track) {
			subgroup(t, tr, 0, 0, true, "fin", 0)
			w, _ := tr.OpenSubgroup(3, 0, moqtransport.SubgroupOptions{})
			_ = w.WriteObject(0, []byte("x"), gapExt(t, wire.ExtPriorGroupIDGap, 2))
			_ = w.Close()
			w, _ = tr.OpenSubgroup(3, 1, moqtransport.SubgroupOptions{EndOfGroup: true})
			_ = w.WriteObject(1, []byte("x"), gapExt(t, wire.ExtPriorGroupIDGap, 1)) // malformed (§11.1)
			_ = w.Close()
		},
		req: whole(0, 3), held: []string{"0/0", "3/0", "3/1"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"known"}, Name: "t"}, moqtransport.TrackConfig{})
			c.write(t, tr)
			resp, err := moqtransport.FetchFromRelayedTrack(tr, c.req)
			switch {
			case c.known == nil && !errors.Is(err, moqtransport.FetchError(wire.FetchUnknownStatusInRange, "")):
				t.Errorf("FetchFromRelayedTrack: %v, want UNKNOWN_STATUS_IN_RANGE", err)
			case c.known != nil && err != nil:
				t.Errorf("FetchFromRelayedTrack: %v, want %v", err, c.known)
			case c.known != nil:
				if got := fetched(t, resp); !slices.Equal(got, c.known) {
					t.Errorf("FetchFromRelayedTrack: %v, want %v", got, c.known)
				}
			}
			resp, err = moqtransport.FetchFromTrack(tr, c.req)
			if err != nil {
				t.Fatalf("FetchFromTrack: %v", err)
			}
			if got := fetched(t, resp); !slices.Equal(got, c.held) {
				t.Errorf("FetchFromTrack: %v, want %v", got, c.held)
			}
		})
	}
}

// A relay's copy of a track answers a FETCH from its cache only for a range
// it knows complete: here group 0's second subgroup has not arrived, so
// the relay asks upstream; the group being written is served up to the
// largest location.
func ExampleFetchFromRelayedTrack() {
	tr := moqtransport.NewTrack(moqtransport.FullTrackName{Namespace: moqtransport.Namespace{"live"}, Name: "video"}, moqtransport.TrackConfig{})
	// Group 0: subgroup 0 carries objects 0 and 1; its other subgroup, with
	// the group's last objects, is still on its way.
	w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	_ = w.WriteObject(0, []byte("key"), nil)
	_ = w.WriteObject(1, []byte("delta"), nil)
	_ = w.Close()
	// Group 1 is being written on one subgroup that will end the group.
	w, _ = tr.OpenSubgroup(1, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
	_ = w.WriteObject(0, []byte("key"), nil)
	_ = w.WriteObject(1, []byte("delta"), nil)

	_, err := moqtransport.FetchFromRelayedTrack(tr, &moqtransport.FetchRequest{End: moqtransport.Location{Group: 1}})
	fmt.Println("groups 0-1:", err)

	// A joining FETCH of the newest group, up to the subscription's largest
	// location {1, 1}.
	resp, _ := moqtransport.FetchFromRelayedTrack(tr, &moqtransport.FetchRequest{
		Start: moqtransport.Location{Group: 1}, End: moqtransport.Location{Group: 1, Object: 2}})
	for {
		o, err := resp.Next(context.Background())
		if err != nil {
			break
		}
		fmt.Printf("group 1: object %d %s\n", o.ID, o.Payload)
	}
	// Output:
	// groups 0-1: moqt: FETCH_ERROR UNKNOWN_STATUS_IN_RANGE: group 0 is not known complete in the cache (a subgroup stream may be late or was reset)
	// group 1: object 0 key
	// group 1: object 1 delta
}

// BenchmarkFetchFromRelayedTrack: what a relay's cache costs to answer a
// FETCH, with the check that it knows every object of the range, against
// the relay's path before it (a first look at the cache, covers: the
// cached groups and a copy of the start group's objects, then
// FetchFromTrack). The cache holds 64 groups of 30 objects, each group one
// subgroup that declared End of Group, the newest still being written:
// "whole" fetches all of it, "join" is a joining FETCH of the newest
// group up to the largest location.
func BenchmarkFetchFromRelayedTrack(b *testing.B) {
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"bench"}, Name: "t"}, moqtransport.TrackConfig{})
	for g := range uint64(64) {
		w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
		if err != nil {
			b.Fatal(err)
		}
		for id := range uint64(30) {
			_ = w.WriteObject(id, []byte{1}, nil)
		}
		if g < 63 {
			_ = w.Close()
		}
	}
	reqs := map[string]*moqtransport.FetchRequest{
		"whole": {End: wire.Location{Group: 63, Object: 30}},
		"join":  {Start: wire.Location{Group: 63}, End: wire.Location{Group: 63, Object: 30}},
	}
	for _, name := range []string{"whole", "join"} {
		req := reqs[name]
		b.Run(name+"/covers+FetchFromTrack", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := tr.Cache().Groups(); !ok || len(tr.Cache().Objects(req.Start.Group)) == 0 {
					b.Fatal("not cached")
				}
				if _, err := moqtransport.FetchFromTrack(tr, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/FetchFromRelayedTrack", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := moqtransport.FetchFromRelayedTrack(tr, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
