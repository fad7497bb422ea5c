package clock

import (
	"slices"
	"sync"
	"time"
)

// Fake is a Clock that moves only when told (Advance, Set). Timers and
// tickers fire, in the order of their deadlines, as Advance passes them:
// a channel gets the fake time (dropped if its one slot is full, as a
// real ticker does), an AfterFunc's f runs in its own goroutine. Safe for
// concurrent use.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer // pending, unordered
}

// NewFake returns a Fake clock that reads start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d, firing every timer due on the way.
func (f *Fake) Advance(d time.Duration) { f.Set(f.Now().Add(d)) }

// Set moves the clock to t (never backwards), firing every timer due on
// the way, each with the clock reading its deadline.
func (f *Fake) Set(t time.Time) {
	for {
		f.mu.Lock()
		i := -1
		for j, tm := range f.timers {
			if !tm.when.After(t) && (i < 0 || tm.when.Before(f.timers[i].when)) {
				i = j
			}
		}
		if i < 0 {
			if t.After(f.now) {
				f.now = t
			}
			f.mu.Unlock()
			return
		}
		tm := f.timers[i]
		f.timers = slices.Delete(f.timers, i, i+1)
		if tm.when.After(f.now) {
			f.now = tm.when
		}
		if tm.period > 0 {
			tm.when = tm.when.Add(tm.period)
			f.timers = append(f.timers, tm)
		}
		now := f.now
		f.mu.Unlock()
		tm.fire(now)
	}
}

// NewTimer returns a timer whose channel gets the time once d has passed.
func (f *Fake) NewTimer(d time.Duration) Timer {
	return f.add(&fakeTimer{f: f, c: make(chan time.Time, 1)}, d, 0)
}

// NewTicker returns a ticker whose channel gets the time every d.
func (f *Fake) NewTicker(d time.Duration) Ticker {
	if d <= 0 {
		panic("clock: non-positive interval for NewTicker")
	}
	return timerTicker{f.add(&fakeTimer{f: f, c: make(chan time.Time, 1)}, d, d)}
}

// AfterFunc runs fn in its own goroutine once d has passed.
func (f *Fake) AfterFunc(d time.Duration, fn func()) Timer {
	return f.add(&fakeTimer{f: f, fn: fn}, d, 0)
}

func (f *Fake) add(t *fakeTimer, d, period time.Duration) *fakeTimer {
	f.mu.Lock()
	defer f.mu.Unlock()
	t.when, t.period = f.now.Add(d), period
	f.timers = append(f.timers, t)
	return t
}

// remove unschedules t and reports whether it was pending.
func (f *Fake) remove(t *fakeTimer) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.Index(f.timers, t)
	if i < 0 {
		return false
	}
	f.timers = slices.Delete(f.timers, i, i+1)
	return true
}

type fakeTimer struct {
	f      *Fake
	c      chan time.Time // nil for AfterFunc
	fn     func()
	when   time.Time // guarded by f.mu
	period time.Duration
}

func (t *fakeTimer) fire(now time.Time) {
	if t.fn != nil {
		go t.fn()
		return
	}
	select {
	case t.c <- now:
	default:
	}
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool { return t.f.remove(t) }

// Reset reschedules the timer d from now (a ticker: every d from now).
// As with time.Timer since Go 1.23, a value not yet received is dropped.
func (t *fakeTimer) Reset(d time.Duration) bool {
	pending := t.f.remove(t)
	if t.c != nil {
		select {
		case <-t.c:
		default:
		}
	}
	period := time.Duration(0)
	if t.period > 0 {
		period = d
	}
	t.f.add(t, d, period)
	return pending
}

// timerTicker is the Ticker of a periodic Timer (Fake's, Sequencer's):
// its Reset also changes the period.
type timerTicker struct{ t Timer }

func (k timerTicker) C() <-chan time.Time { return k.t.C() }
func (k timerTicker) Stop()               { k.t.Stop() }
func (k timerTicker) Reset(d time.Duration) {
	if d <= 0 {
		panic("clock: non-positive interval for Ticker.Reset")
	}
	k.t.Reset(d)
}
