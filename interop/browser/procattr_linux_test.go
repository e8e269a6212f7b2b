//go:build linux

package browser

import "syscall"

// procAttr makes the kernel kill a child (moq-relay, moq-clock, moq-pub,
// ffmpeg) when the test process dies, so that a test binary killed by a
// -timeout panic or a signal leaves nothing running on its ports, as the
// interop harness does (interop/internal/harness).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
