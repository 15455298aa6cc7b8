package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/apply/haproxy"
)

// haproxyProc is HAProxy in master-worker mode, as the integration harness runs it: a minimal
// config that vhost-gen's first apply replaces, the worker's runtime API at dir/admin.sock.
type haproxyProc struct {
	dir, cfg string
	port     int
	cmd      *exec.Cmd
	done     chan struct{}
}

func startHAProxy(dir string) (*haproxyProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	h := &haproxyProc{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), port: port, done: make(chan struct{})}
	initial := fmt.Sprintf(`global
    stats socket %[1]s/admin.sock mode 600 level admin expose-fd listeners
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http
    bind 127.0.0.1:%[2]d
    http-request return status 503
`, dir, port)
	if err := os.WriteFile(h.cfg, []byte(initial), 0o644); err != nil {
		return nil, err
	}
	log, err := os.Create(filepath.Join(dir, "haproxy.log"))
	if err != nil {
		return nil, err
	}
	h.cmd = exec.Command("haproxy", "-W", "-S", filepath.Join(dir, "master.sock"), "-f", h.cfg, "-p", filepath.Join(dir, "haproxy.pid"))
	h.cmd.Stdout, h.cmd.Stderr = log, log
	h.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its workers go with it
	if err := h.cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start haproxy (make env installs it): %w", err)
	}
	go func() { h.cmd.Wait(); log.Close(); close(h.done) }()
	master := &haproxy.Runtime{Socket: filepath.Join(dir, "master.sock")}
	err = waitFor(10*time.Second, func() error { _, err := master.Do(context.Background(), "show proc"); return err })
	if err != nil {
		h.stop()
		return nil, fmt.Errorf("haproxy's master CLI: %w", err)
	}
	return h, nil
}

func (h *haproxyProc) stop() {
	syscall.Kill(-h.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-h.done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-h.cmd.Process.Pid, syscall.SIGKILL)
		<-h.done
	}
}

// vhostGen is a running `vhost-gen watch` with its admin server on a free loopback port. Its
// log goes to a file; the lines of its applies also come on applies, as they are written.
type vhostGen struct {
	cmd     *exec.Cmd
	admin   string
	logPath string
	started time.Time
	applies chan applyLine
	done    chan struct{}
}

// applyLine is one "applied: ..." log line: when vhost-gen wrote it and how (reload, runtime API).
type applyLine struct {
	at  time.Time
	how string
}

func startVhostGen(bin, dir string, env []string, args ...string) (*vhostGen, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	v := &vhostGen{admin: "127.0.0.1:" + strconv.Itoa(port), logPath: filepath.Join(dir, "vhost-gen.log"),
		applies: make(chan applyLine, 4096), done: make(chan struct{})}
	args = append([]string{"watch", "--admin-addr", v.admin, "--log-level", "info"}, args...)
	v.cmd = exec.Command(bin, args...)
	v.cmd.Env = append(cleanEnv(), env...)
	pr, pw := io.Pipe()
	v.cmd.Stdout, v.cmd.Stderr = pw, pw
	log, err := os.Create(v.logPath)
	if err != nil {
		return nil, err
	}
	v.started = time.Now()
	if err := v.cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	go v.readLog(pr, log)
	go func() { v.cmd.Wait(); pw.Close(); close(v.done) }()
	return v, nil
}

// readLog copies the log to its file and notes each apply the moment its line comes.
func (v *vhostGen) readLog(r io.Reader, log *os.File) {
	defer log.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Text()
		at := time.Now()
		fmt.Fprintln(log, line)
		if !strings.Contains(line, `msg="applied: `) {
			continue
		}
		how := "reload"
		if strings.Contains(line, `how="runtime API"`) {
			how = "runtime API"
		}
		select {
		case v.applies <- applyLine{at, how}:
		default: // nobody is counting these
		}
	}
	io.Copy(io.Discard, r)
}

// nextApply waits for the next apply's log line.
func (v *vhostGen) nextApply(d time.Duration) (applyLine, error) {
	select {
	case a := <-v.applies:
		return a, nil
	case <-v.done:
		return applyLine{}, fmt.Errorf("vhost-gen exited: %v; log: %s", v.cmd.ProcessState, v.logPath)
	case <-time.After(d):
		return applyLine{}, fmt.Errorf("no apply within %v; log: %s", d, v.logPath)
	}
}

// drainApplies forgets the apply lines seen so far.
func (v *vhostGen) drainApplies() {
	for {
		select {
		case <-v.applies:
		default:
			return
		}
	}
}

func (v *vhostGen) pid() int { return v.cmd.Process.Pid }

func (v *vhostGen) stop() {
	v.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-v.done:
	case <-time.After(10 * time.Second):
		v.cmd.Process.Kill()
		<-v.done
	}
}

// settle waits until vhost-gen has applied what it was given: ready says so from a scrape (nil:
// at once), and the apply count then stays the same for hold (longer than the debounce's MAX),
// so that everything a change caused is done and counted. An apply can take longer than hold at
// 10,000 workloads, so ready must not be satisfied before it ends (see routed).
func (v *vhostGen) settle(hold, limit time.Duration, ready func(metrics) bool) (metrics, error) {
	deadline := time.Now().Add(limit)
	var last metrics
	since := time.Now()
	for {
		m, err := scrape(v.admin)
		if err != nil {
			return nil, err
		}
		if (ready != nil && !ready(m)) || last == nil || m.sum("vhostgen_applies_total") != last.sum("vhostgen_applies_total") {
			since = time.Now()
		}
		last = m
		if time.Since(since) >= hold {
			return m, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("vhost-gen has not settled after %v (%v servers routed, %v applies); log: %s",
				limit, m.sum("vhostgen_servers"), m.sum("vhostgen_applies_total"), v.logPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// routed is ready once servers are routed after more than applies applies.
func routed(servers int, applies float64) func(metrics) bool {
	return func(m metrics) bool {
		return int(m.sum("vhostgen_servers")) == servers && m.sum("vhostgen_applies_total") > applies
	}
}

// cleanEnv is this process's environment without vhost-gen's own settings, so that the flags
// alone decide what runs. (A DOCKER_HOST the caller appends wins over this one: exec keeps the
// last value of a name.)
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VHOST_GEN_") {
			out = append(out, kv)
		}
	}
	return out
}

var (
	portsMu sync.Mutex
	given   = map[int]bool{}
)

// freePort is a port free on 127.0.0.1 that this run has not handed out before.
func freePort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !given[port] {
			given[port] = true
			return port, nil
		}
	}
}

// waitFor polls cond every 20 ms until it returns nil or d passes.
func waitFor(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// get sends one request with the Host header and returns its status (0: no answer).
func get(url, host string) int {
	req, _ := http.NewRequest("GET", url, nil)
	req.Host = host
	resp, err := httpc.Do(req)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
