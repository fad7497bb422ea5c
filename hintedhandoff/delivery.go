package hintedhandoff

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/internal/driverenv"
	"github.com/quorumkv/quorumkv/internal/lifetime"
	"github.com/quorumkv/quorumkv/internal/pace"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// Hinted handoff errors.
var (
	// ErrFull refuses to store a hint for a target whose hints already
	// take Config.MaxBytesPerTarget. A fallback that refuses does not
	// acknowledge the write; the coordinator tries another.
	ErrFull = errors.New("hints for this target are at their size cap")
	// errTargetDown stops a delivery pass whose destination gossip no
	// longer sees alive.
	errTargetDown = errors.New("not alive")
)

const (
	// hintPage is how many hints one scan of the store hands to a delivery
	// pass before the pass starts a new scan after the last key it read: a
	// scan holds a badger read transaction (and pins its memtables), which
	// should not last the whole drain of a large backlog. Memory does not
	// depend on it: the scan feeds the workers through a channel of
	// Concurrency entries.
	hintPage = 8192
	// hintDropLogEvery spaces the log lines about dropped hints per target:
	// a full target refuses every write, which must not log every time.
	hintDropLogEvery = 10 * time.Second
	// maxMarkedShown bounds the partitions listed in /status.
	maxMarkedShown = 256
)

// Host is what hint delivery needs of its node. Every method may be called
// concurrently and must not block beyond ctx.
type Host interface {
	// Ring returns the current ring.
	Ring() *ring.Ring
	// Alive reports whether gossip sees id alive (this node always is).
	Alive(id ring.NodeID) bool
	// Deliver merges a hint's encoded set for k into node id's record of k
	// (this node's own replica when id is itself) and returns once id
	// acknowledged it.
	Deliver(ctx context.Context, id ring.NodeID, k ring.Key, set []byte) error
	// MarkForRepair asks anti-entropy to exchange partition p ahead of its
	// schedule: hints of p were dropped. It must not block.
	MarkForRepair(p uint32)
}

// Deps are a Driver's collaborators, given at construction. Env's N is
// the partitions' number of primaries (a hint whose target left the ring
// goes to the partition's N primaries); its CallTimeout bounds one
// delivery.
type Deps struct {
	driverenv.Env
	// Store holds the hints.
	Store *store.Store
	// Host is the node.
	Host Host
}

// Driver runs hinted handoff on a node: it enforces the per-target caps
// when a hint is written (Accept, called by the replica), and delivers
// hints to their targets when gossip sees them alive. The policy (backoff,
// caps, routing) is this package's pure part; this is the shell.
//
// One loop goroutine runs rounds (every Interval, or at once when a peer
// comes back); each round starts at most one pass per target, in its own
// goroutine, with Concurrency workers. Start starts them, Close ends them.
type Driver struct {
	cfg  Config
	deps Deps
	host Host
	st   *store.Store
	log  *slog.Logger
	clk  clock.Clock
	now  func() time.Time
	lims Limits
	lim  *pace.Limiter // nil: no rate cap
	wake chan struct{}

	// ctx is the Driver's lifetime, from Start to Close (Background
	// before Start, so that Accept may drop hints).
	ctx  context.Context
	life lifetime.Group

	mu     sync.Mutex // guards sched, rng, marked
	sched  *Scheduler
	rng    *rand.Rand
	marked map[uint32]struct{}

	stored, delivered, failed atomic.Uint64
	droppedBy                 [4]atomic.Uint64 // by DropReason

	mStored, mDelivered, mFailed prometheus.Counter
	mDropped                     *prometheus.CounterVec
}

// New returns the hint delivery of a node; it registers the metrics and
// starts nothing (see Start).
func New(cfg Config, deps Deps) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Store == nil || deps.Host == nil || deps.Self == "" {
		return nil, errors.New("hintedhandoff: Self, Store and Host are required")
	}
	env := deps.Env.WithDefaults()
	d := &Driver{
		cfg:   cfg,
		deps:  deps,
		host:  deps.Host,
		st:    deps.Store,
		log:   env.Logger,
		clk:   env.Clock,
		now:   env.Now,
		ctx:   context.Background(),
		lims:  Limits{MaxBytes: cfg.MaxBytesPerTarget, MaxAge: cfg.MaxAge},
		wake:  make(chan struct{}, 1),
		sched: NewScheduler(Backoff{Base: cfg.BackoffBase, Max: cfg.BackoffMax}, hintDropLogEvery),
		// Jitter only spreads retries; a per-node seed keeps it
		// reproducible and different across nodes.
		rng:    rand.New(rand.NewPCG(xxhash.Sum64String(deps.Self), 0x68696e7473)),
		marked: make(map[uint32]struct{}),
	}
	d.lim = pace.NewLimiter(cfg.MinRatePerSecond, cfg.RatePerSecond, cfg.Concurrency)
	if err := d.registerMetrics(deps.Metrics); err != nil {
		return nil, err
	}
	return d, nil
}

// Start starts delivery; it runs until ctx ends or Close.
func (d *Driver) Start(ctx context.Context) {
	d.ctx = d.life.Start(ctx)
	d.life.Go(d.loop)
}

// Close stops delivery and waits for its goroutines. Idempotent.
func (d *Driver) Close() { d.life.Close() }

// Stored is the replica's HintStored: it counts a hint write that changed
// a stored hint.
func (d *Driver) Stored(string) {
	d.stored.Add(1)
	d.mStored.Inc()
}

// markForRepair asks anti-entropy to repair partition p before others,
// because hints for it were dropped, and records the mark for /status.
func (d *Driver) markForRepair(p uint32) {
	d.mu.Lock()
	d.marked[p] = struct{}{}
	d.mu.Unlock()
	d.host.MarkForRepair(p)
}

// rate is the current delivery rate cap in hints per second (0: none).
func (d *Driver) rate() float64 { return d.lim.Rate() }

// observe feeds one delivery's latency to the pacer, which may change the
// delivery rate.
func (d *Driver) observe(rtt time.Duration) { d.lim.Observe(rtt) }

// PeerAlive is called by gossip (must not block) whenever a peer is
// reported alive: its backoff is cleared and a round starts at once.
func (d *Driver) PeerAlive(id string) {
	d.mu.Lock()
	d.sched.Revive(id)
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Driver) loop() {
	t := d.clk.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		d.round()
		select {
		case <-d.ctx.Done():
			return
		case <-t.C():
		case <-d.wake:
		}
	}
}

// round expires what is past MaxAge, then starts a delivery pass for each
// target that is due.
func (d *Driver) round() {
	if d.ctx.Err() != nil {
		return
	}
	targets := d.st.HintTargets()
	now := d.now()
	for _, t := range targets {
		d.expire(t, now)
	}
	r := d.host.Ring()
	eligible := make(map[string]bool, len(targets))
	for _, t := range targets {
		eligible[t] = d.eligible(r, t)
	}
	d.mu.Lock()
	due := d.sched.Plan(d.clk.Now(), targets, func(t string) bool { return eligible[t] })
	// Each pass's jitter is drawn here, in target order, not when passes
	// end in whatever order they do: a seed then gives the same backoffs.
	jitter := make([]float64, len(due))
	for i := range due {
		jitter[i] = d.rng.Float64()
	}
	d.mu.Unlock()
	for i, t := range due {
		d.life.Go(func() { d.pass(t, jitter[i]) })
	}
}

// eligible reports whether hints for target can be delivered now: it is
// this node, or gossip sees it alive, or it left the ring (its hints then
// go to the partitions' current primaries, whose liveness each delivery
// checks).
func (d *Driver) eligible(r *ring.Ring, target string) bool {
	id := ring.NodeID(target)
	return target == d.deps.Self || !r.Has(id) || d.host.Alive(id)
}

// pass runs one delivery pass over target's hints and reports to the
// scheduler, with jitter for its backoff should it fail.
func (d *Driver) pass(target string, jitter float64) {
	res, err := d.deliverAll(target)
	d.mu.Lock()
	retry := d.sched.Finish(target, d.clk.Now(), res, jitter, err)
	d.mu.Unlock()
	switch res {
	case Failed:
		d.log.Debug("hint delivery failed, backing off", "peer", target, "retry_in", clock.Until(d.clk, retry).Round(time.Millisecond), "err", err)
	case Drained:
		d.log.Debug("hint delivery pass done", "peer", target, "left", d.st.HintStats(target).Count)
	}
}

type hintItem struct {
	key ring.Key
	val []byte // the stored hint: a record envelope
}

func compareStoreKeys(a, b ring.Key) int {
	if c := cmp.Compare(a.Partition, b.Partition); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Hash, b.Hash); c != 0 {
		return c
	}
	return bytes.Compare(a.Key, b.Key)
}

var errPageFull = errors.New("hint page full")

// deliverAll delivers target's hints in key order, one page per store scan.
func (d *Driver) deliverAll(target string) (Result, error) {
	var cursor *ring.Key
	var rejected error
	for {
		more, rej, err := d.deliverPage(target, &cursor)
		if rej != nil {
			rejected = rej
		}
		switch {
		case d.ctx.Err() != nil:
			return Interrupted, d.ctx.Err()
		case err != nil:
			return Failed, err
		case !more && rejected != nil:
			// Everything else went; back off before offering the rejected
			// hints again.
			return Failed, rejected
		case !more:
			return Drained, nil
		}
	}
}

// deliverPage scans target's hints after *cursor and delivers up to
// hintPage of them with Concurrency workers, advancing *cursor. more is
// true when the scan stopped at the page limit. rejected is the last error
// of a hint its destination refused as invalid (the pass goes on past it);
// err is a failure of the target, which ends the pass.
func (d *Driver) deliverPage(target string, cursor **ring.Key) (more bool, rejected, err error) {
	r := d.host.Ring()
	onRing := r.Has(ring.NodeID(target))
	g, gctx := errgroup.WithContext(d.ctx)
	work := make(chan hintItem, d.cfg.Concurrency)
	var (
		rejMu    sync.Mutex
		okN, bad int
	)
	for range d.cfg.Concurrency {
		g.Go(func() error {
			for it := range work {
				err := d.deliverOne(gctx, target, r, onRing, it)
				if err != nil && gctx.Err() != nil {
					return err // the pass is ending: not an attempt of its own
				}
				rejMu.Lock()
				if err == nil {
					okN++
				} else {
					bad++
				}
				rejMu.Unlock()
				if err == nil {
					continue
				}
				d.failed.Add(1)
				d.mFailed.Inc()
				if hintRejected(err) {
					rejMu.Lock()
					rejected = err
					rejMu.Unlock()
					d.log.Warn("hint refused by its destination; kept for a later pass", "peer", target, "err", err)
					continue
				}
				return err
			}
			return nil
		})
	}
	count := 0
	scanErr := d.st.ScanHints(target, func(k ring.Key, val []byte) error {
		if *cursor != nil && compareStoreKeys(k, **cursor) <= 0 {
			return nil
		}
		if count >= hintPage {
			return errPageFull
		}
		it := hintItem{key: ring.Key{Partition: k.Partition, Hash: k.Hash, Key: bytes.Clone(k.Key)}, val: bytes.Clone(val)}
		select {
		case work <- it:
		case <-gctx.Done():
			return gctx.Err()
		}
		*cursor = &it.key
		count++
		return nil
	})
	close(work)
	werr := g.Wait()
	d.mu.Lock()
	d.sched.Delivered(target, okN, bad)
	d.mu.Unlock()
	switch {
	case werr != nil:
		return false, rejected, werr
	case errors.Is(scanErr, errPageFull):
		return true, rejected, nil
	case scanErr != nil:
		return false, rejected, fmt.Errorf("scan hints: %w", scanErr)
	}
	return false, rejected, nil
}

// hintRejected tells a destination's refusal of one hint (which the pass
// skips) from a failure of the destination (which ends the pass).
func hintRejected(err error) bool {
	var re *transport.RemoteError
	if errors.As(err, &re) && re.Code == wire.CodeInvalid {
		return true
	}
	return errors.Is(err, transport.ErrFrameTooLarge)
}

// deliverOne hands one hint to its destinations, and deletes it once every
// one acknowledged, unless it changed meanwhile (then it stays for the
// next pass).
func (d *Driver) deliverOne(ctx context.Context, target string, r *ring.Ring, onRing bool, it hintItem) error {
	if d.lim != nil {
		if err := d.lim.WaitN(ctx, 1); err != nil {
			return err
		}
	}
	if _, _, err := replica.DecodeRecord(it.val); err != nil {
		// Undeliverable: keeping it would block nothing but would never
		// drain. Delete it (if unchanged) and let anti-entropy repair.
		if deleted, derr := d.st.DeleteHintIf(d.ctx, target, it.key, it.val); derr == nil && deleted {
			d.drop(target, DropCorrupt, 1, []uint32{it.key.Partition})
		}
		return nil
	}
	set := replica.SetBytes(it.val)
	k := ring.Key{Partition: it.key.Partition, Hash: it.key.Hash, Key: it.key.Key}
	var prim []string
	if !onRing {
		for _, id := range r.Primaries(k.Partition, min(d.deps.N, r.Len())) {
			prim = append(prim, string(id))
		}
	}
	dests := Destinations(target, onRing, prim)
	if len(dests) == 0 {
		return fmt.Errorf("hint for %s on partition %d: no destination on the ring", target, k.Partition)
	}
	for _, dest := range dests {
		id := ring.NodeID(dest)
		if !d.host.Alive(id) {
			return fmt.Errorf("deliver hint for %s to %s: %w", target, dest, errTargetDown)
		}
		cctx, cancel := context.WithTimeout(ctx, d.deps.CallTimeout)
		start := d.clk.Now()
		err := d.host.Deliver(cctx, id, k, set)
		cancel()
		if err != nil {
			return fmt.Errorf("deliver hint for %s to %s: %w", target, dest, err)
		}
		if dest != d.deps.Self {
			d.observe(clock.Since(d.clk, start))
		}
	}
	d.delivered.Add(1)
	d.mDelivered.Inc()
	if _, err := d.st.DeleteHintIf(d.ctx, target, it.key, it.val); err != nil && d.ctx.Err() == nil {
		// Delivered but kept: it goes again, which merging makes harmless.
		d.log.Warn("delete delivered hint", "peer", target, "err", err)
	}
	return nil
}

// Accept is the replica's check before it writes a hint for target
// (replica.Config.AcceptHint): the per-target byte cap.
func (d *Driver) Accept(target string, k ring.Key) error {
	if d.lims.Admit(d.st.HintStats(target).Bytes) {
		return nil
	}
	d.drop(target, DropBytes, 1, []uint32{k.Partition})
	return fmt.Errorf("hint for %s: %w", target, ErrFull)
}

// expire deletes target's hints past MaxAge (and corrupt ones), when due.
// The store does not tell which partitions the deleted hints were in, so
// every partition target has hints in is marked for repair: marking too
// many costs anti-entropy one root comparison each.
func (d *Driver) expire(target string, now time.Time) {
	st := d.st.HintStats(target)
	d.mu.Lock()
	cutoff, run := d.sched.ExpiryDue(target, d.lims, Held{Count: st.Count, Bytes: st.Bytes, Oldest: st.Oldest}, now)
	d.mu.Unlock()
	if !run {
		return
	}
	seen := map[uint32]bool{}
	var parts []uint32
	err := d.st.ScanHints(target, func(k ring.Key, _ []byte) error {
		if !seen[k.Partition] {
			seen[k.Partition] = true
			parts = append(parts, k.Partition)
		}
		return nil
	})
	if err != nil {
		d.log.Warn("list hinted partitions before expiry", "peer", target, "err", err)
	}
	n, err := d.st.ExpireHints(d.ctx, target, cutoff)
	if err != nil && d.ctx.Err() == nil {
		d.log.Warn("expire hints", "peer", target, "err", err)
	}
	if n > 0 {
		d.drop(target, DropAge, n, parts)
	}
}

// drop counts n dropped hints, marks their partitions for repair and logs
// (at most once per target per hintDropLogEvery).
func (d *Driver) drop(target string, reason DropReason, n int, parts []uint32) {
	// Mark first: once a drop is counted, its repair is already asked for.
	for _, p := range parts {
		d.markForRepair(p)
	}
	d.droppedBy[reason].Add(uint64(n))
	d.mDropped.WithLabelValues(reason.String()).Add(float64(n))
	d.mu.Lock()
	report, since := d.sched.Dropped(target, reason, n, d.clk.Now())
	d.mu.Unlock()
	if report {
		d.log.Warn("hints dropped; their partitions are marked for anti-entropy",
			"peer", target, "reason", reason.String(), "dropped", since, "max_bytes", d.cfg.MaxBytesPerTarget, "max_age", d.cfg.MaxAge)
	}
}
