package moqtransport_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A peer that publishes and withdraws namespace after namespace under our
// namespace subscription, while the application does not read it (Next),
// grows nothing: a namespace withdrawn before Next reported it is
// forgotten. Each used to stay, known and queued, until Next ran: without
// bound, since the withdrawal gives the peer its request ID back.
func TestNamespaceSubscriptionBoundedUnread(t *testing.T) {
	h := moqtransport.Handler{
		SubscribeNamespace: func(context.Context, *moqtransport.Session, *moqtransport.SubscribeNamespaceRequest) error {
			return nil
		},
	}
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: h})
	client, server := e.dial(nil)
	ctx := timeout(t)
	n, err := client.SubscribeNamespace(ctx, wire.Namespace{"flood"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const cycles = 500
	for i := range cycles {
		p, err := server.PublishNamespace(ctx, wire.Namespace{"flood", fmt.Sprint(i)}, nil)
		if err != nil {
			t.Fatalf("PUBLISH_NAMESPACE %d: %v", i, err)
		}
		if err := p.Close(); err != nil { // PUBLISH_NAMESPACE_DONE
			t.Fatal(err)
		}
	}
	// A last one kept published: once it is reported, every withdrawal
	// before it has been read by the client.
	if _, err := server.PublishNamespace(ctx, wire.Namespace{"flood", "last"}, nil); err != nil {
		t.Fatal(err)
	}
	known, changed := moqtransport.NamespaceSubscriptionSize(n)
	if known > 1 || changed > 2*known+64 {
		t.Errorf("after %d namespaces published and withdrawn unread: %d known, %d queued; want at most 1 and %d", cycles, known, changed, 2*known+64)
	}
	ev, err := n.Next(ctx)
	if err != nil || !ev.Active || !ev.Namespace.Equal(wire.Namespace{"flood", "last"}) {
		t.Fatalf("Next: %+v, %v; want flood/last published", ev, err)
	}
}
