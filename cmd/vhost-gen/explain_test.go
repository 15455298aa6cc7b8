package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// routes --host and --workload explain, as text and as JSON; with HAProxy the live states are
// read from --haproxy-socket, and a socket that does not answer is said, not fatal.
func TestRoutesExplainAgainstFakeEngine(t *testing.T) {
	engine := fakeEngine(t)
	common := []string{"routes", "--log-level", "error", "--proxy-networks", "bridge"}
	cases := []struct {
		name string
		args []string
		want []string
		not  []string
	}{
		{"a host", []string{"--host", "a.test"}, []string{
			"host a.test: site a.test (exact name)", "asked for by: vgt-plain (1 serving, 0 left out)",
			"/api  vgt-plain", "via shared network: network bridge", "/api  -> backend a.test_api, http, 1 server",
			"note: no route for /"}, []string{"live states"}},
		{"a host left out", []string{"--host", "sick.test"}, []string{
			"host sick.test: no site answers it (the proxy answers 503)", "vgt-unhealthy  sick.test/  health: health is unhealthy"}, nil},
		{"two hosts, normalized", []string{"--host", "pub.test,Host.Test."}, []string{
			"host pub.test: site pub.test", "host host.test: site host.test", "via host network"}, nil},
		{"a workload", []string{"--workload", "vgt-hostnet"}, []string{
			"workload vgt-hostnet: docker", "VIRTUAL_PORT  18083", "(env)", "parsed: hosts host.test; path /; port 18083",
			"network mode host", "host.test/  ", "via host network: the node's address"}, nil},
		{"HAProxy without its socket", []string{"--host", "a.test", "--proxy", "haproxy", "--haproxy-socket", filepath.Join(t.TempDir(), "none.sock")},
			[]string{"live states: unavailable (HAProxy runtime API ", "none.sock): "}, []string{"not in the proxy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runAgainst(t, engine, append(common, tc.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr %q", code, errOut)
			}
			for _, s := range tc.want {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
			for _, s := range tc.not {
				if strings.Contains(out, s) {
					t.Errorf("output has %q:\n%s", s, out)
				}
			}
		})
	}

	code, out, errOut := runAgainst(t, engine, append(common, "--host", "sick.test", "--workload", "vgt-plain", "--json")...)
	if code != 0 {
		t.Fatalf("--json: exit %d, stderr %q", code, errOut)
	}
	var doc struct {
		Hosts []struct {
			Host    string `json:"host"`
			LeftOut []struct {
				Workload, Why string
			} `json:"leftOut"`
		} `json:"hosts"`
		Workloads []struct {
			Workload string `json:"workload"`
			Serves   []struct {
				Host   string `json:"host"`
				Server struct {
					Address, Via string
				} `json:"server"`
			} `json:"serves"`
		} `json:"workloads"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(doc.Hosts) != 1 || len(doc.Hosts[0].LeftOut) != 1 || doc.Hosts[0].LeftOut[0].Why != "health" ||
		len(doc.Workloads) != 1 || len(doc.Workloads[0].Serves) != 1 || doc.Workloads[0].Serves[0].Server.Via != "shared network" {
		t.Errorf("--json: %+v\n%s", doc, out)
	}
}
