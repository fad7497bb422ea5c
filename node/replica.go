package node

import (
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/vclock"
)

// Errors of the local replica, as package replica defines them.
var (
	// ErrSetTooLarge refuses a write whose key would hold more than
	// replica.MaxSetBytes of siblings.
	ErrSetTooLarge = replica.ErrSetTooLarge
	// ErrQuarantined refuses a read or write of this node's records while
	// they may be stale (after a long downtime, until the peers answered)
	// or are being dropped.
	ErrQuarantined = replica.ErrQuarantined
)

// ReadLocal returns this node's own stored copy of key (its record, not its
// hints), without a quorum: for operators, tests and the `local` read.
func (n *Node) ReadLocal(key []byte) (s vclock.Set, found bool, err error) {
	return n.rep.ReadLocal("", n.Ring().KeyOf(key))
}
