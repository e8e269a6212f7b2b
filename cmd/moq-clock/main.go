// Command moq-clock publishes or prints a clock track through a MoQT relay
// (draft-ietf-moq-transport-14), in the format of moq-rs's moq-clock-ietf
// (see internal/clock): a group a minute whose object 0 is the date and
// minute and whose later objects are the seconds, or with --datagrams one
// datagram a second.
//
//	moq-clock [flags] URL
//
// URL is moqt://host:port/path (raw QUIC) or https://host:port/path
// (WebTransport). With --publish it announces the namespace (default
// "clock") and serves the track (default "now"), printing every second it
// publishes; otherwise it subscribes and prints one timestamp a line. Logs
// go to stderr; stdout carries only the clock lines.
//
// A subscriber that joins in the middle of a minute gets the minute so far
// with a joining FETCH and prints the current time at once; through a relay
// that refuses the FETCH it says so and starts with the next minute. A
// relay that grants no request IDs (no MAX_REQUEST_ID) ends it after
// cli.RequestIDTimeout with a message that says so.
//
// stdout is written by one goroutine from a queue of at most 64 KiB, so a
// reader that stops reading does not stop the clock: lines that find the
// queue full are dropped (with a log line). When stdout's reader goes away
// (broken pipe), moq-clock stops as on SIGINT and exits 0 with a line that
// says so.
//
// A subscriber exits 0 when the track ends (PUBLISH_DONE) or on SIGINT or
// SIGTERM (it unsubscribes first), and non-zero with the reason otherwise.
// A publisher ends its track on the first signal (its subscribers get
// PUBLISH_DONE) and withdraws the namespace; a second signal exits at once.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/clock"
	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

const binaryName = "moq-clock"

// Bounds of a publisher's shutdown.
const (
	// endTimeout bounds the wait for the subscriptions to end after the
	// track has ended (their PUBLISH_DONE written).
	endTimeout = 2 * time.Second
	// defaultCloseGrace is how long a publisher keeps its connection open
	// after PUBLISH_DONE and PUBLISH_NAMESPACE_DONE, so that they and the
	// last stream's FIN reach the relay before CONNECTION_CLOSE (which
	// discards what was not sent yet).
	defaultCloseGrace = 250 * time.Millisecond
)

// config holds everything run needs.
type config struct {
	url         string
	publish     bool
	namespace   string
	track       string
	datagrams   bool
	trackStatus bool

	client cli.ClientFlags

	stdout, stderr io.Writer

	// Tests: the publisher's clock (nil: the system clock), a hook called
	// once the namespace is published or the subscription is open, and
	// the publisher's close grace (0: defaultCloseGrace).
	now        func() time.Time
	newTicker  func() clock.Ticker
	ready      func()
	closeGrace time.Duration
	// requestIDTimeout replaces cli.RequestIDTimeout (0: keep it).
	requestIDTimeout time.Duration
}

func main() {
	// A write to a closed pipe returns EPIPE (ended cleanly by run)
	// instead of killing the process with SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	ctx := cli.SignalContext(binaryName)
	if err := newRootCommand(config{}).ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", binaryName, err)
		os.Exit(1)
	}
}

// newRootCommand builds the moq-clock command line on top of base (which
// carries the test hooks); --version and the version subcommand print the
// version line.
func newRootCommand(base config) *cobra.Command {
	cfg := base
	root := &cobra.Command{
		Use:           binaryName + " [flags] URL",
		Short:         "Publish or print a MoQT clock track (" + version.Draft + ")",
		Long:          "Publish (--publish) or print the clock track of moq-rs's moq-clock-ietf through a MoQT relay.\nURL is moqt://host:port/path (raw QUIC) or https://host:port/path (WebTransport).",
		Version:       version.String(binaryName),
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.url = args[0]
			cfg.stdout, cfg.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return run(cmd.Context(), cfg)
		},
	}
	f := root.Flags()
	f.BoolVar(&cfg.publish, "publish", false, "publish the clock; otherwise subscribe and print it")
	f.StringVar(&cfg.namespace, "namespace", "clock", "track namespace, fields separated by /")
	f.StringVar(&cfg.track, "track", "now", "track name")
	f.BoolVar(&cfg.datagrams, "datagrams", false, "publisher: one datagram a second instead of a stream a minute")
	f.BoolVar(&cfg.trackStatus, "track-status", false, "subscriber: ask for the track's status (TRACK_STATUS) before subscribing")
	cfg.client.Add(f)
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(cli.VersionCommand(binaryName))
	return root
}

// run connects to the relay and publishes or subscribes until ctx ends or
// the track or session does.
func run(ctx context.Context, cfg config) error {
	logger, err := cfg.client.Logger(cfg.stderr)
	if err != nil {
		return err
	}
	if err := cli.CheckURL(cfg.url); err != nil {
		return err
	}
	ns := wire.ParseNamespacePath(cfg.namespace)
	name := wire.FullTrackName{Namespace: ns, Name: cfg.track}
	if err := name.Validate(); err != nil {
		return fmt.Errorf("--namespace %q --track %q: %w", cfg.namespace, cfg.track, err)
	}
	tlsConf, err := cfg.client.TLS()
	if err != nil {
		return err
	}
	if cfg.publish && cfg.trackStatus {
		logger.Warn("--track-status applies to subscribers only; ignored")
	}
	if !cfg.publish && cfg.datagrams {
		logger.Warn("--datagrams applies to publishers only (a subscriber reads either); ignored")
	}

	d, err := cfg.client.Dial(ctx, cfg.url, tlsConf, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer func() { _ = d.Close() }()

	// stdout through a queue that a stalled reader cannot make block; its
	// failure (the reader went away) stops the clock as an interrupt does.
	out := cli.NewOutput(cfg.stdout, outputQueueBytes, logger)
	cfg.stdout = out
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-out.Failed():
			stop()
		case <-runCtx.Done():
		}
	}()
	scfg := &moqtransport.Config{RequestIDTimeout: cfg.requestIDTimeout}
	if cfg.publish {
		err = publish(runCtx, cfg, logger, d, scfg, name)
	} else {
		err = subscribe(runCtx, cfg, logger, d, scfg, name)
	}
	closeCtx := ctx
	if err != nil {
		c, cancel := context.WithCancel(ctx)
		cancel()
		closeCtx = c
	}
	qerr := out.Close(closeCtx, cli.DefaultCloseGrace)
	switch {
	case errors.Is(qerr, cli.ErrReaderGone):
		logger.Info("stopped: " + cli.ErrReaderGone.Error())
		return nil
	case errors.Is(qerr, cli.ErrUnwritten) && err == nil:
		logger.Warn("interrupted: " + qerr.Error())
	case err == nil:
		err = qerr
	}
	return err
}

// outputQueueBytes bounds the lines held for a stdout that is not reading.
const outputQueueBytes = 64 << 10

// publish announces the namespace and serves the clock track until ctx
// ends (nil) or the session or the publication does (an error).
func publish(ctx context.Context, cfg config, logger *slog.Logger, d *moqnative.Dialed, scfg *moqtransport.Config, name wire.FullTrackName) error {
	track := moqtransport.NewTrack(name, moqtransport.TrackConfig{})
	h := cli.NewServed()
	h.Add(track)
	scfg.Handler = h.Handler()
	sess, err := cli.Setup(ctx, d, scfg, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer func() { _ = sess.Close() }()
	pub, err := sess.PublishNamespace(ctx, name.Namespace, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("publishing namespace %s: %w", name.Namespace, err)
	}
	logger.Info("namespace published", "namespace", name.Namespace.String(), "track", name.Name, "datagrams", cfg.datagrams)
	if cfg.ready != nil {
		cfg.ready()
	}

	// The clock runs until ctx ends, the session ends, or the relay
	// cancels the namespace.
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-sess.Done():
		case <-pub.Done():
		case <-runCtx.Done():
		}
		stop()
	}()
	p := &clock.Publisher{Track: track, Datagrams: cfg.datagrams, Out: cfg.stdout, Now: cfg.now, NewTicker: cfg.newTicker}
	runErr := p.Run(runCtx)
	if sess.Err() != nil {
		track.Close(sess.Err())
		return fmt.Errorf("session ended: %w", sess.Err())
	}
	select {
	case <-pub.Done():
		track.Close(pub.Err())
		return fmt.Errorf("namespace %s withdrawn by the relay: %w", name.Namespace, pub.Err())
	default:
	}
	if runErr != nil && !errors.Is(runErr, cli.ErrReaderGone) {
		track.Close(moqtransport.PublishDoneError(wire.DoneInternalError, runErr.Error()))
		return runErr
	}

	// Interrupted: end the track so that every subscriber gets
	// PUBLISH_DONE, withdraw the namespace, and let both reach the relay.
	logger.Info("ending the track")
	track.Close(nil)
	waitCtx, cancel := context.WithTimeout(context.Background(), endTimeout)
	if err := h.WaitIdle(waitCtx, sess.Done()); err != nil {
		logger.Warn("subscriptions did not end in time", "err", err)
	}
	cancel()
	if err := pub.Close(); err != nil && sess.Err() == nil {
		logger.Warn("withdrawing the namespace", "err", err)
	}
	grace := cfg.closeGrace
	if grace == 0 {
		grace = defaultCloseGrace
	}
	select {
	case <-time.After(grace):
	case <-sess.Done():
	}
	logger.Info("publisher stopped")
	return nil
}

// subscribe prints the clock track until it ends (nil), ctx ends (nil,
// after UNSUBSCRIBE), or the subscription or session fails (an error).
func subscribe(ctx context.Context, cfg config, logger *slog.Logger, d *moqnative.Dialed, scfg *moqtransport.Config, name wire.FullTrackName) error {
	sess, err := cli.Setup(ctx, d, scfg, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer func() { _ = sess.Close() }()
	if cfg.trackStatus {
		st, err := sess.TrackStatus(ctx, name.Namespace, name.Name)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			// moq-clock-ietf ignores the answer; SUBSCRIBE says the rest.
			logger.Warn("track status", "track", name.String(), "err", err)
		case st.ContentExists:
			logger.Info("track status", "track", name.String(), "content_exists", true, "largest", st.Largest.String(), "group_order", st.GroupOrder)
		default:
			logger.Info("track status", "track", name.String(), "content_exists", false, "group_order", st.GroupOrder)
		}
	}
	// A joining FETCH goes with the SUBSCRIBE: joined mid-minute, the
	// minute's first object (its date) and the seconds so far come with
	// it, so that the current time prints at once rather than when the
	// minute turns.
	sub, join, err := cli.SubscribeJoin(ctx, sess, name.Namespace, name.Name, moqtransport.SubscribeOptions{Priority: clock.SubscriberPriority})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("subscribing to %s: %w", name, err)
	}
	if largest, ok := sub.Largest(); ok {
		logger.Info("subscribed", "track", name.String(), "largest", largest.String())
	} else {
		logger.Info("subscribed", "track", name.String())
	}
	// (An error means ctx ended: Run then returns at once, and the
	// interrupt is handled below.)
	joined, _ := cli.Join(ctx, sess, sub, join, clock.SubscriberPriority, logger)
	if cfg.ready != nil {
		cfg.ready()
	}
	s := &clock.Subscriber{Out: cfg.stdout, Logger: logger, Joined: joined}
	err = s.Run(ctx, sub.Track())
	switch {
	case ctx.Err() != nil:
		if uerr := sub.Unsubscribe(); uerr != nil && sess.Err() == nil {
			logger.Warn("unsubscribing", "err", uerr)
		}
		logger.Info("unsubscribed")
		return nil
	case sess.Err() != nil && !errors.Is(sess.Err(), moqtransport.ErrSessionClosed):
		return fmt.Errorf("session ended: %w", sess.Err())
	case err != nil:
		return fmt.Errorf("subscription to %s ended: %w", name, err)
	}
	logger.Info("track ended", "track", name.String())
	return nil
}
