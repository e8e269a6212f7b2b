package moqtransport_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/moqgo/moq/internal/moqtest"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// hookRooms has the fetch watch of s report what it finds on the returned
// channel (the oldest reports are kept when it is full).
func hookRooms(s *moqtransport.Session) <-chan bool {
	rooms := make(chan bool, 16)
	moqtransport.SetFetchWatchHook(s, func(room bool) {
		select {
		case rooms <- room:
		default:
		}
	})
	return rooms
}

// A publisher that answers FETCH_OK and never opens the fetch stream, while
// it could: the fetcher's ReadObject is bounded by its context, and by
// FetchOptions.StreamTimeout, which cancels the fetch (FETCH_CANCEL).
func TestFetchStreamNeverOpened(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		ctx := timeout(t)
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"w"}, Name: "t"}
		tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
		tracks.Add(tr)
		publishObjects(t, tr, 0, 2, 2)

		e := newEnv(t, scheme, &moqtransport.Config{})
		d := e.dialRaw("/app")
		conn := moqtest.WithholdStreams(d.Conn)
		publisher, err := moqtransport.Connect(ctx, conn, &moqtransport.Config{Handler: tracks.Handler(), Path: d.Path, Authority: d.Authority})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = publisher.Close() })
		var fetcher *moqtransport.Session
		select {
		case fetcher = <-e.sessions:
		case err := <-e.errs:
			t.Fatal(err)
		}
		rooms := hookRooms(fetcher)
		gaveUp := func(what string) {
			t.Helper()
			select {
			case <-conn.GaveUp:
			case <-ctx.Done():
				t.Fatalf("%s: the publisher never saw FETCH_CANCEL", what)
			}
		}

		// Bounded by StreamTimeout: ErrFetchStreamTimeout, and the
		// publisher is told.
		opts := moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, End: wire.Location{Group: 1}, StreamTimeout: 300 * time.Millisecond}
		f, err := fetcher.Fetch(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		if o, err := f.ReadObject(ctx); !errors.Is(err, moqtransport.ErrFetchStreamTimeout) {
			t.Fatalf("ReadObject: %v, %v; want ErrFetchStreamTimeout", o, err)
		}
		if room := <-rooms; !room {
			t.Error("the fetch watch found the publisher without stream credit")
		}
		gaveUp("StreamTimeout")
		if _, err := f.ReadObject(ctx); !errors.Is(err, moqtransport.ErrFetchStreamTimeout) {
			t.Errorf("ReadObject again: %v", err)
		}

		// Without StreamTimeout, ReadObject's context bounds the wait,
		// and Cancel tells the publisher.
		opts.StreamTimeout = 0
		f, err = fetcher.Fetch(ctx, opts)
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		_, err = f.ReadObject(rctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ReadObject with a deadline: %v", err)
		}
		if err := f.Cancel(); err != nil {
			t.Fatal(err)
		}
		gaveUp("Cancel")

		// Both sessions go on.
		if _, err := fetcher.TrackStatus(ctx, name.Namespace, name.Name); err != nil {
			t.Fatalf("TRACK_STATUS after the fetches: %v", err)
		}
		if publisher.Err() != nil || fetcher.Err() != nil {
			t.Errorf("sessions ended: %v, %v", publisher.Err(), fetcher.Err())
		}
	})
}

// A fetch whose publisher cannot open the fetch stream, because every
// stream it may open is open (the fetcher's QUIC stream limit), is not cut
// at StreamTimeout: its stream comes once a stream ends.
//
// Raw QUIC only: there every unidirectional stream is the session's, so
// the limit moqnative reports is exact. Over WebTransport it leaves out
// the 3 streams an HTTP/3 peer may open for itself (control, QPACK), but
// quic-go's HTTP/3 opens only the control stream, so a Go publisher has 2
// more than reported: the fetch is then waited for a little longer than
// StreamTimeout says, never cut early.
func TestFetchStreamWaitsForStreamCredit(t *testing.T) {
	scheme := "moqt"
	ctx := timeout(t)
	tracks := &moqtransport.Tracks{}
	name := wire.FullTrackName{Namespace: wire.Namespace{"w"}, Name: "t"}
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks.Add(tr)
	e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler()})
	cc := e.clientTLS()
	cc.MaxIncomingUniStreams = 1
	d, err := moqnative.Dial(ctx, e.url("/app"), cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	fetcher, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fetcher.Close() })
	lc, ok := d.Conn.(moqtransport.UniStreamLimitConn)
	if !ok || lc.MaxIncomingUniStreams() <= 0 {
		t.Fatalf("moqnative's %T reports no stream limit", d.Conn)
	}
	n := lc.MaxIncomingUniStreams() // 1 + the 3 moqnative leaves for HTTP/3

	// n subgroups left open take every stream the publisher may open.
	sub, err := fetcher.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var open []*moqtransport.SubgroupWriter
	for g := range uint64(n) {
		w, err := tr.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := w.WriteObject(0, fmt.Appendf(nil, "%d", g), nil); err != nil {
			t.Fatal(err)
		}
		open = append(open, w)
		if _, err := sub.ReadObject(ctx); err != nil {
			t.Fatal(err)
		}
	}

	rooms := hookRooms(fetcher)
	f, err := fetcher.Fetch(ctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, End: wire.Location{Group: 0}, StreamTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// StreamTimeout has passed: the watch found no room and waits on.
	// (Once a stream ends, the fetch stream has StreamTimeout to come:
	// 2 s is room for a loaded machine.)
	select {
	case room := <-rooms:
		if room {
			t.Fatalf("the watch found room for a stream with all %d open", n)
		}
	case <-ctx.Done():
		t.Fatal("the fetch watch never looked")
	}
	// A subgroup ends: the fetch stream comes.
	if err := open[0].Close(); err != nil {
		t.Fatal(err)
	}
	got, err := fetchAll(ctx, f)
	if err != io.EOF || fmt.Sprint(got) != "[0/0]" {
		t.Fatalf("fetch after a stream ended: %v (%v)", got, err)
	}
	for _, w := range open[1:] {
		_ = w.Close()
	}
}
