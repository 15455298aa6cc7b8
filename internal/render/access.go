package render

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/vhost-gen/vhost-gen/internal/access"
	"github.com/vhost-gen/vhost-gen/internal/routing"
	"github.com/vhost-gen/vhost-gen/internal/snippets"
)

// internalNetworks are the networks of NETWORK_ACCESS=internal when a route of these sites
// asks for it (the operator's, else the default), nil otherwise: the config then has none of
// it. Each is checked again here: a template's data may come from a caller that did not.
func internalNetworks(sites []routing.Site, nets []string) ([]string, error) {
	wanted := false
	for _, s := range sites {
		for _, r := range s.Routes {
			wanted = wanted || r.Internal
		}
	}
	if !wanted {
		return nil, nil
	}
	if len(nets) == 0 {
		nets = access.DefaultInternalNetworks
	}
	for _, n := range nets {
		if p, err := netip.ParsePrefix(n); err != nil || p.Masked().String() != n {
			return nil, fmt.Errorf("internal network %q: not a network in canonical form", n)
		}
	}
	return nets, nil
}

// basicAuth is a route's basic authentication from the htpasswd directory (nil: none).
func basicAuth(dir *snippets.Set, host, path string) *access.Auth {
	if dir == nil {
		return nil
	}
	return access.BasicAuth(dir, host, path)
}

// haproxyUserlists are the htpasswd files the sites' routes use, once each, by userlist name.
func haproxyUserlists(sites []routing.Site, dir *snippets.Set) []*access.Auth {
	byName := map[string]*access.Auth{}
	for _, s := range sites {
		for _, r := range s.Routes {
			if a := basicAuth(dir, s.Host, r.Path); a != nil {
				byName[a.Userlist] = a
			}
		}
	}
	out := make([]*access.Auth, 0, len(byName))
	for _, n := range slices.Sorted(maps.Keys(byName)) {
		out = append(out, byName[n])
	}
	return out
}
