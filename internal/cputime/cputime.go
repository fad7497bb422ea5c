// Package cputime measures the CPU time the test process has used, for
// benchmarks that report CPU per operation (steadier than wall time on a
// shared machine) and tests that bound how much CPU idle waiters burn.
package cputime

import (
	"syscall"
	"testing"
	"time"
)

// Process returns the process's user plus system CPU time so far: every
// goroutine's, the other side of an in-process round trip and a store's
// background work included. It fails tb if the kernel does not tell.
func Process(tb testing.TB) time.Duration {
	tb.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
