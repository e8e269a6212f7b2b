package relay_test

import (
	"context"
	"strings"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// moq_relay_request_errors_total names each refusal's code in its own
// request's registry: FETCH_ERROR NO_OBJECTS (a code SUBSCRIBE_ERROR does
// not have) is NO_OBJECTS, not "other", and TRACK_STATUS and FETCH
// refusals are counted under their own request.
func TestRequestErrorMetricsByRegistry(t *testing.T) {
	e := startRelay(t, "moqt")
	ctx := ctxFor(t)
	ns := wire.Namespace{"vod"}
	pub := e.connect("/", handlerFunc(moqtransport.Handler{
		Fetch: func(context.Context, *moqtransport.Session, *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			return nil, moqtransport.FetchError(wire.FetchNoObjects, "nothing here")
		},
	}))
	if _, err := pub.PublishNamespace(ctx, ns, nil); err != nil {
		t.Fatal(err)
	}
	client := e.connect("/", nil)
	if _, err := client.TrackStatus(ctx, wire.Namespace{"nobody"}, "x"); err == nil {
		t.Fatal("TRACK_STATUS of a namespace nobody publishes succeeded")
	}
	if _, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"nobody"}, Name: "x", End: wire.Location{Group: 1}}); err == nil {
		t.Fatal("FETCH of a namespace nobody publishes succeeded")
	}
	if _, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "x", End: wire.Location{Group: 1}}); err == nil {
		t.Fatal("FETCH the publisher refuses succeeded")
	}
	var b strings.Builder
	if err := e.rs.Relay.WriteMetrics(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct{ request, code string }{
		{"track_status", "TRACK_DOES_NOT_EXIST"},
		{"fetch", "TRACK_DOES_NOT_EXIST"},
		{"fetch", "NO_OBJECTS"},
	} {
		name := `moq_relay_request_errors_total{code="` + want.code + `",request="` + want.request + `"}`
		if got := metricValue(t, b.String(), name); got != 1 {
			t.Errorf("%s = %d, want 1", name, got)
		}
	}
}
