// Command moq-relay will be the moq-go MoQT relay. Until the relay lands it is
// a placeholder that prints its version and says so.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/moqgo/moq/internal/version"
)

const binaryName = "moq-relay"

// config holds everything run needs. The relay's flags will be added here.
type config struct {
	stdout io.Writer
	stderr io.Writer
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", binaryName, err)
		os.Exit(1)
	}
}

// newRootCommand builds the moq-relay command line: the root command runs the
// relay, --version and the version subcommand print the version line.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           binaryName,
		Short:         "MoQT relay (" + version.Draft + ")",
		Version:       version.String(binaryName),
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := config{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr()}
			return run(cmd.Context(), cfg)
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.AddCommand(&cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.String(binaryName))
			return err
		},
	})
	return root
}

// run starts the relay. For now there is no relay: it prints the version and
// a notice on stderr, and returns nil.
func run(ctx context.Context, cfg config) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := fmt.Fprintln(cfg.stdout, version.String(binaryName)); err != nil {
		return err
	}
	_, err := fmt.Fprintf(cfg.stderr, "%s: the relay is not implemented yet in version %s\n", binaryName, version.Version)
	return err
}
