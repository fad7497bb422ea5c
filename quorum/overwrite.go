package quorum

import (
	"context"
	"errors"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// overwriteHedge is how long an overwrite's read waits for the R-1 other
// replicas it asked first before it asks the rest too: a replica that is
// slow or silently cut off then costs this much, not the request's timeout.
// Well above a loaded round trip (a few ms), so that it rarely fires.
const overwriteHedge = 20 * time.Millisecond

// Overwrite coordinates an overwrite: a write that supersedes what a read
// at req's R sees and whatever the coordinating replica holds when it
// mints (SupersedeLocal): with R+W>N it replaces every acknowledged earlier
// write, and writes racing it through other coordinators become siblings.
// req.Context, if any, is widened by the read's context.
//
// A delete (req.Value.Deleted) deletes what the read sees; it always reads
// every replica at R, this node's too, and a key with no live value is
// left alone: Overwrite then returns nil and no error.
//
// When this node is a primary replica of the key and coordinates the write
// itself, the read asks only the other replicas, for R-1 answers, and
// counts this node's replica as the R-th without reading it: the mint
// that follows supersedes everything that replica holds then, which is a
// superset of what a read of it before would have seen (a replica's
// context only grows). The R replicas read are therefore the same quorum
// as a read at R that includes this node, so any write acknowledged by W
// replicas with R+W>N is in the context of one of them. The read and the
// write run on the same plan (one view of the ring and of liveness), so
// the replica counted without a read is the one that mints. It first asks
// R-1 replicas, in preference order, and the others only when one fails
// or overwriteHedge passes; it does no read repair (the write itself
// brings every replica it reaches up to date). Otherwise (this node is not
// a replica, or only a fallback, or gossip already shows too few replicas)
// it runs Get at R and then Put, as a node that forwards must.
//
// When Replicas is a MergeChecker (and R or PR is above 1), a primary
// coordinating a write that is not a delete first tries it in one round,
// without the read: a checked write (see MergeChecker), which falls back
// to the read and a second mint only when a replica reports a context the
// write did not cover, cannot report, or does not answer in time.
//
// A failed read is reported as a *QuorumError whose Op is "put (its read
// at r)".
func (c *Coordinator) Overwrite(ctx context.Context, req PutRequest) (*WriteResult, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	op, now, r, p, err := c.startWrite(&req)
	if err != nil {
		return nil, err
	}
	k := r.KeyOf(req.Key)
	wr := new(writeReq)
	plan := planWriteIn(wr.targets[:0], r, c.cfg.Membership.Alive, c.cfg.Self, op, k, p, c.jointOwners(k.Partition, p.N))
	if req.Value.Deleted || plan.forwarded() || plan.refused != nil || plan.coordinator().HintFor != "" {
		return c.readThenPut(ctx, op, req, p)
	}
	if _, ok := c.cfg.Replicas.(LocalSuperseder); !ok {
		return nil, &ParamError{Param: "supersede", Msg: "this node's replicas cannot supersede their local context"}
	}
	wr.ctx.initRequest(ctx, p.Timeout)
	defer wr.ctx.cancel()
	ctx = &wr.ctx // for readOthers
	req.Params = p
	req.SupersedeLocal = true
	var dirty vclock.Vector
	if mc, ok := c.cfg.Replicas.(MergeChecker); ok && max(p.R, p.PR) > 1 {
		chk := &wr.chk
		*chk = mergeCheck{mc: mc, need: max(p.R, p.PR)}
		res, err := c.putLocalChecked(wr, op, req, plan, now, chk)
		if err != nil || chk.clean >= chk.need {
			return res, err
		}
		c.log.Debug("overwrite: too few clean replicas, superseding again", "op", op, "clean", chk.clean, "dirty", chk.dirtyN, "need", chk.need, "peer too old", chk.tooOld)
		if chk.clean+chk.dirtyN >= chk.need {
			// Enough primaries answered for a read at R: their contexts
			// are known (the dirty ones' reported, the clean ones' in
			// this replica's, which holds the first set), so the second
			// mint needs no read.
			req.Context = union(req.Context, chk.dirty)
			return c.putLocal(wr, op, req, plan, now)
		}
		dirty = chk.dirty
	}
	read, err := c.readOthers(ctx, &plan)
	if err != nil {
		return nil, WriteReadErr(op, err)
	}
	req.Context = union(union(req.Context, dirty), read)
	return c.putLocal(wr, op, req, plan, now)
}

// MergeChecker is implemented by Replicas whose replicas can report, as
// they merge a set, whether it covered what they held: an overwrite then
// writes in one round instead of reading first (checked write, issue 16).
//
// Overwrite's checked write mints at once, superseding this node's
// replica (SupersedeLocal), and sends the set to the other primaries with
// MergeCheckAsync, to fallbacks with a plain merge. It answers once it has
// W acks, as Put does, and R (PR) clean primaries, this node's own replica
// counted as one (its context is in the set): any write acknowledged by W
// replicas before (R+W>N) is on one of them, so the set's context covers
// it. With fewer clean answers by then (a replica held something the set
// did not cover, a peer too old for the check, a failure, or none in
// overwriteHedge after W), it runs once the two-round overwrite (read the
// others' contexts, then mint again superseding the union of the dirty
// replies' contexts, the read's and everything this replica holds, its
// first dot included). When R primaries answered, clean or dirty, the
// read is skipped: every context it would return is known already (a
// clean replica's is covered by the first set, which this replica
// holds). So a dirty key costs two rounds, as before checked writes.
type MergeChecker interface {
	// MergeCheckAsync is AsyncReplicas.MergeAsync whose answer also says
	// whether t's context before the merge was covered by set's context
	// (Clean) and, when not, that context (Prior). t merges in every case.
	// done.MergeChecked gets the answer, with t, exactly once, possibly
	// before MergeCheckAsync returns; it must not block (as MergeAsync's
	// done).
	MergeCheckAsync(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool, done MergeCheckDone)
	// PeerTooOld reports whether err, given to MergeCheckAsync's done,
	// says t runs a release that cannot answer it (t did not merge): the
	// coordinator then sends t a plain merge, and counts it not clean.
	PeerTooOld(err error) bool
}

// MergeCheckDone takes the answers to checked merges (MergeChecker). An
// interface rather than a func, so that the coordinator passes the write
// itself, pointer-shaped, and allocates no closure per replica call: the
// call's target comes back with its answer.
type MergeCheckDone interface {
	MergeChecked(t ring.Target, r MergeCheck, err error)
}

// MergeCheck is a replica's answer to a checked merge.
type MergeCheck struct {
	Synced bool // the merge was fsynced
	Clean  bool // the replica's context before the merge was covered by the set's
	// Prior is, when not Clean, the replica's context before the merge,
	// encoded as a set without siblings (vclock.AppendContextOnly); it
	// may be valid only during done.
	Prior []byte
}

// mergeCheck is the state of a checked write (see MergeChecker), held by
// its write and read by Overwrite once replicate returned.
type mergeCheck struct {
	mc     MergeChecker
	need   int           // clean primaries needed: max(R, PR)
	clean  int           // clean primaries so far, this node's included
	out    int           // checked merges not answered yet
	dirty  vclock.Vector // the union of the dirty replies' prior contexts
	dirtyN int           // dirty replies
	tooOld bool          // a peer could not answer the check
}

// readThenPut is Overwrite as two requests: a read at R from every
// replica, then a write with the read's context and SupersedeLocal.
func (c *Coordinator) readThenPut(ctx context.Context, op string, req PutRequest, p Params) (*WriteResult, error) {
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	read, err := c.Get(ctx, GetRequest{Key: req.Key, Params: Params{N: p.N, R: p.R, PR: p.PR, Timeout: p.Timeout}})
	if err != nil {
		return nil, WriteReadErr(op, err)
	}
	if req.Value.Deleted && read.Set.IsDeleted() {
		return nil, nil
	}
	req.Context = req.Context.Merge(read.Set.Context)
	req.SupersedeLocal = true
	req.Params.R, req.Params.PR = 0, 0 // the read's; the write has its own defaults
	return c.Put(ctx, req)
}

// WriteReadErr names the read of a write that reads first (an overwrite, a
// create-only write): a *QuorumError's Op becomes op + " (its read at r)",
// so the client learns that the write's read failed, not a read it asked
// for. Other errors are returned as they are.
func WriteReadErr(op string, err error) error {
	var qe *QuorumError
	if errors.As(err, &qe) {
		qe.Op = op + " (its read at r)"
	}
	return err
}

// readOthers reads the key from the plan's targets other than this node
// until R-1 of them (PR-1 primaries) have answered, counting this node's
// own replica, a primary, as answered; it returns the sync of the contexts
// read. See Overwrite.
func (c *Coordinator) readOthers(ctx context.Context, plan *writePlan) (vclock.Vector, error) {
	p := plan.params
	if p.R <= 1 && p.PR <= 1 {
		return nil, nil // this node's replica is the whole read
	}
	tr := ReadTracker{r: p.R, pr: p.PR, decision: Pending}
	tr.Add(true)
	bg := new(lazyCtx)
	bg.init(ctx)
	// Reads change nothing: those still out when the answer is known are
	// cancelled. goRead counts each in c.wg until it has delivered.
	defer bg.cancel()
	replies := make(readChan, len(plan.targets)+1) // room for each call and the hedge
	next := 0                                      // the next of plan.targets to ask, skipping this node's
	// Only the contexts are used: replicas that can answer with the
	// context alone are asked for it (ContextReader).
	cr, ctxOnly := c.cfg.Replicas.(ContextReader)
	more := func() bool {
		if next == plan.local {
			next++
		}
		return next < len(plan.targets)
	}
	send := func() {
		t := plan.targets[next]
		next++
		tr.Add(t.HintFor == "")
		if ctxOnly {
			c.goReadContext(bg, cr, t, plan.key, replies)
		} else {
			c.goRead(bg, t, plan.key, replies)
		}
	}
	for i := 1; i < p.R && more(); i++ {
		send()
	}
	// Count this node's replica only once the first reads are counted as
	// outstanding, so the tracker does not fail early for want of them.
	tr.Record(true, nil)
	// The hedge comes as a reply on the same channel: a timer with no
	// channel of its own (two allocations less than time.NewTimer).
	hedge := time.AfterFunc(overwriteHedge, func() { replies <- readReply{err: errHedge} })
	defer hedge.Stop()
	var merged vclock.Vector
	dec := Pending
	for dec == Pending {
		select {
		case rep := <-replies:
			if rep.err == errHedge {
				for more() {
					send()
				}
				continue
			}
			if rep.ctxOnly && rep.err != nil && cr.PeerTooOld(rep.err) {
				// A release before context-only reads: read its whole
				// set instead, the answer it owes still to come.
				c.goRead(bg, rep.t, plan.key, replies)
				continue
			}
			if rep.err != nil {
				c.log.Debug("replica read failed", "op", "overwrite", "peer", rep.t.Node, "err", rep.err)
				// Ask another before counting the failure, so the tracker
				// does not fail for want of targets it was never given.
				if more() && ctx.Err() == nil {
					send()
				}
			} else {
				merged = union(merged, rep.set.Context)
			}
			dec = tr.Record(rep.t.HintFor == "", rep.err)
		case <-ctx.Done():
			dec = Failed
		}
	}
	if dec != Succeeded {
		return nil, tr.Err()
	}
	return merged, nil
}

// goReadContext is goRead through cr.ReadContextAsync: the reply's set
// may lack its siblings, and says so (readReply.ctxOnly).
func (c *Coordinator) goReadContext(ctx context.Context, cr ContextReader, t ring.Target, k ring.Key, out readSink) {
	c.wg.Add(1)
	cr.ReadContextAsync(ctx, t, k, func(s vclock.Set, err error) {
		out.deliver(readReply{t: t, set: s, err: err, ctxOnly: true})
		c.wg.Done()
	})
}

// errHedge is the reply readOthers's hedge timer sends itself.
var errHedge = errors.New("hedge")

// union is a.Merge(b) without the copy when one side is empty (the common
// overwrite: no context of its own, one replica read). The result may
// share memory with a or b; neither is modified later.
func union(a, b vclock.Vector) vclock.Vector {
	switch {
	case len(a) == 0:
		return b
	case len(b) == 0:
		return a
	}
	return a.Merge(b)
}
