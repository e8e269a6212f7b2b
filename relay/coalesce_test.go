package relay_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// TestWriteCoalesceFanOut: through a relay with Session.WriteCoalesce, a
// track of small objects a millisecond apart read by two subscribers is
// held and coalesced (moq_relay_write_hold_seconds counts the held writes,
// moq_relay_write_hold_objects_total the objects they carried: more than
// one each), every object reaches both subscribers in order, and the same
// track read by one subscriber is never held. The window is a second: the
// holds end when the write fills its packets, 8 KiB are queued or the
// group ends, not by its timer.
func TestWriteCoalesceFanOut(t *testing.T) {
	e, _ := startRelayFor(t, "moqt", relay.Config{Session: moqtransport.Config{WriteCoalesce: time.Second}})
	ctx := ctxFor(t)
	metrics := func() string {
		rec := httptest.NewRecorder()
		relay.OpsHandler(e.rs, false).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	const objects = 48
	for _, tc := range []struct {
		name        string
		subscribers int
	}{{"one", 1}, {"two", 2}} {
		ns := wire.Namespace{"coalesce", tc.name}
		_, tr, _ := e.publisher("/", ns, "t")
		done := make(chan error, tc.subscribers)
		for range tc.subscribers {
			sub, err := e.connect("/", nil).Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
			go func() {
				defer r.Close()
				done <- readInOrder(ctx, r, objects)
			}()
		}
		before := metricValue(t, metrics(), "moq_relay_write_hold_seconds_count")
		w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		// The track's pace: an object every millisecond (a ticker drops
		// the ticks a busy machine misses rather than bunching them).
		tick := time.NewTicker(time.Millisecond)
		for i := range objects {
			<-tick.C
			p := bytes.Repeat([]byte{byte(i)}, 1000)
			binary.BigEndian.PutUint32(p, uint32(i))
			if err := w.WriteObject(uint64(i), p, nil); err != nil {
				t.Fatal(err)
			}
		}
		tick.Stop()
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		for range tc.subscribers {
			if err := <-done; err != nil {
				t.Fatalf("%s subscriber(s): %v", tc.name, err)
			}
		}
		text := metrics()
		holds := metricValue(t, text, "moq_relay_write_hold_seconds_count") - before
		switch {
		case tc.subscribers == 1 && holds != 0:
			t.Errorf("a track with one subscriber: %d held writes, want none", holds)
		case tc.subscribers > 1 && holds == 0:
			t.Errorf("a track with %d subscribers: no held write", tc.subscribers)
		case tc.subscribers > 1:
			if n := metricValue(t, text, "moq_relay_write_hold_objects_total"); n <= holds {
				t.Errorf("%d held writes carried %d objects, want more than one each", holds, n)
			}
		}
		tr.Close(nil)
	}
}

// readInOrder reads objects 0..n-1 of group 0 from r, in order.
func readInOrder(ctx context.Context, r *moqtransport.TrackReader, n int) error {
	for next := 0; next < n; {
		ev, err := r.Next(ctx)
		if err != nil {
			return err
		}
		if ev.Kind != moqtransport.EventObject {
			continue
		}
		o := ev.Object
		if o.Group != 0 || o.ID != uint64(next) || len(o.Payload) != 1000 || binary.BigEndian.Uint32(o.Payload) != uint32(next) {
			return fmt.Errorf("object %d/%d (%d bytes) where 0/%d was due", o.Group, o.ID, len(o.Payload), next)
		}
		next++
	}
	return nil
}
