// Package listing lists keys across the cluster for a scan (HTTP GET /kv,
// RESP SCAN): the stateless cursor, the page a replica builds from its
// store, the merge of the replicas' pages, Redis glob patterns, and a small
// driver (Scan) that walks the partitions through a Source.
//
// Order and cursor. Keys are listed in ring order: by the 64-bit hash that
// places them on the ring, then by their bytes. A partition is a range of
// hashes (its top bits), so ring order is partition order and a position in
// it is one uint64: the cursor is the first hash not yet listed, printed in
// decimal (numeric, as Redis clients expect of SCAN). It holds no server
// state, so it survives any node's restart. A page never ends inside a run
// of keys sharing one hash, so the cursor never has to name a key.
//
// What a scan promises (Redis's SCAN guarantee): per partition it reads the
// pages of N-W+1 primaries and merges their sibling sets key by key, so a
// key whose last write or delete was acknowledged by W primaries before the
// scan began is seen by at least one of them: a key live throughout the
// scan is listed at least once, and a key deleted before it began is not
// (the tombstone's set supersedes the stale value in the merge). Writes
// acknowledged by fallbacks only (sloppy quorum, held as hints) are listed
// once handed off. A key may be listed twice only if a scan's pages are
// taken from different ring configurations.
//
// Everything but Scan is pure: no I/O, no clock, no goroutines. Scan calls
// its Source for each partition, the N-W+1 replicas in parallel.
package listing
