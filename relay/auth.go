package relay

import (
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Claims are what a relay token grants: the namespace prefixes its holder
// may publish under (PUBLISH_NAMESPACE, PUBLISH) and subscribe under
// (SUBSCRIBE, FETCH, TRACK_STATUS, SUBSCRIBE_NAMESPACE).
//
// A prefix is a namespace path: its fields joined by "/" ("live/room1"
// grants live/room1 and every namespace under it, field by field). One
// leading "/" is allowed and means nothing ("/live" is "live"). The empty
// prefix "" grants every namespace: that is the only way to grant
// everything. A prefix with an empty field ("/", "live//x", "live/") is not
// a namespace path, and a token that holds one is refused as
// MALFORMED_AUTH_TOKEN, so that a typo never widens a grant.
//
// Scopes: the session's path (its scope, see Scope) is chosen by the
// client, so a token binds it with Path. A token with a Path holds only in
// that scope and the scopes under it, segment by segment ("/a" holds in /a
// and /a/b, not in /ab nor in the unscoped scope; "/" is every scope): a
// session whose scope is outside its CLIENT_SETUP token's Path is refused
// with UNAUTHORIZED, and so is a request whose own token's Path does not
// hold in its session's scope. A token without Path holds in every scope:
// a relay whose scopes separate tenants must issue tokens with a Path.
type Claims struct {
	Publish   []string `json:"pub,omitempty"`
	Subscribe []string `json:"sub_ns,omitempty"`
	Path      string   `json:"path,omitempty"`
	jwt.RegisteredClaims
}

// holdsIn reports whether the claims hold in scope (a normalised session
// path). Path was checked by Parse.
func (c *Claims) holdsIn(scope string) bool {
	root, err := Scope(c.Path)
	if err != nil {
		return false
	}
	return root == "" || scope == root || strings.HasPrefix(scope, root+"/")
}

// checkScope refuses claims that do not hold in scope.
func (c *Claims) checkScope(scope string) error {
	if c == nil || c.holdsIn(scope) {
		return nil
	}
	where := scope
	if where == "" {
		where = "/"
	}
	return fmt.Errorf("%w: the token holds in path %s, not in %s", moqtransport.ErrUnauthorized, c.Path, where)
}

// parsePrefix turns a claim into the namespace prefix it grants.
func parsePrefix(p string) (wire.Namespace, error) {
	if p == "" {
		return nil, nil // everything, deliberately
	}
	p = strings.TrimPrefix(p, "/")
	ns := wire.ParseNamespacePath(p)
	if len(ns) == 0 || slices.Contains(ns, "") {
		return nil, fmt.Errorf("claim %q has an empty namespace field (grant everything with \"\")", "/"+p)
	}
	return ns, nil
}

// grants reports whether one of the prefixes covers ns.
func grants(prefixes []string, ns wire.Namespace) bool {
	for _, p := range prefixes {
		pre, err := parsePrefix(p)
		if err == nil && ns.HasPrefix(pre) {
			return true
		}
	}
	return false
}

// TokenAuth checks JWTs carried in AUTHORIZATION TOKEN parameters (token
// type 0, "negotiated out of band"), signed with HMAC (HS256/384/512) or
// Ed25519 (EdDSA). A token in CLIENT_SETUP applies to the whole session,
// until its exp: a request that relies on it after exp is refused with
// EXPIRED_AUTH_TOKEN, and a Relay closes the session with
// EXPIRED_AUTH_TOKEN at exp, so that nothing granted under the token
// outlives it. A token in a request applies to that request. A
// request whose namespace is outside the claims is refused with
// UNAUTHORIZED, an expired token with EXPIRED_AUTH_TOKEN and a token that
// does not verify, or has no exp, with MALFORMED_AUTH_TOKEN. When Issuer
// or Audience is set, a token must carry that iss, or that value among its
// aud.
//
// TokenAuth keeps no state of its own: the relay keeps each session's
// claims with the session and drops them when it ends.
type TokenAuth struct {
	key    any
	method []string

	// Issuer, when set, is the iss every token must have.
	Issuer string
	// Audience, when set, must be one of a token's aud values.
	Audience string
}

// NewHMACAuth checks tokens signed with an HMAC secret.
func NewHMACAuth(secret []byte) (*TokenAuth, error) {
	if len(secret) < 16 {
		return nil, errors.New("relay: an HMAC token key needs at least 16 bytes")
	}
	return &TokenAuth{key: secret, method: []string{"HS256", "HS384", "HS512"}}, nil
}

// NewEd25519Auth checks tokens signed with the private half of pub.
func NewEd25519Auth(pub crypto.PublicKey) (*TokenAuth, error) {
	if _, ok := pub.(ed25519.PublicKey); !ok {
		return nil, fmt.Errorf("relay: %T is not an Ed25519 public key", pub)
	}
	return &TokenAuth{key: pub, method: []string{"EdDSA"}}, nil
}

// Parse verifies a token and returns its claims. A token must have an exp
// claim. Its errors wrap moqtransport.ErrExpiredToken or
// moqtransport.ErrMalformedToken (a token without exp is malformed).
func (a *TokenAuth) Parse(raw []byte) (*Claims, error) {
	var c Claims
	// exp is required: golang-jwt checks it only when present, so a
	// token without one (leaked, say) would grant for ever, and the relay
	// would never close the session or end the grant at its expiry.
	opts := []jwt.ParserOption{jwt.WithValidMethods(a.method), jwt.WithExpirationRequired()}
	if a.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.Issuer))
	}
	if a.Audience != "" {
		opts = append(opts, jwt.WithAudience(a.Audience))
	}
	_, err := jwt.ParseWithClaims(string(raw), &c, func(*jwt.Token) (any, error) { return a.key, nil }, opts...)
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fmt.Errorf("%w: %v", moqtransport.ErrExpiredToken, err)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && c.ExpiresAt == nil:
		return nil, fmt.Errorf("%w: the token has no exp claim: relay tokens must expire; issue it with an exp", moqtransport.ErrMalformedToken)
	default:
		return nil, fmt.Errorf("%w: %v", moqtransport.ErrMalformedToken, err)
	}
	for _, p := range append(slices.Clip(c.Publish), c.Subscribe...) {
		if _, err := parsePrefix(p); err != nil {
			return nil, fmt.Errorf("%w: %v", moqtransport.ErrMalformedToken, err)
		}
	}
	if c.Path != "" {
		if _, err := Scope(c.Path); err != nil || c.Path[0] != '/' {
			return nil, fmt.Errorf("%w: path claim %q is not a session path", moqtransport.ErrMalformedToken, c.Path)
		}
	}
	return &c, nil
}

// tokenClaims returns the claims of the type-0 tokens among tokens (the
// last one wins), nil when there are none.
func (a *TokenAuth) tokenClaims(tokens []moqtransport.AuthToken) (*Claims, error) {
	var claims *Claims
	for _, t := range tokens {
		if t.Type != 0 {
			continue
		}
		c, err := a.Parse(t.Value)
		if err != nil {
			return nil, err
		}
		claims = c
	}
	return claims, nil
}

// Check decides a request from the claims that apply to it: the request's
// own token, else the session's. now is checked against the claims' exp,
// so that a session token stops authorizing when it expires.
func (a *TokenAuth) Check(m wire.Message, claims *Claims, now time.Time) error {
	ns, publish, ok := requestNamespace(m)
	if !ok {
		return nil // not a request on a namespace, or joins an authorized one
	}
	if claims == nil {
		return fmt.Errorf("%w: no authorization token", moqtransport.ErrUnauthorized)
	}
	if claims.ExpiresAt != nil && !now.Before(claims.ExpiresAt.Time) {
		return fmt.Errorf("%w: the session's token expired at %s", moqtransport.ErrExpiredToken, claims.ExpiresAt.Time.UTC().Format(time.RFC3339))
	}
	allowed := claims.Subscribe
	if publish {
		allowed = claims.Publish
	}
	if grants(allowed, ns) {
		return nil
	}
	return fmt.Errorf("%w: the token does not grant %s", moqtransport.ErrUnauthorized, ns)
}

// requestNamespace returns the namespace a request acts on and whether it
// publishes; ok is false for messages that need no namespace grant.
func requestNamespace(m wire.Message) (ns wire.Namespace, publish, ok bool) {
	switch m := m.(type) {
	case *wire.PublishNamespace:
		return m.Namespace, true, true
	case *wire.Publish:
		return m.Namespace, true, true
	case *wire.Subscribe:
		return m.Namespace, false, true
	case *wire.TrackStatus:
		return m.Namespace, false, true
	case *wire.SubscribeNamespace:
		return m.Prefix, false, true
	case *wire.Fetch:
		if m.FetchType != wire.FetchStandalone {
			return nil, false, false // joins a subscription that was authorized
		}
		return m.Namespace, false, true
	}
	return nil, false, false
}

// Authorize is a moqtransport.Authorizer for sessions that are not run by
// a Relay: it checks every request against its own token only (a
// CLIENT_SETUP token is verified, but a session keeps no claims).
func (a *TokenAuth) Authorize(_ *moqtransport.Session, m wire.Message, tokens []moqtransport.AuthToken) error {
	claims, err := a.tokenClaims(tokens)
	if err != nil {
		return err
	}
	switch m.Type() {
	case wire.TypeClientSetup, wire.TypeServerSetup:
		return nil
	}
	return a.Check(m, claims, time.Now())
}
