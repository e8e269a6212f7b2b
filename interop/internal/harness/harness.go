// Package harness builds moq-go's binaries from the repository root and runs
// them as child processes for the interop tests: moq-relay on a loopback
// port, and moq-clock as a publisher or a subscriber.
//
// The interop module is built with GOWORK=off against its own go.mod (the
// peers it tests pin older quic-go releases than moq-go uses), so it cannot
// import moq-go's packages; it talks to moq-go only over loopback, through
// the binaries. Build compiles them once per test binary with the root
// module's own go.mod (GOWORK=off), so the root keeps its current quic-go.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RootModule is the module path of moq-go, whose binaries are built.
const RootModule = "github.com/moqgo/moq"

// Binaries are the paths of the built moq-go binaries.
type Binaries struct {
	Relay string // moq-relay
	Clock string // moq-clock
	// TestClient is moq-test-client; it is "" when the repository has no
	// cmd/moq-test-client, and TestClientErr says why when it did not
	// build (moq-relay and moq-clock do not depend on it).
	TestClient    string
	TestClientErr error
}

var (
	buildOnce sync.Once
	buildDir  string
	built     Binaries
	buildErr  error
)

// Build compiles moq-relay and moq-clock (and moq-test-client, when the
// repository has it) from the root module into a temporary directory, once
// per process. Call Cleanup from TestMain to remove the directory.
func Build() (Binaries, error) {
	buildOnce.Do(func() { built, buildErr = build() })
	return built, buildErr
}

// Cleanup removes what Build made.
func Cleanup() {
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
}

// MustBuild is Build for a test: it fails the test when the build did.
func MustBuild(t testing.TB) Binaries {
	t.Helper()
	b, err := Build()
	if err != nil {
		t.Fatalf("building moq-go's binaries: %v", err)
	}
	return b
}

func build() (Binaries, error) {
	root, err := FindRoot()
	if err != nil {
		return Binaries{}, err
	}
	buildDir, err = os.MkdirTemp("", "moq-interop-bin-")
	if err != nil {
		return Binaries{}, err
	}
	if err := goBuild(root, "./cmd/moq-relay", "./cmd/moq-clock"); err != nil {
		return Binaries{}, err
	}
	b := Binaries{
		Relay: filepath.Join(buildDir, "moq-relay"),
		Clock: filepath.Join(buildDir, "moq-clock"),
	}
	if st, err := os.Stat(filepath.Join(root, "cmd", "moq-test-client")); err == nil && st.IsDir() {
		if b.TestClientErr = goBuild(root, "./cmd/moq-test-client"); b.TestClientErr == nil {
			b.TestClient = filepath.Join(buildDir, "moq-test-client")
		}
	}
	return b, nil
}

// goBuild runs "go build -o buildDir/ pkgs..." in the root module with
// GOWORK=off, so that it builds against the root's own go.mod.
func goBuild(root string, pkgs ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"build", "-o", buildDir + string(os.PathSeparator)}, pkgs...)
	cmd := exec.CommandContext(ctx, goTool(), args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("GOWORK=off go %s (in %s): %v\n%s", strings.Join(args, " "), root, err, out)
	}
	return nil
}

// goTool is the go command of the toolchain running the tests.
func goTool() string {
	if p := filepath.Join(runtime.GOROOT(), "bin", "go"); fileExists(p) {
		return p
	}
	return "go"
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// FindRoot returns the directory of moq-go's go.mod: the first parent of
// the working directory whose go.mod declares RootModule.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == RootModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no parent directory holds the go.mod of %s", RootModule)
		}
		dir = parent
	}
}

func modulePath(gomod []byte) string {
	for _, line := range strings.Split(string(gomod), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// Proc is a running child process whose stdout lines and stderr are
// collected.
type Proc struct {
	Name string
	cmd  *exec.Cmd

	mu     sync.Mutex
	lines  []string // stdout, one entry a line
	stderr bytes.Buffer
	newOut chan struct{} // closed and replaced when stdout or stderr grows

	done    chan struct{} // closed once the process has exited
	waitErr error
}

// Start runs bin with args. When the test ends it stops the process
// (SIGTERM, then SIGKILL after 3 s) and logs its output if the test failed,
// or always with the environment variable MOQ_INTEROP_LOG set.
func Start(t testing.TB, name, bin string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, newOut: make(chan struct{}), done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.SysProcAttr = procAttr()
	p.cmd.Env = append(os.Environ(), "TLS_DISABLE_VERIFY=")
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.lines = append(p.lines, sc.Text())
			p.notifyLocked()
			p.mu.Unlock()
		}
	}()
	go func() {
		defer readers.Done()
		buf := make([]byte, 4096)
		for {
			n, err := stderr.Read(buf)
			if n > 0 {
				p.mu.Lock()
				p.stderr.Write(buf[:n])
				p.notifyLocked()
				p.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		readers.Wait() // cmd.Wait closes the pipes: read them first
		err := p.cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.notifyLocked()
		p.mu.Unlock()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.Stop(3 * time.Second)
		if t.Failed() || os.Getenv("MOQ_INTEROP_LOG") != "" {
			t.Logf("%s %s\n--- stdout:\n%s\n--- stderr:\n%s", name, strings.Join(args, " "), strings.Join(p.Lines(), "\n"), p.Stderr())
		}
	})
	return p
}

func (p *Proc) notifyLocked() {
	close(p.newOut)
	p.newOut = make(chan struct{})
}

// Lines returns the stdout lines so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Stderr returns the stderr output so far.
func (p *Proc) Stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// WaitFor waits until cond, called with the stdout lines and the stderr
// so far, returns true. It fails when ctx ends first or the process exits
// without cond holding.
func (p *Proc) WaitFor(ctx context.Context, what string, cond func(lines []string, stderr string) bool) error {
	for {
		p.mu.Lock()
		ok := cond(p.lines, p.stderr.String())
		ch := p.newOut
		p.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-p.done:
			p.mu.Lock()
			ok := cond(p.lines, p.stderr.String())
			p.mu.Unlock()
			if ok {
				return nil
			}
			return fmt.Errorf("%s exited (%v) before %s", p.Name, p.waitErr, what)
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %s: %w", p.Name, what, ctx.Err())
		}
	}
}

// WaitStderr waits until stderr matches re, and returns the match's
// submatches.
func (p *Proc) WaitStderr(ctx context.Context, re *regexp.Regexp) ([]string, error) {
	var m []string
	err := p.WaitFor(ctx, fmt.Sprintf("a log line matching %q", re), func(_ []string, stderr string) bool {
		m = re.FindStringSubmatch(stderr)
		return m != nil
	})
	return m, err
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the process to exit, up to ctx, and returns its exit error
// (nil for status 0).
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.waitErr
	case <-ctx.Done():
		return fmt.Errorf("%s did not exit: %w", p.Name, ctx.Err())
	}
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stop sends SIGTERM, waits up to grace for the process to exit, and kills
// it otherwise. It returns the exit error of a process that exited in time.
func (p *Proc) Stop(grace time.Duration) error {
	if p.Exited() {
		return p.waitErr
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = p.cmd.Process.Kill()
	}
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %v of SIGTERM: killed", p.Name, grace)
	}
}

// Relay is a running moq-relay.
type Relay struct {
	*Proc
	// Addr is the UDP address it serves raw QUIC and WebTransport on.
	Addr *net.UDPAddr
	// Fingerprint is the SHA-256 of its self-signed certificate, in hex.
	Fingerprint string
}

var (
	servingRE     = regexp.MustCompile(`msg="relay serving" addr=(\S+)`)
	fingerprintRE = regexp.MustCompile(`fingerprint=([0-9a-f]{64})`)
)

// StartRelay starts moq-relay on a free loopback port (--bind
// 127.0.0.1:0; the port is read back from its "relay serving" log line)
// with its generated self-signed certificate.
func StartRelay(t testing.TB, bins Binaries, extra ...string) *Relay {
	t.Helper()
	args := append([]string{"--bind", "127.0.0.1:0", "--drain-timeout", "500ms", "--log-level", "debug"}, extra...)
	p := Start(t, "moq-relay", bins.Relay, args...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := p.WaitStderr(ctx, servingRE)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := net.ResolveUDPAddr("udp", m[1])
	if err != nil {
		t.Fatalf("relay address %q: %v", m[1], err)
	}
	r := &Relay{Proc: p, Addr: addr}
	if fp := fingerprintRE.FindStringSubmatch(p.Stderr()); fp != nil {
		r.Fingerprint = fp[1]
	}
	return r
}

// QUICURL is the relay's raw QUIC URL, moqt://127.0.0.1:port/.
func (r *Relay) QUICURL() string { return fmt.Sprintf("moqt://%s/", r.Addr) }

// WebTransportURL is the relay's WebTransport URL, https://127.0.0.1:port/.
func (r *Relay) WebTransportURL() string { return fmt.Sprintf("https://%s/", r.Addr) }

// Clock runs moq-clock with args and the URL last; it accepts the server's
// certificate without verifying it (the relay's is self-signed).
func Clock(t testing.TB, bins Binaries, url string, args ...string) *Proc {
	t.Helper()
	name := "moq-clock"
	for _, a := range args {
		if a == "--publish" {
			name = "moq-clock --publish"
		}
	}
	all := append([]string{"--tls-disable-verify", "--log-level", "debug"}, args...)
	return Start(t, name, bins.Clock, append(all, url)...)
}
