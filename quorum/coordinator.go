package quorum

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/internal/quorumhook"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/vclock"
)

// Membership is the coordinator's view of the cluster: the current ring and
// who is alive. Both calls must be cheap and must not block.
type Membership interface {
	Ring() *ring.Ring
	Alive(id ring.NodeID) bool
}

// PendingMembership is a Membership whose cluster may be moving
// partitions to new owners (package ownership). During a change a write
// also goes to the owners of the other assignments in use that are not
// its targets (the pending owners), and must reach W of each of those
// sets as well as W of the current owners (JointTracker): so a read at R
// meets it whichever assignment its coordinator reads with.
type PendingMembership interface {
	Membership
	// JointOwners returns, for partition p and a request at replication
	// n, the owner lists of the other assignments in use (nil when no
	// change is in course). It must be cheap and must not block.
	JointOwners(p uint32, n int) [][]ring.NodeID
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
	// ReadQuorumOnly makes a read ask max(R, PR) replicas, this node's own
	// first when it is a primary, and the others only when one of those
	// fails or none answered for readHedge: a read of replicas that agree
	// then costs R-1 replica calls instead of N-1. Read repair then
	// reaches only the replicas read; anti-entropy brings the others up
	// to date. R+W>N still makes every acknowledged write part of the
	// answer. Default false: every read asks all N.
	ReadQuorumOnly bool
	// MaxForwardHops bounds how many times a write may be forwarded when
	// nodes disagree about the ring. Default 2.
	MaxForwardHops int
	// Now stamps values with the coordinator's time (display and LWW only).
	// nil means time.Now.
	Now func() time.Time
	// OnReadRepair, if set, is called once for each repair sent. It must
	// not block.
	OnReadRepair func(t ring.Target, err error)
	// Siblings caps the set a read merges from its replies, as replica
	// merges are capped (siblings.Policy.Merge; zero: its defaults), so a
	// read of replicas that diverged past the caps answers and repairs
	// with a set that can be encoded. Trimmed, if set, learns of each
	// read whose merge dropped siblings (once, after its repair wait),
	// hintFor "" (replica.Config.Trimmed).
	Siblings siblings.Policy
	Trimmed  func(k ring.Key, hintFor string, kept int, dropped []vclock.Sibling)
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
	// TTL, if positive, gives the value a deadline of TTL from now by the
	// clock of the node that first takes the request (Put stamps
	// Value.Expires with it before any forward, so every node agrees on
	// it). A Value.Expires set by the caller (an absolute deadline) is
	// kept when TTL is 0.
	TTL time.Duration
	// SupersedeLocal widens Context to everything the coordinating
	// replica holds for the key, so the write replaces every sibling stored
	// there (a plain Redis SET). Writes that race through other coordinators
	// still become siblings: each supersedes only what its own coordinator
	// has seen. It needs Replicas to implement LocalSuperseder.
	SupersedeLocal bool
}

// AsyncReplicas is a Replicas that can start a call to a replica and
// return at once (node's, over the TCP transport): the coordinator then
// spends no goroutine per replica call (goMerge, goRead). done gets what
// Merge or Read would have returned, exactly once, possibly before the
// call returns, from a goroutine that must not be blocked: it may only
// hand the result on.
type AsyncReplicas interface {
	Replicas
	MergeAsync(ctx context.Context, t ring.Target, k ring.Key, set []byte, durable bool, done func(synced bool, err error))
	ReadAsync(ctx context.Context, t ring.Target, k ring.Key, done func(vclock.Set, error))
}

// ContextReader is implemented by Replicas that can read only the context
// of a replica's copy, for an overwrite's read (Overwrite), which uses nothing
// else: the replica answers without its values and without decoding its
// siblings, and the coordinator decodes a context, not a set.
type ContextReader interface {
	// ReadContextAsync is ReadAsync whose set may come without its
	// siblings; its Context is the replica's whole context, exactly as
	// ReadAsync would have returned it.
	ReadContextAsync(ctx context.Context, t ring.Target, k ring.Key, done func(vclock.Set, error))
	// PeerTooOld reports whether err, given to ReadContextAsync's done,
	// says t runs a release that cannot answer it: the coordinator then
	// reads t with ReadAsync instead, and counts no failure.
	PeerTooOld(err error) bool
}

// QueuedMinter is implemented by Replicas whose coordinator-side mint can
// return as soon as the write is queued in the local store, before its
// group commit: the coordinator then sends the minted set to the other
// replicas while its own copy commits, and counts its own ack only once
// commit returned nil. So a write waits for one local commit (with
// --sync, one fsync) overlapped with the replicas' instead of two in
// sequence (issue 16). commit must be called exactly once when err is nil.
type QueuedMinter interface {
	// MintQueued is Mint, or with supersede MintSupersedingLocal,
	// returning before the local write committed.
	MintQueued(ctx context.Context, t ring.Target, k ring.Key, context vclock.Vector, v vclock.Value, durable, supersede bool) (m Minted, commit func() error, err error)
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
	// writeChans and readChans are the reply channels of requests that
	// answered, kept for the next ones (chanPool).
	writeChans chanPool[writeReply]
	readChans  chanPool[readReply]
	// alarms are stopped request timers kept for the next requests.
	alarms sync.Pool
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

// Node's tests wait for the background replica calls through package
// quorumhook, not through an exported method.
func init() {
	quorumhook.Wait = func(c any) { c.(*Coordinator).wg.Wait() }
}

// Resolve validates p after filling defaults, against ring r.
func (c *Coordinator) Resolve(r *ring.Ring, p Params) (Params, error) {
	p = p.WithDefaults(c.cfg.Defaults)
	return p, p.Validate(r.Len(), c.cfg.MaxN)
}

// callsSlack is how long a request's replica calls outlive its deadline.
const callsSlack = time.Millisecond

// The replica calls of a request whose context has a deadline run in a
// lazyCtx: not cancelled when the request returns, so late answers still
// land, and ending callsSlack after the request. A call then never times
// out at the very instant its request does, when which of the two the
// coordinator hears first would be up to the scheduler: a request that
// times out reports the failures seen before its deadline, every time (a
// testing/synctest bubble replays it exactly).
