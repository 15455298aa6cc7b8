package haproxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// shortDir is a temporary directory with a short path: a unix socket's path must fit in 108 bytes,
// and t.TempDir's paths carry the test's name.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "hx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// fakeAPI is a runtime API socket that records commands and answers as told. Like HAProxy's
// master CLI, it answers only once the client has half-closed.
type fakeAPI struct {
	path string

	mu    sync.Mutex
	cmds  []string
	reply func(cmd string) string // nil: HAProxy's success replies
}

func startFake(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{path: filepath.Join(shortDir(t), "api.sock")}
	ln, err := net.Listen("unix", f.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	return f
}

func (f *fakeAPI) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return
	}
	cmd := strings.TrimSuffix(string(b), "\n")
	f.mu.Lock()
	f.cmds = append(f.cmds, cmd)
	reply := f.reply
	f.mu.Unlock()
	var out string
	if reply != nil {
		out = reply(cmd)
	} else {
		out = success(cmd)
	}
	io.WriteString(c, out)
}

// success is HAProxy 2.6's reply to a command that worked.
func success(cmd string) string {
	switch {
	case strings.HasPrefix(cmd, "add server "):
		return "New server registered.\n\n"
	case strings.HasPrefix(cmd, "del server "):
		return "Server deleted.\n"
	case strings.Contains(cmd, " addr "):
		return "IP changed from '10.0.0.2' to '10.0.0.9', port changed from '80' to '8080' by 'stats socket command'\n\n"
	}
	return "\n"
}

func (f *fakeAPI) setReply(reply func(string) string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reply = reply
}

// take returns the commands received since the last take.
func (f *fakeAPI) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	cmds := f.cmds
	f.cmds = nil
	return cmds
}

func mustHot(t *testing.T, r *Runtime, prev, next string, wantOK bool) {
	t.Helper()
	ok, err := r.Hot(context.Background(), []byte(prev), []byte(next))
	if err != nil {
		t.Fatalf("Hot: %v", err)
	}
	if ok != wantOK {
		t.Fatalf("Hot: ok = %v, want %v", ok, wantOK)
	}
}

func wantCmds(t *testing.T, f *fakeAPI, want ...string) {
	t.Helper()
	if got := f.take(); !reflect.DeepEqual(got, want) {
		t.Errorf("commands:\n got %q\nwant %q", got, want)
	}
}

var (
	// scaled: web3 added, web2 removed, web1's weight changed.
	scaled = strings.Replace(strings.Replace(testBase, web2, "    server web3 10.0.0.3:80 weight 2 check inter 2s\n", 1),
		"web1 10.0.0.1:80 weight 1", "web1 10.0.0.1:80 weight 0", 1)
	// noWeb2: web2 removed.
	noWeb2 = strings.Replace(testBase, web2, "", 1)
	// newBackend needs a reload.
	newBackend = testBase + "\nbackend extra\n    server x1 10.0.5.1:80\n"
)

func TestHotRunsThePlan(t *testing.T) {
	f := startFake(t)
	r := &Runtime{Socket: f.path}
	mustHot(t, r, testBase, scaled, true)
	wantCmds(t, f,
		"add server web/web3 10.0.0.3:80 weight 2 check inter 2s",
		"enable health web/web3",
		"enable server web/web3",
		"set server web/web1 weight 0",
		"set server web/web2 state maint",
		"del server web/web2",
	)
	if len(r.pending) != 0 {
		t.Errorf("pending = %q, want none", r.pending)
	}
	// Only comments of server lines changed: nothing to send, and no reload.
	mustHot(t, r, scaled, strings.Replace(scaled, "weight 2 check inter 2s\n", "weight 2 check inter 2s # new\n", 1), true)
	wantCmds(t, f)
}

// A change beyond servers, or a config it cannot read, is for a reload: Hot says so without
// touching the socket.
func TestHotLeavesOtherChangesToReload(t *testing.T) {
	r := &Runtime{Socket: filepath.Join(shortDir(t), "absent.sock")}
	for _, tt := range []struct{ name, prev, next string }{
		{"new backend", testBase, newBackend},
		{"unreadable next", testBase, strings.Replace(testBase, "10.0.0.2:80", "app.example:80", 1)},
		{"unreadable prev", strings.Replace(testBase, "10.0.0.2:80", "10.0.0.2", 1), testBase},
	} {
		r := &Runtime{Socket: r.Socket}
		ok, err := r.Hot(context.Background(), []byte(tt.prev), []byte(tt.next))
		if ok || err != nil {
			t.Errorf("%s: Hot = %v, %v; want false, nil", tt.name, ok, err)
		}
	}
}

func TestHotSocketMissing(t *testing.T) {
	sock := filepath.Join(shortDir(t), "absent.sock")
	r := &Runtime{Socket: sock}
	ok, err := r.Hot(context.Background(), []byte(testBase), []byte(scaled))
	if ok || err == nil {
		t.Fatalf("Hot = %v, %v; want an error", ok, err)
	}
	for _, want := range []string{sock, "add server web/web3"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("error %v does not wrap the dial's error", err)
	}
}

func TestHotUnexpectedReply(t *testing.T) {
	tests := []struct {
		name     string
		fail     string // the command that gets an error reply
		reply    string
		wantSent int // commands sent, the failing one included
	}{
		{"add refused", "add server web/web3 10.0.0.3:80 weight 2 check inter 2s",
			"Backend must use a dynamic load balancing to support dynamic servers.\n", 1},
		{"add answered with nothing", "add server web/web3 10.0.0.3:80 weight 2 check inter 2s", "\n", 1},
		{"enable refused", "enable server web/web3", "No such server.\n\n", 3},
		{"weight refused", "set server web/web1 weight 0",
			"Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n\n", 4},
		{"maint refused", "set server web/web2 state maint", "No such server.\n\n", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startFake(t)
			f.setReply(func(cmd string) string {
				if cmd == tt.fail {
					return tt.reply
				}
				return success(cmd)
			})
			r := &Runtime{Socket: f.path}
			ok, err := r.Hot(context.Background(), []byte(testBase), []byte(scaled))
			if ok || err == nil {
				t.Fatalf("Hot = %v, %v; want an error", ok, err)
			}
			if !strings.Contains(err.Error(), tt.fail) {
				t.Errorf("error %q does not name the command %q", err, tt.fail)
			}
			if r := strings.TrimSpace(tt.reply); r != "" && !strings.Contains(err.Error(), r) {
				t.Errorf("error %q does not carry HAProxy's reply %q", err, r)
			}
			if sent := f.take(); len(sent) != tt.wantSent || sent[len(sent)-1] != tt.fail {
				t.Errorf("sent %q: want it to stop at the failing command", sent)
			}
		})
	}
}

func TestHotAddressChangeReplies(t *testing.T) {
	for _, reply := range []string{
		"IP changed from '10.0.0.2' to '10.0.0.9' by 'stats socket command'\n\n",
		"no need to change the addr, port changed from '80' to '8080' by 'stats socket command'\n\n",
		"no need to change the addr, no need to change the port by 'stats socket command'\n\n",
	} {
		f := startFake(t)
		f.setReply(func(cmd string) string {
			if strings.Contains(cmd, " addr ") {
				return reply
			}
			return success(cmd)
		})
		r := &Runtime{Socket: f.path}
		mustHot(t, r, testBase, strings.Replace(testBase, "10.0.0.2:80", "10.0.0.9:8080", 1), true)
		wantCmds(t, f, "set server web/web2 addr 10.0.0.9 port 8080", "set server web/web2 health up")
	}
	f := startFake(t)
	f.setReply(func(string) string { return "Require 'backend/server'.\n" })
	r := &Runtime{Socket: f.path}
	if ok, err := r.Hot(context.Background(), []byte(testBase), []byte(strings.Replace(testBase, "10.0.0.2:80", "10.0.0.9:8080", 1))); ok || err == nil {
		t.Errorf("Hot with an error reply to set server addr = %v, %v; want an error", ok, err)
	}
}

// A moved server is a new server for its health: once at its new address it is forced up, so
// that it takes traffic at once even if its old address had failed its checks. If HAProxy
// refuses, Hot stops there and the reload applies the change.
func TestHotMovedServer(t *testing.T) {
	moved := strings.Replace(strings.Replace(testBase, "10.0.0.2:80 weight 1", "10.0.0.9:8080 weight 2", 1),
		"10.0.1.1:80", "10.0.1.7:80", 1)
	f := startFake(t)
	r := &Runtime{Socket: f.path}
	mustHot(t, r, testBase, moved, true)
	wantCmds(t, f,
		"set server web/web2 addr 10.0.0.9 port 8080", "set server web/web2 health up", "set server web/web2 weight 2",
		"set server sticky/s1 addr 10.0.1.7 port 80", "set server sticky/s1 health up",
		"enable dynamic-cookie backend sticky",
	)

	f = startFake(t)
	f.setReply(func(cmd string) string {
		if cmd == "set server web/web2 health up" {
			return "cannot change health on a tracking server.\n\n"
		}
		return success(cmd)
	})
	r = &Runtime{Socket: f.path}
	ok, err := r.Hot(context.Background(), []byte(testBase), []byte(moved))
	if ok || err == nil {
		t.Fatalf("Hot with health up refused = %v, %v; want an error (and a reload)", ok, err)
	}
	if !strings.Contains(err.Error(), "set server web/web2 health up") || !strings.Contains(err.Error(), "tracking server") {
		t.Errorf("error %q does not name the command and HAProxy's reply", err)
	}
	wantCmds(t, f, "set server web/web2 addr 10.0.0.9 port 8080", "set server web/web2 health up")
	// The servers now match no config: the next change is a reload's too.
	mustHot(t, r, testBase, moved, false)
	wantCmds(t, f)
}

const stillConnected = "Server still has connections attached to it, cannot remove it.\n"

// A server that cannot be deleted yet (connections left) waits in maintenance; the next Hot
// deletes it, and forgets it when it is gone already.
func TestHotPendingDeletion(t *testing.T) {
	f := startFake(t)
	var busy atomic.Bool
	busy.Store(true)
	f.setReply(func(cmd string) string {
		if cmd == "del server web/web2" && busy.Load() {
			return stillConnected
		}
		if cmd == "del server web/web2" {
			return "No such server.\n"
		}
		return success(cmd)
	})
	r := &Runtime{Socket: f.path}
	mustHot(t, r, testBase, noWeb2, true)
	wantCmds(t, f, "set server web/web2 state maint", "del server web/web2")
	if want := []string{"web/web2"}; !reflect.DeepEqual(r.pending, want) {
		t.Fatalf("pending = %q, want %q", r.pending, want)
	}

	// Still connected: tried again, kept, and the plan goes on.
	w1 := strings.Replace(noWeb2, "web1 10.0.0.1:80 weight 1", "web1 10.0.0.1:80 weight 2", 1)
	mustHot(t, r, noWeb2, w1, true)
	wantCmds(t, f, "del server web/web2", "set server web/web1 weight 2")
	if want := []string{"web/web2"}; !reflect.DeepEqual(r.pending, want) {
		t.Fatalf("pending = %q, want %q", r.pending, want)
	}

	// Gone already ("No such server"): forgotten.
	busy.Store(false)
	w3 := strings.Replace(w1, "weight 2", "weight 3", 1)
	mustHot(t, r, w1, w3, true)
	wantCmds(t, f, "del server web/web2", "set server web/web1 weight 3")
	if len(r.pending) != 0 {
		t.Fatalf("pending = %q, want none", r.pending)
	}
	mustHot(t, r, w3, w1, true)
	wantCmds(t, f, "set server web/web1 weight 2")
}

func TestHotPendingDeletionSucceeds(t *testing.T) {
	f := startFake(t)
	var dels atomic.Int32
	f.setReply(func(cmd string) string {
		if strings.HasPrefix(cmd, "del server ") {
			if dels.Add(1) == 1 {
				return stillConnected
			}
		}
		return success(cmd)
	})
	r := &Runtime{Socket: f.path}
	mustHot(t, r, testBase, noWeb2, true)
	f.take()
	// Its last connection closed: deleted, so it can even be added again in the same update.
	mustHot(t, r, noWeb2, testBase, true)
	wantCmds(t, f,
		"del server web/web2",
		"add server web/web2 10.0.0.2:80 weight 1 check inter 2s", "enable health web/web2", "enable server web/web2")
	if len(r.pending) != 0 {
		t.Fatalf("pending = %q, want none", r.pending)
	}
}

// A server re-added while its old self still waits for deletion cannot be added: Hot fails, the
// reload puts it back.
func TestHotPendingServerReadded(t *testing.T) {
	f := startFake(t)
	f.setReply(func(cmd string) string {
		if strings.HasPrefix(cmd, "del server ") {
			return stillConnected
		}
		return success(cmd)
	})
	r := &Runtime{Socket: f.path}
	mustHot(t, r, testBase, noWeb2, true)
	f.take()
	ok, err := r.Hot(context.Background(), []byte(noWeb2), []byte(testBase))
	if ok || err == nil {
		t.Fatalf("Hot = %v, %v; want an error", ok, err)
	}
	if !strings.Contains(err.Error(), "web/web2") {
		t.Errorf("error %q does not name the server", err)
	}
	for _, c := range f.take() {
		if strings.HasPrefix(c, "add server") {
			t.Errorf("sent %q for a server still waiting for deletion", c)
		}
	}
}

// After a reload the servers waiting for deletion belonged to the old workers: they are not
// deleted from the new ones, whose servers are the file's.
func TestHotForgetsPendingAfterReload(t *testing.T) {
	f := startFake(t)
	f.setReply(func(cmd string) string {
		if strings.HasPrefix(cmd, "del server ") {
			return stillConnected
		}
		return success(cmd)
	})
	r := &Runtime{Socket: f.path}
	mustHot(t, r, testBase, noWeb2, true)
	f.take()
	// A change beyond servers (the Applier reloads), whose config has web2 again.
	withWeb2 := newBackend
	mustHot(t, r, noWeb2, withWeb2, false)
	wantCmds(t, f)
	// The reload happened (prev is now withWeb2): web2 is a live server of the new workers.
	w := strings.Replace(withWeb2, "web1 10.0.0.1:80 weight 1", "web1 10.0.0.1:80 weight 4", 1)
	mustHot(t, r, withWeb2, w, true)
	wantCmds(t, f, "set server web/web1 weight 4")
	if len(r.pending) != 0 {
		t.Errorf("pending = %q, want none after a reload", r.pending)
	}
}

// When the reload after a non-server change fails, the old workers still hold the servers in
// maintenance: their deletion is still pending.
func TestHotKeepsPendingWhenReloadFailed(t *testing.T) {
	f := startFake(t)
	var busy atomic.Bool
	busy.Store(true)
	f.setReply(func(cmd string) string {
		if strings.HasPrefix(cmd, "del server ") && busy.Load() {
			return stillConnected
		}
		return success(cmd)
	})
	r := &Runtime{Socket: f.path}
	mustHot(t, r, testBase, noWeb2, true)
	f.take()
	mustHot(t, r, noWeb2, newBackend, false) // the reload fails: the Applier keeps noWeb2
	busy.Store(false)
	w := strings.Replace(noWeb2, "web1 10.0.0.1:80 weight 1", "web1 10.0.0.1:80 weight 4", 1)
	mustHot(t, r, noWeb2, w, true)
	wantCmds(t, f, "del server web/web2", "set server web/web1 weight 4")
}

// A Hot that failed part way leaves servers matching no config: until a reload has happened,
// Hot leaves every change to a reload.
func TestHotAfterPartialFailure(t *testing.T) {
	f := startFake(t)
	f.setReply(func(cmd string) string {
		if cmd == "set server web/web1 weight 0" {
			return "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
		}
		return success(cmd)
	})
	r := &Runtime{Socket: f.path}
	if _, err := r.Hot(context.Background(), []byte(testBase), []byte(scaled)); err == nil {
		t.Fatal("no error")
	}
	f.take() // web3 was added
	f.setReply(nil)

	// The reload that followed failed (the Applier still has testBase applied): HAProxy has
	// web3, which noWeb2 lacks; a plan from testBase would leave it there.
	mustHot(t, r, testBase, noWeb2, false)
	wantCmds(t, f)
	// That reload (to noWeb2) worked: the servers are noWeb2's.
	mustHot(t, r, noWeb2, testBase, true)
	wantCmds(t, f, "add server web/web2 10.0.0.2:80 weight 1 check inter 2s", "enable health web/web2", "enable server web/web2")
}

// The reload after a failed Hot worked: Hot carries on from the reloaded config.
func TestHotAfterFailureAndReload(t *testing.T) {
	f := startFake(t)
	f.setReply(func(cmd string) string { return "Unknown command.\n" })
	r := &Runtime{Socket: f.path}
	if _, err := r.Hot(context.Background(), []byte(testBase), []byte(noWeb2)); err == nil {
		t.Fatal("no error")
	}
	f.take()
	f.setReply(nil)
	mustHot(t, r, noWeb2, testBase, true)
	wantCmds(t, f, "add server web/web2 10.0.0.2:80 weight 1 check inter 2s", "enable health web/web2", "enable server web/web2")
}

func TestDoTimesOut(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "mute.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // never answers
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	r := &Runtime{Socket: sock}
	start := time.Now()
	_, err = r.Do(ctx, "show info")
	if err == nil {
		t.Fatal("no error from a socket that never answers")
	}
	if !strings.Contains(err.Error(), "show info") {
		t.Errorf("error %q does not name the command", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Do took %v; want it bounded by the context", d)
	}
}

func TestDoTrimsReply(t *testing.T) {
	f := startFake(t)
	f.setReply(func(cmd string) string { return "\n  answer to " + cmd + "\n\n" })
	out, err := (&Runtime{Socket: f.path}).Do(context.Background(), "show info")
	if err != nil || out != "answer to show info" {
		t.Errorf("Do = %q, %v", out, err)
	}
}
