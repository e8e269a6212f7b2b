package relay_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/moqtest"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// A publisher that answers the relay's FETCH with FETCH_OK but never opens
// the fetch stream, while it could, is given UpstreamTimeout: then the
// relay cancels it (FETCH_CANCEL) and resets the subscriber's fetch stream
// (CANCELLED), which had its FETCH_OK already. One that never answers the
// FETCH gets FETCH_ERROR TIMEOUT to the subscriber. Both sessions go on.
func TestFetchPublisherWithholdsStream(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		const upstream = 400 * time.Millisecond
		e := startRelayWith(t, scheme, relay.Config{UpstreamTimeout: upstream})
		ctx := ctxFor(t)
		ns := wire.Namespace{"hostile"}

		fp, _ := e.srv.Fingerprint()
		d, err := moqnative.Dial(ctx, fmt.Sprintf("%s://%s/", scheme, e.srv.Addr()),
			moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Close() })
		conn := moqtest.WithholdStreams(d.Conn)
		h := moqtransport.Handler{Fetch: func(ctx context.Context, _ *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			if req.Name == "silent" {
				<-ctx.Done() // never answers
				return nil, ctx.Err()
			}
			return &moqtransport.FetchResponse{Objects: []*moqtransport.Object{{Group: 0, ID: 0, Payload: []byte("x")}}}, nil
		}}
		pub, err := moqtransport.Connect(ctx, conn, &moqtransport.Config{Handler: h, Path: d.Path, Authority: d.Authority})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pub.Close() })
		if _, err := pub.PublishNamespace(ctx, ns, nil); err != nil {
			t.Fatal(err)
		}

		s := e.connect("/", nil)
		f, err := s.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 0}})
		if err != nil {
			t.Fatalf("FETCH: %v, want the publisher's FETCH_OK passed on", err)
		}
		var se *moqtransport.StreamError
		if o, err := f.ReadObject(ctx); !errors.As(err, &se) || se.Code != uint64(wire.ResetCancelled) {
			t.Fatalf("ReadObject: %v, %v; want the fetch stream reset with CANCELLED", o, err)
		}
		select {
		case <-conn.GaveUp:
		case <-ctx.Done():
			t.Fatal("the publisher never saw FETCH_CANCEL")
		}

		_, err = s.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "silent", End: wire.Location{Group: 0}})
		wantRequestCode(t, "FETCH left unanswered upstream", err, uint64(wire.FetchTimeout))

		for what, sess := range map[string]*moqtransport.Session{"publisher": pub, "subscriber": s} {
			if err := sess.Err(); err != nil {
				t.Errorf("the %s's session ended: %v", what, err)
			}
		}
		if _, err := pub.PublishNamespace(ctx, wire.Namespace{"hostile", "more"}, nil); err != nil {
			t.Errorf("the publisher's session after the fetches: %v", err)
		}
		// Both count as FETCHes ended with TIMEOUT.
		var b strings.Builder
		if err := e.rs.Relay.WriteMetrics(&b); err != nil {
			t.Fatal(err)
		}
		name := `moq_relay_request_errors_total{code="TIMEOUT",request="fetch"}`
		if got := metricValue(t, b.String(), name); got != 2 {
			t.Errorf("%s = %d, want 2", name, got)
		}
	})
}
