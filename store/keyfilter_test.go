package store

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestKeyFilterNoFalseNegatives: every hash added is reported as maybe
// present, across the growth of the filter past its first parts and under
// concurrent adds and lookups, and the filter still answers "absent" for
// most other hashes (or it would save nothing).
func TestKeyFilterNoFalseNegatives(t *testing.T) {
	f := newKeyFilter(0, DefaultKeyFilterSize)
	const writers, per = 4, 100_000 // 400,000 keys: three parts
	addConcurrently(t, f, writers, per, 1, func() error { return nil })
	if n := len(*f.parts.Load()); n < 3 {
		t.Fatalf("%d parts after %d keys from a capacity of %d: growth not exercised", n, writers*per, filterMinKeys)
	}
	for w := range writers {
		r := rand.New(rand.NewPCG(uint64(w), 1))
		for range per {
			if h := r.Uint64(); !f.mayHave(h) {
				t.Fatalf("hash %#x added, reported absent", h)
			}
		}
	}
	r := rand.New(rand.NewPCG(99, 2))
	fp := 0
	const probes = 100_000
	for range probes {
		if f.mayHave(r.Uint64()) {
			fp++
		}
	}
	if rate := float64(fp) / probes; rate > 0.05 {
		t.Fatalf("false positive rate %.3f > 0.05", rate)
	}
}

// TestKeyFilterAcrossReopen: the records a disk store holds are found by
// read-modify-writes after it reopens (the filter is seeded from the key
// index), those it never held are answered by the filter without a read
// of badger, and a deleted then re-created record is found again.
func TestKeyFilterAcrossReopen(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	key := func(i int) Key {
		k := benchKey(i)
		return k
	}
	const n = 3000
	s, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		mustSet(t, s, key(i), fmt.Sprint(i))
	}
	// Deleted, then written again: must be found after the reopen.
	if _, _, err := s.Update(t.Context(), key(0), false, func([]byte, bool) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	mustSet(t, s, key(0), "again")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openTest(t, o)
	if s.keys == nil {
		t.Fatal("no key filter on a writable disk store")
	}
	for i := range n {
		want := fmt.Sprint(i)
		if i == 0 {
			want = "again"
		}
		old, _, err := s.Update(t.Context(), key(i), false, func(old []byte, found bool) ([]byte, error) {
			if !found {
				return nil, fmt.Errorf("key %d not found after reopen", i)
			}
			return old, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if string(old) != want {
			t.Fatalf("key %d: %q, want %q", i, old, want)
		}
	}
	skips0 := s.Stats().FilterSkips
	for i := n; i < 2*n; i++ {
		mustSet(t, s, key(i), "new")
	}
	if skips := s.Stats().FilterSkips - skips0; skips < n*9/10 {
		t.Fatalf("%d of %d new keys answered by the filter, want >= 90%%", skips, n)
	}
	for i := n; i < 2*n; i++ {
		v, err := s.Get(key(i))
		if err != nil || string(v) != "new" {
			t.Fatalf("key %d: %q, %v", i, v, err)
		}
	}
}

// TestKeyFilterBound: a filter that would grow past its bound turns off
// and drops its parts: its memory stays within the bound, and from then on
// every hash, added before, while or after it turned off, is "maybe".
func TestKeyFilterBound(t *testing.T) {
	first := partBytes(filterMinKeys)
	limit := first + partBytes(2*filterMinKeys) // room for two parts, not three
	f := newKeyFilter(0, limit)
	const writers, per = 4, 100_000 // past three parts' capacity
	addConcurrently(t, f, writers, per, 7, func() error {
		if b := f.size(); b > limit {
			return fmt.Errorf("filter holds %d bytes, bound %d", b, limit)
		}
		return nil
	})
	if !f.off.Load() || len(*f.parts.Load()) != 0 || f.size() != 0 {
		t.Fatalf("after %d keys with room for %d: off %v, %d parts, %d bytes; want off, none, 0",
			writers*per, 3*filterMinKeys, f.off.Load(), len(*f.parts.Load()), f.size())
	}
	r := rand.New(rand.NewPCG(99, 2))
	for range 1000 {
		if h := r.Uint64(); !f.mayHave(h) {
			t.Fatalf("hash %#x reported absent by a filter that is off", h)
		}
	}
	if g := newKeyFilter(0, first-1); g != nil {
		t.Fatalf("a bound below the first part made a filter")
	}
}

// TestKeyFilterSizeOption: the store's filter follows Options.KeyFilterSize:
// none when negative or when the keys a store reopens with need more than
// the bound, and its size in Stats; records are found either way.
func TestKeyFilterSizeOption(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, dir)
	o.KeyFilterSize = -1
	s := openTest(t, o)
	if s.keys != nil || s.Stats().FilterBytes != 0 {
		t.Fatalf("KeyFilterSize -1: filter %v, %d bytes", s.keys != nil, s.Stats().FilterBytes)
	}
	const n = 2000
	for i := range n {
		mustSet(t, s, benchKey(i), "v")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	o.KeyFilterSize = 0 // the default
	s = openTest(t, o)
	if got := s.Stats().FilterBytes; got != partBytes(filterMinKeys) {
		t.Fatalf("default filter of a %d-key store: %d bytes, want %d", n, got, partBytes(filterMinKeys))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	o.KeyFilterSize = partBytes(filterMinKeys) - 1 // not even the first part
	s = openTest(t, o)
	if s.keys != nil {
		t.Fatalf("KeyFilterSize %d: a filter of %d bytes", o.KeyFilterSize, s.keys.size())
	}
	for i := range n {
		if v, err := s.Get(benchKey(i)); err != nil || string(v) != "v" {
			t.Fatalf("key %d without a filter: %q, %v", i, v, err)
		}
	}
}

// addConcurrently adds per random hashes (PCG seeded with the writer's
// index and seed) from each of writers goroutines, checking after each add
// that the hash is "maybe" and that check passes.
func addConcurrently(t *testing.T, f *keyFilter, writers, per int, seed uint64, check func() error) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), seed))
			for range per {
				h := r.Uint64()
				f.add(h)
				if !f.mayHave(h) {
					t.Errorf("hash %#x absent right after add", h)
					return
				}
				if err := check(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
