package auth

import (
	"log/slog"
	"net/http"
)

// AuditAdmin logs to log each admin call (ClassifyHTTP) with the principal
// that made it, as it starts (the calls log their own outcome). It goes
// inside HTTP, which puts the principal in the request's context.
func AuditAdmin(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ClassifyHTTP(r) == ActionAdmin {
			who := "(authentication off)"
			if p, ok := PrincipalFrom(r.Context()); ok {
				who = p.Name
			}
			log.Warn("admin action", "principal", who, "method", r.Method, "path", r.URL.Path,
				"query", r.URL.RawQuery, "remote", r.RemoteAddr)
		}
		next.ServeHTTP(w, r)
	})
}
