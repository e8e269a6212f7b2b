// Package testclient holds the scenarios of moq-test-client: interop checks
// of a MoQT relay (draft-ietf-moq-transport-14) run as a client, with their
// results in TAP version 14.
//
// The first six scenarios have the names of moq-rs's moq-test-client
// (setup-only, announce-only, subscribe-error, announce-subscribe,
// subscribe-before-announce, publish-namespace-done) but stricter pass
// criteria: each checks the answer the draft asks for (the error code, the
// objects with their IDs and payloads), not merely that nothing failed.
// The others cover what moq-rs lacks: FETCH, SUBSCRIBE_NAMESPACE, PUBLISH,
// TRACK_STATUS, request-ID flow control, and GOAWAY. The goaway scenario is
// manual: it passes only if the relay drains while it runs, so it is not
// part of the default set.
//
// Every scenario runs under its own timeout, opens its own sessions (a new
// connection each), and works in a namespace of its own with a random
// suffix, so that scenarios do not interfere and can run against a shared
// relay.
package testclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moqgo/moq/moqnative"
)

// DefaultTimeout bounds one scenario.
const DefaultTimeout = 10 * time.Second

// Options configure a run.
type Options struct {
	// RelayURL is the relay under test: moqt://host:port/path (raw QUIC)
	// or https://host:port/path (WebTransport).
	RelayURL string
	// TLS is how the connections verify the relay.
	TLS moqnative.ClientTLS
	// QlogDir, when set, receives a qlog file per connection.
	QlogDir string
	// Logger receives progress and the sessions' logs; nil is silent.
	Logger *slog.Logger
	// Timeout bounds each scenario; DefaultTimeout when 0.
	Timeout time.Duration
	// Verbose puts whole failure messages in the TAP diagnostics; by
	// default only their first line.
	Verbose bool
	// Banner is the TAP comment line after the version line, e.g. the
	// client's name and version.
	Banner string
	// GoAwayWait, when set, is called once the goaway scenario is ready
	// for the relay to drain (tests drain their relay from it).
	GoAwayWait func()
}

// Scenario is one check of the relay.
type Scenario struct {
	Name        string
	Description string
	// Manual scenarios need something the client cannot cause (the relay
	// draining); they run only when named.
	Manual bool
	run    func(ctx context.Context, e *env) error
}

// Scenarios returns every scenario, the default ones first in their run
// order, then the manual ones.
func Scenarios() []Scenario {
	return []Scenario{
		{Name: "setup-only", run: setupOnly,
			Description: "CLIENT_SETUP / SERVER_SETUP negotiate draft-14, and the session closes cleanly"},
		{Name: "announce-only", run: announceOnly,
			Description: "PUBLISH_NAMESPACE gets PUBLISH_NAMESPACE_OK, and the namespace and session stay up for 1 s"},
		{Name: "subscribe-error", run: subscribeError,
			Description: "SUBSCRIBE to a namespace nobody publishes gets SUBSCRIBE_ERROR TRACK_DOES_NOT_EXIST; the session survives"},
		{Name: "announce-subscribe", run: announceSubscribe,
			Description: "a subscriber (another session) gets exactly the objects the publisher writes, then PUBLISH_DONE"},
		{Name: "subscribe-before-announce", run: subscribeBeforeAnnounce,
			Description: "a SUBSCRIBE sent before the namespace exists is answered; once it is published, objects flow"},
		{Name: "publish-namespace-done", run: publishNamespaceDone,
			Description: "after PUBLISH_NAMESPACE_DONE a SUBSCRIBE for a track in it gets TRACK_DOES_NOT_EXIST, and another session may publish the namespace"},
		{Name: "fetch", run: standaloneFetch,
			Description: "a standalone FETCH returns the relay's cached objects of a range, in order (the publisher refuses FETCH); a missing track gets FETCH_ERROR TRACK_DOES_NOT_EXIST"},
		{Name: "joining-fetch", run: joiningFetch,
			Description: "a joining FETCH returns the objects before the subscription's start from the relay's cache (the publisher refuses FETCH), and the subscription continues without gap or overlap"},
		{Name: "subscribe-namespace", run: subscribeNamespace,
			Description: "SUBSCRIBE_NAMESPACE gets PUBLISH_NAMESPACE for namespaces published before and after, PUBLISH_NAMESPACE_DONE on withdrawal, NAMESPACE_PREFIX_OVERLAP for an overlapping prefix"},
		{Name: "publish", run: publishTrack,
			Description: "a track pushed with PUBLISH gets PUBLISH_OK, and a subscriber gets its objects and its end"},
		{Name: "track-status", run: trackStatus,
			Description: "TRACK_STATUS gets TRACK_STATUS_OK with the largest location (cached or from the publisher), or TRACK_STATUS_ERROR TRACK_DOES_NOT_EXIST"},
		{Name: "request-id-flow-control", run: requestIDFlowControl,
			Description: "requests past the relay's MAX_REQUEST_ID wait and send REQUESTS_BLOCKED; the relay raises its grant (on REQUESTS_BLOCKED, or once a request finishes) and the waiting request completes"},
		{Name: "goaway", Manual: true, run: goAway,
			Description: "while the relay drains: GOAWAY reaches both sessions, the open subscription keeps flowing, new requests are refused locally"},
	}
}

// Select returns the scenarios named in names, in the order given; "all"
// (or nothing) is every scenario that is not manual.
func Select(names []string) ([]Scenario, error) {
	all := Scenarios()
	var out []Scenario
	for _, n := range names {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
			continue
		case n == "all":
			for _, sc := range all {
				if !sc.Manual {
					out = append(out, sc)
				}
			}
			continue
		}
		i := slices.IndexFunc(all, func(sc Scenario) bool { return sc.Name == n })
		if i < 0 {
			known := make([]string, len(all))
			for j, sc := range all {
				known[j] = sc.Name
			}
			return nil, fmt.Errorf("unknown test %q; the tests are %s", n, strings.Join(known, ", "))
		}
		out = append(out, all[i])
	}
	if len(out) == 0 {
		return Select([]string{"all"})
	}
	return out, nil
}

// Result is the outcome of one scenario.
type Result struct {
	Name     string
	Err      error  // nil: passed
	Skip     string // passed, but skipped for this reason
	Duration time.Duration
}

// Run runs the scenarios one after another, writing TAP version 14 to w,
// and returns their results. It stops early only if w fails.
func Run(ctx context.Context, w io.Writer, opts Options, list []Scenario) ([]Result, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	tw := &tapWriter{w: w, verbose: opts.Verbose}
	tw.header(opts.Banner, opts.RelayURL, len(list))
	results := make([]Result, 0, len(list))
	for i, sc := range list {
		res := runOne(ctx, &opts, sc)
		results = append(results, res)
		tw.result(i+1, res)
		if tw.err != nil {
			return results, tw.err
		}
	}
	return results, tw.err
}

// skipError marks a scenario that cannot check what it is meant to against
// this relay; TAP reports it as ok with a SKIP directive.
type skipError struct{ reason string }

func (e *skipError) Error() string { return "skipped: " + e.reason }

func skip(format string, args ...any) error { return &skipError{fmt.Sprintf(format, args...)} }

func runOne(ctx context.Context, opts *Options, sc Scenario) Result {
	log := opts.Logger.With("test", sc.Name)
	log.Info("running", "description", sc.Description)
	e := newEnv(opts, sc.Name, log)
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	err := runScenario(sctx, sc, e)
	timedOut := sctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	cancel()
	e.close()
	res := Result{Name: sc.Name, Duration: time.Since(start)}
	var se *skipError
	switch {
	case err == nil:
		log.Info("passed", "duration", res.Duration.Round(time.Millisecond))
	case errors.As(err, &se):
		res.Skip = se.reason
		log.Warn("skipped", "reason", se.reason)
	default:
		if ctx.Err() != nil {
			err = fmt.Errorf("interrupted: %w", err)
		} else if timedOut {
			err = fmt.Errorf("timed out after %v: %w", opts.Timeout, err)
		}
		res.Err = err
		log.Error("failed", "err", err)
	}
	return res
}

// runScenario runs sc, turning a panic into its failure.
func runScenario(ctx context.Context, sc Scenario, e *env) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v\n%s", p, debug.Stack())
		}
	}()
	return sc.run(ctx, e)
}

// tapWriter writes TAP version 14.
type tapWriter struct {
	w       io.Writer
	verbose bool
	err     error
}

func (t *tapWriter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func (t *tapWriter) header(banner, relay string, n int) {
	t.printf("TAP version 14\n")
	if banner != "" {
		t.printf("# %s\n", oneLine(banner))
	}
	t.printf("# Relay: %s\n", oneLine(relay))
	t.printf("1..%d\n", n)
}

// result writes a test point and its YAML diagnostic block.
func (t *tapWriter) result(n int, r Result) {
	switch {
	case r.Err != nil:
		t.printf("not ok %d - %s\n", n, r.Name)
	case r.Skip != "":
		t.printf("ok %d - %s # SKIP %s\n", n, r.Name, oneLine(r.Skip))
	default:
		t.printf("ok %d - %s\n", n, r.Name)
	}
	t.printf("  ---\n")
	t.printf("  duration_ms: %d\n", r.Duration.Milliseconds())
	if r.Err != nil {
		msg := r.Err.Error()
		if !t.verbose {
			msg, _, _ = strings.Cut(msg, "\n")
		}
		t.printf("  message: %s\n", yamlQuote(msg))
	}
	t.printf("  ...\n")
}

// oneLine keeps a comment or directive on its line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// yamlQuote writes s as a YAML double-quoted scalar. Go's escapes (\n, \t,
// \", \\, \xNN, \uNNNN, \UNNNNNNNN, \a, \b, \f, \r, \v) are all YAML
// double-quoted escapes too.
func yamlQuote(s string) string { return strconv.Quote(s) }

// randomID is the suffix that keeps a scenario's namespaces apart from any
// other run's.
func randomID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// env is what a scenario runs with: its namespace, its logger, and the
// sessions to close when it ends.
type env struct {
	opts *Options
	name string
	id   string
	log  *slog.Logger

	mu      sync.Mutex
	closers []func()
}

func newEnv(opts *Options, name string, log *slog.Logger) *env {
	return &env{opts: opts, name: name, id: randomID(), log: log}
}

// onClose runs f when the scenario ends, the last registered first.
func (e *env) onClose(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closers = append(e.closers, f)
}

func (e *env) close() {
	e.mu.Lock()
	fs := e.closers
	e.closers = nil
	e.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
}
