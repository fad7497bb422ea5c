package node

import (
	"context"
	"fmt"
	"sync"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/internal/aehook"
	"github.com/quorumkv/quorumkv/vclock"
)

// Test hooks for the node_test package (compiled only with the tests).

// CheckTrees rebuilds every partition's tree from a store scan and reports
// the partitions whose root differs from the tree the node kept current.
func (n *Node) CheckTrees() error {
	fresh, err := antientropy.NewTrees(n.trees.Len(), n.cfg.AntiEntropy.LeafBits)
	if err != nil {
		return err
	}
	if _, err := fresh.Build(n.rep); err != nil {
		return err
	}
	var bad []uint32
	for p := range fresh.Len() {
		if fresh.Root(uint32(p)) != n.trees.Root(uint32(p)) {
			bad = append(bad, uint32(p))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s: kept trees differ from a scan-built one in partitions %v", n.cfg.NodeID, bad)
	}
	return nil
}

// TreeRoot returns partition p's root hash.
func (n *Node) TreeRoot(p uint32) uint64 { return n.trees.Root(p) }

// MergeLocal merges s into this node's own record of key, as a replica
// would (tree kept current): a test's way to make replicas diverge.
func (n *Node) MergeLocal(ctx context.Context, key []byte, s vclock.Set) error {
	_, err := n.rep.MergeSet(ctx, "", n.Ring().KeyOf(key), s, false)
	return err
}

// LoadLocal merges many sets concurrently (workers goroutines).
func (n *Node) LoadLocal(ctx context.Context, keys [][]byte, sets []vclock.Set, workers int) error {
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	next := make(chan int)
	for range workers {
		wg.Go(func() {
			for i := range next {
				if err := n.MergeLocal(ctx, keys[i], sets[i]); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	for i := range keys {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// RawRecord returns this node's stored record of key, envelope included.
func (n *Node) RawRecord(key []byte) ([]byte, error) {
	return n.st.Get(n.Ring().KeyOf(key))
}

// Quarantined reports whether the node's records are closed.
func (n *Node) Quarantined() bool { return n.ae.Quarantined() }

// OnExchange sets a hook called at the start (true) and end (false) of
// every exchange this node runs.
func (n *Node) OnExchange(f func(start bool)) { aehook.OnExchange(n.ae, f) }

// TreeShape returns partition p's tree shape.
func (n *Node) TreeShape(p uint32) antientropy.TreeConfig { return n.trees.Shape(p) }
