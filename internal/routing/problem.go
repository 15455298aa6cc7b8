package routing

import (
	"cmp"
	"fmt"
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
}

func newProblem(w *discovery.Workload, setting string, from discovery.Origin, value, reason string) Problem {
	return Problem{Source: w.Source, Workload: w.Name, WorkloadID: w.ID, Setting: setting, Origin: from, Value: value, Reason: reason}
}

// String reads as a sentence naming the workload, the setting and where it came from; values are
// quoted so that a hostile value cannot forge log lines.
func (p Problem) String() string {
	var b strings.Builder
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

func compareProblems(a, b Problem) int {
	return cmp.Or(cmp.Compare(a.Workload, b.Workload), cmp.Compare(a.WorkloadID, b.WorkloadID),
		cmp.Compare(a.Setting, b.Setting), cmp.Compare(a.Reason, b.Reason))
}
