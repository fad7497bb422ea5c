package ratelog_test

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/quorumkv/quorumkv/internal/ratelog"
)

func ExampleLimiter_Allow() {
	lim := ratelog.New(slog.New(slog.DiscardHandler), 10*time.Second)
	t0 := time.Unix(0, 0)
	for i := range 4 {
		ok, held := lim.Allow("refused", "192.0.2.7", t0.Add(time.Duration(i)*4*time.Second))
		fmt.Println(ok, held)
	}
	// Output:
	// true 0
	// false 0
	// false 0
	// true 2
}
