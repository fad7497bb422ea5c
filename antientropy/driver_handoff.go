package antientropy

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"

	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
)

// handOff moves the records of partition p, which this node no longer
// replicates after a ring change, to p's current primaries: a page of
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
	for _, id := range prim {
		if !a.usable(string(id)) {
			return
		}
	}
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
			a.log.Info("anti-entropy: partition handed off to its primaries", "op", "handoff", "partition", p)
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
