package fmp4

import (
	"time"
)

// DefaultGroupDuration is how much media time a group spans when the input
// has no video to group by key frames.
const DefaultGroupDuration = 2 * time.Second

// Placement says where a fragment goes in its track: a MoQT group and an
// object ID within it.
type Placement struct {
	Group, Object uint64
	// NewGroup: the fragment is the first object of Group; the track's
	// previous group (if any) is complete.
	NewGroup bool
	// MissedKeyframe: the fragment is of a video track and has a key frame
	// after its first sample, which cannot start a group (object 0 of a
	// group must be a random-access point, or a subscriber that joins
	// there starts with frames it cannot decode): the input's fragments
	// are not cut at key frames, and its groups are longer than its GOPs.
	MissedKeyframe bool
}

// Grouper places fragments into MoQT groups, one subgroup each:
//
//   - The primary track is the first video track in moov order. Its key
//     frames start groups: each fragment that starts with a key frame
//     (after its first fragment) opens the next group. A key frame in the
//     middle of a fragment does not (Placement.MissedKeyframe).
//   - Every other video track starts a group at each of its own key frames.
//   - Every other track (audio, text) starts a group with its first
//     fragment after the primary track started one, so that a subscriber
//     that joins at a group boundary gets audio from the same moment.
//   - Without a video track, the primary track is the first track and it
//     starts a group every groupDuration of media time (by decode time).
//
// Group IDs count the primary track's groups from 0, so the tracks' group
// IDs agree: group N of the audio track starts with the key frame that
// starts group N of the video track. A track whose key frames come more
// often than the primary's takes the next free ID instead, so IDs always
// increase. Object IDs run 0, 1, 2... within each group.
type Grouper struct {
	primary uint32
	byTime  bool
	span    uint64 // a group's media time in the primary's timescale (byTime)
	epoch   uint64 // the primary's current group
	epochAt uint64 // where that group started (byTime)
	started bool   // the primary has had a fragment
	tracks  map[uint32]*trackGroups
}

type trackGroups struct {
	video bool
	open  bool // a group is open (the track had a fragment)
	group uint64
	next  uint64 // next object ID in group
}

// NewGrouper groups the tracks of in; groupDuration (0: the default) is for
// input without video.
func NewGrouper(in *Init, groupDuration time.Duration) *Grouper {
	if groupDuration <= 0 {
		groupDuration = DefaultGroupDuration
	}
	g := &Grouper{tracks: map[uint32]*trackGroups{}}
	primary := -1
	for i, t := range in.Tracks {
		g.tracks[t.ID] = &trackGroups{video: t.Kind == KindVideo}
		if primary < 0 && t.Kind == KindVideo {
			primary = i
		}
	}
	if primary < 0 {
		primary = 0
		g.byTime = true
		span := float64(in.Tracks[0].Timescale) * groupDuration.Seconds()
		g.span = uint64(max(span, 1))
		g.tracks[in.Tracks[0].ID].video = false
	}
	g.primary = in.Tracks[primary].ID
	return g
}

// Primary returns the track that paces the groups, and whether it does so
// by time (no video) rather than by key frames.
func (g *Grouper) Primary() (id uint32, byTime bool) { return g.primary, g.byTime }

// Place returns where f goes. Fragments must be given in stream order.
func (g *Grouper) Place(f *Fragment) Placement {
	st := g.tracks[f.TrackID]
	if st == nil { // the Splitter only yields tracks of the init segment
		st = &trackGroups{}
		g.tracks[f.TrackID] = st
	}
	if f.TrackID == g.primary {
		g.advance(f)
	}
	var p Placement
	switch {
	case !st.open:
		p.NewGroup = true
		p.Group = g.epoch
	case st.video && f.Keyframe:
		p.NewGroup = true
		p.Group = max(g.epoch, st.group+1)
	case !st.video && st.group < g.epoch:
		p.NewGroup = true
		p.Group = g.epoch
	default:
		p.Group = st.group
	}
	if p.NewGroup {
		st.open, st.group, st.next = true, p.Group, 0
	}
	p.Object = st.next
	st.next++
	p.MissedKeyframe = st.video && f.LateSync && !f.Keyframe
	return p
}

// advance moves the primary's group on for its fragment f.
func (g *Grouper) advance(f *Fragment) {
	if !g.started {
		g.started = true
		g.epochAt = f.DecodeTime
		return
	}
	if !g.byTime {
		if f.Keyframe {
			g.epoch++
		}
		return
	}
	switch {
	case f.DecodeTime < g.epochAt:
		// The decode time went back: a discontinuity starts a group.
		g.epoch++
		g.epochAt = f.DecodeTime
	case f.DecodeTime-g.epochAt >= g.span:
		g.epoch++
		g.epochAt += (f.DecodeTime - g.epochAt) / g.span * g.span
	}
}

// Last returns a track's current group and the next object ID in it, and
// whether the track has had a fragment: where its End of Track goes.
func (g *Grouper) Last(track uint32) (group, next uint64, ok bool) {
	st := g.tracks[track]
	if st == nil || !st.open {
		return 0, 0, false
	}
	return st.group, st.next, true
}
