package render

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// HAProxy with HTTPS keeps what each site does on each port in two map files beside its crt-list,
// rather than in rules: a site's first certificate (served on HTTP, then redirected, with HSTS)
// then changes no rule of the config, and vhost-gen puts it live through the runtime API (the
// certificate, its crt-list line, the maps' entries) without a reload. The template writes every
// entry as a comment too, so that the runtime API's diff sees them in the config itself.

// MapEntry is one line of an HAProxy map file: a key, and the rest of the line as its value.
type MapEntry struct {
	Key, Value string
}

// MapFile is one map file the template reads, and its entries sorted by key.
type MapFile struct {
	Path    string
	Entries []MapEntry
}

// HAProxyMaps are the two map files of the shipped HAProxy template with HTTPS.
type HAProxyMaps struct {
	// Sites: "<host>@h" (HTTP) and "<host>@s" (HTTPS) for each port a site is on, with "serve",
	// or, on HTTP, "redirect/<code>/[:<port>]" (the code for OPTIONS, POST, PUT, PATCH and
	// DELETE; the others get 301).
	Sites MapFile
	// HSTS: "<host>" and its Strict-Transport-Security value, for sites that send one.
	HSTS MapFile
}

// haproxyMaps builds the maps for these sites, beside the crt-list. A path that a map() argument
// cannot hold (HAProxy splits them at ',' and ')') is an error, which fails the render.
func haproxyMaps(sites []routing.Site, crtList string) (HAProxyMaps, error) {
	dir := filepath.Dir(crtList)
	m := HAProxyMaps{
		Sites: MapFile{Path: filepath.Join(dir, "sites.map")},
		HSTS:  MapFile{Path: filepath.Join(dir, "hsts.map")},
	}
	for _, p := range []string{m.Sites.Path, m.HSTS.Path} {
		if !haproxyArgPathOK(p) {
			return HAProxyMaps{}, fmt.Errorf("map file %q: an HAProxy map() argument takes letters, digits and /._+- only", p)
		}
	}
	for _, s := range sites {
		switch {
		case s.TLS.Redirect():
			v := "redirect/301/"
			if c := s.TLS.NonGetRedirect; c != 0 && c != 301 {
				v = "redirect/" + strconv.Itoa(c) + "/"
			}
			if s.TLS.RedirectPort != 0 {
				v += ":" + strconv.Itoa(s.TLS.RedirectPort)
			}
			m.Sites.Entries = append(m.Sites.Entries, MapEntry{siteKey(s.Host) + "@h", v})
		case s.TLS.HTTP():
			m.Sites.Entries = append(m.Sites.Entries, MapEntry{siteKey(s.Host) + "@h", "serve"})
		}
		if s.TLS.HTTPS() {
			m.Sites.Entries = append(m.Sites.Entries, MapEntry{siteKey(s.Host) + "@s", "serve"})
			if s.TLS.HSTS != "" {
				m.HSTS.Entries = append(m.HSTS.Entries, MapEntry{siteKey(s.Host), s.TLS.HSTS})
			}
		}
	}
	byKey := func(a, b MapEntry) int { return strings.Compare(a.Key, b.Key) }
	slices.SortFunc(m.Sites.Entries, byKey)
	slices.SortFunc(m.HSTS.Entries, byKey)
	return m, nil
}

// haproxyArgPathOK reports whether a file's path can be written as a sample fetch or converter
// argument as it is.
func haproxyArgPathOK(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.ContainsFunc(p, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._+-", r))
	})
}

// bytes is the map file's content: a line per entry.
func (f MapFile) bytes() []byte {
	var b strings.Builder
	b.WriteString("# Written by vhost-gen with the config that reads it.\n")
	for _, e := range f.Entries {
		b.WriteString(e.Key + " " + e.Value + "\n")
	}
	return []byte(b.String())
}

// File is a file that a rendered config reads, and its content.
type File struct {
	Path string
	Data []byte
}

// HAProxyTLSFiles are the files the shipped HAProxy template reads with HTTPS: the crt-list
// (CrtList) and the two maps, each to be written before the config goes live.
func HAProxyTLSFiles(sites []routing.Site, crtList string) ([]File, error) {
	m, err := haproxyMaps(sites, crtList)
	if err != nil {
		return nil, err
	}
	return []File{
		{crtList, CrtList(sites)},
		{m.Sites.Path, m.Sites.bytes()},
		{m.HSTS.Path, m.HSTS.bytes()},
	}, nil
}

// haproxyClientCASites are the sites served over HTTPS that ask for client certificates.
func haproxyClientCASites(sites []routing.Site) []routing.Site {
	var out []routing.Site
	for _, s := range sites {
		if s.TLS.HTTPS() && s.TLS.ClientCA != nil {
			out = append(out, s)
		}
	}
	return out
}
