package node

import (
	"context"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/internal/aehook"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// Test back doors for the node_test package (compiled only with the tests).

// Coordinator exposes the node's coordinator: in-process quorum reads and
// writes, and Wait for its background work (bubble clusters have no HTTP).
func (n *Node) Coordinator() *quorum.Coordinator { return n.coord }

// Store exposes the node's store.
func (n *Node) Store() *store.Store { return n.st }

// ReapTombstones runs one pass of the tombstone reaper now (it also runs
// every TombstoneGrace/8).
func (n *Node) ReapTombstones(ctx context.Context) (antientropy.ReapStatus, error) {
	st, err := aehook.Reap(ctx, n.ae)
	return st.(antientropy.ReapStatus), err
}

// ServeRPC answers as the node answers other nodes.
func (n *Node) ServeRPC(ctx context.Context, from string, m transport.Method, body []byte) ([]byte, error) {
	return n.serveRPC(ctx, from, m, body)
}
