package moqtransport_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// tokenPolicy allows requests presenting the token "good" and refuses
// "expired" as expired and anything else as unauthorized.
func tokenPolicy(_ *moqtransport.Session, m wire.Message, tokens []moqtransport.AuthToken) error {
	for _, t := range tokens {
		switch {
		case bytes.Equal(t.Value, []byte("good")):
			return nil
		case bytes.Equal(t.Value, []byte("expired")):
			return moqtransport.ErrExpiredToken
		}
	}
	if m.Type() == wire.TypeClientSetup {
		return nil // the session itself is open to anyone
	}
	return moqtransport.ErrUnauthorized
}

func tokenParam(t *testing.T, tok wire.Token) wire.Parameters {
	t.Helper()
	kv, err := wire.TokenParam(tok)
	if err != nil {
		t.Fatal(err)
	}
	return wire.Parameters{kv}
}

func TestAuthorizationTokens(t *testing.T) {
	forEachTransport(t, func(t *testing.T, scheme string) {
		tracks := &moqtransport.Tracks{}
		name := wire.FullTrackName{Namespace: wire.Namespace{"a"}, Name: "t"}
		tracks.Add(moqtransport.NewTrack(name, moqtransport.TrackConfig{}))
		e := newEnv(t, scheme, &moqtransport.Config{Handler: tracks.Handler(), Authorize: tokenPolicy, MaxAuthTokenCacheSize: 64})
		client, _ := e.dial(nil)
		ctx := timeout(t)
		check := func(what string, params wire.Parameters, want uint64) {
			t.Helper()
			_, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, End: wire.Location{Group: 1}, Params: params})
			var re *moqtransport.RequestError
			if !errors.As(err, &re) || re.Code != want {
				t.Errorf("%s: %v, want FETCH_ERROR 0x%x", what, err, want)
			}
		}
		// The track is empty, so an authorized FETCH gets INVALID_RANGE:
		// the request got past authorization.
		check("no token", nil, uint64(wire.FetchUnauthorized))
		check("good value", tokenParam(t, wire.Token{AliasType: wire.TokenUseValue, Value: []byte("good")}), uint64(wire.FetchInvalidRange))
		check("expired value", tokenParam(t, wire.Token{AliasType: wire.TokenUseValue, Value: []byte("expired")}), uint64(wire.FetchExpiredAuthToken))
		check("register", tokenParam(t, wire.Token{AliasType: wire.TokenRegister, Alias: 7, Value: []byte("good")}), uint64(wire.FetchInvalidRange))
		check("use alias", tokenParam(t, wire.Token{AliasType: wire.TokenUseAlias, Alias: 7}), uint64(wire.FetchInvalidRange))
		check("unknown alias", tokenParam(t, wire.Token{AliasType: wire.TokenUseAlias, Alias: 8}), uint64(wire.FetchUnauthorized))
		check("delete", tokenParam(t, wire.Token{AliasType: wire.TokenDelete, Alias: 7}), uint64(wire.FetchUnauthorized))
		check("deleted alias", tokenParam(t, wire.Token{AliasType: wire.TokenUseAlias, Alias: 7}), uint64(wire.FetchUnauthorized))
		// A REGISTER in a request refused for another reason (its end is
		// before its start) is registered all the same (§9.2.1.1): it
		// was not, and the alias's next use was refused as unknown.
		_, err := client.Fetch(ctx, moqtransport.FetchOptions{Namespace: name.Namespace, Name: name.Name, Start: wire.Location{Group: 5}, End: wire.Location{Group: 4},
			Params: tokenParam(t, wire.Token{AliasType: wire.TokenRegister, Alias: 9, Value: []byte("good")})})
		if re := (*moqtransport.RequestError)(nil); !errors.As(err, &re) || re.Code != uint64(wire.FetchInvalidRange) {
			t.Errorf("FETCH ending before its start: %v, want FETCH_ERROR INVALID_RANGE", err)
		}
		check("alias registered by a refused request", tokenParam(t, wire.Token{AliasType: wire.TokenUseAlias, Alias: 9}), uint64(wire.FetchInvalidRange))
		// SUBSCRIBE is authorized the same way.
		if _, err := client.Subscribe(ctx, name.Namespace, name.Name, moqtransport.SubscribeOptions{
			Params: tokenParam(t, wire.Token{AliasType: wire.TokenUseValue, Value: []byte("good")})}); err != nil {
			t.Errorf("authorized SUBSCRIBE: %v", err)
		}
	})
}

func TestAuthorizationTokenSessionErrors(t *testing.T) {
	cases := []struct {
		name   string
		params func(t *testing.T) []wire.Parameters // one per request, in order
		code   wire.SessionErrorCode
	}{
		{"cache overflow", func(t *testing.T) []wire.Parameters {
			return []wire.Parameters{tokenParam(t, wire.Token{AliasType: wire.TokenRegister, Alias: 1, Value: make([]byte, 60)})}
		}, wire.AuthTokenCacheOverflow},
		{"duplicate alias", func(t *testing.T) []wire.Parameters {
			return []wire.Parameters{
				tokenParam(t, wire.Token{AliasType: wire.TokenRegister, Alias: 1, Value: []byte("good")}),
				tokenParam(t, wire.Token{AliasType: wire.TokenRegister, Alias: 1, Value: []byte("good")}),
			}
		}, wire.DuplicateAuthTokenAlias},
		{"delete of an unknown alias", func(t *testing.T) []wire.Parameters {
			return []wire.Parameters{tokenParam(t, wire.Token{AliasType: wire.TokenDelete, Alias: 3})}
		}, wire.UnknownAuthTokenAlias},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, "moqt", &moqtransport.Config{Authorize: tokenPolicy, MaxAuthTokenCacheSize: 64})
			client, _ := e.dial(nil)
			ctx := timeout(t)
			for _, p := range c.params(t) {
				_, _ = client.Subscribe(ctx, wire.Namespace{"a"}, "t", moqtransport.SubscribeOptions{Params: p})
			}
			<-client.Done()
			var ce *moqtransport.ConnError
			if err := client.Err(); !errors.As(err, &ce) || ce.Code != c.code {
				t.Fatalf("session ended with %v, want %s", err, c.code)
			}
		})
	}
}

func TestAuthorizationInSetup(t *testing.T) {
	policy := func(_ *moqtransport.Session, m wire.Message, tokens []moqtransport.AuthToken) error {
		if m.Type() == wire.TypeClientSetup && (len(tokens) == 0 || string(tokens[0].Value) != "let me in") {
			return moqtransport.ErrUnauthorized
		}
		return nil
	}
	e := newEnv(t, "https", &moqtransport.Config{Authorize: policy})
	ctx := timeout(t)
	// Without the token the server closes the session with UNAUTHORIZED.
	d := e.dialRaw("/")
	_, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{})
	var ce *moqtransport.ConnError
	if !errors.As(err, &ce) || ce.Code != wire.Unauthorized {
		t.Fatalf("setup without a token: %v, want UNAUTHORIZED", err)
	}
	if err := <-e.errs; err == nil {
		t.Fatal("the server accepted the session")
	}
	// With it, the session opens; a REGISTER too large for the server's
	// cache (0 here) counts as USE_VALUE in CLIENT_SETUP.
	client, server := e.dial(&moqtransport.Config{SetupParams: tokenParam(t, wire.Token{AliasType: wire.TokenRegister, Alias: 1, Value: []byte("let me in")})})
	if client.Err() != nil || server.Err() != nil {
		t.Fatalf("sessions ended: %v %v", client.Err(), server.Err())
	}
}

// AuthToken.Param encodes a USE_VALUE token that the wire codec decodes
// back, and refuses a Type the varint cannot carry.
func TestAuthTokenParam(t *testing.T) {
	kv, err := moqtransport.AuthToken{Type: 3, Value: []byte("secret")}.Param()
	if err != nil {
		t.Fatal(err)
	}
	if kv.Type != wire.ParamAuthorizationToken {
		t.Fatalf("parameter type 0x%x, want AUTHORIZATION TOKEN", kv.Type)
	}
	tok, err := wire.ParseToken(kv.Bytes)
	if err != nil || tok.AliasType != wire.TokenUseValue || tok.Type != 3 || string(tok.Value) != "secret" {
		t.Fatalf("decoded %+v, %v", tok, err)
	}
	if _, err := (moqtransport.AuthToken{Type: 1 << 62}).Param(); err == nil {
		t.Fatal("a token type of 2^62 was encoded")
	}
}

// A SUBSCRIBE_UPDATE that names a token alias never registered is
// rejected with UNKNOWN_AUTH_TOKEN_ALIAS (§9.2.1.1): it has no error
// reply, so the session closes with that code, as for a DELETE of an
// unknown alias.
func TestSubscribeUpdateUnknownTokenAlias(t *testing.T) {
	e := newEnv(t, "moqt", &moqtransport.Config{Handler: heldTracks().Handler(), MaxAuthTokenCacheSize: 1024})
	c := newHostileClient(t, e)
	c.setup()
	sub := c.subscribeHeld()
	c.send(&wire.SubscribeUpdate{RequestID: c.id(), SubscriptionRequestID: sub, Forward: true,
		Params: tokenParam(t, wire.Token{AliasType: wire.TokenUseAlias, Alias: 5})})
	c.expectClose(wire.UnknownAuthTokenAlias)
}
