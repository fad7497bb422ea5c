package membudget_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/membudget"
)

func Example() {
	budget, err := membudget.New(membudget.Config{Limit: 64 << 20, MaxWait: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()

	release, err := budget.Acquire(ctx, 48<<20) // a large body in flight
	if err != nil {
		panic(err)
	}
	// Another 32 MiB does not fit: it waits MaxWait, then is refused.
	_, err = budget.Acquire(ctx, 32<<20)
	var busy *membudget.BusyError
	if errors.As(err, &busy) {
		fmt.Println("busy; Retry-After:", busy.RetryAfterSeconds())
	}
	// More than the whole budget can never fit: refused at once.
	_, err = budget.Acquire(ctx, 65<<20)
	fmt.Println(errors.Is(err, membudget.ErrTooLarge))

	release()
	fmt.Println(budget.Stats().InUse, budget.Stats().Refused)
	// Output:
	// busy; Retry-After: 1
	// true
	// 0 1
}

func ExamplePlanFor() {
	m := membudget.Machine{MemTotal: 16 << 30, CgroupLimit: 4 << 30, CgroupFile: "/sys/fs/cgroup/memory.max"}
	p, err := membudget.PlanFor(0, m) // no --memory-limit
	if err != nil {
		panic(err)
	}
	fmt.Printf("limit %d MiB, budget %d MiB: %s\n", p.MemoryLimit>>20, p.Budget>>20, p.Why)
	// Output:
	// limit 3686 MiB, budget 921 MiB: 90% of the cgroup limit 4 GiB (/sys/fs/cgroup/memory.max)
}
