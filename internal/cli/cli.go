// Package cli holds the plumbing the moq-go commands share: signal
// handling, the version subcommand, stdout behind a bounded queue that a
// stalled reader cannot block (Output), and for clients the TLS, qlog and
// log-level flags, the URL and fingerprint checks, and dialing a relay and
// running the MoQT setup on the connection.
package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
)

// ClientFlags are the flags every client command has: --tls-root,
// --tls-disable-verify, --fingerprint, --qlog-dir and --log-level.
type ClientFlags struct {
	TLSRoots         []string
	TLSDisableVerify bool
	Fingerprints     []string
	QlogDir          string
	LogLevel         string
}

// Help words the flags' help texts; a zero field keeps the default.
type Help struct {
	// Peer names the other end in the TLS flags' help: "server" by
	// default, "relay" for a command that only talks to a relay.
	Peer string
	// QlogDir and LogLevel replace the help of --qlog-dir and
	// --log-level.
	QlogDir  string
	LogLevel string
}

// Add defines the flags on f with the default help texts. The default of
// --tls-disable-verify comes from the environment variable
// TLS_DISABLE_VERIFY as it is now.
func (c *ClientFlags) Add(f *pflag.FlagSet) { c.AddWith(f, Help{}) }

// AddWith defines the flags on f with the help texts h.
func (c *ClientFlags) AddWith(f *pflag.FlagSet, h Help) {
	peer := h.Peer
	if peer == "" {
		peer = "server"
	}
	qlogHelp := h.QlogDir
	if qlogHelp == "" {
		qlogHelp = "write a qlog file of the connection into this directory"
	}
	logHelp := h.LogLevel
	if logHelp == "" {
		logHelp = "log level: debug, info, warn or error"
	}
	disableVerify, _ := strconv.ParseBool(os.Getenv("TLS_DISABLE_VERIFY"))
	f.StringArrayVar(&c.TLSRoots, "tls-root", nil, "root CA file (PEM) to verify the "+peer+" with, instead of the system roots; repeatable")
	f.BoolVar(&c.TLSDisableVerify, "tls-disable-verify", disableVerify, "do not verify the "+peer+"'s certificate (env TLS_DISABLE_VERIFY)")
	f.StringArrayVar(&c.Fingerprints, "fingerprint", nil, "accept the "+peer+" certificate whose SHA-256 is HEX (64 hex digits), as a browser's serverCertificateHashes; repeatable")
	f.StringVar(&c.QlogDir, "qlog-dir", "", qlogHelp)
	f.StringVar(&c.LogLevel, "log-level", "info", logHelp)
}

// ParseLevel reads a --log-level value.
func ParseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("--log-level %q: want debug, info, warn or error", s)
	}
	return l, nil
}

// Logger is a text logger on w at the level of --log-level.
func (c *ClientFlags) Logger(w io.Writer) (*slog.Logger, error) {
	level, err := ParseLevel(c.LogLevel)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})), nil
}

// CheckURL refuses what moqnative.Dial cannot dial, before any network;
// the errors call raw "URL".
func CheckURL(raw string) error { return CheckURLNamed("URL", raw) }

// CheckURLNamed is CheckURL with errors that call raw what, e.g. "--relay".
func CheckURLNamed(what, raw string) error {
	const use = "use moqt://host:port/path (raw QUIC) or https://host:port/path (WebTransport)"
	scheme, _, found := strings.Cut(raw, "://")
	if !found {
		return fmt.Errorf("%s %q has no scheme: %s", what, raw, use)
	}
	switch strings.ToLower(scheme) {
	case "moqt", "https":
	default:
		return fmt.Errorf("%s %q: unsupported scheme %q: %s", what, raw, scheme, use)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, raw, err)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%s %q has no host", what, raw)
	}
	return nil
}

// ParseFingerprint reads a SHA-256 given as hex, with or without colons.
func ParseFingerprint(s string) ([32]byte, error) {
	var fp [32]byte
	b, err := hex.DecodeString(strings.ReplaceAll(strings.TrimSpace(s), ":", ""))
	if err != nil || len(b) != len(fp) {
		return fp, fmt.Errorf("--fingerprint %q: want the certificate's SHA-256 as 64 hex digits", s)
	}
	copy(fp[:], b)
	return fp, nil
}

// TLS is the client TLS configuration the flags describe.
func (c *ClientFlags) TLS() (moqnative.ClientTLS, error) {
	tlsConf := moqnative.ClientTLS{RootCAFiles: c.TLSRoots, InsecureSkipVerify: c.TLSDisableVerify}
	for _, s := range c.Fingerprints {
		fp, err := ParseFingerprint(s)
		if err != nil {
			return moqnative.ClientTLS{}, err
		}
		tlsConf.ServerCertificateHashes = append(tlsConf.ServerCertificateHashes, fp)
	}
	return tlsConf, nil
}

// Dial dials rawURL with the flags' TLS configuration and qlog directory.
func (c *ClientFlags) Dial(ctx context.Context, rawURL string, tlsConf moqnative.ClientTLS, logger *slog.Logger) (*moqnative.Dialed, error) {
	return moqnative.Dial(ctx, rawURL, moqnative.ClientConfig{TLS: tlsConf, QlogDir: c.QlogDir, Logger: logger})
}

// RequestIDTimeout is how long a client's request waits for the relay to
// grant it a request ID (moqtransport.Config.RequestIDTimeout) before it
// fails with moqtransport.ErrRequestsBlocked: a relay that grants none
// ends the client with a clear message instead of a silent wait.
const RequestIDTimeout = 5 * time.Second

// JoinTimeout bounds the waits of a client's joining FETCH (the current
// group, from its first object, for a viewer that joins mid-group): for the
// relay's answer (FETCH_OK), then for each object after the one before. A
// FETCH that stalls that long is given up and the client starts at the
// next group instead; the download as a whole takes as long as the link
// needs.
const JoinTimeout = 2 * time.Second

// Setup runs the MoQT setup on the dialed connection d with cfg, whose
// Logger, Path and Authority it sets (the last two matter for raw QUIC) and
// whose RequestIDTimeout defaults to RequestIDTimeout. It logs the
// connection and, in the background, a GOAWAY from the relay.
func Setup(ctx context.Context, d *moqnative.Dialed, cfg *moqtransport.Config, logger *slog.Logger) (*moqtransport.Session, error) {
	cfg.Logger, cfg.Path, cfg.Authority = logger, d.Path, d.Authority
	if cfg.RequestIDTimeout == 0 {
		cfg.RequestIDTimeout = RequestIDTimeout
	}
	sess, err := moqtransport.Connect(ctx, d.Conn, cfg)
	if err != nil {
		return nil, fmt.Errorf("MoQT setup: %w", err)
	}
	logger.Info("connected", "protocol", d.Conn.Protocol().String(), "authority", d.Authority,
		"path", d.Path, "peer", sess.PeerImplementation())
	go func() {
		select {
		case <-sess.GoAway():
			logger.Warn("the relay is going away (GOAWAY)", "uri", sess.GoAwayURI())
		case <-sess.Done():
		}
	}()
	return sess, nil
}

// Connect dials rawURL with tlsConf and runs the MoQT setup with cfg (see
// Setup). close ends the session and then the connection. When ctx ends
// meanwhile the error is the dial's or setup's; callers check ctx first.
func (c *ClientFlags) Connect(ctx context.Context, rawURL string, tlsConf moqnative.ClientTLS, cfg *moqtransport.Config, logger *slog.Logger) (sess *moqtransport.Session, close func(), err error) {
	d, err := c.Dial(ctx, rawURL, tlsConf, logger)
	if err != nil {
		return nil, nil, err
	}
	sess, err = Setup(ctx, d, cfg, logger)
	if err != nil {
		_ = d.Close()
		return nil, nil, err
	}
	return sess, func() {
		_ = sess.Close()
		_ = d.Close()
	}, nil
}

// SignalContext returns a context that the first SIGINT or SIGTERM
// cancels, so that a command can end cleanly; a second signal exits at
// once with status 1.
func SignalContext(binary string) context.Context {
	ctx, _ := DrainSignals(binary, 0)
	return ctx
}

// DrainSignals is the signal handling of a command that drains (moq-relay):
// the first SIGINT or SIGTERM cancels ctx, so the command starts to drain;
// the second closes force, so it stops at once; and if the command is still
// running grace after the second signal, the process exits with status 1.
// The second signal always ends the process, whatever the command is
// blocked on.
func DrainSignals(binary string, grace time.Duration) (ctx context.Context, force <-chan struct{}) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	return onSignals(sigs, grace, func() {
		fmt.Fprintf(os.Stderr, "%s: interrupted again, exiting\n", binary)
		os.Exit(1)
	})
}

// onSignals runs DrainSignals' rules on sigs; exit ends the process.
func onSignals(sigs <-chan os.Signal, grace time.Duration, exit func()) (context.Context, <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	force := make(chan struct{})
	go func() {
		<-sigs
		cancel()
		<-sigs
		close(force)
		if grace > 0 {
			time.Sleep(grace)
		}
		exit()
	}()
	return ctx, force
}

// VersionCommand is the "version" subcommand every binary has: it prints
// the same line as --version.
func VersionCommand(binary string) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.String(binary))
			return err
		},
	}
}
