package integration

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// relay forwards a listener (a unix socket, or a 127.0.0.1 port) to a target: cut closes the
// listener and every connection through it (an engine or etcd gone, a partition), restore listens
// again at the same address.
type relay struct {
	t       testing.TB
	network string // "unix" or "tcp", for both ends
	addr    string // where it listens: a socket path or 127.0.0.1:PORT
	target  string
	mu      sync.Mutex
	ln      net.Listener
	conns   []net.Conn
}

// newSocketRelay relays a unix socket in the test's directory to target.
func newSocketRelay(t testing.TB, target string) *relay {
	return newRelay(t, "unix", filepath.Join(t.TempDir(), "relay.sock"), target)
}

// newTCPRelay relays a free 127.0.0.1 port to target.
func newTCPRelay(t testing.TB, target string) *relay {
	return newRelay(t, "tcp", "127.0.0.1:"+strconv.Itoa(freePort(t)), target)
}

func newRelay(t testing.TB, network, addr, target string) *relay {
	t.Helper()
	r := &relay{t: t, network: network, addr: addr, target: target}
	r.restore()
	t.Cleanup(r.cut)
	return r
}

func (r *relay) url() string { return "http://" + r.addr }

func (r *relay) restore() {
	r.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port of a listener just closed may take a moment to be free again
		if ln, err = net.Listen(r.network, r.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.mu.Lock()
	r.ln = ln
	r.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout(r.network, r.target, 2*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			if r.ln != ln { // cut meanwhile
				r.mu.Unlock()
				c.Close()
				up.Close()
				return
			}
			r.conns = append(r.conns, c, up)
			r.mu.Unlock()
			go func() { io.Copy(up, c); up.Close() }()
			go func() { io.Copy(c, up); c.Close() }()
		}
	}()
}

func (r *relay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ln != nil {
		r.ln.Close()
		r.ln = nil
	}
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
	if r.network == "unix" {
		os.Remove(r.addr)
	}
}
