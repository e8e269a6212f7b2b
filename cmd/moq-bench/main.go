// Command moq-bench measures MoQT fan-out through a relay: M publishers and
// N subscribers, every subscriber subscribed to every publisher's track,
// next to a raw quic-go baseline that sends the same bytes in the same
// stream pattern in the same run.
//
//	moq-bench [flags] [URL]
//
// With a URL (moqt://host:port/path or https://...) the relay at URL is
// measured; publishers PUBLISH_NAMESPACE bench/<pid>-<run>/<i> and serve
// track "t". With --spawn-relay PATH the moq-relay binary at PATH is started
// on a free loopback port for each run (its CPU and peak RSS are read from
// /proc); with neither, a moq-go relay runs inside this process (its CPU
// cannot be told apart from the clients').
//
// Every publisher writes --rate objects a second of --object-size bytes,
// --group-objects objects per group, one subgroup (one QUIC stream per
// subscriber) per group. Every payload carries its due time (a monotonic
// offset from the start of the process; all clients live in this process, so
// one clock times both ends); a late publisher is charged from the due time.
// The baseline (--baseline, default on) is a raw quic-go origin, a child
// process (this binary again) like a spawned relay, that sends each
// publisher's objects to N raw client connections as the draft-14
// subgroup streams a relay sends, one stream per group, with moqnative's
// QUIC settings; its CPU and RSS are read from /proc like the relay's. The subscribers of both paths are the same
// thin clients (thin.go): a raw quic-go connection that, through the
// relay, does the MoQT handshake itself, and one subgroup-stream parser
// over a reused buffer, so that the paths differ by the relay alone.
// --subscriber-kind session subscribes through the relay with full moq-go
// sessions and TrackReaders instead (the library end to end; as costly as
// the relay on the same cores).
//
// Reported per path: delivered payload MB/s, object latency p50/p99/max,
// objects lost (expected minus received after a drain period), CPU seconds
// per GB delivered (this process; the relay's when its pid is known; the
// total), peak RSS; and the ratios relay/baseline. --matrix runs fan-out
// 1:10, 1:100, 1:500 with 1 KB, 4 KB and 20 KB objects and prints a
// markdown table. --cell SUBSCRIBERS:MBPS:SIZE (repeatable) runs the cells
// given instead, each one track of MBPS Mbit/s in SIZE objects to
// SUBSCRIBERS subscribers; --runs N makes N passes over the cells and
// reports each figure's median and min–max. The rows of issue 12, through
// a spawned relay so that its CPU and peak RSS are measured:
//
//	moq-bench --spawn-relay ./moq-relay --runs 2 --duration 15s \
//	  --cell 1000:1:4KB --cell 100:22:16KB --cell 100:30:16KB --cell 100:4:1KB
//
// --join N measures N thin subscribers joining a live track (time to
// SUBSCRIBE_OK and to the first object, p50/p99/max, the wall time, the
// relay's RSS and goroutines after). --soak runs one fan-out for
// --duration and reports whether the relay's RSS stayed flat (the mean of
// the last --soak-window within 5% of the first one's after warm-up: the
// time the relay's track cache takes to fill). --profile DIR takes
// the spawned relay's CPU and heap profiles mid-run (with --join, the
// relay's and the bench's own CPU profiles over the join's first 5 s).
//
// Live mode (--slow N and/or --stalled N) watches one live track with
// classes of viewers instead: fast ones (--subscribers), slow ones behind a
// shaping proxy each, and stalled ones that never read one of their
// streams. It reports, per class, the objects and key frames delivered, the
// lag behind live when publishing ends, the share of streams the relay
// reset, and the fast viewers' latency next to their latency alone (see
// live.go). The scenario of issue 11:
//
//	moq-bench --subscribers 1 --slow 1 --slow-mbps 1.5 --slow-queue-ms 200 \
//	  --delivery-timeout 1s --group-order desc --stalled 1 \
//	  --track-mbps 4 --key-ratio 4 --rate 30 --group-objects 30 --duration 20s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/moqgo/moq/internal/cli"
	"github.com/moqgo/moq/internal/version"
	"github.com/moqgo/moq/moqnative"
)

const binaryName = "moq-bench"

// drainTimeout is how long a run waits, after the last object was
// published, for the subscribers to read everything; what is missing then
// is lost.
const drainTimeout = 3 * time.Second

// epoch is the common clock of every payload timestamp.
var epoch = time.Now()

// runSeq numbers the runs of this process (namespaces stay unique when
// one relay serves several runs).
var runSeq atomic.Int64

// params is one run's configuration.
type params struct {
	pubs, subs   int
	size         int
	rate         float64
	groupObjects int
	duration     time.Duration
	url          string // "" : in-process relay or --spawn-relay
	tls          moqnative.ClientTLS
	relayPID     int    // read this relay's /proc (0: none)
	metricsURL   string // the spawned relay's metrics server (goroutines, pprof)
	spawnRelay   string // moq-relay binary to start per run
	relayArgs    []string
	baseline     bool
	// subscriberKind is kindThin (raw QUIC, thin.go) or kindSession
	// (moq-go sessions) for the relay path's subscribers.
	subscriberKind string
	// clientSockets: the UDP sockets thin subscribers share (0: one
	// each).
	clientSockets int
	// keyExchange is the thin subscribers' TLS key exchange
	// (--tls-key-exchange): keyExchanges' keys.
	keyExchange string
	live        liveParams
	soakEvery   time.Duration // --soak: sample the relay's RSS this often
	soakWin     time.Duration // a --soak run: the windows compared (0: not a soak)
	soakWarmup  time.Duration // a --soak run: the time before the first window
	profileDir  string        // --profile: the relay's profiles go here
	logw        io.Writer     // progress and relay log lines
}

// Subscriber kinds of --subscriber-kind.
const (
	kindThin    = "thin"
	kindSession = "session"
)

// config is the command line.
type config struct {
	params
	objectSize    string
	fingerprints  []string
	disableVerify bool
	jsonOut       bool
	matrix        bool
	matrixFlag    bool // --matrix itself
	cells         []string
	runs          int
	join          int
	joinParallel  int
	soak          bool
	soakWindow    time.Duration
	soakWarmup    time.Duration
	stdout        io.Writer
	stderr        io.Writer
}

func main() {
	maybeOrigin()
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
		Short:         "Benchmark MoQT relay fan-out against a raw quic-go baseline (" + version.Draft + ")",
		Version:       version.String(binaryName),
		Args:          cobra.MaximumNArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				cfg.url = args[0]
			}
			cfg.stdout, cfg.stderr = cmd.OutOrStdout(), cmd.ErrOrStderr()
			return run(cmd.Context(), &cfg)
		},
	}
	f := root.Flags()
	f.IntVar(&cfg.pubs, "publishers", 1, "publishers (M), one session and one track each")
	f.IntVar(&cfg.subs, "subscribers", 10, "subscribers (N), one QUIC connection each, subscribed to every publisher")
	f.StringVar(&cfg.objectSize, "object-size", "1200", "object payload size: bytes, or 1KB/4KB/20KB (KB = 1024 bytes)")
	f.Float64Var(&cfg.rate, "rate", 30, "objects per second per publisher")
	f.IntVar(&cfg.groupObjects, "group-objects", 30, "objects per group; one group is one stream per subscriber")
	f.DurationVar(&cfg.duration, "duration", 10*time.Second, "publishing time of a run (each cell with --matrix)")
	f.BoolVar(&cfg.disableVerify, "tls-disable-verify", false, "do not verify the relay's certificate")
	f.StringArrayVar(&cfg.fingerprints, "fingerprint", nil, "accept the relay certificate whose SHA-256 is HEX; repeatable")
	f.IntVar(&cfg.relayPID, "relay-pid", 0, "pid of a local relay to read CPU and RSS of from /proc")
	f.StringVar(&cfg.spawnRelay, "spawn-relay", "", "start this moq-relay binary on a free loopback port for each run and measure it")
	f.StringArrayVar(&cfg.relayArgs, "relay-arg", nil, "pass this argument to the --spawn-relay binary too; repeatable (e.g. --relay-arg=--some-flag=value)")
	f.StringVar(&cfg.subscriberKind, "subscriber-kind", kindThin, "subscribers through the relay: thin (raw QUIC, the baseline's receive code: measures the relay) or session (full moq-go sessions and TrackReaders: tests the library end to end, costs CPU in this process)")
	f.IntVar(&cfg.clientSockets, "client-sockets", 0, "thin subscribers dial from this many UDP sockets, shared round robin (fewer file descriptors and goroutines in the bench, e.g. past its open-file limit; its CPU per subscriber was the same at 1,000 joins); 0: one socket each, like separate clients")
	f.StringVar(&cfg.keyExchange, "tls-key-exchange", kexX25519, "thin subscribers' TLS key exchange: x25519, p256, or hybrid (Go's default, X25519MLKEM768 with X25519, what current browsers offer: its ML-KEM part costs both ends more CPU per handshake and the ClientHello a second packet)")
	f.BoolVar(&cfg.baseline, "baseline", true, "also run the raw quic-go fan-out baseline and report ratios")
	f.BoolVar(&cfg.jsonOut, "json", false, "print JSON instead of text")
	f.IntVar(&cfg.join, "join", 0, "join mode: measure how long this many thin subscribers take to join one live track (--rate objects/s of --object-size) through the relay")
	f.IntVar(&cfg.joinParallel, "join-parallel", 100, "join mode: subscribers dialing at once")
	f.BoolVar(&cfg.soak, "soak", false, "soak mode: one fan-out (--subscribers, --rate, --object-size or one --cell) for --duration through a spawned relay, sampling its RSS every --soak-every; compares the mean RSS of the first --soak-window after --soak-warmup with the last one (flat: within 5%)")
	f.DurationVar(&cfg.soakEvery, "soak-every", 5*time.Second, "soak mode: RSS sampling interval")
	f.DurationVar(&cfg.soakWindow, "soak-window", time.Minute, "soak mode: the windows compared")
	f.DurationVar(&cfg.soakWarmup, "soak-warmup", 0, "soak mode: the time not compared, while the relay's track cache fills (0: the time the cache takes to fill, from --group-objects, the rate and the relay's --cache-max-groups, --cache-max-bytes and --cache-max-age, or their defaults; at least one --soak-window); --duration must be at least the warm-up and two windows")
	f.StringVar(&cfg.profileDir, "profile", "", "take a 10 s CPU profile, the live heap (after a GC) and the goroutines of the spawned relay in the middle of each relay run into this directory, and print the profiles' top 15 entries and the goroutines by owner; with --soak, the live heap (after a GC) at the end of the first --soak-window after warm-up and in the last one instead, and the top of their difference; with --join, the relay's and this process's CPU profiles over the first 5 s of the join (needs the go command)")
	f.IntVar(&cfg.runs, "runs", 1, "run each cell this many times (passes over all cells) and report each figure's median and min–max; more than 1 implies --matrix")
	f.BoolVar(&cfg.matrix, "matrix", false, "run fan-out 1:10, 1:100, 1:500 x 1KB, 4KB, 20KB and print a markdown table of ratios")
	f.StringArrayVar(&cfg.cells, "cell", nil, "matrix cell SUBSCRIBERS:MBPS:SIZE (e.g. 1000:1:4KB): one track of MBPS Mbit/s in SIZE objects; repeatable, implies --matrix and replaces its default cells")
	lf := &cfg.live
	f.IntVar(&lf.slow, "slow", 0, "live mode: slow viewers, each behind its own shaping proxy (--slow-mbps, --slow-queue-ms)")
	f.Float64Var(&lf.slowMbps, "slow-mbps", 1.5, "live mode: the slow viewers' downlink rate, Mbit/s")
	f.IntVar(&lf.slowQueueMs, "slow-queue-ms", 200, "live mode: the slow viewers' downlink queue, in ms at --slow-mbps (tail drop)")
	f.DurationVar(&lf.slowDelay, "slow-delay", 0, "live mode: one-way delay of the slow viewers' links, each way")
	f.Float64Var(&lf.slowLoss, "slow-loss", 0, "live mode: random loss of the slow viewers' downlinks, 0..1")
	f.DurationVar(&lf.deliveryTimeout, "delivery-timeout", 0, "live mode: DELIVERY TIMEOUT the slow and stalled viewers send in SUBSCRIBE (0: none)")
	f.StringVar(&lf.groupOrder, "group-order", "publisher", "live mode: group order the slow and stalled viewers ask for: publisher, asc or desc")
	f.IntVar(&lf.stalled, "stalled", 0, "live mode: viewers that never read one of their data streams (the second)")
	f.IntVar(&lf.keyRatio, "key-ratio", 1, "live mode: object 0 of each group (the key frame) is this many times larger")
	f.Float64Var(&lf.trackMbps, "track-mbps", 0, "live mode: size objects so that --rate of them carry this many Mbit/s (overrides --object-size; key frames add to it)")
	f.BoolVar(&lf.alone, "alone", true, "live mode: first run the fast viewers alone, to report their latency in company as a ratio")
	f.DurationVar(&lf.drain, "drain", drainTimeout, "live mode: how long viewers may catch up after publishing ends (the fast ones up to 3 s more)")
	f.BoolVar(&lf.webTransport, "webtransport", false, "live mode: viewers of an in-process or spawned relay use WebTransport (https://) instead of raw QUIC")
	f.DurationVar(&lf.progress, "progress", 5*time.Second, "live mode: print progress on stderr this often (0: never)")
	root.SetVersionTemplate("{{.Version}}\n")
	return root
}

// parseSize reads 1200, 1KB, 4kb, 20KB, 1MB.
func parseSize(s string) (int, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	mult := 1
	switch {
	case strings.HasSuffix(t, "KB"):
		mult, t = 1024, strings.TrimSuffix(t, "KB")
	case strings.HasSuffix(t, "MB"):
		mult, t = 1024*1024, strings.TrimSuffix(t, "MB")
	case strings.HasSuffix(t, "B"):
		t = strings.TrimSuffix(t, "B")
	}
	n, err := strconv.Atoi(strings.TrimSpace(t))
	if err != nil || n*mult < 8 || n*mult > 16<<20 {
		return 0, fmt.Errorf("--object-size %q: want bytes (at least 8) or a size such as 4KB", s)
	}
	return n * mult, nil
}

func run(ctx context.Context, cfg *config) error {
	size, err := parseSize(cfg.objectSize)
	if err != nil {
		return err
	}
	cfg.size = size
	live := cfg.live.slow > 0 || cfg.live.stalled > 0
	minSubs := 1
	if live {
		minSubs = 0 // the fast class may be empty
	}
	if cfg.pubs < 1 || cfg.subs < minSubs || cfg.rate <= 0 || cfg.groupObjects < 1 || cfg.duration <= 0 {
		return errors.New("--publishers, --subscribers, --rate, --group-objects and --duration must be positive")
	}
	if !live && (cfg.live.keyRatio != 1 || cfg.live.trackMbps != 0 || cfg.live.webTransport) {
		return errors.New("--key-ratio, --track-mbps and --webtransport belong to live mode: add --slow N or --stalled N")
	}
	cells, err := parseCells(cfg.cells)
	if err != nil {
		return err
	}
	cfg.matrixFlag = cfg.matrix
	if cfg.runs < 1 {
		return errors.New("--runs must be at least 1")
	}
	if (cfg.soak || cfg.join > 0) && cfg.runs > 1 {
		return errors.New("--runs repeats matrix cells: not with --soak or --join")
	}
	if (len(cells) > 0 || cfg.runs > 1) && !cfg.soak {
		cfg.matrix = true
	}
	if live && cfg.matrix {
		return errors.New("--matrix measures fan-out, not live viewers: drop --slow/--stalled or --matrix")
	}
	if cfg.url != "" && cfg.spawnRelay != "" {
		return errors.New("give a URL or --spawn-relay, not both")
	}
	if cfg.subscriberKind != kindThin && cfg.subscriberKind != kindSession {
		return fmt.Errorf("--subscriber-kind %q: want thin or session", cfg.subscriberKind)
	}
	if len(cfg.relayArgs) > 0 && cfg.spawnRelay == "" {
		return errors.New("--relay-arg needs --spawn-relay")
	}
	if cfg.profileDir != "" {
		if cfg.spawnRelay == "" {
			return errors.New("--profile needs --spawn-relay (it reads the spawned relay's pprof server)")
		}
		if err := os.MkdirAll(cfg.profileDir, 0o755); err != nil {
			return fmt.Errorf("--profile: %w", err)
		}
	}
	modes := 0
	for _, on := range []bool{live, cfg.matrix, cfg.join > 0, cfg.soak} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return errors.New("choose one mode: --matrix/--cell/--runs, --join, --soak, or live (--slow/--stalled)")
	}
	if _, ok := keyExchanges[cfg.keyExchange]; !ok {
		return fmt.Errorf("--tls-key-exchange %q: choose x25519, p256 or hybrid", cfg.keyExchange)
	}
	if cfg.join < 0 || cfg.joinParallel < 1 {
		return errors.New("--join and --join-parallel must be positive")
	}
	cfg.logw = cfg.stderr
	cfg.tls.InsecureSkipVerify = cfg.disableVerify
	for _, s := range cfg.fingerprints {
		b, err := cli.ParseFingerprint(s)
		if err != nil {
			return err
		}
		cfg.tls.ServerCertificateHashes = append(cfg.tls.ServerCertificateHashes, b)
	}
	if cfg.join > 0 {
		if cfg.url == "" && cfg.spawnRelay == "" {
			fmt.Fprintf(cfg.stderr, "%s: the relay runs in this process: its RSS and goroutines are not reported (use --spawn-relay)\n", binaryName)
		}
		res, err := runJoin(ctx, cfg.params, cfg.join, cfg.joinParallel, cfg.stderr)
		if err != nil {
			return err
		}
		if cfg.jsonOut {
			return writeJSON(cfg.stdout, res)
		}
		printJoin(cfg.stdout, res)
		return nil
	}
	if cfg.soak {
		return runSoak(ctx, cfg, cells)
	}
	if live {
		res, err := runLive(ctx, cfg.params, cfg.live, cfg.stderr)
		if err != nil {
			return err
		}
		if cfg.jsonOut {
			return writeJSON(cfg.stdout, res)
		}
		printLive(cfg.stdout, res)
		return nil
	}
	if !cfg.matrix {
		res, err := runOne(ctx, cfg.params, cfg.stderr)
		if err != nil {
			return err
		}
		if cfg.jsonOut {
			return writeJSON(cfg.stdout, res)
		}
		printResult(cfg.stdout, res)
		return nil
	}
	if len(cells) == 0 && len(cfg.cells) == 0 && !cfg.matrixFlag {
		// --runs N without cells: the one cell of the flags.
		cells = []cell{{subs: cfg.subs, size: cfg.size, rate: cfg.rate}}
	}
	if len(cells) == 0 {
		for _, n := range []int{10, 100, 500} {
			for _, sz := range []int{1024, 4096, 20480} {
				cells = append(cells, cell{subs: n, size: sz, rate: cfg.rate})
			}
		}
	}
	// Pass after pass over the cells: a drift of the machine's load
	// spreads over every cell instead of hitting one cell's runs.
	runs := make([][]*result, len(cells))
	for pass := range cfg.runs {
		for ci, c := range cells {
			p := cfg.params
			p.subs, p.size, p.rate = c.subs, c.size, c.rate
			fmt.Fprintf(cfg.stderr, "%s: run %d/%d: fan-out 1:%d, %d B objects at %.1f/s (%.2f Mbit/s)...\n",
				binaryName, pass+1, cfg.runs, c.subs, c.size, c.rate, c.mbps())
			res, err := runOne(ctx, p, cfg.stderr)
			if err != nil {
				return fmt.Errorf("fan-out 1:%d, %d B: %w", c.subs, c.size, err)
			}
			if !cfg.jsonOut {
				printResult(cfg.stderr, res)
			}
			runs[ci] = append(runs[ci], res)
		}
	}
	all := make([]*cellResult, len(cells))
	for i := range cells {
		all[i] = newCellResult(runs[i])
	}
	if cfg.jsonOut {
		return writeJSON(cfg.stdout, all)
	}
	printMatrix(cfg.stdout, all)
	return nil
}

// runSoak runs one fan-out for --duration through a spawned relay (or one
// whose --relay-pid is given) and reports whether its RSS stayed flat.
func runSoak(ctx context.Context, cfg *config, cells []cell) error {
	p := cfg.params
	if len(cells) > 1 {
		return errors.New("--soak runs one fan-out: give at most one --cell")
	}
	if len(cells) == 1 {
		p.subs, p.size, p.rate = cells[0].subs, cells[0].size, cells[0].rate
	}
	if p.spawnRelay == "" && p.relayPID == 0 {
		return errors.New("--soak reads the relay's RSS: give --spawn-relay PATH (or a URL and --relay-pid)")
	}
	warmup, why := cfg.soakWarmup, "given"
	if warmup <= 0 {
		fill := cacheFillTime(p, cfg.relayArgs).Round(time.Second)
		warmup, why = max(cfg.soakWindow, fill), fmt.Sprintf("the relay's track cache fills in %s", fill)
	}
	if cfg.soakEvery <= 0 || cfg.soakWindow < cfg.soakEvery || p.duration < warmup+2*cfg.soakWindow {
		return fmt.Errorf("--soak: --duration (%s) must be at least the warm-up (%s: %s) and two --soak-window (%s), each at least one --soak-every (%s)", p.duration, warmup, why, cfg.soakWindow, cfg.soakEvery)
	}
	p.baseline = false
	p.soakWin, p.soakWarmup = cfg.soakWindow, warmup
	fmt.Fprintf(cfg.stderr, "%s: soak: fan-out 1:%d, %d B objects at %.1f/s for %s, relay RSS every %s; warm-up %s (%s)...\n",
		binaryName, p.subs, p.size, p.rate, p.duration, p.soakEvery, warmup, why)
	res, err := runOne(ctx, p, cfg.stderr)
	if err != nil {
		return err
	}
	sum, err := summarizeSoak(res.Moq.series, warmup, cfg.soakWindow, p.duration.Seconds())
	if err != nil {
		return err
	}
	sr := &soakResult{result: res, Soak: sum}
	if cfg.jsonOut {
		if err := writeJSON(cfg.stdout, sr); err != nil {
			return err
		}
	} else {
		printSoak(cfg.stdout, sr)
	}
	if !sum.Flat {
		return fmt.Errorf("relay RSS not flat: %+.1f%% from the first window after warm-up to the last", 100*sum.Change)
	}
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// cell is one matrix cell: a fan-out of one track.
type cell struct {
	subs int
	size int
	rate float64 // objects per second
}

func (c cell) mbps() float64 { return c.rate * float64(c.size) * 8 / 1e6 }

// parseCells reads --cell SUBSCRIBERS:MBPS:SIZE values.
func parseCells(specs []string) ([]cell, error) {
	var cells []cell
	for _, spec := range specs {
		parts := strings.Split(spec, ":")
		if len(parts) != 3 {
			return nil, fmt.Errorf("--cell %q: want SUBSCRIBERS:MBPS:SIZE, such as 1000:1:4KB", spec)
		}
		subs, err := strconv.Atoi(parts[0])
		if err != nil || subs < 1 {
			return nil, fmt.Errorf("--cell %q: subscribers must be a positive integer", spec)
		}
		mbps, err := strconv.ParseFloat(parts[1], 64)
		if err != nil || !(mbps > 0) || mbps > 100_000 {
			return nil, fmt.Errorf("--cell %q: Mbit/s must be a positive number", spec)
		}
		size, err := parseSize(parts[2])
		if err != nil {
			return nil, fmt.Errorf("--cell %q: %w", spec, err)
		}
		cells = append(cells, cell{subs: subs, size: size, rate: mbps * 1e6 / 8 / float64(size)})
	}
	return cells, nil
}
