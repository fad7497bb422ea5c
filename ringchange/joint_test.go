package ringchange

import (
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/quorumkv/quorumkv/ring"
)

// view is what one node routes with at some moment of a ring change: the
// committed ring its reads and writes use, the target it moves to, and the
// previous commit it still writes to.
type view struct {
	name              string
	committed, target *ring.Ring
	prev              *ring.Ring
}

// viewsInUse returns the groups of views that may coexist in a cluster
// moving from old to new (ownership's protocol): before the commit, nodes
// that have not heard of the target yet and nodes that have; around the
// commit, nodes that know the target but not its commit and nodes that
// committed it (every live node knows the target before any pending owner
// reports ready, so a node without the target never meets a commit); after
// it, nodes that still write the previous owners and nodes that stopped.
func viewsInUse(old, nw *ring.Ring) [][]view {
	oldOnly := view{name: "old", committed: old}
	oldTarget := view{name: "old+target", committed: old, target: nw}
	newPrev := view{name: "new+prev", committed: nw, prev: old}
	newOnly := view{name: "new", committed: nw}
	return [][]view{{oldOnly, oldTarget}, {oldTarget, newPrev}, {newPrev, newOnly}}
}

// writeSets returns the owner sets a write coordinated with v must reach
// W of, with how many each needs: the committed owners (W), and each set
// JointOwners returns.
func writeSets(v view, p uint32, n, w int) (sets [][]ring.NodeID, need []int) {
	c := New("x", nil)
	c.target.Store(v.target)
	c.prev.Store(v.prev)
	sets = append(sets, v.committed.Primaries(p, n))
	need = append(need, w)
	for _, s := range c.JointOwners(v.committed, p, n) {
		if len(s) > 0 {
			sets = append(sets, s)
			need = append(need, min(w, len(s)))
		}
	}
	return sets, need
}

// The property behind pending ownership: at any moment of a ring change,
// a write acknowledged under the joint rule (W of the current owners and W
// of each set JointOwners names) shares a replica with every read quorum
// (R of the committed owners) that any node may use at that moment, for
// every partition, whichever node coordinates either, also when a change
// moves two or all three of a partition's owners at once.
func TestJointWriteMeetsEveryReadQuorum(t *testing.T) {
	const n, w, r = 3, 2, 2
	rng := rand.New(rand.NewPCG(15, 15))
	cfg := ring.DefaultConfig()
	cfg.Partitions = 64
	moved := map[int]int{} // owners moved per partition -> count
	next := 0
	member := func() ring.Member { next++; return ring.Member{ID: ring.NodeID(fmt.Sprintf("m%02d", next))} }
	for trial := range 150 {
		var oldMembers []ring.Member
		for range 3 + rng.IntN(5) {
			oldMembers = append(oldMembers, member())
		}
		// Drop some members and add others: up to all of them (every
		// partition of a 3-member ring then moves all three owners).
		newMembers := slices.Clone(oldMembers)
		rng.Shuffle(len(newMembers), func(i, j int) { newMembers[i], newMembers[j] = newMembers[j], newMembers[i] })
		newMembers = newMembers[rng.IntN(len(newMembers)):]
		for range rng.IntN(4) {
			newMembers = append(newMembers, member())
		}
		if len(newMembers) == 0 {
			newMembers = append(newMembers, member())
		}
		oldA, err := ring.Plan(cfg, nil, oldMembers)
		if err != nil {
			t.Fatal(err)
		}
		newA, err := ring.Plan(cfg, oldA, newMembers)
		if err != nil {
			t.Fatal(err)
		}
		oldR, err := ring.FromAssignment(cfg, oldA)
		if err != nil {
			t.Fatal(err)
		}
		newR, err := ring.FromAssignment(cfg, newA)
		if err != nil {
			t.Fatal(err)
		}
		for p := range uint32(cfg.Partitions) {
			before, after := oldR.Primaries(p, n), newR.Primaries(p, n)
			gone := 0
			for _, id := range before {
				if !slices.Contains(after, id) {
					gone++
				}
			}
			moved[gone]++
			for _, group := range viewsInUse(oldR, newR) {
				for _, wv := range group {
					sets, need := writeSets(wv, p, n, w)
					for _, rv := range group {
						readers := rv.committed.Primaries(p, n)
						if a, q, ok := disjointQuorums(sets, need, readers, r); !ok {
							t.Fatalf("trial %d partition %d (owners %v -> %v): a write coordinated with view %s acked by %v (sets %v, need %v) misses the read quorum %v of view %s",
								trial, p, before, after, wv.name, a, sets, need, q, rv.name)
						}
					}
				}
			}
		}
	}
	for _, k := range []int{1, 2, 3} {
		if moved[k] == 0 {
			t.Fatalf("no partition moved %d of its owners: the trials do not cover it (%v)", k, moved)
		}
	}
	t.Logf("partitions by owners moved: %v", moved)
}

// disjointQuorums looks for an acknowledgement set satisfying every set's
// need and a read quorum of r among readers that share no node; ok is
// true when there is none.
func disjointQuorums(sets [][]ring.NodeID, need []int, readers []ring.NodeID, r int) (acked, read []ring.NodeID, ok bool) {
	var all []ring.NodeID
	for _, s := range append(slices.Clone(sets), readers) {
		for _, id := range s {
			if !slices.Contains(all, id) {
				all = append(all, id)
			}
		}
	}
	if len(all) > 20 {
		panic("too many nodes to enumerate")
	}
	pick := func(mask uint32) []ring.NodeID {
		var out []ring.NodeID
		for i, id := range all {
			if mask&(1<<i) != 0 {
				out = append(out, id)
			}
		}
		return out
	}
	count := func(ids, in []ring.NodeID) int {
		k := 0
		for _, id := range ids {
			if slices.Contains(in, id) {
				k++
			}
		}
		return k
	}
	for am := uint32(0); am < 1<<len(all); am++ {
		a := pick(am)
		sat := true
		for i, s := range sets {
			if count(a, s) < need[i] {
				sat = false
				break
			}
		}
		if !sat {
			continue
		}
		for rm := uint32(0); rm < 1<<len(all); rm++ {
			if bits.OnesCount32(rm) != r || rm&am != 0 {
				continue
			}
			if q := pick(rm); count(q, readers) == r {
				return a, q, false
			}
		}
	}
	return nil, nil, true
}
