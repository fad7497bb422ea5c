package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// netns is a network namespace made for one test, with its own /etc/hosts
// (ip netns exec bind-mounts /etc/netns/NAME/hosts over /etc/hosts for the
// commands it runs). Agents inside bind wildcard addresses and talk over
// the namespace's own loopback, so nothing leaves it.
type netns struct {
	t     *testing.T
	name  string
	hosts string // the file ip netns exec shows as /etc/hosts
}

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIP: no ip command (iproute2): the advertise test runs agents in a network namespace")
	}
	ns := &netns{t: t, name: fmt.Sprintf("qkvadv-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)}
	dir := filepath.Join("/etc/netns", ns.name)
	ns.hosts = filepath.Join(dir, "hosts")
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Skipf("SKIP: cannot make a network namespace (ip netns add: %v: %s)", err, out)
	}
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", ns.name).Run()
		os.RemoveAll(dir)
	})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ns.setHosts("127.0.0.1 localhost")
	ns.run("ip", "link", "set", "lo", "up")
	return ns
}

// setHosts rewrites the namespace's /etc/hosts in place (same inode, so
// the bind mounts of running agents see it; Go rereads it within 5 s).
func (ns *netns) setHosts(lines ...string) {
	ns.t.Helper()
	if err := os.WriteFile(ns.hosts, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		ns.t.Fatal(err)
	}
}

// command is cmd run inside the namespace.
func (ns *netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name, name}, args...)...)
	cmd.Env = cleanEnv()
	return cmd
}

func (ns *netns) run(name string, args ...string) (int, string) {
	ns.t.Helper()
	ctx, cancel := context.WithTimeout(ns.t.Context(), 30*time.Second)
	defer cancel()
	out, err := ns.command(ctx, name, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	ns.t.Fatalf("%s %q in %s: %v", name, args, ns.name, err)
	return -1, ""
}

// startAgent runs an agent inside the namespace (ip netns exec execs it,
// so the process is the agent), as a proc the test's cleanup kills.
func (ns *netns) startAgent(id string, args ...string) *proc {
	ns.t.Helper()
	dir := ns.t.TempDir()
	cmd := ns.command(context.Background(), bin, append([]string{"agent", "--node-id", id, "--data-dir", filepath.Join(dir, "data"),
		"--profile", "local", "--log-level", "debug"}, args...)...)
	// The agents bind every interface of a namespace only this test uses,
	// and its checks send no tokens: protected mode is waived.
	cmd.Env = append(cmd.Env, "QUORUMKV_SECRET=advertise-test", "QUORUMKV_INSECURE=true")
	return startCmd(ns.t, id, filepath.Join(dir, id+".log"), cmd)
}

// members is the member list as the agent at addr answers it (via the
// CLI inside the namespace).
func (ns *netns) members(addr string) map[string]map[string]any {
	code, out := ns.run(bin, "members", "--json", "--addr", addr)
	if code != 0 {
		return nil
	}
	var ms []map[string]any
	if json.Unmarshal([]byte(out), &ms) != nil {
		return nil
	}
	byID := map[string]map[string]any{}
	for _, m := range ms {
		id, _ := m["id"].(string)
		byID[id] = m
	}
	return byID
}

func (ns *netns) allAlive(addr string, ids ...string) bool {
	ms := ns.members(addr)
	for _, id := range ids {
		if ms[id] == nil || ms[id]["state"] != "alive" {
			return false
		}
	}
	return true
}

// Agents bound to wildcard addresses publish their --advertise host; a
// --join name that resolves to several addresses has them all tried, and
// is resolved again at each attempt; an answer from the agent itself is not
// a join. The name "seeds" lives in the namespace's /etc/hosts, as a
// headless service's name would in cluster DNS.
func TestAdvertiseAndJoinByName(t *testing.T) {
	ns := newNetns(t)
	// Only the agent itself (and an address where nobody listens) behind
	// the seed name at first.
	ns.setHosts("127.0.0.1 localhost", "127.0.0.9 seeds", "127.0.0.2 seeds")
	agentArgs := func(i int, join bool) []string {
		ip := fmt.Sprintf("127.0.0.%d", i+1)
		args := []string{"--advertise", ip, "--gossip", ip + ":7947",
			"--http", fmt.Sprintf("0.0.0.0:%d", 8080+i), "--rpc", fmt.Sprintf("0.0.0.0:%d", 7000+i), "--resp", fmt.Sprintf("[::]:%d", 6380+i)}
		if join {
			args = append(args, "--join", "seeds:7947")
		}
		return args
	}
	n1 := ns.startAgent("n1", agentArgs(1, true)...)
	waitForProcs(t, 15*time.Second, "n1 to try its seeds three times and find only itself", func() bool {
		b, _ := os.ReadFile(n1.logPath)
		return strings.Count(string(b), "only this node answered") >= 3
	}, n1)
	if code, out := ns.run(bin, "health", "--addr", "127.0.0.2:8081"); code != 1 || !strings.Contains(out, "not joined") {
		t.Fatalf("n1 alone: health exit %d %q, want 1 and not joined", code, out)
	}
	if code, out := ns.run(bin, "health", "--live", "--addr", "127.0.0.2:8081"); code != 0 {
		t.Fatalf("n1 alone: health --live exit %d %q, want 0", code, out)
	}

	n2 := ns.startAgent("n2", agentArgs(2, false)...)
	waitForProcs(t, 15*time.Second, "n2, a cluster's first member, ready", func() bool {
		code, _ := ns.run(bin, "health", "--addr", "127.0.0.3:8082")
		return code == 0
	}, n2)

	// The seed name now covers every member; n1 finds n2 at its next
	// attempt after Go rereads the hosts file.
	ns.setHosts("127.0.0.1 localhost", "127.0.0.9 seeds", "127.0.0.2 seeds", "127.0.0.3 seeds", "127.0.0.4 seeds")
	waitForProcs(t, 30*time.Second, "n1 to resolve the seed name again, join n2 and be ready", func() bool {
		code, _ := ns.run(bin, "health", "--addr", "127.0.0.2:8081")
		return code == 0 && ns.allAlive("127.0.0.3:8082", "n1", "n2")
	}, n1, n2)

	n3 := ns.startAgent("n3", agentArgs(3, true)...)
	waitForProcs(t, 30*time.Second, "n3 to join through the name and all three to see each other", func() bool {
		return ns.allAlive("127.0.0.2:8081", "n1", "n2", "n3") && ns.allAlive("127.0.0.4:8083", "n1", "n2", "n3")
	}, n1, n2, n3)

	ms := ns.members("127.0.0.4:8083")
	for i, id := range []string{"n1", "n2", "n3"} {
		ip := fmt.Sprintf("127.0.0.%d", i+2)
		want := map[string]string{"http": fmt.Sprintf("%s:%d", ip, 8081+i), "rpc": fmt.Sprintf("%s:%d", ip, 7001+i),
			"gossip": ip + ":7947", "resp": fmt.Sprintf("%s:%d", ip, 6381+i)}
		for k, v := range want {
			if got := ms[id][k]; got != v {
				t.Errorf("n3 lists %s's %s address %v, want %s (the advertised host with the bound port)", id, k, got, v)
			}
		}
	}
	// Node-to-node RPC goes to the advertised addresses: a write that
	// needs all three.
	// The ring takes n3 in once it has received its partitions (a pending
	// owner first): retry until the write at w=3 goes through.
	var putCode int
	var putOut string
	waitForProcs(t, 30*time.Second, "a write at w=3 once the ring holds all three", func() bool {
		putCode, putOut = ns.run(bin, "put", "--addr", "127.0.0.4:8083", "--w", "3", "advertised", "yes")
		return putCode == 0
	}, n1, n2, n3)
	if putCode != 0 {
		t.Fatalf("put at w=3: exit %d %s", putCode, putOut)
	}
	// n1 may learn the ring that holds n3 a little later, by gossip; until
	// then it reads from the two owners it knows and refuses r=3 (n=2).
	var getCode int
	var getOut string
	waitForProcs(t, 30*time.Second, "a read at r=3 through n1 once its ring holds all three", func() bool {
		getCode, getOut = ns.run(bin, "get", "--addr", "127.0.0.2:8081", "--r", "3", "advertised")
		return getCode == 0 || !strings.Contains(getOut, "cannot exceed n=2")
	}, n1, n2, n3)
	if getCode != 0 || strings.TrimSpace(getOut) != "yes" {
		t.Fatalf("get at r=3: exit %d %q", getCode, getOut)
	}
}
