package node_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/quorum"
)

// Issue 15, zones: six members in three zones at N=3 keep every
// partition's three primaries in three zones, before and after a join and
// a leave; with one zone down entirely, W=2 writes and R=2 reads succeed.
func TestZonesSpreadPrimaries(t *testing.T) {
	zone := func(i int) string { return fmt.Sprintf("az%d", i%3+1) }
	c := nodetest.NewCluster(t, 6, nodetest.Options{InMemory: true, Config: func(i int, cfg *node.Config) {
		cfg.Zone = zone(i)
	}})
	held := func(what string) {
		t.Helper()
		for i, nd := range c.Nodes() {
			if nd == nil {
				continue
			}
			if zs := nd.Ring().ZoneStatus(3); !zs.Held || zs.Zones != 3 {
				t.Fatalf("%s: %s's ring: zone guarantee %+v", what, c.ID(i), zs)
			}
		}
	}
	held("six members")
	i := c.AddNode() // n7, in zone(6) = az1
	held("after a join")
	if err := c.Node(i).Leave(t.Context()); err != nil {
		t.Fatalf("leave: %v", err)
	}
	c.WaitFor(30*time.Second, "every ring without n7", func() bool {
		for j := range 6 {
			if c.Node(j).Ring().Has("n7") {
				return false
			}
		}
		return true
	})
	held("after a leave")

	// az3 (n3 and n6) down entirely.
	c.Gossip.SetDead("n3", true)
	c.Gossip.SetDead("n6", true)
	c.WaitFor(10*time.Second, "n1 sees az3 down", func() bool { return !c.Node(0).Alive("n3") && !c.Node(0).Alive("n6") })
	for k := range 50 {
		key := fmt.Sprintf("zone-%d", k)
		if _, err := put(t, c.Node(k%2), key, "v", nil, quorum.Params{N: 3, W: 2}); err != nil {
			t.Fatalf("W=2 write of %s with a zone down: %v", key, err)
		}
		res, err := get(t, c.Node(3+k%2), key, quorum.Params{N: 3, R: 2})
		if err != nil || !values(res.Set)["v"] {
			t.Fatalf("R=2 read of %s with a zone down: %v, %v", key, res, err)
		}
	}
}
