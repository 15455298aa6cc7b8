package enginesim_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/vhost-gen/vhost-gen/integration/echoimage"
)

// rawGet reads an endpoint's JSON, undecoded into types, so that a field's presence and JSON type
// show: the official client's structs would fill in every field.
func rawGet(t *testing.T, cli *client.Client, path string, f filters.Args) any {
	t.Helper()
	u, err := url.Parse(cli.DaemonHost())
	if err != nil || u.Scheme != "unix" {
		t.Fatalf("DOCKER_HOST %q: only unix sockets here", cli.DaemonHost())
	}
	hc := http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", u.Path)
	}}}
	q := url.Values{}
	if f.Len() > 0 {
		js, _ := filters.ToJSON(f)
		q.Set("filters", js)
	}
	resp, err := hc.Get("http://docker/v" + cli.ClientVersion() + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %s", path, resp.Status, body)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

// toJSON turns a typed value into the same untyped form.
func toJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	json.Unmarshal(b, &out)
	return out
}

// lookup follows a dotted path ("NetworkSettings.Networks.front.IPAddress"; an array index is a
// number) through a JSON document.
func lookup(doc any, path string) (any, bool) {
	cur := doc
	for _, k := range strings.Split(path, ".") {
		switch v := cur.(type) {
		case map[string]any:
			next, ok := v[k]
			if !ok {
				return nil, false
			}
			cur = next
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			cur = v[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// kind is a JSON value's type: string, number, bool, object, array, null.
func kind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "null"
}

// compareFields checks that each path is present in both documents or absent in both, with the
// same JSON type, and logs the values side by side.
func compareFields(t *testing.T, what string, real, sim any, paths []string) {
	t.Helper()
	for _, p := range paths {
		rv, rok := lookup(real, p)
		sv, sok := lookup(sim, p)
		switch {
		case rok != sok:
			t.Errorf("%s %s: present in the real engine's answer %v, in the simulator's %v", what, p, rok, sok)
		case kind(rv) != kind(sv):
			t.Errorf("%s %s: real engine %s %v, simulator %s %v", what, p, kind(rv), rv, kind(sv), sv)
		default:
			t.Logf("%s %s: %s: real %v | sim %v", what, p, kind(rv), short(rv), short(sv))
		}
	}
}

func short(v any) string {
	s := fmt.Sprint(v)
	if len(s) > 70 {
		s = s[:70] + "..."
	}
	return s
}

// keysOf is the sorted keys of a JSON object at path.
func keysOf(doc any, path string) []string {
	v, _ := lookup(doc, path)
	m, _ := v.(map[string]any)
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// missingKeys logs, for information, the top-level keys of an object the simulator lacks.
func missingKeys(t *testing.T, what string, real, sim any, path string) {
	t.Helper()
	have := keysOf(sim, path)
	var missing []string
	for _, k := range keysOf(real, path) {
		if !slices.Contains(have, k) {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Logf("%s %s: keys the simulator does not send (vhost-gen reads none of them): %v", what, path, missing)
	}
}

// echoImage is the integration harness's FROM-scratch echo image, built here (under its own tag)
// when the harness has not built it on this machine.
func echoImage(t *testing.T, cli *client.Client) string {
	t.Helper()
	const harness = "vhost-gen-echo:test"
	if _, err := cli.ImageInspect(context.Background(), harness); err == nil {
		return harness
	}
	const own = "vhost-gen-echo:enginesim"
	if _, err := cli.ImageInspect(context.Background(), own); err == nil {
		return own
	}
	if err := echoimage.Build("../echo", t.TempDir(), own); err != nil {
		t.Fatal(err)
	}
	return own
}
