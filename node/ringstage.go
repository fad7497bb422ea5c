package node

import (
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ringstage"
	"github.com/quorumkv/quorumkv/ringstate"
)

// stageHost is the node side of ring plan/commit/clear and of this node's own staged changes.
type stageHost struct{ n *Node }

func (h stageHost) Snapshot() ringstage.Snapshot {
	h.n.mu.RLock()
	defer h.n.mu.RUnlock()
	return ringstage.FromState(h.n.cfg.NodeID, h.n.state, h.n.claimConfig())
}

func (h stageHost) MergeStage(e ownership.Stage) {
	h.n.change(func(d *ringstate.State) { h.n.state.Stage.Merge(e); d.Stage = e })
}

func (h stageHost) Remove(id, by string) error { return h.n.RemoveMemberBy(id, by, false) }
func (h stageHost) Go(f func())                { h.n.goFunc(f) }
func (h stageHost) Unstage()                   { h.n.refreshSelf() } // drops the flag once admitted

// LeaveRing leaves the ring (a ring commit named this node) until done or the node closes.
func (h stageHost) LeaveRing() {
	if err := h.n.Leave(h.n.ctx); err != nil {
		h.n.log.Error("leave committed by ring commit", "err", err)
	}
}
