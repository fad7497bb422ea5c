package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/node/nodetest"
)

// --advertise: required when a listener binds a wildcard address, refused
// when itself a wildcard or with a port; the agent exits 2 naming the flag.
func TestAgentAdvertise(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--http", "0.0.0.0:0"}, nil, "--advertise is required: --http 0.0.0.0:0 binds a wildcard address"},
		{[]string{"--gossip", ":0"}, nil, "--advertise is required: --gossip :0"},
		{[]string{"--rpc", "[::]:0"}, nil, "--advertise is required: --rpc [::]:0"},
		{[]string{"--resp", "0.0.0.0:0"}, nil, "--advertise is required: --resp 0.0.0.0:0"},
		{[]string{"--http", "0.0.0.0:0", "--advertise", "0.0.0.0"}, nil, "--advertise (QUORUMKV_ADVERTISE): \"0.0.0.0\" is a wildcard address"},
		{[]string{"--http", "0.0.0.0:0"}, map[string]string{"QUORUMKV_ADVERTISE": "::"}, "--advertise (QUORUMKV_ADVERTISE): \"::\" is a wildcard"},
		{[]string{"--advertise", "n1:7946"}, nil, "without a port"},
		{[]string{"--advertise", ""}, nil, "--advertise (QUORUMKV_ADVERTISE): empty"},
		{[]string{"--advertise", "bad host"}, nil, "--advertise (QUORUMKV_ADVERTISE)"},
	} {
		env := map[string]string{"QUORUMKV_NODE_ID": "n1", "QUORUMKV_DATA_DIR": t.TempDir()}
		for k, v := range tc.env {
			env[k] = v
		}
		code, _, errOut := runCmd(t, env, "", append([]string{"agent"}, tc.args...)...)
		if code != exitBadInput || !strings.Contains(errOut, tc.want) {
			t.Errorf("agent %q %v: exit %d, stderr %q; want exit 2 with %q", tc.args, tc.env, code, errOut, tc.want)
		}
	}
	cfg, _, err := agentConfig(map[string]string{"node-id": "n1", "data-dir": "/d", "http": "0.0.0.0:8080", "advertise": "n1.example"})
	if err != nil || cfg.Advertise != "n1.example" {
		t.Fatalf("advertise with a wildcard bind: %q %v", cfg.Advertise, err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLocalHTTPAddr(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "agent.conf")
	if err := os.WriteFile(conf, []byte("http = 0.0.0.0:9000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.conf")
	if err := os.WriteFile(bad, []byte("colour = blue\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env        map[string]string
		want, fail string
	}{
		{nil, "127.0.0.1:8080", ""},
		{map[string]string{"QUORUMKV_HTTP": "0.0.0.0:18080"}, "127.0.0.1:18080", ""},
		{map[string]string{"QUORUMKV_HTTP": "[::]:18080"}, "127.0.0.1:18080", ""},
		{map[string]string{"QUORUMKV_HTTP": ":18080"}, "127.0.0.1:18080", ""},
		{map[string]string{"QUORUMKV_HTTP": "10.1.2.3:8080"}, "10.1.2.3:8080", ""},
		{map[string]string{"QUORUMKV_ADDR": "10.9.9.9:1"}, "127.0.0.1:8080", ""}, // the client address is not the local node
		{map[string]string{"QUORUMKV_CONFIG": conf}, "127.0.0.1:9000", ""},
		{map[string]string{"QUORUMKV_CONFIG": conf, "QUORUMKV_HTTP": "127.0.0.1:1"}, "127.0.0.1:1", ""},
		{map[string]string{"QUORUMKV_CONFIG": bad}, "", "unknown setting"},
		{map[string]string{"QUORUMKV_CONFIG": filepath.Join(dir, "missing")}, "", "config file"},
		{map[string]string{"QUORUMKV_HTTP": "nohost"}, "", "agent http address"},
	} {
		got, err := localHTTPAddr(func(k string) string { return tc.env[k] })
		switch {
		case tc.fail != "" && (err == nil || !strings.Contains(err.Error(), tc.fail)):
			t.Errorf("%v: %q %v, want an error with %q", tc.env, got, err, tc.fail)
		case tc.fail == "" && (err != nil || got != tc.want):
			t.Errorf("%v: %q %v, want %q", tc.env, got, err, tc.want)
		}
	}
}

func TestHealth(t *testing.T) {
	cl := nodetest.NewCluster(t, 2, nodetest.Options{InMemory: true})
	cl.WaitFor(10*time.Second, "both ready", func() bool {
		return len(cl.Node(0).Ready(t.Context())) == 0 && len(cl.Node(1).Ready(t.Context())) == 0
	})
	addr := strings.TrimPrefix(cl.URL(0), "http://")
	code, out, errOut := runCmd(t, nil, "", "health", "--addr", addr)
	if code != healthOK || !strings.Contains(out, "/readyz: ready") {
		t.Fatalf("ready node: exit %d %q %q", code, out, errOut)
	}
	// The agent's own listen address, as the container's HEALTHCHECK finds it.
	code, out, _ = runCmd(t, map[string]string{"QUORUMKV_HTTP": addr}, "", "health", "--live")
	if code != healthOK || !strings.Contains(out, "/healthz: ok") {
		t.Fatalf("live node via QUORUMKV_HTTP: exit %d %q", code, out)
	}

	if err := cl.Node(1).Leave(t.Context()); err != nil {
		t.Fatal(err)
	}
	left := strings.TrimPrefix(cl.URL(1), "http://")
	code, _, errOut = runCmd(t, nil, "", "health", "--addr", left)
	if code != healthBad || !strings.Contains(errOut, "503 not ready: not on the ring") {
		t.Fatalf("node off the ring: exit %d %q", code, errOut)
	}
	if code, _, _ = runCmd(t, nil, "", "health", "--addr", left, "--live"); code != healthOK {
		t.Fatalf("node off the ring, --live: exit %d, want 0 (it is alive)", code)
	}

	// Nothing listening, and a node that does not answer in time.
	cl.Kill(1)
	if code, _, errOut = runCmd(t, nil, "", "health", "--addr", left); code != healthBad || !strings.Contains(errOut, "refused") {
		t.Fatalf("stopped node: exit %d %q", code, errOut)
	}
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	start := time.Now()
	code, _, errOut = runCmd(t, nil, "", "health", "--addr", strings.TrimPrefix(hang.URL, "http://"), "--timeout", "200ms")
	if code != healthBad || !strings.Contains(errOut, "no answer in time") || time.Since(start) > 5*time.Second {
		t.Fatalf("hung node: exit %d %q after %s", code, errOut, time.Since(start))
	}
	for _, args := range [][]string{{"health", "extra"}, {"health", "--timeout", "0s"}, {"health", "--bogus"}} {
		if code, _, _ := runCmd(t, nil, "", args...); code != exitBadInput {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
