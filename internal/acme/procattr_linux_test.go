package acme

import "syscall"

// harnessProcAttr kills the harness's processes with the test binary, even when it dies
// without running TestMain's clean-up (a panic, a timeout).
func harnessProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
