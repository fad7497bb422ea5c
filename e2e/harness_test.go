package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
)

// bin is the quorumkv binary built by TestMain.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quorumkv-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = filepath.Join(dir, "quorumkv")
	args := []string{"build", "-o", bin}
	if agentsRace() {
		// The agents are race-checked too: a race makes one exit at once
		// (GORACE halt_on_error, see cleanEnv), which fails the test that
		// watches it, and its log says where.
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, "github.com/quorumkv/quorumkv/cmd/quorumkv")...)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build quorumkv: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agent is one `quorumkv agent` process.
type agent struct {
	t                 *testing.T
	id                string
	dataDir, logPath  string
	http, rpc, gossip string
	join              []string
	cmd               *exec.Cmd
	exited            chan struct{}
	exitErr           error
}

// newAgent prepares an agent with free ports and its own data directory;
// start runs it.
func newAgent(t *testing.T, id string) *agent {
	t.Helper()
	dir := t.TempDir()
	a := &agent{t: t, id: id, dataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, id+".log"),
		http: freeTCP(t), rpc: freeTCP(t), gossip: freeTCPUDP(t)}
	t.Cleanup(func() {
		a.kill()
		if a.logContains("WARNING: DATA RACE") {
			t.Errorf("%s: the race detector reported a data race (log %s)", a.id, a.logPath)
		}
		if t.Failed() {
			a.dumpLog()
		}
	})
	return a
}

// givenPorts holds every address freeTCP handed out in this test binary:
// a port closed after probing may be handed out again by the kernel, and
// two agents (or two listeners of one) on one port fail to start.
var givenPorts struct {
	sync.Mutex
	m map[string]bool
}

func freeTCP(t *testing.T) string {
	t.Helper()
	givenPorts.Lock()
	defer givenPorts.Unlock()
	if givenPorts.m == nil {
		givenPorts.m = make(map[string]bool)
	}
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		if !givenPorts.m[addr] {
			givenPorts.m[addr] = true
			return addr
		}
	}
	t.Fatal("no loopback port that was not handed out before, in 50 tries")
	return ""
}

// freeTCPUDP finds a port free for TCP and UDP (memberlist binds both).
func freeTCPUDP(t *testing.T) string {
	t.Helper()
	for range 20 {
		addr := freeTCP(t)
		if pc, err := net.ListenPacket("udp", addr); err == nil {
			pc.Close()
			return addr
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}

// start runs the agent (again, after a kill, on the same ports and data).
func (a *agent) start() {
	a.t.Helper()
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		a.t.Fatal(err)
	}
	defer logf.Close()
	args := []string{"agent", "--node-id", a.id, "--data-dir", a.dataDir, "--http", a.http, "--rpc", a.rpc,
		"--gossip", a.gossip, "--profile", "local", "--log-level", "debug"}
	if len(a.join) > 0 {
		args = append(args, "--join", strings.Join(a.join, ","))
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(cleanEnv(), "QUORUMKV_SECRET=e2e-secret")
	if err := cmd.Start(); err != nil {
		a.t.Fatal(err)
	}
	a.cmd, a.exited = cmd, make(chan struct{})
	go func() {
		a.exitErr = cmd.Wait()
		close(a.exited)
	}()
}

// agentsRace reports whether the binary is built with -race: when this
// test binary is (go test -race, as CI runs it), unless QUORUMKV_E2E_RACE
// says otherwise (1 or 0).
func agentsRace() bool {
	switch os.Getenv("QUORUMKV_E2E_RACE") {
	case "1":
		return true
	case "0":
		return false
	}
	return raceBuild
}

// cleanEnv is the environment without QUORUMKV_ variables, so a developer's
// settings cannot change what a test runs. A race-built binary stops at
// its first data race (exit status 66) instead of running on.
func cleanEnv() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "QUORUMKV_") && !strings.HasPrefix(kv, "GORACE=") {
			out = append(out, kv)
		}
	}
	return append(out, "GORACE=halt_on_error=1")
}

func (a *agent) running() bool {
	if a.cmd == nil {
		return false
	}
	select {
	case <-a.exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (a *agent) kill() {
	if !a.running() {
		return
	}
	_ = a.cmd.Process.Kill()
	<-a.exited
}

// stop sends SIGTERM and returns the exit error once the process is gone.
func (a *agent) stop(timeout time.Duration) error {
	a.t.Helper()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.exited:
		return a.exitErr
	case <-time.After(timeout):
		a.kill()
		return fmt.Errorf("%s did not exit within %s of SIGTERM", a.id, timeout)
	}
}

func (a *agent) url(path string) string { return "http://" + a.http + path }

func (a *agent) dumpLog() {
	b, err := os.ReadFile(a.logPath)
	if err != nil {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	a.t.Logf("--- last lines of %s's log:\n%s", a.id, strings.Join(lines, "\n"))
}

func (a *agent) logContains(s string) bool {
	b, err := os.ReadFile(a.logPath)
	return err == nil && bytes.Contains(b, []byte(s))
}

// waitFor polls cond until it holds, failing the test after timeout. It
// also fails early when one of the watched agents exited.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, watch ...*agent) {
	t.Helper()
	if err := poll(timeout, what, cond, watch...); err != nil {
		t.Fatal(err)
	}
}

// errExited reports that a watched agent exited while poll waited.
var errExited = errors.New("exited")

func poll(timeout time.Duration, what string, cond func() bool, watch ...*agent) error {
	deadline := time.Now().Add(timeout)
	for wait := 5 * time.Millisecond; ; wait = min(wait*2, 100*time.Millisecond) {
		if cond() {
			return nil
		}
		for _, a := range watch {
			if a.cmd != nil && !a.running() {
				return fmt.Errorf("waiting for %s: %s %w: %v", what, a.id, errExited, a.exitErr)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(wait)
	}
}

// cluster starts n agents; agent i's only seed is agent (i+1) mod n, so
// every agent but the last starts before its seed is up. It waits until
// every agent lists all n alive ("within seconds": 15 s at most, on a
// loaded CI machine). Ports are picked free but can be taken by another
// process before an agent binds them; then the whole cluster is started
// again on new ports.
func cluster(t *testing.T, n int) []*agent {
	t.Helper()
	for attempt := 1; ; attempt++ {
		as := make([]*agent, n)
		for i := range n {
			as[i] = newAgent(t, fmt.Sprintf("n%d", i+1))
		}
		for i, a := range as {
			if n > 1 {
				a.join = []string{as[(i+1)%n].gossip}
			}
		}
		for _, a := range as {
			a.start()
		}
		err := poll(15*time.Second, fmt.Sprintf("%d agents to see each other alive", n), allAlive(as), as...)
		if err == nil {
			return as
		}
		clash := false
		for _, a := range as {
			clash = clash || (!a.running() && a.logContains("address already in use"))
			a.kill()
		}
		if !clash || attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("attempt %d: a port was taken meanwhile (%v); starting again on new ports", attempt, err)
	}
}

// waitAllAlive waits until every agent in as lists every one of them alive.
func waitAllAlive(t *testing.T, as []*agent, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%d agents to see each other alive", len(as)), allAlive(as), as...)
}

func allAlive(as []*agent) func() bool {
	return func() bool {
		for _, a := range as {
			st := memberStates(a)
			for _, b := range as {
				if st[b.id] != "alive" {
					return false
				}
			}
		}
		return true
	}
}

// memberStates is agent a's view: member id to state (nil on error).
func memberStates(a *agent) map[string]string {
	var body struct {
		Members []struct {
			ID    string `json:"id"`
			State string `json:"state"`
		} `json:"members"`
	}
	if status, _, b := do(a.t, http.MethodGet, a.url("/cluster/members"), nil, nil); status != 200 || json.Unmarshal(b, &body) != nil {
		return nil
	}
	out := map[string]string{}
	for _, m := range body.Members {
		out[m.ID] = m.State
	}
	return out
}

var httpClient = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{Proxy: nil}}

// do sends one HTTP request and returns status, headers and body; status 0
// means the request failed (connection refused, timeout).
func do(t *testing.T, method, url string, body []byte, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return 0, nil, []byte(err.Error())
	}
	return res.StatusCode, res.Header, b
}

// cli runs the binary with args and returns exit code, stdout and stderr.
func cli(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = cleanEnv()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("run quorumkv %q: %v", args, err)
	return -1, "", ""
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
