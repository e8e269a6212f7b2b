package cli

import (
	"context"
	"io"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/moqgo/moq/moqtransport"
)

// slowFetch is a joining FETCH's stream on a slow link: its objects of
// group 7 come one every interval, after a pause of stallFor before object
// stallAt (0: none), then the stream ends.
type slowFetch struct {
	n, next  int
	interval time.Duration
	stallAt  int
	stallFor time.Duration
}

func (f *slowFetch) ReadObject(ctx context.Context) (*moqtransport.Object, error) {
	if f.next == f.n {
		return nil, io.EOF
	}
	wait := f.interval
	if f.stallAt > 0 && f.next == f.stallAt {
		wait = f.stallFor
	}
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	o := &moqtransport.Object{Group: 7, ID: uint64(f.next), Payload: make([]byte, 100)}
	f.next++
	return o, nil
}

// TestJoinSlowDownload: a joining FETCH whose objects come steadily but
// take longer than JoinTimeout in all is read to its end; one whose stream
// stalls for JoinTimeout is given up with a message that says so.
func TestJoinSlowDownload(t *testing.T) {
	largest := moqtransport.Location{Group: 7, Object: 9}
	synctest.Test(t, func(t *testing.T) {
		f := &slowFetch{n: 10, interval: JoinTimeout / 2}
		start := time.Now()
		objs, err := readJoin(t.Context(), f, largest, JoinTimeout)
		if err != nil || len(objs) != 10 {
			t.Fatalf("readJoin = %d objects, %v; want all 10", len(objs), err)
		}
		if took := time.Since(start); took <= JoinTimeout {
			t.Fatalf("the download took %v, not longer than JoinTimeout: not a slow link", took)
		}
	})
	synctest.Test(t, func(t *testing.T) {
		f := &slowFetch{n: 10, interval: JoinTimeout / 2, stallAt: 4, stallFor: 2 * JoinTimeout}
		_, err := readJoin(t.Context(), f, largest, JoinTimeout)
		if err == nil || !strings.Contains(err.Error(), "ended after 4 objects (400 bytes) of group 7: no object came for 2s: the link or the relay stalled") {
			t.Fatalf("readJoin on a stalled stream: %v", err)
		}
	})
}

// repeatingFetch sends object 0 of group 7 again and again.
type repeatingFetch struct{ sent int }

func (f *repeatingFetch) ReadObject(context.Context) (*moqtransport.Object, error) {
	f.sent++
	return &moqtransport.Object{Group: 7, ID: 0, Payload: make([]byte, 100)}, nil
}

// TestJoinRefusesRepeatedObjects: a relay that sends one object again and
// again (each in time, so the download has no end) is refused at the
// first repeat: with no bound on the download's time, the objects kept
// grew with it.
func TestJoinRefusesRepeatedObjects(t *testing.T) {
	f := &repeatingFetch{}
	_, err := readJoin(t.Context(), f, moqtransport.Location{Group: 7, Object: 9}, JoinTimeout)
	if err == nil || !strings.Contains(err.Error(), "must rise") || f.sent != 2 {
		t.Errorf("a FETCH repeating object 0: %v after %d objects, want refused at the second", err, f.sent)
	}
}
