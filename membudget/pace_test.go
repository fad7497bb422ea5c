package membudget

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPacerGoal(t *testing.T) {
	g := GCPacer{Ceiling: 1 << 30, Floor: 64 << 20, Factor: 2, Headroom: 32 << 20, PeakFactor: 1.25}
	for _, tc := range []struct{ median, peak, want int64 }{
		{0, 0, 64 << 20},                           // an idle heap: the floor
		{10 << 20, 10 << 20, 64 << 20},             // 2*10+32 = 52 MiB: still the floor
		{100 << 20, 100 << 20, 232 << 20},          // twice the quantile plus the headroom
		{100 << 20, 160 << 20, 232 << 20},          // a rarer, larger peak: the quantile rules
		{100 << 20, 176 << 20, 252 << 20},          // a peak 1.76x the quantile: 1.25x it plus the headroom
		{600 << 20, 600 << 20, 1 << 30},            // above the ceiling: the ceiling
		{1 << 40, 1 << 40, 1 << 30},                // far above: the ceiling
		{(1<<30 - 32<<20) / 2, 500 << 20, 1 << 30}, // exactly at the ceiling
		{10 << 20, 1 << 30, 1 << 30},               // the peak term above the ceiling: the ceiling
	} {
		if got := g.Goal(tc.median, tc.peak); got != tc.want {
			t.Errorf("Goal(%d, %d) = %d, want %d", tc.median, tc.peak, got, tc.want)
		}
	}
	// A ceiling under the floor (a small plan) wins: the pacer never
	// gives the heap more than the plan.
	if p := NewPacer(40 << 20); p.Goal(0, 0) != 40<<20 || p.Goal(1<<30, 1<<30) != 40<<20 {
		t.Fatalf("NewPacer(40 MiB): goals %d, %d; want 40 MiB", p.Goal(0, 0), p.Goal(1<<30, 1<<30))
	}
}

// Under a steady load whose live heap is bimodal (a store between flushes
// and during them) with a rare, growing peak (a flush and a compaction
// meeting a collection), NewPacer's limit stays where the first minutes
// put it: the 90th percentile does not move. With the old rule (twice
// the window's largest) it climbed with each new peak.
func TestPacerGoalFlatUnderRarePeaks(t *testing.T) {
	g := NewPacer(8 << 30)
	w := liveWindow{span: g.Window, q: g.Quantile}
	t0 := time.Unix(1000, 0)
	var first, last, oldFirst, oldLast int64
	for s := range 600 { // ten minutes, one reading a second
		live := int64(65 << 20)
		if s%10 < 4 { // a flush every 10 s: 40% of the readings higher
			live = 130 << 20
		}
		if s%100 == 50 { // a rarer peak, larger each time, up to 1.4x the upper mode
			live = int64(140<<20) + int64(s/100)*(8<<20)
		}
		median, peak := w.add(t0.Add(time.Duration(s)*time.Second), live)
		goal, old := g.Goal(median, peak), int64(2*peak)+g.Headroom
		if s == 120 {
			first, oldFirst = goal, old
		}
		last, oldLast = goal, old
	}
	if want := 2*int64(130<<20) + g.Headroom; first != last || first != want {
		t.Fatalf("limit at minute 2 %d MiB, at minute 10 %d MiB; want both %d MiB", first>>20, last>>20, want>>20)
	}
	if oldLast-oldFirst < 64<<20 {
		t.Fatalf("the old rule's limit moved %d MiB; the test's peaks should move it", (oldLast-oldFirst)>>20)
	}
}

// gogc is the runtime's GOGC, -1 when off.
func gogc() int64 {
	m := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(m)
	return int64(m[0].Value.Uint64())
}

// Run turns GOGC off, raises the soft limit with the live heap, and
// restores both when stopped.
func TestPacerRun(t *testing.T) {
	oldLimit := debug.SetMemoryLimit(-1)
	oldGC := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(oldLimit); debug.SetGCPercent(oldGC) })
	g := GCPacer{Ceiling: 4 << 30, Floor: 8 << 20, Factor: 2, Quantile: 0.9, PeakFactor: 2, Headroom: 0, Window: time.Hour, Every: 5 * time.Millisecond}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); g.Run(stop) }()
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !ok(); {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 10 s (limit %d, GOGC %d)", what, debug.SetMemoryLimit(-1), gogc())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitFor("GOGC off", func() bool { return gogc() == -1 })
	// Hold 128 MiB live through a collection: the limit follows to at
	// least twice that.
	big := make([]byte, 128<<20)
	for i := range big {
		big[i] = 1
	}
	runtime.GC()
	waitFor("limit raised to twice the live heap", func() bool { return debug.SetMemoryLimit(-1) >= 256<<20 })
	runtime.KeepAlive(big)
	close(stop)
	<-done
	if got, gc := debug.SetMemoryLimit(-1), gogc(); got != g.Ceiling || gc != 100 {
		t.Fatalf("after stop: limit %d, GOGC %d; want %d, 100", got, gc, g.Ceiling)
	}
}

// The window's median and peak cover the span's readings only.
func TestLiveWindow(t *testing.T) {
	w := liveWindow{span: 10 * time.Second, q: 0.5}
	t0 := time.Unix(1000, 0)
	for i, tc := range []struct {
		after        time.Duration
		v            int64
		median, peak int64
	}{
		{0, 100, 100, 100},
		{time.Second, 300, 300, 300},      // a flush: the peak (upper median of 2)
		{2 * time.Second, 120, 120, 300},  // garbage again: the peak holds, the median 120
		{3 * time.Second, 110, 120, 300},  // 100 110 120 300
		{11 * time.Second, 110, 120, 300}, // 10 s after the peak: still in (100 left)
		{12 * time.Second, 130, 120, 130}, // the peak left the window: 110 110 120 130
		{time.Hour, 50, 50, 50},           // a long gap: only the last
	} {
		if median, peak := w.add(t0.Add(tc.after), tc.v); median != tc.median || peak != tc.peak {
			t.Fatalf("step %d: median %d peak %d, want %d %d", i, median, peak, tc.median, tc.peak)
		}
	}
	if len(w.vals) != 1 {
		t.Fatalf("%d samples kept after an hour's gap, want 1", len(w.vals))
	}
	// The 90th percentile of 1..10 is the tenth value, of 1..20 the 19th.
	w = liveWindow{span: time.Hour, q: 0.9}
	for i := range 20 {
		q, peak := w.add(t0.Add(time.Duration(i)*time.Second), int64(i+1))
		if want := []int64{10, 19}[i/10]; (i == 9 || i == 19) && (q != want || peak != int64(i+1)) {
			t.Fatalf("after %d values: q %d peak %d, want %d %d", i+1, q, peak, want, i+1)
		}
	}
}
