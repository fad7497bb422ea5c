package pace

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter caps background work (hint delivery, anti-entropy repairs) at a
// rate that adapts between a floor and a cap to the latency of the work's
// own RPCs (Pacer: LEDBAT-like), so background work takes the capacity
// clients leave and gives it back when they need it. With a zero floor it
// is a fixed-rate token bucket. A nil *Limiter imposes no limit. Safe for
// concurrent use.
type Limiter struct {
	lim   *rate.Limiter
	mu    sync.Mutex // orders pacer changes into the limiter
	pacer *Pacer     // nil: a fixed rate
}

// NewLimiter returns a limiter of units per second between floor and
// ceiling (ceiling <= 0: no limit, nil; floor <= 0 or >= ceiling: fixed at
// ceiling), allowing bursts of burst units.
func NewLimiter(floor, ceiling, burst int) *Limiter {
	if ceiling <= 0 {
		return nil
	}
	p := &Limiter{}
	limit := float64(ceiling)
	if floor > 0 && floor < ceiling {
		p.pacer = NewPacer(float64(floor), float64(ceiling))
		limit = p.pacer.Rate()
	}
	p.lim = rate.NewLimiter(rate.Limit(limit), max(1, min(ceiling, burst)))
	return p
}

// WaitN blocks until n units may go (at most one burst: more wait for a
// burst's worth), or ctx ends.
func (p *Limiter) WaitN(ctx context.Context, n int) error {
	if p == nil {
		return nil
	}
	return p.lim.WaitN(ctx, min(n, p.lim.Burst()))
}

// Burst is the most units one WaitN admits (0: no limit).
func (p *Limiter) Burst() int {
	if p == nil {
		return 0
	}
	return p.lim.Burst()
}

// Observe feeds the latency of one unit of work (or one batch) to the
// pacer, which may change the rate.
func (p *Limiter) Observe(rtt time.Duration) {
	if p == nil || p.pacer == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if r, changed := p.pacer.Observe(time.Now(), rtt); changed {
		p.lim.SetLimit(rate.Limit(r))
	}
}

// Rate is the current cap in units per second (0: no limit).
func (p *Limiter) Rate() float64 {
	if p == nil {
		return 0
	}
	return float64(p.lim.Limit())
}
