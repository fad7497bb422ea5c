// Package listing lists keys across the cluster for a scan (HTTP GET /kv,
// RESP SCAN): the stateless cursor, the page a replica builds from its
// store, the merge of the replicas' pages, Redis glob patterns, and a small
// driver (Scan) that walks the partitions through a Source.
//
// Order. Partitions are listed in ring order (a partition is a range of
// key hashes, their top bits), and the keys of each partition in byte
// order: each replica walks its store's key index ('k' | partition | key,
// package store), seeking to the page's start or to the prefix, so a page
// costs the keys it reads, and a prefix reads only the keys that have it.
//
// Cursor. A position is a partition and a key in it, but Redis clients
// parse SCAN's cursor as an unsigned 64-bit number, and a key does not fit
// in one. The cursor is therefore the 64-bit ring hash of the first key
// not yet listed (which also names its partition: its top bits), printed in
// decimal, or the start hash of a partition to begin. It holds no server
// state, so it survives any node's restart and any node continues it. Each
// replica asked for the next page resolves the hash to the smallest key of
// that hash it stores (records are also kept by (partition, hash, key), so
// this is one seek). If the replicas do not all place the page on the same
// key (one never received it, or it was deleted and reaped meanwhile), the
// page is asked again from the smallest key any of them placed it on, or
// from the partition's start if none could: keys may then be listed again,
// as SCAN allows, but none is skipped. A page never ends just before a key
// whose hash is its partition's start hash, since that cursor means the
// start. Two keys of one 64-bit hash (only a deliberate xxhash collision)
// make the cursor resolve to the smaller: a page may repeat the keys
// between them.
//
// What a scan promises (Redis's SCAN guarantee): per partition it reads the
// pages of N-W+1 primaries and merges their sibling sets key by key, so a
// key whose last write or delete was acknowledged by W primaries before the
// scan began is seen by at least one of them: a key live throughout the
// scan is listed at least once, and a key deleted before it began is not
// (the tombstone's set supersedes the stale value in the merge). Writes
// acknowledged by fallbacks only (sloppy quorum, held as hints) are listed
// once handed off. A key may be listed twice if a scan's pages are taken
// from different ring configurations, or if its cursor's key could not be
// found again (see Cursor).
//
// Cost to point reads. A scan read is a burst of work on each replica it
// asks (an index step and a record read per key); back to back, such
// bursts take the cores point reads need. Scan therefore reads at most
// Query.ReadEntries keys of a replica at a time and, with Query.Pace,
// rests after each read in proportion to its time.
//
// Everything but Scan is pure: no I/O, no clock, no goroutines. Scan calls
// its Source for each partition, the N-W+1 replicas in parallel, and keeps
// time for its pace.
package listing
