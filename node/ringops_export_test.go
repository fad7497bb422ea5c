package node

import "fmt"

// RingChangeDebug describes this node's view of the ring change in
// course, for test failure messages.
func (n *Node) RingChangeDebug() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return fmt.Sprintf("%s: committed=%v target=%v moves=%d progress=%+v", n.cfg.NodeID, n.rc.committed, n.rc.targetA, len(n.rc.moves), n.state.Progress)
}
