package node

import (
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ringstage"
	"github.com/quorumkv/quorumkv/ringstate"
)

type stageHost struct{ n *Node } // ring plan/commit/clear, and this node's own staged changes (ringstage)

func (h stageHost) Snapshot() ringstage.Snapshot {
	h.n.mu.RLock()
	defer h.n.mu.RUnlock()
	return ringstage.FromState(h.n.cfg.NodeID, h.n.state, h.n.claimConfig(), h.n.liveLocked())
}
func (h stageHost) MergeStage(e ownership.Stage) {
	h.n.change(func(d *ringstate.State) { h.n.state.Stage.Merge(e); d.Stage = e })
}
func (h stageHost) Remove(id, by string) error { return h.n.RemoveMemberBy(id, by, false) }
func (h stageHost) Unstage()                   { h.n.refreshSelf() } // drops the flag once admitted
func (h stageHost) LeaveRing() error           { return h.n.Leave(h.n.ctx) }
