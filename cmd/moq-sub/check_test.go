package main

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/moqtransport"
)

// mp4Box is an ISO BMFF box of type typ around payload.
func mp4Box(typ string, payload ...[]byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, 0)
	b = append(b, typ...)
	b = append(b, slices.Concat(payload...)...)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

// fragmentOf is a minimal moof+mdat of track id (what FragmentTrack reads).
func fragmentOf(id uint32, data ...byte) []byte {
	tfhd := mp4Box("tfhd", []byte{0, 0x02, 0, 0}, binary.BigEndian.AppendUint32(nil, id))
	return slices.Concat(mp4Box("moof", mp4Box("traf", tfhd)), mp4Box("mdat", data))
}

// TestSubSkippedObjectDropsGroup: when an object of a group is not a
// fragment of the track (here object 0, the key frame, and later object 2
// of another group), the objects after it in its group are not written;
// the next group starts again.
func TestSubSkippedObjectDropsGroup(t *testing.T) {
	c := chosen{name: "1.m4s", id: 1, kind: fmp4.KindVideo}
	var got []string
	write := checkedWrite(slog.New(slog.DiscardHandler), c, func(id uint32, obj *moqtransport.Object) error {
		got = append(got, fmt.Sprintf("%d.%d", obj.Group, obj.ID))
		return nil
	})
	o := newOrderer(slog.New(slog.DiscardHandler), 0, write)
	obj := func(g, id uint64, payload []byte) *moqtransport.Object {
		return &moqtransport.Object{Group: g, ID: id, Payload: payload}
	}
	good := func(g, id uint64) *moqtransport.Object { return obj(g, id, fragmentOf(1, byte(g), byte(id))) }
	steps := []*moqtransport.Object{
		good(0, 0), good(0, 1),
		obj(1, 0, []byte("not a fragment")), good(1, 1), good(1, 2), // a broken key frame
		good(2, 0), good(2, 1), obj(2, 2, fragmentOf(2, 9)), good(2, 3), // another track's fragment
		good(3, 0), good(3, 1),
	}
	for i, ob := range steps {
		if i > 0 && ob.Group != steps[i-1].Group {
			if err := o.groupEnd(steps[i-1].Group, false); err != nil {
				t.Fatal(err)
			}
		}
		if err := o.object(ob); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"0.0", "0.1", "2.0", "2.1", "3.0", "3.1"}; !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
}
