package etcdstore

import (
	"bytes"
	"context"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdServer is one etcd process of one test, on free 127.0.0.1 ports, its data in t.TempDir().
type etcdServer struct {
	endpoint string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startEtcd starts a single-member etcd and waits until it answers; it is killed at cleanup.
func startEtcd(t *testing.T) *etcdServer {
	t.Helper()
	bin, err := exec.LookPath("etcd")
	if err != nil {
		t.Fatalf("no etcd binary (%v): run scripts/env.sh", err)
	}
	var (
		cmd  *exec.Cmd
		log  = &syncBuffer{}
		done chan struct{}
	)
outer:
	for attempt := 0; ; attempt++ {
		client, peer := freePort(t), freePort(t)
		endpoint := "http://127.0.0.1:" + strconv.Itoa(client)
		peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
		cmd = exec.Command(bin, "--name", "t", "--data-dir", t.TempDir(),
			"--listen-client-urls", endpoint, "--advertise-client-urls", endpoint,
			"--listen-peer-urls", peerURL, "--initial-advertise-peer-urls", peerURL, "--initial-cluster", "t="+peerURL,
			"--logger", "zap", "--log-outputs", "stderr", "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatalf("start etcd: %v", err)
		}
		done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(cmd, done)
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-done
			if t.Failed() {
				t.Logf("etcd log:\n%s", log.String())
			}
		})
		cli := newClient(t, endpoint)
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-done:
				if attempt < 3 { // a port taken meanwhile: try others
					continue outer
				}
				t.Fatalf("etcd exited:\n%s", log.String())
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := cli.Put(ctx, "/ping", "")
			cancel()
			if err == nil {
				return &etcdServer{endpoint: endpoint}
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("etcd %s does not answer:\n%s", endpoint, log.String())
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newClient is a client of endpoint, closed at cleanup.
func newClient(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// newStore is a store on a client of its own (as another gateway's would be).
func (e *etcdServer) newStore(t *testing.T, ca string) (*Store, *clientv3.Client) {
	t.Helper()
	cli := newClient(t, e.endpoint)
	s, err := New(cli, Options{CAURL: ca, SessionTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s, cli
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
