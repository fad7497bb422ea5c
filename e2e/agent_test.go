package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/devcluster"
)

// TestAgentConfigSources starts the real binary with settings split across
// a config file, the environment and flags, and checks the precedence
// flag > environment > file from the outside: which id it reports and which
// address it serves on.
func TestAgentConfigSources(t *testing.T) {
	dir := t.TempDir()
	ports := addresses(t, 3)
	fileHTTP, envHTTP, flagHTTP := ports[0].HTTP, ports[1].HTTP, ports[2].HTTP
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
`, filepath.Join(dir, "data"), fileHTTP, ports[2].RPC, ports[2].Gossip)
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, filepath.Join(dir, "agent.log"), append(cleanEnv(), "QUORUMKV_CONFIG="+conf, "QUORUMKV_NODE_ID=from-env",
		"QUORUMKV_HTTP="+envHTTP, "QUORUMKV_SECRET=e2e-secret"), "agent", "--http", flagHTTP)
	url := func(path string) string { return "http://" + flagHTTP + path }
	waitFor(t, 20*time.Second, "the agent to answer on the flag's address", func() bool {
		if !p.running() {
			t.Fatalf("agent exited: %v", p.err)
		}
		status, _, _ := do(t, "GET", url("/healthz"), nil, nil)
		return status == 200
	})
	status, _, b := do(t, "GET", url("/status"), nil, nil)
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
	if status, _, b := do(t, "PUT", url("/kv/k"), []byte("v"), nil); status != 204 {
		t.Fatalf("put with the file's defaults: %d %s", status, b)
	}
	if err := p.stop(20 * time.Second); err != nil {
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
		{[]string{"agent", "--node-id", "n1", "--data-dir", dir, "--log-format", "xml"}, "--log-format"},
		{[]string{"agent", "--node-id", "n1", "--data-dir", dir, "--hint-max-age", "5d"}, "--hint-max-age 5d must be more than 0 and at most half of --tombstone-grace 7d"},
		{[]string{"agent", "--node-id", "n1", "--data-dir", dir, "--cache-size", "64M"}, "ambiguous"},
		{[]string{"agent", "--node-id", "n1", "--data-dir", dir, "extra"}, "no arguments"},
	} {
		code, _, errOut := cli(t, "", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: exit %d, stderr %q; want exit 2 mentioning %q", tc.args, code, errOut, tc.want)
		}
	}
}

// Issue 19, item 1: an agent whose --rpc address is taken used to panic (a
// nil pointer in the transport's Close) without saying "address in use",
// and its next start warned of an unclean shutdown. It must exit 2 naming
// the flag and the cause, and leave its store cleanly closed.
func TestAgentAddressInUse(t *testing.T) {
	ports := addresses(t, 1)[0]
	held, err := net.Listen("tcp", ports.RPC)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	dir := t.TempDir()
	args := []string{"agent", "--node-id", "n1", "--data-dir", filepath.Join(dir, "data"), "--http", ports.HTTP,
		"--rpc", ports.RPC, "--gossip", ports.Gossip, "--profile", "local"}
	env := append(cleanEnv(), "QUORUMKV_SECRET=e2e-secret")
	p := startProc(t, filepath.Join(dir, "first.log"), env, args...)
	err = p.wait(20 * time.Second)
	var ee *exec.ExitError
	log := p.log()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || strings.Contains(log, "panic") ||
		!strings.Contains(log, "quorumkv: --rpc "+ports.RPC+": address already in use") {
		t.Fatalf("agent on a taken --rpc: %v, output:\n%s\nwant exit 2 naming --rpc and the address in use, no panic", err, log)
	}
	held.Close()
	p = startProc(t, filepath.Join(dir, "second.log"), env, args...)
	waitFor(t, 20*time.Second, "the agent to start on the freed address", func() bool {
		status, _, _ := do(t, "GET", "http://"+ports.HTTP+"/healthz", nil, nil)
		return status == 200 || !p.running()
	})
	if err := p.stop(20 * time.Second); err != nil {
		t.Fatalf("second start: %v\n%s", err, p.log())
	}
	if strings.Contains(p.log(), "did not shut down cleanly") {
		t.Fatalf("the failed start left the store marked unclean:\n%s", p.log())
	}
}

// Issue 19, item 6: a joiner with another secret (or none) used to stay a
// healthy-looking one-member ring forever. Its /healthz must say "cluster
// secret mismatch" (503), its log say so a bounded number of times, and
// the seed's /status warn while staying healthy.
func TestAgentSecretMismatch(t *testing.T) {
	for _, tc := range []struct{ name, env string }{{"another secret", "QUORUMKV_SECRET=not-the-cluster-secret"}, {"no secret", "QUORUMKV_SECRET="}} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, 2, func(cfg *devcluster.Config) {
				cfg.AgentEnv = func(i int) []string {
					if i == 1 {
						return []string{tc.env}
					}
					return nil
				}
			})
			if err := c.Prepare(); err != nil {
				t.Fatal(err)
			}
			as := agentsOf(t, c)
			seed, joiner := as[0], as[1]
			if err := c.StartAgent(0, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.WaitHealthy(t.Context(), 0); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := c.StartAgent(1, []string{seed.gossip}); err != nil {
				t.Fatal(err)
			}
			var body []byte
			waitFor(t, 20*time.Second, "the joiner's /healthz to report the mismatch", func() bool {
				var status int
				status, _, body = do(t, "GET", joiner.url("/healthz"), nil, nil)
				return status == 503 && strings.Contains(string(body), `"code": "secret_mismatch"`)
			}, joiner)
			if !strings.Contains(string(body), "cluster secret mismatch") {
				t.Fatalf("joiner /healthz: %s", body)
			}
			if status, _, b := do(t, "GET", joiner.url("/readyz"), nil, nil); status != 503 || !strings.Contains(string(b), "cluster secret mismatch") {
				t.Fatalf("joiner /readyz: %d %s, want 503 naming the secret mismatch", status, b)
			}
			waitFor(t, 10*time.Second, "the seed's /status to warn", func() bool {
				_, _, st := do(t, "GET", seed.url("/status"), nil, nil)
				return strings.Contains(string(st), "cluster secret mismatch")
			}, seed)
			if status, _, b := do(t, "GET", seed.url("/healthz"), nil, nil); status != 200 {
				t.Fatalf("the seed is unhealthy because a stranger has another secret: %d %s", status, b)
			}
			// Rate-limited: at most one line per 10s on each side, with a
			// join retried every 500ms.
			time.Sleep(3 * time.Second)
			secs := time.Since(start).Seconds()
			for _, a := range []*agent{seed, joiner} {
				b, _ := os.ReadFile(a.logPath)
				n := strings.Count(string(b), `msg="cluster secret mismatch`)
				if n < 1 || float64(n) > secs/10+2 {
					t.Errorf("%s logged %d mismatch lines in %.0fs, want 1 to %.0f", a.id, n, secs, secs/10+2)
				}
			}
		})
	}
}

// Issue 19, item 8: quorumkv version and --version, and the same build in
// /status (and quorumkv status).
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := cli(t, "", args...)
		if code != 0 || !strings.HasPrefix(out, "quorumkv ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("%q: exit %d, %q", args, code, out)
		}
	}
	as := cluster(t, 1)
	_, _, b := do(t, "GET", as[0].url("/status"), nil, nil)
	var st struct {
		Build struct {
			Version, Go string
		} `json:"build"`
	}
	if json.Unmarshal(b, &st) != nil || st.Build.Version == "" || !strings.HasPrefix(st.Build.Go, runtime.Version()) {
		t.Fatalf("/status build: %s", b)
	}
	if code, out, _ := cli(t, "", "status", "--addr", as[0].http); code != 0 || !strings.Contains(out, runtime.Version()) {
		t.Fatalf("quorumkv status: %d\n%s", code, out)
	}
}
