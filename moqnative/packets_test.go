package moqnative

// BenchmarkObjectPackets counts the QUIC packets a served subscription
// sends per object, over real loopback QUIC: a moqtransport session serves
// one Track to one subscriber, objects are written one at a time (the next
// only after the subscriber has read the previous one, so that no two share
// a write), 30 per group, one subgroup stream per group. packets/obj and
// bytes/obj are the server connection's quic-go ConnectionStats deltas per
// object; min-packets/obj is what the object's bytes need at the
// connection's packet size (full packets of quic-go's 1452 bytes, less the
// short header, the AEAD tag and a STREAM frame header). The difference is
// packets that carry less than they could: each costs a packet's CPU
// (packing, sealing, a sendmsg when it ends a GSO batch, the receiver's
// ACK). These are counts, not times, so they hold on a busy machine.
//
// Not run by plain `go test` (no -bench); TestLargeObjectPackets is.

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/moqgo/moq/moqtransport"
)

func BenchmarkObjectPackets(b *testing.B) {
	for _, size := range []int{1200, 4 << 10, 16 << 10, 20 << 10, 64 << 10} {
		b.Run(fmt.Sprintf("size=%d", size), func(b *testing.B) {
			packets, bytes := objectPackets(b, size, b.N)
			b.ReportMetric(packets, "packets/obj")
			b.ReportMetric(bytes, "bytes/obj")
			b.ReportMetric(float64(minPackets(size)), "min-packets/obj")
		})
	}
}

// maxStreamDataPerPacket is the STREAM frame payload of a full 1-RTT
// packet of quic-go's maximum size: 1452 bytes less a short header (1 + 4
// connection ID + up to 4 packet number), the AEAD tag (16) and a STREAM
// frame header (type, stream ID, offset: up to 1 + 2 + 4).
const maxStreamDataPerPacket = 1452 - 9 - 16 - 7

// minPackets is how many packets an object of size bytes needs.
func minPackets(size int) int {
	return (size + maxStreamDataPerPacket - 1) / maxStreamDataPerPacket
}

// TestLargeObjectPackets: an object larger than moqtransport writes in one
// copy (16 KiB) goes in the packets its bytes fill, not one more: its
// header's write carries the start of its payload. It used to go alone,
// in a packet of its own (16.04 packets for 20 KiB, which fill 15). A
// count, not a time: it holds on a busy machine.
func TestLargeObjectPackets(t *testing.T) {
	for _, size := range []int{20 << 10, 64 << 10} {
		packets, _ := objectPackets(t, size, 40)
		if limit := float64(minPackets(size)) + 0.5; packets > limit {
			t.Errorf("%d-byte objects: %.2f packets each, want at most %.1f", size, packets, limit)
		}
	}
}

// objectPackets writes count objects of size bytes (after a warm-up) and
// returns the packets and bytes the server sent per object. With a
// *testing.B, only the count objects are timed.
func objectPackets(tb testing.TB, size, count int) (packets, bytes float64) {
	b, _ := tb.(*testing.B)
	const groupObjects = 30
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := Listen("127.0.0.1:0", ServerConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	defer srv.Close()
	name := moqtransport.FullTrackName{Namespace: moqtransport.Namespace{"bench"}, Name: "packets"}
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{MaxGroups: 4})
	tracks := &moqtransport.Tracks{}
	tracks.Add(track)

	type served struct {
		conn *quic.Conn
		sess *moqtransport.Session
		err  error
	}
	servedc := make(chan served, 1)
	go func() {
		in, err := srv.Accept(ctx)
		if err != nil {
			servedc <- served{err: err}
			return
		}
		qc, ok := in.Conn.(*quicConn)
		if !ok {
			servedc <- served{err: fmt.Errorf("accepted a %T, want raw QUIC", in.Conn)}
			return
		}
		s, err := moqtransport.Accept(ctx, in.Conn, in.Path, &moqtransport.Config{Handler: tracks.Handler()})
		servedc <- served{conn: qc.c, sess: s, err: err}
	}()
	fp, _ := srv.Fingerprint()
	d, err := Dial(ctx, "moqt://"+srv.Addr().String()+"/bench", ClientConfig{TLS: ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		tb.Fatal(err)
	}
	defer d.Close()
	client, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path})
	if err != nil {
		tb.Fatal(err)
	}
	defer client.Close()
	sv := <-servedc
	if sv.err != nil {
		tb.Fatal(sv.err)
	}
	defer sv.sess.Close()
	sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
	if err != nil {
		tb.Fatal(err)
	}
	r := sub.Track().NewReader(moqtransport.ReaderFilter{})
	defer r.Close()

	payload := make([]byte, size)
	var group uint64
	var w *moqtransport.SubgroupWriter
	// send writes object k and waits until the subscriber has it.
	send := func(k int) {
		id := uint64(k % groupObjects)
		if id == 0 {
			if w != nil {
				if err := w.Close(); err != nil {
					tb.Fatal(err)
				}
			}
			if w, err = track.OpenSubgroup(group, 0, moqtransport.SubgroupOptions{}); err != nil {
				tb.Fatal(err)
			}
			group++
		}
		if err := w.WriteObject(id, payload, nil); err != nil {
			tb.Fatal(err)
		}
		for {
			ev, err := r.Next(ctx)
			if err != nil {
				tb.Fatalf("object %d: %v", k, err)
			}
			if ev.Kind == moqtransport.EventObject {
				if len(ev.Object.Payload) != size {
					tb.Fatalf("object %d: %d bytes, want %d", k, len(ev.Object.Payload), size)
				}
				return
			}
		}
	}
	// Warm up past MTU discovery and the first group's stream.
	for k := range 2 * groupObjects {
		send(k)
	}
	before := sv.conn.ConnectionStats()
	if b != nil {
		b.ResetTimer()
	}
	for k := range count {
		send(2*groupObjects + k)
	}
	if b != nil {
		b.StopTimer()
	}
	after := sv.conn.ConnectionStats()
	if w != nil {
		_ = w.Close()
	}
	n := float64(count)
	return float64(after.PacketsSent-before.PacketsSent) / n, float64(after.BytesSent-before.BytesSent) / n
}
