// Package waitfor is the tests' one way to wait on a condition: poll it
// until it holds or a deadline passes, then fail the test naming what was
// awaited. Tests wait on conditions, never on fixed sleeps.
package waitfor

import (
	"testing"
	"time"
)

// Poll is how often Cond checks its condition.
const Poll = 2 * time.Millisecond

// Cond polls cond every Poll until it returns true, and fails t with
// "timed out waiting for <what>" if it has not within timeout.
func Cond(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(Poll)
	}
}
