package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/auth"
	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/memberauth"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/ringstate"
)

// deltaLocked encodes a ring state holding only rec, for a broadcast.
// Caller holds mu.
func (n *Node) deltaLocked(rec MemberRecord) []byte {
	d := n.state.Delta()
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
	n.change(func(d *ringstate.State) {
		n.state.Members[rec.ID] = rec
		d.Members = map[string]MemberRecord{rec.ID: rec}
	})
}

// change applies f under mu (f fills in d, the delta to gossip), then rebuilds, persists, gossips d.
func (n *Node) change(f func(d *ringstate.State)) {
	n.mu.Lock()
	d := n.state.Delta()
	f(&d)
	if err := n.rebuildRingLocked(); err != nil {
		n.log.Error("rebuild ring", "err", err)
	}
	msg, err := d.Encode()
	n.mu.Unlock()
	n.schedulePersist()
	if n.ml != nil && err == nil {
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
	if id == "" || !ringstate.ValidID(id) {
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

// claimConfig is the ring config of the state's claim ring.
func (n *Node) claimConfig() ring.Config {
	c := n.cfg.Ring
	c.Mode, c.Partitions, c.Tokens, c.Replicas = ring.ModeClaim, n.state.Partitions, n.state.Tokens, n.state.Replicas
	return c
}
