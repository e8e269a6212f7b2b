package relay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
	"github.com/moqgo/moq/relay"
)

// startAuthRelay runs a relay that checks tokens with auth.
func startAuthRelay(t *testing.T, auth *relay.TokenAuth) *relayEnv {
	t.Helper()
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	rs := relay.NewServer(relay.New(relay.Config{Auth: auth}), srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rs.Serve(ctx)
	}()
	t.Cleanup(func() {
		checkUpstream(t, rs.Relay) // the test's sessions ending
		cancel()
		rs.Close()
		_ = srv.Close()
		<-done
		checkUpstream(t, rs.Relay)
	})
	return &relayEnv{t: t, scheme: "moqt", srv: srv, rs: rs}
}

func tokenParams(t *testing.T, tok *jwt.Token, key any) wire.Parameters {
	t.Helper()
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Type: 0, Value: []byte(signed)})
	if err != nil {
		t.Fatal(err)
	}
	return wire.Parameters{kv}
}

// connectWith opens a session whose CLIENT_SETUP carries params.
func (e *relayEnv) connectWith(params wire.Parameters, handler handlerer) *moqtransport.Session {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fp, _ := e.srv.Fingerprint()
	d, err := moqnative.Dial(ctx, fmt.Sprintf("moqt://%s/", e.srv.Addr()), moqnative.ClientConfig{TLS: moqnative.ClientTLS{ServerCertificateHashes: [][32]byte{fp}}})
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := moqtransport.Connect(ctx, d.Conn, &moqtransport.Config{Handler: handlerOf(handler), Path: d.Path, SetupParams: params})
	if err != nil {
		_ = d.Close()
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		_ = s.Close()
		_ = d.Close()
	})
	return s
}

func TestTokenAuth(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth, err := relay.NewEd25519Auth(pub)
	if err != nil {
		t.Fatal(err)
	}
	e := startAuthRelay(t, auth)
	ctx := ctxFor(t)
	claims := func(pubs, subs []string, exp time.Duration) *jwt.Token {
		return jwt.NewWithClaims(jwt.SigningMethodEdDSA, relay.Claims{Publish: pubs, Subscribe: subs,
			RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(exp))}})
	}

	// A publisher allowed under live/ announces live/room and is refused other.
	tracks := &moqtransport.Tracks{}
	tr := moqtransport.NewTrack(wire.FullTrackName{Namespace: wire.Namespace{"live", "room"}, Name: "v"}, moqtransport.TrackConfig{})
	tracks.Add(tr)
	publisher := e.connectWith(tokenParams(t, claims([]string{"live"}, nil, time.Hour), priv), tracks)
	if _, err := publisher.PublishNamespace(ctx, wire.Namespace{"live", "room"}, nil); err != nil {
		t.Fatalf("authorized PUBLISH_NAMESPACE: %v", err)
	}
	var re *moqtransport.RequestError
	if _, err := publisher.PublishNamespace(ctx, wire.Namespace{"other"}, nil); !errors.As(err, &re) || re.Code != uint64(wire.NamespaceUnauthorized) {
		t.Errorf("PUBLISH_NAMESPACE outside the claims: %v, want UNAUTHORIZED", err)
	}

	// A subscriber with a session token for live/room subscribes; without
	// a token, or with one for elsewhere, it is refused.
	viewer := e.connectWith(tokenParams(t, claims(nil, []string{"live/room"}, time.Hour), priv), nil)
	if _, err := viewer.Subscribe(ctx, wire.Namespace{"live", "room"}, "v", moqtransport.SubscribeOptions{}); err != nil {
		t.Errorf("authorized SUBSCRIBE: %v", err)
	}
	anonymous := e.connectWith(nil, nil)
	if _, err := anonymous.Subscribe(ctx, wire.Namespace{"live", "room"}, "v", moqtransport.SubscribeOptions{}); !errors.As(err, &re) || re.Code != uint64(wire.SubscribeUnauthorized) {
		t.Errorf("SUBSCRIBE without a token: %v, want UNAUTHORIZED", err)
	}
	// A token in the request itself.
	if _, err := anonymous.Subscribe(ctx, wire.Namespace{"live", "room"}, "v", moqtransport.SubscribeOptions{
		Params: tokenParams(t, claims(nil, []string{""}, time.Hour), priv)}); err != nil {
		t.Errorf("SUBSCRIBE with a request token: %v", err)
	}
	// Expired and forged tokens.
	expired := e.connectWith(nil, nil)
	if _, err := expired.Subscribe(ctx, wire.Namespace{"live", "room"}, "v", moqtransport.SubscribeOptions{
		Params: tokenParams(t, claims(nil, []string{""}, -time.Minute), priv)}); !errors.As(err, &re) || re.Code != uint64(wire.SubscribeExpiredAuthToken) {
		t.Errorf("expired token: %v, want EXPIRED_AUTH_TOKEN", err)
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := expired.Subscribe(ctx, wire.Namespace{"live", "room"}, "v", moqtransport.SubscribeOptions{
		Params: tokenParams(t, claims(nil, []string{""}, time.Hour), otherKey)}); !errors.As(err, &re) || re.Code != uint64(wire.SubscribeMalformedAuthToken) {
		t.Errorf("forged token: %v, want MALFORMED_AUTH_TOKEN", err)
	}
}

func TestHMACAuthKeyLength(t *testing.T) {
	if _, err := relay.NewHMACAuth([]byte("short")); err == nil {
		t.Error("a 5-byte HMAC key was accepted")
	}
	a, err := relay.NewHMACAuth([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil || a == nil {
		t.Fatal(err)
	}
}

// TestCheckSessionClaimsAtExp: a request that relies on the session's
// claims is refused with EXPIRED_AUTH_TOKEN from exp on (the window
// between exp and the relay closing the session).
func TestCheckSessionClaimsAtExp(t *testing.T) {
	a, err := relay.NewHMACAuth([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &relay.Claims{Subscribe: []string{""}, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(exp)}}
	m := &wire.Subscribe{Namespace: wire.Namespace{"live"}, Name: "v"}
	if err := a.Check(m, c, exp.Add(-time.Second)); err != nil {
		t.Errorf("a second before exp: %v", err)
	}
	for _, now := range []time.Time{exp, exp.Add(time.Hour)} {
		if err := a.Check(m, c, now); !errors.Is(err, moqtransport.ErrExpiredToken) {
			t.Errorf("at exp%+v: %v, want ErrExpiredToken", now.Sub(exp), err)
		}
	}
}

// TestTokenWithoutExpRefused: a user token must have an exp claim, as a
// peer token must: without one, a leaked token would grant for ever and
// the relay would never end the session or the grant at its expiry.
func TestTokenWithoutExpRefused(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	a, err := relay.NewHMACAuth(secret)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c relay.Claims) []byte {
		t.Helper()
		raw, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(raw)
	}
	_, err = a.Parse(sign(relay.Claims{Subscribe: []string{""}}))
	if !errors.Is(err, moqtransport.ErrMalformedToken) {
		t.Fatalf("a token without exp: %v, want ErrMalformedToken", err)
	}
	if !strings.Contains(err.Error(), "exp") {
		t.Errorf("the error %q does not say the token needs an exp claim", err)
	}
	// Through the Authorizer, a request with such a token is refused.
	tok := moqtransport.AuthToken{Type: 0, Value: sign(relay.Claims{Subscribe: []string{""}})}
	if err := a.Authorize(nil, &wire.Subscribe{Namespace: wire.Namespace{"live"}, Name: "v"}, []moqtransport.AuthToken{tok}); !errors.Is(err, moqtransport.ErrMalformedToken) {
		t.Errorf("Authorize with a token without exp: %v, want ErrMalformedToken", err)
	}
	// With exp, the same grant holds.
	c := relay.Claims{Subscribe: []string{""}, RegisteredClaims: jwt.RegisteredClaims{ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))}}
	if _, err := a.Parse(sign(c)); err != nil {
		t.Errorf("a token with exp: %v", err)
	}
}
