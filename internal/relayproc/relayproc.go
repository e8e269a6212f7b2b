// Package relayproc starts a moq-relay binary as a child process on free
// loopback ports, for the load tools (moq-bench, moq-soak) that measure a
// relay from outside: its CPU and memory are then its own, read from /proc.
package relayproc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Options says how to start the relay.
type Options struct {
	// Args are passed after the ones Start sets (--bind, --log-level,
	// --drain-timeout, and with Metrics --metrics-addr and --pprof); a
	// later flag overrides an earlier one.
	Args []string
	// Metrics starts the relay's metrics server (with pprof) on a free
	// loopback TCP port, unless Args give --metrics-addr themselves.
	Metrics bool
	// Log, when set, gets every WARN and ERROR line the relay writes once
	// it serves. It runs on the goroutine that reads the relay's stderr:
	// it must not block for long.
	Log func(line string)
	// ReadyTimeout bounds the wait for the relay to serve (default 15 s).
	ReadyTimeout time.Duration
}

// Relay is a running moq-relay child process.
type Relay struct {
	URL        string // moqt://127.0.0.1:port/
	MetricsURL string // http://127.0.0.1:port, "" without a metrics server
	PID        int

	cmd  *exec.Cmd
	done chan struct{} // the stderr reader ended
}

// FreePort returns a loopback port ("udp" or "tcp") free at the time of
// the call.
func FreePort(network string) (int, error) {
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

// flagValue returns the value of --name=V or --name V in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

// Start starts the moq-relay binary bin and waits until it serves: its
// "relay serving" log line, or "metrics serving" when it has a metrics
// server (that one starts after the relay). The child inherits this
// process's niceness. Stop ends it.
func Start(ctx context.Context, bin string, o Options) (*Relay, error) {
	up, err := FreePort("udp")
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(up)
	args := []string{"--bind", addr, "--log-level", "info", "--drain-timeout", "1s"}
	r := &Relay{URL: "moqt://" + addr + "/", done: make(chan struct{})}
	readyLine := "relay serving"
	if maddr, ok := flagValue(o.Args, "metrics-addr"); ok {
		r.MetricsURL, readyLine = "http://"+maddr, "metrics serving"
	} else if o.Metrics {
		tp, err := FreePort("tcp")
		if err != nil {
			return nil, err
		}
		maddr := "127.0.0.1:" + strconv.Itoa(tp)
		args = append(args, "--metrics-addr", maddr, "--pprof")
		r.MetricsURL, readyLine = "http://"+maddr, "metrics serving"
	}
	r.cmd = exec.Command(bin, append(args, o.Args...)...)
	r.cmd.Env = append(os.Environ(), "QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING=true")
	stderr, err := r.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting relay %s: %w", bin, err)
	}
	r.PID = r.cmd.Process.Pid
	ready := make(chan struct{})
	var tail []string // the lines before ready, read after r.done
	go func() {
		defer close(r.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		serving := false
		for sc.Scan() {
			line := sc.Text()
			if !serving {
				tail = append(tail, line)
				if strings.Contains(line, readyLine) {
					serving = true
					close(ready)
				}
			} else if o.Log != nil && (strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN")) {
				o.Log(line)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	wait := o.ReadyTimeout
	if wait <= 0 {
		wait = 15 * time.Second
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	// ready is closed only at the ready line; r.done when stderr ends.
	select {
	case <-ready:
	case <-r.done:
	case <-t.C:
	case <-ctx.Done():
	}
	select {
	case <-ready:
	default:
		select {
		case <-r.done: // exited before serving
			_ = r.cmd.Wait()
			return nil, fmt.Errorf("relay %s exited before serving: %s", bin, strings.Join(tail, "\n"))
		default:
		}
		r.Stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("relay %s did not log %q within %s", bin, readyLine, wait)
	}
	return r, nil
}

// Stop interrupts the relay (it drains), kills it after 5 s, and waits for
// it to exit.
func (r *Relay) Stop() {
	_ = r.cmd.Process.Signal(os.Interrupt)
	t := time.AfterFunc(5*time.Second, func() { _ = r.cmd.Process.Kill() })
	<-r.done
	_ = r.cmd.Wait()
	t.Stop()
}
