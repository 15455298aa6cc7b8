package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// runCmd runs the command line with no VHOST_GEN_* environment and an engine address that
// answers nothing, so that no test reaches a real Docker Engine by accident.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cleanEnv(t)
	noEngine(t)
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func noEngine(t *testing.T) {
	t.Helper()
	t.Setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
	t.Setenv("DOCKER_API_VERSION", "1.41")
	for _, k := range []string{"DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestRunVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version", "-version"} {
		code, out, errOut := runCmd(t, arg)
		if code != 0 || !strings.HasPrefix(out, "vhost-gen ") || len(strings.TrimSpace(out)) <= len("vhost-gen ") || errOut != "" {
			t.Errorf("%s: code %d, stdout %q, stderr %q", arg, code, out, errOut)
		}
	}
	old := version
	t.Cleanup(func() { version = old })
	version = "1.2.3"
	if code, out, _ := runCmd(t, "version"); code != 0 || out != "vhost-gen 1.2.3\n" {
		t.Errorf("with version set: code %d, stdout %q", code, out)
	}
}

func TestRunUsage(t *testing.T) {
	code, out, errOut := runCmd(t)
	if code != 2 || out != "" || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no command: code %d stdout %q stderr %q", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "frobnicate", "--out", "x")
	if code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) || !strings.Contains(errOut, "Usage:") || out != "" {
		t.Errorf("unknown command: code %d stdout %q stderr %q", code, out, errOut)
	}
	for _, arg := range []string{"help", "--help", "-h"} {
		code, out, _ = runCmd(t, arg)
		if code != 0 || !strings.Contains(out, "Usage:") {
			t.Errorf("%s: code %d stdout %q", arg, code, out)
		}
	}
	for _, cmd := range []string{"watch", "render", "routes", "version"} {
		if !strings.Contains(usage, "vhost-gen "+cmd) {
			t.Errorf("usage does not mention %q", cmd)
		}
	}
}

func TestRunCommandHelp(t *testing.T) {
	for _, cmd := range []string{"watch", "render", "routes"} {
		code, _, errOut := runCmd(t, cmd, "--help")
		if code != 0 {
			t.Errorf("%s --help: code %d", cmd, code)
		}
		if !strings.HasPrefix(errOut, "vhost-gen "+cmd+":") {
			t.Errorf("%s --help does not start with the command's description: %q", cmd, firstLine(errOut))
		}
		flags := allFlags
		if cmd == "routes" {
			flags = append(flags[:len(flags):len(flags)], jsonFlag)
		}
		for _, f := range flags {
			line := helpLine(errOut, f.name)
			if line == "" {
				t.Errorf("%s --help does not list --%s", cmd, f.name)
				continue
			}
			if env := "[" + envName(f.name) + "]"; !strings.Contains(line, env) {
				t.Errorf("%s --help: --%s line %q lacks %s", cmd, f.name, line, env)
			}
		}
		if cmd != "routes" && helpLine(errOut, "json") != "" {
			t.Errorf("%s --help lists --json", cmd)
		}
		for _, want := range []string{`(default "100ms:1s")`, `(default "127.0.0.1:9180")`, "DOCKER_HOST"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%s --help lacks %s", cmd, want)
			}
		}
	}
}

func helpLine(help, flagName string) string {
	for _, l := range strings.Split(help, "\n") {
		if strings.HasPrefix(l, "  --"+flagName+" ") {
			return l
		}
	}
	return ""
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func TestRunConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want []string // all in stderr
	}{
		{"address mode", []string{"watch", "--out", "/tmp/x", "--address-mode", "overlay"}, 2, []string{"--address-mode", "overlay"}},
		{"listen injection", []string{"watch", "--out", "/tmp/x", "--listen", "80; evil"}, 2, []string{"--listen", "80; evil"}},
		{"listen empty", []string{"watch", "--out", "/tmp/x", "--listen", ""}, 2, []string{"--listen"}},
		{"label filter without key", []string{"watch", "--out", "/tmp/x", "--label-filter", "=x"}, 2, []string{"--label-filter", "=x"}},
		{"label filter blank key", []string{"watch", "--out", "/tmp/x", "--label-filter", " =x"}, 2, []string{"--label-filter"}},
		{"unknown source", []string{"watch", "--out", "/tmp/x", "--source", "zookeeper"}, 2, []string{"--source", "zookeeper"}},
		{"etcd without endpoints", []string{"watch", "--out", "/tmp/x", "--source", "docker,etcd"}, 2, []string{"--source etcd", "--etcd-endpoints"}},
		{"bad etcd flat", []string{"watch", "--out", "/tmp/x", "--source", "etcd", "--etcd-endpoints", "http://127.0.0.1:1", "--etcd-flat", "relative=x"}, 2, []string{"--etcd-flat"}},
		{"bad etcd prefix", []string{"watch", "--out", "/tmp/x", "--source", "etcd", "--etcd-endpoints", "http://127.0.0.1:1", "--etcd-prefix", "nope"}, 2, []string{"--etcd-prefix"}},
		{"bad publisher id", []string{"publish", "--etcd-endpoints", "http://127.0.0.1:1", "--publisher-id", "a/b"}, 2, []string{"--publisher-id"}},
		{"bad proxy network", []string{"watch", "--out", "/tmp/x", "--proxy-networks", "front,bad net"}, 2, []string{"--proxy-networks", "bad net"}},
		{"bad log level", []string{"render", "--log-level", "loud"}, 2, []string{"--log-level", "loud"}},
		{"bad log format", []string{"routes", "--log-format", "xml"}, 2, []string{"--log-format", "xml"}},
		{"unknown proxy", []string{"render", "--proxy", "apache"}, 2, []string{"apache"}},
		{"missing template", []string{"render", "--template", "/nonexistent/vhost-gen.tmpl"}, 2, []string{"/nonexistent/vhost-gen.tmpl"}},
		{"bad flag value", []string{"watch", "--resync", "soon"}, 2, []string{"resync"}},
		{"positional argument", []string{"routes", "extra"}, 2, []string{`unexpected argument "extra"`}},
		{"json on watch", []string{"watch", "--json"}, 2, []string{"json"}},
		// These need the docker client built (it is, without contacting the engine).
		{"watch without --out", []string{"watch"}, 1, []string{"--out"}},
		{"bad wait", []string{"watch", "--out", "/tmp/x", "--wait", "soon"}, 1, []string{"--wait"}},
		{"two reloads", []string{"watch", "--out", "/tmp/x", "--reload-cmd", "true", "--reload-pidfile", "/run/x.pid"}, 1, []string{"--reload-cmd", "--reload-pidfile"}},
		{"bad reload signal", []string{"watch", "--out", "/tmp/x", "--reload-signal", "NOPE"}, 1, []string{"--reload-signal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d (stderr %q)", code, tt.code, errOut)
			}
			for _, w := range tt.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr %q lacks %q", errOut, w)
				}
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
			// Errors are prefixed with the command.
			if cmd := tt.args[0]; !strings.Contains(errOut, "vhost-gen "+cmd+":") {
				t.Errorf("stderr %q lacks the prefix %q", errOut, "vhost-gen "+cmd+":")
			}
		})
	}
}

func TestRunBadEnvironment(t *testing.T) {
	cleanEnv(t)
	noEngine(t)
	t.Setenv("VHOST_GEN_RESYNC", "abc")
	var o, e bytes.Buffer
	if code := run([]string{"watch"}, &o, &e); code != 2 || !strings.Contains(e.String(), "VHOST_GEN_RESYNC") {
		t.Errorf("VHOST_GEN_RESYNC=abc: exit %d stderr %q", code, e.String())
	}
	// The environment reaches newApp's checks too.
	cleanEnv(t)
	t.Setenv("VHOST_GEN_ADDRESS_MODE", "overlay")
	e.Reset()
	if code := run([]string{"watch", "--out", "/tmp/x"}, &o, &e); code != 2 || !strings.Contains(e.String(), "--address-mode") {
		t.Errorf("VHOST_GEN_ADDRESS_MODE=overlay: exit %d stderr %q", code, e.String())
	}
}

// The engine unreachable is an error for the one-shot commands: nothing could be rendered.
func TestRunEngineDown(t *testing.T) {
	for _, cmd := range []string{"render", "routes"} {
		code, out, errOut := runCmd(t, cmd, "--log-level", "error")
		if code != 1 || out != "" || !strings.Contains(errOut, "source docker") {
			t.Errorf("%s with the engine down: exit %d stdout %q stderr %q", cmd, code, out, errOut)
		}
	}
}
