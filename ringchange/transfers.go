package ringchange

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/api"
	"github.com/quorumkv/quorumkv/internal/pace"
	"github.com/quorumkv/quorumkv/internal/plant"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
)

// Host is the node as the transfer and announce loops see it.
type Host interface {
	// Read calls fn with the node's state under its lock for reading,
	// Write under its lock for writing.
	Read(fn func(State))
	Write(fn func(State))
	// Receive makes this node's copy of partition p complete against
	// peer, one of its committed owners: one anti-entropy exchange,
	// values and tombstones, both ways (antientropy.Driver.Receive).
	Receive(ctx context.Context, p uint32, peer string, t *antientropy.TransferHooks) error
	// Broadcast gossips this node's progress record.
	Broadcast(p ownership.Progress)
	// LoadCursor returns the persisted transfer cursor (nil when none);
	// SaveCursor persists one.
	LoadCursor() ([]byte, error)
	SaveCursor(b []byte) error
}

// transfers is this node's work as a pending owner of the target
// assignment. Its cursor (the partitions received whole, the bytes moved)
// is persisted after each partition, so a restart resumes from it. mu
// guards the fields; the loop is the only writer of target, knownAt,
// pulled and cursor, workers update moving and the meters.
type transfers struct {
	mu       sync.Mutex
	target   ownership.ID
	knownAt  time.Time                  // every live node routes with target since
	pulled   map[uint32]map[string]bool // per gained partition: sources pulled
	cursor   ownership.Cursor
	loaded   bool // the persisted cursor was read
	resumed  int  // partitions done by the cursor at the start
	waiting  []string
	moving   map[uint32]*moving
	meter    ownership.Meter
	lim      *pace.Limiter // nil: no bytes cap
	throttle ownership.Throttle
}

// moving is one partition being pulled from one source.
type moving struct {
	from     string
	diffKeys int // keys that differed, once compared
	keys     uint64
	bytes    uint64
	meter    ownership.Meter
}

// SetThrottle sets the transfers' throttle (ownership.Throttle, checked by
// the caller); until called, ownership.DefaultThrottle.
func (c *Change) SetThrottle(t ownership.Throttle) {
	x := &c.xfer
	x.mu.Lock()
	defer x.mu.Unlock()
	x.throttle = t
	x.lim = pace.NewLimiter(t.MinBytesPerSecond, t.BytesPerSecond, t.BytesPerSecond)
}

// TransfersLocked reports this node's side of the ring change in course
// as the gossiped state tells it.
func (c *Change) TransfersLocked(st State) api.Transfers {
	out := api.Transfers{Node: string(c.self), Committed: ownership.IDOfEncoded(st.Assign()).String()}
	if t := ownership.IDOf(c.targetA); !t.IsZero() {
		mine := st.Progress()[string(c.self)]
		out.Target = t.String()
		out.Gains, out.Received, out.Ready = mine.Total, mine.Done, mine.Ready && mine.Target == t
		for _, id := range st.Live() {
			if p := st.Progress()[id]; p.Target != t {
				out.Unaware = append(out.Unaware, id)
			}
		}
	}
	return out
}

// Transfers reports this node's side of the ring change in course, with
// its transfers' progress, rate and throttle.
func (c *Change) Transfers(h Host) api.Transfers {
	var out api.Transfers
	h.Read(func(st State) { out = c.TransfersLocked(st) })
	x := &c.xfer
	x.mu.Lock()
	defer x.mu.Unlock()
	now := time.Now()
	out.Throttle = api.TransferThrottle{BytesPerSecond: x.lim.Rate(), MaxBytesPerSecond: x.throttle.BytesPerSecond,
		MinBytesPerSecond: x.throttle.MinBytesPerSecond, Partitions: x.throttle.Partitions}
	if out.Target == "" || x.target.String() != out.Target {
		return out
	}
	out.WaitingFor = slices.Clone(x.waiting)
	out.Received = max(out.Received, len(x.cursor.Done))
	out.BytesDone, out.KeysDone, out.Resumed = x.cursor.Bytes, x.cursor.Keys, x.resumed
	out.Rate = x.meter.Rate(now)
	for _, p := range slices.Sorted(mapKeys(x.moving)) {
		m := x.moving[p]
		tp := api.TransferPartition{Partition: p, From: m.from, To: string(c.self), BytesDone: m.bytes, KeysDone: m.keys,
			KeysLeft: max(0, m.diffKeys-int(m.keys)), Rate: m.meter.Rate(now)}
		tp.BytesLeft = ownership.Left(m.bytes, m.keys, tp.KeysLeft)
		tp.ETASeconds = eta(tp.BytesLeft, tp.Rate)
		out.BytesLeft += tp.BytesLeft
		out.Moving = append(out.Moving, tp)
	}
	// Partitions not started yet: the average bytes of a partition so far.
	if done := len(x.cursor.Done); done > 0 && !out.Ready {
		rest := out.Gains - done - len(x.moving)
		out.BytesLeft += uint64(max(0, rest)) * (x.cursor.Bytes / uint64(done))
	}
	out.ETASeconds = eta(out.BytesLeft, out.Rate)
	return out
}

func eta(left uint64, rate float64) *float64 {
	d, ok := ownership.ETA(left, rate)
	if !ok {
		return nil
	}
	s := d.Seconds()
	return &s
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TransferGrace is how long a pending owner waits, once every live node
// sends it the writes of its partitions, before it pulls them (at most the
// default request timeout): writes planned before a coordinator learned of
// the change, and so sent to the old owners only, land meanwhile. A write
// slower than that is still moved by the old owner's handoff after the
// switch.
const TransferGrace = time.Second

// transferEvery is how often the transfer loop looks for work when
// nothing wakes it.
const transferEvery = 100 * time.Millisecond

// TransferLoop receives the partitions this node gains in the target
// assignment, then reports ready (ownership.Progress), which lets the
// cluster commit the target. grace is TransferGrace, or the default
// request timeout when shorter. It returns when ctx ends.
func (c *Change) TransferLoop(ctx context.Context, h Host, grace time.Duration) {
	t := time.NewTicker(transferEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.runTransfers(ctx, h, grace)
	}
}

// AnnounceLoop gossips this node's progress record whenever it changes
// (outside the node's lock: a scripted gossip delivers synchronously). It
// returns when ctx ends.
func (c *Change) AnnounceLoop(ctx context.Context, h Host) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.announce:
		}
		var p ownership.Progress
		var ok bool
		h.Read(func(st State) { p, ok = st.Progress()[string(c.self)] })
		if ok {
			h.Broadcast(p)
		}
	}
}

// transferView is what one round of the loop needs of the state, read
// under the node's lock.
type transferView struct {
	target  ownership.ID
	q       int
	gains   []uint32
	owners  map[uint32][]ring.NodeID // committed owners of each gained partition
	sources map[ring.NodeID]ownership.Source
	allKnow bool
	ready   bool
}

func (c *Change) transferViewLocked(st State) (transferView, bool) {
	if c.targetA == nil {
		return transferView{}, false
	}
	cfg := st.Config()
	v := transferView{target: ownership.IDOf(c.targetA), q: cfg.Partitions, gains: ownership.Gains(c.moves, c.self),
		owners: map[uint32][]ring.NodeID{}, sources: map[ring.NodeID]ownership.Source{}}
	mine := st.Progress()[string(c.self)]
	v.ready = mine.Target == v.target && mine.Ready
	v.allKnow = ownership.AllReport(st.Live(), st.Progress(), func(p ownership.Progress) bool { return p.Target == v.target })
	for _, p := range v.gains {
		owners := c.committedRing.Primaries(p, cfg.Replicas)
		v.owners[p] = owners
		for _, id := range owners {
			if _, ok := v.sources[id]; !ok {
				v.sources[id] = st.Source(id)
			}
		}
	}
	return v, true
}

// startLocked resets x for target, resuming from the persisted cursor
// when it is for the same target. Caller holds x.mu.
func (x *transfers) startLocked(h Host, v transferView, log func(string, ...any)) {
	x.target, x.knownAt, x.waiting = v.target, time.Time{}, nil
	x.pulled, x.moving, x.meter = map[uint32]map[string]bool{}, map[uint32]*moving{}, ownership.Meter{}
	var saved ownership.Cursor
	if !x.loaded {
		x.loaded = true
		if b, err := h.LoadCursor(); err == nil && b != nil {
			if saved, err = ownership.DecodeCursor(b, v.q); err != nil {
				log("transfer: ignoring the persisted cursor", "err", err)
			}
		}
	}
	x.cursor = saved.Resume(v.target, v.gains)
	x.resumed = len(x.cursor.Done)
	if x.resumed > 0 {
		log("transfer: resuming from the persisted cursor", "target", v.target.String(), "done", x.resumed, "bytes", x.cursor.Bytes)
	}
}

// runTransfers is one round of the transfer loop. A pending owner pulls a
// partition only once every live node sends it the partition's writes
// (they all report the target) and grace has passed since, so that no
// write planned before that is still in flight; then it exchanges the
// partition with every committed owner that is up, skipping those removed
// (their copy is rebuilt from the others) and waiting for those down but
// not removed. Each round pulls up to the throttle's Partitions at once.
func (c *Change) runTransfers(ctx context.Context, h Host, grace time.Duration) {
	var v transferView
	var ok bool
	h.Read(func(st State) { v, ok = c.transferViewLocked(st) })
	x := &c.xfer
	x.mu.Lock()
	if !ok {
		x.target = ownership.ID{}
		x.mu.Unlock()
		return
	}
	if x.target != v.target {
		x.startLocked(h, v, func(msg string, args ...any) { c.log.Info(msg, args...) })
	}
	if v.ready || !v.allKnow {
		if !v.allKnow {
			x.knownAt = time.Time{}
		}
		x.mu.Unlock()
		return
	}
	now := time.Now()
	if x.knownAt.IsZero() {
		x.knownAt = now
	}
	if now.Sub(x.knownAt) < grace {
		x.mu.Unlock()
		return
	}
	x.waiting = x.waiting[:0]
	for id, src := range v.sources {
		if src == ownership.SourceDown {
			x.waiting = append(x.waiting, string(id))
		}
	}
	slices.Sort(x.waiting)
	// This round's partitions: the first ones not received whole that
	// have an exchange to run or would complete, at most Partitions of
	// them, so that each round sees who is up anew.
	var todo []uint32
	for _, p := range v.gains {
		if len(todo) == max(1, x.throttle.Partitions) {
			break
		}
		pull, blocked := ownership.Sources(v.owners[p], c.self, func(id ring.NodeID) ownership.Source { return v.sources[id] })
		if !x.cursor.Has(p) && (!blocked || slices.ContainsFunc(pull, func(id ring.NodeID) bool { return !x.pulled[p][string(id)] })) {
			todo = append(todo, p)
		}
	}
	x.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range todo {
		wg.Go(func() { c.pullPartition(ctx, h, v, p) })
	}
	wg.Wait()
	x.mu.Lock()
	done := len(x.cursor.Done)
	x.mu.Unlock()
	h.Write(func(st State) { c.setTransferProgressLocked(st, v.target, done, len(v.gains)) })
}

// pullPartition exchanges partition p with each of its committed owners
// that is up and not pulled yet; once it holds p whole (no owner blocks
// it, every exchange succeeded) it records p in the cursor and persists it.
func (c *Change) pullPartition(ctx context.Context, h Host, v transferView, p uint32) {
	x := &c.xfer
	pull, blocked := ownership.Sources(v.owners[p], c.self, func(id ring.NodeID) ownership.Source { return v.sources[id] })
	whole := !blocked
	for _, src := range pull {
		x.mu.Lock()
		if x.pulled[p] == nil {
			x.pulled[p] = map[string]bool{}
		}
		skip := x.pulled[p][string(src)]
		if !skip && plant.On(plant.HandoffPushesNothing) { // plant: HandoffPushesNothing
			x.pulled[p][string(src)], skip = true, true
		}
		m := &moving{from: string(src)}
		if !skip {
			x.moving[p] = m
		}
		x.mu.Unlock()
		if skip {
			continue
		}
		err := h.Receive(ctx, p, string(src), c.hooks(m))
		x.mu.Lock()
		delete(x.moving, p)
		if err == nil {
			x.pulled[p][string(src)] = true
		}
		x.mu.Unlock()
		if err != nil {
			c.log.Debug("transfer: exchange with an owner failed; retrying", "partition", p, "from", src, "err", err)
			whole = false
		}
	}
	if !whole {
		return
	}
	x.mu.Lock()
	if x.target != v.target {
		x.mu.Unlock()
		return
	}
	x.cursor.MarkDone(p)
	b := x.cursor.Encode()
	x.mu.Unlock()
	if err := h.SaveCursor(b); err != nil {
		c.log.Warn("transfer: persist the cursor", "err", err)
	}
}

// hooks follows one exchange of a transfer into m and the totals, and
// throttles it: each batch's bytes are paid to the limiter (which adapts to
// the batches' latency) before the next one.
func (c *Change) hooks(m *moving) *antientropy.TransferHooks {
	x := &c.xfer
	return &antientropy.TransferHooks{
		Diff: func(keys int) {
			x.mu.Lock()
			m.diffKeys = keys
			x.mu.Unlock()
		},
		Batch: func(ctx context.Context, keys, bytes int, took time.Duration) error {
			now := time.Now()
			x.mu.Lock()
			m.keys += uint64(keys)
			m.bytes += uint64(bytes)
			m.meter.Add(now, bytes)
			x.meter.Add(now, bytes)
			x.cursor.Keys += uint64(keys)
			x.cursor.Bytes += uint64(bytes)
			lim := x.lim
			x.mu.Unlock()
			c.metrics.add(keys, bytes)
			lim.Observe(took)
			return waitBytes(ctx, lim, bytes)
		},
	}
}

// waitBytes pays n bytes to lim, in pieces of at most its burst.
func waitBytes(ctx context.Context, lim *pace.Limiter, n int) error {
	for b := lim.Burst(); n > 0 && b > 0; n -= b {
		if err := lim.WaitN(ctx, min(n, b)); err != nil {
			return err
		}
	}
	return nil
}

// setTransferProgressLocked records in this node's progress how many of
// the partitions it gains in target it holds whole; all of them make it
// ready, and the ring is re-evaluated (this may commit the target).
func (c *Change) setTransferProgressLocked(st State, target ownership.ID, done, total int) {
	p := st.Progress()[string(c.self)]
	if p.Target != target {
		return
	}
	ready := done == total
	if p.Done == done && p.Total == total && p.Ready == ready {
		return
	}
	if ready && !p.Ready {
		c.log.Info("ring change: every partition this node gains is received; ready", "target", target.String(), "partitions", total)
	}
	p.Done, p.Total, p.Ready = done, total, ready
	p.Seq++
	c.setOwnProgressLocked(st, p)
	if err := c.RebuildLocked(st); err != nil {
		c.log.Error("rebuild ring", "err", err)
	}
}
