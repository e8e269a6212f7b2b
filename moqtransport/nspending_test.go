package moqtransport_test

import (
	"context"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A PUBLISH_NAMESPACE_DONE, or the application's CancelNamespace, that
// comes while the PUBLISH_NAMESPACE's handler is still deciding (a relay
// registering it with its coordinator) is carried out once the handler
// accepts: PUBLISH_NAMESPACE_OK, then the PublishNamespaceDone handler
// (or PUBLISH_NAMESPACE_CANCEL). The DONE found nothing and was dropped:
// the namespace stayed published for the rest of the session (a relay
// kept routing to a publisher that had left, and refused the namespace to
// everyone else).
func TestPublishNamespaceEndedWhileHandlerDecides(t *testing.T) {
	for _, tc := range []string{"done", "cancel"} {
		t.Run(tc, func(t *testing.T) {
			release := make(chan struct{})
			entered := make(chan struct{}, 1)
			dones := make(chan wire.Namespace, 2)
			h := moqtransport.Handler{
				PublishNamespace: func(ctx context.Context, _ *moqtransport.Session, _ *wire.PublishNamespace) error {
					entered <- struct{}{}
					select {
					case <-release:
					case <-ctx.Done():
					}
					return nil
				},
				PublishNamespaceDone: func(_ *moqtransport.Session, ns moqtransport.Namespace) { dones <- ns },
			}
			e := newEnv(t, "moqt", &moqtransport.Config{Handler: h})
			c := newHostileClient(t, e)
			server := c.setup()
			id := c.id()
			c.send(&wire.PublishNamespace{RequestID: id, Namespace: heldNS})
			select {
			case <-entered:
			case <-time.After(hostileWait):
				t.Fatal("the handler was not called")
			}
			if tc == "done" {
				c.send(&wire.PublishNamespaceDone{Namespace: heldNS})
				c.expectAlive() // the DONE was read
			} else if err := server.CancelNamespace(heldNS, wire.NamespaceInternalError, "expired"); err != nil {
				t.Fatal(err)
			}
			close(release)
			if m, ok := c.next().(*wire.PublishNamespaceOK); !ok || m.RequestID != id {
				t.Fatalf("got %v, want PUBLISH_NAMESPACE_OK for request %d", m, id)
			}
			if tc == "cancel" {
				if m, ok := c.next().(*wire.PublishNamespaceCancel); !ok || !m.Namespace.Equal(heldNS) {
					t.Fatalf("got %v, want PUBLISH_NAMESPACE_CANCEL of %v", m, heldNS)
				}
				select {
				case ns := <-dones:
					t.Fatalf("PublishNamespaceDone called for %v after a cancel", ns)
				default:
				}
				return
			}
			select {
			case ns := <-dones:
				if !ns.Equal(heldNS) {
					t.Fatalf("PublishNamespaceDone for %v, want %v", ns, heldNS)
				}
			case <-time.After(hostileWait):
				t.Fatal("the withdrawal was dropped: PublishNamespaceDone never called")
			}
		})
	}
}
