package relay

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Claims are what a relay token grants: the namespace prefixes its holder
// may publish under (PUBLISH_NAMESPACE, PUBLISH) and subscribe under
// (SUBSCRIBE, FETCH, TRACK_STATUS, SUBSCRIBE_NAMESPACE). Prefixes are
// slash-separated namespace paths ("live/room1"); "" grants everything.
type Claims struct {
	Publish   []string `json:"pub,omitempty"`
	Subscribe []string `json:"sub_ns,omitempty"`
	jwt.RegisteredClaims
}

// TokenAuth checks JWTs carried in AUTHORIZATION TOKEN parameters (token
// type 0, "negotiated out of band"), signed with HMAC (HS256/384/512) or
// Ed25519 (EdDSA). A token in CLIENT_SETUP applies to the whole session; a
// token in a request applies to that request. A request whose namespace is
// outside the claims is refused with UNAUTHORIZED, an expired token with
// EXPIRED_AUTH_TOKEN and a token that does not verify with
// MALFORMED_AUTH_TOKEN.
type TokenAuth struct {
	key    any
	method []string

	mu       sync.Mutex
	sessions map[*moqtransport.Session]*Claims
}

// NewHMACAuth checks tokens signed with an HMAC secret.
func NewHMACAuth(secret []byte) (*TokenAuth, error) {
	if len(secret) < 16 {
		return nil, errors.New("relay: an HMAC token key needs at least 16 bytes")
	}
	return &TokenAuth{key: secret, method: []string{"HS256", "HS384", "HS512"}, sessions: map[*moqtransport.Session]*Claims{}}, nil
}

// NewEd25519Auth checks tokens signed with the private half of pub.
func NewEd25519Auth(pub crypto.PublicKey) (*TokenAuth, error) {
	if _, ok := pub.(ed25519.PublicKey); !ok {
		return nil, fmt.Errorf("relay: %T is not an Ed25519 public key", pub)
	}
	return &TokenAuth{key: pub, method: []string{"EdDSA"}, sessions: map[*moqtransport.Session]*Claims{}}, nil
}

func (a *TokenAuth) parse(raw []byte) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(string(raw), &c, func(*jwt.Token) (any, error) { return a.key, nil },
		jwt.WithValidMethods(a.method))
	switch {
	case err == nil:
		return &c, nil
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fmt.Errorf("%w: %v", moqtransport.ErrExpiredToken, err)
	default:
		return nil, fmt.Errorf("%w: %v", moqtransport.ErrMalformedToken, err)
	}
}

// Authorize is a moqtransport.Authorizer.
func (a *TokenAuth) Authorize(s *moqtransport.Session, m wire.Message, tokens []moqtransport.AuthToken) error {
	var claims *Claims
	for _, t := range tokens {
		if t.Type != 0 {
			continue
		}
		c, err := a.parse(t.Value)
		if err != nil {
			return err
		}
		claims = c
	}
	if m.Type() == wire.TypeClientSetup {
		// A session may open without a token; its requests then need
		// their own.
		if claims != nil {
			a.mu.Lock()
			a.sessions[s] = claims
			a.mu.Unlock()
		}
		return nil
	}
	if claims == nil {
		a.mu.Lock()
		claims = a.sessions[s]
		a.mu.Unlock()
	}
	if claims == nil {
		return fmt.Errorf("%w: no authorization token", moqtransport.ErrUnauthorized)
	}
	var ns wire.Namespace
	var allowed []string
	switch m := m.(type) {
	case *wire.PublishNamespace:
		ns, allowed = m.Namespace, claims.Publish
	case *wire.Publish:
		ns, allowed = m.Namespace, claims.Publish
	case *wire.Subscribe:
		ns, allowed = m.Namespace, claims.Subscribe
	case *wire.TrackStatus:
		ns, allowed = m.Namespace, claims.Subscribe
	case *wire.SubscribeNamespace:
		ns, allowed = m.Prefix, claims.Subscribe
	case *wire.Fetch:
		if m.FetchType != wire.FetchStandalone {
			return nil // joins a subscription that was authorized
		}
		ns, allowed = m.Namespace, claims.Subscribe
	default:
		return nil
	}
	for _, p := range allowed {
		if ns.HasPrefix(wire.ParseNamespacePath(p)) {
			return nil
		}
	}
	return fmt.Errorf("%w: the token does not grant %s", moqtransport.ErrUnauthorized, ns)
}

// Forget drops a session's claims; call it when the session ends.
func (a *TokenAuth) Forget(s *moqtransport.Session) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.sessions, s)
}
