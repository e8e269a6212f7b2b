package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moqgo/moq/catalog"
	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/moqtransport"
)

// catalogTrack is the name of the track that carries the catalog.
const catalogTrack = ".catalog"

// Subscriber priorities: the catalog and the init segment first, then
// audio before video (quic-go sends a lower urgency, priority/32, first).
const (
	metaPriority  = 0
	audioPriority = 96
	videoPriority = moqtransport.DefaultPriority
)

// defaultInitTimeout bounds the wait for a catalog or init object that was
// published before our subscription, once FETCH failed to get it.
const defaultInitTimeout = 5 * time.Second

// Bounds of a track's reordering buffer (objects of later groups held until
// the groups before them are written): past them, the current group is
// given up, or a missing group no longer waited for.
const (
	maxPendingGroups = 4
	maxPendingBytes  = 32 << 20
	maxGapWait       = 500 * time.Millisecond
)

// subscriber plays one broadcast.
type subscriber struct {
	cfg  config
	log  *slog.Logger
	sess *moqtransport.Session
	ns   moqtransport.Namespace
	out  *output
}

// output puts whole objects on stdout through a bounded queue (cli.Output)
// that a stalled reader cannot make block. When the queue has no room for
// an object, its track drops objects until the next group start (object 0,
// a key frame) that fits: the output stays decodable and goes on with the
// newest media, as --skip-behind does for a slow link. One line is logged
// when such an episode starts and one when every track has resumed.
type output struct {
	q   *cli.Output
	log *slog.Logger

	mu       sync.Mutex
	dropping map[uint32]bool // tracks waiting for a group start with room
	dropped  int             // objects dropped in the current episode
}

func newOutput(q *cli.Output, log *slog.Logger) *output {
	return &output{q: q, log: log, dropping: map[uint32]bool{}}
}

// write queues the init segment; it is the first chunk, so it always fits.
func (o *output) write(b []byte) error {
	ok, err := o.q.TryWrite(b)
	if err == nil && !ok {
		err = errors.New("stdout has no room for the init segment")
	}
	return err
}

// object queues an object of track id, or drops it (see output).
func (o *output) object(id uint32, obj *moqtransport.Object) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dropping[id] && obj.ID != 0 {
		o.dropped++
		return nil
	}
	ok, err := o.q.TryWrite(obj.Payload)
	if err != nil {
		return err
	}
	if !ok {
		if len(o.dropping) == 0 {
			_, queued, _ := o.q.Stats()
			o.log.Warn("stdout is not keeping up: dropping media until the next group start", "track_id", id, "group", obj.Group, "object", obj.ID, "queued_bytes", queued)
		}
		if !o.dropping[id] {
			o.dropping[id] = true
		}
		o.dropped++
		return nil
	}
	if o.dropping[id] {
		delete(o.dropping, id)
		if len(o.dropping) == 0 {
			o.log.Info("stdout caught up: resumed at a group start", "track_id", id, "group", obj.Group, "dropped_objects", o.dropped)
			o.dropped = 0
		}
	}
	return nil
}

// chosen is a track to play.
type chosen struct {
	name string
	id   uint32 // its track_ID in the output
	// src is the track_ID its fragments carry when it is not id (0: id):
	// an MSF track renumbered because another track had its ID.
	src  uint32
	kind fmp4.Kind
}

// srcID is the track_ID the track's fragments carry.
func (c chosen) srcID() uint32 {
	if c.src != 0 {
		return c.src
	}
	return c.id
}

// priority is the track's subscriber priority.
func (c chosen) priority() uint8 {
	if c.kind == fmp4.KindVideo {
		return videoPriority
	}
	return audioPriority
}

func (s *subscriber) run(ctx context.Context) error {
	// The catalog and init subscriptions stay until the end: they cost
	// nothing once their one object came, and an UNSUBSCRIBE racing the
	// media SUBSCRIBEs trips a data race in the relay (reported).
	var metaSubs []*moqtransport.Subscription
	defer func() {
		for _, sub := range metaSubs {
			if s.sess.Err() == nil {
				_ = sub.Unsubscribe()
			}
		}
	}()
	// The init segment and the tracks: from the init track (with moq-rs's
	// catalog, or without a catalog), or from the MSF catalog.
	source := s.fromInitTrack
	if s.cfg.useMSF {
		source = s.fromMSF
	}
	init, tracks, err := source(ctx, &metaSubs)
	if err != nil {
		return err
	}
	var desc []string
	for _, c := range tracks {
		desc = append(desc, fmt.Sprintf("%s (%s)", c.name, c.kind))
	}
	if err := s.out.write(init); err != nil {
		return err
	}
	s.log.Info("playing", "tracks", strings.Join(desc, ", "))
	return s.playTracks(ctx, tracks)
}

// fromInitTrack reads the init segment from its track (0.mp4, or the one
// moq-rs's catalog names with --catalog) and picks the tracks to play; it
// returns the init segment cut down to them.
func (s *subscriber) fromInitTrack(ctx context.Context, metaSubs *[]*moqtransport.Subscription) ([]byte, []chosen, error) {
	var cat *catalog.Catalog
	initName := catalog.DefaultInitTrack
	if s.cfg.useCatalog {
		b, sub, err := s.first(ctx, catalogTrack)
		if sub != nil {
			*metaSubs = append(*metaSubs, sub)
		}
		if err != nil {
			return nil, nil, s.failure(ctx, err)
		}
		if cat, err = catalog.Parse(b); err != nil {
			return nil, nil, fmt.Errorf("the catalog: %w", err)
		}
		if initName, err = initTrackOf(cat, s.cfg.tracks); err != nil {
			return nil, nil, err
		}
		s.log.Info("catalog", "tracks", len(cat.Tracks), "init_track", initName)
	}
	initData, sub, err := s.first(ctx, initName)
	if sub != nil {
		*metaSubs = append(*metaSubs, sub)
	}
	if err != nil {
		return nil, nil, s.failure(ctx, err)
	}
	in, err := fmp4.ParseInit(initData)
	if err != nil {
		return nil, nil, fmt.Errorf("the init segment (track %s): %w", initName, err)
	}
	tracks, err := s.choose(cat, in)
	if err != nil {
		return nil, nil, err
	}
	keep := map[uint32]bool{}
	for _, c := range tracks {
		keep[c.id] = true
	}
	init, err := fmp4.FilterInit(in.Data, func(id uint32) bool { return keep[id] })
	if err != nil {
		return nil, nil, fmt.Errorf("the init segment (track %s): %w", initName, err)
	}
	return init, tracks, nil
}

// playTracks subscribes to the tracks and writes their objects until they
// end, ctx ends, or one fails.
func (s *subscriber) playTracks(ctx context.Context, tracks []chosen) error {
	subs := make([]*moqtransport.Subscription, len(tracks))
	joins := make([]*moqtransport.JoiningFetch, len(tracks))
	defer func() {
		for i, sub := range subs {
			if joins[i] != nil {
				joins[i].Cancel() // a no-op once play's join has
			}
			if sub != nil && s.sess.Err() == nil {
				_ = sub.Unsubscribe()
			}
		}
	}()
	for i, c := range tracks {
		// Largest Object: the subscription starts where the track is now,
		// and a joining FETCH alongside brings the current group's start
		// (play reads it).
		opts := moqtransport.SubscribeOptions{Priority: c.priority()}
		if s.cfg.skipBehind > 0 {
			// Newest group first: on a slow link the newest key frame
			// arrives early enough to skip ahead to it.
			opts.GroupOrder = moqtransport.GroupOrderDescending
		}
		sub, join, err := cli.SubscribeJoin(ctx, s.sess, s.ns, c.name, opts)
		if err != nil {
			return s.failure(ctx, fmt.Errorf("subscribing to %s: %w", c.name, err))
		}
		subs[i], joins[i] = sub, join
		if largest, ok := sub.Largest(); ok {
			s.log.Info("subscribed", "track", c.name, "largest", largest.String())
		} else {
			s.log.Info("subscribed", "track", c.name, "from_group", 0)
		}
	}
	if s.cfg.ready != nil {
		s.cfg.ready()
	}

	playCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(tracks))
	for i, c := range tracks {
		go func() {
			err := s.play(playCtx, c, subs[i], joins[i])
			if err != nil {
				cancel()
			}
			errs <- err
		}()
	}
	var first error
	for range tracks {
		if err := <-errs; err != nil && first == nil && !errors.Is(err, context.Canceled) {
			first = err
		}
	}
	if first != nil {
		return s.failure(ctx, first)
	}
	if ctx.Err() != nil {
		s.log.Info("interrupted: unsubscribing")
		return nil
	}
	s.log.Info("the tracks ended")
	return nil
}

// failure turns an error into run's result: nil when ctx ended (an
// interrupt), the session's end when it ended first.
func (s *subscriber) failure(ctx context.Context, err error) error {
	if ctx.Err() != nil && s.sess.Err() == nil {
		s.log.Info("interrupted")
		return nil
	}
	if serr := s.sess.Err(); serr != nil && !errors.Is(serr, moqtransport.ErrSessionClosed) {
		return fmt.Errorf("session ended: %w", serr)
	}
	return err
}

// initTrackOf returns the init track of the tracks to play (all of the
// catalog's unless names are given), which must share one.
func initTrackOf(cat *catalog.Catalog, names []string) (string, error) {
	if len(names) == 0 {
		for _, t := range cat.Tracks {
			names = append(names, t.Name)
		}
	}
	if len(names) == 0 {
		return "", errors.New("the catalog has no tracks")
	}
	var inits []string
	for _, n := range names {
		t, ok := cat.Track(n)
		if !ok {
			return "", fmt.Errorf("--track %q is not in the catalog, which has %s", n, catalogNames(cat))
		}
		init := catalog.DefaultInitTrack
		if t.InitTrack != nil {
			init = *t.InitTrack
		}
		if !slices.Contains(inits, init) {
			inits = append(inits, init)
		}
	}
	if len(inits) > 1 {
		return "", fmt.Errorf("the tracks use different init tracks (%s): pick tracks of one with --track", strings.Join(inits, ", "))
	}
	return inits[0], nil
}

func catalogNames(cat *catalog.Catalog) string {
	var ns []string
	for _, t := range cat.Tracks {
		ns = append(ns, t.Name)
	}
	return strings.Join(ns, ", ")
}

// trackName is the name moq-pub gives a track of the init segment.
func trackName(id uint32) string { return strconv.FormatUint(uint64(id), 10) + ".m4s" }

// choose picks the tracks to play: those named with --track, or every
// video and audio track. With a catalog, a track name maps to the trak
// whose track_ID it carries ("{id}.m4s"), or else to the trak at the same
// position as the track in the catalog (as moq-rs does).
func (s *subscriber) choose(cat *catalog.Catalog, in *fmp4.Init) ([]chosen, error) {
	var all []chosen
	if cat == nil {
		for _, t := range in.Tracks {
			all = append(all, chosen{name: trackName(t.ID), id: t.ID, kind: t.Kind})
		}
	} else {
		for i, ct := range cat.Tracks {
			var trak *fmp4.Track
			if id, ok := strings.CutSuffix(ct.Name, ".m4s"); ok {
				if n, err := strconv.ParseUint(id, 10, 32); err == nil {
					trak, _ = in.Track(uint32(n))
				}
			}
			if trak == nil && len(cat.Tracks) == len(in.Tracks) {
				trak = &in.Tracks[i]
			}
			if trak == nil {
				s.log.Warn("a catalog track matches no track of the init segment", "track", ct.Name)
				continue
			}
			all = append(all, chosen{name: ct.Name, id: trak.ID, kind: trak.Kind})
		}
	}
	var out []chosen
	if len(s.cfg.tracks) > 0 {
		for _, n := range s.cfg.tracks {
			i := slices.IndexFunc(all, func(c chosen) bool { return c.name == n })
			if i < 0 {
				return nil, fmt.Errorf("--track %q: no such track; the broadcast has %s", n, describe(all))
			}
			if !slices.ContainsFunc(out, func(c chosen) bool { return c.name == n }) {
				out = append(out, all[i])
			}
		}
		return out, nil
	}
	for _, c := range all {
		if c.kind == fmp4.KindVideo || c.kind == fmp4.KindAudio {
			out = append(out, c)
		} else {
			s.log.Info("not playing a track that is neither video nor audio (name it with --track to play it)", "track", c.name, "kind", c.kind)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("the broadcast has no video or audio track (it has %s)", describe(all))
	}
	return out, nil
}

func describe(cs []chosen) string {
	var ds []string
	for _, c := range cs {
		ds = append(ds, fmt.Sprintf("%s (%s)", c.name, c.kind))
	}
	if len(ds) == 0 {
		return "none"
	}
	return strings.Join(ds, ", ")
}

// first returns the payload of a track's first object (object 0 of a
// group; group 0 for one published before we subscribed): the catalog or
// the init segment. It subscribes from {0, 0}, which gets an object
// published from now on, and when SUBSCRIBE_OK says the track already has
// content, it FETCHes object {0, 0} too. If FETCH fails, the subscription
// has initTimeout to deliver a newer group. The subscription is returned
// (also with an error) for the caller to end.
func (s *subscriber) first(ctx context.Context, name string) ([]byte, *moqtransport.Subscription, error) {
	sub, err := s.sess.Subscribe(ctx, s.ns, name, moqtransport.SubscribeOptions{
		Priority: metaPriority, Filter: moqtransport.Filter{Type: moqtransport.FilterAbsoluteStart},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("subscribing to %s: %w", name, err)
	}
	b, err := s.firstObject(ctx, sub)
	return b, sub, err
}

func (s *subscriber) firstObject(ctx context.Context, sub *moqtransport.Subscription) ([]byte, error) {
	name := sub.Name().Name
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		b     []byte
		err   error
		fetch bool
	}
	results := make(chan result, 2)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		for {
			o, err := sub.ReadObject(ctx)
			if errors.Is(err, io.EOF) {
				results <- result{err: fmt.Errorf("track %s ended without an object", name)}
				return
			}
			if err != nil {
				results <- result{err: fmt.Errorf("track %s: %w", name, err)}
				return
			}
			if o.Status == moqtransport.StatusNormal && o.ID == 0 {
				results <- result{b: o.Payload}
				return
			}
		}
	})
	largest, hasContent := sub.Largest()
	if hasContent {
		wg.Go(func() {
			f, err := s.sess.Fetch(ctx, moqtransport.FetchOptions{
				Priority: metaPriority, GroupOrder: moqtransport.GroupOrderAscending, Namespace: s.ns, Name: name,
				Start: moqtransport.Location{}, End: moqtransport.Location{Group: 0, Object: 1},
			})
			if err != nil {
				results <- result{err: err, fetch: true}
				return
			}
			defer func() { _ = f.Cancel() }()
			for {
				o, err := f.ReadObject(ctx)
				if err == io.EOF {
					err = errors.New("FETCH returned no object 0")
				}
				if err != nil {
					results <- result{err: err, fetch: true}
					return
				}
				if o.Status == moqtransport.StatusNormal && o.ID == 0 {
					results <- result{b: o.Payload, fetch: true}
					return
				}
			}
		})
	}
	var timeout <-chan time.Time
	var fetchErr error
	for {
		select {
		case r := <-results:
			switch {
			case r.err == nil:
				how := "subscription"
				if r.fetch {
					how = "fetch"
				}
				s.log.Debug("got the first object", "track", name, "bytes", len(r.b), "by", how)
				return r.b, nil
			case !r.fetch:
				return nil, r.err
			}
			fetchErr = r.err
			wait := s.cfg.initTimeout
			if wait == 0 {
				wait = defaultInitTimeout
			}
			s.log.Info("FETCH failed; waiting for a new group on the subscription", "track", name, "largest", largest.String(), "err", fetchErr, "for", wait)
			timeout = time.After(wait)
		case <-timeout:
			return nil, fmt.Errorf("no object on track %s: it was published before this subscription (largest %s) and FETCH failed: %w", name, largest, fetchErr)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// play writes a track's objects until the track ends (nil), ctx ends, or
// the subscription fails.
func (s *subscriber) play(ctx context.Context, c chosen, sub *moqtransport.Subscription, join *moqtransport.JoiningFetch) error {
	r := sub.Track().NewReader(moqtransport.ReaderFilter{FromCache: true})
	defer r.Close()
	start, joined, err := s.join(ctx, c, sub, join)
	if err != nil {
		return err
	}
	o := newOrderer(s.log.With("track", c.name), start, checkedWrite(s.log, c, s.out.object))
	o.skipBehind = s.cfg.skipBehind
	o.onSkip = func(g uint64) {
		sub.SkipTo(g) // stop the streams of the groups given up
		r.SkipTo(g)
	}
	if err := o.join(joined); err != nil {
		return err
	}
	for {
		waitCtx, cancel := context.WithTimeout(ctx, maxGapWait)
		ev, err := r.Next(waitCtx)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			if err := o.tick(); err != nil { // gaps and skips time out
				return err
			}
			continue
		}
		if errors.Is(err, io.EOF) {
			if err := o.flush(); err != nil {
				return err
			}
			s.log.Info("track ended", "track", c.name, "objects", o.written)
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("track %s: %w", c.name, err)
		}
		switch ev.Kind {
		case moqtransport.EventObject:
			err = o.object(ev.Object)
		case moqtransport.EventSubgroupEnd:
			err = o.groupEnd(ev.Group, false)
		case moqtransport.EventSubgroupAbort:
			err = o.groupEnd(ev.Group, true)
		case moqtransport.EventSkipped:
			o.skipped()
		}
		if err != nil {
			return err
		}
	}
}

// checkedWrite returns the write function of track c's orderer: it passes
// the objects that are fragments of the track to out, and skips the others
// with the rest of their group (for the track): the objects after a skipped
// one depend on it (P-frames after a dropped key frame), so writing them
// would show garbage until the next group start, as output does when
// stdout has no room.
func checkedWrite(log *slog.Logger, c chosen, out func(id uint32, obj *moqtransport.Object) error) func(*moqtransport.Object) error {
	var bad uint64 // the group being skipped
	skipping := false
	return func(obj *moqtransport.Object) error {
		if skipping && obj.Group == bad {
			return nil
		}
		skipping = false
		id, err := fmp4.FragmentTrack(obj.Payload)
		if err == nil && id != c.srcID() {
			err = fmt.Errorf("it is a fragment of track_ID %d, not of the track's %d", id, c.srcID())
		}
		if err == nil && id != c.id {
			// A renumbered track (msfTracks): its fragments carry the ID
			// the output gives it.
			var b []byte
			if b, err = fmp4.RenumberFragment(obj.Payload, c.id); err == nil {
				renumbered := *obj
				renumbered.Payload = b
				obj = &renumbered
			}
		}
		if err != nil {
			log.Warn("skipping the rest of a group from an object that is not a fragment of the track", "track", c.name, "group", obj.Group, "object", obj.ID, "err", err)
			bad, skipping = obj.Group, true
			return nil
		}
		return out(c.id, obj)
	}
}

// orderer writes one track's objects in group order: the objects of the
// current group as they come, and those of later groups (whose streams can
// overtake the current one) once it has ended and the groups before them
// have been written. A group that does not come (a gap in the group IDs)
// is waited for at most maxGapWait, maxPendingGroups groups or
// maxPendingBytes bytes. A group is only written from its object 0: a
// track starts at a group start, a key frame. With skipBehind, a newer
// group's key frame that has waited that long behind an unfinished group
// makes the orderer give up every group before it (onSkip stops their
// streams): a viewer on a slow link goes back to live rather than drifting
// behind it.
type orderer struct {
	log   *slog.Logger
	write func(*moqtransport.Object) error
	now   func() time.Time

	next     uint64 // the group expected next
	haveNext bool   // next is known (false after a skip)
	cur      uint64 // the group being written
	inGroup  bool
	pending  map[uint64][]*moqtransport.Object
	ended    map[uint64]bool // pending groups whose subgroup ended
	bytes    int
	gapSince time.Time // when the output started waiting for group next
	written  int
	// joined: the group being written began with a joining FETCH and no
	// object of it has come on the subscription since, so its end may
	// never be signalled: a later group ends it.
	joined bool

	skipBehind time.Duration
	onSkip     func(group uint64)
	newest     uint64 // the newest pending group whose object 0 came
	newestAt   time.Time
	haveNewest bool
}

// newOrderer expects the track to start at group start.
func newOrderer(log *slog.Logger, start uint64, write func(*moqtransport.Object) error) *orderer {
	return &orderer{log: log, write: write, now: time.Now, next: start, haveNext: true,
		pending: map[uint64][]*moqtransport.Object{}, ended: map[uint64]bool{}}
}

// join writes the objects of a joining FETCH (the group the subscription
// started in, from object 0) ahead of the subscription's.
func (o *orderer) join(objs []*moqtransport.Object) error {
	for _, obj := range objs {
		if err := o.object(obj); err != nil {
			return err
		}
	}
	o.joined = len(objs) > 0 && o.inGroup && o.cur == objs[0].Group
	return nil
}

func (o *orderer) put(obj *moqtransport.Object) error {
	o.written++
	return o.write(obj)
}

func (o *orderer) object(obj *moqtransport.Object) error {
	if obj.Status != moqtransport.StatusNormal {
		return nil // End of Group, End of Track, Does Not Exist: no media
	}
	switch {
	case o.inGroup && obj.Group == o.cur:
		o.joined = false // the subscription carries the group on: its end will come
		return o.put(obj)
	case o.inGroup && o.joined && obj.Group > o.cur:
		// The joined group's rest did not come on the subscription before
		// a later group: the FETCH had all of it.
		o.log.Debug("the joined group ended with its FETCH", "group", o.cur)
		o.inGroup, o.joined, o.next, o.haveNext = false, false, o.cur+1, true
	case (o.inGroup && obj.Group < o.cur) || (o.haveNext && obj.Group < o.next):
		o.log.Debug("dropping a late object", "group", obj.Group, "object", obj.ID)
		return nil
	}
	o.pending[obj.Group] = append(o.pending[obj.Group], obj)
	o.bytes += len(obj.Payload)
	if obj.ID == 0 && (!o.haveNewest || obj.Group > o.newest) {
		o.newest, o.newestAt, o.haveNewest = obj.Group, o.now(), true
	}
	if err := o.maybeSkip(); err != nil {
		return err
	}
	if o.inGroup && o.crowded() {
		o.log.Warn("group incomplete: moving on", "group", o.cur)
		o.inGroup, o.joined, o.next, o.haveNext = false, false, o.cur+1, true
	}
	return o.advance(false)
}

func (o *orderer) crowded() bool {
	return len(o.pending) > maxPendingGroups || o.bytes > maxPendingBytes
}

// groupEnd: a group's subgroup ended (or was reset).
func (o *orderer) groupEnd(group uint64, aborted bool) error {
	if aborted {
		o.log.Debug("group reset", "group", group)
	}
	switch {
	case o.inGroup && group == o.cur:
		o.inGroup, o.joined, o.next, o.haveNext = false, false, group+1, true
		return o.advance(false)
	case !o.inGroup || group > o.cur:
		if _, ok := o.pending[group]; ok {
			o.ended[group] = true
		}
	}
	return o.advance(false)
}

// advance starts pending groups while no group is being written: the
// expected one at once, a later one once the gap has been waited for (or
// at once with force).
func (o *orderer) advance(force bool) error {
	for !o.inGroup && len(o.pending) > 0 {
		g := slices.Min(slices.Collect(maps.Keys(o.pending)))
		if o.haveNext && g != o.next && !force {
			if o.gapSince.IsZero() {
				o.gapSince = o.now()
			}
			if !o.crowded() && o.now().Sub(o.gapSince) < maxGapWait {
				return nil
			}
			o.log.Warn("a group did not come: moving on", "missing", o.next, "next", g)
		}
		o.gapSince = time.Time{}
		objs, ended := o.pending[g], o.ended[g]
		delete(o.pending, g)
		delete(o.ended, g)
		for _, obj := range objs {
			o.bytes -= len(obj.Payload)
		}
		o.next, o.haveNext = g+1, true
		if objs[0].ID != 0 {
			o.log.Debug("dropping a group joined after its start", "group", g, "object", objs[0].ID)
			continue
		}
		o.cur, o.inGroup = g, !ended
		for _, obj := range objs {
			if err := o.put(obj); err != nil {
				return err
			}
		}
	}
	return nil
}

// tick lets a gap or a skip time out while no event comes.
func (o *orderer) tick() error {
	if err := o.maybeSkip(); err != nil {
		return err
	}
	return o.advance(false)
}

// maybeSkip gives up the groups before the newest pending key frame once
// it has waited skipBehind behind the unfinished current group, or behind
// a group that has not come.
func (o *orderer) maybeSkip() error {
	if o.skipBehind <= 0 || !o.haveNewest || o.now().Sub(o.newestAt) < o.skipBehind {
		return nil
	}
	from := o.next
	switch {
	case o.inGroup:
		from = o.cur
	case !o.haveNext:
		return nil // after a track skip: the next group start is taken as it comes
	}
	if o.newest <= from {
		return nil
	}
	return o.skipTo(from, o.newest)
}

// skipTo gives up the groups before g, which has its key frame pending.
func (o *orderer) skipTo(from, g uint64) error {
	o.log.Warn("behind live: skipping ahead to the newest key frame", "from_group", from, "to_group", g)
	for pg, objs := range o.pending {
		if pg < g {
			for _, obj := range objs {
				o.bytes -= len(obj.Payload)
			}
			delete(o.pending, pg)
			delete(o.ended, pg)
		}
	}
	o.inGroup, o.joined, o.next, o.haveNext = false, false, g, true
	o.gapSince = time.Time{}
	if o.onSkip != nil {
		o.onSkip(g)
	}
	return o.advance(false)
}

// skipped: the track's cache dropped events we had not read; start again
// at the next group start.
func (o *orderer) skipped() {
	o.log.Warn("fell behind the track: skipping to the next group")
	o.inGroup, o.joined, o.haveNext = false, false, false
	clear(o.pending)
	clear(o.ended)
	o.bytes = 0
	o.gapSince = time.Time{}
}

// flush writes what is still held, in group order, at the end of the track.
func (o *orderer) flush() error {
	o.inGroup = false
	return o.advance(true)
}
