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
