package cli

import (
	"context"
	"errors"
	"testing"

	"github.com/moqgo/moq/moqtransport"
)

// TestServedCountsSubscriptionsAndFetches: WaitIdle waits for every
// subscription until SubscriptionEnded and for every fetch until its
// response is closed; a refused request counts nothing.
func TestServedCountsSubscriptionsAndFetches(t *testing.T) {
	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("s"), Name: "t"}
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	_ = w.WriteObject(0, []byte("x"), nil)
	s := NewServed()
	s.Add(tr)
	h := s.Handler()
	ctx := context.Background()
	busy := func() bool {
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		return errors.Is(s.WaitIdle(cancelled, nil), context.Canceled)
	}

	req := &moqtransport.SubscribeRequest{Namespace: name.Namespace, Name: name.Name}
	if _, err := h.Subscribe(ctx, nil, &moqtransport.SubscribeRequest{Namespace: name.Namespace, Name: "none"}); err == nil || busy() {
		t.Fatalf("a refused SUBSCRIBE: err %v, busy %v", err, busy())
	}
	got, err := h.Subscribe(ctx, nil, req)
	if err != nil || got != tr {
		t.Fatal(got, err)
	}
	resp, err := h.Fetch(ctx, nil, &moqtransport.FetchRequest{Namespace: name.Namespace, Name: name.Name, End: moqtransport.Location{Group: 0}})
	if err != nil {
		t.Fatal(err)
	}
	h.SubscriptionEnded(nil, req, tr)
	if !busy() {
		t.Fatal("idle while a fetch is being sent")
	}
	resp.Close()
	if busy() {
		t.Fatal("busy after the subscription ended and the fetch was sent")
	}
}
