package antientropy

import "time"

// The two timing rules that keep deleted values deleted when a replica is
// away (docs/ARCHITECTURE.md, "Deletes that stay deleted"); the Driver
// applies them with its clock and its view of gossip.

// mayBeStale reports whether a node whose last heartbeat was at last must
// quarantine its records at start (now): it was down longer than half of
// maxDowntime. Peers reap without a node only after seeing it dead for
// maxDowntime by their clocks, which takes at least that long a downtime by
// ours; the other half is margin for clock differences, the heartbeat
// period and failure detection. Reaping off (grace or maxDowntime 0) never
// quarantines.
func mayBeStale(last, now time.Time, grace, maxDowntime time.Duration) bool {
	if grace <= 0 || maxDowntime <= 0 {
		return false
	}
	return now.Sub(last) > maxDowntime/2
}

// mayExcuse reports whether a primary that this node has seen dead since
// deadSince may miss a tombstone confirmation (and be excluded): it has
// been dead for maxDowntime by this node's clock, and this node sees a
// strict majority of the ring's members alive, so the two sides of a
// network split cannot both reap without each other.
func mayExcuse(deadSince, now time.Time, maxDowntime time.Duration, alive, members int) bool {
	if maxDowntime <= 0 || now.Sub(deadSince) < maxDowntime {
		return false
	}
	return 2*alive > members
}
