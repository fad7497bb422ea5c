package node

import (
	"context"

	"github.com/quorumkv/quorumkv/hintedhandoff"
	"github.com/quorumkv/quorumkv/ring"
)

// HintsStatus is the hinted-handoff part of /status
// (hintedhandoff.Status).
type HintsStatus = hintedhandoff.Status

// hintHost is the node as hinted handoff sees it (hintedhandoff.Host),
// kept off *Node's exported methods.
type hintHost struct{ n *Node }

var _ hintedhandoff.Host = hintHost{}

func (h hintHost) Ring() *ring.Ring          { return h.n.Ring() }
func (h hintHost) Alive(id ring.NodeID) bool { return h.n.Alive(id) }

// Deliver merges a hinted set into id's record of k: through the
// transport, or into this node's own replica.
func (h hintHost) Deliver(ctx context.Context, id ring.NodeID, k ring.Key, set []byte) error {
	_, err := replicas{h.n}.Merge(ctx, ring.Target{Node: id}, k, set, false)
	return err
}

// MarkForRepair puts partition p ahead of anti-entropy's schedule.
func (h hintHost) MarkForRepair(p uint32) {
	if h.n.ae != nil {
		h.n.ae.MarkPartition(p)
	}
}
