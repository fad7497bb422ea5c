package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/devcluster"
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
	if !agentsRace() {
		// Compiled as deploy/build-image.sh compiles the image's binary
		// (static, -trimpath), so the Docker tests' image builds find
		// every package in the build cache and only link: on a cold
		// cache the image build took 42 s of TestDockerFaults otherwise.
		// It is also the binary users run in containers.
		build.Args = slices.Insert(build.Args, 2, "-trimpath")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
	}
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build quorumkv: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// agent is one agent of a cluster the test started: an index into its
// devcluster.Cluster (internal/devcluster, the process manager behind
// quorumkv dev and bench), the one harness for real agent processes.
type agent struct {
	t  *testing.T
	c  *devcluster.Cluster
	i  int
	id string
	// Addresses and paths, fixed for the agent's life (a restart keeps
	// them).
	http, rpc, gossip, resp string
	dataDir, logPath        string
}

// cluster starts n agents of the binary under test with --profile local
// and debug logs (adjust changes the devcluster config before the start:
// RESP listeners, more agent flags) and waits until every agent lists
// every one alive. Agents that exit during start because a free port was
// taken meanwhile are started again on new ports by devcluster. The test's
// cleanup stops them (SIGTERM, then SIGKILL at once) and, when the test
// failed, logs the last lines of each agent's log.
func cluster(t *testing.T, n int, adjust ...func(*devcluster.Config)) []*agent {
	t.Helper()
	c := newCluster(t, n, adjust...)
	if err := c.Start(t.Context()); err != nil {
		t.Fatalf("start %d agents: %v", n, err)
	}
	return agentsOf(t, c)
}

// newCluster prepares a cluster without starting it (see cluster).
func newCluster(t *testing.T, n int, adjust ...func(*devcluster.Config)) *devcluster.Cluster {
	t.Helper()
	cfg := devcluster.DefaultConfig()
	cfg.Exe, cfg.Dir, cfg.Nodes = bin, t.TempDir(), n
	cfg.Secret = "e2e-secret"
	// A race-built agent stops at its first data race (exit status 66).
	cfg.Env = append(cfg.Env, "GORACE=halt_on_error=1")
	cfg.AgentArgs = []string{"--log-level", "debug"}
	cfg.StartTimeout, cfg.JoinTimeout = 30*time.Second, 30*time.Second
	for _, f := range adjust {
		f(&cfg)
	}
	c, err := devcluster.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopNow, cancel := context.WithCancel(context.Background())
		cancel()
		c.Stop(stopNow)
		// A race-built agent (agentsRace) stops at its first data race
		// (GORACE halt_on_error) and says where in its log.
		for _, a := range c.Agents() {
			if b, err := os.ReadFile(a.LogPath); err == nil && strings.Contains(string(b), "WARNING: DATA RACE") {
				t.Errorf("%s: the race detector reported a data race (log %s)", a.ID, a.LogPath)
			}
		}
		if t.Failed() {
			for i, a := range c.Agents() {
				if tail, err := c.Tail(i, 60); err == nil {
					t.Logf("--- last lines of %s's log:\n%s", a.ID, tail)
				}
			}
		}
	})
	return c
}

// agentsOf wraps c's agents (their addresses must be set: Start or Prepare).
func agentsOf(t *testing.T, c *devcluster.Cluster) []*agent {
	var as []*agent
	for _, a := range c.Agents() {
		as = append(as, &agent{t: t, c: c, i: a.Index, id: a.ID, http: a.HTTP, rpc: a.RPC, gossip: a.Gossip, resp: a.RESP,
			dataDir: a.DataDir, logPath: a.LogPath})
	}
	return as
}

func withRESP(cfg *devcluster.Config) { cfg.RESP = true }

// withArgs adds agent flags.
func withArgs(args ...string) func(*devcluster.Config) {
	return func(cfg *devcluster.Config) { cfg.AgentArgs = append(cfg.AgentArgs, args...) }
}

func (a *agent) running() bool { return a.c.Agents()[a.i].Running }

// pid is the agent's current (or last) process id.
func (a *agent) pid() int { return a.c.Agents()[a.i].PID }

// kill sends SIGKILL (kill -9) and waits for the process to be gone.
func (a *agent) kill() {
	a.t.Helper()
	if a.running() {
		a.must("kill", a.c.Kill(a.i))
	}
}

// start runs the agent again on its ports and data (after kill or stop),
// joining the others, and waits until it is healthy and every running
// agent sees it alive.
func (a *agent) start() { a.t.Helper(); a.must("start again", a.c.Restart(a.i)) }

// launch starts the agent again on its ports and data, joining join,
// and returns at once (start waits until it is up and seen alive).
func (a *agent) launch(join ...string) { a.t.Helper(); a.must("launch", a.c.StartAgent(a.i, join)) }

// stop sends SIGTERM and returns the exit error once the process is gone
// (nil: exit 0); after timeout it is killed and the error says so.
func (a *agent) stop(timeout time.Duration) error { return a.c.Terminate(a.i, timeout) }

// pause freezes the agent (SIGSTOP); resume unfreezes it.
func (a *agent) pause()  { a.t.Helper(); a.must("pause", a.c.Pause(a.i)) }
func (a *agent) resume() { a.t.Helper(); a.must("resume", a.c.Resume(a.i)) }

// must fails the test when a devcluster operation on a failed.
func (a *agent) must(op string, err error) {
	a.t.Helper()
	if err != nil {
		a.t.Fatalf("%s %s: %v", op, a.id, err)
	}
}

func (a *agent) url(path string) string { return "http://" + a.http + path }

func (a *agent) logContains(s string) bool {
	b, err := os.ReadFile(a.logPath)
	return err == nil && bytes.Contains(b, []byte(s))
}

// addresses returns n agents' worth of free loopback addresses (HTTP, RPC
// and gossip, free for TCP and UDP), picked by devcluster as for a cluster,
// for tests that start agents by hand.
func addresses(t *testing.T, n int) []devcluster.Agent {
	t.Helper()
	c := newCluster(t, n)
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	return c.Agents()
}

// proc is one process of the binary that a test starts by hand (an agent
// with settings of its own), its output in a log file. The test's cleanup
// kills it and, when the test failed, logs the end of its log.
type proc struct {
	t       *testing.T
	name    string // for messages about it
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	err     error // valid once exited is closed
}

// startProc runs the binary with args and env.
func startProc(t *testing.T, logPath string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	return startCmd(t, strings.Join(args[:min(len(args), 1)], " "), logPath, cmd)
}

// startCmd runs cmd (an agent in a network namespace, say) as a proc named
// name, its output in logPath.
func startCmd(t *testing.T, name, logPath string, cmd *exec.Cmd) *proc {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p := &proc{t: t, name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
				t.Logf("--- last lines of %s:\n%s", logPath, strings.Join(lines[max(0, len(lines)-40):], "\n"))
			}
		}
	})
	return p
}

func (p *proc) running() bool { return !stopped(p.exited) }

func (p *proc) kill() {
	if p.running() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// stop sends SIGTERM and returns the exit error once the process is gone.
func (p *proc) stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(timeout)
}

// wait returns the exit error once the process is gone, or kills it after
// timeout.
func (p *proc) wait(timeout time.Duration) error {
	select {
	case <-p.exited:
		return p.err
	case <-time.After(timeout):
		p.kill()
		return fmt.Errorf("still running after %s", timeout)
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// agentsRace reports whether the agents' binary is built with -race: only
// with QUORUMKV_E2E_RACE=1 and this test binary itself race-built. The
// real-process suite grew past 20 minutes with race-built agents on a
// 2-core machine (and their memory, about 2x, broke the RSS bounds the
// hostile tests assert), so by default the agents run as users run them,
// and the node's code is race-checked by its in-process cluster tests
// (node/, node/nodetest) under go test -race.
func agentsRace() bool {
	return raceBuild && os.Getenv("QUORUMKV_E2E_RACE") == "1"
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

// watched is a process a wait gives up on when it exits: an *agent of a
// cluster, or a *proc.
type watched interface {
	running() bool
	label() string
}

func (a *agent) label() string { return a.id }
func (p *proc) label() string  { return p.name }

// waitFor polls cond until it holds, failing the test after timeout. It
// also fails early when one of the watched agents exited.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool, watch ...*agent) {
	t.Helper()
	if err := poll(timeout, what, cond, watch...); err != nil {
		t.Fatal(err)
	}
}

// waitForProcs is waitFor watching processes started by hand.
func waitForProcs(t *testing.T, timeout time.Duration, what string, cond func() bool, watch ...*proc) {
	t.Helper()
	ws := make([]watched, len(watch))
	for i, p := range watch {
		ws[i] = p
	}
	if err := pollWatched(timeout, what, cond, ws); err != nil {
		t.Fatal(err)
	}
}

// errExited reports that a watched agent exited while poll waited.
var errExited = errors.New("exited")

func poll(timeout time.Duration, what string, cond func() bool, watch ...*agent) error {
	ws := make([]watched, len(watch))
	for i, a := range watch {
		ws[i] = a
	}
	return pollWatched(timeout, what, cond, ws)
}

func pollWatched(timeout time.Duration, what string, cond func() bool, watch []watched) error {
	deadline := time.Now().Add(timeout)
	for wait := 5 * time.Millisecond; ; wait = min(wait*2, 100*time.Millisecond) {
		if cond() {
			return nil
		}
		for _, a := range watch {
			if !a.running() {
				return fmt.Errorf("waiting for %s: %s %w", what, a.label(), errExited)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(wait)
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
	return doWith(t, httpClient, method, url, body, header)
}

// doWith is do over hc (an HTTPS client, say). A "Host" entry of header
// sets the request's Host.
func doWith(t *testing.T, hc *http.Client, method, url string, body []byte, header map[string]string) (int, http.Header, []byte) {
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
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := hc.Do(req)
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
	return cliEnv(t, nil, stdin, args...)
}

// cliEnv is cli with extra environment entries.
func cliEnv(t *testing.T, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(cleanEnv(), env...)
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
