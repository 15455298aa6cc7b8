package integration

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdServer is one etcd process of one test, on free 127.0.0.1 ports, its data in t.TempDir().
// stop and start keep its ports and data, as an operator's restart does.
type etcdServer struct {
	t        testing.TB
	dir      string
	client   int
	peer     int
	endpoint string // http://127.0.0.1:PORT (https:// with etcdOptions.scheme "https")
	opts     etcdOptions
	log      *syncBuffer
	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
}

// etcdOptions change how startEtcdWith runs etcd; the zero value is startEtcd's plain HTTP etcd.
type etcdOptions struct {
	scheme    string      // of the client URL: "http" (default) or "https"
	flags     []string    // more etcd flags (--cert-file, --client-cert-auth, ...)
	ctlFlags  []string    // more flags of every etcdctl run by ctl (--cacert, --cert, --key, --user)
	healthTLS *tls.Config // the client that asks https /health
}

// startEtcd starts a single-member etcd and waits until it answers; it is killed at cleanup.
func startEtcd(t testing.TB) *etcdServer {
	t.Helper()
	return startEtcdWith(t, etcdOptions{})
}

// startEtcdWith is startEtcd with options (TLS, extra flags).
func startEtcdWith(t testing.TB, opts etcdOptions) *etcdServer {
	t.Helper()
	if opts.scheme == "" {
		opts.scheme = "http"
	}
	s := &etcdServer{t: t, dir: filepath.Join(t.TempDir(), "etcd"), client: freePort(t), peer: freePort(t), log: &syncBuffer{}, opts: opts}
	s.endpoint = opts.scheme + "://127.0.0.1:" + strconv.Itoa(s.client)
	t.Cleanup(func() {
		s.kill(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("etcd log (%s):\n%s", s.endpoint, tail(s.log.String(), 8000))
		}
	})
	s.start()
	return s
}

// start starts etcd (again) on the same ports and data dir and waits until it answers.
func (s *etcdServer) start() {
	s.t.Helper()
	peer := "http://127.0.0.1:" + strconv.Itoa(s.peer)
	cmd := exec.Command("etcd", append([]string{"--name", "it", "--data-dir", s.dir,
		"--listen-client-urls", s.endpoint, "--advertise-client-urls", s.endpoint,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "it=" + peer,
		"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn"}, s.opts.flags...)...)
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start etcd: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	waitUntil(s.t, "etcd "+s.endpoint+" to answer", func() error {
		select {
		case <-done:
			return fmt.Errorf("etcd exited: %s", tail(s.log.String(), 2000))
		default:
		}
		code, body := s.health()
		if code != 200 || !strings.Contains(body, `"health":"true"`) {
			return fmt.Errorf("/health: %d %s", code, body)
		}
		return nil
	})
}

// health asks etcd's /health, over https with opts.healthTLS when it has one.
func (s *etcdServer) health() (int, string) {
	if s.opts.healthTLS == nil {
		return httpGet(s.endpoint+"/health", "")
	}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: s.opts.healthTLS, DisableKeepAlives: true}}
	resp, err := c.Get(s.endpoint + "/health")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// stop stops etcd cleanly (SIGTERM) and waits until it has exited.
func (s *etcdServer) stop() { s.kill(syscall.SIGTERM) }

func (s *etcdServer) kill(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// ctl runs etcdctl against this etcd with stdin (may be empty) and returns its standard output;
// a failure fails the test.
func (s *etcdServer) ctl(stdin string, args ...string) string {
	s.t.Helper()
	out, err := s.tryCtl(stdin, args...)
	if err != nil {
		s.t.Fatalf("etcdctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (s *etcdServer) tryCtl(stdin string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	flags := append([]string{"--endpoints", s.endpoint, "--dial-timeout", "3s", "--command-timeout", "10s"}, s.opts.ctlFlags...)
	cmd := exec.Command("etcdctl", append(flags, args...)...)
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// put writes one key with etcdctl, as a seed's own scripts do.
func (s *etcdServer) put(key, value string) {
	s.t.Helper()
	s.ctl("", "put", "--", key, value)
}

// etcdKV is one key of `etcdctl get -w json`.
type etcdKV struct {
	Key         string
	Value       string
	ModRevision int64
	Lease       int64
}

// get reads every key under prefix with its revisions (etcdctl get --prefix -w json), and the
// store's revision.
func (s *etcdServer) get(prefix string) ([]etcdKV, int64) {
	s.t.Helper()
	var resp struct {
		Header struct {
			Revision int64 `json:"revision"`
		} `json:"header"`
		Kvs []struct {
			Key         []byte `json:"key"` // base64 in etcdctl's JSON: []byte decodes it
			Value       []byte `json:"value"`
			ModRevision int64  `json:"mod_revision"`
			Lease       int64  `json:"lease"`
		} `json:"kvs"`
	}
	out := s.ctl("", "get", "--prefix", "-w", "json", "--", prefix)
	if err := json.Unmarshal([]byte(out), &resp); err != nil {
		s.t.Fatalf("etcdctl get -w json: %v\n%s", err, out)
	}
	kvs := make([]etcdKV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		kvs[i] = etcdKV{Key: string(kv.Key), Value: string(kv.Value), ModRevision: kv.ModRevision, Lease: kv.Lease}
	}
	return kvs, resp.Header.Revision
}

// keys lists the keys under prefix.
func (s *etcdServer) keys(prefix string) []string {
	s.t.Helper()
	kvs, _ := s.get(prefix)
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

// goClient is a Go client of this etcd, closed at cleanup (for benchmarks that write in bulk).
func (s *etcdServer) goClient() *clientv3.Client {
	s.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{s.endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { cli.Close() })
	return cli
}

// vgProc is a vhost-gen process other than env's own (a publisher, a proxy-less gateway), its
// log shown when the test fails.
type vgProc struct {
	t     testing.TB
	what  string
	args  []string
	cmd   *exec.Cmd
	log   *syncBuffer
	done  chan struct{}
	admin string // its admin address
}

// startVG starts vhost-gen with args (it adds --admin-addr and --log-level debug); it is stopped
// at cleanup (SIGCONT first, in case a test left it stopped).
func startVG(t testing.TB, what string, args ...string) *vgProc {
	t.Helper()
	p := &vgProc{t: t, what: what, log: &syncBuffer{}, admin: "127.0.0.1:" + strconv.Itoa(freePort(t))}
	p.args = append(append([]string{}, args...), "--admin-addr", p.admin, "--log-level", "debug")
	p.cmd = exec.Command(vhostGen, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			t.Logf("%s log (vhost-gen %s):\n%s", p.what, strings.Join(p.args, " "), tail(p.log.String(), 12000))
		}
	})
	return p
}

// signal sends sig; for SIGKILL it also waits until the process is gone.
func (p *vgProc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to %s: %v", sig, p.what, err)
	}
	if sig == syscall.SIGKILL {
		<-p.done
	}
}

// stop stops the process (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (p *vgProc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGCONT)
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// metric sums a Prometheus metric of the process, as env.metric does.
func (p *vgProc) metric(name string, labels ...string) float64 {
	_, body := httpGet("http://"+p.admin+"/metrics", "")
	return promSum(body, name, labels...)
}

// count is how many times s appears in the process's log.
func (p *vgProc) count(s string) int { return strings.Count(p.log.String(), s) }

// startPublisher starts `vhost-gen publish` for the containers with labelFilter, and waits for its
// first reconcile.
func startPublisher(t testing.TB, etcd *etcdServer, labelFilter string, flags ...string) *vgProc {
	t.Helper()
	args := append([]string{"publish", "--etcd-endpoints", etcd.endpoint, "--label-filter", labelFilter}, flags...)
	p := startVG(t, "publisher", args...)
	waitUntil(t, "the publisher's first reconcile", func() error {
		select {
		case <-p.done:
			return fmt.Errorf("publish exited: %s", tail(p.log.String(), 3000))
		default:
		}
		if p.count("etcd: reconciled") == 0 {
			return fmt.Errorf("not reconciled yet")
		}
		return nil
	})
	return p
}

// bareListen is the --listen of proxy-less gateways: rendered into the config, never bound (no
// proxy runs), the same for all of them so that their bytes compare.
const bareListen = "127.0.0.1:80"

// startBareGateway starts `vhost-gen watch --source etcd` without a proxy (--check-cmd none,
// --reload-cmd none): it renders to a file only, so nothing ever sends traffic to the addresses
// it renders. It waits for the first apply.
func startBareGateway(t testing.TB, endpoint string, flags ...string) (*vgProc, string) {
	t.Helper()
	p, out := launchBareGateway(t, endpoint, flags...)
	waitUntil(t, "the gateway's first apply (/healthz 200)", func() error {
		if code, body := httpGet("http://"+p.admin+"/healthz", ""); code != 200 {
			return fmt.Errorf("healthz %d: %s", code, body)
		}
		return nil
	})
	return p, out
}

// containerEnv is an env without a proxy or vhost-gen of its own: for running the test's labelled
// containers (e.run) when the gateways are started otherwise.
func containerEnv(t testing.TB) *env {
	e := &env{t: t, label: testLabel(t), dir: t.TempDir()}
	t.Cleanup(func() { removeLabelled(labelKey + "=" + e.label) })
	return e
}

// launchBareGateway is startBareGateway without the wait.
func launchBareGateway(t testing.TB, endpoint string, flags ...string) (*vgProc, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "vhost-gen.conf")
	args := append([]string{"watch", "--source", "etcd", "--etcd-endpoints", endpoint, "--proxy", "nginx", "--out", out,
		"--check-cmd", "none", "--reload-cmd", "none", "--listen", bareListen, "--wait", "50ms:500ms"}, flags...)
	return startVG(t, "gateway", args...), out
}

// etcdFlags are the flags that make an env's vhost-gen a gateway of etcd (the env's label filter
// does not matter to the etcd source).
func etcdFlags(endpoint string, more ...string) []string {
	return append([]string{"--source", "etcd", "--etcd-endpoints", endpoint}, more...)
}

// normalisedConfig is the env's rendered nginx config with its own listen address replaced by
// LISTEN: two gateways on one machine cannot listen on one port, and the listen directive is the
// only line of the shipped nginx template that depends on the instance (its flags) rather than on
// the routing table. Everything else must be byte-identical.
func (e *env) normalisedConfig() string {
	e.t.Helper()
	if e.proxy != "nginx" {
		e.t.Fatalf("normalisedConfig: nginx only")
	}
	re := regexp.MustCompile(`(?m)^(\s*listen )` + regexp.QuoteMeta("127.0.0.1:"+strconv.Itoa(e.port)) + `([ ;])`)
	c := e.config()
	n := re.ReplaceAllString(c, "${1}LISTEN${2}")
	if n == c {
		e.t.Fatalf("no listen 127.0.0.1:%d in the config:\n%s", e.port, c)
	}
	return n
}

// waitUntil polls cond until it returns nil, for up to 20 seconds (env.waitFor without an env).
func waitUntil(t testing.TB, what string, cond func() error) {
	t.Helper()
	waitWithin(t, what, 20*time.Second, cond)
}

// promSum sums the samples of a metric whose labels contain every given `k="v"`.
func promSum(body, name string, labels ...string) float64 {
	sum := 0.0
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if i := strings.LastIndexByte(line, ' '); ok && i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			sum += v
		}
	}
	return sum
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// routesFull is /routes with the fields the etcd tests read.
type routesFull struct {
	Sites []struct {
		Host   string `json:"host"`
		Routes []struct {
			Backend struct {
				Servers []struct {
					Address    string `json:"address"`
					Workload   string `json:"workload"`
					WorkloadID string `json:"workloadID"`
				} `json:"servers"`
			} `json:"backend"`
		} `json:"routes"`
	} `json:"sites"`
	TCP []struct {
		Port    int `json:"port"`
		Backend struct {
			Servers []struct {
				Address string `json:"address"`
			} `json:"servers"`
		} `json:"backend"`
	} `json:"tcp"`
	Problems []problemDoc `json:"problems"`
	Degraded []string     `json:"degraded"`
}

type problemDoc struct {
	Source   string `json:"source"`
	Workload string `json:"workload"`
	Setting  string `json:"setting"`
	Reason   string `json:"reason"`
}

func routesAt(t testing.TB, admin string) routesFull {
	t.Helper()
	_, body := httpGet("http://"+admin+"/routes?format=json", "")
	var d routesFull
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatalf("/routes: %v\n%s", err, body)
	}
	return d
}

// gatewaysDoc is `vhost-gen gateways --json`.
type gatewaysDoc struct {
	Revision int64 `json:"revision"`
	Gateways []struct {
		ID       string `json:"id"`
		Revision int64  `json:"revision"`
		SHA256   string `json:"sha256"`
		Error    string `json:"error"`
		State    string `json:"state"`
	} `json:"gateways"`
}
