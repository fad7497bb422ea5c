package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/nettest"
)

// initDir runs Init in a new temporary directory.
func initDir(t *testing.T, hosts ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tls")
	if err := Init(dir, hosts); err != nil {
		t.Fatal(err)
	}
	return dir
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to+".tmp", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(to+".tmp", to); err != nil {
		t.Fatal(err)
	}
}

// echoServer serves TLS on 127.0.0.1 with cfg: each connection gets "hi"
// back after its handshake. Handshake errors go to errs.
func echoServer(t testing.TB, cfg *tls.Config) (addr string, errs chan error) {
	t.Helper()
	ln := tls.NewListener(nettest.Listen(t), cfg)
	errs = make(chan error, 100)
	nettest.Serve(t, ln, func(c net.Conn) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if err := c.(*tls.Conn).Handshake(); err != nil {
			errs <- err
			return
		}
		c.Write([]byte("hi"))
	})
	return ln.Addr().String(), errs
}

// talk dials addr with cfg and reads the greeting; it returns the
// connection state or the handshake/read error.
func talk(t testing.TB, addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	t.Helper()
	d := &net.Dialer{Timeout: 10 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	if string(b) != "hi" {
		return tls.ConnectionState{}, errors.New("greeting " + string(b))
	}
	return c.ConnectionState(), nil
}

func clientConfig(t *testing.T, c ClientConfig) *tls.Config {
	t.Helper()
	cfg, err := NewClientConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestInitFiles(t *testing.T) {
	dir := initDir(t, "node1.test", "10.0.0.7", "*.kv.test", "NODE1.test")
	for name, mode := range map[string]os.FileMode{CAFile: 0o644, NodeFile: 0o644, NodeKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), mode)
		}
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v", fi.Mode().Perm())
	}
	r, err := NewReloader(ServerConfig{CertFile: filepath.Join(dir, NodeFile), KeyFile: filepath.Join(dir, NodeKeyFile)})
	if err != nil {
		t.Fatal(err)
	}
	leaf := r.Leaf()
	if strings.Join(leaf.DNSNames, ",") != "node1.test,*.kv.test" || len(leaf.IPAddresses) != 1 || !leaf.IPAddresses[0].Equal(net.ParseIP("10.0.0.7")) {
		t.Fatalf("names %q, IPs %v", leaf.DNSNames, leaf.IPAddresses)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, CAFile))
	pool, cas, err := ParseCAs(caPEM)
	if err != nil || len(cas) != 1 || !cas[0].IsCA {
		t.Fatalf("CA: %v", err)
	}
	for _, name := range []string{"node1.test", "x.kv.test", "10.0.0.7"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("verify as server %s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("verify as client: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.test"}); err == nil {
		t.Error("certificate valid for a host it was not made for")
	}
	if d := leaf.NotAfter.Sub(time.Now()); d < NodeValidity-2*time.Hour || d > NodeValidity {
		t.Errorf("node certificate valid for %v more", d)
	}
}

func TestInitRefusesOverwrite(t *testing.T) {
	dir := initDir(t)
	before, _ := os.ReadFile(filepath.Join(dir, NodeKeyFile))
	err := Init(dir, nil)
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") || !strings.Contains(err.Error(), NodeKeyFile) {
		t.Fatalf("second Init: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, NodeKeyFile))
	if string(before) != string(after) {
		t.Fatal("key overwritten")
	}
	// One file alone is enough to refuse, and nothing is written.
	dir2 := t.TempDir()
	os.WriteFile(filepath.Join(dir2, CAFile), []byte("mine"), 0o644)
	if err := Init(dir2, nil); err == nil {
		t.Fatal("Init over an existing ca.pem succeeded")
	}
	if _, err := os.Stat(filepath.Join(dir2, NodeFile)); err == nil {
		t.Fatal("node.pem written although Init refused")
	}
}

func TestInitBadHosts(t *testing.T) {
	for _, h := range []string{"a b", "http://x", "x/y", "-x.test", "x..test", "x.test:8080", "*"} {
		if err := Init(filepath.Join(t.TempDir(), "d"), []string{h}); err == nil || !strings.Contains(err.Error(), "host") {
			t.Errorf("Init with host %q: %v", h, err)
		}
	}
}

// A real handshake over 127.0.0.1: TLS 1.3 by default, TLS 1.2 accepted,
// TLS 1.1 refused, the server's name checked by the client.
func TestHandshake(t *testing.T) {
	dir := initDir(t)
	r, err := NewReloader(ServerConfig{CertFile: filepath.Join(dir, NodeFile), KeyFile: filepath.Join(dir, NodeKeyFile)})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := echoServer(t, r.ServerConfig())
	cc := clientConfig(t, ClientConfig{CAFile: filepath.Join(dir, CAFile)})

	st, err := talk(t, addr, cc)
	if err != nil || st.Version != tls.VersionTLS13 {
		t.Fatalf("handshake: %v, version %x", err, st.Version)
	}
	tls12 := cc.Clone()
	tls12.MaxVersion = tls.VersionTLS12
	if st, err := talk(t, addr, tls12); err != nil || st.Version != tls.VersionTLS12 {
		t.Fatalf("TLS 1.2: %v", err)
	}
	tls11 := cc.Clone()
	tls11.MinVersion, tls11.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if _, err := talk(t, addr, tls11); err == nil {
		t.Fatal("TLS 1.1 accepted")
	}
	other := cc.Clone()
	other.ServerName = "other.test"
	if _, err := talk(t, addr, other); err == nil {
		t.Fatal("certificate accepted for a name it does not hold")
	}
	// A client trusting the system's roots only refuses the test CA.
	if _, err := talk(t, addr, clientConfig(t, ClientConfig{ServerName: "localhost"})); err == nil {
		t.Fatal("untrusted CA accepted")
	}
}

// With a client CA, a client without a certificate, or with one of another
// CA, is refused; one with a certificate of the CA gets in.
func TestClientCertRequired(t *testing.T) {
	dir, other := initDir(t), initDir(t)
	r, err := NewReloader(ServerConfig{CertFile: filepath.Join(dir, NodeFile), KeyFile: filepath.Join(dir, NodeKeyFile),
		ClientCAFile: filepath.Join(dir, CAFile)})
	if err != nil {
		t.Fatal(err)
	}
	if !r.RequiresClientCert() {
		t.Fatal("RequiresClientCert false")
	}
	addr, serverErrs := echoServer(t, r.ServerConfig())
	ca := filepath.Join(dir, CAFile)

	if _, err := talk(t, addr, clientConfig(t, ClientConfig{CAFile: ca})); err == nil {
		t.Fatal("client without a certificate got in")
	}
	if err := <-serverErrs; !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("server's handshake error: %v", err)
	}
	stranger := clientConfig(t, ClientConfig{CAFile: ca, CertFile: filepath.Join(other, NodeFile), KeyFile: filepath.Join(other, NodeKeyFile)})
	if _, err := talk(t, addr, stranger); err == nil {
		t.Fatal("client with another CA's certificate got in")
	}
	if err := <-serverErrs; !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("server's handshake error: %v", err)
	}
	member := clientConfig(t, ClientConfig{CAFile: ca, CertFile: filepath.Join(dir, NodeFile), KeyFile: filepath.Join(dir, NodeKeyFile)})
	if _, err := talk(t, addr, member); err != nil {
		t.Fatalf("client with the CA's certificate: %v", err)
	}
}

// reloadable makes two CAs with their certificates (directories a and b)
// and serves a's pair from copies at cert and key, which tests overwrite.
func reloadable(t *testing.T) (a, b, cert, key string, r *Reloader, addr string) {
	t.Helper()
	a, b = initDir(t), initDir(t)
	live := t.TempDir()
	cert, key = filepath.Join(live, "cert.pem"), filepath.Join(live, "key.pem")
	copyFile(t, filepath.Join(a, NodeFile), cert)
	copyFile(t, filepath.Join(a, NodeKeyFile), key)
	r, err := NewReloader(ServerConfig{CertFile: cert, KeyFile: key})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ = echoServer(t, r.ServerConfig())
	return a, b, cert, key, r, addr
}

// Reload swaps the certificate for new handshakes; a bad file keeps the
// old one.
func TestReload(t *testing.T) {
	a, b, cert, key, r, addr := reloadable(t)
	trustA := clientConfig(t, ClientConfig{CAFile: filepath.Join(a, CAFile)})
	trustB := clientConfig(t, ClientConfig{CAFile: filepath.Join(b, CAFile)})
	if _, err := talk(t, addr, trustA); err != nil {
		t.Fatal(err)
	}
	if _, err := talk(t, addr, trustB); err == nil {
		t.Fatal("B trusted before the reload")
	}

	copyFile(t, filepath.Join(b, NodeFile), cert)
	copyFile(t, filepath.Join(b, NodeKeyFile), key)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := talk(t, addr, trustB); err != nil {
		t.Fatalf("after reload: %v", err)
	}
	if _, err := talk(t, addr, trustA); err == nil {
		t.Fatal("old certificate still served")
	}

	// Half an update (A's key with B's certificate) is refused whole.
	copyFile(t, filepath.Join(a, NodeKeyFile), key)
	if err := r.Reload(); err == nil || !strings.Contains(err.Error(), "private key does not match public key") {
		t.Fatalf("reload of a mismatched pair: %v", err)
	}
	if _, err := talk(t, addr, trustB); err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
}

// The client CA reloads too.
func TestReloadClientCA(t *testing.T) {
	a, b := initDir(t), initDir(t)
	ca := filepath.Join(t.TempDir(), "clients.pem")
	copyFile(t, filepath.Join(a, CAFile), ca)
	r, err := NewReloader(ServerConfig{CertFile: filepath.Join(a, NodeFile), KeyFile: filepath.Join(a, NodeKeyFile), ClientCAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := echoServer(t, r.ServerConfig())
	withB := clientConfig(t, ClientConfig{CAFile: filepath.Join(a, CAFile), CertFile: filepath.Join(b, NodeFile), KeyFile: filepath.Join(b, NodeKeyFile)})
	if _, err := talk(t, addr, withB); err == nil {
		t.Fatal("B's client certificate accepted before the CA changed")
	}
	copyFile(t, filepath.Join(b, CAFile), ca)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := talk(t, addr, withB); err != nil {
		t.Fatalf("B's client certificate after the CA reload: %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	a, b := initDir(t), initDir(t)
	tmp := t.TempDir()
	garbage := filepath.Join(tmp, "garbage.pem")
	os.WriteFile(garbage, []byte("not a certificate\n"), 0o600)
	empty := filepath.Join(tmp, "empty.pem")
	os.WriteFile(empty, nil, 0o600)
	big := filepath.Join(tmp, "big.pem")
	os.WriteFile(big, make([]byte, MaxPEMBytes+1), 0o600)
	trailing := filepath.Join(tmp, "trailing.pem")
	caPEM, _ := os.ReadFile(filepath.Join(a, CAFile))
	os.WriteFile(trailing, append(caPEM, "junk"...), 0o600)
	old := filepath.Join(tmp, "old")
	if err := initAt(old, nil, time.Now().Add(-2*NodeValidity)); err != nil {
		t.Fatal(err)
	}
	future := filepath.Join(tmp, "future")
	if err := initAt(future, nil, time.Now().Add(48*time.Hour)); err != nil {
		t.Fatal(err)
	}

	cert, key := filepath.Join(a, NodeFile), filepath.Join(a, NodeKeyFile)
	tests := []struct {
		name string
		cfg  ServerConfig
		msg  string
	}{
		{"missing cert", ServerConfig{CertFile: filepath.Join(tmp, "nope.pem"), KeyFile: key}, "TLS certificate: open " + filepath.Join(tmp, "nope.pem")},
		{"missing key", ServerConfig{CertFile: cert, KeyFile: filepath.Join(tmp, "nope.pem")}, "TLS key: open"},
		{"garbage cert", ServerConfig{CertFile: garbage, KeyFile: key}, "failed to find any PEM data in certificate input"},
		{"key as cert", ServerConfig{CertFile: key, KeyFile: key}, "TLS certificate " + key},
		{"mismatched key", ServerConfig{CertFile: cert, KeyFile: filepath.Join(b, NodeKeyFile)}, "private key does not match public key"},
		{"expired", ServerConfig{CertFile: filepath.Join(old, NodeFile), KeyFile: filepath.Join(old, NodeKeyFile)}, "certificate expired at"},
		{"not yet valid", ServerConfig{CertFile: filepath.Join(future, NodeFile), KeyFile: filepath.Join(future, NodeKeyFile)}, "not valid before"},
		{"huge file", ServerConfig{CertFile: big, KeyFile: key}, "larger than 1048576 bytes"},
		{"client CA garbage", ServerConfig{CertFile: cert, KeyFile: key, ClientCAFile: garbage}, "TLS client CA " + garbage + ": no PEM certificate"},
		{"client CA empty", ServerConfig{CertFile: cert, KeyFile: key, ClientCAFile: empty}, "no PEM certificate"},
		{"client CA is a key", ServerConfig{CertFile: cert, KeyFile: key, ClientCAFile: key}, `block 1 is a "PRIVATE KEY", want CERTIFICATE`},
		{"client CA with trailing junk", ServerConfig{CertFile: cert, KeyFile: key, ClientCAFile: trailing}, "data that is not a PEM block"},
		{"key without cert", ServerConfig{KeyFile: key}, "--tls-cert and --tls-key go together"},
		{"client CA alone", ServerConfig{ClientCAFile: cert}, "--tls-client-ca needs --tls-cert"},
		{"nothing", ServerConfig{}, "are needed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewReloader(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("err = %v, want %q", err, tc.msg)
			}
		})
	}
	for _, c := range []ClientConfig{
		{CAFile: garbage},
		{CAFile: filepath.Join(tmp, "nope")},
		{CertFile: cert},
		{CertFile: cert, KeyFile: filepath.Join(b, NodeKeyFile)},
	} {
		if _, err := NewClientConfig(c); err == nil {
			t.Errorf("NewClientConfig(%+v) accepted", c)
		}
	}
}

// HTTPS the way node is meant to serve it: http.Server with the
// Reloader's config and ServeTLS without files; HTTP/2 is negotiated.
func TestHTTPS(t *testing.T) {
	dir := initDir(t)
	r, err := NewReloader(ServerConfig{CertFile: filepath.Join(dir, NodeFile), KeyFile: filepath.Join(dir, NodeKeyFile)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		TLSConfig: r.ServerConfig("h2", "http/1.1"),
		ErrorLog:  log.New(io.Discard, "", 0),
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, r.Proto)
		}),
	}
	done := make(chan error, 1)
	go func() { done <- srv.ServeTLS(ln, "", "") }()
	defer func() {
		srv.Close()
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	}()
	cc := clientConfig(t, ClientConfig{CAFile: filepath.Join(dir, CAFile)})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cc, ForceAttemptHTTP2: true}}
	res, err := client.Get("https://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(b) != "HTTP/2.0" {
		t.Fatalf("protocol %q", b)
	}
	// A plain-HTTP client is refused rather than answered in clear.
	plain := &http.Client{Timeout: 10 * time.Second}
	if res, err := plain.Get("http://" + ln.Addr().String() + "/"); err == nil {
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP: %d", res.StatusCode)
		}
	}
}

// Handshakes racing with reloads that alternate two certificates: each
// handshake gets one whole pair (a client trusting both CAs always gets
// in). Run with -race.
func TestReloadConcurrent(t *testing.T) {
	a, b, cert, key, r, addr := reloadable(t)
	both := clientConfig(t, ClientConfig{CAFile: filepath.Join(a, CAFile)})
	bPEM, _ := os.ReadFile(filepath.Join(b, CAFile))
	both.RootCAs.AppendCertsFromPEM(bPEM)

	errs := make(chan error, 1)
	stop := make(chan struct{})
	go func() {
		defer close(errs)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := talk(t, addr, both); err != nil {
				errs <- err
				return
			}
		}
	}()
	for i := range 20 {
		src := []string{a, b}[i%2]
		copyFile(t, filepath.Join(src, NodeKeyFile), key)
		copyFile(t, filepath.Join(src, NodeFile), cert)
		if err := r.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	if err := <-errs; err != nil {
		t.Fatalf("handshake during reloads: %v", err)
	}
}

// FuzzParseCAs: any bytes give a pool or an error, never a panic, and a
// pool holds at least one CA certificate.
func FuzzParseCAs(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "tls")
	if err := Init(dir, nil); err != nil {
		f.Fatal(err)
	}
	for _, name := range []string{CAFile, NodeFile, NodeKeyFile} {
		b, _ := os.ReadFile(filepath.Join(dir, name))
		f.Add(b)
	}
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pool, certs, err := ParseCAs(b)
		if err == nil && (pool == nil || len(certs) == 0) {
			t.Fatal("no error and no certificate")
		}
	})
}

// FuzzParseKeyPair: any certificate and key bytes give a pair or an error.
func FuzzParseKeyPair(f *testing.F) {
	dir := filepath.Join(f.TempDir(), "tls")
	if err := Init(dir, nil); err != nil {
		f.Fatal(err)
	}
	cert, _ := os.ReadFile(filepath.Join(dir, NodeFile))
	key, _ := os.ReadFile(filepath.Join(dir, NodeKeyFile))
	f.Add(cert, key)
	f.Add(key, cert)
	f.Add(cert, cert)
	now := time.Now()
	f.Fuzz(func(t *testing.T, cert, key []byte) {
		c, err := ParseKeyPair(cert, key, now)
		if err == nil && (c == nil || c.Leaf == nil || now.After(c.Leaf.NotAfter)) {
			t.Fatal("a pair without a valid leaf")
		}
	})
}
