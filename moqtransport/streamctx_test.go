package moqtransport

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
	"go.uber.org/goleak"
)

// limitConn is a sinkConn whose peer grants no unidirectional stream: an
// open waits, as quic-go's OpenUniStreamSync does at the peer's limit,
// until its context ends (checking Err first, then waiting on Done), and
// reports how it ended on opens.
type limitConn struct {
	sinkConn
	waiting chan struct{} // one send per open that waits
	opens   chan error
}

func (c *limitConn) OpenUniStreamSync(ctx context.Context) (SendStream, error) {
	if err := ctx.Err(); err != nil {
		c.opens <- err
		return nil, err
	}
	c.waiting <- struct{}{}
	<-ctx.Done()
	err := ctx.Err()
	if err == nil {
		err = errors.New("Done closed with Err nil")
	}
	c.opens <- err
	return nil, err
}

// TestOpenWaitingForStreamLimit: a subgroup stream's open that waits for
// the peer's stream limit ends at the object's delivery deadline, when
// the stream is abandoned, and when the subscription ends; its writer
// then ends and nothing it started is left running (openCtx's hook and
// timer).
func TestOpenWaitingForStreamLimit(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		end     func(sv *servedSubscription, st *outStream)
		want    error
	}{
		{"deadline", 50 * time.Millisecond, nil, context.DeadlineExceeded},
		{"abandoned", 0, func(_ *servedSubscription, st *outStream) { st.abandon(wire.ResetCancelled) }, context.Canceled},
		{"subscription ended", 0, func(sv *servedSubscription, _ *outStream) { sv.cancel() }, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			conn := &limitConn{sinkConn: sinkConn{ctx: ctx}, waiting: make(chan struct{}, 1), opens: make(chan error, 1)}
			s := newSession(conn, &Config{DefaultDeliveryTimeout: tc.timeout}, false)
			defer s.cancel()
			name := wire.FullTrackName{Namespace: wire.Namespace{"limit"}, Name: "t"}
			track := NewTrack(name, TrackConfig{})
			sv := s.newServed(&wire.Subscribe{RequestID: 0, Namespace: name.Namespace, Name: name.Name,
				SubscriberPriority: DefaultPriority, GroupOrder: wire.GroupOrderAscending, Forward: true,
				Filter: wire.Filter{Type: wire.FilterNextGroupStart}})
			sv.reader = track.NewReader(ReaderFilter{})
			sv.track = track
			delivered := make(chan struct{})
			go func() {
				defer close(delivered)
				sv.deliver()
				sv.wg.Wait()
			}()
			w, err := track.OpenSubgroup(0, 0, SubgroupOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteObject(0, []byte("waits for a stream"), nil); err != nil {
				t.Fatal(err)
			}
			if tc.end != nil {
				select {
				case <-conn.waiting:
				case <-time.After(10 * time.Second):
					t.Fatal("the stream was not opened")
				}
				list := s.sched.streamsOf(sv)
				if len(list) != 1 {
					t.Fatalf("%d streams in the scheduler, want 1", len(list))
				}
				tc.end(sv, list[0])
			}
			select {
			case err := <-conn.opens:
				if !errors.Is(err, tc.want) {
					t.Fatalf("the open ended with %v, want %v", err, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the open is still waiting")
			}
			if tc.name != "subscription ended" {
				// The writer gave up the stream, not the subscription: the
				// dispatcher still runs until the track ends.
				track.Close(nil)
			}
			select {
			case <-delivered:
			case <-time.After(10 * time.Second):
				t.Fatal("delivery did not end")
			}
			if n := len(s.sched.streamsOf(sv)); n != 0 {
				t.Fatalf("%d streams still in the scheduler", n)
			}
		})
	}
}
