package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"testing"
	"time"

	badger "github.com/dgraph-io/badger/v4"

	"github.com/quorumkv/quorumkv/internal/waitfor"
	"github.com/quorumkv/quorumkv/store/internal/testfn"
)

// testOptions mirrors storetest.Options (which this package cannot import).
func testOptions(t testing.TB, dir string) Options {
	o := DefaultOptions(dir)
	o.InMemory = dir == ""
	o.MemTableSize = 4 << 20
	o.BlockCacheSize = 1 << 20
	o.ValueThreshold = 256 << 10
	o.MaxValueSize = 256 << 10
	o.ValueLogFileSize = 16 << 20
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return o
}

func openTest(t testing.TB, o Options) *Store {
	t.Helper()
	s, err := Open(o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func setTo(v string) UpdateFunc {
	return func([]byte, bool) ([]byte, error) { return []byte(v), nil }
}

// mustSet writes v to k, failing the test on an error.
func mustSet(t testing.TB, s *Store, k Key, v string) {
	t.Helper()
	if _, _, err := s.Update(t.Context(), k, false, setTo(v)); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds or a 10 s deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitfor.Cond(t, 10*time.Second, what, cond)
}

// blockCommits stops the committer before its next batch until the
// returned function is called (also called at cleanup, before Close, so a
// failing test cannot deadlock).
func blockCommits(t *testing.T, s *Store) (unblock func()) {
	s.commitMu.Lock()
	var once sync.Once
	unblock = func() { once.Do(s.commitMu.Unlock) }
	t.Cleanup(unblock)
	return unblock
}

func (s *Store) queuedSeq() uint64 {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.lastSeq
}

func (s *Store) lockTableSize() int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += len(s.shards[i].m)
		s.shards[i].mu.Unlock()
	}
	return n
}

// queueUpdate starts s.Update(k, fn) while commits are blocked
// (blockCommits) and waits until it is the seq-th write queued; its error
// arrives on the returned channel once it committed.
func queueUpdate(t *testing.T, s *Store, k Key, fn UpdateFunc, seq uint64, what string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Update(context.Background(), k, false, fn)
		done <- err
	}()
	waitFor(t, what, func() bool { return s.queuedSeq() == seq })
	return done
}

// commitTogether runs write(i) for i in [0, n) concurrently while the
// committer is held, waits until all n are queued, then lets it go and
// fails t on any write's error: the n writes share the next commits.
func commitTogether(t *testing.T, s *Store, n int, write func(i int) error) {
	t.Helper()
	unblock := blockCommits(t, s) // the committer blocks on its first batch
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = write(i) })
	}
	waitFor(t, "all writes queued", func() bool { return s.queuedSeq() == uint64(n) })
	unblock()
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestGroupCommitSharesBatches: writes queued while a commit is in progress
// all go into the next commit.
func TestGroupCommitSharesBatches(t *testing.T) {
	s := openTest(t, testOptions(t, t.TempDir()))
	const n = 50
	commitTogether(t, s, n, func(i int) error {
		_, _, err := s.Update(t.Context(), Key{Hash: uint64(i), Key: []byte("k")}, i == 7, setTo("v"))
		return err
	})
	st := s.Stats()
	if st.Writes != n || st.Batches > 2 || st.Syncs < 1 {
		t.Fatalf("stats %+v: want %d writes in at most 2 batches, one synced", st, n)
	}
	if c, _ := s.Count(0); c != n {
		t.Fatalf("count %d", c)
	}
	if s.lockTableSize() != 0 {
		t.Fatalf("lock table not empty: %d", s.lockTableSize())
	}
}

// TestBatchSplitsAtTxnLimit: a batch larger than badger's transaction limit
// (15% of the memtable) is committed as several transactions, in order.
func TestBatchSplitsAtTxnLimit(t *testing.T) {
	for _, durable := range []bool{false, true} {
		t.Run(fmt.Sprintf("durable=%v", durable), func(t *testing.T) {
			o := testOptions(t, t.TempDir())
			o.MemTableSize, o.ValueThreshold = 1<<20, 64<<10 // txn limit about 154 KiB
			s := openTest(t, o)
			const n = 40
			val := make([]byte, 32<<10)
			commitTogether(t, s, n, func(i int) error {
				// Two writers per key: the later must win.
				k := Key{Hash: uint64(i / 2), Key: []byte("k")}
				_, _, err := s.Update(t.Context(), k, durable, func(old []byte, found bool) ([]byte, error) {
					v := append([]byte{}, val...)
					v[0] = byte(len(old) / len(val)) // 0 for the first writer
					if found {
						v = append(v, old[:len(val)]...)
					}
					return v, nil
				})
				return err
			})
			for h := range uint64(n / 2) {
				v, err := s.Get(Key{Hash: h, Key: []byte("k")})
				if err != nil || len(v) != 2*len(val) || v[0] != 1 {
					t.Fatalf("key %d: %d bytes, first byte %v, %v", h, len(v), v[:1], err)
				}
			}
		})
	}
}

// TestFailStop: after a commit error the store refuses writes (without
// running fn) and keeps serving reads.
func TestFailStop(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	ctx := t.Context()
	mustSet(t, s, Key{Key: []byte("a")}, "before")
	// Lift the store's own size check so that badger refuses the value
	// even in a fresh transaction: a commit error.
	s.maxValue = 16 << 20
	_, _, err := s.Update(ctx, Key{Key: []byte("b")}, false, func([]byte, bool) ([]byte, error) {
		return make([]byte, 2<<20), nil
	})
	if !errors.Is(err, ErrFailed) || len(err.Error()) > 2*maxErrorText {
		t.Fatalf("oversized commit: %.1000v, want a short ErrFailed", err)
	}
	_, _, err = s.Update(ctx, Key{Key: []byte("c")}, false, func([]byte, bool) ([]byte, error) {
		t.Error("fn ran on a failed store")
		return nil, nil
	})
	if !errors.Is(err, ErrFailed) {
		t.Fatalf("write after failure: %v", err)
	}
	if err := s.PutMeta("m", []byte("x")); !errors.Is(err, ErrFailed) {
		t.Fatalf("PutMeta after failure: %v", err)
	}
	if v, err := s.Get(Key{Key: []byte("a")}); err != nil || string(v) != "before" {
		t.Fatalf("read after failure: %q %v", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close after failure: %v", err)
	}
}

// TestCloseWakesLockWaiters: Close makes writers waiting for a key lock
// return ErrClosed, and still lets the lock holder's write commit.
func TestCloseWakesLockWaiters(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	k := Key{Key: []byte("k")}
	holder := testfn.Hold(func(fn func([]byte, bool) ([]byte, error)) error {
		_, _, err := s.Update(context.Background(), k, false, fn)
		return err
	}, "holder")
	waiter := make(chan error, 1)
	go func() {
		_, _, err := s.Update(context.Background(), k, false, setTo("waiter"))
		waiter <- err
	}()
	sh, _ := s.shardFor(appendRecordKey(nil, k))
	waitFor(t, "the second writer to wait", func() bool {
		sh.mu.Lock()
		defer sh.mu.Unlock()
		e := sh.m[string(appendRecordKey(nil, k))]
		return e != nil && e.refs == 2
	})
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	if err := <-waiter; !errors.Is(err, ErrClosed) {
		t.Fatalf("waiter: %v, want ErrClosed", err)
	}
	if err := holder.Release(); err != nil {
		t.Fatalf("holder: %v", err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestNoChangeOverQueuedValue: an ErrNoChange answer to a value that is
// still queued returns only after that value committed.
func TestNoChangeOverQueuedValue(t *testing.T) {
	s := openTest(t, testOptions(t, ""))
	k := Key{Key: []byte("k")}
	unblock := blockCommits(t, s)
	first := queueUpdate(t, s, k, setTo("v1"), 1, "first write queued")
	var saw string
	// The no-op is queued behind the first write instead of returning.
	second := queueUpdate(t, s, k, func(old []byte, _ bool) ([]byte, error) {
		saw = string(old)
		return nil, ErrNoChange
	}, 2, "no-op queued")
	select {
	case err := <-second:
		t.Fatalf("no-op over a queued value returned before its commit: %v", err)
	default:
	}
	unblock()
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := <-second; err != nil || saw != "v1" {
		t.Fatalf("no-op: saw %q, %v", saw, err)
	}
}

// TestDurableNoChange: without Options.Sync a durable no-op re-queues the
// value so that it is synced; with Sync (every commit synced) it writes
// nothing.
func TestDurableNoChange(t *testing.T) {
	noop := func([]byte, bool) ([]byte, error) { return nil, ErrNoChange }
	for _, syncAll := range []bool{false, true} {
		o := testOptions(t, t.TempDir())
		o.Sync = syncAll
		s := openTest(t, o)
		k := Key{Key: []byte("k")}
		mustSet(t, s, k, "v")
		if _, _, err := s.Update(t.Context(), k, false, noop); err != nil {
			t.Fatal(err)
		}
		if got := s.queuedSeq(); got != 1 {
			t.Fatalf("sync=%v: non-durable no-op queued a write (seq %d)", syncAll, got)
		}
		old, nv, err := s.Update(t.Context(), k, true, noop)
		if err != nil || string(old) != "v" || string(nv) != "v" {
			t.Fatalf("durable no-op: %q %q %v", old, nv, err)
		}
		want := uint64(2)
		if syncAll {
			want = 1
		}
		if got := s.queuedSeq(); got != want {
			t.Fatalf("sync=%v: durable no-op: seq %d, want %d", syncAll, got, want)
		}
		if st := s.Stats(); st.Syncs < want-1 {
			t.Fatalf("sync=%v: stats %+v", syncAll, st)
		}
	}
}

// TestHotKeyDesigns: both lock designs (release at queue time, hold until
// commit) lose no update under contention, and leave the lock table empty.
func TestHotKeyDesigns(t *testing.T) {
	for _, hold := range []bool{false, true} {
		t.Run(fmt.Sprintf("holdLocks=%v", hold), func(t *testing.T) {
			o := testOptions(t, "")
			o.holdLocks = hold
			s := openTest(t, o)
			const workers, per = 8, 200
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for range per {
						_, _, err := s.Update(t.Context(), Key{Key: []byte("hot")}, false, incr)
						if err != nil {
							t.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			v, err := s.Get(Key{Key: []byte("hot")})
			if err != nil || string(v) != strconv.Itoa(workers*per) {
				t.Fatalf("counter = %q, %v; want %d", v, err, workers*per)
			}
			if n := s.lockTableSize(); n != 0 {
				t.Fatalf("lock table holds %d entries", n)
			}
			if st := s.Stats(); st.Writes != workers*per {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// incr counts: the tests' read-modify-write.
var incr = testfn.Incr

// TestMalformedEntriesAreSkipped: keys in the store's prefixes that do not
// parse, and hint values with a bad header, never panic a read; scans skip
// them and count them, and they survive a reopen.
func TestMalformedEntriesAreSkipped(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	s := openTest(t, o)
	ctx := t.Context()
	for i := range 3 {
		mustSet(t, s, Key{Partition: 1, Hash: uint64(i) << 62, Key: []byte("ok")}, "good")
	}
	goodHint := Key{Partition: 1, Hash: 5, Key: []byte("h")}
	if _, _, err := s.UpdateHint(ctx, "n1", goodHint, false, setTo("hint")); err != nil {
		t.Fatal(err)
	}
	badHintVal := Key{Partition: 1, Hash: 6, Key: []byte("h")}
	raw := map[string][]byte{
		"r":                     []byte("x"),
		"r\x00\x00\x00\x01":     []byte("x"), // partition prefix only
		"r\x00\x00\x00\x01\x80": []byte("x"), // short hash, inside a scan range
		"r\x00\x00\x00\x02\x00": []byte("x"), // short, alone in partition 2
		"h":                     []byte("x"),
		"h\x05ab":               []byte("x"),
		"h\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00": []byte("x"),
		string(appendHintKey(nil, "n1", badHintVal)):                []byte{7},
	}
	err := s.db.Update(func(txn *badger.Txn) error {
		for k, v := range raw {
			if err := txn.Set([]byte(k), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	check := func(s *Store) {
		t.Helper()
		n := 0
		if err := s.Scan(1, 0, math.MaxUint64, func(k Key, v []byte) error {
			if string(k.Key) != "ok" || string(v) != "good" {
				t.Errorf("scan returned %+v %q", k, v)
			}
			n++
			return nil
		}); err != nil || n != 3 {
			t.Fatalf("scan: %d records, %v", n, err)
		}
		if c, err := s.Count(1); err != nil || c != 3 {
			t.Fatalf("count(1) = %d, %v", c, err)
		}
		if c, err := s.Count(2); err != nil || c != 0 {
			t.Fatalf("count(2) = %d, %v", c, err)
		}
		if ps, err := s.Partitions(); err != nil || len(ps) != 1 || ps[0] != 1 {
			t.Fatalf("partitions = %v, %v", ps, err)
		}
		hints := 0
		if err := s.ScanHints("n1", func(k Key, v []byte) error {
			hints++
			if string(v) != "hint" {
				t.Errorf("hint scan returned %+v %q", k, v)
			}
			return nil
		}); err != nil || hints != 1 {
			t.Fatalf("hint scan: %d, %v", hints, err)
		}
		if _, err := s.GetHint("n1", badHintVal); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("GetHint of a corrupt value: %v", err)
		}
		if s.Stats().Corrupt == 0 {
			t.Fatal("nothing counted as corrupt")
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, o) // the hint index scan at Open skips them too
	check(s)
	// The corrupt-valued hint is indexed as oldest, so expiry removes it...
	if st := s.HintStats("n1"); st.Count != 2 || !st.Oldest.IsZero() {
		t.Fatalf("hint stats with a corrupt hint: %+v", st)
	}
	if n, err := s.ExpireHints(ctx, "n1", time.Unix(0, 0)); err != nil || n != 1 {
		t.Fatalf("ExpireHints = %d, %v; want the corrupt hint", n, err)
	}
	// ...and an UpdateHint over one treats it as absent.
	if err := s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(appendHintKey(nil, "n1", badHintVal), []byte{7})
	}); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.UpdateHint(ctx, "n1", badHintVal, false, func(old []byte, found bool) ([]byte, error) {
		if found || old != nil {
			t.Errorf("corrupt hint handed to fn: %q %v", old, found)
		}
		return []byte("fresh"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.GetHint("n1", badHintVal); err != nil || string(v) != "fresh" {
		t.Fatalf("GetHint after overwrite: %q %v", v, err)
	}
}

// TestSyncsCountCalls: Stats.Syncs counts the syncs the store made, not
// the ones its options promise: none for unsynced writes, one per batch
// with Sync or a durable write, and none with the planted skipSync bug;
// opening a new directory syncs its format stamp.
func TestSyncsCountCalls(t *testing.T) {
	for _, tc := range []struct {
		name         string
		sync, skip   bool
		durable      bool
		wantPerBatch bool // Syncs == Batches, else Syncs == 0
	}{
		{name: "nosync", wantPerBatch: false},
		{name: "nosync-durable", durable: true, wantPerBatch: true},
		{name: "sync", sync: true, wantPerBatch: true},
		{name: "sync-skipped", sync: true, skip: true, wantPerBatch: false},
		{name: "durable-skipped", durable: true, skip: true, wantPerBatch: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions(t, t.TempDir())
			o.Sync, o.skipSync = tc.sync, tc.skip
			s := openTest(t, o)
			st0 := s.Stats() // a fresh store synced its format stamp once
			want := uint64(1)
			if tc.skip {
				want = 0
			}
			if st0.Syncs != want {
				t.Fatalf("syncs at open: %d, want %d", st0.Syncs, want)
			}
			for i := range 20 {
				if _, _, err := s.Update(t.Context(), Key{Hash: uint64(i), Key: []byte("k")}, tc.durable, setTo("v")); err != nil {
					t.Fatal(err)
				}
			}
			st := s.Stats()
			st.Syncs -= st0.Syncs
			if tc.wantPerBatch && (st.Syncs == 0 || st.Syncs != st.Batches) {
				t.Fatalf("stats %+v: want one sync per batch", st)
			}
			if !tc.wantPerBatch && st.Syncs != 0 {
				t.Fatalf("stats %+v: want no sync", st)
			}
		})
	}
}
