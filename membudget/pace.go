package membudget

import (
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"time"
)

// GCPacer sets the Go heap's goal from the live heap of a recent window
// instead of from the last collection's: with GOGC=100 the goal is twice
// the heap the last collection found live, and a store's live heap swings
// with its memtable flushes and compactions (a new memtable arena and the
// flush's table builder are live for a few seconds, then garbage), so the
// goal, and the resident memory that follows it with the scavenger's lag,
// swung by half between flushes. The pacer turns the proportional goal
// off (GOGC=off) and keeps the runtime's soft memory limit at Factor
// times a high quantile (Quantile: the 90th percentile) of the window's
// live heap plus Headroom, and at least PeakFactor times the window's
// largest live heap plus Headroom, within [Floor, Ceiling]. The heap
// grows to the soft limit between collections, so the limit is the
// resident memory. A store's live heap is bimodal (about 65 MiB between
// flushes, 100-180 MiB while a flush or a compaction holds its tables,
// 30-50% of the time under a steady write load): the window's largest
// value rises each time a flush, a compaction and a burst of requests
// meet at a collection for the first time in the run (twice it climbed
// 335 -> 426 MiB on a replica in 10 minutes while the data stayed the
// same size, and the resident memory with it; docs/bench/rss.md), the
// median jumps between the modes, and the 90th percentile sits in the
// upper mode and holds still. The peak term keeps room above the largest
// heap seen so that a collection at such a moment does not run back to
// back. Ceiling is the plan's
// GoLimit, so the heap never gets more room than the plan gave it without
// the pacer.
type GCPacer struct {
	// Ceiling is the highest soft limit set: the plan's GoLimit.
	Ceiling int64
	// Floor is the lowest soft limit set.
	Floor int64
	// Factor times the window's Quantile live heap, plus Headroom (the
	// runtime's own memory: stacks, metadata), is the soft limit.
	Factor   float64
	Quantile float64
	Headroom int64
	// PeakFactor times the window's largest live heap, plus Headroom, is
	// the least soft limit (> 1: room to allocate above the peak).
	PeakFactor float64
	// Window is how long a live heap counts towards the quantile and the peak.
	Window time.Duration
	// Every is how often the live heap is read and the limit set.
	Every time.Duration
}

// NewPacer returns the pacer a node runs under the soft limit ceiling
// (the plan's GoLimit, as Apply set it): floor 64 MiB (or ceiling if
// lower), twice the 90th percentile of the live heap of the last ten
// minutes plus 32 MiB, at least 1.25 times their largest live heap plus
// 32 MiB, checked each second.
func NewPacer(ceiling int64) GCPacer {
	return GCPacer{Ceiling: ceiling, Floor: min(64<<20, ceiling), Factor: 2, Quantile: 0.9, Headroom: 32 << 20, PeakFactor: 1.25,
		Window: 10 * time.Minute, Every: time.Second}
}

// Goal is the soft limit for a window whose Quantile live heap is q
// bytes and whose largest is peak.
func (g GCPacer) Goal(q, peak int64) int64 {
	v := max(int64(float64(q)*g.Factor), int64(float64(peak)*g.PeakFactor)) + g.Headroom
	return min(max(v, g.Floor), g.Ceiling)
}

// Run paces the collector until stop is closed, then restores GOGC and
// the soft limit to Ceiling. It reads the live heap the last
// collection marked (runtime/metrics /gc/heap/live:bytes).
func (g GCPacer) Run(stop <-chan struct{}) {
	w := liveWindow{span: g.Window, q: g.Quantile}
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

// liveWindow holds the values added over the last span: their q
// quantile and their largest. Each value is one reading (one a second),
// so the quantile is over time, not over collections.
type liveWindow struct {
	span    time.Duration
	q       float64 // in [0, 1]: 0.5 the median (the upper one of an even count)
	vals    []liveSample
	scratch []int64
}

type liveSample struct {
	at time.Time
	v  int64
}

// add records v at now and returns the q quantile (the value at index
// q*n of the n sorted values) and the largest value of the window ending
// at now.
func (w *liveWindow) add(now time.Time, v int64) (quantile, peak int64) {
	w.vals = append(w.vals, liveSample{now, v})
	i := 0
	for i < len(w.vals)-1 && now.Sub(w.vals[i].at) > w.span {
		i++
	}
	w.vals = append(w.vals[:0], w.vals[i:]...)
	w.scratch = w.scratch[:0]
	for _, s := range w.vals {
		w.scratch = append(w.scratch, s.v)
	}
	slices.Sort(w.scratch)
	n := len(w.scratch)
	return w.scratch[min(max(int(w.q*float64(n)), 0), n-1)], w.scratch[n-1]
}
