package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	badger "github.com/dgraph-io/badger/v4"
)

// numShards is the number of key-lock shards; a power of two.
const numShards = 64

// Store is a badger database laid out as records, hints and meta values
// (see the package doc). All methods are safe for concurrent use.
type Store struct {
	opts     Options
	maxValue int // Options.maxValue
	db       *badger.DB
	log      *slog.Logger
	now      func() time.Time

	// Lifecycle: enter/exit bracket every call that touches db; Close sets
	// closed, closes closing (waking key-lock waiters) and waits for
	// inflight to drain before committing anything left queued and closing
	// db.
	// active counts the calls between enter and exit: reopenWritable
	// swaps db only under lifeMu with none active (so db needs no lock of
	// its own: every reader entered, and so is every committer, a writer
	// leading the group commit). broken is set if that swap left no badger open.
	lifeMu   sync.RWMutex
	closed   bool
	broken   error
	closing  chan struct{}
	inflight sync.WaitGroup
	active   atomic.Int64

	// The disk guard (disk.go); nil with InMemory or when turned off.
	// readOnlyOpen: badger was opened read-only because the disk was
	// full; roFloor is the free space needed to reopen it for writing.
	guard        *diskGuard
	readOnlyOpen atomic.Bool
	roFloor      uint64
	diskDone     chan struct{}

	// wal syncs badger's write-ahead log for durable commits that did not
	// touch the value log (walsync.go); nil means DB.Sync always. Used by
	// the committer, or before the store is shared, or by reopenWritable
	// with no call in flight.
	wal *walSyncer

	shards [numShards]shard

	// noIndex: the data directory predates the key index and it could not
	// be built yet (read-only open): ScanKeys refuses (index.go).
	noIndex atomic.Bool

	// keys says which record keys are certainly absent (keyfilter.go);
	// nil: none are known to be, every miss of the cache reads badger.
	// Set by Open before the store is shared.
	keys *keyFilter

	// The write queue, committed by its writers in turn (leader-based
	// group commit, commit.go). committing: a leader holds the lead.
	// batch is the leader's reusable batch slice (nil while one uses it).
	qmu        sync.Mutex
	queue      []*op
	lastSeq    uint64 // sequence number of the last queued op
	committing bool
	batch      []*op

	// failErr is the sticky commit error (see ErrFailed): the batch that
	// failed and every later one fail with it.
	cmu     sync.Mutex
	failErr error

	// commitMu is held by the committer (the leader of the moment) while
	// it writes a batch (until it updated the value cache) and by
	// DropPartition, because badger refuses writes while it drops a prefix.
	commitMu sync.Mutex

	hmu   sync.Mutex
	hints map[string]*hintTarget // by target node id; committed hints only

	batches     atomic.Uint64
	writes      atomic.Uint64
	syncs       atomic.Uint64
	corrupt     atomic.Uint64
	cacheHits   atomic.Uint64
	cacheMisses atomic.Uint64
	filterSkips atomic.Uint64
}

// Stats are counters since Open.
type Stats struct {
	Batches uint64 // group commits written
	Writes  uint64 // writes (puts and deletes) in those commits
	// Syncs counts the syncs the store made that succeeded, after each
	// transaction that had to be durable (and one for the format stamp of
	// a new directory): an fdatasync of badger's write-ahead log, or DB.Sync
	// when the transaction also wrote to the value log. A batch split into
	// several transactions syncs each. It is counted where the call
	// returns, not derived from Options.Sync.
	Syncs   uint64
	Corrupt uint64 // malformed entries skipped by scans or treated as absent

	// CacheHits and CacheMisses count reads of a current value (by Get,
	// GetHint, GetMeta and every read-modify-write that found no queued
	// value) answered by the value cache or by badger; see
	// Options.CacheSize. CacheEntries and CacheBytes are the cache's size
	// now: keys cached (absent ones included) and their charge.
	CacheHits, CacheMisses uint64
	// FilterSkips counts the cache misses of record keys that the key
	// filter answered as absent without reading badger (keyfilter.go).
	FilterSkips uint64
	// FilterBytes is the key filter's memory now: 0 without one, or once
	// it outgrew Options.KeyFilterSize and was dropped.
	FilterBytes  int64
	CacheEntries int
	CacheBytes   int64
}

// Open opens (creating if needed) the store described by o and rebuilds the
// in-memory hint index with one scan of the hint space.
//
// On a full disk (see Options.MinFreeBytes) it opens all the same, with
// writes refused: if there is room for badger to open for writing it does
// so; if not, and the last run closed cleanly, it opens badger read-only
// and reopens it for writing by itself once space is back (State tells
// which). If the last run did not close cleanly and there is no room to
// replay its write-ahead log, it returns an error wrapping ErrDiskFull
// rather than let badger crash the process.
func Open(o Options) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	guard, readOnly, roFloor, err := checkDiskAtOpen(o, log)
	if err != nil {
		return nil, err
	}
	db, err := openBadger(o, log, readOnly)
	if err != nil {
		return nil, err
	}
	s := &Store{
		opts:     o,
		maxValue: o.maxValue(),
		db:       db,
		log:      log,
		now:      now,
		closing:  make(chan struct{}),
		hints:    make(map[string]*hintTarget),
		guard:    guard,
		roFloor:  roFloor,
	}
	s.readOnlyOpen.Store(readOnly)
	s.openWAL()
	for i := range s.shards {
		s.shards[i].m = make(map[string]*keyEntry)
		s.shards[i].c.init(o.CacheSize / numShards)
	}
	if err := s.checkFormat(); err != nil {
		s.wal.close()
		_ = db.Close()
		return nil, err
	}
	if err := s.loadHints(); err != nil {
		s.wal.close()
		_ = db.Close()
		return nil, err
	}
	if err := s.seedKeyFilter(); err != nil {
		s.wal.close()
		_ = db.Close()
		return nil, err
	}
	if guard != nil {
		// From now on the reserve covers badger's compactions too; measure
		// again with them before the first write.
		guard.need = func() uint64 {
			if s.db == nil { // broken (reopenWritable)
				return 0
			}
			return compactionNeed(s.db.Levels(), s.opts)
		}
		guard.refresh()
		s.diskDone = make(chan struct{})
		go s.diskLoop()
	}
	return s, nil
}

// openWAL sets up s.wal for a writable on-disk badger (see walSyncer); on
// failure the store syncs with DB.Sync only.
func (s *Store) openWAL() {
	s.wal.close()
	s.wal = nil
	if s.opts.InMemory || s.readOnlyOpen.Load() {
		return
	}
	w, err := newWALSyncer(s.opts.Dir)
	if err != nil {
		s.log.Warn("cannot open badger's write-ahead log for syncing; using DB.Sync", "op", "commit", "err", err)
		return
	}
	s.wal = w
}

// checkDiskAtOpen measures the free space before badger opens and decides
// how to open (see Open). It returns a nil guard when the guard is off or
// free space cannot be measured here (logged).
func checkDiskAtOpen(o Options, log *slog.Logger) (g *diskGuard, readOnly bool, roFloor uint64, err error) {
	g = newDiskGuard(o, log)
	if g == nil {
		return nil, false, 0, nil
	}
	// badger would create it too; statfs needs it now.
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, false, 0, fmt.Errorf("create %q: %w", o.Dir, err)
	}
	snap := g.refresh()
	wal, unclean, werr := walFiles(o.Dir)
	if snap == nil || werr != nil {
		log.Warn("free disk space cannot be measured: the disk guard is off, and a full disk will crash the process",
			"op", "disk", "dir", o.Dir, "err", errors.Join(werr, errNoGuard))
		return nil, false, 0, nil
	}
	roFloor = openFloor(o, wal)
	if snap.avail >= roFloor {
		return g, false, roFloor, nil
	}
	if unclean {
		return nil, false, 0, fmt.Errorf("%w: %d bytes available on the file system of %s; opening it needs about %d "+
			"(the last run did not close cleanly, so badger must replay %d bytes of write-ahead log into new tables, "+
			"which it cannot do read-only): free space and open again", ErrDiskFull, snap.avail, o.Dir, roFloor, wal)
	}
	log.Error("disk full: opening the store read-only; it reopens for writing once space is freed",
		"op", "disk", "dir", o.Dir, "avail", snap.avail, "need", roFloor)
	return g, true, roFloor, nil
}

// openBadger opens badger with o's options, read-only if asked.
func openBadger(o Options, log *slog.Logger, readOnly bool) (*badger.DB, error) {
	db, err := badger.Open(o.badgerOptions(log).WithReadOnly(readOnly))
	if err != nil {
		return nil, fmt.Errorf("open badger in %q: %w", o.Dir, err)
	}
	return db, nil
}

// Close waits for queued writes to commit and for running calls to return,
// then closes badger. Calls still waiting for a key lock return ErrClosed.
// The first call returns badger's close error; later calls return ErrClosed.
// Close must not be called from inside a Scan or UpdateFunc callback.
func (s *Store) Close() error {
	s.lifeMu.Lock()
	if s.closed {
		s.lifeMu.Unlock()
		return ErrClosed
	}
	s.closed = true
	close(s.closing)
	s.lifeMu.Unlock()

	s.inflight.Wait()
	s.drain()
	if s.diskDone != nil {
		<-s.diskDone
	}
	s.wal.close()
	if s.db == nil { // broken: see reopenWritable
		return s.broken
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close badger: %w", err)
	}
	return nil
}

func (s *Store) enter() error {
	s.lifeMu.RLock()
	defer s.lifeMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if s.broken != nil {
		return s.broken
	}
	s.inflight.Add(1)
	s.active.Add(1)
	return nil
}

func (s *Store) exit() {
	s.active.Add(-1)
	s.inflight.Done()
}

// Stats returns the store's counters. It briefly locks each key-lock
// shard to size the cache.
func (s *Store) Stats() Stats {
	st := Stats{
		Batches:     s.batches.Load(),
		Writes:      s.writes.Load(),
		Syncs:       s.syncs.Load(),
		Corrupt:     s.corrupt.Load(),
		CacheHits:   s.cacheHits.Load(),
		CacheMisses: s.cacheMisses.Load(),
		FilterSkips: s.filterSkips.Load(),
	}
	if s.keys != nil {
		st.FilterBytes = s.keys.size()
	}
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		st.CacheEntries += len(sh.c.ents)
		st.CacheBytes += sh.c.bytes
		sh.mu.Unlock()
	}
	return st
}

// getRaw returns a copy of the latest committed value at bkey.
func (s *Store) getRaw(bkey []byte) ([]byte, error) {
	v, err := s.current(bkey)
	if err != nil {
		return nil, err
	}
	return cloneBytes(v), nil
}

// current returns the latest committed value at bkey, from the value cache
// or from badger (then adding it to the cache). The slice is shared: the
// caller must not modify it.
func (s *Store) current(bkey []byte) ([]byte, error) {
	sh, h := s.shardFor(bkey)
	sh.mu.Lock()
	v, absent, ok := sh.c.get(h, bkey)
	gen := sh.c.gen
	sh.mu.Unlock()
	if !ok {
		// A copy, so that bkey does not escape (View's is on the stack).
		return s.readThrough(sh, h, bytes.Clone(bkey), gen)
	}
	s.cacheHits.Add(1)
	if absent {
		return nil, ErrNotFound
	}
	return v, nil
}

// readThrough reads bkey (hash h, shard sh) from badger after a cache
// miss (gen is the shard's cache generation read before the miss) and
// offers the value to the cache. The slice returned may be the cached
// one: the caller must not modify it. bkey is not retained: the cache
// gets a copy of it, in one allocation with the value.
func (s *Store) readThrough(sh *shard, h uint64, bkey []byte, gen uint64) ([]byte, error) {
	s.cacheMisses.Add(1)
	var (
		key, val []byte
		err      error
	)
	if s.keys != nil && bkey[0] == prefixRecord && !s.keys.mayHave(h) {
		s.filterSkips.Add(1)
		err = ErrNotFound // what badger would say (keyfilter.go), cached alike
	} else {
		key, val, err = s.readBadger(bkey)
	}
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if sh.c.limit > 0 {
		if key == nil {
			key = bytes.Clone(bkey)
		}
		sh.mu.Lock()
		sh.c.fill(h, key, val, err != nil, gen)
		sh.mu.Unlock()
	}
	return val, err
}

// readBadger returns a copy of the badger value at bkey, and a copy of
// bkey: one allocation holds both, key first (the value cache compares
// the key before it hands out the value, see cache.go).
func (s *Store) readBadger(bkey []byte) (key, val []byte, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(bkey)
		if err != nil {
			return err
		}
		n := len(bkey)
		buf := append(make([]byte, 0, n+int(item.ValueSize())), bkey...)
		key = buf[:n:n]
		val, err = item.ValueCopy(buf[n:])
		return err
	})
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil, ErrNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read: %w", err)
	}
	if val == nil {
		val = []byte{} // found, but empty: keep nil for "absent"
	}
	return key, val, nil
}

// Get returns a copy of the record's value, or ErrNotFound. It sees
// committed writes only: a write becomes visible no later than the return
// of its Update.
func (s *Store) Get(k Key) ([]byte, error) {
	if err := validateKey(k); err != nil {
		return nil, err
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	return s.getRaw(appendRecordKey(nil, k))
}

// View calls fn with the record's value, or returns ErrNotFound without
// calling it; it returns fn's error. It sees what Get sees, without Get's
// copy: val is the store's own slice, valid only during fn, and must not
// be modified. fn may call other Store methods, except Close.
func (s *Store) View(k Key, fn func(val []byte) error) error {
	if err := validateKey(k); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	// A key that fits stays on the stack: current does not retain it.
	var buf [64]byte
	v, err := s.current(appendRecordKey(buf[:0], k))
	if err != nil {
		return err
	}
	return fn(v)
}

// Scan calls fn for the records of one partition with fromHash <= Hash <=
// toHash, in (Hash, Key) order, from one consistent snapshot. k.Key and val
// are valid only during fn. An error from fn stops the scan and is returned
// as is. Malformed keys are skipped and counted in Stats.Corrupt. fn may
// call other Store methods, except Close.
func (s *Store) Scan(partition uint32, fromHash, toHash uint64, fn func(k Key, val []byte) error) error {
	if fromHash > toHash {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	prefix := partitionPrefix(partition)
	start := appendRecordKey(nil, Key{Partition: partition, Hash: fromHash})
	where := fmt.Sprintf("scan partition %d", partition)
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		defer it.Close()
		for it.Seek(start); it.Valid(); it.Next() {
			item := it.Item()
			k, err := parseRecordKey(item.Key())
			if err != nil {
				s.corrupt.Add(1)
				continue
			}
			if k.Hash > toHash {
				return nil
			}
			if err := itemValue(item, where, func(val []byte) error { return fn(k, val) }); err != nil {
				return err
			}
		}
		return nil
	})
}

// Count returns the number of records in a partition (a key-only scan).
func (s *Store) Count(partition uint32) (int, error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit()
	n := 0
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: partitionPrefix(partition)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			if _, err := parseRecordKey(it.Item().Key()); err != nil {
				s.corrupt.Add(1)
				continue
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count partition %d: %w", partition, err)
	}
	return n, nil
}

// Partitions returns, in increasing order, the partitions that hold at least
// one record. It seeks from one partition to the next, so its cost grows
// with the number of partitions, not of records.
func (s *Store) Partitions() ([]uint32, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	var parts []uint32
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{prefixRecord}})
		defer it.Close()
		it.Rewind()
		for it.Valid() {
			k, err := parseRecordKey(it.Item().Key())
			if err != nil {
				s.corrupt.Add(1)
				it.Next()
				continue
			}
			parts = append(parts, k.Partition)
			if k.Partition == ^uint32(0) {
				return nil
			}
			it.Seek(partitionPrefix(k.Partition + 1))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list partitions: %w", err)
	}
	return parts, nil
}

// DropPartition deletes every record of a partition, and its key index
// entries, with badger's DropPrefix (which flushes the memtables and drops
// or rewrites the tables holding the prefixes; commits wait meanwhile). It is not atomic with respect
// to Updates of that partition running at the same time: stop writing a
// partition before dropping it.
func (s *Store) DropPartition(partition uint32) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	if s.readOnlyOpen.Load() {
		return fmt.Errorf("drop partition %d: %w", partition, s.roOpenError())
	}
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	prefix := partitionPrefix(partition)
	err := s.db.DropPrefix(prefix, indexPrefix(partition))
	// Whatever badger did, forget the partition's cached values: they are
	// either dropped or in an unknown state.
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sh.c.dropPrefix(prefix)
		sh.mu.Unlock()
	}
	if err != nil {
		return fmt.Errorf("drop partition %d: %w", partition, err)
	}
	return nil
}

// GetMeta returns a copy of the meta value name, or ErrNotFound.
func (s *Store) GetMeta(name string) ([]byte, error) {
	if err := validateMetaName(name); err != nil {
		return nil, err
	}
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	return s.getRaw(metaKey(name))
}

// PutMeta stores val (copied) under name and returns once it is synced to
// disk, whatever Options.Sync says. A nil val deletes name. Names starting
// with ReservedMetaPrefix are the store's own (ErrReservedName).
func (s *Store) PutMeta(name string, val []byte) error {
	if err := validateCallerMetaName(name); err != nil {
		return err
	}
	if len(val) > s.maxValue {
		return fmt.Errorf("meta %q of %d bytes (max %d): %w", name, len(val), s.maxValue, ErrValueTooLarge)
	}
	_, err := s.update(context.Background(), metaKey(name), true, updateSpec{
		decide: func(_ []byte, _ bool) ([]byte, error) {
			if val == nil {
				return nil, nil
			}
			return append([]byte{}, val...), nil
		},
	})
	if err != nil {
		return fmt.Errorf("put meta %q: %w", name, err)
	}
	return nil
}

// RunValueLogGC rewrites at most one value-log file whose share of
// garbage is at least discardRatio (0 < discardRatio < 1), reclaiming the
// space of overwritten values of ValueThreshold bytes or more. It reports
// whether a file was rewritten; callers run it periodically until it
// returns false. In-memory stores return (false, nil).
func (s *Store) RunValueLogGC(discardRatio float64) (bool, error) {
	if s.opts.InMemory {
		return false, nil
	}
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	if s.readOnlyOpen.Load() {
		return false, nil
	}
	// GC rewrites live values through badger's write path, which could
	// rotate the memtable between a group commit and its sync (see
	// writeBatch): commits wait meanwhile.
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	err := s.db.RunValueLogGC(discardRatio)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, badger.ErrNoRewrite), errors.Is(err, badger.ErrRejected):
		return false, nil
	default:
		return false, fmt.Errorf("value log gc: %w", err)
	}
}
