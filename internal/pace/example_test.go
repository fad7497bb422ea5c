package pace_test

import (
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/internal/pace"
)

// Deliveries answered at their usual latency speed delivery up; when the
// destination starts queueing (latency more than doubles), the rate halves.
func ExamplePacer() {
	p := pace.NewPacer(100, 1000)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	observe := func(d time.Duration, rtt time.Duration) {
		for end := now.Add(d); now.Before(end); now = now.Add(time.Millisecond) {
			p.Observe(now, rtt)
		}
	}
	fmt.Println("start:", p.Rate())
	observe(time.Second, 2*time.Millisecond)
	fmt.Println("after 1s at 2ms:", p.Rate())
	observe(500*time.Millisecond, 10*time.Millisecond)
	fmt.Println("after 500ms at 10ms:", p.Rate())
	// Output:
	// start: 100
	// after 1s at 2ms: 262
	// after 500ms at 10ms: 100
}
