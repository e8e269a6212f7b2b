package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/moqgo/moq/moqnative"
	"github.com/moqgo/moq/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runCLI(args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := newRootCommand()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func TestBadArguments(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--relay-pid", "1"}, "give its URL too"},
		{[]string{"moqt://127.0.0.1:1/", "--spawn-relay", "/bin/false"}, "not both"},
		{[]string{"moqt://127.0.0.1:1/", "--fingerprint", "zz"}, "64 hex digits"},
		{[]string{"ftp://x/"}, "URL"},
		{[]string{"--spawn-relay", "/nonexistent/moq-relay"}, "/nonexistent/moq-relay"},
	} {
		_, _, err := runCLI(c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("moq-soak %v: %v, want an error naming %q", c.args, err, c.want)
		}
	}
}

// A one-second soak of a relay in this process, given by URL, pid and
// metrics URL: the table and summary print, and a goroutine budget below
// what the relay runs fails the command.
func TestSoakURLWithBudget(t *testing.T) {
	srv, err := moqnative.Listen("127.0.0.1:0", moqnative.ServerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := srv.Fingerprint()
	rs := relay.NewServer(relay.New(relay.Config{}), srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rs.Serve(ctx)
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: relay.OpsHandler(rs, true), ReadHeaderTimeout: 5 * time.Second}
	hdone := make(chan struct{})
	go func() {
		defer close(hdone)
		_ = hs.Serve(ln)
	}()
	defer func() {
		_ = hs.Close()
		<-hdone
		cancel()
		rs.Close()
		_ = srv.Close()
		<-done
	}()
	out, _, err := runCLI(fmt.Sprintf("moqt://%s/", srv.Addr()), "--fingerprint", hex.EncodeToString(fp[:]),
		"--relay-pid", strconv.Itoa(os.Getpid()), "--metrics-url", "http://"+ln.Addr().String(),
		"--duration", "1s", "--sample", "250ms", "--publishers", "1", "--subscribers", "1",
		"--hostile-workers", "1", "--scale", "2", "--max-goroutines", "1")
	if err == nil || !strings.Contains(err.Error(), "budget exceeded: goroutines") {
		t.Errorf("err %v, want the goroutine budget exceeded", err)
	}
	for _, want := range []string{"gorout", "summary over", "goroutines", "delivered and verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output has no %q:\n%s", want, out)
		}
	}
}
