package acme

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Pure scheduling rules: when to renew, how long to back off, what the rate guard allows.

const (
	guardWindow   = 7 * 24 * time.Hour // Let's Encrypt's duplicate-certificate window ...
	guardMax      = 5                  // ... and limit, for the same set of names
	keepOrders    = 10                 // history kept beyond the window, for diagnosis
	ariDefaultTTL = 6 * time.Hour      // when the CA sends no Retry-After
	ariMaxTTL     = 24 * time.Hour
)

type action int

const (
	actNone  action = iota
	actOrder        // a new certificate: missing, changed, expired or due for renewal
	actCheck        // ask the CA's renewal info
)

// plan says what e needs next and when, and why for an order.
func (m *Manager) plan(e *entry, now time.Time) (action, time.Time, string) {
	if e.invalid != "" {
		return actNone, time.Time{}, ""
	}
	if reason := m.orderReason(e, now); reason != "" {
		return actOrder, m.notBefore(e, now), reason
	}
	ra := renewAt(e.leaf, e.meta.Renewal)
	if check := latest(nextCheck(e.meta.Renewal, now), e.holdCheck); check.Before(ra) {
		return actCheck, check, ""
	}
	return actOrder, latest(ra, m.notBefore(e, now)), "renewal due"
}

// orderReason is why e needs a certificate now, "" when the stored one serves.
func (m *Manager) orderReason(e *entry, now time.Time) string {
	switch {
	case e.leaf == nil:
		return "no certificate"
	case namesKey(e.leaf.DNSNames) != namesKey(e.req.Names):
		return "names changed"
	case e.meta.CA != "" && e.meta.CA != m.o.CAURL:
		return "CA changed"
	case keyTypeOf(e.leaf) != e.req.KeyType:
		return "key type changed"
	case e.meta.CA != "" && e.meta.Profile != e.req.Profile:
		return "profile changed"
	case !now.Before(e.leaf.NotAfter):
		return "expired"
	}
	return ""
}

// notBefore is the earliest time of e's next order: after its backoff or rate-guard wait, and
// never sooner than MinBackoff after the last order, whatever its outcome (no storm even when
// the CA's certificate does not satisfy the request).
func (m *Manager) notBefore(e *entry, now time.Time) time.Time {
	t := latest(e.meta.NextTry, e.holdOrder)
	if n := len(e.meta.Orders); n > 0 {
		t = latest(t, e.meta.Orders[n-1].At.Add(m.o.MinBackoff))
	}
	return latest(t, now)
}

// renewAt is the time chosen in the CA's renewal window when it has one within the certificate's
// lifetime, else when a third of the lifetime is left.
func renewAt(leaf *x509.Certificate, ri *RenewalInfo) time.Time {
	if ri != nil && !ri.RenewAt.IsZero() && !ri.RenewAt.Before(leaf.NotBefore) && ri.RenewAt.Before(leaf.NotAfter) {
		return ri.RenewAt
	}
	life := leaf.NotAfter.Sub(leaf.NotBefore)
	return leaf.NotAfter.Add(-life / 3)
}

func nextCheck(ri *RenewalInfo, now time.Time) time.Time {
	if ri == nil || ri.NextCheck.IsZero() {
		return now
	}
	return ri.NextCheck
}

// backoff is the wait after the n-th consecutive failure: lo, doubling, up to hi.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	return clamp(d, lo, hi)
}

func clamp(d, lo, hi time.Duration) time.Duration {
	return max(lo, min(d, hi))
}

// guardUntil returns when the rate guard allows the next order of names (zero: now), and how
// many certificates were ordered for them in the window. Orders whose outcome is unknown (a
// crash) count as issued.
func guardUntil(orders []OrderRecord, names string, now time.Time) (time.Time, int) {
	var issued []time.Time
	for _, o := range recentOrders(orders, names, now) {
		if o.Result == resultIssued || o.Result == resultStarted {
			issued = append(issued, o.At)
		}
	}
	if len(issued) < guardMax {
		return time.Time{}, len(issued)
	}
	slices.SortFunc(issued, func(a, b time.Time) int { return a.Compare(b) })
	return issued[len(issued)-guardMax].Add(guardWindow), len(issued)
}

// recentOrders are the orders of the name set in the guard's window.
func recentOrders(orders []OrderRecord, names string, now time.Time) []OrderRecord {
	var out []OrderRecord
	for _, o := range orders {
		if o.Names == names && now.Sub(o.At) < guardWindow {
			out = append(out, o)
		}
	}
	return out
}

// pruneOrders drops orders older than the window, keeping the last few for diagnosis.
func pruneOrders(orders []OrderRecord, now time.Time) []OrderRecord {
	var out []OrderRecord
	for i, o := range orders {
		if now.Sub(o.At) < guardWindow || i >= len(orders)-keepOrders {
			out = append(out, o)
		}
	}
	return out
}

// namesKey is a name set as the CA counts it: sorted, lower-case, comma-separated.
func namesKey(names []string) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = strings.ToLower(n)
	}
	slices.Sort(s)
	return strings.Join(slices.Compact(s), ",")
}

// parsePair checks that key matches the chain's leaf and returns the leaf.
func parsePair(chain, key []byte) (*x509.Certificate, error) {
	if len(key) == 0 {
		return nil, errors.New("no private key")
	}
	pair, err := tls.X509KeyPair(chain, key)
	if err != nil {
		return nil, err
	}
	if pair.Leaf != nil {
		return pair.Leaf, nil
	}
	return x509.ParseCertificate(pair.Certificate[0])
}

// serialOf is the serial number as openssl prints it.
func serialOf(c *x509.Certificate) string {
	return strings.ToUpper(hex.EncodeToString(c.SerialNumber.Bytes()))
}

// keyTypeOf is the certificate's key in Request.KeyType's terms.
func keyTypeOf(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return fmt.Sprintf("ec-%d", k.Curve.Params().BitSize)
	case *rsa.PublicKey:
		return fmt.Sprint(k.N.BitLen())
	}
	return ""
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
