package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// NewClient returns the Docker client, configured as the docker CLI is (DOCKER_HOST,
// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION), negotiating the API version with the
// engine. count, if set, is called with the operation of every API request. Its transport also
// streams container lists (see eachListed).
func NewClient(count func(op string)) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host := nginxProxySocket(); host != "" {
		opts = append(opts, client.WithHost(host))
	}
	opts = append(opts, func(c *client.Client) error {
		hc := c.HTTPClient() // a copy sharing the configured transport
		// The client picks https from its own transport's TLS settings, which it no longer sees
		// once wrapped: say it here.
		if tr, ok := hc.Transport.(*http.Transport); ok && tr.TLSClientConfig != nil {
			if err := client.WithScheme("https")(c); err != nil {
				return err
			}
		}
		hc.Transport = transport{next: hc.Transport, count: count}
		return client.WithHTTPClient(hc)(c)
	})
	return client.NewClientWithOpts(opts...)
}

// transport counts requests and streams container lists.
type transport struct {
	next  http.RoundTripper
	count func(op string) // nil: no counting
}

func (t transport) RoundTrip(r *http.Request) (*http.Response, error) {
	op := Operation(r.Method, r.URL.Path)
	if t.count != nil {
		t.count(op)
	}
	resp, err := t.next.RoundTrip(r)
	each, _ := r.Context().Value(eachKey{}).(func(*container.Summary))
	if err != nil || each == nil || op != "container_list" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	err = decodeEach(resp.Body, each)
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("read the container list: %w", err)
	}
	resp.Body, resp.ContentLength = io.NopCloser(strings.NewReader("[]")), 2
	resp.Header.Del("Content-Length")
	return resp, nil
}

type eachKey struct{}

// eachListed makes a ContainerList made with ctx hand each entry to fn as it is read, and return
// an empty list, when the client is NewClient's (with another, ContainerList returns the list as
// usual and fn is not called). The client's ContainerList holds the engine's whole answer and
// then every decoded entry at once, 9 MB of JSON and more decoded at 10,000 containers, which
// doubled vhost-gen's heap at every resync; List keeps an entry's ID and a digest.
func eachListed(ctx context.Context, fn func(*container.Summary)) context.Context {
	return context.WithValue(ctx, eachKey{}, fn)
}

// decodeEach reads a JSON array of list entries one at a time.
func decodeEach(body io.Reader, fn func(*container.Summary)) error {
	dec := json.NewDecoder(body)
	if tok, err := dec.Token(); err != nil {
		return err
	} else if tok != json.Delim('[') {
		return fmt.Errorf("not a JSON array: starts with %v", tok)
	}
	for dec.More() {
		var c container.Summary
		if err := dec.Decode(&c); err != nil {
			return err
		}
		fn(&c)
	}
	_, err := dec.Token() // the closing bracket
	return err
}

// Operation names an API request for metrics: "GET /containers/{id}/json" is "container_inspect".
func Operation(method, path string) string {
	// Strip the version prefix ("/v1.41").
	if strings.HasPrefix(path, "/v1.") {
		if i := strings.IndexByte(path[1:], '/'); i >= 0 {
			path = path[i+1:]
		}
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(parts) == 2 && parts[0] == "containers" && parts[1] == "json":
		return "container_list"
	case len(parts) == 3 && parts[0] == "containers" && parts[2] == "json":
		return "container_inspect"
	case len(parts) == 3 && parts[0] == "containers" && parts[2] == "kill":
		return "container_kill"
	case len(parts) >= 1 && parts[0] != "":
		return strings.ToLower(method) + "_" + parts[0]
	}
	return strings.ToLower(method)
}

// nginxProxySocket is the socket where nginx-proxy's users mount it (-v
// /var/run/docker.sock:/tmp/docker.sock:ro), as a host for the client, when DOCKER_HOST is unset
// and the usual socket is not there; "" otherwise.
func nginxProxySocket() string {
	const usual, nginxProxy = "/var/run/docker.sock", "/tmp/docker.sock"
	if os.Getenv("DOCKER_HOST") != "" {
		return ""
	}
	if _, err := os.Stat(usual); err == nil {
		return ""
	}
	if fi, err := os.Stat(nginxProxy); err == nil && fi.Mode()&os.ModeSocket != 0 {
		return "unix://" + nginxProxy
	}
	return ""
}
