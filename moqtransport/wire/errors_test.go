package wire

import "testing"

// Known tells a registry's codes from the others, which String prints as
// hex.
func TestCodeKnown(t *testing.T) {
	for _, c := range []struct {
		known      bool
		name, want string
	}{
		{SubscribeTrackDoesNotExist.Known(), SubscribeTrackDoesNotExist.String(), "TRACK_DOES_NOT_EXIST"},
		{FetchNoObjects.Known(), FetchNoObjects.String(), "NO_OBJECTS"},
		{PublishUninterested.Known(), PublishUninterested.String(), "UNINTERESTED"},
		{NamespaceExpiredAuthToken.Known(), NamespaceExpiredAuthToken.String(), "EXPIRED_AUTH_TOKEN"},
		{NamespacePrefixOverlap.Known(), NamespacePrefixOverlap.String(), "NAMESPACE_PREFIX_OVERLAP"},
		{DoneTooFarBehind.Known(), DoneTooFarBehind.String(), "TOO_FAR_BEHIND"},
		{ExpiredAuthToken.Known(), ExpiredAuthToken.String(), "EXPIRED_AUTH_TOKEN"},
		{ResetDeliveryTimeout.Known(), ResetDeliveryTimeout.String(), "DELIVERY_TIMEOUT"},
		{!SubscribeErrorCode(0x6).Known(), SubscribeErrorCode(0x6).String(), "0x6"},
		{!FetchErrorCode(0x11).Known(), FetchErrorCode(0x11).String(), "0x11"},
		{!PublishErrorCode(0x10).Known(), PublishErrorCode(0x10).String(), "0x10"},
		{!SessionErrorCode(0x99).Known(), SessionErrorCode(0x99).String(), "0x99"},
	} {
		if !c.known || c.name != c.want {
			t.Errorf("%s: Known wrong (want name %s)", c.name, c.want)
		}
	}
}
