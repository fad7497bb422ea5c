// Package store keeps a node's records, hints and small meta values in
// badger; it is the only package that imports badger. Values are opaque bytes
// (encoded sibling sets, hints): store knows nothing of vclock or the ring.
//
// Layout (a compatibility promise; integers are big-endian):
//
//	'r' | partition u32 | hash u64 | key  -> record value
//	'h' | len(target) u8 | target | partition u32 | hash u64 | key
//	                                      -> 0x01 | created u64 (Unix ns) | hint bytes
//	'm' | name                            -> meta value
//
// A partition is a key prefix (scan, count, drop) and a hash range within
// it (a Merkle bucket) is one contiguous key range. Keys in these prefixes
// that do not parse are skipped by scans and counted in Stats.Corrupt.
//
// Writes are read-modify-writes (Update, UpdateHint). Writers of one key are
// serialized by a per-key lock; writes of all keys are group-committed by
// one committer goroutine, one badger transaction per batch. A returned
// write promises (see Options.Sync):
//
//   - with Options.Sync or durable=true: it was synced (msync) to disk and
//     survives a kill -9 of the process and a crash of the machine (tested
//     by cutting the power under a running store: TestPowerLoss, on a FUSE
//     layer that drops every write not yet synced; also with values in the
//     value log while its files rotate, which badger syncs as it rotates);
//   - otherwise: badger holds it in its memtable and memory-mapped log, so
//     it survives a kill -9 or panic of the process (the kernel owns the
//     dirty pages) and a clean Close, but not a kernel crash or power loss;
//   - with InMemory: nothing survives Close.
//
// It deliberately does not interpret values, decide which hints to keep (it
// reports HintStats; callers enforce caps) or run value-log GC by itself
// (see RunValueLogGC). All methods are safe for concurrent use. Example:
//
//	s, err := store.Open(store.DefaultOptions(dir))
//	k := store.Key{Partition: p, Hash: xxhash.Sum64(key), Key: key}
//	_, _, err = s.Update(ctx, k, false, func(old []byte, found bool) ([]byte, error) {
//		return merge(old, incoming), nil
//	})
package store
