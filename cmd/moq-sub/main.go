// Command moq-sub plays a MoQT broadcast (draft-ietf-moq-transport-14) in
// moq-rs's moq-pub layout to stdout as fragmented MP4, for ffplay or a
// file.
//
//	moq-sub [flags] URL --name NAME [--catalog|--msf] [--track NAME]... | ffplay -
//
// URL is moqt://host:port/path (raw QUIC) or https://host:port/path
// (WebTransport). moq-sub gets the init segment (track "0.mp4", or the
// init track moq-rs's catalog on ".catalog" names with --catalog) from a
// subscription or, when it was published before, with FETCH; with --msf it
// reads the MSF catalog on track "catalog" instead, which carries the init
// segments itself (merged into one, with track IDs made distinct where
// they collide, as with Eyevinn's mlmpub). It picks the tracks (every video
// and audio track, one of each MSF altGroup, or those named with --track,
// by their track names such as "1.m4s"); writes the init segment, cut down
// to those tracks, and then every object (a CMAF chunk: moof+mdat pairs,
// perhaps after a styp) of the tracks as it arrives,
// tracks interleaved, each track in group and object order. Each track
// starts at once, at the first object (a key frame) of the group the
// publisher is in: the subscription (Largest Object) brings the rest of that
// group and what follows, and a joining FETCH the group's start. Through a
// relay that does not serve the FETCH, moq-sub says so and starts at the
// next group. A relay that grants no request IDs (no MAX_REQUEST_ID) ends
// it after cli.RequestIDTimeout with a message that says so.
//
// stdout carries nothing but the media: ftyp moov (moof mdat)*, so it
// must be a pipe or a file: with stdout a terminal moq-sub refuses to
// start and shows the pipeline to run. Logs go to stderr. One goroutine writes stdout from a queue of at most
// --output-queue bytes, so a reader that stops reading (a paused or hung
// player) does not stop moq-sub: while the queue is full, each track drops
// its objects until the next group start (a key frame) that fits, and
// moq-sub logs when that starts and when it catches up.
//
// moq-sub exits 0 when the publisher ends the tracks and stdout has taken
// everything; on SIGINT or SIGTERM, after unsubscribing and giving stdout
// at most a second more (a reader that never reads again does not keep it
// from exiting); and when stdout's reader goes away (broken pipe), with a
// line that says so. It exits 1 with the reason otherwise.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqtransport"
)

const binaryName = "moq-sub"

// defaultQueueBytes bounds the media held for stdout: a few seconds of a
// few Mbit/s.
const defaultQueueBytes = 4 << 20

// config holds everything run needs.
type config struct {
	url        string
	name       string
	useCatalog bool
	useMSF     bool
	tracks     []string
	skipBehind time.Duration
	queueBytes int

	client cli.ClientFlags

	stdout, stderr io.Writer

	// Tests: a hook called once the init segment is written and the
	// media subscriptions are open, and how long to wait for an init
	// segment that FETCH could not get (0: the default).
	ready       func()
	initTimeout time.Duration
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

// newRootCommand builds the moq-sub command line on top of base (which
// carries the test hooks); --version and the version subcommand print the
// version line.
func newRootCommand(base config) *cobra.Command {
	cfg := base
	root := &cobra.Command{
		Use:   binaryName + " [flags] URL --name NAME [--catalog|--msf] [--track NAME]...",
		Short: "Play a MoQT broadcast to stdout as fragmented MP4 (" + version.Draft + ")",
		Long: "Subscribe to a broadcast in moq-rs's layout (.catalog, 0.mp4, {track_ID}.m4s) and write it to stdout as fragmented MP4.\n" +
			"URL is moqt://host:port/path (raw QUIC) or https://host:port/path (WebTransport).\n\n" +
			"Example:\n  moq-sub --tls-disable-verify --name demo moqt://localhost:4443/ | ffplay -",
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
	f.StringVar(&cfg.name, "name", "", "broadcast namespace, fields separated by / (required)")
	f.BoolVar(&cfg.useCatalog, "catalog", false, "read moq-rs's catalog (track .catalog) first and take the track names and the init track from it")
	f.BoolVar(&cfg.useMSF, "msf", false, "read the MSF catalog (track catalog) first and take the track names and their init segments from it")
	f.StringArrayVar(&cfg.tracks, "track", nil, "play only this track, e.g. 1.m4s (default: every video and audio track); repeatable")
	f.DurationVar(&cfg.skipBehind, "skip-behind", time.Second, "on a slow link, give up an unfinished group once a newer group's key frame has waited this long behind it, and go on from the newest (the groups given up are stopped; tracks are asked newest group first); 0 plays every group in order")
	f.IntVar(&cfg.queueBytes, "output-queue", defaultQueueBytes, "bytes of media held for a stdout that is not reading; past them each track skips to its next group start")
	cfg.client.Add(f)
	_ = root.MarkFlagRequired("name")
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(cli.VersionCommand(binaryName))
	return root
}

// run connects to the relay and plays the broadcast until its tracks end,
// ctx ends, or something fails.
func run(ctx context.Context, cfg config) error {
	logger, err := cfg.client.Logger(cfg.stderr)
	if err != nil {
		return err
	}
	if err := cli.CheckURL(cfg.url); err != nil {
		return err
	}
	if cfg.name == "" {
		return fmt.Errorf("--name is empty: name the broadcast, e.g. --name demo")
	}
	if cfg.queueBytes <= 0 {
		return fmt.Errorf("--output-queue %d: give a positive number of bytes, e.g. %d", cfg.queueBytes, defaultQueueBytes)
	}
	if cfg.useCatalog && cfg.useMSF {
		return fmt.Errorf("--catalog and --msf name two catalogs: give one")
	}
	ns := moqtransport.ParseNamespace(cfg.name)
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("--name %q: %w", cfg.name, err)
	}
	for _, t := range cfg.tracks {
		if err := (moqtransport.FullTrackName{Namespace: ns, Name: t}).Validate(); err != nil || t == "" {
			return fmt.Errorf("--track %q: not a track name", t)
		}
	}
	if cli.IsTerminal(cfg.stdout) {
		return fmt.Errorf("stdout is a terminal, and moq-sub writes fragmented MP4 to it: pipe it into a player, e.g.\n"+
			"  moq-sub --name %s %s | ffplay -\n(or redirect it to a file: > out.mp4)", cfg.name, cfg.url)
	}
	tlsConf, err := cfg.client.TLS()
	if err != nil {
		return err
	}

	sess, closeSess, err := cfg.client.Connect(ctx, cfg.url, tlsConf, &moqtransport.Config{}, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	q := cli.NewOutput(cfg.stdout, cfg.queueBytes, logger)
	// The subscriber stops when stdout fails: nothing it gets can go out.
	subCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-q.Failed():
			stop()
		case <-subCtx.Done():
		}
	}()
	s := &subscriber{cfg: cfg, log: logger, sess: sess, ns: ns, out: newOutput(q, logger)}
	err = s.run(subCtx)
	closeSess()
	// Let stdout take the rest: all of it after the tracks ended, for at
	// most cli.DefaultCloseGrace after an interrupt.
	// After a failure only the grace: the command is ending anyway.
	closeCtx := ctx
	if err != nil {
		c, cancel := context.WithCancel(ctx)
		cancel()
		closeCtx = c
	}
	qerr := q.Close(closeCtx, cli.DefaultCloseGrace)
	written, _, peak := q.Stats()
	switch {
	case errors.Is(qerr, cli.ErrReaderGone):
		logger.Info("stopped: "+cli.ErrReaderGone.Error(), "bytes", written)
		return nil
	case errors.Is(qerr, cli.ErrUnwritten) && err == nil:
		logger.Warn("interrupted: "+qerr.Error(), "bytes", written)
		return nil
	case err == nil:
		err = qerr
	}
	if err == nil {
		logger.Info("done", "bytes", written, "peak_queued_bytes", peak)
	}
	return err
}
