// Package vclock tracks the causality of one key with dotted version vector
// sets (Preguiça et al. 2010; Almeida et al. 2014; Riak 2.0's dvvset). A Set
// holds the key's siblings, each value tagged with the Dot of the write that
// stored it, and the Vector of everything the set has seen. Update applies a
// write at its coordinator: a new dot, and exactly the siblings that the
// client's context covers dropped. Sync merges two replicas' sets; it is
// commutative, associative and idempotent. A client reads the context as an
// opaque token (EncodeContext) and sends it back with its next write.
//
// The actor rule: the caller must pass an actor all of whose earlier dots for
// this key are in the stored set. An Actor is a node incarnation (node id plus
// epoch). A node with no trustworthy local copy of the key (its first write of
// the key, after a tombstone reap, an unclean restart, a wipe or a restore)
// must write under a fresh epoch (Actor.NextEpoch, persisted before use).
// Otherwise it mints a dot that other replicas already count as seen, and its
// write is silently discarded (Riak's KV679).
//
// The package does no I/O and reads no clock: the node persists epochs and
// sets and stamps Value.Timestamp. It does not reap tombstones, prune vectors
// (pruning loses causality) or resolve siblings, apart from the opt-in
// ResolveLWW. Decoders take untrusted bytes and return errors, never panic.
//
// Deadlines: a Value may carry Expires, the absolute time its coordinator
// gave it to live; past it the value reads as deleted (LiveAt, IsDeletedAt)
// and a replica may turn it into a tombstone of the same dot (Expire),
// which Sync prefers, so an expired value never comes back. The caller
// supplies the clock.
//
// Concurrency: everything is a pure function of values; results share
// Value.Data with inputs, so treat Sets as immutable and they are safe to use
// from many goroutines.
//
//	a := vclock.Actor{Node: "n1", Epoch: 1}
//	s, _ := vclock.Update(vclock.Set{}, nil, a, v1) // blind: [v1]
//	s, _ = vclock.Update(s, nil, a, v2)             // blind: [v1 v2]
//	s, _ = vclock.Update(s, s.Context, a, v3)       // saw both: [v3]
package vclock
