package client

import (
	"crypto/tls"
	"net/http"
	"strings"

	"github.com/quorumkv/quorumkv/tlsconf"
)

// WithToken sends token as "Authorization: Bearer TOKEN" with every
// request, for nodes started with --tokens. "" sends none.
func WithToken(token string) Option { return func(s *settings) { s.token = token } }

// WithTLSConfig sets the TLS configuration of https:// addresses (a CA to
// trust, a client certificate). nil uses the system's roots. Ignored with
// WithHTTPClient, whose transport decides.
func WithTLSConfig(c *tls.Config) Option { return func(s *settings) { s.tls = c } }

// WithCAFile trusts the CA certificates of a PEM file (--cacert,
// QUORUMKV_CACERT) for https:// addresses, instead of the system's roots:
// the ca.pem `quorumkv tls init` writes. "" changes nothing.
func WithCAFile(path string) Option {
	return func(s *settings) {
		if path == "" {
			return
		}
		c, err := tlsconf.NewClientConfig(tlsconf.ClientConfig{CAFile: path})
		if err != nil {
			s.err = badRequest("CA file: %v", err)
			return
		}
		s.tls = c
	}
}

// authorize adds the client's credentials to hr.
func (c *Client) authorize(hr *http.Request) {
	if c.token != "" {
		hr.Header.Set("Authorization", "Bearer "+c.token)
	}
}

// checkToken refuses a token that cannot be sent in a header.
func checkToken(t string) error {
	if strings.ContainsAny(t, "\r\n\x00 \t") {
		return badRequest("token: holds a space or control character")
	}
	return nil
}

// Force makes RemoveMember take the member off the ring even if the node
// saw it alive within its --remove-min-down.
func Force() RequestOption {
	return func(r *request) {
		r.use("force", opInfo)
		r.query.Set("force", "true")
	}
}
