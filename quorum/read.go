package quorum

import (
	"context"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/vclock"
)

type readReply struct {
	t   ring.Target
	set vclock.Set
	err error
}

// readSet is what a read has gathered: the sync of every answer, fitted
// to the merge caps (Config.Siblings), the answers themselves, for
// RepairTargets, and the siblings the caps dropped.
type readSet struct {
	merged  vclock.Set
	got     []Reply
	dropped []vclock.Sibling
}

// add takes in one reply; failures bring nothing.
func (s *readSet) add(rep readReply, p siblings.Policy) {
	if rep.err == nil {
		m := p.Merge(s.merged, rep.set)
		s.merged, s.dropped = m.Set, append(s.dropped, m.Trimmed...)
		s.got = append(s.got, Reply{Target: rep.t, Set: rep.set})
	}
}

// Get coordinates a read: it asks the N targets, answers with the sync of the
// first R answers, then waits briefly for the rest and repairs the primaries
// that were behind.
func (c *Coordinator) Get(ctx context.Context, req GetRequest) (*ReadResult, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	r := c.cfg.Membership.Ring()
	p, err := c.Resolve(r, req.Params)
	if err != nil {
		return nil, err
	}
	plan := planRead(r, c.cfg.Membership.Alive, c.cfg.Self, r.KeyOf(req.Key), p)
	if plan.refused != nil {
		return nil, plan.refused
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	bg, bgCancel := callsContext(ctx)

	tr := NewReadTracker(p.R, p.PR)
	replies := make(chan readReply, len(plan.targets))
	for _, t := range plan.targets {
		tr.Add(t.HintFor == "")
		c.goRead(bg, t, plan.key, replies)
	}
	rs := readSet{got: make([]Reply, 0, len(plan.targets))}
	pending := len(plan.targets)
	dec := Pending
	for dec == Pending {
		select {
		case rep := <-replies:
			pending--
			if rep.err != nil {
				c.log.Debug("replica read failed", "op", "get", "peer", rep.t.Node, "err", rep.err)
			}
			rs.add(rep, c.cfg.Siblings)
			dec = tr.Record(rep.t.HintFor == "", rep.err)
		case <-ctx.Done():
			dec = Failed
		}
	}
	// Copies that the goroutine captures by value, so that neither the
	// plan nor the loop's variables move to the heap.
	answer, k, late, left := rs.merged, plan.key, rs, pending
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer bgCancel()
		c.repair(bg, k, late, replies, left)
	}()
	if dec != Succeeded {
		return nil, tr.Err()
	}
	// Values past their deadline by this node's clock answer as their
	// tombstones (same dots, so the context is unchanged): absent for
	// every front. The repair above sends the sets as the replicas hold
	// them; each replica converts with its own clock and margin.
	answer, _ = vclock.Expire(answer, c.now().UnixNano())
	return &ReadResult{Set: answer, Acks: tr.Acks()}, nil
}

// goRead starts Replicas.Read on t and delivers the reply on out, which must
// have room for it (see goMerge).
func (c *Coordinator) goRead(ctx context.Context, t ring.Target, k ring.Key, out chan<- readReply) {
	c.wg.Add(1)
	if ar, ok := c.cfg.Replicas.(AsyncReplicas); ok {
		ar.ReadAsync(ctx, t, k, func(s vclock.Set, err error) {
			out <- readReply{t: t, set: s, err: err}
			c.wg.Done()
		})
		return
	}
	go func() {
		defer c.wg.Done()
		s, err := c.cfg.Replicas.Read(ctx, t, k)
		out <- readReply{t: t, set: s, err: err}
	}()
}

// repair waits up to ReadRepairWait for the replies still outstanding, then
// sends the sync of everything read to each primary that was behind.
func (c *Coordinator) repair(ctx context.Context, k ring.Key, rs readSet, replies <-chan readReply, pending int) {
	wait := time.NewTimer(c.cfg.ReadRepairWait)
	defer wait.Stop()
collect:
	for ; pending > 0; pending-- {
		select {
		case rep := <-replies:
			rs.add(rep, c.cfg.Siblings)
		case <-wait.C:
			break collect
		case <-ctx.Done():
			break collect
		}
	}
	if len(rs.dropped) > 0 && c.cfg.Trimmed != nil {
		c.cfg.Trimmed(k, "", len(rs.merged.Siblings), rs.dropped)
	}
	behind := RepairTargets(rs.merged, rs.got)
	if len(behind) == 0 {
		return
	}
	enc, err := rs.merged.MarshalBinary()
	if err != nil {
		c.log.Warn("read repair: encode set", "err", err)
		return
	}
	for _, t := range behind {
		_, err := c.cfg.Replicas.Merge(ctx, t, k, enc, false)
		if err != nil {
			c.log.Debug("read repair failed", "peer", t.Node, "err", err)
		}
		if c.cfg.OnReadRepair != nil {
			c.cfg.OnReadRepair(t, err)
		}
	}
}
