package moqtransport_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A peer that sends UNSUBSCRIBE_NAMESPACE while the handler still decides
// its SUBSCRIBE_NAMESPACE ends the request: it gets no answer, and the
// handler, which accepted it, is told after it returned (UnsubscribeNamespace),
// so that what it set up (a relay's namespace subscription and its
// goroutine) does not outlive the subscription. Told before, as the
// session did, it had nothing to drop yet and kept what it set up after.
func TestHostileUnsubscribeNamespaceWhileDeciding(t *testing.T) {
	var mu sync.Mutex
	var events []string
	note := func(ev string) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}
	got := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(events)
	}
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	h := moqtransport.Handler{
		SubscribeNamespace: func(context.Context, *moqtransport.Session, *moqtransport.SubscribeNamespaceRequest) error {
			entered <- struct{}{}
			<-release
			note("accepted")
			return nil
		},
		UnsubscribeNamespace: func(*moqtransport.Session, moqtransport.Namespace) { note("unsubscribed") },
	}
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: h})
	c := newHostileClient(t, e)
	c.setup()
	prefix := wire.Namespace{"x"}
	c.send(&wire.SubscribeNamespace{RequestID: c.id(), Prefix: prefix})
	select {
	case <-entered:
	case <-time.After(hostileWait):
		t.Fatal("the handler was not asked")
	}
	c.send(&wire.UnsubscribeNamespace{Prefix: prefix})
	c.expectAlive() // the UNSUBSCRIBE_NAMESPACE was read
	if ev := got(); len(ev) != 0 {
		t.Fatalf("before the handler returned: %v, want nothing", ev)
	}
	// Until the handler returns, the prefix stays reserved: the handler
	// knows subscriptions by prefix, so a new one could be taken for the
	// old one. A second UNSUBSCRIBE_NAMESPACE is for nothing.
	id := c.id()
	c.send(&wire.UnsubscribeNamespace{Prefix: prefix}, &wire.SubscribeNamespace{RequestID: id, Prefix: prefix})
	if m, ok := c.next().(*wire.SubscribeNamespaceError); !ok || m.RequestID != id || m.Code != wire.NamespacePrefixOverlap {
		t.Fatalf("got %#v, want SUBSCRIBE_NAMESPACE_ERROR NAMESPACE_PREFIX_OVERLAP for request %d", m, id)
	}
	close(release)
	deadline := time.Now().Add(hostileWait)
	for len(got()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if ev := got(); !slices.Equal(ev, []string{"accepted", "unsubscribed"}) {
		t.Fatalf("handler calls %v, want [accepted unsubscribed]", ev)
	}
	// No SUBSCRIBE_NAMESPACE_OK for the ended request: the next message is
	// the probe's answer.
	c.expectAlive()

	// The prefix is free again.
	id = c.id()
	c.send(&wire.SubscribeNamespace{RequestID: id, Prefix: prefix})
	<-entered
	if m, ok := c.next().(*wire.SubscribeNamespaceOK); !ok || m.RequestID != id {
		t.Fatalf("got %#v, want SUBSCRIBE_NAMESPACE_OK for request %d", m, id)
	}
}
