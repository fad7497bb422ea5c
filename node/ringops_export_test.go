package node

// RingChangeDebug describes this node's view of the ring change in
// course, for test failure messages.
func (n *Node) RingChangeDebug() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.rc.DebugLocked(changeState{n})
}
