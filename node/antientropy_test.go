package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/vclock"
)

// fakeClock is a wall clock the test moves by hand (node.Config.Now).
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// aeOpts returns cluster options with the anti-entropy config adjusted by
// f for every node.
func aeOpts(inMemory bool, f func(i int, c *node.Config)) nodetest.Options {
	return nodetest.Options{InMemory: inMemory, Config: f}
}

// aeTwoNodes configures a 2-node cluster with N=2 (each node's only peer
// is the other), no schedule, no rate cap.
func aeTwoNodes(extra func(c *node.Config)) func(int, *node.Config) {
	return func(_ int, c *node.Config) {
		c.Defaults = quorum.Params{N: 2, R: 1, W: 1, Timeout: 2 * time.Second}
		c.AntiEntropy.Interval = 0
		c.AntiEntropy.KeysPerSecond = 0
		if extra != nil {
			extra(c)
		}
	}
}

// aeSettle waits until every node finished the exchanges it starts on its
// own at start (an empty store marks every partition it replicates), so a
// test's own repairs see the divergence it makes.
func aeSettle(t testing.TB, c *nodetest.Cluster) {
	t.Helper()
	// replicated counts the partitions nd is a primary of at its default
	// N: the ones it marks at start.
	replicated := func(nd *node.Node) int {
		n, _ := nd.Status().Defaults["n"].(int)
		r, cnt := nd.Ring(), 0
		for p := range r.Partitions() {
			if r.IsPrimary(uint32(p), n, ring.NodeID(nd.ID())) {
				cnt++
			}
		}
		return cnt
	}
	// On a timeout the message says where each node stood, so a failure on
	// a loaded CI machine can be told apart from a stuck schedule.
	state := func() string {
		var b strings.Builder
		for _, nd := range c.Nodes() {
			st := nd.Status().AntiEntropy
			fmt.Fprintf(&b, "\n  %s: ring %v, gossip members %d, exchanges %d (failed %d), partitions %d/%d, running %v, quarantined %v %q",
				nd.ID(), nd.Ring().Members(), len(nd.Members()), st.Exchanges, st.ExchangesFailed,
				len(st.Partitions), replicated(nd), st.Running, st.Quarantined, st.QuarantineReason)
		}
		return b.String()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		done := true
		for _, nd := range c.Nodes() {
			st := nd.Status().AntiEntropy
			if st.Running != nil || len(st.Partitions) < replicated(nd) {
				done = false
				break
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 60s waiting for the start-up exchanges:%s", state())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func aePut(t testing.TB, nd *node.Node, key, val string, vctx vclock.Vector, p quorum.Params) *quorum.WriteResult {
	t.Helper()
	res, err := nd.Coordinator().Put(context.Background(), quorum.PutRequest{Key: []byte(key), Value: vclock.Value{Data: []byte(val)}, Context: vctx, Params: p})
	if err != nil {
		t.Fatalf("put %s via %s: %v", key, nd.ID(), err)
	}
	return res
}

func aeDelete(t testing.TB, nd *node.Node, key string, vctx vclock.Vector, p quorum.Params) {
	t.Helper()
	if _, err := nd.Coordinator().Put(context.Background(), quorum.PutRequest{Key: []byte(key), Value: vclock.Value{Deleted: true}, Context: vctx, Params: p}); err != nil {
		t.Fatalf("delete %s via %s: %v", key, nd.ID(), err)
	}
}

func aeLocal(t testing.TB, nd *node.Node, key string) vclock.Set {
	t.Helper()
	s, _, err := nd.ReadLocal([]byte(key))
	if err != nil {
		t.Fatalf("local read of %s on %s: %v", key, nd.ID(), err)
	}
	return s
}

// aeSet is a one-sibling set written by actor node#epoch.
func aeSet(actor string, epoch uint64, val string) vclock.Set {
	s, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: actor, Epoch: epoch}, vclock.Value{Data: []byte(val)})
	return s
}

// aeCheckTrees waits until every node's kept trees equal trees built from
// its store. It polls: a write acknowledged at W < N may still be landing
// on the last replica, between its store commit and its tree update.
func aeCheckTrees(t testing.TB, c *nodetest.Cluster) {
	t.Helper()
	var last error
	check := func() bool {
		for _, nd := range c.Nodes() {
			if nd == nil {
				continue
			}
			if last = nd.CheckTrees(); last != nil {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(10 * time.Second)
	for !check() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %v", last)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func aeRepair(t testing.TB, nd *node.Node, p int) node.RepairReport {
	t.Helper()
	rep, err := nd.Repair(context.Background(), p)
	if err != nil {
		t.Fatalf("repair on %s: %v", nd.ID(), err)
	}
	return rep
}

// The trees kept current by every kind of write (client writes and
// deletes, direct merges, read repair, hint delivery, anti-entropy repair)
// equal trees built from scratch from each node's store.
func TestAETreesMatchStoreAfterEveryKindOfWrite(t *testing.T) {
	c := nodetest.NewCluster(t, 3, aeOpts(false, func(_ int, cfg *node.Config) {
		cfg.AntiEntropy.Interval = 0
	}))
	rng := rand.New(rand.NewPCG(3, 4))
	p2 := quorum.Params{N: 3, R: 2, W: 2}
	keys := make([]string, 60)
	for i := range keys {
		keys[i] = fmt.Sprintf("tree-%d", i)
	}
	// Client writes, overwrites with context, blind concurrent writes, deletes.
	for i := range 300 {
		k := keys[rng.IntN(len(keys))]
		nd := c.Node(rng.IntN(3))
		var vctx vclock.Vector
		if rng.IntN(2) == 0 {
			vctx = aeLocal(t, nd, k).Context
		}
		if rng.IntN(5) == 0 {
			aeDelete(t, nd, k, vctx, p2)
		} else {
			aePut(t, nd, k, fmt.Sprint(i), vctx, p2)
		}
	}
	aeCheckTrees(t, c)

	// Direct merges diverge the replicas; read repair (R=3) repairs them.
	for i := range 20 {
		if err := c.Node(i%3).MergeLocal(t.Context(), []byte(keys[i]), aeSet("x", uint64(i+1), "merged")); err != nil {
			t.Fatal(err)
		}
	}
	aeCheckTrees(t, c)
	for _, k := range keys[:20] {
		if _, err := c.Node(0).Coordinator().Get(t.Context(), quorum.GetRequest{Key: []byte(k), Params: quorum.Params{N: 3, R: 3}}); err != nil {
			t.Fatal(err)
		}
	}
	c.WaitFor(10*time.Second, "read repair", func() bool {
		for _, k := range keys[:20] {
			if !aeLocal(t, c.Node(0), k).Equal(aeLocal(t, c.Node(1), k)) || !aeLocal(t, c.Node(1), k).Equal(aeLocal(t, c.Node(2), k)) {
				return false
			}
		}
		return true
	})
	aeCheckTrees(t, c)

	// Hint delivery: writes while node 3 is isolated are hinted, then
	// delivered after healing.
	c.Isolate(2)
	for i, k := range keys[20:40] {
		aePut(t, c.Node(i%2), k, "hinted", nil, quorum.Params{N: 3, R: 1, W: 2, Timeout: 500 * time.Millisecond})
	}
	c.Heal()
	c.WaitFor(15*time.Second, "hints delivered to n3", func() bool {
		for _, k := range keys[20:40] {
			if !values2(aeLocal(t, c.Node(2), k))["hinted"] {
				return false
			}
		}
		return true
	})
	aeCheckTrees(t, c)

	// Anti-entropy repair writes.
	for i := range 20 {
		if err := c.Node(1).MergeLocal(t.Context(), []byte(keys[40+i]), aeSet("y", uint64(i+1), "ae")); err != nil {
			t.Fatal(err)
		}
	}
	rep := aeRepair(t, c.Node(0), -1)
	if rep.RepairedLocal == 0 {
		t.Fatalf("repair wrote nothing locally: %+v", rep)
	}
	aeCheckTrees(t, c)

	// A restart rebuilds the trees from the store; still equal.
	c.Kill(1)
	c.Restart(1)
	c.WaitConverged(10 * time.Second)
	aeCheckTrees(t, c)
}

func values2(s vclock.Set) map[string]bool {
	out := map[string]bool{}
	for _, sb := range s.Live() {
		out[string(sb.Value.Data)] = true
	}
	return out
}

// loadBoth writes the same n keys (keyLen-byte keys, valLen-byte values)
// into both nodes' stores directly.
func loadBoth(t testing.TB, c *nodetest.Cluster, n, valLen int) [][]byte {
	t.Helper()
	keys := make([][]byte, n)
	sets := make([]vclock.Set, n)
	val := make([]byte, valLen)
	for i := range val {
		val[i] = 'v'
	}
	for i := range n {
		keys[i] = fmt.Appendf(nil, "key-%011d", i) // 15 bytes
		sets[i], _ = vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "w", Epoch: 1}, vclock.Value{Data: val})
	}
	for i := range 2 {
		if err := c.Node(i).LoadLocal(t.Context(), keys, sets, 32); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// diverge makes d keys differ between the two nodes: a third only on node
// 0, a third only on node 1, a third with different concurrent values on
// each. It uses fresh keys (prefix) so earlier rounds do not matter.
func diverge(t testing.TB, c *nodetest.Cluster, prefix string, d, valLen int) {
	t.Helper()
	val := string(make([]byte, valLen))
	for i := range d {
		k := fmt.Appendf(nil, "%s-%09d", prefix, i)
		switch i % 3 {
		case 0:
			if err := c.Node(0).MergeLocal(t.Context(), k, aeSet("a", 1, val)); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := c.Node(1).MergeLocal(t.Context(), k, aeSet("b", 1, val)); err != nil {
				t.Fatal(err)
			}
		default:
			if err := c.Node(0).MergeLocal(t.Context(), k, aeSet("a", 2, val)); err != nil {
				t.Fatal(err)
			}
			if err := c.Node(1).MergeLocal(t.Context(), k, aeSet("b", 2, val)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func sameRoots(t testing.TB, c *nodetest.Cluster, i, j int) {
	t.Helper()
	for p := range uint32(c.Node(i).Ring().Partitions()) {
		if c.Node(i).TreeRoot(p) != c.Node(j).TreeRoot(p) {
			t.Fatalf("partition %d: roots of %s and %s differ", p, c.ID(i), c.ID(j))
		}
	}
}

// Two replicas diverged by d keys (both directions and concurrent values)
// converge after one exchange per partition: equal trees, equal sets.
func TestAEOneExchangeConverges(t *testing.T) {
	c := nodetest.NewCluster(t, 2, aeOpts(true, aeTwoNodes(nil)))
	aeSettle(t, c)
	loadBoth(t, c, 3000, 20)
	const d = 300
	diverge(t, c, "div", d, 20)
	rep := aeRepair(t, c.Node(0), -1)
	if rep.Failed != 0 || rep.KeysDiffering != d {
		t.Fatalf("repair: %d failed, %d differing; want 0 and %d (%+v)", rep.Failed, rep.KeysDiffering, d, rep)
	}
	// 100 keys only on node 1 and 100 concurrent ones are written here;
	// 100 only here and the 100 concurrent ones are written there.
	if rep.RepairedLocal != 2*d/3 || rep.RepairedRemote != 2*d/3 {
		t.Fatalf("repaired %d here and %d there; want %d each", rep.RepairedLocal, rep.RepairedRemote, 2*d/3)
	}
	sameRoots(t, c, 0, 1)
	for i := range d {
		k := fmt.Sprintf("div-%09d", i)
		a, b := aeLocal(t, c.Node(0), k), aeLocal(t, c.Node(1), k)
		if !a.Equal(b) {
			t.Fatalf("%s differs after repair: %v vs %v", k, a, b)
		}
		if i%3 == 2 && len(a.Siblings) != 2 {
			t.Fatalf("%s: concurrent values not kept as siblings: %v", k, a)
		}
	}
	aeCheckTrees(t, c)
	if again := aeRepair(t, c.Node(1), -1); again.KeysDiffering != 0 {
		t.Fatalf("second repair still found %d differing keys", again.KeysDiffering)
	}
}

// Bytes on the wire for one repair round (every partition, one exchange
// each) with n = 100,000 keys and d differing: with d = 0 only the 256
// roots travel (one Hashes round trip per partition); then bytes grow with
// d, within a small multiple of d x (key + value) plus the tree levels.
func TestAEBytesGrowWithDivergence(t *testing.T) {
	if testing.Short() || aeRace {
		t.Skip("loads 100,000 keys into two nodes: runs without -short and -race")
	}
	const (
		n      = 100000
		valLen = 100
		keyLen = 15
	)
	c := nodetest.NewCluster(t, 2, aeOpts(true, aeTwoNodes(nil)))
	aeSettle(t, c)
	loadBoth(t, c, n, valLen)
	a, b := c.ID(0), c.ID(1)
	wire := func() uint64 {
		st := c.Net.Stats()
		return st[transport.Link{From: a, To: b}].Bytes + st[transport.Link{From: b, To: a}].Bytes
	}
	parts := c.Node(0).Ring().Partitions()
	var base uint64
	var prev uint64
	for _, d := range []int{0, 10, 1000} {
		diverge(t, c, fmt.Sprintf("d%d", d), d, valLen)
		c.Net.ResetStats()
		rep := aeRepair(t, c.Node(0), -1)
		got := wire()
		t.Logf("n=%d d=%d: %d bytes on the wire (report: %d sent, %d received), %d exchanges, %d differing",
			n, d, got, rep.BytesSent, rep.BytesReceived, rep.Exchanges, rep.KeysDiffering)
		if rep.KeysDiffering != d || rep.Failed != 0 {
			t.Fatalf("d=%d: found %d differing, %d failed", d, rep.KeysDiffering, rep.Failed)
		}
		if got != uint64(rep.BytesSent+rep.BytesReceived) {
			t.Fatalf("d=%d: the network counted %d bytes, the report %d", d, got, rep.BytesSent+rep.BytesReceived)
		}
		sameRoots(t, c, 0, 1)
		if d == 0 {
			// Only roots: per partition one HashesRequest (tree shape,
			// level 0, node 0) and one HashesResponse (one hash).
			if rep.Exchanges != parts {
				t.Fatalf("d=0: %d exchanges, want %d", rep.Exchanges, parts)
			}
			if got > uint64(parts)*40 {
				t.Fatalf("d=0: %d bytes, more than %d partitions x 40 bytes of roots", got, parts)
			}
			base = got
			continue
		}
		if got <= prev {
			t.Fatalf("d=%d: %d bytes, not more than %d for fewer differences", d, got, prev)
		}
		// Per differing key: at most 4 x (key + value + 32) of sets (read,
		// write back, both ways for concurrent values) plus, per tree
		// level below the root (3 at LeafBits 10, fanout 16), 16 hashes of
		// 9 bytes and the requests for them, plus its bucket's key list.
		perKey := uint64(4*(keyLen+valLen+32) + 3*(16*9+40) + 4*(keyLen+20))
		if bound := base + uint64(d)*perKey; got > bound {
			t.Fatalf("d=%d: %d bytes over the bound %d (%d per key)", d, got, bound, perKey)
		}
		prev = got
	}
}

// A node whose data directory was deleted and that restarts empty with the
// same id gets every key back from anti-entropy alone (no client reads),
// with sets equal to the other replicas'.
func TestAERestoresWipedNode(t *testing.T) {
	c := nodetest.NewCluster(t, 3, aeOpts(false, func(_ int, cfg *node.Config) {
		cfg.AntiEntropy.Interval = 2 * time.Second
	}))
	p := quorum.Params{N: 3, R: 2, W: 3}
	const n = 2000
	keys := make([]string, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				keys[i] = fmt.Sprintf("wipe-%05d", i)
				if i%10 == 0 {
					// a few siblings and tombstones among them
					aePut(t, c.Node(0), keys[i], "a", nil, p)
					aePut(t, c.Node(1), keys[i], "b", nil, p)
				} else {
					aePut(t, c.Node(i%3), keys[i], fmt.Sprint(i), nil, p)
				}
				if i%25 == 0 {
					aeDelete(t, c.Node(2), keys[i], aeLocal(t, c.Node(2), keys[i]).Context, p)
				}
			}
		})
	}
	wg.Wait()
	dir := c.Node(2).Status().DataDir
	c.Kill(2)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.Restart(2)
	c.WaitConverged(10 * time.Second)
	c.WaitFor(30*time.Second, "the wiped node holds every key again", func() bool {
		for _, k := range keys {
			if !aeLocal(t, c.Node(2), k).Equal(aeLocal(t, c.Node(0), k)) {
				return false
			}
		}
		return true
	})
	t.Logf("%d keys restored in %s", n, time.Since(start).Round(time.Millisecond))
	for _, k := range keys {
		s0, s1, s2 := aeLocal(t, c.Node(0), k), aeLocal(t, c.Node(1), k), aeLocal(t, c.Node(2), k)
		if !s2.Equal(s0) || !s2.Equal(s1) || len(s2.Siblings) == 0 {
			t.Fatalf("%s: restored %v, others %v and %v", k, s2, s0, s1)
		}
	}
	aeCheckTrees(t, c)
	// The wiped node pulls (repaired here) and its peers' scheduled
	// exchanges push (repaired there): together they wrote every key.
	written := c.Node(2).Status().AntiEntropy.RepairedLocal
	for i := range 2 {
		written += c.Node(i).Status().AntiEntropy.RepairedRemote
	}
	if written < n {
		t.Fatalf("status says %d keys written to the wiped node, want >= %d", written, n)
	}
}

// tombCluster is a 3-node cluster on a fake clock with a 1h grace, 3h max
// downtime and no schedule: the test drives exchanges and reaping.
func tombCluster(t *testing.T) (*nodetest.Cluster, *fakeClock) {
	clk := &fakeClock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	c := nodetest.NewCluster(t, 3, aeOpts(false, func(_ int, cfg *node.Config) {
		cfg.Now = clk.Now
		cfg.AntiEntropy.Interval = 0
		cfg.AntiEntropy.TombstoneGrace = time.Hour
		cfg.AntiEntropy.MaxDowntime = 3 * time.Hour
		cfg.Hints.MaxAge = 30 * time.Minute
	}))
	aeSettle(t, c)
	return c, clk
}

func hasRecord(t testing.TB, nd *node.Node, key string) bool {
	t.Helper()
	_, err := nd.RawRecord([]byte(key))
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	return true
}

func reapAll(t testing.TB, c *nodetest.Cluster) (confirmed, reaped, blocked int) {
	t.Helper()
	for _, nd := range c.Nodes() {
		if nd == nil {
			continue
		}
		st, err := nd.ReapTombstones(context.Background())
		if err != nil {
			t.Fatalf("reap on %s: %v", nd.ID(), err)
		}
		confirmed += st.Confirmed
		reaped += st.Reaped
		blocked += st.Blocked
	}
	return
}

func notFoundEverywhere(t testing.TB, c *nodetest.Cluster, key string) {
	t.Helper()
	for i, nd := range c.Nodes() {
		res, err := nd.Coordinator().Get(context.Background(), quorum.GetRequest{Key: []byte(key), Params: quorum.Params{N: 3, R: 3}})
		if err != nil {
			t.Fatalf("get %s via %s: %v", key, c.ID(i), err)
		}
		if live := res.Set.Live(); len(live) != 0 {
			t.Fatalf("%s via %s: the deleted value is back: %v", key, c.ID(i), live)
		}
		if !aeLocal(t, nd, key).IsDeleted() {
			t.Fatalf("%s: %s's own copy has a live value", key, c.ID(i))
		}
	}
}

// A replica down for less than MaxDowntime/2 blocks reaping while it is
// away; when it returns it gets the tombstone, and then every replica
// reaps it after the grace.
func TestAETombstoneWaitsForShortlyDownReplica(t *testing.T) {
	c, clk := tombCluster(t)
	all := quorum.Params{N: 3, R: 3, W: 3}
	w := aePut(t, c.Node(0), "doomed", "v1", nil, all)
	c.Kill(2)
	aeDelete(t, c.Node(0), "doomed", w.Set.Context, quorum.Params{N: 3, R: 2, W: 2})

	clk.Add(70 * time.Minute) // past the grace, under MaxDowntime/2
	if conf, reaped, blocked := reapAll(t, c); conf != 0 || reaped != 0 || blocked == 0 {
		t.Fatalf("with n3 down 70m: confirmed %d, reaped %d, blocked %d; want 0, 0, >0", conf, reaped, blocked)
	}
	if !hasRecord(t, c.Node(0), "doomed") || !hasRecord(t, c.Node(1), "doomed") {
		t.Fatal("tombstone reaped while a primary was down")
	}

	c.Restart(2)
	c.WaitConverged(10 * time.Second)
	if c.Node(2).Quarantined() {
		t.Fatal("a node down 70m (max downtime 3h) is quarantined")
	}
	// n3 still holds v1; anti-entropy (or its hint) brings the tombstone.
	aeRepair(t, c.Node(0), -1)
	if !aeLocal(t, c.Node(2), "doomed").IsDeleted() {
		t.Fatalf("returned replica still has %v", aeLocal(t, c.Node(2), "doomed"))
	}
	notFoundEverywhere(t, c, "doomed")

	if conf, reaped, _ := reapAll(t, c); conf != 3 || reaped != 0 {
		t.Fatalf("all primaries hold it: confirmed %d, reaped %d; want 3 and 0", conf, reaped)
	}
	clk.Add(30 * time.Minute)
	if _, reaped, _ := reapAll(t, c); reaped != 0 {
		t.Fatalf("reaped %d before the grace ended", reaped)
	}
	clk.Add(31 * time.Minute)
	if _, reaped, _ := reapAll(t, c); reaped != 3 {
		t.Fatalf("after the grace: reaped %d, want 3", reaped)
	}
	for i, nd := range c.Nodes() {
		if hasRecord(t, nd, "doomed") {
			t.Fatalf("%s still stores the tombstone", c.ID(i))
		}
	}
	aeRepair(t, c.Node(1), -1)
	notFoundEverywhere(t, c, "doomed")
	aeCheckTrees(t, c)
}

// A replica down longer than MaxDowntime lets the others reap without it;
// when it comes back it finds out, drops its stale copy and refills, and
// the deleted value never returns.
func TestAETombstoneReapedWithoutLongDownReplica(t *testing.T) {
	c, clk := tombCluster(t)
	all := quorum.Params{N: 3, R: 3, W: 3}
	w := aePut(t, c.Node(0), "doomed", "v1", nil, all)
	aePut(t, c.Node(1), "kept", "stays", nil, all)
	c.Kill(2)
	aeDelete(t, c.Node(0), "doomed", w.Set.Context, quorum.Params{N: 3, R: 2, W: 2})
	aePut(t, c.Node(0), "written-while-away", "new", nil, quorum.Params{N: 3, R: 2, W: 2})

	clk.Add(2 * time.Hour)
	if conf, _, _ := reapAll(t, c); conf != 0 {
		t.Fatalf("confirmed %d with n3 dead for 2h (< max downtime)", conf)
	}
	clk.Add(61 * time.Minute) // n3 dead for 3h01m: excused
	if conf, _, _ := reapAll(t, c); conf != 2 {
		t.Fatalf("confirmed %d, want 2 (n1, n2)", conf)
	}
	clk.Add(61 * time.Minute)
	if _, reaped, _ := reapAll(t, c); reaped != 2 {
		t.Fatalf("reaped %d, want 2", reaped)
	}
	for i := range 2 {
		if hasRecord(t, c.Node(i), "doomed") {
			t.Fatalf("%s still stores the tombstone", c.ID(i))
		}
		ex := c.Node(i).Status().AntiEntropy.Excluded
		if len(ex) != 1 || ex[0].Node != c.ID(2) {
			t.Fatalf("%s's exclusion ledger: %v, want [n3]", c.ID(i), ex)
		}
	}

	// n3 returns with v1 still on disk: it must not bring it back.
	c.Restart(2)
	c.WaitConverged(10 * time.Second)
	wipedAndCleared(t, c, func() {
		if hasRecord(t, c.Node(2), "doomed") {
			t.Fatal("n3 kept its stale copy")
		}
	})
	for _, k := range []string{"kept", "written-while-away"} {
		if s := aeLocal(t, c.Node(2), k); !s.Equal(aeLocal(t, c.Node(0), k)) || len(s.Live()) != 1 {
			t.Fatalf("%s not refilled on n3: %v", k, s)
		}
	}
	aeCheckTrees(t, c)
}

// A tombstone is not reaped while a primary holds something else (a value
// written concurrently with the delete): that value is live, not a
// resurrection, and every replica ends up with both.
func TestAETombstoneNotReapedWhileAPrimaryDiffers(t *testing.T) {
	c, clk := tombCluster(t)
	all := quorum.Params{N: 3, R: 3, W: 3}
	w := aePut(t, c.Node(0), "k", "v1", nil, all)
	aeDelete(t, c.Node(0), "k", w.Set.Context, all)
	// n2 gets a concurrent write that no other replica saw yet.
	if err := c.Node(1).MergeLocal(t.Context(), []byte("k"), aeSet("other", 1, "concurrent")); err != nil {
		t.Fatal(err)
	}
	clk.Add(2 * time.Hour)
	conf, reaped, blocked := reapAll(t, c)
	if conf != 0 || reaped != 0 || blocked == 0 {
		t.Fatalf("confirmed %d, reaped %d, blocked %d; want 0, 0, >0", conf, reaped, blocked)
	}
	aeRepair(t, c.Node(1), -1)
	for i := range 3 {
		if !values2(aeLocal(t, c.Node(i), "k"))["concurrent"] {
			t.Fatalf("%s lost the concurrent value", c.ID(i))
		}
	}
}

// The scheduler runs one exchange at a time, whatever asks for them
// (schedule and on-demand repairs together).
func TestAEOneExchangeAtATime(t *testing.T) {
	c := nodetest.NewCluster(t, 3, aeOpts(true, func(_ int, cfg *node.Config) {
		cfg.AntiEntropy.Interval = 300 * time.Millisecond
	}))
	c.Net.Delay(c.ID(1), c.ID(0), func(*rand.Rand) time.Duration { return time.Millisecond })
	var cur, peak, total atomic.Int32
	c.Node(0).OnExchange(func(start bool) {
		if !start {
			cur.Add(-1)
			return
		}
		total.Add(1)
		if v := cur.Add(1); v > peak.Load() {
			peak.Store(v)
		}
	})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { aeRepair(t, c.Node(0), -1) })
	}
	wg.Wait()
	if peak.Load() != 1 || total.Load() < 2*2*256 {
		t.Fatalf("peak concurrency %d over %d exchanges; want 1 over >= %d", peak.Load(), total.Load(), 2*2*256)
	}
}

// KeysPerSecond paces the repair: 1500 differing keys at 500 keys/s (burst
// 256) take at least (1500-256)/500 = 2.5s.
func TestAERepairRespectsKeysPerSecond(t *testing.T) {
	c := nodetest.NewCluster(t, 2, aeOpts(true, aeTwoNodes(func(cfg *node.Config) {
		cfg.AntiEntropy.KeysPerSecond = 500
	})))
	aeSettle(t, c)
	diverge(t, c, "rate", 1500, 10)
	start := time.Now()
	rep := aeRepair(t, c.Node(0), -1)
	took := time.Since(start)
	if rep.KeysDiffering != 1500 {
		t.Fatalf("differing %d, want 1500", rep.KeysDiffering)
	}
	if took < 2400*time.Millisecond {
		t.Fatalf("1500 keys at 500/s repaired in %s", took)
	}
	sameRoots(t, c, 0, 1)
}

// POST /admin/repair runs the exchanges and answers with what they did;
// bad or unowned partitions are refused.
func TestAERepairOverHTTP(t *testing.T) {
	c := nodetest.NewCluster(t, 4, aeOpts(true, func(_ int, cfg *node.Config) {
		cfg.AntiEntropy.Interval = 0
	}))
	// The exchanges every node starts on its own at start (empty stores)
	// would otherwise repair the divergence before the test's own repair.
	aeSettle(t, c)
	nd := c.Node(0)
	r := nd.Ring()
	var mine, other int = -1, -1
	for p := range r.Partitions() {
		if r.IsPrimary(uint32(p), 3, ring.NodeID(nd.ID())) {
			if mine < 0 {
				mine = p
			}
		} else if other < 0 {
			other = p
		}
	}
	// Diverge one key of partition mine on another primary.
	var key string
	for i := 0; ; i++ {
		key = fmt.Sprintf("http-%d", i)
		if int(r.PartitionOf([]byte(key))) == mine {
			break
		}
	}
	// On both other primaries, so that whichever the repair asks first,
	// one exchange pulls it and the other finds nothing to do.
	for i := range c.Len() {
		if id := ring.NodeID(c.ID(i)); id != ring.NodeID(nd.ID()) && r.IsPrimary(uint32(mine), 3, id) {
			if err := c.Node(i).MergeLocal(t.Context(), []byte(key), aeSet("h", 1, "x")); err != nil {
				t.Fatal(err)
			}
		}
	}
	post := func(q string) (int, []byte) {
		res, err := nodetest.Client().Post(c.URL(0)+"/admin/repair"+q, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b json.RawMessage
		_ = json.NewDecoder(res.Body).Decode(&b)
		return res.StatusCode, b
	}
	code, body := post(fmt.Sprintf("?partition=%d", mine))
	var rep node.RepairReport
	if err := json.Unmarshal(body, &rep); code != http.StatusOK || err != nil {
		t.Fatalf("repair: %d %s (%v)", code, body, err)
	}
	if rep.Partitions != 1 || rep.Exchanges != 2 || rep.KeysDiffering != 1 || rep.RepairedLocal != 1 || len(rep.Details) != 1 {
		t.Fatalf("report %s", body)
	}
	if !values2(aeLocal(t, nd, key))["x"] {
		t.Fatal("the repaired key is not here")
	}
	code, body = post("")
	if err := json.Unmarshal(body, &rep); code != http.StatusOK || err != nil || rep.Failed != 0 || rep.Exchanges == 0 {
		t.Fatalf("repair of all: %d %s", code, body)
	}
	for _, q := range []string{"?partition=abc", "?partition=-1", fmt.Sprintf("?partition=%d", r.Partitions()), fmt.Sprintf("?partition=%d", other), "?timeout=x"} {
		if code, body := post(q); code != http.StatusBadRequest {
			t.Fatalf("repair%s: %d %s, want 400", q, code, body)
		}
	}
}

// The anti-entropy config rules.
func TestAEConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *node.Config)
		ok   bool
	}{
		{"defaults", func(*node.Config) {}, true},
		{"reaping off ignores max downtime and hint age", func(c *node.Config) {
			c.AntiEntropy.TombstoneGrace, c.AntiEntropy.MaxDowntime, c.Hints.MaxAge = 0, 0, 0
		}, true},
		{"max downtime below grace", func(c *node.Config) { c.AntiEntropy.MaxDowntime = c.AntiEntropy.TombstoneGrace - 1 }, false},
		{"hints live longer than half the grace", func(c *node.Config) { c.Hints.MaxAge = c.AntiEntropy.TombstoneGrace/2 + 1 }, false},
		{"hints without age cap", func(c *node.Config) { c.Hints.MaxAge = 0 }, false},
		{"leaf bits 0", func(c *node.Config) { c.AntiEntropy.LeafBits = 0 }, false},
		{"leaf bits 21", func(c *node.Config) { c.AntiEntropy.LeafBits = 21 }, false},
		{"negative max downtime", func(c *node.Config) { c.AntiEntropy.MaxDowntime = -1 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, base := range []node.Config{node.DefaultConfig(), node.DefaultLocalConfig()} {
				base.NodeID = "n1"
				tc.mod(&base)
				if err := base.Validate(); (err == nil) != tc.ok {
					t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
				}
			}
		})
	}
}

// A replica cut off by a network split (running, not restarted) for longer
// than MaxDowntime: the majority side reaps without it and refuses it
// afterwards; its first call after the split heals gets the refusal, and
// it drops its data and refills instead of spreading the deleted value.
func TestAEExcludedPeerDropsItsDataAfterSplit(t *testing.T) {
	c, clk := tombCluster(t)
	all := quorum.Params{N: 3, R: 3, W: 3}
	w := aePut(t, c.Node(0), "doomed", "v1", nil, all)
	c.Isolate(2)
	aeDelete(t, c.Node(0), "doomed", w.Set.Context, quorum.Params{N: 3, R: 2, W: 2, Timeout: 300 * time.Millisecond})
	clk.Add(3*time.Hour + time.Minute)
	reapAll(t, c) // confirm on n1, n2 (n3 excused); n3 has no tombstone
	clk.Add(61 * time.Minute)
	if _, reaped, _ := reapAll(t, c); reaped != 2 {
		t.Fatalf("reaped %d, want 2", reaped)
	}
	if !values2(aeLocal(t, c.Node(2), "doomed"))["v1"] {
		t.Fatal("the isolated replica should still have v1")
	}
	c.Heal()
	c.WaitConverged(10 * time.Second)
	// n1 does not read from n3 while it is excluded: a quorum read of
	// R=2 answers from n1 and n2 only.
	res, err := c.Node(0).Coordinator().Get(t.Context(), quorum.GetRequest{Key: []byte("doomed"), Params: quorum.Params{N: 3, R: 2}})
	if err != nil || len(res.Set.Live()) != 0 {
		t.Fatalf("read through n1 while n3 is excluded: %v, %v", res, err)
	}
	// n3's first call to a peer is refused; it drops its data.
	rep, err := c.Node(2).Repair(t.Context(), -1)
	if err == nil && rep.Failed == 0 {
		t.Fatalf("n3's repair ran without a refusal: %+v", rep)
	}
	wipedAndCleared(t, c, nil)
}

// wipedAndCleared waits for n3 to have dropped its data (once) and
// reopened, runs between (if not nil), waits for the peers to clear n3
// from their exclusion ledgers, repairs everywhere and checks that
// "doomed" is gone on every node.
func wipedAndCleared(t *testing.T, c *nodetest.Cluster, between func()) {
	t.Helper()
	c.WaitFor(10*time.Second, "n3 dropped its data and reopened", func() bool {
		st := c.Node(2).Status().AntiEntropy
		return !st.Quarantined && st.Wipes == 1
	})
	if between != nil {
		between()
	}
	c.WaitFor(10*time.Second, "the peers cleared n3 from their ledgers", func() bool {
		return len(c.Node(0).Status().AntiEntropy.Excluded) == 0 && len(c.Node(1).Status().AntiEntropy.Excluded) == 0
	})
	for i := range 3 {
		aeRepair(t, c.Node(i), -1)
	}
	notFoundEverywhere(t, c, "doomed")
	for i, nd := range c.Nodes() {
		if hasRecord(t, nd, "doomed") {
			t.Fatalf("%s stores doomed", c.ID(i))
		}
	}
}

// The whole cluster down for longer than MaxDowntime/2: every node starts
// quarantined (its records closed), asks the others, learns that nobody
// reaped without it, and opens its data as it was: a long shutdown of the
// whole cluster loses nothing.
func TestAEWholeClusterDownLongKeepsData(t *testing.T) {
	c, clk := tombCluster(t)
	aePut(t, c.Node(0), "kept", "v", nil, quorum.Params{N: 3, R: 3, W: 3})
	for i := range 3 {
		c.Kill(i)
	}
	clk.Add(5 * time.Hour)
	c.Restart(0)
	if !c.Node(0).Quarantined() {
		t.Fatal("n1 down 5h (max downtime 3h) is not quarantined")
	}
	if _, _, err := c.Node(0).ReadLocal([]byte("kept")); !errors.Is(err, node.ErrQuarantined) {
		t.Fatalf("local read while quarantined: %v, want ErrQuarantined", err)
	}
	if st := c.Node(0).Status().AntiEntropy; !st.Quarantined || st.QuarantineReason == "" {
		t.Fatalf("status: %+v", st)
	}
	c.Restart(1)
	c.Restart(2)
	c.WaitConverged(10 * time.Second)
	c.WaitFor(10*time.Second, "every node reopened its records", func() bool {
		for _, nd := range c.Nodes() {
			if nd.Quarantined() {
				return false
			}
		}
		return true
	})
	for i, nd := range c.Nodes() {
		if st := nd.Status().AntiEntropy; st.Wipes != 0 {
			t.Fatalf("%s dropped its data", c.ID(i))
		}
		if !values2(aeLocal(t, nd, "kept"))["v"] {
			t.Fatalf("%s lost kept", c.ID(i))
		}
	}
}
