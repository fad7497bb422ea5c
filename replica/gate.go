package replica

import (
	"errors"
	"sync"
	"sync/atomic"
)

// ErrQuarantined refuses a read or write of this node's records while
// they may be stale (after a long downtime, until the peers answered) or
// are being dropped. The coordinator treats it as a failed replica.
var ErrQuarantined = errors.New("this replica's data may be stale: checking with its peers before serving it")

// Gate closes a replica's records (the quarantine of package antientropy,
// the KV679 guard: a node whose copy may hold values whose tombstones were
// reaped meanwhile must not serve or spread them). Every read and write of
// a record goes through it; hints do not, as they are judged by their age.
// A nil *Gate is always open. Safe for concurrent use.
type Gate struct {
	closed atomic.Bool
	mu     sync.RWMutex
}

// enter admits one read or write of records, or refuses it with
// ErrQuarantined; exit ends it.
func (g *Gate) enter() error {
	if g == nil {
		return nil
	}
	if g.closed.Load() {
		return ErrQuarantined
	}
	g.mu.RLock()
	if g.closed.Load() {
		g.mu.RUnlock()
		return ErrQuarantined
	}
	return nil
}

func (g *Gate) exit() {
	if g != nil {
		g.mu.RUnlock()
	}
}

// Close refuses new reads and writes of records and waits for those in
// flight. The caller must not hold the gate.
func (g *Gate) Close() {
	g.closed.Store(true)
	g.mu.Lock()
	g.mu.Unlock() //nolint:staticcheck // an empty critical section: waiting is the point
}

// Open admits reads and writes again.
func (g *Gate) Open() { g.closed.Store(false) }

// Closed reports whether the records are closed.
func (g *Gate) Closed() bool { return g != nil && g.closed.Load() }
