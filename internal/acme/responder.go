package acme

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/go-acme/lego/v5/challenge/http01"
)

// Responder answers HTTP-01 challenges: GET/HEAD /.well-known/acme-challenge/<token> with the key
// authorization, for tokens of orders in progress only; 404 for anything else, 405 for other
// methods. The proxy forwards the challenge path of every port-80 server to it.
func (m *Manager) Responder() http.Handler {
	return http.HandlerFunc(m.serveChallenge)
}

func (m *Manager) serveChallenge(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.URL.Path, http01.PathPrefix)
	if !ok || !validToken(token) {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	keyAuth, err := m.store.Token(r.Context(), token)
	if errors.Is(err, ErrNotFound) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		m.log.Warn("acme: challenge token lookup failed", "error", err)
		http.Error(w, "token store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte(keyAuth))
}

// validToken is RFC 8555's token alphabet (base64url, no padding), bounded.
func validToken(t string) bool {
	if t == "" || len(t) > 256 {
		return false
	}
	for _, c := range []byte(t) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// provider is lego's HTTP-01 provider: it puts the token where the Responder reads it, for the
// time of the challenge, instead of listening on port 80 itself.
type provider struct{ store Store }

func (p provider) Present(ctx context.Context, _, token, keyAuth string) error {
	return p.store.PutToken(ctx, token, keyAuth)
}

// CleanUp runs even when the order's context has ended, so it does not use it.
func (p provider) CleanUp(_ context.Context, _, token, _ string) error {
	return p.store.DeleteToken(context.Background(), token)
}
