package render

import (
	"strings"
	"testing"
)

func TestParseResolvers(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"127.0.0.11", "127.0.0.11", true},
		{" 1.1.1.1  8.8.8.8:53 valid=30s ipv6=off ", "1.1.1.1 8.8.8.8:53 valid=30s ipv6=off", true},
		{"[2001:db8::1] [2001:db8::2]:5353", "[2001:db8::1] [2001:db8::2]:5353", true},
		{"2001:db8::1", "", false}, // nginx needs the brackets
		{"dns.example", "", false},
		{"1.1.1.1;", "", false},
		{"1.1.1.1 valid=30s; include /x", "", false},
		{"valid=30s", "", false},
		{"[fe80::1%a;b]:53", "", false},
		{"[fe80::1%eth0]", "", false},
	} {
		got, err := ParseResolvers(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseResolvers(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

// FuzzParseResolvers: whatever RESOLVERS holds, what reaches nginx's resolver directive is
// addresses and options only: nothing that ends the directive or opens a block.
func FuzzParseResolvers(f *testing.F) {
	for _, s := range []string{"127.0.0.11", "1.1.1.1:53 valid=30s ipv6=off", "[2001:db8::1]:53", "a;b", "1.1.1.1 }", "[fe80::1%a;b]:53"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		out, err := ParseResolvers(v)
		if err != nil {
			return
		}
		if strings.ContainsAny(out, ";{}\"'\\$#\n\r\t") {
			t.Fatalf("ParseResolvers(%q) = %q: unsafe for nginx", v, out)
		}
		if again, err := ParseResolvers(out); err != nil || again != out {
			t.Fatalf("not stable: %q -> %q -> %q, %v", v, out, again, err)
		}
	})
}
