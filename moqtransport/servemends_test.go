package moqtransport_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// subgroupEvents reads r until group last's subgroup ends or aborts, and
// returns what it saw, as "g/o" for an object and "g:end" or "g:abort"
// for a subgroup's end.
func subgroupEvents(ctx context.Context, t *testing.T, r *moqtransport.TrackReader, last uint64) []string {
	t.Helper()
	var out []string
	for {
		ev, err := r.Next(ctx)
		if err != nil {
			t.Fatalf("after %v: %v", out, err)
		}
		switch ev.Kind {
		case moqtransport.EventObject:
			out = append(out, fmt.Sprintf("%d/%d", ev.Group, ev.Object.ID))
		case moqtransport.EventSubgroupEnd:
			out = append(out, fmt.Sprintf("%d:end", ev.Group))
		case moqtransport.EventSubgroupAbort:
			out = append(out, fmt.Sprintf("%d:abort", ev.Group))
		default:
			continue
		}
		if ev.Kind != moqtransport.EventObject && ev.Group == last {
			return out
		}
	}
}

func writeObjects(t *testing.T, w *moqtransport.SubgroupWriter, from, to uint64) {
	t.Helper()
	for id := from; id < to; id++ {
		if err := w.WriteObject(id, []byte("x"), nil); err != nil {
			t.Fatal(err)
		}
	}
}

// Pausing forwarding (SUBSCRIBE_UPDATE Forward 0) in the middle of a
// subgroup resets its stream: it had ended with a FIN after the objects
// dropped while paused, which, with an End of Group header, told the
// subscriber the group ended at the last object it got (draft-14,
// "Closing Subgroup Streams": a subgroup not delivered whole is reset). A
// subgroup that began while paused sends nothing after forwarding resumes
// (its tail went on a new stream, ended with a FIN too).
func TestPauseMidSubgroupResetsStream(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tr, client, name := served(t, scheme)
		ctx := timeout(t)
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{Filter: moqtransport.Filter{Type: moqtransport.FilterAbsoluteStart}})
		if err != nil {
			t.Fatal(err)
		}
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		open := func(g uint64) *moqtransport.SubgroupWriter {
			w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
			if err != nil {
				t.Fatal(err)
			}
			return w
		}
		w0 := open(0)
		writeObjects(t, w0, 0, 2)
		waitObjects(ctx, t, r, 2)
		if err := sub.Update(ctx, moqtransport.UpdateOptions{Paused: true}); err != nil {
			t.Fatal(err)
		}
		waitUntilServed(ctx, t, client, name)
		writeObjects(t, w0, 2, 4)
		_ = w0.Close()
		w1 := open(1)
		writeObjects(t, w1, 0, 1)
		if err := sub.Update(ctx, moqtransport.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		waitUntilServed(ctx, t, client, name)
		writeObjects(t, w1, 1, 3)
		_ = w1.Close()
		w2 := open(2)
		writeObjects(t, w2, 0, 2)
		_ = w2.Close()
		got := fmt.Sprint(subgroupEvents(ctx, t, r, 2))
		if want := "[0:abort 2/0 2/1 2:end]"; got != want {
			t.Errorf("events %s, want %s", got, want)
		}
	})
}

// An object larger than Config.MaxBacklogBytes is sent: the backlog bound
// gives up queued objects, not one object on its own (its stream was reset
// at once, so a relay never forwarded an object bigger than the bound).
func TestObjectLargerThanBacklogBoundSent(t *testing.T) {
	tracks := &moqtransport.Tracks{}
	name := wire.FullTrackName{Namespace: wire.Namespace{"d"}, Name: "big"}
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks.Add(tr)
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: tracks.Handler(), MaxBacklogBytes: 64 << 10})
	client, _ := e.dial(nil)
	ctx := timeout(t)
	sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	big := bytes.Repeat([]byte("b"), 100<<10)
	w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteObject(0, big, nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	got := subgroupEvents(ctx, t, r, 0)
	if fmt.Sprint(got) != "[0/0 0:end]" {
		t.Fatalf("a 100 KiB object under a 64 KiB backlog bound: %v, want it whole", got)
	}
}

// A subscription with an end group ends (PUBLISH_DONE SUBSCRIPTION_ENDED)
// once the track goes past that group and the range's subgroups have
// ended: it lasted until the track ended, holding the subscription, its
// goroutine and a request of the peer's.
func TestSubscriptionEndsAtEndGroup(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tr, client, name := served(t, scheme)
		ctx := timeout(t)
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{
			Filter: moqtransport.Filter{Type: moqtransport.FilterAbsoluteRange, EndGroup: 1}})
		if err != nil {
			t.Fatal(err)
		}
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		publishObjects(t, tr, 0, 4, 2)
		select {
		case <-sub.Done():
		case <-ctx.Done():
			t.Fatal("the subscription did not end after its end group")
		}
		if err := sub.Err(); err != nil {
			t.Errorf("subscription ended with %v, want SUBSCRIPTION_ENDED (no error)", err)
		}
		// Err is nil for TRACK_ENDED too: DoneStatus tells them apart.
		if code, reason, ok := sub.DoneStatus(); !ok || code != moqtransport.DoneSubscriptionEnded {
			t.Errorf("DoneStatus %v %q %v, want SUBSCRIPTION_ENDED", code, reason, ok)
		}
		var groups []uint64
		for {
			ev, err := r.Next(ctx)
			if err != nil {
				break
			}
			if ev.Kind == moqtransport.EventObject {
				groups = append(groups, ev.Group)
			}
		}
		slices.Sort(groups) // the two groups' streams race
		if fmt.Sprint(groups) != "[0 0 1 1]" {
			t.Errorf("objects of groups %v, want groups 0 and 1's two each", groups)
		}
		if tr.Closed() {
			t.Error("the track closed: the test wants it open")
		}
	})
}

// Subscription.Update on a subscription with the Largest Object or Next
// Group Start filter keeps the start the publisher resolved (§9.7): it
// sent {0, 0}, a start moved back, and the publisher closed the session
// (§9.10).
func TestUpdateKeepsResolvedStart(t *testing.T) {
	for _, ft := range []moqtransport.FilterType{moqtransport.FilterLargestObject, moqtransport.FilterNextGroupStart} {
		t.Run(ft.String(), func(t *testing.T) {
			tr, client, name := served(t, "moqt")
			ctx := timeout(t)
			publishObjects(t, tr, 0, 2, 2)
			sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{Filter: moqtransport.Filter{Type: ft}})
			if err != nil {
				t.Fatal(err)
			}
			if err := sub.Update(ctx, moqtransport.UpdateOptions{Priority: 3}); err != nil {
				t.Fatal(err)
			}
			waitUntilServed(ctx, t, client, name)
			if err := client.Err(); err != nil {
				t.Fatalf("session after Update: %v", err)
			}
			// A start before the resolved one is refused locally.
			if err := sub.Update(ctx, moqtransport.UpdateOptions{Start: wire.Location{Group: 0, Object: 1}}); err == nil {
				t.Error("Update moving the start back before the resolved start: no error")
			}
		})
	}
}
