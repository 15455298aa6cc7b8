//go:build !linux

package acme

import "syscall"

func harnessProcAttr() *syscall.SysProcAttr { return nil }
