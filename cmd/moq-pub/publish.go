package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/moqgo/moq/catalog"
	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// catalogTrack is the name of the track that carries moq-rs's catalog;
// catalog.MSFTrack ("catalog") carries the MSF catalog.
const catalogTrack = ".catalog"

// Publisher priorities, as moq-rs's moq-pub gives them.
const (
	metaPriority  = 0   // .catalog and 0.mp4
	mediaPriority = 127 // the media tracks
)

// Shutdown bounds.
const (
	// defaultEndTimeout bounds the wait for the subscriptions to end once
	// the tracks have ended (their queued objects and PUBLISH_DONE sent).
	defaultEndTimeout = 5 * time.Second
	// defaultCloseGrace is how long the connection stays open after the
	// last PUBLISH_DONE and PUBLISH_NAMESPACE_DONE, so that they and the
	// last streams' data reach the relay before CONNECTION_CLOSE (which
	// discards what was not sent yet).
	defaultCloseGrace = 500 * time.Millisecond
	// pushTimeout bounds the PUBLISH of the catalog and init tracks: a
	// relay that does not know PUBLISH (moq-rs) never answers.
	pushTimeout = 2 * time.Second
	// readerStopTimeout bounds the wait for the input reader after an
	// interrupt (a read from a terminal cannot always be interrupted).
	readerStopTimeout = 200 * time.Millisecond
)

// publisher turns the input into tracks.
type publisher struct {
	cfg   config
	log   *slog.Logger
	sess  *moqtransport.Session
	h     *cli.Served
	ns    wire.Namespace
	nsPub *moqtransport.NamespacePublication

	catalog, msf, init *moqtransport.Track
	pushed             []*moqtransport.Publication
	wroteMeta          bool

	grouper *fmp4.Grouper
	media   map[uint32]*mediaTrack
	order   []*mediaTrack // moov order
	ignored map[uint32]bool

	fragments, groups uint64
	// warnedKeyframes: the warning about key frames in the middle of
	// fragments was logged (once per run).
	warnedKeyframes bool
}

// mediaTrack is one published {track_ID}.m4s.
type mediaTrack struct {
	id    uint32
	track *moqtransport.Track
	w     *moqtransport.SubgroupWriter
}

// item is what the input reader yields.
type item struct {
	init *fmp4.Init
	frag *fmp4.Fragment
	err  error
}

func (p *publisher) name(n string) wire.FullTrackName {
	return wire.FullTrackName{Namespace: p.ns, Name: n}
}

// run publishes the input until it ends (nil), ctx ends (nil), or the
// input, the session or the namespace fails (an error). Either way the
// tracks end and their subscriptions are given time to finish.
func (p *publisher) run(ctx context.Context) error {
	p.catalog = moqtransport.NewTrack(p.name(catalogTrack), moqtransport.TrackConfig{})
	p.msf = moqtransport.NewTrack(p.name(catalog.MSFTrack), moqtransport.TrackConfig{})
	p.init = moqtransport.NewTrack(p.name(catalog.DefaultInitTrack), moqtransport.TrackConfig{})
	p.h.Add(p.catalog)
	p.h.Add(p.msf)
	p.h.Add(p.init)
	p.push(ctx, p.catalog, p.msf, p.init)
	if p.cfg.ready != nil {
		p.cfg.ready()
	}

	items, stopReader := p.readInput()
	defer stopReader()
	err := p.loop(ctx, items)
	switch {
	case err == nil:
		p.log.Info("input ended", "fragments", p.fragments, "groups", p.groups)
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		p.log.Info("interrupted: ending the tracks", "fragments", p.fragments, "groups", p.groups)
		err = nil
	}
	if err != nil {
		var reason error = err
		if p.sess.Err() != nil {
			reason = p.sess.Err()
		}
		p.fail(reason)
		return err
	}
	p.end()
	p.finish()
	return nil
}

// push offers the catalog and init tracks to the relay with PUBLISH, so
// that it caches their one object. Failure only costs late subscribers
// their FETCH through the relay. The PUBLISHes go one at a time: a
// moqtransport session can send the requests of concurrent calls out of
// request ID order, which the peer takes for a protocol violation.
func (p *publisher) push(ctx context.Context, tracks ...*moqtransport.Track) {
	ctx, cancel := context.WithTimeout(ctx, pushTimeout)
	defer cancel()
	for _, t := range tracks {
		pub, err := p.sess.Publish(ctx, t, moqtransport.PublishOptions{})
		if err != nil {
			p.log.Info("the relay did not take a pushed track (PUBLISH); subscribers that join later may not get it through the relay",
				"track", t.Name().Name, "err", err)
			continue
		}
		p.pushed = append(p.pushed, pub)
	}
}

// readInput reads the input on a goroutine of its own; stop ends it (it
// closes the input when it can, to end a blocked read).
func (p *publisher) readInput() (<-chan item, func()) {
	items := make(chan item)
	quit := make(chan struct{})
	done := make(chan struct{})
	sp := fmp4.NewSplitter(p.cfg.stdin)
	sp.SetMaxBoxSize(int64(wire.DefaultMaxObjectPayload))
	sp.Skipped = func(typ string, off int64) { p.log.Debug("skipping a box", "type", typ, "offset", off) }
	go func() {
		defer close(done)
		send := func(it item) bool {
			select {
			case items <- it:
				return it.err == nil
			case <-quit:
				return false
			}
		}
		in, err := sp.Init()
		if !send(item{init: in, err: err}) {
			return
		}
		for {
			f, err := sp.Next()
			if !send(item{frag: f, err: err}) {
				return
			}
		}
	}()
	stop := func() {
		close(quit)
		select {
		case <-done:
			return
		default:
		}
		if c, ok := p.cfg.stdin.(io.Closer); ok {
			_ = c.Close()
		}
		select {
		case <-done:
		case <-time.After(readerStopTimeout):
		}
	}
	return items, stop
}

// loop publishes what the reader yields until the input ends (nil) or
// something fails.
func (p *publisher) loop(ctx context.Context, items <-chan item) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.sess.Done():
			return fmt.Errorf("session ended: %w", p.sess.Err())
		case <-p.nsPub.Done():
			// A session that ended takes its namespaces with it: say so
			// rather than blame the relay.
			if err := p.sess.Err(); err != nil {
				return fmt.Errorf("session ended: %w", err)
			}
			return fmt.Errorf("namespace %s withdrawn by the relay: %w", p.ns, p.nsPub.Err())
		case it := <-items:
			switch {
			case errors.Is(it.err, io.EOF):
				if p.media == nil {
					return &inputError{errors.New("the input ended before its init segment")}
				}
				return nil
			case errors.Is(it.err, fmp4.ErrInvalid):
				return &inputError{fmt.Errorf("input: %w", it.err)}
			case it.err != nil:
				return fmt.Errorf("reading the input: %w", it.err)
			case it.init != nil:
				if err := p.setup(it.init); err != nil {
					return err
				}
			case it.frag != nil:
				if err := p.fragment(it.frag); err != nil {
					return err
				}
			}
		}
	}
}

// setup publishes the init segment and the catalog, and creates the media
// tracks. Tracks whose codec the catalog cannot name are left out, with a
// warning.
func (p *publisher) setup(in *fmp4.Init) error {
	opts := catalog.Options{Namespace: p.ns, Framerate: p.cfg.fps, Bitrate: p.cfg.bitrate}
	p.ignored = map[uint32]bool{}
	init := in.Data
	cat, err := catalog.Build(init, opts)
	if errors.Is(err, catalog.ErrUnsupportedCodec) {
		for _, t := range in.Tracks {
			one, ferr := fmp4.FilterInit(in.Data, func(id uint32) bool { return id == t.ID })
			if ferr != nil {
				return &inputError{fmt.Errorf("input: %w", ferr)}
			}
			if _, berr := catalog.Build(one, opts); errors.Is(berr, catalog.ErrUnsupportedCodec) {
				p.log.Warn("leaving out a track whose codec the catalog cannot name", "track", t.ID, "kind", t.Kind, "err", berr)
				p.ignored[t.ID] = true
			}
		}
		if len(p.ignored) == len(in.Tracks) {
			return &inputError{fmt.Errorf("input: no track can be published: %w", err)}
		}
		if init, err = fmp4.FilterInit(in.Data, func(id uint32) bool { return !p.ignored[id] }); err != nil {
			return &inputError{fmt.Errorf("input: %w", err)}
		}
		if in, err = fmp4.ParseInit(init); err != nil {
			return &inputError{fmt.Errorf("input: %w", err)}
		}
		cat, err = catalog.Build(init, opts)
	}
	if err != nil {
		return &inputError{fmt.Errorf("input: %w", err)}
	}
	js, err := cat.Encode()
	if err != nil {
		return fmt.Errorf("encoding the catalog: %w", err)
	}
	// The MSF catalog: the same tracks, each with its own init segment
	// (a moov of its trak only), as MSE-based players need.
	msf, err := catalog.BuildMSF(init, catalog.MSFOptions{Framerate: p.cfg.fps, Bitrate: p.cfg.bitrate,
		TrackInit: func(id uint32) ([]byte, error) {
			return fmp4.FilterInit(init, func(t uint32) bool { return t == id })
		}})
	if err != nil {
		return &inputError{fmt.Errorf("input: %w", err)}
	}
	msfJS, err := msf.EncodeMSF()
	if err != nil {
		return fmt.Errorf("encoding the MSF catalog: %w", err)
	}
	p.grouper = fmp4.NewGrouper(in, p.cfg.groupDuration)
	p.media = map[uint32]*mediaTrack{}
	var desc []string
	for _, t := range in.Tracks {
		name := strconv.FormatUint(uint64(t.ID), 10) + ".m4s"
		ct, ok := cat.Track(name)
		if !ok {
			return fmt.Errorf("the catalog has no track %s", name)
		}
		if err := p.name(name).Validate(); err != nil {
			return fmt.Errorf("track %s: %w", name, err)
		}
		mt := &mediaTrack{id: t.ID, track: moqtransport.NewTrack(p.name(name), moqtransport.TrackConfig{})}
		p.media[t.ID] = mt
		p.order = append(p.order, mt)
		p.h.Add(mt.track)
		codec := "?"
		if ct.SelectionParams.Codec != nil {
			codec = *ct.SelectionParams.Codec
		}
		desc = append(desc, fmt.Sprintf("%s %s %s", name, t.Kind, codec))
	}
	// The init segment first: a subscriber that reads the catalog then
	// finds the init track complete.
	if err := writeSingle(p.init, init); err != nil {
		return fmt.Errorf("writing the init segment: %w", err)
	}
	if err := writeSingle(p.catalog, js); err != nil {
		return fmt.Errorf("writing the catalog: %w", err)
	}
	if err := writeSingle(p.msf, msfJS); err != nil {
		return fmt.Errorf("writing the MSF catalog: %w", err)
	}
	p.wroteMeta = true
	primary, byTime := p.grouper.Primary()
	groups := fmt.Sprintf("at the key frames of track %d", primary)
	if byTime {
		groups = fmt.Sprintf("every %v of track %d", p.cfg.groupDuration, primary)
	}
	p.log.Info("publishing", "tracks", strings.Join(desc, ", "), "groups", groups)
	p.log.Debug("catalog", "json", string(js))
	return nil
}

// writeSingle writes a track's one object: group 0, object 0.
func writeSingle(t *moqtransport.Track, payload []byte) error {
	w, err := t.OpenSubgroup(0, 0, moqtransport.SubgroupOptions{Priority: metaPriority, EndOfGroup: true})
	if err != nil {
		return err
	}
	if err := w.WriteObject(0, payload, nil); err != nil {
		w.Abort(uint64(wire.ResetInternalError))
		return err
	}
	return w.Close()
}

// fragment publishes one moof and its mdat as an object.
func (p *publisher) fragment(f *fmp4.Fragment) error {
	if p.ignored[f.TrackID] {
		return nil
	}
	mt := p.media[f.TrackID]
	pl := p.grouper.Place(f)
	if pl.MissedKeyframe && !p.warnedKeyframes {
		p.warnedKeyframes = true
		p.log.Warn("the input has a key frame in the middle of a fragment, which cannot start a group (a subscriber joining there could not decode it): "+
			"its groups are longer than its GOPs, so joining takes longer; cut fragments at key frames with ffmpeg -movflags frag_keyframe or frag_every_frame "+
			"(-frag_duration or -frag_size alone cut anywhere)", "track", f.TrackID, "decode_time", f.DecodeTime)
	}
	if pl.NewGroup {
		if mt.w != nil {
			if err := mt.w.Close(); err != nil {
				return fmt.Errorf("track %d: ending group: %w", f.TrackID, err)
			}
		}
		w, err := mt.track.OpenSubgroup(pl.Group, 0, moqtransport.SubgroupOptions{Priority: mediaPriority, EndOfGroup: true})
		if err != nil {
			return fmt.Errorf("track %d: opening group %d: %w", f.TrackID, pl.Group, err)
		}
		mt.w = w
		p.groups++
		p.log.Debug("group", "track", f.TrackID, "group", pl.Group, "keyframe", f.Keyframe, "decode_time", f.DecodeTime)
	}
	if err := mt.w.WriteObject(pl.Object, f.Data, nil); err != nil {
		return fmt.Errorf("track %d: writing object %d of group %d: %w", f.TrackID, pl.Object, pl.Group, err)
	}
	p.fragments++
	return nil
}

// end ends every track normally: an End of Track object after its last
// object (at {0, 0} for a track without any, at {1, 0} for the catalog and
// init tracks), then Close, which makes PUBLISH_DONE TRACK_ENDED follow
// the queued objects.
func (p *publisher) end() {
	endAt := func(t *moqtransport.Track, w *moqtransport.SubgroupWriter, group, id uint64) {
		if w == nil {
			var err error
			if w, err = t.OpenSubgroup(group, 0, moqtransport.SubgroupOptions{Priority: metaPriority, EndOfGroup: true}); err != nil {
				p.log.Warn("ending a track", "track", t.Name().Name, "err", err)
				t.Close(nil)
				return
			}
		}
		if err := w.WriteStatus(id, wire.StatusEndOfTrack, nil); err != nil {
			p.log.Warn("ending a track", "track", t.Name().Name, "err", err)
		}
		_ = w.Close()
		t.Close(nil)
	}
	for _, mt := range p.order {
		if group, next, ok := p.grouper.Last(mt.id); ok {
			endAt(mt.track, mt.w, group, next)
		} else {
			endAt(mt.track, nil, 0, 0)
		}
	}
	metaGroup := uint64(0)
	if p.wroteMeta {
		metaGroup = 1
	}
	endAt(p.catalog, nil, metaGroup, 0)
	endAt(p.msf, nil, metaGroup, 0)
	endAt(p.init, nil, metaGroup, 0)
	p.log.Info("tracks ended")
}

// fail ends every track with an error (PUBLISH_DONE INTERNAL_ERROR). The
// open groups end first (FIN): their objects are complete and whole, and
// every stream PUBLISH_DONE counts reaches the subscriber.
func (p *publisher) fail(reason error) {
	msg := reason.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	err := moqtransport.PublishDoneError(wire.DoneInternalError, msg)
	for _, mt := range p.order {
		if mt.w != nil {
			_ = mt.w.Close()
		}
		mt.track.Close(err)
	}
	p.catalog.Close(err)
	p.msf.Close(err)
	p.init.Close(err)
	if p.sess.Err() == nil {
		p.finish()
	}
}

// finish waits (boundedly) for the subscriptions to end, withdraws the
// namespace and leaves the last messages time to reach the relay.
func (p *publisher) finish() {
	timeout := p.cfg.endTimeout
	if timeout == 0 {
		timeout = defaultEndTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := p.h.WaitIdle(ctx, p.sess.Done()); err != nil {
		p.log.Warn("subscriptions did not end in time", "err", err)
	}
	for _, pub := range p.pushed {
		select {
		case <-pub.Done():
		case <-p.sess.Done():
		case <-ctx.Done():
		}
	}
	if err := p.nsPub.Close(); err != nil && p.sess.Err() == nil {
		p.log.Warn("withdrawing the namespace", "err", err)
	}
	grace := p.cfg.closeGrace
	if grace == 0 {
		grace = defaultCloseGrace
	}
	select {
	case <-time.After(grace):
	case <-p.sess.Done():
	}
	p.log.Info("publisher stopped")
}
