package node

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/quorumkv/quorumkv/hintedhandoff"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
)

// Hinted handoff errors.
var (
	// ErrHintsFull refuses to store a hint for a target whose hints already
	// take HintConfig.MaxBytesPerTarget. A fallback that refuses does not
	// acknowledge the write; the coordinator tries another.
	ErrHintsFull = errors.New("hints for this target are at their size cap")
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

// HintsStatus is the hinted-handoff part of /status.
type HintsStatus struct {
	// Stored, Delivered and Failed count, since the node started, hint
	// writes that changed a stored hint, hints acknowledged by their
	// destination, and delivery attempts that failed.
	Stored    uint64 `json:"stored"`
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	// Dropped counts hints refused or deleted by the caps, by reason
	// (bytes, age, corrupt).
	Dropped map[string]uint64 `json:"dropped"`
	// Targets has one entry per node this node holds hints for or has
	// delivered to, sorted by id.
	Targets []HintTargetStatus `json:"targets"`
	// RatePerSecond is the current cap on hints delivered per second (0:
	// none); it adapts between HintConfig.MinRatePerSecond and
	// RatePerSecond when both are set.
	RatePerSecond float64 `json:"rate_per_second"`
	// RepairMarked lists (at most 256 of) the partitions marked for
	// anti-entropy since this node started because hints for them were
	// dropped, and MarkedCount how many there are. The list is cumulative;
	// anti-entropy's own status says which repairs are still pending.
	RepairMarked []uint32 `json:"repair_marked,omitempty"`
	MarkedCount  int      `json:"repair_marked_count"`
}

// HintTargetStatus is one target of hinted handoff in /status.
type HintTargetStatus struct {
	Target string `json:"target"`
	Alive  bool   `json:"alive"` // as gossip sees it
	OnRing bool   `json:"on_ring"`
	// Pending and Bytes are the hints held now and their size in the store.
	Pending int   `json:"pending"`
	Bytes   int64 `json:"bytes"`
	// OldestAgeSeconds is the age of the oldest hint (0 when none).
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	// Delivering is true while a delivery pass runs.
	Delivering bool `json:"delivering"`
	// Failures counts consecutive failed passes; RetryInSeconds is the
	// backoff left before the next (0: none); LastError is the last
	// failure's cause.
	Failures       int     `json:"failures"`
	RetryInSeconds float64 `json:"retry_in_seconds"`
	LastError      string  `json:"last_error,omitempty"`
	// Delivered, Failed and Dropped count since the node started.
	Delivered uint64            `json:"delivered"`
	Failed    uint64            `json:"failed"`
	Dropped   map[string]uint64 `json:"dropped,omitempty"`
}

// hintManager runs hinted handoff on a node: it enforces the per-target
// caps when a hint is written (acceptHint, called by the replica), and
// delivers hints to their targets when gossip sees them alive. The policy
// (backoff, caps, routing) is package hintedhandoff's; this is the shell.
//
// One loop goroutine runs rounds (every Interval, or at once when a peer
// comes back); each round starts at most one pass per target, in its own
// goroutine, with Concurrency workers. All of them end with the node's
// lifetime context.
type hintManager struct {
	n    *Node
	cfg  HintConfig
	lims hintedhandoff.Limits
	lim  *pacedLimiter // nil: no rate cap
	wake chan struct{}

	// repair asks anti-entropy to repair a partition first; a no-op unless
	// the anti-entropy engine sets it (see Node.markForRepair).
	repair func(p uint32)

	mu     sync.Mutex // guards sched, rng, marked
	sched  *hintedhandoff.Scheduler
	rng    *rand.Rand
	marked map[uint32]struct{}

	stored, delivered, failed atomic.Uint64
	droppedBy                 [4]atomic.Uint64 // by hintedhandoff.DropReason

	mStored, mDelivered, mFailed prometheus.Counter
	mDropped                     *prometheus.CounterVec
}

func newHintManager(n *Node) (*hintManager, error) {
	c := n.cfg.Hints
	h := &hintManager{
		n:      n,
		cfg:    c,
		lims:   hintedhandoff.Limits{MaxBytes: c.MaxBytesPerTarget, MaxAge: c.MaxAge},
		wake:   make(chan struct{}, 1),
		repair: func(uint32) {},
		sched:  hintedhandoff.NewScheduler(hintedhandoff.Backoff{Base: c.BackoffBase, Max: c.BackoffMax}, hintDropLogEvery),
		// Jitter only spreads retries; a per-node seed keeps it
		// reproducible and different across nodes.
		rng:    rand.New(rand.NewPCG(xxhash.Sum64String(n.cfg.NodeID), 0x68696e7473)),
		marked: make(map[uint32]struct{}),
		mStored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumkv_hints_stored_total", Help: "Hint writes (new or merged) stored by this node for down primaries.",
		}),
		mDelivered: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumkv_hints_delivered_total", Help: "Hints acknowledged by their target (then deleted unless rewritten meanwhile).",
		}),
		mFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumkv_hints_failed_total", Help: "Hint delivery attempts that failed (the hint is kept and retried).",
		}),
		mDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumkv_hints_dropped_total", Help: "Hints refused or deleted by the per-target caps (bytes, age) or found corrupt; their partitions are marked for anti-entropy.",
		}, []string{"reason"}),
	}
	h.lim = newPacedLimiter(c.MinRatePerSecond, c.RatePerSecond, c.Concurrency)
	for _, r := range hintedhandoff.DropReasons {
		h.mDropped.WithLabelValues(r.String()) // export zeros
	}
	rateGauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "quorumkv_hints_delivery_rate", Help: "Current cap on hints delivered per second by this node (adaptive between the configured floor and cap; 0: no cap).",
	}, h.rate)
	for _, c := range []prometheus.Collector{h.mStored, h.mDelivered, h.mFailed, h.mDropped, hintCollector{h}, rateGauge} {
		if err := n.metrics.reg.Register(c); err != nil {
			return nil, fmt.Errorf("register hint metrics: %w", err)
		}
	}
	return h, nil
}

// noteStored is the replica's HintStored: it counts a hint write that
// changed a stored hint.
func (h *hintManager) noteStored(string) {
	h.stored.Add(1)
	h.mStored.Inc()
}

// markForRepair asks anti-entropy to repair partition p before others,
// because hints for it were dropped. It records the mark for /status and
// calls the hint manager's repair hook, which the anti-entropy engine sets
// (n.hints.repair = a.markPartition, in newAntiEntropy).
func (n *Node) markForRepair(p uint32) {
	h := n.hints
	h.mu.Lock()
	h.marked[p] = struct{}{}
	h.mu.Unlock()
	h.repair(p)
}

func (h *hintManager) start() { h.n.goFunc(h.loop) }

// rate is the current delivery rate cap in hints per second (0: none).
func (h *hintManager) rate() float64 { return h.lim.Rate() }

// observe feeds one delivery's latency to the pacer, which may change the
// delivery rate.
func (h *hintManager) observe(rtt time.Duration) { h.lim.Observe(rtt) }

// peerAlive is called by gossip (must not block) whenever a peer is
// reported alive: its backoff is cleared and a round starts at once.
func (h *hintManager) peerAlive(id string) {
	h.mu.Lock()
	h.sched.Revive(id)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *hintManager) loop() {
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		h.round()
		select {
		case <-h.n.ctx.Done():
			return
		case <-t.C:
		case <-h.wake:
		}
	}
}

// round expires what is past MaxAge, then starts a delivery pass for each
// target that is due.
func (h *hintManager) round() {
	if h.n.ctx.Err() != nil {
		return
	}
	targets := h.n.st.HintTargets()
	now := h.n.now()
	for _, t := range targets {
		h.expire(t, now)
	}
	r := h.n.Ring()
	eligible := make(map[string]bool, len(targets))
	for _, t := range targets {
		eligible[t] = h.eligible(r, t)
	}
	h.mu.Lock()
	due := h.sched.Plan(time.Now(), targets, func(t string) bool { return eligible[t] })
	h.mu.Unlock()
	for _, t := range due {
		h.n.goFunc(func() { h.pass(t) })
	}
}

// eligible reports whether hints for target can be delivered now: it is
// this node, or gossip sees it alive, or it left the ring (its hints then
// go to the partitions' current primaries, whose liveness each delivery
// checks).
func (h *hintManager) eligible(r *ring.Ring, target string) bool {
	id := ring.NodeID(target)
	return target == h.n.cfg.NodeID || !r.Has(id) || h.n.Alive(id)
}

// pass runs one delivery pass over target's hints and reports to the
// scheduler.
func (h *hintManager) pass(target string) {
	res, err := h.deliverAll(target)
	h.mu.Lock()
	retry := h.sched.Finish(target, time.Now(), res, h.rng.Float64(), err)
	h.mu.Unlock()
	switch res {
	case hintedhandoff.Failed:
		h.n.log.Debug("hint delivery failed, backing off", "peer", target, "retry_in", time.Until(retry).Round(time.Millisecond), "err", err)
	case hintedhandoff.Drained:
		h.n.log.Debug("hint delivery pass done", "peer", target, "left", h.n.st.HintStats(target).Count)
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
func (h *hintManager) deliverAll(target string) (hintedhandoff.Result, error) {
	var cursor *ring.Key
	var rejected error
	for {
		more, rej, err := h.deliverPage(target, &cursor)
		if rej != nil {
			rejected = rej
		}
		switch {
		case h.n.ctx.Err() != nil:
			return hintedhandoff.Interrupted, h.n.ctx.Err()
		case err != nil:
			return hintedhandoff.Failed, err
		case !more && rejected != nil:
			// Everything else went; back off before offering the rejected
			// hints again.
			return hintedhandoff.Failed, rejected
		case !more:
			return hintedhandoff.Drained, nil
		}
	}
}

// deliverPage scans target's hints after *cursor and delivers up to
// hintPage of them with Concurrency workers, advancing *cursor. more is
// true when the scan stopped at the page limit. rejected is the last error
// of a hint its destination refused as invalid (the pass goes on past it);
// err is a failure of the target, which ends the pass.
func (h *hintManager) deliverPage(target string, cursor **ring.Key) (more bool, rejected, err error) {
	r := h.n.Ring()
	onRing := r.Has(ring.NodeID(target))
	g, gctx := errgroup.WithContext(h.n.ctx)
	work := make(chan hintItem, h.cfg.Concurrency)
	var (
		rejMu    sync.Mutex
		okN, bad int
	)
	for range h.cfg.Concurrency {
		g.Go(func() error {
			for it := range work {
				err := h.deliverOne(gctx, target, r, onRing, it)
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
				h.failed.Add(1)
				h.mFailed.Inc()
				if hintRejected(err) {
					rejMu.Lock()
					rejected = err
					rejMu.Unlock()
					h.n.log.Warn("hint refused by its destination; kept for a later pass", "peer", target, "err", err)
					continue
				}
				return err
			}
			return nil
		})
	}
	count := 0
	scanErr := h.n.st.ScanHints(target, func(k ring.Key, val []byte) error {
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
	h.mu.Lock()
	h.sched.Delivered(target, okN, bad)
	h.mu.Unlock()
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
func (h *hintManager) deliverOne(ctx context.Context, target string, r *ring.Ring, onRing bool, it hintItem) error {
	if h.lim != nil {
		if err := h.lim.WaitN(ctx, 1); err != nil {
			return err
		}
	}
	if _, _, err := replica.DecodeRecord(it.val); err != nil {
		// Undeliverable: keeping it would block nothing but would never
		// drain. Delete it (if unchanged) and let anti-entropy repair.
		if deleted, derr := h.n.st.DeleteHintIf(h.n.ctx, target, it.key, it.val); derr == nil && deleted {
			h.drop(target, hintedhandoff.DropCorrupt, 1, []uint32{it.key.Partition})
		}
		return nil
	}
	set := replica.SetBytes(it.val)
	k := ring.Key{Partition: it.key.Partition, Hash: it.key.Hash, Key: it.key.Key}
	var prim []string
	if !onRing {
		for _, id := range r.Primaries(k.Partition, min(h.n.cfg.Defaults.N, r.Len())) {
			prim = append(prim, string(id))
		}
	}
	dests := hintedhandoff.Destinations(target, onRing, prim)
	if len(dests) == 0 {
		return fmt.Errorf("hint for %s on partition %d: no destination on the ring", target, k.Partition)
	}
	for _, d := range dests {
		id := ring.NodeID(d)
		if !h.n.Alive(id) {
			return fmt.Errorf("deliver hint for %s to %s: %w", target, d, errTargetDown)
		}
		cctx, cancel := context.WithTimeout(ctx, h.n.cfg.Defaults.Timeout)
		start := time.Now()
		_, err := replicas{h.n}.Merge(cctx, ring.Target{Node: id}, k, set, false)
		cancel()
		if err != nil {
			return fmt.Errorf("deliver hint for %s to %s: %w", target, d, err)
		}
		if d != h.n.cfg.NodeID {
			h.observe(time.Since(start))
		}
	}
	h.delivered.Add(1)
	h.mDelivered.Inc()
	if _, err := h.n.st.DeleteHintIf(h.n.ctx, target, it.key, it.val); err != nil && h.n.ctx.Err() == nil {
		// Delivered but kept: it goes again, which merging makes harmless.
		h.n.log.Warn("delete delivered hint", "peer", target, "err", err)
	}
	return nil
}

// acceptHint is the replica's check before it writes a hint for target:
// the per-target byte cap.
func (h *hintManager) acceptHint(target string, k ring.Key) error {
	if h.lims.Admit(h.n.st.HintStats(target).Bytes) {
		return nil
	}
	h.drop(target, hintedhandoff.DropBytes, 1, []uint32{k.Partition})
	return fmt.Errorf("hint for %s: %w", target, ErrHintsFull)
}

// expire deletes target's hints past MaxAge (and corrupt ones), when due.
// The store does not tell which partitions the deleted hints were in, so
// every partition target has hints in is marked for repair: marking too
// many costs anti-entropy one root comparison each.
func (h *hintManager) expire(target string, now time.Time) {
	st := h.n.st.HintStats(target)
	h.mu.Lock()
	cutoff, run := h.sched.ExpiryDue(target, h.lims, hintedhandoff.Held{Count: st.Count, Bytes: st.Bytes, Oldest: st.Oldest}, now)
	h.mu.Unlock()
	if !run {
		return
	}
	seen := map[uint32]bool{}
	var parts []uint32
	err := h.n.st.ScanHints(target, func(k ring.Key, _ []byte) error {
		if !seen[k.Partition] {
			seen[k.Partition] = true
			parts = append(parts, k.Partition)
		}
		return nil
	})
	if err != nil {
		h.n.log.Warn("list hinted partitions before expiry", "peer", target, "err", err)
	}
	n, err := h.n.st.ExpireHints(h.n.ctx, target, cutoff)
	if err != nil && h.n.ctx.Err() == nil {
		h.n.log.Warn("expire hints", "peer", target, "err", err)
	}
	if n > 0 {
		h.drop(target, hintedhandoff.DropAge, n, parts)
	}
}

// drop counts n dropped hints, marks their partitions for repair and logs
// (at most once per target per hintDropLogEvery).
func (h *hintManager) drop(target string, reason hintedhandoff.DropReason, n int, parts []uint32) {
	// Mark first: once a drop is counted, its repair is already asked for.
	for _, p := range parts {
		h.n.markForRepair(p)
	}
	h.droppedBy[reason].Add(uint64(n))
	h.mDropped.WithLabelValues(reason.String()).Add(float64(n))
	h.mu.Lock()
	report, since := h.sched.Dropped(target, reason, n, time.Now())
	h.mu.Unlock()
	if report {
		h.n.log.Warn("hints dropped; their partitions are marked for anti-entropy",
			"peer", target, "reason", reason.String(), "dropped", since, "max_bytes", h.cfg.MaxBytesPerTarget, "max_age", h.cfg.MaxAge)
	}
}

func (h *hintManager) status() HintsStatus {
	out := HintsStatus{Stored: h.stored.Load(), Delivered: h.delivered.Load(), Failed: h.failed.Load(),
		Dropped: map[string]uint64{}, RatePerSecond: h.rate()}
	for _, r := range hintedhandoff.DropReasons {
		out.Dropped[r.String()] = h.droppedBy[r].Load()
	}
	held := h.n.st.HintTargets()
	r := h.n.Ring()
	now, mono := h.n.now(), time.Now()
	h.mu.Lock()
	targets := slices.Compact(slices.Sorted(slices.Values(append(held, h.sched.Targets()...))))
	states := make([]hintedhandoff.TargetState, len(targets))
	for i, t := range targets {
		states[i] = h.sched.State(t, mono)
	}
	for p := range h.marked {
		out.RepairMarked = append(out.RepairMarked, p)
	}
	h.mu.Unlock()
	slices.Sort(out.RepairMarked)
	out.MarkedCount = len(out.RepairMarked)
	if len(out.RepairMarked) > maxMarkedShown {
		out.RepairMarked = out.RepairMarked[:maxMarkedShown]
	}
	out.Targets = make([]HintTargetStatus, 0, len(targets))
	for i, t := range targets {
		st, s := h.n.st.HintStats(t), states[i]
		ts := HintTargetStatus{Target: t, Alive: h.n.Alive(ring.NodeID(t)), OnRing: r.Has(ring.NodeID(t)),
			Pending: st.Count, Bytes: st.Bytes, Delivering: s.Running, Failures: s.Failures,
			RetryInSeconds: s.RetryIn.Seconds(), LastError: s.LastError,
			Delivered: s.Delivered, Failed: s.Failed, Dropped: s.Dropped}
		if !st.Oldest.IsZero() {
			ts.OldestAgeSeconds = max(0, now.Sub(st.Oldest).Seconds())
		}
		out.Targets = append(out.Targets, ts)
	}
	return out
}

// hintCollector exports the hints held per target at scrape time, from the
// store's in-memory index.
type hintCollector struct{ h *hintManager }

var (
	descHintsPending = prometheus.NewDesc("quorumkv_hints_pending",
		"Hints this node holds for a target, not yet delivered.", []string{"target"}, nil)
	descHintsPendingBytes = prometheus.NewDesc("quorumkv_hints_pending_bytes",
		"Bytes of the hints this node holds for a target (keys and headers included).", []string{"target"}, nil)
	descHintsOldest = prometheus.NewDesc("quorumkv_hints_oldest_age_seconds",
		"Age of the oldest hint this node holds for a target.", []string{"target"}, nil)
)

func (c hintCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descHintsPending
	ch <- descHintsPendingBytes
	ch <- descHintsOldest
}

func (c hintCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.n.st
	now := c.h.n.now()
	for _, t := range st.HintTargets() {
		s := st.HintStats(t)
		ch <- prometheus.MustNewConstMetric(descHintsPending, prometheus.GaugeValue, float64(s.Count), t)
		ch <- prometheus.MustNewConstMetric(descHintsPendingBytes, prometheus.GaugeValue, float64(s.Bytes), t)
		age := 0.0
		if !s.Oldest.IsZero() {
			age = max(0, now.Sub(s.Oldest).Seconds())
		}
		ch <- prometheus.MustNewConstMetric(descHintsOldest, prometheus.GaugeValue, age, t)
	}
}
