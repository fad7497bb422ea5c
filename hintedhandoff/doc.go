// Package hintedhandoff holds the policy of hinted handoff (Dynamo §4.6):
// when to try delivering the hints a node keeps for a down primary, how long
// to back off after a failure, how fast to deliver so that client traffic
// keeps its latency (Pacer), which hints to refuse or expire (the
// per-target caps), and where a hint goes when its target left the ring.
//
// It is pure: no I/O, no clock (every call takes the time), no goroutines,
// no randomness of its own (jitter comes in as a number). Package node owns
// the store, the transport and the delivery loop and asks this package what
// to do. It deliberately does not store hints (package store does), encode
// them, or decide what an acknowledgement is.
//
// A Scheduler or Pacer is not safe for concurrent use: the caller holds a
// lock.
// Backoff, Limits and Destinations are plain values and functions.
//
// Example, one round of the node's delivery loop:
//
//	due := s.Plan(now, store.HintTargets(), eligible)
//	for _, t := range due {
//		go func() {
//			res := deliverAll(t)                    // Drained, Failed or Interrupted
//			s.Finish(t, time.Now(), res, rng.Float64()) // under the caller's lock
//		}()
//	}
package hintedhandoff
