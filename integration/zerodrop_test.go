package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// zeroDropApplies is how many applies (reloads or runtime updates) the churn forces per proxy.
const zeroDropApplies = 50

// TestZeroDrop is the zero-drop proof: wrk keeps requests flowing to one host while its replicas
// are replaced one by one (start a new one, wait until it is routed, `docker stop -t 5` the
// oldest, which keeps serving for ECHO_STOP_GRACE=1s as an app with a pre-stop delay does), until
// vhost-gen has applied at least 50 changes. A healthy server always exists, so not one request
// may fail: no socket error (connect, read, write, or a request slower than wrk's --timeout 5s)
// and no 4xx/5xx (wrk's "Non-2xx or 3xx responses"). Each subtest logs one figure line; run
//
//	go test -count=1 -run TestZeroDrop -v ./integration/
//
// to read them. After the proof, each subtest does the same with `docker kill` (no drain grace:
// the proxy's retries on another server must cover the killed replica's requests).
//
// The subtests run one after the other, and the test is not parallel: Go runs it before the
// parallel tests start, alone, so that its load numbers mean something (on 2 cores shared with
// image builds and Swarm tests, a request can wait seconds for a CPU, which is no drop).
func TestZeroDrop(t *testing.T) {
	for _, c := range []struct {
		name, proxy string
		flags       []string
	}{
		{"nginx", "nginx", nil},
		{"haproxy", "haproxy", nil},
		{"haproxy-reload", "haproxy", []string{"--haproxy-runtime-api=false"}},
	} {
		t.Run(c.name, func(t *testing.T) { zeroDrop(t, c.proxy, c.flags) })
	}
}

func zeroDrop(t *testing.T, proxy string, flags []string) {
	e := newProxyEnv(t, proxy, nil, append([]string{"--proxy-networks", "bridge"}, flags...)...)
	runtimeAPI := proxy == "haproxy" && !slices.Contains(flags, "--haproxy-runtime-api=false")
	label := strings.Join(append([]string{proxy}, flags...), " ")
	c := &churn{e: e, host: e.host("app")}
	c.start()
	c.start()
	e.waitFor("both replicas to answer", func() error {
		if seen := e.names(c.host, 10); len(seen) != 2 {
			return fmt.Errorf("seen %v", seen)
		}
		return nil
	})

	// The proof: graceful replacements.
	before := c.counters()
	w := startWrk(t, e, c.host)
	g := startGoLoad(e, c.host)
	t0 := time.Now()
	time.Sleep(300 * time.Millisecond) // wrk's connections are up and busy
	replaced := 0
	for c.applies()-before.applies() < zeroDropApplies {
		if time.Since(t0) > 120*time.Second {
			t.Fatalf("only %v applies after %d replacements in %s", c.applies()-before.applies(), replaced, time.Since(t0))
		}
		c.start()
		c.retire("stop", "-t", "5")
		replaced++
	}
	c.settle()
	c.wait()
	time.Sleep(300 * time.Millisecond) // the last stops' requests are done
	res := w.stop()
	gres := g.stop()
	took := time.Since(t0)
	d := c.counters().sub(before)
	t.Logf("zero-drop %s: %d requests in %s, %d failed (socket errors: connect %d, read %d, write %d, timeout %d; non-2xx %d); "+
		"%d replicas replaced by docker stop; %v applies: %v reloads, %v runtime updates; HAProxy master reloads %d",
		label, res.requests, took.Round(100*time.Millisecond), res.failed(),
		res.connect, res.read, res.write, res.timeout, res.non2xx,
		replaced, d.applies(), d.reloads, d.updated, d.master)
	t.Logf("zero-drop %s, Go client (retries a GET only when a reused keep-alive connection closed before any reply, as browsers do): %d requests, %d failed (errors %d, non-2xx %d)",
		label, gres.requests, gres.errors+gres.non2xx, gres.errors, gres.non2xx)
	if res.requests == 0 || gres.requests == 0 {
		t.Fatalf("no load: wrk sent %d requests, the Go client %d:\n%s", res.requests, gres.requests, res.out)
	}
	if gres.errors+gres.non2xx != 0 {
		t.Errorf("%d requests failed while a healthy server always existed (Go client): %v", gres.errors+gres.non2xx, gres.firstErr)
	}
	wrkFailures(t, proxy, "graceful", res)
	switch {
	case runtimeAPI:
		if d.updated*2 <= d.applies() || d.master >= int(d.applies()) {
			t.Errorf("the runtime API was not used for most applies: %v applies, %v runtime updates, %d master reloads", d.applies(), d.updated, d.master)
		}
	case proxy == "haproxy":
		if d.updated != 0 || d.master == 0 {
			t.Errorf("with the runtime API off: %v runtime updates (want 0), %d master reloads", d.updated, d.master)
		}
	}

	// The abrupt case: SIGKILL gives no drain grace. The replica dies with requests in flight, and
	// vhost-gen learns of it only from the same kill event; the proxy's retries of those GETs on
	// another server (HAProxy's retry-on, nginx's proxy_next_upstream) must cover it.
	const kills = 4
	before = c.counters()
	w = startWrk(t, e, c.host)
	t0 = time.Now()
	time.Sleep(300 * time.Millisecond)
	for range kills {
		c.start()
		time.Sleep(300 * time.Millisecond) // the new one gets traffic too
		c.retire("kill")
		c.settle()
		time.Sleep(700 * time.Millisecond) // retries and timeouts of the killed replica's requests show
	}
	c.wait()
	res = w.stop()
	d = c.counters().sub(before)
	t.Logf("abrupt %s: %d requests in %s, %d failed (socket errors: connect %d, read %d, write %d, timeout %d; non-2xx %d); "+
		"%d replicas killed by docker kill; %v applies: %v reloads, %v runtime updates",
		label, res.requests, time.Since(t0).Round(100*time.Millisecond), res.failed(),
		res.connect, res.read, res.write, res.timeout, res.non2xx, kills, d.applies(), d.reloads, d.updated)
	wrkFailures(t, proxy, "abrupt", res)
}

// wrkFailures fails the test if wrk saw a failed request, in the case named what.
func wrkFailures(t *testing.T, proxy, what string, res wrkResult) {
	t.Helper()
	if proxy == "nginx" {
		// nginx 1.22's old workers close their clients' idle keep-alive connections when they
		// stop; a request wrk has just written on one fails with a read error (a bare nginx with
		// `return 200` does the same). Browsers and HTTP libraries retry exactly these requests;
		// wrk does not. Anything else (a refused connect, a timeout, a 502) would be ours.
		if res.connect+res.write+res.timeout+res.non2xx != 0 {
			t.Errorf("%s: wrk saw failures other than nginx's keep-alive closes at reload:\n%s", what, res.out)
		}
		return
	}
	if res.failed() != 0 {
		t.Errorf("%s: %d requests failed while a healthy server always existed:\n%s", what, res.failed(), res.out)
	}
}

// churn starts and retires the replicas of one host, oldest first. The next replica is created
// in the background while the current one is churned, so that a cycle costs a `docker start`,
// not a `docker run`.
type churn struct {
	e    *env
	host string
	n    int
	live []string // names, oldest first
	ips  map[string]string
	next chan created // the replica being created, if any
	done []chan error // background docker stops and kills
	// leaving are the replicas retired but maybe still routed.
	leaving []string
}

type created struct {
	name string
	err  error
}

// create creates the next replica in the background.
func (c *churn) create() chan created {
	c.n++
	name := fmt.Sprintf("r%d", c.n)
	ch := make(chan created, 1)
	args := []string{"create", "--rm", "--name", c.e.name(name), "--label", labelKey + "=" + c.e.label,
		"-e", "ECHO_NAME=" + name, "-e", "VIRTUAL_HOST=" + c.host, "-e", "ECHO_STOP_GRACE=1s", echoImage}
	go func() {
		out, err := exec.Command("docker", args...).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, out)
		}
		ch <- created{name, err}
	}()
	return ch
}

// start starts a new replica and waits until vhost-gen routes it (and until the replicas retired
// before have left the routes).
func (c *churn) start() {
	c.e.t.Helper()
	if c.ips == nil {
		c.ips = map[string]string{}
	}
	if c.next == nil {
		c.next = c.create()
	}
	r := <-c.next
	if r.err != nil {
		c.e.t.Fatal(r.err)
	}
	c.e.docker("start", c.e.name(r.name))
	c.next = c.create()
	ip := c.e.ip(r.name, "bridge") + ":80"
	c.ips[r.name] = ip
	c.live = append(c.live, r.name)
	c.settle()
	c.e.waitFor(r.name+" to be routed", func() error {
		if s := c.e.servers(c.host); !slices.Contains(s, ip) {
			return fmt.Errorf("servers %v", s)
		}
		return nil
	})
}

// retire runs a docker command (stop or kill, with args) on the oldest replica in the
// background. The next start or settle waits until vhost-gen has taken it out of the routes:
// meanwhile the next replica starts, which saves a docker start's time per cycle.
func (c *churn) retire(cmd string, args ...string) {
	c.e.t.Helper()
	name := c.live[0]
	c.live = c.live[1:]
	done := make(chan error, 1)
	c.done = append(c.done, done)
	full := append(append([]string{cmd}, args...), c.e.name(name))
	go func() {
		out, err := exec.Command("docker", full...).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("docker %s: %v: %s", strings.Join(full, " "), err, out)
		}
		done <- err
	}()
	c.leaving = append(c.leaving, name)
}

// settle waits until the retired replicas have left the routes.
func (c *churn) settle() {
	c.e.t.Helper()
	for _, name := range c.leaving {
		ip := c.ips[name]
		c.e.waitFor(name+" to leave the routes", func() error {
			if s := c.e.servers(c.host); slices.Contains(s, ip) {
				return fmt.Errorf("servers %v", s)
			}
			return nil
		})
	}
	c.leaving = nil
}

// wait waits for the background docker commands.
func (c *churn) wait() {
	c.e.t.Helper()
	for _, d := range c.done {
		if err := <-d; err != nil {
			c.e.t.Error(err)
		}
	}
	c.done = nil
}

// applies is vhost-gen's count of applied changes: reloads and runtime updates.
func (c *churn) applies() float64 {
	return c.e.metric("vhostgen_applies_total", `result="applied"`) + c.e.metric("vhostgen_applies_total", `result="updated"`)
}

// applyCounters are vhost-gen's apply counters and HAProxy's master reloads at one moment.
type applyCounters struct {
	applied, updated, reloads float64
	master                    int
}

func (c *churn) counters() applyCounters {
	e := c.e
	a := applyCounters{
		applied: e.metric("vhostgen_applies_total", `result="applied"`),
		updated: e.metric("vhostgen_applies_total", `result="updated"`),
		reloads: e.reloads(),
	}
	if e.proxy == "haproxy" {
		a.master = e.masterReloads()
	}
	return a
}

func (a applyCounters) sub(b applyCounters) applyCounters {
	return applyCounters{a.applied - b.applied, a.updated - b.updated, a.reloads - b.reloads, a.master - b.master}
}

func (a applyCounters) applies() float64 { return a.applied + a.updated }

// wrkRun is a wrk process that runs until stopped.
type wrkRun struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  bytes.Buffer
	done chan struct{}
}

// startWrk starts wrk against host through the proxy, for longer than any test; stop ends it.
// --timeout 5s: a request slower than that counts as a timeout, a failure.
func startWrk(t *testing.T, e *env, host string) *wrkRun {
	t.Helper()
	w := &wrkRun{t: t, done: make(chan struct{})}
	w.cmd = exec.Command("wrk", "-t2", "-c16", "-d300s", "--timeout", "5s", "--latency",
		"-H", "Host: "+host, fmt.Sprintf("http://127.0.0.1:%d/", e.port))
	w.cmd.Stdout, w.cmd.Stderr = &w.out, &w.out
	if err := w.cmd.Start(); err != nil {
		t.Fatalf("wrk: %v", err)
	}
	go func() { w.cmd.Wait(); close(w.done) }()
	t.Cleanup(func() {
		select {
		case <-w.done:
		default:
			w.cmd.Process.Kill()
			<-w.done
		}
	})
	return w
}

type wrkResult struct {
	out                                             string
	requests, connect, read, write, timeout, non2xx int
}

func (r wrkResult) failed() int { return r.connect + r.read + r.write + r.timeout + r.non2xx }

var (
	wrkRequests = regexp.MustCompile(`(\d+) requests in `)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
)

// stop interrupts wrk, which then prints its summary, and parses it. wrk prints the socket
// errors and the non-2xx line only when they are not zero.
func (w *wrkRun) stop() wrkResult {
	w.t.Helper()
	w.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-w.done:
	case <-time.After(15 * time.Second):
		w.cmd.Process.Kill()
		<-w.done
		w.t.Fatalf("wrk did not stop on SIGINT:\n%s", w.out.String())
	}
	r := wrkResult{out: w.out.String()}
	m := wrkRequests.FindStringSubmatch(r.out)
	if m == nil {
		w.t.Fatalf("no request count in wrk's output:\n%s", r.out)
	}
	r.requests, _ = strconv.Atoi(m[1])
	if m := wrkSocket.FindStringSubmatch(r.out); m != nil {
		r.connect, _ = strconv.Atoi(m[1])
		r.read, _ = strconv.Atoi(m[2])
		r.write, _ = strconv.Atoi(m[3])
		r.timeout, _ = strconv.Atoi(m[4])
	}
	if m := wrkNon2xx.FindStringSubmatch(r.out); m != nil {
		r.non2xx, _ = strconv.Atoi(m[1])
	}
	return r
}

// goLoad is a keep-alive load client built on Go's HTTP client, which, like a browser, resends a
// GET when a reused connection turns out to have been closed by the server before any reply
// (RFC 9110 9.2.2); every other error and every non-2xx answer is a failure.
type goLoad struct {
	stopc chan struct{}
	done  chan goLoadResult
}

type goLoadResult struct {
	requests, errors, non2xx int
	firstErr                 error
}

func startGoLoad(e *env, host string) *goLoad {
	g := &goLoad{stopc: make(chan struct{}), done: make(chan goLoadResult)}
	tr := &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: time.Minute}
	cl := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	url := fmt.Sprintf("http://127.0.0.1:%d/", e.port)
	results := make(chan goLoadResult)
	for range 8 {
		go func() {
			var r goLoadResult
			for {
				select {
				case <-g.stopc:
					results <- r
					return
				default:
				}
				req, _ := http.NewRequest("GET", url, nil)
				req.Host = host
				resp, err := cl.Do(req)
				r.requests++
				if err != nil {
					r.errors++
					if r.firstErr == nil {
						r.firstErr = err
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					r.non2xx++
					if r.firstErr == nil {
						r.firstErr = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
			}
		}()
	}
	go func() {
		var total goLoadResult
		for range 8 {
			r := <-results
			total.requests += r.requests
			total.errors += r.errors
			total.non2xx += r.non2xx
			if total.firstErr == nil {
				total.firstErr = r.firstErr
			}
		}
		tr.CloseIdleConnections()
		g.done <- total
	}()
	return g
}

func (g *goLoad) stop() goLoadResult {
	close(g.stopc)
	return <-g.done
}
