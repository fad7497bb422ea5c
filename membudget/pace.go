package membudget

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// GCPacer sets the Go heap's goal from the largest live heap of a recent
// window instead of from the last collection's: with GOGC=100 the goal is
// twice the heap the last collection found live, and a store's live heap
// swings with its memtable flushes and compactions (a new memtable arena
// and the flush's table builder are live for a few seconds, then
// garbage), so the goal, and the resident memory that follows it with
// the scavenger's lag, swung by half between flushes. The pacer turns
// the proportional goal off (GOGC=off) and keeps the runtime's soft
// memory limit at Factor times the window's largest live heap plus
// Headroom, within [Floor, Ceiling]: the goal then moves only when the
// peaks do. Ceiling is the plan's GoLimit, so the heap never gets more
// room than the plan gave it without the pacer.
type GCPacer struct {
	// Ceiling is the highest soft limit set: the plan's GoLimit.
	Ceiling int64
	// Floor is the lowest soft limit set.
	Floor int64
	// Factor times the window's largest live heap, plus Headroom (the
	// runtime's own memory: stacks, metadata), is the soft limit.
	Factor   float64
	Headroom int64
	// Window is how long a live-heap peak holds the goal up.
	Window time.Duration
	// Every is how often the live heap is read and the limit set.
	Every time.Duration
}

// NewPacer returns the pacer a node runs under the soft limit ceiling
// (the plan's GoLimit, as Apply set it): floor 64 MiB (or ceiling if
// lower), twice the largest live heap of the last ten minutes plus 32
// MiB, checked each second.
func NewPacer(ceiling int64) GCPacer {
	return GCPacer{Ceiling: ceiling, Floor: min(64<<20, ceiling), Factor: 2, Headroom: 32 << 20,
		Window: 10 * time.Minute, Every: time.Second}
}

// Goal is the soft limit for a largest live heap of peak bytes.
func (g GCPacer) Goal(peak int64) int64 {
	v := int64(float64(peak)*g.Factor) + g.Headroom
	return min(max(v, g.Floor), g.Ceiling)
}

// Run paces the collector until stop is closed, then restores GOGC and
// the soft limit to Ceiling. It reads the live heap the last
// collection marked (runtime/metrics /gc/heap/live:bytes).
func (g GCPacer) Run(stop <-chan struct{}) {
	w := peakWindow{span: g.Window}
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	set := func(now time.Time) {
		metrics.Read(m)
		var live int64
		if m[0].Value.Kind() == metrics.KindUint64 {
			live = int64(m[0].Value.Uint64())
		}
		debug.SetMemoryLimit(g.Goal(w.add(now, live)))
	}
	set(time.Now())
	old := debug.SetGCPercent(-1)
	defer func() {
		debug.SetGCPercent(old)
		debug.SetMemoryLimit(g.Ceiling)
	}()
	t := time.NewTicker(g.Every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			set(now)
		}
	}
}

// peakWindow is the largest of the values added over the last span.
type peakWindow struct {
	span time.Duration
	vals []peakSample
}

type peakSample struct {
	at time.Time
	v  int64
}

// add records v at now and returns the largest value of the window
// ending at now.
func (w *peakWindow) add(now time.Time, v int64) int64 {
	w.vals = append(w.vals, peakSample{now, v})
	i := 0
	for i < len(w.vals)-1 && now.Sub(w.vals[i].at) > w.span {
		i++
	}
	w.vals = append(w.vals[:0], w.vals[i:]...)
	var peak int64
	for _, s := range w.vals {
		peak = max(peak, s.v)
	}
	return peak
}
