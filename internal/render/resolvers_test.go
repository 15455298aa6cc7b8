package render

import "testing"

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
	} {
		got, err := ParseResolvers(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseResolvers(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
