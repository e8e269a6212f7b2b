package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/moqgo/moq/moqtransport"
)

// maxJoinObjects bounds what a joining FETCH may hand a client: one group.
const maxJoinObjects = 1 << 16

// maxJoinBytes bounds the payload bytes a joining FETCH's group may hold:
// a mid-GOP group at several Mbit/s is a few MB.
const maxJoinBytes = 64 << 20

// SubscribeJoin subscribes to a track with the Largest Object filter and,
// alongside the SUBSCRIBE, a joining FETCH (relative, Joining Start 0) for
// the group the subscription starts in, with the same priority
// (moqtransport.Session.SubscribeJoin). Join reads the FETCH.
func SubscribeJoin(ctx context.Context, sess *moqtransport.Session, ns moqtransport.Namespace, name string, opts moqtransport.SubscribeOptions) (*moqtransport.Subscription, *moqtransport.JoiningFetch, error) {
	// Ascending, not the publisher's order (0x0): some relays echo the
	// FETCH's order in FETCH_OK, where 0x0 is a protocol error.
	return sess.SubscribeJoin(ctx, ns, name, opts, moqtransport.FetchOptions{Priority: opts.Priority, GroupOrder: moqtransport.GroupOrderAscending})
}

// Join returns the objects of the group a subscription started in, from
// the group's first object up to where the subscription took over, in
// object order: what its joining FETCH j (see SubscribeJoin; priority is
// the subscription's) brings, the relay answering within JoinTimeout and
// each object coming within JoinTimeout of the one before. The
// subscription's track goes on with the objects after them. A peer that
// takes a joining FETCH only once it has answered the SUBSCRIBE
// (INVALID_JOINING_REQUEST_ID) is asked again. Join cancels j.
//
// It returns nil, with the reason logged, when there is nothing to join
// (the track had no content) or the relay did not serve the FETCH (a
// FETCH_ERROR such as NOT_SUPPORTED, no answer in time, a stream that
// ended early or stalled): the caller then starts at the next group, as a Next Group
// Start subscription would. An error is returned only when ctx ended.
func Join(ctx context.Context, sess *moqtransport.Session, sub *moqtransport.Subscription, j *moqtransport.JoiningFetch, priority uint8, log *slog.Logger) ([]*moqtransport.Object, error) {
	defer j.Cancel()
	ok := sub.OK()
	name := sub.Name().String()
	if !ok.ContentExists {
		return nil, nil
	}
	objs, err := joinFetch(ctx, sess, sub, j, priority, ok.Largest)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		log.Info("no joining FETCH: starting at the next group", "track", name, "group", ok.Largest.Group+1, "err", err)
		return nil, nil
	}
	log.Info("joined the current group with FETCH", "track", name, "group", ok.Largest.Group, "objects", len(objs))
	return objs, nil
}

func joinFetch(ctx context.Context, sess *moqtransport.Session, sub *moqtransport.Subscription, j *moqtransport.JoiningFetch, priority uint8, largest moqtransport.Location) ([]*moqtransport.Object, error) {
	// JoinTimeout bounds the relay's answer (FETCH_OK); the download
	// after it is bounded per object by readJoin, not as a whole: a group
	// of several MB on a slow link takes longer than that.
	waitCtx, cancel := context.WithTimeoutCause(ctx, JoinTimeout, fmt.Errorf("the relay did not answer the joining FETCH (FETCH_OK) within %v", JoinTimeout))
	defer cancel()
	f, err := j.Wait(waitCtx)
	if errors.Is(err, moqtransport.FetchError(moqtransport.FetchInvalidJoiningRequestID, "")) {
		// The peer did not tie the FETCH to the SUBSCRIBE it had not
		// answered yet; it has now.
		if f, err = sess.Fetch(waitCtx, moqtransport.FetchOptions{Priority: priority, GroupOrder: moqtransport.GroupOrderAscending, Joining: sub}); err == nil {
			defer func() { _ = f.Cancel() }()
		}
	}
	if err != nil {
		if c := context.Cause(waitCtx); c != nil && waitCtx.Err() != nil && ctx.Err() == nil {
			err = c
		}
		return nil, err
	}
	return readJoin(ctx, f, largest, JoinTimeout)
}

// objectReader is what readJoin reads: a FETCH's objects.
type objectReader interface {
	ReadObject(ctx context.Context) (*moqtransport.Object, error)
}

// readJoin reads a joining FETCH's objects of group largest.Group, up to
// largest, until its stream ends. Each object must come within gap of the
// one before (of the FETCH_OK for the first); the whole download may take
// as long as the link needs.
func readJoin(ctx context.Context, f objectReader, largest moqtransport.Location, gap time.Duration) ([]*moqtransport.Object, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	errStalled := fmt.Errorf("no object came for %v: the link or the relay stalled", gap)
	timer := time.AfterFunc(gap, func() { cancel(errStalled) })
	defer timer.Stop()
	var objs []*moqtransport.Object
	size := 0
	for {
		o, err := f.ReadObject(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if c := context.Cause(ctx); c != nil && ctx.Err() != nil {
				err = c
			}
			return nil, fmt.Errorf("the joining FETCH's stream ended after %d objects (%d bytes) of group %d: %w", len(objs), size, largest.Group, err)
		}
		timer.Reset(gap)
		if o.Group != largest.Group || largest.Less(o.Location()) {
			return nil, fmt.Errorf("the FETCH returned object %v, outside the joined group %d up to %v", o.Location(), largest.Group, largest)
		}
		if len(objs) >= maxJoinObjects {
			return nil, fmt.Errorf("the FETCH returned more than %d objects", maxJoinObjects)
		}
		// Rising IDs, and a bound on the bytes kept: with no bound on the
		// download's time, a relay sending object 0 again and again, each
		// within gap, would otherwise grow this without end.
		if n := len(objs); n > 0 && o.ID <= objs[n-1].ID {
			return nil, fmt.Errorf("the FETCH returned object %v after %v: object IDs must rise", o.Location(), objs[n-1].Location())
		}
		if size += len(o.Payload); size > maxJoinBytes {
			return nil, fmt.Errorf("the FETCH returned more than %d bytes of group %d", maxJoinBytes, largest.Group)
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		return nil, errors.New("the FETCH returned no objects")
	}
	if objs[0].ID != 0 {
		return nil, fmt.Errorf("the FETCH started at object %d, not at the group's first", objs[0].ID)
	}
	return objs, nil
}
