package acme

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/go-acme/lego/v5/certcrypto"
)

// keyTypes maps acme-companion's ACME_KEYSIZE values to lego's.
var keyTypes = map[string]certcrypto.KeyType{
	"ec-256": certcrypto.EC256,
	"ec-384": certcrypto.EC384,
	"2048":   certcrypto.RSA2048,
	"3072":   certcrypto.RSA3072,
	"4096":   certcrypto.RSA4096,
}

const (
	defaultKeyType = "ec-256"
	maxNames       = 100 // Let's Encrypt's limit of names per certificate
)

var (
	emailRE   = regexp.MustCompile(`^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+$`)
	profileRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// normalize checks r and returns it with names lower-cased, duplicates dropped and defaults set.
func normalize(r Request) (Request, error) {
	names, err := normalizeNames(r.Names)
	if err != nil {
		return r, err
	}
	r.Names = names
	if r.Name == "" {
		r.Name = names[0]
	}
	if !validHost(r.Name) {
		return r, fmt.Errorf("certificate name %q is not a host name (letters, digits, '-', '.')", r.Name)
	}
	if r.KeyType == "" {
		r.KeyType = defaultKeyType
	}
	r.KeyType = strings.ToLower(r.KeyType)
	if _, ok := keyTypes[r.KeyType]; !ok {
		return r, fmt.Errorf("key type %q: want ec-256, ec-384, 2048, 3072 or 4096", r.KeyType)
	}
	if r.Email != "" && (len(r.Email) > 254 || !emailRE.MatchString(r.Email)) {
		return r, fmt.Errorf("email %q is not an address", r.Email)
	}
	if r.Profile != "" && !profileRE.MatchString(r.Profile) {
		return r, fmt.Errorf("profile %q: letters, digits, '.', '_', '-' only", r.Profile)
	}
	return r, nil
}

func normalizeNames(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, errors.New("no names")
	}
	seen := map[string]bool{}
	var out []string
	for _, n := range in {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if !validHost(n) {
			return nil, fmt.Errorf("%q is not a host name (letters, digits, '-', '.'; no wildcards with HTTP-01)", n)
		}
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	if len(out) > maxNames {
		return nil, fmt.Errorf("%d names: at most %d per certificate", len(out), maxNames)
	}
	return out, nil
}

// validHost is a DNS host name: labels of 1-63 letters, digits and '-', not starting or ending
// with '-', 253 characters at most. It is also a safe file name: no '/', no leading '.', no "..".
func validHost(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

func validLabel(l string) bool {
	if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
		return false
	}
	for _, c := range []byte(l) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
