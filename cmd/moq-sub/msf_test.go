package main

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"slices"
	"testing"

	"github.com/moqgo/moq/catalog"
	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/moqtransport"
)

// initOf is a minimal fragmented init segment (ftyp, moov with one trak
// and its trex) of track id with handler ("vide", "soun"): what ParseInit,
// FilterInit and MergeInits read.
func initOf(id uint32, handler string) []byte {
	u32 := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	tkhd := make([]byte, 80)
	binary.BigEndian.PutUint32(tkhd[8:], id)
	mdhd := make([]byte, 20)
	binary.BigEndian.PutUint32(mdhd[8:], 90000)
	hdlr := slices.Concat(make([]byte, 4), []byte(handler), make([]byte, 13))
	trak := mp4Box("trak", mp4Box("tkhd", []byte{0, 0, 0, 3}, tkhd),
		mp4Box("mdia", mp4Box("mdhd", u32(0), mdhd), mp4Box("hdlr", u32(0), hdlr), mp4Box("minf")))
	trex := mp4Box("trex", u32(0), u32(id), u32(1), u32(3000), u32(0), u32(0))
	return slices.Concat(mp4Box("ftyp", []byte("iso6"), u32(0), []byte("cmfc")),
		mp4Box("moov", mp4Box("mvhd", u32(0), make([]byte, 96)), trak, mp4Box("mvex", trex)))
}

func msfCMAF(name, role string, init []byte) catalog.MSFTrackInfo {
	return catalog.MSFTrackInfo{Name: name, Packaging: catalog.MSFPackagingCMAF, IsLive: true, Role: role, InitData: init}
}

// TestSubMSFSameTrackID: per-track init segments that all use track_ID 1
// (Eyevinn's mlmpub) merge into one with distinct track IDs (tkhd and
// trex), and each track's fragments are rewritten to carry its new ID.
func TestSubMSFSameTrackID(t *testing.T) {
	m := &catalog.MSF{Tracks: []catalog.MSFTrackInfo{msfCMAF("video", "video", initOf(1, "vide")), msfCMAF("audio", "audio", initOf(1, "soun"))}}
	init, tracks, err := msfTracks(m, moqtransport.Namespace{"live"}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	in, err := fmp4.ParseInit(init)
	if err != nil {
		t.Fatalf("the merged init segment: %v", err)
	}
	if len(in.Tracks) != 2 || len(tracks) != 2 || in.Tracks[0].ID == in.Tracks[1].ID {
		t.Fatalf("merged init segment %s, tracks %+v: want two distinct track IDs", in, tracks)
	}
	for i, c := range tracks {
		trak, ok := in.Track(c.id)
		if !ok || trak.Kind != []fmp4.Kind{fmp4.KindVideo, fmp4.KindAudio}[i] || c.srcID() != 1 {
			t.Errorf("track %s: id %d (source %d) is %v in the merged init segment %s", c.name, c.id, c.srcID(), trak, in)
		}
		// Its fragments (track_ID 1 on the wire) come out with its ID.
		var out []byte
		write := checkedWrite(slog.New(slog.DiscardHandler), c, func(id uint32, obj *moqtransport.Object) error {
			out = obj.Payload
			return nil
		})
		payload := fragmentOf(1, 0xab)
		if err := write(&moqtransport.Object{Payload: payload}); err != nil {
			t.Fatal(err)
		}
		if id, err := fmp4.FragmentTrack(out); err != nil || id != c.id || !bytes.Equal(out[len(out)-1:], []byte{0xab}) {
			t.Errorf("track %s: written fragment of track %d (%v), want %d", c.name, id, err, c.id)
		}
		if id, _ := fmp4.FragmentTrack(payload); id != 1 {
			t.Errorf("track %s: the received object was changed in place", c.name)
		}
	}
}

// TestSubMSFAltGroup: of tracks that share an altGroup (renditions of one
// video) moq-sub plays one, the highest bitrate, unless --track names them;
// tracks of another altGroup, or none, are played as before.
func TestSubMSFAltGroup(t *testing.T) {
	group := func(ti catalog.MSFTrackInfo, g, bitrate uint64) catalog.MSFTrackInfo {
		ti.AltGroup, ti.Bitrate = &g, &bitrate
		return ti
	}
	m := &catalog.MSF{Tracks: []catalog.MSFTrackInfo{
		group(msfCMAF("video-360p", "video", initOf(1, "vide")), 1, 800_000),
		group(msfCMAF("video-720p", "video", initOf(1, "vide")), 1, 3_000_000),
		group(msfCMAF("audio", "audio", initOf(1, "soun")), 2, 128_000),
	}}
	ns := moqtransport.Namespace{"live"}
	_, tracks, err := msfTracks(m, ns, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if got := describe(tracks); got != "video-720p (video), audio (audio)" {
		t.Errorf("tracks %s, want the 720p rendition and the audio", got)
	}
	_, tracks, err = msfTracks(m, ns, []string{"video-360p", "audio"}, slog.New(slog.DiscardHandler))
	if err != nil || describe(tracks) != "video-360p (video), audio (audio)" {
		t.Errorf("--track video-360p --track audio: %s, %v", describe(tracks), err)
	}
}
