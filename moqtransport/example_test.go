package moqtransport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/relay"
)

// exampleSessions connects a client session to a server session whose
// requests serverCfg's Handler answers, over raw QUIC on loopback. A
// subscriber normally dials a relay or a publisher with moqnative.Dial; the
// examples run both ends in one process. stop closes everything.
func exampleSessions(serverCfg *moqtransport.Config) (client, server *moqtransport.Session, stop func()) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	accepted := make(chan *moqtransport.Session, 1)
	go func() {
		in, err := srv.Accept(ctx)
		if err != nil {
			log.Fatal(err)
		}
		s, err := moqtransport.Accept(ctx, in.Conn, in.Path, serverCfg)
		if err != nil {
			log.Fatal(err)
		}
		accepted <- s
	}()
	fp, _ := srv.Fingerprint()
	d, err := moqnative.Dial(ctx, "moqt://"+srv.Addr().String()+"/", moqnative.ClientConfig{
		TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}},
	})
	if err != nil {
		log.Fatal(err)
	}
	client, err = moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority})
	if err != nil {
		log.Fatal(err)
	}
	server = <-accepted
	return client, server, func() {
		_ = client.Close()
		_ = server.Close()
		_ = d.Close()
		_ = srv.Close()
	}
}

// writeGroup writes one group of objects to a publisher's track, on one
// subgroup stream.
func writeGroup(t *moqtransport.Track, group uint64, payloads ...string) {
	w, err := t.OpenSubgroup(group, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		log.Fatal(err)
	}
	for id, p := range payloads {
		if err := w.WriteObject(uint64(id), []byte(p), nil); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
}

// Subscribe to a track and read its objects until the publisher ends it.
func ExampleSession_Subscribe() {
	// The publisher's side: one track, served by a Tracks handler.
	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("live", "demo"), Name: "chat"}
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(track)
	session, _, stop := exampleSessions(&moqtransport.Config{Handler: tracks.Handler()})
	defer stop()

	ctx := context.Background()
	sub, err := session.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{Priority: moqtransport.DefaultPriority})
	if err != nil {
		log.Fatal(err)
	}

	// The publisher writes a group and ends the track (PUBLISH_DONE
	// TRACK_ENDED).
	writeGroup(track, 0, "hello", "world")
	track.Close(nil)

	// The objects, until the end of the track.
	for obj, err := range sub.Objects(ctx) {
		if err != nil {
			log.Fatal(err) // a PUBLISH_DONE error code, or the session's end
		}
		fmt.Printf("%v %s\n", obj.Location(), obj.Payload)
	}
	// The end was normal: TRACK_ENDED (the track is over), not
	// SUBSCRIPTION_ENDED (this subscription is; the track may go on).
	if code, _, ok := sub.DoneStatus(); ok {
		fmt.Println("PUBLISH_DONE", code)
	}
	// Output:
	// {0,0} hello
	// {0,1} world
	// PUBLISH_DONE TRACK_ENDED
}

// ReadObject reads one object at a time; io.EOF is the normal end of the
// subscription, here after Unsubscribe.
func ExampleSubscription_ReadObject() {
	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("live", "demo"), Name: "chat"}
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(track)
	session, _, stop := exampleSessions(&moqtransport.Config{Handler: tracks.Handler()})
	defer stop()

	ctx := context.Background()
	sub, err := session.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	writeGroup(track, 0, "first")
	obj, err := sub.ReadObject(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", obj.Payload)

	_ = sub.Unsubscribe()
	_, err = sub.ReadObject(ctx)
	fmt.Println(err == io.EOF)
	// Output:
	// first
	// true
}

// Update narrows a subscription or changes its priority; it refuses what
// would widen it.
func ExampleSubscription_Update() {
	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("live", "demo"), Name: "video"}
	tracks := &moqtransport.Tracks{}
	tracks.Add(moqtransport.NewTrack(name, moqtransport.TrackConfig{}))
	session, _, stop := exampleSessions(&moqtransport.Config{Handler: tracks.Handler()})
	defer stop()

	ctx := context.Background()
	sub, err := session.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{
		Priority: moqtransport.DefaultPriority,
		Filter:   moqtransport.Filter{Type: moqtransport.FilterAbsoluteStart, Start: moqtransport.Location{Group: 10}},
	})
	if err != nil {
		log.Fatal(err)
	}
	// Stop after group 12, at a more urgent priority.
	err = sub.Update(ctx, moqtransport.UpdateOptions{EndGroup: 12, HasEnd: true, Priority: 1})
	fmt.Println(err)
	// A later end would widen the subscription.
	err = sub.Update(ctx, moqtransport.UpdateOptions{EndGroup: 20, HasEnd: true, Priority: 1})
	fmt.Println(err)
	// Output:
	// <nil>
	// moqt: Subscription.Update: end group 20 is past the current end group 12; a subscription can only be narrowed
}

// A viewer that joins in the middle of a group gets the group's start
// with a joining FETCH, sent in the same round trip as the SUBSCRIBE, and
// the rest of the group from the subscription.
func ExampleSession_SubscribeJoin() {
	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("live", "demo"), Name: "video"}
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(track)
	session, _, stop := exampleSessions(&moqtransport.Config{Handler: tracks.Handler()})
	defer stop()

	// Group 7 is under way: a key frame and a delta frame so far.
	w, err := track.OpenSubgroup(7, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		log.Fatal(err)
	}
	_ = w.WriteObject(0, []byte("key"), nil)
	_ = w.WriteObject(1, []byte("delta 1"), nil)

	ctx := context.Background()
	sub, join, err := session.SubscribeJoin(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{}, moqtransport.FetchOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer join.Cancel()
	fetch, err := join.Wait(ctx)
	var refused *moqtransport.RequestError
	waitForKey := false
	switch {
	case errors.As(err, &refused):
		// FETCH_ERROR (NOT_SUPPORTED from some relays): no start of
		// this group; wait for the next group's key frame instead.
		waitForKey = true
	case err != nil:
		log.Fatal(err) // the session ended
	default:
		for obj, err := range fetch.Objects(ctx) {
			if err != nil {
				log.Fatal(err)
			}
			fmt.Printf("fetched %v %s\n", obj.Location(), obj.Payload)
		}
	}

	// The group goes on, live.
	_ = w.WriteObject(2, []byte("delta 2"), nil)
	_ = w.Close()
	track.Close(nil)
	for obj, err := range sub.Objects(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		if waitForKey && obj.ID != 0 {
			continue // a delta frame of a group whose key frame we lack
		}
		waitForKey = false
		fmt.Printf("live %v %s\n", obj.Location(), obj.Payload)
	}
	// Output:
	// fetched {7,0} key
	// fetched {7,1} delta 1
	// live {7,2} delta 2
}

// Errors carry their draft-14 codes: errors.Is compares codes, errors.As
// gives the code and reason.
func Example_errors() {
	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("live", "demo"), Name: "video"}
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(track)
	session, server, stop := exampleSessions(&moqtransport.Config{Handler: tracks.Handler()})
	defer stop()
	ctx := context.Background()

	// A refused request is a *RequestError.
	_, err := session.Subscribe(ctx, name.Namespace, "audio", moqtransport.SubscribeOptions{})
	fmt.Println(errors.Is(err, moqtransport.ErrTrackNotFound))
	var re *moqtransport.RequestError
	if errors.As(err, &re) {
		fmt.Println(re.Message, re.Code == uint64(moqtransport.SubscribeTrackDoesNotExist))
	}

	// A subscription the publisher ends with an error code.
	sub, err := session.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	track.Close(moqtransport.PublishDoneError(moqtransport.DoneExpired, "the broadcast expired"))
	_, err = sub.ReadObject(ctx)
	fmt.Println(errors.Is(err, moqtransport.PublishDoneError(moqtransport.DoneExpired, "")))
	fmt.Println(err)

	// A session the peer closes: Err is a *ConnError with the code, and
	// calls on the session fail with ErrSessionClosed.
	_ = server.CloseWithError(moqtransport.GoawayTimeout, "drained")
	<-session.Done()
	err = session.Err()
	fmt.Println(errors.Is(err, &moqtransport.SessionError{Code: moqtransport.GoawayTimeout}))
	var ce *moqtransport.ConnError
	if errors.As(err, &ce) {
		fmt.Println(ce.Code, ce.Reason, ce.Remote)
	}
	_, err = session.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	fmt.Println(errors.Is(err, moqtransport.ErrSessionClosed), errors.As(err, &ce))
	// Output:
	// true
	// SUBSCRIBE_ERROR true
	// true
	// moqt: PUBLISH_DONE EXPIRED: the broadcast expired
	// true
	// GOAWAY_TIMEOUT drained true
	// true true
}

// exampleRelay runs a relay on loopback and returns a function that opens
// a session to it, with cfg (nil for the defaults); stop closes the
// sessions and the relay.
func exampleRelay() (connect func(cfg *moqtransport.Config) *moqtransport.Session, stop func()) {
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		log.Fatal(err)
	}
	rs := relay.NewServer(relay.New(relay.Config{}), srv)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = rs.Serve(ctx)
	}()
	fp, _ := srv.Fingerprint()
	var sessions []*moqtransport.Session
	connect = func(cfg *moqtransport.Config) *moqtransport.Session {
		dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
		defer dcancel()
		d, err := moqnative.Dial(dctx, "moqt://"+srv.Addr().String()+"/", moqnative.ClientConfig{
			TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}},
		})
		if err != nil {
			log.Fatal(err)
		}
		c := moqtransport.Config{}
		if cfg != nil {
			c = *cfg
		}
		c.Path, c.Authority = d.Path, d.Authority
		s, err := moqtransport.Connect(dctx, d.Conn, &c)
		if err != nil {
			log.Fatal(err)
		}
		sessions = append(sessions, s)
		return s
	}
	return connect, func() {
		for _, s := range sessions {
			_ = s.Close()
		}
		cancel()
		rs.Close()
		_ = srv.Close()
		<-served
	}
}

// Find the broadcasts under a prefix through a relay, subscribe to a track
// of one and read it.
func ExampleSession_SubscribeNamespace() {
	connect, stop := exampleRelay()
	defer stop()
	ctx := context.Background()

	// A publisher announces live/demo to the relay and serves its track.
	name := moqtransport.FullTrackName{Namespace: moqtransport.NewNamespace("live", "demo"), Name: "chat"}
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(track)
	publisher := connect(&moqtransport.Config{Handler: tracks.Handler()})
	if _, err := publisher.PublishNamespace(ctx, name.Namespace, nil); err != nil {
		log.Fatal(err)
	}

	// A viewer asks the relay for the namespaces under live/.
	viewer := connect(nil)
	nsSub, err := viewer.SubscribeNamespace(ctx, moqtransport.NewNamespace("live"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer nsSub.Close()
	ev, err := nsSub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("announced:", ev.Namespace, ev.Active)

	// It subscribes to a track of it; the relay subscribes upstream.
	sub, err := viewer.Subscribe(ctx, ev.Namespace, "chat", moqtransport.SubscribeOptions{})
	if err != nil {
		log.Fatal(err)
	}
	writeGroup(track, 0, "hi", "there")
	track.Close(nil)
	for obj, err := range sub.Objects(ctx) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%v %s\n", obj.Location(), obj.Payload)
	}
	// Output:
	// announced: live/demo true
	// {0,0} hi
	// {0,1} there
}
