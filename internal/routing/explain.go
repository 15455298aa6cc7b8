package routing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// The address rules (README, "Address selection"): Server.Via says which one chose a server's
// address, Server.ViaDetail what it found.
const (
	// ViaSource: the source gave the address (etcd's flat layouts, the ambassador's tree).
	ViaSource = "source"
	// ViaNetworkSetting: rule 1, VIRTUAL_NETWORK names the network.
	ViaNetworkSetting = "VIRTUAL_NETWORK"
	// ViaSharedNetwork: rule 2, the first network (by name) shared with the proxy.
	ViaSharedNetwork = "shared network"
	// ViaHostNetwork: rule 3, host networking: the node's address.
	ViaHostNetwork = "host network"
	// ViaPublishedPort: rule 4, the port published on the host.
	ViaPublishedPort = "published port"
)

// Why a workload is left out of a route (Exclusion.Why).
const (
	// ExcludedProblem: the source's entry or a setting is invalid, or asks for what this gateway
	// cannot serve; Reason has the problems.
	ExcludedProblem = "problem"
	// ExcludedHealth: its healthcheck is starting or unhealthy (see --include-unhealthy).
	ExcludedHealth = "health"
	// ExcludedAddress: no address rule found an address the proxy can reach.
	ExcludedAddress = "no address"
	// ExcludedConflict: the route (or TCP port) is held by a workload placed before it, with
	// settings it cannot share a backend with (VIRTUAL_PROTO, VIRTUAL_DEST, VIRTUAL_STICKY, the
	// loadbalance and keepalive labels), or by a rival service created before it; Holder names
	// that workload.
	ExcludedConflict = "conflict"
	// ExcludedSameAddress: another workload of the route is at the same address, and a backend
	// has one server per address; Holder names the one kept.
	ExcludedSameAddress = "same address"
)

// Exclusion is one workload left out of one route, and why: every decision of Build that keeps a
// workload that asked for a host (or a TCP port) from serving it. A workload left out of every
// route it asked for has one per host (and one for its TCP port); one whose hosts could not be
// read has one with no Host. Weight 0 is not an exclusion: the server stays, drained.
type Exclusion struct {
	Source     string `json:"source,omitempty"`
	Workload   string `json:"workload"`
	WorkloadID string `json:"workloadID"`
	// Host and Path are the route it asked for; Host is empty when its VIRTUAL_HOST could not be
	// read (or it asked for a TCP port only), Path when its VIRTUAL_PATH could not.
	Host string `json:"host,omitempty"`
	Path string `json:"path,omitempty"`
	// Port is the TCP service (VIRTUAL_TCP_PORT) it was left out of; 0 for a host's route.
	Port int `json:"port,omitempty"`
	// Why is one of the Excluded* values; Reason says it in full.
	Why    string `json:"why"`
	Reason string `json:"reason"`
	// Holder is the workload that keeps what this one asked for (a conflict, the same address).
	Holder string `json:"holder,omitempty"`
}

// SettingNames are the per-workload settings routing reads, in the order a person reads them.
var SettingNames = []string{
	SettingHost, SettingMultiports, SettingPath, SettingPort, SettingProto, SettingDest, SettingNetwork, SettingWeight,
	SettingSticky, SettingRoot, SettingNetworkAccess, SettingTCPPort, SettingCertName, SettingHTTPSMethod, SettingHSTS, SettingSSLPolicy,
	SettingHTTPOnMissing, SettingNonGetRedirect, SettingNonGetLabel, SettingTrustDefaultCert,
	SettingACMEHost, SettingLEHost, SettingACMEEmail, SettingLEEmail, SettingACMEKeySize,
	SettingACMEProfile, SettingACMESingle, SettingLESingle, SettingLoadBalance, SettingKeepalive, SettingServerTokens,
}

// exclude records that w is left out of every route it asked for (s nil or partly parsed: the
// hosts and port it could read).
func (b *builder) exclude(w *discovery.Workload, s *Settings, why string, problems []Problem) {
	e := Exclusion{Source: w.Source, Workload: w.Name, WorkloadID: w.ID, Why: why, Reason: problemReasons(problems)}
	n := len(b.excluded)
	if s != nil {
		for _, h := range s.Hosts {
			he := e
			he.Host, he.Path = h, s.Path
			b.excluded = append(b.excluded, he)
		}
		if s.TCPPort != 0 {
			te := e
			te.Port = s.TCPPort
			b.excluded = append(b.excluded, te)
		}
	}
	if len(b.excluded) == n {
		b.excluded = append(b.excluded, e)
	}
}

// problemReasons is what problems say, without the workload they are about.
func problemReasons(ps []Problem) string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		if p.Warning {
			continue
		}
		p.Workload, p.Host = "", ""
		out = append(out, p.String())
	}
	return strings.Join(out, "; ")
}

// dedupServers sorts servers by address and keeps one per address, the first in that order; the
// others are returned with the one kept.
func dedupServers(ss []Server) (kept []Server, dropped [][2]Server) {
	slices.SortFunc(ss, func(a, b Server) int {
		return cmp.Or(cmp.Compare(a.IP, b.IP), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.WorkloadID, b.WorkloadID))
	})
	kept = ss[:0]
	for _, s := range ss {
		if n := len(kept); n > 0 && kept[n-1].Address == s.Address {
			dropped = append(dropped, [2]Server{s, kept[n-1]})
			continue
		}
		kept = append(kept, s)
	}
	clear(ss[len(kept):])
	return kept, dropped
}

// sameAddress is the exclusion of a server dropped for sharing holder's address.
func sameAddress(w *discovery.Workload, dropped, holder Server) Exclusion {
	e := Exclusion{Workload: dropped.Workload, WorkloadID: dropped.WorkloadID, Why: ExcludedSameAddress, Holder: holder.Workload,
		Reason: fmt.Sprintf("its address %s is already %s's (found by %s): a backend has one server per address", dropped.Address, holder.Workload, dropped.Via)}
	if w != nil {
		e.Source = w.Source
	}
	return e
}

func compareExclusions(a, b Exclusion) int {
	return cmp.Or(cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.WorkloadID, b.WorkloadID), cmp.Compare(a.Host, b.Host),
		cmp.Compare(a.Path, b.Path), cmp.Compare(a.Port, b.Port), cmp.Compare(a.Why, b.Why), cmp.Compare(a.Reason, b.Reason))
}
