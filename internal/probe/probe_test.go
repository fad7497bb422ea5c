package probe

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/waitfor"
)

var errSlow = errors.New("slow")

func TestShared(t *testing.T) {
	var p Shared
	var writes atomic.Int32
	ok := func() error { writes.Add(1); return nil }
	if err := p.Check(t.Context(), time.Second, errSlow, ok); err != nil {
		t.Fatal(err)
	}
	// A fresh result is shared: no second write.
	if err := p.Check(t.Context(), time.Second, errSlow, ok); err != nil || writes.Load() != 1 {
		t.Fatalf("second check: %v after %d writes, want the cached result of 1", err, writes.Load())
	}

	// A failing write is reported.
	var q Shared
	boom := errors.New("disk full")
	if err := q.Check(t.Context(), time.Second, errSlow, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("failing write: %v", err)
	}

	// A write that hangs: the caller gives up at its deadline, later
	// callers do not start a second write while it is stuck, and its
	// result is used once it ends.
	var r Shared
	release := make(chan struct{})
	var started atomic.Int32
	hang := func() error { started.Add(1); <-release; return nil }
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := r.Check(ctx, time.Second, errSlow, hang); !errors.Is(err, errSlow) {
		t.Fatalf("hung write: %v, want errSlow", err)
	}
	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel2()
	if err := r.Check(ctx2, time.Second, errSlow, hang); !errors.Is(err, errSlow) || started.Load() != 1 {
		t.Fatalf("second check while hung: %v with %d writes started, want errSlow and 1", err, started.Load())
	}
	close(release)
	waitfor.Cond(t, 5*time.Second, "the hung write's result", func() bool {
		return r.Check(t.Context(), time.Second, errSlow, hang) == nil
	})
}
