package e2e

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/nettest"
	"github.com/quorumkv/quorumkv/internal/syncio"
)

// devRun is a `quorumkv dev` process started by startDev.
type devRun struct {
	cmd       *exec.Cmd
	out, errb *syncio.Buffer
	console   io.WriteCloser // dev's standard input
	exited    chan error     // dev's exit, once
	pids      []int          // agent pids, from the table and later restarts: killed at cleanup
	addrs     []string       // HTTP address per node
	text      string         // stdout up to the ready message
}

// startDev starts `quorumkv dev args...` with env, waits for its table of
// nodes and parses it.
func startDev(t *testing.T, env []string, args ...string) *devRun {
	t.Helper()
	d := &devRun{cmd: exec.Command(bin, append([]string{"dev"}, args...)...), out: &syncio.Buffer{}, errb: &syncio.Buffer{}, exited: make(chan error, 1)}
	d.cmd.Env = env
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.errb
	var err error
	if d.console, err = d.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.exited <- d.cmd.Wait() }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		for _, pid := range d.pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("dev stdout:\n%s\ndev stderr:\n%s", d.out.String(), d.errb.String())
		}
	})
	waitFor(t, 60*time.Second, "dev to print its table", func() bool {
		select {
		case err := <-d.exited:
			t.Fatalf("dev exited before it was ready: %v", err)
		default:
		}
		return strings.Contains(d.out.String(), "Ctrl-C stops every node.")
	})
	d.text = d.out.String()
	row := regexp.MustCompile(`(?m)^(n\d+)\s+(\d+)\s+(127\.0\.0\.1:\d+)\s+(127\.0\.0\.1:\d+)\s+(127\.0\.0\.1:\d+)\s`)
	for _, m := range row.FindAllStringSubmatch(d.text, -1) {
		pid, _ := strconv.Atoi(m[2])
		d.pids = append(d.pids, pid)
		d.addrs = append(d.addrs, m[3])
	}
	return d
}

// wait returns dev's exit error, failing the test if it takes over 45s.
func (d *devRun) wait(t *testing.T, after string) error {
	t.Helper()
	select {
	case err := <-d.exited:
		return err
	case <-time.After(45 * time.Second):
		t.Fatalf("dev did not exit within 45s of %s", after)
		return nil
	}
}

// TestDev runs `quorumkv dev --nodes 3`, waits for its table, uses the
// cluster through the CLI, interrupts it and checks that every agent exited
// and the temporary directory is gone.
func TestDev(t *testing.T) {
	tmp := t.TempDir()
	d := startDev(t, append(cleanEnv(), "TMPDIR="+tmp), "--nodes", "3")
	text, pids, addrs := d.text, d.pids, d.addrs
	if len(pids) != 3 {
		t.Fatalf("want 3 node rows in:\n%s", text)
	}
	dirm := regexp.MustCompile(`Data and logs: (\S+)`).FindStringSubmatch(text)
	if dirm == nil || !strings.HasPrefix(dirm[1], tmp) {
		t.Fatalf("no data directory under %s in:\n%s", tmp, text)
	}
	dir := dirm[1]
	// Each agent schedules on its share of the machine's cores
	// (devcluster.CPUShareEnv), unless the environment says otherwise.
	if os.Getenv("GOMAXPROCS") == "" {
		want := "GOMAXPROCS=" + strconv.Itoa(max(1, runtime.NumCPU()/3))
		for _, pid := range pids {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(strings.Split(string(b), "\x00"), want) {
				t.Fatalf("agent %d runs without %s", pid, want)
			}
		}
	}
	if !strings.Contains(text, "export QUORUMKV_ADDR="+strings.Join(addrs, ",")) || !strings.Contains(text, "curl -i http://"+addrs[0]+"/kv/greeting") {
		t.Fatalf("example commands missing:\n%s", text)
	}

	// The printed cluster works, through every node.
	if code, _, errOut := cli(t, "", "put", "greeting", "hello", "--addr", addrs[0], "--w", "3"); code != 0 {
		t.Fatalf("put: %d %s", code, errOut)
	}
	for _, a := range addrs {
		if code, got, errOut := cli(t, "", "get", "greeting", "--addr", a, "--r", "1"); code != 0 || got != "hello" {
			t.Fatalf("get via %s: %d %q %s", a, code, got, errOut)
		}
	}
	if code, got, _ := cli(t, "", "members", "--addr", addrs[1]); code != 0 || strings.Count(got, "alive") != 3 {
		t.Fatalf("members: %d\n%s", code, got)
	}

	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(t, "SIGINT"); err != nil {
		t.Fatalf("dev after SIGINT: %v (want exit 0)", err)
	}
	for i, pid := range pids {
		// dev waited for its children, so they are reaped: the pid is gone.
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("agent n%d (pid %d) still exists after dev exited: %v", i+1, pid, err)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("dev's directory %s still exists: %v", dir, err)
	}
	if !strings.Contains(d.errb.String(), "3 node(s) stopped") {
		t.Errorf("dev's stderr lacks the stop report:\n%s", d.errb.String())
	}
}

// TestDevAgentDies kills one agent of a dev cluster from outside (kill -9):
// dev must report it with the agent's last log lines and keep the other
// serving; "restart n2" on dev's standard input brings it back on its
// ports and data; when no agent is left running, dev exits 1.
func TestDevAgentDies(t *testing.T) {
	keep := t.TempDir()
	d := startDev(t, cleanEnv(), "--nodes", "2", "--dir", keep)
	errb := d.errb
	if len(d.pids) != 2 {
		t.Fatalf("want 2 node rows:\n%s", d.text)
	}
	pids := d.pids
	n1, n2 := d.addrs[0], d.addrs[1]
	code, vctx, errOut := cli(t, "", "put", "k", "v1", "--addr", n1, "--w", "2")
	if code != 0 {
		t.Fatalf("put: %d %s", code, errOut)
	}

	if err := syscall.Kill(pids[1], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "dev to report n2's death", func() bool {
		return strings.Contains(errb.String(), `type "restart n2" here`)
	})
	e := errb.String()
	if !strings.Contains(e, "n2 (pid "+strconv.Itoa(pids[1])+") exited unexpectedly") || !strings.Contains(e, "last") || !strings.Contains(e, "node started") {
		t.Fatalf("dev's report lacks the death or the log tail:\n%s", e)
	}
	select {
	case err := <-d.exited:
		t.Fatalf("dev exited when one of two agents died: %v", err)
	default:
	}
	// The survivor serves; w=1 with n=2 is met by n1 alone.
	// With v1's context, so that v2 replaces it rather than standing beside it.
	if code, _, errOut := cli(t, "", "put", "k", "v2", "--addr", n1, "--w", "1", "--context", strings.TrimSpace(vctx)); code != 0 {
		t.Fatalf("put with n2 down: %d %s", code, errOut)
	}

	// Console: a bad command is refused, then n2 comes back and gets the
	// write it missed with no client read (n1 kept a hint of last resort
	// for it; anti-entropy is the backstop).
	if _, err := io.WriteString(d.console, "frobnicate n2\nrestart n2\nnodes\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "n2 to be restarted", func() bool {
		return strings.Contains(errb.String(), "n2 restarted (pid ")
	})
	if !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("no refusal of a bad console command:\n%s", errb.String())
	}
	m := regexp.MustCompile(`n2 restarted \(pid (\d+)\)`).FindStringSubmatch(errb.String())
	pid, _ := strconv.Atoi(m[1])
	d.pids = append(d.pids, pid)
	waitFor(t, 30*time.Second, "n2's own copy of k to be v2", func() bool {
		code, got, _ := cli(t, "", "get", "k", "--addr", n2, "--local")
		return code == 0 && got == "v2"
	})
	waitFor(t, 10*time.Second, "the nodes command to list both running", func() bool {
		return regexp.MustCompile(`(?m)^\s+n2\s+running\s+pid ` + m[1]).MatchString(errb.String())
	})

	// Both die: dev has nothing left to run and exits 1, keeping --dir.
	for _, pid := range []int{pids[0], pid} {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	var ee *exec.ExitError
	if err := d.wait(t, "its last agent's death"); !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("dev after every agent died: %v (want exit 1)", err)
	}
	if !strings.Contains(errb.String(), "no node is left running") {
		t.Fatalf("dev's stderr lacks the reason it exited:\n%s", errb.String())
	}
	if _, err := os.Stat(keep + "/n1.log"); err != nil {
		t.Fatalf("--dir contents: %v", err)
	}
}

// Issue 19, item 2: dev on a base port another process holds used to say
// "3 node(s) up and joined" (its readiness probe reached the other
// process) and then watch its agents die. It must refuse, exit 2, and start
// nothing.
func TestDevBasePortHeld(t *testing.T) {
	held := nettest.Listen(t)               // a port another process holds
	base := held.Addr().(*net.TCPAddr).Port // n1's HTTP port
	if base+303 > 65535 {
		t.Skipf("port %d leaves no room for dev's ports above it", base)
	}
	code, out, errOut := cli(t, "", "dev", "--base-port", strconv.Itoa(base), "--dir", t.TempDir())
	if code != 2 || strings.Contains(out, "up and joined") || !strings.Contains(errOut, "n1's HTTP port "+held.Addr().String()+" is taken") ||
		!strings.Contains(errOut, "--base-port") {
		t.Fatalf("dev on a held base port: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
