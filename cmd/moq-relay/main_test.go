package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/moqgo/moq/internal/version"
)

// execute runs the moq-relay command with args and returns what it wrote to
// stdout and stderr.
func execute(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCommand()
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

func TestRelayVersion(t *testing.T) {
	want := "moq-relay " + version.Version + " (moq-go, draft-ietf-moq-transport-14)\n"
	for _, args := range [][]string{{"--version"}, {"version"}} {
		stdout, stderr, err := execute(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if stdout != want {
			t.Errorf("%v: stdout = %q, want %q", args, stdout, want)
		}
		if !strings.Contains(stdout, version.Version) || !strings.Contains(stdout, version.Draft) {
			t.Errorf("%v: stdout %q lacks version %q or draft %q", args, stdout, version.Version, version.Draft)
		}
		if stderr != "" {
			t.Errorf("%v: unexpected stderr %q", args, stderr)
		}
	}
}

func TestRelayNoArgsSaysNotImplemented(t *testing.T) {
	stdout, stderr, err := execute(t)
	if err != nil {
		t.Fatalf("no args: %v", err)
	}
	if !strings.Contains(stdout, version.Version) || !strings.Contains(stdout, version.Draft) {
		t.Errorf("stdout %q lacks version %q or draft %q", stdout, version.Version, version.Draft)
	}
	if !strings.Contains(stderr, "not implemented yet") {
		t.Errorf("stderr %q does not say the relay is not implemented yet", stderr)
	}
}

func TestRelayRejectsArgs(t *testing.T) {
	if _, _, err := execute(t, "extra"); err == nil {
		t.Fatal("unexpected positional argument was accepted")
	}
}
