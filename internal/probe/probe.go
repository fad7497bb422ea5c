// Package probe shares one health-check write between concurrent callers:
// at most one write runs at a time, and its result is reused for a while,
// so a burst of probes (several probers, a retrying load balancer) costs
// one write, and a write stuck on a hung disk hangs no caller.
package probe

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/clock"
)

// Shared runs at most one probe write at a time and shares its result
// with every caller for a freshness window. The write runs in a goroutine
// of its own, tracked by no one: a write stuck on a hung disk must neither
// hang the caller nor hold up a shutdown; there is at most one. The zero
// value is ready to use.
type Shared struct {
	// Clock times the freshness window; nil is clock.Real.
	Clock clock.Clock

	mu      sync.Mutex
	running chan struct{} // closed when the write in flight ends; nil if none
	done    time.Time     // when the last write ended
	err     error         // its result
}

// Check returns the result of a write that ended within fresh, or starts
// write (unless one is in flight) and waits for it until ctx ends; slow is
// returned when ctx's deadline passes first.
func (p *Shared) Check(ctx context.Context, fresh time.Duration, slow error, write func() error) error {
	clk := clock.Or(p.Clock)
	p.mu.Lock()
	if p.running == nil && !p.done.IsZero() && clock.Since(clk, p.done) < fresh {
		err := p.err
		p.mu.Unlock()
		return err
	}
	ch := p.running
	if ch == nil {
		ch = make(chan struct{})
		p.running = ch
		go func() {
			err := write()
			p.mu.Lock()
			p.running, p.done, p.err = nil, clk.Now(), err
			p.mu.Unlock()
			close(ch)
		}()
	}
	p.mu.Unlock()
	select {
	case <-ch:
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return slow
		}
		return ctx.Err()
	}
}
