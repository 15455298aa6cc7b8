package apply

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSplitCommand(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		// words
		{in: "nginx -s reload", want: []string{"nginx", "-s", "reload"}},
		{in: "nginx", want: []string{"nginx"}},
		{in: "  a \t b\n\nc  ", want: []string{"a", "b", "c"}},
		{in: "nginx -t -c {{.File}}", want: []string{"nginx", "-t", "-c", "{{.File}}"}},
		{in: "echo $HOME *.conf ~ a;b a|b", want: []string{"echo", "$HOME", "*.conf", "~", "a;b", "a|b"}}, // nothing expanded
		// single quotes
		{in: `sh -c 'kill -HUP $(cat /run/nginx.pid)'`, want: []string{"sh", "-c", "kill -HUP $(cat /run/nginx.pid)"}},
		{in: `'a\b' 'c"d'`, want: []string{`a\b`, `c"d`}},
		{in: `a '' b`, want: []string{"a", "", "b"}},
		{in: `''`, want: []string{""}},
		{in: `'it'\''s'`, want: []string{"it's"}},
		{in: `'a\'`, want: []string{`a\`}}, // no escapes inside single quotes
		{in: `' lead and trail '`, want: []string{" lead and trail "}},
		// double quotes
		{in: `a "b c" d`, want: []string{"a", "b c", "d"}},
		{in: `"say 'hi'"`, want: []string{"say 'hi'"}},
		{in: `""`, want: []string{""}},
		{in: `"a\"b"`, want: []string{`a"b`}},
		{in: `"a\\b"`, want: []string{`a\b`}},
		{in: `"\$x"`, want: []string{`$x`}},
		{in: "\"\\`x\\`\"", want: []string{"`x`"}},
		{in: `"a\nb"`, want: []string{`a\nb`}}, // other escapes stay as written, as in sh
		{in: `"\'"`, want: []string{`\'`}},
		{in: "\"tab\there\"", want: []string{"tab\there"}},
		// backslash escapes outside quotes
		{in: `a\ b c`, want: []string{"a b", "c"}},
		{in: `\'x\'`, want: []string{"'x'"}},
		{in: `\"`, want: []string{`"`}},
		{in: `a\\b`, want: []string{`a\b`}},
		{in: `\n`, want: []string{"n"}},
		{in: `\ `, want: []string{" "}},
		{in: `a\`, want: []string{`a\`}}, // a trailing backslash stays
		// quotes join with what is next to them
		{in: `a"b"c'd'e`, want: []string{"abcde"}},
		{in: `--file="{{.File}}"`, want: []string{"--file={{.File}}"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := SplitCommand(tt.in)
			if err != nil {
				t.Fatalf("SplitCommand(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("SplitCommand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSplitCommandErrors(t *testing.T) {
	tests := []struct {
		in      string
		wantMsg string
	}{
		{in: "", wantMsg: "empty"},
		{in: "   ", wantMsg: "empty"},
		{in: "\t\n ", wantMsg: "empty"},
		{in: `'abc`, wantMsg: "unclosed quote"},
		{in: `"abc`, wantMsg: "unclosed quote"},
		{in: `a "b`, wantMsg: "unclosed quote"},
		{in: `a 'b"`, wantMsg: "unclosed quote"},
		{in: `"a\"`, wantMsg: "unclosed quote"},
		{in: `'`, wantMsg: "unclosed quote"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := SplitCommand(tt.in)
			if err == nil {
				t.Fatalf("SplitCommand(%q) = %q, nil; want an error", tt.in, got)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("SplitCommand(%q): error %q, want it to mention %q", tt.in, err, tt.wantMsg)
			}
			if got != nil {
				t.Errorf("SplitCommand(%q) = %q with an error, want nil", tt.in, got)
			}
		})
	}
}

// shellQuote quotes w in single quotes as sh would, for the round-trip property.
func shellQuote(w string) string {
	return "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
}

func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{
		"", " ", "nginx -s reload", `sh -c 'a "b" c'`, `a\ b`, `"a\"b"`, `'it'\''s'`, `a\`, `"`, `'`,
		"a\tb\nc", "\x00", "é ü", "a\rb", `""''`, `"\$\\` + "\\`\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := SplitCommand(s)
		if err != nil {
			if words != nil {
				t.Errorf("SplitCommand(%q) = %q with error %v", s, words, err)
			}
			return
		}
		if len(words) == 0 {
			t.Fatalf("SplitCommand(%q) = no words and no error", s)
		}
		// Quoting the words back gives the same words.
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = shellQuote(w)
		}
		again, err := SplitCommand(strings.Join(quoted, " "))
		if err != nil || !reflect.DeepEqual(again, words) {
			t.Errorf("round trip of %q: %q -> %q, %v", s, words, again, err)
		}
		// Without quotes and backslashes, it splits on blanks as strings.Fields does. SplitCommand
		// splits on space, tab and newline only (as sh does), so inputs with other white space
		// (\r, \v, \f, Unicode spaces) are left out of this comparison.
		if strings.ContainsAny(s, `'"\`) {
			return
		}
		for _, r := range s {
			if r != ' ' && r != '\t' && r != '\n' && strings.TrimSpace(string(r)) == "" {
				return
			}
		}
		if want := strings.Fields(s); !reflect.DeepEqual(words, want) {
			t.Errorf("SplitCommand(%q) = %q, strings.Fields = %q", s, words, want)
		}
	})
}

func TestSplitCommandFieldsNoQuotes(t *testing.T) {
	// Every split of an unquoted, escape-free command equals strings.Fields; an empty one is an
	// error rather than no words.
	for _, s := range []string{"a", "a b", " a  b ", "a\tb", "a\nb", "nginx -s reload", "é ü ∑", "\x00 \xff"} {
		got, err := SplitCommand(s)
		if err != nil {
			t.Errorf("SplitCommand(%q): %v", s, err)
			continue
		}
		if want := strings.Fields(s); !reflect.DeepEqual(got, want) {
			t.Errorf("SplitCommand(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestRun(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		argv    []string
		wantErr []string // substrings of the error; nil: no error
	}{
		{name: "success", argv: []string{"true"}},
		{name: "success with output", argv: []string{"sh", "-c", "echo fine; echo also >&2"}},
		{name: "failure without output", argv: []string{"false"}, wantErr: []string{"false", "exit status 1"}},
		{
			name:    "failure carries stdout and stderr",
			argv:    []string{"sh", "-c", "echo to-stdout; echo 'nginx: [emerg] bad thing' >&2; exit 3"},
			wantErr: []string{"sh", "exit status 3", "to-stdout", "nginx: [emerg] bad thing"},
		},
		{name: "missing binary", argv: []string{"/nonexistent/vhost-gen-no-such-binary"}, wantErr: []string{"vhost-gen-no-such-binary"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(ctx, tt.argv)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Run(%q): %v", tt.argv, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Run(%q): no error", tt.argv)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Run(%q): error %q, want it to contain %q", tt.argv, err, w)
				}
			}
		})
	}
}

func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if err := Run(ctx, []string{"sleep", "30"}); err == nil {
		t.Fatal("Run with a cancelled context: no error")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Run with a cancelled context took %v", d)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestCommandCheck(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dir with 'quotes' and spaces")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	withMarker := filepath.Join(dir, "marked.conf")
	writeFile(t, withMarker, "# marker\nserver {}\n")
	without := filepath.Join(dir, "plain.conf")
	writeFile(t, without, "server {}\n")
	empty := filepath.Join(dir, "empty.conf")
	writeFile(t, empty, "")

	tests := []struct {
		cmd     string
		file    string
		wantErr string // "" for no error
	}{
		{cmd: "test -s {{.File}}", file: withMarker},
		{cmd: "test -s {{.File}}", file: empty, wantErr: "exit status 1"},
		{cmd: "grep -q marker {{.File}}", file: withMarker},
		{cmd: "grep -q marker {{.File}}", file: without, wantErr: "exit status 1"},
		{cmd: "grep -q marker {{.File}}", file: filepath.Join(dir, "missing.conf"), wantErr: "No such file"},
		// replaced inside a word, and in several words
		{cmd: `sh -c 'test "${1#--file=}" = "$2" && test -s "$2"' sh --file={{.File}} {{.File}}`, file: withMarker},
		{cmd: `sh -c 'test "${1#--file=}" = "$2" && test -s "$2"' sh --file={{.File}} {{.File}}`, file: empty, wantErr: "exit status 1"},
		// replaced everywhere in a word
		{cmd: `sh -c 'test "$1" = "$2:$2"' sh {{.File}}:{{.File}} {{.File}}`, file: withMarker},
		// the check's output is in the error
		{cmd: `sh -c 'echo "refusing $1" >&2; exit 1' sh {{.File}}`, file: withMarker, wantErr: "refusing " + withMarker},
		// other template text is left alone
		{cmd: `test {{.Other}} = '{{.Other}}'`, file: withMarker},
	}
	for _, tt := range tests {
		t.Run(tt.cmd+" "+filepath.Base(tt.file), func(t *testing.T) {
			check, err := CommandCheck(tt.cmd)
			if err != nil {
				t.Fatalf("CommandCheck(%q): %v", tt.cmd, err)
			}
			err = check(context.Background(), tt.file)
			if tt.wantErr == "" {
				if err != nil {
					t.Errorf("check %s: %v", tt.file, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("check %s: error %v, want one containing %q", tt.file, err, tt.wantErr)
			}
		})
	}
}

func TestCommandCheckAndReloadBadCommand(t *testing.T) {
	for _, cmd := range []string{"", "  ", `nginx -t -c '{{.File}}`} {
		if _, err := CommandCheck(cmd); err == nil || !strings.Contains(err.Error(), "--check-cmd") {
			t.Errorf("CommandCheck(%q): error %v, want one naming --check-cmd", cmd, err)
		}
		if _, err := CommandReload(cmd); err == nil || !strings.Contains(err.Error(), "--reload-cmd") {
			t.Errorf("CommandReload(%q): error %v, want one naming --reload-cmd", cmd, err)
		}
	}
}

func TestCommandReload(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "reloaded")
	reload, err := CommandReload("touch '" + marker + "'")
	if err != nil {
		t.Fatal(err)
	}
	if err := reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("reload command did not run: %v", err)
	}

	fail, err := CommandReload(`sh -c 'echo "nginx: [alert] kill failed" >&2; exit 1'`)
	if err != nil {
		t.Fatal(err)
	}
	if err := fail(context.Background()); err == nil || !strings.Contains(err.Error(), "kill failed") {
		t.Errorf("failing reload: error %v, want one carrying its output", err)
	}
}

// TestApplierWithCommandCheck puts CommandCheck into an Applier: the check sees the staged file,
// and a refused config never reaches the live path.
func TestApplierWithCommandCheck(t *testing.T) {
	check, err := CommandCheck("grep -q ok-to-apply {{.File}}")
	if err != nil {
		t.Fatal(err)
	}
	reloads := 0
	path := filepath.Join(t.TempDir(), "site.conf")
	a := &Applier{Path: path, Check: check, Reload: func(context.Context) error { reloads++; return nil }}
	mustApply(t, a, "# ok-to-apply v1\n", Applied)
	if _, err := a.Apply(context.Background(), []byte("# v2\n")); !errors.Is(err, ErrCheck) {
		t.Fatalf("Apply without the marker: error %v, want ErrCheck", err)
	}
	wantFile(t, path, ptr("# ok-to-apply v1\n"))
	wantNoStaged(t, path)
	if reloads != 1 {
		t.Errorf("reloads = %d, want 1", reloads)
	}
}

func requireNginx(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx not on PATH")
	}
	return bin
}

func TestNginxCheck(t *testing.T) {
	bin := requireNginx(t)
	const valid = `upstream u { server 127.0.0.1:1; }
server {
    listen 127.0.0.1:1;
    server_name example.com;
    location / { proxy_pass http://u; }
}
`
	tests := []struct {
		name    string
		conf    string
		wantErr []string // substrings of nginx's own message; nil: passes
	}{
		{name: "valid http snippet", conf: valid},
		{name: "empty file", conf: ""},
		{name: "map and several servers", conf: "map $host $b { default u; }\n" + valid +
			"server { listen 127.0.0.1:2; server_name *.example.org; return 404; }\n"},
		{name: "unknown directive", conf: valid + "frobnicate on;\n", wantErr: []string{`unknown directive "frobnicate"`}},
		{name: "unclosed block", conf: "server { listen 127.0.0.1:1;\n", wantErr: []string{"unexpected end of file"}},
		{name: "main-context directive in http", conf: "worker_processes 2;\n", wantErr: []string{`"worker_processes" directive is not allowed here`}},
		{name: "duplicate upstream", conf: valid + "upstream u { server 127.0.0.1:2; }\n", wantErr: []string{`duplicate upstream "u"`}},
		{name: "bad listen", conf: "server { listen 127.0.0.1:99999; }\n", wantErr: []string{"invalid port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // the throwaway main config goes here: it must be removed
			dir := t.TempDir()
			staged := filepath.Join(dir, ".vhosts.conf.staged-123")
			writeFile(t, staged, tt.conf)
			err := NginxCheck(bin)(context.Background(), staged)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("nginx -t refused a valid config: %v", err)
				}
			} else {
				if err == nil {
					t.Fatal("nginx -t accepted an invalid config")
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain nginx's message %q", err, w)
					}
				}
				// nginx names the staged file in its message.
				if !strings.Contains(err.Error(), staged) {
					t.Errorf("error %q does not name the staged file", err)
				}
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("NginxCheck left %d entries in TMPDIR: %v", len(left), left[0].Name())
			}
		})
	}
}

func TestNginxCheckAwkwardPaths(t *testing.T) {
	bin := requireNginx(t)
	const conf = "server { listen 127.0.0.1:1; return 204; }\n"
	t.Run("spaces, quotes and backslashes", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), `we"ird \dir; {x} 'q'`)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		staged := filepath.Join(dir, "a b.conf")
		writeFile(t, staged, conf)
		if err := NginxCheck(bin)(context.Background(), staged); err != nil {
			t.Errorf("valid config at %q: %v", staged, err)
		}
		writeFile(t, staged, "frobnicate;\n")
		if err := NginxCheck(bin)(context.Background(), staged); err == nil {
			t.Errorf("invalid config at %q passed: the include did not read it", staged)
		}
	})
	t.Run("relative path", func(t *testing.T) {
		dir := t.TempDir()
		t.Chdir(dir)
		writeFile(t, "rel.conf", conf)
		if err := NginxCheck(bin)(context.Background(), "rel.conf"); err != nil {
			t.Errorf("valid config at a relative path: %v", err)
		}
		writeFile(t, "rel.conf", "frobnicate;\n")
		if err := NginxCheck(bin)(context.Background(), "rel.conf"); err == nil {
			t.Error("invalid config at a relative path passed")
		}
	})
	t.Run("missing file", func(t *testing.T) {
		err := NginxCheck(bin)(context.Background(), filepath.Join(t.TempDir(), "missing.conf"))
		if err == nil || !strings.Contains(err.Error(), "missing.conf") {
			t.Errorf("missing staged file: error %v, want nginx's message naming it", err)
		}
	})
	t.Run("missing binary", func(t *testing.T) {
		staged := filepath.Join(t.TempDir(), "x.conf")
		writeFile(t, staged, conf)
		if err := NginxCheck("/nonexistent/nginx")(context.Background(), staged); err == nil {
			t.Error("a missing nginx binary passed the check")
		}
	})
}

// TestApplierWithNginxCheck runs the whole staged-check path with the real nginx.
func TestApplierWithNginxCheck(t *testing.T) {
	bin := requireNginx(t)
	path := filepath.Join(t.TempDir(), "vhosts.conf")
	reloads := 0
	a := &Applier{Path: path, Check: NginxCheck(bin), Reload: func(context.Context) error { reloads++; return nil }}
	good := "server { listen 127.0.0.1:1; return 204; }\n"
	mustApply(t, a, good, Applied)
	_, err := a.Apply(context.Background(), []byte(good+"frobnicate on;\n"))
	if !errors.Is(err, ErrCheck) || !strings.Contains(err.Error(), `unknown directive "frobnicate"`) {
		t.Fatalf("error %v, want ErrCheck carrying nginx's message", err)
	}
	wantFile(t, path, ptr(good))
	wantNoStaged(t, path)
	if reloads != 1 {
		t.Errorf("reloads = %d, want 1", reloads)
	}
}

// sleeper is a child process that lives until signalled.
type sleeper struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been waited for
	status syscall.WaitStatus
}

func startSleeper(t *testing.T) *sleeper {
	t.Helper()
	s := &sleeper{cmd: exec.Command("sleep", "30"), exited: make(chan struct{})}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.cmd.Wait()
		s.status = s.cmd.ProcessState.Sys().(syscall.WaitStatus)
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.exited
	})
	return s
}

func (s *sleeper) pid() string { return strconv.Itoa(s.cmd.Process.Pid) }

// waitSignalled asserts that the process exits, killed by sig.
func (s *sleeper) waitSignalled(t *testing.T, sig syscall.Signal) {
	t.Helper()
	select {
	case <-s.exited:
		if ws := s.status; !ws.Signaled() || ws.Signal() != sig {
			t.Errorf("process ended with status %#x (signalled %v, %v), want killed by %v", int(ws), ws.Signaled(), ws.Signal(), sig)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("process did not exit after %v", sig)
	}
}

func TestPidfileReloadSignals(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			proc := startSleeper(t)
			pidfile := filepath.Join(t.TempDir(), "nginx.pid")
			writeFile(t, pidfile, proc.pid()+"\n") // nginx writes a newline
			if err := PidfileReload(pidfile, sig)(context.Background()); err != nil {
				t.Fatalf("PidfileReload: %v", err)
			}
			proc.waitSignalled(t, sig)
		})
	}
}

func TestPidfileReloadRereadsPidfile(t *testing.T) {
	pidfile := filepath.Join(t.TempDir(), "proxy.pid")
	reload := PidfileReload(pidfile, syscall.SIGTERM)

	first := startSleeper(t)
	writeFile(t, pidfile, "  "+first.pid()+"  \n")
	if err := reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	first.waitSignalled(t, syscall.SIGTERM)

	// The proxy restarted with a new PID: the same ReloadFunc signals the new process.
	second := startSleeper(t)
	writeFile(t, pidfile, second.pid())
	if err := reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	second.waitSignalled(t, syscall.SIGTERM)
}

func TestPidfileReloadErrors(t *testing.T) {
	dir := t.TempDir()
	pidMax := 4194304
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pidMax = n
		}
	}
	tests := []struct {
		name     string
		contents *string // nil: no pidfile
		wantErr  []string
		wantIs   error
	}{
		{name: "missing pidfile", wantErr: []string{"read pid"}, wantIs: os.ErrNotExist},
		{name: "empty", contents: ptr(""), wantErr: []string{"is not a process ID"}},
		{name: "blank", contents: ptr(" \n"), wantErr: []string{"is not a process ID"}},
		{name: "text", contents: ptr("nginx\n"), wantErr: []string{`"nginx" is not a process ID`}},
		{name: "two numbers", contents: ptr("12 34\n"), wantErr: []string{`"12 34" is not a process ID`}},
		{name: "hex", contents: ptr("0x10"), wantErr: []string{"is not a process ID"}},
		{name: "zero (the process group)", contents: ptr("0\n"), wantErr: []string{`"0" is not a process ID`}},
		{name: "one (init)", contents: ptr("1\n"), wantErr: []string{`"1" is not a process ID`}},
		{name: "negative (a process group)", contents: ptr("-1\n"), wantErr: []string{`"-1" is not a process ID`}},
		{name: "negative pid", contents: ptr("-1234\n"), wantErr: []string{"is not a process ID"}},
		{
			name:     "no such process",
			contents: ptr(strconv.Itoa(pidMax + 1)),
			wantErr:  []string{"signal", strconv.Itoa(pidMax + 1)},
			wantIs:   syscall.ESRCH,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pidfile := filepath.Join(dir, "p"+strconv.Itoa(i)+".pid")
			if tt.contents != nil {
				writeFile(t, pidfile, *tt.contents)
			}
			// Signal 0 only checks that the process exists: should the PID guard ever break,
			// "0", "1" and "-1" must not signal our process group, init or every process.
			err := PidfileReload(pidfile, syscall.Signal(0))(context.Background())
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range append(tt.wantErr, pidfile) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
		})
	}
}

func TestParseSignal(t *testing.T) {
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr bool
	}{
		{in: "HUP", want: syscall.SIGHUP},
		{in: "hup", want: syscall.SIGHUP},
		{in: "SIGHUP", want: syscall.SIGHUP},
		{in: "sighup", want: syscall.SIGHUP},
		{in: "SigHup", want: syscall.SIGHUP},
		{in: "USR1", want: syscall.SIGUSR1},
		{in: "SIGUSR1", want: syscall.SIGUSR1},
		{in: "usr2", want: syscall.SIGUSR2},
		{in: "SIGUSR2", want: syscall.SIGUSR2},
		{in: "TERM", want: syscall.SIGTERM},
		{in: "SIGTERM", want: syscall.SIGTERM},
		{in: "QUIT", want: syscall.SIGQUIT},
		{in: "sigquit", want: syscall.SIGQUIT},
		{in: "INT", want: syscall.SIGINT},
		{in: "SIGINT", want: syscall.SIGINT},
		{in: "", wantErr: true},
		{in: "SIG", wantErr: true},
		{in: "KILL", wantErr: true},
		{in: "SIGKILL", wantErr: true},
		{in: "STOP", wantErr: true},
		{in: "1", wantErr: true},
		{in: "SIGSIGHUP", wantErr: true},
		{in: "HUPP", wantErr: true},
		{in: "USR", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSignal(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("ParseSignal(%q) = %v, want an error", tt.in, got)
				}
				if !strings.Contains(err.Error(), "HUP") {
					t.Errorf("ParseSignal(%q): error %q does not list the accepted names", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSignal(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("ParseSignal(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestNginxCheckMissingBinaryExplains(t *testing.T) {
	err := NginxCheck("nginx-not-installed-here")(context.Background(), "/dev/null")
	if err == nil || !strings.Contains(err.Error(), "--check-cmd") {
		t.Fatalf("want an error that points at --check-cmd, got %v", err)
	}
}

// TestNginxCheckWith: the other files of the http context are checked with the staged file, as
// nginx loads them together: a broken one fails the check with nginx's message naming it, and
// one that clashes with the staged file too.
func TestNginxCheckWith(t *testing.T) {
	bin := requireNginx(t)
	dir := t.TempDir()
	staged := filepath.Join(dir, ".vhost-gen.conf.staged-1")
	writeFile(t, staged, "upstream u { server 127.0.0.1:1; }\nserver { listen 127.0.0.1:1; location / { proxy_pass http://u; } }\n")
	good, broken, clash := filepath.Join(dir, "good.conf"), filepath.Join(dir, "broken.conf"), filepath.Join(dir, "clash.conf")
	writeFile(t, good, "client_max_body_size 5m;\n")
	writeFile(t, broken, "this is not nginx;\n")
	writeFile(t, clash, "upstream u { server 127.0.0.1:2; }\n")
	for _, tc := range []struct {
		also []string
		want string
	}{
		{nil, ""},
		{[]string{good}, ""},
		{[]string{good, broken}, `unknown directive "this" in ` + broken},
		{[]string{clash}, `duplicate upstream "u"`},
	} {
		err := NginxCheckWith(bin, func() []string { return tc.also })(context.Background(), staged)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("with %v: %v, want it to pass", tc.also, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("with %v: %v, want %q", tc.also, err, tc.want)
		}
	}
}

// TestNginxCheckElsewhereLeavesNothing: the check run in another container writes its throwaway
// main config beside the staged file, in the shared directory; it and the pid file nginx -t
// creates are removed after the check.
func TestNginxCheckElsewhereLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	staged := filepath.Join(dir, ".default.conf.staged-1")
	writeFile(t, staged, "server { listen 1; }\n")
	var argv []string
	run := func(_ context.Context, a []string) error {
		argv = a
		main := a[len(a)-1]
		data, err := os.ReadFile(main)
		if err != nil || !strings.Contains(string(data), "include "+quoteNginx(staged)) {
			t.Errorf("main config %s: %q, %v; want it to include the staged file", main, data, err)
		}
		return os.WriteFile(main+".pid", nil, 0o644) // as nginx -t does
	}
	if err := NginxCheckElsewhere(run, "nginx", "/etc/nginx/", nil)(context.Background(), staged); err != nil {
		t.Fatal(err)
	}
	if len(argv) < 2 || argv[0] != "nginx" || argv[1] != "-t" || !slices.Contains(argv, "/etc/nginx/") {
		t.Errorf("argv %q", argv)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("left in the shared directory: %v; want the staged file alone", names)
	}
}
