package relay

import (
	"fmt"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// BenchmarkEndGranted measures what a namespace grant's end (its token's
// exp, or exp after a withdrawal) costs under Relay.mu: endGranted
// revoking the publisher's 10 relayed tracks under the namespace, on a
// relay where other sessions (100 tracks each, and a namespace each)
// have 0 to 10,000 relayed tracks. Its cost must not grow with their
// tracks (it walked every relayed track of the relay: about 20 µs at
// 1,000, 220 µs at 10,000 on a 2-core EPYC); one scan of the scope's
// namespaces, one per other session here, remains.
func BenchmarkEndGranted(b *testing.B) {
	const mine = 10
	for _, others := range []int{0, 1000, 10000} {
		b.Run(fmt.Sprint(others, "-other-tracks"), func(b *testing.B) {
			r := New(Config{})
			sc := r.scope("")
			up := new(moqtransport.Subscription) // a live upstream subscription
			add := func(from *moqtransport.Session, ns wire.Namespace, name string) *relayTrack {
				rt := &relayTrack{key: trackKey(ns, name), scope: "", ns: ns, from: from, up: up, refs: 1,
					ready: make(chan struct{}), over: make(chan struct{})}
				r.upstream.put(rt)
				return rt
			}
			for i := range others / 100 {
				s := new(moqtransport.Session)
				ns := wire.Namespace{fmt.Sprint("other", i)}
				sc.origins[nsKey(ns)] = &origin{s: s, ns: ns}
				for j := range 100 {
					add(s, ns, fmt.Sprint("t", j))
				}
			}
			pub := new(moqtransport.Session)
			o := &origin{s: pub, ns: wire.Namespace{"p"}} // just removed from sc
			var revoked []*relayTrack
			for j := range mine {
				revoked = append(revoked, add(pub, o.ns, fmt.Sprint("t", j)))
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, rt := range revoked {
					rt.revoked = false
				}
				if got := r.endGranted("", sc, o); len(got) != mine {
					b.Fatalf("%d tracks ended, want %d", len(got), mine)
				}
			}
		})
	}
}
