package main

import (
	"os"
	"strings"
	"testing"
)

// TestPubStdinTerminal: with stdin a terminal moq-pub does not wait for
// input nobody types: it fails at once with the pipeline to run.
func TestPubStdinTerminal(t *testing.T) {
	pty, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer pty.Close()
	// No relay listens there: the check comes before connecting.
	_, _, err = execute(t, pty, "--name", "live/demo", "moqt://127.0.0.1:9/")
	if err == nil || !strings.Contains(err.Error(), "stdin is a terminal: pipe fragmented MP4 into moq-pub") ||
		!strings.Contains(err.Error(), "-movflags cmaf+separate_moof+delay_moov+skip_trailer+frag_every_frame - | moq-pub --name live/demo moqt://127.0.0.1:9/") {
		t.Fatalf("err = %v, want the terminal refused with the ffmpeg pipeline", err)
	}
	if exitCode(err) != exitBadInput {
		t.Errorf("exit status %d, want %d", exitCode(err), exitBadInput)
	}
}
