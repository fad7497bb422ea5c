package antientropy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/internal/aehook"
	"github.com/quorumkv/quorumkv/internal/driverenv"
	"github.com/quorumkv/quorumkv/internal/lifetime"
	"github.com/quorumkv/quorumkv/internal/pace"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// This file and the other driver*.go, trees.go and status.go files are the
// shell of anti-entropy: goroutines, the store through package replica,
// RPCs through the Host. tree.go, exchange.go, scheduler.go, repair.go,
// wire.go and snapshot.go are the pure core they drive.

// Host is what the anti-entropy driver needs of its node. Every method may
// be called concurrently. Ring and Alive must be cheap and must not block;
// the driver calls Alive only without its own lock held, so a Host may
// call RingChanged and PeerState while holding locks Alive takes.
type Host interface {
	// Ring returns the current ring.
	Ring() *ring.Ring
	// Alive reports whether gossip sees id alive or suspect (this node
	// always is).
	Alive(id ring.NodeID) bool
	// Call sends one RPC to the node with id peer and returns its reply
	// body, or the transport's error (a refusal as *transport.RemoteError).
	Call(ctx context.Context, peer string, m transport.Method, body []byte) ([]byte, error)
}

// Deps are a Driver's collaborators, given at construction. Env's N is
// the partitions' number of primaries: a node exchanges the partitions it
// is a primary of, with their other primaries; its CallTimeout bounds one
// RPC (at least one second is used).
type Deps struct {
	driverenv.Env
	// MaxKeySize is the longest key a peer may name (node.Config).
	MaxKeySize int
	// Host is the node.
	Host Host
	// Replica is the local replica: exchanges read and merge through it,
	// the reaper confirms and deletes through it, a wipe drops it.
	Replica *replica.Replica
	// Gate is the replica's gate: the quarantine closes it.
	Gate *replica.Gate
	// Trees are the replica's Merkle trees, kept current by its Observer
	// (Trees.Observe); New fills them from the replica.
	Trees *Trees
	// Store holds the heartbeat and the exclusion ledger (meta).
	Store *store.Store
}

// Driver runs Merkle-tree anti-entropy on a node:
//
//   - a tree per partition (Trees), kept current by the replica's Observer
//     on every record write and built from one store scan in New;
//   - one loop goroutine that runs the exchanges the Scheduler picks, one
//     at a time (driver_exchange.go, the repair decisions in repair.go),
//     the handoff of partitions lost in a ring change (driver_handoff.go)
//     and the quarantine and wipe work (driver_stale.go); exchanges
//     requested on demand (Repair) take the same lock;
//   - a reaper goroutine for tombstones (driver_reap.go) and a heartbeat
//     goroutine (driver_stale.go);
//   - the peer side of every anti-entropy RPC (Serve).
//
// Start starts the goroutines and Close ends them. Safe for concurrent use.
type Driver struct {
	cfg         Config
	self        string
	nrep        int
	callTimeout time.Duration
	maxKeySize  int
	host        Host
	rep         *replica.Replica
	st          *store.Store
	log         *slog.Logger
	clk         clock.Clock
	now         func() time.Time
	// onExchange, set by node's tests through aehook.OnExchange, is called
	// at the start (true) and end (false) of every exchange.
	onExchange atomic.Pointer[func(start bool)]

	trees *Trees
	gate  *replica.Gate
	lim   *pace.Limiter // nil: no cap on keys repaired per second
	kick  chan struct{}

	// ctx is the driver's lifetime, from Start to Close (Background
	// before Start).
	ctx  context.Context
	life lifetime.Group

	// exMu serializes this node's exchanges, handoffs and wipes; the
	// exchanges of ring-change transfers (Receive) share it among
	// themselves (each on its own partition).
	exMu exLock

	// mu guards the fields below. Lock order: the Host's locks before mu
	// (the node calls RingChanged and PeerState with its own lock held),
	// so nothing may call Host.Alive while holding mu.
	mu               sync.Mutex
	sched            *Scheduler[string]
	parts            map[uint32]*ExchangeStatus // last exchange per partition
	running          *RunningExchange
	deadSince        map[string]time.Time // peers not alive, since when (our clock)
	excluded         map[string]int64     // exclusion ledger: id -> Unix ns
	pendingClear     map[string]int64     // peers to tell we dropped our data
	quarantined      bool
	quarantineReason string
	wipeRequested    string // non-empty: the loop must wipe, for this reason
	handoff          map[uint32]bool
	lastReap         ReapStatus
	wipes            int
	built            int // keys in the trees after the start-up build
	buildTime        time.Duration

	excludedN atomic.Int32 // len(excluded), for the lock-free fast path

	stats aeCounters
	m     aeMetrics
}

// Anti-entropy timing constants.
const (
	// aeRepairBatch is how many differing keys one repair step fetches and
	// writes back (one readMany and one mergeMany round trip at most).
	aeRepairBatch = 256
	// aeMinCallTimeout is the least time one anti-entropy RPC gets; it
	// gets the node's default request timeout if that is longer.
	aeMinCallTimeout = time.Second
	// aeMaxWait caps the loop's sleep, so quarantine checks, wipes, clears
	// and handoffs are retried at least this often.
	aeMaxWait = time.Second
	// aeNeverInterval stands for "no schedule" in the Scheduler, which needs
	// a positive interval (100 years).
	aeNeverInterval = 100 * 365 * 24 * time.Hour
)

// Node's tests reap now and watch exchanges through package aehook, not
// through exported methods.
func init() {
	aehook.Reap = func(ctx context.Context, d any) (any, error) { return d.(*Driver).reap(ctx) }
	aehook.OnExchange = func(d any, f func(start bool)) { d.(*Driver).onExchange.Store(&f) }
}

// New builds the trees from the replica and checks the heartbeat (a node
// back from a long downtime starts quarantined). Call it before the node
// takes writes, so none races the build; Start starts the work.
func New(cfg Config, d Deps) (*Driver, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case d.Self == "" || d.Host == nil || d.Replica == nil || d.Trees == nil || d.Store == nil:
		return nil, errors.New("antientropy: Self, Host, Replica, Trees and Store are required")
	case d.Trees.leafBits() != cfg.LeafBits:
		return nil, fmt.Errorf("antientropy: trees of %d leaf bits, config says %d", d.Trees.leafBits(), cfg.LeafBits)
	}
	env := d.Env.WithDefaults()
	a := &Driver{
		cfg:         cfg,
		self:        d.Self,
		nrep:        d.N,
		callTimeout: d.CallTimeout,
		maxKeySize:  d.MaxKeySize,
		host:        d.Host,
		rep:         d.Replica,
		st:          d.Store,
		log:         env.Logger,
		clk:         env.Clock,
		now:         env.Now,
		gate:        d.Gate,
		trees:       d.Trees,
		ctx:         context.Background(),
		kick:        make(chan struct{}, 1),
		exMu:        newExLock(),
		parts:       make(map[uint32]*ExchangeStatus),
		deadSince:   make(map[string]time.Time),
		handoff:     make(map[uint32]bool),
	}
	if a.gate == nil {
		a.gate = &replica.Gate{} // a quarantine still closes something
	}
	var err error
	a.lim = pace.NewLimiter(cfg.MinKeysPerSecond, cfg.KeysPerSecond, aeRepairBatch)
	if a.sched, err = NewScheduler[string](cfg.scheduleInterval(), cfg.retryBackoff()); err != nil {
		return nil, err
	}
	if a.m, err = newAEMetrics(d.Metrics); err != nil {
		return nil, err
	}
	if a.excluded, err = loadLedger(a.st, metaAEExcluded); err != nil {
		return nil, err
	}
	a.excludedN.Store(int32(len(a.excluded)))
	if a.pendingClear, err = loadLedger(a.st, metaAEClear); err != nil {
		return nil, err
	}

	start := a.clk.Now()
	if a.built, err = a.trees.Build(a.rep); err != nil {
		return nil, fmt.Errorf("build merkle trees: %w", err)
	}
	a.buildTime = clock.Since(a.clk, start)
	a.log.Info("anti-entropy: merkle trees built from the store", "keys", a.built, "took", a.buildTime.Round(time.Millisecond))

	if err := a.checkHeartbeat(); err != nil {
		return nil, err
	}
	// Until gossip says otherwise, every other ring member counts as dead
	// from now: a restart forgets what it saw before.
	now := a.now()
	for _, id := range a.host.Ring().Members() {
		if string(id) != a.self {
			a.deadSince[string(id)] = now
		}
	}
	return a, nil
}

// Start registers the partitions with the scheduler and starts the loops,
// which run until ctx ends or Close. The node calls it once gossip runs.
func (a *Driver) Start(ctx context.Context) {
	a.ctx = a.life.Start(ctx)
	a.heartbeat()
	a.resetSchedule(a.host.Ring())
	if parts, err := a.rep.Partitions(); err == nil && len(parts) == 0 {
		// An empty store (new or wiped data directory): fetch everything
		// now rather than over one Interval.
		a.markAll()
	}
	a.life.Go(a.loop)
	a.life.Go(a.heartbeatLoop)
	if a.cfg.TombstoneGrace > 0 {
		a.life.Go(a.reapLoop)
	}
}

// Close stops the loops and waits for them. Idempotent.
func (a *Driver) Close() { a.life.Close() }

// every calls f every d until the driver's lifetime ends.
func (a *Driver) every(d time.Duration, f func()) {
	t := a.clk.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C():
			f()
		}
	}
}

// Quarantined reports whether this node's records are closed while it
// checks with its peers (or drops its data).
func (a *Driver) Quarantined() bool { return a.isQuarantined() }

// replicated returns the partitions this node is a primary of on r, with
// the other primaries of each.
func (a *Driver) replicated(r *ring.Ring) map[uint32][]string {
	out := make(map[uint32][]string)
	self := ring.NodeID(a.self)
	nrep := a.nrep
	for p := range uint32(r.Partitions()) {
		prim := r.Primaries(p, nrep)
		if !slices.Contains(prim, self) {
			continue
		}
		peers := make([]string, 0, len(prim)-1)
		for _, id := range prim {
			if id != self {
				peers = append(peers, string(id))
			}
		}
		out[p] = peers
	}
	return out
}

// resetSchedule makes the scheduler's partitions those this node
// replicates on r.
func (a *Driver) resetSchedule(r *ring.Ring) {
	rep := a.replicated(r)
	last := time.Time{} // due at once, paced over one Interval
	if a.cfg.Interval <= 0 {
		last = a.clk.Now() // no schedule: only marked partitions run
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for p := range uint32(r.Partitions()) {
		if peers, ok := rep[p]; ok {
			a.sched.SetPartition(p, peers, last)
		} else {
			a.sched.RemovePartition(p)
		}
	}
}

// RingChanged is called by the node when the ring changes (a node joined or
// left). The schedule follows the new ownership; partitions gained are
// fetched at once; partitions lost are handed to their new primaries and
// then dropped (driver_handoff.go).
func (a *Driver) RingChanged(old, nw *ring.Ring) {
	before, after := a.replicated(old), a.replicated(nw)
	a.resetSchedule(nw)
	a.mu.Lock()
	for p := range before {
		if _, ok := after[p]; !ok {
			a.handoff[p] = true
		}
	}
	// In partition order: marks number the repairs, and the oldest mark
	// goes first (map order would make the schedule random).
	for _, p := range slices.Sorted(maps.Keys(after)) {
		delete(a.handoff, p)
		if _, ok := before[p]; !ok {
			a.sched.MarkNeedsRepair(p)
		}
	}
	a.mu.Unlock()
	a.Kick()
}

// HandoffPending is how many partitions this node still has to hand over.
func (a *Driver) HandoffPending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.handoff)
}

// MarkPartition asks for an exchange of p ahead of the schedule (hinted
// handoff calls it when it dropped hints of p).
func (a *Driver) MarkPartition(p uint32) {
	a.mu.Lock()
	a.sched.MarkNeedsRepair(p)
	a.mu.Unlock()
	a.Kick()
}

// markAll marks every partition this node replicates.
func (a *Driver) markAll() {
	a.mu.Lock()
	for _, p := range slices.Sorted(maps.Keys(a.replicated(a.host.Ring()))) {
		a.sched.MarkNeedsRepair(p)
	}
	a.mu.Unlock()
	a.Kick()
}

// Kick wakes the loop (after a ring change, say) without waiting for its
// next timer.
func (a *Driver) Kick() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// PeerState is called by the node for every gossip report about a peer
// (alive: alive or suspect): it tracks since when a peer is dead, by this
// node's clock. It must not block.
func (a *Driver) PeerState(id string, alive bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if alive {
		delete(a.deadSince, id)
		return
	}
	if _, ok := a.deadSince[id]; !ok {
		a.deadSince[id] = a.now()
	}
}

// usable reports whether this node exchanges with peer now.
func (a *Driver) usable(peer string) bool {
	return a.host.Alive(ring.NodeID(peer)) && !a.refuses(peer)
}

// loop runs the exchanges the scheduler picks, one at a time, and the
// quarantine, wipe, clear and handoff work.
func (a *Driver) loop() {
	t := a.clk.NewTimer(0)
	defer t.Stop()
	ctx := a.ctx
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-a.kick:
		}
		a.maintain(ctx)
		if !a.gate.Closed() {
			a.runDue(ctx)
		}
		wait := aeMaxWait
		a.mu.Lock()
		if at, ok := a.sched.NextWake(a.clk.Now()); ok {
			wait = min(wait, max(clock.Until(a.clk, at), time.Millisecond))
		}
		a.mu.Unlock()
		if !t.Stop() {
			select {
			case <-t.C():
			default:
			}
		}
		t.Reset(wait)
	}
}

// maintain does the loop's non-exchange work.
func (a *Driver) maintain(ctx context.Context) {
	a.sweepStrays()
	a.mu.Lock()
	quarantined, wipe := a.quarantined, a.wipeRequested
	clears := len(a.pendingClear) > 0
	var hand []uint32
	for p := range a.handoff {
		hand = append(hand, p)
	}
	a.mu.Unlock()
	switch {
	case wipe != "":
		a.wipe(ctx, wipe)
	case quarantined:
		a.resolveQuarantine(ctx)
	}
	if clears {
		a.sendClears(ctx)
	}
	slices.Sort(hand)
	for _, p := range hand {
		if ctx.Err() != nil || a.gate.Closed() {
			return
		}
		a.handOff(ctx, p)
	}
}

// runDue runs the due exchanges until the scheduler has none.
func (a *Driver) runDue(ctx context.Context) {
	for ctx.Err() == nil && !a.gate.Closed() {
		// Liveness is read before taking a.mu: Alive takes n.mu, and
		// ringChanged runs with n.mu held and takes a.mu.
		up := make(map[string]bool)
		for _, id := range a.host.Ring().Members() {
			up[string(id)] = a.usable(string(id))
		}
		a.mu.Lock()
		job, ok := a.sched.Next(a.clk.Now(), func(id string) bool { return up[id] })
		a.mu.Unlock()
		if !ok {
			return
		}
		_, err := a.exchangeJob(ctx, job.Partition, job.Peer, nil)
		a.mu.Lock()
		a.sched.Done(a.clk.Now(), err)
		a.mu.Unlock()
	}
}

// call sends one anti-entropy RPC to peer, bounded by the node's default
// request timeout (at least aeMinCallTimeout), counting its bytes and
// reacting to a refusal.
func (a *Driver) call(ctx context.Context, peer string, m transport.Method, body []byte) ([]byte, error) {
	if err := a.CheckPeer(peer); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, max(a.callTimeout, aeMinCallTimeout))
	defer cancel()
	a.countBytes("sent", len(body))
	out, err := a.host.Call(cctx, peer, m, body)
	if err != nil {
		a.NoteRemoteError(peer, err)
		return nil, fmt.Errorf("%s: %w", peer, err)
	}
	a.countBytes("received", len(out))
	return out, nil
}

func (a *Driver) countBytes(dir string, n int) {
	if dir == "sent" {
		a.stats.bytesSent.Add(uint64(n))
	} else {
		a.stats.bytesReceived.Add(uint64(n))
	}
	a.m.bytes.WithLabelValues(dir).Add(float64(n))
}

// Serve answers the anti-entropy RPCs (methods 4 to 9 of internal/wire),
// which the node routes here; errors are *transport.RemoteError. A
// quarantined node answers only peer-status questions.
func (a *Driver) Serve(ctx context.Context, from string, m transport.Method, body []byte) ([]byte, error) {
	if m == wire.MethodPeerStatus {
		return a.servePeerStatus(from, body)
	}
	if a.gate.Closed() {
		return nil, &transport.RemoteError{Code: wire.CodeQuarantined, Msg: replica.ErrQuarantined.Error()}
	}
	var (
		out []byte
		err error
	)
	switch m {
	case wire.MethodHashes:
		out, err = a.serveHashes(body)
	case wire.MethodKeys:
		out, err = a.serveKeys(body)
	case wire.MethodReadMany:
		out, err = a.serveReadMany(body)
	case wire.MethodMergeMany:
		out, err = a.serveMergeMany(ctx, body)
	case wire.MethodTombstoneAck:
		out, err = a.serveTombAck(body)
	default:
		return nil, invalid("unknown anti-entropy method %d", m)
	}
	if err != nil {
		var re *transport.RemoteError
		switch {
		case errors.As(err, &re):
			return nil, re
		case errors.Is(err, ErrShapeMismatch), errors.Is(err, ErrMalformed),
			errors.Is(err, ErrTooLarge), errors.Is(err, ErrOutOfRange), errors.Is(err, wire.ErrMalformed):
			return nil, invalid("%v", err)
		case errors.Is(err, replica.ErrQuarantined):
			return nil, &transport.RemoteError{Code: wire.CodeQuarantined, Msg: err.Error()}
		}
		return nil, &transport.RemoteError{Code: wire.CodeInternal, Msg: err.Error()}
	}
	return out, nil
}

func (a *Driver) serveHashes(body []byte) ([]byte, error) {
	req, err := DecodeHashesRequest(body)
	if err != nil {
		return nil, err
	}
	if !a.trees.has(req.Tree.Partition) {
		return nil, invalid("partition %d of %d", req.Tree.Partition, len(a.trees.trees))
	}
	if err := a.checkServeOwner(req.Tree.Partition); err != nil {
		return nil, err
	}
	resp, err := ServeHashes(a.trees.local(req.Tree.Partition), req)
	if err != nil {
		return nil, err
	}
	return resp.Encode()
}

func (a *Driver) serveKeys(body []byte) ([]byte, error) {
	req, err := DecodeKeysRequest(body)
	if err != nil {
		return nil, err
	}
	p := req.Tree.Partition
	if !a.trees.has(p) {
		return nil, invalid("partition %d of %d", p, len(a.trees.trees))
	}
	if err := a.checkServeOwner(p); err != nil {
		return nil, err
	}
	shape := a.trees.Shape(p)
	resp, err := ServeKeys(shape, req, func(b []uint32) ([]KeyDigest, error) {
		return listKeys(a.rep, shape, b, MaxKeysPerResponse)
	})
	if err != nil {
		return nil, err
	}
	return resp.Encode()
}

// invalid is the refusal of a malformed or inconsistent request.
func invalid(format string, args ...any) error {
	return &transport.RemoteError{Code: wire.CodeInvalid, Msg: fmt.Sprintf(format, args...)}
}

// checkKey addresses a key a peer named, refusing one inconsistent with
// this node's ring or over its key size.
func (a *Driver) checkKey(p uint32, h uint64, key []byte) (ring.Key, error) {
	k, err := a.host.Ring().CheckKey(p, h, key, a.maxKeySize)
	if err != nil {
		return ring.Key{}, invalid("%v", err)
	}
	return k, nil
}

// namedRecord is this node's record of a key a peer named (checkKey).
func (a *Driver) namedRecord(p uint32, h uint64, key []byte) (replica.Record, error) {
	k, err := a.checkKey(p, h, key)
	if err != nil {
		return replica.Record{}, err
	}
	return a.rep.Record(k)
}

// heldMutex is a mutex held across RPCs. A goroutine waiting for it waits
// on a channel, not in sync.Mutex: inside a testing/synctest bubble it
// then counts as durably blocked, and the bubble's clock moves on while
// the holder waits for a peer (a sync.Mutex waiter would stop that clock,
// and with it the reply the holder waits for).
type heldMutex chan struct{}

func (m heldMutex) Lock()   { m <- struct{}{} }
func (m heldMutex) Unlock() { <-m }

// exLock is a readers-writer lock of heldMutexes (so its waiters are
// durably blocked in a bubble too) that prefers writers: a writer waiting
// holds turn, so no new reader starts meanwhile and a steady stream of
// readers cannot starve it.
type exLock struct {
	turn    heldMutex // taken by each locker on its way in
	rmu     heldMutex // guards readers
	excl    heldMutex // held by a writer, or by the readers as a group
	readers int
}

func newExLock() exLock {
	return exLock{turn: make(heldMutex, 1), rmu: make(heldMutex, 1), excl: make(heldMutex, 1)}
}

func (l *exLock) Lock() {
	l.turn.Lock()
	l.excl.Lock()
	l.turn.Unlock()
}

func (l *exLock) Unlock() { l.excl.Unlock() }

func (l *exLock) RLock() {
	l.turn.Lock()
	l.rmu.Lock()
	if l.readers == 0 {
		l.excl.Lock()
	}
	l.readers++
	l.rmu.Unlock()
	l.turn.Unlock()
}

func (l *exLock) RUnlock() {
	l.rmu.Lock()
	l.readers--
	if l.readers == 0 {
		l.excl.Unlock()
	}
	l.rmu.Unlock()
}
