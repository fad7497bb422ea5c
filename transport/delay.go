package transport

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// MaxInjectedDelay caps one delay a Delayed transport waits, whatever its
// DelayFunc returns, so a mistyped distribution cannot park calls for hours.
const MaxInjectedDelay = time.Minute

// DelayFunc draws the delay of one message. Delayed calls it from many
// goroutines at once, so it must be safe for concurrent use (lock a shared
// *rand.Rand). A negative result counts as zero.
type DelayFunc func() time.Duration

// Delayed wraps a Transport and delays every node-to-node message it
// carries, for latency experiments on one machine (quorumkv agent
// --inject-delay). Each Call is two messages and waits two independent
// draws: one before the request is handed to the wrapped transport (the
// replica sees it late), one after the reply came back (the caller sees it
// late). Only outgoing calls are delayed: a node serving a call adds
// nothing, so a message between two wrapped nodes is delayed once.
//
// Both waits honour ctx and Close: a call whose ctx ends while waiting
// returns an error matching ctx.Err() without sending (or drops the reply it
// already has, as a late reply would be dropped); after Close waiting calls
// return ErrClosed. The wrapped transport's own Forget (connection reset on
// a dead peer, which node type-asserts for) is forwarded.
//
// Delayed is safe for concurrent use.
type Delayed struct {
	tr    Transport
	delay DelayFunc

	closeOnce sync.Once
	closed    chan struct{}
}

var _ Transport = (*Delayed)(nil)

// NewDelayed returns tr with every message delayed by a draw of delay. A
// nil delay adds nothing.
func NewDelayed(tr Transport, delay DelayFunc) *Delayed {
	if delay == nil {
		delay = func() time.Duration { return 0 }
	}
	return &Delayed{tr: tr, delay: delay, closed: make(chan struct{})}
}

// Call waits a drawn delay, sends through the wrapped transport, then waits
// another drawn delay before returning the reply. Errors of the wrapped
// Call are returned at once, undelayed: a refused connection or a remote
// error is what the caller would have seen, and a slow failure path would
// only blur failure detection timings that the experiment does not model.
func (d *Delayed) Call(ctx context.Context, addr string, m Method, body []byte) ([]byte, error) {
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	reply, err := d.tr.Call(ctx, addr, m, body)
	if err != nil {
		return reply, err
	}
	if err := d.wait(ctx); err != nil {
		return nil, err
	}
	return reply, nil
}

// wait sleeps one drawn delay, or until ctx ends or d is closed.
func (d *Delayed) wait(ctx context.Context) error {
	select {
	case <-d.closed:
		return fmt.Errorf("delayed call: %w", ErrClosed)
	default:
	}
	dl := min(d.delay(), MaxInjectedDelay)
	if dl <= 0 {
		return ctx.Err()
	}
	if err := sleep(ctx, dl, d.closed); err != nil {
		return fmt.Errorf("delayed call: %w", err)
	}
	return nil
}

// sleep waits d unless ctx ends first (its error) or stop is closed
// (ErrClosed).
func sleep(ctx context.Context, d time.Duration, stop <-chan struct{}) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
		return ErrClosed
	}
}

// LocalAddr returns the wrapped transport's address.
func (d *Delayed) LocalAddr() string { return d.tr.LocalAddr() }

// Close wakes every waiting call with ErrClosed and closes the wrapped
// transport. It is idempotent as far as the wrapped Close is.
func (d *Delayed) Close() error {
	d.closeOnce.Do(func() { close(d.closed) })
	return d.tr.Close()
}

// Forget forwards to the wrapped transport's Forget, if it has one (TCP
// does): it closes the connections to addr so calls to a peer declared dead
// fail at once.
func (d *Delayed) Forget(addr string) {
	if f, ok := d.tr.(interface{ Forget(addr string) }); ok {
		f.Forget(addr)
	}
}

// Unwrap returns the wrapped transport.
func (d *Delayed) Unwrap() Transport { return d.tr }
