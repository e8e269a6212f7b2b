package relay

import (
	"fmt"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// BenchmarkSubscriptionEnded measures a downstream subscription's end on a
// relay that relays many tracks: finding the track's relayTrack and giving
// back its reference. Its cost must not grow with the number of tracks.
func BenchmarkSubscriptionEnded(b *testing.B) {
	for _, n := range []int{10, 10000} {
		b.Run(fmt.Sprint(n, "-tracks"), func(b *testing.B) {
			r := New(Config{})
			all := make([]*moqtransport.Track, n)
			for i := range n {
				scName := fmt.Sprint("/s", i%10)
				name := wire.FullTrackName{Namespace: wire.Namespace{"ns"}, Name: fmt.Sprint("t", i)}
				t := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
				rt := &relayTrack{key: trackKey(name.Namespace, name.Name), scope: scName, ns: name.Namespace,
					track: t, refs: 1 << 40, ready: make(chan struct{})}
				r.scope(scName).tracks[rt.key] = rt
				r.byTrack[t] = rt
				all[i] = t
			}
			req := &wire.Subscribe{}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				r.subscriptionEnded(nil, req, all[i%n])
				i++
			}
		})
	}
}
