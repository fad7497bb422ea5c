package node

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
)

// AEStatus is the anti-entropy part of /status (antientropy.Status).
type AEStatus = antientropy.Status

// RepairReport is what an on-demand repair did, the body of POST
// /admin/repair (antientropy.RepairReport).
type RepairReport = antientropy.RepairReport

// aeHost is the node as anti-entropy sees it (antientropy.Host), kept off
// *Node's exported methods.
type aeHost struct{ n *Node }

var _ antientropy.Host = aeHost{}

func (h aeHost) Ring() *ring.Ring          { return h.n.Ring() }
func (h aeHost) Alive(id ring.NodeID) bool { return h.n.Alive(id) }

// Call sends one RPC to peer at the address the ring state gives it.
func (h aeHost) Call(ctx context.Context, peer string, m transport.Method, body []byte) ([]byte, error) {
	addr, ok := h.n.rpcAddr(peer)
	if !ok {
		return nil, errPeerUnknown
	}
	return h.n.tr.Call(ctx, addr, m, body)
}

// Repair runs anti-entropy now, synchronously: for partition p (or every
// partition this node replicates when p < 0), an exchange with each other
// primary in turn, one exchange at a time. A primary that gossip does not
// see alive counts as a failed exchange. It returns ErrQuarantined while
// the node's records are closed and antientropy.ErrNotReplica for a
// partition it does not replicate.
func (n *Node) Repair(ctx context.Context, p int) (RepairReport, error) { return n.ae.Repair(ctx, p) }

// handleRepair serves POST /admin/repair[?partition=P][&timeout=D]: 200
// with the RepairReport (its Failed counts exchanges that could not run),
// 400 for a bad or unowned partition, 503 while quarantined or when the
// timeout ended the repair.
func (n *Node) handleRepair(w http.ResponseWriter, r *http.Request) {
	p := -1
	if v := r.URL.Query().Get("partition"); v != "" {
		q, err := strconv.Atoi(v)
		if err != nil || q < 0 || q >= n.Ring().Partitions() {
			writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("partition %q: want 0 to %d", v, n.Ring().Partitions()-1),
				Code: api.CodeBadParameter, Param: "partition"})
			return
		}
		p = q
	}
	ctx := r.Context()
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeJSON(w, http.StatusBadRequest, api.Error{Error: fmt.Sprintf("timeout %q: want a positive duration such as 30s", v),
				Code: api.CodeBadParameter, Param: "timeout"})
			return
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	rep, err := n.Repair(ctx, p)
	switch {
	case errors.Is(err, antientropy.ErrNotReplica):
		writeJSON(w, http.StatusBadRequest, api.Error{Error: err.Error() + "; ask one of its primaries (quorumkv ring --partitions)",
			Code: "not_replica", Param: "partition"})
	case errors.Is(err, ErrQuarantined):
		writeError(w, http.StatusServiceUnavailable, "quarantined", err.Error())
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, err.Error())
	default:
		writeJSON(w, http.StatusOK, rep)
	}
}
