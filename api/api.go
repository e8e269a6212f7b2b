// Package api is the origin registry of a relay cluster, moq-rs's moq-api,
// as its clients see it: the routes, the origin type and a Go client. The
// server, over Redis, is package api/server; cmd/moq-api runs it.
//
// # Routes
//
// Every route is /origin/{namespace}, where {namespace} is the rest of the
// path (it may hold "/" and ":", as the relays' registry keys do). Bodies
// are the JSON object {"url": "<relay URL>"}.
//
//	GET    /origin/{ns}  200 and the origin; 404 if none
//	POST   /origin/{ns}  register: 200 if created, or if the same URL already
//	                     holds it (its TTL is renewed); 409 if another URL does
//	PATCH  /origin/{ns}  refresh: 200 and the TTL renewed; 404 if none; 409
//	                     if another URL holds it
//	DELETE /origin/{ns}  with a body: 200 if deleted; 404 if none; 409 if
//	                     another URL holds it. Without a body (moq-rs's
//	                     relays send none): deleted whoever holds it, 200 or
//	                     404.
//
// A malformed body is 400, a body that is not an absolute URL 422, an
// explicit Content-Type other than JSON 415, another method 405, a Redis
// failure 500 with "redis error: ..." in the body. These are moq-api's
// status codes; moq-api's POST does not renew the TTL of an entry that is
// already the caller's, and its DELETE takes no owner.
//
// # Redis
//
// An origin is the Redis string origin.{ns} holding the JSON of the
// origin, with the server's TTL (600 s by default, as moq-api's fixed one).
// Register, refresh and delete are each one Lua script, so that checking
// the owner and acting on the key are atomic: a relay never refreshes or
// deletes another relay's entry, even if its own expired in between (moq-api
// reads, then writes, and deletes without looking).
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Origin is a registry entry: the URL of the relay serving a namespace.
type Origin struct {
	URL string `json:"url"`
}

// DefaultTTL is how long an origin lives without a refresh, as in moq-api.
const DefaultTTL = 600 * time.Second

// KeyPrefix is the prefix of the Redis keys, as in moq-api.
const KeyPrefix = "origin."

var (
	// ErrNotFound is returned for a namespace no origin holds (404).
	ErrNotFound = errors.New("api: no origin for this namespace")
	// ErrConflict is returned when another URL holds the namespace (409).
	ErrConflict = errors.New("api: another origin holds this namespace")
)

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
