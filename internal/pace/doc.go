// Package pace paces background work, hint delivery and anti-entropy
// repair alike, so that it takes the capacity client requests leave and
// gives it back when they need it.
//
// Pacer is the pure policy (a LEDBAT-like controller over the latency of
// the work's own RPCs: no clock of its own, no goroutines, not safe for
// concurrent use). Limiter is the one shell around it both capabilities
// use: a golang.org/x/time/rate token bucket whose rate the Pacer moves
// between a floor and a cap; it is safe for concurrent use and a nil
// Limiter does not limit.
//
// Example, a repair loop:
//
//	lim := pace.NewLimiter(1000, 20000, 256) // keys per second, burst
//	for batch := range batches {
//		if err := lim.WaitN(ctx, len(batch)); err != nil { return err }
//		start := time.Now()
//		repair(batch) // RPCs to peers
//		lim.Observe(time.Since(start))
//	}
package pace
