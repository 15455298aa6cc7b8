package certs

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"strings"
)

// ClientCA is the certificate authority whose client certificates a host asks for (mutual TLS),
// in nginx-proxy's layout: <host>.ca.crt for one host, ca.crt for every host without its own,
// each with an optional certificate revocation list beside it (<host>.ca.crl, ca.crl). The files
// are not parsed here: the proxy's check refuses a bad one, which takes its site out (never
// serving it without the client check).
type ClientCA struct {
	CAFile  string // absolute path of the CA certificates (PEM)
	CRLFile string // absolute path of the CRL (PEM), "" when there is none
	SHA256  string // hex SHA-256 of both files' contents, so that a changed one changes the config
}

// ClientCA returns the client CA that host asks its clients' certificates of: its own, else the
// directory's ca.crt.
func (s *Set) ClientCA(host string) (ClientCA, bool) {
	if s == nil {
		return ClientCA{}, false
	}
	if c, ok := s.clients[host]; ok {
		return c, true
	}
	c, ok := s.clients[""]
	return c, ok
}

// clientCAStem is the host a CA file's stem ("ca", "<host>.ca") is for: "" for every host.
func clientCAStem(stem string) (host string, ok bool) {
	if stem == "ca" {
		return "", true
	}
	host, ok = strings.CutSuffix(stem, ".ca")
	return host, ok && host != ""
}

// clientCAs reads the client CA files of a listing: names are the directory's files.
func (l *loader) clientCAs() {
	for name := range l.present {
		stem, ok := strings.CutSuffix(name, ".crt")
		if !ok {
			continue
		}
		host, ok := clientCAStem(stem)
		if !ok || !SafeName(stem) {
			continue
		}
		ca, why := l.files.read(name)
		if why != "" {
			l.problem(name, why+": this host's clients are not asked for a certificate")
			continue
		}
		h := sha256.New()
		h.Write(ca)
		c := ClientCA{CAFile: l.path(name)}
		if crl := stem + ".crl"; l.present[crl] {
			b, why := l.files.read(crl)
			if why != "" {
				l.problem(crl, why+": left out")
			} else {
				h.Write(b)
				c.CRLFile = l.path(crl)
			}
		}
		c.SHA256 = hex.EncodeToString(h.Sum(nil))
		l.set.clients[host] = c
	}
}

func cloneClients(m map[string]ClientCA) map[string]ClientCA {
	if m == nil {
		return map[string]ClientCA{}
	}
	return maps.Clone(m)
}
