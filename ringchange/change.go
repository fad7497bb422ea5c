// Package ringchange runs one node's side of a claim ring's changes
// (ring.ModeClaim), with the decisions of package ownership: the committed
// assignment reads route with, the target a change of members moves to and
// its commit once every pending owner is ready, the previous commit's
// owners that writes still reach until the switch is known everywhere,
// this node's progress record, and its transfers as a pending owner.
//
// The node keeps the gossiped values (the committed assignment and every
// member's progress record) in its ring state, under its own lock; a
// Change reads and changes them through State, only from its methods whose
// names end in Locked, which the node calls with that lock held. The
// transfer and announce loops take the lock through Host.
package ringchange

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
)

// State is the node's ring state as a Change reads and changes it. Its
// methods are called with the node's state lock held and must not take it.
type State interface {
	// Config is the claim ring's config (Q, N as Replicas).
	Config() ring.Config
	// Members are the members on the ring, sorted by id.
	Members() []ring.Member
	// Live lists this node and the peers gossip sees alive or suspect,
	// sorted.
	Live() []string
	// Source says how a committed owner may serve as the source of a
	// transfer: up (alive, or this node), gone (off the ring and not
	// alive) or down (on the ring, not alive).
	Source(id ring.NodeID) ownership.Source
	// Assign is the committed assignment's encoding (nil before the
	// cluster has one); SetAssign replaces it.
	Assign() []byte
	SetAssign(b []byte)
	// Progress is every member's progress record (read only).
	Progress() map[string]ownership.Progress
	// SetOwnProgress stores this node's progress record and persists the
	// state; the Change gossips it.
	SetOwnProgress(p ownership.Progress)
	// MayFound says whether this node may make its cluster's first
	// assignment: it has no seeds, or it joined them.
	MayFound() bool
	// Ring is the ring requests route with now; Install replaces it.
	Ring() *ring.Ring
	Install(r *ring.Ring)
}

// Change is one node's view of its cluster's ring change. Its fields are
// guarded by the node's state lock, except those read by requests
// without it (target, prev) and the transfers' own state.
type Change struct {
	self ring.NodeID
	log  *slog.Logger

	target atomic.Pointer[ring.Ring] // nil: no change in course
	// prev is the committed ring before the last commit, until every live
	// member reports the new one: writes still reach its owners (as
	// extras), so a member that reads with it meanwhile sees them.
	prev atomic.Pointer[ring.Ring]

	committedBytes []byte
	committed      *ring.Assignment
	committedRing  *ring.Ring
	planKey        string // committed ID and member set targetA was planned for
	targetA        *ring.Assignment
	targetRing     *ring.Ring
	moves          []ring.Move // ring.Diff(committedRing, targetRing)

	announce chan struct{} // own progress changed: gossip it
	xfer     transfers
	metrics  *metrics
}

// New returns the Change of node self.
func New(self string, log *slog.Logger) *Change {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Change{self: ring.NodeID(self), log: log, announce: make(chan struct{}, 1), metrics: newMetrics()}
	c.SetThrottle(ownership.DefaultThrottle())
	return c
}

// RebuildLocked brings the claim ring up to date with the state: the first
// assignment of a new cluster, the target of a change of members (ring.Plan
// from the committed one), and its commit once every pending owner is
// ready (ownership.CanCommit, which every node evaluates from the same
// gossiped progress). It installs the committed ring when it changed and
// updates this node's progress record.
func (c *Change) RebuildLocked(st State) error {
	cfg := st.Config()
	members := st.Members()
	if len(st.Assign()) == 0 && len(members) > 0 && st.MayFound() {
		// A cluster's first assignment: made by its first member, or by
		// members that joined each other and found none.
		a, err := ring.Plan(cfg, nil, members)
		if err != nil {
			return err
		}
		st.SetAssign(a.Encode())
		c.log.Info("ring: first assignment of the cluster", "assignment", a.String())
	}
	for range 3 {
		was, wasRing := c.committed, c.committedRing
		if err := c.loadCommitted(cfg, st.Assign(), members); err != nil {
			return err
		}
		if was != nil && c.committedRing != wasRing {
			// A new commit, made here or learnt from gossip (a merged
			// state carries the newer assignment, and may arrive before
			// the progress that lets this node commit by itself): until
			// every live member routes with it, writes still reach the
			// previous owners.
			c.prev.Store(wasRing)
		}
		if err := c.planTarget(cfg, members); err != nil {
			return err
		}
		if c.targetA == nil || !ownership.CanCommit(c.moves, ownership.IDOf(c.targetA), st.Progress()) {
			break
		}
		c.log.Info("ring change committed: reads move to the new owners", "assignment", c.targetA.String(), "moved", len(c.moves))
		st.SetAssign(c.targetA.Encode())
	}
	if c.prev.Load() != nil && c.allCommittedLocked(st) {
		c.prev.Store(nil)
		c.log.Info("ring: every live member routes with the commit: writes no longer reach the previous owners")
	}
	c.target.Store(c.targetRing)
	if old := st.Ring(); old != c.committedRing && (old == nil || !old.Equal(c.committedRing)) {
		st.Install(c.committedRing)
		if r := c.committedRing; r.Len() > 0 && slices.ContainsFunc(members, func(m ring.Member) bool { return m.Zone != "" }) {
			if zs := r.ZoneStatus(cfg.Replicas); !zs.Held {
				c.log.Warn("ring: the zone guarantee does not hold", "reason", zs.Reason)
			}
		}
	}
	c.updateOwnProgressLocked(st)
	return nil
}

// allCommittedLocked reports whether every live member routes reads with
// the committed assignment. This node does once it rebuilt, before its own
// progress record says so: the last member to learn a commit closes its
// window in the same rebuild, not only when another state change arrives
// (none may: its peers' records already reported the commit).
func (c *Change) allCommittedLocked(st State) bool {
	cid := ownership.IDOfEncoded(st.Assign())
	others := slices.DeleteFunc(slices.Clone(st.Live()), func(id string) bool { return id == string(c.self) })
	return ownership.AllReport(others, st.Progress(), func(p ownership.Progress) bool { return p.Committed == cid })
}

// loadCommitted decodes the committed assignment when it changed. Before
// the cluster has one (a node that has not joined its seeds yet), the ring
// is this node's alone, never gossiped: a node that founded its own
// assignment could outbid its cluster's.
func (c *Change) loadCommitted(cfg ring.Config, b []byte, members []ring.Member) error {
	if len(b) > 0 && c.committedRing != nil && bytes.Equal(b, c.committedBytes) {
		return nil
	}
	var a *ring.Assignment
	var r *ring.Ring
	var err error
	if len(b) == 0 {
		// Provisional, of this node alone: members learnt from gossip
		// before the cluster's assignment (memberlist reports a seed's
		// members, from their metadata, before it merges the seed's
		// state) would give a ring of their own, and this node would
		// read and write with owners nobody else uses (an e2e joiner
		// answered a read of an acknowledged key "not found").
		var own []ring.Member
		if i := slices.IndexFunc(members, func(m ring.Member) bool { return m.ID == c.self }); i >= 0 {
			own = members[i : i+1]
		}
		r, err = ring.New(cfg, own)
	} else if a, err = ring.DecodeAssignment(b); err == nil {
		r, err = ring.FromAssignment(cfg, a)
	}
	if err != nil {
		return fmt.Errorf("committed assignment: %w", err)
	}
	c.committedBytes, c.committed, c.committedRing = bytes.Clone(b), a, r
	return nil
}

// planTarget plans the target of the committed assignment and members,
// unless they did not change since the last plan. No target when the plan
// is the committed assignment itself.
func (c *Change) planTarget(cfg ring.Config, members []ring.Member) error {
	if c.committed == nil || len(members) == 0 {
		c.planKey, c.targetA, c.targetRing, c.moves = "", nil, nil, nil
		return nil
	}
	var key strings.Builder
	key.WriteString(ownership.IDOfEncoded(c.committedBytes).String())
	for _, m := range members {
		fmt.Fprintf(&key, "\x00%s\x01%s", m.ID, m.Zone)
	}
	if key.String() == c.planKey {
		return nil
	}
	t, err := ring.Plan(cfg, c.committed, members)
	if err != nil {
		return fmt.Errorf("plan ring change: %w", err)
	}
	c.planKey = key.String()
	if t == c.committed || t.Equal(c.committed) {
		c.targetA, c.targetRing, c.moves = nil, nil, nil
		return nil
	}
	tr, err := ring.FromAssignment(cfg, t)
	if err != nil {
		return fmt.Errorf("plan ring change: %w", err)
	}
	c.targetA, c.targetRing = t, tr
	c.moves = ring.Diff(c.committedRing, tr, cfg.Replicas)
	return nil
}

// updateOwnProgressLocked publishes this node's view (the committed and
// target assignments) in its own progress record when it changed; a new
// target restarts its transfers.
func (c *Change) updateOwnProgressLocked(st State) {
	cur := st.Progress()[string(c.self)]
	next := cur
	next.Committed = ownership.IDOfEncoded(st.Assign())
	next.Target = ownership.IDOf(c.targetA)
	next.WritesPrev = c.prev.Load() != nil
	if next.Target != cur.Target {
		next.Total = len(ownership.Gains(c.moves, c.self))
		next.Done, next.Ready = 0, next.Total == 0 && !next.Target.IsZero()
	}
	if next == cur && cur.Seq > 0 {
		return
	}
	next.Seq = cur.Seq + 1
	c.setOwnProgressLocked(st, next)
}

// setOwnProgressLocked stores this node's progress and asks for it to be
// gossiped.
func (c *Change) setOwnProgressLocked(st State, p ownership.Progress) {
	st.SetOwnProgress(p)
	select {
	case c.announce <- struct{}{}:
	default:
	}
}

// OutbidLocked removes this node's progress from theirs (a state about to
// be merged; ours to change) and, if theirs was newer (the node restarted
// from an older copy of the state), moves ours past it. It reports whether
// ours changed.
func (c *Change) OutbidLocked(st State, theirs map[string]ownership.Progress) bool {
	p, ok := theirs[string(c.self)]
	if !ok {
		return false
	}
	delete(theirs, string(c.self))
	mine := st.Progress()[string(c.self)]
	if !p.After(mine) {
		return false
	}
	mine.Seq = p.Seq + 1
	c.setOwnProgressLocked(st, mine)
	return true
}

// Target is the ring of the assignment the cluster moves to, nil when no
// change is in course: its new owners get writes, not yet reads.
func (c *Change) Target() *ring.Ring { return c.target.Load() }

// JointOwners returns, for partition p and a write at replication nrep,
// the owners of the other assignments in use (quorum.PendingMembership),
// given cur, the ring reads route with: the target's while a change is in
// course, and the previous commit's until every live member routes reads
// with the current one. A write must reach W of each, so that a read at R
// meets it whichever of these assignments its coordinator reads with.
//
// The previous commit's owners count whole, those that lost p too: a
// member that has not seen the commit yet reads p from them, and when a
// change moves two of three owners at once, W of the owners that keep p
// (one) and W of the current ones leave the two that lost it unwritten, a
// read quorum of the old ring. They hold p until every live member
// stopped writing to them (MayDropLocked), so no acknowledged write lands
// after their drop.
func (c *Change) JointOwners(cur *ring.Ring, p uint32, nrep int) [][]ring.NodeID {
	var out [][]ring.NodeID
	if t := c.target.Load(); t != nil && int64(p) < int64(t.Partitions()) && t.Len() > 0 {
		out = append(out, t.Primaries(p, min(nrep, t.Config().Replicas)))
	}
	if prev := c.prev.Load(); prev != nil && int64(p) < int64(prev.Partitions()) && prev.Len() > 0 {
		out = append(out, prev.Primaries(p, min(nrep, prev.Config().Replicas)))
	}
	return out
}

// MayDropLocked reports whether this node may hand off and drop partition
// p, which it lost: only once every live member routes reads with the
// assignment that took p away and no longer writes to its previous owners
// (ownership.Settled), and not while p is coming back to it.
func (c *Change) MayDropLocked(st State, p uint32) bool {
	if t := c.targetRing; t != nil && t.IsPrimary(p, t.Config().Replicas, c.self) {
		return false
	}
	return ownership.Settled(st.Live(), ownership.IDOfEncoded(st.Assign()), st.Progress())
}

// DescribeLocked returns the change in course for /cluster/ring, nil when
// none: neither a target nor a commit that some live member has not
// reported yet (writes still reach the previous commit's owners; a test
// that waits for a settled ring must wait for that too).
func (c *Change) DescribeLocked(st State) *api.RingChange {
	switching := c.prev.Load() != nil
	if c.targetA == nil {
		if switching {
			return &api.RingChange{Committed: ownership.IDOfEncoded(st.Assign()).String(), Pending: map[string]int{}, Switching: true}
		}
		return nil
	}
	t := ownership.IDOf(c.targetA)
	ch := &api.RingChange{Committed: ownership.IDOfEncoded(st.Assign()).String(), Target: t.String(), Pending: map[string]int{}, Switching: switching}
	for _, id := range ownership.Gainers(c.moves) {
		ch.Pending[string(id)] = len(ownership.Gains(c.moves, id))
		if p := st.Progress()[string(id)]; p.Target == t && p.Ready {
			ch.Ready = append(ch.Ready, string(id))
		}
	}
	return ch
}
