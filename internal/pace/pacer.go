package pace

import "time"

// Pacer adapts the rate of hint delivery to how fast destinations answer,
// so that delivery takes the capacity clients leave unused and gives it
// back when they need it: a background transfer in the spirit of LEDBAT
// (RFC 6817), with the latency of hint merges as the congestion signal.
//
// Every PacerTick it takes the mean latency of the tick's deliveries, and
// keeps as the base latency the smallest tick mean of the last
// PacerBaseWindows windows of PacerBaseWindow each (a mean, not a single
// sample: one lucky fast answer would make every later tick look
// congested). A tick mean above twice the base plus PacerSlack means the
// destinations (or this node) are queueing, and the rate halves; below one
// and a half times the base plus the slack, the rate grows by a fiftieth of
// the span between the floor and the cap; in between it holds. It starts
// at the floor, and falls back to it after PacerIdle without samples, so
// each drain starts gently and learns its base at low load.
//
// The base only learns from this node's own deliveries, so a cluster that
// is already loaded when a drain starts teaches a higher base; the floor
// bounds how slow a drain can get. Not safe for concurrent use.
type Pacer struct {
	min, max float64
	rate     float64

	tickStart time.Time
	sum       time.Duration // of this tick's latencies
	n         int           // samples this tick
	last      time.Time     // of the last sample

	mins     [PacerBaseWindows]time.Duration // 0: no sample in that window
	winStart time.Time
	cur      int
}

const (
	// PacerTick is how often the rate is adjusted (given samples).
	PacerTick = 100 * time.Millisecond
	// PacerBaseWindow and PacerBaseWindows: the base latency is the
	// minimum over the last 10 windows of 3s, so it follows a lasting
	// change of the machine or network within 30s.
	PacerBaseWindow  = 3 * time.Second
	PacerBaseWindows = 10
	// PacerSlack is latency growth that never counts as queueing: loopback
	// merges take a few hundred microseconds, where scheduling noise alone
	// doubles them.
	PacerSlack = time.Millisecond
	// PacerIdle resets the pacer when no sample came for this long.
	PacerIdle = 10 * time.Second
)

// NewPacer returns a Pacer between lo and hi hints per second (lo is
// raised to at least 1, hi to at least lo), starting at lo.
func NewPacer(lo, hi float64) *Pacer {
	if !(lo >= 1) { // NaN too
		lo = 1
	}
	if !(hi >= lo) {
		hi = lo
	}
	return &Pacer{min: lo, max: hi, rate: lo}
}

// Rate returns the current rate in hints per second.
func (p *Pacer) Rate() float64 { return p.rate }

// Base returns the base latency (0 before the first tick ended).
func (p *Pacer) Base() time.Duration {
	var b time.Duration
	for _, m := range p.mins {
		if m > 0 && (b == 0 || m < b) {
			b = m
		}
	}
	return b
}

func (p *Pacer) reset(now time.Time) {
	*p = Pacer{min: p.min, max: p.max, rate: p.min, tickStart: now, winStart: now}
}

// Observe records that one delivery took rtt, at now, and returns the rate
// to use from now on; changed reports whether it differs from before.
// Samples of zero or negative latency are ignored. now must not go
// backwards (a monotonic clock).
func (p *Pacer) Observe(now time.Time, rtt time.Duration) (rate float64, changed bool) {
	old := p.rate
	if p.last.IsZero() || now.Sub(p.last) >= PacerIdle {
		p.reset(now)
	}
	if rtt <= 0 {
		return p.rate, p.rate != old
	}
	p.last = now
	for now.Sub(p.winStart) >= PacerBaseWindow {
		p.winStart = p.winStart.Add(PacerBaseWindow)
		p.cur = (p.cur + 1) % PacerBaseWindows
		p.mins[p.cur] = 0
		if now.Sub(p.winStart) >= PacerBaseWindow*PacerBaseWindows {
			p.winStart = now // a long gap: skip the empty windows at once
		}
	}
	p.sum += rtt
	p.n++
	if now.Sub(p.tickStart) < PacerTick {
		return p.rate, p.rate != old
	}
	mean := p.sum / time.Duration(p.n)
	p.sum, p.n, p.tickStart = 0, 0, now
	if m := p.mins[p.cur]; m == 0 || mean < m {
		p.mins[p.cur] = mean
	}
	base := p.Base()
	switch {
	case mean > 2*base+PacerSlack:
		p.rate = max(p.min, p.rate/2)
	case mean < base+base/2+PacerSlack:
		p.rate = min(p.max, p.rate+max(1, (p.max-p.min)/50))
	}
	return p.rate, p.rate != old
}
