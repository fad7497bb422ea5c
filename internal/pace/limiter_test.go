package pace

import (
	"context"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var none *Limiter
	if NewLimiter(10, 0, 5) != nil {
		t.Fatal("a limiter without a cap")
	}
	if none.WaitN(context.Background(), 1<<30) != nil || none.Burst() != 0 || none.Rate() != 0 {
		t.Fatal("a nil limiter limits")
	}
	none.Observe(time.Second) // no panic

	fixed := NewLimiter(0, 1000, 5000)
	if fixed.Rate() != 1000 || fixed.Burst() != 1000 {
		t.Fatalf("fixed: rate %v burst %d, want 1000 and a burst capped at the rate", fixed.Rate(), fixed.Burst())
	}
	fixed.Observe(time.Hour)
	if fixed.Rate() != 1000 {
		t.Fatal("a fixed rate moved")
	}

	paced := NewLimiter(100, 1000, 16)
	if paced.Rate() != 100 || paced.Burst() != 16 {
		t.Fatalf("paced: rate %v burst %d, want to start at the floor 100 with burst 16", paced.Rate(), paced.Burst())
	}
	// WaitN of more than a burst waits for one burst, not forever.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := paced.WaitN(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	// A cancelled wait returns at once.
	gone, stop := context.WithCancel(context.Background())
	stop()
	if err := paced.WaitN(gone, 16); err == nil {
		t.Fatal("a cancelled WaitN succeeded")
	}
}
