package admin_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/admin"
	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// TestRoutesHostAddress: /routes shows the host address and where it came from, as JSON and HTML.
func TestRoutesHostAddress(t *testing.T) {
	s := &admin.State{}
	h := admin.Handler(s, admin.NewMetrics())
	s.SetTable(routing.Build(nil, routing.Options{HostAddress: routing.HostAddress{Address: "172.18.0.1", Origin: "gateway of network edge"}}), 1)

	_, _, body := get(t, h, http.MethodGet, "/routes", "")
	var doc struct {
		HostAddress routing.HostAddress `json:"hostAddress"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.HostAddress.Address != "172.18.0.1" || doc.HostAddress.Origin != "gateway of network edge" {
		t.Errorf("JSON hostAddress %+v (%v):\n%s", doc.HostAddress, err, body)
	}
	_, _, page := get(t, h, http.MethodGet, "/routes", "text/html")
	if !strings.Contains(page, "host address: 172.18.0.1 (gateway of network edge)") {
		t.Errorf("HTML lacks the host address:\n%s", page)
	}
}
