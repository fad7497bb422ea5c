// Package antientropy finds the keys on which two replicas of a partition
// disagree, with a Merkle tree per partition kept current on every write.
//
// A Tree's leaves are buckets of the partition's key-hash range, each the XOR
// of the Digest of its keys, so a write is an O(1) Update; inner hashes are
// recomputed lazily when an exchange reads them. Compare walks two trees
// level by level through a Peer (any RPC), descending only where hashes
// differ, and returns the differing keys with their digests: with equal trees
// it costs one round trip carrying the two roots. The HashesRequest,
// HashesResponse, KeysRequest and KeysResponse messages, with ServeHashes and
// ServeKeys, are what the peer side puts on the wire. Scheduler picks the
// next (partition, peer) exchange; Config holds the knobs.
//
// The package does no I/O, reads no clock, logs nothing and starts no
// goroutines. It does not read the store, merge sibling sets or write
// repairs: package node lists a bucket's keys (a store scan of
// Tree.BucketRange), fetches and merges the sets of each differing key, writes
// them where they were behind, and runs the schedule with its own timers.
//
// Concurrency: Tree and Scheduler are not safe for concurrent use; the node
// serializes calls to each (a Tree behind a lock, wrapped as a LocalTree for
// Compare, which holds nothing between calls). Compare makes one call at a
// time.
//
// Example, one exchange of partition p:
//
//	t, _ := antientropy.NewTree(cfg) // cfg.Partition = p
//	for each stored key k: t.Update(hash(k), 0, antientropy.Digest(hash(k), k, setDigest(k)))
//	diff, err := antientropy.Compare(ctx, p, t, peer, listLocalKeys)
//	for _, k := range diff.Keys { /* fetch both sets, vclock.Sync, write back */ }
package antientropy
