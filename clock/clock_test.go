package clock_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/clock"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func recv(c <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeTimerFiresOnlyWhenAdvancedPast(t *testing.T) {
	f := clock.NewFake(t0)
	tm := f.NewTimer(time.Second)
	f.Advance(999 * time.Millisecond)
	if _, ok := recv(tm.C()); ok {
		t.Fatal("timer fired early")
	}
	f.Advance(time.Millisecond)
	if v, ok := recv(tm.C()); !ok || !v.Equal(t0.Add(time.Second)) {
		t.Fatalf("timer: got %v %v, want %v", v, ok, t0.Add(time.Second))
	}
	if tm.Stop() {
		t.Fatal("Stop of a fired timer reported it pending")
	}
	if tm.Reset(time.Second) {
		t.Fatal("Reset of a fired timer reported it pending")
	}
	if !tm.Stop() {
		t.Fatal("Stop of a reset timer reported it not pending")
	}
	f.Advance(time.Hour)
	if _, ok := recv(tm.C()); ok {
		t.Fatal("a stopped timer fired")
	}
	if got := clock.Since(f, t0); got != time.Hour+time.Second {
		t.Fatalf("Since = %v", got)
	}
}

func TestFakeTickerAndAfterFuncInDeadlineOrder(t *testing.T) {
	f := clock.NewFake(t0)
	tk := f.NewTicker(10 * time.Millisecond)
	done := make(chan time.Time, 1)
	f.AfterFunc(25*time.Millisecond, func() { done <- f.Now() })
	f.Advance(10 * time.Millisecond)
	if v, ok := recv(tk.C()); !ok || !v.Equal(t0.Add(10*time.Millisecond)) {
		t.Fatalf("first tick: %v %v", v, ok)
	}
	// Two more ticks pass while nobody reads: the slot keeps the first,
	// as a real ticker's does.
	f.Advance(20 * time.Millisecond)
	if v, ok := recv(tk.C()); !ok || !v.Equal(t0.Add(20*time.Millisecond)) {
		t.Fatalf("kept tick: %v %v", v, ok)
	}
	if at := <-done; at.Before(t0.Add(25 * time.Millisecond)) {
		t.Fatalf("AfterFunc ran at %v, before its deadline", at)
	}
	tk.Reset(time.Second)
	f.Advance(999 * time.Millisecond)
	if _, ok := recv(tk.C()); ok {
		t.Fatal("reset ticker ticked early")
	}
	tk.Stop()
	f.Advance(time.Hour)
	if _, ok := recv(tk.C()); ok {
		t.Fatal("stopped ticker ticked")
	}
}

// Real inside a synctest bubble runs on the bubble's fake time: what the
// nodetest clusters rely on.
func TestRealInBubble(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := clock.Or(nil)
		start := c.Now()
		tm := c.NewTimer(time.Minute)
		<-tm.C()
		if got := clock.Since(c, start); got != time.Minute {
			t.Fatalf("a 1m timer took %v of bubble time", got)
		}
		<-clock.After(c, time.Second)
		if got := clock.Until(c, start.Add(2*time.Minute)); got != time.Minute-time.Second {
			t.Fatalf("Until = %v", got)
		}
	})
}

// Rearm makes one timer and moves it: earlier before it fires, and again
// after it has fired.
func TestRearm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		fired := make(chan time.Duration, 4)
		f := func() { fired <- time.Since(start) }
		var tm *time.Timer
		clock.Rearm(&tm, time.Hour, f)
		first := tm
		clock.Rearm(&tm, time.Second, f)
		time.Sleep(2 * time.Second)
		clock.Rearm(&tm, time.Minute, f)
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		if tm != first {
			t.Fatal("Rearm made a second timer")
		}
		close(fired)
		var got []time.Duration
		for d := range fired {
			got = append(got, d)
		}
		if want := []time.Duration{time.Second, 2*time.Second + time.Minute}; !slices.Equal(got, want) {
			t.Fatalf("fired after %v, want %v", got, want)
		}
	})
}
