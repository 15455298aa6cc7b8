package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestNginxProxyDropIn is a compose-style switch from nginxproxy/nginx-proxy to the gateway
// image: the backends, their environment and labels, and the proxy's mounts and environment are
// those of a typical nginx-proxy deployment as its documentation describes it, and the proxy
// container is run exactly as nginx-proxy's would be (the Docker socket at /tmp/docker.sock,
// certs, vhost.d and htpasswd mounted read-only at nginx-proxy's paths, DEFAULT_HOST and
// TRUST_DOWNSTREAM_PROXY in its environment, the image's own command) with only the image name
// changed. Through its published ports: every host answers from its container (VIRTUAL_HOST,
// VIRTUAL_PORT, VIRTUAL_PATH with VIRTUAL_DEST, NETWORK_ACCESS=internal from the test's internal
// address), an unknown host gets DEFAULT_HOST's site, the htpasswd file asks for and takes its
// credentials, the vhost.d file's header is sent, the loadbalance label is in force over two
// containers (one started after the proxy), a client's X-Forwarded-Proto is not trusted, and the
// host with a certificate in certs is served over HTTPS with it, plain HTTP redirected there
// (HTTPS_METHOD=redirect, nginx-proxy's default), with HSTS.
// No label filter: as nginx-proxy's, the gateway routes only the containers on its own network,
// which keeps the other tests' containers out.
func TestNginxProxyDropIn(t *testing.T) {
	t.Parallel()
	start := time.Now()
	img := buildImage(t)
	t.Logf("image %s ready after %v", img, time.Since(start).Round(time.Second))
	e := &env{t: t, proxy: "nginx", label: testLabel(t), dir: t.TempDir()}
	t.Cleanup(func() { removeLabelled(labelKey + "=" + e.label) })

	domain := e.label + ".test"
	www, app, secure, intra := "www."+domain, "app."+domain, "secure."+domain, "intranet."+domain

	// The operator's files, as nginx-proxy's documentation lays them out on the host.
	certs, vhostD, htpasswd := filepath.Join(e.dir, "certs"), filepath.Join(e.dir, "vhost.d"), filepath.Join(e.dir, "htpasswd")
	for _, d := range []string{certs, vhostD, htpasswd} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const user, password = "alice", "s3cret-Dr0p"
	hash := dropInOpenSSL(t, "passwd", "-apr1", password) // htpasswd's default format
	if !strings.HasPrefix(hash, "$apr1$") {
		t.Fatalf("openssl passwd -apr1: %q", hash)
	}
	writeFile(t, filepath.Join(htpasswd, secure), user+":"+hash+"\n")
	writeFile(t, filepath.Join(vhostD, app), "add_header X-Vhost-D yes always;\n")
	dropInOpenSSL(t, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
		"-subj", "/CN="+app, "-addext", "subjectAltName=DNS:"+app,
		"-keyout", filepath.Join(certs, app+".key"), "-out", filepath.Join(certs, app+".crt"))
	appCert := dropInReadCert(t, filepath.Join(certs, app+".crt"))

	// The backends, already running when the proxy is switched; one more comes after.
	nw := e.network("net")
	lb := "--label=" + lbLabel + "=least_conn;"
	e.run("www-1", "--network", nw, "-e", "VIRTUAL_HOST="+www, lb)
	e.run("api", "--network", nw, "-e", "VIRTUAL_HOST="+www, "-e", "VIRTUAL_PATH=/api/", "-e", "VIRTUAL_DEST=/")
	e.run("app", "--network", nw, "-e", "VIRTUAL_HOST="+app, "-e", "VIRTUAL_PORT=8080", "-e", "ECHO_PORTS=8080")
	e.run("secure", "--network", nw, "-e", "VIRTUAL_HOST="+secure)
	e.run("intranet", "--network", nw, "-e", "VIRTUAL_HOST="+intra, "-e", "NETWORK_ACCESS=internal")

	// The proxy: nginx-proxy's docker run, with vhost-gen's image (and the harness's label, for
	// the cleanup).
	gw := e.name("proxy")
	e.docker("run", "-d", "--name", gw, "--label", labelKey+"="+e.label, "--network", nw,
		"-p", "127.0.0.1::80", "-p", "127.0.0.1::443",
		"-v", "/var/run/docker.sock:/tmp/docker.sock:ro",
		"-v", certs+":/etc/nginx/certs:ro",
		"-v", vhostD+":/etc/nginx/vhost.d:ro",
		"-v", htpasswd+":/etc/nginx/htpasswd:ro",
		"-e", "DEFAULT_HOST="+www,
		"-e", "TRUST_DOWNSTREAM_PROXY=false",
		img)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := exec.Command("docker", "logs", "--tail", "200", gw).CombinedOutput()
		t.Logf("gateway log (last 200 lines):\n%s", logs)
		cfg, _ := exec.Command("docker", "exec", gw, "cat", "/etc/nginx/conf.d/vhost-gen.conf").CombinedOutput()
		t.Logf("rendered config:\n%s", cfg)
	})
	started := time.Now()
	e.port = dropInPort(t, e, gw, "80/tcp")
	httpsAddr := fmt.Sprintf("127.0.0.1:%d", dropInPort(t, e, gw, "443/tcp"))

	// Every host answers from its container once the gateway has applied; it starts the
	// proxy after its first apply, which may take a while on a busy machine.
	dropInEventually(t, "the hosts to answer from their containers", func() error {
		for _, c := range []struct{ host, path, name, at string }{
			{www, "/", "www-1", "/"},
			{www, "/api/x", "api", "/x"},
			{secure, "/", "401", ""},
			{intra, "/", "intranet", "/"},
		} {
			code, body, _ := dropInFetch(e, c.host, c.path)
			if got := answeredBy(code, body); got != c.name || (code == 200 && field(body, "path") != c.at) {
				return fmt.Errorf("%s%s: %d %q, want %s at %s", c.host, c.path, code, strings.TrimSpace(body), c.name, c.at)
			}
		}
		return nil
	})
	t.Logf("every host answered %v after the proxy container started", time.Since(started).Round(100*time.Millisecond))

	// DEFAULT_HOST: a host no container claims gets www's site, each of its paths.
	for _, h := range []string{"nobody." + domain, "127.0.0.1"} {
		if code, body, _ := dropInFetch(e, h, "/"); code != 200 || field(body, "name") != "www-1" {
			t.Errorf("unknown host %q: got %d %q, want DEFAULT_HOST's www-1", h, code, body)
		}
		if code, body, _ := dropInFetch(e, h, "/api/y"); code != 200 || field(body, "name") != "api" || field(body, "path") != "/y" {
			t.Errorf("unknown host %q /api/y: got %d %q, want DEFAULT_HOST's api at /y", h, code, body)
		}
	}

	// htpasswd/<host>: 401 with nginx-proxy's realm, then the backend with the credentials.
	code, _, hdr := dropInFetch(e, secure, "/")
	if want := `Basic realm="Restricted ` + secure + `"`; code != 401 || hdr.Get("WWW-Authenticate") != want {
		t.Errorf("%s without credentials: %d WWW-Authenticate %q, want 401 %s", secure, code, hdr.Get("WWW-Authenticate"), want)
	}
	if code, body, _ := dropInFetch(e, secure, "/", "Authorization: "+dropInBasic(user, "wrong")); code != 401 {
		t.Errorf("%s with a wrong password: %d %q, want 401", secure, code, body)
	}
	if code, body, _ := dropInFetch(e, secure, "/", "Authorization: "+dropInBasic(user, password)); code != 200 || field(body, "name") != "secure" {
		t.Errorf("%s with the credentials: %d %q, want 200 from secure", secure, code, body)
	}

	// TRUST_DOWNSTREAM_PROXY=false: a client's X-Forwarded-Proto is replaced from its connection.
	code, body, _ := dropInFetch(e, www, "/_headers", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example")
	if code != 200 || !dropInHasLine(body, "X-Forwarded-Proto: http") || !dropInHasLine(body, "X-Forwarded-Host: "+www) {
		t.Errorf("a client's X-Forwarded-Proto and -Host with TRUST_DOWNSTREAM_PROXY=false: %d, the backend got\n%s", code, body)
	}

	// The loadbalance label: least_conn in www's upstream; a second container, started after the
	// proxy, shares the traffic.
	e.run("www-2", "--network", nw, "-e", "VIRTUAL_HOST="+www, lb)
	dropInEventually(t, "both www containers to answer", func() error {
		if seen := e.names(www, 12); seen["www-1"] == 0 || seen["www-2"] == 0 || len(seen) != 2 {
			return fmt.Errorf("12 requests reached %v", seen)
		}
		return nil
	})
	cfg := e.docker("exec", gw, "cat", "/etc/nginx/conf.d/vhost-gen.conf")
	if !dropInUpstreamHas(cfg, e.name("www-1"), "least_conn;") {
		t.Errorf("www's upstream lacks least_conn:\n%s", cfg)
	}
	// NETWORK_ACCESS=internal: the test is an internal client (the Docker network's gateway), so
	// only the config shows the guard that turns outsiders away.
	if !dropInServerHas(cfg, intra, "return 403;") {
		t.Errorf("%s's server has no guard for external clients:\n%s", intra, cfg)
	}

	// HTTPS: the host with a certificate in certs is served with it; plain HTTP redirects there.
	code, body, hdr = dropInFetch(e, app, "/x?q=1")
	if want := "https://" + app + "/x?q=1"; code != 301 || hdr.Get("Location") != want {
		t.Errorf("http://%s/x?q=1: %d Location %q %q, want 301 to %s", app, code, hdr.Get("Location"), body, want)
	}
	roots := x509.NewCertPool()
	roots.AddCert(appCert)
	https := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		TLSClientConfig:   &tls.Config{RootCAs: roots, ServerName: app},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, httpsAddr)
		},
	}}
	var resp *http.Response
	dropInEventually(t, "https://"+app+"/ with its certificate", func() error {
		r, err := https.Get("https://" + app + "/")
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || field(string(b), "name") != "app" || field(string(b), "port") != "8080" {
			return fmt.Errorf("%d %q, want app on port 8080", r.StatusCode, b)
		}
		resp = r
		return nil
	})
	if pc := resp.TLS.PeerCertificates; len(pc) == 0 || !pc[0].Equal(appCert) {
		t.Errorf("https://%s/ was not served with certs/%s.crt", app, app)
	}
	// vhost.d/<host>: its header on the host's responses; HSTS, nginx-proxy's default, too.
	if got := resp.Header.Get("X-Vhost-D"); got != "yes" {
		t.Errorf("https://%s/: X-Vhost-D %q, want the vhost.d file's yes", app, got)
	}
	if got := resp.Header.Get("Strict-Transport-Security"); got != "max-age=31536000" {
		t.Errorf("https://%s/: Strict-Transport-Security %q, want max-age=31536000", app, got)
	}
	// The other hosts have no certificate: plain HTTP still serves them (no redirect), and the
	// vhost.d file is app's alone.
	if code, body, hdr := dropInFetch(e, www, "/"); code != 200 || hdr.Get("X-Vhost-D") != "" {
		t.Errorf("http://%s/: %d X-Vhost-D %q %q, want 200 without the header", www, code, hdr.Get("X-Vhost-D"), body)
	}
}

// dropInFetch is env.fetch, retried a few times while the request itself fails (status 0: a
// timeout on a busy machine), never on an answer.
func dropInFetch(e *env, host, path string, header ...string) (int, string, http.Header) {
	for i := 0; ; i++ {
		code, body, hdr := e.fetch(host, path, header...)
		if code != 0 || i == 4 {
			return code, body, hdr
		}
		time.Sleep(time.Second)
	}
}

// dropInOpenSSL runs openssl and returns its trimmed output.
func dropInOpenSSL(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("openssl", args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

func dropInReadCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// dropInPort is the 127.0.0.1 port docker published a container port on.
func dropInPort(t *testing.T, e *env, container, port string) int {
	t.Helper()
	for _, line := range strings.Split(e.docker("port", container, port), "\n") {
		host, p, err := net.SplitHostPort(strings.TrimSpace(line))
		if err == nil && host == "127.0.0.1" {
			var n int
			if _, err := fmt.Sscan(p, &n); err == nil {
				return n
			}
		}
	}
	t.Fatalf("docker port %s %s: no 127.0.0.1 port", container, port)
	return 0
}

// dropInEventually polls cond until it returns nil: patiently, for the machine is shared; a
// condition still false after two minutes fails the test.
func dropInEventually(t *testing.T, what string, cond func() error) {
	t.Helper()
	waitWithin(t, what, 2*time.Minute, cond)
}

func dropInBasic(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// dropInHasLine says whether text has the line.
func dropInHasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}

// dropInServerHas says whether the nginx server block of port 80 for host has the text.
func dropInServerHas(cfg, host, text string) bool {
	for _, block := range strings.Split(cfg, "\nserver {")[1:] {
		if strings.Contains(block, "server_name "+host+";") && strings.Contains(block, "listen 80") {
			return strings.Contains(block, text)
		}
	}
	return false
}

// dropInUpstreamHas says whether the nginx upstream block that holds a server commented with the
// workload's name has the directive.
func dropInUpstreamHas(cfg, workload, directive string) bool {
	for _, block := range strings.Split(cfg, "upstream ")[1:] {
		block, _, _ = strings.Cut(block, "}")
		if strings.Contains(block, "# "+workload) && strings.Contains(block, directive) {
			return true
		}
	}
	return false
}
