package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Relay is a moq-relay child process serving on free loopback ports, with
// its metrics and pprof on a TCP port of their own.
type Relay struct {
	URL        string // moqt://127.0.0.1:port/
	MetricsURL string // http://127.0.0.1:port
	PID        int

	cmd  *exec.Cmd
	done chan struct{}

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

// freePort returns a loopback port free at the time of the call.
func freePort(network string) (int, error) {
	if network == "udp" {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// SpawnRelay starts the moq-relay binary bin with extra arguments and
// waits until it serves (it inherits this process's niceness). Its warnings and
// errors are copied to logw.
func SpawnRelay(ctx context.Context, bin string, extra []string, logw io.Writer) (*Relay, error) {
	up, err := freePort("udp")
	if err != nil {
		return nil, err
	}
	tp, err := freePort("tcp")
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(up)
	maddr := "127.0.0.1:" + strconv.Itoa(tp)
	args := append([]string{"--bind", addr, "--metrics-addr", maddr, "--pprof", "--log-level", "info", "--drain-timeout", "1s"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	r := &Relay{URL: "moqt://" + addr + "/", MetricsURL: "http://" + maddr, PID: cmd.Process.Pid, cmd: cmd, done: make(chan struct{})}
	ready := make(chan struct{})
	var tail []string
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		serving := false
		for sc.Scan() {
			line := sc.Text()
			if !serving {
				tail = append(tail, line)
				// The metrics server starts after the relay: the
				// relay is ready once it serves.
				if strings.Contains(line, "metrics serving") {
					serving = true
					close(ready)
				}
			} else if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
				if r.countLog(line) <= printedLogLines && strings.Contains(line, "level=ERROR") {
					fmt.Fprintf(logw, "moq-relay: %s\n", line)
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		if !serving {
			close(ready)
		}
	}()
	select {
	case <-ready:
	case <-time.After(15 * time.Second):
	case <-ctx.Done():
	}
	select {
	case <-r.done:
		_ = cmd.Wait()
		return nil, fmt.Errorf("%s exited before serving: %s", bin, strings.Join(tail, "\n"))
	default:
	}
	if ctx.Err() != nil {
		r.Stop()
		return nil, ctx.Err()
	}
	return r, nil
}

// Stop interrupts the relay (it drains), kills it after 5 s, and waits.
func (r *Relay) Stop() {
	_ = r.cmd.Process.Signal(os.Interrupt)
	t := time.AfterFunc(5*time.Second, func() { _ = r.cmd.Process.Kill() })
	<-r.done
	_ = r.cmd.Wait()
	t.Stop()
}
