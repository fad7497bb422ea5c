package bench

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/bench/oracle"
)

// Result is what one run measured. It holds summaries only (histogram
// percentiles and CDF points, counters), never per-operation samples.
type Result struct {
	Quorum Quorum `json:"quorum"`
	Params Params `json:"params"`
	// LoadTime is how long the load phase took (0 without Config.Load).
	LoadTime time.Duration `json:"load_time_ns"`
	// LoadErrors counts load writes that failed.
	LoadErrors int64 `json:"load_errors,omitempty"`
	// Elapsed is the workload's wall time, from its start until the last
	// worker finished.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Ops counts operations that succeeded (a read-modify-write is one).
	Ops int64 `json:"ops"`
	// Errors counts operations that failed.
	Errors int64 `json:"errors"`
	// Throughput is Ops per second of Elapsed.
	Throughput float64 `json:"throughput"`
	// Missed counts, in an open loop stopped by Duration, operations that
	// were due before the end but never sent because all workers were busy
	// (the client could not keep up with Rate).
	Missed int64 `json:"missed,omitempty"`
	// Read, Write and RMW are per-request statistics: Read covers every
	// Get (including the read of a read-modify-write), Write every Put,
	// RMW whole read-modify-writes.
	Read  OpStats `json:"read"`
	Write OpStats `json:"write"`
	RMW   OpStats `json:"rmw"`
	// ErrorsByKind counts failed operations by Config.ErrorKind label.
	ErrorsByKind map[string]int64 `json:"errors_by_kind,omitempty"`
	// FinalErrors counts failed reads of the lost-write check by label;
	// the writes of those keys are unverified.
	FinalErrors map[string]int64 `json:"final_errors,omitempty"`
	Consistency Consistency      `json:"consistency"`
	// Faults lists the fault steps applied, restores included.
	Faults []FaultEvent `json:"faults,omitempty"`
	// Canceled is set when ctx ended the run early: the lost-write check
	// did not run (LostChecked false) or did not finish (the keys it did
	// not reach count as unverified).
	Canceled bool `json:"canceled,omitempty"`
}

// OpStats describes one request type.
type OpStats struct {
	Count  int64 `json:"count"`  // requests that succeeded
	Errors int64 `json:"errors"` // requests that failed
	// Latency of successful requests. In an open loop it is measured from
	// the operation's intended start, so it includes time queued behind a
	// stall; otherwise from the send.
	Latency LatencySummary `json:"latency"`
	// Service, in an open loop only, is measured from the actual send:
	// the latency a coordinated-omission-prone tool would have reported.
	Service *LatencySummary `json:"service,omitempty"`
}

// histogram indexes
const (
	hRead = iota
	hWrite
	hRMW
	nHist
)

type run struct {
	cfg     Config
	c       Client
	coords  int
	chooser KeyChooser
	latest  *Latest // non-nil for DistLatest; Insert moves it
	mix     mix

	t0    time.Time // origin of Checker times: the start of the load phase
	start time.Time // the start of the workload

	stop     chan struct{} // closed when Duration elapses or ctx ends
	stopOnce sync.Once

	rr       atomic.Uint64 // round-robin coordinator cursor
	seq      atomic.Int64  // operations claimed
	okOps    atomic.Int64
	failOps  atomic.Int64
	loadNext atomic.Int64

	mu      sync.Mutex // guards everything below
	checker *Checker
	// lastCtx, per key index: the context of the last acknowledged
	// write, as a token for the store and as what its answer showed.
	lastCtx  []keyCtx
	lat      [nHist]*latency
	svc      [nHist]*latency // open loop only
	count    [nHist]int64
	errs     [nHist]int64
	errKinds map[string]int64
	finalErr map[string]int64
	loadErr  int64
}

// keyCtx is a context a client holds for a key: the store's opaque token
// and the oracle's record of what the answer that gave it showed.
type keyCtx struct {
	token string
	seen  oracle.Context
}

type worker struct {
	rng   *rand.Rand
	value []byte // random letters, ValueSize long
	buf   []byte // the value being written: its tag, then value's tail
	timer *time.Timer
}

// Run drives one workload against c and returns what it measured. It
// returns after every goroutine it started has stopped. When ctx ends the
// run, Run returns the partial result (Canceled set, lost-write check not
// run or not finished) together with ctx's error.
func Run(ctx context.Context, c Client, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	coords := c.Coordinators()
	if coords < 1 {
		return nil, ErrNoCoordinators
	}
	r := &run{
		cfg: cfg, c: c, coords: coords, mix: cfg.Workload.mix(),
		stop:     make(chan struct{}),
		lastCtx:  make([]keyCtx, cfg.Keys),
		errKinds: make(map[string]int64),
		finalErr: make(map[string]int64),
	}
	var err error
	switch cfg.Distribution {
	case DistUniform:
		r.chooser, err = NewUniform(cfg.Keys)
	case DistZipfian:
		r.chooser, err = NewZipfian(cfg.Keys, cfg.Theta, true)
	case DistLatest:
		r.latest, err = NewLatest(cfg.Keys, cfg.Theta)
		r.chooser = r.latest
	}
	if err != nil {
		return nil, fmt.Errorf("bench: key chooser: %w", err)
	}
	cc := cfg.checkerConfig()
	// A fresh nonce per run: values an earlier run left on the same keys
	// are then foreign to the oracle, not mistaken for this run's.
	cc.Run = rand.Uint32()
	if r.checker, err = NewChecker(cc); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	for i := range r.lat {
		r.lat[i] = newLatency()
		if cfg.Rate > 0 {
			r.svc[i] = newLatency()
		}
	}
	return r.run(ctx)
}

func (r *run) run(ctx context.Context) (*Result, error) {
	cfg := r.cfg
	res := &Result{Quorum: cfg.Quorum, Params: cfg.params()}

	r.t0 = time.Now()
	if cfg.Load {
		r.load(ctx)
	}
	r.start = time.Now()
	res.LoadTime = r.start.Sub(r.t0)
	if ctx.Err() != nil {
		return r.finish(ctx, res)
	}

	// Stop on Duration or ctx, whichever first.
	if cfg.Duration > 0 {
		t := time.AfterFunc(cfg.Duration, r.halt)
		defer t.Stop()
	}
	stopWatch := context.AfterFunc(ctx, r.halt)
	defer stopWatch()

	var fr *faultRunner
	var bg sync.WaitGroup
	faultStop := make(chan struct{})
	if len(cfg.Schedule) > 0 {
		fr = newFaultRunner(cfg.Faults, cfg.Schedule, r.start)
		bg.Go(func() { fr.run(faultStop) })
	}
	progStop := make(chan struct{})
	if cfg.Progress != nil {
		bg.Go(func() {
			r.progress(progStop, r.cfg.Label, r.start,
				func() int64 { return r.okOps.Load() + r.failOps.Load() }, r.failOps.Load)
		})
	}

	var wg sync.WaitGroup
	for i := range cfg.Concurrency {
		w := r.newWorker(i)
		wg.Go(func() { r.work(ctx, w) })
	}
	wg.Wait()
	res.Elapsed = time.Since(r.start)
	close(progStop)
	close(faultStop)
	bg.Wait()

	if cfg.Rate > 0 && cfg.Duration > 0 && ctx.Err() == nil {
		due := int64(math.Ceil(cfg.Duration.Seconds() * cfg.Rate))
		if cfg.Ops > 0 {
			due = min(due, cfg.Ops)
		}
		res.Missed = max(0, due-(r.okOps.Load()+r.failOps.Load()))
	}
	if fr != nil {
		// Undo faults even when canceled: leave the cluster as found.
		fr.restore()
		res.Faults = fr.recorded()
	}
	return r.finish(ctx, res)
}

// halt stops workers from starting new operations.
func (r *run) halt() { r.stopOnce.Do(func() { close(r.stop) }) }

func (r *run) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// finish runs the lost-write check and fills the result.
func (r *run) finish(ctx context.Context, res *Result) (*Result, error) {
	cfg := r.cfg
	canceled := ctx.Err() != nil
	checked := false
	if !canceled && cfg.CheckLost {
		if cfg.Settle > 0 {
			t := time.NewTimer(cfg.Settle)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
			t.Stop()
		}
		if ctx.Err() == nil {
			r.checkLost(ctx)
			checked = true
		}
		canceled = ctx.Err() != nil
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	res.Ops, res.Errors = r.okOps.Load(), r.failOps.Load()
	if res.Elapsed > 0 {
		res.Throughput = float64(res.Ops) / res.Elapsed.Seconds()
	}
	for i, st := range []*OpStats{&res.Read, &res.Write, &res.RMW} {
		st.Count, st.Errors = r.count[i], r.errs[i]
		st.Latency = r.lat[i].summary()
		if r.svc[i] != nil {
			s := r.svc[i].summary()
			st.Service = &s
		}
	}
	if len(r.errKinds) > 0 {
		res.ErrorsByKind = r.errKinds
	}
	if len(r.finalErr) > 0 {
		res.FinalErrors = r.finalErr
	}
	res.LoadErrors = r.loadErr
	res.Consistency = r.checker.Result(checked)
	// Checker times are from the load's start; report them from the
	// workload's start, like fault events.
	for i := range res.Consistency.Lost {
		res.Consistency.Lost[i].Ack -= res.LoadTime
		res.Consistency.Lost[i].Invoke -= res.LoadTime
	}
	res.Canceled = canceled
	if canceled {
		return res, fmt.Errorf("bench: run canceled: %w", ctx.Err())
	}
	return res, nil
}

func (r *run) newWorker(i int) *worker {
	rng := rand.New(rand.NewPCG(r.cfg.Seed, uint64(i)))
	v := make([]byte, r.cfg.ValueSize)
	for j := range v {
		v[j] = byte('a' + rng.IntN(26))
	}
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &worker{rng: rng, value: v, buf: make([]byte, 0, max(len(v), MinValueSize)), timer: t}
}

func (r *run) key(idx int) string {
	return r.cfg.KeyPrefix + strconv.Itoa(idx)
}

func (r *run) coord(w *worker) int {
	if r.cfg.Coordinators == CoordRandom {
		return w.rng.IntN(r.coords)
	}
	return int((r.rr.Add(1) - 1) % uint64(r.coords))
}

func (r *run) reqCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if r.cfg.Timeout > 0 {
		return context.WithTimeout(ctx, r.cfg.Timeout)
	}
	return ctx, func() {}
}

// load writes every key once, blind, feeding the Checker. Its progress
// lines are labelled "load".
func (r *run) load(ctx context.Context) {
	var wg sync.WaitGroup
	if r.cfg.Progress != nil {
		stop := make(chan struct{})
		label := strings.TrimSpace(r.cfg.Label + " load")
		var pw sync.WaitGroup
		pw.Go(func() {
			r.progress(stop, label, r.t0, func() int64 { return min(r.loadNext.Load(), int64(r.cfg.Keys)) }, func() int64 {
				r.mu.Lock()
				defer r.mu.Unlock()
				return r.loadErr
			})
		})
		defer pw.Wait()
		defer close(stop)
	}
	for i := range r.cfg.Concurrency {
		w := r.newWorker(i)
		wg.Go(func() {
			for ctx.Err() == nil {
				idx := int(r.loadNext.Add(1) - 1)
				if idx >= r.cfg.Keys {
					return
				}
				if !r.write(ctx, w, idx, keyCtx{}, time.Time{}, -1) && ctx.Err() == nil {
					r.mu.Lock()
					r.loadErr++
					r.mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
}

func (r *run) work(ctx context.Context, w *worker) {
	open := r.cfg.Rate > 0
	for {
		var due time.Time
		if open {
			seq := r.seq.Add(1) - 1
			if r.cfg.Ops > 0 && seq >= r.cfg.Ops {
				return
			}
			off := time.Duration(float64(seq) * float64(time.Second) / r.cfg.Rate)
			if r.cfg.Duration > 0 && off >= r.cfg.Duration {
				return
			}
			due = r.start.Add(off)
			if wait := time.Until(due); wait > 0 {
				w.timer.Reset(wait)
				select {
				case <-r.stop:
					w.timer.Stop()
					return
				case <-w.timer.C:
				}
			}
		} else if r.cfg.Ops > 0 && r.seq.Add(1) > r.cfg.Ops {
			return
		}
		if r.stopped() {
			return
		}
		if r.op(ctx, w, due) {
			r.okOps.Add(1)
		} else if ctx.Err() == nil {
			r.failOps.Add(1)
		}
	}
}

// op runs one logical operation; due is its intended start (zero in a
// closed loop). It reports success.
func (r *run) op(ctx context.Context, w *worker, due time.Time) bool {
	kind := r.mix.pick(w.rng.Float64())
	var idx int
	if kind == opInsert && r.latest != nil {
		idx = r.latest.Insert()
	} else {
		idx = r.chooser.Next(w.rng)
	}
	switch kind {
	case opRead:
		_, ok := r.read(ctx, w, idx, due, hRead)
		return ok
	case opRMW:
		if due.IsZero() {
			due = time.Now()
		}
		rr, ok := r.read(ctx, w, idx, due, hRMW)
		if !ok {
			return false
		}
		if !r.write(ctx, w, idx, rr, time.Time{}, hRMW) {
			return false
		}
		end := time.Now()
		r.mu.Lock()
		r.count[hRMW]++
		r.lat[hRMW].record(end.Sub(due))
		r.mu.Unlock()
		return true
	default: // update, insert
		var kc keyCtx
		if !r.cfg.BlindUpdates {
			r.mu.Lock()
			kc = r.lastCtx[idx]
			r.mu.Unlock()
		}
		return r.write(ctx, w, idx, kc, due, hWrite)
	}
}

// read sends one Get and records it; it returns the context the read
// gave. Latency is measured from start (the send when zero). failAs names
// the histogram a failure is charged to and the logical operation it ends.
func (r *run) read(ctx context.Context, w *worker, idx int, start time.Time, failAs int) (keyCtx, bool) {
	key := r.key(idx)
	coord := r.coord(w)
	sent := time.Now()
	if start.IsZero() {
		start = sent
	}
	rctx, cancel := r.reqCtx(ctx)
	res, err := r.c.Get(rctx, coord, key, r.cfg.Quorum, false)
	cancel()
	end := time.Now()
	if err != nil {
		r.fail(ctx, hRead, failAs, err)
		return keyCtx{}, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.count[hRead]++
	r.lat[hRead].record(end.Sub(start))
	if r.svc[hRead] != nil {
		r.svc[hRead].record(end.Sub(sent))
	}
	seen, _ := r.checker.Read(ReadEvent{
		Key: key, Coord: coord, Invoke: sent.Sub(r.t0), Done: end.Sub(r.t0), Values: res.Values,
	})
	return keyCtx{token: res.Context, seen: seen}, true
}

// write sends one Put carrying kc and records it; failAs < 0 marks a load
// write (no histogram, no error accounting). The value is the write's tag
// followed by the worker's letters, ValueSize bytes in all.
func (r *run) write(ctx context.Context, w *worker, idx int, kc keyCtx, start time.Time, failAs int) bool {
	key := r.key(idx)
	coord := r.coord(w)
	r.mu.Lock()
	sent := time.Now()
	// Invoked before it is sent, so no answer can show it first.
	op := r.checker.Invoke(key, kc.seen, coord, sent.Sub(r.t0))
	w.buf = r.checker.AppendTag(w.buf[:0], op)
	r.mu.Unlock()
	w.buf = append(w.buf, w.value[min(len(w.buf), len(w.value)):]...)
	if start.IsZero() {
		start = sent
	}
	rctx, cancel := r.reqCtx(ctx)
	res, err := r.c.Put(rctx, coord, key, w.buf, kc.token, r.cfg.Quorum)
	cancel()
	end := time.Now()
	if err != nil {
		r.mu.Lock()
		r.checker.Failed(op, r.outcome(ctx, err))
		r.mu.Unlock()
		if failAs >= 0 {
			r.fail(ctx, hWrite, failAs, err)
		}
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// The acknowledgement time is taken under the lock that feeds the
	// Checker: any read that began after it is fed after this write.
	ack := time.Since(r.t0)
	if failAs >= 0 {
		r.count[hWrite]++
		r.lat[hWrite].record(end.Sub(start))
		if r.svc[hWrite] != nil {
			r.svc[hWrite].record(end.Sub(sent))
		}
	}
	seen := r.checker.Acked(op, ack, res.Values)
	r.lastCtx[idx] = keyCtx{token: res.Context, seen: seen}
	return true
}

// outcome says what a failed Put tells the oracle: no answer (the
// deadline passed, the run was stopped) or an error answer. Both may still
// have landed; the distinction is only reported.
func (r *run) outcome(ctx context.Context, err error) oracle.Outcome {
	if ctx.Err() != nil {
		return oracle.Unknown
	}
	switch r.cfg.ErrorKind(err) {
	case "timeout", "canceled":
		return oracle.Unknown
	}
	return oracle.Failed
}

// fail counts a failed request against histogram h and the logical
// operation against op. Failures caused by the run's own cancellation are
// not the system's fault and are not counted.
func (r *run) fail(ctx context.Context, h, op int, err error) {
	if ctx.Err() != nil {
		return
	}
	kind := r.cfg.ErrorKind(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs[h]++
	if op != h {
		r.errs[op]++
	}
	countKind(r.errKinds, kind)
}

func countKind(m map[string]int64, kind string) {
	if _, ok := m[kind]; !ok && len(m) >= MaxErrorKinds-1 {
		kind = "other"
	}
	m[kind]++
}

// checkLost reads every written key at R=N and feeds the Checker.
func (r *run) checkLost(ctx context.Context) {
	r.mu.Lock()
	keys := r.checker.Keys()
	r.mu.Unlock()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, len(keys)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(keys) {
					return
				}
				coord := int((r.rr.Add(1) - 1) % uint64(r.coords))
				rctx, cancel := r.reqCtx(ctx)
				res, err := r.c.Get(rctx, coord, keys[i], r.cfg.Quorum, true)
				cancel()
				r.mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						r.checker.FinalFailed(keys[i])
						countKind(r.finalErr, r.cfg.ErrorKind(err))
					}
				} else {
					r.checker.Final(keys[i], res.Values)
				}
				r.mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// progress prints a progress line every interval until stop is closed,
// then a final one. ops and errs read the counters; start is the phase's
// start.
func (r *run) progress(stop <-chan struct{}, label string, start time.Time, ops, errs func() int64) {
	t := time.NewTicker(r.cfg.ProgressInterval)
	defer t.Stop()
	var lastOps int64
	lastAt := start
	report := func(now time.Time, final bool) {
		n := ops()
		p := Progress{
			Label: label, Elapsed: now.Sub(start), Ops: n,
			Errors: errs(), Final: final, Terminal: r.cfg.Terminal,
		}
		if final {
			p.Rate = float64(n) / max(p.Elapsed.Seconds(), 1e-9)
		} else if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			p.Rate = float64(n-lastOps) / dt
		}
		lastOps, lastAt = n, now
		writeProgress(r.cfg.Progress, p)
	}
	for {
		select {
		case <-stop:
			report(time.Now(), true)
			return
		case now := <-t.C:
			report(now, false)
		}
	}
}
