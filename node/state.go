package node

import (
	"errors"
	"fmt"
	"sort"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/memberauth"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/ringstate"
	"github.com/quorumkv/quorumkv/store"
)

// metaCluster names the persisted ring state in the store (on disk: never
// rename it).
const metaCluster = "cluster"

// loadState reads the persisted ring state, or starts a new one with this
// node's ring settings. A data directory keeps the settings it was born
// with: one of a token-ring cluster (no mode persisted) stays on it under
// a node whose configured settings are the defaults, so an upgraded node
// keeps its placement; other differences are refused.
func (n *Node) loadState() error {
	b, err := n.st.GetMeta(metaCluster)
	switch {
	case errors.Is(err, store.ErrNotFound):
		n.state = ringstate.New(n.cfg.Ring, n.cfg.Defaults.N)
	case err != nil:
		return fmt.Errorf("read ring state: %w", err)
	default:
		s, err := DecodeClusterState(b)
		if err != nil {
			return fmt.Errorf("stored ring state: %w", err)
		}
		if err := ringstate.CheckDir(s, n.cfg.Ring); err != nil {
			return err
		}
		if s.Members == nil {
			s.Members = map[string]MemberRecord{}
		}
		n.state = s
	}
	if err := n.ensureContextKeyLocked(); err != nil {
		return err
	}
	return n.rebuildRingLocked()
}

// refreshSelf (re)publishes this node's own record with its current
// addresses, bumping its version so it wins over what peers remember. A
// node that left the ring (or was removed) stays off it across restarts of
// the same data directory. The addresses are the advertised ones
// (Config.Advertise with the bound ports), so a node bound to 0.0.0.0 in a
// container tells its peers where it really is.
func (n *Node) refreshSelf() {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.state.Members[n.cfg.NodeID]
	newDir := r.Incarnation != n.dir.Incarnation // a record of an earlier data directory, if any
	r.Left, r.Staged = r.Left && !newDir, (newDir && n.cfg.JoinMode == ownership.JoinStaged || !newDir && r.Staged) && !n.state.Stage.Joined(n.cfg.NodeID, n.dir.Incarnation)
	r.ID = n.cfg.NodeID
	r.Incarnation = n.dir.Incarnation
	r.Zone = n.cfg.Zone
	r.RPC = n.cfg.advertised(n.tr.LocalAddr())
	r.HTTP = n.cfg.advertised(n.HTTPAddr())
	if n.resp != nil {
		r.RESP = n.cfg.advertised(n.resp.Addr())
	}
	r.Version = memberauth.NextVersion(r.Version)
	r = n.signOwnLocked(r)
	n.state.Members[n.cfg.NodeID] = r
	if r.Left {
		n.log.Warn("this node has left the ring (or was removed): it serves requests but owns no partitions; start it on a new, empty data directory to rejoin")
	}
	if err := n.rebuildRingLocked(); err != nil {
		n.log.Error("rebuild ring", "err", err)
	}
	n.peers[n.cfg.NodeID] = Peer{ID: n.cfg.NodeID, State: PeerAlive}
	n.schedulePersist()
}

// setOwnGossip records this node's gossip address, as memberlist announces
// it, in its own record once gossip has started. With Config.Advertise the
// advertised host replaces memberlist's IP address, so a name stays a name:
// peers that lose this node redial it by name (join.go) and follow an
// address change. The version is bumped: memberlist announced the record
// without the address when it started, and peers must prefer this one.
func (n *Node) setOwnGossip(addr string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	r := n.state.Members[n.cfg.NodeID]
	r.Gossip = n.cfg.advertised(addr)
	r.Version = memberauth.NextVersion(r.Version)
	n.state.Members[n.cfg.NodeID] = n.signOwnLocked(r)
	n.schedulePersist()
}

// rebuildRingLocked rebuilds the ring from state. Caller holds mu (or is
// the only user, during New).
func (n *Node) rebuildRingLocked() error {
	if n.state.Claim() {
		n.stage.Check(n.cfg.NodeID, n.state, stageHost{n}, n.goFunc, n.log)
		return n.rc.RebuildLocked(changeState{n})
	}
	rc := n.cfg.Ring
	rc.Mode, rc.Partitions, rc.Tokens = ring.ModeTokens, n.state.Partitions, n.state.Tokens
	r, err := ring.New(rc, n.state.RingMembers())
	if err != nil {
		return err
	}
	old := n.ring.Load()
	if old != nil && old.Equal(r) {
		return nil
	}
	n.installRingLocked(old, r)
	return nil
}

// installRingLocked makes r the ring requests route with and tells
// anti-entropy what moved. Caller holds mu.
func (n *Node) installRingLocked(old, r *ring.Ring) {
	n.ring.Store(r)
	if old != nil {
		n.log.Info("ring changed", "members", r.Len())
		if n.ae != nil {
			n.ae.RingChanged(old, r)
		}
	}
}

// Ring returns the current ring (quorum.Membership).
func (n *Node) Ring() *ring.Ring { return n.ring.Load() }

// Alive reports whether gossip considers id alive or suspect
// (quorum.Membership). A suspect peer is still tried: it is usually slow,
// not dead, and a failed call falls back anyway.
func (n *Node) Alive(id ring.NodeID) bool {
	if string(id) == n.cfg.NodeID {
		return true
	}
	n.mu.RLock()
	p, ok := n.peers[string(id)]
	n.mu.RUnlock()
	return ok && p.State.Up()
}

func (n *Node) rpcAddr(id string) (string, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	r, ok := n.state.Members[id]
	if !ok || r.RPC == "" {
		return "", false
	}
	return r.RPC, true
}

func (n *Node) schedulePersist() {
	select {
	case n.persistCh <- struct{}{}:
	default:
	}
}

func (n *Node) persistLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.persistCh:
			n.persistState()
		}
	}
}

func (n *Node) persistState() {
	n.mu.RLock()
	b, err := n.state.Encode()
	n.mu.RUnlock()
	if err == nil {
		err = n.st.PutMeta(metaCluster, b)
	}
	if err != nil {
		n.log.Error("persist ring state", "err", err)
	}
}

// localMeta is our own record (gossipDelegate.LocalMeta).
func (n *Node) localMeta() []byte {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return ringstate.EncodeMeta(n.state.Members[n.cfg.NodeID])
}

// localState is the whole ring state (gossipDelegate.LocalState).
func (n *Node) localState() []byte {
	n.mu.RLock()
	defer n.mu.RUnlock()
	b, err := n.state.Encode()
	if err != nil {
		n.log.Error("encode ring state", "err", err)
		return nil
	}
	return b
}

// mergeRemoteState merges a peer's ring state (gossipDelegate).
func (n *Node) mergeRemoteState(buf []byte) {
	s, err := DecodeClusterState(buf)
	if err != nil {
		n.log.Warn("ignoring ring state from gossip", "err", err)
		return
	}
	n.mergeState(s)
}

func (n *Node) mergeState(s ClusterState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	changedSelf := false
	s.Members = n.verifyMembersLocked(s.Members)
	// Our own record is ours to change, with one exception: a removal of
	// this very incarnation by an operator. A newer record of an earlier
	// incarnation (we came back on a new data directory), or a newer live
	// record (we restarted from an old copy of the state), is outbid.
	if theirs, ok := s.Members[n.cfg.NodeID]; ok {
		mine := n.state.Members[n.cfg.NodeID]
		if ringstate.Newer(theirs, mine) {
			if theirs.Left && theirs.Incarnation == n.dir.Incarnation && !mine.Left {
				mine.Left, mine.Version = true, theirs.Version
				mine = n.signOwnLocked(mine)
				n.log.Warn("this node was removed from the ring: it hands its data to the primaries and owns no partitions; start it on a new, empty data directory to rejoin")
				if n.ml != nil {
					n.ml.Broadcast(n.deltaLocked(mine))
				}
			} else if !theirs.Left || theirs.Incarnation != n.dir.Incarnation {
				mine.Version = memberauth.NextVersion(theirs.Version)
				mine = n.signOwnLocked(mine)
			}
			n.state.Members[n.cfg.NodeID] = mine
			changedSelf = true
		}
		delete(s.Members, n.cfg.NodeID)
	}
	if n.state.Claim() && n.rc.OutbidLocked(changeState{n}, s.Progress) {
		changedSelf = true
	}
	changed, err := n.state.Merge(s)
	if err != nil {
		n.log.Error("refusing ring state of a cluster with other ring settings", "err", err)
		return
	}
	if changed || changedSelf {
		n.contextKeyMergedLocked()
		if err := n.rebuildRingLocked(); err != nil {
			n.log.Error("rebuild ring", "err", err)
		}
		n.schedulePersist()
	}
}

// mergeRecord merges one member's own record, as carried in its gossip
// metadata.
func (n *Node) mergeRecord(rec MemberRecord) {
	n.mu.RLock()
	d := n.state.Delta()
	n.mu.RUnlock()
	d.Members = map[string]MemberRecord{rec.ID: rec}
	n.mergeState(d)
}

// peerChanged takes a gossip report about a peer (gossipDelegate).
func (n *Node) peerChanged(p Peer) {
	if p.ID == n.cfg.NodeID {
		return
	}
	var rec *MemberRecord
	if len(p.Meta) > 0 {
		r, err := ringstate.DecodeMeta(p.Meta)
		if err != nil || r.ID != p.ID {
			n.log.Warn("ignoring peer metadata", "peer", p.ID, "err", err)
		} else {
			rec = &r
		}
	}
	n.mu.Lock()
	prev, had := n.peers[p.ID]
	n.peers[p.ID] = Peer{ID: p.ID, Addr: p.Addr, State: p.State}
	n.noteAliveLocked(p.ID, p.State.Up(), prev, had)
	if had && prev.State.Up() && (p.State == PeerDead || p.State == PeerLeft) && n.state.Claim() {
		// The joint-write window may wait on it alone (a live member's report).
		if err := n.rebuildRingLocked(); err != nil {
			n.log.Error("rebuild ring", "err", err)
		}
	}
	n.mu.Unlock()
	if n.ae != nil {
		n.ae.PeerState(p.ID, p.State.Up()) // how long a primary is dead gates reaping
	}
	if !had || prev.State != p.State {
		n.log.Info("peer state", "peer", p.ID, "state", p.State.String(), "addr", p.Addr)
		if p.State == PeerDead || p.State == PeerLeft {
			select {
			case n.deadCh <- p.ID:
			default:
			}
		}
	}
	if rec != nil {
		if rec.Gossip == "" && rec.Key.IsZero() {
			// A member of the release before signed records that does not
			// publish its gossip address (it started before gossip did) is
			// reached where gossip saw it. A signed record cannot be
			// changed; its member publishes the address in its next
			// version (setOwnGossip).
			rec.Gossip = p.Addr
		}
		n.mergeRecord(*rec)
	}
	// Any alive report may mean the peer is back, even without a state
	// change (a restart faster than failure detection, or a down peer
	// misreported as alive): hinted handoff clears its backoff and tries.
	if p.State == PeerAlive && n.hints != nil {
		n.hints.PeerAlive(p.ID)
	}
}

// MemberInfo is one member as /cluster/members shows it.
type MemberInfo = api.Member

// Members lists every member known, on the ring or not, with liveness.
func (n *Node) Members() []MemberInfo {
	n.mu.RLock()
	defer n.mu.RUnlock()
	seen := map[string]bool{}
	var out []MemberInfo
	for id, r := range n.state.Members {
		seen[id] = true
		st := "unknown"
		if p, ok := n.peers[id]; ok {
			st = p.State.String()
		}
		if id == n.cfg.NodeID {
			st = PeerAlive.String()
		}
		out = append(out, MemberInfo{ID: id, HTTP: r.HTTP, RPC: r.RPC, RESP: r.RESP, Gossip: r.Gossip,
			State: st, OnRing: !r.Left, Self: id == n.cfg.NodeID, Zone: r.Zone})
	}
	for id, p := range n.peers {
		if !seen[id] {
			out = append(out, MemberInfo{ID: id, Gossip: p.Addr, State: p.State.String()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
