package gateways

import (
	"testing"
	"time"

	"github.com/vhost-gen/vhost-gen/internal/registry"
)

func TestCompare(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	rec := func(rev int64, sha, errText string, later time.Duration) registry.GatewayRecord {
		return registry.GatewayRecord{Revision: rev, SHA256: sha, AppliedAt: at.Add(later), Error: errText}
	}
	tests := []struct {
		name string
		in   []Entry
		want map[string]string
	}{
		{"all agree, whatever their revisions", []Entry{
			{ID: "g1", GatewayRecord: rec(10, "aa", "", 0)},
			{ID: "g2", GatewayRecord: rec(14, "aa", "", time.Second)},
		}, map[string]string{"g1": "agrees", "g2": "agrees"}},
		{"one lags", []Entry{
			{ID: "g1", GatewayRecord: rec(20, "bb", "", time.Second)},
			{ID: "g2", GatewayRecord: rec(10, "aa", "", 0)},
		}, map[string]string{"g1": "agrees", "g2": "lags"}},
		{"one differs (other flags)", []Entry{
			{ID: "g1", GatewayRecord: rec(20, "bb", "", time.Second)},
			{ID: "g2", GatewayRecord: rec(20, "cc", "", 0)},
		}, map[string]string{"g1": "agrees", "g2": "differs"}},
		{"an error, and an unreadable record", []Entry{
			{ID: "g1", GatewayRecord: rec(20, "bb", "", 0)},
			{ID: "g2", GatewayRecord: rec(20, "bb", "check failed", 0)},
			{ID: `"bad id"`, State: "unreadable"},
		}, map[string]string{"g1": "agrees", "g2": "error", `"bad id"`: "unreadable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(tt.in)
			for i := 1; i < len(got); i++ {
				if got[i-1].ID > got[i].ID {
					t.Errorf("not sorted by ID: %v", got)
				}
			}
			for _, e := range got {
				if e.State != tt.want[e.ID] {
					t.Errorf("%s: state %q, want %q", e.ID, e.State, tt.want[e.ID])
				}
			}
		})
	}
}

func TestRecordKeepsLastGoodHash(t *testing.T) {
	r := &Recorder{Base: registry.GatewayRecord{Hostname: "h", Version: "v"}}
	r.Record(5, []byte("config"), nil, time.Now())
	good := r.latest.SHA256
	r.Record(6, nil, errTest("check failed"), time.Now())
	if r.latest.SHA256 != good || r.latest.Error != "check failed" || r.latest.Revision != 6 || r.latest.Hostname != "h" {
		t.Errorf("after a failed apply: %+v, want the last good hash kept with the error", r.latest)
	}
}

type errTest string

func (e errTest) Error() string { return string(e) }
