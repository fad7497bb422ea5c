package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	badger "github.com/dgraph-io/badger/v4"

	"github.com/quorumkv/quorumkv/internal/cputime"
)

// benchValueLen is the size of a benchmark value: a small sibling set.
const benchValueLen = 256

func benchOptions(b *testing.B, sync bool) Options {
	o := DefaultOptions(b.TempDir())
	o.Sync = sync
	return o
}

// benchKey is the n-th benchmark key, in the partition its hash picks
// (256 partitions).
func benchKey(n int) Key {
	k := benchKeyIn(0, n)
	k.Partition = uint32(k.Hash >> 56)
	return k
}

// benchKeyIn is the n-th benchmark key, in partition p.
func benchKeyIn(p uint32, n int) Key {
	k := []byte("key-" + strconv.Itoa(n))
	return Key{Partition: p, Hash: xxhash.Sum64(k), Key: k}
}

// runWriters runs op from the given number of goroutines, once per b.Loop
// iteration, and reports writes/s over the whole run including the final
// drain (b.Loop's own timer stops before the last writes finished).
func runWriters(b *testing.B, writers int, op func(i int) error) (n int) {
	work := make(chan int)
	errc := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for i := range work {
				if err := op(i); err != nil {
					errc <- err
					for range work { // keep draining so the loop ends
					}
					return
				}
			}
		})
	}
	b.ReportAllocs()
	start, cpu0 := time.Now(), cputime.Process(b)
	for b.Loop() {
		work <- n
		n++
	}
	close(work)
	wg.Wait()
	elapsed, cpu := time.Since(start), cputime.Process(b)-cpu0
	close(errc)
	for err := range errc {
		b.Fatal(err)
	}
	b.ReportMetric(float64(n)/elapsed.Seconds(), "writes/s")
	// CPU time per write is steadier than wall time on a shared machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(max(n, 1)), "cpu-µs/op")
	return n
}

// txnUpdate is the baseline: one badger read-write transaction per
// update, retried on conflict (DetectConflicts on), as a store without
// group commit would do it.
func txnUpdate(db *badger.DB, bkey []byte, fn UpdateFunc) error {
	for {
		err := db.Update(func(txn *badger.Txn) error {
			var old []byte
			found := false
			item, err := txn.Get(bkey)
			switch {
			case err == nil:
				if old, err = item.ValueCopy(nil); err != nil {
					return err
				}
				found = true
			case !errors.Is(err, badger.ErrKeyNotFound):
				return err
			}
			nv, err := fn(old, found)
			if err != nil {
				return err
			}
			return txn.Set(bkey, nv)
		})
		if !errors.Is(err, badger.ErrConflict) {
			return err
		}
	}
}

func openBaseline(b *testing.B, o Options) *badger.DB {
	db, err := badger.Open(o.badgerOptions(o.Logger).WithDetectConflicts(true))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = db.Close() })
	return db
}

func openBench(b *testing.B, o Options) *Store {
	s, err := Open(o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkUpdate: read-modify-writes of distinct keys, one badger
// transaction per update versus group commit, with and without sync.
func BenchmarkUpdate(b *testing.B) {
	val := make([]byte, benchValueLen)
	set := func([]byte, bool) ([]byte, error) { return val, nil }
	for _, sync := range []bool{false, true} {
		for _, design := range []string{"txn", "group"} {
			for _, writers := range []int{1, 8, 64} {
				b.Run(fmt.Sprintf("sync=%v/%s/writers=%d", sync, design, writers), func(b *testing.B) {
					o := benchOptions(b, sync)
					if design == "txn" {
						db := openBaseline(b, o)
						runWriters(b, writers, func(i int) error {
							return txnUpdate(db, appendRecordKey(nil, benchKey(i)), set)
						})
						return
					}
					s := openBench(b, o)
					runWriters(b, writers, func(i int) error {
						_, _, err := s.Update(context.Background(), benchKey(i), false, set)
						return err
					})
					st := s.Stats()
					b.ReportMetric(float64(st.Writes)/float64(max(st.Batches, 1)), "writes/batch")
				})
			}
		}
	}
}

// BenchmarkSyncedWriters: 50 writers of distinct keys (as 50 clients'
// replica merges), with and without Options.Sync, to see what share of
// the unsynced rate group commit keeps when every batch is synced (issue
// 16 aims at >= 50%). "sync" is the store's own sync after each batch (an
// fdatasync of the write-ahead log, as no value reaches the value log);
// "sync-dbsync" syncs with DB.Sync (log and value log) instead;
// "badger-sync" is badger's SyncWrites, as the store did before it made
// its syncs itself. "nosync-noguard" turns the disk guard off, to show
// what its accounting costs a write.
func BenchmarkSyncedWriters(b *testing.B) {
	const writers = 50
	val := make([]byte, benchValueLen)
	set := func([]byte, bool) ([]byte, error) { return val, nil }
	for _, mode := range []string{"nosync", "nosync-noguard", "sync", "sync-dbsync", "badger-sync"} {
		b.Run(fmt.Sprintf("%s/writers=%d", mode, writers), func(b *testing.B) {
			o := benchOptions(b, !strings.HasPrefix(mode, "nosync"))
			o.badgerSync = mode == "badger-sync"
			if mode == "nosync-noguard" {
				o.MinFreeBytes, o.MinFreePercent = 0, 0
			}
			s := openBench(b, o)
			if mode == "sync-dbsync" { // not shared yet: no commit runs
				s.wal.close()
				s.wal = nil
			}
			st0 := s.Stats()
			n := runWriters(b, writers, func(i int) error {
				_, _, err := s.Update(context.Background(), benchKey(i), false, set)
				return err
			})
			st := s.Stats()
			batches := st.Batches - st0.Batches
			b.ReportMetric(float64(st.Writes-st0.Writes)/float64(max(batches, 1)), "writes/batch")
			b.ReportMetric(float64(st.Syncs-st0.Syncs)/float64(max(n, 1)), "syncs/write")
		})
	}
}

// BenchmarkUpdateHotKey: 8 writers increment one counter. "queued" is the
// store's design (the key's lock is released once the write is queued, the
// next writer starts from the queued value); "holdlock" keeps the lock until
// the commit; "txn" is one badger transaction per update with conflict
// retries. Every design must end with the exact count.
func BenchmarkUpdateHotKey(b *testing.B) {
	const writers = 8
	for _, sync := range []bool{false, true} {
		for _, design := range []string{"txn", "holdlock", "queued"} {
			b.Run(fmt.Sprintf("sync=%v/%s/writers=%d", sync, design, writers), func(b *testing.B) {
				o := benchOptions(b, sync)
				k := Key{Key: []byte("hot")}
				var get func() ([]byte, error)
				var op func(int) error
				if design == "txn" {
					db := openBaseline(b, o)
					bkey := appendRecordKey(nil, k)
					op = func(int) error { return txnUpdate(db, bkey, incr) }
					get = func() (v []byte, err error) {
						err = db.View(func(txn *badger.Txn) error {
							item, err := txn.Get(bkey)
							if err == nil {
								v, err = item.ValueCopy(nil)
							}
							return err
						})
						return v, err
					}
				} else {
					o.holdLocks = design == "holdlock"
					s := openBench(b, o)
					op = func(int) error {
						_, _, err := s.Update(context.Background(), k, false, incr)
						return err
					}
					get = func() ([]byte, error) { return s.Get(k) }
					defer func() {
						st := s.Stats()
						b.ReportMetric(float64(st.Writes)/float64(max(st.Batches, 1)), "writes/batch")
					}()
				}
				n := runWriters(b, writers, op)
				v, err := get()
				if err != nil || string(v) != strconv.Itoa(n) {
					b.Fatalf("counter = %q, %v; want %d (lost updates)", v, err, n)
				}
			})
		}
	}
}

// BenchmarkGet reads one record of a store holding n, with the value
// cache off and warm.
func BenchmarkGet(b *testing.B) {
	withLoadedStores(b, func(b *testing.B, s *Store, n int) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := s.Get(benchKeyIn(0, i%n)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// withLoadedStores runs bench as sub-benchmarks over stores of 1,000 and
// 100,000 records (partition 0), with the value cache off and on; every
// record was read once, so the cache (when on) is warm.
func withLoadedStores(b *testing.B, bench func(b *testing.B, s *Store, n int)) {
	for _, n := range []int{1000, 100000} {
		for _, cache := range []bool{false, true} {
			b.Run(fmt.Sprintf("records=%d/cache=%v", n, cache), func(b *testing.B) {
				o := benchOptions(b, false)
				if !cache {
					o.CacheSize = 0
				}
				s := openBench(b, o)
				load(b, s, 0, n)
				for i := range n {
					if _, err := s.Get(benchKeyIn(0, i)); err != nil {
						b.Fatal(err)
					}
				}
				bench(b, s, n)
			})
		}
	}
}

// BenchmarkScanBucket scans one Merkle bucket (1/1024 of the hash space)
// of a partition holding n records, and the whole partition.
func BenchmarkScanBucket(b *testing.B) {
	const buckets = 1024
	for _, n := range []int{10000, 100000} {
		s := openBench(b, benchOptions(b, false))
		load(b, s, 7, n)
		width := uint64(math.MaxUint64 / buckets)
		for _, span := range []struct {
			name     string
			from, to uint64
		}{{"bucket", 100 * width, 101*width - 1}, {"partition", 0, math.MaxUint64}} {
			b.Run(fmt.Sprintf("records=%d/%s", n, span.name), func(b *testing.B) {
				b.ReportAllocs()
				var seen int
				for b.Loop() {
					seen = 0
					if err := s.Scan(7, span.from, span.to, func(Key, []byte) error { seen++; return nil }); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(seen), "records/scan")
			})
		}
	}
}

// load writes n records with keys benchKeyIn(p, 0..n-1),
// straight through badger (loading is not what is measured).
func load(b *testing.B, s *Store, p uint32, n int) {
	wb := s.db.NewWriteBatch()
	val := make([]byte, benchValueLen)
	for i := range n {
		if err := wb.Set(appendRecordKey(nil, benchKeyIn(p, i)), val); err != nil {
			b.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkUpdateExisting: read-modify-writes spread over n existing
// records (loaded first, so badger holds them in its tables), from 64
// writers, as replica merges under a client load: with the value cache
// (warm) and without it (CacheSize 0).
func BenchmarkUpdateExisting(b *testing.B) {
	val := make([]byte, benchValueLen)
	set := func([]byte, bool) ([]byte, error) { return val, nil }
	withLoadedStores(b, func(b *testing.B, s *Store, n int) {
		st0 := s.Stats()
		runWriters(b, 64, func(i int) error {
			_, _, err := s.Update(context.Background(), benchKeyIn(0, i*7919%n), false, set)
			return err
		})
		st := s.Stats()
		hits, misses := st.CacheHits-st0.CacheHits, st.CacheMisses-st0.CacheMisses
		b.ReportMetric(float64(hits)/float64(max(hits+misses, 1)), "hit-ratio")
	})
}

// BenchmarkUpdateNewKeys: 50 writers creating keys a disk store does not
// hold (as a replica's merges of fresh keys), after 100,000 others were
// written, with and without the key filter (keyfilter.go) that answers
// their reads without badger: filter=off is the store before it.
func BenchmarkUpdateNewKeys(b *testing.B) {
	const writers, existing = 50, 100_000
	for _, filter := range []bool{false, true} {
		b.Run(fmt.Sprintf("filter=%v", map[bool]string{false: "off", true: "on"}[filter]), func(b *testing.B) {
			s := openBench(b, benchOptions(b, false))
			fillBench(b, s, existing, writers)
			if !filter {
				s.keys = nil
			}
			skips0 := s.Stats().FilterSkips
			n := runWriters(b, writers, func(i int) error { return writeBench(s, benchKey(existing+i)) })
			b.ReportMetric(float64(s.Stats().FilterSkips-skips0)/float64(max(n, 1)), "skips/op")
		})
	}
}

// writeBench writes a fresh benchValueLen-byte value to k.
func writeBench(s *Store, k Key) error {
	_, err := s.UpdateOwned(context.Background(), k, false, func([]byte, bool) ([]byte, error) {
		return make([]byte, benchValueLen), nil
	})
	return err
}

// fillBench writes benchKey(0) to benchKey(n-1) from the given number of
// goroutines, before the benchmark's timer.
func fillBench(b *testing.B, s *Store, n, writers int) {
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				if err := writeBench(s, benchKey(i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkSeedKeyFilter: what the key filter costs Open, its seeding
// from the key index of a disk store of 100,000 records.
func BenchmarkSeedKeyFilter(b *testing.B) {
	const n = 100_000
	s := openBench(b, benchOptions(b, false))
	fillBench(b, s, n, 50)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.seedKeyFilter(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len((*s.keys.parts.Load())[0].words)*8)/n, "filter-B/key")
}

// BenchmarkOverwrite is a replica's store in the steady state of
// bench/peers.sh's SET load: 100,000 records of 135 bytes (a
// one-sibling record of a 100-byte value) on disk, all cached, and 50
// writers each overwriting a random one of them with a fresh value
// through UpdateAppend, as a replica merge or a coordinator's mint does.
// Run it with -cpu 1: each agent of peers.sh runs on one core.
func BenchmarkOverwrite(b *testing.B) {
	const writers, records, recLen = 50, 100_000, 135
	s := openBench(b, benchOptions(b, false))
	write := func(i int) error {
		_, err := s.UpdateAppend(context.Background(), benchKey(i), false, recLen, AppendFunc(func(dst, old []byte, found bool) ([]byte, error) {
			v := append(dst, make([]byte, recLen)...)
			if found {
				copy(v, old)
			}
			v[0]++
			return v, nil
		}))
		return err
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := w; i < records; i += writers {
				if err := write(i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	runWriters(b, writers, func(i int) error { return write(int(xxhash.Sum64String(strconv.Itoa(i)) % records)) })
}
