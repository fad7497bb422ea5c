package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// MaxPEMBytes bounds a certificate, key or CA file: a wrong path
// (/dev/zero, a log file) fails fast instead of filling memory.
const MaxPEMBytes = 1 << 20

// readPEM reads a PEM file of at most MaxPEMBytes.
func readPEM(what, path string) ([]byte, error) {
	if path == "" {
		return nil, fmt.Errorf("%s: no file given", what)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxPEMBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	if len(b) > MaxPEMBytes {
		return nil, fmt.Errorf("%s %s: larger than %d bytes: not a PEM file", what, path, MaxPEMBytes)
	}
	return b, nil
}

// ParseCAs parses the certificates of a CA file's contents: one or more
// PEM "CERTIFICATE" blocks. Other blocks (a key by mistake) and text
// between blocks are errors, so a wrong file is noticed.
func ParseCAs(b []byte) (*x509.CertPool, []*x509.Certificate, error) {
	pool := x509.NewCertPool()
	var certs []*x509.Certificate
	for i := 1; ; i++ {
		blk, rest := pem.Decode(b)
		if blk == nil {
			if len(trimSpace(b)) > 0 && i > 1 {
				return nil, nil, fmt.Errorf("after certificate %d: data that is not a PEM block", i-1)
			}
			break
		}
		b = rest
		if blk.Type != "CERTIFICATE" {
			return nil, nil, fmt.Errorf("block %d is a %q, want CERTIFICATE", i, blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("certificate %d: %w", i, err)
		}
		pool.AddCert(c)
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no PEM certificate in it")
	}
	return pool, certs, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\n' || b[0] == '\r' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// loadCAFile reads and parses a CA file.
func loadCAFile(what, path string) (*x509.CertPool, error) {
	b, err := readPEM(what, path)
	if err != nil {
		return nil, err
	}
	pool, _, err := ParseCAs(b)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", what, path, err)
	}
	return pool, nil
}

// ParseKeyPair parses a certificate chain and its private key (PEM) and
// checks that the first certificate is valid at now.
func ParseKeyPair(certPEM, keyPEM []byte, now time.Time) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
		c.Leaf = leaf
	}
	switch {
	case now.After(leaf.NotAfter):
		return nil, fmt.Errorf("certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, fmt.Errorf("certificate is not valid before %s (is this machine's clock right?)", leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	return &c, nil
}

// loadKeyPair reads and parses a certificate and key file.
func loadKeyPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	cb, err := readPEM("TLS certificate", certFile)
	if err != nil {
		return nil, err
	}
	kb, err := readPEM("TLS key", keyFile)
	if err != nil {
		return nil, err
	}
	c, err := ParseKeyPair(cb, kb, now)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return c, nil
}
