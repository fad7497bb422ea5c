package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/ringchange"
	"github.com/quorumkv/quorumkv/store"
)

// changeState is the node's ring state as package ringchange sees it
// (ringchange.State); its methods run with n.mu held.
type changeState struct{ n *Node }

var _ ringchange.State = changeState{}

func (s changeState) Config() ring.Config    { return s.n.claimConfig() }
func (s changeState) Members() []ring.Member { return s.n.state.RingMembers() }
func (s changeState) Live() []string         { return s.n.liveLocked() }
func (s changeState) Assign() []byte         { return s.n.state.Assign }
func (s changeState) SetAssign(b []byte)     { s.n.state.Assign = b }
func (s changeState) Ring() *ring.Ring       { return s.n.ring.Load() }
func (s changeState) Install(r *ring.Ring)   { s.n.installRingLocked(s.n.ring.Load(), r) }
func (s changeState) MayFound() bool         { return len(s.n.cfg.Join) == 0 || s.n.joined.Load() }
func (s changeState) Progress() map[string]ownership.Progress {
	return s.n.state.Progress
}

func (s changeState) SetOwnProgress(p ownership.Progress) {
	if s.n.state.Progress == nil {
		s.n.state.Progress = map[string]ownership.Progress{}
	}
	s.n.state.Progress[s.n.cfg.NodeID] = p
	s.n.schedulePersist()
}

func (s changeState) Source(id ring.NodeID) ownership.Source {
	if pr, ok := s.n.peers[string(id)]; string(id) == s.n.cfg.NodeID || ok && pr.State.Up() {
		return ownership.SourceUp
	}
	if s.n.state.Members[string(id)].Left {
		return ownership.SourceGone
	}
	return ownership.SourceDown
}

// liveLocked lists this node and the peers gossip sees alive or suspect,
// sorted. Caller holds mu.
func (n *Node) liveLocked() []string {
	out := []string{n.cfg.NodeID}
	for id, p := range n.peers {
		if id != n.cfg.NodeID && p.State.Up() {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// changeHost is the node as ringchange's loops see it (ringchange.Host).
type changeHost struct{ n *Node }

var _ ringchange.Host = changeHost{}

func (h changeHost) Read(fn func(ringchange.State)) {
	h.n.mu.RLock()
	defer h.n.mu.RUnlock()
	fn(changeState(h))
}

func (h changeHost) Write(fn func(ringchange.State)) {
	h.n.mu.Lock()
	defer h.n.mu.Unlock()
	fn(changeState(h))
}

func (h changeHost) Receive(ctx context.Context, p uint32, peer string, t *antientropy.TransferHooks) error {
	_, err := h.n.ae.Receive(ctx, p, peer, t)
	return err
}

// metaTransfer names the persisted transfer cursor in the store's meta.
const metaTransfer = "transfer"

func (h changeHost) LoadCursor() ([]byte, error) {
	b, err := h.n.st.GetMeta(metaTransfer)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return b, err
}

func (h changeHost) SaveCursor(b []byte) error { return h.n.st.PutMeta(metaTransfer, b) }

// Broadcast gossips this node's progress record alone.
func (h changeHost) Broadcast(p ownership.Progress) {
	h.n.mu.RLock()
	d := h.n.state.Delta()
	h.n.mu.RUnlock()
	d.Progress = map[string]ownership.Progress{h.n.cfg.NodeID: p}
	if b, err := d.Encode(); err == nil && h.n.ml != nil {
		h.n.ml.Broadcast(b)
	}
}

// startRingChange runs ringchange's loops for the node's life.
func (n *Node) startRingChange() {
	h := changeHost{n}
	if n.cfg.Transfers != (ownership.Throttle{}) {
		n.rc.SetThrottle(n.cfg.Transfers)
	}
	if err := n.rc.Register(n.metrics.reg, h); err != nil {
		n.log.Error("register transfer metrics", "err", err)
	}
	n.goFunc(func() { n.rc.AnnounceLoop(n.ctx, h) })
	n.goFunc(func() { n.rc.TransferLoop(n.ctx, h, min(n.cfg.Defaults.Timeout, ringchange.TransferGrace)) })
}

// Pending is the ring of the assignment the cluster moves to, nil when no
// change is in course: its new owners get writes, not yet reads.
func (n *Node) Pending() *ring.Ring { return n.rc.Target() }

// JointOwners returns the owners of the other assignments in use for
// partition p at replication nrep (quorum.PendingMembership;
// ringchange.Change.JointOwners).
func (n *Node) JointOwners(p uint32, nrep int) [][]ring.NodeID {
	return n.rc.JointOwners(n.Ring(), p, nrep)
}

// mayDrop reports whether this node may hand off and drop partition p,
// which it lost (antientropy.OwnershipHost): always on a token ring.
func (n *Node) mayDrop(p uint32) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return !n.state.Claim() || n.rc.MayDropLocked(changeState{n}, p)
}

// aeHost is an antientropy.OwnershipHost: claim rings have pending owners
// and drop lost partitions only once the switch is known everywhere.
func (h aeHost) Pending() *ring.Ring   { return h.n.Pending() }
func (h aeHost) MayDrop(p uint32) bool { return h.n.mayDrop(p) }

// ownsNothingLocked reports whether this node has left the ring for good
// on this data directory: no partition in the ring reads route with or
// in the target, and nothing left to hand over. Caller holds mu (so the
// ring and the handoff it starts are seen together).
func (n *Node) ownsNothingLocked() bool {
	self := ring.NodeID(n.cfg.NodeID)
	if t := n.rc.Target(); n.ring.Load().Has(self) || t != nil && t.Has(self) {
		return false
	}
	return n.ae == nil || n.ae.HandoffPending() == 0
}

// DescribeRing adds to a /cluster/ring answer for ring r the placement
// mode, zones and their guarantee, and the change in course
// (httpapi.RingDescriber).
func (n *Node) DescribeRing(out *api.Ring, r *ring.Ring) {
	out.Mode = r.Mode().String()
	for _, m := range r.MemberList() {
		if m.Zone != "" {
			if out.Zones == nil {
				out.Zones = map[string]string{}
			}
			out.Zones[string(m.ID)] = m.Zone
		}
	}
	zs := r.ZoneStatus(out.N)
	out.ZoneGuarantee, out.ZoneReason = zs.Held, zs.Reason
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.state.Claim() {
		out.Change = n.rc.DescribeLocked(changeState{n})
	}
}

// Transfers reports this node's side of the ring change in course.
func (n *Node) Transfers() api.Transfers {
	n.mu.RLock()
	claim := n.state.Claim()
	n.mu.RUnlock()
	if !claim {
		return api.Transfers{Node: n.cfg.NodeID}
	}
	return n.rc.Transfers(changeHost{n})
}

// transfersStatus is Transfers for /status: nil when no change is in
// course.
func (n *Node) transfersStatus() *api.Transfers {
	if t := n.Transfers(); t.Target != "" {
		return &t
	}
	return nil
}

func (n *Node) handleTransfers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.Transfers())
}

// ringForming says why a claim ring is not ready to serve requests at the
// default N yet: the ring reads use has fewer than min(N, members on the
// ring) members, as while a new cluster's members are taken in one by one
// (each a pending owner first), or while groups that formed apart merge.
// "" when it is ready.
func (n *Node) ringForming() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if !n.state.Claim() {
		return ""
	}
	on := len(n.state.RingMembers())
	if have, want := n.ring.Load().Len(), min(n.cfg.Defaults.N, on); have < want {
		return fmt.Sprintf("ring forming: reads use %d member(s), %d needed of the %d on the ring (new members are pending owners until they received their partitions)", have, want, on)
	}
	return ""
}
