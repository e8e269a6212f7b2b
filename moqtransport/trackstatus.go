package moqtransport

import (
	"context"

	"github.com/moqgo/moq/moqtransport/wire"
)

// TrackStatus asks the peer for a track's status (TRACK_STATUS) and returns
// its TRACK_STATUS_OK: whether content exists, the largest location, and
// the group order. A refusal is a *RequestError with a SUBSCRIBE_ERROR code.
func (s *Session) TrackStatus(ctx context.Context, ns Namespace, name string) (*TrackStatusOK, error) {
	full := wire.FullTrackName{Namespace: ns, Name: name}
	if err := full.Validate(); err != nil {
		return nil, err
	}
	_, resp, err := s.request(ctx, func(id uint64) wire.Message {
		return &wire.TrackStatus{
			RequestID: id, Namespace: ns, Name: name, SubscriberPriority: DefaultPriority,
			Forward: true, Filter: wire.Filter{Type: wire.FilterLargestObject},
		}
	}, requestHooks{})
	if err != nil {
		return nil, err
	}
	switch r := resp.(type) {
	case *wire.TrackStatusOK:
		return r, nil
	case *wire.TrackStatusError:
		return nil, &RequestError{Message: wire.TypeTrackStatusError, Code: uint64(r.Code), Reason: r.Reason}
	}
	return nil, violation("%s in answer to TRACK_STATUS", resp.Type())
}

// TrackStatusOf returns t's status as TRACK_STATUS_OK reports it: whether
// content exists, the largest location, and the track's group order. It
// is what a Handler.TrackStatus returns for a track it has.
func TrackStatusOf(t *Track) *TrackStatusOK {
	largest, exists := t.Largest()
	ok := &TrackStatusOK{GroupOrder: t.GroupOrder(), ContentExists: exists}
	if exists {
		ok.Largest = largest
	}
	return ok
}

// answerTrackStatus answers TRACK_STATUS with what Handler.TrackStatus
// gives, filled in as SUBSCRIBE_OK would be, with Track Alias 0 (§9.20).
// The request opens no subscription.
func (s *Session) answerTrackStatus(m *wire.TrackStatus) {
	defer func() {
		if s.ctx.Err() == nil {
			s.requestDone()
		}
	}()
	h := s.cfg.Handler.TrackStatus
	if h == nil {
		s.sendOrFail(&wire.TrackStatusError{RequestID: m.RequestID, Code: wire.SubscribeNotSupported,
			Reason: "TRACK_STATUS is not supported by this endpoint"})
		return
	}
	var st *TrackStatusOK
	err := s.callbackErr("Handler.TrackStatus", func() (err error) {
		st, err = h(s.ctx, s, m)
		return err
	})
	if s.ctx.Err() != nil {
		return
	}
	if err == nil && st == nil {
		err = ErrTrackNotFound
	}
	if err != nil {
		code, reason := requestCode(err, wire.TypeTrackStatusError, uint64(wire.SubscribeInternalError))
		s.sendOrFail(&wire.TrackStatusError{RequestID: m.RequestID, Code: wire.SubscribeErrorCode(code), Reason: reason})
		return
	}
	ok := *st // the handler's may be shared (a relay passes one on)
	ok.RequestID, ok.TrackAlias = m.RequestID, 0
	if m.GroupOrder != wire.GroupOrderPublisher {
		ok.GroupOrder = m.GroupOrder
	}
	if !ok.ContentExists {
		ok.Largest = Location{}
	}
	if err := s.send(&ok); err != nil {
		// A handler's answer that cannot be encoded still gets one.
		s.sendOrFail(&wire.TrackStatusError{RequestID: m.RequestID, Code: wire.SubscribeInternalError, Reason: err.Error()})
	}
}
