package quorum

import (
	"context"
	"sync"
	"time"
)

// callsCtx is the context of a request's replica calls (see callsSlack
// in coordinator.go): its request's values, no cancellation from it, and a
// deadline callsSlack after the request's. The calls on the hot path
// (AsyncReplicas over the TCP transport) only ask for its Deadline and,
// when they expire, its Err; so the timer and channel a
// context.WithDeadline costs are made only when someone asks for Done
// (a blocking call, a local merge waiting on the store). A request embeds
// its callsCtx in the state it allocates anyway; init it once, before
// use, and call cancel once the calls are done with.
type callsCtx struct {
	parent   context.Context // for Value only; its cancellation is not ours
	deadline time.Time

	mu   sync.Mutex
	err  error           // set by cancel
	real context.Context // made by Done, ended by cancel
	stop context.CancelFunc
}

var _ context.Context = (*callsCtx)(nil)

// init makes c the calls context of a request whose context is ctx (which
// has a deadline).
func (c *callsCtx) init(ctx context.Context) {
	d, _ := ctx.Deadline()
	c.parent, c.deadline = ctx, d.Add(callsSlack)
}

// initDeadline is init for a request that ends at deadline (at the
// latest ctx's own), without a context of its own.
func (c *callsCtx) initDeadline(ctx context.Context, deadline time.Time) {
	c.parent, c.deadline = ctx, deadline.Add(callsSlack)
}

func (c *callsCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *callsCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real == nil {
		c.real, c.stop = context.WithDeadline(context.WithoutCancel(c.parent), c.deadline)
		if c.err != nil {
			c.stop()
		}
	}
	return c.real.Done()
}

func (c *callsCtx) Err() error {
	c.mu.Lock()
	real, err := c.real, c.err
	c.mu.Unlock()
	switch {
	case real != nil:
		return real.Err()
	case err != nil:
		return err
	case !time.Now().Before(c.deadline):
		return context.DeadlineExceeded
	}
	return nil
}

func (c *callsCtx) Value(key any) any { return c.parent.Value(key) }

func (c *callsCtx) String() string { return "quorum.callsCtx" }

// cancel ends the calls still out, as a context.CancelFunc does: Err
// reports context.Canceled from now on (DeadlineExceeded if the deadline
// came first).
func (c *callsCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = context.Canceled
	if !time.Now().Before(c.deadline) {
		c.err = context.DeadlineExceeded
	}
	if c.real != nil {
		c.stop()
	}
}
