package docker

import (
	"net/http"
	"os"
	"strings"

	"github.com/docker/docker/client"
)

// NewClient returns the Docker client, configured as the docker CLI is (DOCKER_HOST,
// DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, DOCKER_API_VERSION), negotiating the API version with the
// engine. count, if set, is called with the operation of every API request.
func NewClient(count func(op string)) (*client.Client, error) {
	opts := []client.Opt{client.FromEnv, client.WithAPIVersionNegotiation()}
	if host := nginxProxySocket(); host != "" {
		opts = append(opts, client.WithHost(host))
	}
	if count != nil {
		opts = append(opts, func(c *client.Client) error {
			hc := c.HTTPClient() // a copy sharing the configured transport
			hc.Transport = countingTransport{next: hc.Transport, count: count}
			return client.WithHTTPClient(hc)(c)
		})
	}
	return client.NewClientWithOpts(opts...)
}

type countingTransport struct {
	next  http.RoundTripper
	count func(op string)
}

func (t countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.count(Operation(r.Method, r.URL.Path))
	return t.next.RoundTrip(r)
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
