package relay_test

import (
	"errors"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// A SUBSCRIBE with its own token for a track the relay has already pushed
// to the session (PUBLISH) is refused before it is authorized, so no
// grant is noted for it: each one noted a grant that nothing took, for the
// rest of the session, as many as the session sent.
func TestRequestTokenPushedSubscribeNotesNothing(t *testing.T) {
	e := startRelayWith(t, "moqt", relay.Config{Auth: hmacAuth(t)})
	ctx := ctxFor(t)
	hour := time.Now().Add(time.Hour)
	pubSess, _, err := e.dialCfg("/", moqtransport.Config{})
	if err != nil {
		t.Fatal(err)
	}
	fwd := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"fwd", "b"}, Name: "t"}, moqtransport.TrackConfig{})
	if _, err := pubSess.Publish(ctx, fwd, moqtransport.PublishOptions{Params: userToken(t, []string{"fwd"}, nil, hour)}); err != nil {
		t.Fatal(err)
	}
	p := &pushed{subs: make(chan *moqtransport.Subscription, 1)}
	watcher, _, err := e.dialCfg("/", moqtransport.Config{Handler: p.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watcher.SubscribeNamespace(ctx, wire.Namespace{"fwd"}, userToken(t, nil, []string{"fwd"}, hour)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.subs:
	case <-ctx.Done():
		t.Fatal("the namespace subscriber got no PUBLISH")
	}
	base := relay.PendingGrants(e.rs.Relay)
	for range 20 {
		var re *moqtransport.RequestError
		if _, err := watcher.Subscribe(ctx, wire.Namespace{"fwd", "b"}, "t", moqtransport.SubscribeOptions{Params: userToken(t, nil, []string{"fwd"}, hour)}); !errors.As(err, &re) || re.Message != wire.TypeSubscribeError {
			t.Fatalf("SUBSCRIBE of a track pushed to the session: %v, want SUBSCRIBE_ERROR", err)
		}
	}
	if got := relay.PendingGrants(e.rs.Relay); got != base {
		t.Errorf("%d grants noted after 20 refused SUBSCRIBEs of a pushed track, want %d", got, base)
	}
}
