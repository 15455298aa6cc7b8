// Package supervise runs the proxy as vhost-gen's child, for the edge gateway image where
// vhost-gen is the container's main process: it starts the proxy once the first config is in
// place, reloads it by signal, restarts it when it dies (with backoff), and stops it gracefully
// when vhost-gen is told to stop. No supervisord.
package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Supervisor owns one proxy process.
type Supervisor struct {
	// Argv runs the proxy in the foreground (nginx -g 'daemon off;', haproxy -W -db ...).
	Argv []string
	// Reload reloads the running proxy, whose main process is pid.
	Reload func(ctx context.Context, pid int) error
	// StopSignal asks the proxy to finish its connections and exit (nginx QUIT, HAProxy USR1).
	StopSignal syscall.Signal
	Log        *slog.Logger
	// OnRestart, if set, is called every time the proxy is restarted after dying (for metrics).
	OnRestart func()

	mu       sync.Mutex
	crashes  int           // consecutive deaths soon after a start, for the backoff
	pid      int           // 0: not running
	exited   chan struct{} // closed when the current process has exited
	started  bool
	stopping bool
}

// Backoff between restarts of a proxy that keeps dying; reset once it has run a while.
var (
	minRestart = 500 * time.Millisecond
	maxRestart = 30 * time.Second
	stableRun  = 30 * time.Second
)

// Ensure starts the proxy if it was never started: after the first apply the config is in place,
// whether that apply wrote it or found it already there.
func (s *Supervisor) Ensure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.stopping {
		return nil
	}
	// Started only once it runs: a proxy that could not start (its binary missing) is tried
	// again, and the error reported again, at the next apply.
	if err := s.startLocked(); err != nil {
		return err
	}
	s.started = true
	return nil
}

// ReloadFunc is the apply step's reload: it starts the proxy the first time, and reloads it after.
func (s *Supervisor) ReloadFunc(ctx context.Context) error {
	s.mu.Lock()
	pid := s.pid
	s.mu.Unlock()
	if pid == 0 {
		return s.Ensure()
	}
	return s.Reload(ctx, pid)
}

// PID is the proxy's main process, 0 when it is not running.
func (s *Supervisor) PID() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pid
}

// startLocked starts the proxy in a process group of its own, so that what it leaves behind when
// it dies (nginx's workers outlive a killed master, holding the listening sockets) can be killed
// with it, and reaped without taking the exit status of vhost-gen's own commands (the checks).
func (s *Supervisor) startLocked() error {
	path, err := exec.LookPath(s.Argv[0])
	if err != nil {
		return fmt.Errorf("start the proxy: %w", err)
	}
	p, err := os.StartProcess(path, s.Argv, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		return fmt.Errorf("start the proxy (%s): %w", path, err)
	}
	s.pid, s.exited = p.Pid, make(chan struct{})
	s.Log.Info("proxy started", "pid", p.Pid, "cmd", s.Argv)
	go s.monitor(p.Pid, s.exited, time.Now())
	return nil
}

// monitor waits for the proxy to exit, cleans up its process group, and restarts it unless
// vhost-gen is stopping.
func (s *Supervisor) monitor(pid int, exited chan struct{}, since time.Time) {
	var ws syscall.WaitStatus
	for {
		_, err := syscall.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	// Whatever is left of the group (orphaned workers) goes too, and is reaped if it was
	// reparented to us (vhost-gen is PID 1 in the gateway). The wait blocks until none of our
	// children is left in the group (ECHILD): SIGKILL takes a moment, and a member reaped with
	// WNOHANG before it had died would stay a zombie for good. Only this group is waited for, so
	// vhost-gen's own commands keep their exit statuses.
	syscall.Kill(-pid, syscall.SIGKILL)
	for {
		_, err := syscall.Wait4(-pid, nil, 0, nil)
		if err != nil && !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	s.mu.Lock()
	s.pid = 0
	close(exited)
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		s.Log.Info("proxy stopped", "pid", pid, "status", describe(ws))
		return
	}
	s.mu.Lock()
	if time.Since(since) >= stableRun {
		s.crashes = 0
	}
	delay := restartDelay(s.crashes)
	s.crashes++
	s.mu.Unlock()
	s.Log.Error("proxy exited; restarting it with the last applied config", "pid", pid, "status", describe(ws), "in", delay)
	time.Sleep(delay)
	s.mu.Lock()
	if s.stopping || s.pid != 0 {
		s.mu.Unlock()
		return
	}
	err := s.startLocked()
	if err != nil {
		s.started = false
	}
	s.mu.Unlock()
	if err != nil {
		s.Log.Error("proxy restart failed; trying again at the next apply", "err", err)
		return
	}
	if s.OnRestart != nil {
		s.OnRestart()
	}
}

// restartDelay doubles with every death in a row of a proxy that dies soon after starting, up to
// maxRestart; the first restart is quick.
func restartDelay(crashes int) time.Duration {
	d := minRestart
	for range crashes {
		if d *= 2; d >= maxRestart {
			return maxRestart
		}
	}
	return d
}

// Stop asks the proxy to stop gracefully and waits for it, up to timeout; then kills it.
func (s *Supervisor) Stop(timeout time.Duration) {
	s.mu.Lock()
	s.stopping = true
	pid, exited := s.pid, s.exited
	s.mu.Unlock()
	if pid == 0 {
		return
	}
	s.Log.Info("stopping the proxy gracefully", "pid", pid, "signal", s.StopSignal.String(), "timeout", timeout)
	syscall.Kill(pid, s.StopSignal)
	select {
	case <-exited:
	case <-time.After(timeout):
		s.Log.Warn("the proxy did not stop in time; killing it", "pid", pid)
		syscall.Kill(-pid, syscall.SIGKILL)
		<-exited
	}
}

func describe(ws syscall.WaitStatus) string {
	switch {
	case ws.Signaled():
		return fmt.Sprintf("killed by signal %d (%s)", int(ws.Signal()), ws.Signal())
	case ws.Exited():
		return fmt.Sprintf("exit code %d", ws.ExitStatus())
	}
	return "unknown"
}
