// Package pebbletest runs Let's Encrypt's test CA for tests: pebble, with pebble-challtestsrv as
// its DNS server (every name resolves to 127.0.0.1, IPv4 only), everything on 127.0.0.1. pebble
// validates HTTP-01 challenges on the port the test gives (the proxy's HTTP port, or a responder
// of its own). Both programs are installed with `go install` when missing (a failure is an error
// with the reason, never a skip); pebble's test certificates are taken from the module cache, so
// pebble never enters the go.mod of the module under test.
package pebbletest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Version is the pebble release the tests run.
const Version = "v2.10.3"

// Options configure a CA.
type Options struct {
	// HTTPPort is where pebble validates HTTP-01 challenges: http://<name>:HTTPPort/, the name
	// resolving to 127.0.0.1. Required.
	HTTPPort int
	// Profiles are the CA's certificate profiles, by name, with their validity. nil: "default",
	// 90 days.
	Profiles map[string]time.Duration
	// Env is extra environment for pebble (PEBBLE_VA_ALWAYS_VALID=1, ...).
	Env []string
	// NoARI makes DirURL a copy of pebble's directory without "renewalInfo": a CA that offers no
	// renewal info, so that a client renews when its own rule says (pebble's renewal window for
	// a certificate of a few minutes is its whole lifetime, and a client renews at a random time
	// in it). Every other URL is pebble's own.
	NoARI bool
	// FreePort returns a free port on 127.0.0.1; nil: the kernel's choice. A test suite that hands
	// out ports of its own passes its allocator, so that no two of its servers get the same one.
	FreePort func() (int, error)
}

// CA is a running pebble and its DNS server.
type CA struct {
	// DirURL is the ACME directory (https://127.0.0.1:PORT/dir).
	DirURL string
	// CABundle is the PEM file of the root pebble's ACME API is served with: what an ACME client
	// must trust (--acme-ca-bundle). Not the root of the certificates it issues: see Root.
	CABundle string
	// Mgmt is pebble's management API (https://127.0.0.1:PORT): /roots/0, /set-renewal-info/, ...
	Mgmt string
	// DNSMgmt is challtestsrv's management API (http://127.0.0.1:PORT): /set-servfail, /add-a, ...
	DNSMgmt string

	dir     string // config and logs
	logFile string // pebble's output
	procs   []*exec.Cmd
	servers []*http.Server
	once    sync.Once
}

// New starts a CA for t, stopped at t's end; a failure to start fails t with the reason. When t
// failed, the end of pebble's log is logged.
func New(t testing.TB, o Options) *CA {
	t.Helper()
	ca, err := Start(o)
	if err != nil {
		t.Fatalf("pebble: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pebble's log (end):\n%s", ca.LogTail(6000))
		}
		ca.Close()
	})
	return ca
}

// Start installs (when missing) and starts challtestsrv and pebble, and waits until pebble's
// directory answers. Close stops them.
func Start(o Options) (_ *CA, err error) {
	if o.HTTPPort <= 0 {
		return nil, errors.New("no HTTPPort: where should pebble validate HTTP-01 challenges?")
	}
	bin, err := Binaries()
	if err != nil {
		return nil, err
	}
	certs, err := TestCerts()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "vhost-gen-pebble-")
	if err != nil {
		return nil, err
	}
	ca := &CA{dir: dir, CABundle: filepath.Join(certs, "pebble.minica.pem"), logFile: filepath.Join(dir, "pebble.log")}
	defer func() {
		if err != nil {
			ca.Close()
		}
	}()
	ports, err := freePorts(4, o.FreePort)
	if err != nil {
		return nil, err
	}
	dns, dnsMgmt, acmePort, mgmtPort := ports[0], ports[1], ports[2], ports[3]
	ca.DNSMgmt = fmt.Sprintf("http://127.0.0.1:%d", dnsMgmt)
	dnsAddr := fmt.Sprintf("127.0.0.1:%d", dns)
	// Only DNS: no challenge servers of its own, every name 127.0.0.1, no AAAA (pebble tries
	// AAAA first).
	if err := ca.start(filepath.Join(bin, "pebble-challtestsrv"), nil, "challtestsrv.log",
		"-http01", "", "-https01", "", "-tlsalpn01", "", "-doh", "",
		"-dnsserver", dnsAddr, "-management", fmt.Sprintf("127.0.0.1:%d", dnsMgmt),
		"-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""); err != nil {
		return nil, err
	}
	cfg, err := ca.writeConfig(certs, acmePort, mgmtPort, o)
	if err != nil {
		return nil, err
	}
	env := append([]string{"PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0"}, o.Env...)
	if err := ca.start(filepath.Join(bin, "pebble"), env, "pebble.log",
		"-config", cfg, "-dnsserver", dnsAddr, "-strict=false"); err != nil {
		return nil, err
	}
	ca.DirURL = fmt.Sprintf("https://127.0.0.1:%d/dir", acmePort)
	ca.Mgmt = fmt.Sprintf("https://127.0.0.1:%d", mgmtPort)
	if err := ca.waitReady(); err != nil {
		return nil, err
	}
	if o.NoARI {
		if err := ca.serveDirWithoutARI(certs); err != nil {
			return nil, err
		}
	}
	return ca, nil
}

// Close stops pebble and challtestsrv and removes their files.
func (ca *CA) Close() {
	ca.once.Do(func() {
		for _, s := range ca.servers {
			_ = s.Close()
		}
		for _, c := range ca.procs {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
		_ = os.RemoveAll(ca.dir)
	})
}

var installMu sync.Mutex

// Binaries returns the directory of pebble and pebble-challtestsrv (GOBIN, else GOPATH/bin),
// installing them with `go install` when either is missing.
func Binaries() (string, error) {
	installMu.Lock()
	defer installMu.Unlock()
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
		"github.com/letsencrypt/pebble/v2/cmd/pebble@"+Version,
		"github.com/letsencrypt/pebble/v2/cmd/pebble-challtestsrv@"+Version)
	cmd.Dir = os.TempDir() // outside the module under test: its go.mod is not touched
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install pebble %s: %v\n%s", Version, err, out)
	}
	return bin, nil
}

// TestCerts is pebble's test/certs in the module cache (its API's TLS certificate and the
// minica root that signs it), downloaded when missing.
func TestCerts() (string, error) {
	dir := filepath.Join(goEnv("GOMODCACHE"), "github.com/letsencrypt/pebble/v2@"+Version, "test/certs")
	if _, err := os.Stat(filepath.Join(dir, "pebble.minica.pem")); err == nil {
		return dir, nil
	}
	cmd := exec.Command("go", "mod", "download", "-json", "github.com/letsencrypt/pebble/v2@"+Version)
	cmd.Dir = os.TempDir()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download pebble %s: %v", Version, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		return "", fmt.Errorf("go mod download pebble %s: %q", Version, out)
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

func (ca *CA) writeConfig(certs string, acmePort, mgmtPort int, o Options) (string, error) {
	profiles := map[string]any{}
	if o.Profiles == nil {
		o.Profiles = map[string]time.Duration{"default": 90 * 24 * time.Hour}
	}
	for name, validity := range o.Profiles {
		profiles[name] = map[string]any{"description": "valid " + validity.String(), "validityPeriod": int(validity.Seconds())}
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress":                  fmt.Sprintf("127.0.0.1:%d", acmePort),
		"managementListenAddress":        fmt.Sprintf("127.0.0.1:%d", mgmtPort),
		"certificate":                    filepath.Join(certs, "localhost/cert.pem"),
		"privateKey":                     filepath.Join(certs, "localhost/key.pem"),
		"httpPort":                       o.HTTPPort,
		"tlsPort":                        0, // no TLS-ALPN-01 validations: nothing listens for them
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles":                       profiles,
	}}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	path := filepath.Join(ca.dir, "pebble-config.json")
	return path, os.WriteFile(path, b, 0o600)
}

// start runs one of the CA's processes, its output in a log file of the CA's directory.
func (ca *CA) start(bin string, env []string, logName string, args ...string) error {
	f, err := os.Create(filepath.Join(ca.dir, logName))
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own descriptor
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: %w", bin, err)
	}
	ca.procs = append(ca.procs, cmd)
	return nil
}

func freePorts(n int, free func() (int, error)) ([]int, error) {
	var ports []int
	if free != nil {
		for range n {
			p, err := free()
			if err != nil {
				return nil, err
			}
			ports = append(ports, p)
		}
		return ports, nil
	}
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

// serveDirWithoutARI serves pebble's directory without "renewalInfo", on 127.0.0.1 with
// pebble's own API certificate (it covers 127.0.0.1), and points DirURL at it.
func (ca *CA) serveDirWithoutARI(certs string) error {
	cert, err := tls.LoadX509KeyPair(filepath.Join(certs, "localhost/cert.pem"), filepath.Join(certs, "localhost/key.pem"))
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	pebbleDir, c := ca.DirURL, ca.Client()
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/dir" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			http.NotFound(w, r)
			return
		}
		resp, err := c.Get(pebbleDir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		var dir map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		delete(dir, "renewalInfo")
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(dir)
	})}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	ca.servers = append(ca.servers, srv)
	ca.DirURL = "https://" + l.Addr().String() + "/dir"
	return nil
}

// Client is an HTTP client that trusts pebble's API (and management API) certificate.
func (ca *CA) Client() *http.Client {
	pool := x509.NewCertPool()
	if b, err := os.ReadFile(ca.CABundle); err == nil {
		pool.AppendCertsFromPEM(b)
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func (ca *CA) waitReady() error {
	c := ca.Client()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := c.Get(ca.DirURL)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready at %s: %v\n%s", ca.DirURL, err, ca.LogTail(4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Root is the PEM of pebble's current root (regenerated at each start): what a client of the
// sites it issued certificates for trusts.
func (ca *CA) Root() ([]byte, error) {
	resp, err := ca.Client().Get(ca.Mgmt + "/roots/0")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(b, []byte("-----BEGIN CERTIFICATE-----")) {
		return nil, fmt.Errorf("roots/0: %s %q", resp.Status, b)
	}
	return b, nil
}

// RootPool is Root as a pool.
func (ca *CA) RootPool() (*x509.CertPool, error) {
	b, err := ca.Root()
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("roots/0: no certificate in %q", b)
	}
	return pool, nil
}

// Post sends a JSON body to a management API (pebble's or challtestsrv's): url is the full URL.
func (ca *CA) Post(url string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := ca.Client().Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s %s", url, resp.Status, msg)
	}
	return nil
}

// ServFail makes challtestsrv answer SERVFAIL for host: pebble cannot validate it.
func (ca *CA) ServFail(host string) error {
	return ca.Post(ca.DNSMgmt+"/set-servfail", map[string]string{"host": host})
}

// ClearServFail undoes ServFail.
func (ca *CA) ClearServFail(host string) error {
	return ca.Post(ca.DNSMgmt+"/clear-servfail", map[string]string{"host": host})
}

// Log is pebble's output so far.
func (ca *CA) Log() string {
	b, _ := os.ReadFile(ca.logFile)
	return string(b)
}

// LogTail is the last n bytes of pebble's output, for failure messages.
func (ca *CA) LogTail(n int) string {
	l := ca.Log()
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return l
}

var (
	orderLine  = regexp.MustCompile(`(?m)^.*POST /order-plz\b`)
	issuedLine = regexp.MustCompile(`(?m)Issued certificate serial ([0-9a-fA-F]+) for order`)
)

// Orders is how many new orders pebble was sent (POST /order-plz), accepted or not.
func (ca *CA) Orders() int { return len(orderLine.FindAllString(ca.Log(), -1)) }

// Issued are the serials of the certificates pebble issued, in order, upper-case hex as openssl
// prints them.
func (ca *CA) Issued() []string {
	var out []string
	for _, m := range issuedLine.FindAllStringSubmatch(ca.Log(), -1) {
		out = append(out, strings.ToUpper(m[1])) // pebble logs the serial's bytes in hex
	}
	return out
}
