package membudget

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const childEnv = "MEMBUDGET_CGROUP_CHILD"

// TestReadMachineInACgroup puts a child process into a memory cgroup with
// a 256 MiB limit, made under this process's own cgroup, and checks that
// ReadMachine in the child finds it. It needs root and a writable cgroup
// file system (v1 memory controller, or v2 with memory delegated); it
// skips with the reason otherwise.
func TestReadMachineInACgroup(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	dir, limitFile, err := makeCgroup(t)
	if err != nil {
		t.Skipf("cannot make a memory cgroup here: %v", err)
	}
	const limit = 256 << 20
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.Itoa(limit)), 0); err != nil {
		t.Skipf("cannot set a memory limit: %v", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestReadMachineChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Skipf("cannot move a process into the cgroup: %v", err)
	}
	_, _ = stdin.Write([]byte("go\n"))
	_ = stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v\n%s", err, out.String())
	}
	want := fmt.Sprintf("cgroup limit %d at %s", limit, filepath.Join(dir, limitFile))
	if !strings.Contains(out.String(), want) {
		t.Fatalf("child did not report %q:\n%s", want, out.String())
	}
	t.Logf("the child in %s reported: %s", dir, want)
}

// TestReadMachineChild is the child of TestReadMachineInACgroup: it waits
// to be moved into the cgroup, then reports what ReadMachine finds.
func TestReadMachineChild(t *testing.T) {
	if os.Getenv(childEnv) == "" {
		t.Skip("only as the child of TestReadMachineInACgroup")
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	m, err := ReadMachine()
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("cgroup limit %d at %s\n", m.CgroupLimit, m.CgroupFile)
}

// makeCgroup makes a memory cgroup under this process's own and returns
// its directory and the name of its limit file; the test removes it.
func makeCgroup(t *testing.T) (dir, limitFile string, err error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", "", err
	}
	for line := range strings.SplitSeq(string(self), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var base string
		switch {
		case parts[0] == "0" && parts[1] == "":
			base, limitFile = "/sys/fs/cgroup", "memory.max"
			if b, err := os.ReadFile(filepath.Join(base, parts[2], "cgroup.subtree_control")); err != nil || !strings.Contains(string(b), "memory") {
				continue // memory not delegated below us in v2
			}
		case strings.Contains(","+parts[1]+",", ",memory,"):
			base, limitFile = "/sys/fs/cgroup/memory", "memory.limit_in_bytes"
		default:
			continue
		}
		dir = filepath.Join(base, parts[2], fmt.Sprintf("membudget-test-%d", os.Getpid()))
		if err := os.Mkdir(dir, 0o755); err != nil {
			return "", "", err
		}
		t.Cleanup(func() { _ = os.Remove(dir) })
		return dir, limitFile, nil
	}
	return "", "", fmt.Errorf("no memory controller in /proc/self/cgroup")
}
