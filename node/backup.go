package node

import (
	"context"
	"fmt"

	"github.com/quorumkv/quorumkv/backup"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/ring"
)

// backupHost is the node as package backup's endpoints see it.
type backupHost struct{ n *Node }

var _ backup.Host = backupHost{}

func (h backupHost) NodeID() string  { return h.n.cfg.NodeID }
func (h backupHost) Partitions() int { return h.n.Ring().Partitions() }
func (h backupHost) MaxKeySize() int { return h.n.cfg.MaxKeySize }
func (h backupHost) HintTargets() []string {
	return h.n.st.HintTargets()
}

func (h backupHost) Scan(p uint32, lo, hi uint64, fn func(k ring.Key, rec []byte) error) error {
	return h.n.rep.Scan(p, lo, hi, fn)
}

func (h backupHost) ScanHints(target string, fn func(k ring.Key, rec []byte) error) error {
	return h.n.st.ScanHints(target, fn)
}

func (h backupHost) Replicas() (int, func(key []byte) []backup.Target, func(context.Context, backup.Target, []backup.Record) error) {
	nv, rg, reps := h.n.defaultN(), h.n.Ring(), replicas{h.n}
	targets := func(key []byte) (ts []backup.Target) {
		k := rg.KeyOf(key)
		for _, t := range rg.Targets(k.Partition, nv, h.n.Alive) {
			ts = append(ts, backup.Target{Target: t, Partition: k.Partition})
		}
		return ts
	}
	return nv, targets, func(ctx context.Context, t backup.Target, recs []backup.Record) error {
		if t.HintFor == "" && string(t.Node) != h.n.cfg.NodeID {
			req := &wire.MergeManyRequest{Partition: t.Partition, Entries: make([]wire.MergeManyEntry, 0, len(recs))}
			for _, r := range recs {
				req.Entries = append(req.Entries, wire.MergeManyEntry{Hash: rg.KeyOf(r.Key).Hash, Key: r.Key, Set: r.Set})
			}
			// A peer that is not a replica of the partition in its own
			// view of the ring (a change under way) refuses the batch:
			// then the replica merge below takes it key by key.
			if reps.call(ctx, t.Node, wire.MethodMergeMany, req, &wire.MergeManyResponse{}) == nil {
				return nil
			}
		}
		for _, r := range recs {
			if _, err := reps.Merge(ctx, t.Target, rg.KeyOf(r.Key), r.Set, false); err != nil {
				return fmt.Errorf("%s: %w", t.Node, err)
			}
		}
		return nil
	}
}
