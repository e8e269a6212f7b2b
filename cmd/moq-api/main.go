// Command moq-api is the origin registry of a moq-go relay cluster, as
// moq-rs's moq-api: relays started with --api-url register the namespaces
// published on them here, and look up the ones published elsewhere. It
// serves GET, POST, PATCH and DELETE on /origin/{namespace} over plain HTTP
// and keeps the origins in Redis (see package api).
//
// Every request must carry a token, "Authorization: Bearer <token>": the
// cluster's, set with --api-token or, better (a flag shows in ps), the
// environment variable MOQ_API_TOKEN, or a relay's own, listed in the file
// --node-tokens names, one "<node URL> <token>" per line. The relays send
// theirs with their own --api-token or MOQ_API_TOKEN. A relay's own token
// lets it change only its own registrations; with the cluster's token the
// relays are trusted not to lie about their URL. It refuses to start
// without a token unless --no-auth says so (moq-rs's relays send none). See
// package api for the trust rules and limits.
//
// It listens on 127.0.0.1:8080 by default (moq-api: [::]:80), plain HTTP:
// put TLS in front of it to cross an untrusted network, since the token
// travels in the clear. --redis defaults to redis://127.0.0.1:6379
// (moq-api requires it). SIGINT or SIGTERM stops it after the requests in
// flight.
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
	"strings"
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

// TokenEnv is the environment variable of --api-token's default.
const TokenEnv = "MOQ_API_TOKEN"

type config struct {
	bind       string
	redisURL   string
	ttl        time.Duration
	logLevel   string
	logFormat  string
	token      string
	nodeTokens string
	noAuth     bool

	stderr io.Writer
	// ready, when set, is told the address once the server listens (tests).
	ready func(addr net.Addr)
}

// readyHook, when set, is each command's config.ready (tests).
var readyHook func(addr net.Addr)

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
			cfg.ready = readyHook
			return run(cmd.Context(), cfg)
		},
	}
	f := root.Flags()
	f.StringVar(&cfg.bind, "bind", "127.0.0.1:8080", "TCP address to serve HTTP on (moq-api: [::]:80)")
	f.StringVar(&cfg.redisURL, "redis", "redis://127.0.0.1:6379", "Redis URL: redis://[user:password@]host:port[/db] or rediss:// for TLS")
	f.DurationVar(&cfg.ttl, "ttl", api.DefaultTTL, "how long an origin lives without a refresh; at least 2s; POST and PATCH answers report it (Moq-Origin-Ttl), and this module's relays refresh every half of it when their --api-ttl is longer; moq-rs's relays do not read it and refresh every --api-ttl/2: set their --api-ttl to it")
	f.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&cfg.logFormat, "log-format", "text", "log format on stderr: text (key=value) or json (one object a line); lines about an HTTP request carry request=<id>")
	f.StringVar(&cfg.token, "api-token", os.Getenv(TokenEnv), "the secret every request must carry as \"Authorization: Bearer <token>\" (env "+TokenEnv+", which ps does not show)")
	f.StringVar(&cfg.nodeTokens, "node-tokens", "", "file of relays' own tokens, one \"<node URL> <token>\" per line (# comments): a relay's token lets it change only its own registrations")
	f.BoolVar(&cfg.noAuth, "no-auth", false, "serve without a token: anyone who reaches the registry may change it (moq-rs relays)")
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
	hopts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	switch cfg.logFormat {
	case "text", "":
		logger = slog.New(slog.NewTextHandler(cfg.stderr, hopts))
	case "json":
		logger = slog.New(slog.NewJSONHandler(cfg.stderr, hopts))
	default:
		return fmt.Errorf("--log-format %q: want text or json", cfg.logFormat)
	}
	if cfg.ttl < 2*time.Second {
		// Relays refresh every half of it, each of their namespaces.
		return fmt.Errorf("--ttl %v: want at least 2s (relays refresh every registration every half of it)", cfg.ttl)
	}
	var nodeTokens map[string]string
	if cfg.nodeTokens != "" {
		var err error
		if nodeTokens, err = readNodeTokens(cfg.nodeTokens, cfg.token); err != nil {
			return err
		}
	}
	switch {
	case cfg.token == "" && nodeTokens == nil && !cfg.noAuth:
		return fmt.Errorf("no token: set %s (or --api-token) to the cluster's secret, or list the relays' tokens with --node-tokens, or pass --no-auth to serve without one", TokenEnv)
	case (cfg.token != "" || nodeTokens != nil) && cfg.noAuth:
		return fmt.Errorf("--no-auth with tokens (--api-token, %s or --node-tokens): choose one", TokenEnv)
	case strings.ContainsAny(cfg.token, "\r\n"):
		return errors.New("--api-token: the token holds a line break")
	case cfg.noAuth:
		logger.Warn("serving without a token: anyone who reaches the registry may change it")
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
		Handler:           server.New(server.Config{Redis: rdb, TTL: cfg.ttl, Logger: logger, Token: cfg.token, NodeTokens: nodeTokens}),
		ReadHeaderTimeout: 10 * time.Second,
		// Room for a request line with the longest key, escaped.
		MaxHeaderBytes: 3*api.MaxKeyLen + 16<<10,
		ReadTimeout:    30 * time.Second,
		IdleTimeout:    2 * time.Minute,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	logger.Info("registry serving", "addr", l.Addr().String(), "redis", opts.Addr, "ttl", cfg.ttl, "auth", !cfg.noAuth, "node_tokens", len(nodeTokens), "version", version.Version)
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

// readNodeTokens reads the --node-tokens file: "<node URL> <token>" per
// line, blank lines and "#" comments skipped. Each node and each token
// appears once, and no token is the cluster's.
func readNodeTokens(path, clusterToken string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--node-tokens: %w", err)
	}
	tokens := map[string]string{}
	seen := map[string]bool{clusterToken: clusterToken != ""}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("--node-tokens %s:%d: want \"<node URL> <token>\"", path, i+1)
		}
		node, tok := fields[0], fields[1]
		if err := api.CheckURL(node); err != nil {
			return nil, fmt.Errorf("--node-tokens %s:%d: %w", path, i+1, err)
		}
		if _, dup := tokens[node]; dup {
			return nil, fmt.Errorf("--node-tokens %s:%d: node %s listed twice", path, i+1, node)
		}
		if seen[tok] {
			return nil, fmt.Errorf("--node-tokens %s:%d: node %s's token is already another's: each node needs its own", path, i+1, node)
		}
		tokens[node], seen[tok] = tok, true
	}
	if len(tokens) == 0 {
		return nil, fmt.Errorf("--node-tokens %s: no \"<node URL> <token>\" line", path)
	}
	return tokens, nil
}

// redisLogger puts go-redis's own messages (reconnections) into the log.
type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
