package e2e

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/bench/oracle"
)

// lastReleaseCommit is the last release of quorumkv (main before the
// round of work that brought encryption, the image and the upgrade test).
// The upgrade test starts from the newest tag v* when there is one, else
// from this commit.
const lastReleaseCommit = "8b71df9"

// release is which build a container runs.
type release int

const (
	releaseOld release = iota + 1 // the previous release's binary
	releaseNew                    // this tree's
)

func (r release) String() string {
	if r == releaseOld {
		return "old"
	}
	return "new"
}

// upgradeCluster is a dockerCluster whose nodes run one of two images.
type upgradeCluster struct {
	*dockerCluster
	oldImage string
	runs     map[*dockerNode]release
	accepts  map[*dockerNode]bool // started with QUORUMKV_ACCEPT_V1_PEERS=true
}

// TestDockerRollingUpgrade (issue 17) builds an image of the previous
// release (a git worktree of it, wrapped in this tree's Dockerfile: it has
// none of its own) and one of this tree, starts three containers of the
// previous release with a cluster secret, and under a set-union load and a
// register load judged by bench/oracle replaces them one at a time with
// this release on the same volume, id and address, with
// --accept-v1-peers; then it turns the setting off with a rolling restart.
// Must hold: no acknowledged write lost (set elements, oracle), operations
// fail only in the phases where a node restarts (counted per phase), every
// node's copy of every key equal at the end; between the restarts a write
// at w=3 through each node succeeds (every pair of nodes, old and new,
// talks both ways), each new node reports its version 1 peers while old
// ones remain, and none once all are new.
func TestDockerRollingUpgrade(t *testing.T) {
	skipWithoutDockerDaemon(t, "the rolling upgrade test")
	began := time.Now()
	rev, oldTree := previousRelease(t)
	u := newUpgradeCluster(t, rev, oldTree)
	n1, n2, n3 := u.byID("n1"), u.byID("n2"), u.byID("n3")

	tally := newPhaseTally()
	restarting := map[string]bool{} // phases in which a node restarts: failures allowed
	sets := &setWorkload{keys: 4, acked: map[string][]string{}}
	regs := newOracleRegisters(t, 3)
	var loops []func(context.Context)
	for i := range 3 {
		loops = append(loops, func(ctx context.Context) { sets.run(ctx, i, u.nodes, tally) },
			func(ctx context.Context) { regs.run(ctx, i, u.nodes, tally) })
	}
	stopLoad := startLoad(t, loops...)

	hold := func(d time.Duration) { sleepCtx(t.Context(), d) }
	settled := func(name string) {
		t.Helper()
		tally.enter(name)
		u.probeAllPairs(name)
		hold(4 * time.Second)
	}
	// restart replaces nd's container with one of rel (same volume, id and
	// address), waits until the cluster is whole again, and keeps the
	// phase a client timeout longer, so that operations sent to the
	// stopped node are counted in it.
	var lastRestart time.Time
	restart := func(nd *dockerNode, rel release, acceptV1 bool) {
		t.Helper()
		name := fmt.Sprintf("%s: %s -> %s", nd.id, u.describe(nd), describeRelease(rel, acceptV1))
		restarting[name] = true
		tally.enter(name)
		start := time.Now()
		u.replace(nd, rel, acceptV1)
		u.waitWhole(90*time.Second, "cluster whole after "+name)
		lastRestart = time.Now()
		t.Logf("%s: stopped, started, and the cluster whole again in %s", name, time.Since(start).Round(100*time.Millisecond))
		hold(dockerHTTP.Timeout)
	}

	settled("settled, all old")
	for _, nd := range []*dockerNode{n1, n2, n3} {
		restart(nd, releaseNew, true)
		settled(fmt.Sprintf("settled after %s upgraded", nd.id))
		u.checkLegacyPeers(nd)
	}
	u.checkNoLegacyPeers(true)
	for _, nd := range []*dockerNode{n1, n2, n3} {
		restart(nd, releaseNew, false)
		settled(fmt.Sprintf("settled after %s setting off", nd.id))
	}
	u.checkNoLegacyPeers(false)

	stopLoad()
	t.Logf("operations per phase (N=3, R=2, W=2 through every node in turn; failed: 503 or no answer within %s):\n%s",
		dockerHTTP.Timeout, tally.report("set", "register"))
	for _, ph := range tally.names {
		if restarting[ph] {
			continue
		}
		for _, kind := range []string{"set", "register"} {
			if c := tally.counts[ph+"\x00"+kind]; c != nil && c[opFailed] > 0 {
				t.Errorf("phase %q: %d %s operations failed while no node was restarting", ph, c[opFailed], kind)
			}
		}
	}
	for _, bad := range append(sets.bad.list, regs.bad.list...) {
		t.Errorf("an answer no restart explains: %s", bad)
	}
	took := dockerCheckConverged(t, u.nodes, sets, &registerWorkload{acked: map[string]int{}}, 3, dockerConvergeTimeout)
	regs.judge(u.nodes, dockerConvergeTimeout)
	t.Logf("every key's 3 copies equal %s after the load stopped (%s after the last restart); whole test %s",
		took.Round(100*time.Millisecond), time.Since(lastRestart).Round(100*time.Millisecond), time.Since(began).Round(time.Second))
}

func describeRelease(rel release, acceptV1 bool) string {
	if rel == releaseNew && acceptV1 {
		return "new --accept-v1-peers"
	}
	return rel.String()
}

func (u *upgradeCluster) describe(nd *dockerNode) string {
	return describeRelease(u.runs[nd], u.accepts[nd])
}

// previousRelease finds the previous release in the git history of this
// checkout, checks it out in a worktree under the test's temp dir and
// returns its name and the worktree. It skips, loudly, where the history
// is not there (no git, not a checkout, a shallow clone without it).
func previousRelease(t *testing.T) (rev, dir string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("SKIP: no git on PATH: the rolling upgrade test builds the previous release from this checkout's history")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Not t.Context(): the cleanup's commands run after it ends.
	git := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if _, err := git("rev-parse", "--git-dir"); err != nil {
		t.Skip("SKIP: not a git checkout: the rolling upgrade test builds the previous release from this checkout's history")
	}
	if tags, err := git("tag", "--list", "v*", "--sort=-v:refname"); err == nil && tags != "" {
		rev = strings.Fields(tags)[0]
	} else if _, err := git("cat-file", "-e", lastReleaseCommit+"^{commit}"); err == nil {
		rev = lastReleaseCommit
	} else if shallow, _ := git("rev-parse", "--is-shallow-repository"); shallow == "true" {
		t.Skipf("SKIP: this checkout is shallow and holds neither a tag v* nor the last release %s: the rolling upgrade test needs the previous release (git fetch --unshallow, or fetch-depth: 0 in CI)", lastReleaseCommit)
	} else {
		t.Skipf("SKIP: no tag v* and no commit %s (the last release) in this checkout's history: nothing to upgrade from", lastReleaseCommit)
	}
	dir = filepath.Join(t.TempDir(), "previous-release")
	if out, err := git("worktree", "add", "--detach", dir, rev); err != nil {
		t.Fatalf("git worktree add %s: %v\n%s", rev, err, out)
	}
	t.Cleanup(func() {
		if out, err := git("worktree", "remove", "--force", dir); err != nil {
			t.Errorf("git worktree remove: %v\n%s", err, out)
		}
		_, _ = git("worktree", "prune")
	})
	desc, _ := git("-C", dir, "log", "-1", "--format=%h %s")
	t.Logf("previous release: %s (%s)", rev, desc)
	return rev, dir
}

// buildImage builds tag with deploy/build-image.sh from src ("" for this
// tree) and logs how long it took and its size.
func buildImage(t *testing.T, tag, src string) {
	t.Helper()
	start := time.Now()
	build := exec.CommandContext(t.Context(), filepath.Join("..", "deploy", "build-image.sh"), tag)
	build.Env = append(os.Environ(), "QUORUMKV_COMPOSE_SECRET=0")
	if src != "" {
		build.Env = append(build.Env, "QUORUMKV_SRC="+src)
	}
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("deploy/build-image.sh %s: %v\n%s", tag, err, out)
	}
	size, _ := dockerRun(t.Context(), "image", "inspect", "-f", "{{.Size}}", tag)
	t.Logf("image %s built in %s (%s bytes)", tag, time.Since(start).Round(100*time.Millisecond), size)
}

// newUpgradeCluster builds both images and starts three containers of the
// previous release, with a cluster secret.
func newUpgradeCluster(t *testing.T, rev, oldTree string) *upgradeCluster {
	t.Helper()
	now := time.Now()
	c := &dockerCluster{t: t, run: fmt.Sprintf("qkve2e-%d-%d", now.Unix(), os.Getpid())}
	reapOldDockerRuns(t)
	reapOldUpgradeImages(t)
	u := &upgradeCluster{dockerCluster: c, oldImage: "quorumkv:" + c.run + "-old", runs: map[*dockerNode]release{}, accepts: map[*dockerNode]bool{}}
	// Cleanups run last first: the old image goes once c.cleanup removed
	// the containers (and the new image).
	t.Cleanup(func() { dockerRun(context.Background(), "rmi", u.oldImage) })
	t.Cleanup(c.cleanup)
	// The images are built one after the other: both stage the binary in
	// deploy/.build/image.
	buildImage(t, u.oldImage, oldTree)
	c.image = "quorumkv:" + c.run
	buildImage(t, c.image, "")

	var b [16]byte
	crand.Read(b[:])
	c.secret = hex.EncodeToString(b[:])
	c.makeNetwork()
	ports := addresses(t, 3)
	for i := range 3 {
		id := fmt.Sprintf("n%d", i+1)
		c.nodes = append(c.nodes, &dockerNode{id: id, container: c.run + "-" + id, ip: fmt.Sprintf("%s.%d", c.subnet, 11+i), http: ports[i].HTTP,
			volume: c.run + "-" + id})
	}
	for _, nd := range c.nodes {
		if _, err := dockerRun(t.Context(), "volume", "create", "--label", dockerLabel+"="+c.run, nd.volume); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	for _, nd := range c.nodes {
		u.startNode(nd, releaseOld, false)
	}
	u.waitWhole(90*time.Second, "3 containers of "+rev+" up and all alive")
	t.Logf("3 containers of %s up and all alive %s after the first start", rev, time.Since(start).Round(100*time.Millisecond))
	return u
}

// reapOldUpgradeImages removes previous-release images that killed runs
// left more than an hour ago (reapOldDockerRuns removes the rest).
func reapOldUpgradeImages(t *testing.T) {
	out, err := dockerRun(t.Context(), "images", "--filter", "reference=quorumkv:qkve2e-*-old", "--format", "{{.Tag}}")
	if err != nil {
		return
	}
	for _, tag := range strings.Fields(out) {
		f := strings.Split(strings.TrimSuffix(tag, "-old"), "-")
		if len(f) != 3 {
			continue
		}
		if sec, err := strconv.ParseInt(f[1], 10, 64); err == nil && time.Since(time.Unix(sec, 0)) > time.Hour {
			dockerRun(t.Context(), "rmi", "quorumkv:"+tag)
		}
	}
}

// startNode runs nd's container of rel on its volume.
func (u *upgradeCluster) startNode(nd *dockerNode, rel release, acceptV1 bool) {
	u.t.Helper()
	args := []string{"run", "-d", "--name", nd.container, "--label", dockerLabel + "=" + u.run,
		"--hostname", nd.id, "--network", u.network, "--ip", nd.ip, "--network-alias", nd.id,
		"--read-only", "-p", nd.http + ":8080", "-v", nd.volume + ":/data",
		"-e", "QUORUMKV_NODE_ID=" + nd.id,
		"-e", "QUORUMKV_SECRET=" + u.secret,
		"-e", "QUORUMKV_PROFILE=local"}
	switch rel {
	case releaseOld:
		// The previous release has no --advertise: it publishes the
		// addresses it binds, so it binds the container's own address
		// (the image's defaults are 0.0.0.0), and it has no `health`
		// command for the image's HEALTHCHECK.
		var join []string
		for _, o := range u.nodes {
			join = append(join, o.ip+":"+dockerGossipPort)
		}
		args = append(args, "--no-healthcheck",
			"-e", "QUORUMKV_HTTP="+nd.ip+":8080", "-e", "QUORUMKV_RPC="+nd.ip+":7946",
			"-e", "QUORUMKV_GOSSIP="+nd.ip+":"+dockerGossipPort, "-e", "QUORUMKV_RESP="+nd.ip+":6379",
			"-e", "QUORUMKV_JOIN="+strings.Join(join, ","), u.oldImage)
	case releaseNew:
		// Protected mode is waived as in dockerCluster.startNode: a
		// network of the test's own, checks without tokens.
		args = append(args, "-e", "QUORUMKV_ADVERTISE="+nd.id, "-e", "QUORUMKV_JOIN="+u.joinList(), "-e", "QUORUMKV_INSECURE=true")
		if acceptV1 {
			args = append(args, "-e", "QUORUMKV_ACCEPT_V1_PEERS=true")
		}
		args = append(args, u.image)
	}
	if _, err := dockerRun(u.t.Context(), args...); err != nil {
		u.t.Fatal(err)
	}
	u.runs[nd], u.accepts[nd] = rel, acceptV1
}

// replace stops nd's container gracefully (SIGTERM: the agent drains and
// leaves gossip), removes it and starts one of rel on the same volume.
func (u *upgradeCluster) replace(nd *dockerNode, rel release, acceptV1 bool) {
	u.t.Helper()
	u.docker("stop", "-t", "30", nd.container)
	u.docker("rm", nd.container)
	u.startNode(nd, rel, acceptV1)
}

// waitWhole waits until every node answers (new ones /readyz, old ones,
// which have none, /healthz) and lists all three alive.
func (u *upgradeCluster) waitWhole(timeout time.Duration, what string) time.Duration {
	u.t.Helper()
	start := time.Now()
	err := poll(timeout, what, func() bool {
		for _, nd := range u.nodes {
			path := "/readyz"
			if u.runs[nd] == releaseOld {
				path = "/healthz"
			}
			res, err := dockerHTTP.Get(nd.url(path))
			if err != nil {
				return false
			}
			res.Body.Close()
			if res.StatusCode != http.StatusOK || dockerMembersAlive(nd) != len(u.nodes) {
				return false
			}
		}
		return true
	})
	if err != nil {
		u.t.Fatal(err)
	}
	return time.Since(start)
}

// probeAllPairs writes a key through each node at w=3 and reads it
// through each at r=3: with N=3 every node coordinates a write to both
// others and a read from both, so every pair, old and new, must talk both
// ways. It retries for a few seconds (the restarted node's peers may
// still redial it).
func (u *upgradeCluster) probeAllPairs(phase string) {
	u.t.Helper()
	for _, via := range u.nodes {
		key := fmt.Sprintf("probe-%d-%s", time.Now().UnixNano(), via.id)
		var why string
		err := poll(15*time.Second, "w=3 write and r=3 reads of "+key, func() bool {
			status, msg := dockerPutQuery(u.t.Context(), via, key, "probe", "", "?w=3&timeout=2s")
			if status/100 != 2 {
				why = fmt.Sprintf("put via %s: %d %s", via.id, status, msg)
				return false
			}
			for _, nd := range u.nodes {
				vals, _, found, err := dockerGet(u.t.Context(), nd, key, "?r=3&timeout=2s")
				if err != nil || !found || len(vals) != 1 || vals[0] != "probe" {
					why = fmt.Sprintf("get via %s: %q found %v, %v", nd.id, vals, found, err)
					return false
				}
			}
			return true
		})
		if err != nil {
			u.t.Fatalf("%s: %v: %s", phase, err, why)
		}
	}
}

// statusWarnings is a new node's /status warnings.
func statusWarnings(nd *dockerNode) ([]string, error) {
	res, err := dockerHTTP.Get(nd.url("/status"))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var body struct {
		Warnings []string `json:"warnings"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body.Warnings, nil
}

// checkLegacyPeers checks that the freshly upgraded nd lists every node
// still on the previous release as a version 1 peer (the load keeps
// connections to them busy).
func (u *upgradeCluster) checkLegacyPeers(nd *dockerNode) {
	u.t.Helper()
	var olds []string
	for _, o := range u.nodes {
		if u.runs[o] == releaseOld {
			olds = append(olds, o.id+" at ")
		}
	}
	var last []string
	err := poll(15*time.Second, nd.id+" lists its version 1 peers", func() bool {
		last, _ = statusWarnings(nd)
		for _, w := range last {
			if !strings.HasPrefix(w, "accept-v1-peers is on") {
				continue
			}
			if len(olds) == 0 {
				return strings.Contains(w, "no version 1 connection is open now")
			}
			ok := true
			for _, o := range olds {
				ok = ok && strings.Contains(w, o)
			}
			return ok
		}
		return false
	})
	if err != nil {
		u.t.Fatalf("%v: warnings %q, want version 1 peers %q", err, last, olds)
	}
	u.t.Logf("%s's /status: %s", nd.id, strings.Join(last, " | "))
}

// checkNoLegacyPeers checks every node's /status: with the setting on, it
// says no version 1 connection is open (nodes of this release speak
// version 2 with each other); off, it says nothing of the setting.
func (u *upgradeCluster) checkNoLegacyPeers(on bool) {
	u.t.Helper()
	for _, nd := range u.nodes {
		var last []string
		err := poll(15*time.Second, nd.id+"'s /status upgrade warning", func() bool {
			last, _ = statusWarnings(nd)
			for _, w := range last {
				if strings.HasPrefix(w, "accept-v1-peers is on") {
					return on && strings.Contains(w, "no version 1 connection is open now")
				}
			}
			return !on
		})
		if err != nil {
			u.t.Fatalf("%v: warnings %q", err, last)
		}
	}
}

// oracleRegisters is a register workload judged by bench/oracle: clients
// read a few shared keys (r=2) and write a new tagged value with the
// read's context (w=2), through every node in turn. The oracle counts a
// value superseded only by a write whose context came from an answer that
// showed it, so a merge that dropped a sibling between releases is caught
// as a lost write.
type oracleRegisters struct {
	t     *testing.T
	keys  int
	start time.Time
	mu    sync.Mutex
	o     *oracle.Oracle
	bad   badAnswers
}

func newOracleRegisters(t *testing.T, keys int) *oracleRegisters {
	var b [4]byte
	crand.Read(b[:])
	o, err := oracle.New(oracle.Config{Run: uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), TombstonesHidden: true})
	if err != nil {
		t.Fatal(err)
	}
	return &oracleRegisters{t: t, keys: keys, start: time.Now(), o: o}
}

func (w *oracleRegisters) since() time.Duration { return time.Since(w.start) }

// run is client c's loop until ctx ends.
func (w *oracleRegisters) run(ctx context.Context, c int, nodes []*dockerNode, tally *phaseTally) {
	for seq := 0; ctx.Err() == nil; seq++ {
		i := (c + seq) % len(nodes)
		nd, key := nodes[i], fmt.Sprintf("oreg-%d", (c+seq)%w.keys)
		invoke := w.since()
		vals, token, _, err := dockerGet(ctx, nd, key, "?r=2&timeout=2s")
		if err != nil {
			var ue *unexpectedStatus
			if errors.As(err, &ue) && ue.status/100 == 4 {
				w.bad.add("%v", err)
			} else if ctx.Err() == nil {
				tally.count("register", opFailed)
			}
			sleepCtx(ctx, 20*time.Millisecond)
			continue
		}
		values := make([][]byte, len(vals))
		for j, v := range vals {
			values[j] = []byte(v)
		}
		w.mu.Lock()
		seen, verdict := w.o.Read(oracle.Read{Key: key, Values: values, Invoke: invoke, Done: w.since(), Coord: i})
		op := w.o.Invoke(oracle.Write{Key: key, Context: seen, Invoke: w.since(), Coord: i})
		val := w.o.AppendTag(nil, op)
		w.mu.Unlock()
		if verdict.Stale {
			tally.count("register", opStale)
		}
		status, msg := dockerPut(ctx, nd, key, string(val), token)
		out := oracle.Unknown
		switch {
		case status/100 == 2:
			out = oracle.Acked
			tally.count("register", opOK)
		case status/100 == 4:
			out = oracle.Failed
			w.bad.add("put %s via %s: %d %s", key, nd.id, status, msg)
		case status != 0:
			out = oracle.Failed
			fallthrough
		case ctx.Err() == nil:
			tally.count("register", opFailed)
		}
		w.mu.Lock()
		w.o.Complete(op, out, w.since())
		w.mu.Unlock()
		sleepCtx(ctx, 5*time.Millisecond)
	}
}

// judge takes every key's converged copy as its final read and fails the
// test on any lost, resurrected or unexpected write.
func (w *oracleRegisters) judge(nodes []*dockerNode, timeout time.Duration) {
	t := w.t
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, key := range w.o.Keys() {
		var final dockerCopy
		var why string
		err := poll(timeout, key+" converged", func() bool {
			final, why = dockerConverged(t.Context(), nodes, key, 3)
			return why == ""
		})
		if err != nil {
			t.Fatalf("%v: %s", err, why)
		}
		values := make([][]byte, len(final.values))
		for i, v := range final.values {
			values[i] = []byte(v)
		}
		w.o.Final(key, values)
	}
	r := w.o.Result()
	t.Logf("register oracle: %d writes, %d acknowledged, %d failed, %d unknown, %d indeterminate (failed or unknown, then seen); lost %d, resurrected %d, unexpected %d, unverified %d",
		r.Writes, r.Acked, r.Failed, r.Unknown, r.Indeterminate, r.Lost, r.Resurrected, r.Unexpected, r.Unverified)
	if r.Acked == 0 {
		t.Error("the register workload acknowledged no write")
	}
	if r.Lost > 0 || r.Resurrected > 0 || r.Unexpected > 0 || r.Unverified > 0 {
		t.Errorf("register oracle: lost %v, resurrected %v, unexpected %d, unverified %d", r.LostWrites, r.Resurrections, r.Unexpected, r.Unverified)
	}
}
