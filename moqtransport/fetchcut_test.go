package moqtransport_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go/http3"
	"github.com/quic-go/webtransport-go"

	"github.com/moqgo/moq/internal/moqtest"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// unreadUniStreams is a MoQT connection that never accepts the peer's
// unidirectional streams: their data is never read, so over WebTransport
// with session flow control the peer's credit for it never comes back.
type unreadUniStreams struct{ moqtransport.Conn }

func (c unreadUniStreams) AcceptUniStream(ctx context.Context) (moqtransport.ReceiveStream, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.Context().Done():
		return nil, c.Context().Err()
	}
}

// blockedOnCredit reports whether a goroutine whose stack shows fn waits
// in webtransport-go for session flow-control credit (WT_MAX_DATA).
func blockedOnCredit(fn string) bool {
	for g := range strings.SplitSeq(string(moqtest.Stacks()), "\n\n") {
		if strings.Contains(g, fn) && strings.Contains(g, "webtransport-go.(*SendStream).waitForUpdate") {
			return true
		}
	}
	return false
}

// FETCH_CANCEL cuts a fetch stream whose header write is blocked on
// WebTransport session flow control. Both ends enable it
// (webtransport.Config); the fetcher never reads the publisher's
// unidirectional streams, and a 64 KiB object on a subscription takes all
// the publisher's data credit (16 KiB). The fetcher then FETCHes; the
// publisher's FETCH_OK and its fetch stream's header wait for credit that
// never comes, and the fetcher gives up (FETCH_CANCEL). The publisher's
// fetch ends (its response's Close runs), also when the publisher ended it
// (EndFetch) first, and both sessions go on. Before, the header write
// stayed blocked until the session ended.
func TestFetchCancelCutsBlockedHeader(t *testing.T) {
	ctx := timeout(t)
	name := wire.FullTrackName{Namespace: wire.Namespace{"cut"}, Name: "t"}
	tracks := &moqtransport.Tracks{}
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks.Add(tr)
	h := tracks.Handler()
	fetchStarted := make(chan uint64, 1)
	fetchEnded := make(chan uint64, 1)
	h.Fetch = func(_ context.Context, _ *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
		fetchStarted <- req.RequestID
		return &moqtransport.FetchResponse{
			Objects: []*moqtransport.Object{{Group: 0, ID: 0, Payload: []byte("fetched")}},
			Close:   func() { fetchEnded <- req.RequestID },
		}, nil
	}

	// The publisher: MoQT on a WebTransport server of its own, with
	// session flow control.
	ss, err := moqnative.GenerateSelfSigned()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	wts := &webtransport.Server{
		H3: &http3.Server{
			Handler:    mux,
			TLSConfig:  http3.ConfigureTLSConfig(&tls.Config{Certificates: []tls.Certificate{ss.Certificate}}),
			QUICConfig: moqnative.QUICConfig(nil),
		},
		Config: &webtransport.Config{MaxIncomingStreams: 4, MaxIncomingUniStreams: 16, MaxIncomingData: 1 << 20},
	}
	publishers := make(chan *moqtransport.Session, 1)
	mux.Handle("/moq", moqnative.WebTransportHandler(wts, func(in *moqnative.Incoming) {
		// FETCH_OK waits for credit too: the control writer's timeout,
		// which would end the session, is out of the test's way.
		s, err := moqtransport.Accept(ctx, in.Conn, in.Path, &moqtransport.Config{Handler: h, ControlWriteTimeout: time.Minute})
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		publishers <- s
	}))
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = wts.Serve(udp) }()
	t.Cleanup(func() { _ = wts.Close(); <-served; _ = udp.Close() })

	// The fetcher: 16 KiB of data credit for the publisher, pinned to
	// its certificate.
	fp := ss.Fingerprint()
	tc := &tls.Config{
		NextProtos:         []string{http3.NextProtoH3},
		InsecureSkipVerify: true, // the pin below checks the certificate
		VerifyPeerCertificate: func(certs [][]byte, _ [][]*x509.Certificate) error {
			if len(certs) == 0 || sha256.Sum256(certs[0]) != fp {
				return errors.New("not the pinned certificate")
			}
			return nil
		},
	}
	wt := &webtransport.Transport{TLSClientConfig: tc, QUICConfig: moqnative.QUICConfig(nil),
		Config: &webtransport.Config{MaxIncomingStreams: 4, MaxIncomingUniStreams: 16, MaxIncomingData: 16 << 10}}
	t.Cleanup(func() { _ = wt.Close() })
	addr := udp.LocalAddr().String()
	_, sess, err := wt.Dial(ctx, "https://"+addr+"/moq", nil)
	if err != nil {
		t.Fatal(err)
	}
	fetcher, err := moqtransport.Connect(ctx, unreadUniStreams{moqnative.NewWebTransportConn(sess)}, &moqtransport.Config{Path: "/moq", Authority: addr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fetcher.Close() })
	var publisher *moqtransport.Session
	select {
	case publisher = <-publishers:
	case <-ctx.Done():
		t.Fatal("the publisher's session did not start")
	}
	// Not Close: its FETCH_OK waits for credit that never comes, and
	// Close would wait ControlWriteTimeout for it.
	t.Cleanup(func() { _ = publisher.CloseWithError(0, "done") })

	// A subgroup the fetcher never reads takes the publisher's credit.
	if _, err := fetcher.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{}); err != nil {
		t.Fatal(err)
	}
	w, err := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteObject(0, bytes.Repeat([]byte{1}, 64<<10), nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the subgroup write to wait for credit", func() bool { return blockedOnCredit("(*outStream).run") })

	for _, endFirst := range []bool{false, true} {
		fctx, giveUp := context.WithCancel(ctx)
		fetched := make(chan error, 1)
		go func() {
			_, err := fetcher.Fetch(fctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, End: wire.Location{Group: 1}})
			fetched <- err
		}()
		id := <-fetchStarted
		waitFor(t, "the fetch stream's header write to wait for credit", func() bool { return blockedOnCredit("(*Session).writeFetch") })
		if endFirst {
			// EndFetch does not cut the stream before its header is
			// out (the peer could not tell which FETCH it was for); a
			// FETCH_CANCEL after it still does.
			if !publisher.EndFetch(id, wire.FetchInternalError, "ended") {
				t.Fatalf("EndFetch(%d) found no fetch", id)
			}
		}
		giveUp() // FETCH_CANCEL
		if err := <-fetched; !errors.Is(err, context.Canceled) {
			t.Fatalf("Fetch: %v, want context.Canceled", err)
		}
		select {
		case got := <-fetchEnded:
			if got != id {
				t.Fatalf("fetch %d ended, want %d", got, id)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("ended first %v: FETCH_CANCEL did not end the publisher's fetch: its header write is still blocked", endFirst)
		}
	}
	if publisher.Err() != nil || fetcher.Err() != nil {
		t.Errorf("sessions ended: %v, %v", publisher.Err(), fetcher.Err())
	}
}
