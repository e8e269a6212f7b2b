package moqtransport_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// takesPublish accepts PUBLISH for namespace "ok" and refuses others.
type takesPublish struct {
	subs chan *moqtransport.Subscription
}

func (h *takesPublish) Publish(_ context.Context, _ *moqtransport.Session, req *wire.Publish, sub *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
	if req.Namespace[0] != "ok" {
		return moqtransport.SubscribeOptions{}, moqtransport.PublishError(wire.PublishUninterested, "not interested")
	}
	h.subs <- sub
	return moqtransport.SubscribeOptions{Priority: 9}, nil
}

func TestPublish(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		h := &takesPublish{subs: make(chan *moqtransport.Subscription, 1)}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: moqtransport.Handler{Publish: h.Publish}})
		client, _ := e.dial(nil)
		ctx := timeout(t)

		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"ok"}, Name: "pushed"}, moqtransport.TrackConfig{})
		pub, err := client.Publish(ctx, tr, moqtransport.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if ok := pub.OK(); !ok.Forward || ok.SubscriberPriority != 9 || ok.Filter.Type != wire.FilterLargestObject {
			t.Errorf("PUBLISH_OK %+v", ok)
		}
		sub := <-h.subs
		done := make(chan struct{})
		var got []*moqtransport.Object
		var rerr error
		go func() {
			defer close(done)
			got, rerr = collect(ctx, sub.Track())
		}()
		publishObjects(t, tr, 0, 3, 3)
		tr.Close(nil)
		<-done
		if rerr != io.EOF || len(got) != 9 {
			t.Fatalf("the receiver got %d objects (%v), want 9 and the end of the track", len(got), rerr)
		}
		if err := sub.Err(); err != nil {
			t.Errorf("pushed track ended with %v", err)
		}
		<-pub.Done()

		// A refused PUBLISH.
		other := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"no"}, Name: "x"}, moqtransport.TrackConfig{})
		_, err = client.Publish(ctx, other, moqtransport.PublishOptions{})
		var re *moqtransport.RequestError
		if !errors.As(err, &re) || re.Message != wire.TypePublishError || re.Code != uint64(wire.PublishUninterested) {
			t.Fatalf("refused PUBLISH: %v, want PUBLISH_ERROR UNINTERESTED", err)
		}
	})
}

func TestPublishNotSupported(t *testing.T) {
	e := newEnv(t, "moqt", nil)
	client, _ := e.dial(nil)
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"a"}, Name: "b"}, moqtransport.TrackConfig{})
	_, err := client.Publish(timeout(t), tr, moqtransport.PublishOptions{})
	var re *moqtransport.RequestError
	if !errors.As(err, &re) || re.Code != uint64(wire.PublishNotSupported) {
		t.Fatalf("PUBLISH to an endpoint without a handler: %v, want NOT_SUPPORTED", err)
	}
}
