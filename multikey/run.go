package multikey

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/quorumkv/quorumkv/membudget"
)

// Defaults of Config.
const (
	// DefaultParallel is how many fetches of one command run at once (the
	// RESP front's respMultiParallel).
	DefaultParallel = 16
	// DefaultMaxBytes bounds what one command holds at once: enough for
	// one largest sibling set (12 MiB) with room for small items beside
	// it, a small share of any node's budget.
	DefaultMaxBytes = 16 << 20
	// DefaultEstimate is what a fetch reserves before any cost of the
	// command is known.
	DefaultEstimate = 16 << 10
)

// Cost is what a fetched item costs in memory, in bytes.
type Cost struct {
	// Held is what the item keeps until it is emitted (the value an MGET
	// writes).
	Held int64
	// Peak is the most the fetch held at once (the sibling set read to
	// pick that value); 0 means Held. Later fetches of the command
	// reserve the largest Peak seen.
	Peak int64
}

// Config bounds one multi-key command.
type Config struct {
	// Budget is the node's budget, charged for every byte the command
	// reserves or holds; nil: only MaxBytes bounds it.
	Budget *membudget.Budget
	// Parallel is the most fetches in flight, and so the most items
	// fetched ahead of the next one to emit. 0: DefaultParallel.
	Parallel int
	// MaxBytes bounds the bytes the command reserves and holds at once;
	// the next item to emit is always let through, so one item larger
	// than MaxBytes still goes (alone). 0: DefaultMaxBytes.
	MaxBytes int64
	// Estimate is the reservation of a fetch before any cost is known.
	// 0: DefaultEstimate.
	Estimate int64
	// Shared, if set, remembers large costs across commands: a command's
	// first fetch reserves at least what it estimates, so a flood of
	// commands naming a huge key is charged for it from the first fetch
	// on. Nil: each command learns alone.
	Shared *Estimator
}

// Validate reports a bad field.
func (c Config) Validate() error {
	if c.Parallel < 0 || c.MaxBytes < 0 || c.Estimate < 0 {
		return fmt.Errorf("multikey: config %+v: fields must be >= 0", c)
	}
	return nil
}

// Fetch gets item i. It runs on its own goroutine, up to Parallel at
// once; ctx ends when the command stops. Its error is handed to Emit.
type Fetch[T any] func(ctx context.Context, i int) (T, Cost, error)

// Emit writes item i's reply, or its error (the fetch's, or a
// *membudget.BusyError when the budget had no room for it). It is called
// for 0, 1, 2, ... in order, on the goroutine that called Run, as soon as
// the item and every one before it are fetched. Returning an error stops
// the command: Run returns it.
type Emit[T any] func(i int, item T, err error) error

// result is one finished fetch.
type result[T any] struct {
	i        int
	item     T
	cost     Cost
	err      error
	reserved int64 // what was reserved for it
	filled   bool
}

// Run fetches items 0..n-1 and emits them in order, with at most
// Config.Parallel fetches in flight and at most Config.MaxBytes reserved
// or held (plus the item next to emit), every byte charged to the budget
// while reserved or held. It returns nil when all n were emitted, Emit's
// error, or ctx's. In every case all fetches it started have returned
// and every byte it charged is released when it returns.
//
// Reservations: before the first cost is known only one fetch runs (a
// probe, reserving Estimate or what Shared expects); then each fetch
// reserves the largest Peak seen so far, and a fetch that turns out larger is charged the difference
// with Force (the memory exists already). When the budget is full, Run
// waits for its own fetches to free room; when none are in flight, the
// next item waits in the budget's line up to its MaxWait and is emitted
// with the *membudget.BusyError if it gets no room; after that, the rest
// of the command gets no room unless it is there at once.
func Run[T any](ctx context.Context, cfg Config, n int, fetch Fetch[T], emit Emit[T]) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if n <= 0 {
		return nil
	}
	cfg.Parallel = cmp.Or(cfg.Parallel, DefaultParallel)
	cfg.MaxBytes = cmp.Or(cfg.MaxBytes, DefaultMaxBytes)
	cfg.Estimate = cmp.Or(cfg.Estimate, DefaultEstimate)
	window := min(cfg.Parallel, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r := runner[T]{
		cfg: cfg, n: n, fetch: fetch, ctx: ctx, cancel: cancel,
		slots:   make([]result[T], window),
		results: make(chan result[T], window),
		reserve: max(cfg.Estimate, cfg.Shared.Get()),
	}
	defer r.drain()
	for {
		// Emit what is ready, in order.
		for r.next < n && r.slots[r.next%window].filled {
			if err := ctx.Err(); err != nil {
				return err
			}
			s := &r.slots[r.next%window]
			res := *s
			*s = result[T]{}
			err := emit(r.next, res.item, res.err)
			r.release(res.cost.Held)
			r.next++
			if err != nil {
				return err
			}
		}
		if r.next == n {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		r.start(window)
		if r.inflight == 0 {
			continue // start only filled slots (refusals): emit them
		}
		select {
		case res := <-r.results:
			r.finish(res)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// runner is the state of one Run; only Run's goroutine touches it, the
// fetch goroutines only send on results.
type runner[T any] struct {
	cfg    Config
	n      int
	fetch  Fetch[T]
	ctx    context.Context
	cancel context.CancelFunc

	slots    []result[T] // fetched, not yet emitted: index i at i%window
	results  chan result[T]
	next     int   // next to emit
	started  int   // next to start
	inflight int   // fetches running
	local    int64 // bytes reserved or held by this command
	reserve  int64 // what the next fetch reserves
	known    bool  // a cost was seen: past the probe
	refused  bool  // an item was refused for want of budget
}

// start starts fetches while the window, MaxBytes and the budget allow.
func (r *runner[T]) start(window int) {
	for r.started < r.n && r.started < r.next+window {
		if !r.known && r.inflight > 0 {
			return // the probe is out
		}
		head := r.started == r.next
		res := min(r.reserve, r.cfg.MaxBytes)
		if l := r.cfg.Budget.Limit(); l > 0 {
			res = min(res, l)
		}
		if !head && r.local+res > r.cfg.MaxBytes {
			return
		}
		if !r.cfg.Budget.TryTake(res) {
			if !head || r.inflight > 0 {
				return // our own fetches will free room
			}
			// Nothing of ours holds memory: wait in the budget's line,
			// once; after a refusal, later items take only what is free.
			var err error
			if r.refused {
				err = r.busy(res)
			} else {
				err = r.cfg.Budget.Take(r.ctx, res)
			}
			if err != nil {
				if errors.Is(err, membudget.ErrBusy) {
					r.refused = true
				}
				r.slots[r.started%window] = result[T]{i: r.started, err: err, filled: true}
				r.started++
				return
			}
		}
		r.local += res
		r.inflight++
		i := r.started
		r.started++
		go func() {
			item, cost, err := r.fetch(r.ctx, i)
			r.results <- result[T]{i: i, item: item, cost: cost, err: err, reserved: res}
		}()
	}
}

// busy is the refusal of an item after an earlier one was refused.
func (r *runner[T]) busy(n int64) error {
	s := r.cfg.Budget.Stats()
	return &membudget.BusyError{Need: n, InUse: s.InUse, Limit: s.Limit, RetryAfter: membudget.DefaultRetryAfter}
}

// finish settles a fetch's reservation against its cost and files it.
func (r *runner[T]) finish(res result[T]) {
	r.inflight--
	held := max(res.cost.Held, 0)
	if res.err != nil {
		held = 0
	}
	switch {
	case held > res.reserved:
		r.cfg.Budget.Force(held - res.reserved)
		r.local += held - res.reserved
	case held < res.reserved:
		r.release(res.reserved - held)
	}
	res.cost.Held = held
	if res.err == nil {
		r.known = true
		r.reserve = max(r.reserve, res.cost.Held, res.cost.Peak)
		r.cfg.Shared.Observe(max(res.cost.Held, res.cost.Peak))
	}
	res.filled = true
	r.slots[res.i%len(r.slots)] = res
}

func (r *runner[T]) release(n int64) {
	if n > 0 {
		r.local -= n
		r.cfg.Budget.Release(n)
	}
}

// drain ends the fetches still running, waits for them and releases
// everything the command holds.
func (r *runner[T]) drain() {
	r.cancel()
	for r.inflight > 0 {
		r.finish(<-r.results)
	}
	for i := range r.slots {
		if r.slots[i].filled {
			r.release(r.slots[i].cost.Held)
			r.slots[i] = result[T]{}
		}
	}
}
