package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times: 100 on every Linux this
// runs on (it is fixed by the kernel's ABI, not by HZ).
const clockTicks = 100

// cpuTimes are a process's CPU seconds: its own (user + system), and those of its children it
// waited for (vhost-gen's children are the proxy's checks, haproxy -c and nginx -t).
type cpuTimes struct{ self, children float64 }

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{c.self - o.self, c.children - o.children}
}

// readCPU reads /proc/<pid>/stat: utime, stime, cutime and cstime are fields 14 to 17, counted
// after the command name, which is in parentheses and may hold spaces.
func readCPU(pid int) (cpuTimes, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return cpuTimes{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return cpuTimes{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 15 {
		return cpuTimes{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var t [4]float64
	for k := range t {
		v, err := strconv.ParseFloat(f[11+k], 64)
		if err != nil {
			return cpuTimes{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		t[k] = v / clockTicks
	}
	return cpuTimes{self: t[0] + t[1], children: t[2] + t[3]}, nil
}

// peakRSS is a process's peak resident set size in bytes (VmHWM).
func peakRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// dockerdPID finds the engine's process: its pidfile, else pidof.
func dockerdPID() (int, error) {
	if b, err := os.ReadFile("/var/run/docker.pid"); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return pid, nil
		}
	}
	out, err := exec.Command("pidof", "-s", "dockerd").Output()
	if err != nil {
		return 0, fmt.Errorf("dockerd's PID: no /var/run/docker.pid and pidof failed: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(out)))
}

// machine says what the figures were measured on: cores, CPU model, kernel, engine, HAProxy.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	dv, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output()
	if err != nil {
		dv = []byte("unavailable")
	}
	hv := "unavailable"
	if out, err := exec.Command("haproxy", "-v").Output(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 3 {
			hv = f[2]
		}
	}
	return fmt.Sprintf("%d cores (%s), Linux %s, Docker %s, HAProxy %s, %s", runtime.NumCPU(), model,
		strings.TrimSpace(string(kernel)), strings.TrimSpace(string(dv)), hv, runtime.Version())
}

// runNanos is the time a process's threads have run, in nanoseconds, from their schedstat:
// finer than /proc/<pid>/stat's 10 ms ticks, which a second of idling does not reach. (A thread
// that exited takes its share with it; Go's threads live as long as the process.)
func runNanos(pid int) (int64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/[0-9]*/schedstat", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("no /proc/%d/task/*/schedstat: %v", pid, err)
	}
	var total int64
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue // the thread is gone
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", t, err)
		}
		total += n
	}
	return total, nil
}
