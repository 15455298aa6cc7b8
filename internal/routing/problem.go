package routing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

// Problem is why one workload (or, with an empty Workload, the whole table) cannot be routed as
// asked. It excludes that workload alone.
type Problem struct {
	Source     string           `json:"source,omitempty"`
	Workload   string           `json:"workload,omitempty"`
	WorkloadID string           `json:"workloadID,omitempty"`
	Setting    string           `json:"setting,omitempty"`
	Origin     discovery.Origin `json:"origin,omitempty"`
	Value      string           `json:"value,omitempty"`
	Reason     string           `json:"reason"`
	// Host names the site a problem is about when no one workload is (a certificate).
	Host string `json:"host,omitempty"`
	// Warning: the workload or site is still served; this says what is wrong with it.
	Warning bool `json:"warning,omitempty"`
}

func newProblem(w *discovery.Workload, setting string, from discovery.Origin, value, reason string) Problem {
	return Problem{Source: w.Source, Workload: w.Name, WorkloadID: w.ID, Setting: setting, Origin: from, Value: value, Reason: reason}
}

// newWarning is a warning about a setting of w: the workload is still served. The value is shown
// shortened (shown).
func newWarning(w *discovery.Workload, setting string, from discovery.Origin, value, reason string) Problem {
	p := newProblem(w, setting, from, shown(value), reason)
	p.Warning = true
	return p
}

// String reads as a sentence naming the workload, the setting and where it came from; values are
// quoted so that a hostile value cannot forge log lines.
func (p Problem) String() string {
	var b strings.Builder
	if p.Warning {
		b.WriteString("warning: ")
	}
	if p.Workload == "" && p.Host != "" {
		fmt.Fprintf(&b, "host %s: ", p.Host)
	}
	if p.Workload != "" {
		kind := "container"
		if p.Source != "" && p.Source != "docker" {
			kind = p.Source
		}
		fmt.Fprintf(&b, "%s %s: ", kind, p.Workload)
	}
	if p.Setting != "" {
		fmt.Fprintf(&b, "%s %q", p.Setting, p.Value)
		if p.Origin != "" {
			fmt.Fprintf(&b, " (%s)", p.Origin)
		}
		b.WriteString(": ")
	}
	b.WriteString(p.Reason)
	return b.String()
}

// SortProblems sorts problems as Build does: by workload, setting and reason.
func SortProblems(ps []Problem) { slices.SortFunc(ps, compareProblems) }

func compareProblems(a, b Problem) int {
	return cmp.Or(cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.WorkloadID, b.WorkloadID),
		cmp.Compare(a.Host, b.Host), cmp.Compare(a.Setting, b.Setting), cmp.Compare(a.Reason, b.Reason))
}
