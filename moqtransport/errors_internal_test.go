package moqtransport

import (
	"errors"
	"strings"
	"testing"

	"github.com/moqgo/moq/moqtransport/wire"
)

// A handler error's code reaches the answer's registry by name: the
// registries agree on 0x0-0x3 and the token codes, and differ past them
// (0x4 is TRACK_DOES_NOT_EXIST for SUBSCRIBE and FETCH, UNINTERESTED for
// PUBLISH and PUBLISH_NAMESPACE, NAMESPACE_PREFIX_UNKNOWN for
// SUBSCRIBE_NAMESPACE).
func TestRequestCodeByName(t *testing.T) {
	for _, c := range []struct {
		err    error
		answer MessageType
		want   uint64
		reason string // a part of the reason, when translated
	}{
		{ErrTrackNotFound, wire.TypeSubscribeError, uint64(wire.SubscribeTrackDoesNotExist), ""},
		{ErrTrackNotFound, wire.TypeTrackStatusError, uint64(wire.SubscribeTrackDoesNotExist), ""},
		{ErrTrackNotFound, wire.TypeFetchError, uint64(wire.FetchTrackDoesNotExist), ""},
		{ErrTrackNotFound, wire.TypePublishNamespaceError, uint64(wire.NamespaceInternalError), "TRACK_DOES_NOT_EXIST"},
		{ErrTrackNotFound, wire.TypePublishError, uint64(wire.PublishInternalError), "TRACK_DOES_NOT_EXIST"},
		{ErrTrackNotFound, wire.TypeSubscribeNamespaceError, uint64(wire.SubscribeNamespaceInternalError), "TRACK_DOES_NOT_EXIST"},
		{SubscribeError(wire.SubscribeInvalidRange, "r"), wire.TypeFetchError, uint64(wire.FetchInvalidRange), ""},
		{SubscribeError(wire.SubscribeInvalidRange, "r"), wire.TypeSubscribeNamespaceError, uint64(wire.SubscribeNamespaceInternalError), "INVALID_RANGE"},
		{FetchError(wire.FetchNoObjects, "n"), wire.TypeSubscribeError, uint64(wire.SubscribeInternalError), "NO_OBJECTS"},
		{FetchError(wire.FetchTimeout, "n"), wire.TypeTrackStatusError, uint64(wire.SubscribeTimeout), ""},
		{NamespaceError(wire.NamespaceUninterested, "u"), wire.TypePublishError, uint64(wire.PublishUninterested), ""},
		{NamespaceError(wire.NamespaceUninterested, "u"), wire.TypeSubscribeError, uint64(wire.SubscribeInternalError), "UNINTERESTED"},
		{PublishError(wire.PublishUnauthorized, "no"), wire.TypeFetchError, uint64(wire.FetchUnauthorized), ""},
		{NamespaceError(wire.NamespaceExpiredAuthToken, "e"), wire.TypePublishError, uint64(wire.PublishInternalError), "EXPIRED_AUTH_TOKEN"},
		// A code of the answer's own registry passes as it is, known or
		// not (a relay passes its publisher's codes on).
		{&RequestError{Message: wire.TypeTrackStatusError, Code: 0x99, Reason: "x"}, wire.TypeSubscribeError, 0x99, ""},
		{&RequestError{Message: wire.TypeFetchError, Code: 0x99, Reason: "x"}, wire.TypeFetchError, 0x99, ""},
		{&RequestError{Message: wire.TypeFetchError, Code: 0x99, Reason: "x"}, wire.TypeSubscribeError, uint64(wire.SubscribeInternalError), "0x99"},
		{&RequestError{Code: 0x4, Reason: "raw"}, wire.TypePublishError, 0x4, ""},
		{errors.New("plain"), wire.TypeFetchError, uint64(wire.FetchInternalError), "plain"},
	} {
		var fallback uint64 // INTERNAL_ERROR in every registry
		code, reason := requestCode(c.err, c.answer, fallback)
		if code != c.want || (c.reason != "" && !strings.Contains(reason, c.reason)) {
			t.Errorf("%v answered with %s: code 0x%x %q, want 0x%x with %q", c.err, c.answer, code, reason, c.want, c.reason)
		}
	}
}
