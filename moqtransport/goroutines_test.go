package moqtransport_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/moqtest"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestGoroutinesPerIdleSubscription bounds what an idle subscription costs
// in goroutines, both ends together, over real loopback QUIC: 200
// subscriptions of one session, first with nothing published, then each
// with one subgroup stream open and idle (one object sent, the subgroup not
// ended). A relay holds thousands of these; every goroutine is a stack and
// a wakeup. The budget per subscription:
//   - waiting for its track: the serving side's dispatcher, waiting on
//     the track's reader (serve.go): 1;
//   - with a subgroup stream open and nothing to write: none on the
//     serving side, whose writer ends once it has been idle for one to two
//     seconds (sched.go, writerIdle), and the stream's reader on the
//     receiving side: 1 more.
func TestGoroutinesPerIdleSubscription(t *testing.T) {
	const subs = 200
	ns := wire.Namespace{"idle"}
	h := &moqtransport.Tracks{}
	tracks := make([]*moqtransport.Track, subs)
	for i := range tracks {
		tracks[i] = moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: fmt.Sprint("t", i)}, moqtransport.TrackConfig{})
		h.Add(tracks[i])
	}
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: h.Handler(), MaxRequests: 2 * subs})
	client, _ := e.dial(nil)
	ctx := timeout(t)
	// One subscription first: the session's own goroutines are running.
	first, err := client.Subscribe(ctx, ns, "t0", moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// settled waits, boundedly, for the goroutines that have finished
	// their work to end (a writer that wrote its last object returns just
	// after), and returns how many there are per subscription then.
	settled := func(before, n int, budget float64) float64 {
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := float64(runtime.NumGoroutine()-before) / float64(n)
			if got <= budget || time.Now().After(deadline) {
				return got
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	before := runtime.NumGoroutine()
	all := []*moqtransport.Subscription{first}
	for i := 1; i < subs; i++ {
		sub, err := client.Subscribe(ctx, ns, fmt.Sprint("t", i), moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, sub)
	}
	got := settled(before, subs-1, 1.05)
	t.Logf("%.2f goroutines per subscription waiting for its track", got)
	if got > 1.05 {
		t.Errorf("%.2f goroutines per subscription waiting for its track, budget 1", got)
	}
	// One object on each track, its subgroup left open: each subscription
	// has one stream open and idle once the object has arrived.
	before = runtime.NumGoroutine()
	for i, tr := range tracks {
		w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = w.Close() })
		if err := w.WriteObject(0, fmt.Appendf(nil, "o%d", i), nil); err != nil {
			t.Fatal(err)
		}
	}
	for i, sub := range all {
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		ev, err := r.Next(ctx)
		r.Close()
		if err != nil || ev.Kind != moqtransport.EventObject {
			t.Fatalf("subscription %d: no object (%v, %v)", i, ev.Kind, err)
		}
	}
	got = settled(before, subs, 1.05)
	t.Logf("%.2f more goroutines per subscription with an idle stream open", got)
	if got > 1.05 {
		t.Errorf("%.2f more goroutines per subscription with an idle stream open, budget 1", got)
	}
}

// TestGoroutinesPerSession bounds the goroutines a session keeps while
// it serves one idle subscription, the way a relay serves each of its
// viewers, over real loopback QUIC: 20 sessions, each from a raw client
// (no moqtransport code on the client side) subscribed to a track with
// nothing published. Counted are the goroutines moqtransport started
// (runtime.Stack's "created by"), per session:
//   - the control stream's reader, and the accept loops for the peer's
//     unidirectional streams and for a second bidirectional one (a
//     protocol violation): 3;
//   - the subscription's dispatcher (serve.go): 1.
//
// Not the control stream's writer, which runs only while control messages
// wait (controlwriter.go), nor a datagram reader, which starts with the
// first track alias the session learns (it receives no track here).
func TestGoroutinesPerSession(t *testing.T) {
	const sessions = 20
	const budget = 4
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: heldTracks().Handler()})
	before := moqtest.Goroutines("github.com/moqgo/moq/moqtransport.")
	for range sessions {
		c := newHostileClient(t, e)
		c.setup()
		c.subscribeHeld()
	}
	// The writer that sent SUBSCRIBE_OK ends just after: wait, boundedly.
	var got map[string]int
	var n int
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = moqtest.Goroutines("github.com/moqgo/moq/moqtransport.")
		n = moqtest.GoroutinesAdded(before, got)
		if n <= budget*sessions || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	per := float64(n) / sessions
	t.Logf("%.2f goroutines per session: %v", per, got)
	if per > budget {
		t.Errorf("%.2f goroutines per session with one idle subscription, budget %d: %v", per, budget, got)
	}
	for f := range got {
		if strings.Contains(f, "writeControl") || strings.Contains(f, "receiveDatagrams") {
			t.Errorf("%d goroutines of %s in idle sessions that receive no track", got[f], f)
		}
	}
}
