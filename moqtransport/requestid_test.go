package moqtransport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// doubledTimeout is a parameter list a SUBSCRIBE may not carry: DELIVERY
// TIMEOUT twice.
func doubledTimeout() moqtransport.Parameters {
	return moqtransport.Parameters{
		{Type: wire.ParamDeliveryTimeout, Value: 100},
		{Type: wire.ParamDeliveryTimeout, Value: 200},
	}
}

// A request whose message does not encode fails locally and gives its
// request ID back: the next request carries it, and the peer, which never
// saw the failed one, keeps the session (it would close it with
// INVALID_REQUEST_ID on a gap, §9.1).
func TestRequestNotEncodedKeepsID(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := newEnv(t, scheme, &moqtransport.Config{Handler: heldTracks().Handler()})
		client, server := e.dial(nil)
		ctx := timeout(t)
		probe := func(what string) {
			t.Helper()
			_, err := client.Subscribe(ctx, wire.Namespace{"nope"}, what, moqtransport.SubscribeOptions{})
			var re *moqtransport.RequestError
			if !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTrackDoesNotExist) {
				t.Fatalf("probe SUBSCRIBE after %s: %v, want SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST", what, err)
			}
			if err := server.Err(); err != nil {
				t.Fatalf("after %s the server's session ended: %v", what, err)
			}
		}

		notSent := func(what string, err error) {
			t.Helper()
			if err == nil {
				t.Fatalf("%s: sent, want a local failure", what)
			}
			if !errors.Is(err, moqtransport.ErrRequestNotSent) {
				t.Errorf("%s: %v, want ErrRequestNotSent", what, err)
			}
		}
		_, err := client.Subscribe(ctx, heldNS, heldName, moqtransport.SubscribeOptions{Params: doubledTimeout()})
		notSent("SUBSCRIBE with DELIVERY TIMEOUT twice", err)
		_, err = client.Subscribe(ctx, heldNS, heldName, moqtransport.SubscribeOptions{GroupOrder: 7})
		notSent("SUBSCRIBE with group order 7", err)
		sub, err := client.Subscribe(ctx, heldNS, heldName, moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatalf("valid SUBSCRIBE after the failed ones: %v", err)
		}
		probe("a SUBSCRIBE that did not encode")

		err = sub.Update(ctx, moqtransport.UpdateOptions{Params: doubledTimeout()})
		notSent("SUBSCRIBE_UPDATE with DELIVERY TIMEOUT twice", err)
		if err := sub.Update(ctx, moqtransport.UpdateOptions{Priority: 3}); err != nil {
			t.Fatalf("valid Update: %v", err)
		}
		probe("a SUBSCRIBE_UPDATE that did not encode")

		bad := moqtransport.Parameters{{Type: wire.ParamAuthorizationToken, Bytes: []byte{0x7f}}}
		if _, err := client.TrackStatus(ctx, heldNS, heldName); err != nil {
			t.Fatalf("TRACK_STATUS: %v", err)
		}
		_, err = client.PublishNamespace(ctx, wire.Namespace{"x"}, bad)
		notSent("PUBLISH_NAMESPACE with a token that does not decode", err)
		_, err = client.SubscribeNamespace(ctx, wire.Namespace{"x"}, bad)
		notSent("SUBSCRIBE_NAMESPACE with a token that does not decode", err)
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"p"}, Name: "t"}, moqtransport.TrackConfig{})
		_, err = client.Publish(ctx, tr, moqtransport.PublishOptions{Params: bad})
		notSent("PUBLISH with a token that does not decode", err)
		tr.Close(nil)
		probe("PUBLISH_NAMESPACE, SUBSCRIBE_NAMESPACE and PUBLISH that did not encode")
	})
}

// PublishOptions.Params' DELIVERY TIMEOUT replaces the track's: sent
// twice, the PUBLISH would not encode.
func TestPublishOwnDeliveryTimeoutWins(t *testing.T) {
	got := make(chan *wire.Publish, 1)
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: moqtransport.Handler{
		Publish: func(_ context.Context, _ *moqtransport.Session, req *wire.Publish, _ *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
			got <- req
			return moqtransport.SubscribeOptions{}, nil
		},
	}})
	client, _ := e.dial(nil)
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"p"}, Name: "t"},
		moqtransport.TrackConfig{DeliveryTimeout: time.Second, MaxCacheDuration: time.Minute})
	defer tr.Close(nil)
	_, err := client.Publish(timeout(t), tr, moqtransport.PublishOptions{Params: moqtransport.Parameters{{Type: wire.ParamDeliveryTimeout, Value: 250}}})
	if err != nil {
		t.Fatalf("PUBLISH with its own DELIVERY TIMEOUT over the track's: %v", err)
	}
	req := <-got
	if d, _ := req.Params.DeliveryTimeout(); d != 250*time.Millisecond {
		t.Errorf("the peer got DELIVERY TIMEOUT %v, want the options' 250ms", d)
	}
	if d, _ := req.Params.MaxCacheDuration(); d != time.Minute {
		t.Errorf("the peer got MAX_CACHE_DURATION %v, want the track's 1m", d)
	}
}
