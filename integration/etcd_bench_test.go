package integration

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/registry"
)

// The etcd benchmarks are run by hand, each with a fixed count, e.g.
//   go test -run '^$' -bench 'BenchmarkEtcd' -benchtime 5x ./integration/

// BenchmarkEtcdStartToFirst200 is BenchmarkStartToFirst200 across etcd: from `docker run` on the
// publisher's engine to the first 200 through a gateway in another process (--source etcd), with
// the default debounce, once per proxy.
func BenchmarkEtcdStartToFirst200(b *testing.B) {
	for _, proxy := range proxies {
		b.Run(proxy, func(b *testing.B) {
			etcd := startEtcd(b)
			e := newProxyEnv(b, proxy, nil, etcdFlags(etcd.endpoint, "--proxy-networks", "bridge", "--wait", "100ms:1s")...)
			startPublisher(b, etcd, labelKey+"="+e.label, "--publisher-id", "bench")
			measureStartToFirst200(b, e)
		})
	}
}

// BenchmarkEtcdPublisherKill: a publisher killed (SIGKILL, --etcd-ttl 3s) to its route gone
// (503) on a gateway; each iteration starts a publisher, waits for the 200, kills it.
func BenchmarkEtcdPublisherKill(b *testing.B) {
	etcd := startEtcd(b)
	e := newProxyEnv(b, "nginx", nil, etcdFlags(etcd.endpoint, "--proxy-networks", "bridge", "--wait", "100ms:1s")...)
	h := e.host("victim")
	e.run("victim", "-e", "VIRTUAL_HOST="+h)
	var ds []time.Duration
	for b.Loop() {
		p := startPublisher(b, etcd, labelKey+"="+e.label, "--publisher-id", "bench", "--etcd-ttl", "3s")
		pollStatus(b, e, h, 200)
		t0 := time.Now()
		p.signal(syscall.SIGKILL)
		pollStatus(b, e, h, 503)
		ds = append(ds, time.Since(t0))
	}
	b.ReportMetric(ms(median(ds)), "ms-median-kill-to-503")
	b.ReportMetric(ms(slices.Max(ds)), "ms-max-kill-to-503")
}

// BenchmarkEtcdWrites: etcd writes (put + delete of workload keys) per container start, per
// container stop (b.N containers each), and per resync with nothing changed.
func BenchmarkEtcdWrites(b *testing.B) {
	etcd := startEtcd(b)
	e := containerEnv(b)
	p := startPublisher(b, etcd, labelKey+"="+e.label, "--publisher-id", "bench", "--resync", "2s")
	pfx := registryPrefix + "workloads/bench/"
	writes := func() float64 {
		return p.metric("vhostgen_etcd_writes_total", `op="put"`) + p.metric("vhostgen_etcd_writes_total", `op="delete"`)
	}
	txns := func() float64 { return p.metric("vhostgen_etcd_writes_total", `op="txn"`) }
	keys := func(n int) {
		waitUntil(b, fmt.Sprintf("%d keys", n), func() error {
			if ks := etcd.keys(pfx); len(ks) != n {
				return fmt.Errorf("%d keys", len(ks))
			}
			return nil
		})
	}
	// settle waits for two more resyncs: every event before them has been written.
	settle := func() {
		n := p.count("etcd: reconciled")
		waitUntil(b, "two resyncs", func() error {
			if p.count("etcd: reconciled") < n+2 {
				return fmt.Errorf("not yet")
			}
			return nil
		})
	}
	w0, t0 := writes(), txns()
	var names []string
	for b.Loop() {
		name := fmt.Sprintf("c%d", len(names))
		e.run(name, "-e", "VIRTUAL_HOST="+e.host(name))
		names = append(names, name)
	}
	n := float64(len(names))
	keys(len(names))
	settle()
	w1, t1 := writes(), txns()
	for _, name := range names {
		e.docker("stop", "-t", "2", e.name(name))
	}
	keys(0)
	settle()
	w2, t2 := writes(), txns()
	r := p.count("etcd: reconciled")
	waitUntil(b, "three idle resyncs", func() error {
		if p.count("etcd: reconciled") < r+3 {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	resyncs := float64(p.count("etcd: reconciled") - r)
	w3 := writes()
	b.ReportMetric((w1-w0)/n, "writes/container-start")
	b.ReportMetric((t1-t0)/n, "txns/container-start")
	b.ReportMetric((w2-w1)/n, "writes/container-stop")
	b.ReportMetric((t2-t1)/n, "txns/container-stop")
	b.ReportMetric((w3-w2)/resyncs, "writes/idle-resync")
}

// BenchmarkEtcdGateway10k: 10,000 published workloads (synthetic, on a made-up network with
// addresses in 198.18.0.0/15, the benchmarking range; written directly in transactions of 100),
// read by a proxy-less gateway (--check-cmd none, --reload-cmd none: nothing is ever sent to
// them). Per iteration: a gateway's start-up to its first apply (/healthz 200), its peak RSS
// (VmHWM), and one more workload's put to the rendered file changing on disk.
func BenchmarkEtcdGateway10k(b *testing.B) {
	const n = 10000
	etcd := startEtcd(b)
	cli := etcd.goClient()
	l, err := registry.NewLayout(registry.DefaultPrefix)
	if err != nil {
		b.Fatal(err)
	}
	put := func(from, to int) {
		var ops []clientv3.Op
		flush := func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
				b.Fatal(err)
			}
			ops = ops[:0]
		}
		for i := from; i < to; i++ {
			w := synthWorkload(i)
			v, err := registry.EncodeWorkload(w)
			if err != nil {
				b.Fatal(err)
			}
			ops = append(ops, clientv3.OpPut(l.WorkloadKey("bench", w.ID), string(v)))
			if len(ops) == 100 {
				flush()
			}
		}
		if len(ops) > 0 {
			flush()
		}
	}
	put(0, n)
	var startup, event []time.Duration
	var hwm []float64
	next := n
	for b.Loop() {
		t0 := time.Now()
		p, out := launchBareGateway(b, etcd.endpoint, "--proxy-networks", "benchnet", "--wait", "100ms:1s")
		for {
			if code, _ := httpGet("http://"+p.admin+"/healthz", ""); code == 200 {
				break
			}
			if time.Since(t0) > 60*time.Second {
				b.Fatalf("no first apply in 60s")
			}
			time.Sleep(10 * time.Millisecond)
		}
		startup = append(startup, time.Since(t0))
		hwm = append(hwm, vmHWM(b, p.cmd.Process.Pid))
		before, _ := os.ReadFile(out)
		host := []byte(synthHost(next))
		if bytes.Contains(before, host) {
			b.Fatalf("%s rendered before it was put", host)
		}
		t1 := time.Now()
		put(next, next+1)
		for {
			if now, _ := os.ReadFile(out); bytes.Contains(now, host) {
				break
			}
			if time.Since(t1) > 30*time.Second {
				b.Fatalf("%s not rendered in 30s", host)
			}
			time.Sleep(5 * time.Millisecond)
		}
		event = append(event, time.Since(t1))
		next++
		p.stop()
	}
	b.ReportMetric(ms(median(startup)), "ms-median-start-to-healthz")
	b.ReportMetric(slices.Max(hwm), "MB-max-VmHWM")
	b.ReportMetric(ms(median(event)), "ms-median-put-to-file")
	b.ReportMetric(ms(slices.Max(event)), "ms-max-put-to-file")
}

// synthWorkload is the i-th synthetic workload: ten replicas per host for the first 10,000, then
// one new host each (the benchmark's events).
func synthWorkload(i int) discovery.Workload {
	return discovery.Workload{
		ID: fmt.Sprintf("bench%05d", i), Name: fmt.Sprintf("bench-%05d", i), Source: "docker",
		Env:         map[string]string{"VIRTUAL_HOST": synthHost(i)},
		Networks:    []discovery.Network{{Name: "benchnet", ID: "benchnet", IP: fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)}},
		NetworkMode: "benchnet", Service: "bench",
	}
}

func synthHost(i int) string {
	if i < 10000 {
		return fmt.Sprintf("h%05d.bench.test", i/10)
	}
	return fmt.Sprintf("new%05d.bench.test", i)
}

// vmHWM is a process's peak resident set, in MB.
func vmHWM(b *testing.B, pid int) float64 {
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb / 1024
		}
	}
	b.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}

// pollStatus polls host through the env's proxy every 5 ms until it answers want (30 s at most).
func pollStatus(b *testing.B, e *env, host string, want int) {
	t0 := time.Now()
	for {
		if code, _ := e.get(host, "/"); code == want {
			return
		}
		if time.Since(t0) > 30*time.Second {
			b.Fatalf("%s never answered %d", host, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
