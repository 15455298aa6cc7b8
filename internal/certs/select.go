package certs

import (
	"fmt"
	"strings"
	"time"
)

// Choice is the certificate a host gets.
type Choice struct {
	Cert    Cert   // zero when none
	Via     string // ViaCertName, ViaExact, ViaParent, ViaDefault; "" exactly when there is no certificate
	Problem string // why the host has no certificate, or why the one it has is doubtful; "" when fine
}

// How a certificate was chosen (Choice.Via).
const (
	ViaCertName = "CERT_NAME"
	ViaExact    = "exact"
	ViaParent   = "parent"
	ViaDefault  = "default"
)

// Select is nginx-proxy's order: certName (CERT_NAME) when set, with no fall-through when it is
// missing; else the certificate named after the host; else after the parent domain one level up
// (only for hosts of more than 2 labels: sub.foo.bar.com → foo.bar.com, never bar.com); else
// "default" when trustDefault. As in nginx-proxy, the host string is the file name: a wildcard
// host *.example.com uses *.example.com.crt (its parent is example.com), example.* uses
// example.*.crt; a host that is not a safe file name (a regular expression) has no file of its
// own, so CERT_NAME or the default only. A name whose .crt is there but gives no usable pair
// stops the search, as nginx-proxy stops at an existing .crt without its .key. A certificate
// that does not cover the host or is expired is still chosen (nginx-proxy serves it) and
// Problem says so.
func (s *Set) Select(host, certName string, trustDefault bool) Choice {
	if certName != "" {
		return s.byCertName(host, certName)
	}
	steps := []struct{ name, via string }{{host, ViaExact}, {Parent(host), ViaParent}}
	for _, st := range steps {
		if st.name == "" || !SafeName(st.name) {
			continue
		}
		if c, ok := s.Get(st.name); ok {
			return chosen(c, st.via, host)
		}
		if b, ok := s.brokenName(st.name); ok && b.crt {
			return Choice{Problem: fmt.Sprintf("no certificate: %s is unusable (%s)", printable(st.name)+".crt", b.reason)}
		}
	}
	if c, ok := s.Get(DefaultName); ok && trustDefault {
		return chosen(c, ViaDefault, host)
	}
	return Choice{Problem: s.none(host, trustDefault)}
}

func (s *Set) byCertName(host, certName string) Choice {
	q := printable(certName)
	if !SafeName(certName) {
		return Choice{Problem: fmt.Sprintf("no certificate: CERT_NAME %q is not a safe certificate name (letters, digits, '.', '-', '_' and '*' only)", certName)}
	}
	if c, ok := s.Get(certName); ok {
		return chosen(c, ViaCertName, host)
	}
	if b, ok := s.brokenName(certName); ok {
		return Choice{Problem: fmt.Sprintf("no certificate: CERT_NAME %s is unusable (%s)", q, b.reason)}
	}
	return Choice{Problem: fmt.Sprintf("no certificate: CERT_NAME %s names no certificate (%s.crt and %s.key)", q, q, q)}
}

// none says why a host has no certificate at all.
func (s *Set) none(host string, trustDefault bool) string {
	tried := printable(host) + ".crt"
	if p := Parent(host); p != "" {
		tried += " or " + printable(p) + ".crt"
	}
	_, hasDefault := s.Get(DefaultName)
	b, brokenDefault := s.brokenName(DefaultName)
	switch {
	case !trustDefault && (hasDefault || brokenDefault):
		return "no certificate: no " + tried + ", and the default certificate is not trusted"
	case brokenDefault:
		return "no certificate: no " + tried + ", and the default certificate is unusable (" + b.reason + ")"
	}
	return "no certificate: no " + tried + ", and no default certificate"
}

func (s *Set) brokenName(name string) (broken, bool) {
	if s == nil {
		return broken{}, false
	}
	b, ok := s.broken[name]
	return b, ok
}

// chosen is a choice with what is doubtful about it.
func chosen(c Cert, via, host string) Choice {
	var doubts []string
	if !c.Covers(host) {
		covers := strings.Join(c.Names, ", ")
		if covers == "" {
			covers = "no DNS name"
		}
		doubts = append(doubts, fmt.Sprintf("certificate %s does not cover %s (it covers %s)", printable(c.Name), printable(host), covers))
	}
	now := time.Now()
	if c.Expired(now) {
		doubts = append(doubts, fmt.Sprintf("certificate %s expired on %s", printable(c.Name), c.NotAfter.UTC().Format(time.RFC3339)))
	}
	if now.Before(c.NotBefore) {
		doubts = append(doubts, fmt.Sprintf("certificate %s is not valid before %s", printable(c.Name), c.NotBefore.UTC().Format(time.RFC3339)))
	}
	return Choice{Cert: c, Via: via, Problem: strings.Join(doubts, "; ")}
}

// Parent is nginx-proxy's parent domain: the host without its first label, only when the host
// has more than 2 labels; "" otherwise.
func Parent(host string) string {
	if strings.Count(host, ".") < 2 {
		return ""
	}
	return host[strings.IndexByte(host, '.')+1:]
}

// Covers says whether the certificate's DNS names cover host as a TLS client checks them: an
// exact name, or a wildcard *.rest standing for exactly one label. A wildcard host
// (*.example.com) is covered by the same wildcard name only. A host that no name can be checked
// against (example.*, a regular expression) counts as covered: nothing can be said.
func (c Cert) Covers(host string) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if strings.HasPrefix(host, "~") || strings.Contains(strings.TrimPrefix(host, "*."), "*") {
		return true
	}
	for _, n := range c.Names {
		if n == host {
			return true
		}
		rest, ok := strings.CutPrefix(n, "*.")
		if !ok || strings.HasPrefix(host, "*.") {
			continue
		}
		label, after, found := strings.Cut(host, ".")
		if found && label != "" && after == rest {
			return true
		}
	}
	return false
}
