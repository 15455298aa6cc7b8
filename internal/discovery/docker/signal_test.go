package docker

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/filters"
)

func kills(e *fakeEngine) []string {
	var out []string
	for _, r := range e.recorded() {
		if strings.HasPrefix(r, "POST ") && strings.Contains(r, "/kill") {
			out = append(out, r)
		}
	}
	return out
}

func TestSignalContainerByName(t *testing.T) {
	e := newFakeEngine(t)
	if err := SignalContainers(e.client(), "vgt-plain", "", "HUP")(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := kills(e), []string{"POST /v1.41/containers/vgt-plain/kill?signal=HUP"}; !slices.Equal(got, want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	if n := e.count(func(r string) bool { return strings.HasPrefix(r, "GET ") }); n != 0 {
		t.Errorf("a named container needs no list; %d GETs", n)
	}
}

func TestSignalContainersByLabel(t *testing.T) {
	e := newFakeEngine(t)
	if err := SignalContainers(e.client(), "", "role=proxy", "USR1")(context.Background()); err != nil {
		t.Fatal(err)
	}
	var list string
	for _, r := range e.recorded() {
		if strings.HasPrefix(r, "GET /v1.41/containers/json") {
			list = r
		}
	}
	_, raw, _ := strings.Cut(list, "?")
	q, _ := url.ParseQuery(raw)
	f, err := filters.FromJSON(q.Get("filters"))
	if err != nil || !slices.Equal(f.Get("label"), []string{"role=proxy"}) {
		t.Errorf("list request %q: label filter %v (%v)", list, f.Get("label"), err)
	}
	// Every listed container (the fake ignores the filter) is signalled, by ID.
	var want []string
	for _, s := range loadList(t) {
		want = append(want, "POST /v1.41/containers/"+s.ID+"/kill?signal=USR1")
	}
	if got := kills(e); !slices.Equal(got, want) {
		t.Errorf("kills:\n %v\nwant\n %v", got, want)
	}
}

func TestSignalContainersErrors(t *testing.T) {
	e := newFakeEngine(t)
	e.list = []byte("[]")
	err := SignalContainers(e.client(), "", "role=proxy", "HUP")(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no running container has the label role=proxy") {
		t.Errorf("no match: err = %v", err)
	}
	if len(kills(e)) != 0 {
		t.Error("signalled something")
	}

	err = SignalContainers(e.client(), "no-such-proxy", "", "HUP")(context.Background())
	if err == nil || !strings.Contains(err.Error(), "signal HUP to container") || !strings.Contains(err.Error(), "no-such-proxy") {
		t.Errorf("unknown container: err = %v", err)
	}

	cli := e.client()
	e.srv.Close()
	err = SignalContainers(cli, "", "role=proxy", "HUP")(context.Background())
	if err == nil || !strings.Contains(err.Error(), "find proxy containers with label role=proxy") {
		t.Errorf("engine down: err = %v", err)
	}
}
