// Package server is the origin registry's HTTP server over Redis: the
// routes, status codes and Redis layout package api describes. It is apart
// from api so that relays, which only need the client, do not link a Redis
// client.
package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/moqgo/moq/api"
)

// Config configures a Server.
type Config struct {
	// Redis holds the origins; required.
	Redis redis.UniversalClient
	// TTL is how long an origin lives without a refresh; api.DefaultTTL when
	// zero. Redis keeps it to the millisecond.
	TTL time.Duration
	// Logger receives the server's logs; nil is silent.
	Logger *slog.Logger
}

// Server is the registry's HTTP handler.
type Server struct {
	rdb redis.UniversalClient
	ttl time.Duration
	log *slog.Logger
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
	return &Server{rdb: cfg.Redis, ttl: cfg.TTL, log: cfg.Logger}
}

// The scripts answer 1 for done, 0 for another owner, -1 for no key.
// ARGV[1] is the origin's canonical JSON, ARGV[2] the TTL in milliseconds.
var (
	// registerScript creates the key, or renews it if it is already ours.
	registerScript = redis.NewScript(`
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

const maxBody = 64 << 10 // bytes of a request body

// ServeHTTP serves the /origin/{namespace} routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The namespace is the raw rest of the path: no cleaning, so that
	// "//" in a scoped key survives (http.ServeMux would redirect it).
	ns, ok := strings.CutPrefix(r.URL.Path, "/origin/")
	if !ok || ns == "" {
		http.NotFound(w, r)
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
			s.redisError(w, r, err)
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
		if r.Method == http.MethodDelete && !present {
			// moq-api's DELETE: whoever holds it.
			n, err := s.rdb.Del(ctx, key).Result()
			if err != nil {
				s.redisError(w, r, err)
				return
			}
			if n == 0 {
				w.WriteHeader(http.StatusNotFound)
			}
			return
		}
		if !present {
			http.Error(w, "missing body: want {\"url\": ...}", http.StatusBadRequest)
			return
		}
		script := deleteScript
		switch r.Method {
		case http.MethodPost:
			script = registerScript
		case http.MethodPatch:
			script = refreshScript
		}
		res, err := script.Run(ctx, s.rdb, []string{key}, encode(o), s.ttl.Milliseconds()).Int()
		if err != nil {
			s.redisError(w, r, err)
			return
		}
		switch res {
		case 1:
			s.log.Debug("origin "+strings.ToLower(r.Method), "namespace", ns, "url", o.URL)
		case 0:
			w.WriteHeader(http.StatusConflict)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	default:
		w.Header().Set("Allow", "GET, HEAD, POST, PATCH, DELETE")
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

func (s *Server) redisError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Warn("redis error", "method", r.Method, "path", r.URL.Path, "err", err)
	http.Error(w, "redis error: "+err.Error(), http.StatusInternalServerError)
}

// readOrigin reads the request's origin. present is false for an empty
// body; a non-zero code is the status to refuse the request with.
func readOrigin(w http.ResponseWriter, r *http.Request) (o api.Origin, present bool, code int, msg string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return o, false, http.StatusRequestEntityTooLarge, "body too large"
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
	if u, err := url.Parse(o.URL); err != nil || u.Scheme == "" || (u.Host == "" && u.Opaque == "") {
		return o, false, http.StatusUnprocessableEntity, "url " + strconv.Quote(o.URL) + " is not an absolute URL"
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
