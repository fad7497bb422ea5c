package e2e

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDev runs `quorumkv dev --nodes 3`, waits for its table, uses the
// cluster through the CLI, interrupts it and checks that every agent exited
// and the temporary directory is gone.
func TestDev(t *testing.T) {
	tmp := t.TempDir()
	cmd := exec.Command(bin, "dev", "--nodes", "3")
	cmd.Env = append(cleanEnv(), "TMPDIR="+tmp)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var pids []int
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("dev stdout:\n%s\ndev stderr:\n%s", out.String(), errb.String())
		}
	})

	waitFor(t, 60*time.Second, "dev to print its table", func() bool {
		select {
		case err := <-exited:
			t.Fatalf("dev exited before it was ready: %v", err)
		default:
		}
		return strings.Contains(out.String(), "Ctrl-C stops every node.")
	})
	text := out.String()
	row := regexp.MustCompile(`(?m)^(n\d+)\s+(\d+)\s+(127\.0\.0\.1:\d+)\s+(127\.0\.0\.1:\d+)\s+(127\.0\.0\.1:\d+)\s`)
	var addrs []string
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		pid, _ := strconv.Atoi(m[2])
		pids = append(pids, pid)
		addrs = append(addrs, m[3])
	}
	if len(pids) != 3 {
		t.Fatalf("want 3 node rows in:\n%s", text)
	}
	dirm := regexp.MustCompile(`Data and logs: (\S+)`).FindStringSubmatch(text)
	if dirm == nil || !strings.HasPrefix(dirm[1], tmp) {
		t.Fatalf("no data directory under %s in:\n%s", tmp, text)
	}
	dir := dirm[1]
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

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("dev after SIGINT: %v (want exit 0)", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("dev did not exit within 45s of SIGINT")
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
	if !strings.Contains(errb.String(), "3 node(s) stopped") {
		t.Errorf("dev's stderr lacks the stop report:\n%s", errb.String())
	}
}

// TestDevAgentDies kills one agent of a dev cluster: dev must notice, print
// the agent's last log lines, stop the others and exit 1.
func TestDevAgentDies(t *testing.T) {
	keep := t.TempDir()
	cmd := exec.Command(bin, "dev", "--nodes", "2", "--dir", keep)
	cmd.Env = cleanEnv()
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitFor(t, 60*time.Second, "dev to print its table", func() bool {
		return strings.Contains(out.String(), "Ctrl-C stops every node.")
	})
	m := regexp.MustCompile(`(?m)^n2\s+(\d+)\s`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no n2 row:\n%s", out.String())
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Fatalf("dev after an agent died: %v (want exit 1)", err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("dev did not exit within 45s of an agent's death")
	}
	e := errb.String()
	if !strings.Contains(e, "n2 (pid "+m[1]+") exited unexpectedly") || !strings.Contains(e, "last") || !strings.Contains(e, "node started") {
		t.Fatalf("dev's report lacks the death or the log tail:\n%s", e)
	}
	// --dir is kept.
	if _, err := os.Stat(keep + "/n1.log"); err != nil {
		t.Fatalf("--dir contents: %v", err)
	}
}
