package node

// Test back doors for memberauth_test.go (compiled only with the tests).

// LocalState is the ring state as this node gossips it.
func (n *Node) LocalState() []byte { return n.localState() }

// MergeRemoteState merges a ring state as if gossip delivered it.
func (n *Node) MergeRemoteState(buf []byte) { n.mergeRemoteState(buf) }
