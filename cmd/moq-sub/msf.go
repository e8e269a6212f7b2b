package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/moqgo/moq/catalog"
	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/moqtransport"
)

// fromMSF reads the MSF catalog (track "catalog") and picks the tracks to
// play: those named with --track, or every cmaf track whose role is video
// or audio (or, without a role, whose init segment says so), one of each
// altGroup. Their init segments come from the catalog, one per track or
// one shared, and are merged into the one the output starts with.
func (s *subscriber) fromMSF(ctx context.Context, metaSubs *[]*moqtransport.Subscription) ([]byte, []chosen, error) {
	b, sub, err := s.first(ctx, catalog.MSFTrack)
	if sub != nil {
		*metaSubs = append(*metaSubs, sub)
	}
	if err != nil {
		return nil, nil, s.failure(ctx, err)
	}
	m, err := catalog.ParseMSF(b)
	if err != nil {
		return nil, nil, fmt.Errorf("the MSF catalog: %w", err)
	}
	s.log.Info("MSF catalog", "version", m.Version, "tracks", len(m.Tracks))
	return msfTracks(m, s.ns, s.cfg.tracks, s.log)
}

// msfTracks resolves the tracks of an MSF catalog in namespace ns to play
// and their merged init segment. Tracks whose traks have the same track_ID
// (per-track init segments that all use ID 1, as Eyevinn's mlmpub writes
// them) get distinct IDs in the merged init segment; chosen.src keeps the
// ID their fragments carry, which checkedWrite rewrites.
func msfTracks(m *catalog.MSF, ns moqtransport.Namespace, names []string, log *slog.Logger) ([]byte, []chosen, error) {
	var picked []catalog.MSFTrackInfo
	if len(names) > 0 {
		for _, n := range names {
			t, ok := m.Track(n)
			if !ok {
				return nil, nil, fmt.Errorf("--track %q is not in the MSF catalog, which has %s", n, msfNames(m))
			}
			if !slices.ContainsFunc(picked, func(p catalog.MSFTrackInfo) bool { return p.Name == n }) {
				picked = append(picked, t)
			}
		}
	} else {
		for _, t := range m.Tracks {
			if t.Packaging == catalog.MSFPackagingCMAF && (t.Role == "" || t.Role == catalog.MSFRoleVideo || t.Role == catalog.MSFRoleAudio) {
				picked = append(picked, t)
			}
		}
		if len(picked) == 0 {
			return nil, nil, fmt.Errorf("the MSF catalog has no cmaf video or audio track (it has %s)", msfNames(m))
		}
		picked = oneOfEachAltGroup(picked, log)
	}
	type resolved struct {
		t    catalog.MSFTrackInfo
		trak *fmp4.Track
	}
	var rs []resolved
	used := map[string]map[uint32]bool{} // the traks taken of each init segment
	maxID := uint32(0)
	for _, t := range picked {
		if t.Packaging != catalog.MSFPackagingCMAF {
			return nil, nil, fmt.Errorf("track %s has packaging %q: moq-sub plays cmaf only", t.Name, t.Packaging)
		}
		if t.Namespace != nil && !moqtransport.ParseNamespace(*t.Namespace).Equal(ns) {
			return nil, nil, fmt.Errorf("track %s is in namespace %q: moq-sub plays the catalog's own namespace (%s) only", t.Name, *t.Namespace, ns)
		}
		if len(t.InitData) == 0 {
			return nil, nil, fmt.Errorf("track %s has no init data in the MSF catalog", t.Name)
		}
		in, err := fmp4.ParseInit(t.InitData)
		if err != nil {
			return nil, nil, fmt.Errorf("the init data of track %s: %w", t.Name, err)
		}
		key := string(t.InitData)
		if used[key] == nil {
			used[key] = map[uint32]bool{}
		}
		trak, err := msfTrak(t, in, used[key])
		if err != nil {
			return nil, nil, err
		}
		if len(names) == 0 && trak.Kind != fmp4.KindVideo && trak.Kind != fmp4.KindAudio {
			continue
		}
		used[key][trak.ID] = true
		rs = append(rs, resolved{t, trak})
		maxID = max(maxID, trak.ID)
	}
	if len(rs) == 0 {
		return nil, nil, fmt.Errorf("the MSF catalog has no video or audio track (it has %s)", msfNames(m))
	}
	// One single-trak init segment per track, renumbered when its ID is
	// taken (by a new ID above every track's own, so that none is taken
	// from a later track), merged in the order of the tracks.
	var inits [][]byte
	var tracks []chosen
	ids := map[uint32]bool{}
	for _, r := range rs {
		id := r.trak.ID
		if ids[id] {
			maxID++
			id = maxID
		}
		ids[id] = true
		one, err := fmp4.FilterInit(r.t.InitData, func(t uint32) bool { return t == r.trak.ID })
		if err == nil && id != r.trak.ID {
			one, err = fmp4.RenumberInit(one, r.trak.ID, id)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("the init data of track %s: %w", r.t.Name, err)
		}
		inits = append(inits, one)
		tracks = append(tracks, chosen{name: r.t.Name, id: id, src: r.trak.ID, kind: r.trak.Kind})
	}
	init, err := fmp4.MergeInits(inits...)
	if err != nil {
		return nil, nil, fmt.Errorf("merging the tracks' init segments: %w", err)
	}
	return init, tracks, nil
}

// oneOfEachAltGroup keeps one track of each altGroup (the tracks of one
// are alternatives, such as the renditions of a video): the one with the
// highest bitrate, or the first when none has a higher one. The order of
// the tracks is kept.
func oneOfEachAltGroup(ts []catalog.MSFTrackInfo, log *slog.Logger) []catalog.MSFTrackInfo {
	best := map[uint64]int{} // altGroup: index in ts of its pick
	bitrate := func(t catalog.MSFTrackInfo) uint64 {
		if t.Bitrate == nil {
			return 0
		}
		return *t.Bitrate
	}
	for i, t := range ts {
		if t.AltGroup == nil {
			continue
		}
		if b, ok := best[*t.AltGroup]; !ok || bitrate(t) > bitrate(ts[b]) {
			best[*t.AltGroup] = i
		}
	}
	var out []catalog.MSFTrackInfo
	for i, t := range ts {
		if t.AltGroup != nil && best[*t.AltGroup] != i {
			log.Info("not playing an alternative track (name it with --track to play it instead)", "track", t.Name,
				"alt_group", *t.AltGroup, "playing", ts[best[*t.AltGroup]].Name)
			continue
		}
		out = append(out, t)
	}
	return out
}

// msfTrak finds an MSF track's trak in its init data: the only one, the
// one whose track_ID its name carries ("{id}.m4s"), or the first one of
// its role that no other track of the same init data has (used).
func msfTrak(t catalog.MSFTrackInfo, in *fmp4.Init, used map[uint32]bool) (*fmp4.Track, error) {
	if len(in.Tracks) == 1 {
		return &in.Tracks[0], nil
	}
	if id, ok := strings.CutSuffix(t.Name, ".m4s"); ok {
		if n, err := strconv.ParseUint(id, 10, 32); err == nil {
			if trak, ok := in.Track(uint32(n)); ok && !used[trak.ID] {
				return trak, nil
			}
		}
	}
	for i := range in.Tracks {
		trak := &in.Tracks[i]
		if !used[trak.ID] && t.Role != "" && trak.Kind.String() == t.Role {
			return trak, nil
		}
	}
	return nil, fmt.Errorf("track %s: no trak of its init data (%s) matches it", t.Name, in)
}

func msfNames(m *catalog.MSF) string {
	var ns []string
	for _, t := range m.Tracks {
		ns = append(ns, t.Name)
	}
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}
