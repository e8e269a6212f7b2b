package moqtransport_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// The Authorizer decides the peer's setup message on both sides, before
// the session runs: a *wire.SessionError keeps its code, and a client
// refuses a SERVER_SETUP whose token it does not accept.
func TestAuthorizeSetupMessages(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		// Server side: an admission error with its own code.
		e := newEnv(t, scheme, &moqtransport.Config{Authorize: func(_ *moqtransport.Session, m wire.Message, _ []moqtransport.AuthToken) error {
			if m.Type() == wire.TypeClientSetup {
				return &wire.SessionError{Code: wire.InvalidAuthority, Reason: "not served here"}
			}
			return nil
		}})
		d := e.dialRaw("/app")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path})
		var ce *moqtransport.ConnError
		if !errors.As(err, &ce) || ce.Code != wire.InvalidAuthority {
			t.Errorf("a refused CLIENT_SETUP: %v, want INVALID_AUTHORITY", err)
		}

		// Client side: SERVER_SETUP reaches the client's Authorizer with
		// its tokens; a refusal fails the setup with UNAUTHORIZED.
		tok, err := wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Value: []byte("server-proof")})
		if err != nil {
			t.Fatal(err)
		}
		e2 := newEnv(t, scheme, &moqtransport.Config{SetupParams: wire.Parameters{tok}})
		var seen []string
		check := func(_ *moqtransport.Session, m wire.Message, tokens []moqtransport.AuthToken) error {
			if m.Type() != wire.TypeServerSetup {
				return nil
			}
			for _, tk := range tokens {
				seen = append(seen, string(tk.Value))
				if string(tk.Value) == "server-proof" {
					return nil
				}
			}
			return moqtransport.ErrUnauthorized
		}
		if _, _ = e2.dial(&moqtransport.Config{Authorize: check}); len(seen) != 1 || seen[0] != "server-proof" {
			t.Errorf("the client's Authorizer saw SERVER_SETUP tokens %q", seen)
		}
		e3 := newEnv(t, scheme, nil)
		d3 := e3.dialRaw("/app")
		_, err = moqtransport.Connect(ctx, d3.Conn, &moqtransport.Config{Path: d3.Path, Authorize: check})
		var se *wire.SessionError
		if !errors.As(err, &se) || se.Code != wire.Unauthorized {
			t.Errorf("a SERVER_SETUP without the expected token: %v, want UNAUTHORIZED", err)
		}
		select {
		case s := <-e3.sessions:
			<-s.Done()
			if !errors.As(s.Err(), &ce) || ce.Code != wire.Unauthorized || !ce.Remote {
				t.Errorf("the server's session ended with %v, want UNAUTHORIZED from the client", s.Err())
			}
		case <-ctx.Done():
			t.Error("the server's session did not start")
		}
	})
}

// Only a server treats an over-size REGISTER in the peer's setup message
// as USE_VALUE (§9.3.2.5, for CLIENT_SETUP): a client receiving one in
// SERVER_SETUP closes the session with AUTH_TOKEN_CACHE_OVERFLOW.
func TestServerSetupRegisterOverflow(t *testing.T) {
	tok, err := wire.TokenParam(wire.Token{AliasType: wire.TokenRegister, Alias: 1, Value: make([]byte, 100)})
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "moqt", &moqtransport.Config{SetupParams: wire.Parameters{tok}})
	d := e.dialRaw("/app")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The client's MaxAuthTokenCacheSize is 0: no alias fits.
	_, err = moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Path: d.Path})
	if got := wire.SessionCode(err); got != wire.AuthTokenCacheOverflow {
		t.Fatalf("Connect to a server that REGISTERs 116 bytes in SERVER_SETUP: %v (%s), want AUTH_TOKEN_CACHE_OVERFLOW", err, got)
	}
	select {
	case s := <-e.sessions:
		<-s.Done()
		var ce *moqtransport.ConnError
		if !errors.As(s.Err(), &ce) || ce.Code != wire.AuthTokenCacheOverflow || !ce.Remote {
			t.Errorf("the server's session ended with %v, want AUTH_TOKEN_CACHE_OVERFLOW from the client", s.Err())
		}
	case <-ctx.Done():
		t.Error("the server's session did not start")
	}
}
