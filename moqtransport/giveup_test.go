package moqtransport_test

import (
	"context"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A PUBLISH, PUBLISH_NAMESPACE or SUBSCRIBE_NAMESPACE whose caller stops
// waiting for the answer is ended toward the peer, which may accept it
// still: PUBLISH_DONE, PUBLISH_NAMESPACE_DONE, UNSUBSCRIBE_NAMESPACE. The
// peer was left with a subscription that never got objects or a
// PUBLISH_DONE, a namespace never withdrawn, a prefix it refused to a
// retry as an overlap (a relay gives up on a slow namespace subscriber
// after its UpstreamTimeout).
func TestGivenUpRequestsAreEnded(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(ctx context.Context, s *moqtransport.Session) error
		want func(m wire.Message) bool
	}{
		{"PUBLISH", func(ctx context.Context, s *moqtransport.Session) error {
			tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: heldNS, Name: heldName}, moqtransport.TrackConfig{})
			_, err := s.Publish(ctx, tr, moqtransport.PublishOptions{})
			return err
		}, func(m wire.Message) bool {
			d, ok := m.(*wire.PublishDone)
			return ok && d.StatusCode == wire.DoneSubscriptionEnded
		}},
		{"PUBLISH_NAMESPACE", func(ctx context.Context, s *moqtransport.Session) error {
			_, err := s.PublishNamespace(ctx, heldNS, nil)
			return err
		}, func(m wire.Message) bool {
			d, ok := m.(*wire.PublishNamespaceDone)
			return ok && d.Namespace.Equal(heldNS)
		}},
		{"SUBSCRIBE_NAMESPACE", func(ctx context.Context, s *moqtransport.Session) error {
			_, err := s.SubscribeNamespace(ctx, heldNS, nil)
			return err
		}, func(m wire.Message) bool {
			u, ok := m.(*wire.UnsubscribeNamespace)
			return ok && u.Prefix.Equal(heldNS)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := newHostileServer(t, "moqt", moqtransport.Config{})
			client := rs.connect()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- tc.call(ctx, client) }()
			req := rs.next() // the request, never answered
			select {
			case err := <-errc:
				if err == nil {
					t.Fatal("the call succeeded unanswered")
				}
			case <-time.After(hostileWait):
				t.Fatal("the call did not return")
			}
			if m := rs.next(); !tc.want(m) {
				t.Fatalf("after giving up on %v: got %#v", req.Type(), m)
			}
		})
	}
}
