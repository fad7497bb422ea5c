package tlsconf

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files Init writes, in its directory.
const (
	CAFile      = "ca.pem"       // the CA's certificate: --cacert and --tls-client-ca
	NodeFile    = "node.pem"     // the node's certificate: --tls-cert
	NodeKeyFile = "node-key.pem" // its key (mode 0600): --tls-key
)

// Validity of the certificates Init writes, as consul's defaults.
const (
	CAValidity   = 5 * 365 * 24 * time.Hour
	NodeValidity = 365 * 24 * time.Hour
)

// DefaultHosts are the names Init's certificate holds when none are given.
var DefaultHosts = []string{"localhost", "127.0.0.1", "::1"}

// Init writes a new CA and one certificate signed by it, valid for hosts
// (names, "*.domain" wildcards and IP addresses; DefaultHosts if empty) and
// usable both by servers and as a client certificate, to DIR/ca.pem,
// DIR/node.pem and DIR/node-key.pem (mode 0600). Keys are ECDSA P-256. It
// creates dir (mode 0700) if needed and refuses to overwrite any existing
// file; on error it removes what it wrote.
func Init(dir string, hosts []string) error {
	return initAt(dir, hosts, time.Now())
}

func initAt(dir string, hosts []string, now time.Time) error {
	if len(hosts) == 0 {
		hosts = DefaultHosts
	}
	dns, ips, err := parseHosts(hosts)
	if err != nil {
		return err
	}
	paths := []string{filepath.Join(dir, CAFile), filepath.Join(dir, NodeFile), filepath.Join(dir, NodeKeyFile)}
	var exist []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err == nil {
			exist = append(exist, p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(exist) > 0 {
		return fmt.Errorf("refusing to overwrite %s: remove it first or choose another --dir", strings.Join(exist, ", "))
	}

	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	id := make([]byte, 4)
	if _, err := rand.Read(id); err != nil {
		return err
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"quorumkv"}, CommonName: "quorumkv CA " + hex.EncodeToString(id)},
		NotBefore:             now.Add(-time.Hour), // some clock skew between machines
		NotAfter:              now.Add(CAValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, caCert, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	nodeKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	nodeDER, _, err := sign(&x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"quorumkv"}, CommonName: hosts[0]},
		DNSNames:    dns,
		IPAddresses: ips,
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(NodeValidity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}, caCert, &nodeKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(nodeKey)
	if err != nil {
		return err
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := []struct {
		path, typ string
		der       []byte
		mode      os.FileMode
	}{
		{paths[0], "CERTIFICATE", caDER, 0o644},
		{paths[1], "CERTIFICATE", nodeDER, 0o644},
		{paths[2], "PRIVATE KEY", keyDER, 0o600},
	}
	var written []string
	for _, f := range files {
		if err := writeNew(f.path, pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der}), f.mode); err != nil {
			for _, p := range written {
				os.Remove(p)
			}
			return err
		}
		written = append(written, f.path)
	}
	return nil
}

// sign issues tmpl (with a random serial) signed by parent's key.
func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1))
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return der, c, err
}

// writeNew writes a file that must not exist yet, with mode (umask aside,
// it is set explicitly), and syncs it.
func writeNew(path string, b []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
	}
	return err
}

// parseHosts splits hosts into DNS names and IP addresses, refusing what
// is neither.
func parseHosts(hosts []string) ([]string, []net.IP, error) {
	var dns []string
	var ips []net.IP
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if seen[h] {
			continue
		}
		seen[h] = true
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
			continue
		}
		if !validDNSName(h) {
			return nil, nil, fmt.Errorf("host %q: want a DNS name (letters, digits, '-', dots; \"*.\" to start a wildcard) or an IP address", h)
		}
		dns = append(dns, h)
	}
	return dns, ips, nil
}

func validDNSName(s string) bool {
	s = strings.TrimPrefix(s, "*.")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
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
