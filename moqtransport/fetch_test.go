package moqtransport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// fetchAll reads a fetch to its end.
func fetchAll(ctx context.Context, f *moqtransport.Fetch) ([]string, error) {
	var out []string
	for {
		o, err := f.ReadObject(ctx)
		if err != nil {
			return out, err
		}
		s := fmt.Sprintf("%d/%d", o.Group, o.ID)
		if o.Status != wire.StatusNormal {
			s += ":" + o.Status.String()
		}
		out = append(out, s)
	}
}

func TestFetchStandalone(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tr, client, name := served(t, scheme)
		ctx := timeout(t)
		publishObjects(t, tr, 0, 5, 3) // objects 0, 2 and an End of Group at 4 in groups 0..4

		cases := []struct {
			name       string
			start, end wire.Location
			order      wire.GroupOrder
			want       []string
			okEnd      wire.Location
		}{
			{"inside", wire.Location{Group: 1, Object: 2}, wire.Location{Group: 3, Object: 0}, wire.GroupOrderAscending,
				[]string{"1/2", "1/4:EndOfGroup", "2/0", "2/2", "2/4:EndOfGroup", "3/0", "3/2", "3/4:EndOfGroup"}, wire.Location{Group: 3}},
			{"up to an object", wire.Location{Group: 0}, wire.Location{Group: 1, Object: 1}, wire.GroupOrderAscending,
				[]string{"0/0", "0/2", "0/4:EndOfGroup", "1/0"}, wire.Location{Group: 1, Object: 1}},
			{"descending", wire.Location{Group: 3}, wire.Location{Group: 4, Object: 3}, wire.GroupOrderDescending,
				[]string{"4/0", "4/2", "3/0", "3/2", "3/4:EndOfGroup"}, wire.Location{Group: 4, Object: 3}},
			{"past the largest", wire.Location{Group: 4, Object: 1}, wire.Location{Group: 9}, wire.GroupOrderPublisher,
				[]string{"4/2", "4/4:EndOfGroup"}, wire.Location{Group: 4, Object: 5}},
		}
		for _, c := range cases {
			f, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, Start: c.start, End: c.end, GroupOrder: c.order})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if f.OK().End != c.okEnd || f.OK().EndOfTrack {
				t.Errorf("%s: FETCH_OK %+v, want end %v, not end of track", c.name, f.OK(), c.okEnd)
			}
			got, err := fetchAll(ctx, f)
			if err != io.EOF || fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: got %v (%v), want %v", c.name, got, err, c.want)
			}
		}

		var re *moqtransport.RequestError
		for _, c := range []struct {
			name       string
			ns         wire.Namespace
			start, end wire.Location
			code       wire.FetchErrorCode
		}{
			{"start past the largest", name.Namespace, wire.Location{Group: 7}, wire.Location{Group: 8}, wire.FetchInvalidRange},
			{"end before start", name.Namespace, wire.Location{Group: 2, Object: 2}, wire.Location{Group: 2, Object: 1}, wire.FetchInvalidRange},
			{"unknown track", wire.Namespace{"other"}, wire.Location{}, wire.Location{Group: 1}, wire.FetchTrackDoesNotExist},
		} {
			_, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: c.ns, Name: name.Name, Start: c.start, End: c.end})
			if !errors.As(err, &re) || re.Message != wire.TypeFetchError || re.Code != uint64(c.code) {
				t.Errorf("%s: %v, want FETCH_ERROR %s", c.name, err, c.code)
			}
		}

		// The whole track, once it has ended, is the end of the track.
		tr.Close(nil)
		f, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, End: wire.Location{Group: 4}})
		if err != nil {
			t.Fatal(err)
		}
		if !f.OK().EndOfTrack {
			t.Errorf("FETCH_OK of an ended track: %+v, want end of track", f.OK())
		}
		if got, err := fetchAll(ctx, f); err != io.EOF || len(got) != 15 {
			t.Errorf("whole track: %d objects (%v), want 15", len(got), err)
		}
	})
}

func TestJoiningFetch(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tr, client, name := served(t, scheme)
		ctx := timeout(t)
		publishObjects(t, tr, 0, 5, 3)
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// Relative: the last 1 group before the largest, through the largest.
		f, err := client.Fetch(ctx, moqtransport.FetchOptions{Joining: sub, JoiningStart: 1})
		if err != nil {
			t.Fatal(err)
		}
		got, err := fetchAll(ctx, f)
		want := []string{"3/0", "3/2", "3/4:EndOfGroup", "4/0", "4/2", "4/4:EndOfGroup"}
		if err != io.EOF || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("relative joining fetch: %v (%v), want %v", got, err, want)
		}
		// Absolute: from group 4.
		f, err = client.Fetch(ctx, moqtransport.FetchOptions{Joining: sub, Absolute: true, JoiningStart: 4})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := fetchAll(ctx, f); err != io.EOF || fmt.Sprint(got) != fmt.Sprint(want[3:]) {
			t.Errorf("absolute joining fetch: %v (%v), want %v", got, err, want[3:])
		}
		// The subscription goes on after the fetches: FETCH and SUBSCRIBE
		// together cover the track without a gap.
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		publishObjects(t, tr, 5, 6, 2)
		objs := waitObjects(ctx, t, r, 2)
		if objs[0].Location() != (wire.Location{Group: 5}) {
			t.Errorf("first live object %v, want {5,0}", objs[0].Location())
		}
	})
}

func TestJoiningFetchWithoutContent(t *testing.T) {
	_, client, sub, ctx := servedSub(t, "moqt")
	_, err := client.Fetch(ctx, moqtransport.FetchOptions{Joining: sub, JoiningStart: 1})
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != uint64(wire.FetchInvalidRange) {
		t.Fatalf("joining fetch on an empty track: %v, want INVALID_RANGE", err)
	}
}

// A joining FETCH is refused before it is sent when the subscription it
// names is not one the publisher may join (§9.16.2): another filter than
// Largest Object (the publisher closes the session at it), or another
// session's. The session goes on.
func TestJoiningFetchNeedsLargestObjectSubscription(t *testing.T) {
	tr, client, name := served(t, "moqt")
	ctx := timeout(t)
	publishObjects(t, tr, 0, 3, 2)
	sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{Filter: moqtransport.Filter{Type: moqtransport.FilterNextGroupStart}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Fetch(ctx, moqtransport.FetchOptions{Joining: sub, JoiningStart: 1}); err == nil || !strings.Contains(err.Error(), "Largest Object") {
		t.Errorf("joining FETCH of a NextGroupStart subscription: %v, want refused", err)
	}
	tr2, other, _ := served(t, "moqt")
	publishObjects(t, tr2, 0, 3, 2)
	if _, err := other.Fetch(ctx, moqtransport.FetchOptions{Joining: sub, JoiningStart: 1}); err == nil || !strings.Contains(err.Error(), "another session") {
		t.Errorf("joining FETCH of another session's subscription: %v, want refused", err)
	}
	// The session is open (a FETCH is answered), and a Largest Object
	// subscription joins.
	if _, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, End: wire.Location{Group: 1}}); err != nil {
		t.Fatalf("the session after the refused FETCHes: %v", err)
	}
	joinable, err := other.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := other.Fetch(ctx, moqtransport.FetchOptions{Joining: joinable, JoiningStart: 0})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := fetchAll(ctx, f); err != io.EOF || len(got) != 2 {
		t.Errorf("joining FETCH of a Largest Object subscription: %v (%v), want group 2's 2 objects", got, err)
	}
}

func TestFetchCancel(t *testing.T) {
	tr, client, name := served(t, "moqt")
	ctx := timeout(t)
	// Enough data that the stream is still being written when cancelled.
	for g := range uint64(8) {
		w, _ := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
		for i := range uint64(20) {
			if err := w.WriteObject(i, make([]byte, 16<<10), nil); err != nil {
				t.Fatal(err)
			}
		}
		_ = w.Close()
	}
	f, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, End: wire.Location{Group: 7}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadObject(ctx); err != nil {
		t.Fatal(err)
	}
	if err := f.Cancel(); err != nil {
		t.Fatal(err)
	}
	n := 1
	for {
		_, err := f.ReadObject(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatal("a cancelled fetch did not end")
			}
			break
		}
		n++
	}
	if n >= 160 {
		t.Errorf("all %d objects arrived despite FETCH_CANCEL", n)
	}
	// The session is fine afterwards.
	if _, err := client.TrackStatus(ctx, name.Namespace, name.Name); err != nil {
		t.Fatal(err)
	}
}
