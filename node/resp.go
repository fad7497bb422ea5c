package node

import (
	"context"
	"net"

	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/resp"
	"github.com/quorumkv/quorumkv/vclock"
)

// startRESP binds Config.RESPAddr; serveFronts starts serving it.
func (n *Node) startRESP() error {
	ln, err := net.Listen("tcp", n.cfg.RESPAddr)
	if err != nil {
		return startErr("resp", n.cfg.RESPAddr, err)
	}
	n.resp = resp.New(ln, respBackend{n}, resp.Config{
		MaxKeySize:      n.cfg.MaxKeySize,
		MaxValueSize:    n.cfg.MaxValueSize,
		Defaults:        n.cfg.Defaults,
		Contexts:        n,
		Log:             n.log,
		Registry:        n.metrics.reg,
		QuorumFailures:  n.metrics.quorumFailures,
		SiblingsPerRead: n.metrics.siblingsPerRead,
		Version:         buildVersion(),
		Started:         started,
	})
	return nil
}

// RESPAddr is the RESP listener's bound address ("" when it is off).
func (n *Node) RESPAddr() string { return n.resp.Addr() }

// respBackend is the node as the RESP front sees it (resp.Backend).
type respBackend struct{ n *Node }

func (b respBackend) Read(ctx context.Context, key []byte, p quorum.Params) (vclock.Set, error) {
	res, err := b.n.coord.Get(ctx, quorum.GetRequest{Key: key, Params: p})
	if err != nil {
		return vclock.Set{}, err
	}
	return res.Set, nil
}

func (b respBackend) Write(ctx context.Context, req quorum.PutRequest, overwrite bool) (*quorum.WriteResult, error) {
	n := b.n
	var res *quorum.WriteResult
	var err error
	if overwrite {
		res, _, err = n.supersedingWrite(ctx, req)
	} else {
		res, err = n.coord.Put(ctx, req)
	}
	if err != nil || res == nil {
		return nil, err
	}
	n.metrics.observeWriteResult(res)
	n.noteWrite(req.Key, res)
	return res, nil
}

// Fit fits N to a small ring; RESP has no headers for the warning: INFO
// shows the effective N and /status warns.
func (b respBackend) Fit(p quorum.Params) (quorum.Params, error) {
	p, _, err := b.n.fit(p)
	return p, err
}

func (b respBackend) DefaultN() int { return b.n.defaultN() }

func (b respBackend) Check(p quorum.Params) error {
	_, err := b.n.coord.Resolve(b.n.Ring(), p)
	return err
}

func (b respBackend) Info() resp.Info {
	n := b.n
	r := n.Ring()
	return resp.Info{
		NodeID: n.cfg.NodeID, HTTPAddr: n.HTTPAddr(),
		RingMembers: r.Len(), MembersAlive: n.liveOthers() + 1, Partitions: r.Partitions(),
		EffectiveN: n.defaultN(), Sync: n.cfg.Sync,
		SiblingWrites: n.sibNotes.writes.Load(), SiblingWarnings: n.sibNotes.warnings.Load(),
		Members: n.Members(),
	}
}
