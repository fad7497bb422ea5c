// Package hintedhandoff is hinted handoff (Dynamo §4.6): a fallback keeps
// the writes for a down primary as hints and hands them over when gossip
// sees the primary alive again.
//
// Its pure part is the policy: when to try delivering the hints for a
// target and how long to back off after a failure (Scheduler, Backoff),
// which hints to refuse or expire (Limits, the per-target caps), and where
// a hint goes when its target left the ring (Destinations). It does no I/O,
// reads no clock (every call takes the time) and has no randomness of its
// own (jitter comes in as a number). A Scheduler is not safe for
// concurrent use: the caller holds a lock. How fast delivery may go is
// internal/pace's, shared with anti-entropy.
//
// Driver is the shell around it, one per node: Accept enforces the caps
// when the replica writes a hint, and a loop started by Start delivers
// hints through the Host (the node: ring, liveness, the merge RPC) in
// passes of Config.Concurrency, deleting each hint only once its
// destination acknowledged it, and asking anti-entropy (Host.MarkForRepair)
// to repair the partitions of hints it had to drop. Close stops it. It
// deliberately does not encode hints (package replica's envelope) or store
// them (package store).
//
// Example, one round of the delivery loop:
//
//	due := s.Plan(now, store.HintTargets(), eligible)
//	for _, t := range due {
//		go func() {
//			res := deliverAll(t)                    // Drained, Failed or Interrupted
//			s.Finish(t, time.Now(), res, rng.Float64()) // under the caller's lock
//		}()
//	}
package hintedhandoff
