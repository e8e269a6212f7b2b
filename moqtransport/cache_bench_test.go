package moqtransport

import (
	"fmt"
	"testing"
)

// writeInterleaved writes one group of subgroups*perSub objects to tr:
// round by round, one object to each subgroup, the subgroups holding
// falling ranges of object IDs (subgroup j has IDs from (subgroups-1-j)*perSub
// up), so that each object arrives below most of those already cached: a
// peer's hostile order, legal per subgroup (IDs rise within each).
// ordered writes the same IDs in ID order instead.
func writeInterleaved(b *testing.B, tr *Track, group uint64, subgroups, perSub int, ordered bool, payload []byte) {
	ws := make([]*SubgroupWriter, subgroups)
	for j := range ws {
		w, err := tr.OpenSubgroup(group, uint64(j), SubgroupOptions{})
		if err != nil {
			b.Fatal(err)
		}
		ws[j] = w
	}
	if ordered {
		for j := subgroups - 1; j >= 0; j-- {
			for i := range perSub {
				if err := ws[j].WriteObject(uint64((subgroups-1-j)*perSub+i), payload, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	} else {
		for i := range perSub {
			for j := range subgroups {
				if err := ws[j].WriteObject(uint64((subgroups-1-j)*perSub+i), payload, nil); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	for _, w := range ws {
		_ = w.Close()
	}
}

// BenchmarkCacheInsertOrder writes groups of n objects into a track's
// cache, in ID order and in a peer's hostile order (64 subgroups
// interleaved, falling IDs), and reads each group once from the cache;
// ns/object should not grow with n.
func BenchmarkCacheInsertOrder(b *testing.B) {
	payload := make([]byte, 16)
	for _, order := range []string{"ordered", "interleaved"} {
		for _, n := range []int{1 << 10, 1 << 13, 1 << 15} {
			b.Run(fmt.Sprintf("%s/n=%d", order, n), func(b *testing.B) {
				tr := NewTrack(testTrackName, TrackConfig{MaxGroups: 2, MaxBytes: 1 << 40})
				b.ReportAllocs()
				for i := range b.N {
					writeInterleaved(b, tr, uint64(i), 64, n/64, order == "ordered", payload)
					// One read of the group (a FETCH from the cache).
					if objs := tr.Cache().Objects(uint64(i)); len(objs) != n || objs[n-1].ID != uint64(n-1) {
						b.Fatalf("group %d: %d objects", i, len(objs))
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/object")
			})
		}
	}
}

// BenchmarkCacheFullGroup writes 3-byte objects into one endless group of
// a full cache (a telemetry track, or a peer that never starts a new
// group), so that every write drops the group's oldest object: ns/op
// should not grow with MaxBytes.
func BenchmarkCacheFullGroup(b *testing.B) {
	payload := make([]byte, 3)
	for _, maxBytes := range []int64{1 << 20, 32 << 20} {
		b.Run(fmt.Sprintf("MaxBytes=%dMiB", maxBytes>>20), func(b *testing.B) {
			tr := NewTrack(testTrackName, TrackConfig{MaxBytes: maxBytes})
			w, err := tr.OpenSubgroup(0, 0, SubgroupOptions{})
			if err != nil {
				b.Fatal(err)
			}
			var id uint64
			write := func() {
				if err := w.WriteObject(id, payload, nil); err != nil {
					b.Fatal(err)
				}
				id++
			}
			for !tr.Cache().Truncated(0) {
				write()
			}
			// Turn the cache over once, so that the log's array has
			// grown to the size it keeps (a one-time cost of the
			// first writes past the limit, not of each write).
			for range tr.Cache().Stats().Objects {
				write()
			}
			b.ReportAllocs()
			for b.Loop() {
				write()
			}
			if s := tr.Cache().Stats(); s.Bytes > maxBytes {
				b.Fatalf("%d bytes cached, limit %d", s.Bytes, maxBytes)
			}
		})
	}
}
