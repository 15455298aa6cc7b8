package apply

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// HAProxyMasterReload reloads HAProxy in master-worker mode: sig (USR2) to the master whose PID is
// in pidfile, then it waits until the master has forked a new worker. A 2.6 master that is still
// busy with the previous reload ignores the signal, so a quick second change would otherwise be
// silently lost; the signal is sent again until a new worker appears.
func HAProxyMasterReload(pidfile string, sig syscall.Signal) ReloadFunc {
	return func(ctx context.Context) error {
		// The master removes and rewrites its pidfile while it re-executes for a reload.
		pid, err := readPid(pidfile)
		for i := 0; err != nil && i < 25; i++ {
			time.Sleep(20 * time.Millisecond)
			pid, err = readPid(pidfile)
		}
		if err != nil {
			return err
		}
		return ReloadHAProxyMaster(ctx, pid, sig, pidfile)
	}
}

// ReloadHAProxyMaster sends sig to HAProxy's master, pid, and waits for its new worker, sending
// the signal again if the master was busy; from names where pid came from, for messages.
func ReloadHAProxyMaster(ctx context.Context, pid int, sig syscall.Signal, from string) error {
	before, err := children(pid)
	if err != nil {
		return err
	}
	for range masterAttempts {
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("signal %s to HAProxy's master, pid %d (from %s): %w", sig, pid, from, err)
		}
		deadline := time.Now().Add(masterWait)
		for time.Now().Before(deadline) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
			now, err := children(pid)
			if err != nil {
				return err
			}
			for c := range now {
				if !before[c] {
					return nil
				}
			}
		}
	}
	return fmt.Errorf("HAProxy's master (pid %d, from %s) started no new worker after %d %s signals in %s: is it running in master-worker mode (-W), and does its log say why?",
		pid, from, masterAttempts, sig, time.Duration(masterAttempts)*masterWait)
}

// How often and how long a master reload waits for a new worker (variables for the tests).
var (
	masterAttempts = 4
	masterWait     = 2 * time.Second
)

func readPid(pidfile string) (int, error) {
	b, err := os.ReadFile(pidfile)
	if err != nil {
		return 0, fmt.Errorf("read pid: %w", err)
	}
	// HAProxy writes the master's PID on the first line.
	first, _, _ := bytes.Cut(bytes.TrimSpace(b), []byte("\n"))
	pid, err := strconv.Atoi(string(bytes.TrimSpace(first)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("pid file %s: %q is not a process ID", pidfile, first)
	}
	return pid, nil
}

// children lists the processes whose parent is pid: from the kernel's list of each of its
// threads' children, a few bytes (a reload polls it every 20 ms), else from every process's stat.
func children(pid int) (map[int]bool, error) {
	lists, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/[0-9]*/children", pid))
	if len(lists) == 0 { // a kernel without CONFIG_PROC_CHILDREN, or pid is gone
		return scanChildren(pid)
	}
	out := map[int]bool{}
	for _, path := range lists {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the thread ended since the glob
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out[c] = true
			}
		}
	}
	return out, nil
}

// scanChildren is children from every process's /proc/PID/stat.
func scanChildren(pid int) (map[int]bool, error) {
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		return nil, err
	}
	out := map[int]bool{}
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // gone since the glob
		}
		// "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses, so parse after the last ')'.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := bytes.Fields(b[i+1:])
		if len(f) < 2 {
			continue
		}
		if ppid, _ := strconv.Atoi(string(f[1])); ppid == pid {
			c, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			out[c] = true
		}
	}
	return out, nil
}
