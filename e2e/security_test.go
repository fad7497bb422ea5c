package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/quorumkv/quorumkv/internal/devcluster"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/tlsconf"
	"github.com/quorumkv/quorumkv/transport"
)

// Issue 13, "Must hold": each attack of the issue, tried on real agent
// processes.

// Tokens of the principals every secure test cluster knows.
const (
	tokRead  = "read-token-0123456789abcdef"
	tokWrite = "write-token-0123456789abcdef"
	tokAdmin = "admin-token-0123456789abcdef"
)

// tokenFile is the token file of secureCluster's agents.
const tokenFile = "# test principals\nreader read " + tokRead + "\nwriter write " + tokWrite + "\nops admin " + tokAdmin + "\n"

// secureCluster starts n agents with a token file of a reader, a writer and
// an admin, HTTPS and RESP over TLS (a CA made by tls init), and returns
// them with an HTTPS client that trusts the CA and the CA's path. The
// token file is DIR/tokens of the directory the CA is in.
func secureCluster(t *testing.T, n int) ([]*agent, *http.Client, string) {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte(tokenFile), 0o600); err != nil {
		t.Fatal(err)
	}
	tdir := filepath.Join(dir, "tls")
	if code, _, stderr := cli(t, "", "tls", "init", "--dir", tdir, "--hosts", "127.0.0.1,localhost"); code != 0 {
		t.Fatalf("tls init: exit %d %s", code, stderr)
	}
	ca := filepath.Join(tdir, tlsconf.CAFile)
	as := cluster(t, n, withRESP, withArgs("--tokens", tokens,
		"--tls-cert", filepath.Join(tdir, tlsconf.NodeFile), "--tls-key", filepath.Join(tdir, tlsconf.NodeKeyFile)),
		func(cfg *devcluster.Config) { cfg.CAFile, cfg.Token = ca, tokRead })
	tc, err := tlsconf.NewClientConfig(tlsconf.ClientConfig{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	return as, &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil, TLSClientConfig: tc}}, ca
}

// sdo is doWith with a bearer token ("" sends none).
func sdo(t *testing.T, hc *http.Client, method, url, token string, body []byte, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	h := map[string]string{}
	for k, v := range header {
		h[k] = v
	}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	return doWith(t, hc, method, url, body, h)
}

// No token: 401; a read token writing: 403; a write token on an admin
// call: 403; a foreign Origin or Host: 403; ';' in the query: 400; values
// served as inert bytes; admin actions logged with the principal; plain
// HTTP to the HTTPS port gets no answer; the CLI takes the token and CA.
func TestSecurityHTTP(t *testing.T) {
	as, hc, ca := secureCluster(t, 2)
	base := "https://" + as[0].http
	for _, tc := range []struct {
		name, method, path, token string
		header                    map[string]string
		want                      int
	}{
		{"healthz is open", "GET", "/healthz", "", nil, 200},
		{"no token", "GET", "/kv/k1", "", nil, 401},
		{"unknown token", "GET", "/kv/k1", "not-a-token", nil, 401},
		{"no token on status", "GET", "/status", "", nil, 401},
		{"read token writes", "PUT", "/kv/k1", tokRead, nil, 403},
		{"read token deletes", "DELETE", "/kv/k1", tokRead, nil, 403},
		{"write token writes", "PUT", "/kv/k1", tokWrite, nil, 204},
		{"read token reads", "GET", "/kv/k1", tokRead, nil, 200},
		{"write token leaves", "POST", "/admin/leave", tokWrite, nil, 403},
		{"write token removes", "POST", "/admin/remove?node=n2&force=true", tokWrite, nil, 403},
		{"admin removes an unknown member", "POST", "/admin/remove?node=nX", tokAdmin, nil, 404},
		{"cross-origin text/plain POST", "POST", "/kv/k2", tokWrite, map[string]string{"Origin": "https://evil.example", "Content-Type": "text/plain"}, 403},
		{"cross-site fetch", "PUT", "/kv/k2", tokWrite, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"rebound Host", "GET", "/kv/k1", tokRead, map[string]string{"Host": "evil.example"}, 403},
		{"semicolon query", "PUT", "/kv/k2?w=2;x=1", tokWrite, nil, 400},
	} {
		status, _, body := sdo(t, hc, tc.method, base+tc.path, tc.token, []byte("v1"), tc.header)
		if status != tc.want {
			t.Errorf("%s: %s %s: %d %s, want %d", tc.name, tc.method, tc.path, status, body, tc.want)
		}
	}
	status, h, body := sdo(t, hc, "GET", base+"/kv/k1", tokRead, nil, nil)
	if status != 200 || string(body) != "v1" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != "sandbox" {
		t.Fatalf("value: %d %q, headers %v; want v1 served with nosniff and CSP sandbox", status, body, h)
	}
	waitFor(t, 5*time.Second, "the admin call in n1's log with its principal", func() bool {
		return as[0].logContains(`msg="admin action"`) && as[0].logContains(`principal=ops`)
	}, as[0])
	// Plain HTTP to the HTTPS port is not served.
	if status, _, _ := do(t, "GET", "http://"+as[0].http+"/kv/k1", nil, nil); status == 200 {
		t.Fatal("plain HTTP to the TLS port served a value")
	}
	// SIGHUP re-reads the token file: a new principal works at once; a bad
	// file is refused and the set in force stays.
	tokens := filepath.Join(filepath.Dir(filepath.Dir(ca)), "tokens")
	const tokLate = "late-token-0123456789abcdef"
	hup := func(content string) {
		t.Helper()
		if err := os.WriteFile(tokens, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Kill(as[0].pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	if status, _, _ := sdo(t, hc, "GET", base+"/kv/k1", tokLate, nil, nil); status != 401 {
		t.Fatalf("a token not in the file yet: %d", status)
	}
	hup(tokenFile + "late read " + tokLate + "\n")
	waitFor(t, 10*time.Second, "SIGHUP to add the new principal", func() bool {
		status, _, _ := sdo(t, hc, "GET", base+"/kv/k1", tokLate, nil, nil)
		return status == 200
	}, as[0])
	hup("late read " + tokLate + "\nthis line is not a principal\n")
	waitFor(t, 10*time.Second, "the bad file's refusal in the log", func() bool {
		return as[0].logContains("token file not reloaded")
	}, as[0])
	if status, _, _ := sdo(t, hc, "GET", base+"/kv/k1", tokRead, nil, nil); status != 200 {
		t.Fatalf("after a bad token file, the set in force changed: reader %d", status)
	}

	// The CLI: https:// addresses, QUORUMKV_CACERT and QUORUMKV_TOKEN.
	env := []string{"QUORUMKV_ADDR=https://" + as[0].http, "QUORUMKV_CACERT=" + ca}
	if code, out, stderr := cliEnv(t, append(env, "QUORUMKV_TOKEN="+tokRead), "", "get", "k1"); code != 0 || out != "v1" {
		t.Fatalf("quorumkv get with a read token: exit %d %q %s", code, out, stderr)
	}
	if code, _, stderr := cliEnv(t, append(env, "QUORUMKV_TOKEN="+tokRead), "", "put", "k1", "v2"); code != 2 || !strings.Contains(stderr, "403") {
		t.Fatalf("quorumkv put with a read token: exit %d %s, want 2 and 403", code, stderr)
	}
	if code, _, stderr := cliEnv(t, env, "", "get", "k1"); code != 2 || !strings.Contains(stderr, "401") {
		t.Fatalf("quorumkv get without a token: exit %d %s, want 2 and 401", code, stderr)
	}
	if code, _, stderr := cliEnv(t, []string{"QUORUMKV_ADDR=https://" + as[0].http, "QUORUMKV_TOKEN=" + tokRead}, "", "get", "k1"); code == 0 || !strings.Contains(stderr, "certificate") {
		t.Fatalf("quorumkv get without the CA: exit %d %s, want a certificate error", code, stderr)
	}
}

// A context is accepted only as its cluster signed it: altered, or signed
// by a cluster with another secret, it is refused with 400, and the
// write does not happen.
func TestSecurityForgedContexts(t *testing.T) {
	a := cluster(t, 1)
	b := cluster(t, 1, func(cfg *devcluster.Config) { cfg.Secret = "another-cluster-secret" })
	for _, x := range []*agent{a[0], b[0]} {
		if status, _, body := do(t, "PUT", x.url("/kv/ctx"), []byte("v1"), nil); status != 204 {
			t.Fatalf("%s put: %d %s", x.id, status, body)
		}
	}
	status, h, _ := do(t, "GET", a[0].url("/kv/ctx"), nil, nil)
	ctx := h.Get(hContext)
	if status != 200 || ctx == "" {
		t.Fatalf("get: %d, context %q", status, ctx)
	}
	tok, mac, _ := strings.Cut(ctx, ".")
	flipped := []byte(tok)
	flipped[len(flipped)-2] ^= 1
	for name, c := range map[string]string{
		"another cluster's": ctx, // sent to b
		"altered":           string(flipped) + "." + mac,
		"unsigned":          tok,
	} {
		target := a[0]
		if name == "another cluster's" {
			target = b[0]
		}
		status, _, body := do(t, "PUT", target.url("/kv/ctx"), []byte("forged"), map[string]string{hContext: c})
		if status != 400 {
			t.Errorf("%s context: %d %s, want 400", name, status, body)
		}
	}
	for _, x := range []*agent{a[0], b[0]} {
		if status, _, body := do(t, "GET", x.url("/kv/ctx"), nil, nil); status != 200 || string(body) != "v1" {
			t.Fatalf("%s after forged writes: %d %q, want v1 alone", x.id, status, body)
		}
	}
	// The genuine context supersedes.
	if status, _, body := do(t, "PUT", a[0].url("/kv/ctx"), []byte("v2"), map[string]string{hContext: ctx}); status != 204 {
		t.Fatalf("write with the genuine context: %d %s", status, body)
	}
}

// recorder is a TCP proxy on 127.0.0.1 that forwards to one address and
// keeps every byte it forwards, both ways.
type recorder struct {
	ln  net.Listener
	mu  sync.Mutex
	buf bytes.Buffer
	wg  sync.WaitGroup
}

func newRecorder(t *testing.T, to string) *recorder {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			for _, p := range [][2]net.Conn{{c, s}, {s, c}} {
				r.wg.Add(1)
				go func(dst, src net.Conn) {
					defer r.wg.Done()
					_, _ = io.Copy(dst, io.TeeReader(src, r))
					dst.Close()
					src.Close()
				}(p[0], p[1])
			}
		}
	}()
	t.Cleanup(func() { ln.Close(); r.wg.Wait() })
	return r
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(p)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// ringPartitions asks agent a for its cluster's partition count Q (fixed at
// cluster birth), which a key's address depends on.
func ringPartitions(t *testing.T, a *agent) int {
	t.Helper()
	var body struct {
		Partitions int `json:"partitions"`
	}
	status, _, b := do(t, "GET", a.url("/cluster/ring"), nil, nil)
	if status != 200 || json.Unmarshal(b, &body) != nil || body.Partitions <= 0 {
		t.Fatalf("%s ring: %d %s", a.id, status, b)
	}
	return body.Partitions
}

// rpcRead asks the agent at addr for its copy of key over the node-to-node
// transport, as a peer holding secret, addressing the key for a ring of q
// partitions.
func rpcRead(t *testing.T, addr, secret, key string, q int) ([]byte, error) {
	cfg := transport.DefaultConfig()
	cfg.NodeID, cfg.ListenAddr, cfg.Secret = "probe", "127.0.0.1:0", []byte(secret)
	cfg.Logger = nil
	tr, err := transport.Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	rc := ring.LegacyConfig()
	rc.Partitions = q
	r, err := ring.New(rc, []ring.Member{{ID: "n1"}})
	if err != nil {
		t.Fatal(err)
	}
	k := r.KeyOf([]byte(key))
	body, err := (&wire.ReadRequest{Partition: k.Partition, Hash: k.Hash, Key: k.Key}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	reply, err := tr.Call(ctx, addr, transport.Method(wire.MethodRead), body)
	if err != nil {
		return nil, err
	}
	var res wire.ReadResponse
	if err := res.Decode(reply); err != nil {
		t.Fatal(err)
	}
	return res.Set, nil
}

// Node-to-node traffic: a peer with the secret reads a replica's copy
// through a recording proxy, and the recorded bytes hold no trace of the
// value, while the decoded reply does; a process without the secret (or
// with another) gets no answer at all. (A joiner with another secret or
// none staying out of the cluster is TestAgentSecretMismatch.)
func TestSecurityNodeToNodeWire(t *testing.T) {
	as := cluster(t, 2)
	marker := "WIRE-MARKER-the-stored-value-7f3a"
	if status, _, body := do(t, "PUT", as[0].url("/kv/wire?w=2"), []byte(marker), nil); status != 204 {
		t.Fatalf("put: %d %s", status, body)
	}
	q := ringPartitions(t, as[1])
	rec := newRecorder(t, as[1].rpc)
	set, err := rpcRead(t, rec.ln.Addr().String(), "e2e-secret", "wire", q)
	if err != nil {
		t.Fatalf("read over RPC with the secret: %v", err)
	}
	if !bytes.Contains(set, []byte(marker)) {
		t.Fatalf("the replica's copy does not hold the value (%d bytes): the check below would prove nothing", len(set))
	}
	got := rec.bytes()
	if len(got) == 0 || bytes.Contains(got, []byte(marker)) || bytes.Contains(got, []byte("WIRE-MARKER")) {
		t.Fatalf("recorded %d bytes between the peer and n2; the value in clear: %v", len(got), bytes.Contains(got, []byte("WIRE-MARKER")))
	}
	for _, secret := range []string{"", "not-the-secret"} {
		if _, err := rpcRead(t, as[1].rpc, secret, "wire", q); err == nil {
			t.Fatalf("a peer with secret %q read a replica's copy", secret)
		}
	}
}

// Protected mode: a listener beyond loopback without a secret, or a
// client port beyond loopback without tokens or client certificates, is
// refused before anything listens (exit 2, naming the flag).
func TestSecurityProtectedMode(t *testing.T) {
	dir := t.TempDir()
	base := []string{"agent", "--node-id", "n1", "--data-dir", filepath.Join(dir, "d"), "--advertise", "127.0.0.1",
		"--http", "127.0.0.1:0", "--rpc", "127.0.0.1:0", "--gossip", "127.0.0.1:0"}
	for _, tc := range []struct {
		name  string
		env   []string
		args  []string
		want  string
		wants string
	}{
		{"http without secret", nil, []string{"--http", "0.0.0.0:0"}, "--http 0.0.0.0:0", "--secret"},
		{"rpc without secret", nil, []string{"--rpc", "0.0.0.0:0"}, "--rpc 0.0.0.0:0", "--secret"},
		{"http without tokens", []string{"QUORUMKV_SECRET=s"}, []string{"--http", "0.0.0.0:0"}, "--http 0.0.0.0:0", "--tokens FILE or --tls-client-ca FILE"},
		{"resp without tokens", []string{"QUORUMKV_SECRET=s"}, []string{"--resp", "0.0.0.0:0"}, "--resp 0.0.0.0:0", "--tokens FILE or --tls-client-ca FILE"},
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		cmd := exec.CommandContext(ctx, bin, append(append([]string{}, base...), tc.args...)...)
		cmd.Env = append(cleanEnv(), tc.env...)
		out, err := cmd.CombinedOutput()
		cancel()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) ||
			!strings.Contains(string(out), "protected mode") || !strings.Contains(string(out), tc.wants) || !strings.Contains(string(out), "--insecure") {
			t.Errorf("%s: %v\n%s\nwant exit 2 naming %s and %s", tc.name, err, out, tc.want, tc.wants)
		}
	}
}

// dev --secure: TLS and an admin token, printed as exports that work.
func TestDevSecure(t *testing.T) {
	d := startDev(t, cleanEnv(), "--secure", "--nodes", "1", "--dir", t.TempDir())
	var env []string
	for _, l := range strings.Split(d.text, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "export "); ok {
			env = append(env, v)
		}
	}
	if len(env) != 3 || !strings.Contains(env[0], "https://") {
		t.Fatalf("exports %q: want QUORUMKV_ADDR with https:// addresses, QUORUMKV_CACERT and QUORUMKV_TOKEN", env)
	}
	if code, _, stderr := cliEnv(t, env, "", "put", "greeting", "hello", "--w", "1"); code != 0 {
		t.Fatalf("put with the printed exports: exit %d %s", code, stderr)
	}
	if code, _, stderr := cliEnv(t, env[:2], "", "get", "greeting"); code != 2 || !strings.Contains(stderr, "401") {
		t.Fatalf("get without the token: exit %d %s, want 401", code, stderr)
	}
}

// RESP over TLS with tokens: NOAUTH before AUTH, NOPERM for a read token's
// write, and go-redis with a username and password works; an HTTP request
// sent to a RESP port is closed unanswered and its body never runs.
func TestSecurityRESP(t *testing.T) {
	as, _, ca := secureCluster(t, 1)
	tc, err := tlsconf.NewClientConfig(tlsconf.ClientConfig{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	anon := redis.NewClient(&redis.Options{Addr: as[0].resp, TLSConfig: tc, Protocol: 2, DisableIdentity: true, MaxRetries: -1})
	t.Cleanup(func() { anon.Close() })
	if err := anon.Set(t.Context(), "r1", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOAUTH") {
		t.Fatalf("SET before AUTH: %v, want NOAUTH", err)
	}
	reader := redis.NewClient(&redis.Options{Addr: as[0].resp, TLSConfig: tc, Username: "reader", Password: tokRead, MaxRetries: -1})
	t.Cleanup(func() { reader.Close() })
	if err := reader.Set(t.Context(), "r1", "v", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "NOPERM") {
		t.Fatalf("SET with a read token: %v, want NOPERM", err)
	}
	writer := redis.NewClient(&redis.Options{Addr: as[0].resp, TLSConfig: tc, Username: "writer", Password: tokWrite, MaxRetries: -1})
	t.Cleanup(func() { writer.Close() })
	if err := writer.Set(t.Context(), "r1", "v", 0).Err(); err != nil {
		t.Fatalf("SET with a write token: %v", err)
	}
	if v, err := reader.Get(t.Context(), "r1").Result(); err != nil || v != "v" {
		t.Fatalf("GET with a read token: %q %v", v, err)
	}
	// Plain TCP to the TLS port is not served either.
	plain := redis.NewClient(&redis.Options{Addr: as[0].resp, Username: "writer", Password: tokWrite, MaxRetries: -1, DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second})
	t.Cleanup(func() { plain.Close() })
	if err := plain.Ping(t.Context()).Err(); err == nil {
		t.Fatal("plain RESP to the TLS port was answered")
	}

	// Cross-protocol, on a RESP port without TLS.
	pa := cluster(t, 1, withRESP)
	c, err := net.DialTimeout("tcp", pa[0].resp, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: 17\r\n\r\nSET pwned yes\r\n"); err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Fatalf("HTTP request to the RESP port: read %q, %v; want the connection closed unanswered", b, err)
	}
	if status, _, _ := do(t, "GET", pa[0].url("/kv/pwned"), nil, nil); status != 404 {
		t.Fatalf("the HTTP body's command ran: GET pwned %d", status)
	}
	waitFor(t, 5*time.Second, "the attack in the log", func() bool { return pa[0].logContains("possible SECURITY ATTACK") }, pa[0])
}
