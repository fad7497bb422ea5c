// Package ring places keys on members: Q fixed partitions of the 64-bit hash
// space, and for each partition an ordered preference list of members.
//
// A key belongs to the partition given by the top log2(Q) bits of its hash.
// A partition's preference list names every member once: its first N are
// the primaries for replication factor N, the rest are fallbacks for sloppy
// quorums, nearest first. Every key of a partition shares one list, so
// Merkle trees, hints and handoff all work per partition. Two placement
// modes fill the lists (Config.Mode, fixed at cluster birth and persisted
// with Q):
//
//   - ModeClaim (DefaultConfig, for new clusters): an explicit Assignment,
//     partition -> ordered owners, that the cluster agrees on. Plan derives
//     the next assignment from the current one and the new member set
//     (zones and weights included): every member within [floor, ceil] of
//     its ideal share of replicas and of first primaries, owners in N
//     distinct zones whenever there are N zones, and close to the fewest
//     moves a change needs. Fallbacks come after the owners, zones holding
//     no replica first.
//   - ModeTokens (LegacyConfig, the zero Mode): each member places T tokens
//     per unit of weight at Hash(id || index); a partition's list is the
//     members met walking them clockwise. A pure function of the member set;
//     every cluster born before modes existed keeps it byte for byte.
//
// Diff and Explain tell what a change moves; Stats and ZoneStatus describe a
// placement (balance, zone spread, whether the zone guarantee holds);
// Assignment.Encode and DecodeAssignment are its bounded wire and disk form.
//
// The package is pure: it does no I/O, keeps no clock, starts no goroutines
// and does not track liveness. Ring membership is not liveness: callers pass
// who is alive to Targets. A Ring and an Assignment are immutable once made,
// so every method is safe for concurrent use; slices a Ring hands out from
// Preference and Primaries are shared and must not be modified.
//
// How a node uses ModeClaim (see docs/ARCHITECTURE.md, "Placement"): it
// persists Mode, Q and N with the ring settings and the committed
// Assignment (Encode) with the ring state, and routes with
// FromAssignment(cfg, committed). A join, leave or removal is staged as
// next := Plan(cfg, committed, members); Explain(ring, FromAssignment(next),
// N) is what `ring plan` prints, and Diff lists per partition who gains
// (pending owners) and who loses; committing gossips next, whose Version is
// committed.Version()+1.
//
// Example:
//
//	a, err := ring.Plan(ring.DefaultConfig(), nil, []ring.Member{
//		{ID: "a", Zone: "az1"}, {ID: "b", Zone: "az2"}, {ID: "c", Zone: "az3"}})
//	if err != nil { ... }
//	r, err := ring.FromAssignment(ring.DefaultConfig(), a)
//	p := r.PartitionOf([]byte("user:42"))
//	for _, t := range r.Targets(p, 3, isAlive) {
//		send(t.Node, t.HintFor)
//	}
package ring
