// Package server is the origin registry's HTTP server over Redis: the
// routes, status codes, trust rules, limits and Redis layout package api
// describes. It is apart from api so that relays, which only need the
// client, do not link a Redis client.
//
// Trust is decided in ServeHTTP, before anything else: with Config.Token or
// Config.NodeTokens set, a request without "Authorization: Bearer <token>"
// of one of them (compared in constant time) is 401, whatever its route. A
// node's own token binds the request to that node: a write whose body names
// another URL is 403. Ownership is decided in the Lua scripts: the stored
// origin is the owner, and a PATCH or DELETE whose body names another is
// 403. A registration is also refused (409) when another origin holds a
// namespace it is under (see package api's Routes), checked in the same
// script. A successful POST or PATCH reports Config.TTL in the
// api.TTLHeader header, so that relays configured with a longer TTL
// refresh in time (up to api.MaxReportedTTL).
package server

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moqgo/moq/api"
)

// Config configures a Server.
type Config struct {
	// Redis holds the origins; required.
	Redis redis.UniversalClient
	// TTL is how long an origin lives without a refresh; api.DefaultTTL when
	// zero. Redis keeps it to the millisecond, and the answers to POST and
	// PATCH report it (api.TTLHeader), in whole milliseconds too.
	TTL time.Duration
	// Logger receives the server's logs; nil is silent.
	Logger *slog.Logger
	// Token is the secret every request must carry as "Authorization:
	// Bearer <Token>" (see package api's Trust). Empty, the registry is
	// open to anyone who can reach it: cmd/moq-api requires a token or an
	// explicit --no-auth.
	Token string
	// NodeTokens maps a relay's node URL to a token of its own. A request
	// with a node's token may read, and may write only that node's
	// registrations: with per-node tokens, "only the node that made it"
	// holds even against another relay of the cluster. Token, if also
	// set, is not bound to a node.
	NodeTokens map[string]string
}

// credential is an accepted Authorization header, by its SHA-256 digest,
// and the node it is bound to ("" for any).
type credential struct {
	digest [sha256.Size]byte
	node   string
}

// Server is the registry's HTTP handler.
type Server struct {
	rdb   redis.UniversalClient
	ttl   time.Duration
	log   *slog.Logger
	creds []credential // none: the registry is open
	// ids numbers the requests: every log line about one carries its
	// "request" id.
	ids atomic.Uint64
}

// New returns the registry handler over cfg.Redis.
func New(cfg Config) *Server {
	if cfg.TTL <= 0 {
		cfg.TTL = api.DefaultTTL
	}
	if cfg.TTL < time.Millisecond {
		cfg.TTL = time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{rdb: cfg.Redis, ttl: cfg.TTL, log: cfg.Logger}
	if cfg.Token != "" {
		s.creds = append(s.creds, credential{digest: sha256.Sum256([]byte("Bearer " + cfg.Token))})
	}
	for node, tok := range cfg.NodeTokens {
		if tok != "" {
			s.creds = append(s.creds, credential{digest: sha256.Sum256([]byte("Bearer " + tok)), node: node})
		}
	}
	return s
}

// The scripts answer 1 for done, 0 for another owner, -1 for no key.
// ARGV[1] is the origin's canonical JSON, ARGV[2] the TTL in milliseconds.
var (
	// registerScript creates the key, or renews it if it is already ours,
	// unless another origin holds one of its shorter prefixes (KEYS[2:],
	// see prefixKeys): 2. Checking the prefixes and writing the key in
	// one script is what makes two relays registering nested namespaces
	// at the same instant (a and a/b) see each other: whichever the
	// script runs second finds the first.
	registerScript = redis.NewScript(`
for i = 2, #KEYS do
  local p = redis.call('GET', KEYS[i])
  if p ~= false and p ~= ARGV[1] then return 2 end
end
local cur = redis.call('GET', KEYS[1])
if cur == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)
	// refreshScript renews the key if it is ours.
	refreshScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then return -1 end
if cur ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)
	// deleteScript deletes the key if it is ours.
	deleteScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then return -1 end
if cur ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)
)

// authorized reports whether r carries an accepted token, and the node
// the token is bound to ("" for any). The comparisons are in constant time
// over SHA-256 digests, against every credential, so that their duration
// tells neither how many bytes matched, nor the tokens' lengths, nor which
// one matched.
func (s *Server) authorized(r *http.Request) (node string, ok bool) {
	if len(s.creds) == 0 {
		return "", true
	}
	got := r.Header.Values("Authorization")
	if len(got) != 1 {
		return "", false
	}
	h := sha256.Sum256([]byte(got[0]))
	for _, c := range s.creds {
		if subtle.ConstantTimeCompare(h[:], c.digest[:]) == 1 {
			node, ok = c.node, true
		}
	}
	return node, ok
}

// ServeHTTP serves the /origin/{namespace} routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	log := s.log.With("request", s.ids.Add(1))
	node, ok := s.authorized(r)
	if !ok {
		log.Warn("request without the registry's token", "method", r.Method, "remote", r.RemoteAddr)
		w.Header().Set("WWW-Authenticate", `Bearer realm="moq-api"`)
		msg := "missing credentials: send \"Authorization: Bearer <token>\" with the registry's token"
		if r.Header.Get("Authorization") != "" {
			msg = "invalid credentials: the token is not the registry's"
		}
		http.Error(w, msg, http.StatusUnauthorized)
		return
	}
	// The namespace is the raw rest of the path: no cleaning, so that
	// "//" in a scoped key survives (http.ServeMux would redirect it).
	ns, found := strings.CutPrefix(r.URL.Path, "/origin/")
	if !found || ns == "" {
		http.NotFound(w, r)
		return
	}
	if len(ns) > api.MaxKeyLen {
		http.Error(w, fmt.Sprintf("namespace key of %d bytes: at most %d", len(ns), api.MaxKeyLen), http.StatusRequestURITooLong)
		return
	}
	key := api.KeyPrefix + ns
	ctx := r.Context()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		v, err := s.rdb.Get(ctx, key).Bytes()
		if errors.Is(err, redis.Nil) {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		if err != nil {
			s.redisError(log, w, r, err)
			return
		}
		var o api.Origin
		if err := json.Unmarshal(v, &o); err != nil {
			http.Error(w, "json error: "+err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(v)))
		_, _ = w.Write(v)
	case http.MethodPost, http.MethodPatch, http.MethodDelete:
		o, present, code, msg := readOrigin(w, r)
		if code != 0 {
			http.Error(w, msg, code)
			return
		}
		if !present {
			// moq-api's DELETE has no body; here it must name the owner.
			http.Error(w, "missing body: want {\"url\": \"<this relay's URL>\"}, the registration's owner", http.StatusBadRequest)
			return
		}
		if node != "" && o.URL != node {
			http.Error(w, "this token is node "+strconv.Quote(node)+"'s: it may not act for "+strconv.Quote(o.URL), http.StatusForbidden)
			return
		}
		script, keys := deleteScript, []string{key}
		switch r.Method {
		case http.MethodPost:
			script, keys = registerScript, append(keys, prefixKeys(ns)...)
		case http.MethodPatch:
			script = refreshScript
		}
		res, err := script.Run(ctx, s.rdb, keys, encode(o), s.ttl.Milliseconds()).Int()
		if err != nil {
			s.redisError(log, w, r, err)
			return
		}
		switch res {
		case 1:
			log.Debug("origin "+strings.ToLower(r.Method), "namespace", ns, "url", o.URL)
			if r.Method != http.MethodDelete {
				// The entry lives s.ttl from now: a relay configured
				// with a longer TTL refreshes at half of it.
				w.Header().Set(api.TTLHeader, strconv.FormatInt(s.ttl.Milliseconds(), 10))
			}
			w.WriteHeader(http.StatusOK)
		case 2:
			log.Info("registration refused: another origin holds a prefix", "namespace", ns, "url", o.URL)
			http.Error(w, "another origin holds a prefix of this namespace", http.StatusConflict)
		case 0:
			if r.Method == http.MethodPost {
				log.Info("registration refused: another origin holds the namespace", "namespace", ns, "url", o.URL)
				http.Error(w, "another origin holds this namespace", http.StatusConflict)
			} else {
				log.Info(strings.ToLower(r.Method)+" refused: another origin holds the namespace", "namespace", ns, "url", o.URL)
				http.Error(w, "another origin holds this namespace: only the origin that registered it may refresh or delete it", http.StatusForbidden)
			}
		default:
			log.Debug(strings.ToLower(r.Method)+" of no origin", "namespace", ns, "url", o.URL)
			w.WriteHeader(http.StatusNotFound)
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, PATCH, DELETE")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// prefixKeys returns the Redis keys of the namespaces a registry key's
// namespace is under, shortest first: for the relays' key
// "scope:f1.f2.f3" (relay.RegistryKey: the scope, ":", the fields in hex
// joined by "."), those of "scope:f1" and "scope:f1.f2". The scope is
// what precedes the last ":", since hex fields hold none. A key without
// ":" has none.
func prefixKeys(ns string) []string {
	i := strings.LastIndexByte(ns, ':')
	if i < 0 {
		return nil
	}
	var keys []string
	for j := i + 1; j < len(ns); j++ {
		if ns[j] == '.' {
			keys = append(keys, api.KeyPrefix+ns[:j])
		}
	}
	return keys
}

func (s *Server) redisError(log *slog.Logger, w http.ResponseWriter, r *http.Request, err error) {
	log.Warn("redis error", "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, "redis error: "+err.Error(), http.StatusInternalServerError)
}

// readOrigin reads the request's origin. present is false for an empty
// body; a non-zero code is the status to refuse the request with.
func readOrigin(w http.ResponseWriter, r *http.Request) (o api.Origin, present bool, code int, msg string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, api.MaxBodyLen))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return o, false, http.StatusRequestEntityTooLarge, fmt.Sprintf("body too large: at most %d bytes", api.MaxBodyLen)
		}
		return o, false, http.StatusBadRequest, "reading the body: " + err.Error()
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return o, false, 0, ""
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			return o, false, http.StatusUnsupportedMediaType, "Content-Type must be application/json"
		}
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return o, false, http.StatusBadRequest, "malformed JSON: " + err.Error()
	}
	if err := json.Unmarshal(raw["url"], &o.URL); err != nil || raw["url"] == nil {
		return o, false, http.StatusUnprocessableEntity, "want {\"url\": \"<absolute URL>\"}"
	}
	if err := api.CheckURL(o.URL); err != nil {
		return o, false, http.StatusBadRequest, err.Error()
	}
	return o, true, 0, ""
}

// encode is the canonical JSON of an origin, what the server stores and
// compares owners by: HTML characters are not escaped, as serde_json (and
// so moq-api) does not.
func encode(o api.Origin) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	_ = e.Encode(o) // a struct of one string cannot fail
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}
