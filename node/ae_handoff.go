package node

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"

	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
)

// handOff moves the records of partition p, which this node no longer
// replicates after a ring change, to p's current primaries: a page of
// records at a time, each page merged into every primary and then deleted
// here unless it changed meanwhile (a late write for p lands in the next
// page). When the partition is empty its handoff is done. It needs every
// primary alive; otherwise the loop tries again later. Records of keys
// written with a per-request N above the default may be on more nodes than
// the default primaries; a handoff deletes those copies too.
func (a *antiEntropy) handOff(ctx context.Context, p uint32) {
	a.exMu.Lock()
	defer a.exMu.Unlock()
	r := a.n.Ring()
	self := ring.NodeID(a.n.cfg.NodeID)
	prim := r.Primaries(p, a.n.cfg.Defaults.N)
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
			a.n.log.Warn("anti-entropy: handoff scan", "op", "handoff", "partition", p, "err", err)
			return
		}
		if len(page) == 0 {
			a.mu.Lock()
			delete(a.handoff, p)
			a.mu.Unlock()
			a.trees.reset(p)
			a.n.log.Info("anti-entropy: partition handed off to its primaries", "op", "handoff", "partition", p)
			return
		}
		if err := a.lim.WaitN(ctx, len(page)); err != nil {
			return
		}
		entries := make([]mergeManyEntry, 0, len(page))
		for _, rec := range page {
			if h, err := parseRecordHeader(rec.val); err == nil {
				entries = append(entries, mergeManyEntry{Hash: rec.k.Hash, Key: rec.k.Key, Set: rec.val[h.setOff:]})
			} // else unreadable: nobody can use it, it is just dropped
		}
		entries = entries[:plant.Len(plant.HandoffPushesNothing, len(entries))] // plant: HandoffPushesNothing
		for _, id := range prim {
			if _, err := a.mergeMany(ctx, string(id), p, entries, nil); err != nil {
				a.n.log.Debug("anti-entropy: handoff push", "op", "handoff", "partition", p, "peer", id, "err", err)
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
	k   quorum.Key
	val []byte
}

// handoffPage reads up to aeMaxBatch records of p.
func (a *antiEntropy) handoffPage(p uint32) ([]handoffRecord, error) {
	if err := a.gate.enter(); err != nil {
		return nil, err
	}
	defer a.gate.exit()
	var page []handoffRecord
	size := 0
	err := a.n.st.Scan(p, 0, math.MaxUint64, func(k store.Key, val []byte) error {
		page = append(page, handoffRecord{
			k:   quorum.Key{Partition: p, Hash: k.Hash, Key: bytes.Clone(k.Key)},
			val: bytes.Clone(val),
		})
		size += len(val)
		if len(page) >= aeMaxBatch || size >= aeBatchBytes {
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
func (a *antiEntropy) dropIfUnchanged(ctx context.Context, rec handoffRecord) error {
	if err := a.gate.enter(); err != nil {
		return err
	}
	defer a.gate.exit()
	var dig uint64
	_, _, err := a.n.st.Update(ctx, storeKey(rec.k), false, func(old []byte, found bool) ([]byte, error) {
		if !found || !bytes.Equal(old, rec.val) {
			return nil, store.ErrNoChange
		}
		if h, err := parseRecordHeader(old); err == nil {
			dig = setBytesDigest(old[h.setOff:])
		}
		return nil, nil
	})
	if err == nil && dig != 0 {
		a.trees.observe(rec.k, dig, 0)
	}
	return err
}
