package membudget

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPacerGoal(t *testing.T) {
	g := GCPacer{Ceiling: 1 << 30, Floor: 64 << 20, Factor: 2, Headroom: 32 << 20}
	for _, tc := range []struct{ peak, want int64 }{
		{0, 64 << 20},                   // an idle heap: the floor
		{10 << 20, 64 << 20},            // 2*10+32 = 52 MiB: still the floor
		{100 << 20, 232 << 20},          // twice the peak plus the headroom
		{600 << 20, 1 << 30},            // above the ceiling: the ceiling
		{1 << 40, 1 << 30},              // far above: the ceiling
		{(1<<30 - 32<<20) / 2, 1 << 30}, // exactly at the ceiling
	} {
		if got := g.Goal(tc.peak); got != tc.want {
			t.Errorf("Goal(%d) = %d, want %d", tc.peak, got, tc.want)
		}
	}
	// A ceiling under the floor (a small plan) wins: the pacer never
	// gives the heap more than the plan.
	if p := NewPacer(40 << 20); p.Goal(0) != 40<<20 || p.Goal(1<<30) != 40<<20 {
		t.Fatalf("NewPacer(40 MiB): goals %d, %d; want 40 MiB", p.Goal(0), p.Goal(1<<30))
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
	g := GCPacer{Ceiling: 4 << 30, Floor: 8 << 20, Factor: 2, Headroom: 0, Window: time.Hour, Every: 5 * time.Millisecond}
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

// A peak holds the window's maximum until it is older than the span.
func TestPeakWindow(t *testing.T) {
	w := peakWindow{span: 10 * time.Second}
	t0 := time.Unix(1000, 0)
	for i, tc := range []struct {
		after time.Duration
		v     int64
		peak  int64
	}{
		{0, 100, 100},
		{time.Second, 300, 300},      // a flush: the peak
		{2 * time.Second, 120, 300},  // garbage again: the peak holds
		{11 * time.Second, 110, 300}, // 10 s after the peak: still in
		{12 * time.Second, 130, 130}, // the peak left the window
		{time.Hour, 50, 50},          // a long gap: only the last
	} {
		if got := w.add(t0.Add(tc.after), tc.v); got != tc.peak {
			t.Fatalf("step %d: peak %d, want %d", i, got, tc.peak)
		}
	}
	if len(w.vals) != 1 {
		t.Fatalf("%d samples kept after an hour's gap, want 1", len(w.vals))
	}
}
