package harness

import "syscall"

// procAttr makes the kernel kill a child when the test process dies, so
// that a test binary killed by a timeout or a signal leaves no relay
// behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
