package moqtransport_test

import (
	"context"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// BenchmarkSessionSetup is what a joining viewer costs the sessions on
// both ends, without the transport: CLIENT_SETUP/SERVER_SETUP over an
// in-memory connection, one SUBSCRIBE answered from a served track, and
// the close. A relay pays the server's share of it for every session
// (the QUIC and TLS handshake come on top: moqnative and moq-bench --join
// measure those). allocs/op counts both ends.
func BenchmarkSessionSetup(b *testing.B) {
	ns := wire.Namespace{"bench"}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "video"}, moqtransport.TrackConfig{})
	defer tr.Close(nil)
	h := &moqtransport.Tracks{}
	h.Add(tr)
	srvCfg := &moqtransport.Config{Handler: h.Handler()}
	cliCfg := &moqtransport.Config{}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		cc, sc := newMemConnPair(moqtransport.ProtocolQUIC)
		accepted := make(chan *moqtransport.Session, 1)
		go func() {
			s, err := moqtransport.Accept(ctx, sc, "/", srvCfg)
			if err != nil {
				b.Error(err)
			}
			accepted <- s
		}()
		cs, err := moqtransport.Connect(ctx, cc, cliCfg)
		if err != nil {
			b.Fatal(err)
		}
		ss := <-accepted
		if ss == nil {
			b.FailNow()
		}
		if _, err := cs.Subscribe(ctx, ns, "video", moqtransport.SubscribeOptions{}); err != nil {
			b.Fatal(err)
		}
		_ = cs.Close()
		_ = ss.Close()
	}
}
