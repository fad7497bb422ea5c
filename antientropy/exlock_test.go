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
		wrote := make(chan struct{})
		go func() {
			l.Lock()
			close(wrote)
			l.Unlock()
		}()
		synctest.Wait()
		select {
		case <-wrote:
			t.Fatal("a writer ran while readers held the lock")
		default:
		}
		late := make(chan struct{})
		go func() {
			l.RLock()
			close(late)
			l.RUnlock()
		}()
		synctest.Wait()
		select {
		case <-late:
			t.Fatal("a reader started while a writer waited")
		default:
		}
		l.RUnlock()
		l.RUnlock()
		synctest.Wait()
		select {
		case <-wrote:
		case <-time.After(time.Second):
			t.Fatal("the writer never ran")
		}
		synctest.Wait()
		select {
		case <-late:
		case <-time.After(time.Second):
			t.Fatal("the late reader never ran")
		}
	})
}
