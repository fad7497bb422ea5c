package multikey

import "sync/atomic"

// Estimator remembers the large fetch costs of recent commands, decaying:
// each observation sets it to the larger of the cost and 15/16 of the
// previous value, so a run of small fetches forgets a large one after a
// few dozen. A nil *Estimator estimates 0. Safe for concurrent use.
type Estimator struct {
	v atomic.Int64
}

// Observe records one fetch's cost in bytes.
func (e *Estimator) Observe(cost int64) {
	if e == nil {
		return
	}
	for {
		old := e.v.Load()
		next := max(cost, old-old/16)
		if next == old || e.v.CompareAndSwap(old, next) {
			return
		}
	}
}

// Get returns the current estimate in bytes.
func (e *Estimator) Get() int64 {
	if e == nil {
		return 0
	}
	return e.v.Load()
}
