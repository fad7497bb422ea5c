// Package ring places keys on members: Q fixed partitions of the 64-bit hash
// space, and for each partition a preference list read off a token ring.
//
// Each member places T tokens per unit of weight at xxhash(id || index). A
// key belongs to the partition given by the top log2(Q) bits of its hash; a
// partition's preference list is every member in the order met walking the
// tokens clockwise from the partition's start. Its first N entries are the
// primaries for replication factor N, the rest are fallbacks for sloppy
// quorums, nearest first. Every key of a partition shares one list, so
// Merkle trees, hints and handoff all work per partition. Diff tells what a
// membership change moves.
//
// The package is pure: it does no I/O, keeps no clock, starts no goroutines
// and does not track liveness. Ring membership is not liveness: callers pass
// who is alive to Targets. A Ring is immutable once New returns, so every
// method is safe for concurrent use, and slices it hands out from Preference
// and Primaries are shared and must not be modified.
//
// Example:
//
//	r, err := ring.New(ring.DefaultConfig(), []ring.Member{{ID: "a"}, {ID: "b"}, {ID: "c"}})
//	if err != nil { ... }
//	p := r.PartitionOf([]byte("user:42"))
//	for _, t := range r.Targets(p, 3, isAlive) {
//		send(t.Node, t.HintFor)
//	}
package ring
