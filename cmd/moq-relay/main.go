// Command moq-relay is the moq-go MoQT relay (draft-ietf-moq-transport-14):
// one UDP port serving raw QUIC (moqt://, ALPN moq-00) and WebTransport
// (https://). Publishers announce namespaces with PUBLISH_NAMESPACE;
// subscribers' SUBSCRIBEs are routed to them and fanned out from one
// upstream subscription per track.
//
// With no flags it serves on [::]:4443 with a generated self-signed
// certificate (valid 10 days, so browsers accept it by its SHA-256 hash)
// and logs the certificate's fingerprint. The first SIGINT or SIGTERM sends
// GOAWAY to every session and waits for them to end (up to
// --drain-timeout); the second closes every session and exits at once
// (within forceGrace, whatever a peer does).
package main

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/relay"
)

const binaryName = "moq-relay"

// forceGrace is how long the relay may take to close its sessions after
// the second signal before the process exits regardless.
const forceGrace = 3 * time.Second

// defaultBind is the listen address with no --bind: every interface.
const defaultBind = "[::]:4443"

// config holds everything run needs.
type config struct {
	bind         string
	tlsCerts     []string
	tlsKeys      []string
	qlogDir      string
	logLevel     string
	logFormat    string
	drainTimeout time.Duration
	cluster      clusterConfig
	ops          opsConfig
	dev          devConfig

	stdout, stderr io.Writer
	// force is closed to end a drain at once (the second signal).
	force <-chan struct{}
	// ready, when set, is told the address and the certificate
	// fingerprint once the relay serves (tests).
	ready func(addr net.Addr, fingerprint string)
}

func main() {
	// The second signal stops the relay at once: run closes every
	// session; past forceGrace the process exits whatever it waits for.
	ctx, force := cli.DrainSignals(binaryName, forceGrace)
	cmd := newRootCommand(force)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", binaryName, err)
		os.Exit(1)
	}
}

// newRootCommand builds the moq-relay command line: the root command runs
// the relay; --version and the version subcommand print the version line.
func newRootCommand(force <-chan struct{}) *cobra.Command {
	cfg := config{force: force}
	root := &cobra.Command{
		Use:           binaryName,
		Short:         "MoQT relay (" + version.Draft + ")",
		Version:       version.String(binaryName),
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.stdout, cfg.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return run(cmd.Context(), cfg)
		},
	}
	f := root.Flags()
	f.StringVar(&cfg.bind, "bind", defaultBind, "UDP address to listen on for raw QUIC and WebTransport")
	f.StringArrayVar(&cfg.tlsCerts, "tls-cert", nil, "certificate chain file (PEM); repeat with --tls-key for several names, chosen by SNI")
	f.StringArrayVar(&cfg.tlsKeys, "tls-key", nil, "private key file (PEM) for the --tls-cert at the same position")
	f.StringVar(&cfg.qlogDir, "qlog-dir", "", "write a qlog file per connection into this directory")
	f.StringVar(&cfg.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	f.StringVar(&cfg.logFormat, "log-format", "text", "log format on stderr: text (key=value) or json (one object a line); lines about a session carry session=<id>, lines about a request request=<id>")
	f.DurationVar(&cfg.drainTimeout, "drain-timeout", relay.DefaultDrainTimeout, "how long the first signal waits for sessions to end after GOAWAY")
	cfg.cluster.addFlags(f)
	cfg.ops.addFlags(f)
	cfg.dev.addFlags(f)
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(cli.VersionCommand(binaryName))
	return root
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// newLogger returns the relay's logger on w, in format (--log-format).
func newLogger(w io.Writer, format string, level slog.Level) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// run serves until ctx ends, then drains.
func run(ctx context.Context, cfg config) error {
	level, err := parseLevel(cfg.logLevel)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.stderr, cfg.logFormat, level)
	if err != nil {
		return err
	}
	if len(cfg.tlsCerts) != len(cfg.tlsKeys) {
		return fmt.Errorf("%d --tls-cert but %d --tls-key: give them in pairs", len(cfg.tlsCerts), len(cfg.tlsKeys))
	}
	scfg := moqnative.ServerConfig{QlogDir: cfg.qlogDir, Logger: logger}
	if len(cfg.tlsCerts) > 0 {
		pairs := make([]moqnative.CertKeyPair, len(cfg.tlsCerts))
		for i := range cfg.tlsCerts {
			pairs[i] = moqnative.CertKeyPair{CertFile: cfg.tlsCerts[i], KeyFile: cfg.tlsKeys[i]}
		}
		if scfg.Certificates, err = moqnative.LoadCertificates(pairs...); err != nil {
			return err
		}
	}
	srv, err := moqnative.Listen(cfg.bind, scfg)
	if err != nil && cfg.bind == defaultBind && strings.Contains(err.Error(), "address family") {
		// No IPv6 on this machine: every IPv4 interface instead.
		srv, err = moqnative.Listen("0.0.0.0:4443", scfg)
	}
	if err != nil {
		return fmt.Errorf("listening on %s: %w (choose another address with --bind)", cfg.bind, err)
	}
	fingerprint := ""
	if fp, ok := srv.Fingerprint(); ok {
		fingerprint = hex.EncodeToString(fp[:])
		logger.Info("generated a self-signed certificate for localhost; browsers accept it by this hash (serverCertificateHashes)", "fingerprint", fingerprint)
	}
	logger.Info("relay serving", "addr", srv.Addr().String(), "version", version.Version, "draft", version.Draft,
		"urls", fmt.Sprintf("moqt://localhost:%d/ https://localhost:%d/", srv.Addr().(*net.UDPAddr).Port, srv.Addr().(*net.UDPAddr).Port))

	rcfg := relay.Config{Logger: logger}
	closeCluster, err := cfg.cluster.apply(&rcfg, srv.Addr(), logger)
	if err != nil {
		_ = srv.Close()
		return err
	}
	defer closeCluster() // after the relay has stopped: the deferred functions run after <-served
	closeLogs, err := cfg.ops.apply(&rcfg, logger)
	if err != nil {
		_ = srv.Close()
		return err
	}
	defer closeLogs()
	if rcfg.Auth != nil && rcfg.Coordinator != nil && rcfg.ClusterKey == nil {
		_ = srv.Close()
		return errors.New("--auth-key with a coordinator needs --cluster-key: relays prove they are relays with it, and without it every relay would refuse the others")
	}
	rcfg.Authorities = certificateNames(scfg.Certificates)
	rs := relay.NewServer(relay.New(rcfg), srv)
	stopOps, err := cfg.ops.serveOps(ctx, rs, logger)
	if err != nil {
		_ = srv.Close()
		return err
	}
	defer stopOps()
	stopDev, err := serveDev(cfg.dev, srv.Addr(), scfg.Certificates, srv, cfg.qlogDir, cfg.ops.mlogDir, logger)
	if err != nil {
		_ = srv.Close()
		return err
	}
	defer stopDev()
	serveCtx, stopServing := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- rs.Serve(serveCtx) }()
	if cfg.ready != nil {
		cfg.ready(srv.Addr(), fingerprint)
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		stopServing()
		_ = srv.Close()
		return err
	}
	logger.Info("draining: GOAWAY sent to every session; signal again to exit now", "timeout", cfg.drainTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), cfg.drainTimeout)
	defer cancel()
	go func() {
		select {
		case <-cfg.force:
			cancel()
		case <-drainCtx.Done():
		}
	}()
	rs.Drain(drainCtx, "")
	stopServing()
	rs.Close()
	err = srv.Close()
	if serr := <-served; serr != nil && !errors.Is(serr, context.Canceled) {
		err = errors.Join(err, serr)
	}
	logger.Info("relay stopped")
	return err
}

// certificateNames are the host names and addresses the relay's own
// certificates are for: the AUTHORITY a session may name. None with a
// generated certificate.
func certificateNames(certs []tls.Certificate) []string {
	var names []string
	for _, c := range certs {
		if c.Leaf == nil {
			continue
		}
		names = append(names, c.Leaf.DNSNames...)
		for _, ip := range c.Leaf.IPAddresses {
			names = append(names, ip.String())
		}
	}
	return names
}
