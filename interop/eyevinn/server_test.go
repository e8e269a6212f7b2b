package eyevinn

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Eyevinn/moqtransport"

	"github.com/moqgo/moq/interop/internal/harness"
)

// TestMoqClockSubscriberToEyevinnServer (case 3): moq-clock subscribes
// directly to an Eyevinn server endpoint that publishes a track of known
// objects, and prints every one of them exactly; it exits 0 on the
// PUBLISH_DONE that ends the track. The server sees the PATH moq-clock
// sent over raw QUIC.
func TestMoqClockSubscriberToEyevinnServer(t *testing.T) {
	t.Parallel()
	bins := harness.MustBuild(t)
	for _, tr := range transports {
		for _, dg := range []bool{false, true} {
			t.Run(tr+"/"+mode(dg), func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t, 15*time.Second)
				ct := newClockTrack([]string{"clock"}, "now")
				if dg {
					ct.groups, ct.datagrams = []uint64{40, 41, 42, 43, 44}, true
				} else {
					ct.groups, ct.objects = []uint64{3, 4, 5}, 4
				}
				srv := startServer(t, peerConfig{subscribe: ct})
				sub := harness.Clock(t, bins, srv.url(tr), "--namespace", "clock", "--track", "now")
				p, err := srv.nextSession(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if tr == quicT && p.sess.Path() != "/moq" {
					t.Errorf("the server read PATH %q, want /moq", p.sess.Path())
				}
				if err := sub.Wait(ctx); err != nil {
					t.Fatalf("moq-clock subscriber: %v (want exit 0 on PUBLISH_DONE)", err)
				}
				got, want := sub.Lines(), ct.expectedLines()
				if !slices.Equal(sorted(got), sorted(want)) {
					t.Fatalf("moq-clock printed\n%s\nwant (in any order across groups)\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				if !dg {
					checkGroupOrder(t, got)
				}
			})
		}
	}
}

// TestMoqClockPublisherToEyevinnServer (case 3): moq-clock --publish
// connects to an Eyevinn server endpoint and publishes its namespace; the
// server accepts it and subscribes to the clock track on that session.
// Every object it reads has the group ID, object ID and payload the
// publisher printed. When moq-clock stops, the server gets PUBLISH_DONE
// (TRACK_ENDED) and then PUBLISH_NAMESPACE_DONE.
func TestMoqClockPublisherToEyevinnServer(t *testing.T) {
	t.Parallel()
	bins := harness.MustBuild(t)
	for _, tr := range transports {
		for _, dg := range []bool{false, true} {
			t.Run(tr+"/"+mode(dg), func(t *testing.T) {
				t.Parallel()
				ctx := testCtx(t, 15*time.Second)
				srv := startServer(t, peerConfig{acceptAnnounce: true})
				args := []string{"--publish"}
				if dg {
					args = append(args, "--datagrams")
				}
				pub := harness.Clock(t, bins, srv.url(tr), args...)
				p, err := srv.nextSession(ctx)
				if err != nil {
					t.Fatal(err)
				}
				m, err := p.waitMessage(ctx, moqtransport.MessageAnnounce)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(m.Namespace, []string{"clock"}) {
					t.Fatalf("PUBLISH_NAMESPACE %q, want clock", m.Namespace)
				}
				if _, err := pub.WaitStderr(ctx, namespacePublishedRE); err != nil {
					t.Fatalf("moq-clock got no PUBLISH_NAMESPACE_OK: %v", err)
				}
				rt, err := p.sess.Subscribe(ctx, []string{"clock"}, "now")
				if err != nil {
					t.Fatalf("SUBSCRIBE clock/now: %v", err)
				}
				r := readTrack(ctx, rt)
				if _, err := r.waitObjects(ctx, 3); err != nil {
					t.Fatal(err)
				}
				if err := pub.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				if err := pub.Wait(ctx); err != nil {
					t.Fatalf("moq-clock publisher: %v (want exit 0 after SIGTERM)", err)
				}
				objs, endErr := r.end(ctx)
				if dg && len(objs) > 0 && misparsedDatagram(objs[0], pub.Lines()) {
					deviation(t, "E1", "moq-go sends object 0 of each datagram group as type 0x04 (no Object ID field, §10.3.1); Eyevinn reads an Object ID there anyway: got %v", objs[0])
				}
				checkClockObjects(t, objs, pub.Lines(), dg)
				if status, ok := subscribeDone(endErr); !ok || status != codeTrackEnded {
					t.Errorf("the subscription ended with %v, want PUBLISH_DONE TRACK_ENDED (0x2)", endErr)
				}
				if _, err := p.waitMessage(ctx, moqtransport.MessageUnannounce); err != nil {
					t.Errorf("no PUBLISH_NAMESPACE_DONE: %v", err)
				}
			})
		}
	}
}

// TestEyevinnServerDefaultMaxRequestID: with Eyevinn's default
// Session.InitialMaxRequestID (0), its SERVER_SETUP still grants
// MAX_REQUEST_ID 100, so moq-clock's first SUBSCRIBE (request ID 0) is
// within the grant and must be served (§9.3.2.3, §9.5).
func TestEyevinnServerDefaultMaxRequestID(t *testing.T) {
	t.Parallel()
	bins := harness.MustBuild(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 10*time.Second)
			ct := newClockTrack([]string{"clock"}, "now")
			ct.groups, ct.objects = []uint64{3}, 2
			srv := startServer(t, peerConfig{subscribe: ct, defaultMaxRequestID: true})
			sub := harness.Clock(t, bins, srv.url(tr), "--namespace", "clock", "--track", "now")
			err := sub.Wait(ctx)
			if err != nil && strings.Contains(sub.Stderr(), "SUBSCRIBE_ERROR 0x7") {
				deviation(t, "E4", "Eyevinn granted MAX_REQUEST_ID 100 in SERVER_SETUP but answered request ID 0 with SUBSCRIBE_ERROR 0x7 (too many subscribes)")
			}
			if err != nil {
				t.Fatalf("moq-clock subscriber: %v", err)
			}
			if got, want := sub.Lines(), ct.expectedLines(); !slices.Equal(got, want) {
				t.Fatalf("moq-clock printed %q, want %q", got, want)
			}
		})
	}
}

// endpointScenarios are the moq-test-client scenarios one endpoint can
// answer alone. The others need a relay between two sessions (routing,
// caching, FETCH, namespace subscriptions), which Eyevinn's library does
// not provide.
var endpointScenarios = []string{"setup-only", "announce-only", "subscribe-error"}

// TestMoqTestClientToEyevinnServer (case 3): moq-test-client runs the
// scenarios an endpoint can answer against an Eyevinn server endpoint (it
// accepts PUBLISH_NAMESPACE and refuses SUBSCRIBE to unknown tracks with
// TRACK_DOES_NOT_EXIST), and every one passes: setup negotiates draft-14,
// PUBLISH_NAMESPACE gets PUBLISH_NAMESPACE_OK and holds for 1 s, and
// SUBSCRIBE to an unknown track gets SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST.
func TestMoqTestClientToEyevinnServer(t *testing.T) {
	t.Parallel()
	bins := harness.MustBuild(t)
	if bins.TestClient == "" {
		if bins.TestClientErr != nil {
			t.Fatalf("cmd/moq-test-client exists but did not build: %v", bins.TestClientErr)
		}
		t.Skip("the repository has no cmd/moq-test-client")
	}
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 15*time.Second)
			srv := startServer(t, peerConfig{acceptAnnounce: true, subscribe: newClockTrack([]string{"clock"}, "now")})
			tc := harness.Start(t, "moq-test-client", bins.TestClient, "-r", srv.url(tr), "-t", strings.Join(endpointScenarios, ","),
				"--tls-disable-verify", "-v", "--timeout", "10s")
			err := tc.Wait(ctx)
			lines := tc.Lines()
			for i, name := range endpointScenarios {
				if want := fmt.Sprintf("ok %d - %s", i+1, name); !slices.Contains(lines, want) {
					t.Errorf("no %q in the TAP output", want)
				}
			}
			if err != nil {
				t.Errorf("moq-test-client: %v, want exit 0", err)
			}
			if t.Failed() {
				t.Logf("TAP:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}
