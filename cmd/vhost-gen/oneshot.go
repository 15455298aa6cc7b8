package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/apply"
	"github.com/vhost-gen/vhost-gen/internal/apply/haproxy"
	"github.com/vhost-gen/vhost-gen/internal/discovery"
	"github.com/vhost-gen/vhost-gen/internal/explain"
	"github.com/vhost-gen/vhost-gen/internal/quarantine"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// snapshot reads every source once. Run in a container, it waits (briefly) for its own container
// to be listed: the engine marks a container running only after its process has started, and a
// one-shot command can be quicker than that.
func (a *app) snapshot(ctx context.Context) ([]discovery.Workload, error) {
	for attempt := 0; ; attempt++ {
		var all []discovery.Workload
		for _, s := range a.sources {
			ws, err := s.List(ctx)
			if err != nil {
				return nil, fmt.Errorf("source %s: %w", s.Name(), err)
			}
			all = append(all, ws...)
		}
		if a.self == "" || attempt == 20 || slices.ContainsFunc(all, func(w discovery.Workload) bool { return w.ID == a.self }) {
			return all, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (a *app) render(ctx context.Context, stdout io.Writer) error {
	ws, err := a.snapshot(ctx)
	if err != nil {
		return err
	}
	t, data, err := a.renderChecked(ctx, a.build(ws))
	a.printProblems(t)
	if err != nil {
		return err
	}
	if a.cfg.Out == "" {
		_, err = stdout.Write(data)
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(a.cfg.Out), "."+filepath.Base(a.cfg.Out)+".staged-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	os.Chmod(tmp.Name(), 0o644)
	return os.Rename(tmp.Name(), a.cfg.Out)
}

// renderChecked renders t and, when the check is available (--check-cmd, or the proxy's own
// binary on the PATH), runs it as watch would: sites the check refuses are left out with a problem
// each, so a dry run shows what watch would apply. A check that fails without any site is an
// error.
func (a *app) renderChecked(ctx context.Context, t routing.Table) (routing.Table, []byte, error) {
	data, err := a.renderTable(t)
	if err != nil {
		return t, nil, err
	}
	check, err := a.check()
	if err != nil || check == nil {
		return t, data, err
	}
	if a.cfg.CheckCmd == "" {
		if _, lerr := exec.LookPath(a.cfg.Proxy); lerr != nil {
			fmt.Fprintf(a.stderr, "note: not checked: %s is not installed here (--check-cmd sets a check)\n", a.cfg.Proxy)
			return t, data, nil
		}
	}
	dir, err := os.MkdirTemp("", "vhost-gen-render-")
	if err != nil {
		return t, nil, err
	}
	defer os.RemoveAll(dir)
	ap := &apply.Applier{Path: filepath.Join(dir, "vhost-gen.conf"), Check: check, Timeout: a.cfg.CommandTimeout}
	cerr := ap.CheckData(ctx, data)
	if cerr == nil {
		return t, data, nil
	}
	var q quarantine.Set
	kept, qdata, err := q.Isolate(ctx, t, a.renderTable, ap.CheckData)
	if err != nil {
		return t, nil, fmt.Errorf("%w: %w", apply.ErrCheck, cerr)
	}
	return kept, qdata, nil
}

func (a *app) printProblems(t routing.Table) {
	for _, p := range t.Problems {
		fmt.Fprintln(a.stderr, "problem:", p.String())
	}
}

func (a *app) routes(ctx context.Context, stdout io.Writer) error {
	ws, err := a.snapshot(ctx)
	if err != nil {
		return err
	}
	t := a.build(ws)
	if len(a.cfg.ExplainHosts.values) > 0 || len(a.cfg.ExplainWorkloads.values) > 0 {
		return a.explain(ctx, t, stdout)
	}
	if a.cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			ProxyNetworks []string             `json:"proxyNetworks"`
			HostAddress   routing.HostAddress  `json:"hostAddress"`
			Sites         []routing.Site       `json:"sites"`
			TCP           []routing.TCPService `json:"tcp"`
			Problems      []routing.Problem    `json:"problems"`
		}{t.ProxyNetworks, t.HostAddress, t.Sites, t.TCP, t.Problems})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPATH\tBACKEND\tSERVERS\tHTTPS")
	for _, s := range t.Sites {
		for _, r := range s.Routes {
			path := r.Path
			if r.Dest != "" {
				path += " -> " + r.Dest
			}
			fmt.Fprintf(tw, "%s\t%s\t%s://%s\t%s\t%s\n", s.Host, path, r.Backend.Proto, r.Backend.Name, serverList(r.Backend.Servers), tlsSummary(s.TLS))
		}
	}
	for _, ts := range t.TCP {
		fmt.Fprintf(tw, "tcp :%d\t\t%s (%s)\t%s\n", ts.Port, ts.Backend.Name, ts.Service, serverList(ts.Backend.Servers))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	a.printProblems(t)
	return nil
}

// explain prints the explanation of --host and --workload: as text, or JSON with --json.
func (a *app) explain(ctx context.Context, t routing.Table, stdout io.Writer) error {
	var live *explain.Live
	if from, read := a.serverStates(); read != nil {
		live = explain.ReadLive(ctx, from, read)
	}
	r := explain.Explain(t, explain.Query{Hosts: a.cfg.ExplainHosts.values, Workloads: a.cfg.ExplainWorkloads.values}, live)
	if a.cfg.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	return r.WriteText(stdout)
}

// serverStates is where the proxy's servers' live states come from, and how they are read:
// with HAProxy, "show stat" on its runtime API (--haproxy-socket); "" and nil for nginx. The
// admin server's /routes?host= reads them the same way (State.SetServerStates).
func (a *app) serverStates() (string, func(context.Context) (explain.States, error)) {
	if a.cfg.Proxy != "haproxy" || a.cfg.HAProxySocket == "" {
		return "", nil
	}
	rt := &haproxy.Runtime{Socket: a.cfg.HAProxySocket}
	return "HAProxy runtime API " + a.cfg.HAProxySocket, func(ctx context.Context) (explain.States, error) {
		out, err := rt.Do(ctx, "show stat")
		if err != nil {
			return nil, err
		}
		return explain.ParseStat(out)
	}
}

func serverList(ss []routing.Server) string {
	out := make([]string, len(ss))
	for i, sv := range ss {
		out[i] = fmt.Sprintf("%s (%s, weight %d)", sv.Address, sv.Workload, sv.Weight)
	}
	return strings.Join(out, ", ")
}

// tlsSummary is a site's HTTPS decision in a few words: "redirect, cert shop (file, until 2027-03-01)".
func tlsSummary(t *routing.SiteTLS) string {
	if t == nil {
		return "-"
	}
	if t.Cert == nil {
		return t.Method + ", no certificate"
	}
	return fmt.Sprintf("%s, cert %s (%s, until %s)", t.Method, t.Cert.Name, t.CertSource, t.Cert.NotAfter.Format("2006-01-02"))
}
