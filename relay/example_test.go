package relay_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/relay"
)

// A relay in-process: a publisher announces its namespace to the relay, a
// subscriber subscribes to one of its tracks through the relay, and the
// relay forwards the objects from one upstream subscription.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The relay, on a moqnative server with a generated certificate.
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	rs := relay.NewServer(relay.New(relay.Config{}), srv)
	serving := make(chan error, 1)
	go func() { serving <- rs.Serve(ctx) }()
	defer func() {
		rs.Close()
		_ = srv.Close()
		<-serving
	}()
	fp, _ := srv.Fingerprint()
	url := "moqt://" + srv.Addr().String() + "/"
	var hangUps []func()
	defer func() {
		for _, f := range hangUps {
			f()
		}
	}()
	connect := func(h moqtransport.Handler) *moqtransport.Session {
		d, err := moqnative.Dial(ctx, url, moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
		if err != nil {
			log.Fatal(err)
		}
		s, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority, Handler: h})
		if err != nil {
			log.Fatal(err)
		}
		hangUps = append(hangUps, func() { _ = s.Close(); _ = d.Close() })
		return s
	}

	// The publisher serves its track to the relay and announces its
	// namespace.
	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("live", "cam"), Name: "video"}
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(track)
	pub := connect(tracks.Handler())
	if _, err := pub.PublishNamespace(ctx, name.Namespace, nil); err != nil {
		log.Fatal(err)
	}

	// The subscriber asks the relay, which subscribes upstream.
	sub := connect(moqtransport.Handler{})
	s, err := sub.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		log.Fatal(err)
	}

	w, err := track.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		log.Fatal(err)
	}
	_ = w.WriteObject(0, []byte("key frame"), nil)
	_ = w.WriteObject(1, []byte("delta"), nil)
	_ = w.Close()
	track.Close(nil) // PUBLISH_DONE reaches the subscriber through the relay

	r := s.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	for {
		ev, err := r.Next(ctx)
		if err == io.EOF {
			fmt.Println("end of track")
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		if ev.Kind == moqtransport.EventObject {
			fmt.Printf("%d/%d %s\n", ev.Object.Group, ev.Object.ID, ev.Object.Payload)
		}
	}
	// Output:
	// 0/0 key frame
	// 0/1 delta
	// end of track
}
