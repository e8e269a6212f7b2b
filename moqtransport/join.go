package moqtransport

import (
	"context"
	"errors"
	"sync"
)

// JoiningFetch is a joining FETCH that SubscribeJoin sent with its
// SUBSCRIBE. Wait for its answer, and Cancel it when done with it.
type JoiningFetch struct {
	cancel context.CancelFunc
	done   chan struct{}
	f      *Fetch
	err    error
	once   sync.Once
}

// Wait returns the fetch once FETCH_OK came, or why there is none: the
// peer's FETCH_ERROR as a *RequestError (NOT_SUPPORTED from a peer
// without FETCH, INVALID_RANGE for a track without content yet,
// INVALID_JOINING_REQUEST_ID from a peer that takes a joining FETCH only
// once it has answered the SUBSCRIBE: Fetch it again then), the session's
// end, or Cancel. ctx bounds this wait only.
func (j *JoiningFetch) Wait(ctx context.Context) (*Fetch, error) {
	select {
	case <-j.done:
		return j.f, j.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Cancel gives the FETCH up (FETCH_CANCEL once it was answered; a late
// answer is dropped) and returns once the request has ended. Objects
// already read stay valid.
func (j *JoiningFetch) Cancel() {
	j.once.Do(func() {
		j.cancel()
		<-j.done
		if j.f != nil {
			_ = j.f.Cancel()
		}
	})
}

// SubscribeJoin subscribes as Subscribe does, with a Largest Object filter
// (the default; another filter is an error), and sends a joining FETCH for
// the new subscription right behind the SUBSCRIBE, without waiting for
// SUBSCRIBE_OK: a viewer that joins mid-group gets the group's start in
// the same round trip as the subscription. join gives the FETCH's fields;
// its Joining is set to the new subscription, and JoiningStart 0 with
// Absolute false asks for the current group from its first object.
//
// It returns once the SUBSCRIBE is answered: the subscription and the
// joining FETCH, whose answer JoiningFetch.Wait gives; or the SUBSCRIBE's
// error, with the FETCH given up. The caller Cancels the JoiningFetch.
func (s *Session) SubscribeJoin(ctx context.Context, ns Namespace, name string, opts SubscribeOptions, join FetchOptions) (*Subscription, *JoiningFetch, error) {
	if opts.Filter.Type != 0 && opts.Filter.Type != FilterLargestObject {
		return nil, nil, errors.New("moqt: SubscribeJoin: a joining FETCH needs the Largest Object filter")
	}
	fctx, cancel := context.WithCancel(ctx)
	j := &JoiningFetch{cancel: cancel, done: make(chan struct{})}
	started := false
	sub, err := s.subscribe(ctx, ns, name, opts, func(sub *Subscription) {
		started = true
		join.Joining = sub
		// Fetch takes s.reqMu, which the SUBSCRIBE's request holds until
		// it is sent, so the FETCH follows it on the wire. The goroutine
		// ends with Fetch: an answer, Cancel or the session's end.
		go func() {
			defer close(j.done)
			j.f, j.err = s.Fetch(fctx, join)
		}()
	})
	if !started {
		close(j.done)
	}
	if err != nil {
		j.Cancel()
		return nil, nil, err
	}
	return sub, j, nil
}
