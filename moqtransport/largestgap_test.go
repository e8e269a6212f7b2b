package moqtransport_test

import (
	"runtime"
	"sync"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestSubscribeLargestNoGap: a SUBSCRIBE answered while the track is being
// written starts right after the Largest Location its SUBSCRIBE_OK names
// (§9.7, the Largest Object filter), so with the joining FETCH that ends at
// that location the subscriber misses nothing. The served subscription
// used to read Largest and start its reader in two steps: an object written
// between them was in neither (moq-sub's output then resumed mid-group).
func TestSubscribeLargestNoGap(t *testing.T) {
	const groupObjects = 16
	ns := wire.Namespace{"gap"}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "t"}, moqtransport.TrackConfig{MaxGroups: 1024})
	h := &moqtransport.Tracks{}
	h.Add(tr)
	ctx := timeout(t)
	client, _ := memSessions(t, ctx, &moqtransport.Config{Handler: h.Handler()})

	// The publisher writes a burst of objects while each SUBSCRIBE is
	// handled, yielding after each one, so that the window between the
	// two steps, were it open, is hit.
	const burst = 3 * groupObjects
	more := make(chan struct{})     // a burst to write
	wrote := make(chan struct{}, 1) // a burst was written
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var w *moqtransport.SubgroupWriter
		for n := uint64(0); ; {
			if _, ok := <-more; !ok {
				return
			}
			for range burst {
				g, id := n/groupObjects, n%groupObjects
				n++
				if id == 0 {
					var err error
					if w, err = tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{}); err != nil {
						t.Error(err)
						return
					}
				}
				if err := w.WriteObject(id, []byte{byte(id)}, nil); err != nil {
					t.Error(err)
					return
				}
				if id == groupObjects-1 {
					if err := w.Close(); err != nil {
						t.Error(err)
						return
					}
				}
				runtime.Gosched()
			}
			select {
			case wrote <- struct{}{}:
			default:
			}
		}
	}()
	defer wg.Wait()
	defer close(more)
	more <- struct{}{}
	<-wrote // the first SUBSCRIBE names a Largest Location

	for i := range 200 {
		more <- struct{}{}
		sub, err := client.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		more <- struct{}{} // objects after the largest, whatever it is
		largest, ok := sub.Largest()
		if !ok {
			t.Fatalf("subscription %d: SUBSCRIBE_OK names no Largest Location, yet the track was being written", i)
		}
		want := moqtransport.Location{Group: largest.Group, Object: largest.Object + 1}
		if largest.Object == groupObjects-1 {
			want = moqtransport.Location{Group: largest.Group + 1}
		}
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		for {
			ev, err := r.Next(ctx)
			if err != nil {
				t.Fatalf("subscription %d: SUBSCRIBE_OK's Largest Location is %v, and no object of group %d came (%v): %v was lost", i, largest, want.Group, err, want)
			}
			// Groups come on streams of their own, in any order: the
			// first object of want's group must be want.
			if ev.Kind != moqtransport.EventObject || ev.Group != want.Group {
				continue
			}
			if got := ev.Object.Location(); got != want {
				t.Fatalf("subscription %d: SUBSCRIBE_OK's Largest Location is %v, and the first object of group %d it delivered %v, not %v", i, largest, want.Group, got, want)
			}
			break
		}
		r.Close()
		if err := sub.Unsubscribe(); err != nil {
			t.Fatal(err)
		}
	}
}
