package relay

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moqgo/moq/api"
	"github.com/moqgo/moq/moqtransport/wire"
)

// APICoordinatorConfig configures an APICoordinator.
type APICoordinatorConfig struct {
	// URL is the registry's (moq-api's) base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Node is this relay's URL, what it registers (Config.Node): moqt:// or
	// https://, as the registry stores no other.
	Node string
	// Token is the registry's secret, sent with every request (moq-relay
	// --api-token or MOQ_API_TOKEN). A registry with a token refuses
	// requests without it; one without a token ignores it.
	Token string
	// TTL is the registry's TTL as configured here (moq-relay --api-ttl,
	// as moq-rs's): a registration is refreshed every TTL/2. Default
	// api.DefaultTTL. A registry that reports a shorter TTL of its own
	// with its answers (api.TTLHeader: package api/server does, moq-rs's
	// moq-api does not) wins: the registration is then refreshed every
	// half of what the registry last reported for it, and the mismatch is
	// logged once at Warn. A longer report changes nothing: a TTL shorter
	// than the registry's only refreshes more often (after a registry that
	// restarted empty, the namespaces are back sooner).
	TTL time.Duration
	// Timeout bounds each request to the registry; default 5s.
	Timeout time.Duration
	// HTTPClient makes the requests; nil is a client of its own, whose
	// idle connections Close closes.
	HTTPClient *http.Client
	// Logger receives the coordinator's logs; nil is silent.
	Logger *slog.Logger
}

// APICoordinator is moq-rs's API coordinator: the relays register their
// namespaces with a moq-api registry (package api) under RegistryKey.
//
//   - Register first GETs the key of each shorter prefix of the namespace
//     in the scope, and refuses (ErrServedElsewhere) when another relay
//     holds one; then it POSTs the relay's URL, and a 409 (another relay's
//     URL holds the namespace, or one of its shorter prefixes) is refused
//     the same way. The GETs find the holder to name it, and keep the
//     rule with a registry that checks no prefixes (moq-rs's moq-api);
//     package api/server checks them again in the script that writes the
//     key, so a relay that takes a shorter prefix between another's GETs
//     and its POST still wins alone (TestAPICoordinatorNestedRace).
//   - While registered, it PATCHes every TTL/2, where TTL is
//     APICoordinatorConfig.TTL or, if shorter, what the registry's last
//     answer for the registration reported (api.TTLHeader; moq-rs's
//     moq-api reports none): a registry whose TTL is shorter than the
//     configured one would let the entry expire between refreshes, and
//     lookups of the namespace fail until the next. A PATCH answered 404 (the
//     entry expired, or Redis restarted empty) POSTs again, so the
//     registry recovers within TTL/2; a PATCH answered 403 (another relay
//     took the namespace after ours expired) is logged, and the refresh
//     goes on in case it comes back to us. Close stops the
//     refresh and DELETEs the entry with our URL in the body, which the
//     registry honours only if the entry is still ours.
//   - Every request carries Token, and the registry checks it (package
//     api's Trust): only the cluster's relays change the registry, and
//     only their own entries.
//   - Lookup GETs the namespace's key, then each shorter prefix's, since
//     the registry matches keys exactly: the longest registered prefix
//     wins. It looks in the scope it is given only: the relay looks up
//     the unscoped scope itself, as its fallback for a scoped subscriber.
type APICoordinator struct {
	client  *api.Client
	node    string
	ttl     time.Duration
	timeout time.Duration
	log     *slog.Logger
	regs    registrations
	// warned is the reported TTL last logged as shorter than ttl.
	warned atomic.Int64

	// wg owns the refresh goroutines.
	wg sync.WaitGroup
}

// minAPITTL is the shortest registry TTL the API coordinator takes (tests
// use short ones; moq-relay's --api-ttl wants at least 2 s).
const minAPITTL = 10 * time.Millisecond

// NewAPICoordinator returns a coordinator on the registry at cfg.URL.
func NewAPICoordinator(cfg APICoordinatorConfig) (*APICoordinator, error) {
	if cfg.Node == "" {
		return nil, errors.New("relay: the API coordinator needs this relay's URL (Node)")
	}
	if err := api.CheckURL(cfg.Node); err != nil {
		return nil, fmt.Errorf("relay: the API coordinator's node: %w", err)
	}
	c, err := api.NewClient(cfg.URL, cfg.HTTPClient, api.WithToken(cfg.Token))
	if err != nil {
		return nil, err
	}
	if cfg.TTL == 0 {
		cfg.TTL = api.DefaultTTL
	}
	if cfg.TTL < minAPITTL {
		// Refreshed every TTL/2: a shorter one hammers the registry (and
		// under 2 ns made the refresh ticker panic).
		return nil, fmt.Errorf("relay: the API coordinator's TTL %v: want at least %v", cfg.TTL, minAPITTL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &APICoordinator{client: c, node: cfg.Node, ttl: cfg.TTL, timeout: cfg.Timeout, log: cfg.Logger}, nil
}

// RegistryKey is a namespace's key in the registry, as moq-rs's API
// coordinator writes it: the scope, ":", then each field in lowercase hex,
// joined by ".". The unscoped namespace (bbb) is ":626262".
func RegistryKey(scope string, ns wire.Namespace) string {
	var b strings.Builder
	b.WriteString(scope)
	b.WriteByte(':')
	for i, f := range ns {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(hex.EncodeToString([]byte(f)))
	}
	return b.String()
}

// Register POSTs this relay's URL for ns in scope and refreshes it until
// the registration is closed.
func (c *APICoordinator) Register(ctx context.Context, scope string, ns wire.Namespace) (Registration, error) {
	key := RegistryKey(scope, ns)
	origin := api.Origin{URL: c.node}
	var stop context.CancelFunc
	var stopped chan struct{}
	return c.regs.register(key, func() error {
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		// The registry matches keys exactly: a prefix held by another
		// relay is found by reading each shorter prefix's key first.
		for n := 1; n < len(ns); n++ {
			o, err := c.client.GetOrigin(rctx, RegistryKey(scope, ns[:n]))
			if err == nil && o.URL != c.node {
				return fmt.Errorf("%w: namespace %s (scope %q) is served by relay %s (as %s)", ErrServedElsewhere, ns, scope, o.URL, ns[:n])
			}
			if err != nil && !errors.Is(err, api.ErrNotFound) {
				return fmt.Errorf("looking %s up in the registry: %w", ns[:n], err)
			}
		}
		reported, err := c.client.RegisterOrigin(rctx, key, origin)
		if err != nil {
			if errors.Is(err, api.ErrConflict) {
				if o, gerr := c.client.GetOrigin(rctx, key); gerr == nil {
					return fmt.Errorf("%w: namespace %s (scope %q) is served by relay %s", ErrServedElsewhere, ns, scope, o.URL)
				}
				return fmt.Errorf("%w: namespace %s (scope %q) is served by another relay", ErrServedElsewhere, ns, scope)
			}
			// The registry may have stored it before the answer was
			// lost (a timeout, the request's end): with no refresh and
			// no removal it would name this relay for the namespace for
			// a whole TTL, routing the cluster here and refusing the
			// publisher elsewhere. The removal is the owner's only, so
			// it is safe either way.
			// Only when the answer may be lost (not an answer the registry
			// gave), and in the background: the refusal does not wait.
			var se *api.StatusError
			if !errors.As(err, &se) && !errors.Is(err, api.ErrUnauthorized) {
				c.wg.Go(func() {
					dctx, dcancel := context.WithTimeout(context.Background(), c.timeout)
					defer dcancel()
					if derr := c.client.DeleteOrigin(dctx, key, origin); derr != nil && !errors.Is(derr, api.ErrNotFound) && !errors.Is(derr, api.ErrNotOwner) {
						c.log.Warn("removing a registration whose answer was lost failed; it expires with its TTL", "scope", scope, "namespace", ns.String(), "err", derr)
					}
				})
			}
			return err
		}
		every := c.refreshEvery(reported)
		var refreshCtx context.Context
		refreshCtx, stop = context.WithCancel(context.Background())
		stopped = make(chan struct{})
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer close(stopped)
			c.refresh(refreshCtx, key, ns, scope, origin, every)
		}()
		return nil
	}, func() error {
		stop()
		<-stopped
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		defer cancel()
		err := c.client.DeleteOrigin(ctx, key, origin)
		if errors.Is(err, api.ErrNotFound) || errors.Is(err, api.ErrNotOwner) {
			return nil // expired, or another relay's now: nothing of ours
		}
		return err
	})
}

// refreshEvery returns how long after an answer that reported ttl (0: no
// report) the registration is refreshed: half the configured TTL, or half
// the reported one if shorter. A shorter report is logged at Warn, once
// for each value in a row, not for each registration.
func (c *APICoordinator) refreshEvery(ttl time.Duration) time.Duration {
	// Compared as reported, to the millisecond.
	if ttl == 0 || ttl >= c.ttl.Truncate(time.Millisecond) {
		return c.ttl / 2
	}
	if c.warned.Swap(int64(ttl)) != int64(ttl) {
		c.log.Warn("the registry's TTL is shorter than the one configured: refreshing registrations every half of the registry's; set moq-relay --api-ttl to moq-api's --ttl",
			"registry_ttl", ttl, "api_ttl", c.ttl)
	}
	// As NewAPICoordinator bounds the configured one: a registry
	// reporting 1 ms would have each registration refreshed in a loop.
	return max(ttl, minAPITTL) / 2
}

// refresh PATCHes the registration every half of the registry's TTL (see
// refreshEvery; every is the first wait) until ctx ends, POSTing it again
// if the registry lost it.
func (c *APICoordinator) refresh(ctx context.Context, key string, ns wire.Namespace, scope string, origin api.Origin, every time.Duration) {
	// Every ttl/2; after a failure sooner, backing off from 1 s (or
	// ttl/2 if shorter) to ttl/2, so that one failed refresh (a registry
	// restarting, a timeout) is not followed by an entry that expires
	// before the next try. A failure reports no TTL: the backoff stays
	// under the last one reported.
	wait := every
	t := time.NewTimer(wait)
	defer t.Stop()
	lost := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, c.timeout)
		reported, err := c.client.RefreshOrigin(rctx, key, origin)
		if errors.Is(err, api.ErrNotFound) {
			if reported, err = c.client.RegisterOrigin(rctx, key, origin); err == nil {
				c.log.Info("registered again: the registry had lost the namespace", "scope", scope, "namespace", ns.String())
			}
		}
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, api.ErrNotOwner), errors.Is(err, api.ErrConflict):
			if !lost {
				c.log.Warn("another relay holds a namespace published here", "scope", scope, "namespace", ns.String())
			}
			lost = true
		case err != nil:
			c.log.Warn("refreshing a namespace with the registry failed; trying again soon", "scope", scope, "namespace", ns.String(), "err", err)
			if wait == every {
				wait = min(time.Second, every)
			} else {
				wait = min(2*wait, every)
			}
			t.Reset(wait)
			continue
		default:
			lost = false
			every = c.refreshEvery(reported)
		}
		wait = every
		t.Reset(wait)
	}
}

// Lookup returns the URL registered for the longest prefix of ns in scope.
func (c *APICoordinator) Lookup(ctx context.Context, scope string, ns wire.Namespace) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	for n := len(ns); n >= 1; n-- {
		o, err := c.client.GetOrigin(ctx, RegistryKey(scope, ns[:n]))
		if err == nil {
			return o.URL, nil
		}
		if !errors.Is(err, api.ErrNotFound) {
			return "", fmt.Errorf("looking %s up in the registry: %w", ns, err)
		}
	}
	return "", ErrNotFound
}

// Close removes the registrations still open, waits for their refreshes
// to stop, and closes the idle connections to the registry.
func (c *APICoordinator) Close() error {
	err := c.regs.closeAll()
	c.wg.Wait()
	c.client.Close()
	return err
}
