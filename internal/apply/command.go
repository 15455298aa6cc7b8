package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds a check, Hot update or reload (Applier.Timeout), and a command run
// without a deadline of its own, so that a hung proxy cannot stall the loop.
const DefaultTimeout = 30 * time.Second

// waitDelay is how long Run waits for a command's output to close once the command has exited
// or been killed: a process it left behind (a daemon it started) may hold it open.
const waitDelay = 2 * time.Second

// SplitCommand splits an operator's command line into words, with single and double quotes and
// backslash escapes as a shell would, but runs no shell: nothing in it is expanded.
func SplitCommand(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == '\'':
			cur.WriteByte(c)
		case c == '\\' && i+1 < len(s) && (quote == 0 || strings.IndexByte(`"\$`+"`", s[i+1]) >= 0):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case quote == '"':
			cur.WriteByte(c)
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("command %q: unclosed quote", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	return words, nil
}

// Run runs argv and returns an error carrying its output when it fails. It is bounded by ctx's
// deadline, or DefaultTimeout when ctx has none; the command runs in a process group of its own,
// killed whole when ctx ends, so that a wrapper script's children do not outlive it.
func Run(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return cmd.Process.Kill()
	}
	cmd.WaitDelay = waitDelay
	out, err := cmd.CombinedOutput()
	if errors.Is(err, exec.ErrWaitDelay) {
		// It exited successfully; something it started still holds its output open.
		err = nil
	}
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w (%w)", err, cerr)
		}
		msg := strings.TrimSpace(string(out))
		if msg == "" {
			return fmt.Errorf("%s: %w", argv[0], err)
		}
		return fmt.Errorf("%s: %w: %s", argv[0], err, msg)
	}
	return nil
}

// CommandCheck runs an operator's check command, with {{.File}} replaced by the staged file.
func CommandCheck(cmdline string) (CheckFunc, error) {
	argv, err := SplitCommand(cmdline)
	if err != nil {
		return nil, fmt.Errorf("--check-cmd: %w", err)
	}
	return func(ctx context.Context, staged string) error {
		words := make([]string, len(argv))
		for i, w := range argv {
			words[i] = strings.ReplaceAll(w, "{{.File}}", staged)
		}
		return Run(ctx, words)
	}, nil
}

// NginxCheck runs `nginx -t` on a throwaway main config that includes the staged file in the http
// context, where the shipped template's output belongs.
func NginxCheck(binary string) CheckFunc { return NginxCheckWith(binary, nil) }

// NginxCheckWith is NginxCheck with other files of the http context before the staged file (the
// other conf.d/*.conf files, which nginx loads with it), as also returns them at each check.
func NginxCheckWith(binary string, also func() []string) CheckFunc {
	return func(ctx context.Context, staged string) error {
		if _, err := exec.LookPath(binary); err != nil {
			return fmt.Errorf("%s is not installed beside vhost-gen, so the config cannot be checked with nginx -t: install it, or set --check-cmd (\"none\" skips the check): %w", binary, err)
		}
		dir, err := os.MkdirTemp("", "vhost-gen-check-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		return nginxCheckIn(ctx, Run, binary, dir, dir+"/", staged, also)
	}
}

// NginxCheckElsewhere runs nginx -t where run runs commands (in the proxy's container, through
// the Docker API): the throwaway main config is written beside the staged file, whose directory
// that nginx must see at the same path (the shared conf.d volume of nginx-proxy's
// separate-containers mode), and nginx's relative paths are prefix's (its config directory).
func NginxCheckElsewhere(run func(context.Context, []string) error, binary, prefix string, also func() []string) CheckFunc {
	return func(ctx context.Context, staged string) error {
		return nginxCheckIn(ctx, run, binary, filepath.Dir(staged), prefix, staged, also)
	}
}

// nginxCheckIn writes the throwaway main config in dir (hidden, so that no conf.d/*.conf include
// takes it) and runs nginx -t on it.
func nginxCheckIn(ctx context.Context, run func(context.Context, []string) error, binary, dir, prefix, staged string, also func() []string) error {
	abs, err := filepath.Abs(staged)
	if err != nil {
		return err
	}
	var includes strings.Builder
	if also != nil {
		for _, f := range also() {
			fmt.Fprintf(&includes, "    include %s;\n", quoteNginx(f))
		}
	}
	f, err := os.CreateTemp(dir, ".vhost-gen-check-*.nginx")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	// nginx -t creates the pid file, empty, to see that it could: in a shared directory it would
	// stay behind, one per check.
	defer os.Remove(f.Name() + ".pid")
	conf := fmt.Sprintf("pid %s;\nerror_log stderr;\nevents {}\nhttp {\n%s    include %s;\n}\n",
		quoteNginx(f.Name()+".pid"), includes.String(), quoteNginx(abs))
	_, werr := f.WriteString(conf)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return werr
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { // another user's nginx reads it
		return err
	}
	return run(ctx, []string{binary, "-t", "-q", "-e", "stderr", "-p", prefix, "-c", f.Name()})
}

// HAProxyCheck runs `haproxy -c -f` on the staged file, which is HAProxy's whole config.
func HAProxyCheck(binary string) CheckFunc {
	return func(ctx context.Context, staged string) error {
		if _, err := exec.LookPath(binary); err != nil {
			return fmt.Errorf("%s is not installed beside vhost-gen, so the config cannot be checked with haproxy -c: install it, or set --check-cmd (\"none\" skips the check): %w", binary, err)
		}
		// No -q: in 2.6 it also hides the ALERT lines that say what is wrong.
		return Run(ctx, []string{binary, "-c", "-f", staged})
	}
}

func quoteNginx(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// CommandReload runs an operator's reload command.
func CommandReload(cmdline string) (ReloadFunc, error) {
	argv, err := SplitCommand(cmdline)
	if err != nil {
		return nil, fmt.Errorf("--reload-cmd: %w", err)
	}
	return func(ctx context.Context) error { return Run(ctx, argv) }, nil
}

// PidfileReload sends sig to the process whose PID is in pidfile, read at every reload since the
// proxy may have been restarted.
func PidfileReload(pidfile string, sig syscall.Signal) ReloadFunc {
	return func(context.Context) error {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return fmt.Errorf("read pid: %w", err)
		}
		pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
		if err != nil || pid <= 1 {
			return fmt.Errorf("pid file %s: %q is not a process ID", pidfile, bytes.TrimSpace(b))
		}
		if err := syscall.Kill(pid, sig); err != nil {
			return fmt.Errorf("signal %s to pid %d (from %s): %w", sig, pid, pidfile, err)
		}
		return nil
	}
}

// ParseSignal accepts a signal name, with or without "SIG".
func ParseSignal(name string) (syscall.Signal, error) {
	switch strings.TrimPrefix(strings.ToUpper(name), "SIG") {
	case "HUP":
		return syscall.SIGHUP, nil
	case "USR1":
		return syscall.SIGUSR1, nil
	case "USR2":
		return syscall.SIGUSR2, nil
	case "TERM":
		return syscall.SIGTERM, nil
	case "QUIT":
		return syscall.SIGQUIT, nil
	case "INT":
		return syscall.SIGINT, nil
	}
	return 0, fmt.Errorf("signal %q: use HUP, USR1, USR2, QUIT, INT or TERM", name)
}
