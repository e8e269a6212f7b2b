package moqtransport_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// A CLIENT_SETUP over raw QUIC whose AUTHORITY or PATH breaks RFC 3986
// closes the session with MALFORMED_AUTHORITY or MALFORMED_PATH (draft-14
// §9.3.2.1, §9.3.2.2; an empty host breaks §3.1.2); well-formed ones open
// it.
func TestHostileServerSetupURI(t *testing.T) {
	cases := []struct {
		authority *string // nil: not sent
		path      string
		code      wire.SessionErrorCode // 0: the session opens
	}{
		{authority: ptr("exa mple.com"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr(""), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr(":443"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("example.com:44a"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("a:b:443"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("[::1"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("[zz::1]:443"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("[fe80::1%eth0]"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("[::1]x"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("exa%2mple.com"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("a@b@example.com"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("example.com/app"), path: "/app", code: wire.MalformedAuthority},
		{authority: ptr("exämple.com"), path: "/app", code: wire.MalformedAuthority},
		{path: "/a#frag", code: wire.MalformedPath},
		{path: "/a<b>", code: wire.MalformedPath},
		{path: "/a|b", code: wire.MalformedPath},
		{path: "/a%zz", code: wire.MalformedPath},
		{path: "/a%4", code: wire.MalformedPath},
		{path: "/a\\b", code: wire.MalformedPath},
		{path: "/a?b#c", code: wire.MalformedPath},
		{path: "/ä", code: wire.MalformedPath},

		{authority: ptr("example.com"), path: "/app"},
		{authority: ptr("example.com:443"), path: "/app"},
		{authority: ptr("[::1]:4443"), path: "/app"},
		{authority: ptr("[v1.fe]"), path: "/app"},
		{authority: ptr("127.0.0.1"), path: "/app"},
		{authority: ptr("user:pw@example.com"), path: "/app"},
		{authority: ptr("ex%41mple.com"), path: "/app"},
		{path: "/a%20b/%C3%A4"},
		{path: "/app?x=1&y=/z?"},
		{path: "/.well-known/moq"},
		{path: ""},
		{path: "/a:b@c!$&'()*+,;=-._~"},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("PATH %q", tc.path)
		if tc.authority != nil {
			name = fmt.Sprintf("AUTHORITY %q", *tc.authority)
		}
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, "moqt", &moqtransport.Config{Handler: heldTracks().Handler()})
			c := newHostileClient(t, e)
			cs := c.clientSetup()
			cs.Params = cs.Params.WithBytes(wire.SetupParamPath, []byte(tc.path))
			if tc.authority != nil {
				cs.Params = cs.Params.WithBytes(wire.SetupParamAuthority, []byte(*tc.authority))
			}
			c.send(cs)
			if tc.code != 0 {
				c.expectClose(tc.code)
				return
			}
			if m, ok := c.next().(*wire.ServerSetup); !ok {
				t.Fatalf("got %v, want SERVER_SETUP", m)
			}
			select {
			case s := <-e.sessions:
				c.server = s
			case err := <-e.errs:
				t.Fatalf("server setup: %v", err)
			case <-time.After(hostileWait):
				t.Fatal("the server session did not start")
			}
			c.expectAlive()
			if tc.authority != nil && c.server.Authority() != *tc.authority {
				t.Errorf("Authority() = %q, want %q", c.server.Authority(), *tc.authority)
			}
			if c.server.Path() != tc.path {
				t.Errorf("Path() = %q, want %q", c.server.Path(), tc.path)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
