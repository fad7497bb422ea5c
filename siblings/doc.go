// Package siblings is the policy on how many siblings a key may hold,
// and what happens past it. It is pure: functions of vclock.Sets, no I/O,
// no clock, no logging; node applies it and logs what it reports.
//
//   - Client writes: CheckWrite refuses a write that would leave more than
//     MaxCount siblings or MaxBytes of them (default 1000 and 12 MiB) with
//     a *CapError carrying the counts (HTTP 413 too_many_siblings or
//     siblings_too_large, RESP TOOLARGE). The client resolves them by
//     writing with a read's context, or overwriting.
//   - Replica merges (hints, read repair, anti-entropy, replication) are
//     never refused, since a refused merge is refused again at every retry
//     and the replicas never converge. Merge is vclock.Sync followed by
//     Fit: below the merge caps (default 4096 siblings, 12.5 MiB) nothing
//     changes; past them, which takes replicas that diverged past the
//     client caps (a long partition with blind writes on both sides), the
//     newest siblings that fit are kept and the others are returned in
//     Merged.Trimmed for the caller to count and log. The context still
//     covers them, so every replica drops them the same way: they behave
//     as writes a later write superseded. This is a documented limit: an
//     acknowledged write can be dropped this way, never silently.
//   - Warns (default 25 siblings, as Riak) tells the caller when to log a
//     key and count it in a warning metric.
//
// Convergence: below the caps merging is vclock.Sync (commutative,
// associative, idempotent), so replicas applying the same inputs in any
// order end equal. Past them the outcome can depend on the order, but Fit
// only moves a set up in Sync's order, so anti-entropy still reaches a
// fixpoint where all replicas are equal (Fit's doc has the argument;
// property_test.go checks both with rapid).
//
// Concurrency: Policy is a value; all functions are safe for concurrent
// use and never modify their arguments.
package siblings
