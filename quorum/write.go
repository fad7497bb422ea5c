package quorum

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// startWrite is the common start of Put and Overwrite: the operation's
// name, the time its deadline is stamped at, the ring and the resolved
// parameters.
func (c *Coordinator) startWrite(req *PutRequest) (op string, now time.Time, r *ring.Ring, p Params, err error) {
	op = "put"
	if req.Value.Deleted {
		op = "delete"
	}
	now = c.now()
	if err = stampDeadline(req, now); err != nil {
		return
	}
	r = c.cfg.Membership.Ring()
	p, err = c.Resolve(r, req.Params)
	return
}

// Put coordinates a write: forwarded to a replica when this node is not one,
// otherwise minted locally and replicated to the other targets. What goes
// where is decided up front by a pure plan (planWrite); Put executes it.
func (c *Coordinator) Put(ctx context.Context, req PutRequest) (*WriteResult, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	op, now, r, p, err := c.startWrite(&req)
	if err != nil {
		return nil, err
	}
	req.Params = p
	k := r.KeyOf(req.Key)
	wr := new(writeReq)
	plan := planWriteIn(wr.targets[:0], r, c.cfg.Membership.Alive, c.cfg.Self, op, k, p, c.jointOwners(k.Partition, p.N))
	wr.ctx.initRequest(ctx, p.Timeout)
	defer wr.ctx.cancel()
	if plan.forwarded() {
		return c.forward(&wr.ctx, op, req, plan.targets)
	}
	if plan.refused != nil {
		return nil, plan.refused
	}
	return c.putLocal(wr, op, req, plan, now)
}

// writeReq is what a write request allocates at its coordinator once,
// whatever rounds it runs: its context, room for its targets at N <= 3,
// an overwrite's checked write, and its first round's write state.
type writeReq struct {
	ctx     lazyCtx
	chk     mergeCheck
	targets [3]ring.Target
	first   write
	used    bool // first is taken: a second round allocates its own
	// res is the answer replicate returns, in the same allocation: set
	// once, before the answer, and never touched by late replies.
	res WriteResult
}

// newWrite returns a round's write state: the request's first, else a
// new one.
func (wr *writeReq) newWrite() *write {
	if wr.used {
		return new(write)
	}
	wr.used = true
	return &wr.first
}

// putLocal executes a write plan in which this node is a replica: it mints
// the write locally and replicates it, in wr's context.
func (c *Coordinator) putLocal(wr *writeReq, op string, req PutRequest, plan writePlan, now time.Time) (*WriteResult, error) {
	return c.putLocalChecked(wr, op, req, plan, now, nil)
}

// putLocalChecked is putLocal whose replication is a checked write when
// chk is not nil (Overwrite's first round, see mergeCheck).
func (c *Coordinator) putLocalChecked(wr *writeReq, op string, req PutRequest, plan writePlan, now time.Time, chk *mergeCheck) (*WriteResult, error) {
	ctx := &wr.ctx
	req.Value.Timestamp = now.UnixNano()
	var (
		minted Minted
		commit func() error // the local write's commit, when still queued
		err    error
	)
	if qm, ok := c.cfg.Replicas.(QueuedMinter); ok {
		minted, commit, err = qm.MintQueued(ctx, plan.coordinator(), plan.key, req.Context, req.Value, plan.durable(), req.SupersedeLocal)
	} else {
		mint := c.cfg.Replicas.Mint
		if req.SupersedeLocal {
			ls, ok := c.cfg.Replicas.(LocalSuperseder)
			if !ok {
				return nil, &ParamError{Param: "supersede", Msg: "this node's replicas cannot supersede their local context"}
			}
			mint = ls.MintSupersedingLocal
		}
		minted, err = mint(ctx, plan.coordinator(), plan.key, req.Context, req.Value, plan.durable())
	}
	if err != nil {
		if others := plan.forwardOnLocalFailure(); others != nil && ctx.Err() == nil {
			c.log.Debug("fallback coordinator could not keep the write; forwarding", "op", op, "err", err)
			return c.forward(ctx, op, req, others)
		}
		return nil, fmt.Errorf("%s: local write: %w", op, err)
	}
	res, err := c.replicate(wr, plan, minted, commit, chk)
	if res != nil {
		res.Set, _ = vclock.Expire(res.Set, now.UnixNano())
	}
	return res, err
}

// stampDeadline turns req.TTL into the absolute Value.Expires, read from
// now, and checks a deadline given as such: a deadline must lie after
// 1970 and before the end of int64 nanoseconds (2262), and a delete has
// none.
func stampDeadline(req *PutRequest, now time.Time) error {
	switch {
	case req.TTL < 0:
		return &ParamError{Param: "ttl", Msg: fmt.Sprintf("ttl=%s: must be positive", req.TTL)}
	case req.TTL > 0:
		at := now.UnixNano()
		if at > math.MaxInt64-int64(req.TTL) {
			return &ParamError{Param: "ttl", Msg: fmt.Sprintf("ttl=%s: the deadline would be past the year 2262", req.TTL)}
		}
		req.Value.Expires, req.TTL = at+int64(req.TTL), 0
	}
	switch {
	case req.Value.Expires < 0:
		return &ParamError{Param: "ttl", Msg: "a deadline before 1970"}
	case req.Value.Expires != 0 && req.Value.Deleted:
		return &ParamError{Param: "ttl", Msg: "a delete cannot have a time to live"}
	}
	return nil
}

// write is one write in flight at its coordinator, after the local mint:
// the plan, the tracker its replies feed and the channel they arrive on.
// Plan and tracker are held by value: one allocation per write.
type write struct {
	c    *Coordinator
	plan writePlan
	set  []byte // the minted set, encoded once, sent as-is to every target
	tr   WriteTracker
	jt   JointTracker // W of each other assignment's owners (ring changes)
	// extraOut counts the writes to pending owners not answered yet.
	extraOut int
	// check, when set, makes this a checked write (Overwrite's first
	// round): primaries get MergeCheckAsync, and the write answers once
	// it has W acks and check.need clean primaries, or cannot get them.
	check *mergeCheck
	// bg carries the replica calls: not cancelled when Put returns (late
	// acks land), bounded by the request's deadline. Hints of last resort
	// run without it, on its parent's values (hint).
	bg lazyCtx
	// replies has room for every call the write can make (each target and
	// spare at most once) and the deadline's wake-up (fire), so a send
	// never blocks. Taken from c.writeChans, given back once answered.
	replies chan writeReply
	// mu orders deliver against the answer: until answered, replies go
	// to the loop; after it, deliver handles each itself (late), and the
	// last of the left ones releases the calls' context (bg.cancel).
	mu       sync.Mutex
	answered bool
	left     int
}

type writeReply struct {
	t       ring.Target
	durable bool
	err     error
	extra   bool // a pending owner's answer: counted by jt only
	// timedOut is no reply but the request's deadline (write.fire).
	timedOut bool
	// checked marks the answer to a checked merge (MergeCheckAsync):
	// clean and prior are its report.
	checked bool
	clean   bool
	prior   vclock.Vector
}

// replicate sends the minted set to the plan's other targets and answers
// once the tracker decides; failures get a fallback or a local hint
// (plan.onFailure). Replies still outstanding are drained in the background.
// commit, when not nil, is the local write's still pending commit
// (QueuedMinter): it is waited for once the set is on its way to the
// others, and this node's ack counts only if it succeeded.
func (c *Coordinator) replicate(wr *writeReq, pl writePlan, minted Minted, commit func() error, chk *mergeCheck) (*WriteResult, error) {
	ctx, p := &wr.ctx, pl.params
	room := len(pl.targets) + len(pl.spares) + len(pl.pending) + 1 // + the deadline's wake-up
	if chk != nil {
		room += len(pl.targets) // a checked merge a peer too old refused is sent again, plain
	}
	w := wr.newWrite()
	*w = write{c: c, plan: pl, set: minted.Encoded, tr: *NewWriteTracker(p.W, p.PW, p.DW), jt: *NewJointTracker(p.W, pl.joint),
		replies: c.writeChans.get(room), check: chk}
	w.bg.init(ctx)
	// The request ends at its deadline, which fire hands to the loop below
	// as a reply (ctx makes no timer of its own), or with its caller's
	// context.
	deadline := c.startAlarm(time.Until(ctx.deadline), w)
	defer c.stopAlarm(deadline)
	plan := &w.plan

	w.tr.RequireZones(p.PZ)
	me := plan.coordinator()
	w.tr.Add(me.HintFor == "")
	if me.HintFor == "" {
		w.jt.Add(me.Node)
	}
	for i, t := range plan.targets {
		if i != plan.local {
			w.send(t)
		}
	}
	for _, id := range plan.pending {
		w.extra(id)
	}
	// Count our own ack only once every target is counted as outstanding,
	// so the tracker does not fail early for want of them, and once the
	// local write committed.
	var localErr error
	if commit != nil {
		if len(plan.targets) > 1 {
			// The sends are queued: let the transport's writers put them on
			// the wire before the commit, which would otherwise run first
			// (it wakes the store's writer last, which then takes the
			// scheduler's next slot), so the replicas start that much later
			// (issue 16). With nothing else runnable, Gosched returns at once.
			runtime.Gosched()
		}
		if err := commit(); err != nil {
			localErr = fmt.Errorf("local write: %w", err)
		}
	}
	w.tr.RecordZone(plan.zoneOf(me.Node), me.HintFor == "", minted.Durable, localErr)
	if me.HintFor == "" {
		w.jt.Record(me.Node, localErr)
	}
	if chk != nil && me.HintFor == "" && localErr == nil {
		chk.clean++ // it minted superseding its whole context
	}
	for _, id := range plan.lastResort {
		w.hint(id)
	}

	dec := w.decision()
	if dec == Pending && ctx.Err() != nil {
		dec = w.expired() // ended before the timer could tell (round 2 of an overwrite at its deadline)
	}
	var hedge <-chan time.Time // a checked write's wait for clean answers once W is met
	for dec == Pending {
		if hedge == nil && chk != nil && w.met() {
			tm := time.NewTimer(overwriteHedge)
			defer tm.Stop()
			hedge = tm.C
		}
		select {
		case rep := <-w.replies:
			if rep.timedOut {
				dec = w.expired()
				continue
			}
			dec = w.record(rep, ctx.Err() == nil)
		case <-hedge:
			dec = Succeeded // W met; too few clean answers in time: Overwrite's round 2
		case <-ctx.parent.Done():
			dec = w.expired()
		}
	}
	// The remaining replies land after the answer: those already queued
	// are handled here, the others by deliver as they come (no goroutine
	// waits for them); the last one releases the calls' context. Nothing
	// sends to replies once answered: drained, it serves another request.
	w.mu.Lock()
	w.answered, w.left = true, w.tr.Outstanding()+w.extraOut
	for drained := false; !drained; {
		select {
		case rep := <-w.replies:
			if !rep.timedOut {
				w.late(rep)
			}
		default:
			drained = true
		}
	}
	c.writeChans.put(w.replies)
	w.replies = nil
	last := w.left == 0
	w.mu.Unlock()
	if last {
		w.bg.cancel()
	}
	if dec != Succeeded {
		if w.tr.Decision() == Succeeded {
			return nil, w.jt.Err(plan.op)
		}
		return nil, w.tr.Err(plan.op)
	}
	wr.res = WriteResult{Set: minted.Set, Dot: minted.Dot, Acks: w.tr.Acks(), Coordinator: c.cfg.Self}
	return &wr.res, nil
}

// expired is the decision at the request's end (its deadline, its
// caller's cancellation): failed, unless a checked write has its W acks
// (round 2 of Overwrite then fails on the context).
func (w *write) expired() Decision {
	if w.check != nil && w.met() {
		return Succeeded // as for the hedge
	}
	return Failed
}

// fire is the request's deadline (replicate's timer): it wakes the loop,
// with a reply of its own (sent at most once, before the answer).
func (w *write) fire() {
	w.mu.Lock()
	if !w.answered {
		w.replies <- writeReply{timedOut: true}
	}
	w.mu.Unlock()
}

// deliver hands a reply to the loop, or, once the write has answered,
// handles it as a late one. Every reply of the write comes through here.
func (w *write) deliver(rep writeReply) {
	w.mu.Lock()
	if !w.answered {
		w.replies <- rep // room for every call: never blocks
		w.mu.Unlock()
		return
	}
	w.late(rep)
	last := w.left == 0
	w.mu.Unlock()
	if last {
		w.bg.cancel()
	}
}

// late handles a reply that arrived after the answer: a failed primary
// gets a local hint (never a fallback: onFailure without replace). w.mu
// is held.
func (w *write) late(rep writeReply) {
	if rep.checked && rep.err != nil && w.check.mc.PeerTooOld(rep.err) {
		w.mergeAgain(rep.t) // its merge is still owed: left unchanged
		return
	}
	w.left--
	if rep.err != nil && !rep.extra {
		w.standIn(w.plan.onFailure(rep.t, false, nil))
	}
}

// record counts one reply. A failure first gets what stands in for it (a
// fallback while replace, else a local hint), so that the tracker counts
// the fallback as outstanding before it counts the failure.
func (w *write) record(rep writeReply, replace bool) Decision {
	if rep.checked {
		chk := w.check
		chk.out--
		switch {
		case rep.err != nil && chk.mc.PeerTooOld(rep.err):
			// A release before checked merges: merge plainly, the ack
			// it owes still to come; it cannot be counted clean.
			chk.tooOld = true
			w.mergeAgain(rep.t)
			return w.decision()
		case rep.err == nil && rep.clean:
			chk.clean++
		case rep.err == nil:
			chk.dirty = union(chk.dirty, rep.prior)
			chk.dirtyN++
		}
	}
	if rep.extra {
		w.extraOut--
		w.jt.Record(rep.t.Node, rep.err)
		if rep.err != nil {
			w.c.log.Debug("write to a pending owner failed", "op", w.plan.op, "peer", rep.t.Node, "err", rep.err)
		}
		return w.decision()
	}
	if rep.err != nil {
		w.c.log.Debug("replica write failed", "op", w.plan.op, "peer", rep.t.Node, "err", rep.err)
		w.standIn(w.plan.onFailure(rep.t, replace, w.c.cfg.Membership.Alive))
	}
	if rep.t.HintFor == "" {
		w.jt.Record(rep.t.Node, rep.err)
	}
	w.tr.RecordZone(w.plan.zoneOf(rep.t.Node), rep.t.HintFor == "", rep.durable, rep.err)
	return w.decision()
}

// jointOwners are the owner lists of the other assignments in use for
// partition p at replication n (PendingMembership), nil when none.
func (c *Coordinator) jointOwners(p uint32, n int) [][]ring.NodeID {
	if pm, ok := c.cfg.Membership.(PendingMembership); ok {
		return pm.JointOwners(p, n)
	}
	return nil
}

// decision is the write's verdict: W (PW, DW) among its targets, and
// during a ring change W among each other assignment's owners too.
func (w *write) decision() Decision {
	if d := w.tr.Decision(); d != Succeeded {
		return d
	}
	d := w.jt.Decision()
	if chk := w.check; d == Succeeded && chk != nil && chk.clean < chk.need && chk.clean+chk.out >= chk.need {
		return Pending // W met, and enough clean answers may still come
	}
	return d
}

// met reports whether the write has its W (and joint) acks.
func (w *write) met() bool {
	return w.tr.Decision() == Succeeded && w.jt.Decision() == Succeeded
}

// standIn acts on a plan's decision for a failed target.
func (w *write) standIn(r recovery) {
	switch {
	case r.fallback.Node != "":
		w.send(r.fallback)
	case r.hintFor != "":
		w.hint(r.hintFor)
	}
}

// send replicates the set to t and counts t as outstanding.
func (w *write) send(t ring.Target) {
	w.tr.Add(t.HintFor == "")
	if t.HintFor == "" {
		w.jt.Add(t.Node)
	}
	if w.check != nil && t.HintFor == "" {
		w.check.out++
		w.c.goMergeCheck(&w.bg, t, w.plan.key, w.set, w.plan.durable(), w)
		return
	}
	w.c.goMerge(&w.bg, t, w.plan.key, w.set, w.plan.durable(), w)
}

// mergeAgain sends t, whose checked merge it refused as too new for its
// release, a plain merge (already counted as outstanding). It runs on a
// goroutine of its own: late calls it with w.mu held, and a reply may be
// delivered before the call returns.
func (w *write) mergeAgain(t ring.Target) {
	c := w.c
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.goMerge(&w.bg, t, w.plan.key, w.set, w.plan.durable(), w)
	}()
}

// hint keeps the write as a hint on this node for primary, which neither
// acknowledged nor has a fallback standing in for it (a cluster with no
// spare member, as three nodes at N=3): hinted handoff then brings it up to
// date when it is back. Such a hint is not an ack, so it has a timeout of
// its own and its outcome is only logged.
func (w *write) hint(primary ring.NodeID) {
	c, pl := w.c, &w.plan
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(w.bg.parent), pl.params.Timeout)
		defer cancel()
		if _, err := c.cfg.Replicas.Merge(ctx, ring.Target{Node: pl.self, HintFor: primary}, pl.key, w.set, false); err != nil {
			// Debug: a target whose hints are at their cap refuses every
			// write, and the hint manager already logs drops per interval.
			c.log.Debug("store hint for a down primary", "op", pl.op, "peer", primary, "err", err)
		}
	}()
}

// extra sends the write to pending owner id: its answer counts toward
// the joint quorums only (JointTracker), never toward W.
func (w *write) extra(id ring.NodeID) {
	w.jt.Add(id)
	w.extraOut++
	c, pl := w.c, &w.plan
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		_, err := c.cfg.Replicas.Merge(&w.bg, ring.Target{Node: id}, pl.key, w.set, pl.durable())
		w.deliver(writeReply{t: ring.Target{Node: id}, err: err, extra: true})
	}()
}

// goMerge starts Replicas.Merge of set on t and hands the reply to
// w.deliver, which must not block (w itself, not a method value: one
// allocation less per call). It and goRead are the only places a request
// starts a replica call whose reply the loop waits for: with AsyncReplicas
// no goroutine waits for the call, else one does (see the package doc).
// Like every goroutine of the coordinator, it is counted in c.wg, which
// Close and Wait wait for.
func (c *Coordinator) goMerge(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool, w *write) {
	c.wg.Add(1)
	if ar, ok := c.cfg.Replicas.(AsyncReplicas); ok {
		ar.MergeAsync(ctx, t, k, set, durable, func(d bool, err error) {
			w.deliver(writeReply{t: t, durable: d, err: err})
			c.wg.Done()
		})
		return
	}
	go func() {
		defer c.wg.Done()
		d, err := c.cfg.Replicas.Merge(ctx, t, k, set, durable)
		w.deliver(writeReply{t: t, durable: d, err: err})
	}()
}

// goMergeCheck is goMerge through w.check.mc.MergeCheckAsync: the reply
// carries the replica's report (writeReply.checked), and comes to
// w.MergeChecked.
func (c *Coordinator) goMergeCheck(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool, w *write) {
	c.wg.Add(1)
	w.check.mc.MergeCheckAsync(ctx, t, k, set, durable, w)
}

// MergeChecked implements MergeCheckDone: it hands t's answer to deliver.
func (w *write) MergeChecked(t ring.Target, r MergeCheck, err error) {
	var prior vclock.Set
	if err == nil && !r.Clean {
		// Decoded here: r.Prior may not outlive done. A context that
		// does not decode fails the call (t did merge: not counted).
		prior, err = vclock.DecodeSet(r.Prior)
	}
	w.deliver(writeReply{t: t, durable: r.Synced, err: err, checked: true, clean: r.Clean, prior: prior.Context})
	w.c.wg.Done()
}

// forward hands a write to the first target that answers; targets are in
// preference order, so all nodes tend to pick the same coordinator.
func (c *Coordinator) forward(ctx context.Context, op string, req PutRequest, targets []ring.Target) (*WriteResult, error) {
	if req.Hops >= c.cfg.MaxForwardHops {
		return nil, fmt.Errorf("%s: forwarded %d times without reaching a replica (nodes disagree about the ring; retry): %w", op, req.Hops, ErrNoCoordinator)
	}
	if len(targets) == 0 {
		return nil, &QuorumError{Op: op, Required: req.Params.W, RequiredPrimary: req.Params.PW, RequiredDurable: req.Params.DW}
	}
	req.Hops++
	var errs []error
	for _, t := range targets {
		res, err := c.cfg.Replicas.Forward(ctx, t.Node, req)
		if err == nil {
			return res, nil
		}
		// A coordinator that ran and answered (quorum not met, bad request)
		// has decided; asking another would mint a second dot.
		if errors.Is(err, ErrQuorumNotMet) || errors.Is(err, ErrInvalid) || ctx.Err() != nil {
			return nil, err
		}
		c.log.Debug("forward failed", "op", op, "peer", t.Node, "err", err)
		errs = append(errs, fmt.Errorf("forward to %s: %w", t.Node, err))
	}
	return nil, &QuorumError{Op: op, Required: req.Params.W, RequiredPrimary: req.Params.PW,
		RequiredDurable: req.Params.DW, Targets: len(targets), Errs: errs}
}
