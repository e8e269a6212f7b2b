package main

import (
	"fmt"
	"io"
)

func optF(v *float64, format string) string {
	if v == nil {
		return "n/a"
	}
	return fmt.Sprintf(format, *v)
}

func printResult(w io.Writer, r *result) {
	fmt.Fprintf(w, "%d publisher(s) x %d subscribers, %d B objects at %g/s per publisher, %d objects/group, %s; relay: %s\n",
		r.Publishers, r.Subscribers, r.ObjectSize, r.Rate, r.GroupObjects, r.Duration, r.Relay)
	fmt.Fprintf(w, "%-9s %9s %9s %9s %9s %9s %9s %11s %11s %11s %9s %9s %7s %8s\n",
		"path", "MB/s", "p50 ms", "p99 ms", "max ms", "received", "lost", "bench s/GB", "server s/GB", "total s/GB", "bench MB", "server MB", "setup s", "pkts/obj")
	for _, p := range []*pathResult{r.Moq, r.Baseline} {
		if p == nil {
			continue
		}
		fmt.Fprintf(w, "%-9s %9.3f %9.2f %9.2f %9.2f %9d %9d %11.1f %11s %11.1f %9.0f %9s %7.1f %8s\n",
			p.Path, p.MBps, p.P50ms, p.P99ms, p.MaxMs, p.Received, p.Lost, p.BenchCPUPerGB,
			optF(p.ServerCPUPerGB, "%.1f"), p.TotalCPUPerGB, p.BenchPeakRSSMB, optF(p.ServerPeakRSSMB, "%.0f"), p.SetupSeconds,
			optF(p.PacketsPerObject, "%.2f"))
		if p.Skipped > 0 || p.Bad > 0 || p.Error != "" {
			fmt.Fprintf(w, "  %s: skipped %d, bad %d %s\n", p.Path, p.Skipped, p.Bad, p.Error)
		}
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintf(w, "moq-go / raw-quic: MB/s %s, p50 %s, p99 %s, max %s, total CPU/GB %s\n",
			ratioS(r.Ratios, "mb_per_s"), ratioS(r.Ratios, "p50"), ratioS(r.Ratios, "p99"),
			ratioS(r.Ratios, "max"), ratioS(r.Ratios, "total_cpu_per_gb"))
	}
	if r.Moq != nil && r.Moq.Lost > 0 {
		fmt.Fprintf(w, "WARNING: moq-go lost %d of %d objects: the relay or the clients could not keep up\n", r.Moq.Lost, r.Moq.Expected)
	}
	if r.Baseline != nil && r.Baseline.Lost > 0 {
		fmt.Fprintf(w, "WARNING: raw-quic lost %d of %d objects: the machine could not keep up\n", r.Baseline.Lost, r.Baseline.Expected)
	}
	fmt.Fprintln(w)
}

func ratioS(m map[string]float64, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprintf("%.2fx", v)
	}
	return "n/a"
}

// printLive prints a live-mode result: the track, the slow link, then one
// row per class.
func printLive(w io.Writer, r *liveResult) {
	fmt.Fprintf(w, "live track: %g objects/s, %d per group, %d B objects, key frame (object 0) %d B: %.2f Mbit/s; %s, %d groups; relay: %s (%s)\n",
		r.Rate, r.GroupObjects, r.ObjectSize, r.KeySize, r.TrackMbps, r.Duration, r.Groups, r.Relay, r.Transport)
	if r.SlowMbps > 0 {
		fmt.Fprintf(w, "slow links: %g Mbit/s down, queue %d B, delay %g ms, loss %g\n", r.SlowMbps, r.SlowQueueBytes, r.SlowDelayMs, r.SlowLoss)
	}
	dt := r.DeliveryTimeout
	if dt == "" {
		dt = "none"
	}
	fmt.Fprintf(w, "slow and stalled SUBSCRIBE: delivery timeout %s, group order %s\n", dt, r.GroupOrder)
	fmt.Fprintf(w, "%-13s %3s %17s %15s %9s %9s %17s %8s %8s %8s %11s\n",
		"class", "n", "objects", "key frames", "lag p50 s", "lag max s", "streams reset", "p50 ms", "p99 ms", "max ms", "link useful")
	for _, c := range r.Classes {
		useful := "-"
		if c.LinkBytes > 0 {
			useful = fmt.Sprintf("%.0f%%", pct(c.PayloadBytes, c.LinkBytes))
		}
		fmt.Fprintf(w, "%-13s %3d %9d %6.1f%% %7d/%-4d%3.0f%% %9.2f %9.2f %7d/%-5d%3.0f%% %8.1f %8.1f %8.1f %11s\n",
			c.Class, c.Viewers, c.Received, pct(c.Received, c.Expected), c.KeyFrames, c.Groups, pct(c.KeyFrames, c.Groups),
			c.LagP50ms/1000, c.LagMaxms/1000, c.StreamsReset, c.Streams, pct(c.StreamsReset, c.Streams), c.P50ms, c.P99ms, c.MaxMs, useful)
		if c.Class == classStalled {
			if c.StalledViewers > 0 {
				fmt.Fprintf(w, "  %s: %d viewer(s) stalled a stream at %.1fs; key frames of later groups: %d of %d (%.0f%%)\n",
					c.Class, c.StalledViewers, c.StalledAtSecs, c.LaterKeys, c.LaterGroups, pct(c.LaterKeys, c.LaterGroups))
			} else {
				fmt.Fprintf(w, "  %s: no stream stalled: fewer than %d data streams arrived\n", c.Class, stallStream)
			}
		}
		if c.LagGrowthMax > 0.05 {
			fmt.Fprintf(w, "  %s: fell behind live by %.2f s every second of the second half (p50; max %.2f)\n", c.Class, c.LagGrowthP50, c.LagGrowthMax)
		}
		if c.LinkDropped > 0 {
			fmt.Fprintf(w, "  %s: the links' queues dropped %d packets\n", c.Class, c.LinkDropped)
		}
		if c.Bad > 0 || c.Skipped > 0 {
			fmt.Fprintf(w, "  %s: %d bad objects, %d skips\n", c.Class, c.Bad, c.Skipped)
		}
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintf(w, "fast viewers' latency in company / alone: p50 %s, p99 %s, max %s\n",
			ratioS(r.Ratios, "p50"), ratioS(r.Ratios, "p99"), ratioS(r.Ratios, "max"))
	}
	if r.RelayPeakRSSMB != nil {
		fmt.Fprintf(w, "peak RSS in company: bench %.0f MB, relay %.0f MB\n", r.BenchPeakRSSMB, *r.RelayPeakRSSMB)
	} else {
		fmt.Fprintf(w, "peak RSS in company: bench %.0f MB (relay not measured)\n", r.BenchPeakRSSMB)
	}
	fmt.Fprintln(w)
}

func pct(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return 100 * float64(a) / float64(b)
}
