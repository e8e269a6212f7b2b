// Command moq-api is the origin registry of a moq-go relay cluster, as
// moq-rs's moq-api: relays started with --api-url register the namespaces
// published on them here, and look up the ones published elsewhere. It
// serves GET, POST, PATCH and DELETE on /origin/{namespace} over plain HTTP
// and keeps the origins in Redis (see package api).
//
// It listens on 127.0.0.1:8080 by default (moq-api: [::]:80): the registry
// has no authentication, so exposing it is a choice to make with --bind.
// --redis defaults to redis://127.0.0.1:6379 (moq-api requires it). SIGINT
// or SIGTERM stops it after the requests in flight.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/moqgo/moq/api"
	"github.com/moqgo/moq/api/server"
	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/version"
)

const binaryName = "moq-api"

type config struct {
	bind     string
	redisURL string
	ttl      time.Duration
	logLevel string

	stderr io.Writer
	// ready, when set, is told the address once the server listens (tests).
	ready func(addr net.Addr)
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", binaryName, err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	var cfg config
	root := &cobra.Command{
		Use:           binaryName,
		Short:         "Origin registry of a MoQT relay cluster, over Redis",
		Version:       version.String(binaryName),
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.stderr = cmd.ErrOrStderr()
			return run(cmd.Context(), cfg)
		},
	}
	f := root.Flags()
	f.StringVar(&cfg.bind, "bind", "127.0.0.1:8080", "TCP address to serve HTTP on (moq-api: [::]:80)")
	f.StringVar(&cfg.redisURL, "redis", "redis://127.0.0.1:6379", "Redis URL: redis://[user:password@]host:port[/db] or rediss:// for TLS")
	f.DurationVar(&cfg.ttl, "ttl", api.DefaultTTL, "how long an origin lives without a refresh; relays refresh every --api-ttl/2, so keep it at least their --api-ttl")
	f.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(cli.VersionCommand(binaryName))
	return root
}

// run serves until ctx ends.
func run(ctx context.Context, cfg config) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", cfg.logLevel)
	}
	logger := slog.New(slog.NewTextHandler(cfg.stderr, &slog.HandlerOptions{Level: level}))
	if cfg.ttl <= 0 {
		return fmt.Errorf("--ttl %v: want a positive duration", cfg.ttl)
	}
	opts, err := redis.ParseURL(cfg.redisURL)
	if err != nil {
		return fmt.Errorf("--redis %q: %w", cfg.redisURL, err)
	}
	redis.SetLogger(redisLogger{logger})
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	// Not fatal: the registry answers 500 until Redis is up.
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := rdb.Ping(pctx).Err(); err != nil {
		logger.Warn("Redis does not answer yet", "redis", cfg.redisURL, "err", err)
	}
	cancel()

	l, err := net.Listen("tcp", cfg.bind)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (choose another address with --bind)", cfg.bind, err)
	}
	srv := &http.Server{
		Handler:           server.New(server.Config{Redis: rdb, TTL: cfg.ttl, Logger: logger}),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	logger.Info("registry serving", "addr", l.Addr().String(), "redis", opts.Addr, "ttl", cfg.ttl, "version", version.Version)
	if cfg.ready != nil {
		cfg.ready(l.Addr())
	}
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	logger.Info("registry stopped")
	return err
}

// redisLogger puts go-redis's own messages (reconnections) into the log.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
