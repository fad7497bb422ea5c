// Package store keeps a node's records, hints and small meta values in
// badger; it is the only package that imports badger. Values are opaque bytes
// (encoded sibling sets, hints): store knows nothing of vclock or the ring.
//
// Layout, storage format 2 (a compatibility promise, guarded by the golden
// files in testdata/golden; integers are big-endian; see FormatVersion):
//
//	'r' | partition u32 | hash u64 | key  -> record value
//	'k' | partition u32 | key             -> hash u64 (key index, index.go)
//	'h' | len(target) u8 | target | partition u32 | hash u64 | key
//	                                      -> 0x01 | created u64 (Unix ns) | hint bytes
//	'm' | name                            -> meta value ("store.format" -> version u32)
//
// A partition is a key prefix (scan, count, drop) and a hash range within
// it (a Merkle bucket) is one contiguous key range; the key index walks a
// partition's keys in byte order (ScanKeys, for listing). Keys in these prefixes
// that do not parse are skipped by scans and counted in Stats.Corrupt. Open
// refuses a directory of a newer format with ErrFormat.
//
// Writes are read-modify-writes (Update, UpdateHint), serialized per key and
// group-committed by their own goroutines in turn (the first writer to find
// no commit in progress commits the queue, commit.go), one badger
// transaction per batch. A returned write promises (see Options.Sync):
//
//   - with Options.Sync or durable=true: the store synced it (msync) and it
//     survives a crash of the machine (TestPowerLoss cuts the power under a
//     running store on a FUSE layer that drops whatever was not synced);
//   - otherwise it survives a kill -9 of the process (the kernel owns the
//     dirty pages of badger's mapped log) and a clean Close, not a power loss;
//   - with InMemory: nothing survives Close.
//
// Disk full: badger writes through memory-mapped files, and a write into a
// full file system kills the process with SIGBUS, which no caller can catch.
// So the store keeps a reserve of free space (Options.MinFreeBytes) and
// refuses record and hint writes with ErrDiskFull before badger could run
// out; reads go on, State says why, and writes resume by themselves once
// space is freed. What the reserve cannot prevent (another program filling
// the disk to the last byte; a failing disk) still crashes inside badger:
// see docs/ARCHITECTURE.md.
//
// It deliberately does not interpret values, decide which hints to keep
// (callers enforce caps on HintStats) or run value-log GC by itself
// (RunValueLogGC). All methods are safe for concurrent use. Example:
//
//	s, err := store.Open(store.DefaultOptions(dir))
//	k := store.Key{Partition: p, Hash: xxhash.Sum64(key), Key: key}
//	_, _, err = s.Update(ctx, k, false, func(old []byte, found bool) ([]byte, error) {
//		return merge(old, incoming), nil
//	})
package store
