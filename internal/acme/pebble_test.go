package acme

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A real ACME CA for the tests: pebble, with pebble-challtestsrv as its DNS server (every name
// resolves to 127.0.0.1), validating HTTP-01 on the port of a responder server that fans out to
// the tests' Managers. Started once, on first use, and stopped by TestMain.

const pebbleVersion = "v2.10.3"

type pebbleEnv struct {
	caURL   string // directory
	mgmt    string // https://127.0.0.1:port of pebble's management API
	dnsMgmt string // http://127.0.0.1:port of challtestsrv's
	caCert  string // the minica root pebble's API is served with
	log     string // pebble's output

	mu        sync.Mutex
	responder []http.Handler
	served    map[string]int // challenge path -> status, as answered to pebble
}

var (
	pebbleOnce  sync.Once
	pebbleErr   error
	pebbleState *pebbleEnv
	pebbleProcs []*exec.Cmd
	pebbleTmp   string
)

func TestMain(m *testing.M) {
	code := m.Run()
	for _, c := range pebbleProcs {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
	if pebbleTmp != "" {
		_ = os.RemoveAll(pebbleTmp)
	}
	os.Exit(code)
}

// pebble returns the shared CA, starting it (and installing it) the first time; a failure fails
// the test with the reason, never skips it.
func pebble(t *testing.T) *pebbleEnv {
	t.Helper()
	pebbleOnce.Do(func() { pebbleState, pebbleErr = startPebble() })
	if pebbleErr != nil {
		t.Fatalf("pebble: %v", pebbleErr)
	}
	return pebbleState
}

func startPebble() (*pebbleEnv, error) {
	bin, err := pebbleBinaries()
	if err != nil {
		return nil, err
	}
	certs, err := pebbleCerts()
	if err != nil {
		return nil, err
	}
	if pebbleTmp, err = os.MkdirTemp("", "vhost-gen-pebble-"); err != nil {
		return nil, err
	}
	p := &pebbleEnv{served: map[string]int{}, caCert: filepath.Join(certs, "pebble.minica.pem")}
	httpPort, err := p.serveResponders()
	if err != nil {
		return nil, err
	}
	ports, err := freePorts(5)
	if err != nil {
		return nil, err
	}
	dns, dnsMgmt, acmePort, mgmtPort, tlsPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	p.dnsMgmt = fmt.Sprintf("http://127.0.0.1:%d", dnsMgmt)
	if err := start(filepath.Join(bin, "pebble-challtestsrv"), nil, "challtestsrv.log",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-dnsserver", fmt.Sprintf("127.0.0.1:%d", dns), "-management", fmt.Sprintf("127.0.0.1:%d", dnsMgmt),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""); err != nil {
		return nil, err
	}
	cfg, err := pebbleConfig(certs, acmePort, mgmtPort, tlsPort, httpPort)
	if err != nil {
		return nil, err
	}
	p.log = filepath.Join(pebbleTmp, "pebble.log")
	env := []string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}
	if err := start(filepath.Join(bin, "pebble"), env, "pebble.log",
		"-config", cfg, "-dnsserver", fmt.Sprintf("127.0.0.1:%d", dns), "-strict=false"); err != nil {
		return nil, err
	}
	p.caURL = fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort)
	p.mgmt = fmt.Sprintf("https://127.0.0.1:%d", mgmtPort)
	if err := p.waitReady(); err != nil {
		return nil, err
	}
	return p, nil
}

// pebbleBinaries installs pebble and challtestsrv into GOBIN (GOPATH/bin) when either is missing.
func pebbleBinaries() (string, error) {
	bin := goEnv("GOBIN")
	if bin == "" {
		bin = filepath.Join(filepath.SplitList(goEnv("GOPATH"))[0], "bin")
	}
	missing := false
	for _, b := range []string{"pebble", "pebble-challtestsrv"} {
		if _, err := os.Stat(filepath.Join(bin, b)); err != nil {
			missing = true
		}
	}
	if !missing {
		return bin, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install",
		"github.com/letsencrypt/pebble/v2/cmd/pebble@"+pebbleVersion,
		"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@"+pebbleVersion)
	cmd.Dir = os.TempDir() // outside vhost-gen's module: its go.mod is not touched
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install pebble %s: %v\n%s", pebbleVersion, err, out)
	}
	return bin, nil
}

// pebbleCerts is pebble's test/certs in the module cache (its API's TLS certificate and root).
func pebbleCerts() (string, error) {
	dir := filepath.Join(goEnv("GOMODCACHE"), "github.com/letsencrypt/pebble/v2@"+pebbleVersion, "test/certs")
	if _, err := os.Stat(filepath.Join(dir, "pebble.minica.pem")); err == nil {
		return dir, nil
	}
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/letsencrypt/pebble/v2@"+pebbleVersion)
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download pebble: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download pebble: %q", out)
	}
	return filepath.Join(mod.Dir, "test/certs"), nil
}

func goEnv(name string) string {
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

func pebbleConfig(certs string, acme, mgmt, tlsPort, httpPort int) (string, error) {
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", acme),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmt),
		"certificate":                    filepath.Join(certs, "localhost/cert.pem"),
		"privateKey":                     filepath.Join(certs, "localhost/key.pem"),
		"httpPort":                       httpPort,
		"tlsPort":                        tlsPort,
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles": map[string]any{
			"default": map[string]any{"description": "90 days", "validityPeriod": 90 * 24 * 3600},
			"short":   map[string]any{"description": "one minute", "validityPeriod": 60},
		},
	}}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(pebbleTmp, "pebble-config.json")
	return path, os.WriteFile(path, b, 0o600)
}

// start runs a process of the harness, its output in a log file of the temporary directory.
func start(bin string, env []string, logName string, args ...string) error {
	f, err := os.Create(filepath.Join(pebbleTmp, logName))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = harnessProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	pebbleProcs = append(pebbleProcs, cmd)
	return nil
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// serveResponders listens where pebble validates HTTP-01 and asks each registered Responder in
// turn; it records what was answered.
func (p *pebbleEnv) serveResponders() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	srv := &http.Server{Handler: http.HandlerFunc(p.fanOut), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *pebbleEnv) fanOut(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	hs := append([]http.Handler(nil), p.responder...)
	p.mu.Unlock()
	code := http.StatusNotFound
	defer func() {
		p.mu.Lock()
		p.served[r.URL.Path] = code
		p.mu.Unlock()
	}()
	for _, h := range hs {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusNotFound {
			code = rec.Code
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			_, _ = w.Write(rec.Body.Bytes())
			return
		}
	}
	http.NotFound(w, r)
}

// register makes m's Responder answer pebble's validations.
func (p *pebbleEnv) register(m *Manager) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.responder = append(p.responder, m.Responder())
}

// servedTokens are the challenge paths answered 200 so far.
func (p *pebbleEnv) servedTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for path, code := range p.served {
		if code == http.StatusOK {
			out = append(out, path)
		}
	}
	return out
}

func (p *pebbleEnv) client() *http.Client {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(p.caCert); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (p *pebbleEnv) waitReady() error {
	c := p.client()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(p.caURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(p.log)
			return fmt.Errorf("not ready at %s: %v\n%s", p.caURL, err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// root is pebble's current root (regenerated at each start), what clients would trust.
func (p *pebbleEnv) root(t *testing.T) *x509.CertPool {
	t.Helper()
	resp, err := p.client().Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("roots/0: %q", b)
	}
	return pool
}

// post sends a JSON body to a management API (pebble's or challtestsrv's).
func (p *pebbleEnv) post(t *testing.T, url string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := p.client().Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %s %s", url, resp.Status, msg)
	}
}

// pebbleLog is pebble's output, for failures.
func (p *pebbleEnv) pebbleLog() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
