package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/moqgo/moq/catalog"
	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/moqtransport"
)

// fromMSF reads the MSF catalog (track "catalog") and picks the tracks to
// play: those named with --track, or every cmaf track whose role is video
// or audio (or, without a role, whose init segment says so). Their init
// segments come from the catalog, one per track or one shared, and are
// merged into the one the output starts with.
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
	return msfTracks(m, s.ns, s.cfg.tracks)
}

// msfTracks resolves the tracks of an MSF catalog in namespace ns to play
// and their merged init segment.
func msfTracks(m *catalog.MSF, ns moqtransport.Namespace, names []string) ([]byte, []chosen, error) {
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
	}
	var inits [][]byte
	var tracks []chosen
	used := map[uint32]bool{}
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
		trak, err := msfTrak(t, in, used)
		if err != nil {
			return nil, nil, err
		}
		if len(names) == 0 && trak.Kind != fmp4.KindVideo && trak.Kind != fmp4.KindAudio {
			continue
		}
		used[trak.ID] = true
		if !slices.ContainsFunc(inits, func(b []byte) bool { return bytes.Equal(b, t.InitData) }) {
			inits = append(inits, t.InitData)
		}
		tracks = append(tracks, chosen{name: t.Name, id: trak.ID, kind: trak.Kind})
	}
	if len(tracks) == 0 {
		return nil, nil, fmt.Errorf("the MSF catalog has no video or audio track (it has %s)", msfNames(m))
	}
	merged, err := fmp4.MergeInits(inits...)
	if err != nil {
		return nil, nil, fmt.Errorf("merging the tracks' init segments: %w", err)
	}
	init, err := fmp4.FilterInit(merged, func(id uint32) bool { return used[id] })
	if err != nil {
		return nil, nil, fmt.Errorf("the init segment: %w", err)
	}
	return init, tracks, nil
}

// msfTrak finds an MSF track's trak in its init data: the only one, the
// one whose track_ID its name carries ("{id}.m4s"), or the first unused
// one of its role.
func msfTrak(t catalog.MSFTrackInfo, in *fmp4.Init, used map[uint32]bool) (*fmp4.Track, error) {
	if len(in.Tracks) == 1 {
		if used[in.Tracks[0].ID] {
			return nil, fmt.Errorf("track %s: its init data's track_ID %d is another track's too", t.Name, in.Tracks[0].ID)
		}
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
