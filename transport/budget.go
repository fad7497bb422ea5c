package transport

import (
	"sync"
	"sync/atomic"
)

// budget counts bytes held for frames in flight against a limit. Readers
// acquire before they read a request body and wait while it is spent;
// replies are added without waiting (they are what frees the budget, so
// making them wait could deadlock) and released once written. Safe for
// concurrent use.
type budget struct {
	limit int64
	held  atomic.Int64

	waiting atomic.Bool // someone may be blocked on wake
	mu      sync.Mutex
	wake    chan struct{} // closed by the next release
}

// tryAcquire takes n bytes if they fit under the limit. A request larger
// than the whole limit is let through when nothing is held, so it cannot
// starve (Validate keeps limits at least MaxFrame, so this is a backstop).
func (b *budget) tryAcquire(n int64) bool {
	for {
		h := b.held.Load()
		if h+n > b.limit && h > 0 {
			return false
		}
		if b.held.CompareAndSwap(h, h+n) {
			return true
		}
	}
}

// add takes n bytes whatever the limit.
func (b *budget) add(n int64) { b.held.Add(n) }

// release returns n bytes and wakes the waiters.
func (b *budget) release(n int64) {
	if n == 0 {
		return
	}
	b.held.Add(-n)
	if b.waiting.Load() {
		b.mu.Lock()
		if b.wake != nil {
			close(b.wake)
			b.wake = nil
		}
		b.waiting.Store(false)
		b.mu.Unlock()
	}
}

// waitCh returns a channel closed by the next release. Call tryAcquire
// again after taking it and before blocking on it, or a release in between
// is missed.
func (b *budget) waitCh() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wake == nil {
		b.wake = make(chan struct{})
	}
	b.waiting.Store(true)
	return b.wake
}

// acquire2 takes n bytes from both budgets (the connection's, then the
// node's), waiting until they fit or done is closed; false means done.
func acquire2(conn, node *budget, n int64, done <-chan struct{}) bool {
	try := func() bool {
		if !conn.tryAcquire(n) {
			return false
		}
		if node.tryAcquire(n) {
			return true
		}
		// Undo without waking: the only waiter on the connection's budget
		// is this reader, and waking it would make it spin.
		conn.held.Add(-n)
		return false
	}
	if try() {
		return true
	}
	for {
		// Take both channels before trying again, so that a release in
		// between is not missed.
		cw, nw := conn.waitCh(), node.waitCh()
		if try() {
			return true
		}
		select {
		case <-cw:
		case <-nw:
		case <-done:
			return false
		}
	}
}
