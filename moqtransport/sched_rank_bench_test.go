package moqtransport

import (
	"fmt"
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
)

// BenchmarkSchedRank: one session serving subs subscriptions, each with
// an open subgroup stream; one op is a new group's stream opening on one
// of them and its previous group's stream ending (what every group
// boundary of every track costs the session's scheduler).
func BenchmarkSchedRank(b *testing.B) {
	for _, subs := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			sess := &Session{}
			p := &sess.sched
			svs := make([]*servedSubscription, subs)
			cur := make([]*outStream, subs)
			for i := range svs {
				sv := &servedSubscription{s: sess, order: wire.GroupOrderAscending}
				sv.subPrio.Store(uint32(DefaultPriority))
				svs[i] = sv
				cur[i] = &outStream{sv: sv, key: subgroupKey{0, 0}, pubPrio: 128, str: &prioStream{}, urgency: -1, applied: -1}
				p.add(cur[i])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for n := range b.N {
				i := n % subs
				old := cur[i]
				st := &outStream{sv: svs[i], key: subgroupKey{old.key.group + 1, 0}, pubPrio: 128, str: &prioStream{}, urgency: -1, applied: -1}
				p.add(st)
				p.remove(old)
				cur[i] = st
			}
		})
	}
}
