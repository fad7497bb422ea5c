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
// times the window's median live heap plus Headroom, and at least
// PeakFactor times the window's largest live heap plus Headroom, within
// [Floor, Ceiling]. The resident heap settles near the soft limit (the
// heap grows to it between collections), so the limit is the resident
// memory: the median of a window of a steady load does not move, where
// its largest value rises each time a flush, a compaction and a burst of
// requests meet at a collection for the first time in the run (a 10-minute
// run saw a replica's limit climb 335 -> 398 MiB, and its resident memory
// with it, while its data stayed the same size; docs/bench/rss.md). The
// peak term keeps room above the largest heap seen so that a collection
// at such a moment does not run back to back. Ceiling is the plan's
// GoLimit, so the heap never gets more room than the plan gave it without
// the pacer.
type GCPacer struct {
	// Ceiling is the highest soft limit set: the plan's GoLimit.
	Ceiling int64
	// Floor is the lowest soft limit set.
	Floor int64
	// Factor times the window's median live heap, plus Headroom (the
	// runtime's own memory: stacks, metadata), is the soft limit.
	Factor   float64
	Headroom int64
	// PeakFactor times the window's largest live heap, plus Headroom, is
	// the least soft limit (> 1: room to allocate above the peak).
	PeakFactor float64
	// Window is how long a live heap counts towards the median and the peak.
	Window time.Duration
	// Every is how often the live heap is read and the limit set.
	Every time.Duration
}

// NewPacer returns the pacer a node runs under the soft limit ceiling
// (the plan's GoLimit, as Apply set it): floor 64 MiB (or ceiling if
// lower), twice the median live heap of the last ten minutes plus 32 MiB,
// at least 1.25 times their largest live heap plus 32 MiB, checked each
// second.
func NewPacer(ceiling int64) GCPacer {
	return GCPacer{Ceiling: ceiling, Floor: min(64<<20, ceiling), Factor: 2, Headroom: 32 << 20, PeakFactor: 1.25,
		Window: 10 * time.Minute, Every: time.Second}
}

// Goal is the soft limit for a window whose median live heap is median
// bytes and whose largest is peak.
func (g GCPacer) Goal(median, peak int64) int64 {
	v := max(int64(float64(median)*g.Factor), int64(float64(peak)*g.PeakFactor)) + g.Headroom
	return min(max(v, g.Floor), g.Ceiling)
}

// Run paces the collector until stop is closed, then restores GOGC and
// the soft limit to Ceiling. It reads the live heap the last
// collection marked (runtime/metrics /gc/heap/live:bytes).
func (g GCPacer) Run(stop <-chan struct{}) {
	w := liveWindow{span: g.Window}
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

// liveWindow holds the values added over the last span: their median
// and their largest. Each value is one reading (one a second), so the
// median is over time, not over collections.
type liveWindow struct {
	span    time.Duration
	vals    []liveSample
	scratch []int64
}

type liveSample struct {
	at time.Time
	v  int64
}

// add records v at now and returns the median (the upper one of an even
// count) and the largest value of the window ending at now.
func (w *liveWindow) add(now time.Time, v int64) (median, peak int64) {
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
	return w.scratch[len(w.scratch)/2], w.scratch[len(w.scratch)-1]
}
