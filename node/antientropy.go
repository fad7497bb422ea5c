package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/internal/pace"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/transport"
)

// antiEntropy runs Merkle-tree anti-entropy on a node (package antientropy
// is the pure core: trees, compare, wire messages, scheduler):
//
//   - a tree per partition, kept current by the replica's RecordObserver on
//     every record write and rebuilt from one store scan at start (ae_tree.go);
//   - one loop goroutine that runs the exchanges the Scheduler picks, one at
//     a time, and the quarantine and wipe work of ae_stale.go; exchanges
//     requested on demand (Repair, POST /admin/repair) take the same lock;
//   - a reaper goroutine for tombstones (ae_reap.go) and a heartbeat
//     goroutine (ae_stale.go);
//   - the peer side of every anti-entropy RPC (serveAntiEntropy).
//
// Every goroutine ends with the node's lifetime context.
type antiEntropy struct {
	n     *Node
	cfg   AntiEntropyConfig
	trees *aeTrees
	gate  *replica.Gate
	lim   *pace.Limiter // nil: no cap on keys repaired per second
	kick  chan struct{}

	// exMu serializes this node's exchanges, handoffs and wipes.
	exMu sync.Mutex

	// mu guards the fields below. Lock order: n.mu before a.mu (state.go
	// calls ringChanged and peerState with n.mu held), so nothing may take
	// n.mu (Alive, rpcAddr, ...) while holding a.mu.
	mu               sync.Mutex
	sched            *antientropy.Scheduler[string]
	parts            map[uint32]*AEPartitionStatus // last exchange per partition
	running          *AEJob
	deadSince        map[string]time.Time // peers not alive, since when (our clock)
	excluded         map[string]int64     // exclusion ledger: id -> Unix ns
	pendingClear     map[string]int64     // peers to tell we dropped our data
	quarantined      bool
	quarantineReason string
	wipeRequested    string // non-empty: the loop must wipe, for this reason
	handoff          map[uint32]bool
	lastReap         AEReapStatus
	wipes            int
	built            int // keys in the trees after the start-up build
	buildTime        time.Duration

	excludedN atomic.Int32 // len(excluded), for the lock-free fast path
	// testHook, if set, is called at the start and end of each exchange
	// (tests check that exchanges never overlap).
	testHook atomic.Pointer[func(start bool)]

	stats aeCounters
	m     aeMetrics
}

// aeCounters are totals since start, for /status (the metrics hold the
// same).
type aeCounters struct {
	exchanges, failed, compared, differing, repairedLocal, repairedRemote atomic.Uint64
	bytesSent, bytesReceived, confirmed, reaped                           atomic.Uint64
}

type aeMetrics struct {
	exchanges *prometheus.CounterVec
	compared  prometheus.Counter
	differing prometheus.Counter
	repaired  *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	reaped    prometheus.Counter
	duration  prometheus.Histogram
}

func newAEMetrics(reg *prometheus.Registry) (aeMetrics, error) {
	m := aeMetrics{
		exchanges: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumkv_ae_exchanges_total", Help: "Anti-entropy exchanges this node started, by result (ok, failed).",
		}, []string{"result"}),
		compared: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumkv_ae_keys_compared_total", Help: "Keys whose digests were compared, both sides, in the leaves that differed.",
		}),
		differing: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumkv_ae_keys_differing_total", Help: "Keys found to differ between this node and a peer.",
		}),
		repaired: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumkv_ae_keys_repaired_total", Help: "Keys written by anti-entropy, by where (local, remote).",
		}, []string{"where"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "quorumkv_ae_bytes_total", Help: "Anti-entropy RPC body bytes of the exchanges, reaping and handoff this node started, by direction (sent, received).",
		}, []string{"direction"}),
		reaped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "quorumkv_ae_tombstones_reaped_total", Help: "Tombstones deleted from the store after every primary held them for the grace period.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "quorumkv_ae_exchange_duration_seconds", Help: "Duration of anti-entropy exchanges, repair included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs .. 26s
		}),
	}
	for _, r := range []string{"ok", "failed"} {
		m.exchanges.WithLabelValues(r)
	}
	for _, w := range []string{"local", "remote"} {
		m.repaired.WithLabelValues(w)
	}
	for _, d := range []string{"sent", "received"} {
		m.bytes.WithLabelValues(d)
	}
	for _, c := range []prometheus.Collector{m.exchanges, m.compared, m.differing, m.repaired, m.bytes, m.reaped, m.duration} {
		if err := reg.Register(c); err != nil {
			return m, fmt.Errorf("register anti-entropy metrics: %w", err)
		}
	}
	return m, nil
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

// newAntiEntropy builds the trees from the store, hooks them to the replica
// and checks the heartbeat. New calls it before the transport starts, so no
// write races the build.
func newAntiEntropy(n *Node, trees *aeTrees) (*antiEntropy, error) {
	cfg := n.cfg.AntiEntropy
	a := &antiEntropy{
		n:         n,
		cfg:       cfg,
		gate:      n.gate,
		trees:     trees,
		kick:      make(chan struct{}, 1),
		parts:     make(map[uint32]*AEPartitionStatus),
		deadSince: make(map[string]time.Time),
		handoff:   make(map[uint32]bool),
	}
	var err error
	a.lim = pace.NewLimiter(cfg.MinKeysPerSecond, cfg.KeysPerSecond, aeRepairBatch)
	sc := antientropy.DefaultConfig()
	sc.Tree = a.trees.shape
	sc.Interval = cfg.Interval
	if sc.Interval <= 0 {
		sc.Interval = aeNeverInterval
	}
	sc.RetryBackoff = min(max(cfg.Interval/8, 200*time.Millisecond), 30*time.Second)
	if a.sched, err = antientropy.NewScheduler[string](sc); err != nil {
		return nil, err
	}
	if a.m, err = newAEMetrics(n.metrics.reg); err != nil {
		return nil, err
	}
	if a.excluded, err = loadLedger(n.st, metaAEExcluded); err != nil {
		return nil, err
	}
	a.excludedN.Store(int32(len(a.excluded)))
	if a.pendingClear, err = loadLedger(n.st, metaAEClear); err != nil {
		return nil, err
	}

	start := time.Now()
	if a.built, err = a.trees.build(n.rep); err != nil {
		return nil, fmt.Errorf("build merkle trees: %w", err)
	}
	a.buildTime = time.Since(start)
	n.log.Info("anti-entropy: merkle trees built from the store", "keys", a.built, "took", a.buildTime.Round(time.Millisecond))

	if err := a.checkHeartbeat(); err != nil {
		return nil, err
	}
	// Until gossip says otherwise, every other ring member counts as dead
	// from now: a restart forgets what it saw before.
	now := n.now()
	for _, id := range n.Ring().Members() {
		if string(id) != n.cfg.NodeID {
			a.deadSince[string(id)] = now
		}
	}
	return a, nil
}

// start registers the partitions with the scheduler and starts the loops.
// New calls it once gossip runs.
func (a *antiEntropy) start() {
	a.heartbeat()
	a.resetSchedule(a.n.Ring())
	if parts, err := a.n.rep.Partitions(); err == nil && len(parts) == 0 {
		// An empty store (new or wiped data directory): fetch everything
		// now rather than over one Interval.
		a.markAll()
	}
	a.n.goFunc(a.loop)
	a.n.goFunc(a.heartbeatLoop)
	if a.cfg.TombstoneGrace > 0 {
		a.n.goFunc(a.reapLoop)
	}
}

// replicated returns the partitions this node is a primary of on r, with
// the other primaries of each.
func (a *antiEntropy) replicated(r *ring.Ring) map[uint32][]string {
	out := make(map[uint32][]string)
	self := ring.NodeID(a.n.cfg.NodeID)
	nrep := a.n.cfg.Defaults.N
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
func (a *antiEntropy) resetSchedule(r *ring.Ring) {
	rep := a.replicated(r)
	last := time.Time{} // due at once, paced over one Interval
	if a.cfg.Interval <= 0 {
		last = time.Now() // no schedule: only marked partitions run
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

// ringChanged is called by state.go when the ring changes (a node joined or
// left). The schedule follows the new ownership; partitions gained are
// fetched at once; partitions lost are handed to their new primaries and
// then dropped (ae_handoff.go).
func (a *antiEntropy) ringChanged(old, nw *ring.Ring) {
	before, after := a.replicated(old), a.replicated(nw)
	a.resetSchedule(nw)
	a.mu.Lock()
	for p := range before {
		if _, ok := after[p]; !ok {
			a.handoff[p] = true
		}
	}
	for p := range after {
		delete(a.handoff, p)
		if _, ok := before[p]; !ok {
			a.sched.MarkNeedsRepair(p)
		}
	}
	a.mu.Unlock()
	a.kickLoop()
}

// handoffPending is how many partitions this node still has to hand over.
func (a *antiEntropy) handoffPending() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.handoff)
}

// markPartition asks for an exchange of p ahead of the schedule (hinted
// handoff calls it when it dropped hints of p).
func (a *antiEntropy) markPartition(p uint32) {
	a.mu.Lock()
	a.sched.MarkNeedsRepair(p)
	a.mu.Unlock()
	a.kickLoop()
}

// markAll marks every partition this node replicates.
func (a *antiEntropy) markAll() {
	a.mu.Lock()
	for p := range a.replicated(a.n.Ring()) {
		a.sched.MarkNeedsRepair(p)
	}
	a.mu.Unlock()
	a.kickLoop()
}

func (a *antiEntropy) kickLoop() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// peerState is called by state.go for every gossip report about a peer: it
// tracks since when a peer is dead, by this node's clock.
func (a *antiEntropy) peerState(id string, st PeerState) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st == PeerAlive || st == PeerSuspect {
		delete(a.deadSince, id)
		return
	}
	if _, ok := a.deadSince[id]; !ok {
		a.deadSince[id] = a.n.now()
	}
}

// usable reports whether this node exchanges with peer now.
func (a *antiEntropy) usable(peer string) bool {
	return a.n.Alive(ring.NodeID(peer)) && !a.refuses(peer)
}

// loop runs the exchanges the scheduler picks, one at a time, and the
// quarantine, wipe, clear and handoff work.
func (a *antiEntropy) loop() {
	t := time.NewTimer(0)
	defer t.Stop()
	ctx := a.n.ctx
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-a.kick:
		}
		a.maintain(ctx)
		if !a.gate.Closed() {
			a.runDue(ctx)
		}
		wait := aeMaxWait
		a.mu.Lock()
		if at, ok := a.sched.NextWake(time.Now()); ok {
			wait = min(wait, max(time.Until(at), time.Millisecond))
		}
		a.mu.Unlock()
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(wait)
	}
}

// maintain does the loop's non-exchange work.
func (a *antiEntropy) maintain(ctx context.Context) {
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
func (a *antiEntropy) runDue(ctx context.Context) {
	for ctx.Err() == nil && !a.gate.Closed() {
		// Liveness is read before taking a.mu: Alive takes n.mu, and
		// ringChanged runs with n.mu held and takes a.mu.
		up := make(map[string]bool)
		for _, id := range a.n.Ring().Members() {
			up[string(id)] = a.usable(string(id))
		}
		a.mu.Lock()
		job, ok := a.sched.Next(time.Now(), func(id string) bool { return up[id] })
		a.mu.Unlock()
		if !ok {
			return
		}
		_, err := a.exchangeJob(ctx, job.Partition, job.Peer)
		a.mu.Lock()
		a.sched.Done(time.Now(), err)
		a.mu.Unlock()
	}
}

// call sends one anti-entropy RPC to peer, bounded by the node's default
// request timeout (at least aeMinCallTimeout), counting its bytes and
// reacting to a refusal.
func (a *antiEntropy) call(ctx context.Context, peer string, m transport.Method, body []byte) ([]byte, error) {
	if err := a.checkPeer(peer); err != nil {
		return nil, err
	}
	addr, ok := a.n.rpcAddr(peer)
	if !ok {
		return nil, fmt.Errorf("%s: %w", peer, errPeerUnknown)
	}
	cctx, cancel := context.WithTimeout(ctx, max(a.n.cfg.Defaults.Timeout, aeMinCallTimeout))
	defer cancel()
	a.countBytes("sent", len(body))
	out, err := a.n.tr.Call(cctx, addr, m, body)
	if err != nil {
		a.noteRemoteError(peer, err)
		return nil, fmt.Errorf("%s: %w", peer, err)
	}
	a.countBytes("received", len(out))
	return out, nil
}

func (a *antiEntropy) countBytes(dir string, n int) {
	if dir == "sent" {
		a.stats.bytesSent.Add(uint64(n))
	} else {
		a.stats.bytesReceived.Add(uint64(n))
	}
	a.m.bytes.WithLabelValues(dir).Add(float64(n))
}

// serveAntiEntropy answers the anti-entropy RPCs (ServeRPC routes them
// here). A quarantined node answers only peer-status questions.
func (n *Node) serveAntiEntropy(ctx context.Context, from string, m transport.Method, body []byte) ([]byte, error) {
	a := n.ae
	if m == wire.MethodPeerStatus {
		return a.servePeerStatus(from, body)
	}
	if a.gate.Closed() {
		return nil, &transport.RemoteError{Code: wire.CodeQuarantined, Msg: ErrQuarantined.Error()}
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
		case errors.Is(err, antientropy.ErrShapeMismatch), errors.Is(err, antientropy.ErrMalformed),
			errors.Is(err, antientropy.ErrTooLarge), errors.Is(err, antientropy.ErrOutOfRange), errors.Is(err, wire.ErrMalformed):
			return nil, invalid("%v", err)
		case errors.Is(err, ErrQuarantined):
			return nil, &transport.RemoteError{Code: wire.CodeQuarantined, Msg: err.Error()}
		}
		return nil, &transport.RemoteError{Code: wire.CodeInternal, Msg: err.Error()}
	}
	return out, nil
}

func (a *antiEntropy) serveHashes(body []byte) ([]byte, error) {
	req, err := antientropy.DecodeHashesRequest(body)
	if err != nil {
		return nil, err
	}
	if !a.trees.has(req.Tree.Partition) {
		return nil, invalid("partition %d of %d", req.Tree.Partition, len(a.trees.trees))
	}
	resp, err := antientropy.ServeHashes(a.trees.local(req.Tree.Partition), req)
	if err != nil {
		return nil, err
	}
	return resp.Encode()
}

func (a *antiEntropy) serveKeys(body []byte) ([]byte, error) {
	req, err := antientropy.DecodeKeysRequest(body)
	if err != nil {
		return nil, err
	}
	p := req.Tree.Partition
	if !a.trees.has(p) {
		return nil, invalid("partition %d of %d", p, len(a.trees.trees))
	}
	shape := a.trees.shapeOf(p)
	resp, err := antientropy.ServeKeys(shape, req, func(b []uint32) ([]antientropy.KeyDigest, error) {
		return listKeys(a.n.rep, shape, b, antientropy.MaxKeysPerResponse)
	})
	if err != nil {
		return nil, err
	}
	return resp.Encode()
}
