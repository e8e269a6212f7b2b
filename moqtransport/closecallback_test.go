package moqtransport_test

import (
	"context"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A request whose Authorizer call is under way when Close is called goes
// no further once the Authorizer returns: Close's contract is that the
// session does nothing more after the callback, so the Handler is never
// called and no goroutine of the session outlives the callback.
func TestCloseDuringAuthorizer(t *testing.T) {
	for _, kind := range []string{"SUBSCRIBE", "TRACK_STATUS"} {
		t.Run(kind, func(t *testing.T) {
			before := goleak.IgnoreCurrent()
			var handled atomic.Int32
			t.Cleanup(func() {
				// Runs last, after the env's sessions and server are
				// closed: once the session's goroutines are gone,
				// nothing can call the Handler any more.
				if err := goleak.Find(before); err != nil {
					t.Errorf("goroutines left: %v", err)
				}
				if n := handled.Load(); n != 0 {
					t.Errorf("the Handler ran %d times after Close returned", n)
				}
			})
			entered, release := make(chan struct{}), make(chan struct{})
			cfg := &moqtransport.Config{
				Authorize: func(_ *moqtransport.Session, m moqtransport.Message, _ []moqtransport.AuthToken) error {
					if m.Type() == wire.TypeClientSetup {
						return nil
					}
					close(entered)
					<-release
					return nil
				},
				Handler: moqtransport.Handler{
					Subscribe: func(context.Context, *moqtransport.Session, *moqtransport.SubscribeRequest) (*moqtransport.Track, error) {
						handled.Add(1)
						return nil, moqtransport.ErrTrackNotFound
					},
					TrackStatus: func(context.Context, *moqtransport.Session, *moqtransport.TrackStatusRequest) (*moqtransport.TrackStatusOK, error) {
						handled.Add(1)
						return nil, moqtransport.ErrTrackNotFound
					},
				},
			}
			e := newEnv(t, "moqt", cfg)
			client, server := e.dial(nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			answered := make(chan struct{})
			go func() {
				defer close(answered)
				if kind == "SUBSCRIBE" {
					_, _ = client.Subscribe(ctx, wire.Namespace{"a"}, "b", moqtransport.SubscribeOptions{})
				} else {
					_, _ = client.TrackStatus(ctx, wire.Namespace{"a"}, "b")
				}
			}()
			<-entered
			if err := server.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			close(release)
			<-answered // the client sees the session end
		})
	}
}
