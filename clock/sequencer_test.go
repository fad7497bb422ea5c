package clock_test

import (
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/clock"
)

// TestSequencerOrder queues events from goroutines racing at one instant:
// they run in the order of their due time and then of their keys, each at
// an instant of its own, whatever order they were queued in.
func TestSequencerOrder(t *testing.T) {
	for range 20 {
		synctest.Test(t, func(t *testing.T) {
			s := clock.NewSequencer()
			start := time.Now()
			var mu sync.Mutex
			var ran []string
			var at []time.Duration
			var wg sync.WaitGroup
			for _, ev := range []struct {
				name string
				d    time.Duration
				key  uint64
			}{{"b", time.Millisecond, 2}, {"a", time.Millisecond, 1}, {"c", time.Millisecond, 3}, {"first", time.Microsecond, 9}, {"late", 2 * time.Millisecond, 0}} {
				wg.Go(func() {
					s.AfterFunc(ev.d, ev.key, func() {
						mu.Lock()
						ran = append(ran, ev.name)
						at = append(at, time.Since(start))
						mu.Unlock()
					})
				})
			}
			wg.Wait()
			time.Sleep(3 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			if want := []string{"first", "a", "b", "c", "late"}; !slices.Equal(ran, want) {
				t.Fatalf("ran %v, want %v", ran, want)
			}
			want := []time.Duration{time.Microsecond, time.Millisecond, time.Millisecond + 1, time.Millisecond + 2, 2 * time.Millisecond}
			if !slices.Equal(at, want) {
				t.Fatalf("ran at %v, want %v (one event per instant)", at, want)
			}
		})
	}
}

// TestSequencerStop: a stopped event does not run, and Stop reports
// whether it was pending.
func TestSequencerStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := clock.NewSequencer()
		var ran atomic.Bool
		stop := s.AfterFunc(time.Millisecond, 1, func() { ran.Store(true) })
		if !stop() {
			t.Fatal("Stop of a pending event reported false")
		}
		time.Sleep(2 * time.Millisecond)
		if ran.Load() || stop() {
			t.Fatalf("stopped event ran (%v) or was still pending", ran.Load())
		}
	})
}

// TestSequencerClock: a Sequencer's Clock keeps timer and ticker
// semantics (fire after d; a ticker every d; Stop and Reset).
func TestSequencerClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := clock.NewSequencer().Clock("n1")
		start := c.Now()
		tm := c.NewTimer(10 * time.Millisecond)
		if got := (<-tm.C()).Sub(start); got != 10*time.Millisecond {
			t.Fatalf("timer fired after %v, want 10ms", got)
		}
		tk := c.NewTicker(5 * time.Millisecond)
		for i := 1; i <= 3; i++ {
			if got := (<-tk.C()).Sub(start); got != 10*time.Millisecond+time.Duration(i)*5*time.Millisecond {
				t.Fatalf("tick %d at %v", i, got)
			}
		}
		tk.Stop()
		stopped := c.NewTimer(time.Millisecond)
		if !stopped.Stop() {
			t.Fatal("Stop of a pending timer reported false")
		}
		fired := make(chan struct{})
		f := c.AfterFunc(time.Millisecond, func() { close(fired) })
		f.Reset(3 * time.Millisecond)
		at := c.Now()
		<-fired
		if got := c.Now().Sub(at); got != 3*time.Millisecond {
			t.Fatalf("reset AfterFunc ran after %v, want 3ms", got)
		}
		time.Sleep(10 * time.Millisecond)
		select {
		case <-stopped.C():
			t.Fatal("a stopped timer fired")
		case <-tk.C():
			t.Fatal("a stopped ticker ticked")
		default:
		}
	})
}

// TestBag: two encodings that differ only in the order of their bytes
// have one bag; others do not.
func TestBag(t *testing.T) {
	a, b, c := clock.Bag([]byte("abca")), clock.Bag([]byte("caab")), clock.Bag([]byte("abcb"))
	if clock.Key(a) != clock.Key(b) || clock.Key(a) == clock.Key(c) {
		t.Fatalf("bags %x %x %x", a, b, c)
	}
}
