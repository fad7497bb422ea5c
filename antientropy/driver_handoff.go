package antientropy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
)

// handOff moves the records of partition p, which this node no longer
// replicates after a ring change, to p's current primaries (with an
// OwnershipHost, only once it allows the drop): a page of
// records at a time, each page merged into every primary and then deleted
// here unless it changed meanwhile (a late write for p lands in the next
// page). When the partition is empty its handoff is done. It needs every
// primary alive; otherwise the loop tries again later. Records of keys
// written with a per-request N above the default may be on more nodes than
// the default primaries; a handoff deletes those copies too.
func (a *Driver) handOff(ctx context.Context, p uint32) {
	a.exMu.Lock()
	defer a.exMu.Unlock()
	r := a.host.Ring()
	self := ring.NodeID(a.self)
	prim := r.Primaries(p, a.nrep)
	if slices.Contains(prim, self) {
		a.mu.Lock()
		delete(a.handoff, p) // ours again
		a.mu.Unlock()
		return
	}
	if oh, ok := a.host.(OwnershipHost); ok && !oh.MayDrop(p) {
		return // the switch is not known everywhere yet: some still read here
	}
	for _, id := range prim {
		if !a.usable(string(id)) {
			return
		}
	}
	// On a claim ring the new owners received p by transfers and every
	// acknowledged write since (joint quorums), and no member writes here
	// any more (MayDrop): a Merkle exchange with each moves only what one
	// lacks, where pushing every record to every primary moved N times the
	// partition's data for nothing.
	exchanged := r.Mode() == ring.ModeClaim
	if exchanged {
		for _, id := range prim {
			if plant.On(plant.HandoffPushesNothing) { // plant: HandoffPushesNothing
				break
			}
			var res ExchangeStatus
			if err := a.exchange(ctx, p, string(id), &res, &byteCount{}); err != nil {
				a.log.Debug("anti-entropy: handoff exchange", "op", "handoff", "partition", p, "peer", id, "err", err)
				return
			}
		}
	}
	moved := 0
	for ctx.Err() == nil {
		page, err := a.handoffPage(p)
		if err != nil {
			a.log.Warn("anti-entropy: handoff scan", "op", "handoff", "partition", p, "err", err)
			return
		}
		if len(page) == 0 {
			a.mu.Lock()
			delete(a.handoff, p)
			a.mu.Unlock()
			a.trees.reset(p)
			if moved > 0 {
				a.log.Info("anti-entropy: partition handed off to its primaries", "op", "handoff", "partition", p, "records", moved)
			}
			return
		}
		if err := a.lim.WaitN(ctx, len(page)); err != nil {
			return
		}
		entries := make([]wire.MergeManyEntry, 0, len(page))
		for _, rec := range page {
			if set := replica.SetBytes(rec.val); set != nil {
				entries = append(entries, wire.MergeManyEntry{Hash: rec.k.Hash, Key: rec.k.Key, Set: set})
			} // else unreadable: nobody can use it, it is just dropped
		}
		entries = entries[:plant.Len(plant.HandoffPushesNothing, len(entries))] // plant: HandoffPushesNothing
		for _, id := range prim {
			if exchanged {
				break
			}
			if _, err := a.mergeMany(ctx, string(id), p, entries, nil); err != nil {
				a.log.Debug("anti-entropy: handoff push", "op", "handoff", "partition", p, "peer", id, "err", err)
				return
			}
		}
		for _, rec := range page {
			if err := a.dropIfUnchanged(ctx, rec); err != nil {
				return
			}
		}
		moved += len(page)
	}
}

type handoffRecord struct {
	k   ring.Key
	val []byte
}

// handoffPage reads up to wire.MaxBatch records of p.
func (a *Driver) handoffPage(p uint32) ([]handoffRecord, error) {
	var page []handoffRecord
	size := 0
	err := a.rep.Scan(p, 0, math.MaxUint64, func(k ring.Key, val []byte) error {
		page = append(page, handoffRecord{
			k:   ring.Key{Partition: p, Hash: k.Hash, Key: bytes.Clone(k.Key)},
			val: bytes.Clone(val),
		})
		size += len(val)
		if len(page) >= wire.MaxBatch || size >= wire.BatchBytes {
			return errStopScan
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return page, err
}

// dropIfUnchanged deletes rec's record if it still holds rec.val.
func (a *Driver) dropIfUnchanged(ctx context.Context, rec handoffRecord) error {
	_, err := a.rep.DropIfUnchanged(ctx, rec.k, rec.val)
	return err
}

// OwnershipHost is what a Host implements when its cluster moves
// partitions with pending owners (package ownership): the ring of the
// assignment the cluster moves to, and whether an old owner may drop a
// partition yet. A Host without it drops a lost partition once handed off,
// and has no pending owners.
type OwnershipHost interface {
	// Pending returns the ring of the target assignment, nil when no
	// change is in course.
	Pending() *ring.Ring
	// MayDrop reports whether this node may hand off and drop partition p,
	// which it no longer owns: every live node routes with the assignment
	// that took it away, and p is not coming back to it.
	MayDrop(p uint32) bool
}

// replicaOf reports whether id replicates partition p: a primary on the
// current ring, or a pending owner on the target one. Anti-entropy keeps
// data on such nodes only: a node that left, or lost p, must not get it
// back from a peer whose view is older.
//
// A claim ring's assignment names its owners per partition
// (Config().Replicas of them), which may be more than this node's N.
func (a *Driver) replicaOf(p uint32, id ring.NodeID) bool {
	if r := a.host.Ring(); r.IsPrimary(p, a.owners(r), id) {
		return true
	}
	if oh, ok := a.host.(OwnershipHost); ok {
		if t := oh.Pending(); t != nil && t.IsPrimary(p, a.owners(t), id) {
			return true
		}
	}
	return false
}

// owners is how many primaries of a partition of r keep a copy.
func (a *Driver) owners(r *ring.Ring) int {
	if r.Mode() == ring.ModeClaim {
		return max(a.nrep, r.Config().Replicas)
	}
	return a.nrep
}

// errNotReplica refuses an exchange of a partition with a node that does
// not replicate it.
func errNotReplica(who string, p uint32) error {
	return &transport.RemoteError{Code: wire.CodeInvalid, Msg: fmt.Sprintf("%s does not replicate partition %d", who, p)}
}

// checkServeOwner refuses to serve an exchange of p (tree hashes, keys or
// merges) when this node does not replicate p: the asker's ring is older
// than ours, and merging into this node would leave it keys it will never
// hand over.
func (a *Driver) checkServeOwner(p uint32) error {
	if a.replicaOf(p, ring.NodeID(a.self)) {
		return nil
	}
	return errNotReplica("this node", p)
}

// TransferHooks let the caller of Receive follow and pace one transfer
// exchange. Either may be nil.
type TransferHooks struct {
	// Diff is told how many keys differ, once the trees are compared.
	Diff func(keys int)
	// Batch is told after each repair batch how many keys it covered,
	// the RPC bytes it moved both ways and how long it took; it may wait
	// (a throttle), and an error ends the exchange.
	Batch func(ctx context.Context, keys, bytes int, took time.Duration) error
}

// Receive makes this node's copy of partition p complete against peer,
// one of its owners: one exchange, repaired both ways, as a scheduled
// exchange does. A pending owner calls it for every committed owner of
// each partition it gains before it reports ready (package ownership).
// Receives of distinct partitions may run at once (they exclude the other
// exchanges, handoffs and wipes, not each other); t may be nil.
func (a *Driver) Receive(ctx context.Context, p uint32, peer string, t *TransferHooks) (ExchangeStatus, error) {
	if int64(p) >= int64(a.host.Ring().Partitions()) {
		return ExchangeStatus{}, fmt.Errorf("partition %d out of range", p)
	}
	if t == nil {
		t = &TransferHooks{}
	}
	return a.exchangeJob(ctx, p, peer, t)
}

// sweepStrays marks for handoff every partition this node holds records
// of while it is on neither the current nor the target ring (it left, or
// was removed): late arrivals after its handoff (a write or a repair from
// a peer that had not heard of the change yet) are handed over and
// dropped too, instead of staying for good. Members are not swept: keys
// written with a per-request N above the default live past the default
// primaries.
func (a *Driver) sweepStrays() {
	self := ring.NodeID(a.self)
	if a.host.Ring().Has(self) {
		return
	}
	if oh, ok := a.host.(OwnershipHost); ok {
		if t := oh.Pending(); t != nil && t.Has(self) {
			return
		}
	}
	parts, err := a.rep.Partitions()
	if err != nil || len(parts) == 0 {
		return
	}
	a.mu.Lock()
	for _, p := range parts {
		a.handoff[p] = true
	}
	a.mu.Unlock()
}
