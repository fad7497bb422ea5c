package e2e

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Docker fault tests: a cluster of containers of the real image on a
// private network this test creates, driven from the host through ports
// published on 127.0.0.1. Every container, volume and network carries the
// label dockerLabel=<run id>; t.Cleanup removes them, and a later run
// removes what a killed run (test timeout, SIGKILL) left more than an hour
// ago.

const (
	dockerLabel = "quorumkv-e2e"
	// dockerGossipPort and the other container ports are the image's
	// defaults (Dockerfile).
	dockerGossipPort = "7947"
)

// skipWithoutDocker skips the test loudly when Docker cannot be used here.
func skipWithoutDocker(t *testing.T) {
	t.Helper()
	skipWithoutDockerDaemon(t, "the Docker fault tests")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the Docker fault tests split the network with iptables inside the containers' network namespaces (nsenter), which needs root")
	}
	for _, tool := range []string{"nsenter", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the Docker fault tests need it to split the network (apt-get install -y util-linux iptables)", tool)
		}
	}
}

// skipWithoutDockerDaemon skips the test loudly, naming who needs it,
// when no Docker daemon answers here.
func skipWithoutDockerDaemon(t *testing.T, who string) {
	t.Helper()
	if os.Getenv("QUORUMKV_DOCKER_TESTS") == "0" {
		t.Skip("SKIP: Docker tests disabled by QUORUMKV_DOCKER_TESTS=0")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skipf("SKIP: no docker command on PATH: %s need Docker Engine", who)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Version}}").CombinedOutput(); err != nil {
		t.Skipf("SKIP: no Docker daemon answers (docker version: %v: %s): %s need one", err, bytes.TrimSpace(out), who)
	}
}

// dockerRun runs docker with args and returns its trimmed output.
func dockerRun(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("docker %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return strings.TrimSpace(string(out)), nil
}

// dockerCluster is the containers of one test run.
type dockerCluster struct {
	t       *testing.T
	run     string // run id: every name starts with it
	image   string
	network string
	subnet  string // first three octets, e.g. "10.213.7"
	secret  string
	nodes   []*dockerNode
}

// dockerNode is one agent container. Its network address (IP and alias)
// and its published HTTP port stay the same across disconnects, restarts
// and replacement.
type dockerNode struct {
	id        string // node id, host name and network alias: n1...
	container string
	ip        string
	http      string // 127.0.0.1:PORT published to the container's 8080
	volume    string
}

func (n *dockerNode) url(path string) string { return "http://" + n.http + path }

// newDockerCluster builds the image, makes the network and starts n
// containers; it waits until every node is ready and sees all the others
// alive.
func newDockerCluster(t *testing.T, n int) *dockerCluster {
	t.Helper()
	now := time.Now()
	c := &dockerCluster{t: t, run: fmt.Sprintf("qkve2e-%d-%d", now.Unix(), os.Getpid())}
	reapOldDockerRuns(t)
	t.Cleanup(c.cleanup)

	c.image = "quorumkv:" + c.run
	start := time.Now()
	build := exec.CommandContext(t.Context(), filepath.Join("..", "deploy", "build-image.sh"), c.image)
	build.Env = append(os.Environ(), "QUORUMKV_COMPOSE_SECRET=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build-image.sh: %v\n%s", err, out)
	}
	size, _ := dockerRun(t.Context(), "image", "inspect", "-f", "{{.Size}}", c.image)
	t.Logf("image %s built in %s (%s bytes)", c.image, time.Since(start).Round(100*time.Millisecond), size)

	var b [16]byte
	crand.Read(b[:])
	c.secret = hex.EncodeToString(b[:])
	c.makeNetwork()
	var join []string
	ports := addresses(t, n) // free host ports to publish the HTTP ports on
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		join = append(join, id+":"+dockerGossipPort)
		c.nodes = append(c.nodes, &dockerNode{id: id, container: c.run + "-" + id, ip: fmt.Sprintf("%s.%d", c.subnet, 11+i), http: ports[i].HTTP})
	}
	start = time.Now()
	for _, nd := range c.nodes {
		c.startNode(nd, strings.Join(join, ","), true)
	}
	c.waitHealthy(90*time.Second, "every container ready and every node seeing all alive")
	t.Logf("%d containers ready and all alive %s after the first start", n, time.Since(start).Round(100*time.Millisecond))
	return c
}

// makeNetwork creates a bridge network with a subnet of its own, so that
// containers keep their addresses across disconnects and restarts.
func (c *dockerCluster) makeNetwork() {
	c.t.Helper()
	c.network = c.run
	var last error
	for range 20 {
		c.subnet = fmt.Sprintf("10.213.%d", rand.IntN(250)+1)
		_, last = dockerRun(c.t.Context(), "network", "create", "--driver", "bridge", "--label", dockerLabel+"="+c.run,
			"--subnet", c.subnet+".0/24", c.network)
		if last == nil {
			return
		}
		if !strings.Contains(last.Error(), "overlap") {
			break
		}
	}
	c.t.Fatalf("create network: %v", last)
}

// startNode runs nd's container; fresh makes a new, empty volume first.
func (c *dockerCluster) startNode(nd *dockerNode, join string, fresh bool) {
	c.t.Helper()
	if fresh {
		nd.volume = fmt.Sprintf("%s-%s-%d", c.run, nd.id, time.Now().UnixNano())
		if _, err := dockerRun(c.t.Context(), "volume", "create", "--label", dockerLabel+"="+c.run, nd.volume); err != nil {
			c.t.Fatal(err)
		}
	}
	args := []string{"run", "-d", "--name", nd.container, "--label", dockerLabel + "=" + c.run,
		"--hostname", nd.id, "--network", c.network, "--ip", nd.ip, "--network-alias", nd.id,
		// The root file system stays read-only, as the Kubernetes
		// manifests ask: everything the agent writes is in /data.
		"--read-only",
		"-p", nd.http + ":8080",
		"-v", nd.volume + ":/data",
		"-e", "QUORUMKV_NODE_ID=" + nd.id,
		"-e", "QUORUMKV_ADVERTISE=" + nd.id,
		"-e", "QUORUMKV_JOIN=" + join,
		"-e", "QUORUMKV_SECRET=" + c.secret,
		// The client ports bind every interface of a network only this
		// test uses, and its checks send no tokens: protected mode
		// (TestSecurityProtectedMode) is waived.
		"-e", "QUORUMKV_INSECURE=true",
		// Fast failure detection and retries, as on one machine: the
		// containers share this host.
		"-e", "QUORUMKV_PROFILE=local",
		c.image}
	if _, err := dockerRun(c.t.Context(), args...); err != nil {
		c.t.Fatal(err)
	}
}

// byID returns the node with id.
func (c *dockerCluster) byID(id string) *dockerNode {
	for _, nd := range c.nodes {
		if nd.id == id {
			return nd
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

// joinList is every node's gossip address by name.
func (c *dockerCluster) joinList() string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.id+":"+dockerGossipPort)
	}
	return strings.Join(out, ",")
}

// disconnect takes nd off the network (as a pulled cable: peers cannot
// reach it, nor can the test through its published port).
func (c *dockerCluster) disconnect(nd *dockerNode) {
	c.t.Helper()
	if _, err := dockerRun(c.t.Context(), "network", "disconnect", c.network, nd.container); err != nil {
		c.t.Fatal(err)
	}
}

// reconnect puts nd back on the network with its address and alias.
func (c *dockerCluster) reconnect(nd *dockerNode) {
	c.t.Helper()
	if _, err := dockerRun(c.t.Context(), "network", "connect", "--ip", nd.ip, "--alias", nd.id, c.network, nd.container); err != nil {
		c.t.Fatal(err)
	}
}

// split drops all traffic between the two sides, with iptables rules in
// each container's network namespace (the image has no firewall tool of
// its own). Traffic from the host (the published ports) still flows.
func (c *dockerCluster) split(a, b []*dockerNode) {
	c.t.Helper()
	for _, side := range [][2][]*dockerNode{{a, b}, {b, a}} {
		for _, nd := range side[0] {
			for _, other := range side[1] {
				c.nsIptables(nd, "-I", "INPUT", "-s", other.ip, "-j", "DROP")
			}
		}
	}
}

// heal removes every split rule.
func (c *dockerCluster) heal() {
	c.t.Helper()
	for _, nd := range c.nodes {
		c.nsIptables(nd, "-F", "INPUT")
	}
}

func (c *dockerCluster) nsIptables(nd *dockerNode, args ...string) {
	c.t.Helper()
	pid, err := dockerRun(c.t.Context(), "inspect", "-f", "{{.State.Pid}}", nd.container)
	if err != nil {
		c.t.Fatal(err)
	}
	if _, err := strconv.Atoi(pid); err != nil || pid == "0" {
		c.t.Fatalf("%s has no process (pid %q)", nd.id, pid)
	}
	cmd := exec.CommandContext(c.t.Context(), "nsenter", append([]string{"--target", pid, "--net", "iptables", "-w"}, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("iptables %q in %s's network namespace: %v: %s", args, nd.id, err, out)
	}
}

func (c *dockerCluster) docker(args ...string) {
	c.t.Helper()
	if _, err := dockerRun(c.t.Context(), args...); err != nil {
		c.t.Fatal(err)
	}
}

// replaceEmpty removes nd's container and volume and starts a new
// container with the same id and address on a new, empty volume: a node
// whose disk was lost.
func (c *dockerCluster) replaceEmpty(nd *dockerNode) {
	c.t.Helper()
	c.docker("rm", "-f", "-v", nd.container)
	c.docker("volume", "rm", nd.volume)
	c.startNode(nd, c.joinList(), true)
}

var dockerHTTP = &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 16}}

// membersAlive is nd's view: how many members it lists alive (-1 when it
// does not answer).
func dockerMembersAlive(nd *dockerNode) int {
	res, err := dockerHTTP.Get(nd.url("/cluster/members"))
	if err != nil {
		return -1
	}
	defer res.Body.Close()
	var body struct {
		Members []struct {
			State string `json:"state"`
		} `json:"members"`
	}
	if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&body) != nil {
		return -1
	}
	alive := 0
	for _, m := range body.Members {
		if m.State == "alive" {
			alive++
		}
	}
	return alive
}

func dockerReady(nd *dockerNode) bool {
	res, err := dockerHTTP.Get(nd.url("/readyz"))
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// waitHealthy waits until every node is ready and lists every node alive.
func (c *dockerCluster) waitHealthy(timeout time.Duration, what string) time.Duration {
	c.t.Helper()
	start := time.Now()
	err := poll(timeout, what, func() bool {
		for _, nd := range c.nodes {
			if !dockerReady(nd) || dockerMembersAlive(nd) != len(c.nodes) {
				return false
			}
		}
		return true
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return time.Since(start)
}

// cleanup removes everything this run made, after dumping the containers'
// logs if the test failed.
func (c *dockerCluster) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if c.t.Failed() {
		for _, nd := range c.nodes {
			out, _ := dockerRun(ctx, "logs", "--tail", "60", nd.container)
			c.t.Logf("--- last lines of %s's log:\n%s", nd.id, out)
		}
	}
	removeDockerRun(ctx, c.t, c.run)
	if c.image != "" {
		dockerRun(ctx, "rmi", c.image)
	}
}

// removeDockerRun removes the containers, volumes and network labelled
// with run.
func removeDockerRun(ctx context.Context, t *testing.T, run string) {
	filter := "label=" + dockerLabel + "=" + run
	if ids, _ := dockerRun(ctx, "ps", "-aq", "--filter", filter); ids != "" {
		if _, err := dockerRun(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if vols, _ := dockerRun(ctx, "volume", "ls", "-q", "--filter", filter); vols != "" {
		if _, err := dockerRun(ctx, append([]string{"volume", "rm", "-f"}, strings.Fields(vols)...)...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
	if nets, _ := dockerRun(ctx, "network", "ls", "-q", "--filter", filter); nets != "" {
		if _, err := dockerRun(ctx, append([]string{"network", "rm"}, strings.Fields(nets)...)...); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

// reapOldDockerRuns removes what runs killed before their cleanup left:
// resources whose run id says they were made over an hour ago (a run still
// going is never that old, so a concurrent run is left alone).
func reapOldDockerRuns(t *testing.T) {
	ctx := t.Context()
	runs := map[string]bool{}
	for _, kind := range [][]string{{"ps", "-a"}, {"volume", "ls"}, {"network", "ls"}} {
		out, err := dockerRun(ctx, append(kind, "--filter", "label="+dockerLabel, "--format", `{{.Label "`+dockerLabel+`"}}`)...)
		if err != nil {
			continue
		}
		for _, r := range strings.Fields(out) {
			runs[r] = true
		}
	}
	for r := range runs {
		f := strings.Split(r, "-")
		if len(f) != 3 {
			continue
		}
		if sec, err := strconv.ParseInt(f[1], 10, 64); err == nil && time.Since(time.Unix(sec, 0)) > time.Hour {
			t.Logf("removing leftovers of an earlier run %s", r)
			removeDockerRun(ctx, t, r)
			dockerRun(ctx, "rmi", "quorumkv:"+r)
		}
	}
}
