// Package antientropy is Merkle-tree anti-entropy: it finds the keys on
// which two replicas of a partition disagree and repairs them, and it
// reaps tombstones once no replica can bring their values back.
//
// The pure core (tree.go, exchange.go, scheduler.go, repair.go, wire.go,
// snapshot.go) does no I/O, reads no clock, logs nothing and starts no
// goroutines. A Tree's leaves are buckets of the partition's key-hash
// range, each the XOR of the Digest of its keys, so a write is an O(1)
// Update; inner hashes are recomputed lazily when an exchange reads them.
// Compare walks two trees level by level through a Peer (any RPC),
// descending only where hashes differ, and returns the differing keys with
// their digests: with equal trees it costs one round trip carrying the two
// roots. The HashesRequest, HashesResponse, KeysRequest and KeysResponse
// messages, with ServeHashes and ServeKeys, are what the peer side puts on
// the wire. Scheduler picks the next (partition, peer) exchange;
// decideRepair says what to do with each differing key.
//
// The Driver (driver*.go, trees.go, status.go, metrics.go) is the shell a
// node runs: one Tree per partition kept current by the replica's Observer
// (Trees), the exchange loop and the repairs, the tombstone reaper with its
// exclusion ledger, the quarantine of a node back from a long downtime,
// the handoff of partitions lost in a ring change, and the peer side of
// every anti-entropy RPC (Serve). It reaches the rest of the node only
// through the Host (ring, liveness, RPC calls) and package replica, and
// its goroutines run from Start to Close. Config is its one configuration,
// held by node.Config.
//
// Concurrency: Tree and Scheduler are not safe for concurrent use (the
// Driver serializes calls to each; a Tree sits behind a lock, wrapped as a
// LocalTree for Compare, which holds nothing between calls). Trees and
// Driver are safe for concurrent use.
//
// Example, one exchange of partition p:
//
//	t, _ := antientropy.NewTree(cfg) // cfg.Partition = p
//	for each stored key k: t.Update(hash(k), 0, antientropy.Digest(hash(k), k, setDigest(k)))
//	diff, err := antientropy.Compare(ctx, p, t, peer, listLocalKeys)
//	for _, k := range diff.Keys { /* fetch both sets, vclock.Sync, write back */ }
package antientropy
