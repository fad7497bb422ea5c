package node

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/httpguard"
	"github.com/quorumkv/quorumkv/tlsconf"
)

// Security holds a node's defences at its client ports (issue 13,
// docs/SECURITY.md). The zero value is a node for one trusted machine:
// no tokens, no TLS, the browser checks on, binds on loopback only.
type Security struct {
	// Auth authenticates clients (--tokens); nil turns authentication
	// off. The agent owns it and reloads it on SIGHUP.
	Auth *auth.Authenticator
	// TLS serves HTTPS and RESP over TLS (--tls-cert, --tls-key,
	// --tls-client-ca); nil serves plain text. The agent reloads it on
	// SIGHUP.
	TLS *tlsconf.Reloader
	// AllowedHosts (--http-allowed-hosts) are more names clients reach the
	// node by, besides loopback names, IP addresses and the listen and
	// advertised hosts (httpguard.Config.AllowedHosts).
	AllowedHosts []string
	// CORSOrigins (--cors-origins) are the web origins whose pages may call
	// the API (httpguard.Config.CORSOrigins).
	CORSOrigins []string
	// RemoveMinDown (--remove-min-down) refuses an admin remove of a member
	// this node saw alive less than this long ago, unless forced. 0 only
	// refuses a member alive now.
	RemoveMinDown time.Duration
	// Insecure starts a node that binds beyond loopback without the
	// credentials protected mode asks for (ProtectedModeError), logging
	// a warning.
	Insecure bool
}

// ProtectedModeError returns a *StartError naming the first listener of c
// that binds beyond loopback without what protects it: the cluster secret
// for every port, and tokens or client certificates for the client ports
// (HTTP, RESP). nil when none does, or with Security.Insecure. A host name
// other than localhost counts as beyond loopback: it may resolve anywhere.
func (c Config) ProtectedModeError() error {
	if c.Security.Insecure {
		return nil
	}
	for _, l := range c.listeners() {
		host, _, err := net.SplitHostPort(l.addr)
		if err != nil || IsLoopbackHost(host) {
			continue
		}
		var missing string
		switch {
		case c.Secret == "":
			missing = "--secret (QUORUMKV_SECRET)"
		case (l.name == "http" || l.name == "resp") && c.Security.Auth == nil &&
			(c.Security.TLS == nil || !c.Security.TLS.RequiresClientCert()):
			missing = "--tokens FILE or --tls-client-ca FILE"
		default:
			continue
		}
		return &StartError{Setting: l.name, Value: l.addr, Err: fmt.Errorf(
			"%w: it is reachable beyond this machine and needs %s; bind 127.0.0.1, give %s, or start anyway with --insecure",
			ErrProtectedMode, missing, missing)}
	}
	return nil
}

// ErrProtectedMode is wrapped by ProtectedModeError.
var ErrProtectedMode = errors.New("protected mode")

// IsLoopbackHost reports whether host (of a listen address) is "localhost"
// or a loopback IP address.
func IsLoopbackHost(host string) bool {
	h := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// secureHandler wraps the client API in the browser defences, then
// authentication, then the admin audit log (outermost first).
func (n *Node) secureHandler(next http.Handler, bound string) (http.Handler, error) {
	s := n.cfg.Security
	g, err := httpguard.New(httpguard.Config{
		Listen:       []string{n.cfg.HTTPAddr, bound},
		Advertised:   []string{n.cfg.Advertise},
		AllowedHosts: s.AllowedHosts,
		CORSOrigins:  s.CORSOrigins,
	})
	if err != nil {
		return nil, err
	}
	return g.Handler(s.Auth.HTTP(n.auditAdmin(next), auth.ClassifyHTTP)), nil
}

// auditAdmin logs each admin call with the principal that made it, as it
// starts (the calls log their own outcome).
func (n *Node) auditAdmin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if auth.ClassifyHTTP(r) == auth.ActionAdmin {
			who := "(authentication off)"
			if p, ok := auth.PrincipalFrom(r.Context()); ok {
				who = p.Name
			}
			n.log.Warn("admin action", "principal", who, "method", r.Method, "path", r.URL.Path,
				"query", r.URL.RawQuery, "remote", r.RemoteAddr)
		}
		next.ServeHTTP(w, r)
	})
}
