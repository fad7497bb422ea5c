package transport

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// peer is the pool of connections to one address, with its reconnect
// state.
type peer struct {
	t    *TCP
	addr string

	mu      sync.Mutex
	conns   []*conn       // live ones; dead ones are pruned on use
	next    uint32        // round-robin cursor, when every conn is busy
	dialing *pendingDial  // non-nil while a dial runs
	backoff time.Duration // the last backoff; 0 after a success
	retryAt time.Time     // no dial before this
	lastErr error         // why the last dial failed
}

// pendingDial is a dial in flight, which calls without a connection wait
// for.
type pendingDial struct {
	done chan struct{} // closed when the dial has ended and its result is in
	// cancel aborts the dial (Forget). forgotten, set under peer.mu by
	// Forget, means the peer was declared dead while the dial ran: its
	// connection, if it made one, is closed rather than used, and its
	// waiters fail. Read it after done is closed.
	cancel    context.CancelFunc
	forgotten bool
}

// maxDialRounds bounds how often one call waits for a dial, in case each
// new connection dies before the call can use it.
const maxDialRounds = 2

// get returns a live connection to the peer, dialing if there is none.
// While the peer is in backoff it fails at once with the last dial error.
func (p *peer) get(ctx context.Context) (*conn, error) {
	for round := 0; ; round++ {
		p.mu.Lock()
		if c := p.pickLocked(); c != nil {
			p.mu.Unlock()
			return c, nil
		}
		if p.dialing == nil {
			if round >= maxDialRounds || time.Now().Before(p.retryAt) {
				err := p.lastErr
				p.mu.Unlock()
				if err == nil {
					err = &unreachableError{addr: p.addr, cause: fmt.Errorf("connection lost right after dialing")}
				}
				return nil, err
			}
			if !p.startDialLocked() {
				p.mu.Unlock()
				return nil, fmt.Errorf("call %s: %w", p.addr, ErrClosed)
			}
		}
		wait := p.dialing
		p.mu.Unlock()
		select {
		case <-wait.done:
			if wait.forgotten {
				// The request was not sent: unreachable, not lost.
				return nil, &unreachableError{addr: p.addr, cause: errForgotten}
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("call %s: waiting for dial: %w", p.addr, ctx.Err())
		case <-p.t.ctx.Done():
			return nil, fmt.Errorf("call %s: %w", p.addr, ErrClosed)
		}
	}
}

// ready returns a live connection to the peer, or nil when there is none
// (a dial is needed).
func (p *peer) ready() *conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.pickLocked()
}

// pickLocked returns a live connection, or nil: the first one that is
// not busy (conn.busy: a large frame on its way either way, more queued
// than one write takes, or half its MaxInflight calls), else the next in
// turn. So small calls share one connection, and their frames share
// writes and reads (one write syscall per batch of requests instead of one
// per connection's share of it), while the others take the calls that
// would wait behind a large frame or a full connection.
func (p *peer) pickLocked() *conn {
	p.pruneLocked()
	n := len(p.conns)
	if n == 0 {
		return nil
	}
	var c *conn
	for _, x := range p.conns {
		if !x.busy() {
			c = x
			break
		}
	}
	if c == nil {
		c = p.conns[p.next%uint32(n)]
		p.next++
	}
	// Grow towards ConnsPerPeer in the background; callers never wait for
	// a second connection.
	if n < p.t.cfg.ConnsPerPeer && p.dialing == nil && !time.Now().Before(p.retryAt) {
		p.startDialLocked()
	}
	return c
}

func (p *peer) pruneLocked() {
	live := p.conns[:0]
	for _, c := range p.conns {
		if !c.isDead() {
			live = append(live, c)
		}
	}
	clear(p.conns[len(live):])
	p.conns = live
}

// startDialLocked dials one more connection in the background. The dial is
// not tied to any caller's ctx, because several callers share it; Forget
// ends it (forgetDialLocked).
func (p *peer) startDialLocked() bool {
	ctx, cancel := context.WithCancel(p.t.ctx)
	d := &pendingDial{done: make(chan struct{}), cancel: cancel}
	ok := p.t.goFunc(func() {
		defer cancel()
		c, err := p.t.dial(ctx, p.addr)
		if p.t.afterDial != nil {
			p.t.afterDial()
		}
		p.mu.Lock()
		forgotten := d.forgotten
		switch {
		case forgotten:
			// Forget reset the backoff; the next call dials afresh.
		case err != nil:
			p.backoff = min(max(2*p.backoff, p.t.cfg.BackoffMin), p.t.cfg.BackoffMax)
			// Jitter in [backoff/2, backoff] keeps peers that lost the same
			// node from redialling it in lockstep.
			p.retryAt = time.Now().Add(p.backoff/2 + rand.N(p.backoff/2+1))
			p.lastErr = err
		default:
			p.backoff, p.retryAt, p.lastErr = 0, time.Time{}, nil
			p.conns = append(p.conns, c)
		}
		if p.dialing == d {
			p.dialing = nil
		}
		close(d.done)
		p.mu.Unlock()
		if forgotten && c != nil {
			c.fail(errForgotten)
		}
	})
	if ok {
		p.dialing = d
	} else {
		cancel()
	}
	return ok
}

// forgetDialLocked makes the dial in flight, if any, not survive Forget:
// it is aborted, the connection it may still make is closed instead of
// used, and the calls waiting on it fail. The next call dials afresh
// without waiting for it.
func (p *peer) forgetDialLocked() {
	if d := p.dialing; d != nil {
		d.forgotten = true
		d.cancel()
		p.dialing = nil
	}
}
