// Command moq-test-client checks a MoQT relay (draft-ietf-moq-transport-14)
// from the client side and reports in TAP version 14, like moq-rs's
// moq-test-client but with stricter pass criteria and more scenarios (see
// internal/testclient and --list -v).
//
//	moq-test-client [-r URL] [-t NAME[,NAME...]] [--tls-disable-verify] [-v]
//	moq-test-client -l
//
// TAP goes to stdout, logs to stderr. The exit code is 0 when every
// selected scenario passed (or was skipped) and 1 otherwise.
//
// The goaway scenario is manual: it passes only if the relay is drained
// (moq-relay: SIGTERM) while it runs, after stderr says "waiting for
// GOAWAY". It runs only when named with -t.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/testclient"
	"github.com/moqgo/moq/internal/version"
)

const binaryName = "moq-test-client"

// defaultRelay is moq-rs's default --relay.
const defaultRelay = "https://localhost:4443"

// errFailed is returned when a scenario failed; the TAP output says which.
var errFailed = errors.New("some tests failed")

// config holds everything run needs.
type config struct {
	relay   string
	tests   string
	list    bool
	verbose bool
	timeout time.Duration
	client  cli.ClientFlags

	stdout, stderr io.Writer

	// Tests: called when the goaway scenario waits for the relay to drain.
	goAwayWait func()
}

func main() {
	ctx := cli.SignalContext(binaryName)
	if err := newRootCommand(config{}).ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errFailed) {
			fmt.Fprintf(os.Stderr, "%s: %v\n", binaryName, err)
		}
		os.Exit(1)
	}
}

// envBool reads a boolean environment variable; unset or unparsable is
// false.
func envBool(name string) bool {
	v, _ := strconv.ParseBool(os.Getenv(name))
	return v
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// newRootCommand builds the command line on top of base (which carries the
// test hooks). Flag defaults come from the environment as it is now.
func newRootCommand(base config) *cobra.Command {
	cfg := base
	root := &cobra.Command{
		Use:   binaryName + " [flags]",
		Short: "Check a MoQT relay and report in TAP (" + version.Draft + ")",
		Long: "Run interop scenarios against a MoQT relay and print TAP version 14 on stdout (logs on stderr).\n" +
			"Exit code 0 when every selected scenario passed, 1 otherwise. See --list -v for the scenarios.\n" +
			"The goaway scenario is manual: it needs the relay to drain while it runs (moq-relay: SIGTERM once\n" +
			"stderr says \"waiting for GOAWAY\"), and runs only when named with -t.",
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
	f.StringVarP(&cfg.relay, "relay", "r", envOr("RELAY_URL", defaultRelay), "relay under test: moqt://host:port/path (raw QUIC) or https://host:port/path (WebTransport) (env RELAY_URL)")
	f.StringVarP(&cfg.tests, "test", "t", envOr("TESTCASE", "all"), "test to run, or several separated by commas; \"all\" is every test but the manual ones (env TESTCASE)")
	f.BoolVarP(&cfg.list, "list", "l", false, "print the names of the tests \"all\" runs, one a line, and exit; with -v also describe every test")
	f.BoolVarP(&cfg.verbose, "verbose", "v", envBool("VERBOSE"), "whole failure messages in the TAP diagnostics, not only their first line (env VERBOSE)")
	f.DurationVar(&cfg.timeout, "timeout", testclient.DefaultTimeout, "time limit of each test")
	cfg.client.AddWith(f, cli.Help{
		Peer:     "relay",
		QlogDir:  "write a qlog file per connection into this directory",
		LogLevel: "log level on stderr: debug, info, warn or error",
	})
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(cli.VersionCommand(binaryName))
	return root
}

// list prints the names of the default tests or, verbose, every test with
// its description.
func list(w io.Writer, verbose bool) error {
	for _, sc := range testclient.Scenarios() {
		var err error
		switch {
		case verbose:
			manual := ""
			if sc.Manual {
				manual = " (manual: the relay must drain while it runs; run it with -t " + sc.Name + ")"
			}
			_, err = fmt.Fprintf(w, "%-26s %s%s\n", sc.Name, sc.Description, manual)
		case !sc.Manual:
			_, err = fmt.Fprintln(w, sc.Name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// run lists the tests or runs the selected ones; errFailed means that one
// failed.
func run(ctx context.Context, cfg config) error {
	if cfg.list {
		return list(cfg.stdout, cfg.verbose)
	}
	logger, err := cfg.client.Logger(cfg.stderr)
	if err != nil {
		return err
	}
	if err := cli.CheckURLNamed("--relay", cfg.relay); err != nil {
		return err
	}
	if cfg.timeout <= 0 {
		return fmt.Errorf("--timeout %v: want a positive duration", cfg.timeout)
	}
	tests, err := testclient.Select(strings.Split(cfg.tests, ","))
	if err != nil {
		return err
	}
	tlsConf, err := cfg.client.TLS()
	if err != nil {
		return err
	}
	results, err := testclient.Run(ctx, cfg.stdout, testclient.Options{
		RelayURL:   cfg.relay,
		TLS:        tlsConf,
		QlogDir:    cfg.client.QlogDir,
		Logger:     logger,
		Timeout:    cfg.timeout,
		Verbose:    cfg.verbose,
		Banner:     version.String(binaryName),
		GoAwayWait: cfg.goAwayWait,
	}, tests)
	if err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	failed := 0
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	if failed > 0 {
		logger.Error("tests failed", "failed", failed, "total", len(results))
		return errFailed
	}
	logger.Info("all tests passed", "total", len(results))
	return nil
}
