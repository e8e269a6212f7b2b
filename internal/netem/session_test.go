package netem

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestSessionThroughProxy runs a real MoQT session, raw QUIC and
// WebTransport, through a shaped, lossy, reordering link: setup, SUBSCRIBE
// and a few groups of objects all get through.
func TestSessionThroughProxy(t *testing.T) {
	for _, scheme := range []string{"moqt", "https"} {
		t.Run(scheme, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()

			link := Link{RateBitsPerSec: 20_000_000, Delay: 5 * time.Millisecond, Loss: 0.02, Reorder: 0.02, Seed: 1}
			p, err := New(srv.Addr().String(), Config{Up: link, Down: link})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()

			name := wire.FullTrackName{Namespace: wire.Namespace{"netem"}, Name: "t"}
			track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
			defer track.Close(nil)
			tracks := &moqtransport.Tracks{}
			tracks.Add(track)

			served := make(chan *moqtransport.Session, 1)
			go func() {
				in, err := srv.Accept(ctx)
				if err != nil {
					served <- nil
					return
				}
				s, err := moqtransport.Accept(ctx, in.Conn, in.Path, &moqtransport.Config{Handler: tracks.Handler()})
				if err != nil {
					in.Conn.CloseWithError(0, "")
				}
				served <- s
			}()

			fp, _ := srv.Fingerprint()
			d, err := moqnative.Dial(ctx, fmt.Sprintf("%s://%s/", scheme, p.Addr()), moqnative.ClientConfig{
				TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}},
			})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			cs, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority})
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			ss := <-served
			if ss == nil {
				t.Fatal("server side of the session failed")
			}
			defer ss.Close()

			sub, err := cs.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
			if err != nil {
				t.Fatal(err)
			}
			r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
			defer r.Close()

			const groups, objects, size = 3, 10, 3000
			payload := func(g, o uint64) []byte { return bytes.Repeat([]byte{byte(g*objects + o)}, size) }
			for g := range uint64(groups) {
				w, err := track.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{EndOfGroup: true})
				if err != nil {
					t.Fatal(err)
				}
				for o := range uint64(objects) {
					if err := w.WriteObject(o, payload(g, o), nil); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
			}
			for got := 0; got < groups*objects; {
				ev, err := r.Next(ctx)
				if err != nil {
					t.Fatalf("after %d objects: %v (proxy %+v)", got, err, p.Stats())
				}
				if ev.Kind != moqtransport.EventObject {
					continue
				}
				o := ev.Object
				if !bytes.Equal(o.Payload, payload(o.Group, o.ID)) {
					t.Fatalf("object %d/%d: wrong payload", o.Group, o.ID)
				}
				got++
			}
			st := p.Stats()
			if st.Down.Packets == 0 || st.Up.Packets == 0 || st.Clients != 1 {
				t.Errorf("proxy stats %+v", st)
			}
			t.Logf("down: %d packets, %d lost, %d reordered", st.Down.Packets, st.Down.Lost, st.Down.Reordered)
		})
	}
}
