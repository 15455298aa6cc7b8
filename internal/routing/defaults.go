package routing

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// The gateway's answers where no route answers, with nginx-proxy's names (the gateway's flags
// --default-host and --default-root read them).
const (
	SettingDefaultHost = "DEFAULT_HOST"
	SettingDefaultRoot = "DEFAULT_ROOT"
)

// ParseDefaultHost validates DEFAULT_HOST: an exact host name, lower-cased; "" when unset.
func ParseDefaultHost(v string) (string, error) {
	h := strings.TrimSpace(v)
	if h == "" {
		return "", nil
	}
	name, err := ParseHostName(h)
	if err != nil {
		return "", errors.New(strings.TrimPrefix(err.Error(), fmt.Sprintf("host %q: ", h)))
	}
	if strings.Contains(name, "*") {
		return "", errors.New("must be an exact host name, not a wildcard (the site of that name answers the hosts no site claims)")
	}
	return name, nil
}

// DefaultRoot is what "/" answers on a site none of whose routes is "/" (all its workloads have
// a VIRTUAL_PATH): nginx-proxy's DEFAULT_ROOT. The zero value is the default, 404.
type DefaultRoot struct {
	// None: no answer of vhost-gen's own (nginx: no "location /", so nginx's own root answers;
	// HAProxy: the request goes on to DEFAULT_HOST's site, or 503).
	None bool `json:"none,omitempty"`
	// Status is the status code (0: 404); 444 closes the connection without a response, as
	// nginx's return 444.
	Status int `json:"status,omitempty"`
	// URL, with a redirect Status, is where "/" redirects to.
	URL string `json:"url,omitempty"`
}

// Code is the status "/" answers with (404 by default).
func (r DefaultRoot) Code() int {
	if r.Status == 0 {
		return 404
	}
	return r.Status
}

// String is the value as DEFAULT_ROOT takes it ("404", "301 https://example.com/", "none").
func (r DefaultRoot) String() string {
	switch {
	case r.None:
		return "none"
	case r.URL != "":
		return strconv.Itoa(r.Code()) + " " + r.URL
	}
	return strconv.Itoa(r.Code())
}

const defaultRootForms = `must be a status code (200-599, not 3xx; 444 closes the connection), a redirect ("301|302|303|307|308 https://..."), or none`

// ParseDefaultRoot validates DEFAULT_ROOT. nginx-proxy writes it after nginx's return; vhost-gen
// accepts only what both proxies can answer: a status code, a redirect code with an absolute
// http(s) URL made of URL characters alone (no white space, quotes, '$', ';', '#', '\', braces),
// or "none". An empty value is the default, 404.
func ParseDefaultRoot(v string) (DefaultRoot, error) {
	s := strings.TrimSpace(v)
	if s == "" {
		return DefaultRoot{}, nil
	}
	if strings.EqualFold(s, "none") {
		return DefaultRoot{None: true}, nil
	}
	f := strings.Fields(s)
	if len(f) > 2 {
		return DefaultRoot{}, errors.New(defaultRootForms)
	}
	code, hasURL := f[0], len(f) == 2
	n, err := parseUint(code)
	if err != nil || len(code) != 3 || n < 200 || n > 599 {
		return DefaultRoot{}, errors.New(defaultRootForms)
	}
	redirect := n == 301 || n == 302 || n == 303 || n == 307 || n == 308
	if !hasURL {
		if n >= 300 && n < 400 {
			return DefaultRoot{}, fmt.Errorf("%d needs a URL to redirect to (%s)", n, defaultRootForms)
		}
		return DefaultRoot{Status: n}, nil
	}
	if !redirect {
		return DefaultRoot{}, fmt.Errorf("only a redirect (301, 302, 303, 307, 308) takes a URL (%s)", defaultRootForms)
	}
	u, err := parseRootURL(f[1])
	if err != nil {
		return DefaultRoot{}, err
	}
	return DefaultRoot{Status: n, URL: u}, nil
}

// parseRootURL validates DEFAULT_ROOT's redirect URL: absolute, http or https, with a host, at
// most 2048 characters of letters, digits and -._~:/?[]@!&()*+,=% ('%' as percent-encoding).
func parseRootURL(s string) (string, error) {
	if s == "" || len(s) > 2048 {
		return "", errors.New("the URL must be 1 to 2048 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~:/?[]@!&()*+,=%", c) >= 0) {
			return "", fmt.Errorf("character %q not allowed in the URL (letters, digits and -._~:/?[]@!&()*+,=%% only)", rune(c))
		}
		if c == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return "", errors.New("a '%' in the URL must start a percent-encoding (%XX)")
		}
	}
	u, err := url.Parse(s)
	if err != nil || (!strings.EqualFold(u.Scheme, "http") && !strings.EqualFold(u.Scheme, "https")) || u.Host == "" || u.Opaque != "" {
		return "", errors.New("the URL must be absolute: http:// or https://, a host, then a path")
	}
	return s, nil
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// DefaultHTTP reports whether the site answers, on the HTTP port, the hosts that no site there
// claims (DEFAULT_HOST names it, and it is served or redirected there).
func (s Site) DefaultHTTP() bool { return s.Default && (s.TLS.HTTP() || s.TLS.Redirect()) }

// DefaultHTTPS reports whether the site answers, on the HTTPS port, the names that no site there
// claims (DEFAULT_HOST names it, and it is served there with a certificate).
func (s Site) DefaultHTTPS() bool { return s.Default && s.TLS.HTTPS() }

// markDefault marks DEFAULT_HOST's site; its warning says when no site has that name, or when
// the site is served on neither port.
func markDefault(sites []Site, host string) []Problem {
	if host == "" {
		return nil
	}
	host = strings.ToLower(strings.TrimSuffix(host, ".")) // as ParseDefaultHost gives it
	warn := func(reason string) []Problem {
		return []Problem{{Setting: SettingDefaultHost, Value: host, Reason: reason, Warning: true}}
	}
	for i := range sites {
		if sites[i].Host == host {
			sites[i].Default = true
			if !sites[i].DefaultHTTP() && !sites[i].TLS.HTTPS() {
				return warn("its site is served on neither port: hosts that no site claims get 503")
			}
			return nil
		}
	}
	return warn("no site has this name (yet): hosts that no site claims get 503")
}
