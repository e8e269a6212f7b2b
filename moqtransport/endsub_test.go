package moqtransport_test

import (
	"errors"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// The publisher side ends a subscription it serves with a code of its
// choice; the session goes on.
func TestEndSubscription(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"e"}, Name: "t"}
		tracks.Add(moqtransport.NewTrack(name, moqtransport.TrackConfig{}))
		e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler()})
		client, server := e.dial(nil)
		ctx := timeout(t)
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if server.EndSubscription(sub.RequestID()+2, wire.DoneUnauthorized, "no such") {
			t.Error("EndSubscription of a request that is not a subscription reported true")
		}
		if !server.EndSubscription(sub.RequestID(), wire.DoneUnauthorized, "token expired") {
			t.Fatal("EndSubscription of a served subscription reported false")
		}
		select {
		case <-sub.Done():
		case <-ctx.Done():
			t.Fatal("the subscription did not end")
		}
		var re *moqtransport.RequestError
		if !errors.As(sub.Err(), &re) || re.Message != wire.TypePublishDone || re.Code != uint64(wire.DoneUnauthorized) || re.Reason != "token expired" {
			t.Fatalf("the subscription ended with %v, want PUBLISH_DONE UNAUTHORIZED \"token expired\"", sub.Err())
		}
		// The session goes on: the track can be subscribed again.
		again, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatalf("subscribing again: %v", err)
		}
		_ = again.Unsubscribe()
	})
}

// The receiver of a PUBLISH may UNSUBSCRIBE from it; the publisher's
// PUBLISH_DONE that follows is not a protocol violation.
func TestUnsubscribeFromPublish(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		h := &takesPublish{subs: make(chan *moqtransport.Subscription, 2)}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: moqtransport.Handler{Publish: h.Publish}})
		client, server := e.dial(nil)
		ctx := timeout(t)
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"ok"}, Name: "pushed"}, moqtransport.TrackConfig{})
		pub, err := client.Publish(ctx, tr, moqtransport.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := (<-h.subs).Unsubscribe(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-pub.Done():
		case <-ctx.Done():
			t.Fatal("the publication did not end at UNSUBSCRIBE")
		}
		// The control stream is in order: the answer to a second PUBLISH
		// comes after the first one's PUBLISH_DONE was handled.
		second := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"ok"}, Name: "second"}, moqtransport.TrackConfig{})
		if _, err := client.Publish(ctx, second, moqtransport.PublishOptions{}); err != nil {
			t.Fatalf("a PUBLISH after the first one's PUBLISH_DONE: %v (server: %v)", err, server.Err())
		}
		<-h.subs
	})
}
