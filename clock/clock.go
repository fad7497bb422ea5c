// Package clock is the seam between code that keeps time (timers, tickers,
// durations measured, wall-clock stamps) and the clock it reads. Real is
// the process clock; Fake is a clock a test moves by hand.
//
// Inside a testing/synctest bubble the process clock is already fake and
// deterministic, so clusters run there with Real. The seam is for code
// that must not read the process clock directly, and for tests that set
// the time without a bubble (Fake).
package clock

import "time"

// Clock tells the time and makes timers. Its methods behave as the time
// package's functions of the same names.
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
	NewTicker(d time.Duration) Ticker
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a *time.Timer behind an interface. C is nil for a timer made by
// AfterFunc.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Ticker is a *time.Ticker behind an interface.
type Ticker interface {
	C() <-chan time.Time
	Stop()
	Reset(d time.Duration)
}

// Real is the process clock (package time).
var Real Clock = realClock{}

// Or returns c, or Real when c is nil: what a config's nil Clock means.
func Or(c Clock) Clock {
	if c == nil {
		return Real
	}
	return c
}

// Since is time.Since on c.
func Since(c Clock, t time.Time) time.Duration { return c.Now().Sub(t) }

// Until is time.Until on c.
func Until(c Clock, t time.Time) time.Duration { return t.Sub(c.Now()) }

// After is time.After on c.
func After(c Clock, d time.Duration) <-chan time.Time { return c.NewTimer(d).C() }

type realClock struct{}

func (realClock) Now() time.Time                   { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer   { return realTimer{time.NewTimer(d)} }
func (realClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }
func (realClock) AfterFunc(d time.Duration, f func()) Timer {
	return realTimer{time.AfterFunc(d, f)}
}

type realTimer struct{ *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.Timer.C }

type realTicker struct{ *time.Ticker }

func (t realTicker) C() <-chan time.Time { return t.Ticker.C }

// Rearm schedules the time.AfterFunc timer *t to run f after d: it makes
// the timer the first time (*t nil; f is used then only) and resets it
// after, so that one timer serves each deadline its owner sets in turn.
// The caller serializes the calls on one *t.
func Rearm(t **time.Timer, d time.Duration, f func()) {
	if *t == nil {
		*t = time.AfterFunc(d, f)
		return
	}
	(*t).Reset(d)
}
