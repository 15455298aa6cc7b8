package render

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/vhost-gen/vhost-gen/internal/routing"
)

// The template functions for nginx-proxy's loadbalance and keepalive labels, DEFAULT_HOST and
// DEFAULT_ROOT. Routing has validated every value; each function still refuses what it does not
// know (a table built by hand, a newer routing), which fails the render rather than write it.

// defaultSite is the site DEFAULT_HOST names (routing.Site.Default), nil when none.
func defaultSite(sites []routing.Site) *routing.Site {
	for i := range sites {
		if sites[i].Default {
			return &sites[i]
		}
	}
	return nil
}

// nginxBalance is a backend's balancing directive in its upstream block, "" for round robin
// (nginx's default). A hash on a cookie hashes the variable nginxStickyVars made for the cookie:
// the cookie, or the client's address until it is set.
func nginxBalance(b routing.Backend, stickyVars map[string]string) (string, error) {
	lb := b.Balance
	switch lb.Method {
	case "", routing.BalanceRoundRobin:
		return "", nil
	case routing.BalanceLeastConn, routing.BalanceIPHash, routing.BalanceRandom:
		return lb.Method + ";", nil
	case routing.BalanceRandomTwo:
		return "random two least_conn;", nil
	case routing.BalanceHash:
		key := "$remote_addr"
		switch lb.Hash {
		case routing.HashRemoteAddr:
		case routing.HashCookie:
			v, ok := stickyVars[lb.Cookie]
			if !ok {
				return "", fmt.Errorf("backend %s: no variable for the cookie %q", b.Name, lb.Cookie)
			}
			key = "$" + v
		default:
			return "", fmt.Errorf("backend %s: unknown hash key %q", b.Name, lb.Hash)
		}
		if lb.Consistent {
			return "hash " + key + " consistent;", nil
		}
		return "hash " + key + ";", nil
	}
	return "", fmt.Errorf("backend %s: unknown balancing method %q", b.Name, lb.Method)
}

// haproxyBalance is a backend's balancing lines. Hashing is consistent, whatever the label says:
// HAProxy's map-based hashing is static, and its runtime API could then neither add servers nor
// change their weights without a reload.
func haproxyBalance(b routing.Backend) ([]string, error) {
	lb := b.Balance
	switch lb.Method {
	case "", routing.BalanceRoundRobin:
		return []string{"balance roundrobin"}, nil
	case routing.BalanceLeastConn:
		return []string{"balance leastconn"}, nil
	case routing.BalanceIPHash:
		return []string{"balance source", "hash-type consistent"}, nil
	case routing.BalanceRandom:
		return []string{"balance random"}, nil
	case routing.BalanceRandomTwo:
		return []string{"balance random(2)"}, nil
	case routing.BalanceHash:
		switch lb.Hash {
		case routing.HashRemoteAddr:
			return []string{"balance source", "hash-type consistent"}, nil
		case routing.HashCookie:
			if _, err := routing.ParseSticky(lb.Cookie); err != nil || lb.Cookie != strings.TrimSpace(lb.Cookie) {
				return nil, fmt.Errorf("backend %s: cookie %q: %v", b.Name, lb.Cookie, err)
			}
			return []string{"balance hash req.cook(" + lb.Cookie + ")", "hash-type consistent"}, nil
		}
		return nil, fmt.Errorf("backend %s: unknown hash key %q", b.Name, lb.Hash)
	}
	return nil, fmt.Errorf("backend %s: unknown balancing method %q", b.Name, lb.Method)
}

// haproxyReuse is a backend's connection reuse lines for the keepalive label: none when it is
// not set (HAProxy's default, http-reuse safe), http-reuse safe for a number or auto (HAProxy
// sizes its idle pool itself), and no reuse and a connection per request when disabled.
func haproxyReuse(b routing.Backend) []string {
	switch b.Keepalive {
	case "":
		return nil
	case routing.KeepaliveDisabled:
		return []string{"http-reuse never", "option http-server-close"}
	}
	return []string{"http-reuse safe"}
}

// checkedRoot is r as routing reads it back from its own words: nothing routing would refuse
// reaches a config.
func checkedRoot(r routing.DefaultRoot) (routing.DefaultRoot, error) {
	back, err := routing.ParseDefaultRoot(r.String())
	if err != nil || back.String() != r.String() {
		return r, fmt.Errorf("DEFAULT_ROOT %q cannot be written in a config", r.String())
	}
	return back, nil
}

// nginxRoot is the directive of the "location /" of a site without a route for "/"
// (DEFAULT_ROOT), "" for none (no such location).
func nginxRoot(r routing.DefaultRoot) (string, error) {
	r, err := checkedRoot(r)
	switch {
	case err != nil:
		return "", err
	case r.None:
		return "", nil
	case r.URL != "":
		u, err := nginxQuote(r.URL)
		if err != nil {
			return "", err
		}
		return "return " + strconv.Itoa(r.Code()) + " " + u + ";", nil
	}
	return "return " + strconv.Itoa(r.Code()) + ";", nil
}

// haproxyRoot is the backend that answers "/" on a site without a route for it (DEFAULT_ROOT):
// vhost-gen:404 by default, vhost-gen:root otherwise (haproxyRootRule), "" for none (the request
// goes on to DEFAULT_HOST's site, or 503).
func haproxyRoot(r routing.DefaultRoot) string {
	switch {
	case r.None:
		return ""
	case r.Code() == 404 && r.URL == "":
		return "vhost-gen:404"
	}
	return "vhost-gen:root"
}

// haproxyRootRule is the rule of the vhost-gen:root backend: the status (444: the connection
// closed without a response, as nginx's return 444), or the redirect.
func haproxyRootRule(r routing.DefaultRoot) (string, error) {
	r, err := checkedRoot(r)
	switch {
	case err != nil:
		return "", err
	case r.URL != "":
		// The location is a log-format string: a '%' is written '%%'.
		return "http-request redirect location " + strings.ReplaceAll(r.URL, "%", "%%") + " code " + strconv.Itoa(r.Code()), nil
	case r.Code() == 444:
		return "http-request reject", nil
	}
	return "http-request return status " + strconv.Itoa(r.Code()), nil
}

// UnsupportedProtos are the VIRTUAL_PROTO values a shipped template cannot speak to a backend,
// with why (routing.Options.UnsupportedProtos). A user's template decides for itself: none.
func UnsupportedProtos(proxy, userTemplate string) map[string]string {
	if userTemplate != "" || proxy != "haproxy" {
		return nil
	}
	return map[string]string{
		"uwsgi":   "HAProxy does not speak uwsgi: serve this workload with --proxy nginx, or over HTTP",
		"fastcgi": "vhost-gen's HAProxy template does not speak FastCGI: serve this workload with --proxy nginx",
	}
}
