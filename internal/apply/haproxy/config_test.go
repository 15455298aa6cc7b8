package haproxy

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

func TestParse(t *testing.T) {
	cfg := `global
    stats socket /run/haproxy.sock mode 600 level admin
defaults
    mode http
frontend http
    bind :80
    default_backend web
backend web
    balance roundrobin
    server web1 10.0.0.1:80 weight 3 check inter 2s # the first
    server web2 [fd00::2]:8080 check
backend sticky
    cookie SID insert indirect nocache dynamic
    dynamic-cookie-key k
    server s1 10.0.1.1:80 weight 0
peers mypeers
    server other 10.9.9.9:1024
listen tcp_db
    bind :5432
    mode tcp
    server db1 10.0.2.1:5432 weight 1 check
    option tcplog
    server db2 10.0.2.2:5432 weight 1 check
`
	p, err := parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	want := []*section{
		{name: "web", servers: []server{
			{name: "web1", ip: "10.0.0.1", port: 80, weight: 3, weightSet: true, slot: 2, rest: "check inter 2s"},
			{name: "web2", ip: "fd00::2", port: 8080, weight: 1, slot: 2, rest: "check"},
		}},
		{name: "sticky", dynamicCookie: true, servers: []server{
			{name: "s1", ip: "10.0.1.1", port: 80, weight: 0, weightSet: true, slot: 3},
		}},
		// The peers section's server line is not a backend's: it stays in the skeleton.
		{name: "tcp_db", servers: []server{
			{name: "db1", ip: "10.0.2.1", port: 5432, weight: 1, weightSet: true, slot: 3, rest: "check"},
			{name: "db2", ip: "10.0.2.2", port: 5432, weight: 1, weightSet: true, slot: 4, rest: "check"},
		}},
	}
	if !reflect.DeepEqual(p.sections, want) {
		t.Errorf("sections:\n got %+v\nwant %+v", p.sections, want)
	}
	if p.defaultServer {
		t.Error("defaultServer = true, want false")
	}
	// Everything but server lines, verbatim, comments included.
	var skel []string
	for _, line := range strings.Split(cfg, "\n") {
		if !strings.HasPrefix(line, "    server ") || strings.Contains(line, "server other") { // peers
			skel = append(skel, line)
		}
	}
	if want := strings.Join(skel, "\n") + "\n"; p.skeletonText() != want {
		t.Errorf("skeleton:\n got %q\nwant %q", p.skeletonText(), want)
	}
}

func TestParseDynamicCookie(t *testing.T) {
	tests := []struct {
		name string
		cfg  string
		want map[string]bool
	}{
		{
			name: "in the backend",
			cfg:  "backend a\n  cookie S insert dynamic\nbackend b\n  cookie S insert\nbackend c\n",
			want: map[string]bool{"a": true, "b": false, "c": false},
		},
		{
			name: "inherited from defaults, overridden by the backend's own cookie",
			cfg:  "defaults\n  cookie S insert indirect dynamic\nbackend a\nbackend b\n  cookie T insert\n",
			want: map[string]bool{"a": true, "b": false},
		},
		{
			name: "a later defaults section replaces the earlier one",
			cfg:  "defaults\n  cookie S insert dynamic\nbackend a\ndefaults\n  mode http\nbackend b\n",
			want: map[string]bool{"a": true, "b": false},
		},
		{
			name: "the cookie name is not a keyword",
			cfg:  "backend a\n  cookie dynamic insert\n",
			want: map[string]bool{"a": false},
		},
		{
			name: "commented out",
			cfg:  "backend a\n  cookie S insert # dynamic\n",
			want: map[string]bool{"a": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parse([]byte(tt.cfg))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, s := range p.sections {
				got[s.name] = s.dynamicCookie
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("dynamic cookie per section = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseDefaultServer(t *testing.T) {
	for _, cfg := range []string{
		"defaults\n  default-server inter 3s\nbackend b\n  server a 10.0.0.1:80\n",
		"backend b\n  default-server weight 10\n  server a 10.0.0.1:80\n",
	} {
		p, err := parse([]byte(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if !p.defaultServer {
			t.Errorf("%q: defaultServer = false, want true", cfg)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		line string // a server line in backend b, on line 2
		want string // in the error
	}{
		{"server a", "want a name and an address"},
		{"server a 10.0.0.1", "not IP:PORT"},
		{"server a web.example:80", "not IP:PORT"},
		{"server a 10.0.0.1:http", "not IP:PORT"},
		{"server a 10.0.0.1:+1", "not IP:PORT"}, // an offset from the client's port
		{"server a 10.0.0.1:-1", "not IP:PORT"},
		{"server a 10.0.0.1:0", "not IP:PORT"},
		{"server a 10.0.0.1:65536", "not IP:PORT"},
		{"server a 10.0.0.1:80-90", "not IP:PORT"},
		{"server a fd00::1:80", "not IP:PORT"},
		{"server a unix@/run/app.sock", "not IP:PORT"},
		{"server a ipv4@10.0.0.1:80", "not IP:PORT"},
		{"server a 10.0.0.1:80 weight x", "weight"},
		{"server a 10.0.0.1:80 weight -1", "weight"},
		{"server a 10.0.0.1:80 weight +2", "weight"},
		{"server a 10.0.0.1:80 weight 257", "weight"},
		{"server a 10.0.0.1:80 weight 99999999999999999999", "weight"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			_, err := parse([]byte("backend b\n    " + tt.line + "\n"))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "line 2") {
				t.Errorf("error %q, want it to say %q and line 2", err, tt.want)
			}
		})
	}
	t.Run("duplicate server name", func(t *testing.T) {
		_, err := parse([]byte("backend b\n  server a 10.0.0.1:80\n  server a 10.0.0.2:80\n"))
		if err == nil || !strings.Contains(err.Error(), "line 3") {
			t.Errorf("error %v, want one about line 3", err)
		}
		// The same name in two backends is fine.
		if _, err := parse([]byte("backend b\n  server a 10.0.0.1:80\nbackend c\n  server a 10.0.0.2:80\n")); err != nil {
			t.Errorf("same server name in two backends: %v", err)
		}
	})
}

// Server lines outside backend and listen sections are left alone, even unreadable ones.
func TestParseIgnoresOtherServerLines(t *testing.T) {
	cfg := "peers p\n  server me\n  server other host.example:1024\nring r\n  server log 10.0.0.1:514\nfrontend f\n  server x\n"
	p, err := parse([]byte(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.sections) != 0 || p.skeletonText() != cfg+"\n" {
		t.Errorf("sections %+v, skeleton %q; want none and the config verbatim", p.sections, p.skeletonText())
	}
}

func TestStripComment(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"server a 10.0.0.1:80", "server a 10.0.0.1:80"},
		{"server a 10.0.0.1:80 # comment", "server a 10.0.0.1:80 "},
		{"# whole line", ""},
		{"server a 10.0.0.1:80#comment", "server a 10.0.0.1:80"},
		{`x "a # b" # c`, `x "a # b" `},
		{`x 'a # b' # c`, `x 'a # b' `},
		{`x "it's # here" # c`, `x "it's # here" `},
		{`x 'say "#"' # c`, `x 'say "#"' `},
		{`x a\#b # c`, `x a\#b `},
		{`x "a\"#b" # c`, `x "a\"#b" `},
		// Within single quotes a backslash is a plain character (as HAProxy 2.6 reads it):
		// the quote closes and the comment starts.
		{`x 'a\' # c`, `x 'a\' `},
		{`x "unclosed # c`, `x "unclosed # c`},
		{`x \`, `x \`},
	}
	for _, tt := range tests {
		if got := stripComment(tt.in); got != tt.want {
			t.Errorf("stripComment(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"backend b\n  server a 10.0.0.1:80 weight 2 check inter 2s\n",
		"backend b\n  server a 10.0.0.1:80\n  server a 10.0.0.2:80\n",
		"backend b\n  cookie S insert dynamic\n  server a [fd00::1]:80 # x\n  option y\n  server b 10.0.0.2:80\n",
		"defaults\n  cookie S insert dynamic\n  default-server inter 1s\nlisten l\n  bind :1\n  server a 10.0.0.1:1 disabled agent-check\n",
		"backend b\n  server a 10.0.0.1:80 'x # y' \"z # \\\" w\" # c\n",
		"peers p\n  server a\nbackend 'q'\n\tserver\ta\t10.0.0.1:80\tweight\t0\r\n",
		"backend b\n  server a 10.0.0.1:+1\n",
		testBase,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cfg string) {
		p, err := parse([]byte(cfg))
		q, err2 := parse([]byte(cfg))
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(p, q) {
			t.Fatalf("parse is not deterministic: %+v, %v; then %+v, %v", p, err, q, err2)
		}
		if err != nil {
			return
		}
		plan, ok := diff(p, p)
		if !ok || len(plan.commands) != 0 || len(plan.deletes) != 0 {
			t.Fatalf("diff of a config with itself = %+v, %v; want an empty plan and ok", plan, ok)
		}
		for _, s := range p.sections {
			seen := map[string]bool{}
			for _, srv := range s.servers {
				if seen[srv.name] {
					t.Fatalf("section %s: server %s twice", s.name, srv.name)
				}
				seen[srv.name] = true
				if srv.port < 1 || srv.port > 65535 || srv.weight < 0 || srv.weight > 256 {
					t.Fatalf("section %s: server %+v out of range", s.name, srv)
				}
			}
		}
	})
}

// FuzzFirstField: parse splits only the lines whose first word firstField says is a keyword it
// reads; that word is the first of the split line's, for every line.
func FuzzFirstField(f *testing.F) {
	for _, s := range []string{"    server web1 10.0.0.1:80", "backend b", "\tcookie SID insert dynamic", "server#x", `"server" a`,
		"  # server x", `\#server`, "default-server inter 2s", "\u00a0server a 1:2", "serverx", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		fields := strings.Fields(stripComment(line))
		want := len(fields) > 0 && parsedKeyword(fields[0])
		first := firstField(line)
		if got := parsedKeyword(first); got != want || got && first != fields[0] {
			t.Fatalf("%q: firstField %q (a keyword: %v), the split line's first field %q (%v)", line, first, got, fields, want)
		}
	})
}

// FuzzParseReusing: parsing a config with the chunks of another's parse gives what parsing it
// from nothing does, errors and line numbers included; a chunk is reused only where its text
// and the defaults before it are the same (a defaults section's "cookie ... dynamic" reaches the
// backends after it).
func FuzzParseReusing(f *testing.F) {
	dyn := "defaults\n  cookie SRV insert dynamic\nbackend b\n  server a 10.0.0.1:80\n"
	f.Add(testBase, strings.Replace(testBase, "10.0.0.2:80", "10.0.0.9:80", 1))
	f.Add(testBase, testBase+"backend extra\n  server x 10.0.0.7:80\n")
	f.Add(dyn, strings.Replace(dyn, " dynamic", "", 1))
	f.Add(dyn, "defaults\n"+dyn)
	f.Add(dyn, strings.Replace(dyn, "10.0.0.1:80", "10.0.0.1:port", 1))
	f.Add("backend b\n  server a 10.0.0.1:80", "backend b\n  server a 10.0.0.1:80\n")
	f.Add("backend b\n  server a 10.0.0.1:80\nbackend c\n", "backend b\n  server a 10.0.0.1:80\n")
	f.Add("global\nbackend b\n  server a 10.0.0.1:80\nbackend c\n", "global\nbackend c\n  server a 10.0.0.1:80\nbackend b\n")
	f.Fuzz(func(t *testing.T, a, b string) {
		pa, err := parse([]byte(a))
		if err != nil {
			return
		}
		got, gotErr := parseReusing([]byte(b), pa.chunks)
		want, wantErr := parse([]byte(b))
		if fmt.Sprint(gotErr) != fmt.Sprint(wantErr) {
			t.Fatalf("error %v, want %v", gotErr, wantErr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("parse reusing the chunks of\n%q\ngives\n%+v\nwant\n%+v", a, got, want)
		}
	})
}

// BenchmarkParse10k is the parse of a plan's next config at 10,000 servers (5,000 backends, as
// the shipped template writes them for 10,000 workloads on 5,000 sites), one server's address
// changed: the chunks of the config before are reused.
func BenchmarkParse10k(b *testing.B) {
	var cfg strings.Builder
	cfg.WriteString("global\n    stats socket /run/admin.sock level admin\ndefaults\n    mode http\n    timeout connect 5s\n")
	cfg.WriteString("frontend http\n    bind :80\n")
	for i := range 5000 {
		fmt.Fprintf(&cfg, "    use_backend site-%05d.example.com if { hdr(host) -i site-%05d.example.com }\n", i, i)
	}
	for i := range 5000 {
		fmt.Fprintf(&cfg, "\nbackend site-%05d.example.com\n    balance roundrobin\n    option forwardfor\n", i)
		for j := range 2 {
			fmt.Fprintf(&cfg, "    server web-%05d-%d 10.%d.%d.%d:80 weight 1 check inter 2s\n", i, j, 1+i/250, i%250, j+1)
		}
	}
	prev := []byte(cfg.String())
	pp, err := parse(prev)
	if err != nil {
		b.Fatal(err)
	}
	next := bytes.Replace(prev, []byte("10.11.0.1:80"), []byte("10.99.0.1:80"), 1)
	b.SetBytes(int64(len(next)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseReusing(next, pp.chunks); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzStartsSection: the fast test of a section's first line agrees with firstField's.
func FuzzStartsSection(f *testing.F) {
	for _, s := range []string{"backend b", "  server a 1.2.3.4:80", "\tlisten x", "# backend", "backend#x", "\vbackend",
		"\u00a0backend", "frontend\u00a0x", "sbackend", "  defaults", "peers p", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if got, want := startsSection(line), sectionKeywords[firstField(line)]; got != want {
			t.Fatalf("startsSection(%q) = %v, want %v", line, got, want)
		}
	})
}

// A parse that reuses an earlier parse's chunks keeps nothing of the earlier config: the chunks
// it reuses move to the new config, and what they keep besides their text is their own.
func TestParseReusingKeepsNoOlderConfig(t *testing.T) {
	const comments = `
frontend https
    bind :443 ssl crt-list /etc/haproxy/crt-list
    # vhost-gen cert "/etc/vg/certs/a.pem" sha256 ` + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" + ` a.example
    # vhost-gen map "/etc/haproxy/hosts.map" a.example web
    # vhost-gen crt-list "/etc/haproxy/crt-list" /etc/vg/certs/a.pem [alpn h2,http/1.1] a.example
    use_backend %[var(txn.host),map(/etc/haproxy/hosts.map)]
`
	base := testBase + comments
	older := []byte(base)
	p1, err := parse(older)
	if err != nil {
		t.Fatal(err)
	}
	if len(p1.certs) != 1 || len(p1.maps) != 1 || len(p1.crtLists) != 1 {
		t.Fatalf("the config's comments: %d certs, %d maps, %d crt-list lines; want one of each", len(p1.certs), len(p1.maps), len(p1.crtLists))
	}
	next := []byte(strings.Replace(base, "10.0.0.2:80", "10.0.0.9:80", 1))
	p2, err := parseReusing(next, p1.chunks)
	if err != nil {
		t.Fatal(err)
	}
	reused := 0
	for i := range p2.sections {
		if p2.sections[i] == p1.sections[i] {
			reused++
		}
	}
	if reused != len(p2.sections)-1 {
		t.Fatalf("%d of %d sections reused, want all but the changed one", reused, len(p2.sections))
	}
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(older)))
	check := func(what, s string) {
		if at := uintptr(unsafe.Pointer(unsafe.StringData(s))); s != "" && at >= lo && at < lo+uintptr(len(older)) {
			t.Errorf("%s %q is part of the older config", what, s)
		}
	}
	for k, c := range p2.chunks {
		check("chunk key", k.text)
		check("chunk text", c.text)
		check("skeleton", c.skeleton)
		if c.section != nil {
			check("section", c.section.name)
			for _, s := range c.section.servers {
				check("server name", s.name)
				check("server address", s.ip)
				check("server keywords", s.rest)
			}
		}
		for _, m := range c.certMasked {
			check("certificate comment", m)
		}
	}
	for _, s := range p2.skeleton {
		check("skeleton", s)
	}
	for _, c := range p2.certs {
		check("certificate path", c.path)
		check("certificate hash", c.sha256)
	}
	for _, m := range p2.maps {
		check("map file", m.path)
		check("map key", m.key)
		check("map value", m.value)
	}
	for _, l := range p2.crtLists {
		check("crt-list file", l.list)
		check("crt-list line", l.line)
	}
}
