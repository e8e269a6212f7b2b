package moqtransport

import (
	"context"
	"errors"
	"io"
	"iter"
)

// ReadObject returns the subscription's next object. Objects come in the
// order the track received them, starting with the first one it received
// (objects that arrived before the first call are not lost). It blocks
// until there is an object or ctx is done (ctx.Err()).
//
// Once the subscription has ended and its objects have been read,
// ReadObject returns io.EOF when it ended normally (PUBLISH_DONE
// TRACK_ENDED or SUBSCRIPTION_ENDED, or Unsubscribe), and otherwise what
// Err returns: a *RequestError with the PUBLISH_DONE status code (see
// PublishDoneError), or the session's error.
//
// ReadObject yields objects only. Objects that the track's cache evicted
// before they were read are skipped, and the reading goes on at the newest
// cached group; a reader that must see skips, the end of each subgroup or
// a reset stream reads Track with a TrackReader instead. Call ReadObject
// (or Objects) from one goroutine at a time. The returned Object is shared
// and must not be modified.
func (sub *Subscription) ReadObject(ctx context.Context) (*Object, error) {
	sub.mu.Lock()
	if sub.rd == nil {
		sub.rd = sub.track.NewReader(ReaderFilter{FromCache: true})
	}
	r := sub.rd
	sub.mu.Unlock()
	for {
		ev, err := r.Next(ctx)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil, err
			}
			return nil, sub.readEnd(err)
		}
		if ev.Kind == EventObject {
			return ev.Object, nil
		}
	}
}

// readEnd maps the error that ended the track's reader to what ReadObject
// returns: io.EOF for a normal end, the subscription's error otherwise.
// A track that someone closed while the subscription runs gives its own
// error.
func (sub *Subscription) readEnd(trackErr error) error {
	sub.mu.Lock()
	ended, err := sub.ended, sub.endErr
	sub.mu.Unlock()
	switch {
	case !ended:
		return trackErr
	case err == nil:
		return io.EOF
	}
	return err
}

// Objects returns an iterator over the subscription's objects, as
// ReadObject returns them: it stops after the last one when the
// subscription ended normally, or yields one last pair with a nil Object
// and the error that ended it (ctx's, the PUBLISH_DONE code, the
// session's). Breaking out of the loop leaves the subscription as it is;
// a later ReadObject or Objects goes on from the next object.
func (sub *Subscription) Objects(ctx context.Context) iter.Seq2[*Object, error] {
	return func(yield func(*Object, error) bool) {
		for {
			o, err := sub.ReadObject(ctx)
			if err == io.EOF {
				return
			}
			if !yield(o, err) || err != nil {
				return
			}
		}
	}
}

// Objects returns an iterator over the fetch's objects, as ReadObject
// returns them: it stops after the last one, or yields one last pair with
// a nil Object and the error that ended the fetch.
func (f *Fetch) Objects(ctx context.Context) iter.Seq2[*Object, error] {
	return func(yield func(*Object, error) bool) {
		for {
			o, err := f.ReadObject(ctx)
			if err == io.EOF {
				return
			}
			if !yield(o, err) || err != nil {
				return
			}
		}
	}
}
