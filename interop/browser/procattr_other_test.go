//go:build !linux

package browser

import "syscall"

// procAttr is nil where there is no parent-death signal: the children of
// a killed test process may outlive it.
func procAttr() *syscall.SysProcAttr { return nil }
