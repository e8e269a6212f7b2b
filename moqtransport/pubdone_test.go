package moqtransport_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// processed returns once the client has handled every control message
// sent before: it answers a TRACK_STATUS (refused: nothing is served) in
// order.
func (rs *hostileServer) processed(id uint64) {
	rs.t.Helper()
	rs.send(&wire.TrackStatus{RequestID: id, Namespace: heldNS, Name: "none", Forward: true, Filter: wire.Filter{Type: wire.FilterLargestObject}})
	if m, ok := rs.next().(*wire.TrackStatusError); !ok || m.RequestID != id {
		rs.t.Fatalf("got %v, want TRACK_STATUS_ERROR %d", m, id)
	}
}

func oneObjectStream(alias uint64, payload string) [][]byte {
	hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: alias, GroupID: 1})
	return [][]byte{hdr, putVarint(putVarint(nil, 0), uint64(len(payload))), []byte(payload)}
}

func readPayloads(ctx context.Context, sub *moqtransport.Subscription) ([]string, error) {
	var got []string
	for {
		o, err := sub.ReadObject(ctx)
		if err != nil {
			return got, err
		}
		got = append(got, string(o.Payload))
	}
}

// PUBLISH_DONE that does not know its stream count (StreamCountUnknown)
// leaves the streams that follow it their grace (§9.12: the control
// stream often overtakes them; "Subscribers SHOULD use a timeout"): the
// subscription ended at once, and a stream opened just after was stopped
// as one of an ended subscription.
func TestPublishDoneUnknownCountWaitsForStreams(t *testing.T) {
	rs := newHostileServer(t, "moqt", moqtransport.Config{PendingStreamTimeout: 500 * time.Millisecond})
	rs.connect()
	sub := rs.subscribed("t", 7)
	rs.send(&wire.PublishDone{RequestID: sub.RequestID(), StatusCode: wire.DoneTrackEnded, StreamCount: wire.StreamCountUnknown})
	rs.processed(1)
	finishStream(t, openUni(t, rs.conn, oneObjectStream(7, "late")...))
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	got, err := readPayloads(ctx, sub)
	if err != io.EOF || len(got) != 1 || got[0] != "late" {
		t.Errorf("objects %q then %v; want the stream opened after PUBLISH_DONE, then io.EOF", got, err)
	}
}

// PUBLISH_DONE's grace does not cut a stream being read: the
// subscription ends once it has (it ended at the grace, a normal end that
// dropped the stream's last object). A stream that comes after the grace
// is stopped.
func TestPublishDoneGraceKeepsStreamBeingRead(t *testing.T) {
	const grace = time.Second
	rs := newHostileServer(t, "moqt", moqtransport.Config{PendingStreamTimeout: grace})
	rs.connect()
	sub := rs.subscribed("t", 7)
	parts := oneObjectStream(7, "0123456789")
	str := openUni(t, rs.conn, parts[0], parts[1], parts[2][:3])
	rs.send(&wire.PublishDone{RequestID: sub.RequestID(), StatusCode: wire.DoneTrackEnded, StreamCount: 1})
	// The grace passes while the object is half sent: a timer is what is
	// tested, so time passes.
	time.Sleep(grace + grace/2)
	if _, err := str.Write(parts[2][3:]); err != nil {
		t.Fatalf("the rest of the object: %v", err)
	}
	finishStream(t, str)
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	got, err := readPayloads(ctx, sub)
	if err != io.EOF || len(got) != 1 || got[0] != "0123456789" {
		t.Errorf("objects %q then %v; want the object finished after the grace, then io.EOF", got, err)
	}
}

// An ended subscription stops the data streams it was still reading
// (§9.12, STOP_SENDING on all its streams): they went on being read into
// a closed track.
func TestUnsubscribeStopsOpenStreams(t *testing.T) {
	rs := newHostileServer(t, "moqt", moqtransport.Config{})
	rs.connect()
	sub := rs.subscribed("t", 7)
	hdr, _ := wire.AppendSubgroupHeader(nil, &wire.SubgroupHeader{TrackAlias: 7, GroupID: 1})
	// An object declaring 1 MiB, of which a few bytes come.
	str := openUni(t, rs.conn, hdr, putVarint(putVarint(nil, 0), 1<<20), []byte("abc"))
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	for moqtransport.SubscriptionReading(sub) == 0 {
		if ctx.Err() != nil {
			t.Fatal("the stream was not taken")
		}
		time.Sleep(time.Millisecond)
	}
	if err := sub.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	err, after := streamStopped(str, hostileWait)
	var se *moqtransport.StreamError
	if !errors.As(err, &se) {
		t.Errorf("the open stream was not stopped after UNSUBSCRIBE (%v): %v", after, err)
	}
}

// A negative MaxPendingStreams (no stream waits for its alias) still
// takes the streams of a known alias: every stream was refused.
func TestNegativeMaxPendingStreamsTakesKnownAlias(t *testing.T) {
	rs := newHostileServer(t, "moqt", moqtransport.Config{MaxPendingStreams: -1})
	rs.connect()
	sub := rs.subscribed("t", 7)
	finishStream(t, openUni(t, rs.conn, oneObjectStream(7, "x")...))
	ctx, cancel := context.WithTimeout(context.Background(), hostileWait)
	defer cancel()
	if o, err := sub.ReadObject(ctx); err != nil || string(o.Payload) != "x" {
		t.Errorf("ReadObject: %v, %v; want x", o, err)
	}
}
