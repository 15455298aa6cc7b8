//go:build !linux

package pebbletest

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
