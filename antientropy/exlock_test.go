package antientropy

import (
	"testing"
	"testing/synctest"
	"time"
)

// Transfers (readers) share the exchange lock; an exchange, handoff or
// wipe (a writer) runs alone, and once it waits no new reader starts, so a
// steady stream of transfers cannot starve it.
func TestExLockSharesReadersAndPrefersWriters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newExLock()
		l.RLock()
		l.RLock() // a second reader does not wait for the first
		wrote := lockedOnce(l.Lock, l.Unlock)
		wantBlocked(t, wrote, "a writer ran while readers held the lock")
		late := lockedOnce(l.RLock, l.RUnlock)
		wantBlocked(t, late, "a reader started while a writer waited")
		l.RUnlock()
		l.RUnlock()
		wantDone(t, wrote, "the writer never ran")
		wantDone(t, late, "the late reader never ran")
	})
}

// lockedOnce takes a lock with lock in a goroutine, and releases it with
// unlock; the channel it returns is closed while the goroutine holds it.
func lockedOnce(lock, unlock func()) <-chan struct{} {
	held := make(chan struct{})
	go func() {
		lock()
		close(held)
		unlock()
	}()
	return held
}

// wantBlocked fails the test, once every goroutine of the bubble is
// blocked, if ch is closed.
func wantBlocked(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	synctest.Wait()
	select {
	case <-ch:
		t.Fatal(msg)
	default:
	}
}

// wantDone fails the test if ch is not closed within a second of the
// bubble's time after every goroutine of it is blocked.
func wantDone(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	synctest.Wait()
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatal(msg)
	}
}
