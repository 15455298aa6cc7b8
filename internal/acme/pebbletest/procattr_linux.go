package pebbletest

import "syscall"

// procAttr kills the CA's processes with the test binary, even when it dies without running its
// clean-up (a panic, a timeout).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
