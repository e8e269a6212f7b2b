// Command moq-pub publishes fragmented MP4 from stdin as a MoQT broadcast
// (draft-ietf-moq-transport-14), in the track layout of moq-rs's moq-pub.
//
//	ffmpeg ... -f mp4 -movflags cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame - |
//	    moq-pub [flags] URL --name NAME
//
// URL is moqt://host:port/path (raw QUIC) or https://host:port/path
// (WebTransport). The namespace is NAME split on "/"; moq-pub announces it
// (PUBLISH_NAMESPACE) and serves these tracks:
//
//   - ".catalog": group 0, one object, moq-rs's catalog JSON (package
//     catalog), with --fps and --bitrate on every video track when given;
//   - "catalog": group 0, one object, the MSF catalog (draft-ietf-moq-msf
//     with CMAF packaging, draft-01 JSON; catalog.BuildMSF) of the same
//     tracks, each with its own init segment, for the players of the wider
//     ecosystem;
//   - "0.mp4": group 0, one object, the init segment (ftyp and moov);
//   - "{track_ID}.m4s" for each track of the moov: each moof with its mdat
//     is one object. A key frame of the first video track starts a new
//     group on every track (other video tracks start one at their own key
//     frames); without video, a group spans --group-duration of media
//     time. Object IDs run 0, 1, 2... within each group.
//
// The catalogs and the init segment are also pushed to the relay (PUBLISH)
// before they are written, so that the relay caches them and subscribers
// that come later can FETCH them; a relay that refuses (or ignores) PUBLISH
// serves them from this process as any other track.
//
// At the end of the input every track ends with an End of Track object and
// PUBLISH_DONE TRACK_ENDED, and moq-pub exits 0 once the subscriptions have
// ended (at most a few seconds). The first SIGINT or SIGTERM does the same;
// a second one exits at once. Input that is not fragmented MP4 (or a
// codec the catalog cannot name on every track) ends it with exit status 3
// and a message that says what is wrong, as does a terminal as stdin, which
// moq-pub refuses at once (with the ffmpeg pipeline to run) rather than
// wait for media nobody types; other failures exit 1. Logs go to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/moqgo/moq/catalog"
	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/fmp4"
	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqtransport"
	"github.com/moqgo/moq/moqtransport/wire"
)

const binaryName = "moq-pub"

// Exit statuses.
const (
	exitFailure = 1
	// exitBadInput: the input is not fragmented MP4 moq-pub can publish.
	exitBadInput = 3
)

// config holds everything run needs.
type config struct {
	url           string
	name          string
	fps           uint64
	bitrate       uint32
	groupDuration time.Duration

	client cli.ClientFlags

	stdin          io.Reader
	stdout, stderr io.Writer

	// Tests: a hook called once the namespace is published and the
	// catalog and init tracks exist (before the input is read), and the
	// shutdown bounds (0: the defaults).
	ready      func()
	endTimeout time.Duration
	closeGrace time.Duration
}

func main() {
	ctx := cli.SignalContext(binaryName)
	if err := newRootCommand(config{stdin: os.Stdin}).ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", binaryName, err)
		os.Exit(exitCode(err))
	}
}

// inputError is an error about the input: exit status 3.
type inputError struct{ err error }

func (e *inputError) Error() string { return e.err.Error() }
func (e *inputError) Unwrap() error { return e.err }

// exitCode is the exit status for run's error.
func exitCode(err error) int {
	var ie *inputError
	if errors.As(err, &ie) {
		return exitBadInput
	}
	return exitFailure
}

// newRootCommand builds the moq-pub command line on top of base (which
// carries stdin and the test hooks); --version and the version subcommand
// print the version line.
func newRootCommand(base config) *cobra.Command {
	cfg := base
	root := &cobra.Command{
		Use:   binaryName + " [flags] URL --name NAME",
		Short: "Publish fragmented MP4 from stdin through a MoQT relay (" + version.Draft + ")",
		Long: "Publish fragmented MP4 read from stdin as a MoQT broadcast in moq-rs's layout (.catalog, 0.mp4, {track_ID}.m4s), with an MSF catalog on track \"catalog\".\n" +
			"URL is moqt://host:port/path (raw QUIC) or https://host:port/path (WebTransport).\n\n" +
			"Example:\n  ffmpeg -i in.mp4 -c copy -f mp4 -movflags cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame - |\n" +
			"    moq-pub --tls-disable-verify --name demo moqt://localhost:4443/",
		Version:       version.String(binaryName),
		Args:          cobra.ExactArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg.url = args[0]
			cfg.stdout, cfg.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			if cfg.stdin == nil {
				cfg.stdin = cmd.InOrStdin()
			}
			return run(cmd.Context(), cfg)
		},
	}
	f := root.Flags()
	f.StringVar(&cfg.name, "name", "", "broadcast namespace, fields separated by / (required)")
	f.Uint64Var(&cfg.fps, "fps", 0, "frame rate to advertise in the catalog for each video track (0: none)")
	f.Uint32Var(&cfg.bitrate, "bitrate", 0, "bitrate in bits per second to advertise in the catalog for each video track (0: none)")
	f.DurationVar(&cfg.groupDuration, "group-duration", fmp4.DefaultGroupDuration, "media time a group spans when the input has no video track")
	cfg.client.Add(f)
	_ = root.MarkFlagRequired("name")
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(cli.VersionCommand(binaryName))
	return root
}

// run connects to the relay and publishes stdin until it ends, ctx ends,
// or the session does.
func run(ctx context.Context, cfg config) error {
	logger, err := cfg.client.Logger(cfg.stderr)
	if err != nil {
		return err
	}
	if err := cli.CheckURL(cfg.url); err != nil {
		return err
	}
	if cfg.name == "" {
		return errors.New("--name is empty: name the broadcast, e.g. --name demo")
	}
	ns := wire.ParseNamespacePath(cfg.name)
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("--name %q: %w", cfg.name, err)
	}
	for _, n := range []string{catalogTrack, catalog.MSFTrack, catalog.DefaultInitTrack} {
		if err := (wire.FullTrackName{Namespace: ns, Name: n}).Validate(); err != nil {
			return fmt.Errorf("--name %q: %w", cfg.name, err)
		}
	}
	if cfg.groupDuration <= 0 {
		return fmt.Errorf("--group-duration %v: want a positive duration", cfg.groupDuration)
	}
	if cli.IsTerminal(cfg.stdin) {
		return &inputError{errors.New("stdin is a terminal: pipe fragmented MP4 into moq-pub, e.g.\n" +
			"  ffmpeg -re -i movie.mp4 -c copy -f mp4 -movflags cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame - | " +
			"moq-pub --name " + cfg.name + " " + cfg.url)}
	}
	tlsConf, err := cfg.client.TLS()
	if err != nil {
		return err
	}

	h := cli.NewServed()
	sess, closeSess, err := cfg.client.Connect(ctx, cfg.url, tlsConf, &moqtransport.Config{Handler: h.Handler()}, logger)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer closeSess()
	nsPub, err := sess.PublishNamespace(ctx, ns, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("publishing namespace %s: %w", ns, err)
	}
	logger.Info("namespace published", "namespace", ns.String())

	p := &publisher{cfg: cfg, log: logger, sess: sess, h: h, ns: ns, nsPub: nsPub}
	return p.run(ctx)
}
