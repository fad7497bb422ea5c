package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// ServerConfig names the files of a TLS server.
type ServerConfig struct {
	// CertFile (--tls-cert) is the PEM certificate chain, the node's own
	// certificate first.
	CertFile string
	// KeyFile (--tls-key) is its PEM private key.
	KeyFile string
	// ClientCAFile (--tls-client-ca), if set, is a PEM file of CA
	// certificates: clients must then present a certificate signed by one
	// of them, or the handshake fails.
	ClientCAFile string
}

// Validate checks that the fields that must go together do.
func (c ServerConfig) Validate() error {
	switch {
	case c.CertFile == "" && c.KeyFile == "" && c.ClientCAFile != "":
		return errors.New("--tls-client-ca needs --tls-cert and --tls-key")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("--tls-cert and --tls-key go together")
	}
	return nil
}

// Reloader serves the current certificate (and client CAs) of a
// ServerConfig to every handshake. Safe for concurrent use.
type Reloader struct {
	cfg ServerConfig
	cur atomic.Pointer[serverFiles]
	now func() time.Time // time.Now; tests move it
}

// serverFiles is one generation of a ServerConfig's contents.
type serverFiles struct {
	cert      *tls.Certificate
	clientCAs *x509.CertPool // nil: no client certificates asked
}

// NewReloader loads cfg's files.
func NewReloader(cfg ServerConfig) (*Reloader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.CertFile == "" {
		return nil, errors.New("--tls-cert and --tls-key are needed to serve TLS")
	}
	r := &Reloader{cfg: cfg, now: time.Now}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload re-reads the files. On success the next handshakes use the new
// ones (connections already open keep theirs); on error nothing changes
// and the error names the bad file.
func (r *Reloader) Reload() error {
	c, err := loadKeyPair(r.cfg.CertFile, r.cfg.KeyFile, r.now())
	if err != nil {
		return err
	}
	f := &serverFiles{cert: c}
	if r.cfg.ClientCAFile != "" {
		if f.clientCAs, err = loadCAFile("TLS client CA", r.cfg.ClientCAFile); err != nil {
			return err
		}
	}
	r.cur.Store(f)
	return nil
}

// GetCertificate returns the current certificate (tls.Config's hook).
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load().cert, nil
}

// Leaf returns the current certificate, parsed (for logs: subject, expiry).
func (r *Reloader) Leaf() *x509.Certificate { return r.cur.Load().cert.Leaf }

// RequiresClientCert reports whether clients must present a certificate.
func (r *Reloader) RequiresClientCert() bool { return r.cfg.ClientCAFile != "" }

// ServerConfig returns the tls.Config of a listener: TLS 1.2 or later,
// Go's default cipher suites and curves, the current certificate and, with
// a client CA, a verified client certificate required. nextProtos are the
// ALPN protocols: "h2", "http/1.1" for net/http (http.Server.TLSConfig,
// then ServeTLS(ln, "", "")), none for RESP (tls.NewListener). Each
// handshake reads the files' current generation, so Reload applies to new
// connections at once.
func (r *Reloader) ServerConfig(nextProtos ...string) *tls.Config {
	base := &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     nextProtos,
		GetCertificate: r.GetCertificate,
	}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		f := r.cur.Load()
		c := &tls.Config{
			MinVersion:   tls.VersionTLS12,
			NextProtos:   nextProtos,
			Certificates: []tls.Certificate{*f.cert},
		}
		if f.clientCAs != nil {
			c.ClientAuth = tls.RequireAndVerifyClientCert
			c.ClientCAs = f.clientCAs
		}
		return c, nil
	}
	return base
}

// ClientConfig names the files of a TLS client (the CLI, the Go client,
// the bench).
type ClientConfig struct {
	// CAFile (--cacert, QUORUMKV_CACERT) is a PEM file of the CA
	// certificates to trust instead of the system's roots; "" trusts the
	// system's roots.
	CAFile string
	// CertFile and KeyFile are a client certificate and key to present, for
	// a server with --tls-client-ca; both or neither.
	CertFile, KeyFile string
	// ServerName overrides the name the server's certificate must hold
	// (default: the host dialled).
	ServerName string
}

// NewClientConfig returns the tls.Config of a client: TLS 1.2 or later,
// the server's certificate verified against CAFile (or the system's roots)
// and its name.
func NewClientConfig(c ClientConfig) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pool, err := loadCAFile("CA file", c.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case c.CertFile != "" && c.KeyFile != "":
		cert, err := loadKeyPair(c.CertFile, c.KeyFile, time.Now())
		if err != nil {
			return nil, fmt.Errorf("client %w", err)
		}
		cfg.Certificates = []tls.Certificate{*cert}
	case c.CertFile != "" || c.KeyFile != "":
		return nil, errors.New("a client certificate needs both its certificate and its key file")
	}
	return cfg, nil
}
