package cputime

import (
	"testing"
	"time"
)

// TestProcessCountsWork: spinning shows up as CPU time, and the count never
// goes back. (The wall-clock deadline only bounds the test on a machine
// that gives it hardly any CPU.)
func TestProcessCountsWork(t *testing.T) {
	before := Process(t)
	deadline := time.Now().Add(10 * time.Second)
	last := before
	for last-before < 20*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("10s of spinning counted as %v of CPU", last-before)
		}
		now := Process(t)
		if now < last {
			t.Fatalf("CPU time went back: %v then %v", last, now)
		}
		last = now
	}
}
