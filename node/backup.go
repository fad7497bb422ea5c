package node

import (
	"context"
	"fmt"

	"github.com/quorumkv/quorumkv/backup"
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

func (h backupHost) Replicas() (int, func(key []byte) []backup.MergeFunc) {
	nv, rg, reps := h.n.defaultN(), h.n.Ring(), replicas{h.n}
	return nv, func(key []byte) []backup.MergeFunc {
		k := rg.KeyOf(key)
		var fs []backup.MergeFunc
		for _, t := range rg.Targets(k.Partition, nv, h.n.Alive) {
			fs = append(fs, func(ctx context.Context, set []byte) error {
				if _, err := reps.Merge(ctx, t, k, set, false); err != nil {
					return fmt.Errorf("%s: %w", t.Node, err)
				}
				return nil
			})
		}
		return fs
	}
}
