package relay_test

import (
	"io"
	"slices"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// TestFetchForwardedWhenTheCacheCannotAnswer: a FETCH whose start the
// relay's cache holds, but whose range the cache cannot answer (a group of
// it only partly cached), is forwarded to the publisher. The relay used to
// check that its cache held the start, and then answer from the cache in a
// second step: when the cache's answer was UNKNOWN_STATUS_IN_RANGE (the
// group truncated, or evicted since the check), that went to the
// subscriber, though a relay must confirm objects of unknown status
// upstream (§9.16) and only an original publisher answers with that code.
func TestFetchForwardedWhenTheCacheCannotAnswer(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		// Ten objects of about 1 KiB in one group: the relay's cache keeps
		// the last three or so of them, and the group is truncated.
		const objects, size = 10, 1000
		e := startRelayWith(t, scheme, relay.Config{Track: moqtransport.TrackConfig{MaxBytes: 4 * (size + moqtransport.CacheEntryOverhead)}})
		ns := wire.Namespace{"trunc"}
		_, tr, h := e.publisher("/", ns, "t")
		ctx := ctxFor(t)
		s := e.connect("/", nil)
		sub, err := s.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, size)
		for id := range uint64(objects) {
			payload[0] = byte(id)
			if err := w.WriteObject(id, slices.Clone(payload), nil); err != nil {
				t.Fatal(err)
			}
		}
		// The relay cached every object before it forwarded it.
		waitFor(t, "the subscriber's objects", func() bool {
			l, ok := sub.Track().Largest()
			return ok && l == wire.Location{Group: 0, Object: objects - 1}
		})
		fetchesBefore := h.fetches.Load()

		// Object 8 is still cached, so the relay's cache holds the start.
		f, err := s.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "t",
			Start: wire.Location{Group: 0, Object: objects - 2}, End: wire.Location{Group: 0, Object: objects}})
		if err != nil {
			t.Fatalf("FETCH of objects 0/8 and 0/9, which the relay's cache holds in a truncated group: %v, want them forwarded from the publisher", err)
		}
		var got []wire.Location
		for {
			o, err := f.ReadObject(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if int(o.Payload[0]) != int(o.ID) || len(o.Payload) != size {
				t.Errorf("object %v: wrong payload", o.Location())
			}
			got = append(got, o.Location())
		}
		if want := []wire.Location{{Group: 0, Object: objects - 2}, {Group: 0, Object: objects - 1}}; !slices.Equal(got, want) {
			t.Errorf("fetched %v, want %v", got, want)
		}
		if n := h.fetches.Load() - fetchesBefore; n != 1 {
			t.Errorf("the publisher saw %d FETCHes, want the one forwarded", n)
		}
		_ = w.Close()
	})
}
