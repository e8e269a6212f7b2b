package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSubStdoutTerminal: with stdout a terminal moq-sub does not write
// binary media to it: it fails at once with the pipeline to run.
func TestSubStdoutTerminal(t *testing.T) {
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer pty.Close()
	var errOut bytes.Buffer
	cmd := newRootCommand(config{initTimeout: time.Second})
	cmd.SetOut(pty)
	cmd.SetErr(&errOut)
	// No relay listens there: the check comes before connecting.
	cmd.SetArgs([]string{"--name", "live/demo", "moqt://127.0.0.1:9/"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	if err == nil || !strings.Contains(err.Error(), "stdout is a terminal") ||
		!strings.Contains(err.Error(), "moq-sub --name live/demo moqt://127.0.0.1:9/ | ffplay -") {
		t.Fatalf("err = %v, want the terminal refused with the ffplay pipeline", err)
	}
}
