package moqtransport_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// TestZeroHandlerRefuses: each request kind a nil Handler field leaves
// unserved is refused with the code Handler's documentation names.
func TestZeroHandlerRefuses(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		e := newEnv(t, scheme, &moqtransport.Config{})
		client, _ := e.dial(nil)
		ctx := timeout(t)
		ns := wire.Namespace{"z"}
		want := func(what string, err error, msg wire.MessageType, code uint64) {
			t.Helper()
			var re *moqtransport.RequestError
			if !errors.As(err, &re) || re.Message != msg || re.Code != code {
				t.Errorf("%s: %v, want %s 0x%x", what, err, msg, code)
			}
		}
		_, err := client.Subscribe(ctx, ns, "t", moqtransport.SubscribeOptions{})
		want("SUBSCRIBE", err, wire.TypeSubscribeError, uint64(wire.SubscribeTrackDoesNotExist))
		_, err = client.Fetch(ctx, moqtransport.FetchOptions{Namespace: ns, Name: "t", End: wire.Location{Group: 1}})
		want("FETCH", err, wire.TypeFetchError, uint64(wire.FetchNotSupported))
		_, err = client.TrackStatus(ctx, ns, "t")
		want("TRACK_STATUS", err, wire.TypeTrackStatusError, uint64(wire.SubscribeNotSupported))
		_, err = client.PublishNamespace(ctx, ns, nil)
		want("PUBLISH_NAMESPACE", err, wire.TypePublishNamespaceError, uint64(wire.NamespaceNotSupported))
		_, err = client.SubscribeNamespace(ctx, ns, nil)
		want("SUBSCRIBE_NAMESPACE", err, wire.TypeSubscribeNamespaceError, uint64(wire.SubscribeNamespaceNotSupported))
		tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: ns, Name: "p"}, moqtransport.TrackConfig{})
		_, err = client.Publish(ctx, tr, moqtransport.PublishOptions{})
		want("PUBLISH", err, wire.TypePublishError, uint64(wire.PublishNotSupported))
	})
}

// TestFetchAndTrackStatusAreNotSubscriptions: FETCH and TRACK_STATUS reach
// their own handler functions, never Subscribe or SubscriptionEnded, which
// count SUBSCRIBEs only.
func TestFetchAndTrackStatusAreNotSubscriptions(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		name := wire.FullTrackName{Namespace: wire.Namespace{"n"}, Name: "t"}
		tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
		w, _ := tr.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{})
		_ = w.WriteObject(0, []byte("a"), nil)
		_ = w.WriteObject(1, []byte("b"), nil)
		tracks := &moqtransport.Tracks{}
		tracks.Add(tr)
		var subscribes, ended, fetches, statuses atomic.Int32
		h := tracks.Handler()
		subscribe, fetch, status := h.Subscribe, h.Fetch, h.TrackStatus
		h.Subscribe = func(ctx context.Context, s *moqtransport.Session, req *wire.Subscribe) (*moqtransport.Track, error) {
			subscribes.Add(1)
			return subscribe(ctx, s, req)
		}
		subEnded := make(chan struct{})
		h.SubscriptionEnded = func(*moqtransport.Session, *wire.Subscribe, *moqtransport.Track) {
			if ended.Add(1) == 1 {
				close(subEnded)
			}
		}
		h.Fetch = func(ctx context.Context, s *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			fetches.Add(1)
			return fetch(ctx, s, req)
		}
		h.TrackStatus = func(ctx context.Context, s *moqtransport.Session, req *wire.TrackStatus) (*moqtransport.TrackStatusOK, error) {
			statuses.Add(1)
			return status(ctx, s, req)
		}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: h})
		client, _ := e.dial(nil)
		ctx := timeout(t)

		f, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, End: wire.Location{Group: 0}})
		if err != nil {
			t.Fatal(err)
		}
		for n := 0; ; n++ {
			if _, err := f.ReadObject(ctx); err != nil {
				if err != io.EOF || n != 2 {
					t.Fatalf("fetch: %v after %d objects, want io.EOF after 2", err, n)
				}
				break
			}
		}
		st, err := client.TrackStatus(ctx, name.Namespace, name.Name)
		if err != nil || !st.ContentExists || st.Largest != (wire.Location{Group: 0, Object: 1}) {
			t.Fatalf("TRACK_STATUS: %+v, %v", st, err)
		}
		sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
		if err != nil {
			t.Fatal(err)
		}
		_ = sub.Unsubscribe()
		<-subEnded
		if s, en, f, ts := subscribes.Load(), ended.Load(), fetches.Load(), statuses.Load(); s != 1 || en != 1 || f != 1 || ts != 1 {
			t.Errorf("Subscribe %d, SubscriptionEnded %d, Fetch %d, TrackStatus %d; want 1 each", s, en, f, ts)
		}
	})
}

// TestFetchResponseObjects: a handler answering with Objects gets a
// FETCH_OK whose end is just past the largest of them; with none, the
// FETCH is refused with NO_OBJECTS.
func TestFetchResponseObjects(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		h := moqtransport.Handler{Fetch: func(_ context.Context, _ *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
			if req.Name == "empty" {
				return &moqtransport.FetchResponse{}, nil
			}
			return &moqtransport.FetchResponse{Objects: []*moqtransport.Object{
				{Group: 3, ID: 0, Payload: []byte("x")}, {Group: 3, ID: 4, Payload: []byte("y")},
			}}, nil
		}}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: h})
		client, _ := e.dial(nil)
		ctx := timeout(t)
		f, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"s"}, Name: "t", Start: wire.Location{Group: 3}, End: wire.Location{Group: 3}})
		if err != nil {
			t.Fatal(err)
		}
		if ok := f.OK(); ok.End != (wire.Location{Group: 3, Object: 5}) || ok.GroupOrder != wire.GroupOrderAscending {
			t.Errorf("FETCH_OK end %v order %v, want {3 5} ascending", ok.End, ok.GroupOrder)
		}
		var got []string
		for {
			o, err := f.ReadObject(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, string(o.Payload))
		}
		if len(got) != 2 || got[0] != "x" || got[1] != "y" {
			t.Errorf("objects %q, want x y", got)
		}
		_, err = client.Fetch(ctx, moqtransport.FetchOptions{Namespace: wire.Namespace{"s"}, Name: "empty", End: wire.Location{Group: 3}})
		var re *moqtransport.RequestError
		if !errors.As(err, &re) || re.Code != uint64(wire.FetchNoObjects) {
			t.Errorf("empty response: %v, want FETCH_ERROR NO_OBJECTS", err)
		}
	})
}

// TestFetchRequestFields: Handler.Fetch sees the FETCH's own fields
// (request ID, priority, group order, parameters) and, for a joining fetch,
// the joined subscription's request ID with the track and range resolved
// from it.
func TestFetchRequestFields(t *testing.T) {
	name := wire.FullTrackName{Namespace: wire.Namespace{"fr"}, Name: "t"}
	tr := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	w, err := tr.OpenSubgroup(2, 0, moqtransport.SubgroupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteObject(0, []byte("a"), nil); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	tracks := &moqtransport.Tracks{}
	tracks.Add(tr)
	h := tracks.Handler()
	serve := h.Fetch
	reqs := make(chan moqtransport.FetchRequest, 2)
	h.Fetch = func(ctx context.Context, s *moqtransport.Session, req *moqtransport.FetchRequest) (*moqtransport.FetchResponse, error) {
		reqs <- *req
		return serve(ctx, s, req)
	}
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: h})
	client, _ := e.dial(nil)
	ctx := timeout(t)

	params := wire.Parameters{{Type: 0x3c, Value: 9}}
	f, err := client.Fetch(ctx, moqtransport.FetchOptions{
		Priority: 7, GroupOrder: wire.GroupOrderDescending, Params: params,
		Namespace: name.Namespace, Name: name.Name, Start: wire.Location{Group: 2}, End: wire.Location{Group: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = f.Cancel()
	got := <-reqs
	if got.Joining || got.Priority != 7 || got.GroupOrder != wire.GroupOrderDescending ||
		got.Namespace.String() != "fr" || got.Name != "t" || got.Start != (wire.Location{Group: 2}) || got.End != (wire.Location{Group: 2}) ||
		len(got.Params) != 1 || got.Params[0].Type != 0x3c || got.Params[0].Value != 9 {
		t.Errorf("standalone FetchRequest %+v", got)
	}

	sub, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	jf, err := client.Fetch(ctx, moqtransport.FetchOptions{Joining: sub, JoiningStart: 0})
	if err != nil {
		t.Fatal(err)
	}
	_ = jf.Cancel()
	got = <-reqs
	if !got.Joining || got.JoinedRequestID != sub.RequestID() || got.RequestID == sub.RequestID() ||
		got.Name != "t" || got.Start != (wire.Location{Group: 2}) || got.End != (wire.Location{Group: 2, Object: 1}) {
		t.Errorf("joining FetchRequest %+v, want joined %d, range {2 0}..{2 1}", got, sub.RequestID())
	}
}

// TestHandlerErrorOfAnotherRegistry: a handler error of another request's
// registry is answered by its code's name, not its number:
// ErrTrackNotFound (SUBSCRIBE_ERROR 0x4) refusing a PUBLISH_NAMESPACE is
// not PUBLISH_NAMESPACE_ERROR 0x4 UNINTERESTED, and
// PUBLISH_NAMESPACE_ERROR UNINTERESTED (0x4) refusing a SUBSCRIBE is not
// SUBSCRIBE_ERROR 0x4 TRACK_DOES_NOT_EXIST; FETCH_ERROR TIMEOUT refusing
// a SUBSCRIBE is SUBSCRIBE_ERROR TIMEOUT.
func TestHandlerErrorOfAnotherRegistry(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		h := moqtransport.Handler{
			PublishNamespace: func(context.Context, *moqtransport.Session, *moqtransport.PublishNamespaceRequest) error {
				return moqtransport.ErrTrackNotFound
			},
			Subscribe: func(_ context.Context, _ *moqtransport.Session, req *moqtransport.SubscribeRequest) (*moqtransport.Track, error) {
				if req.Name == "timeout" {
					return nil, moqtransport.FetchError(wire.FetchTimeout, "too slow")
				}
				return nil, moqtransport.NamespaceError(wire.NamespaceUninterested, "not wanted")
			},
		}
		e := newEnv(t, scheme, &moqtransport.Config{Handler: h})
		client, _ := e.dial(nil)
		ctx := timeout(t)
		_, err := client.PublishNamespace(ctx, wire.Namespace{"n"}, nil)
		var re *moqtransport.RequestError
		if !errors.As(err, &re) || re.Code != uint64(wire.NamespaceInternalError) || !strings.Contains(re.Reason, "TRACK_DOES_NOT_EXIST") {
			t.Errorf("PUBLISH_NAMESPACE refused with ErrTrackNotFound: %v, want INTERNAL_ERROR naming TRACK_DOES_NOT_EXIST", err)
		}
		_, err = client.Subscribe(ctx, wire.Namespace{"n"}, "t", moqtransport.SubscribeOptions{})
		if !errors.As(err, &re) || re.Code != uint64(wire.SubscribeInternalError) || errors.Is(err, moqtransport.ErrTrackNotFound) {
			t.Errorf("SUBSCRIBE refused with PUBLISH_NAMESPACE_ERROR UNINTERESTED: %v, want SUBSCRIBE_ERROR INTERNAL_ERROR", err)
		}
		_, err = client.Subscribe(ctx, wire.Namespace{"n"}, "timeout", moqtransport.SubscribeOptions{})
		if !errors.As(err, &re) || re.Code != uint64(wire.SubscribeTimeout) {
			t.Errorf("SUBSCRIBE refused with FETCH_ERROR TIMEOUT: %v, want SUBSCRIBE_ERROR TIMEOUT", err)
		}
	})
}
