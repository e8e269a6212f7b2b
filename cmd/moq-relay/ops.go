package main

import (
	"cmp"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/mlog"
	"github.com/moqgo/moq/relay"
)

// defaultMaxSessions is --max-sessions' default. Every session may pin
// memory whatever it sends: up to moqnative.MaxConnectionReceiveWindow (16
// MiB) of unread data in QUIC buffers, its streams' readers and objects in
// progress (moqtransport.Config.MaxBytesInFlight), goroutines. The caches
// are bounded apart (--cache-total-bytes). A thousand sessions is what a
// relay on a few GiB of memory can hold in the worst case the sessions
// could push, and far more viewers than one relay's uplink usually serves.
const defaultMaxSessions = 1000

// defaultWriteCoalesce is --write-coalesce's default. It holds only small
// objects (under 8 KiB) of tracks read by more than one subscriber whose
// objects come less than about 5 ms apart (over 190 a second), so a track
// with an object per audio or video frame is never held. On those it adds
// up to 8 ms per relay hop, less once the held objects fill their packets
// (a hold then ends at once). At 4 Mbit/s of 1 KiB objects, one every 2
// ms, a held write carries four objects in three full packets (3.8
// objects a held write against 3.2 at 6 ms, from the relay's
// moq_relay_write_hold_* metrics). At 1:100, pinned (session 7): loopback
// UDP datagrams per 15 s run 1.07-1.11 M with no hold, 0.97-0.98 M at
// 6 ms, 0.90-0.97 M at 8 ms; relay CPU 12.0-13.1 s/GB at 6 ms and
// 10.0-11.3 at 8 ms in a quiet hour (three interleaved runs each), the
// same within a noisier hour's spread (13.8-17.3 for both) later; median
// latency about half a millisecond more (5.0 -> 5.5 ms). At 8 Mbit/s
// (1:50) the write goes once its packets are full, after 3 ms rather
// than at 8 KiB: median 2.8 ms against 3.6 at the same CPU. A smaller
// window does little at an object every 2 ms: it must be at least 1.5
// times the object interval to hold anything, and 4 intervals to make
// packets full.
const defaultWriteCoalesce = 8 * time.Millisecond

// defaultCacheTotal is --cache-total-bytes' default: moqtransport's
// DefaultCacheBudget (1 GiB), or a quarter of the Go memory limit
// (GOMEMLIMIT, or --memory-limit as apply sets it) when one is set and
// that is less, leaving the rest to the
// sessions and to the heap's growth between collections.
func defaultCacheTotal() int64 {
	return cacheTotalFor(debug.SetMemoryLimit(-1))
}

// cacheTotalFor is the default cache budget under a memory limit
// (math.MaxInt64 or 0: none).
func cacheTotalFor(limit int64) int64 {
	if limit > 0 && limit < math.MaxInt64 && limit/4 < moqtransport.DefaultCacheBudget {
		return max(limit/4, 16<<20)
	}
	return moqtransport.DefaultCacheBudget
}

// opsConfig holds the flags for the operations surface, access control,
// event logs and limits.
type opsConfig struct {
	flags          *pflag.FlagSet // addFlags' (apply asks which were given)
	memoryLimit    string
	metricsAddr    string
	pprof          bool
	mutexFraction  int
	blockRate      int
	authKey        string
	authIssuer     string
	authAudience   string
	mlogDir        string
	cacheMaxBytes  int64
	cacheMaxGroups int
	cacheMaxAge    time.Duration
	cacheTotal     int64
	maxRequests    uint64
	maxSessions    int
	deliveryTO     time.Duration
	writeCoalesce  time.Duration
	upstreamTO     time.Duration
	trackStatusTO  time.Duration
	writeAhead     int64
}

func (o *opsConfig) addFlags(f *pflag.FlagSet) {
	o.flags = f
	f.StringVar(&o.memoryLimit, "memory-limit", memoryLimitAuto, "soft memory limit of the Go runtime: the heap is collected before it passes it, and memory above it returned (auto: GOMEMLIMIT, else 90% of the cgroup's memory limit, else none; off; or a size such as 512MiB or 2GiB)")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics and /health on this TCP address (e.g. 127.0.0.1:9090)")
	f.BoolVar(&o.pprof, "pprof", false, "also serve /debug/pprof/ on --metrics-addr")
	f.IntVar(&o.mutexFraction, "pprof-mutex-fraction", 0, "with --pprof: record 1 in N contended mutex unlocks in /debug/pprof/mutex (runtime.SetMutexProfileFraction; 0: off). A debugging aid: it costs CPU on a busy relay")
	f.IntVar(&o.blockRate, "pprof-block-rate", 0, "with --pprof: record goroutines blocking in /debug/pprof/block, one sample per N ns blocked on average (runtime.SetBlockProfileRate; 0: off). A debugging aid: it costs CPU on a busy relay")
	f.StringVar(&o.authKey, "auth-key", "", "check JWTs in AUTHORIZATION TOKEN: a file holding an Ed25519 public key (PEM) or an HMAC secret (raw bytes, at least 16); none leaves the relay open")
	f.StringVar(&o.authIssuer, "auth-issuer", "", "with --auth-key: tokens must carry this iss")
	f.StringVar(&o.authAudience, "auth-audience", "", "with --auth-key: tokens must carry this value in aud")
	f.StringVar(&o.mlogDir, "mlog-dir", "", "write a MoQT event log (qlog JSON-SEQ) per session into this directory")
	f.Int64Var(&o.cacheMaxBytes, "cache-max-bytes", moqtransport.DefaultTrackMaxBytes, "bytes each relayed track may cache")
	f.IntVar(&o.cacheMaxGroups, "cache-max-groups", moqtransport.DefaultTrackMaxGroups, "groups each relayed track may cache")
	f.DurationVar(&o.cacheMaxAge, "cache-max-age", 0, "drop cached groups older than this (0: no age limit)")
	f.Int64Var(&o.cacheTotal, "cache-total-bytes", defaultCacheTotal(), "bytes all relayed tracks may cache together; over it, the older groups of the least recently read tracks go first (default 1 GiB, or a quarter of --memory-limit when that is less)")
	f.Uint64Var(&o.maxRequests, "max-requests", 100, "requests a session may have open at once (MAX_REQUEST_ID window)")
	f.DurationVar(&o.deliveryTO, "delivery-timeout", 5*time.Second, "DELIVERY TIMEOUT for subscribers that send none, when the track's publisher gives none either: a viewer on a slow link is never further behind live than this, its stale groups are dropped whole (0: deliver everything, however late)")
	f.DurationVar(&o.writeCoalesce, "write-coalesce", defaultWriteCoalesce, "hold a small object (under 8 KiB) for up to this long after it arrived, so that the objects that follow within it reach a subscriber in one write: fewer send calls and wakeups, less CPU per byte, for up to this much more latency. Only tracks read by more than one subscriber whose objects come closer together than this (over about 190 a second at 8ms) are held, never bursts, objects near their delivery deadline, or tracks with an object per audio or video frame (0: write each object at once)")
	f.DurationVar(&o.upstreamTO, "upstream-timeout", relay.DefaultUpstreamTimeout, "how long the relay waits for a publisher's answer to a SUBSCRIBE or FETCH it forwards, or the SUBSCRIBE a TRACK_STATUS falls back to (then TIMEOUT), for a forwarded FETCH's stream after FETCH_OK while the publisher could open it (then FETCH_CANCEL upstream, and the subscriber's fetch stream is reset), for a dial to another relay of the cluster, and for a namespace subscriber's answer to the PUBLISH_NAMESPACE and PUBLISH the relay sends it")
	f.DurationVar(&o.trackStatusTO, "track-status-timeout", relay.DefaultTrackStatusTimeout, "how long the relay waits for a publisher's answer to a forwarded TRACK_STATUS before it asks with SUBSCRIBE instead (some publishers never answer TRACK_STATUS for a track they lack), and for a FETCH it forwards only because its cache cannot show the range complete before it answers from the cache (some publishers drop FETCH); at most --upstream-timeout")
	f.Int64Var(&o.writeAhead, "write-ahead", moqtransport.DefaultMaxWriteAhead, "bytes of copied objects a session's writes may hold inside QUIC at once; past it a subscriber's next write waits, holding no copy, for one to finish (0: the default; -1: no bound)")
	f.IntVar(&o.maxSessions, "max-sessions", defaultMaxSessions, "sessions the relay runs at once; more are closed with INTERNAL_ERROR \"relay full\" (0: no cap)")
}

// applyTimeouts checks --upstream-timeout and --track-status-timeout and
// puts them into the relay's configuration. Zero, in an opsConfig built
// without flags, leaves the relay's default; a flag given is positive,
// and --track-status-timeout at most --upstream-timeout. The default
// --track-status-timeout is not refused when only --upstream-timeout is
// given, shorter: relay.New shortens the TRACK_STATUS wait to it.
func (o *opsConfig) applyTimeouts(rcfg *relay.Config) error {
	given := func(name string) bool { return o.flags != nil && o.flags.Changed(name) }
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"upstream-timeout", o.upstreamTO}, {"track-status-timeout", o.trackStatusTO}} {
		if t.d < 0 || t.d == 0 && given(t.name) {
			return fmt.Errorf("--%s %v: give a positive duration, such as 10s or 500ms", t.name, t.d)
		}
	}
	if given("track-status-timeout") && o.trackStatusTO > cmp.Or(o.upstreamTO, relay.DefaultUpstreamTimeout) {
		return fmt.Errorf("--track-status-timeout %v is longer than --upstream-timeout %v: the TRACK_STATUS fallback must come before the upstream wait ends; shorten it or raise --upstream-timeout",
			o.trackStatusTO, cmp.Or(o.upstreamTO, relay.DefaultUpstreamTimeout))
	}
	rcfg.UpstreamTimeout, rcfg.TrackStatusTimeout = o.upstreamTO, o.trackStatusTO
	return nil
}

// apply puts the flags into the relay's configuration.
func (o *opsConfig) apply(rcfg *relay.Config, logger *slog.Logger) (func(), error) {
	limit, from, err := parseMemoryLimit(o.memoryLimit)
	if err != nil {
		return nil, err
	}
	if o.mutexFraction < 0 || o.blockRate < 0 {
		return nil, errors.New("--pprof-mutex-fraction and --pprof-block-rate take 0 (off) or a positive number")
	}
	if (o.mutexFraction > 0 || o.blockRate > 0) && (!o.pprof || o.metricsAddr == "") {
		return nil, errors.New("--pprof-mutex-fraction and --pprof-block-rate need --pprof and --metrics-addr, where their profiles are served")
	}
	if err := o.applyTimeouts(rcfg); err != nil {
		return nil, err
	}
	if o.writeAhead < -1 {
		return nil, fmt.Errorf("--write-ahead %d: give a number of bytes, 0 for the default or -1 for no bound", o.writeAhead)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
		logger.Info("memory limit", "bytes", limit, "from", from)
	} else {
		debug.SetMemoryLimit(math.MaxInt64) // off, even with GOMEMLIMIT set
		logger.Debug("no memory limit", "from", from)
	}
	if o.flags != nil && !o.flags.Changed("cache-total-bytes") {
		o.cacheTotal = cacheTotalFor(limit)
	}
	rcfg.Track = moqtransport.TrackConfig{MaxBytes: o.cacheMaxBytes, MaxGroups: o.cacheMaxGroups, MaxAge: o.cacheMaxAge,
		Budget: moqtransport.NewCacheBudget(o.cacheTotal)}
	rcfg.Session.MaxRequests = o.maxRequests
	rcfg.Session.DefaultDeliveryTimeout = o.deliveryTO
	rcfg.Session.WriteCoalesce = o.writeCoalesce
	rcfg.Session.MaxWriteAhead = o.writeAhead
	rcfg.MaxSessions = o.maxSessions
	if o.authKey != "" {
		auth, err := loadAuth(o.authKey)
		if err != nil {
			return nil, err
		}
		auth.Issuer, auth.Audience = o.authIssuer, o.authAudience
		rcfg.Auth = auth
		logger.Info("access control on: requests need a token", "key", o.authKey, "iss", o.authIssuer, "aud", o.authAudience)
	} else if o.authIssuer != "" || o.authAudience != "" {
		return nil, errors.New("--auth-issuer and --auth-audience need --auth-key")
	}
	if o.mlogDir != "" {
		// One file per session, closed by the relay when the session
		// ends (or when its setup fails), named after the session's id
		// in the logs: session-<pid>-<session>_server.mlog.
		open := mlog.Dir(o.mlogDir)
		rcfg.SessionTracer = func(session string) moqtransport.Tracer {
			l, err := open("server", fmt.Sprintf("session-%d-%s", os.Getpid(), session))
			if err != nil {
				logger.Warn("opening an mlog file", "session", session, "err", err)
				return nil
			}
			return l
		}
	}
	return func() {}, nil
}

// loadAuth reads an Ed25519 public key (PEM) or an HMAC secret.
func loadAuth(path string) (*relay.TokenAuth, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--auth-key: %w", err)
	}
	if block, _ := pem.Decode(b); block != nil {
		key, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("--auth-key %s: %w", path, err)
		}
		return relay.NewEd25519Auth(key)
	}
	return relay.NewHMACAuth([]byte(strings.TrimSpace(string(b))))
}

// serveOps runs the metrics server until ctx ends.
func (o *opsConfig) serveOps(ctx context.Context, rs *relay.Server, logger *slog.Logger) (func(), error) {
	if o.metricsAddr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", o.metricsAddr)
	if err != nil {
		return nil, fmt.Errorf("--metrics-addr %s: %w", o.metricsAddr, err)
	}
	contention := o.pprof && (o.mutexFraction > 0 || o.blockRate > 0)
	if contention {
		// The contention profiles are process-wide: on while they can be
		// read, off again when the server stops.
		runtime.SetMutexProfileFraction(o.mutexFraction)
		runtime.SetBlockProfileRate(o.blockRate)
	}
	hs := &http.Server{Handler: relay.OpsHandler(rs, o.pprof), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("metrics server", "err", err)
		}
	}()
	logger.Info("metrics serving", "addr", ln.Addr().String(), "pprof", o.pprof)
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
		<-done
		if contention {
			runtime.SetMutexProfileFraction(0)
			runtime.SetBlockProfileRate(0)
		}
	}, nil
}
