package node

import (
	"context"

	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/resp"
)

// frontBackend is the node as its client fronts see it (httpapi.Backend
// and resp.Backend): quorum reads and writes with the node's bookkeeping
// (write metrics, sibling notes), N fitted to the ring.
type frontBackend struct{ n *Node }

func (b frontBackend) Read(ctx context.Context, key []byte, p quorum.Params) (*quorum.ReadResult, error) {
	return b.n.coord.Get(ctx, quorum.GetRequest{Key: key, Params: p})
}

// Write with overwrite writes req over what a read at its R sees (see
// the top of writes.go): quorum.Coordinator.Overwrite, which checks the
// other replicas as it writes (or reads them first) and supersedes this
// node's own when this node coordinates as a primary. For a delete (req.Value.Deleted) of a key with no live
// value it writes nothing and returns a nil result.
func (b frontBackend) Write(ctx context.Context, req quorum.PutRequest, overwrite bool) (*quorum.WriteResult, []string, error) {
	n := b.n
	write := n.coord.Put
	if overwrite {
		write = n.coord.Overwrite
	}
	res, err := write(ctx, req)
	if err != nil || res == nil {
		return nil, nil, err
	}
	n.metrics.observeWriteResult(res)
	return res, n.noteWrite(req.Key, res), nil
}

func (b frontBackend) Fit(p quorum.Params) (quorum.Params, string, error) {
	p, reduced, err := b.n.fit(p)
	if reduced {
		return p, b.n.reducedWarning(p.N), err
	}
	return p, "", err
}

func (b frontBackend) DefaultN() int { return b.n.defaultN() }

// Check is QUORUM's check (resp): parameters the ring cannot serve.
func (b frontBackend) Check(p quorum.Params) error {
	_, err := b.n.coord.Resolve(b.n.Ring(), p)
	return err
}

// Info is INFO's quorumkv section (resp).
func (b frontBackend) Info() resp.Info {
	n, r := b.n, b.n.Ring()
	return resp.Info{
		NodeID: n.cfg.NodeID, HTTPAddr: n.HTTPAddr(),
		RingMembers: r.Len(), MembersAlive: n.liveOthers() + 1, Partitions: r.Partitions(),
		EffectiveN: n.defaultN(), Sync: n.cfg.Sync,
		SiblingWrites: n.sibNotes.writes.Load(), SiblingWarnings: n.sibNotes.warnings.Load(),
		Members: n.Members(),
	}
}
