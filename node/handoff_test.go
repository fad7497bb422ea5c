package node_test

import (
	"context"
	"fmt"
	"github.com/quorumkv/quorumkv/api"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
)

// Handoff tested where it matters: a node holds the only copy of some
// keys, anti-entropy's schedule is off, and the ring change takes their
// partitions away from it. Only the ownership handoff (ae_handoff.go) can
// carry the data to the new primaries; each new primary's own store must
// then hold every acknowledged value.
//
// The only copy is made with N=1 (W=1) writes through the key's first
// primary: no other replica, no fallback, and no hint (a hint of last
// resort, which a W=1 write with the other primaries partitioned away
// would leave, is delivered to the old primaries when the partition heals
// and refills the keys without any handoff, as anti-entropy would). On a
// leave the N=1 writes are per request in an N=3 cluster, so the leaver
// must push to three new primaries; a join can only take a partition from
// its old last primary, so there the cluster's default N is 1 and the
// joiner takes partitions from their only holder.
//
// Deadlines, measured on this machine (2 cores shared, -race, load ~4):
// Leave with its handoff took 104-112 ms (it polls every 100 ms), a
// join's handoff 0.14-1.10 s (the anti-entropy loop retries each second),
// the start-up exchanges of a 4-node cluster 0.33-0.89 s. Each wait is
// 4.5x the slowest of its kind.
// A leave now includes the new owners' transfers, which start a second
// (node's transferGrace) after every node knows of the change.
const (
	leaveWait   = 5 * time.Second
	joinWait    = 5 * time.Second
	startupWait = 4 * time.Second
)

// handoffConfig turns anti-entropy's schedule off: exchanges still run on
// demand (a partition a node gains is compared with its fellow primaries,
// which hold nothing of these keys), but no periodic exchange can refill
// what a handoff failed to move.
func handoffConfig(_ int, c *node.Config) { c.AntiEntropy.Interval = 0 }

// waitStartupExchanges waits until every node has run the exchange of
// each partition it replicates that a new node runs at once at start
// (its store was empty): after that no exchange runs unless a ring change
// marks one, so an N=1 record stays where it was written.
func waitStartupExchanges(t *testing.T, c *nodetest.Cluster, n int) {
	t.Helper()
	start := time.Now()
	defer func() { t.Logf("start-up exchanges took %s", time.Since(start).Round(time.Millisecond)) }()
	c.WaitFor(startupWait, "the start-up exchanges of every node, and no ring change in course", func() bool {
		for i, nd := range c.Nodes() {
			// The joins' last commit may still be switching: writes
			// then reach the previous commit's owners too (issue 15),
			// and an N=1 record would not be the only copy.
			var view api.Ring
			nd.DescribeRing(&view, nd.Ring())
			if view.Change != nil {
				return false
			}
			st := nd.Status().AntiEntropy
			if st.Running != nil || st.Marked > 0 {
				// An exchange runs or is still to run (a partition
				// marked again when the ring changed, say): it could
				// copy an N=1 record to a fellow primary of N=3.
				return false
			}
			done := map[uint32]bool{}
			for _, ps := range st.Partitions {
				done[ps.Partition] = true
			}
			r := nd.Ring()
			for p := range uint32(r.Partitions()) {
				if len(r.Primaries(p, n)) > 1 && r.IsPrimary(p, n, ring.NodeID(c.ID(i))) && !done[p] {
					return false
				}
			}
		}
		return true
	})
}

// soleCopyKeys picks count keys whose first primary on before is holder
// and, when after is not nil, whose first primary on after is not holder
// (with N=1, holder then loses the partition).
func soleCopyKeys(t *testing.T, before, after *ring.Ring, holder ring.NodeID, count int) []string {
	t.Helper()
	var keys []string
	for i := 0; len(keys) < count; i++ {
		if i > 100_000 {
			t.Fatalf("found only %d keys first held by %s", len(keys), holder)
		}
		k := fmt.Sprintf("sole%d", i)
		p := before.PartitionOf([]byte(k))
		if before.Primaries(p, 3)[0] != holder {
			continue
		}
		if after != nil && after.Primaries(p, 1)[0] == holder {
			continue
		}
		keys = append(keys, k)
	}
	return keys
}

// writeSoleCopies writes every key once through node i (their first
// primary) with N=1, W=1, and checks that no other node holds any.
func writeSoleCopies(t *testing.T, c *nodetest.Cluster, i int, keys []string) map[string]string {
	t.Helper()
	want := map[string]string{}
	for _, k := range keys {
		v := "only-" + k
		if _, err := put(t, c.Node(i), k, v, nil, quorum.Params{N: 1, W: 1}); err != nil {
			t.Fatalf("put %s: %v", k, err)
		}
		want[k] = v
	}
	for j := range c.Len() {
		if j == i || c.Node(j) == nil {
			continue
		}
		for _, k := range keys {
			if _, found, err := c.Node(j).ReadLocal([]byte(k)); err != nil || found {
				t.Fatalf("%s holds %s (err %v): not the only copy", c.ID(j), k, err)
			}
		}
	}
	return want
}

// missingOnPrimaries returns, for the ring node 0 sees, each (key,
// primary) where the primary's own store lacks the key's value, n being
// the cluster's N: what a read at R=1 through each new primary would miss.
func missingOnPrimaries(t *testing.T, c *nodetest.Cluster, want map[string]string, n int) []string {
	t.Helper()
	r := c.Node(0).Ring()
	var missing []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		for _, id := range r.Primaries(r.PartitionOf([]byte(k)), n) {
			s, _, err := c.Node(nodeIndex(c, id)).ReadLocal([]byte(k))
			if err != nil {
				t.Fatalf("local read of %s on %s: %v", k, id, err)
			}
			if !values(s)[want[k]] {
				missing = append(missing, k+" on "+string(id))
			}
		}
	}
	return missing
}

// handoffOnLeave: n4 holds the only copy of 40 keys and leaves; Leave
// returns once its handoff is done; n4 is then crashed (its copies are
// gone). It returns what the new primaries miss.
func handoffOnLeave(t *testing.T) []string {
	c := nodetest.NewCluster(t, 4, nodetest.Options{InMemory: true, Config: handoffConfig})
	waitStartupExchanges(t, c, 3)
	keys := soleCopyKeys(t, c.Node(0).Ring(), nil, "n4", 40)
	want := writeSoleCopies(t, c, 3, keys)
	ctx, cancel := context.WithTimeout(t.Context(), leaveWait)
	defer cancel()
	start := time.Now()
	if err := c.Node(3).Leave(ctx); err != nil {
		t.Fatalf("leave: %v", err)
	}
	t.Logf("leave with handoff took %s", time.Since(start).Round(time.Millisecond))
	c.WaitFor(leaveWait, "every ring without n4", func() bool {
		for i := range 3 {
			if c.Node(i).Ring().Has("n4") {
				return false
			}
		}
		return true
	})
	c.Crash(3)
	return missingOnPrimaries(t, c, want, 3)
}

// handoffOnJoin: in a cluster whose default N is 1, each of n1..n3 holds
// the only copy of keys whose partition n4's join takes away from it; once
// the holders dropped their copies (the handoff deletes what it moved), n4
// must hold them all.
func handoffOnJoin(t *testing.T) []string {
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true, Config: func(i int, c *node.Config) {
		handoffConfig(i, c)
		c.Defaults.N, c.Defaults.R, c.Defaults.W = 1, 1, 1
	}})
	before := c.Node(0).Ring()
	// The ring the join will move to: planned from the current one.
	next, err := ring.Plan(before.Config(), before.Assignment(), []ring.Member{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}, {ID: "n4"}})
	if err != nil {
		t.Fatal(err)
	}
	after, err := ring.FromAssignment(before.Config(), next)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	holder := map[string]int{}
	for i := range 3 {
		keys := soleCopyKeys(t, before, after, ring.NodeID(c.ID(i)), 15)
		for k, v := range writeSoleCopies(t, c, i, keys) {
			want[k], holder[k] = v, i
		}
	}
	start := time.Now()
	c.AddNode()
	if !c.Node(0).Ring().Equal(after) {
		t.Fatalf("the ring after the join is not the one the keys were chosen for")
	}
	c.WaitFor(joinWait, "every holder to drop the keys it handed over", func() bool {
		for k, i := range holder {
			if _, found, err := c.Node(i).ReadLocal([]byte(k)); err != nil || found {
				return false
			}
		}
		return true
	})
	t.Logf("join with handoff took %s", time.Since(start).Round(time.Millisecond))
	return missingOnPrimaries(t, c, want, 1)
}

func TestHandoffMovesTheOnlyCopy(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) []string
	}{{"leave", handoffOnLeave}, {"join", handoffOnJoin}} {
		t.Run(tc.name, func(t *testing.T) {
			if missing := tc.run(t); len(missing) > 0 {
				t.Fatalf("%d acknowledged values missing from new primaries after the handoff: %v", len(missing), missing)
			}
		})
	}
}

// TestHandoffCatchesPlantedBug re-proves the handoff tests' detector: a
// handoff that pushes nothing and drops the partition anyway must leave
// the new primaries without the values.
func TestHandoffCatchesPlantedBug(t *testing.T) {
	defer plant.Plant(plant.HandoffPushesNothing)()
	for _, tc := range []struct {
		name string
		run  func(t *testing.T) []string
	}{{"leave", handoffOnLeave}, {"join", handoffOnJoin}} {
		t.Run(tc.name, func(t *testing.T) {
			if missing := tc.run(t); len(missing) == 0 {
				t.Fatal("the handoff detector found nothing missing with the handoff bug planted")
			}
		})
	}
}
