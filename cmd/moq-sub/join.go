package main

import (
	"context"

	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/moqtransport"
)

// join decides where a track's output starts. A subscription made while
// the track has content starts in the middle of its current group; the
// joining FETCH j sent with the SUBSCRIBE (cli.SubscribeJoin, read with
// cli.Join) gets that group from its first object, a key frame, so that
// the output starts at once. It returns the group the output starts at and
// the fetched objects to write first. Through a relay that does not serve
// the FETCH, the output starts at the next group.
func (s *subscriber) join(ctx context.Context, c chosen, sub *moqtransport.Subscription, j *moqtransport.JoiningFetch) (start uint64, objs []*moqtransport.Object, err error) {
	largest, ok := sub.Largest()
	if !ok {
		j.Cancel()
		return 0, nil, nil
	}
	objs, err = cli.Join(ctx, s.sess, sub, j, c.priority(), s.log)
	if err != nil {
		return 0, nil, err
	}
	if objs == nil {
		return largest.Group + 1, nil, nil // Next Group Start
	}
	return largest.Group, objs, nil
}
