package relay_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/moqgo/moq/api/server"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
	"github.com/redis/go-redis/v9"
)

// A registration whose answer the relay never got (the registry stored it,
// then the request timed out) is removed: it named the relay for the
// namespace for a whole TTL, with nothing refreshing or removing it, and
// another relay's publisher of the namespace was refused.
func TestAPIRegistrationLostAnswerRemoved(t *testing.T) {
	reg := startRegistry(t, 0)
	rdb := redis.NewClient(&redis.Options{Addr: reg.redis.Addr})
	defer rdb.Close()
	h := server.New(server.Config{Redis: rdb, Token: registryToken})
	// POSTs are carried out, and then their answer never comes.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(httptest.NewRecorder(), r.WithContext(context.WithoutCancel(r.Context())))
		<-r.Context().Done()
	}))
	defer slow.Close()
	a, err := relay.NewAPICoordinator(relay.APICoordinatorConfig{URL: slow.URL, Node: "moqt://a", Token: registryToken, Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ns := wire.Namespace{"live"}
	if _, err := a.Register(context.Background(), "", ns); err == nil {
		t.Fatal("a registration whose answer never came: no error")
	}
	_ = a.Close() // waits for its removal, made in the background
	b := reg.apiCoordinator(t, "moqt://b", 0)
	r, err := b.Register(context.Background(), "", ns)
	if errors.Is(err, relay.ErrServedElsewhere) {
		t.Fatalf("relay b's registration after relay a's lost answer: %v (relay a's entry stayed)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	_ = r.Close()
}

// The API coordinator refuses a TTL it would refresh at a non-positive
// interval (the refresh ticker panicked, after the first registration).
func TestAPICoordinatorTinyTTLRefused(t *testing.T) {
	if _, err := relay.NewAPICoordinator(relay.APICoordinatorConfig{URL: "http://127.0.0.1:1", Node: "moqt://a", TTL: 1}); err == nil {
		t.Error("a TTL of 1 ns was accepted")
	}
}
