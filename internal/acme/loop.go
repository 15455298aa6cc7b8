package acme

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	legoacme "github.com/go-acme/lego/v5/acme"
	"github.com/go-acme/lego/v5/acme/api"
	"github.com/go-acme/lego/v5/certificate"
)

const maxErrorLen = 1000

// Run orders and renews, one certificate at a time, until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	for {
		d := m.runDue(ctx)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-m.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// runDue does every due action and returns how long to sleep.
func (m *Manager) runDue(ctx context.Context) time.Duration {
	for ctx.Err() == nil {
		name, act, ok := m.nextDue()
		if !ok {
			break
		}
		if !m.do(ctx, name, act) {
			// The store could not lock it: do held it for lockRetry, so that the others go on
			// now (a lock held elsewhere never starves them) and nothing spins.
			continue
		}
	}
	return m.sleep()
}

// nextDue is the wanted certificate whose next action is the most overdue (by name on a tie).
func (m *Manager) nextDue() (string, action, bool) {
	now := m.o.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.certs))
	for n := range m.certs {
		names = append(names, n)
	}
	sort.Strings(names)
	var (
		best   string
		bestAt time.Time
		bestA  action
	)
	for _, n := range names {
		act, at, _ := m.plan(m.certs[n], now)
		if act == actNone || at.After(now) {
			continue
		}
		if best == "" || at.Before(bestAt) {
			best, bestAt, bestA = n, at, act
		}
	}
	return best, bestA, best != ""
}

// sleep is the time until the next action, at most RenewCheck.
func (m *Manager) sleep() time.Duration {
	now := m.o.Now()
	d := m.o.RenewCheck
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.certs {
		if act, at, _ := m.plan(e, now); act != actNone {
			d = min(d, at.Sub(now))
		}
	}
	return max(d, 10*time.Millisecond)
}

// lockWait bounds the wait for a certificate's lock, which another gateway holds while it orders
// (up to the order's own timeout): this gateway's other certificates go on meanwhile, and this
// one is tried again after lockRetry.
const (
	lockWait  = 30 * time.Second
	lockRetry = 15 * time.Second
)

// do runs one action under the certificate's lock, on a fresh copy of its stored state (another
// gateway may have done it meanwhile); false when the lock could not be taken.
func (m *Manager) do(ctx context.Context, name string, act action) bool {
	// The lock's context lives on after the wait: only the wait is cut short.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	waiting := time.AfterFunc(m.o.lockWait, cancel)
	lctx, unlock, err := m.store.Lock(wctx, "cert/"+name)
	waiting.Stop()
	if err != nil {
		switch {
		case ctx.Err() != nil:
		case wctx.Err() != nil:
			m.log.Info("acme: another gateway holds the certificate's lock; trying again later", "cert", name, "in", m.o.lockRetry)
			m.hold(name, m.o.Now().Add(m.o.lockRetry))
		default:
			m.log.Error("acme: cannot lock certificate", "cert", name, "error", err)
			m.hold(name, m.o.Now().Add(m.o.lockRetry))
		}
		return false
	}
	changed := m.doLocked(lctx, name, act)
	unlock()
	if changed && m.o.OnChange != nil {
		m.o.OnChange()
	}
	return true
}

// hold keeps a certificate's next action from coming due before until.
func (m *Manager) hold(name string, until time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.certs[name]; e != nil {
		e.holdOrder, e.holdCheck = latest(e.holdOrder, until), latest(e.holdCheck, until)
	}
}

// doLocked runs act if the stored state still calls for it; true when a certificate was stored.
func (m *Manager) doLocked(ctx context.Context, name string, act action) bool {
	e, ok := m.refresh(ctx, name)
	if !ok {
		return false
	}
	now := m.o.Now()
	changed := false
	if a, at, reason := m.plan(e, now); a == act && !at.After(now) {
		switch act {
		case actOrder:
			changed = m.order(ctx, e, reason, now)
		case actCheck:
			m.checkRenewal(ctx, e, now)
		}
	}
	// Also when nothing was done: the entry then agrees with the store, and is not due again.
	m.commit(name, e)
	return changed
}

// refresh reloads the entry from the store and returns a copy to work on; false when it is no
// longer wanted.
func (m *Manager) refresh(ctx context.Context, name string) (*entry, bool) {
	m.mu.Lock()
	cur := m.certs[name]
	var e *entry
	if cur != nil && cur.invalid == "" {
		e = &entry{req: cur.req, holdOrder: cur.holdOrder, holdCheck: cur.holdCheck}
	}
	m.mu.Unlock()
	if e == nil {
		return nil, false
	}
	c, err := m.store.LoadCert(ctx, name)
	switch {
	case err == nil:
		m.setStored(e, c)
	case !errors.Is(err, ErrNotFound):
		m.log.Warn("acme: stored certificate unreadable", "cert", name, "error", err)
	}
	return e, true
}

// commit publishes e's stored state to the wanted entry of the same name, if still wanted.
func (m *Manager) commit(name string, e *entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur := m.certs[name]; cur != nil && cur.invalid == "" {
		cur.meta, cur.leaf, cur.holdOrder, cur.holdCheck = e.meta, e.leaf, e.holdOrder, e.holdCheck
	}
}

// order gets a certificate for e, unless the rate guard refuses; true when one was stored.
func (m *Manager) order(ctx context.Context, e *entry, reason string, now time.Time) bool {
	name, names := e.req.Name, namesKey(e.req.Names)
	if until, n := guardUntil(e.meta.Orders, names, now); !until.IsZero() {
		m.refuseOrder(ctx, e, n, until, now)
		return false
	}
	replaces := m.replaces(e, reason)
	e.meta.Orders = append(pruneOrders(e.meta.Orders, now), OrderRecord{At: now.UTC(), Names: names, Result: resultStarted})
	rec := &e.meta.Orders[len(e.meta.Orders)-1]
	// The record is on disk before the order, so that a crash loop cannot evade the guard.
	if err := m.store.SaveMeta(ctx, name, &e.meta); err != nil {
		m.failed(ctx, e, rec, fmt.Errorf("storing the order history: %w", err))
		return false
	}
	m.log.Info("acme: ordering certificate", "cert", name, "names", e.req.Names, "reason", reason, "ca", m.o.CAURL)
	start := time.Now()
	res, err := m.obtain(ctx, e.req, replaces)
	if err == nil {
		err = m.keep(ctx, e, res, rec)
	}
	if err != nil && ctx.Err() != nil {
		m.interrupted(ctx, e, rec)
		return false
	}
	if err != nil {
		m.failed(ctx, e, rec, err)
		return false
	}
	m.log.Info("acme: certificate stored", "cert", name, "names", e.leaf.DNSNames, "serial", e.meta.Serial,
		"not_after", e.leaf.NotAfter, "ca", m.o.CAURL, "took", time.Since(start).Round(time.Millisecond))
	return true
}

// replaces is the ARI identifier of the certificate a renewal replaces, so that the CA can
// exempt it from rate limits: only for the account that ordered it, and not after a failure
// (the CA may already count it as replaced).
func (m *Manager) replaces(e *entry, reason string) string {
	if reason != "renewal due" || e.meta.Failures > 0 || e.meta.Renewal == nil || e.meta.Renewal.NoARI ||
		e.meta.Email != e.req.Email {
		return ""
	}
	id, err := api.MakeARICertID(e.leaf)
	if err != nil {
		return ""
	}
	return id
}

func (m *Manager) obtain(ctx context.Context, req Request, replaces string) (*certificate.Resource, error) {
	ctx, cancel := context.WithTimeout(ctx, orderTimeout)
	defer cancel()
	c, err := m.client(ctx, req.Email)
	if err != nil {
		return nil, err
	}
	res, err := c.Certificate.Obtain(ctx, certificate.ObtainRequest{
		Domains:        req.Names,
		KeyType:        keyTypes[req.KeyType],
		Bundle:         true,
		Profile:        req.Profile,
		ReplacesCertID: replaces,
	})
	if accountGone(err) {
		// The CA forgot the account (a test CA restarted, a deactivation): register anew next time.
		delete(m.clients, req.Email)
		m.stale[req.Email] = true
		m.log.Warn("acme: the CA does not know the stored account, registering a new one", "email", req.Email, "ca", m.o.CAURL)
	}
	return res, err
}

// keep stores an issued certificate with a fresh meta (the history carried over).
func (m *Manager) keep(ctx context.Context, e *entry, res *certificate.Resource, rec *OrderRecord) error {
	leaf, err := parsePair(res.Certificate, res.PrivateKey)
	if err != nil {
		return fmt.Errorf("the CA's certificate: %w", err)
	}
	rec.Result, rec.Serial = resultIssued, serialOf(leaf)
	e.meta = Meta{
		Names: leaf.DNSNames, CA: m.o.CAURL, Email: e.req.Email, KeyType: e.req.KeyType, Profile: e.req.Profile,
		NotBefore: leaf.NotBefore, NotAfter: leaf.NotAfter, Serial: serialOf(leaf),
		Orders: e.meta.Orders,
	}
	if err := m.store.SaveCert(ctx, e.req.Name, &Cert{Chain: res.Certificate, Key: res.PrivateKey, Meta: e.meta}); err != nil {
		return fmt.Errorf("storing: %w", err)
	}
	e.leaf = leaf
	return nil
}

// failed records a failed order and backs off.
func (m *Manager) failed(ctx context.Context, e *entry, rec *OrderRecord, err error) {
	now := m.o.Now()
	msg := truncate(err.Error())
	rec.Result, rec.Error = resultFailed, msg
	e.meta.Failures++
	e.meta.NextTry = now.Add(backoff(e.meta.Failures, m.o.MinBackoff, m.o.MaxBackoff)).UTC()
	e.holdOrder = e.meta.NextTry
	e.meta.LastError = fmt.Sprintf("order for %s from %s: %s", strings.Join(e.req.Names, ","), m.o.CAURL, msg)
	e.meta.LastErrorAt = now.UTC()
	m.log.Error("acme: order failed", "cert", e.req.Name, "ca", m.o.CAURL, "error", msg,
		"failures", e.meta.Failures, "next_try", e.meta.NextTry)
	m.saveMeta(ctx, e)
}

// interrupted records an order abandoned at shutdown: not the CA's failure, so no backoff.
func (m *Manager) interrupted(ctx context.Context, e *entry, rec *OrderRecord) {
	rec.Result = resultInterrupted
	m.log.Warn("acme: order interrupted", "cert", e.req.Name, "ca", m.o.CAURL)
	m.saveMeta(context.WithoutCancel(ctx), e)
}

// refuseOrder is the rate guard's refusal: no order until the oldest counted one leaves the window.
func (m *Manager) refuseOrder(ctx context.Context, e *entry, n int, until, now time.Time) {
	e.meta.NextTry = until.UTC()
	e.holdOrder = e.meta.NextTry
	e.meta.LastError = fmt.Sprintf("refused locally: %d certificates for %s were issued by %s in the last 7 days "+
		"(the CA allows %d for the same names per week); next order after %s",
		n, namesKey(e.req.Names), m.o.CAURL, guardMax, until.UTC().Format(time.RFC3339))
	e.meta.LastErrorAt = now.UTC()
	m.log.Error("acme: order refused by the rate guard", "cert", e.req.Name, "ca", m.o.CAURL, "error", e.meta.LastError)
	m.saveMeta(ctx, e)
}

// checkRenewal asks the CA's renewal info (ARI) and chooses the renewal time in its window.
func (m *Manager) checkRenewal(ctx context.Context, e *entry, now time.Time) {
	ri, err := m.renewalInfo(ctx, e)
	prev := e.meta.Renewal
	switch {
	case errors.Is(err, api.ErrNoARI):
		e.meta.Renewal = &RenewalInfo{NoARI: true, NextCheck: now.Add(ariMaxTTL).UTC()}
	case err != nil:
		if prev == nil || !prev.Failed {
			m.log.Warn("acme: renewal info unavailable (without it: renewal when a third of the lifetime is left)",
				"cert", e.req.Name, "ca", m.o.CAURL, "error", err)
		}
		// The last window, if any, still holds; asked again soon.
		r := RenewalInfo{}
		if prev != nil {
			r = *prev
		}
		r.Failed, r.NextCheck = true, now.Add(clamp(m.o.RenewCheck, time.Second, time.Hour)).UTC()
		e.meta.Renewal = &r
	default:
		e.meta.Renewal = chooseRenewal(ri, prev, now)
	}
	e.holdCheck = e.meta.Renewal.NextCheck
	m.saveMeta(ctx, e)
}

func (m *Manager) renewalInfo(ctx context.Context, e *entry) (*certificate.RenewalInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := m.client(ctx, e.req.Email)
	if err != nil {
		return nil, err
	}
	return c.Certificate.GetRenewalInfo(ctx, e.leaf)
}

// chooseRenewal keeps the time already chosen while the window is the same, else picks one in
// it with lego's RFC 9773 algorithm (uniformly random; now when the window has begun).
func chooseRenewal(ri *certificate.RenewalInfo, prev *RenewalInfo, now time.Time) *RenewalInfo {
	start, end := ri.SuggestedWindow.Start.UTC(), ri.SuggestedWindow.End.UTC()
	ttl := ri.RetryAfter
	if ttl <= 0 {
		ttl = ariDefaultTTL
	}
	out := &RenewalInfo{WindowStart: start, WindowEnd: end, Explanation: ri.ExplanationURL,
		NextCheck: now.Add(clamp(ttl, time.Minute, ariMaxTTL)).UTC()}
	if prev != nil && prev.WindowStart.Equal(start) && prev.WindowEnd.Equal(end) && !prev.RenewAt.IsZero() {
		out.RenewAt = prev.RenewAt
		return out
	}
	// Willing to sleep until the window's end: ShouldRenewAt then always returns a time.
	if t := ri.ShouldRenewAt(now, end.Sub(now)+time.Second); t != nil {
		out.RenewAt = t.UTC()
	}
	return out
}

func (m *Manager) saveMeta(ctx context.Context, e *entry) {
	if err := m.store.SaveMeta(ctx, e.req.Name, &e.meta); err != nil {
		m.log.Error("acme: storing meta failed", "cert", e.req.Name, "error", err)
	}
}

func accountGone(err error) bool {
	var pd *legoacme.ProblemDetails
	return errors.As(err, &pd) && pd.Type == "urn:ietf:params:acme:error:accountDoesNotExist"
}

func truncate(s string) string {
	if len(s) > maxErrorLen {
		return s[:maxErrorLen] + "…"
	}
	return s
}
