package hintedhandoff_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/hintedhandoff"
)

// One target refuses delivery twice, then comes back: the scheduler spaces
// the attempts out and resets when gossip sees the target alive.
func ExampleScheduler() {
	s := hintedhandoff.NewScheduler(hintedhandoff.Backoff{Base: time.Second, Max: time.Minute}, 10*time.Second)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	alive := func(string) bool { return true }

	for range 2 {
		due := s.Plan(now, []string{"n3"}, alive)
		fmt.Println("deliver to", due)
		retry := s.Finish("n3", now, hintedhandoff.Failed, 0.5, errors.New("connection refused"))
		fmt.Println("retry in", retry.Sub(now))
		fmt.Println("planned meanwhile:", s.Plan(now.Add(500*time.Millisecond), []string{"n3"}, alive))
		now = retry
	}
	s.Revive("n3") // gossip: n3 is alive again
	fmt.Println("deliver to", s.Plan(now, []string{"n3"}, alive))
	s.Finish("n3", now, hintedhandoff.Drained, 0, nil)
	// Output:
	// deliver to [n3]
	// retry in 750ms
	// planned meanwhile: []
	// deliver to [n3]
	// retry in 1.5s
	// planned meanwhile: []
	// deliver to [n3]
}

// The caps: a target whose hints take 1 GiB gets no more; hints older than
// three days are expired.
func ExampleLimits() {
	l := hintedhandoff.Limits{MaxBytes: 1 << 30, MaxAge: 72 * time.Hour}
	fmt.Println(l.Admit(512<<20), l.Admit(1<<30))
	now := time.Date(2025, 1, 4, 0, 0, 0, 0, time.UTC)
	cutoff, run := l.Expiry(hintedhandoff.Held{Count: 10, Oldest: now.Add(-80 * time.Hour)}, now, time.Time{})
	fmt.Println(run, cutoff)
	// Output:
	// true false
	// true 2025-01-01 00:00:00 +0000 UTC
}
