package quorum

import (
	"context"
	"sync"
	"time"
)

// lazyCtx is a context with a deadline whose timer and channel, which a
// context.WithDeadline costs at once, are made only when someone asks for
// Done. It serves two purposes:
//
//   - a request's replica calls (see callsSlack in coordinator.go): its
//     request's values, no cancellation from it, and a deadline callsSlack
//     after the request's. The calls on the hot path (AsyncReplicas over
//     the TCP transport) only ask for its Deadline and, when they expire,
//     its Err. init, initDeadline.
//   - a write request's own context at its coordinator (initRequest,
//     linked): its caller's values and cancellation, and the request's
//     deadline. Only a blocking call (a forward, a wait for a key's lock)
//     asks for its Done; the write's own wait is on the caller's Done and
//     a timer of the write's (write.fire), the way a read's is.
//
// A request embeds its lazyCtx in the state it allocates anyway; init it
// once, before use, and call cancel once done with.
type lazyCtx struct {
	parent   context.Context // its values; its cancellation only when linked
	deadline time.Time
	linked   bool

	mu   sync.Mutex
	err  error           // set by cancel
	real context.Context // made by Done, ended by cancel
	stop context.CancelFunc
}

var _ context.Context = (*lazyCtx)(nil)

// init makes c the calls context of a request whose context is ctx (which
// has a deadline).
func (c *lazyCtx) init(ctx context.Context) {
	d, _ := ctx.Deadline()
	c.parent, c.deadline = ctx, d.Add(callsSlack)
}

// initDeadline is init for a request that ends at deadline (at the
// latest ctx's own), without a context of its own.
func (c *lazyCtx) initDeadline(ctx context.Context, deadline time.Time) {
	c.parent, c.deadline = ctx, deadline.Add(callsSlack)
}

// initRequest makes c the context of a request run under ctx with timeout:
// ended by ctx's end too, as context.WithTimeout(ctx, timeout) would be.
func (c *lazyCtx) initRequest(ctx context.Context, timeout time.Duration) {
	c.parent, c.deadline, c.linked = ctx, time.Now().Add(timeout), true
	if d, ok := ctx.Deadline(); ok && d.Before(c.deadline) {
		c.deadline = d
	}
}

func (c *lazyCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *lazyCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real == nil {
		base := c.parent
		if !c.linked {
			base = context.WithoutCancel(base)
		}
		c.real, c.stop = context.WithDeadline(base, c.deadline)
		if c.err != nil {
			c.stop()
		}
	}
	return c.real.Done()
}

func (c *lazyCtx) Err() error {
	c.mu.Lock()
	real, err := c.real, c.err
	c.mu.Unlock()
	switch {
	case real != nil:
		return real.Err()
	case err != nil:
		return err
	}
	if c.linked {
		if err := c.parent.Err(); err != nil {
			return err
		}
	}
	if c.expired() {
		return context.DeadlineExceeded
	}
	return nil
}

// expired reports whether the deadline has passed. time.Until reads only
// the monotonic clock for a deadline that has a monotonic reading (one
// made from time.Now, as every request's is), where time.Now reads the
// wall clock too: Err runs for every replica call (the transport checks
// its context before sending).
func (c *lazyCtx) expired() bool { return time.Until(c.deadline) <= 0 }

func (c *lazyCtx) Value(key any) any { return c.parent.Value(key) }

func (c *lazyCtx) String() string { return "quorum.lazyCtx" }

// cancel ends the calls still out, as a context.CancelFunc does: Err
// reports context.Canceled from now on (DeadlineExceeded if the deadline
// came first, the parent's error if it ended first and c is linked).
func (c *lazyCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = context.Canceled
	switch {
	case c.linked && c.parent.Err() != nil:
		c.err = c.parent.Err()
	case c.expired():
		c.err = context.DeadlineExceeded
	}
	if c.real != nil {
		c.stop()
	}
}
