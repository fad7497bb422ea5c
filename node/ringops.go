package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/memberauth"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
)

// deltaLocked encodes a ring state holding only rec, for a broadcast.
// Caller holds mu.
func (n *Node) deltaLocked(rec MemberRecord) []byte {
	d := n.state.delta()
	d.Members = map[string]MemberRecord{rec.ID: rec}
	b, err := d.Encode()
	if err != nil {
		return nil
	}
	return b
}

// setRecord stores rec in the ring state, rebuilds the ring, persists and
// broadcasts the change.
func (n *Node) setRecord(rec MemberRecord) {
	n.mu.Lock()
	n.state.Members[rec.ID] = rec
	if err := n.rebuildRingLocked(); err != nil {
		n.log.Error("rebuild ring", "err", err)
	}
	msg := n.deltaLocked(rec)
	n.mu.Unlock()
	n.schedulePersist()
	if n.ml != nil && msg != nil {
		n.ml.Broadcast(msg)
	}
}

// Leave takes this node off the ring: its partitions move to the remaining
// members, which fetch them by anti-entropy while this node hands its
// records over (and drops them). It waits until the handoff is done or ctx
// ends; the node keeps serving requests as a coordinator until it is
// stopped. Leaving is for good on this data directory: restarted on it, the
// node stays off the ring.
func (n *Node) Leave(ctx context.Context) error {
	n.mu.RLock()
	rec := n.state.Members[n.cfg.NodeID]
	others := 0
	for id, r := range n.state.Members {
		if id != n.cfg.NodeID && !r.Left {
			others++
		}
	}
	n.mu.RUnlock()
	if others == 0 && !rec.Left {
		return errors.New("the last member of the ring cannot leave it")
	}
	if !rec.Left {
		rec.Left = true
		// A leave jumps the version (memberauth.LeaveJump): this node
		// restarting a few times before its peers hear of the leave must
		// not outbid it.
		rec.Version = memberauth.LeaveVersion(rec.Version)
		n.mu.Lock()
		rec = n.signOwnLocked(rec)
		n.mu.Unlock()
		n.setRecord(rec)
		n.log.Warn("leaving the ring: handing partitions over to the remaining members")
	}
	for {
		n.mu.RLock()
		done := n.ownsNothingLocked()
		n.mu.RUnlock()
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("left the ring, but its partitions are not handed over yet (%d to hand off; new owners may still be receiving them): %w", n.ae.HandoffPending(), ctx.Err())
		case <-clock.After(n.clk, 100*time.Millisecond):
			n.ae.Kick()
		}
	}
}

// RemoveMember takes a member that is down for good off the ring, so its
// partitions move to the others (they refill them by anti-entropy). A live
// member must leave instead, so that it hands its data over. It is
// RemoveMemberBy without a principal and without force.
func (n *Node) RemoveMember(id string) error { return n.RemoveMemberBy(id, "", false) }

// RemoveMemberBy removes member id on the request of admin principal
// ("" when authentication is off): the removal is a tombstone this node
// signs, naming the principal, which every member verifies and logs. A
// member seen alive within Security.RemoveMinDown is refused
// (ErrRecentlyAlive) unless force.
func (n *Node) RemoveMemberBy(id, principal string, force bool) error {
	rec, ok, err := n.removable(id, force)
	if err != nil || !ok {
		return err
	}
	tomb, err := n.id.SignRemoval(rec, principal, force)
	if err != nil {
		return err
	}
	n.setRecord(tomb)
	n.log.Warn("member removed from the ring", "peer", id, "principal", principal, "forced", force)
	return nil
}

func (n *Node) handleLeave(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Minute)
	defer cancel()
	if err := n.Leave(ctx); err != nil {
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"node": n.cfg.NodeID, "status": "left the ring; partitions handed over"})
}

func (n *Node) handleRemove(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("node")
	if id == "" || !nodeIDPattern.MatchString(id) {
		writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("node=%q: want a member id", id), Code: api.CodeBadParameter, Param: "node"})
		return
	}
	force := false
	if v := r.URL.Query().Get("force"); v != "" {
		b, perr := strconv.ParseBool(v)
		if perr != nil {
			writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("force=%q: want true or false", v), Code: api.CodeBadParameter, Param: "force"})
			return
		}
		force = b
	}
	who := ""
	if p, ok := auth.PrincipalFrom(r.Context()); ok {
		who = p.Name
	}
	err := n.RemoveMemberBy(id, who, force)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"node": n.cfg.NodeID, "removed": id})
	case errors.Is(err, ErrUnknownMember):
		writeJSON(w, http.StatusNotFound, api.Error{Error: err.Error(), Code: api.CodeNotFound, Param: "node"})
	default: // alive, or seen alive within --remove-min-down
		writeJSON(w, http.StatusConflict, api.Error{Error: err.Error(), Code: "conflict", Param: "node"})
	}
}

// ringChange is the node's side of a ModeClaim cluster's ring changes
// (package ownership has the decisions): the committed assignment reads
// route with, the target writes also go to, and caches so that a state
// merge that changes neither costs no planning. Guarded by Node.mu, except
// target, read by requests without it.
type ringChange struct {
	target atomic.Pointer[ring.Ring] // nil: no change in course

	committedBytes []byte
	committed      *ring.Assignment
	committedRing  *ring.Ring
	planKey        string // committed ID and member set targetA was planned for
	targetA        *ring.Assignment
	targetRing     *ring.Ring
	moves          []ring.Move // ring.Diff(committedRing, targetRing)

	// prev is the committed ring before the last commit, until every live
	// member reports the new one: writes still reach its owners (as
	// extras), so a member that reads with it meanwhile sees them.
	prev atomic.Pointer[ring.Ring]

	announce chan struct{} // own progress changed: gossip it
	xfer     transfers     // this node's transfers as a pending owner (transfers.go)
}

// newClusterState returns the ring state of a new cluster with the
// settings of cfg; n is the node's default N, which a claim ring places
// (the cluster's N is fixed at birth with Q).
func newClusterState(cfg ring.Config, n int) ClusterState {
	s := ClusterState{Partitions: cfg.Partitions, Tokens: cfg.Tokens, Members: map[string]MemberRecord{}}
	if s.Partitions == 0 {
		s.Partitions = ring.DefaultPartitions
	}
	if s.Tokens == 0 {
		s.Tokens = ring.DefaultTokens
	}
	if cfg.Mode == ring.ModeClaim {
		s.Mode = uint8(ring.ModeClaim)
		s.Replicas = n
	}
	return s
}

// checkDirSettings refuses a data directory whose ring settings differ
// from the configured ones, except a token-ring directory under the
// default settings: that is an upgraded node of a cluster born before
// claim rings, and it keeps its cluster's placement.
func checkDirSettings(s ClusterState, cfg ring.Config) error {
	want := newClusterState(cfg, s.Replicas)
	same := s.Mode == want.Mode && s.Partitions == want.Partitions && (s.claim() || s.Tokens == want.Tokens)
	def := ring.DefaultConfig()
	isDefault := cfg.Mode == def.Mode && want.Partitions == def.Partitions && want.Tokens == def.Tokens
	if same || (!s.claim() && isDefault) {
		return nil
	}
	return fmt.Errorf("data directory was created with ring settings %s, config says %s: ring settings are fixed at cluster birth",
		s.settings(), want.settings())
}

// delta returns an empty state with s's ring settings, for a broadcast of
// one record.
func (s ClusterState) delta() ClusterState {
	return ClusterState{Partitions: s.Partitions, Tokens: s.Tokens, Mode: s.Mode, Replicas: s.Replicas}
}

// claimConfig is the ring config of the state's claim ring.
func (n *Node) claimConfig() ring.Config {
	c := n.cfg.Ring
	c.Mode, c.Partitions, c.Tokens, c.Replicas = ring.ModeClaim, n.state.Partitions, n.state.Tokens, n.state.Replicas
	return c
}

// rebuildClaimLocked brings a claim ring up to date with the state: the
// first assignment of a new cluster, the target of a change of members
// (ring.Plan from the committed one), and its commit once every pending
// owner is ready (ownership.CanCommit, which every node evaluates from the
// same gossiped progress). Caller holds mu.
func (n *Node) rebuildClaimLocked() error {
	rc := &n.rc
	cfg := n.claimConfig()
	members := n.state.RingMembers()
	if len(n.state.Assign) == 0 && len(members) > 0 && (len(n.cfg.Join) == 0 || n.joined.Load()) {
		// A cluster's first assignment: made by its first member, or by
		// members that joined each other and found none.
		a, err := ring.Plan(cfg, nil, members)
		if err != nil {
			return err
		}
		n.state.Assign = a.Encode()
		n.log.Info("ring: first assignment of the cluster", "assignment", a.String())
	}
	for range 3 {
		if err := rc.loadCommitted(cfg, n.state.Assign, members); err != nil {
			return err
		}
		if err := rc.planTarget(cfg, members); err != nil {
			return err
		}
		if rc.targetA == nil || !ownership.CanCommit(rc.moves, ownership.IDOf(rc.targetA), n.state.Progress) {
			break
		}
		n.log.Info("ring change committed: reads move to the new owners", "assignment", rc.targetA.String(), "moved", len(rc.moves))
		rc.prev.Store(rc.committedRing)
		n.state.Assign = rc.targetA.Encode()
	}
	if rc.prev.Load() != nil {
		cid := ownership.IDOfEncoded(n.state.Assign)
		if ownership.AllReport(n.liveLocked(), n.state.Progress, func(p ownership.Progress) bool { return p.Committed == cid }) {
			rc.prev.Store(nil)
		}
	}
	rc.target.Store(rc.targetRing)
	if old := n.ring.Load(); old != rc.committedRing && (old == nil || !old.Equal(rc.committedRing)) {
		n.installRingLocked(old, rc.committedRing)
		if r := rc.committedRing; r.Len() > 0 && slices.ContainsFunc(members, func(m ring.Member) bool { return m.Zone != "" }) {
			if zs := r.ZoneStatus(n.state.Replicas); !zs.Held {
				n.log.Warn("ring: the zone guarantee does not hold", "reason", zs.Reason)
			}
		}
	}
	n.updateOwnProgressLocked()
	return nil
}

// loadCommitted decodes the committed assignment when it changed. Before
// the cluster has one (a node that has not joined its seeds yet), the ring
// is planned from members for this node alone, never gossiped: a node
// that founded its own assignment could outbid its cluster's.
func (rc *ringChange) loadCommitted(cfg ring.Config, b []byte, members []ring.Member) error {
	if len(b) > 0 && rc.committedRing != nil && bytes.Equal(b, rc.committedBytes) {
		return nil
	}
	var a *ring.Assignment
	var r *ring.Ring
	var err error
	if len(b) == 0 {
		r, err = ring.New(cfg, members) // provisional
	} else if a, err = ring.DecodeAssignment(b); err == nil {
		r, err = ring.FromAssignment(cfg, a)
	}
	if err != nil {
		return fmt.Errorf("committed assignment: %w", err)
	}
	rc.committedBytes, rc.committed, rc.committedRing = bytes.Clone(b), a, r
	return nil
}

// planTarget plans the target of the committed assignment and members,
// unless they did not change since the last plan. No target when the plan
// is the committed assignment itself.
func (rc *ringChange) planTarget(cfg ring.Config, members []ring.Member) error {
	if rc.committed == nil || len(members) == 0 {
		rc.planKey, rc.targetA, rc.targetRing, rc.moves = "", nil, nil, nil
		return nil
	}
	var key strings.Builder
	key.WriteString(ownership.IDOfEncoded(rc.committedBytes).String())
	for _, m := range members {
		fmt.Fprintf(&key, "\x00%s\x01%s", m.ID, m.Zone)
	}
	if key.String() == rc.planKey {
		return nil
	}
	t, err := ring.Plan(cfg, rc.committed, members)
	if err != nil {
		return fmt.Errorf("plan ring change: %w", err)
	}
	rc.planKey = key.String()
	if t == rc.committed || t.Equal(rc.committed) {
		rc.targetA, rc.targetRing, rc.moves = nil, nil, nil
		return nil
	}
	tr, err := ring.FromAssignment(cfg, t)
	if err != nil {
		return fmt.Errorf("plan ring change: %w", err)
	}
	rc.targetA, rc.targetRing = t, tr
	rc.moves = ring.Diff(rc.committedRing, tr, cfg.Replicas)
	return nil
}

// updateOwnProgressLocked publishes this node's view (the committed and
// target assignments) in its own progress record when it changed; a new
// target restarts its transfers. Caller holds mu.
func (n *Node) updateOwnProgressLocked() {
	if !n.state.claim() {
		return
	}
	self := n.cfg.NodeID
	cur := n.state.Progress[self]
	next := cur
	next.Committed = ownership.IDOfEncoded(n.state.Assign)
	next.Target = ownership.IDOf(n.rc.targetA)
	if next.Target != cur.Target {
		next.Total = len(ownership.Gains(n.rc.moves, ring.NodeID(self)))
		next.Done, next.Ready = 0, next.Total == 0 && !next.Target.IsZero()
	}
	if next == cur && cur.Seq > 0 {
		return
	}
	next.Seq = cur.Seq + 1
	n.setOwnProgressLocked(next)
}

// setOwnProgressLocked stores this node's progress and asks for it to be
// gossiped. Caller holds mu.
func (n *Node) setOwnProgressLocked(p ownership.Progress) {
	if n.state.Progress == nil {
		n.state.Progress = map[string]ownership.Progress{}
	}
	n.state.Progress[n.cfg.NodeID] = p
	n.schedulePersist()
	select {
	case n.rc.announce <- struct{}{}:
	default:
	}
}

// outbidOwnProgressLocked removes this node's progress from theirs (ours
// to change) and, if theirs was newer (we restarted from an older copy of
// the state), moves ours past it. Caller holds mu.
func (n *Node) outbidOwnProgressLocked(theirs map[string]ownership.Progress) bool {
	p, ok := theirs[n.cfg.NodeID]
	if !ok {
		return false
	}
	delete(theirs, n.cfg.NodeID)
	mine := n.state.Progress[n.cfg.NodeID]
	if !p.After(mine) {
		return false
	}
	mine.Seq = p.Seq + 1
	n.setOwnProgressLocked(mine)
	return true
}

// announceLoop gossips this node's progress record whenever it changes
// (outside mu: a scripted gossip delivers synchronously).
func (n *Node) announceLoop() {
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.rc.announce:
		}
		n.mu.RLock()
		d := n.state.delta()
		p, ok := n.state.Progress[n.cfg.NodeID]
		n.mu.RUnlock()
		if !ok || n.ml == nil {
			continue
		}
		d.Progress = map[string]ownership.Progress{n.cfg.NodeID: p}
		if b, err := d.Encode(); err == nil {
			n.ml.Broadcast(b)
		}
	}
}

// Pending is the ring of the assignment the cluster moves to, nil when no
// change is in course: its new owners get writes, not yet reads.
func (n *Node) Pending() *ring.Ring { return n.rc.target.Load() }

// JointOwners returns, for partition p and a write at replication nrep,
// the owners of the other assignments in use (quorum.PendingMembership):
// the target's while a change is in course, and the previous commit's
// until every live member routes reads with the current one. A write must
// reach W of each, so that a read at R meets it whichever of these
// assignments its coordinator reads with.
//
// Of the previous commit's owners only those that still own p count: a
// write sent to one that lost p could land after it dropped p and stay
// there for good, and those that still own p are the write's targets.
func (n *Node) JointOwners(p uint32, nrep int) [][]ring.NodeID {
	var out [][]ring.NodeID
	if t := n.rc.target.Load(); t != nil && int64(p) < int64(t.Partitions()) && t.Len() > 0 {
		out = append(out, t.Primaries(p, min(nrep, t.Config().Replicas)))
	}
	if prev := n.rc.prev.Load(); prev != nil && int64(p) < int64(prev.Partitions()) && prev.Len() > 0 {
		cur := n.Ring()
		var kept []ring.NodeID
		for _, id := range prev.Primaries(p, min(nrep, prev.Config().Replicas)) {
			if cur.IsPrimary(p, nrep, id) {
				kept = append(kept, id)
			}
		}
		out = append(out, kept)
	}
	return out
}

// liveLocked lists this node and the peers gossip sees alive or suspect.
// Caller holds mu.
func (n *Node) liveLocked() []string {
	out := []string{n.cfg.NodeID}
	for id, p := range n.peers {
		if id != n.cfg.NodeID && (p.State == PeerAlive || p.State == PeerSuspect) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// mayDrop reports whether this node may hand off and drop partition p,
// which it lost (antientropy.OwnershipHost): on a claim ring, only once
// every live node routes reads with the assignment that took p away, and
// not while p is coming back to it.
func (n *Node) mayDrop(p uint32) bool {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if !n.state.claim() {
		return true
	}
	if t := n.rc.targetRing; t != nil && t.IsPrimary(p, t.Config().Replicas, ring.NodeID(n.cfg.NodeID)) {
		return false
	}
	cid := ownership.IDOfEncoded(n.state.Assign)
	return ownership.AllReport(n.liveLocked(), n.state.Progress, func(pg ownership.Progress) bool { return pg.Committed == cid })
}

// ownsNothingLocked reports whether this node has left the ring for good
// on this data directory: no partition in the ring reads route with, and
// nothing left to hand over. Caller holds mu (so the ring and the
// handoff it starts are seen together).
func (n *Node) ownsNothingLocked() bool {
	if n.ring.Load().Has(ring.NodeID(n.cfg.NodeID)) {
		return false
	}
	if t := n.rc.target.Load(); t != nil && t.Has(ring.NodeID(n.cfg.NodeID)) {
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
	if n.rc.targetA == nil || !n.state.claim() {
		return
	}
	t := ownership.IDOf(n.rc.targetA)
	ch := &api.RingChange{Committed: ownership.IDOfEncoded(n.state.Assign).String(), Target: t.String(), Pending: map[string]int{}}
	for _, id := range ownership.Gainers(n.rc.moves) {
		ch.Pending[string(id)] = len(ownership.Gains(n.rc.moves, id))
		if p := n.state.Progress[string(id)]; p.Target == t && p.Ready {
			ch.Ready = append(ch.Ready, string(id))
		}
	}
	out.Change = ch
}

// aeHost is an antientropy.OwnershipHost: claim rings have pending owners
// and drop lost partitions only once the switch is known everywhere.
func (h aeHost) Pending() *ring.Ring   { return h.n.Pending() }
func (h aeHost) MayDrop(p uint32) bool { return h.n.mayDrop(p) }

// ringForming says why a claim ring is not ready to serve requests at the
// default N yet: the ring reads use has fewer than min(N, members on the
// ring) members, as while a new cluster's members are taken in one by one
// (each a pending owner first), or while groups that formed apart merge.
// "" when it is ready.
func (n *Node) ringForming() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if !n.state.claim() {
		return ""
	}
	on := len(n.state.RingMembers())
	if have, want := n.ring.Load().Len(), min(n.cfg.Defaults.N, on); have < want {
		return fmt.Sprintf("ring forming: reads use %d member(s), %d needed of the %d on the ring (new members are pending owners until they received their partitions)", have, want, on)
	}
	return ""
}
