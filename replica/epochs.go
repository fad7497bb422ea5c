package replica

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/quorumkv/quorumkv/store"
)

// epochLease is how many epochs are reserved with each persisted high-water
// mark: one fsynced meta write per lease.
const epochLease = 1 << 16

var errEpochsExhausted = errors.New("epoch lease exhausted")

// Epochs hands out actor epochs. The rule (package vclock): a node mints a
// dot for a key only under an epoch all of whose earlier dots for that key
// are in its local copy. A record remembers the epoch its node minted
// under; that epoch is reused while it is at least validFrom. A key with no
// local copy, or whose epoch predates validFrom (set at every unclean
// start, when the local copy may have lost recent writes), gets a fresh
// epoch, never handed out before because the high-water mark is persisted
// before use. A new data directory starts at a random high-water mark, so a
// wiped node does not reuse its old incarnation's epochs either.
//
// Safe for concurrent use. OpenDir opens it.
type Epochs struct {
	mu        sync.Mutex
	next, hw  uint64
	validFrom uint64
	st        *store.Store
	// deferred are OpenDir's writes the full disk refused, in order;
	// hasDeferred mirrors len(deferred) > 0 for the lock-free check.
	deferred    []func() error
	hasDeferred atomic.Bool
}

// openEpochs loads the epoch state. fresh is true for a new data directory
// (no high-water mark yet; randomBase seeds it); unclean is true when the
// last run did not close cleanly. put does a write now or defers it
// (OpenDir); the first lease is taken only if nothing was deferred, and a
// full disk leaves it to the first Mint (extend).
func openEpochs(st *store.Store, randomBase uint64, unclean bool, put func(func() error) error) (*Epochs, error) {
	hw, ok, err := getUint64Meta(st, metaEpochHW)
	if err != nil {
		return nil, err
	}
	if !ok {
		// Keep the top bits clear so the counter never wraps.
		hw = randomBase>>2 | 1
	}
	from, _, err := getUint64Meta(st, metaEpochFrom)
	if err != nil {
		return nil, err
	}
	e := &Epochs{next: hw, hw: hw, validFrom: from, st: st}
	if unclean || !ok {
		e.validFrom = hw
		if err := put(func() error { return putUint64Meta(st, metaEpochFrom, hw) }); err != nil {
			return nil, err
		}
	}
	if err := e.extend(); err != nil && !errors.Is(err, store.ErrDiskFull) {
		return nil, err
	}
	return e, nil
}

// setDeferred keeps OpenDir's refused writes for ready.
func (e *Epochs) setDeferred(writes []func() error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.deferred = writes
	e.hasDeferred.Store(len(writes) > 0)
}

// ready does OpenDir's deferred writes, if any are left, in order: nil
// once all are done (one atomic load from then on), else the first
// failure (store.ErrDiskFull while the disk is still full). Every record
// and hint write calls it first.
func (e *Epochs) ready() error {
	if !e.hasDeferred.Load() {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(e.deferred) > 0 {
		if err := e.deferred[0](); err != nil {
			return fmt.Errorf("data directory's own writes, deferred since a start on a full disk: %w", err)
		}
		e.deferred = e.deferred[1:]
	}
	e.hasDeferred.Store(false)
	return nil
}

// extend persists a new high-water mark when less than half a lease is
// left. Callers hold no store key lock.
func (e *Epochs) extend() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hw-e.next > epochLease/2 {
		return nil
	}
	hw := e.hw + epochLease
	if err := putUint64Meta(e.st, metaEpochHW, hw); err != nil {
		return fmt.Errorf("persist epoch lease: %w", err)
	}
	e.hw = hw
	return nil
}

// alloc returns a fresh epoch from the persisted lease without blocking.
func (e *Epochs) alloc() (uint64, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.next >= e.hw {
		return 0, errEpochsExhausted
	}
	v := e.next
	e.next++
	return v, nil
}

// low reports whether less than half a lease is left.
func (e *Epochs) low() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hw-e.next < epochLease/2
}

// valid reports whether a record minted under mint may mint again under it.
func (e *Epochs) valid(mint uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return mint != 0 && mint >= e.validFrom && mint < e.hw
}

// invalidateAll moves validFrom past every epoch handed out so far, so new
// writes mint under fresh epochs: the records that made the old ones safe
// to reuse are gone.
func (e *Epochs) invalidateAll() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := putUint64Meta(e.st, metaEpochFrom, e.next); err != nil {
		return fmt.Errorf("persist epoch floor: %w", err)
	}
	e.validFrom = e.next
	return nil
}
