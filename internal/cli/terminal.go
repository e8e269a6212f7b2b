package cli

import (
	"io/fs"
	"os"
)

// IsTerminal reports whether f (stdin or stdout) is a terminal rather than
// a pipe or a file: moq-pub's input and moq-sub's output are fragmented
// MP4, which a terminal neither types nor shows. A value that is not an
// *os.File (a test's buffer) is not one.
func IsTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok || file == nil {
		return false
	}
	fi, err := file.Stat()
	if err != nil {
		return false
	}
	null, _ := os.Stat(os.DevNull)
	return isTerminal(fi, null)
}

// isTerminal: a character device other than the null device (the only one
// that stands for a pipe's end: moq-sub >/dev/null is a fine way to test a
// broadcast). null may be nil.
func isTerminal(fi, null fs.FileInfo) bool {
	if fi.Mode()&fs.ModeCharDevice == 0 {
		return false
	}
	return null == nil || !os.SameFile(fi, null)
}
