package mlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/mlog"
	"github.com/moqgo/moq/moqtransport/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.b.Bytes())
}

type event struct {
	Name string `json:"name"`
	Data struct {
		MessageType string `json:"message_type"`
		Message     struct {
			Type           string `json:"type"`
			RequestID      uint64 `json:"request_id"`
			TrackNamespace []struct {
				Value string `json:"value"`
			} `json:"track_namespace"`
			TrackName struct {
				Value string `json:"value"`
			} `json:"track_name"`
		} `json:"message"`
		GroupID       *uint64 `json:"group_id"`
		ObjectID      *uint64 `json:"object_id"`
		PayloadLength *uint64 `json:"object_payload_length"`
		Status        *uint64 `json:"object_status"`
	} `json:"data"`
}

func events(t *testing.T, b []byte) []event {
	t.Helper()
	recs := bytes.Split(b, []byte{0x1E})
	if len(recs) < 2 || len(recs[0]) != 0 {
		t.Fatalf("not a JSON-SEQ log: %q", b[:min(len(b), 40)])
	}
	var out []event
	for i, r := range recs[2:] { // recs[1] is the header
		var e event
		if err := json.Unmarshal(r, &e); err != nil {
			t.Fatalf("record %d: %v: %s", i+1, err, r)
		}
		out = append(out, e)
	}
	return out
}

// has reports whether evs holds an event named name whose message type is
// msg ("" for a data event).
func has(evs []event, name, msg string) bool {
	return slices.ContainsFunc(evs, func(e event) bool { return e.Name == name && e.Data.MessageType == msg })
}

// TestLoopbackSession runs a real session over loopback QUIC with a Logger
// on each side and checks that both logs tell the story.
func TestLoopbackSession(t *testing.T) {
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	name := wire.FullTrackName{Namespace: wire.Namespace{"live", "cam"}, Name: "video"}
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	tracks := &moqtransport.Tracks{}
	tracks.Add(track)

	var serverLog, clientLog syncBuffer
	serverTracer := mlog.New(&serverLog, "server", "server")
	clientTracer := mlog.New(&clientLog, "client", "client")

	serverDone := make(chan *moqtransport.Session, 1)
	go func() {
		in, err := srv.Accept(ctx)
		if err != nil {
			serverDone <- nil
			return
		}
		s, err := moqtransport.Accept(ctx, in.Conn, in.Path, &moqtransport.Config{Handler: tracks.Handler(), Tracer: serverTracer})
		if err != nil {
			t.Error(err)
		}
		serverDone <- s
	}()

	fp, _ := srv.Fingerprint()
	d, err := moqnative.Dial(ctx, "moqt://"+srv.Addr().String()+"/app",
		moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	client, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path, Authority: d.Authority, Tracer: clientTracer})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server := <-serverDone
	if server == nil {
		t.Fatal("no server session")
	}
	defer server.Close()

	sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int, 1)
	go func() {
		r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
		defer r.Close()
		n := 0
		for {
			ev, err := r.Next(ctx)
			if err != nil {
				if err != io.EOF {
					t.Errorf("reading: %v", err)
				}
				got <- n
				return
			}
			if ev.Kind == moqtransport.EventObject {
				n++
			}
		}
	}()
	for g := range uint64(2) {
		w, err := track.OpenSubgroup(g, 0, moqtransport.SubgroupOptions{Priority: 1})
		if err != nil {
			t.Fatal(err)
		}
		for i := range uint64(2) {
			if err := w.WriteObject(i, fmt.Appendf(nil, "g%d-o%d", g, i), nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.WriteStatus(2, wire.StatusEndOfGroup, nil); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	track.Close(nil)
	if n := <-got; n != 6 {
		t.Fatalf("received %d objects, want 6", n)
	}
	_ = client.Close()
	_ = server.Close()
	<-client.Done()
	<-server.Done()
	for _, l := range []*mlog.Logger{clientTracer, serverTracer} {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}

	cl, sl := events(t, clientLog.Bytes()), events(t, serverLog.Bytes())
	for _, c := range []struct {
		log       []event
		side      string
		name, msg string
	}{
		{cl, "client", "moqt:control_message_created", "client_setup"},
		{cl, "client", "moqt:control_message_parsed", "server_setup"},
		{cl, "client", "moqt:control_message_created", "subscribe"},
		{cl, "client", "moqt:control_message_parsed", "subscribe_ok"},
		{cl, "client", "moqt:control_message_parsed", "publish_done"},
		{cl, "client", "moqt:subgroup_header_parsed", ""},
		{cl, "client", "moqt:subgroup_object_parsed", ""},
		{sl, "server", "moqt:control_message_parsed", "client_setup"},
		{sl, "server", "moqt:control_message_created", "server_setup"},
		{sl, "server", "moqt:control_message_parsed", "subscribe"},
		{sl, "server", "moqt:control_message_created", "subscribe_ok"},
		{sl, "server", "moqt:control_message_created", "publish_done"},
		{sl, "server", "moqt:subgroup_header_created", ""},
		{sl, "server", "moqt:subgroup_object_created", ""},
	} {
		if !has(c.log, c.name, c.msg) {
			t.Errorf("the %s log has no %s %s", c.side, c.name, c.msg)
		}
	}
	if len(cl) > 0 && (cl[0].Name != "moqt:control_message_created" || cl[0].Data.MessageType != "client_setup") {
		t.Errorf("the client log starts with %s %s, want CLIENT_SETUP created", cl[0].Name, cl[0].Data.MessageType)
	}
	for _, e := range sl {
		if e.Name == "moqt:control_message_parsed" && e.Data.MessageType == "subscribe" {
			m := e.Data.Message
			if len(m.TrackNamespace) != 2 || m.TrackNamespace[0].Value != "live" || m.TrackNamespace[1].Value != "cam" || m.TrackName.Value != "video" {
				t.Errorf("SUBSCRIBE logged as %+v", m)
			}
		}
	}
	// Both sides log the same six objects.
	for _, side := range []struct {
		log  []event
		name string
	}{{cl, "moqt:subgroup_object_parsed"}, {sl, "moqt:subgroup_object_created"}} {
		var locs []string
		for _, e := range side.log {
			if e.Name == side.name {
				st := "-"
				if e.Data.Status != nil {
					st = fmt.Sprint(*e.Data.Status)
				}
				locs = append(locs, fmt.Sprintf("%d/%d:%d:%s", *e.Data.GroupID, *e.Data.ObjectID, *e.Data.PayloadLength, st))
			}
		}
		slices.Sort(locs)
		if want := []string{"0/0:5:-", "0/1:5:-", "0/2:0:3", "1/0:5:-", "1/1:5:-", "1/2:0:3"}; !slices.Equal(locs, want) {
			t.Errorf("%s: %v, want %v", side.name, locs, want)
		}
	}
	if testing.Verbose() {
		t.Logf("client log:\n%s", bytes.ReplaceAll(clientLog.Bytes(), []byte{0x1E}, nil))
	}
}
