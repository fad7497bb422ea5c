package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/store/internal/testfn"
)

// Factory opens an empty store from o after choosing where it lives (it
// sets o.Dir or o.InMemory). reopen, nil for stores that do not persist,
// opens the same data again with the same options; the suite closes s first.
// The factory registers a cleanup that closes whatever is still open.
type Factory func(t *testing.T, o store.Options) (s *store.Store, reopen func() *store.Store)

// Options returns store options for tests: small memtables and caches so
// several stores fit in one -race test process, and badger's warnings
// logged to t.
func Options(t testing.TB) store.Options {
	o := store.DefaultOptions("")
	o.MemTableSize = 4 << 20
	o.BlockCacheSize = 1 << 20
	o.ValueThreshold = 256 << 10
	o.MaxValueSize = 256 << 10
	o.ValueLogFileSize = 16 << 20
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	return o
}

// InMemory is a Factory for in-memory stores.
func InMemory(t *testing.T, o store.Options) (*store.Store, func() *store.Store) {
	t.Helper()
	o.Dir, o.InMemory = "", true
	return mustOpen(t, o), nil
}

// OnDisk is a Factory for stores in a fresh t.TempDir.
func OnDisk(t *testing.T, o store.Options) (*store.Store, func() *store.Store) {
	t.Helper()
	o.Dir, o.InMemory = t.TempDir(), false
	return mustOpen(t, o), func() *store.Store { return mustOpen(t, o) }
}

// Open opens an in-memory store with Options(t), closed by t.Cleanup.
func Open(t testing.TB) *store.Store {
	t.Helper()
	o := Options(t)
	o.InMemory = true
	return mustOpen(t, o)
}

func mustOpen(t testing.TB, o store.Options) *store.Store {
	t.Helper()
	s, err := store.Open(o)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Run runs the conformance suite, each subtest on a fresh store from f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"GetMissing", testGetMissing},
		{"UpdateLifecycle", testUpdateLifecycle},
		{"EmptyValueIsNotDelete", testEmptyValue},
		{"NoChange", testNoChange},
		{"FuncError", testFuncError},
		{"ReturnedSlicesAreCopies", testCopies},
		{"TooLarge", testTooLarge},
		{"ContextCanceled", testContextCanceled},
		{"ScanOrderAndBounds", testScan},
		{"ScanStopsOnError", testScanStop},
		{"CountAndPartitions", testCountPartitions},
		{"DropPartition", testDropPartition},
		{"Hints", testHints},
		{"HintTargetsAreSeparate", testHintTargets},
		{"DeleteHintIf", testDeleteHintIf},
		{"HintStatsAndExpiry", testHintStats},
		{"Meta", testMeta},
		{"State", testState},
		{"Close", testClose},
		{"ConcurrentIncrements", testConcurrentIncrements},
		{"Reopen", testReopen},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

func newStore(t *testing.T, f Factory) *store.Store {
	t.Helper()
	s, _ := f(t, Options(t))
	return s
}

func key(p uint32, h uint64, k string) store.Key {
	return store.Key{Partition: p, Hash: h, Key: []byte(k)}
}

func set(val []byte) store.UpdateFunc {
	return func([]byte, bool) ([]byte, error) { return val, nil }
}

func del([]byte, bool) ([]byte, error) { return nil, nil }

func put(t *testing.T, s *store.Store, k store.Key, val string) {
	t.Helper()
	if _, _, err := s.Update(t.Context(), k, false, set([]byte(val))); err != nil {
		t.Fatalf("update %q: %v", k.Key, err)
	}
}

func wantGet(t *testing.T, s *store.Store, k store.Key, want string) {
	t.Helper()
	got, err := s.Get(k)
	if err != nil {
		t.Fatalf("get %q: %v", k.Key, err)
	}
	if string(got) != want {
		t.Fatalf("get %q = %q, want %q", k.Key, got, want)
	}
}

func wantMissing(t *testing.T, s *store.Store, k store.Key) {
	t.Helper()
	if v, err := s.Get(k); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get %q = %q, %v; want ErrNotFound", k.Key, v, err)
	}
}

func testGetMissing(t *testing.T, f Factory) {
	s := newStore(t, f)
	wantMissing(t, s, key(1, 2, "nope"))
	if _, err := s.GetHint("n1", key(1, 2, "nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetHint missing: %v", err)
	}
	if _, err := s.GetMeta("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetMeta missing: %v", err)
	}
}

func testUpdateLifecycle(t *testing.T, f Factory) {
	s := newStore(t, f)
	ctx := t.Context()
	k := key(3, 42, "k")

	var sawOld []byte
	var sawFound bool
	old, nv, err := s.Update(ctx, k, false, func(o []byte, found bool) ([]byte, error) {
		sawOld, sawFound = o, found
		return []byte("v1"), nil
	})
	if err != nil || old != nil || string(nv) != "v1" || sawOld != nil || sawFound {
		t.Fatalf("create: old=%q new=%q err=%v; fn saw %q,%v", old, nv, err, sawOld, sawFound)
	}
	wantGet(t, s, k, "v1")

	old, nv, err = s.Update(ctx, k, true, func(o []byte, found bool) ([]byte, error) {
		if !found || string(o) != "v1" {
			return nil, fmt.Errorf("fn saw %q,%v", o, found)
		}
		return append(slices.Clone(o), "+v2"...), nil
	})
	if err != nil || string(old) != "v1" || string(nv) != "v1+v2" {
		t.Fatalf("modify: old=%q new=%q err=%v", old, nv, err)
	}
	wantGet(t, s, k, "v1+v2")

	old, nv, err = s.Update(ctx, k, false, del)
	if err != nil || string(old) != "v1+v2" || nv != nil {
		t.Fatalf("delete: old=%q new=%q err=%v", old, nv, err)
	}
	wantMissing(t, s, k)

	// Deleting an absent record is fine and changes nothing.
	if _, _, err := s.Update(ctx, k, false, del); err != nil {
		t.Fatalf("delete absent: %v", err)
	}
	wantMissing(t, s, k)
}

func testEmptyValue(t *testing.T, f Factory) {
	s := newStore(t, f)
	k := key(0, 0, "")
	put(t, s, k, "")
	got, err := s.Get(k)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("get empty = %v, %v; want empty non-nil", got, err)
	}
	_, _, err = s.Update(t.Context(), k, false, func(o []byte, found bool) ([]byte, error) {
		if !found {
			return nil, errors.New("empty value reported as absent")
		}
		return nil, store.ErrNoChange
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testNoChange(t *testing.T, f Factory) {
	s := newStore(t, f)
	ctx := t.Context()
	k := key(1, 1, "k")
	noChange := func([]byte, bool) ([]byte, error) { return nil, store.ErrNoChange }

	old, nv, err := s.Update(ctx, k, false, noChange)
	if err != nil || old != nil || nv != nil {
		t.Fatalf("no change on absent: %q %q %v", old, nv, err)
	}
	wantMissing(t, s, k)

	put(t, s, k, "v")
	for _, durable := range []bool{false, true} {
		old, nv, err = s.Update(ctx, k, durable, noChange)
		if err != nil || string(old) != "v" || string(nv) != "v" {
			t.Fatalf("no change (durable=%v): %q %q %v", durable, old, nv, err)
		}
		wantGet(t, s, k, "v")
	}
}

func testFuncError(t *testing.T, f Factory) {
	s := newStore(t, f)
	k := key(1, 1, "k")
	put(t, s, k, "v")
	boom := errors.New("boom")
	_, _, err := s.Update(t.Context(), k, false, func([]byte, bool) ([]byte, error) { return nil, boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v, want boom", err)
	}
	wantGet(t, s, k, "v")
}

func testCopies(t *testing.T, f Factory) {
	s := newStore(t, f)
	ctx := t.Context()
	k := key(1, 1, "k")
	buf := []byte("abc")
	_, nv, err := s.Update(ctx, k, false, set(buf))
	if err != nil {
		t.Fatal(err)
	}
	buf[0], nv[1] = 'X', 'Y' // the store kept its own copy
	wantGet(t, s, k, "abc")

	got, _ := s.Get(k)
	got[0] = 'Z'
	wantGet(t, s, k, "abc")

	old, _, err := s.Update(ctx, k, false, set([]byte("def")))
	if err != nil {
		t.Fatal(err)
	}
	old[0] = 'Q'
	wantGet(t, s, k, "def")
}

func testTooLarge(t *testing.T, f Factory) {
	s := newStore(t, f)
	ctx := t.Context()
	big := store.Key{Key: make([]byte, store.MaxKeyLen+1)}
	if _, _, err := s.Update(ctx, big, false, set([]byte("v"))); !errors.Is(err, store.ErrKeyTooLarge) {
		t.Fatalf("long key: %v", err)
	}
	if _, err := s.Get(big); !errors.Is(err, store.ErrKeyTooLarge) {
		t.Fatalf("get long key: %v", err)
	}
	k := key(1, 1, "k")
	val := make([]byte, Options(t).MaxValueSize+1)
	if _, _, err := s.Update(ctx, k, false, set(val)); !errors.Is(err, store.ErrValueTooLarge) {
		t.Fatalf("long value: %v", err)
	}
	wantMissing(t, s, k)
	if _, _, err := s.UpdateHint(ctx, "n1", k, false, set(val)); !errors.Is(err, store.ErrValueTooLarge) {
		t.Fatalf("long hint: %v", err)
	}
	if _, _, err := s.UpdateHint(ctx, "", k, false, set([]byte("v"))); !errors.Is(err, store.ErrEmptyName) {
		t.Fatalf("empty target: %v", err)
	}
	long := string(make([]byte, store.MaxTargetLen+1))
	if _, _, err := s.UpdateHint(ctx, long, k, false, set([]byte("v"))); !errors.Is(err, store.ErrKeyTooLarge) {
		t.Fatalf("long target: %v", err)
	}
	// The largest allowed sizes work.
	okKey := store.Key{Key: make([]byte, store.MaxKeyLen)}
	okVal := make([]byte, Options(t).MaxValueSize)
	if _, _, err := s.Update(ctx, okKey, false, set(okVal)); err != nil {
		t.Fatalf("max key and value: %v", err)
	}
	if got, err := s.Get(okKey); err != nil || !bytes.Equal(got, okVal) {
		t.Fatalf("get max value: %d bytes, %v", len(got), err)
	}
}

func testContextCanceled(t *testing.T, f Factory) {
	s := newStore(t, f)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	_, _, err := s.Update(ctx, key(1, 1, "k"), false, func([]byte, bool) ([]byte, error) {
		called = true
		return []byte("v"), nil
	})
	if !errors.Is(err, context.Canceled) || called {
		t.Fatalf("canceled ctx: err=%v called=%v", err, called)
	}
	wantMissing(t, s, key(1, 1, "k"))

	// A writer that waits for a busy key gives up at its deadline without
	// running fn; the holder's write is unaffected.
	k := key(1, 2, "busy")
	holder := testfn.Hold(func(fn func([]byte, bool) ([]byte, error)) error {
		_, _, err := s.Update(t.Context(), k, false, fn)
		return err
	}, "holder")
	tctx, tcancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer tcancel()
	_, _, err = s.Update(tctx, k, false, func([]byte, bool) ([]byte, error) {
		t.Error("fn ran although the lock was never acquired")
		return []byte("waiter"), nil
	})
	holderErr := holder.Release() // before any Fatal: the holder must end
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiter error = %v, want DeadlineExceeded", err)
	}
	if holderErr != nil {
		t.Fatal(holderErr)
	}
	wantGet(t, s, k, "holder")
}

type rec struct {
	hash uint64
	key  string
}

func scanAll(t *testing.T, s *store.Store, p uint32, from, to uint64) []rec {
	t.Helper()
	var out []rec
	err := s.Scan(p, from, to, func(k store.Key, val []byte) error {
		if k.Partition != p {
			t.Errorf("scan of %d returned partition %d", p, k.Partition)
		}
		if want := fmt.Sprintf("%d/%x/%s", p, k.Hash, k.Key); string(val) != want {
			t.Errorf("value %q, want %q", val, want)
		}
		out = append(out, rec{k.Hash, string(k.Key)})
		return nil
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return out
}

func testScan(t *testing.T, f Factory) {
	s := newStore(t, f)
	hashes := []uint64{0, 1, 255, 256, 1 << 32, math.MaxUint64 - 1, math.MaxUint64}
	keys := []string{"", "a", "ab", "b", "\xff"}
	parts := []uint32{0, 7, math.MaxUint32}
	var want []rec
	for _, p := range parts {
		for i := len(hashes) - 1; i >= 0; i-- { // insert out of order
			for _, k := range keys {
				put(t, s, key(p, hashes[i], k), fmt.Sprintf("%d/%x/%s", p, hashes[i], k))
			}
		}
	}
	for _, h := range hashes {
		for _, k := range keys {
			want = append(want, rec{h, k})
		}
	}
	for _, p := range parts {
		if got := scanAll(t, s, p, 0, math.MaxUint64); !slices.Equal(got, want) {
			t.Fatalf("partition %d full scan:\n got %v\nwant %v", p, got, want)
		}
	}
	// Bounds are inclusive at both ends.
	bounds := []struct{ from, to uint64 }{
		{0, 0}, {1, 255}, {2, 255}, {256, 1 << 32}, {math.MaxUint64, math.MaxUint64},
		{math.MaxUint64 - 1, math.MaxUint64}, {257, 1<<32 - 1}, {5, 4},
	}
	for _, b := range bounds {
		var w []rec
		for _, r := range want {
			if r.hash >= b.from && r.hash <= b.to {
				w = append(w, r)
			}
		}
		if got := scanAll(t, s, 7, b.from, b.to); !slices.Equal(got, w) {
			t.Fatalf("scan [%d, %d]:\n got %v\nwant %v", b.from, b.to, got, w)
		}
	}
	if got := scanAll(t, s, 8, 0, math.MaxUint64); len(got) != 0 {
		t.Fatalf("empty partition: %v", got)
	}
}

func testScanStop(t *testing.T, f Factory) {
	s := newStore(t, f)
	for i := range 10 {
		put(t, s, key(1, uint64(i), "k"), "v")
	}
	stop := errors.New("stop")
	n := 0
	err := s.Scan(1, 0, math.MaxUint64, func(store.Key, []byte) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("scan stopped with %v after %d records, want stop after 3", err, n)
	}
	// A scan callback may write to the store.
	err = s.Scan(1, 0, 4, func(k store.Key, _ []byte) error {
		_, _, err := s.Update(t.Context(), store.Key{Partition: 2, Hash: k.Hash, Key: slices.Clone(k.Key)}, false, set([]byte("copied")))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := s.Count(2); err != nil || n != 5 {
		t.Fatalf("count after copy = %d, %v; want 5", n, err)
	}
}

func testCountPartitions(t *testing.T, f Factory) {
	s := newStore(t, f)
	if ps, err := s.Partitions(); err != nil || len(ps) != 0 {
		t.Fatalf("empty store partitions: %v %v", ps, err)
	}
	counts := map[uint32]int{0: 3, 1: 1, 300: 20, math.MaxUint32: 2}
	for p, n := range counts {
		for i := range n {
			put(t, s, key(p, uint64(i*7919), strconv.Itoa(i)), "v")
		}
	}
	// Hints and meta are not records.
	if _, _, err := s.UpdateHint(t.Context(), "n1", key(5, 1, "h"), false, set([]byte("h"))); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta("epoch", []byte{1}); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Partitions()
	if err != nil || !slices.Equal(ps, []uint32{0, 1, 300, math.MaxUint32}) {
		t.Fatalf("partitions = %v, %v", ps, err)
	}
	for p, n := range counts {
		if got, err := s.Count(p); err != nil || got != n {
			t.Fatalf("count(%d) = %d, %v; want %d", p, got, err, n)
		}
	}
	if got, err := s.Count(5); err != nil || got != 0 {
		t.Fatalf("count(5) = %d, %v", got, err)
	}
	// A deleted record no longer counts.
	if _, _, err := s.Update(t.Context(), key(1, 0, "0"), false, del); err != nil {
		t.Fatal(err)
	}
	if ps, _ := s.Partitions(); !slices.Equal(ps, []uint32{0, 300, math.MaxUint32}) {
		t.Fatalf("partitions after delete = %v", ps)
	}
}

func testDropPartition(t *testing.T, f Factory) {
	s := newStore(t, f)
	ctx := t.Context()
	for p := range uint32(3) {
		for i := range 50 {
			put(t, s, key(p, uint64(i), "k"), "v")
		}
	}
	if _, _, err := s.UpdateHint(ctx, "n1", key(1, 1, "k"), false, set([]byte("hint"))); err != nil {
		t.Fatal(err)
	}
	if err := s.DropPartition(1); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.Count(1); n != 0 {
		t.Fatalf("count after drop = %d", n)
	}
	for _, p := range []uint32{0, 2} {
		if n, _ := s.Count(p); n != 50 {
			t.Fatalf("partition %d count = %d after dropping 1", p, n)
		}
	}
	if v, err := s.GetHint("n1", key(1, 1, "k")); err != nil || string(v) != "hint" {
		t.Fatalf("hint after drop: %q %v", v, err)
	}
	if err := s.DropPartition(9); err != nil { // empty: no-op
		t.Fatal(err)
	}
	// The partition can be written again.
	put(t, s, key(1, 3, "k"), "again")
	wantGet(t, s, key(1, 3, "k"), "again")
}
