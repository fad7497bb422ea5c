package transport

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// budgetCtx is a handler's ctx when the request carries a budget: the
// connection's ctx bounded by the request's deadline. context.WithDeadline
// would arm a timer and register with the parent for every request, which
// showed at 4-8% of a replica's CPU under load, although most handlers
// never wait on Done: they check Err, or finish before the deadline. So
// budgetCtx starts that timer only when someone asks for Done or Value
// (context.WithCancel, AfterFunc and Cause all go through one of them);
// until then Err reads the clock.
//
// The context contract holds: Err is nil until Done is closed. Err only
// reports an error after materializing the real ctx, whose Done is then
// closed already (WithDeadline with a passed deadline, or a cancelled
// parent, closes it before returning).
//
// Requests read together with the same budget share one budgetCtx
// (conn.budgetCtxFor): an allocation per request was the serving side's
// one allocation per message. refs counts the handlers holding it; the
// last release cancels the real ctx, so a handler's return never cancels
// the ctx of another one still running.
type budgetCtx struct {
	parent   context.Context
	deadline time.Time
	refs     atomic.Int32 // handlers holding c; 0: released, not to be shared again

	mu     sync.Mutex
	real   context.Context // nil until needed
	cancel context.CancelFunc
}

var _ context.Context = (*budgetCtx)(nil)

// newBudgetCtx returns a budgetCtx held by one handler, allocated alone
// (the reader takes its own from a budgetCtxSlab).
func newBudgetCtx(parent context.Context, deadline time.Time) *budgetCtx {
	c := new(budgetCtx)
	c.init(parent, deadline)
	return c
}

// init readies a zero budgetCtx for one handler: its parent, its
// deadline, one hold.
func (c *budgetCtx) init(parent context.Context, deadline time.Time) {
	c.parent, c.deadline = parent, deadline
	c.refs.Store(1)
}

// ctxSlabSize is how many budgetCtx a connection's reader allocates at
// once (budgetCtxSlab).
const ctxSlabSize = 16

// budgetCtxSlab hands out budgetCtx from arrays of ctxSlabSize, one
// allocation for that many requests, each element used once and never
// reused: a ctx a handler keeps past its return (a forwarded call's
// TCP.Go keeps it for its expiry) still holds its own deadline. Such a
// ctx keeps its whole array (ctxSlabSize times ~80 bytes) from the
// collector until it is dropped. Not safe for concurrent use: a
// connection's reader goroutine owns one.
type budgetCtxSlab []budgetCtx

// next returns a budgetCtx held by one handler.
func (s *budgetCtxSlab) next(parent context.Context, deadline time.Time) *budgetCtx {
	if len(*s) == 0 {
		*s = make([]budgetCtx, ctxSlabSize)
	}
	c := &(*s)[0]
	*s = (*s)[1:]
	c.init(parent, deadline)
	return c
}

// share takes one more hold on c for another handler, unless every
// holder has released it already.
func (c *budgetCtx) share() bool {
	for {
		n := c.refs.Load()
		if n <= 0 {
			return false
		}
		if c.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// materialize returns the real ctx, creating it on first use.
func (c *budgetCtx) materialize() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real == nil {
		c.real, c.cancel = context.WithDeadline(c.parent, c.deadline)
	}
	return c.real
}

// release drops one handler's hold; the last one frees the timer, if one
// was started. That handler has returned: it may not use c afterwards.
func (c *budgetCtx) release() {
	if c.refs.Add(-1) > 0 {
		return
	}
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

func (c *budgetCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *budgetCtx) Done() <-chan struct{} { return c.materialize().Done() }

func (c *budgetCtx) Value(key any) any { return c.materialize().Value(key) }

func (c *budgetCtx) Err() error {
	c.mu.Lock()
	real := c.real
	c.mu.Unlock()
	if real != nil {
		return real.Err()
	}
	if c.parent.Err() == nil && time.Now().Before(c.deadline) {
		return nil
	}
	return c.materialize().Err()
}

func (c *budgetCtx) String() string { return "transport.budgetCtx" }
