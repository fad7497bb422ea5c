package client_test

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/client"
)

// WithToken sends the bearer token; WithCAFile trusts a server whose
// certificate the system's roots do not, and a bad CA file is an error at
// New, not at the first request.
func TestClientTokenAndCA(t *testing.T) {
	var got string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"members":[]}`))
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pemOf(srv), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := client.New([]string{srv.URL}, client.WithToken("tok-1"), client.WithCAFile(ca))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Members(t.Context()); err != nil {
		t.Fatalf("members over TLS with the CA: %v", err)
	}
	if got != "Bearer tok-1" {
		t.Fatalf("Authorization %q, want the bearer token", got)
	}
	// Without the CA the server's certificate is not trusted.
	plain, err := client.New([]string{srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Members(t.Context()); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("members without the CA: %v, want a certificate error", err)
	}
	if _, err := client.New([]string{srv.URL}, client.WithCAFile(filepath.Join(dir, "missing.pem"))); err == nil {
		t.Fatal("a missing CA file was accepted")
	}
	if _, err := client.New([]string{srv.URL}, client.WithToken("a\nb")); err == nil {
		t.Fatal("a token with a newline was accepted")
	}
}

// pemOf is the PEM of the test server's certificate (self-signed: its own CA).
func pemOf(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}
