package soak

import (
	"context"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"

	"github.com/moqgo/moq/internal/relayproc"
)

// Relay is a moq-relay child process serving on free loopback ports, with
// its metrics and pprof on a TCP port of their own.
type Relay struct {
	URL        string // moqt://127.0.0.1:port/
	MetricsURL string // http://127.0.0.1:port
	PID        int

	proc *relayproc.Relay

	mu   sync.Mutex
	logs map[string]int64 // warnings and errors by level and msg
	nlog int64
}

// printedLogLines bounds the relay's error lines copied as they come;
// every warning and error is counted (LogCounts).
const printedLogLines = 20

// countLog counts a warning or error line by its level and msg and
// returns how many such lines came so far.
func (r *Relay) countLog(line string) int64 {
	level := "WARN"
	if strings.Contains(line, "level=ERROR") {
		level = "ERROR"
	}
	msg := line
	if i := strings.Index(line, "msg="); i >= 0 {
		msg = line[i+4:]
		if strings.HasPrefix(msg, "\"") {
			if j := strings.Index(msg[1:], "\""); j >= 0 {
				msg = msg[1 : j+1]
			}
		} else if j := strings.IndexByte(msg, ' '); j >= 0 {
			msg = msg[:j]
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logs == nil {
		r.logs = map[string]int64{}
	}
	r.logs[level+" "+msg]++
	r.nlog++
	return r.nlog
}

// LogCounts returns the relay's warnings and errors so far, by level and
// message.
func (r *Relay) LogCounts() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.logs)
}

// SpawnRelay starts the moq-relay binary bin with extra arguments, with
// its metrics and pprof on a free loopback port, and waits until it serves
// (it inherits this process's niceness). Its warnings and errors are
// counted (LogCounts); the first errors are copied to logw.
func SpawnRelay(ctx context.Context, bin string, extra []string, logw io.Writer) (*Relay, error) {
	r := &Relay{}
	p, err := relayproc.Start(ctx, bin, relayproc.Options{
		Args:    extra,
		Metrics: true,
		Log: func(line string) {
			if r.countLog(line) <= printedLogLines && strings.Contains(line, "level=ERROR") {
				fmt.Fprintf(logw, "moq-relay: %s\n", line)
			}
		},
	})
	if err != nil {
		return nil, err
	}
	r.proc, r.URL, r.MetricsURL, r.PID = p, p.URL, p.MetricsURL, p.PID
	return r, nil
}

// Stop interrupts the relay (it drains), kills it after 5 s, and waits.
func (r *Relay) Stop() { r.proc.Stop() }
