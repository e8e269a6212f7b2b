package moqtransport_test

import (
	"errors"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// An object whose extension headers break draft-14 §11's rules makes its
// track malformed (§2.5): the subscriber sends UNSUBSCRIBE and the
// subscription ends with MALFORMED_TRACK, which a relay passes
// downstream. Such objects were cached and forwarded as they were.
func TestExtensionRulesMakeTrackMalformed(t *testing.T) {
	immutableNested, _ := wire.BuildExtensions(wire.KeyValue{Type: wire.ExtImmutable, Bytes: []byte{0x0b, 0x00}})
	twoGaps, _ := wire.BuildExtensions(wire.KeyValue{Type: wire.ExtPriorObjectIDGap, Value: 1}, wire.KeyValue{Type: wire.ExtPriorObjectIDGap, Value: 1})
	for _, c := range []struct {
		name string
		ext  wire.Extensions
		id   uint64
	}{
		{"Immutable Extensions nested", immutableNested, 0},
		{"two Prior Object ID Gaps", twoGaps, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs := newHostileServer(t, "moqt", moqtransport.Config{})
			rs.connect()
			sub := rs.subscribed("t", 7)
			sh := wire.SubgroupHeader{TrackAlias: 7, GroupID: 1, Extensions: true}
			hdr, _ := wire.AppendSubgroupHeader(nil, &sh)
			obj, err := wire.NewSubgroupState(sh).AppendObject(nil, &wire.ObjectHeader{ID: c.id, Extensions: c.ext, PayloadLength: 1})
			if err != nil {
				t.Fatal(err)
			}
			str := openUni(t, rs.conn, hdr, obj, []byte("a"))
			defer finishStream(t, str)
			m, ok := rs.next().(*wire.Unsubscribe)
			if !ok || m.RequestID != sub.RequestID() {
				t.Fatalf("got %v, want UNSUBSCRIBE %d", m, sub.RequestID())
			}
			var re *moqtransport.RequestError
			if err := sub.Err(); !errors.As(err, &re) || re.Code != uint64(wire.DoneMalformedTrack) {
				t.Errorf("subscription ended with %v, want PUBLISH_DONE MALFORMED_TRACK", err)
			}
		})
	}
}
