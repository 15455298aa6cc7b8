package routing

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

func TestParseHostsValid(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"a.com", []string{"a.com"}},
		{"example.com", []string{"example.com"}},
		{"localhost", []string{"localhost"}},
		{"*.example.com", []string{"*.example.com"}},
		{"example.*", []string{"example.*"}},
		{"*.com", []string{"*.com"}},
		{"a.com,b.com", []string{"a.com", "b.com"}},
		{"a.com, ,b.com,", []string{"a.com", "b.com"}},
		{",,a.com,,", []string{"a.com"}},
		{"  a.com  ,\tb.com\t", []string{"a.com", "b.com"}},
		{"A.COM", []string{"a.com"}},
		{"Www.Example.Com", []string{"www.example.com"}},
		{"a.com,A.com,a.COM", []string{"a.com"}},
		{"b.com,a.com,b.com", []string{"b.com", "a.com"}}, // first-seen order; the table sorts
		{"a.com.", []string{"a.com"}},
		{"a.com.,a.com", []string{"a.com"}},
		{"xn--bcher-kva.example", []string{"xn--bcher-kva.example"}},
		{"under_score.example.com", []string{"under_score.example.com"}},
		{"a-b.c-d.com", []string{"a-b.c-d.com"}},
		{"1.2.3.4", []string{"1.2.3.4"}},
		{"a.com\n", []string{"a.com"}}, // surrounding white space is trimmed, never kept
		{strings.Repeat("a", 63) + ".com", []string{strings.Repeat("a", 63) + ".com"}},
		{name253(), []string{name253()}},
		{name253() + ".", []string{name253()}},
	}
	for _, tt := range tests {
		got, err := ParseHosts(tt.in)
		if err != nil {
			t.Errorf("ParseHosts(%q): unexpected error %v", tt.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("ParseHosts(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// name253 is a valid host name of exactly 253 characters.
func name253() string {
	l := strings.Repeat("a", 63)
	n := l + "." + l + "." + l + "." + strings.Repeat("b", 61) // 63*3 + 61 + 3 dots = 253
	if len(n) != 253 {
		panic(len(n))
	}
	return n
}

func TestParseHostsInvalid(t *testing.T) {
	tests := []string{
		"",
		" ",
		",",
		" , ,",
		"a.com; include /etc/passwd",
		"a.com;",
		"a.com,b.com;",
		"a.com b.com",
		"a.com\nb.com",
		"a.com\n}\nserver {",
		"a.com\r\nb.com",
		"a.com\tb.com",
		"a.com\x00",
		"a{.com",
		"a.com}",
		"{",
		"}",
		`"a.com"`,
		`a.com"`,
		"'a.com'",
		"$host",
		"a.$host.com",
		"a.com#",
		"#a.com",
		`a\.com`,
		`a.com\`,
		"*.*.com",
		"a.*.com",
		"*",
		"*.",
		"**.com",
		"a*.com",
		"*a.com",
		"example.*.*",
		".",
		"..",
		".a.com",
		"a..com",
		"a.com..",
		"-a.com",
		"a-.com",
		"a.-com",
		"a/b.com",
		"a.com:80",
		"a@b.com",
		"bücher.example",
		"a.com,bad host",
		"good.com,a.com;",
		strings.Repeat("a", 64) + ".com",
		name253() + "b",
		strings.Repeat("a.", 127) + "ab", // 256 characters
	}
	for _, in := range tests {
		if got, err := ParseHosts(in); err == nil {
			t.Errorf("ParseHosts(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseHostNames(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"a.com", "a.com", true},
		{"A.Com.", "a.com", true},
		{"*.a.com", "*.a.com", true},
		{"a.*", "a.*", true},
		{"*", "", false},
		{"*.*", "", false},
		{"a.*.com", "", false},
		{"", "", false},
		{".", "", false},
		{" a.com", "", false}, // ParseHost itself does not trim: ParseHosts does
		{"a.com ", "", false},
	}
	for _, tt := range tests {
		got, err := ParseHost(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseHost(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
	// The error names the offending value, quoted.
	if _, err := ParseHost("a;b.com"); err == nil || !strings.Contains(err.Error(), `"a;b.com"`) {
		t.Errorf("ParseHost error %v does not quote the value", err)
	}
}

func TestParsePort(t *testing.T) {
	valid := map[string]int{
		"1":      1,
		"80":     80,
		"8080":   8080,
		"65535":  65535,
		"080":    80,
		" 443 ":  443, // surrounding white space is trimmed; only the number reaches the table
		"80 ":    80,
		"\t8080": 8080,
	}
	for in, want := range valid {
		got, err := ParsePort(in)
		if err != nil || got != want {
			t.Errorf("ParsePort(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	invalid := []string{
		"", " ", "0", "00", "65536", "99999", "1000000", "+80", "-1", "8o", "80;", "8 0",
		"0x50", "80.0", "1e3", "80/tcp", "eighty", "٨٠", "８０", "$PORT", "80\n; include x",
	}
	for _, in := range invalid {
		if got, err := ParsePort(in); err == nil {
			t.Errorf("ParsePort(%q) = %d, want an error", in, got)
		}
	}
}

func TestParseWeight(t *testing.T) {
	valid := map[string]int{"0": 0, "1": 1, "10": 10, "256": 256, "0256": 256, " 5 ": 5}
	for in, want := range valid {
		got, err := ParseWeight(in)
		if err != nil || got != want {
			t.Errorf("ParseWeight(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	invalid := []string{"", "257", "1000", "-1", "+1", "1.5", "ten", "1 0", "0x10", "1;", "9999999"}
	for _, in := range invalid {
		if got, err := ParseWeight(in); err == nil {
			t.Errorf("ParseWeight(%q) = %d, want an error", in, got)
		}
	}
	if MaxWeight != 256 {
		t.Errorf("MaxWeight = %d, want 256 (HAProxy's limit)", MaxWeight)
	}
}

func TestParseProto(t *testing.T) {
	valid := map[string]string{"http": "http", "https": "https", "HTTP": "http", "HttpS": "https", " https ": "https", "uwsgi": "uwsgi", "FastCGI": "fastcgi", "grpc": "grpc", "grpcs": "grpcs"}
	for in, want := range valid {
		got, err := ParseProto(in)
		if err != nil || got != want {
			t.Errorf("ParseProto(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ftp", "tcp", "h2", "uwsgi2", "http;", "https://", "http s", "http\nhttps"} {
		if got, err := ParseProto(in); err == nil {
			t.Errorf("ParseProto(%q) = %q, want an error", in, got)
		}
	}
}

func TestParsePath(t *testing.T) {
	valid := map[string]string{
		"/":                             "/",
		"/api":                          "/api",
		"/api/":                         "/api/",
		"/API/v1":                       "/API/v1", // paths are case sensitive: not folded
		"/a-b_c.d~e":                    "/a-b_c.d~e",
		"/%20":                          "/%20",
		"/a:b@c!d+e,f=g":                "/a:b@c!d+e,f=g",
		" /api ":                        "/api",
		"/" + strings.Repeat("a", 1023): "/" + strings.Repeat("a", 1023),
	}
	for in, want := range valid {
		got, err := ParsePath(in)
		if err != nil || got != want {
			t.Errorf("ParsePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	invalid := []string{
		"", " ", "api", "api/", "*", "~ /api", "=/api", "@named",
		"/api;", "/api; include /etc/passwd", "/a b", "/a\tb", "/a\nb", "/a\rb", "/a\x00",
		"/$uri", "/{", "/}", "/a{b}", `/"`, "/'", "/#frag", "/a?b=c", `/a\b`, "/a*", "/a|b",
		"/a<b>", "/a^b", "/a`b", "/a[b]", "/(a)", "/ü", "/a&b",
		"/" + strings.Repeat("a", 1024),
	}
	for _, in := range invalid {
		if got, err := ParsePath(in); err == nil {
			t.Errorf("ParsePath(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseNetwork(t *testing.T) {
	valid := map[string]string{
		"proxy":                  "proxy",
		"My_Net-1.2":             "My_Net-1.2",
		" front ":                "front",
		"0net":                   "0net",
		"compose_default":        "compose_default",
		strings.Repeat("n", 255): strings.Repeat("n", 255),
	}
	for in, want := range valid {
		got, err := ParseNetwork(in)
		if err != nil || got != want {
			t.Errorf("ParseNetwork(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	invalid := []string{
		"", " ", "_net", ".net", "-net", "a b", "a;b", "a{", "a}", `a"`, "a'", "a$", "a#", `a\b`,
		"a/b", "a\nb", "a\tb", "nét", strings.Repeat("n", 256),
	}
	for _, in := range invalid {
		if got, err := ParseNetwork(in); err == nil {
			t.Errorf("ParseNetwork(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseSticky(t *testing.T) {
	valid := map[string]string{
		"SRV":                   "SRV",
		"srv_id":                "srv_id",
		"_x":                    "_x",
		"a1":                    "a1",
		" route ":               "route",
		strings.Repeat("c", 64): strings.Repeat("c", 64),
	}
	for in, want := range valid {
		got, err := ParseSticky(in)
		if err != nil || got != want {
			t.Errorf("ParseSticky(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	invalid := []string{
		"", " ", "a-b", "a.b", "a b", "a;b", "a=b", "a{", "a}", `a"`, "a'", "$a", "a#", `a\`, "a\nb",
		"a\tb", "é", strings.Repeat("c", 65),
	}
	for _, in := range invalid {
		if got, err := ParseSticky(in); err == nil {
			t.Errorf("ParseSticky(%q) = %q, want an error", in, got)
		}
	}
}

func TestParseAddressMode(t *testing.T) {
	for _, in := range []string{"auto", "network", "host-port"} {
		m, err := ParseAddressMode(in)
		if err != nil || string(m) != in {
			t.Errorf("ParseAddressMode(%q) = %q, %v", in, m, err)
		}
	}
	for _, in := range []string{"", "Auto", "hostport", "host", "auto "} {
		if m, err := ParseAddressMode(in); err == nil {
			t.Errorf("ParseAddressMode(%q) = %q, want an error", in, m)
		}
	}
}

func TestParseSettingsNotRouted(t *testing.T) {
	for _, w := range []discovery.Workload{
		{Name: "none"},
		{Name: "others", Labels: kv("VIRTUAL_PORT=8080", "VIRTUAL_PATH=bad path"), Env: kv("PATH=/bin")},
		{Name: "lowercase", Labels: kv("virtual_host=a.com")},
	} {
		s, problems, routed := ParseSettings(&w)
		if routed || len(problems) != 0 || !reflect.DeepEqual(s, Settings{}) {
			t.Errorf("%s: ParseSettings = %+v, %v, routed=%v; want zero, no problems, not routed", w.Name, s, problems, routed)
		}
	}
}

func TestParseSettingsDefaults(t *testing.T) {
	w := discovery.Workload{Name: "web", Labels: kv("VIRTUAL_HOST=Web.Example.com")}
	s, problems, routed := ParseSettings(&w)
	want := Settings{Hosts: []string{"web.example.com"}, Port: 0, Proto: "http", Path: "/", Weight: 1}
	if !routed || len(problems) != 0 || !reflect.DeepEqual(s, want) {
		t.Errorf("ParseSettings = %+v, %v, %v; want %+v, no problems, routed", s, problems, routed, want)
	}
}

func TestParseSettingsAll(t *testing.T) {
	w := discovery.Workload{Name: "web", Labels: kv(
		"VIRTUAL_HOST=a.com,b.com", "VIRTUAL_PORT=8080", "VIRTUAL_PROTO=HTTPS", "VIRTUAL_PATH=/api",
		"VIRTUAL_DEST=/", "VIRTUAL_NETWORK=front", "VIRTUAL_WEIGHT=0", "VIRTUAL_STICKY=SRV",
	)}
	s, problems, routed := ParseSettings(&w)
	want := Settings{Hosts: []string{"a.com", "b.com"}, Port: 8080, Proto: "https", Path: "/api", Dest: "/",
		Network: "front", Weight: 0, Sticky: "SRV"}
	if !routed || len(problems) != 0 || !reflect.DeepEqual(s, want) {
		t.Errorf("ParseSettings = %+v, %v, %v; want %+v", s, problems, routed, want)
	}
}

func TestParseSettingsPrecedence(t *testing.T) {
	tests := []struct {
		name        string
		w           discovery.Workload
		wantHost    string
		wantPort    int
		wantOrigins map[string]discovery.Origin // origin of each setting, as Setting reports it
	}{
		{
			name:     "env only",
			w:        discovery.Workload{Env: kv("VIRTUAL_HOST=env.com", "VIRTUAL_PORT=1")},
			wantHost: "env.com", wantPort: 1,
		},
		{
			name:     "label over env",
			w:        discovery.Workload{Labels: kv("VIRTUAL_HOST=label.com"), Env: kv("VIRTUAL_HOST=env.com", "VIRTUAL_PORT=1")},
			wantHost: "label.com", wantPort: 1,
		},
		{
			name: "service label over label over env",
			w: discovery.Workload{
				ServiceLabels: kv("VIRTUAL_HOST=service.com"),
				Labels:        kv("VIRTUAL_HOST=label.com", "VIRTUAL_PORT=2"),
				Env:           kv("VIRTUAL_HOST=env.com", "VIRTUAL_PORT=1"),
			},
			wantHost: "service.com", wantPort: 2,
		},
		{
			name: "empty label still wins over env",
			w: discovery.Workload{
				Labels: kv("VIRTUAL_HOST=label.com", "VIRTUAL_PORT=3"),
				Env:    kv("VIRTUAL_PORT=1"),
			},
			wantHost: "label.com", wantPort: 3,
		},
	}
	for _, tt := range tests {
		s, problems, routed := ParseSettings(&tt.w)
		if !routed || len(problems) != 0 {
			t.Errorf("%s: routed=%v problems=%v", tt.name, routed, problems)
			continue
		}
		if len(s.Hosts) != 1 || s.Hosts[0] != tt.wantHost || s.Port != tt.wantPort {
			t.Errorf("%s: got hosts %q port %d; want %q port %d", tt.name, s.Hosts, s.Port, tt.wantHost, tt.wantPort)
		}
	}
}

// A valid value in a weaker place does not rescue an invalid value in a stronger one, and the
// problem names where the invalid value came from.
func TestParseSettingsProblemOrigin(t *testing.T) {
	tests := []struct {
		name    string
		w       discovery.Workload
		setting string
		origin  discovery.Origin
		value   string
	}{
		{"env", discovery.Workload{Env: kv("VIRTUAL_HOST=a.com", "VIRTUAL_PORT=x")}, SettingPort, discovery.FromEnv, "x"},
		{"label over good env", discovery.Workload{Labels: kv("VIRTUAL_PORT=0"), Env: kv("VIRTUAL_HOST=a.com", "VIRTUAL_PORT=80")}, SettingPort, discovery.FromLabel, "0"},
		{"service label over good label", discovery.Workload{
			ServiceLabels: kv("VIRTUAL_HOST=a.com;"), Labels: kv("VIRTUAL_HOST=a.com"), Env: kv("VIRTUAL_HOST=a.com"),
		}, SettingHost, discovery.FromServiceLabel, "a.com;"},
		{"bad env ignored under good label", discovery.Workload{Labels: kv("VIRTUAL_HOST=a.com", "VIRTUAL_PATH=/ok"), Env: kv("VIRTUAL_PATH=bad;", "VIRTUAL_PROTO=ftp")}, SettingProto, discovery.FromEnv, "ftp"},
	}
	for _, tt := range tests {
		tt.w.Name, tt.w.ID, tt.w.Source = "web", "abc123", "docker"
		_, problems, routed := ParseSettings(&tt.w)
		if !routed || len(problems) != 1 {
			t.Errorf("%s: routed=%v, problems=%v; want routed with exactly one problem", tt.name, routed, problems)
			continue
		}
		p := problems[0]
		if p.Setting != tt.setting || p.Origin != tt.origin || p.Value != tt.value ||
			p.Workload != "web" || p.WorkloadID != "abc123" || p.Source != "docker" || p.Reason == "" {
			t.Errorf("%s: problem %+v; want setting %s origin %q value %q on web/abc123/docker", tt.name, p, tt.setting, tt.origin, tt.value)
		}
	}
}

// Every invalid setting is reported, not just the first.
func TestParseSettingsAllProblemsAtOnce(t *testing.T) {
	w := discovery.Workload{
		Name:          "bad",
		ServiceLabels: kv("VIRTUAL_STICKY=a b"),
		Labels: kv(
			"VIRTUAL_HOST=a.com;", "VIRTUAL_PORT=65536", "VIRTUAL_PROTO=ftp", "VIRTUAL_PATH=api",
		),
		Env: kv("VIRTUAL_DEST=/x y", "VIRTUAL_NETWORK=-n", "VIRTUAL_WEIGHT=257"),
	}
	_, problems, routed := ParseSettings(&w)
	if !routed {
		t.Fatal("not routed")
	}
	got := map[string]discovery.Origin{}
	for _, p := range problems {
		if _, dup := got[p.Setting]; dup {
			t.Errorf("two problems for %s", p.Setting)
		}
		got[p.Setting] = p.Origin
		if v, _, _ := w.Setting(p.Setting); p.Value != v {
			t.Errorf("%s: problem value %q, want %q", p.Setting, p.Value, v)
		}
	}
	want := map[string]discovery.Origin{
		SettingHost: discovery.FromLabel, SettingPort: discovery.FromLabel, SettingProto: discovery.FromLabel,
		SettingPath: discovery.FromLabel, SettingDest: discovery.FromEnv, SettingNetwork: discovery.FromEnv,
		SettingWeight: discovery.FromEnv, SettingSticky: discovery.FromServiceLabel,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems by setting = %v, want %v", got, want)
	}
}

// VIRTUAL_HOST present but empty still asks for routing, and is a problem.
func TestParseSettingsEmptyHost(t *testing.T) {
	for _, v := range []string{"", " ", ",", " , "} {
		w := discovery.Workload{Name: "w", Env: kv("VIRTUAL_HOST=" + v)}
		s, problems, routed := ParseSettings(&w)
		if !routed || len(problems) != 1 || problems[0].Setting != SettingHost || len(s.Hosts) != 0 {
			t.Errorf("VIRTUAL_HOST=%q: %+v %v routed=%v; want routed, one VIRTUAL_HOST problem", v, s, problems, routed)
		}
	}
}
