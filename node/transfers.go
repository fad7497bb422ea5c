package node

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
)

// transfers is this node's work as a pending owner of the target
// assignment: which partitions it has received from which committed
// owners. It is kept in memory: after a restart the exchanges run again,
// and an exchange of a partition already in sync costs one tree
// comparison. Guarded by mu; the loop is its only writer.
type transfers struct {
	mu       sync.Mutex
	target   ownership.ID
	knownAt  time.Time                  // every live node routes with target since
	pulled   map[uint32]map[string]bool // per gained partition: sources pulled
	complete map[uint32]bool            // gained partitions received whole
	waiting  []string                   // owners down but on the ring, last round
}

// Transfers reports this node's side of the ring change in course.
func (n *Node) Transfers() api.Transfers {
	n.mu.RLock()
	st := api.Transfers{Node: n.cfg.NodeID}
	if n.state.claim() {
		st.Committed = ownership.IDOfEncoded(n.state.Assign).String()
		mine := n.state.Progress[n.cfg.NodeID]
		if t := ownership.IDOf(n.rc.targetA); !t.IsZero() {
			st.Target = t.String()
			st.Gains, st.Received, st.Ready = mine.Total, mine.Done, mine.Ready && mine.Target == t
			for _, id := range n.liveLocked() {
				if p := n.state.Progress[id]; p.Target != t {
					st.Unaware = append(st.Unaware, id)
				}
			}
		}
	}
	n.mu.RUnlock()
	x := &n.rc.xfer
	x.mu.Lock()
	if st.Target != "" && x.target.String() == st.Target {
		st.WaitingFor = slices.Clone(x.waiting)
	}
	x.mu.Unlock()
	return st
}

func (n *Node) handleTransfers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.Transfers())
}

// transferGrace is how long a pending owner waits, once every live node
// sends it the writes of its partitions, before it pulls them (at most the
// default request timeout): writes planned before a coordinator learned of
// the change, and so sent to the old owners only, land meanwhile. A write
// slower than that is still moved by the old owner's handoff after the
// switch.
const transferGrace = time.Second

// transferEvery is how often the transfer loop looks for work when
// nothing wakes it.
const transferEvery = 100 * time.Millisecond

// transferLoop receives the partitions this node gains in the target
// assignment, then reports ready (ownership.Progress), which lets the
// cluster commit the target.
func (n *Node) transferLoop() {
	t := time.NewTicker(transferEvery)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.runTransfers()
	}
}

// transferView is what one round of the loop needs of the state, read
// under mu.
type transferView struct {
	target    ownership.ID
	gains     []uint32
	owners    map[uint32][]ring.NodeID // committed owners of each gained partition
	sources   map[ring.NodeID]ownership.Source
	allKnow   bool
	ready     bool
	replicas  int
	committed *ring.Ring
}

func (n *Node) transferViewLocked() (transferView, bool) {
	rc := &n.rc
	if !n.state.claim() || rc.targetA == nil {
		return transferView{}, false
	}
	self := ring.NodeID(n.cfg.NodeID)
	v := transferView{target: ownership.IDOf(rc.targetA), gains: ownership.Gains(rc.moves, self),
		owners: map[uint32][]ring.NodeID{}, sources: map[ring.NodeID]ownership.Source{},
		replicas: n.state.Replicas, committed: rc.committedRing}
	mine := n.state.Progress[n.cfg.NodeID]
	v.ready = mine.Target == v.target && mine.Ready
	v.allKnow = ownership.AllReport(n.liveLocked(), n.state.Progress, func(p ownership.Progress) bool { return p.Target == v.target })
	for _, p := range v.gains {
		owners := rc.committedRing.Primaries(p, v.replicas)
		v.owners[p] = owners
		for _, id := range owners {
			if _, ok := v.sources[id]; ok {
				continue
			}
			alive := false
			if pr, ok := n.peers[string(id)]; ok {
				alive = pr.State == PeerAlive || pr.State == PeerSuspect
			}
			switch rec := n.state.Members[string(id)]; {
			case alive || id == self:
				v.sources[id] = ownership.SourceUp
			case rec.Left:
				v.sources[id] = ownership.SourceGone
			default:
				v.sources[id] = ownership.SourceDown
			}
		}
	}
	return v, true
}

// runTransfers is one round of the transfer loop. A pending owner pulls a
// partition only once every live node sends it the partition's writes
// (they all report the target) and transferGrace has passed since, so
// that no write planned before that is still in flight; then it exchanges
// the partition with every committed owner that is up, skipping those
// removed (their copy is rebuilt from the others) and waiting for those
// down but not removed.
func (n *Node) runTransfers() {
	n.mu.RLock()
	v, ok := n.transferViewLocked()
	n.mu.RUnlock()
	x := &n.rc.xfer
	x.mu.Lock()
	defer x.mu.Unlock()
	if !ok {
		x.target = ownership.ID{}
		return
	}
	if x.target != v.target {
		x.target, x.knownAt, x.waiting = v.target, time.Time{}, nil
		x.pulled, x.complete = map[uint32]map[string]bool{}, map[uint32]bool{}
	}
	if v.ready {
		return
	}
	if !v.allKnow {
		x.knownAt = time.Time{}
		return
	}
	now := time.Now()
	if x.knownAt.IsZero() {
		x.knownAt = now
	}
	if now.Sub(x.knownAt) < min(n.cfg.Defaults.Timeout, transferGrace) {
		return
	}
	self := ring.NodeID(n.cfg.NodeID)
	done := 0
	x.waiting = x.waiting[:0]
	for id, src := range v.sources {
		if src == ownership.SourceDown {
			x.waiting = append(x.waiting, string(id))
		}
	}
	slices.Sort(x.waiting)
	for _, p := range v.gains {
		if n.ctx.Err() != nil {
			return
		}
		if x.complete[p] {
			done++
			continue
		}
		pull, blocked := ownership.Sources(v.owners[p], self, func(id ring.NodeID) ownership.Source { return v.sources[id] })
		if x.pulled[p] == nil {
			x.pulled[p] = map[string]bool{}
		}
		whole := !blocked
		for _, src := range pull {
			if x.pulled[p][string(src)] {
				continue
			}
			if plant.On(plant.HandoffPushesNothing) { // plant: HandoffPushesNothing
				x.pulled[p][string(src)] = true
				continue
			}
			if _, err := n.ae.Receive(n.ctx, p, string(src)); err != nil {
				n.log.Debug("transfer: exchange with an owner failed; retrying", "partition", p, "from", src, "err", err)
				whole = false
				continue
			}
			x.pulled[p][string(src)] = true
		}
		if whole {
			x.complete[p] = true
			done++
		}
	}
	n.setTransferProgress(v.target, done, len(v.gains))
}

// setTransferProgress records in this node's progress how many of the
// partitions it gains in target it holds whole; all of them make it
// ready, and the ring is re-evaluated (this may commit the target).
func (n *Node) setTransferProgress(target ownership.ID, done, total int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.state.Progress[n.cfg.NodeID]
	if p.Target != target {
		return
	}
	ready := done == total
	if p.Done == done && p.Total == total && p.Ready == ready {
		return
	}
	if ready && !p.Ready {
		n.log.Info("ring change: every partition this node gains is received; ready", "target", target.String(), "partitions", total)
	}
	p.Done, p.Total, p.Ready = done, total, ready
	p.Seq++
	n.setOwnProgressLocked(p)
	if err := n.rebuildRingLocked(); err != nil {
		n.log.Error("rebuild ring", "err", err)
	}
}
