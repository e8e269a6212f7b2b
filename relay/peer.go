package relay

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

// Relay peers prove they are relays with a peer token: a JWT signed with
// the cluster's key (moq-relay --cluster-key), which every relay of the
// cluster holds. A relay that dials another puts a fresh one in its
// CLIENT_SETUP's AUTHORIZATION TOKEN (type 0):
//
//	{"moq_relay_peer": true, "iss": <dialer's node URL>, "aud": [<target's node URL>], "iat": now, "exp": now+1m}
//
// The receiving relay accepts it only when it verifies with the cluster
// key, has not expired, and names this relay's own node as its audience
// (scheme, host and port compared; a token made for another relay is
// worth nothing here). The token proves who the peer is at setup, as a
// client certificate would; the session keeps that identity for its life.
// Its short life bounds what a stolen copy is worth.
//
// A relay never sends its peer token to anyone but the relay it dials, and
// never sends one in SERVER_SETUP: a client of ours must not learn a token
// that would make it a relay elsewhere.

// peerTokenTTL is how long a peer token is valid after it is made.
const peerTokenTTL = time.Minute

// peerClaims is a peer token's payload.
type peerClaims struct {
	Peer bool `json:"moq_relay_peer"`
	jwt.RegisteredClaims
}

// ClusterKey signs and verifies peer tokens.
type ClusterKey struct {
	sign   any
	verify any
	method jwt.SigningMethod
}

// NewHMACClusterKey makes a cluster key from a shared secret of at least
// 32 bytes.
func NewHMACClusterKey(secret []byte) (*ClusterKey, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("relay: a cluster HMAC secret needs at least 32 bytes, got %d", len(secret))
	}
	s := append([]byte(nil), secret...)
	return &ClusterKey{sign: s, verify: s, method: jwt.SigningMethodHS256}, nil
}

// NewEd25519ClusterKey makes a cluster key from an Ed25519 private key that
// every relay of the cluster holds.
func NewEd25519ClusterKey(priv ed25519.PrivateKey) (*ClusterKey, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("relay: not an Ed25519 private key")
	}
	return &ClusterKey{sign: priv, verify: priv.Public(), method: jwt.SigningMethodEdDSA}, nil
}

// PeerToken makes a peer token from the relay at node from to the relay at
// node to.
func (k *ClusterKey) PeerToken(from, to string, now time.Time) (string, error) {
	c := peerClaims{Peer: true, RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    nodeID(from),
		Audience:  jwt.ClaimStrings{nodeID(to)},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(peerTokenTTL)),
	}}
	return jwt.NewWithClaims(k.method, c).SignedString(k.sign)
}

// verifyPeer checks a peer token made for the relay at node; it returns
// the peer's node. ok is false when raw is not a peer token at all (a
// user's token), err non-nil when it is one that does not hold.
func (k *ClusterKey) verifyPeer(raw []byte, node string) (from string, ok bool, err error) {
	var c peerClaims
	_, err = jwt.ParseWithClaims(string(raw), &c, func(*jwt.Token) (any, error) { return k.verify, nil },
		jwt.WithValidMethods([]string{k.method.Alg()}), jwt.WithExpirationRequired(), jwt.WithAudience(nodeID(node)))
	if err == nil && c.Peer {
		return c.Issuer, true, nil
	}
	if !c.Peer {
		return "", false, nil
	}
	if errors.Is(err, jwt.ErrTokenExpired) {
		return "", true, fmt.Errorf("%w: relay peer token: %v", moqtransport.ErrExpiredToken, err)
	}
	return "", true, fmt.Errorf("%w: relay peer token: %v", moqtransport.ErrUnauthorized, err)
}

// nodeID is a relay URL reduced to what names the relay: scheme, host and
// port, lower case, without path or query.
func nodeID(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return strings.ToLower(raw)
	}
	host, port := u.Hostname(), u.Port()
	if port == "" {
		port = "443"
	}
	return strings.ToLower(u.Scheme + "://" + net.JoinHostPort(host, port))
}

// peerTokenParam is the AUTHORIZATION TOKEN setup parameter that carries a
// peer token.
func peerTokenParam(tok string) (wire.KeyValue, error) {
	return wire.TokenParam(wire.Token{AliasType: wire.TokenUseValue, Type: 0, Value: []byte(tok)})
}
