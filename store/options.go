package store

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	badger "github.com/dgraph-io/badger/v4"
	boptions "github.com/dgraph-io/badger/v4/options"
)

// badgerMaxValueThreshold is badger's own upper bound on ValueThreshold.
const badgerMaxValueThreshold = 1 << 20

// Options configures a Store. Start from DefaultOptions and change fields;
// Open calls Validate.
type Options struct {
	// Dir is the data directory, created if missing. It must be "" when
	// InMemory is true. Default: the argument of DefaultOptions.
	Dir string

	// InMemory keeps everything in memory (for tests): nothing survives
	// Close and Sync/durable have no effect. Default false.
	InMemory bool

	// Sync chooses what an acknowledgement promises. true: after every
	// group commit the store syncs badger's write-ahead log (and the value
	// log when the batch wrote to it) before any Update in it returns, so an
	// acknowledged write survives a crash of the machine. false: an Update
	// returns once badger accepted its batch into the memtable and the
	// memory-mapped write-ahead log, without msync: that survives a crash or
	// kill -9 of the process (the dirty pages belong to the kernel) but not
	// a crash of the kernel or a power failure. Per-write durable=true gets
	// the Sync promise in either mode. Both promises are tested by cutting
	// the power under a running store (TestPowerLoss). Default false.
	Sync bool

	// MaxBatch is the most writes in one group commit. The committing
	// writer (the leader) takes what is queued when the previous commit
	// finishes, up to MaxBatch; it never waits to fill a batch. Default 1024; must be >= 1.
	MaxBatch int

	// MaxValueSize is the longest value in bytes (a record's value, a meta
	// value, a hint's bytes). Longer values are refused with
	// ErrValueTooLarge. Default 4 MiB; must be >= 1 and <= ValueLogFileSize.
	// With InMemory the limit is lowered to just under the in-memory value
	// threshold (see ValueThreshold), because badger v4.9.6 panics on an
	// in-memory value at or above it.
	MaxValueSize int

	// Logger receives badger's warnings and errors and the store's own
	// errors. Badger's info and debug lines go out at slog.LevelDebug. nil
	// discards everything.
	Logger *slog.Logger

	// Now is the clock for hint creation times (HintStats.Oldest,
	// ExpireHints). nil means time.Now.
	Now func() time.Time

	// MemTableSize is the size of one badger memtable in bytes, and so
	// the size of one write-ahead log file. Badger refuses a transaction
	// larger than 15% of it, which the committer handles by splitting a
	// batch. Default 16 MiB; must be >= 1 MiB.
	MemTableSize int64

	// NumMemtables is how many memtables (one mutable, the others waiting
	// to be flushed) badger keeps; writes stall when all are full. Default 2;
	// must be >= 1.
	NumMemtables int

	// BlockCacheSize is badger's block cache in bytes. 0 turns the cache
	// off, and with it block compression (badger needs the cache to
	// decompress). Default 16 MiB.
	BlockCacheSize int64

	// ValueThreshold: values of at least this many bytes go to badger's
	// value log instead of the LSM tree. Values in the LSM tree are cheaper
	// to scan (Merkle buckets) and need no value-log GC. Default 1 MiB
	// (badger's maximum); must be >= 1 and at most 15% of MemTableSize minus
	// MaxKeyLen+64 (a value below it must fit in one badger transaction).
	// InMemory ignores it and uses the largest valid threshold.
	ValueThreshold int64

	// ValueLogFileSize is the size in bytes of one value-log file.
	// Default 128 MiB; must be in [1 MiB, 2 GiB).
	ValueLogFileSize int64

	// NumCompactors is the number of badger compaction goroutines.
	// Default 2; must be >= 2 (badger refuses 1, and 0 would never compact).
	NumCompactors int

	// CacheSize bounds, in bytes, the cache of recently committed (and
	// read) values that lets read-modify-writes and Gets of hot keys skip
	// badger's read path. It counts keys, values and a fixed per-entry
	// overhead; entries are evicted by a clock sweep, and a value larger
	// than 1/512 of it is not cached. Default 64 MiB; 0 turns the cache
	// off; must be >= 0. It adds no durability risk: it only ever holds
	// values badger committed.
	CacheSize int64

	// KeyFilterSize bounds, in bytes, the filter that lets the write of a
	// key the store lacks skip badger's read (keyfilter.go: 2 bytes per
	// key, in parts that double). When it would grow past the bound it is
	// dropped, and such reads happen again. 0 means
	// DefaultKeyFilterSize; a negative size runs without the filter.
	KeyFilterSize int64

	// MinFreeBytes and MinFreePercent set the disk reserve: free space on
	// Dir's file system that the store's record and hint writes never use.
	// The reserve is the largest of MinFreeBytes, MinFreePercent percent of
	// the file system's size, and what badger's due flushes and compactions
	// may write (estimated from its level sizes at each check; on a small
	// store that is about the size of its data). When the space available (statfs
	// f_bavail), less what writes accepted since the last check will take,
	// would fall below it, record and hint writes are refused with
	// ErrDiskFull and Store.State reports read-only; meta writes and
	// deletes may still use the upper half of the reserve; reads go on. The
	// store becomes writable by itself once the space available is back
	// above the reserve plus a sixteenth.
	//
	// Why a reserve: badger writes through memory-mapped files, and a
	// write into a full file system kills the process with SIGBUS instead
	// of returning an error. The reserve holds what badger writes on its
	// own after the store stops writing: the memtables it flushes into
	// tables (NumMemtables x MemTableSize) and the compactions in flight
	// (new tables are written before the ones they replace are deleted:
	// tens of MiB for a small store, more as the bottom level grows, hence
	// the percentage). Default 256 MiB and 1%: 256 MiB is several times what
	// a default store's memtables and early compactions need, and 1% keeps
	// 10 GiB of a 1 TiB disk for compacting a large store. Both 0 turns the
	// guard off (a full disk then crashes the process). Ignored with
	// InMemory. MinFreeBytes must be >= 0, MinFreePercent in [0, 50].
	MinFreeBytes   int64
	MinFreePercent float64

	// DiskCheckInterval is how often the free space is measured (one
	// statfs). Between checks, writes are charged against the last figure,
	// and a write of 1 MiB or more checks first. Default 500ms; must be > 0
	// unless the guard is off.
	DiskCheckInterval time.Duration

	// statfs replaces the measurement of free space in tests; nil is the
	// real statfs of Dir.
	statfs func(dir string) (avail, total uint64, err error)

	// holdLocks keeps a key's lock until its batch committed, instead of
	// releasing it when the write is queued. Only for the benchmark that
	// compares the two designs.
	holdLocks bool

	// badgerSync leaves syncing to badger (SyncWrites) with Options.Sync,
	// as the store did before it made its syncs itself. Only for the
	// benchmark that compares the two (BenchmarkSyncedWriters); Stats.Syncs
	// stays 0 with it.
	badgerSync bool

	// skipSync is a planted bug for tests: every sync the store would make
	// is skipped while the write still reports success. The power-loss test
	// turns it on to prove that its detector catches a store that does not
	// sync (TestPowerLossDetectsSkippedSync).
	skipSync bool
}

// DefaultOptions returns options for a store in dir, sized for a small
// footprint (on the order of 50 MiB: two 16 MiB memtables and a 16 MiB block
// cache, plus a value cache of up to 64 MiB that fills only as keys are
// used) so several stores fit in one test process. A busy production node
// may raise MemTableSize, BlockCacheSize and CacheSize.
func DefaultOptions(dir string) Options {
	return Options{
		Dir:              dir,
		MaxBatch:         1024,
		MaxValueSize:     4 << 20,
		MemTableSize:     16 << 20,
		NumMemtables:     2,
		BlockCacheSize:   16 << 20,
		ValueThreshold:   badgerMaxValueThreshold,
		ValueLogFileSize: 128 << 20,
		NumCompactors:    2,
		CacheSize:        64 << 20,

		MinFreeBytes:      256 << 20,
		MinFreePercent:    1,
		DiskCheckInterval: 500 * time.Millisecond,
	}
}

// DefaultKeyFilterSize is Options.KeyFilterSize's default: 32 MiB, a
// filter for 8 to 16 million keys (parts double, so the last one added
// may be half empty).
const DefaultKeyFilterSize = 32 << 20

// keyFilterSize is KeyFilterSize with its default applied (-1: none).
func (o Options) keyFilterSize() int64 {
	switch {
	case o.KeyFilterSize == 0:
		return DefaultKeyFilterSize
	case o.KeyFilterSize < 0:
		return -1
	}
	return o.KeyFilterSize
}

// Validate reports the first invalid field, wrapped in ErrInvalidOptions.
// It never changes o.
func (o Options) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	maxTxn := o.maxTxnValue()
	switch {
	case o.InMemory && o.Dir != "":
		return bad("Dir %q must be empty with InMemory", o.Dir)
	case !o.InMemory && o.Dir == "":
		return bad("Dir is empty (set it, or InMemory)")
	case o.MaxBatch < 1:
		return bad("MaxBatch %d < 1", o.MaxBatch)
	case o.MemTableSize < 1<<20:
		return bad("MemTableSize %d < 1 MiB", o.MemTableSize)
	case o.NumMemtables < 1:
		return bad("NumMemtables %d < 1", o.NumMemtables)
	case o.BlockCacheSize < 0:
		return bad("BlockCacheSize %d < 0", o.BlockCacheSize)
	case o.ValueThreshold < 1 || o.ValueThreshold > badgerMaxValueThreshold:
		return bad("ValueThreshold %d not in [1, %d]", o.ValueThreshold, badgerMaxValueThreshold)
	case o.ValueThreshold > maxTxn:
		return bad("ValueThreshold %d too large for MemTableSize %d (max %d: a value below it must fit in one badger transaction)",
			o.ValueThreshold, o.MemTableSize, maxTxn)
	case o.ValueLogFileSize < 1<<20 || o.ValueLogFileSize >= 2<<30:
		return bad("ValueLogFileSize %d not in [1 MiB, 2 GiB)", o.ValueLogFileSize)
	case o.CacheSize < 0:
		return bad("CacheSize %d < 0", o.CacheSize)
	case o.NumCompactors < 2:
		return bad("NumCompactors %d < 2", o.NumCompactors)
	case o.MaxValueSize < 1:
		return bad("MaxValueSize %d < 1", o.MaxValueSize)
	case int64(o.MaxValueSize) > o.ValueLogFileSize:
		return bad("MaxValueSize %d > ValueLogFileSize %d", o.MaxValueSize, o.ValueLogFileSize)
	case o.MinFreeBytes < 0:
		return bad("MinFreeBytes %d < 0", o.MinFreeBytes)
	case !(o.MinFreePercent >= 0 && o.MinFreePercent <= 50): // also refuses NaN
		return bad("MinFreePercent %v not in [0, 50]", o.MinFreePercent)
	case o.DiskCheckInterval <= 0 && !o.InMemory && (o.MinFreeBytes > 0 || o.MinFreePercent > 0):
		return bad("DiskCheckInterval %v <= 0 (set it, or turn the disk guard off with MinFreeBytes and MinFreePercent 0)", o.DiskCheckInterval)
	}
	return nil
}

// badgerOptions translates o (already validated) into badger's options.
func (o Options) badgerOptions(log *slog.Logger) badger.Options {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bo := badger.DefaultOptions(o.Dir).
		WithInMemory(o.InMemory).
		WithSyncWrites(o.badgerSync && o.Sync && !o.InMemory). // else the store syncs itself (Store.sync), so it can count and test it
		WithLogger(badgerLogger{log}).
		WithMetricsEnabled(false).  // badger's metrics are process-global expvars
		WithDetectConflicts(false). // the store serializes writers per key itself
		WithNumVersionsToKeep(1).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(o.NumMemtables).
		WithBlockCacheSize(o.BlockCacheSize).
		WithIndexCacheSize(0).
		WithValueThreshold(o.valueThreshold()).
		WithValueLogFileSize(o.ValueLogFileSize).
		WithNumCompactors(o.NumCompactors).
		WithNumGoroutines(2)
	if o.BlockCacheSize == 0 {
		bo = bo.WithCompression(boptions.None)
	}
	return bo
}

// maxTxnValue is the largest value badger accepts in one transaction given
// MemTableSize (its limit is 15% of it), with room for the longest key.
func (o Options) maxTxnValue() int64 {
	return o.MemTableSize*15/100 - MaxKeyLen - 64
}

// valueThreshold is the ValueThreshold given to badger. In memory, badger
// v4.9.6 keeps every value in the LSM tree yet still compares values with
// the threshold it was given and panics (index out of range in writeToLSM)
// on one at or above it, so use the largest threshold badger allows.
func (o Options) valueThreshold() int64 {
	if o.InMemory {
		return min(badgerMaxValueThreshold, o.maxTxnValue())
	}
	return o.ValueThreshold
}

// maxValue is the effective limit on a stored value's length, hint header
// included: see MaxValueSize.
func (o Options) maxValue() int {
	if o.InMemory {
		return min(o.MaxValueSize, int(o.valueThreshold())-1-hintHeaderLen)
	}
	return o.MaxValueSize
}

// badgerLogger routes badger's printf-style logging to slog: errors and
// warnings at their level, the chatty info and debug lines at Debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) logf(level slog.Level, format string, args []any) {
	if !b.l.Enabled(context.Background(), level) {
		return
	}
	b.l.Log(context.Background(), level, strings.TrimSpace(fmt.Sprintf(format, args...)), "op", "badger")
}

func (b badgerLogger) Errorf(f string, a ...any)   { b.logf(slog.LevelError, f, a) }
func (b badgerLogger) Warningf(f string, a ...any) { b.logf(slog.LevelWarn, f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.logf(slog.LevelDebug, f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.logf(slog.LevelDebug, f, a) }
