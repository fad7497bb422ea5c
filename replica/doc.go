// Package replica is a node's local copy of the data: the records it holds
// as a primary and the hints it holds as a fallback, in the store, each in
// a small envelope around the vclock set (record.go: format, mint epoch,
// tombstone confirmation).
//
// It owns the rules that make a local write safe to acknowledge:
//
//   - Minting (Mint): a new write's dot is minted from the local copy, under
//     an epoch every earlier dot of which that copy holds (Epochs, the
//     KV679 guard: a key with no local copy, or whose copy may have lost
//     writes in an unclean restart, gets a fresh epoch whose lease was
//     persisted before use). The size cap (MaxSetBytes) sits there too.
//   - Merging (MergeSet), reading (ReadLocal, ViewSet, Record, Scan),
//     tombstone confirmation and deletion (ConfirmTomb, Reap,
//     DropIfUnchanged) and dropping everything (DropAll).
//   - Expiry: every write of a record or hint stores values past their
//     deadline (by Config.Now, less Config.ExpiryMargin) as their
//     tombstones, and Expire does it for the reaper, which finds such
//     records by the deadline field of the format-3 envelope.
//   - The Gate: while a node's records may hold values whose tombstones
//     were reaped meanwhile (package antientropy decides), every read and
//     write of records fails with ErrQuarantined; hints still work.
//
// Its collaborators come in through Config at construction: the store, the
// epochs (OpenDir), the gate, an Observer told of every record change (the
// Merkle trees) and the hint cap (hinted handoff). It does no network I/O,
// starts no goroutines and logs nothing. Every method is safe for
// concurrent use; writes of one key are serialized by the store.
//
// Example, the local side of a client write at its coordinator:
//
//	dir, _ := replica.OpenDir(st, "n1")
//	rep, _ := replica.New(replica.Config{Self: "n1", Store: st, Epochs: dir.Epochs})
//	m, err := rep.Mint(ctx, ring.Target{Node: "n1"}, r.KeyOf(key), clientCtx, value, false)
//	// m.Encoded goes to the other targets, which MergeSet it.
package replica
