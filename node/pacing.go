package node

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/quorumkv/quorumkv/hintedhandoff"
)

// pacedLimiter caps background work (hint delivery, anti-entropy repairs)
// at a rate that adapts between a floor and a cap to the latency of the
// work's own RPCs (hintedhandoff.Pacer: LEDBAT-like), so background work
// takes the capacity clients leave and gives it back when they need it.
// With a zero floor it is a fixed-rate token bucket. A nil *pacedLimiter
// imposes no limit. Safe for concurrent use.
type pacedLimiter struct {
	lim   *rate.Limiter
	mu    sync.Mutex           // orders pacer changes into the limiter
	pacer *hintedhandoff.Pacer // nil: a fixed rate
}

// newPacedLimiter returns a limiter of units per second between floor and
// ceiling (ceiling <= 0: no limit, nil; floor <= 0: fixed at ceiling),
// allowing bursts of burst units.
func newPacedLimiter(floor, ceiling, burst int) *pacedLimiter {
	if ceiling <= 0 {
		return nil
	}
	p := &pacedLimiter{}
	limit := float64(ceiling)
	if floor > 0 && floor < ceiling {
		p.pacer = hintedhandoff.NewPacer(float64(floor), float64(ceiling))
		limit = p.pacer.Rate()
	}
	p.lim = rate.NewLimiter(rate.Limit(limit), max(1, min(ceiling, burst)))
	return p
}

// WaitN blocks until n units may go, or ctx ends.
func (p *pacedLimiter) WaitN(ctx context.Context, n int) error {
	if p == nil {
		return nil
	}
	return p.lim.WaitN(ctx, min(n, p.lim.Burst()))
}

// Burst is the most units one WaitN admits (0: no limit).
func (p *pacedLimiter) Burst() int {
	if p == nil {
		return 0
	}
	return p.lim.Burst()
}

// Observe feeds the latency of one unit of work (or one batch) to the
// pacer, which may change the rate.
func (p *pacedLimiter) Observe(rtt time.Duration) {
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
func (p *pacedLimiter) Rate() float64 {
	if p == nil {
		return 0
	}
	return float64(p.lim.Limit())
}
