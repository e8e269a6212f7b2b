package moqtransport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
)

// An application that is its own origin: it writes a track and serves it
// to the subscribers that connect, with no relay in between.
func ExampleTracks_Handler() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The track the application writes, and the set of tracks it serves.
	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("clock"), Name: "seconds"}
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(track)

	// Serve: every accepted session answers SUBSCRIBE, FETCH and
	// TRACK_STATUS from the tracks; other requests are refused.
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	served := make(chan *moqtransport.Session, 1)
	go func() {
		defer close(served)
		in, err := srv.Accept(ctx)
		if err != nil {
			return
		}
		s, err := moqtransport.Accept(ctx, in.Conn, in.Path, &moqtransport.Config{Handler: tracks.Handler()})
		if err == nil {
			served <- s
		}
	}()

	// A subscriber (in another program, usually).
	client, hangUp := dial(ctx, srv)
	defer hangUp()
	sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	if server := <-served; server != nil {
		defer server.Close()
	}

	// Publish one group of two objects, then end the track.
	w, err := track.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for id, payload := range []string{"tick", "tock"} {
		if err := w.WriteObject(uint64(id), []byte(payload), nil); err != nil {
			log.Fatal(err)
		}
	}
	_ = w.Close()
	track.Close(nil)

	printObjects(ctx, sub.Track())
	// Output:
	// 0/0 tick
	// 0/1 tock
	// end of track
}

// Serving FETCH from an application's own store: the handler answers with
// the objects it holds for the requested range, or refuses with a
// draft-14 code. The range is the peer's and may span up to 2^62 groups,
// so the handler walks the groups it holds, not the groups asked for, and
// stops when ctx ends (FETCH_CANCEL, or the session's end). It sends
// nothing outside the range (§9.16): nothing before Start, even in the
// start group, and nothing at or after End.
func ExampleHandler_fetch() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The store: group -> payloads, for one track.
	store := map[uint64][]string{0: {"a", "b"}, 1: {"c", "d"}, 2: {"e", "f"}}
	handler := moqtransport.Handler{
		Fetch: func(ctx context.Context, _ *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			if req.Name != "archive" {
				return nil, moqtransport.FetchError(moqtransport.FetchTrackDoesNotExist, "no such track")
			}
			groups := slices.Sorted(maps.Keys(store))
			var objs []*moqtransport.Object
			for _, g := range groups {
				if err := ctx.Err(); err != nil {
					return nil, err // the FETCH was cancelled: nobody to answer
				}
				if g < req.Start.Group {
					continue
				}
				if g > req.End.Group {
					break // groups are sorted: the rest are past the range
				}
				for id, p := range store[g] {
					loc := moqtransport.Location{Group: g, Object: uint64(id)}
					if loc.Less(req.Start) {
						continue
					}
					// End {G, 0} is all of group G; {G, N} stops before N.
					if g == req.End.Group && req.End.Object != 0 && loc.Object >= req.End.Object {
						break
					}
					objs = append(objs, &moqtransport.Object{Group: g, ID: loc.Object, Payload: []byte(p)})
				}
			}
			if len(objs) == 0 {
				return nil, moqtransport.FetchError(moqtransport.FetchNoObjects, "nothing stored in the range")
			}
			return &moqtransport.FetchResponse{GroupOrder: moqtransport.GroupOrderAscending, Objects: objs}, nil
		},
	}
	client, stop := pair(ctx, &moqtransport.Config{Handler: handler})
	defer stop()

	fetch := func(start, end moqtransport.Location) {
		f, err := client.Fetch(ctx, moqtransport.FetchOptions{
			Namespace: moqtransport.NewNamespace("vod"), Name: "archive", Start: start, End: end,
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("fetch %v..%v:", start, end)
		for {
			o, err := f.ReadObject(ctx)
			if err != nil {
				break // io.EOF after the last object
			}
			fmt.Printf(" %d/%d %s", o.Group, o.ID, o.Payload)
		}
		fmt.Println()
	}
	// Groups 1 and 2, whole; then from {1,1} to the end of group 0 of
	// the largest group there can be, which is all the store holds from
	// {1,1} on; then group 0 and the first object of group 2.
	fetch(moqtransport.Location{Group: 1}, moqtransport.Location{Group: 2})
	fetch(moqtransport.Location{Group: 1, Object: 1}, moqtransport.Location{Group: 1<<62 - 1})
	fetch(moqtransport.Location{Group: 0}, moqtransport.Location{Group: 2, Object: 1})

	_, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: moqtransport.NewNamespace("vod"), Name: "other", End: moqtransport.Location{Group: 1}})
	var re *moqtransport.RequestError
	if errors.As(err, &re) {
		fmt.Printf("refused: %s 0x%x\n", re.Message, re.Code)
	}
	// Output:
	// fetch {1,0}..{2,0}: 1/0 c 1/1 d 2/0 e 2/1 f
	// fetch {1,1}..{4611686018427387903,0}: 1/1 d 2/0 e 2/1 f
	// fetch {0,0}..{2,1}: 0/0 a 0/1 b 1/0 c 1/1 d 2/0 e
	// refused: FETCH_ERROR 0x4
}

// Authorizing requests: the Authorizer sees every request that can carry
// authorization tokens, with the tokens resolved, and allows it (nil) or
// refuses it; ErrUnauthorized is sent with the request's UNAUTHORIZED code.
func ExampleAuthorizer() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("private"), Name: "feed"}
	tracks := &moqtransport.Tracks{}
	tracks.Add(moqtransport.NewTrack(name, moqtransport.TrackConfig{}))
	authorize := func(_ *moqtransport.Session, m moqtransport.Message, tokens []moqtransport.AuthToken) error {
		if _, ok := m.(*moqtransport.SubscribeRequest); !ok {
			return nil // admit every session, and allow other requests
		}
		for _, t := range tokens {
			if string(t.Value) == "let-me-in" {
				return nil
			}
		}
		return moqtransport.ErrUnauthorized
	}
	client, stop := pair(ctx, &moqtransport.Config{Handler: tracks.Handler(), Authorize: authorize})
	defer stop()

	subscribe := func(token string) {
		var opts moqtransport.SubscribeOptions
		if token != "" {
			kv, err := moqtransport.AuthToken{Value: []byte(token)}.Param()
			if err != nil {
				log.Fatal(err)
			}
			opts.Params = moqtransport.Parameters{kv}
		}
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, opts)
		var re *moqtransport.RequestError
		switch {
		case err == nil:
			fmt.Println("subscribed")
			_ = sub.Unsubscribe()
		case errors.As(err, &re) && re.Code == uint64(moqtransport.SubscribeUnauthorized):
			fmt.Printf("refused: %s UNAUTHORIZED\n", re.Message)
		default:
			log.Fatal(err)
		}
	}
	subscribe("")
	subscribe("let-me-in")
	// Output:
	// refused: SUBSCRIBE_ERROR UNAUTHORIZED
	// subscribed
}

// Pushing a track with PUBLISH: the peer's Handler.Publish accepts it (or
// refuses with a PUBLISH_ERROR code) and reads it like a subscription.
func ExampleSession_Publish() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	pushed := make(chan *moqtransport.Subscription, 1)
	handler := moqtransport.Handler{
		Publish: func(_ context.Context, _ *moqtransport.Session, req *moqtransport.PublishRequest, sub *moqtransport.Subscription) (moqtransport.SubscribeOptions, error) {
			if req.Namespace.String() != "cam" {
				return moqtransport.SubscribeOptions{}, moqtransport.PublishError(moqtransport.PublishUninterested, "not this one")
			}
			pushed <- sub
			return moqtransport.SubscribeOptions{}, nil // Largest Object, forwarding on
		},
	}
	client, stop := pair(ctx, &moqtransport.Config{Handler: handler})
	defer stop()

	track := moqtransport.NewTrack(moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("cam"), Name: "video"}, moqtransport.TrackConfig{})
	if _, err := client.Publish(ctx, track, moqtransport.PublishOptions{}); err != nil {
		log.Fatal(err)
	}
	w, err := track.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		log.Fatal(err)
	}
	_ = w.WriteObject(0, []byte("frame"), nil)
	_ = w.Close()
	track.Close(nil) // PUBLISH_DONE

	printObjects(ctx, (<-pushed).Track())
	// Output:
	// 0/0 frame
	// end of track
}

// dial connects a client session to srv, trusting its generated
// certificate by its fingerprint; hangUp closes the session and its
// connection.
func dial(ctx context.Context, srv *moqnative.Server) (client *moqtransport.Session, hangUp func()) {
	fp, _ := srv.Fingerprint()
	d, err := moqnative.Dial(ctx, "moqt://"+srv.Addr().String()+"/",
		moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		log.Fatal(err)
	}
	s, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority})
	if err != nil {
		log.Fatal(err)
	}
	return s, func() {
		_ = s.Close()
		_ = d.Close()
	}
}

// pair serves one session with cfg on loopback and returns a client
// session connected to it, and what closes both and the server.
func pair(ctx context.Context, cfg *moqtransport.Config) (*moqtransport.Session, func()) {
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	served := make(chan *moqtransport.Session, 1)
	go func() {
		defer close(served)
		if in, err := srv.Accept(ctx); err == nil {
			if s, err := moqtransport.Accept(ctx, in.Conn, in.Path, cfg); err == nil {
				served <- s
			}
		}
	}()
	client, hangUp := dial(ctx, srv)
	server := <-served
	return client, func() {
		hangUp()
		if server != nil {
			_ = server.Close()
		}
		_ = srv.Close()
	}
}

// printObjects prints a track's objects as they arrive, until it ends.
func printObjects(ctx context.Context, t *moqtransport.Track) {
	r := t.NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	for {
		ev, err := r.Next(ctx)
		if err == io.EOF {
			fmt.Println("end of track")
			return
		}
		if err != nil {
			log.Fatal(err)
		}
		if ev.Kind == moqtransport.EventObject {
			fmt.Printf("%d/%d %s\n", ev.Object.Group, ev.Object.ID, ev.Object.Payload)
		}
	}
}

// A server that fans fast tracks of small objects out to many subscribers
// can trade a few milliseconds on those tracks for fewer send calls per
// byte (Config.WriteCoalesce), and see what the holds cost: how long
// objects were held and how many shared each held write. Tracks read by
// one subscriber, or whose objects come further apart than two thirds of
// the window (audio, video with an object per frame), are never held.
func ExampleConfig_writeCoalesce() {
	var holds, heldNanos, objects atomic.Int64
	cfg := &moqtransport.Config{
		Handler:       (&moqtransport.Tracks{}).Handler(),
		WriteCoalesce: 6 * time.Millisecond,
		ObserveHold: func(held time.Duration, n int) {
			holds.Add(1)
			heldNanos.Add(int64(held))
			objects.Add(int64(n))
		},
	}
	// Each accepted connection gets cfg: moqtransport.Accept(ctx, conn, path, cfg),
	// and report runs now and then (a metrics scrape, a log line).
	report := func() {
		n := holds.Load()
		if n == 0 {
			fmt.Println("no held writes")
			return
		}
		fmt.Printf("%d held writes, %.1f objects each, held %v on average\n",
			n, float64(objects.Load())/float64(n), time.Duration(heldNanos.Load()/n))
	}
	report()
	// Two holds as a session reports them (how many a real server sees
	// depends on its traffic's timing): 4 ms for 3 objects, 2 ms for 5.
	cfg.ObserveHold(4*time.Millisecond, 3)
	cfg.ObserveHold(2*time.Millisecond, 5)
	report()
	// Output:
	// no held writes
	// 2 held writes, 4.0 objects each, held 3ms on average
}
