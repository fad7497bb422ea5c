package node_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/vclock"
)

var chaosSeed = flag.Uint64("chaos.seed", 0, "replay TestChaos with this seed (0: the fixed seeds)")

// attempt is one write the test sent: its context, and its dot if it was
// acknowledged.
type attempt struct {
	key   string
	ctx   vclock.Vector
	dot   vclock.Dot
	acked bool
}

// TestChaos runs random reads and writes (blind and with contexts, with
// random N/R/W) through random nodes of a 5-node cluster while the test
// isolates nodes, partitions the network, drops and delays messages and
// kills and restarts nodes, all from one seed. Then it heals everything and
// lets hinted handoff and anti-entropy settle, and checks the invariants:
// every acknowledged write is still a sibling, unless a write whose context
// covered it was sent (it superseded it); and the primaries of every key
// hold equal sets. A failure prints the seed; replay with
// -chaos.seed=S -run TestChaos.
func TestChaos(t *testing.T) {
	seeds := []uint64{1, 2}
	if *chaosSeed != 0 {
		seeds = []uint64{*chaosSeed}
	}
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runChaos(t, seed) })
	}
}

func runChaos(t *testing.T, seed uint64) {
	t.Logf("seed %d (replay: go test ./node -run TestChaos -chaos.seed=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const nodes, keys, steps = 5, 12, 300
	c := nodetest.NewCluster(t, nodes, nodetest.Options{Seed: int64(seed)})
	var attempts []attempt
	lastCtx := map[string]vclock.Vector{}
	killed := map[int]bool{}
	live := func() int {
		for {
			i := rng.IntN(nodes)
			if !killed[i] {
				return i
			}
		}
	}
	for step := range steps {
		switch x := rng.IntN(100); {
		case x < 55: // write
			key := fmt.Sprintf("k%d", rng.IntN(keys))
			var vctx vclock.Vector
			if rng.IntN(3) > 0 {
				vctx = lastCtx[key]
			}
			p := quorum.Params{N: 3, W: 1 + rng.IntN(3), Timeout: 200 * time.Millisecond}
			v := vclock.Value{Data: []byte(fmt.Sprintf("s%d", step))}
			if rng.IntN(8) == 0 {
				v = vclock.Value{Deleted: true} // a delete is a write of a tombstone
			}
			res, err := c.Node(live()).Coordinator().Put(t.Context(), quorum.PutRequest{Key: []byte(key), Value: v, Context: vctx, Params: p})
			a := attempt{key: key, ctx: vctx}
			if err == nil {
				a.dot, a.acked = res.Dot, true
				lastCtx[key] = res.Set.Context
			}
			attempts = append(attempts, a)
		case x < 75: // read
			key := fmt.Sprintf("k%d", rng.IntN(keys))
			p := quorum.Params{N: 3, R: 1 + rng.IntN(3), Timeout: 200 * time.Millisecond}
			if res, err := get(t, c.Node(live()), key, p); err == nil {
				lastCtx[key] = res.Set.Context
			}
		case x < 81: // isolate one node, network and gossip
			c.Isolate(live())
		case x < 85: // split the network in two (gossip does not notice)
			var a, b []string
			for i := range nodes {
				if rng.IntN(2) == 0 {
					a = append(a, c.ID(i))
				} else {
					b = append(b, c.ID(i))
				}
			}
			c.Net.Partition(a, b)
		case x < 89: // lossy or slow links
			from, to := c.ID(rng.IntN(nodes)), c.ID(rng.IntN(nodes))
			if rng.IntN(2) == 0 {
				c.Net.Drop(from, to, 0.3)
			} else {
				d := time.Duration(rng.IntN(50)) * time.Millisecond
				c.Net.Delay(from, to, func(*rand.Rand) time.Duration { return d })
			}
		case x < 94:
			c.Heal()
		case x < 97: // kill one node (at most two down at once)
			if len(killed) < 2 {
				i := live()
				killed[i] = true
				c.Kill(i)
			}
		default: // restart a killed node
			for i := range killed {
				delete(killed, i)
				c.Restart(i)
				break
			}
		}
	}

	// Heal everything, bring every node back, let repair settle.
	for i := range killed {
		c.Restart(i)
	}
	c.Heal()
	c.WaitConverged(20 * time.Second)
	c.WaitFor(60*time.Second, "every hint delivered", func() bool {
		for _, nd := range c.Nodes() {
			for _, tg := range nd.Status().Hints.Targets {
				if tg.Pending > 0 {
					return false
				}
			}
		}
		return true
	})
	for round := range 2 {
		for i, nd := range c.Nodes() {
			if _, err := nd.Repair(t.Context(), -1); err != nil {
				t.Fatalf("repair round %d on %s: %v", round, c.ID(i), err)
			}
		}
	}

	acked := 0
	for k := range keys {
		key := fmt.Sprintf("k%d", k)
		// The primaries converged: their own copies are equal.
		r := c.Node(0).Ring()
		prim := r.Primaries(r.PartitionOf([]byte(key)), 3)
		var first vclock.Set
		for j, id := range prim {
			i := int(id[1] - '1') // ids are n1..n5
			s, _, err := c.Node(i).ReadLocal([]byte(key))
			if err != nil {
				t.Fatal(err)
			}
			if j == 0 {
				first = s
			} else if !s.Equal(first) {
				t.Fatalf("seed %d: %s: primaries %s and %s differ after repair:\n%v\n%v", seed, key, prim[0], id, first, s)
			}
		}
		// No acknowledged write lost.
		for _, a := range attempts {
			if a.key != key || !a.acked {
				continue
			}
			acked++
			if _, ok := first.Find(a.dot); ok {
				continue
			}
			superseded := false
			for _, b := range attempts {
				if b.key == key && b.ctx.Covers(a.dot) {
					superseded = true
					break
				}
			}
			if !superseded {
				t.Fatalf("seed %d: %s: acknowledged write %s lost: not a sibling and no write sent later covered it; final set %v", seed, key, a.dot, first)
			}
		}
	}
	t.Logf("seed %d: %d writes attempted, %d acknowledged, all accounted for", seed, len(attempts), acked)
}
