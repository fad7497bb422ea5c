package antientropy

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func mustTree(tb rapid.TB, cfg TreeConfig) *Tree {
	tb.Helper()
	t, err := NewTree(cfg)
	if err != nil {
		tb.Fatalf("NewTree(%+v): %v", cfg, err)
	}
	return t
}

// levels returns every hash of the tree, root level first.
func levels(tb rapid.TB, t *Tree) [][]uint64 {
	tb.Helper()
	var out [][]uint64
	for l := 0; l <= t.Depth(); l++ {
		idx := make([]uint32, t.Config().LevelWidth(l))
		for i := range idx {
			idx[i] = uint32(i)
		}
		h, err := t.Hashes(l, idx)
		if err != nil {
			tb.Fatalf("Hashes(%d): %v", l, err)
		}
		out = append(out, h)
	}
	return out
}

func TestTreeUpdate(t *testing.T) {
	cfg := TreeConfig{PartitionBits: 4, Partition: 2, LeafBits: 4, FanoutBits: 2}
	h1 := uint64(0x2100_0000_0000_0001) // bucket 1
	h2 := uint64(0x2f00_0000_0000_0002) // bucket 15
	type op struct{ h, old, new uint64 }
	tests := []struct {
		name     string
		ops      []op
		wantRoot func(r uint64) bool
		leaves   map[uint32]uint64 // expected non-zero leaves
	}{
		{"empty", nil, func(r uint64) bool { return r == 0 }, nil},
		{"one key", []op{{h1, 0, 7}}, func(r uint64) bool { return r != 0 }, map[uint32]uint64{1: 7}},
		{"insert then delete", []op{{h1, 0, 7}, {h1, 7, 0}}, func(r uint64) bool { return r == 0 }, nil},
		{"overwrite", []op{{h1, 0, 7}, {h1, 7, 9}}, func(r uint64) bool { return r != 0 }, map[uint32]uint64{1: 9}},
		{"old and new swapped", []op{{h1, 0, 7}, {h1, 9, 7}}, func(r uint64) bool { return r != 0 }, map[uint32]uint64{1: 9}},
		{"no change", []op{{h1, 5, 5}}, func(r uint64) bool { return r == 0 }, nil},
		{"two buckets", []op{{h1, 0, 7}, {h2, 0, 8}}, func(r uint64) bool { return r != 0 }, map[uint32]uint64{1: 7, 15: 8}},
		{"two keys, one bucket", []op{{h1, 0, 7}, {h1 + 1, 0, 5}}, func(r uint64) bool { return r != 0 }, map[uint32]uint64{1: 7 ^ 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTree(t, cfg)
			for _, o := range tc.ops {
				if err := tr.Update(o.h, o.old, o.new); err != nil {
					t.Fatalf("Update: %v", err)
				}
			}
			if r := tr.Root(); !tc.wantRoot(r) {
				t.Errorf("Root = %#x", r)
			}
			lv := levels(t, tr)
			for b, h := range lv[tr.Depth()] {
				if h != tc.leaves[uint32(b)] {
					t.Errorf("leaf %d = %#x, want %#x", b, h, tc.leaves[uint32(b)])
				}
			}
			// An inner node is 0 exactly when its subtree is empty.
			for l := tr.Depth() - 1; l >= 0; l-- {
				for i, h := range lv[l] {
					first, n := cfg.Children(l, uint32(i))
					empty := !slices.ContainsFunc(lv[l+1][first:first+n], func(c uint64) bool { return c != 0 })
					if (h == 0) != empty {
						t.Errorf("level %d node %d = %#x, subtree empty=%v", l, i, h, empty)
					}
				}
			}
		})
	}
}

func TestTreeErrors(t *testing.T) {
	cfg := TreeConfig{PartitionBits: 4, Partition: 2, LeafBits: 4, FanoutBits: 2}
	tr := mustTree(t, cfg)
	if err := tr.Update(0x3000_0000_0000_0000, 0, 1); !errors.Is(err, ErrWrongPartition) {
		t.Errorf("Update outside the partition = %v, want ErrWrongPartition", err)
	}
	if tr.Root() != 0 {
		t.Errorf("a rejected Update changed the tree")
	}
	for _, tc := range []struct {
		level int
		nodes []uint32
	}{
		{-1, []uint32{0}}, {3, []uint32{0}}, {0, []uint32{1}}, {1, []uint32{0, 4}}, {2, []uint32{16}},
	} {
		if _, err := tr.Hashes(tc.level, tc.nodes); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("Hashes(%d, %v) = %v, want ErrOutOfRange", tc.level, tc.nodes, err)
		}
	}
	if h, err := tr.Hashes(1, nil); err != nil || len(h) != 0 {
		t.Errorf("Hashes(1, nil) = %v, %v", h, err)
	}
}

func TestTreeReset(t *testing.T) {
	tr := mustTree(t, DefaultTreeConfig())
	for i := range 100 {
		_ = tr.Update(uint64(i)<<40, 0, uint64(i)+1)
	}
	_ = tr.Root()
	_ = tr.Update(1<<50, 0, 3) // leave dirty nodes behind
	tr.Reset()
	if tr.Root() != 0 {
		t.Fatalf("Root after Reset = %#x", tr.Root())
	}
	_ = tr.Update(5, 0, 9)
	fresh := mustTree(t, DefaultTreeConfig())
	_ = fresh.Update(5, 0, 9)
	if tr.Root() != fresh.Root() {
		t.Errorf("a reset tree differs from a new one")
	}
}

// Two keys that swap sibling sets change the tree, even in one bucket:
// the per-key digest mixes in the key.
func TestDigestSwappedSets(t *testing.T) {
	cfg := TreeConfig{LeafBits: 1, FanoutBits: 1}
	a, b := newReplica(t, cfg), newReplica(t, cfg)
	a.hashOf = func([]byte) uint64 { return 42 } // same bucket, same hash
	b.hashOf = a.hashOf
	a.put("x", 1)
	a.put("y", 2)
	b.put("x", 2)
	b.put("y", 1)
	if a.tree.Root() == b.tree.Root() {
		t.Errorf("swapping the sets of two keys left the root unchanged")
	}
	if Digest(1, []byte("k"), 0) == 0 || Digest(0, nil, 0) == 0 {
		t.Errorf("Digest returned 0")
	}
}

// Inner nodes hash their children in order, so moving a leaf value to
// another bucket changes the root (a XOR of all leaves would not).
func TestTreeStructureMatters(t *testing.T) {
	cfg := TreeConfig{LeafBits: 2, FanoutBits: 2}
	a, b := mustTree(t, cfg), mustTree(t, cfg)
	_ = a.Update(0<<62, 0, 5)
	_ = a.Update(1<<62, 0, 6)
	_ = b.Update(0<<62, 0, 6)
	_ = b.Update(1<<62, 0, 5)
	if a.Root() == b.Root() {
		t.Errorf("trees with leaves swapped have equal roots")
	}
}

type treeOp struct {
	key    int
	digest uint64 // 0 deletes
	read   bool   // read the root first (exercises lazy recomputation)
}

// The Merkle tree after any sequence of writes (with reads in between)
// equals one built from scratch from the final contents, in any order.
func TestTreeIncrementalEqualsBuild(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		cfg := TreeConfig{
			LeafBits:   rapid.IntRange(1, 8).Draw(rt, "leafBits"),
			FanoutBits: rapid.IntRange(1, 4).Draw(rt, "fanoutBits"),
		}
		ops := rapid.SliceOf(rapid.Custom(func(t *rapid.T) treeOp {
			return treeOp{
				key:    rapid.IntRange(0, 40).Draw(t, "key"),
				digest: rapid.SampledFrom([]uint64{0, 1, 2, 0xdead_beef}).Draw(t, "digest"),
				read:   rapid.Bool().Draw(t, "read"),
			}
		})).Draw(rt, "ops")
		inc := newReplica(rt, cfg)
		for _, o := range ops {
			if o.read {
				_ = inc.tree.Root()
			}
			inc.put(benchKey(o.key), o.digest)
		}
		var final []KeyDigest
		for _, k := range inc.keys {
			final = append(final, k)
		}
		final = rapid.Permutation(final).Draw(rt, "order")
		built := mustTree(rt, cfg)
		for _, k := range final {
			if err := built.Update(k.Hash, 0, k.Digest); err != nil {
				rt.Fatal(err)
			}
		}
		if got, want := levels(rt, inc.tree), levels(rt, built); !slices.EqualFunc(got, want, slices.Equal) {
			rt.Fatalf("incremental tree differs from a fresh build:\n%v\n%v", got, want)
		}
		if (len(final) == 0) != (inc.tree.Root() == 0) {
			rt.Fatalf("root %#x with %d keys", inc.tree.Root(), len(final))
		}
	})
}

func TestUpdateDoesNotAllocate(t *testing.T) {
	tr := mustTree(t, DefaultTreeConfig())
	i := uint64(0)
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		_ = tr.Update(i*0x9e3779b97f4a7c15>>8, 0, i)
	})
	if allocs != 0 {
		t.Errorf("Update allocates %v times per call", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		i++
		_ = tr.Update(i*0x9e3779b97f4a7c15>>8, 0, i)
		_ = tr.Root()
	})
	if allocs != 0 {
		t.Errorf("Update+Root allocates %v times", allocs)
	}
	d := testing.AllocsPerRun(100, func() { _ = Digest(1, []byte("some key"), 2) })
	if d != 0 {
		t.Errorf("Digest allocates %v times", d)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	for _, cfg := range []TreeConfig{
		DefaultTreeConfig(),
		{PartitionBits: 3, Partition: 5, LeafBits: 7, FanoutBits: 3},
		{LeafBits: 1, FanoutBits: 8},
	} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			r := newReplica(t, cfg)
			for i := range 500 {
				r.put(benchKey(i), uint64(i)+1)
			}
			b, err := r.tree.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := DecodeTree(b)
			if err != nil {
				t.Fatalf("DecodeTree: %v", err)
			}
			if got.Config() != cfg {
				t.Errorf("config %+v, want %+v", got.Config(), cfg)
			}
			if !slices.EqualFunc(levels(t, got), levels(t, r.tree), slices.Equal) {
				t.Errorf("decoded tree differs")
			}
			// The decoded tree keeps working incrementally.
			r.put(benchKey(1), 0)
			_ = got.Update(r.hashOf([]byte(benchKey(1))), Digest(r.hashOf([]byte(benchKey(1))), []byte(benchKey(1)), 2), 0)
			if got.Root() != r.tree.Root() {
				t.Errorf("decoded tree diverges after an update")
			}
			for _, cut := range []int{0, 1, len(b) / 2, len(b) - 1} {
				if _, err := DecodeTree(b[:cut]); !errors.Is(err, ErrMalformed) {
					t.Errorf("DecodeTree of %d/%d bytes = %v, want ErrMalformed", cut, len(b), err)
				}
			}
			if _, err := DecodeTree(append(b, 0)); !errors.Is(err, ErrMalformed) {
				t.Errorf("DecodeTree with a trailing byte = %v", err)
			}
		})
	}
}
