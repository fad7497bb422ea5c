package node

import (
	"github.com/quorumkv/quorumkv/vclock"
)

// ReadLocal returns this node's own stored copy of key (its record, not its
// hints), without a quorum: for operators, tests and the `local` read.
func (n *Node) ReadLocal(key []byte) (s vclock.Set, found bool, err error) {
	return n.rep.ReadLocal("", n.Ring().KeyOf(key))
}
