package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/apply/haproxy"
)

// Two TLS figures through the real proxies on 127.0.0.1.
//
// BenchmarkHAProxyCertLoad: how long a replaced certificate takes to be served by a running
// HAProxy, from the command (or the file's write) to the first fresh handshake (new connection,
// no resumption) that shows the new serial; ms/op is the mean, ms-median-stable the time until
// five handshakes in a row show it:
//
//	runtime-api     raw: "set ssl cert <file> <<payload" + "commit ssl cert <file>" on the stats
//	                socket (what vhost-gen's runtime path sends), vhost-gen stopped once the
//	                config is in
//	reload          raw: the new PEM file in place, then "reload" on the master CLI, vhost-gen
//	                stopped
//	vg-runtime-api  user-visible: a new pair renamed into vhost-gen's --certs-dir at a random
//	                moment of its 2s poll, vhost-gen with its default debounce (the runtime API
//	                replaces the certificate)
//	vg-reload       user-visible: the same with --haproxy-runtime-api=false (a master reload)
//
// The raw ones take milliseconds; the user-visible ones are dominated by the certificates
// directory's poll (a change is seen at the next poll and used once a second one finds it
// unchanged: 2 to 4s). Run the raw ones with more iterations than the vhost-gen ones:
//
//	go test -run '^$' -bench 'BenchmarkHAProxyCertLoad/^(runtime-api|reload)$' -benchtime 20x ./integration/
//	go test -run '^$' -bench 'BenchmarkHAProxyCertLoad/^vg-' -benchtime 5x ./integration/
//
// BenchmarkTLSHandshakes: TLS handshakes per second through each proxy with the SSL settings
// vhost-gen renders (the default policy, Mozilla-Intermediate; no session tickets and the session
// cache as rendered), 4 clients in parallel each doing a fresh tls.Dial, GET / over HTTP/1.1
// with Connection: close to an echo container, and reading the answer to EOF; b.N is the number
// of handshakes (b.N=1 is a warm-up). Sub-benchmarks per proxy:
//
//	ecdsa-full, rsa2048-full       no session cache: every handshake is full
//	ecdsa-resumed, rsa2048-resumed a ClientSessionCache per client: resumed-% is the share of
//	                               handshakes the proxy resumed (TLS 1.3: stateful tickets,
//	                               both configs turn stateless ones off)
//	ecdsa-resumed-defaultcrt       the same once a default.crt is in the certificates directory
//	                               (nginx's default server then carries the SSL settings too)
//
// for "nginx" (the harness's nginx.conf: worker_processes 1), "nginx-2workers" (the same with
// worker_processes auto; no defaultcrt run) and "haproxy" (its default nbthread: a thread per
// CPU). proxy-cpu-us/op and client-cpu-us/op are the CPU time of the proxy's processes and of
// this process (the clients) per handshake. The setup logs the rendered SSL settings and an
// openssl s_client -tls1_2 -reconnect (session-ID resumption, which Go's client does not do).
//
//	go test -run '^$' -bench 'BenchmarkTLSHandshakes' -benchtime 2000x -v ./integration/
//
// The clients run on the same machine as the proxy and need about as much CPU per handshake as
// it does: on a small machine the figures are a bound of the pair, not of the proxy alone.

// --- environment ------------------------------------------------------------------------------

// newTLSBenchEnv is newTLSEnv for any testing.TB (a benchmark).
func newTLSBenchEnv(tb testing.TB, proxy, certsDir string, extra ...string) *tlsEnv {
	tb.Helper()
	te := &tlsEnv{httpsPort: freePort(tb), certsDir: certsDir}
	te.flags = []string{"--proxy-networks", "bridge",
		"--listen-https", "127.0.0.1:" + strconv.Itoa(te.httpsPort),
		"--certs-dir", certsDir}
	if proxy == "haproxy" {
		te.flags = append(te.flags, "--haproxy-certs-dir", tb.TempDir())
	}
	te.flags = append(te.flags, extra...)
	te.env = newProxyEnv(tb, proxy, nil, te.flags...)
	return te
}

// certLoadEnv starts HAProxy and vhost-gen (with extra flags) with one site, app, served over
// HTTPS with a certificate of its own from the certificates directory.
func certLoadEnv(b *testing.B, extra ...string) (te *tlsEnv, host string) {
	b.Helper()
	label := testLabel(b)
	host = "app." + label + ".test"
	dir := b.TempDir()
	leaf := writeCert(b, dir, host, host)
	te = newTLSBenchEnv(b, "haproxy", dir, append([]string{"--acme=false"}, extra...)...)
	if te.label != label {
		b.Fatalf("label %q, want %q", te.label, label)
	}
	te.run("app", "-e", "VIRTUAL_HOST="+host)
	te.waitServed(host, serial(leaf))
	return te, host
}

// --- BenchmarkHAProxyCertLoad -----------------------------------------------------------------

func BenchmarkHAProxyCertLoad(b *testing.B) {
	b.Run("runtime-api", func(b *testing.B) { rawCertLoad(b, false) })
	b.Run("reload", func(b *testing.B) { rawCertLoad(b, true) })
	b.Run("vg-runtime-api", func(b *testing.B) { vhostGenCertLoad(b, true) })
	b.Run("vg-reload", func(b *testing.B) { vhostGenCertLoad(b, false) })
}

// rawCertLoad replaces app's certificate in HAProxy directly, through the runtime API or by a
// master reload, with vhost-gen stopped once the config is in.
func rawCertLoad(b *testing.B, reload bool) {
	te, host := certLoadEnv(b)
	file := loadedPEM(te, host)
	te.stopVhostGen() // nothing but this benchmark touches HAProxy from here
	rt := &haproxy.Runtime{Socket: filepath.Join(te.dir, "admin.sock")}
	ctx := context.Background()
	reloadsBefore := te.masterReloads()
	var seen, stable, cmds []time.Duration
	errs := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		crt, key, leaf := makeCert(b, host, host)
		data := append(slices.Clone(crt), key...) // vhost-gen's PEM: the chain, then the key
		writeAtomic(b, file, data, 0o600)         // a reload loads it; the runtime API is told it
		payload := benchCertPayload(data)
		want := serial(leaf)
		b.StartTimer()

		t0 := time.Now()
		if reload {
			// HAProxy 2.6's master closes the CLI connection as it re-executes: no reply.
			if _, err := te.master("reload"); err != nil && !strings.Contains(err.Error(), "reset") {
				b.Logf("master reload: %v", err)
			}
		} else {
			out, err := rt.Do(ctx, "set ssl cert "+file+" <<\n"+payload)
			if err != nil || !strings.HasPrefix(out, "Transaction ") {
				b.Fatalf("set ssl cert: %v %q", err, out)
			}
			out, err = rt.Do(ctx, "commit ssl cert "+file)
			if err != nil || !strings.HasSuffix(out, "Success!") {
				b.Fatalf("commit ssl cert: %v %q", err, out)
			}
		}
		cmds = append(cmds, time.Since(t0))
		first, all, e := pollSerial(b, te, host, want, t0)
		seen, stable, errs = append(seen, first), append(stable, all), errs+e

		b.StopTimer()
		if reload {
			te.masterReloads()                     // the master CLI is back
			waitOldWorkersGone(te, 10*time.Second) // not to pile up workers
		}
		b.StartTimer()
	}
	b.StopTimer()
	reloads := te.masterReloads() - reloadsBefore
	reportDurations(b, seen, stable)
	b.ReportMetric(ms(median(cmds)), "ms-median-command")
	b.ReportMetric(float64(reloads)/float64(len(seen)), "reloads/op")
	b.ReportMetric(float64(errs), "handshake-errors")
}

// certsPoll is how often vhost-gen polls its certificates directory (cmd/vhost-gen/tls.go).
const certsPoll = 2 * time.Second

// vhostGenCertLoad replaces app's pair in vhost-gen's certificates directory and waits for it to
// be served: vhost-gen's defaults (runtime API) or --haproxy-runtime-api=false (a reload).
func vhostGenCertLoad(b *testing.B, runtimeAPI bool) {
	// vhost-gen's default debounce, as a user runs it (the harness's is shorter).
	te, host := certLoadEnv(b, "--wait", "100ms:1s", "--haproxy-runtime-api="+strconv.FormatBool(runtimeAPI))
	reloadsBefore := te.masterReloads()
	var seen, stable, applied []time.Duration
	errs := 0
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		crt, key, leaf := makeCert(b, host, host)
		// A write at a random moment of the directory's 2s poll, not always at the same one.
		time.Sleep(mrand.N(certsPoll))
		b.StartTimer()
		t0 := time.Now()
		// As TestTLSCertsDirWatched and an ACME client do: key first, each renamed into place.
		writeAtomic(b, filepath.Join(te.certsDir, host+".key"), key, 0o600)
		writeAtomic(b, filepath.Join(te.certsDir, host+".crt"), crt, 0o644)
		first, all, e := pollSerial(b, te, host, serial(leaf), t0)
		seen, stable, errs = append(seen, first), append(stable, all), errs+e
		b.StopTimer()
		te.waitFor("vhost-gen to log the apply", func() error {
			at, ok := appliedAfter(te.vgLog.String(), t0)
			if !ok {
				return fmt.Errorf("no apply logged after %v", t0)
			}
			applied = append(applied, at.Sub(t0))
			return nil
		})
		b.StartTimer()
	}
	b.StopTimer()
	reloads := te.masterReloads() - reloadsBefore
	reportDurations(b, seen, stable)
	// When vhost-gen logged the apply (after its runtime API commands or its reload): the rest
	// of the figure, up to that, is the certificates directory's poll.
	b.ReportMetric(ms(median(applied)), "ms-median-to-apply-logged")
	b.ReportMetric(float64(reloads)/float64(len(seen)), "reloads/op")
	b.ReportMetric(float64(errs), "handshake-errors")
	if runtimeAPI && reloads != 0 {
		b.Errorf("%d reloads with the runtime API: the certificates were not replaced hot\n%s", reloads, te.vgLog.String())
	}
	if n := te.checkFailed(); n != 0 {
		b.Errorf("%v applies failed the proxy's check", n)
	}
}

var appliedLine = regexp.MustCompile(`(?m)^time=(\S+) level=INFO msg="applied: [^"]*"`)

// appliedAfter is the time of vhost-gen's first apply logged after t0.
func appliedAfter(log string, t0 time.Time) (time.Time, bool) {
	for _, m := range appliedLine.FindAllStringSubmatch(log, -1) {
		if at, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && !at.Before(t0) {
			return at, true
		}
	}
	return time.Time{}, false
}

func reportDurations(b *testing.B, seen, stable []time.Duration) {
	var sum time.Duration
	for _, d := range seen {
		sum += d
	}
	b.ReportMetric(ms(sum)/float64(len(seen)), "ms/op")
	b.ReportMetric(ms(median(seen)), "ms-median")
	b.ReportMetric(ms(slices.Min(seen)), "ms-min")
	b.ReportMetric(ms(slices.Max(seen)), "ms-max")
	b.ReportMetric(ms(median(stable)), "ms-median-stable")
	b.ReportMetric(0, "ns/op") // the loop includes untimed waits: ms/op is the figure
}

// pollSerial does fresh handshakes with SNI sni, back to back, until one shows serial want
// (first, measured from t0), then until five in a row do (all); errs counts failed handshakes.
func pollSerial(b *testing.B, te *tlsEnv, sni, want string, t0 time.Time) (first, all time.Duration, errs int) {
	b.Helper()
	deadline := t0.Add(30 * time.Second)
	inRow := 0
	var last string
	for {
		leaf, err := te.handshake(sni)
		switch {
		case err != nil:
			errs++
			inRow = 0
			last = err.Error()
		case serial(leaf) == want:
			if first == 0 {
				first = time.Since(t0)
			}
			if inRow++; inRow == 5 {
				return first, time.Since(t0), errs
			}
		default:
			inRow = 0
			last = "serial " + serial(leaf)
		}
		if time.Now().After(deadline) {
			b.Fatalf("%s: serial %s not served steadily after %v (last: %s)\n%s", sni, want, time.Since(t0), last, te.vgLog.String())
		}
		if err != nil {
			time.Sleep(time.Millisecond)
		}
	}
}

// loadedPEM is the file HAProxy loaded app's certificate from, as its runtime API lists them.
func loadedPEM(te *tlsEnv, host string) string {
	te.t.Helper()
	var file string
	te.waitFor("HAProxy to list "+host+"'s certificate", func() error {
		out, err := te.runtimeAPI("show ssl cert")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, "#") && strings.Contains(filepath.Base(line), host) {
				file = strings.TrimSpace(line)
				return nil
			}
		}
		return fmt.Errorf("show ssl cert:\n%s", out)
	})
	return file
}

// benchCertPayload is a PEM file as a runtime API payload: its lines without the empty ones (an
// empty line ends the payload), as vhost-gen's runtime path sends it.
func benchCertPayload(data []byte) string {
	var sb strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		if line = strings.TrimRight(line, "\r"); strings.TrimSpace(line) != "" {
			sb.WriteString(line + "\n")
		}
	}
	return sb.String()
}

// waitOldWorkersGone waits, for up to limit, until HAProxy's master lists one worker only (2.6
// lists the old ones among "# workers", with a reload count above 0).
func waitOldWorkersGone(te *tlsEnv, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if out, err := te.master("show proc"); err == nil {
			workers := 0
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) >= 2 && f[1] == "worker" {
					workers++
				}
			}
			if workers == 1 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --- BenchmarkTLSHandshakes -------------------------------------------------------------------

// handshakeClients is how many clients dial at once.
const handshakeClients = 4

func BenchmarkTLSHandshakes(b *testing.B) {
	for _, variant := range []string{"nginx", "nginx-2workers", "haproxy"} {
		b.Run(variant, func(b *testing.B) {
			proxy, _, _ := strings.Cut(variant, "-")
			label := testLabel(b)
			ec, rs := "ec."+label+".test", "rsa."+label+".test"
			dir := b.TempDir()
			writeCert(b, dir, ec, ec)
			writeRSACert(b, dir, rs, rs)
			te := newTLSBenchEnv(b, proxy, dir, "--acme=false")
			if te.label != label {
				b.Fatalf("label %q, want %q", te.label, label)
			}
			if variant == "nginx-2workers" {
				nginxWorkersAuto(b, te)
			}
			te.run("app", "-e", "VIRTUAL_HOST="+ec+","+rs)
			for _, h := range []string{ec, rs} {
				// Steadily: a reloaded nginx's old worker may take a connection or two still.
				te.waitStable(h+" over HTTPS with its own certificate", func() error {
					if a := te.do("GET", h, "/", true); a.Status != 200 || a.Served != "app" || a.Cert != strings.ReplaceAll(h, te.label, "L") {
						return fmt.Errorf("got %v", a)
					}
					return nil
				})
			}
			logSSLSettings(b, te)
			logTLS12Resumption(b, te, ec)
			for _, c := range []struct {
				name, sni string
				resume    bool
			}{{"ecdsa-full", ec, false}, {"ecdsa-resumed", ec, true}, {"rsa2048-full", rs, false}, {"rsa2048-resumed", rs, true}} {
				b.Run(c.name, func(b *testing.B) { handshakeLoad(b, te, c.sni, c.resume) })
			}
			if variant == "nginx-2workers" {
				return
			}
			// The same with a default certificate: nginx's default server then gets the SSL
			// settings (and session cache) too, where without one it only refuses handshakes.
			def := writeCert(b, dir, "default", "default.invalid")
			te.waitStable("the default certificate served to a handshake without SNI", func() error {
				leaf, err := te.handshake("")
				if err != nil {
					return err
				}
				if serial(leaf) != serial(def) {
					return fmt.Errorf("serial %s (%s)", serial(leaf), leaf.Subject.CommonName)
				}
				return nil
			})
			logSSLSettings(b, te)
			logTLS12Resumption(b, te, ec)
			b.Run("ecdsa-resumed-defaultcrt", func(b *testing.B) { handshakeLoad(b, te, ec, true) })
		})
	}
}

// handshakeLoad does b.N handshakes (each with GET / and Connection: close) from
// handshakeClients clients at once and reports handshakes/s; with resume, each client keeps a
// session cache of its own.
func handshakeLoad(b *testing.B, te *tlsEnv, sni string, resume bool) {
	addr := te.httpsAddr()
	req := []byte("GET / HTTP/1.1\r\nHost: " + sni + "\r\nUser-Agent: vhost-gen-bench\r\nConnection: close\r\n\r\n")
	var next, resumed, failed atomic.Int64
	var firstErr atomic.Value
	var state atomic.Pointer[tls.ConnectionState]
	var wg sync.WaitGroup
	proxyCPU0, clientCPU0 := proxyCPU(b, te), selfCPU()
	b.ResetTimer()
	start := time.Now()
	for range handshakeClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var cache tls.ClientSessionCache
			if resume {
				cache = tls.NewLRUClientSessionCache(4)
			}
			for next.Add(1) <= int64(b.N) {
				cs, err := oneHTTPSRequest(addr, sni, req, cache)
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				if cs.DidResume {
					resumed.Add(1)
				}
				state.CompareAndSwap(nil, &cs)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	proxyCPU1, clientCPU1 := proxyCPU(b, te), selfCPU()
	ok := int64(b.N) - failed.Load()
	b.ReportMetric(float64(ok)/elapsed.Seconds(), "handshakes/s")
	b.ReportMetric(float64((proxyCPU1-proxyCPU0)/time.Microsecond)/float64(b.N), "proxy-cpu-us/op")
	b.ReportMetric(float64((clientCPU1-clientCPU0)/time.Microsecond)/float64(b.N), "client-cpu-us/op")
	b.ReportMetric(100*float64(resumed.Load())/float64(max(ok, 1)), "resumed-%")
	if n := failed.Load(); n > 0 {
		b.Errorf("%d of %d requests failed; first: %v", n, b.N, firstErr.Load())
	}
	if cs := state.Load(); cs != nil && b.N > 1 {
		b.Logf("%s: %s %s, group %s, resumed %d of %d", sni, tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite),
			cs.CurveID, resumed.Load(), ok)
	}
}

// oneHTTPSRequest dials addr with SNI sni (a fresh tls.Config: no session cache unless cache),
// sends req and reads the answer to EOF; it wants a 200.
func oneHTTPSRequest(addr, sni string, req []byte, cache tls.ClientSessionCache) (tls.ConnectionState, error) {
	conf := &tls.Config{ServerName: sni, InsecureSkipVerify: true, ClientSessionCache: cache,
		NextProtos: []string{"http/1.1"},
		// What the proxies pick (OpenSSL 3.0 has no ML-KEM): no hybrid key share to compute for
		// nothing on the client's side of a small machine.
		CurvePreferences: []tls.CurveID{tls.X25519, tls.CurveP256}}
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, conf)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(req); err != nil {
		return tls.ConnectionState{}, err
	}
	body, err := io.ReadAll(c)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	if !bytes.HasPrefix(body, []byte("HTTP/1.1 200 ")) {
		line, _, _ := bytes.Cut(body, []byte("\r\n"))
		return tls.ConnectionState{}, fmt.Errorf("answer %q", line)
	}
	return c.ConnectionState(), nil
}

// nginxWorkersAuto turns the harness's nginx.conf to worker_processes auto (one per CPU) and
// reloads nginx.
func nginxWorkersAuto(b *testing.B, te *tlsEnv) {
	b.Helper()
	path := filepath.Join(te.dir, "nginx.conf")
	conf, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	if !bytes.Contains(conf, []byte("worker_processes 1;")) {
		b.Fatalf("nginx.conf has no worker_processes 1:\n%s", conf)
	}
	if err := os.WriteFile(path, bytes.Replace(conf, []byte("worker_processes 1;"), []byte("worker_processes auto;"), 1), 0o644); err != nil {
		b.Fatal(err)
	}
	te.nginx("reload")
	te.waitFor("nginx with one worker per CPU", func() error {
		pid, err := os.ReadFile(filepath.Join(te.dir, "nginx.pid"))
		if err != nil {
			return err
		}
		out, _ := exec.Command("pgrep", "-P", strings.TrimSpace(string(pid)), "-f", "nginx: worker process").Output()
		if n := len(strings.Fields(string(out))); n < 2 {
			return fmt.Errorf("%d workers", n)
		}
		return nil
	})
	time.Sleep(time.Second) // the old worker goes
}

var haproxyCrtList = regexp.MustCompile(`(?m)^\s*bind .* crt-list ['"]?([^'" ]+)`)

// logSSLSettings logs the SSL settings of the rendered config (and HAProxy's crt-list).
func logSSLSettings(b *testing.B, te *tlsEnv) {
	var lines []string
	conf := te.config()
	for _, line := range strings.Split(conf, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "ssl_") || strings.HasPrefix(t, "listen") && strings.Contains(t, " ssl") ||
			strings.HasPrefix(t, "bind") && strings.Contains(t, " ssl") || strings.HasPrefix(t, "worker_processes") || strings.HasPrefix(t, "nbthread") {
			if !slices.Contains(lines, t) {
				lines = append(lines, t)
			}
		}
	}
	if m := haproxyCrtList.FindStringSubmatch(conf); m != nil {
		if crt, err := os.ReadFile(m[1]); err == nil {
			lines = append(lines, "crt-list: "+strings.TrimSpace(strings.ReplaceAll(string(crt), te.label, "L")))
		}
	}
	b.Logf("%s rendered SSL settings (distinct lines):\n  %s", te.proxy, strings.Join(lines, "\n  "))
}

// logTLS12Resumption logs whether the proxy resumes a TLS 1.2 session by its ID (Go's client
// resumes TLS 1.2 by tickets only, which both configs turn off): openssl s_client -reconnect
// connects six times with the first session.
func logTLS12Resumption(b *testing.B, te *tlsEnv, sni string) {
	for _, v := range []string{"-tls1_2"} {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", te.httpsAddr(), "-servername", sni, v, "-reconnect")
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.CombinedOutput()
		cancel()
		b.Logf("%s: openssl s_client %s -reconnect: %d Reused, %d New", te.proxy, v,
			strings.Count(string(out), "\nReused,"), strings.Count(string(out), "\nNew,"))
		if err != nil {
			b.Logf("openssl s_client %s: %v\n%s", v, err, out)
		}
	}
}

// writeRSACert is writeCert with an RSA 2048 key.
func writeRSACert(tb testing.TB, dir, name string, names ...string) *x509.Certificate {
	tb.Helper()
	ca := testCA(tb)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	sn, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	tmpl := &x509.Certificate{SerialNumber: sn, Subject: pkix.Name{CommonName: name}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	crt := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})...)
	writeAtomic(tb, filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600)
	writeAtomic(tb, filepath.Join(dir, name+".crt"), crt, 0o644)
	return leaf
}

// selfCPU is the CPU time (user and system) this process used so far: the clients'.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// proxyCPU is the CPU time (user and system) the proxy's master and its live workers used so
// far, from /proc (clock ticks of 10ms: meaningful over a second or more).
func proxyCPU(b *testing.B, te *tlsEnv) time.Duration {
	raw, err := os.ReadFile(filepath.Join(te.dir, te.proxy+".pid"))
	if err != nil {
		b.Fatalf("the proxy's pidfile: %v", err)
	}
	pid := strings.TrimSpace(string(raw))
	pids := []string{pid}
	if kids, err := os.ReadFile("/proc/" + pid + "/task/" + pid + "/children"); err == nil {
		pids = append(pids, strings.Fields(string(kids))...)
	}
	var ticks int64
	for _, p := range pids {
		stat, err := os.ReadFile("/proc/" + p + "/stat")
		if err != nil {
			continue // gone
		}
		// After "(comm)": state is field 3, utime and stime are fields 14 and 15.
		i := bytes.LastIndexByte(stat, ')')
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += u + st
	}
	return time.Duration(ticks) * 10 * time.Millisecond // CLK_TCK is 100 on Linux
}
