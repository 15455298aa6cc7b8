package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// cleanEnv removes every VHOST_GEN_* variable and every alias (envAliases) for the test
// (restored afterwards).
func cleanEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix) || slices.Contains(slices.Collect(maps.Values(envAliases)), k) {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
}

// flagCase is one flag: a value to set it to and where it lands in the Config.
type flagCase struct {
	name  string
	value string
	get   func(c *Config) any
	want  any
}

// allFlags lists every flag of watch and render (routes adds --json).
var allFlags = []flagCase{
	{"proxy", "haproxy", func(c *Config) any { return c.Proxy }, "haproxy"},
	{"template", "/etc/vhost-gen/my.tmpl", func(c *Config) any { return c.Template }, "/etc/vhost-gen/my.tmpl"},
	{"out", "/etc/nginx/conf.d/v.conf", func(c *Config) any { return c.Out }, "/etc/nginx/conf.d/v.conf"},
	{"listen", "127.0.0.1:8080", func(c *Config) any { return c.Listen }, "127.0.0.1:8080"},
	{"check-cmd", "nginx -t -c {{.File}}", func(c *Config) any { return c.CheckCmd }, "nginx -t -c {{.File}}"},
	{"reload-cmd", "none", func(c *Config) any { return c.ReloadCmd }, "none"},
	{"reload-pidfile", "/run/nginx.pid", func(c *Config) any { return c.ReloadPidfile }, "/run/nginx.pid"},
	{"reload-container", "proxy", func(c *Config) any { return c.ReloadContainer }, "proxy"},
	{"reload-container-label", "role=proxy", func(c *Config) any { return c.ReloadContainerLabel }, "role=proxy"},
	{"reload-signal", "USR1", func(c *Config) any { return c.ReloadSignal }, "USR1"},
	{"wait", "1s:5s", func(c *Config) any { return c.Wait }, "1s:5s"},
	{"address-mode", "host-port", func(c *Config) any { return c.AddressMode }, "host-port"},
	{"proxy-networks", "front, back", func(c *Config) any { return c.ProxyNetworks.values }, []string{"front", "back"}},
	{"proxy-container", "nginx-1", func(c *Config) any { return c.ProxyContainer }, "nginx-1"},
	{"proxy-label", "role=edge", func(c *Config) any { return c.ProxyLabel }, "role=edge"},
	{"label-filter", "proxy=a", func(c *Config) any { return c.LabelFilter }, "proxy=a"},
	{"source", "docker,swarm", func(c *Config) any { return c.Sources.values }, []string{"docker", "swarm"}},
	{"admin-addr", ":9999", func(c *Config) any { return c.AdminAddr }, ":9999"},
	{"admin-pprof", "true", func(c *Config) any { return c.AdminPprof }, true},
	{"host-address", "10.0.0.5", func(c *Config) any { return c.HostAddress }, "10.0.0.5"},
	{"include-unhealthy", "true", func(c *Config) any { return c.IncludeUnhealthy }, true},
	{"resync", "30s", func(c *Config) any { return c.Resync }, 30 * time.Second},
	{"log-level", "debug", func(c *Config) any { return c.LogLevel }, "debug"},
	{"log-format", "json", func(c *Config) any { return c.LogFormat }, "json"},
	{"haproxy-socket", "/run/hx.sock", func(c *Config) any { return c.HAProxySocket }, "/run/hx.sock"},
	{"haproxy-runtime-api", "false", func(c *Config) any { return c.HAProxyRuntimeAPI }, false},
	{"haproxy-stats", "8404", func(c *Config) any { return c.HAProxyStats }, "8404"},
	{"supervise", "true", func(c *Config) any { return c.Supervise }, true},
	{"swarm-poll", "10s", func(c *Config) any { return c.SwarmPoll }, 10 * time.Second},
	{"trust-downstream-proxy", "true", func(c *Config) any { return c.TrustDownstreamProxy }, true},
	{"etcd-endpoints", "http://10.0.0.1:2379,http://10.0.0.2:2379", func(c *Config) any { return c.Etcd.Endpoints.values }, []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}},
	{"etcd-cacert", "/ca.pem", func(c *Config) any { return c.Etcd.CACert }, "/ca.pem"},
	{"etcd-cert", "/c.pem", func(c *Config) any { return c.Etcd.Cert }, "/c.pem"},
	{"etcd-key", "/k.pem", func(c *Config) any { return c.Etcd.Key }, "/k.pem"},
	{"etcd-user", "vg:secret", func(c *Config) any { return c.Etcd.User }, "vg:secret"},
	{"etcd-password", "pw", func(c *Config) any { return c.Etcd.Password }, "pw"},
	{"etcd-dial-timeout", "2s", func(c *Config) any { return c.Etcd.DialTimeout }, 2 * time.Second},
	{"etcd-prefix", "/vg", func(c *Config) any { return c.Etcd.Prefix }, "/vg"},
	{"etcd-ttl", "20s", func(c *Config) any { return c.Etcd.TTL }, 20 * time.Second},
	{"etcd-registry", "false", func(c *Config) any { return c.Etcd.Registry }, false},
	{"etcd-flat", "/app/servers=a.example,b.example", func(c *Config) any { return c.Etcd.Flat.values }, []string{"/app/servers=a.example,b.example"}},
	{"etcd-vhosts", "/vhosts", func(c *Config) any { return c.Etcd.VHosts }, "/vhosts"},
	{"publisher-id", "host-a", func(c *Config) any { return c.Etcd.PublisherID }, "host-a"},
	{"gateway-id", "gw-1", func(c *Config) any { return c.Etcd.GatewayID }, "gw-1"},
	{"publish-flat", "/app/servers", func(c *Config) any { return c.Etcd.PublishFlat }, "/app/servers"},
	{"certs-dir", "/etc/nginx/certs", func(c *Config) any { return c.TLS.CertsDir }, "/etc/nginx/certs"},
	{"listen-https", "8443", func(c *Config) any { return c.TLS.ListenHTTPS }, "8443"},
	{"https-method", "nohttp", func(c *Config) any { return c.TLS.HTTPSMethod }, "nohttp"},
	{"hsts", "off", func(c *Config) any { return c.TLS.HSTS }, "off"},
	{"ssl-policy", "Mozilla-Modern", func(c *Config) any { return c.TLS.SSLPolicy }, "Mozilla-Modern"},
	{"non-get-redirect", "308", func(c *Config) any { return c.TLS.NonGetRedirect }, "308"},
	{"trust-default-cert", "false", func(c *Config) any { return c.TLS.TrustDefaultCert }, false},
	{"enable-http-on-missing-cert", "false", func(c *Config) any { return c.TLS.HTTPOnMissingCert }, false},
	{"acme", "false", func(c *Config) any { return c.TLS.ACME }, false},
	{"acme-ca-uri", "https://127.0.0.1:14000/dir", func(c *Config) any { return c.TLS.ACMECAURI }, "https://127.0.0.1:14000/dir"},
	{"acme-ca-bundle", "/ca.pem", func(c *Config) any { return c.TLS.ACMECABundle }, "/ca.pem"},
	{"acme-email", "ops@example.com", func(c *Config) any { return c.TLS.ACMEEmail }, "ops@example.com"},
	{"acme-dir", "/var/lib/acme", func(c *Config) any { return c.TLS.ACMEDir }, "/var/lib/acme"},
	{"acme-responder", "127.0.0.1:9402", func(c *Config) any { return c.TLS.ACMEResponder }, "127.0.0.1:9402"},
	{"acme-store", "etcd", func(c *Config) any { return c.TLS.ACMEStore }, "etcd"},
	{"haproxy-certs-dir", "/run/hc", func(c *Config) any { return c.TLS.HAProxyCertsDir }, "/run/hc"},
	{"command-timeout", "5s", func(c *Config) any { return c.CommandTimeout }, 5 * time.Second},
	{"default-host", "WWW.example.com", func(c *Config) any { return c.Defaults.Host.host }, "www.example.com"},
	{"network-internal", "/etc/internal.conf", func(c *Config) any { return c.Files.NetworkInternal }, "/etc/internal.conf"},
	{"snippets-dir", "/etc/nginx/vhost.d", func(c *Config) any { return c.Files.SnippetsDir }, "/etc/nginx/vhost.d"},
	{"htpasswd-dir", "/etc/nginx/htpasswd", func(c *Config) any { return c.Files.HtpasswdDir }, "/etc/nginx/htpasswd"},
	{"error-pages-dir", "/srv/errors", func(c *Config) any { return c.Files.ErrorPagesDir }, "/srv/errors"},
	{"disable-access-logs", "true", func(c *Config) any { return c.Defaults.AccessLogOff }, true},
	{"access-log-format", "$host $status", func(c *Config) any { return c.Defaults.AccessLogFormat }, "$host $status"},
	{"access-log-escape", "json", func(c *Config) any { return c.Defaults.AccessLogEscape }, "json"},
	{"access-log-json", "true", func(c *Config) any { return c.Defaults.AccessLogJSON }, true},
	{"enable-ipv6", "true", func(c *Config) any { return c.Defaults.EnableIPv6 }, true},
	{"prefer-ipv6-network", "true", func(c *Config) any { return c.Defaults.PreferIPv6 }, true},
	{"enable-http2", "true", func(c *Config) any { return c.Defaults.EnableHTTP2 }, true},
	{"nginx-container-label", "com.github.nginx-proxy.nginx-proxy.nginx", func(c *Config) any { return c.NginxContainerLabel }, "com.github.nginx-proxy.nginx-proxy.nginx"},
	{"default-root", "301 https://example.com/", func(c *Config) any { return c.Defaults.Root.root.String() }, "301 https://example.com/"},
	{"server-tokens", "off", func(c *Config) any { return c.Defaults.ServerTokens.off }, true},
	{"external-http-port", "8080", func(c *Config) any { return c.Defaults.ExternalHTTPPort.port }, 8080},
	{"external-https-port", "8443", func(c *Config) any { return c.Defaults.ExternalHTTPSPort.port }, 8443},
	{"proxy-protocol", "true", func(c *Config) any { return c.Defaults.ProxyProtocol }, true},
	{"resolvers", "127.0.0.11 valid=30s", func(c *Config) any { return c.Defaults.Resolvers.value }, "127.0.0.11 valid=30s"},
}

var jsonFlag = flagCase{"json", "true", func(c *Config) any { return c.JSON }, true}

func parse(t *testing.T, cmd string, args ...string) *Config {
	t.Helper()
	var stderr bytes.Buffer
	c, err := parseConfig(cmd, args, &stderr)
	if err != nil {
		t.Fatalf("parseConfig(%s, %q): %v (stderr %q)", cmd, args, err, stderr.String())
	}
	return c
}

func TestParseConfigDefaults(t *testing.T) {
	cleanEnv(t)
	for _, cmd := range []string{"watch", "render", "routes"} {
		c := parse(t, cmd)
		want := &Config{
			Proxy: "nginx", Listen: "80", Wait: "100ms:1s", AddressMode: "auto",
			HAProxySocket: "/run/haproxy/admin.sock", HAProxyRuntimeAPI: true, SwarmPoll: 3 * time.Second, CommandTimeout: 30 * time.Second,
			AdminAddr: "127.0.0.1:9180", Resync: 5 * time.Minute, LogLevel: "info", LogFormat: "text",
			Sources:       listFlag{values: []string{"docker"}, fromEnv: true},
			ProxyNetworks: listFlag{fromEnv: true},
			Etcd: etcdConfig{Endpoints: listFlag{fromEnv: true}, DialTimeout: 5 * time.Second, Prefix: "/vhost-gen",
				TTL: 10 * time.Second, Registry: true},
			TLS: tlsConfig{ListenHTTPS: "443", HTTPSMethod: "redirect", HSTS: "max-age=31536000", SSLPolicy: "Mozilla-Intermediate",
				NonGetRedirect: "301", TrustDefaultCert: true, HTTPOnMissingCert: true, ACME: true, ACMECAURI: letsEncrypt,
				ACMEResponder: "127.0.0.1:8402", ACMEStore: "dir"},
			Command: cmd,
		}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("%s defaults:\n got %+v\nwant %+v", cmd, c, want)
		}
	}
}

func TestEnvName(t *testing.T) {
	for flagName, want := range map[string]string{
		"out": "VHOST_GEN_OUT", "proxy-networks": "VHOST_GEN_PROXY_NETWORKS",
		"reload-container-label": "VHOST_GEN_RELOAD_CONTAINER_LABEL", "json": "VHOST_GEN_JSON",
	} {
		if got := envName(flagName); got != want {
			t.Errorf("envName(%q) = %q, want %q", flagName, got, want)
		}
	}
}

// allFlags covers every flag there is, so the tests below cover every flag.
func TestAllFlagsCovered(t *testing.T) {
	cleanEnv(t)
	for _, cmd := range []string{"watch", "render", "routes"} {
		var stderr bytes.Buffer
		if _, err := parseConfig(cmd, []string{"--help"}, &stderr); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s --help: err = %v", cmd, err)
		}
		var got []string
		for _, line := range strings.Split(stderr.String(), "\n") {
			if rest, ok := strings.CutPrefix(line, "  --"); ok {
				name, _, _ := strings.Cut(rest, " ")
				got = append(got, name)
			}
		}
		var want []string
		for _, f := range allFlags {
			want = append(want, f.name)
		}
		if cmd == "routes" {
			want = append(want, "json", "host", "workload")
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s --help lists flags\n %v\nthe tests know\n %v", cmd, got, want)
		}
	}
}

func TestEveryFlagFromEnv(t *testing.T) {
	cases := append(slices.Clone(allFlags), jsonFlag)
	for _, f := range cases {
		t.Run(f.name, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv(envName(f.name), f.value)
			c := parse(t, "routes")
			if got := f.get(c); !reflect.DeepEqual(got, f.want) {
				t.Errorf("%s=%q: got %#v, want %#v", envName(f.name), f.value, got, f.want)
			}
		})
	}
}

func TestEveryFlagOnCommandLine(t *testing.T) {
	cases := append(slices.Clone(allFlags), jsonFlag)
	for _, f := range cases {
		t.Run(f.name, func(t *testing.T) {
			cleanEnv(t)
			for _, arg := range []string{"--" + f.name + "=" + f.value, "-" + f.name + "=" + f.value} {
				c := parse(t, "routes", arg)
				if got := f.get(c); !reflect.DeepEqual(got, f.want) {
					t.Errorf("%s: got %#v, want %#v", arg, got, f.want)
				}
			}
		})
	}
}

func TestCommandLineWinsOverEnv(t *testing.T) {
	cleanEnv(t)
	t.Setenv("VHOST_GEN_OUT", "/from/env")
	t.Setenv("VHOST_GEN_PROXY", "haproxy")
	t.Setenv("VHOST_GEN_RESYNC", "1m")
	t.Setenv("VHOST_GEN_INCLUDE_UNHEALTHY", "true")
	c := parse(t, "watch", "--out", "/from/cli", "--resync=2m", "--include-unhealthy=false")
	if c.Out != "/from/cli" || c.Resync != 2*time.Minute || c.IncludeUnhealthy {
		t.Errorf("CLI did not win: Out %q Resync %v IncludeUnhealthy %v", c.Out, c.Resync, c.IncludeUnhealthy)
	}
	if c.Proxy != "haproxy" {
		t.Errorf("env not used for a flag not on the CLI: Proxy %q", c.Proxy)
	}
	// An empty env value sets the flag to empty (it is set, not absent): VHOST_GEN_ADMIN_ADDR=""
	// disables the admin server.
	t.Setenv("VHOST_GEN_ADMIN_ADDR", "")
	if c := parse(t, "watch"); c.AdminAddr != "" {
		t.Errorf("VHOST_GEN_ADMIN_ADDR=\"\": AdminAddr = %q", c.AdminAddr)
	}
}

// TestEnvAliases: nginx-proxy's TRUST_DOWNSTREAM_PROXY sets --trust-downstream-proxy when neither
// the flag nor VHOST_GEN_TRUST_DOWNSTREAM_PROXY does; an invalid value is an error naming it.
func TestEnvAliases(t *testing.T) {
	for _, tt := range []struct {
		alias, env string // "" is unset
		args       []string
		want       bool
	}{
		{"", "", nil, false},
		{"true", "", nil, true},
		{"false", "", nil, false},
		{"true", "false", nil, false},
		{"false", "true", nil, true},
		{"true", "", []string{"--trust-downstream-proxy=false"}, false},
		{"false", "", []string{"--trust-downstream-proxy"}, true},
	} {
		cleanEnv(t)
		if tt.alias != "" {
			t.Setenv("TRUST_DOWNSTREAM_PROXY", tt.alias)
		}
		if tt.env != "" {
			t.Setenv("VHOST_GEN_TRUST_DOWNSTREAM_PROXY", tt.env)
		}
		if got := parse(t, "watch", tt.args...).TrustDownstreamProxy; got != tt.want {
			t.Errorf("TRUST_DOWNSTREAM_PROXY=%q VHOST_GEN_TRUST_DOWNSTREAM_PROXY=%q %q: got %v, want %v", tt.alias, tt.env, tt.args, got, tt.want)
		}
	}
	// etcdctl's variables: read when the flag and VHOST_GEN_* are unset; the command line wins.
	cleanEnv(t)
	t.Setenv("ETCDCTL_ENDPOINTS", "http://10.0.0.1:2379")
	t.Setenv("ETCDCTL_DIAL_TIMEOUT", "3s")
	c := parse(t, "watch")
	if !slices.Equal(c.Etcd.Endpoints.values, []string{"http://10.0.0.1:2379"}) || c.Etcd.DialTimeout != 3*time.Second {
		t.Errorf("ETCDCTL_*: endpoints %v, dial timeout %v", c.Etcd.Endpoints.values, c.Etcd.DialTimeout)
	}
	t.Setenv("VHOST_GEN_ETCD_ENDPOINTS", "http://10.0.0.2:2379")
	if c := parse(t, "watch", "--etcd-endpoints", "http://10.0.0.3:2379"); !slices.Equal(c.Etcd.Endpoints.values, []string{"http://10.0.0.3:2379"}) {
		t.Errorf("the command line should win: %v", c.Etcd.Endpoints.values)
	}
	if c := parse(t, "watch"); !slices.Equal(c.Etcd.Endpoints.values, []string{"http://10.0.0.2:2379"}) {
		t.Errorf("VHOST_GEN_ETCD_ENDPOINTS should win over ETCDCTL_ENDPOINTS: %v", c.Etcd.Endpoints.values)
	}
	cleanEnv(t)
	t.Setenv("TRUST_DOWNSTREAM_PROXY", "maybe")
	if _, err := parseConfig("watch", nil, io.Discard); err == nil || !strings.Contains(err.Error(), `TRUST_DOWNSTREAM_PROXY="maybe"`) {
		t.Errorf("TRUST_DOWNSTREAM_PROXY=maybe: got %v, want an error naming the variable", err)
	}
}

func TestListFlags(t *testing.T) {
	get := map[string]func(*Config) []string{
		"proxy-networks": func(c *Config) []string { return c.ProxyNetworks.values },
		"source":         func(c *Config) []string { return c.Sources.values },
	}
	for name, values := range get {
		t.Run(name, func(t *testing.T) {
			env := envName(name)
			tests := []struct {
				env  *string
				args []string
				want []string
			}{
				{nil, []string{"--" + name, "a,b"}, []string{"a", "b"}},
				{nil, []string{"--" + name, "a", "--" + name, "b,c"}, []string{"a", "b", "c"}},
				{nil, []string{"--" + name, " a , ,b ,"}, []string{"a", "b"}},
				{ptr("x,y"), nil, []string{"x", "y"}},
				{ptr("x,y"), []string{"--" + name, "a"}, []string{"a"}},                        // replaces, not extends
				{ptr("x,y"), []string{"--" + name, "a", "--" + name, "b"}, []string{"a", "b"}}, // and repeats after
			}
			for _, tt := range tests {
				cleanEnv(t)
				if tt.env != nil {
					t.Setenv(env, *tt.env)
				}
				got := values(parse(t, "watch", tt.args...))
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s=%v %q: got %q, want %q", env, deref(tt.env), tt.args, got, tt.want)
				}
			}
		})
	}
	// --source defaults to docker, also when given empty.
	cleanEnv(t)
	t.Setenv("VHOST_GEN_SOURCE", "")
	if c := parse(t, "watch"); !slices.Equal(c.Sources.values, []string{"docker"}) {
		t.Errorf("VHOST_GEN_SOURCE=\"\": Sources = %q", c.Sources.values)
	}
	if c := parse(t, "watch"); c.Sources.String() != "docker" {
		t.Errorf("Sources.String() = %q", c.Sources.String())
	}
	cleanEnv(t)
	if c := parse(t, "watch", "--proxy-networks", "a", "--proxy-networks", "b"); c.ProxyNetworks.String() != "a,b" {
		t.Errorf("ProxyNetworks.String() = %q", c.ProxyNetworks.String())
	}
}

func ptr(s string) *string { return &s }

func deref(s *string) string {
	if s == nil {
		return "(unset)"
	}
	return *s
}

func TestBadEnvValueNamesTheVariable(t *testing.T) {
	for env, value := range map[string]string{
		"VHOST_GEN_RESYNC":            "abc",
		"VHOST_GEN_INCLUDE_UNHEALTHY": "maybe",
	} {
		cleanEnv(t)
		t.Setenv(env, value)
		_, err := parseConfig("watch", nil, io.Discard)
		if err == nil || !strings.Contains(err.Error(), env) || !strings.Contains(err.Error(), value) {
			t.Errorf("%s=%s: err = %v, want one naming the variable and the value", env, value, err)
		}
	}
	// A VHOST_GEN_ variable for a flag the command does not have is ignored.
	cleanEnv(t)
	t.Setenv("VHOST_GEN_JSON", "not-a-bool")
	if _, err := parseConfig("watch", nil, io.Discard); err != nil {
		t.Errorf("VHOST_GEN_JSON for watch: %v", err)
	}
	if _, err := parseConfig("routes", nil, io.Discard); err == nil || !strings.Contains(err.Error(), "VHOST_GEN_JSON") {
		t.Errorf("VHOST_GEN_JSON=not-a-bool for routes: err = %v", err)
	}
}

func TestBadCommandLine(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		cmd  string
		args []string
		want string
	}{
		{"watch", []string{"extra"}, `unexpected argument "extra"`},
		{"render", []string{"--out", "/x", "extra", "more"}, `unexpected argument "extra"`},
		{"watch", []string{"--resync", "soon"}, "resync"},
		{"watch", []string{"--no-such-flag"}, "no-such-flag"},
		{"watch", []string{"--json"}, "json"},
		{"render", []string{"--json"}, "json"},
		{"watch", []string{"--host", "a.test"}, "host"},
		{"render", []string{"--workload", "web"}, "workload"},
	}
	for _, tt := range tests {
		var stderr bytes.Buffer
		_, err := parseConfig(tt.cmd, tt.args, &stderr)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s %q: err = %v, want one containing %q", tt.cmd, tt.args, err, tt.want)
		}
	}
	// --json exists for routes only.
	if c := parse(t, "routes", "--json"); !c.JSON {
		t.Error("routes --json: JSON false")
	}
	// So do --host and --workload: comma separated and repeatable.
	c := parse(t, "routes", "--host", "a.test,b.test", "--host=c.test", "--workload", "web", "--json")
	if !slices.Equal(c.ExplainHosts.values, []string{"a.test", "b.test", "c.test"}) || !slices.Equal(c.ExplainWorkloads.values, []string{"web"}) || !c.JSON {
		t.Errorf("routes --host --workload: hosts %q, workloads %q", c.ExplainHosts.values, c.ExplainWorkloads.values)
	}
}

// TestDefaultsEnvAliases: nginx-proxy's DEFAULT_HOST, DEFAULT_ROOT, SERVER_TOKENS and HTTP_PORT
// set their flags; a bad value, from the environment or the command line, is an error naming it.
func TestDefaultsEnvAliases(t *testing.T) {
	cleanEnv(t)
	t.Setenv("DEFAULT_HOST", "Shop.Example.com")
	t.Setenv("DEFAULT_ROOT", "418")
	t.Setenv("SERVER_TOKENS", "OFF")
	t.Setenv("HTTP_PORT", "8080")
	t.Setenv("EXTERNAL_HTTPS_PORT", "10443")
	c := parse(t, "watch")
	if c.Defaults.Host.host != "shop.example.com" || c.Defaults.Root.root.Code() != 418 || !c.Defaults.ServerTokens.off || c.Listen != "8080" ||
		c.Defaults.ExternalHTTPSPort.port != 10443 {
		t.Errorf("from nginx-proxy's names: %+v, listen %q", c.Defaults, c.Listen)
	}
	if c := parse(t, "watch", "--server-tokens", "on", "--default-root", "none"); c.Defaults.ServerTokens.off || !c.Defaults.Root.root.None {
		t.Errorf("the command line did not win: %+v", c.Defaults)
	}
	for name, value := range map[string]string{
		"DEFAULT_HOST": "*.example.com", "DEFAULT_ROOT": "301", "SERVER_TOKENS": "build",
		"EXTERNAL_HTTP_PORT": "http", "EXTERNAL_HTTPS_PORT": "70000", "RESOLVERS": "dns.example",
	} {
		cleanEnv(t)
		t.Setenv(name, value)
		if _, err := parseConfig("watch", nil, io.Discard); err == nil || !strings.Contains(err.Error(), name+"=") {
			t.Errorf("%s=%q: got %v, want an error naming it", name, value, err)
		}
	}
	cleanEnv(t)
	for _, args := range [][]string{{"--default-root", "301 https://x.example/$host"}, {"--default-host", "a b"}, {"--server-tokens", "maybe"}, {"--external-https-port", "0"}} {
		if _, err := parseConfig("watch", args, io.Discard); err == nil || !strings.Contains(err.Error(), args[0][1:]) {
			t.Errorf("%q: got %v, want an error naming the flag", args, err)
		}
	}
}
