package access

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseInternalNetworks(t *testing.T) {
	nginxProxys := "# Only allow traffic from internal clients\nallow 127.0.0.0/8;\nallow 10.0.0.0/8;\nallow 192.168.0.0/16;\nallow 172.16.0.0/12;\ndeny all;\n"
	valid := map[string][]string{
		nginxProxys:            {"127.0.0.0/8", "10.0.0.0/8", "192.168.0.0/16", "172.16.0.0/12"},
		"allow 203.0.113.7;\n": {"203.0.113.7/32"},
		"  allow 10.1.2.3/8 ; # host bits are masked\n":     {"10.0.0.0/8"},
		"allow fc00::/7;\nallow ::1;\nallow fc00::/7;\n":    {"fc00::/7", "::1/128"},
		"\n\n# comment only before\nallow 198.51.100.0/24;": {"198.51.100.0/24"},
	}
	for in, want := range valid {
		got, err := ParseInternalNetworks([]byte(in))
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("ParseInternalNetworks(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	invalid := map[string]string{
		"allow 192.0.2.0/24;deny all;":        "line 1",
		"":                                    "no \"allow NETWORK;\" line",
		"deny all;\n":                         "no \"allow NETWORK;\" line",
		"allow 10.0.0.0/8\n":                  "line 1",
		"allow 10.0.0.0/33;\n":                "not a network",
		"allow all;\n":                        "not an address or a network",
		"allow fe80::1%eth0;\n":               "not an address or a network",
		"deny 10.0.0.0/8;\nallow 10.0.0.0/8;": "only \"deny all;\"",
		"allow 10.0.0.0/8;\ndeny all;\nallow 192.168.0.0/16;\n": "line 3: nothing may follow",
		"include /etc/passwd;\n":                                "line 1",
		"allow 10.0.0.0/8; allow 11.0.0.0/8;\n":                 "line 1",
		"allow 10.0.0.0/8;\n}\nserver {\n":                      "line 2",
	}
	for in, want := range invalid {
		got, err := ParseInternalNetworks([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseInternalNetworks(%q) = %v, %v; want an error saying %q", in, got, err, want)
		}
	}
}

func TestReadInternalNetworks(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	os.WriteFile(good, []byte("allow 10.0.0.0/8;\ndeny all;\n"), 0o644)
	if got, err := ReadInternalNetworks(good); err != nil || !slices.Equal(got, []string{"10.0.0.0/8"}) {
		t.Errorf("ReadInternalNetworks = %v, %v", got, err)
	}
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("allow 10.0.0.0/8;\nallow nonsense;\n"), 0o644)
	if _, err := ReadInternalNetworks(bad); err == nil || !strings.Contains(err.Error(), bad+": line 2") {
		t.Errorf("ReadInternalNetworks(bad): %v; want the file and the line", err)
	}
	big := filepath.Join(dir, "big.conf")
	os.WriteFile(big, []byte(strings.Repeat("allow 10.0.0.0/8;\n", 10000)), 0o644)
	if _, err := ReadInternalNetworks(big); err == nil || !strings.Contains(err.Error(), "at most") {
		t.Errorf("ReadInternalNetworks(big): %v; want a size error", err)
	}
	if _, err := ReadInternalNetworks(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("ReadInternalNetworks(missing): %v; want not-exist", err)
	}
}

// FuzzParseInternalNetworks: whatever the file, what it gives is canonical networks and nothing
// else (they are written into both proxies' configs).
func FuzzParseInternalNetworks(f *testing.F) {
	for _, s := range []string{"allow 10.0.0.0/8;\ndeny all;\n", "allow ::1;", "allow 1.2.3.4/40;", "allow 10.0.0.0/8; }\n", "#x\nallow\t192.168.0.0/16\t;"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		nets, err := ParseInternalNetworks(data)
		if err != nil {
			return
		}
		if len(nets) == 0 {
			t.Fatal("no networks and no error")
		}
		for _, n := range nets {
			p, err := netip.ParsePrefix(n)
			if err != nil || p.Masked().String() != n {
				t.Errorf("network %q is not canonical", n)
			}
		}
	})
}
