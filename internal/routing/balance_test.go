package routing

import (
	"reflect"
	"strings"
	"testing"

	"github.com/vhost-gen/vhost-gen/internal/discovery"
)

func TestParseLoadBalance(t *testing.T) {
	accepted := []struct {
		in   string
		want Balance
		str  string
	}{
		{"", Balance{}, ""},
		{"   ", Balance{}, ""},
		{"round_robin", Balance{Method: BalanceRoundRobin}, "round_robin"},
		{"round_robin;", Balance{Method: BalanceRoundRobin}, "round_robin"},
		{"least_conn;", Balance{Method: BalanceLeastConn}, "least_conn"},
		{"  least_conn  ", Balance{Method: BalanceLeastConn}, "least_conn"},
		{"least_conn ;", Balance{Method: BalanceLeastConn}, "least_conn"},
		{"ip_hash", Balance{Method: BalanceIPHash}, "ip_hash"},
		{"ip_hash;\n", Balance{Method: BalanceIPHash}, "ip_hash"},
		{"random", Balance{Method: BalanceRandom}, "random"},
		{"random;", Balance{Method: BalanceRandom}, "random"},
		{"random two least_conn;", Balance{Method: BalanceRandomTwo}, "random two least_conn"},
		{"random\ttwo   least_conn", Balance{Method: BalanceRandomTwo}, "random two least_conn"},
		{"hash $remote_addr consistent;", Balance{Method: BalanceHash, Hash: HashRemoteAddr, Consistent: true}, "hash $remote_addr consistent"},
		{"hash $remote_addr;", Balance{Method: BalanceHash, Hash: HashRemoteAddr}, "hash $remote_addr"},
		{"hash  $remote_addr\n consistent", Balance{Method: BalanceHash, Hash: HashRemoteAddr, Consistent: true}, "hash $remote_addr consistent"},
		{"hash $cookie_SESSION consistent;", Balance{Method: BalanceHash, Hash: HashCookie, Cookie: "SESSION", Consistent: true}, "hash $cookie_SESSION consistent"},
		{"hash $cookie_cart_id", Balance{Method: BalanceHash, Hash: HashCookie, Cookie: "cart_id"}, "hash $cookie_cart_id"},
		{"hash $cookie_" + strings.Repeat("c", 64) + " consistent;", Balance{Method: BalanceHash, Hash: HashCookie, Cookie: strings.Repeat("c", 64), Consistent: true}, ""},
	}
	for _, tt := range accepted {
		got, err := ParseLoadBalance(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLoadBalance(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		if tt.str != "" && got.String() != tt.str {
			t.Errorf("ParseLoadBalance(%q).String() = %q, want %q", tt.in, got.String(), tt.str)
		}
		// The canonical form reads back as itself.
		if back, err := ParseLoadBalance(got.String()); err != nil || back != got {
			t.Errorf("%q: its canonical form %q reads back as %+v, %v", tt.in, got.String(), back, err)
		}
	}
	rejected := []struct{ in, why string }{
		{";", "must be one of"},
		{" ; ", "must be one of"},
		{"least_conn;;", "must be one of"},
		{";least_conn", "must be one of"},
		{"LEAST_CONN", "must be one of"},
		{"Least_Conn;", "must be one of"},
		{"leastconn", "must be one of"},
		{"roundrobin", "must be one of"},
		{"least_conn; ip_hash;", "must be one of"},
		{"least_conn; include /etc/passwd", "must be one of"},
		{"least_conn;\n}\nserver {", "must be one of"},
		{"ip_hash; keepalive 32;", "must be one of"},
		{"random two", "must be one of"},
		{"random two least_conn least_conn", "must be one of"},
		{"random two least_time=header", "must be one of"},
		{"least_time header", "must be one of"},
		{"sticky cookie srv_id", "must be one of"},
		{"hash", "must be one of"},
		{"hash consistent", "hash takes $remote_addr or $cookie_NAME only"},
		{"hash $request_uri consistent", "hash takes $remote_addr or $cookie_NAME only"},
		{"hash $binary_remote_addr", "hash takes $remote_addr or $cookie_NAME only"},
		{"hash $remote_addr$request_uri", "hash takes $remote_addr or $cookie_NAME only"},
		{"hash $remote_addr consistent extra", "must be one of"},
		{"hash $remote_addr inconsistent", "must be one of"},
		{"hash $REMOTE_ADDR", "hash takes $remote_addr or $cookie_NAME only"},
		{"hash remote_addr", "hash takes $remote_addr or $cookie_NAME only"},
		{"hash $cookie_", "hash on a cookie: must be a cookie name of 1 to 64 characters"},
		{"hash $cookie_a-b consistent", `hash on a cookie: character '-' not allowed`},
		{"hash $cookie_a$b", `hash on a cookie: character '$' not allowed`},
		{"hash $cookie_a{b}", `hash on a cookie: character '{' not allowed`},
		{"hash $cookie_" + strings.Repeat("c", 65), "hash on a cookie: must be a cookie name of 1 to 64 characters"},
		{"hash $cookie_x\"; return 200", "must be one of"},
		{"least_conn" + strings.Repeat(" ", 200), "too long"},
		{strings.Repeat("x", 1<<20), "too long"},
		{"ip_hash\x00", "must be one of"},
	}
	for _, tt := range rejected {
		got, err := ParseLoadBalance(tt.in)
		if err == nil {
			t.Errorf("ParseLoadBalance(%.40q) = %+v, want an error", tt.in, got)
			continue
		}
		if !strings.Contains(err.Error(), tt.why) {
			t.Errorf("ParseLoadBalance(%.40q): error %q, want it to say %q", tt.in, err, tt.why)
		}
	}
}

func TestParseKeepalive(t *testing.T) {
	accepted := map[string]string{
		"": "", " ": "", "auto": "auto", " AUTO ": "auto", "disabled": "disabled", "Disabled": "disabled",
		"1": "1", "32": "32", " 64 ": "64", "10000": "10000", "007": "7",
	}
	for in, want := range accepted {
		if got, err := ParseKeepalive(in); err != nil || got != want {
			t.Errorf("ParseKeepalive(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"0", "-1", "+5", "10001", "1e3", "3.5", "32;", "keepalive 32", "on", "off", "true", "none",
		"disable", "32 64", "0x20", "١٢", strings.Repeat("9", 200)} {
		if got, err := ParseKeepalive(in); err == nil {
			t.Errorf("ParseKeepalive(%q) = %q, want an error", in, got)
		} else if !strings.Contains(err.Error(), "auto, disabled or a number from 1 to 10000") {
			t.Errorf("ParseKeepalive(%q): error %q does not say what is accepted", in, err)
		}
	}
}

func TestIdleConns(t *testing.T) {
	servers := func(n int) []Server { return make([]Server, n) }
	tests := []struct {
		keepalive string
		servers   int
		want      int
	}{
		{"", 1, 16}, {"", 8, 16}, {"", 9, 18}, {"", 20, 40},
		{"auto", 3, 16}, {"auto", 12, 24},
		{"disabled", 3, 0},
		{"1", 5, 1}, {"32", 2, 32}, {"10000", 1, 10000},
		{"garbage", 2, 16}, // never from routing; the default rather than a broken config
	}
	for _, tt := range tests {
		if got := (Backend{Keepalive: tt.keepalive, Servers: servers(tt.servers)}).IdleConns(); got != tt.want {
			t.Errorf("keepalive %q with %d servers: IdleConns %d, want %d", tt.keepalive, tt.servers, got, tt.want)
		}
	}
}

const (
	lb = SettingLoadBalance + "="
	ka = SettingKeepalive + "="
)

// A bad value is a warning naming the label and the value: the workload is routed, its backend
// keeps the default; the other sites are untouched.
func TestBuildBadTuningIsAWarning(t *testing.T) {
	ws := []discovery.Workload{
		wl("bad-lb", "10.0.0.1", "VIRTUAL_HOST=a.com", lb+"least_conn; include /etc/passwd"),
		wl("bad-ka", "10.0.0.2", "VIRTUAL_HOST=b.com", ka+"lots"),
		wl("sticky", "10.0.0.3", "VIRTUAL_HOST=c.com", "VIRTUAL_STICKY=SID", lb+"least_conn"),
		wl("good", "10.0.0.4", "VIRTUAL_HOST=d.com", lb+"ip_hash;", ka+"disabled"),
	}
	tab := Build(ws, proxyOpts)
	for _, h := range []string{"a.com", "b.com", "c.com", "d.com"} {
		if got := addresses(route(t, tab, h, "/")); len(got) != 1 {
			t.Errorf("%s: servers %v, want its workload's", h, got)
		}
	}
	if b := route(t, tab, "a.com", "/").Backend; b.Balance != (Balance{}) || b.Keepalive != "" {
		t.Errorf("a.com backend %+v: want the defaults", b)
	}
	if b := route(t, tab, "c.com", "/").Backend; b.Balance != (Balance{}) || b.Sticky != "SID" {
		t.Errorf("c.com backend %+v: want sticky, no loadbalance", b)
	}
	if b := route(t, tab, "d.com", "/").Backend; b.Balance != (Balance{Method: BalanceIPHash}) || b.Keepalive != KeepaliveDisabled || b.IdleConns() != 0 {
		t.Errorf("d.com backend %+v: want ip_hash, keepalive disabled", b)
	}
	want := map[string]struct{ setting, value, reason string }{
		"bad-lb": {SettingLoadBalance, "least_conn; include /etc/passwd", "must be one of"},
		"bad-ka": {SettingKeepalive, "lots", "must be auto, disabled or a number"},
		"sticky": {SettingLoadBalance, "least_conn", "ignored: VIRTUAL_STICKY picks the server"},
	}
	if len(tab.Problems) != len(want) {
		t.Fatalf("problems %v, want %d", tab.Problems, len(want))
	}
	for _, p := range tab.Problems {
		w, ok := want[p.Workload]
		if !ok || !p.Warning || p.Setting != w.setting || p.Value != w.value || !strings.Contains(p.Reason, w.reason) {
			t.Errorf("problem %+v, want a warning on %s %q: %s", p, w.setting, w.value, w.reason)
		}
		if s := p.String(); !strings.HasPrefix(s, "warning: container "+p.Workload+": "+p.Setting+" ") || strings.Contains(s, "\n") {
			t.Errorf("problem reads %q", s)
		}
	}
	if len(tab.Excluded) != 0 {
		t.Errorf("excluded %+v, want none: warnings leave workloads routed", tab.Excluded)
	}
	// An oversized value is quoted only in part.
	big := wl("big", "10.0.0.5", "VIRTUAL_HOST=e.com", lb+strings.Repeat("x", 100000))
	tab = Build([]discovery.Workload{big}, proxyOpts)
	if ps := problemsOf(tab, "big"); len(ps) != 1 || len(ps[0].Value) > 80 || !strings.Contains(ps[0].Reason, "too long") {
		t.Errorf("oversized value: problems %v", ps)
	}
}

// Workloads of one backend: one that sets nothing takes the backend's; the first (by source,
// name, ID, whatever the input order) that sets a value decides it; a later one with another
// value is left out of that route, with a problem and an exclusion naming who came first.
func TestBuildTuningConflicts(t *testing.T) {
	tests := []struct {
		name        string
		a, b, c     []string // labels of a-none, b-first, c-second (each besides VIRTUAL_HOST)
		balance     Balance
		keepalive   string
		left        bool // c-second is left out
		reason      string
		holder      string
		wantServers int
	}{
		{name: "same loadbalance", b: []string{lb + "least_conn;"}, c: []string{lb + " least_conn"},
			balance: Balance{Method: BalanceLeastConn}, wantServers: 3},
		{name: "different loadbalance", b: []string{lb + "least_conn"}, c: []string{lb + "ip_hash"},
			balance: Balance{Method: BalanceLeastConn}, left: true, holder: "b-first",
			reason: `left out of a.com/: ` + SettingLoadBalance + ` "ip_hash" differs from the other servers' "least_conn"`, wantServers: 2},
		{name: "round_robin is a value", b: []string{lb + "round_robin"}, c: []string{lb + "random"},
			balance: Balance{Method: BalanceRoundRobin}, left: true, holder: "b-first",
			reason: `left out of a.com/: ` + SettingLoadBalance + ` "random" differs from the other servers' "round_robin"`, wantServers: 2},
		{name: "hash keys differ", b: []string{lb + "hash $cookie_A consistent"}, c: []string{lb + "hash $cookie_B consistent"},
			balance: Balance{Method: BalanceHash, Hash: HashCookie, Cookie: "A", Consistent: true}, left: true, holder: "b-first",
			reason: `left out of a.com/: ` + SettingLoadBalance + ` "hash $cookie_B consistent" differs from the other servers' "hash $cookie_A consistent"`, wantServers: 2},
		{name: "different keepalive", b: []string{ka + "32"}, c: []string{ka + "disabled"},
			keepalive: "32", left: true, holder: "b-first",
			reason: `left out of a.com/: ` + SettingKeepalive + ` "disabled" differs from the other servers' "32"`, wantServers: 2},
		{name: "same keepalive, spelled otherwise", b: []string{ka + "AUTO"}, c: []string{ka + "auto"}, keepalive: "auto", wantServers: 3},
		{name: "one sets each", b: []string{lb + "random"}, c: []string{ka + "8"},
			balance: Balance{Method: BalanceRandom}, keepalive: "8", wantServers: 3},
		{name: "a bad value has no say", b: []string{lb + "least_conn"}, c: []string{lb + "fastest", ka + "-1"},
			balance: Balance{Method: BalanceLeastConn}, wantServers: 3},
		{name: "the first to set it is not the first placed", a: nil, b: nil, c: []string{lb + "ip_hash", ka + "4"},
			balance: Balance{Method: BalanceIPHash}, keepalive: "4", wantServers: 3},
	}
	for _, tt := range tests {
		a := wl("a-none", "10.0.0.1", append([]string{"VIRTUAL_HOST=a.com"}, tt.a...)...)
		b := wl("b-first", "10.0.0.2", append([]string{"VIRTUAL_HOST=a.com"}, tt.b...)...)
		c := wl("c-second", "10.0.0.3", append([]string{"VIRTUAL_HOST=a.com,c.com"}, tt.c...)...)
		for _, order := range [][]discovery.Workload{{a, b, c}, {c, b, a}, {b, c, a}} {
			tab := Build(order, proxyOpts)
			r := route(t, tab, "a.com", "/")
			if r.Backend.Balance != tt.balance || r.Backend.Keepalive != tt.keepalive || len(r.Backend.Servers) != tt.wantServers {
				t.Errorf("%s: backend balance %+v keepalive %q servers %d; want %+v, %q, %d", tt.name, r.Backend.Balance,
					r.Backend.Keepalive, len(r.Backend.Servers), tt.balance, tt.keepalive, tt.wantServers)
			}
			// Left out of that route only: c.com is its own.
			if got := addresses(route(t, tab, "c.com", "/")); !reflect.DeepEqual(got, []string{"10.0.0.3:80"}) {
				t.Errorf("%s: c.com servers %v", tt.name, got)
			}
			var errs []Problem
			for _, p := range tab.Problems {
				if !p.Warning {
					errs = append(errs, p)
				}
			}
			if !tt.left {
				if len(errs) != 0 || len(tab.Excluded) != 0 {
					t.Errorf("%s: problems %v, excluded %v; want none", tt.name, errs, tab.Excluded)
				}
				continue
			}
			if len(errs) != 1 || errs[0].Workload != "c-second" || errs[0].Reason != tt.reason {
				t.Errorf("%s: problems %v; want c-second: %s", tt.name, errs, tt.reason)
			}
			if len(tab.Excluded) != 1 || tab.Excluded[0].Why != ExcludedConflict || tab.Excluded[0].Holder != tt.holder ||
				tab.Excluded[0].Host != "a.com" || !strings.HasSuffix(tab.Excluded[0].Reason, "("+tt.holder+" came first)") {
				t.Errorf("%s: excluded %+v; want c-second out of a.com/, held by %s", tt.name, tab.Excluded, tt.holder)
			}
		}
	}
}

// The labels are read from env too (as every setting), and shown in the settings list.
func TestTuningSettingNames(t *testing.T) {
	w := wl("env", "10.0.0.1", "VIRTUAL_HOST=a.com")
	w.Env = map[string]string{SettingLoadBalance: "least_conn", SettingKeepalive: "2"}
	b := route(t, Build([]discovery.Workload{w}, proxyOpts), "a.com", "/").Backend
	if b.Balance.Method != BalanceLeastConn || b.Keepalive != "2" {
		t.Errorf("from env: backend %+v", b)
	}
	for _, n := range []string{SettingLoadBalance, SettingKeepalive} {
		found := false
		for _, s := range SettingNames {
			found = found || s == n
		}
		if !found {
			t.Errorf("%s is not in SettingNames", n)
		}
	}
}
