// Package api is the origin registry of a relay cluster, moq-rs's moq-api,
// as its clients see it: the routes, the origin type and a Go client. The
// server, over Redis, is package api/server; cmd/moq-api runs it.
//
// # Routes
//
// Every route is /origin/{namespace}, where {namespace} is the rest of the
// path (it may hold "/" and ":", as the relays' registry keys do). Bodies
// are the JSON object {"url": "<relay URL>"}; the URL is the relay's node,
// the owner of what it registers.
//
//	GET    /origin/{ns}  200 and the origin; 404 if none
//	POST   /origin/{ns}  register: 200 if created, or if the same URL already
//	                     holds it (its TTL is renewed); 409 if another URL does,
//	                     or holds a namespace {ns} is under: for a relay's key
//	                     "scope:f1.f2.f3", "scope:f1" or "scope:f1.f2" (checked
//	                     with the write, atomically)
//	PATCH  /origin/{ns}  refresh: 200 and the TTL renewed; 404 if none; 403
//	                     if another URL holds it
//	DELETE /origin/{ns}  200 if deleted; 404 if none; 403 if another URL
//	                     holds it. The body names the owner: a DELETE
//	                     without one is 400 (moq-rs's relays send none, and
//	                     so could delete any relay's entry).
//
// A 200 to a POST or PATCH carries the server's TTL in the header
// Moq-Origin-Ttl (TTLHeader): whole milliseconds as a decimal integer,
// e.g. "Moq-Origin-Ttl: 600000", how long the entry now lives without
// another refresh. This module's relays (package relay's APICoordinator)
// refresh at half of it when it is shorter than the TTL they were
// configured with, so that a registry started with a shorter TTL than its
// relays' does not let their entries expire between refreshes (a TTL over
// MaxReportedTTL is taken for no report). moq-rs's moq-api sends none:
// the Client (RegisterOrigin, RefreshOrigin) takes a missing header, a
// repeated one, one that is not a decimal integer, and an absurd value
// (0, or more than MaxReportedTTL) as no report (0), never as an error.
//
// # Trust
//
// A server configured with tokens answers only requests that carry one,
// reads included, as "Authorization: Bearer <token>"; others get 401.
// Ownership is the node URL: a registration is refreshed or deleted only
// with the URL that made it (403 otherwise), atomically in Redis, so a
// relay never refreshes or deletes another relay's entry, even one that
// replaced its own after it expired. There are two kinds of token:
//
//   - the cluster's token (moq-api --api-token, or MOQ_API_TOKEN), shared
//     by the registry and the relays: it admits a relay into the cluster
//     but does not tell relays apart, so the owner rule protects relays
//     from each other's mistakes (a stale relay, a restarted one with
//     another URL), not from a token holder that lies about its URL;
//   - a node's own token (moq-api --node-tokens): it binds the request to
//     that node's URL, and a write naming another URL is 403, so the owner
//     rule holds against the other relays too.
//
// A relay sends its token with --api-token (or MOQ_API_TOKEN) either way.
//
// # Limits
//
// A namespace key is at most MaxKeyLen bytes (414), a body MaxBodyLen (413),
// and the URL MaxURLLen bytes, moqt:// or https:// with a host and no user
// information (400). A malformed body is 400, a JSON body without "url" 422,
// an explicit Content-Type other than JSON 415, another method 405, a Redis
// failure 500 with "redis error: ..." in the body. Every refusal has a
// one-line text body saying why. cmd/moq-api also bounds the request head
// (3×MaxKeyLen + 16 KiB): a longer request line is 431 before any route.
//
// moq-api differs: it has no token, its POST does not renew the TTL of an
// entry that is already the caller's nor look at the prefixes' entries,
// its DELETE takes no owner, it reports no TTL (no Moq-Origin-Ttl), and
// it stores keys, bodies and URLs of any size and scheme.
//
// # Redis
//
// An origin is the Redis string origin.{ns} holding the JSON of the
// origin, with the server's TTL (600 s by default, as moq-api's fixed one).
// Register, refresh and delete are each one Lua script, so that checking
// the owner (and, to register, the prefixes' owners) and acting on the key
// are atomic. Registering reads the prefixes' keys in the same script, so
// a Redis Cluster must keep them in one hash slot; a single Redis (as
// moq-api uses) is what this server is tested with.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Origin is a registry entry: the URL of the relay serving a namespace.
type Origin struct {
	URL string `json:"url"`
}

// DefaultTTL is how long an origin lives without a refresh, as in moq-api.
const DefaultTTL = 600 * time.Second

// TTLHeader is the response header in which a registry reports its TTL
// with a successful POST or PATCH, in whole milliseconds (see the package
// doc's Routes).
const TTLHeader = "Moq-Origin-Ttl"

// MaxReportedTTL bounds the TTL a Client takes from TTLHeader: a longer
// one (as an entry that never expires) is taken for no report.
const MaxReportedTTL = 24 * time.Hour

// KeyPrefix is the prefix of the Redis keys, as in moq-api.
const KeyPrefix = "origin."

// The registry's bounds. A relay's key (package relay's RegistryKey) is
// its scope, ":", and up to 4096 bytes of namespace fields in hex with a
// "." between fields, so MaxKeyLen leaves room for the longest namespace a
// MoQT session may carry and a scope of a few KiB.
const (
	// MaxKeyLen bounds a namespace key, the unescaped path after /origin/.
	MaxKeyLen = 12 << 10
	// MaxBodyLen bounds a request body.
	MaxBodyLen = 16 << 10
	// MaxURLLen bounds an origin's URL.
	MaxURLLen = 2048
)

var (
	// ErrNotFound is returned for a namespace no origin holds (404).
	ErrNotFound = errors.New("api: no origin for this namespace")
	// ErrConflict is returned when another URL holds the namespace a POST
	// registers (409).
	ErrConflict = errors.New("api: another origin holds this namespace")
	// ErrNotOwner is returned for 403: another URL holds the namespace a
	// PATCH or DELETE names (only the node that registered it may), or
	// the request's token is another node's (package doc, Trust).
	ErrNotOwner = errors.New("api: the registry refused: the namespace or the token is another node's (403)")
	// ErrUnauthorized is returned when the registry wants a token and the
	// request had none, or another (401).
	ErrUnauthorized = errors.New("api: the registry refused the request's token (401): give the registry's token")
)

// CheckURL checks that u may be stored as an origin: at most MaxURLLen
// bytes, moqt:// or https:// with a host, and no user information.
func CheckURL(u string) error {
	if len(u) > MaxURLLen {
		return fmt.Errorf("url of %d bytes: at most %d", len(u), MaxURLLen)
	}
	p, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("url %q: %v", u, err)
	}
	if p.Scheme != "moqt" && p.Scheme != "https" {
		return fmt.Errorf("url %q: want moqt://host[:port] or https://host[:port]", u)
	}
	if p.Host == "" || p.Opaque != "" {
		return fmt.Errorf("url %q: no host", u)
	}
	if p.User != nil {
		return fmt.Errorf("url %q: user information is not allowed", u)
	}
	return nil
}

// StatusError is an answer of the server the client has no error for.
type StatusError struct {
	Method, URL string
	Code        int
	Body        string
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return fmt.Sprintf("api: %s %s: status %d", e.Method, e.URL, e.Code)
	}
	return fmt.Sprintf("api: %s %s: status %d: %s", e.Method, e.URL, e.Code, e.Body)
}

// encode is the JSON body of an origin, HTML characters not escaped, as
// serde_json (moq-api) writes it.
func encode(o Origin) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(o) // a struct of one string cannot fail
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
