package quorum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// Membership is the coordinator's view of the cluster: the current ring and
// who is alive. Both calls must be cheap and must not block.
type Membership interface {
	Ring() *ring.Ring
	Alive(id ring.NodeID) bool
}

// Minted is the outcome of a write applied at the coordinator's own replica.
type Minted struct {
	Set     vclock.Set // the replica's set after the write
	Encoded []byte     // Set encoded once, sent as-is to every other target
	Dot     vclock.Dot // the dot minted for the write
	Durable bool       // whether the local write was fsynced
}

// Replicas carries replica operations to a target, which may be the
// coordinator itself (then the implementation works on the local store
// directly). Every method may be called concurrently and must honor ctx.
type Replicas interface {
	// Mint applies a new write to the coordinator's own replica t (t.Node is
	// Self; t.HintFor names the primary it stands in for, if any): it mints a
	// new dot from local state, drops what context covers and stores the
	// result before returning. durable asks for an fsync.
	Mint(ctx context.Context, t ring.Target, k ring.Key, context vclock.Vector, v vclock.Value, durable bool) (Minted, error)
	// Merge makes t merge the encoded set into its copy of k (as a hint for
	// t.HintFor when set). It reports whether the merge was fsynced.
	Merge(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool) (synced bool, err error)
	// Read returns t's copy of k: the zero Set when t holds nothing.
	Read(ctx context.Context, t ring.Target, k ring.Key) (vclock.Set, error)
	// Forward asks node to coordinate req (this node is not a replica of it).
	Forward(ctx context.Context, node ring.NodeID, req PutRequest) (*WriteResult, error)
}

// Config configures a Coordinator.
type Config struct {
	// Self is this node's id.
	Self ring.NodeID
	// Membership gives the ring and liveness. Required.
	Membership Membership
	// Replicas carries replica operations. Required.
	Replicas Replicas
	// Defaults fill the zero fields of each request's Params. Defaults.N,
	// R, W and Timeout must be set.
	Defaults Params
	// MaxN is the largest N a request may ask for. 0 means no limit beyond
	// the ring's size.
	MaxN int
	// ReadRepairWait is how long a read keeps waiting, after it has
	// answered, for the replicas that have not, before deciding what to
	// repair. Default 200ms; it is bounded by the request's timeout too.
	ReadRepairWait time.Duration
	// MaxForwardHops bounds how many times a write may be forwarded when
	// nodes disagree about the ring. Default 2.
	MaxForwardHops int
	// Now stamps values with the coordinator's time (display and LWW only).
	// nil means time.Now.
	Now func() time.Time
	// OnReadRepair, if set, is called once for each repair sent. It must
	// not block.
	OnReadRepair func(t ring.Target, err error)
	// Logger receives debug lines about replica failures. nil discards.
	Logger *slog.Logger
}

// Validate reports whether c is usable. It does not change c.
func (c Config) Validate() error {
	switch {
	case c.Self == "":
		return errors.New("quorum config: Self is empty")
	case c.Membership == nil:
		return errors.New("quorum config: Membership is nil")
	case c.Replicas == nil:
		return errors.New("quorum config: Replicas is nil")
	case c.Defaults.N < 1 || c.Defaults.R < 1 || c.Defaults.W < 1:
		return fmt.Errorf("quorum config: default n/r/w %d/%d/%d must be positive", c.Defaults.N, c.Defaults.R, c.Defaults.W)
	case c.Defaults.R > c.Defaults.N || c.Defaults.W > c.Defaults.N:
		return fmt.Errorf("quorum config: default r=%d and w=%d cannot exceed n=%d", c.Defaults.R, c.Defaults.W, c.Defaults.N)
	case c.Defaults.Timeout <= 0:
		return errors.New("quorum config: default timeout must be positive")
	case c.ReadRepairWait < 0 || c.MaxForwardHops < 0:
		return errors.New("quorum config: negative ReadRepairWait or MaxForwardHops")
	}
	return nil
}

// PutRequest is a write (or, with Value.Deleted, a delete).
type PutRequest struct {
	Key     []byte
	Value   vclock.Value  // Timestamp is set by the coordinator
	Context vclock.Vector // what the client saw; empty for a blind write
	Params  Params
	// Hops counts forwards so far; a client request has 0.
	Hops int
	// SupersedeLocal widens Context to everything the coordinating
	// replica holds for the key, so the write replaces every sibling stored
	// there (a plain Redis SET). Writes that race through other coordinators
	// still become siblings: each supersedes only what its own coordinator
	// has seen. It needs Replicas to implement LocalSuperseder.
	SupersedeLocal bool
}

// LocalSuperseder is implemented by Replicas that can serve
// PutRequest.SupersedeLocal.
type LocalSuperseder interface {
	// MintSupersedingLocal is Mint with context widened to the context of
	// the set t holds for k (its record, or its hint when t.HintFor is set).
	MintSupersedingLocal(ctx context.Context, t ring.Target, k ring.Key, context vclock.Vector, v vclock.Value, durable bool) (Minted, error)
}

// GetRequest is a read.
type GetRequest struct {
	Key    []byte
	Params Params
}

// WriteResult is a successful write.
type WriteResult struct {
	Set         vclock.Set  // the coordinator's set after the write
	Dot         vclock.Dot  // the write's dot
	Acks        Acks        // who acknowledged before the answer
	Coordinator ring.NodeID // the node that minted the dot
}

// ReadResult is a successful read: the sync of the answers counted.
type ReadResult struct {
	Set  vclock.Set
	Acks Acks
}

// Coordinator runs quorum reads and writes. Create it with New.
type Coordinator struct {
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	wg     sync.WaitGroup
	closed atomic.Bool
}

// New returns a Coordinator for cfg.
func New(cfg Config) (*Coordinator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ReadRepairWait == 0 {
		cfg.ReadRepairWait = 200 * time.Millisecond
	}
	if cfg.MaxForwardHops == 0 {
		cfg.MaxForwardHops = 2
	}
	c := &Coordinator{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	if c.now == nil {
		c.now = time.Now
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Close stops new requests and waits for background replica calls (late
// acks, read repair) to finish; they end by their own deadlines.
func (c *Coordinator) Close() {
	c.closed.Store(true)
	c.wg.Wait()
}

// Wait blocks until background replica calls started so far have finished.
// Tests use it to observe read repair deterministically.
func (c *Coordinator) Wait() { c.wg.Wait() }

func (c *Coordinator) alive(id ring.NodeID) bool {
	return id == c.cfg.Self || c.cfg.Membership.Alive(id)
}

// Resolve validates p after filling defaults, against ring r.
func (c *Coordinator) Resolve(r *ring.Ring, p Params) (Params, error) {
	p = p.WithDefaults(c.cfg.Defaults)
	return p, p.Validate(r.Len(), c.cfg.MaxN)
}

type writeReply struct {
	t       ring.Target
	durable bool
	err     error
}

// Put coordinates a write: forwarded to a replica when this node is not one,
// otherwise minted locally and replicated to the other targets.
func (c *Coordinator) Put(ctx context.Context, req PutRequest) (*WriteResult, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	op := "put"
	if req.Value.Deleted {
		op = "delete"
	}
	r := c.cfg.Membership.Ring()
	p, err := c.Resolve(r, req.Params)
	if err != nil {
		return nil, err
	}
	req.Params = p
	k := r.KeyOf(req.Key)
	targets := r.Targets(k.Partition, p.N, c.alive)
	self := -1
	for i, t := range targets {
		if t.Node == c.cfg.Self {
			self = i
			break
		}
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	if self < 0 {
		return c.forward(ctx, op, req, targets)
	}
	primaries := 0
	for _, t := range targets {
		if t.HintFor == "" {
			primaries++
		}
	}
	// Refuse before writing anything when the quorum cannot be met with the
	// members gossip sees alive.
	if len(targets) < p.W || primaries < p.PW {
		return nil, &QuorumError{Op: op, Required: p.W, RequiredPrimary: p.PW, RequiredDurable: p.DW,
			Targets: len(targets), Errs: []error{fmt.Errorf("%d live replica(s), %d of them primaries", len(targets), primaries)}}
	}

	req.Value.Timestamp = c.now().UnixNano()
	me := targets[self]
	var minted Minted
	if req.SupersedeLocal {
		ls, ok := c.cfg.Replicas.(LocalSuperseder)
		if !ok {
			return nil, &ParamError{Param: "supersede", Msg: "this node's replicas cannot supersede their local context"}
		}
		minted, err = ls.MintSupersedingLocal(ctx, me, k, req.Context, req.Value, p.DW > 0)
	} else {
		minted, err = c.cfg.Replicas.Mint(ctx, me, k, req.Context, req.Value, p.DW > 0)
	}
	if err != nil {
		if me.HintFor != "" && ctx.Err() == nil && len(targets) > 1 {
			// A fallback that cannot keep the write (its hints for the
			// primary are at their cap) hands it to another target rather
			// than failing a write others can take.
			c.log.Debug("fallback coordinator could not keep the write; forwarding", "op", op, "err", err)
			others := make([]ring.Target, 0, len(targets)-1)
			for _, t := range targets {
				if t.Node != c.cfg.Self {
					others = append(others, t)
				}
			}
			return c.forward(ctx, op, req, others)
		}
		return nil, fmt.Errorf("%s: local write: %w", op, err)
	}
	tr := NewWriteTracker(p.W, p.PW, p.DW)
	tr.Add(me.HintFor == "")

	// Replica calls outlive the answer (late acks land), so they run on a
	// context that is not cancelled when Put returns, bounded by the same
	// deadline.
	deadline, _ := ctx.Deadline()
	bg, bgCancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	pref := r.Preference(k.Partition)
	replies := make(chan writeReply, len(pref)+1)
	// used and covered are slices, not maps: they hold a handful of ids,
	// and a map per write showed in profiles.
	used := make([]ring.NodeID, 0, len(pref))
	for _, t := range targets {
		used = append(used, t.Node)
	}
	send := func(t ring.Target) {
		tr.Add(t.HintFor == "")
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			d, err := c.cfg.Replicas.Merge(bg, t, k, minted.Encoded, p.DW > 0)
			replies <- writeReply{t: t, durable: d, err: err}
		}()
	}
	for i, t := range targets {
		if i != self {
			send(t)
		}
	}
	// Count our own ack only once every target is counted as outstanding,
	// so the tracker does not fail early for want of them.
	tr.Record(me.HintFor == "", minted.Durable, nil)
	// nextFallback finds a live member, not yet used, to stand in for a
	// target that failed: the sloppy quorum.
	nextFallback := func(failed ring.Target) (ring.Target, bool) {
		hintFor := failed.HintFor
		if hintFor == "" {
			hintFor = failed.Node
		}
		for i := min(p.N, len(pref)); i < len(pref); i++ {
			id := pref[i]
			if !slices.Contains(used, id) && c.alive(id) {
				used = append(used, id)
				return ring.Target{Node: id, HintFor: hintFor}, true
			}
		}
		return ring.Target{}, false
	}

	// hintLocally keeps the write as a hint on this node for a primary that
	// neither answered nor has a fallback standing in for it (a cluster with
	// no spare member, as three nodes at N=3): hinted handoff then brings
	// it up to date when it is back. Such a hint is not an ack.
	hintLocally := func(primary ring.NodeID) {
		if primary == c.cfg.Self {
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.Timeout)
			defer cancel()
			if _, err := c.cfg.Replicas.Merge(hctx, ring.Target{Node: c.cfg.Self, HintFor: primary}, k, minted.Encoded, false); err != nil {
				// Debug: a target whose hints are at their cap refuses every
				// write, and the hint manager already logs drops per interval.
				c.log.Debug("store hint for a down primary", "op", op, "peer", primary, "err", err)
			}
		}()
	}
	covered := make([]ring.NodeID, 0, len(targets))
	for _, t := range targets {
		if t.HintFor != "" {
			covered = append(covered, t.HintFor)
		} else {
			covered = append(covered, t.Node)
		}
	}
	for _, id := range r.Primaries(k.Partition, p.N) {
		if !slices.Contains(covered, id) {
			hintLocally(id)
		}
	}

	dec := tr.Decision()
	for dec == Pending {
		select {
		case rep := <-replies:
			if rep.err != nil {
				c.log.Debug("replica write failed", "op", op, "peer", rep.t.Node, "err", rep.err)
				fb, ok := ring.Target{}, false
				if ctx.Err() == nil {
					fb, ok = nextFallback(rep.t)
				}
				if ok {
					send(fb)
				} else if rep.t.HintFor != "" {
					hintLocally(rep.t.HintFor)
				} else {
					hintLocally(rep.t.Node)
				}
			}
			dec = tr.Record(rep.t.HintFor == "", rep.durable, rep.err)
		case <-ctx.Done():
			dec = Failed
		}
	}
	// Drain the remaining replies in the background so their goroutines
	// finish and the context is released once the last one has landed.
	outstanding := tr.Outstanding()
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer bgCancel()
		for range outstanding {
			if rep := <-replies; rep.err != nil {
				if rep.t.HintFor != "" {
					hintLocally(rep.t.HintFor)
				} else {
					hintLocally(rep.t.Node)
				}
			}
		}
	}()
	if dec != Succeeded {
		return nil, tr.Err(op)
	}
	return &WriteResult{Set: minted.Set, Dot: minted.Dot, Acks: tr.Acks(), Coordinator: c.cfg.Self}, nil
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

type readReply struct {
	t   ring.Target
	set vclock.Set
	err error
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
	k := r.KeyOf(req.Key)
	targets := r.Targets(k.Partition, p.N, c.alive)
	primaries := 0
	for _, t := range targets {
		if t.HintFor == "" {
			primaries++
		}
	}
	if len(targets) < p.R || primaries < p.PR {
		return nil, &QuorumError{Op: "get", Required: p.R, RequiredPrimary: p.PR, Targets: len(targets),
			Errs: []error{fmt.Errorf("%d live replica(s), %d of them primaries", len(targets), primaries)}}
	}
	ctx, cancel := context.WithTimeout(ctx, p.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	bg, bgCancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)

	tr := NewReadTracker(p.R, p.PR)
	replies := make(chan readReply, len(targets))
	for _, t := range targets {
		tr.Add(t.HintFor == "")
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			s, err := c.cfg.Replicas.Read(bg, t, k)
			replies <- readReply{t: t, set: s, err: err}
		}()
	}
	var merged vclock.Set
	got := make([]Reply, 0, len(targets))
	pending := len(targets)
	dec := Pending
	for dec == Pending {
		select {
		case rep := <-replies:
			pending--
			if rep.err == nil {
				merged = vclock.Sync(merged, rep.set)
				got = append(got, Reply{Target: rep.t, Set: rep.set})
			} else {
				c.log.Debug("replica read failed", "op", "get", "peer", rep.t.Node, "err", rep.err)
			}
			dec = tr.Record(rep.t.HintFor == "", rep.err)
		case <-ctx.Done():
			dec = Failed
		}
	}
	answer := merged
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer bgCancel()
		c.repair(bg, k, merged, got, replies, pending)
	}()
	if dec != Succeeded {
		return nil, tr.Err()
	}
	return &ReadResult{Set: answer, Acks: tr.Acks()}, nil
}

// repair waits up to ReadRepairWait for the replies still outstanding, then
// sends the sync of everything read to each primary that was behind.
func (c *Coordinator) repair(ctx context.Context, k ring.Key, merged vclock.Set, got []Reply, replies <-chan readReply, pending int) {
	wait := time.NewTimer(c.cfg.ReadRepairWait)
	defer wait.Stop()
collect:
	for ; pending > 0; pending-- {
		select {
		case rep := <-replies:
			if rep.err == nil {
				merged = vclock.Sync(merged, rep.set)
				got = append(got, Reply{Target: rep.t, Set: rep.set})
			}
		case <-wait.C:
			break collect
		case <-ctx.Done():
			break collect
		}
	}
	behind := RepairTargets(merged, got)
	if len(behind) == 0 {
		return
	}
	enc, err := merged.MarshalBinary()
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
