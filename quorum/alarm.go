package quorum

import (
	"sync"
	"time"
)

// alarm is a request's timer, kept for the next request once stopped
// before it went off: time.AfterFunc costs a timer and a closure per
// request. It calls its target's fire, in a goroutine of its own, when
// it goes off.
type alarm struct {
	t  *time.Timer
	mu sync.Mutex
	to interface{ fire() } // a *write or a *read: no allocation to hold
}

func (a *alarm) ring() {
	a.mu.Lock()
	to := a.to
	a.mu.Unlock()
	if to != nil {
		to.fire()
	}
}

// startAlarm returns an alarm that calls to.fire in d, a kept one if any.
func (c *Coordinator) startAlarm(d time.Duration, to interface{ fire() }) *alarm {
	a, _ := c.alarms.Get().(*alarm)
	if a == nil {
		a = &alarm{to: to}
		a.t = time.AfterFunc(d, a.ring)
		return a
	}
	a.mu.Lock()
	a.to = to
	a.mu.Unlock()
	a.t.Reset(d)
	return a
}

// stopAlarm stops a and reports whether it had not gone off (time.Timer's
// Stop); a is then kept for a later startAlarm and must not be used again.
func (c *Coordinator) stopAlarm(a *alarm) bool {
	if !a.t.Stop() {
		return false // its fire has run or is under way
	}
	a.mu.Lock()
	a.to = nil
	a.mu.Unlock()
	c.alarms.Put(a)
	return true
}
