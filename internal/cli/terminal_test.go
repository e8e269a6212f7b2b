package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// openPTY opens a pseudo-terminal's master side, a terminal as moq-pub's
// stdin or moq-sub's stdout would be, or skips the test.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	f, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// TestIsTerminal: a terminal is one; a pipe, a file, /dev/null and a
// value that is not a file are not.
func TestIsTerminal(t *testing.T) {
	if !IsTerminal(openPTY(t)) {
		t.Error("a pseudo-terminal is not a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "out.mp4"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	var nilFile *os.File
	for name, f := range map[string]any{"pipe reader": r, "pipe writer": w, "/dev/null": null, "file": file, "buffer": &bytes.Buffer{}, "nil file": nilFile} {
		if IsTerminal(f) {
			t.Errorf("%s is taken for a terminal", name)
		}
	}
}
