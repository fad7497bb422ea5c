package node_test

import (
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/node/nodetest"
)

// After a commit, writes reach the previous owners too until every live
// member reports it. A member that never heard of the commit and then
// dies must not keep that window open: the others close it when gossip
// reports the death, with no other state change to prompt them.
func TestJointWindowClosesWhenLaggardDies(t *testing.T) {
	c := nodetest.NewCluster(t, 3, nodetest.Options{InMemory: true})
	n4 := c.StartNode()
	c.WaitFor(10*time.Second, "the target known everywhere", func() bool {
		for i := range 4 {
			if pr := c.Node(i).Pending(); pr == nil || !pr.Has("n4") {
				return false
			}
		}
		return true
	})
	c.Gossip.Hold(c.ID(2)) // n3 hears nothing more: it never reports the commit
	others := []int{0, 1, n4}
	open := func(i int) bool {
		nd := c.Node(i)
		for p := range uint32(nd.Ring().Partitions()) {
			if len(nd.JointOwners(p, 3)) > 0 {
				return true
			}
		}
		return false
	}
	c.WaitFor(30*time.Second, "n1, n2, n4 committed the change", func() bool {
		for _, i := range others {
			if !c.Node(i).Ring().Has("n4") {
				return false
			}
		}
		return true
	})
	if c.Node(2).Ring().Has("n4") {
		t.Fatal("n3 committed while its gossip was held: the test does not cover a laggard")
	}
	for _, i := range others {
		if !open(i) {
			t.Fatalf("%s stopped writing the previous owners while n3 does not report the commit", c.ID(i))
		}
	}
	c.Isolate(2)
	c.WaitFor(10*time.Second, "the window closed on n1, n2, n4 once n3 is dead", func() bool {
		for _, i := range others {
			if open(i) {
				return false
			}
		}
		return true
	})
}
