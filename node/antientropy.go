package node

import (
	"context"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
)

// AEStatus is the anti-entropy part of /status (antientropy.Status).
type AEStatus = antientropy.Status

// RepairReport is what an on-demand repair did, the body of POST
// /admin/repair (antientropy.RepairReport).
type RepairReport = antientropy.RepairReport

// aeHost is the node as anti-entropy sees it (antientropy.Host), kept off
// *Node's exported methods.
type aeHost struct{ n *Node }

var _ antientropy.Host = aeHost{}

func (h aeHost) Ring() *ring.Ring          { return h.n.Ring() }
func (h aeHost) Alive(id ring.NodeID) bool { return h.n.Alive(id) }

// Call sends one RPC to peer at the address the ring state gives it.
func (h aeHost) Call(ctx context.Context, peer string, m transport.Method, body []byte) ([]byte, error) {
	addr, ok := h.n.rpcAddr(peer)
	if !ok {
		return nil, errPeerUnknown
	}
	return h.n.tr.Call(ctx, addr, m, body)
}

// Repair runs anti-entropy now, synchronously: for partition p (or every
// partition this node replicates when p < 0), an exchange with each other
// primary in turn, one exchange at a time. A primary that gossip does not
// see alive counts as a failed exchange. It returns ErrQuarantined while
// the node's records are closed and antientropy.ErrNotReplica for a
// partition it does not replicate.
func (n *Node) Repair(ctx context.Context, p int) (RepairReport, error) { return n.ae.Repair(ctx, p) }
