package moqtransport_test

import (
	"context"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A SUBSCRIBE from the peer for a track we have just pushed to it with
// PUBLISH (the two crossed: the peer could not know of ours) is refused
// with SUBSCRIBE_ERROR, and the session goes on. It was closed with
// PROTOCOL_VIOLATION, as for a second SUBSCRIBE of the peer's own (§5.1).
func TestSubscribeCrossingOurPublishRefused(t *testing.T) {
	e := newEnv(t, "moqt", &moqtransport.Config{})
	c := newHostileClient(t, e)
	server := c.setup()
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: heldNS, Name: heldName}, moqtransport.TrackConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	published := make(chan error, 1)
	go func() {
		_, err := server.Publish(ctx, tr, moqtransport.PublishOptions{})
		published <- err
	}()
	pub, ok := c.next().(*wire.Publish)
	if !ok {
		t.Fatalf("got %v, want PUBLISH", pub)
	}
	id := c.id()
	c.write(validSub(id, heldNS, heldName).bytes())
	m := c.next()
	if se, ok := m.(*wire.SubscribeError); !ok || se.RequestID != id {
		t.Fatalf("SUBSCRIBE crossing our PUBLISH: got %#v, want SUBSCRIBE_ERROR for request %d", m, id)
	}
	c.expectAlive()
	cancel() // the PUBLISH is never answered
	select {
	case <-published:
	case <-time.After(hostileWait):
		t.Fatal("Publish did not return")
	}
}
