package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/ring"
)

// leaveJump is added to a record's version when it leaves or is removed.
// A node may bump its own version at every start; an isolated, removed node
// restarting a few times before it hears of its removal must not outbid it,
// and a version order (unlike "left wins within an incarnation") keeps the
// merge a total order.
const leaveJump = 1 << 32

// deltaLocked encodes a ring state holding only rec, for a broadcast.
// Caller holds mu.
func (n *Node) deltaLocked(rec MemberRecord) []byte {
	b, err := ClusterState{Partitions: n.state.Partitions, Tokens: n.state.Tokens,
		Members: map[string]MemberRecord{rec.ID: rec}}.Encode()
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
		rec.Version += leaveJump
		n.setRecord(rec)
		n.log.Warn("leaving the ring: handing partitions over to the remaining members")
	}
	for {
		if n.ae.HandoffPending() == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("left the ring, but %d partition(s) are not handed over yet: %w", n.ae.HandoffPending(), ctx.Err())
		case <-clock.After(n.clk, 100*time.Millisecond):
			n.ae.Kick()
		}
	}
}

// RemoveMember takes a member that is down for good off the ring, so its
// partitions move to the others (they refill them by anti-entropy). A live
// member must leave instead, so that it hands its data over.
func (n *Node) RemoveMember(id string) error {
	if id == n.cfg.NodeID {
		return ErrRemoveSelf
	}
	n.mu.RLock()
	rec, ok := n.state.Members[id]
	n.mu.RUnlock()
	if !ok {
		return fmt.Errorf("%q: %w", id, ErrUnknownMember)
	}
	if n.Alive(ring.NodeID(id)) {
		return fmt.Errorf("%q: %w", id, ErrAlive)
	}
	if rec.Left {
		return nil
	}
	rec.Left = true
	rec.Version += leaveJump
	n.setRecord(rec)
	n.log.Warn("member removed from the ring", "peer", id)
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
	err := n.RemoveMember(id)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]string{"node": n.cfg.NodeID, "removed": id})
	case errors.Is(err, ErrUnknownMember):
		writeJSON(w, http.StatusNotFound, api.Error{Error: err.Error(), Code: api.CodeNotFound, Param: "node"})
	default:
		writeJSON(w, http.StatusConflict, api.Error{Error: err.Error(), Code: "conflict", Param: "node"})
	}
}
