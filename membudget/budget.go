package membudget

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config.
const (
	// DefaultMaxWait is how long a request waits for room before ErrBusy:
	// long enough to ride out a burst (other requests finish in
	// milliseconds), short against the client timeouts (seconds) so a
	// refused client learns it quickly and can retry elsewhere.
	DefaultMaxWait = 500 * time.Millisecond
	// DefaultRetryAfter is the base of BusyError.RetryAfter.
	DefaultRetryAfter = time.Second
	// maxRetryFactor caps how much RetryAfter grows with the queue.
	maxRetryFactor = 8
)

// Config configures a Budget.
type Config struct {
	// Limit is the budget in bytes; must be > 0.
	Limit int64
	// MaxWait is the longest Take waits for room before failing with
	// ErrBusy (the caller's context may end it sooner). Zero means
	// DefaultMaxWait; negative means never wait (fail at once when full).
	MaxWait time.Duration
	// RetryAfter is the least BusyError.RetryAfter. Zero means
	// DefaultRetryAfter.
	RetryAfter time.Duration
	// Parent, if set, is charged for every byte this budget grants too: a
	// sub-budget (say, RESP partial commands) capped on its own and
	// inside the node's. A request waits in this budget's line, then in
	// the parent's, each up to its own MaxWait. Nil: no parent.
	Parent *Budget
	// SmallRequest turns on a lane for small requests: a request that
	// holds at most this many bytes in all (a Take of n, or a Hold
	// resized to at most it) does not wait behind larger ones, and may
	// use the Reserve, which larger requests leave free. Ordinary small
	// requests then keep flowing while a few large ones wait for room
	// (issue 14: during a memory-amplification attack, up to 2% of a
	// well-behaved client's small requests were refused busy, queued
	// behind the attack's). Zero: no lane, one line for all.
	SmallRequest int64
	// Reserve is the part of Limit that only small requests may use
	// (with SmallRequest; must be below Limit). A larger request fits
	// when it leaves the reserve free, or, when it is too large to leave
	// it free, when it fits the whole budget.
	Reserve int64
}

// Validate reports a bad field. It never changes c.
func (c Config) Validate() error {
	switch {
	case c.Limit <= 0:
		return fmt.Errorf("membudget: limit %d bytes: must be > 0", c.Limit)
	case c.RetryAfter < 0:
		return fmt.Errorf("membudget: retry-after %v: must be >= 0", c.RetryAfter)
	case c.Parent != nil && c.Limit > c.Parent.limit:
		return fmt.Errorf("membudget: limit %d bytes exceeds the parent's %d", c.Limit, c.Parent.limit)
	case c.SmallRequest < 0 || c.Reserve < 0:
		return fmt.Errorf("membudget: small request %d, reserve %d bytes: must be >= 0", c.SmallRequest, c.Reserve)
	case c.Reserve > 0 && (c.SmallRequest == 0 || c.Reserve >= c.Limit):
		return fmt.Errorf("membudget: reserve %d bytes: needs a small-request size and must be below the limit %d", c.Reserve, c.Limit)
	}
	return nil
}

// Budget counts bytes held for requests in flight against a limit. Take
// gets bytes (waiting up to MaxWait for room, first come first served;
// with Config.SmallRequest, in two lanes: small requests are not held
// behind large ones), Release returns them. A nil *Budget is unlimited: every method is a
// no-op that succeeds, so callers need not check whether accounting is on.
// Safe for concurrent use.
type Budget struct {
	limit      int64
	maxWait    time.Duration
	retryAfter time.Duration
	parent     *Budget
	small      int64 // Config.SmallRequest
	reserve    int64 // Config.Reserve

	held        atomic.Int64 // bytes granted and not released
	queued      atomic.Int32 // waiters queued: the fast path yields to them
	queuedSmall atomic.Int32 // small ones among them: a small request yields only to these
	peak        atomic.Int64

	waited, refused, tooLarge atomic.Uint64

	mu          sync.Mutex
	queue       []*waiter // FIFO, oldest first
	queuedBytes int64
}

// waiter is one Take waiting for room.
type waiter struct {
	n       int64
	small   bool          // in the small requests' lane
	ready   chan struct{} // closed when granted
	granted bool          // under Budget.mu
}

// New returns a Budget, or an error if cfg is invalid.
func New(cfg Config) (*Budget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Budget{limit: cfg.Limit, maxWait: cmp.Or(cfg.MaxWait, DefaultMaxWait), retryAfter: cmp.Or(cfg.RetryAfter, DefaultRetryAfter), parent: cfg.Parent,
		small: cfg.SmallRequest, reserve: cfg.Reserve}, nil
}

// Limit returns the budget in bytes (0 for a nil Budget).
func (b *Budget) Limit() int64 {
	if b == nil {
		return 0
	}
	return b.limit
}

// Take gets n bytes. When they do not fit, it waits in line (first come,
// first served: a later request never overtakes a waiting one, so a large
// request is not starved by a stream of small ones) for at most MaxWait or
// until ctx ends, then returns a *BusyError. While a large request waits
// at the head, smaller ones behind it wait too, at most MaxWait, so it
// cannot starve them forever either. n larger than the whole budget fails
// at once with a *TooLargeError. n <= 0 takes nothing. With a Parent, the
// bytes are taken from this budget and then the parent; failing either
// takes nothing. With Config.SmallRequest, a request of at most that
// many bytes waits only behind other small ones.
func (b *Budget) Take(ctx context.Context, n int64) error {
	return b.take(ctx, n, n)
}

// take is Take of n more bytes for a request that holds total bytes with
// them (a Hold's new size), which says whether it is small.
func (b *Budget) take(ctx context.Context, n, total int64) error {
	if b == nil || n <= 0 {
		return nil
	}
	if n > b.limit {
		b.tooLarge.Add(1)
		return &TooLargeError{Need: n, Limit: b.limit}
	}
	small := b.isSmall(total)
	if !b.tryFast(n, small) {
		if err := b.wait(ctx, n, small); err != nil {
			return err
		}
	}
	if b.parent != nil {
		if err := b.parent.take(ctx, n, total); err != nil {
			b.releaseSelf(n)
			return err
		}
	}
	return nil
}

// isSmall says whether a request holding total bytes is in the small lane.
func (b *Budget) isSmall(total int64) bool { return total <= b.small }

// room is the most the budget may hold once a request of n bytes is let
// in: small requests may use all of it, larger ones leave the reserve
// free, unless n is too large to leave it free (it is let in when it fits
// the whole budget: never refused for its size alone).
func (b *Budget) room(n int64, small bool) int64 {
	if small || n > b.limit-b.reserve {
		return b.limit
	}
	return b.limit - b.reserve
}

// TryTake gets n bytes if they fit now and nobody is waiting; it never
// waits. It reports whether it took them.
func (b *Budget) TryTake(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	if n > b.limit || !b.tryFast(n, b.isSmall(n)) {
		return false
	}
	if b.parent != nil && !b.parent.TryTake(n) {
		b.releaseSelf(n)
		return false
	}
	return true
}

// Force adds n bytes whatever the limit, never waiting: for memory that
// is already allocated (a reply being written, a value fetched larger
// than reserved), so that later requests see it. Release them as usual.
func (b *Budget) Force(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.notePeak(b.held.Add(n))
	if b.parent != nil {
		b.parent.Force(n)
	}
}

// Release returns n bytes taken by Take, TryTake or Force, and lets
// waiters in. Releasing more than is held is a bug in the caller and
// panics (as golang.org/x/sync/semaphore does), since the accounting
// would be wrong from then on.
func (b *Budget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	if b.parent != nil {
		b.parent.Release(n)
	}
	b.releaseSelf(n)
}

// releaseSelf is Release of this budget only, not its parent.
func (b *Budget) releaseSelf(n int64) {
	if b.held.Add(-n) < 0 {
		panic("membudget: released more bytes than held")
	}
	if b.queued.Load() > 0 {
		b.mu.Lock()
		b.grantLocked()
		b.mu.Unlock()
	}
}

// Acquire is Take returning the function that releases the bytes; calling
// it more than once releases them once. It costs an allocation that Take
// and Release do not.
func (b *Budget) Acquire(ctx context.Context, n int64) (release func(), err error) {
	if err := b.Take(ctx, n); err != nil {
		return nil, err
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			b.Release(n)
		}
	}, nil
}

// tryFast takes n if it fits and nobody waits ahead of it: nobody at
// all for a large request, no small request for a small one.
func (b *Budget) tryFast(n int64, small bool) bool {
	if small && b.queuedSmall.Load() != 0 || !small && b.queued.Load() != 0 {
		return false
	}
	return b.tryAdd(n, b.room(n, small))
}

// tryAdd takes n if the budget then holds at most room.
func (b *Budget) tryAdd(n, room int64) bool {
	for {
		h := b.held.Load()
		if h+n > room {
			return false
		}
		if b.held.CompareAndSwap(h, h+n) {
			b.notePeak(h + n)
			return true
		}
	}
}

func (b *Budget) notePeak(v int64) {
	for {
		p := b.peak.Load()
		if v <= p || b.peak.CompareAndSwap(p, v) {
			return
		}
	}
}

// wait queues for n bytes. The waiter counts itself in queued before its
// last try under the lock: a Release that lowered held before that try is
// seen by the try, and one after it sees queued > 0 and grants, so no
// wake-up is lost.
func (b *Budget) wait(ctx context.Context, n int64, small bool) error {
	start := time.Now()
	b.mu.Lock()
	first := small && b.queuedSmall.Load() == 0 || len(b.queue) == 0
	b.queued.Add(1)
	if small {
		b.queuedSmall.Add(1)
	}
	if first && b.tryAdd(n, b.room(n, small)) {
		b.dequeuedLocked(small)
		b.mu.Unlock()
		return nil
	}
	if b.maxWait < 0 || ctx.Err() != nil {
		b.dequeuedLocked(small)
		err := b.busyLocked(n, start, ctx.Err())
		b.mu.Unlock()
		return err
	}
	w := &waiter{n: n, small: small, ready: make(chan struct{})}
	b.queue = append(b.queue, w)
	b.queuedBytes += n
	b.mu.Unlock()

	timer := time.NewTimer(b.maxWait)
	defer timer.Stop()
	select {
	case <-w.ready:
		b.waited.Add(1)
		return nil
	case <-timer.C:
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.granted { // granted as the wait ended: keep it
		b.waited.Add(1)
		return nil
	}
	if i := slices.Index(b.queue, w); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1)
	}
	b.queuedBytes -= n
	b.dequeuedLocked(small)
	// It may have been the head holding back smaller requests that fit.
	b.grantLocked()
	return b.busyLocked(n, start, ctx.Err())
}

// dequeuedLocked uncounts a waiter that leaves the queue.
func (b *Budget) dequeuedLocked(small bool) {
	b.queued.Add(-1)
	if small {
		b.queuedSmall.Add(-1)
	}
}

// grantLocked lets in waiters that fit, oldest first within each lane: a
// waiter that does not fit holds back the later ones of its lane, not
// those of the other.
func (b *Budget) grantLocked() {
	var blocked [2]bool // by lane: large, small
	kept := b.queue[:0]
	for i, w := range b.queue {
		if blocked[0] && (blocked[1] || b.queuedSmall.Load() == 0) {
			kept = append(kept, b.queue[i:]...) // nothing more can go in
			break
		}
		lane := 0
		if w.small {
			lane = 1
		}
		if blocked[lane] || !b.tryAdd(w.n, b.room(w.n, w.small)) {
			blocked[lane] = true
			kept = append(kept, w)
			continue
		}
		b.queuedBytes -= w.n
		b.dequeuedLocked(w.small)
		w.granted = true
		close(w.ready)
	}
	clear(b.queue[len(kept):])
	b.queue = kept
	if len(b.queue) == 0 {
		b.queue = nil // drop the backing array a burst grew
	}
}

func (b *Budget) busyLocked(n int64, start time.Time, cause error) error {
	b.refused.Add(1)
	// Suggest a longer wait when more is queued than the budget holds.
	f := min(maxRetryFactor, 1+(b.queuedBytes+b.held.Load())/b.limit)
	return &BusyError{Need: n, InUse: b.held.Load(), Limit: b.limit, Waited: time.Since(start),
		RetryAfter: time.Duration(f) * b.retryAfter, Cause: cause}
}

// Stats is a snapshot of a Budget, for metrics.
type Stats struct {
	// Limit and InUse are bytes; Peak is the most ever in use at once.
	Limit, InUse, Peak int64
	// Waiting is how many requests wait for room now, WaitingBytes what
	// they ask for together.
	Waiting      int
	WaitingBytes int64
	// Waited counts requests that got their bytes after waiting; Refused
	// those that gave up (ErrBusy); TooLarge those larger than the budget.
	Waited, Refused, TooLarge uint64
}

// Stats returns a snapshot (zero for a nil Budget).
func (b *Budget) Stats() Stats {
	if b == nil {
		return Stats{}
	}
	b.mu.Lock()
	waiting, wb := len(b.queue), b.queuedBytes
	b.mu.Unlock()
	return Stats{
		Limit: b.limit, InUse: b.held.Load(), Peak: b.peak.Load(),
		Waiting: waiting, WaitingBytes: wb,
		Waited: b.waited.Load(), Refused: b.refused.Load(), TooLarge: b.tooLarge.Load(),
	}
}
