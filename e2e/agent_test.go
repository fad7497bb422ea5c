package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAgentConfigSources starts the real binary with settings split across
// a config file, the environment and flags, and checks the precedence
// flag > environment > file from the outside: which id it reports and which
// address it serves on.
func TestAgentConfigSources(t *testing.T) {
	dir := t.TempDir()
	fileHTTP, envHTTP, flagHTTP := freeTCP(t), freeTCP(t), freeTCP(t)
	conf := filepath.Join(dir, "agent.conf")
	body := fmt.Sprintf(`# every setting of the file but http is final
node-id = from-file
data-dir = %q
http = %s
rpc = %s
gossip = %s
profile = local
n = 1
r = 1
w = 1
`, filepath.Join(dir, "data"), fileHTTP, freeTCP(t), freeTCPUDP(t))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "agent.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, "agent", "--http", flagHTTP)
	cmd.Env = append(cleanEnv(), "QUORUMKV_CONFIG="+conf, "QUORUMKV_NODE_ID=from-env",
		"QUORUMKV_HTTP="+envHTTP, "QUORUMKV_SECRET=e2e-secret")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agent{t: t, id: "from-env", logPath: logPath, http: flagHTTP, cmd: cmd, exited: make(chan struct{})}
	go func() {
		a.exitErr = cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		a.kill()
		if t.Failed() {
			a.dumpLog()
		}
	})
	waitFor(t, 20*time.Second, "the agent to answer on the flag's address", func() bool {
		status, _, _ := do(t, "GET", a.url("/healthz"), nil, nil)
		return status == 200
	}, a)
	status, _, b := do(t, "GET", a.url("/status"), nil, nil)
	var st struct {
		Node     string         `json:"node"`
		Defaults map[string]any `json:"defaults"`
	}
	if status != 200 || json.Unmarshal(b, &st) != nil {
		t.Fatalf("status: %d %s", status, b)
	}
	if st.Node != "from-env" || st.Defaults["n"] != 1.0 || st.Defaults["timeout"] != "2s" {
		t.Fatalf("status %+v: want id from the environment, n=1 from the file, the local profile's 2s timeout", st)
	}
	for _, addr := range []string{fileHTTP, envHTTP} {
		if status, _, _ := do(t, "GET", "http://"+addr+"/healthz", nil, nil); status != 0 {
			t.Errorf("something answers on %s, which the flag overrode", addr)
		}
	}
	// The defaults from the file apply to requests: n=1 on a one-node ring.
	if status, _, b := do(t, "PUT", a.url("/kv/k"), []byte("v"), nil); status != 204 {
		t.Fatalf("put with the file's defaults: %d %s", status, b)
	}
	if err := a.stop(20 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v (want exit 0)", err)
	}
}

// TestAgentBadSettings checks that the real binary refuses bad settings with
// exit code 2 and names the setting, before starting anything.
func TestAgentBadSettings(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "--data-dir", dir}, "--node-id is required"},
		{[]string{"agent", "--node-id", "n1"}, "--data-dir is required"},
		{[]string{"agent", "--node-id", "n 1", "--data-dir", dir}, "node id"},
		{[]string{"agent", "--node-id", "n1", "--data-dir", dir, "--r", "3", "--n", "2"}, "r="},
		{[]string{"agent", "--node-id", "n1", "--data-dir", dir, "--gossip", "localhost"}, "gossip address"},
		{[]string{"agent", "--node-id", "n1", "--data-dir", dir, "--log-format", "xml"}, "log format"},
		{[]string{"agent", "--node-id", "n1", "--data-dir", dir, "extra"}, "no arguments"},
	} {
		code, _, errOut := cli(t, "", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
}
