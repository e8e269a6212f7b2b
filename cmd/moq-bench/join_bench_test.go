package main

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport/wire"
)

// BenchmarkJoin is one thin subscriber joining a watched track through a
// relay in this process over loopback QUIC, one after another: dial, QUIC and TLS
// handshake, CLIENT_SETUP/SERVER_SETUP, SUBSCRIBE/SUBSCRIBE_OK, close. Its
// figures are both ends together, the relay's and the subscriber's, as on
// a machine that runs moq-bench --join and its relay: allocs/op, and
// cpu-ms/op, this process's CPU time (user and system) per join, which
// holds on a busy machine where ns/op does not. Per --tls-key-exchange.
func BenchmarkJoin(b *testing.B) {
	for _, c := range []struct {
		name, kex string
		resume    bool
	}{
		{kexX25519, kexX25519, false},
		{kexP256, kexP256, false},
		{kexHybrid, kexHybrid, false},
		// A returning viewer: TLS session resumption from the relay's
		// session ticket (no certificate, no signature to make or check).
		{kexX25519 + "-resumed", kexX25519, true},
	} {
		kex := c.kex
		b.Run(c.name, func(b *testing.B) {
			ir, err := startInProcessRelay()
			if err != nil {
				b.Fatal(err)
			}
			defer ir.stop()
			p := params{pubs: 1, url: ir.url, subscriberKind: kindThin}
			p.tls.ServerCertificateHashes = [][32]byte{ir.fp}
			m := newMoqPath(&p, newRecorder(epoch, 1, 8, 0), "join-bench")
			defer m.close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := m.setup(ctx); err != nil {
				b.Fatal(err)
			}
			target, err := newRelayTarget(ir.url, p.tls, kex)
			if err != nil {
				b.Fatal(err)
			}
			if c.resume {
				target.tls = target.tls.Clone()
				target.tls.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			}
			tracks := []wire.FullTrackName{m.trackName(0)}
			// One subscriber stays: the relay's upstream subscription
			// lives on, as when viewers join a watched track.
			if _, err := m.joinThin(ctx, target, tracks, 0, func(int, int64, int) {}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			resumed := false
			cpu0 := selfCPU()
			for b.Loop() {
				c, err := m.socks.dial(ctx, target.addr, target.tls)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := handshake(ctx, c, target.path, tracks); err != nil {
					b.Fatal(err)
				}
				resumed = c.conn.ConnectionState().TLS.DidResume
				c.close(0, "")
			}
			b.ReportMetric(float64(selfCPU()-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
			if c.resume && !resumed {
				b.Error("the last join did not resume its TLS session")
			}
		})
	}
}
