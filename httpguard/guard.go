package httpguard

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/excerpt"
	"github.com/quorumkv/quorumkv/internal/httpjson"
)

// Config says which names and origins a node answers.
type Config struct {
	// Listen are the addresses the HTTP server binds (host:port); their
	// hosts are accepted in Host. Wildcard hosts (0.0.0.0, ::, "") add
	// nothing.
	Listen []string
	// Advertised are the addresses the node publishes (host:port or host,
	// node's Config.Advertise); their hosts are accepted in Host.
	Advertised []string
	// AllowedHosts (--http-allowed-hosts) are more names clients reach the
	// node by: a host name ("kv.example.com"), a suffix pattern
	// ("*.example.com": any name below example.com), or "*" (any Host: the
	// DNS-rebinding check is off). A port, if given, is ignored. Loopback
	// names and IP addresses never need listing.
	AllowedHosts []string
	// CORSOrigins (--cors-origins) are the web origins
	// ("https://app.example.com", "http://localhost:3000") whose pages may
	// call the API from a browser. Empty: no cross-origin browser request
	// is served.
	CORSOrigins []string
}

// Guard is the configured defence; see the package doc.
type Guard struct {
	hosts    map[string]bool // exact names
	suffixes []string        // ".example.com" of "*.example.com"
	anyHost  bool
	origins  map[string]bool // normalized scheme://host:port
}

// New validates cfg and returns its Guard.
func New(cfg Config) (*Guard, error) {
	g := &Guard{hosts: map[string]bool{}, origins: map[string]bool{}}
	for _, a := range append(append([]string(nil), cfg.Listen...), cfg.Advertised...) {
		if h := normHost(a); h != "" && h != "0.0.0.0" && h != "::" {
			g.hosts[h] = true
		}
	}
	for _, h := range cfg.AllowedHosts {
		switch {
		case h == "*":
			g.anyHost = true
		case strings.HasPrefix(h, "*."):
			s := normHost(h[1:])
			if s == "" || !validName(s[1:]) {
				return nil, fmt.Errorf("allowed host %q: want NAME, *.DOMAIN or *", h)
			}
			g.suffixes = append(g.suffixes, s)
		default:
			n := normHost(h)
			if n == "" || (!validName(n) && net.ParseIP(n) == nil) {
				return nil, fmt.Errorf("allowed host %q: want NAME, *.DOMAIN or *", h)
			}
			g.hosts[n] = true
		}
	}
	for _, o := range cfg.CORSOrigins {
		n, err := normOrigin(o)
		if err != nil {
			return nil, fmt.Errorf("CORS origin %q: %v", o, err)
		}
		g.origins[n] = true
	}
	return g, nil
}

// corsExpose are the response headers a cross-origin page may read.
var corsExpose = strings.Join([]string{api.HeaderContext, api.HeaderDot, api.HeaderSiblings,
	api.HeaderAcksPrimary, api.HeaderAcksFallback, api.HeaderAcksDurable, api.HeaderCoordinator,
	api.HeaderLocal, "Retry-After"}, ", ")

// Handler wraps next with the checks of the package doc. Put it outside
// the authentication middleware: preflights carry no credentials.
func (g *Guard) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// One allocation for the three values, where Header.Set makes
		// one each (the names are canonical; TestGuardHeaders checks).
		vals := [...]string{"nosniff", "sandbox", "same-origin"}
		v := vals[:]
		h["X-Content-Type-Options"] = v[0:1:1]
		h["Content-Security-Policy"] = v[1:2:2]
		h["Cross-Origin-Resource-Policy"] = v[2:3:3]

		if !g.HostAllowed(r.Host) {
			httpjson.WriteError(w, http.StatusForbidden, api.CodeForbidden,
				fmt.Sprintf("forbidden: Host %q is not a name of this node (a defence against DNS rebinding): add it to --http-allowed-hosts", clip(r.Host)))
			return
		}
		if strings.Contains(r.URL.RawQuery, ";") {
			httpjson.WriteError(w, http.StatusBadRequest, api.CodeBadParameter,
				"query string holds ';': separate parameters with '&' (';' would make the server drop parameters)")
			return
		}
		origin := r.Header.Get("Origin")
		if origin == "" {
			switch site := r.Header.Get("Sec-Fetch-Site"); site {
			case "cross-site", "same-site":
				httpjson.WriteError(w, http.StatusForbidden, api.CodeForbidden,
					fmt.Sprintf("forbidden: a browser request from another site (Sec-Fetch-Site: %s)", site))
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		n, err := normOrigin(origin)
		switch {
		case err == nil && g.origins[n]:
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				h.Add("Vary", "Access-Control-Request-Method, Access-Control-Request-Headers")
				h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, POST, DELETE")
				h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, "+api.HeaderContext)
				h.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.Set("Access-Control-Expose-Headers", corsExpose)
		case err == nil && n == requestOrigin(r):
			// Same origin: a page the node's own origin serves (behind a
			// proxy), not a cross-origin request.
		default:
			httpjson.WriteError(w, http.StatusForbidden, api.CodeForbidden,
				fmt.Sprintf("forbidden: a browser request from origin %q: add it to --cors-origins to allow pages of that origin", clip(origin)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// HostAllowed reports whether a Host header value names this node: empty
// (HTTP/1.0), an IP address (a page whose origin is an IP address cannot
// rebind it), localhost or a name under .localhost (browsers resolve them
// to loopback without DNS), a host of Listen or Advertised, or a name
// AllowedHosts matches.
func (g *Guard) HostAllowed(hostport string) bool {
	if hostport == "" || g.anyHost {
		return true
	}
	h := normHost(hostport)
	if h == "" {
		return false
	}
	// The node's own names first: net.ParseIP allocates, and the usual
	// Host is a name or address the node listens on or advertises.
	if g.hosts[h] || h == "localhost" || strings.HasSuffix(h, ".localhost") || net.ParseIP(h) != nil {
		return true
	}
	for _, s := range g.suffixes {
		if strings.HasSuffix(h, s) {
			return true
		}
	}
	return false
}

// normHost returns the lower-case host of "host", "host:port", "[v6]" or
// "[v6]:port", without a trailing dot; "" if it is not one of those.
func normHost(s string) string {
	h := s
	if host, port, err := net.SplitHostPort(s); err == nil {
		if strings.Trim(port, "0123456789") != "" {
			return ""
		}
		h = host
	} else if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		h = s[1 : len(s)-1]
	}
	if strings.ContainsAny(h, "[]/@ \t\r\n\\?#") || strings.Count(h, ":") == 1 {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// validName reports whether s is a plausible DNS name: labels of letters,
// digits, '-' and '_'.
func validName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// normOrigin returns "scheme://host:port" of a web origin, lower-case,
// with the scheme's default port made explicit.
func normOrigin(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", fmt.Errorf("not a URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("want http://HOST[:PORT] or https://HOST[:PORT]")
	}
	if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.Host == "" {
		return "", fmt.Errorf("want scheme://HOST[:PORT] only, no user, path, query or fragment")
	}
	return originOf(u.Scheme, u.Host)
}

func originOf(scheme, hostport string) (string, error) {
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	if host = normHost(host); host == "" {
		return "", fmt.Errorf("bad host %q", clip(hostport))
	}
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

// requestOrigin is the origin the request was sent to ("" if its Host is
// not usable).
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	o, err := originOf(scheme, r.Host)
	if err != nil {
		return ""
	}
	return o
}

// clip bounds a header value quoted in an error message.
func clip(s string) string { return excerpt.Of(s, 100) }
