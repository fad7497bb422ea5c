package auth

import (
	"context"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/httpjson"
)

// Realm is the realm of the WWW-Authenticate challenges.
const Realm = "quorumkv"

type principalKey struct{}

// WithPrincipal returns ctx carrying p (for PrincipalFrom).
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal HTTP authenticated for the request
// whose context ctx is; ok is false when none did (an open endpoint, or
// authentication off).
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// HTTP wraps next: classify names the request's Action; an ActionOpen
// request passes untouched; any other needs "Authorization: Bearer TOKEN"
// naming a principal whose role allows the action. It answers 401 with a
// WWW-Authenticate: Bearer challenge when the token is missing, malformed
// or unknown, and 403 when the role falls short, both as api.Error JSON
// (codes unauthorized and forbidden); next sees the principal through
// PrincipalFrom. A nil classify is ClassifyHTTP. With a nil receiver
// (authentication off) HTTP returns next itself.
//
// Wrap it inside httpguard's handler, so CORS preflights (which carry no
// credentials) are answered before authentication.
func (a *Authenticator) HTTP(next http.Handler, classify func(*http.Request) Action) http.Handler {
	if a == nil {
		return next
	}
	if classify == nil {
		classify = ClassifyHTTP
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		act := classify(r)
		if act == ActionOpen {
			next.ServeHTTP(w, r)
			return
		}
		token, err := BearerToken(r.Header)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`"`)
			httpjson.WriteError(w, http.StatusUnauthorized, api.CodeUnauthorized, err.Error())
			return
		}
		p, ok := a.Authenticate(token)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="invalid_token"`)
			httpjson.WriteError(w, http.StatusUnauthorized, api.CodeUnauthorized, "unauthorized: the bearer token is not one of this node's tokens")
			return
		}
		if err := Authorize(p, act); err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+Realm+`", error="insufficient_scope"`)
			httpjson.WriteError(w, http.StatusForbidden, api.CodeForbidden, err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
	})
}

// BearerToken returns the token of an "Authorization: Bearer TOKEN"
// header (the scheme is case-insensitive, RFC 7235), or an error wrapping
// ErrUnauthorized saying what is wrong with the header.
func BearerToken(h http.Header) (string, error) {
	vals := h.Values("Authorization")
	switch {
	case len(vals) == 0:
		return "", fmt.Errorf("%w: send Authorization: Bearer TOKEN", ErrUnauthorized)
	case len(vals) > 1:
		return "", fmt.Errorf("%w: more than one Authorization header", ErrUnauthorized)
	}
	scheme, token, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", fmt.Errorf("%w: the Authorization header is not Bearer TOKEN", ErrUnauthorized)
	}
	return token, nil
}

// ClassifyHTTP is the client API's table of who may call what:
//
//	/healthz, /readyz                 open (probes)
//	/status, /metrics, /cluster/...   ActionStatus (read)
//	GET, HEAD /kv/...                 ActionRead (read)
//	other methods on /kv/...          ActionWrite (write)
//	/admin/...                        ActionAdmin (admin)
//	anything else                     ActionStatus: any valid token, then 404
//
// The path is classified as sent and cleaned (path.Clean), and the
// stricter answer wins, so "/kv/../admin/leave" is an admin call whichever
// form the router acts on.
func ClassifyHTTP(r *http.Request) Action {
	p := r.URL.Path
	a := classifyPath(r.Method, p)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	// path.Clean returns a path that is already clean without copying
	// it: a request's usual path costs no allocation here (this runs
	// twice per request, here and in AuditAdmin).
	c := path.Clean(p)
	if c == r.URL.Path {
		return a
	}
	b := classifyPath(r.Method, c)
	if a.Needs() < b.Needs() {
		return b
	}
	return a
}

func classifyPath(method, p string) Action {
	switch {
	case p == "/healthz" || p == "/readyz":
		return ActionOpen
	case p == "/status" || p == "/metrics" || p == "/cluster" || strings.HasPrefix(p, "/cluster/"):
		return ActionStatus
	case p == "/kv" || strings.HasPrefix(p, "/kv/"):
		if method == http.MethodGet || method == http.MethodHead {
			return ActionRead
		}
		return ActionWrite
	case p == "/admin" || strings.HasPrefix(p, "/admin/"):
		return ActionAdmin
	}
	return ActionStatus
}
