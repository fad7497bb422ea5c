package devcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/nettest"
	"github.com/quorumkv/quorumkv/internal/syncio"
)

// The tests run this test binary itself as the agents: with
// DEVCLUSTER_FAKE_AGENT=1 in its environment, TestMain acts as a tiny
// agent instead of running tests. It serves /healthz, /cluster/members, /cluster/ring
// (every node n1..nN alive, N from DEVCLUSTER_FAKE_NODES) on --http, writes
// its arguments and whether it got a secret to <data-dir>/args, and exits
// on SIGTERM. Knobs, by node id: DEVCLUSTER_FAKE_FAIL (exit 3 at once),
// DEVCLUSTER_FAKE_UNHEALTHY (never answer /healthz with 200),
// DEVCLUSTER_FAKE_IMPOSTOR (answer /healthz with another pid),
// DEVCLUSTER_FAKE_IGNORE_TERM (ignore SIGTERM); each a comma-separated list.
// A fake agent exits as soon as its parent, the test binary whose pid is
// DEVCLUSTER_FAKE_PARENT, is gone (watchParent): a test binary killed by
// -timeout's panic stops no agent, and one that ignores SIGTERM would
// outlive the kernel's parent-death signal (setProcAttr).
func TestMain(m *testing.M) {
	if os.Getenv("DEVCLUSTER_FAKE_AGENT") == "1" {
		os.Exit(fakeAgent(os.Args[1:]))
	}
	os.Exit(m.Run())
}

func fakeAgent(args []string) int {
	watchParent()
	flags := map[string]string{}
	for i := 1; i+1 < len(args); i += 2 {
		flags[strings.TrimPrefix(args[i], "--")] = args[i+1]
	}
	id := flags["node-id"]
	is := func(knob string) bool { return slices.Contains(strings.Split(os.Getenv(knob), ","), id) }
	if is("DEVCLUSTER_FAKE_FAIL") {
		fmt.Println("fake agent failing on purpose")
		return 3
	}
	if err := os.MkdirAll(flags["data-dir"], 0o755); err != nil {
		return 1
	}
	secret := "no"
	if os.Getenv("QUORUMKV_SECRET") != "" {
		secret = "yes"
	}
	leaked := os.Getenv("QUORUMKV_LEAK")
	info := strings.Join(args, " ") + "\nsecret=" + secret + "\nleak=" + leaked + "\n"
	if err := os.WriteFile(filepath.Join(flags["data-dir"], "args"), []byte(info), 0o644); err != nil {
		return 1
	}
	sigs := make(chan os.Signal, 1)
	if is("DEVCLUSTER_FAKE_IGNORE_TERM") {
		signal.Ignore(syscall.SIGTERM)
	} else {
		signal.Notify(sigs, syscall.SIGTERM)
	}
	ln, err := net.Listen("tcp", flags["http"])
	if err != nil {
		fmt.Println("listen:", err)
		return 1
	}
	n, _ := strconv.Atoi(os.Getenv("DEVCLUSTER_FAKE_NODES"))
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		pid := os.Getpid()
		if is("DEVCLUSTER_FAKE_IMPOSTOR") {
			pid++ // answers as some other process would
		}
		if is("DEVCLUSTER_FAKE_UNHEALTHY") {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(map[string]any{"node": id, "pid": pid})
	})
	mux.HandleFunc("/cluster/members", func(w http.ResponseWriter, r *http.Request) {
		type member struct{ ID, State string }
		var body struct{ Members []member }
		for i := 1; i <= n; i++ {
			body.Members = append(body.Members, member{ID: "n" + strconv.Itoa(i), State: "alive"})
		}
		json.NewEncoder(w).Encode(body)
	})
	// No ring change in course: the cluster's start waits for that too.
	mux.HandleFunc("/cluster/ring", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"node": id, "change": nil})
	})
	go http.Serve(ln, mux)
	fmt.Println("node started", id)
	<-sigs
	fmt.Println("node stopping", id)
	return 0
}

// watchParent makes this fake agent exit once its parent is gone: it is
// then reparented, so its parent pid is no longer DEVCLUSTER_FAKE_PARENT
// (checked first at once, in case the parent died before the watch).
func watchParent() {
	parent, err := strconv.Atoi(os.Getenv("DEVCLUSTER_FAKE_PARENT"))
	if err != nil {
		return
	}
	gone := func() bool { return os.Getppid() != parent }
	if gone() {
		os.Exit(4)
	}
	go func() {
		for range time.Tick(100 * time.Millisecond) {
			if gone() {
				fmt.Println("fake agent: parent gone, exiting")
				os.Exit(4)
			}
		}
	}()
}

// fakeEnv is the environment that makes this test binary a fake agent
// watching this process (watchParent), with knobs added.
func fakeEnv(knobs ...string) []string {
	return append([]string{"DEVCLUSTER_FAKE_AGENT=1", "DEVCLUSTER_FAKE_PARENT=" + strconv.Itoa(os.Getpid())}, knobs...)
}

// newCluster returns a started fake cluster of n agents, stopped by the
// test's cleanup.
func newCluster(t *testing.T, n int, adjust func(*Config)) (*Cluster, *syncio.Buffer) {
	t.Helper()
	c, log, err := tryCluster(t, n, adjust)
	if err != nil {
		t.Fatalf("start: %v\nlog:\n%s", err, log)
	}
	return c, log
}

func tryCluster(t *testing.T, n int, adjust func(*Config)) (*Cluster, *syncio.Buffer, error) {
	t.Helper()
	log := &syncio.Buffer{}
	cfg := DefaultConfig()
	cfg.Exe, cfg.Dir, cfg.Nodes = os.Args[0], t.TempDir(), n
	cfg.Env = fakeEnv("DEVCLUSTER_FAKE_NODES=" + strconv.Itoa(n))
	cfg.StartTimeout, cfg.JoinTimeout, cfg.StopTimeout = 10*time.Second, 10*time.Second, 10*time.Second
	cfg.Log, cfg.Prefix = log, "test: "
	if adjust != nil {
		adjust(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	return c, log, c.Start(t.Context())
}

func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

func readArgs(t *testing.T, a Agent) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(a.DataDir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStartAndStop(t *testing.T) {
	t.Setenv("QUORUMKV_LEAK", "must not reach agents")
	c, _ := newCluster(t, 3, func(cfg *Config) { cfg.AgentArgs = []string{"--inject-delay", "exp:1ms"} })
	as := c.Agents()
	seen := map[string]bool{}
	for i, a := range as {
		if a.Index != i || a.ID != "n"+strconv.Itoa(i+1) || a.PID == 0 || !a.Running || a.Paused {
			t.Fatalf("agent %d: %+v", i, a)
		}
		for _, addr := range []string{a.HTTP, a.RPC, a.Gossip} {
			if !strings.HasPrefix(addr, "127.0.0.1:") || seen[addr] {
				t.Fatalf("agent %d: address %q not a fresh loopback port", i, addr)
			}
			seen[addr] = true
		}
		args := readArgs(t, a)
		if !strings.Contains(args, "--inject-delay exp:1ms") || !strings.Contains(args, "secret=yes") || !strings.Contains(args, "leak=\n") {
			t.Fatalf("agent %d args/env:\n%s", i, args)
		}
		hasJoin := strings.Contains(args, "--join "+as[0].Gossip)
		if (i == 0) == hasJoin {
			t.Fatalf("agent %d: join of the first agent's gossip = %v:\n%s", i, hasJoin, args)
		}
	}
	if got := c.HTTPAddrs(); len(got) != 3 || got[1] != as[1].HTTP {
		t.Fatalf("HTTPAddrs = %q", got)
	}
	if n := c.Stop(context.Background()); n != 3 {
		t.Fatalf("Stop = %d, want 3", n)
	}
	for _, a := range as {
		if !gone(a.PID) {
			t.Errorf("%s (pid %d) still exists after Stop", a.ID, a.PID)
		}
		if tl, err := c.Tail(a.Index, 1); err != nil || tl != "node stopping "+a.ID {
			t.Errorf("%s log tail %q, %v: not a clean SIGTERM exit", a.ID, tl, err)
		}
	}
	if n := c.Stop(context.Background()); n != 0 {
		t.Fatalf("second Stop = %d, want 0", n)
	}
	if err := c.Kill(0); !errors.Is(err, ErrStopped) {
		t.Fatalf("Kill after Stop: %v", err)
	}
	noExitReported(t, c, "Stop reported as an unexpected exit")
}

func TestFaults(t *testing.T) {
	c, _ := newCluster(t, 3, nil)
	before := c.Agents()

	// Kill: gone, not reported as unexpected.
	if err := c.Kill(1); err != nil {
		t.Fatal(err)
	}
	if a := c.Agents()[1]; a.Running || !gone(before[1].PID) {
		t.Fatalf("after Kill: %+v", a)
	}
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"kill a dead agent", c.Kill(1)},
		{"pause a dead agent", c.Pause(1)},
		{"restart a running agent", c.Restart(0)},
		{"resume an agent that is not paused", c.Resume(0)},
		{"index out of range", c.Kill(3)},
		{"negative index", c.Restart(-1)},
	} {
		if !errors.Is(tc.err, ErrState) {
			t.Errorf("%s: %v, want ErrState", tc.name, tc.err)
		}
	}

	// Restart: same ports, new process, joins every other agent.
	if err := c.Restart(1); err != nil {
		t.Fatal(err)
	}
	after := c.Agents()[1]
	if !after.Running || after.PID == before[1].PID || after.HTTP != before[1].HTTP || after.Gossip != before[1].Gossip {
		t.Fatalf("after Restart: %+v (before %+v)", after, before[1])
	}
	if args := readArgs(t, after); !strings.Contains(args, "--join "+before[0].Gossip+","+before[2].Gossip) {
		t.Fatalf("restarted agent does not join the others:\n%s", args)
	}

	// Pause and Resume.
	if err := c.Pause(2); err != nil {
		t.Fatal(err)
	}
	if a := c.Agents()[2]; !a.Paused || !a.Running {
		t.Fatalf("after Pause: %+v", a)
	}
	if st := procState(before[2].PID); st != 'T' && st != 't' {
		t.Fatalf("paused agent in state %c, want T", st)
	}
	if err := c.Pause(2); !errors.Is(err, ErrState) {
		t.Fatalf("second Pause: %v", err)
	}
	if err := c.Resume(2); err != nil {
		t.Fatal(err)
	}
	if st := procState(before[2].PID); st == 'T' || st == 't' {
		t.Fatalf("resumed agent still stopped (%c)", st)
	}

	// Stop with an agent paused: it still exits cleanly.
	if err := c.Pause(0); err != nil {
		t.Fatal(err)
	}
	if n := c.Stop(context.Background()); n != 3 {
		t.Fatalf("Stop = %d, want 3", n)
	}
	if tl, _ := c.Tail(0, 1); tl != "node stopping n1" {
		t.Fatalf("paused agent did not get its SIGTERM: log ends %q", tl)
	}
	noExitReported(t, c, "a requested exit was reported")
}

func TestUnexpectedExitIsReported(t *testing.T) {
	c, _ := newCluster(t, 2, nil)
	a := c.Agents()[1]
	if err := syscall.Kill(a.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case x := <-c.Exits():
		if x.Agent.ID != "n2" || x.Agent.PID != a.PID || x.Err == nil {
			t.Fatalf("exit = %+v", x)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit reported within 10s of killing n2 from outside")
	}
}

func TestStartRetriesThenFails(t *testing.T) {
	_, log, err := tryCluster(t, 2, func(cfg *Config) {
		cfg.Env = append(cfg.Env, "DEVCLUSTER_FAKE_FAIL=n2")
		cfg.StartTries = 2
	})
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "2 attempt(s)") {
		t.Fatalf("Start = %v, want n2 exited after 2 attempts", err)
	}
	l := log.String()
	if strings.Count(l, "test: n2 exited during start") != 1 || !strings.Contains(l, "retrying on new ports") ||
		!strings.Contains(l, "fake agent failing on purpose") {
		t.Fatalf("log lacks the retry or the agent's last lines:\n%s", l)
	}
}

func TestStartTimesOutAndHonoursContext(t *testing.T) {
	_, _, err := tryCluster(t, 1, func(cfg *Config) {
		cfg.Env = append(cfg.Env, "DEVCLUSTER_FAKE_UNHEALTHY=n1")
		cfg.StartTimeout = 300 * time.Millisecond
	})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Start of an agent that never gets healthy: %v, want ErrTimeout", err)
	}

	cfg := DefaultConfig()
	cfg.Exe, cfg.Dir, cfg.Nodes = os.Args[0], t.TempDir(), 1
	cfg.Env = fakeEnv("DEVCLUSTER_FAKE_UNHEALTHY=n1")
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := c.Start(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start with an expiring context: %v", err)
	}
}

func TestStopKillsAfterTimeout(t *testing.T) {
	c, log := newCluster(t, 1, func(cfg *Config) {
		cfg.Env = append(cfg.Env, "DEVCLUSTER_FAKE_IGNORE_TERM=n1")
		cfg.StopTimeout = 200 * time.Millisecond
	})
	pid := c.Agents()[0].PID
	if n := c.Stop(context.Background()); n != 1 || !gone(pid) {
		t.Fatalf("Stop = %d, pid %d gone = %v", n, pid, gone(pid))
	}
	if !strings.Contains(log.String(), "test: n1 did not stop in 200ms, killing it") {
		t.Fatalf("log:\n%s", log.String())
	}
}

func TestStopHardContext(t *testing.T) {
	c, _ := newCluster(t, 2, func(cfg *Config) {
		cfg.Env = append(cfg.Env, "DEVCLUSTER_FAKE_IGNORE_TERM=n1,n2")
		cfg.StopTimeout = time.Hour
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan int, 1)
	go func() { done <- c.Stop(ctx) }()
	select {
	case n := <-done:
		if n != 2 {
			t.Fatalf("Stop = %d", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop with a cancelled context did not kill at once")
	}
}

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Exe, ok.Dir = "/bin/true", "/tmp/x"
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"no exe", func(c *Config) { c.Exe = "" }},
		{"no dir", func(c *Config) { c.Dir = "" }},
		{"zero nodes", func(c *Config) { c.Nodes = 0 }},
		{"too many nodes", func(c *Config) { c.Nodes = MaxNodes + 1 }},
		{"low base port", func(c *Config) { c.BasePort = 80 }},
		{"high base port", func(c *Config) { c.BasePort = 65300 }},
		{"zero start timeout", func(c *Config) { c.StartTimeout = 0 }},
		{"zero stop timeout", func(c *Config) { c.StopTimeout = 0 }},
		{"zero tries", func(c *Config) { c.StartTries = 0 }},
		{"negative tail", func(c *Config) { c.LogTail = -1 }},
	} {
		c := ok
		tc.mod(&c)
		before := c
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want ErrInvalidConfig", tc.name, err)
		}
		if fmt.Sprint(before) != fmt.Sprint(c) {
			t.Errorf("%s: Validate changed the config", tc.name)
		}
	}
}

func TestMakeDir(t *testing.T) {
	p, temp, err := MakeDir("")
	if err != nil || !temp {
		t.Fatalf("MakeDir(\"\") = %q, %v, %v", p, temp, err)
	}
	os.RemoveAll(p)
	want := filepath.Join(t.TempDir(), "a", "b")
	p, temp, err = MakeDir(want)
	if err != nil || temp || p != want {
		t.Fatalf("MakeDir(%q) = %q, %v, %v", want, p, temp, err)
	}
	if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
		t.Fatalf("not created: %v", err)
	}
}

// Issue 19, item 2: with a base port whose ports another process holds,
// Start refuses at once, naming the port, and starts no agent.
func TestBasePortHeldIsRefused(t *testing.T) {
	var (
		c    *Cluster
		err  error
		held net.Listener
	)
	for attempt := 1; ; attempt++ {
		held = nettest.Listen(t)                    // a port another process holds
		base := held.Addr().(*net.TCPAddr).Port - 1 // held is n2's HTTP port
		if base < 1024 || base+302 > 65535 {
			t.Skipf("port %d leaves no room for the cluster's ports", base+1)
		}
		c, _, err = tryCluster(t, 2, func(cfg *Config) { cfg.BasePort = base })
		// Another port of the range may be held too, by whatever else
		// runs on the machine (tests side by side): another range then.
		if attempt < 5 && errors.Is(err, ErrPortInUse) && !strings.Contains(err.Error(), "n2's HTTP port") {
			t.Logf("attempt %d: another port of the range was taken: %v", attempt, err)
			continue
		}
		break
	}
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "n2's HTTP port "+held.Addr().String()) {
		t.Fatalf("Start on a held base port: %v, want ErrPortInUse naming n2's HTTP port %s", err, held.Addr())
	}
	for _, a := range c.Agents() {
		if a.PID != 0 {
			t.Errorf("%s was started (pid %d) although a port was held", a.ID, a.PID)
		}
	}
}

// Issue 19, item 2: an address that answers /healthz as another process
// (another cluster's agent on the port) is not taken for the agent.
func TestImpostorIsNotTakenForTheAgent(t *testing.T) {
	_, log, err := tryCluster(t, 1, func(cfg *Config) {
		cfg.Env = append(cfg.Env, "DEVCLUSTER_FAKE_IMPOSTOR=n1")
		cfg.StartTries = 2
	})
	if !errors.Is(err, ErrPortInUse) || !strings.Contains(err.Error(), "another process holds the port") {
		t.Fatalf("Start with an impostor on n1's address: %v, want ErrPortInUse", err)
	}
	if !strings.Contains(log.String(), "retrying on new ports") {
		t.Fatalf("no retry on new ports:\n%s", log)
	}
}

// Prepare, StartAgent and WaitHealthy let a test order starts itself (an
// agent before its seed), AgentEnv gives one agent its own environment, and
// Terminate stops one agent with SIGTERM and returns its exit status.
func TestStartAgentInOrderAndTerminate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Exe, cfg.Dir, cfg.Nodes = os.Args[0], t.TempDir(), 2
	cfg.Env = fakeEnv("DEVCLUSTER_FAKE_NODES=2")
	cfg.AgentEnv = func(i int) []string {
		if i == 1 {
			return []string{"QUORUMKV_SECRET="}
		}
		return nil
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop(context.Background())
	if err := c.StartAgent(0, nil); !errors.Is(err, ErrState) {
		t.Fatalf("StartAgent before Prepare: %v, want ErrState", err)
	}
	if err := c.Prepare(); err != nil {
		t.Fatal(err)
	}
	as := c.Agents()
	if err := c.StartAgent(1, []string{as[0].Gossip}); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if err := c.StartAgent(1, nil); !errors.Is(err, ErrState) {
		t.Fatalf("StartAgent of a running agent: %v, want ErrState", err)
	}
	if err := c.StartAgent(0, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitHealthy(t.Context(), 0); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitConverged(t.Context()); err != nil {
		t.Fatal(err)
	}
	args0, args1 := readArgs(t, c.Agents()[0]), readArgs(t, c.Agents()[1])
	if strings.Contains(args0, "--join") || !strings.Contains(args1, "--join "+as[0].Gossip) {
		t.Fatalf("joins: n1 %q, n2 %q", args0, args1)
	}
	if !strings.Contains(args0, "secret=yes") || !strings.Contains(args1, "secret=no") {
		t.Fatalf("AgentEnv did not reach n2 alone: n1 %q, n2 %q", args0, args1)
	}
	if err := c.Terminate(0, 10*time.Second); err != nil {
		t.Fatalf("Terminate n1: %v, want a clean exit", err)
	}
	if a := c.Agents()[0]; a.Running {
		t.Fatal("n1 still running after Terminate")
	}
	if err := c.Terminate(0, time.Second); !errors.Is(err, ErrState) {
		t.Fatalf("Terminate of a stopped agent: %v, want ErrState", err)
	}
	noExitReported(t, c, "Terminate's exit was reported")
}

// An agent can be restarted while another is still down: the wait watches
// the agents running when it starts, not one that died before.
func TestRestartWhileAnotherIsDown(t *testing.T) {
	c, _ := newCluster(t, 3, nil)
	for _, i := range []int{1, 0} {
		if err := c.Kill(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Restart(0); err != nil {
		t.Fatalf("restart n1 with n2 down: %v", err)
	}
	if err := c.Restart(1); err != nil {
		t.Fatalf("restart n2: %v", err)
	}
	for _, a := range c.Agents() {
		if !a.Running {
			t.Errorf("%s not running", a.ID)
		}
	}
}

// noExitReported fails the test if c reported an unexpected exit; what
// says which exit would have been wrongly reported.
func noExitReported(t *testing.T, c *Cluster, what string) {
	t.Helper()
	select {
	case x := <-c.Exits():
		t.Fatalf("%s: %+v", what, x)
	default:
	}
}
