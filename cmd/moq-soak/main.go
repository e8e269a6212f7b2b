// Command moq-soak runs mixed legitimate and hostile load against a MoQT
// relay for a while and prints the relay's RSS, goroutines, open file
// descriptors, sessions and delivered objects over time, then a summary.
//
//	moq-soak [flags] [URL]
//
// By default it starts the moq-relay binary found in PATH (or the one
// --spawn-relay names) on free loopback ports, with --metrics-addr and
// --pprof, and stops it at the end. With a URL it targets that relay; give
// --relay-pid for RSS and fds from /proc and --metrics-url (a relay run with
// --metrics-addr and --pprof) for goroutines and sessions.
//
// The load, its verification and the hostile behaviours are described in
// package internal/soak. The command exits with status 1 when a budget
// (--max-rss-mb, --max-goroutines, --max-fds) is exceeded at any sample, or
// with --fail-unexpected when the relay misbehaved in a hostile action.
//
//	nice moq-soak --duration 10m --max-rss-mb 300 --max-fds 200
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/soak"
	"github.com/moqgo/moq/internal/version"
)

const binaryName = "moq-soak"

type config struct {
	soak           soak.Config
	spawnRelay     string
	relayArgs      []string
	disableVerify  bool
	fingerprints   []string
	failUnexpected bool
	jsonOut        bool
	webTransport   bool
	auth           bool
}

func main() {
	ctx := cli.SignalContext(binaryName)
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", binaryName, err)
		os.Exit(1)
	}
}

func newRootCommand() *cobra.Command {
	var cfg config
	root := &cobra.Command{
		Use:           binaryName + " [flags] [URL]",
		Short:         "Soak a MoQT relay with legitimate and hostile load and sample its resources (" + version.Draft + ")",
		Version:       version.String(binaryName),
		Args:          cobra.MaximumNArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				cfg.soak.URL = args[0]
			}
			return run(cmd.Context(), &cfg, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := root.Flags()
	s := &cfg.soak
	f.DurationVar(&s.Duration, "duration", time.Minute, "how long the load runs")
	f.IntVar(&s.Publishers, "publishers", 2, "legitimate publishers, one session and one track each")
	f.IntVar(&s.Subscribers, "subscribers", 4, "legitimate subscribers, each subscribed to every publisher's track")
	f.Float64Var(&s.Rate, "rate", 30, "objects a second per publisher")
	f.IntVar(&s.ObjectSize, "object-size", 1000, "object payload bytes (at least 16)")
	f.IntVar(&s.GroupSize, "group-objects", 30, "objects per group")
	f.IntVar(&s.HostileWorkers, "hostile-workers", 2, "goroutines cycling through the hostile behaviours (-1: none)")
	f.DurationVar(&s.HostilePause, "hostile-pause", 200*time.Millisecond, "pause between two hostile actions of a worker")
	f.IntVar(&s.Scale, "scale", 100, "counts inside each hostile action (streams, SUBSCRIBEs, sessions), in percent")
	f.DurationVar(&s.AnswerWait, "answer-wait", 5*time.Second, "how long a hostile action waits for the relay's answer before counting it unanswered")
	f.DurationVar(&s.UpstreamWait, "upstream-wait", 15*time.Second, "the same for answers the relay needs from a publisher first (the relay's upstream timeout and a margin)")
	f.DurationVar(&s.SampleEvery, "sample", 5*time.Second, "sampling period")
	f.Float64Var(&s.MaxRSSMB, "max-rss-mb", 0, "fail if the relay's RSS exceeds this many MB at a sample (0: no budget)")
	f.IntVar(&s.MaxGoroutines, "max-goroutines", 0, "fail if the relay's goroutines exceed this at a sample (0: no budget)")
	f.IntVar(&s.MaxFDs, "max-fds", 0, "fail if the relay's open file descriptors exceed this at a sample (0: no budget)")
	f.IntVar(&s.RelayPID, "relay-pid", 0, "with a URL: the relay's pid, to read its RSS and fds from /proc")
	f.StringVar(&s.MetricsURL, "metrics-url", "", "with a URL: the relay's metrics server (http://host:port, run with --pprof) for goroutines and sessions")
	f.StringVar(&cfg.spawnRelay, "spawn-relay", "", "the moq-relay binary to start (default: moq-relay in PATH); ignored with a URL")
	f.StringArrayVar(&cfg.relayArgs, "relay-arg", nil, "pass this argument to the spawned relay too; repeatable (e.g. --relay-arg=--max-sessions=500)")
	f.BoolVar(&cfg.disableVerify, "tls-disable-verify", false, "with a URL: do not verify the relay's certificate")
	f.StringArrayVar(&cfg.fingerprints, "fingerprint", nil, "with a URL: accept the relay certificate whose SHA-256 is HEX; repeatable")
	f.BoolVar(&cfg.failUnexpected, "fail-unexpected", false, "also fail if a hostile action got an answer the relay must not give (or none)")
	f.BoolVar(&cfg.jsonOut, "json", false, "print the report as JSON after the summary")
	f.BoolVar(&cfg.auth, "auth", false, "start the relay with --auth-key (a fresh HMAC secret); every client, hostile ones too, sends a token granting everything")
	f.StringVar(&s.Token, "token", "", "with a URL: the AUTHORIZATION TOKEN every client sends")
	f.BoolVar(&cfg.webTransport, "webtransport", false, "every client of the spawned relay uses WebTransport (https://) instead of raw QUIC")
	root.SetVersionTemplate("{{.Version}}\n")
	return root
}

func run(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	s := cfg.soak
	s.Out = stdout
	var relay *soak.Relay
	if s.URL == "" {
		if s.RelayPID != 0 || s.MetricsURL != "" {
			return errors.New("--relay-pid and --metrics-url describe the relay at URL: give its URL too")
		}
		bin := cfg.spawnRelay
		if bin == "" {
			var err error
			if bin, err = exec.LookPath("moq-relay"); err != nil {
				return errors.New("no relay: give a URL, --spawn-relay PATH, or put moq-relay in PATH (go build -o /tmp/moq-relay ./cmd/moq-relay)")
			}
		}
		args := cfg.relayArgs
		if cfg.auth {
			if s.Token != "" {
				return errors.New("--auth makes its own token: drop --token")
			}
			keyFile, token, err := authKey(s.Duration)
			if err != nil {
				return err
			}
			defer os.Remove(keyFile)
			args = append(slices.Clone(args), "--auth-key", keyFile)
			s.Token = token
		}
		var err error
		if relay, err = soak.SpawnRelay(ctx, bin, args, stderr); err != nil {
			return err
		}
		defer relay.Stop()
		s.URL, s.RelayPID, s.MetricsURL = relay.URL, relay.PID, relay.MetricsURL
		if cfg.webTransport {
			s.URL = "https://" + strings.TrimPrefix(s.URL, "moqt://")
		}
		s.TLS.InsecureSkipVerify = true // its certificate is generated at start
		fmt.Fprintf(stderr, "%s: relay %s pid %d, metrics %s\n", binaryName, bin, relay.PID, relay.MetricsURL)
	} else {
		if err := cli.CheckURL(s.URL); err != nil {
			return err
		}
		if cfg.spawnRelay != "" || len(cfg.relayArgs) > 0 || cfg.webTransport || cfg.auth {
			return errors.New("give a URL or --spawn-relay/--relay-arg/--webtransport/--auth, not both (the URL's scheme chooses the transport, --token the token)")
		}
		s.TLS.InsecureSkipVerify = cfg.disableVerify
		for _, fp := range cfg.fingerprints {
			b, err := cli.ParseFingerprint(fp)
			if err != nil {
				return err
			}
			s.TLS.ServerCertificateHashes = append(s.TLS.ServerCertificateHashes, b)
		}
	}
	fmt.Fprintf(stderr, "%s: %s of %d publishers x %d subscribers at %.0f objects/s, %d hostile workers, sampling every %s\n",
		binaryName, s.Duration, s.Publishers, s.Subscribers, s.Rate, s.HostileWorkers, s.SampleEvery)
	rep, err := soak.Run(ctx, s)
	if err != nil {
		return err
	}
	rep.Print(stdout)
	if relay != nil {
		soak.PrintCounts(stdout, "relay warnings and errors", relay.LogCounts())
	}
	if cfg.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	}
	if len(rep.Violations) > 0 {
		return fmt.Errorf("budget exceeded: %s", strings.Join(rep.Violations, "; "))
	}
	if cfg.failUnexpected && rep.Unexpected > 0 {
		return fmt.Errorf("%d hostile actions got an answer the relay must not give", rep.Unexpected)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return nil
}

// authKey writes a fresh HMAC secret to a temporary file (for the relay's
// --auth-key) and signs a token that grants everything until well after
// the run.
func authKey(d time.Duration) (file, token string, err error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", "", err
	}
	secret = []byte(hex.EncodeToString(secret)) // the relay trims the file's text
	f, err := os.CreateTemp("", "moq-soak-key-*")
	if err != nil {
		return "", "", err
	}
	if _, err := f.Write(secret); err != nil {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return "", "", err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return "", "", err
	}
	token, err = soak.AllowAllToken(secret, time.Now().Add(d+time.Hour))
	if err != nil {
		_ = os.Remove(f.Name())
		return "", "", err
	}
	return f.Name(), token, nil
}
