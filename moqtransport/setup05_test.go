package moqtransport_test

import (
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// The draft-14 text numbers MOQT_IMPLEMENTATION 0x05, the type of
// AUTHORITY (wire-notes §1.5). Where AUTHORITY is never valid, in
// SERVER_SETUP and in a CLIENT_SETUP over WebTransport, a peer following
// the text sends its name there: the session goes on and reports it as the
// peer's implementation. The session was closed with INVALID_AUTHORITY,
// as §9.3.2.1 says of AUTHORITY.
func TestSetupParam05WhereAuthorityCannotBe(t *testing.T) {
	const name = "vendor-moqt/1.2 (draft-14)"
	t.Run("SERVER_SETUP", func(t *testing.T) {
		forEachTransport(t, func(t *testing.T, scheme string) {
			rs := newHostileServer(t, scheme, moqtransport.Config{})
			rs.send(serverSetup(wire.KeyValue{Type: 0x05, Bytes: []byte(name)}))
			select {
			case <-rs.conned:
			case <-time.After(hostileWait):
				t.Fatal("Connect did not return")
			}
			if rs.cErr != nil {
				t.Fatalf("Connect: %v", rs.cErr)
			}
			if got := rs.client.PeerImplementation(); got != name {
				t.Errorf("PeerImplementation %q, want %q", got, name)
			}
		})
	})
	t.Run("CLIENT_SETUP over WebTransport", func(t *testing.T) {
		c := newHostileClient(t, newEnv(t, "https", &moqtransport.Config{Handler: heldTracks().Handler()}))
		c.send(c.clientSetup(wire.KeyValue{Type: 0x05, Bytes: []byte(name)}))
		if m, ok := c.next().(*wire.ServerSetup); !ok || m.Version != wire.Draft14 {
			t.Fatalf("got %v, want SERVER_SETUP draft-14", m)
		}
		var s *moqtransport.Session
		select {
		case s = <-c.e.sessions:
		case err := <-c.e.errs:
			t.Fatalf("server setup: %v", err)
		case <-time.After(hostileWait):
			t.Fatal("the server session did not start")
		}
		if got := s.PeerImplementation(); got != name {
			t.Errorf("PeerImplementation %q, want %q", got, name)
		}
		if got := s.Authority(); got != "" {
			t.Errorf("Authority %q, want none", got)
		}
	})
	// With StrictPeer, as §9.3.2.1 says of AUTHORITY.
	t.Run("strict SERVER_SETUP", func(t *testing.T) {
		forEachTransport(t, func(t *testing.T, scheme string) {
			rs := newHostileServer(t, scheme, moqtransport.Config{StrictPeer: true})
			rs.send(serverSetup(wire.KeyValue{Type: 0x05, Bytes: []byte("example.com")}))
			rs.expectClose(wire.InvalidAuthority)
		})
	})
	t.Run("strict CLIENT_SETUP over WebTransport", func(t *testing.T) {
		c := newHostileClient(t, newEnv(t, "https", &moqtransport.Config{StrictPeer: true}))
		c.send(c.clientSetup(wire.KeyValue{Type: 0x05, Bytes: []byte("example.com")}))
		c.expectClose(wire.InvalidAuthority)
	})
	// Over raw QUIC a client's 0x05 is AUTHORITY, checked as one.
	t.Run("CLIENT_SETUP over raw QUIC", func(t *testing.T) {
		c := newHostileClient(t, newEnv(t, "moqt", &moqtransport.Config{Handler: heldTracks().Handler()}))
		c.send(c.clientSetup(wire.KeyValue{Type: 0x05, Bytes: []byte(name)}))
		c.expectClose(wire.MalformedAuthority)
	})
}
