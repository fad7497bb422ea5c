package antientropy

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// randomHashes returns n key hashes in cfg's partition and n digests.
func randomHashes(cfg TreeConfig, n int) (hashes, digests []uint64) {
	rng := rand.New(rand.NewPCG(1, 2))
	hashes, digests = make([]uint64, n), make([]uint64, n)
	for i := range hashes {
		h := rng.Uint64()
		if cfg.PartitionBits > 0 {
			h = uint64(cfg.Partition)<<(64-cfg.PartitionBits) | h>>cfg.PartitionBits
		}
		hashes[i], digests[i] = h, rng.Uint64()|1
	}
	return hashes, digests
}

// BenchmarkUpdate is the tree cost of one write: an overwrite of a random
// key (old and new digests known).
func BenchmarkUpdate(b *testing.B) {
	for _, lb := range []int{12, 14, 16} {
		b.Run(fmt.Sprintf("leafBits=%d", lb), func(b *testing.B) {
			cfg := DefaultTreeConfig()
			cfg.LeafBits = lb
			t := mustTree(b, cfg)
			hashes, digests := randomHashes(cfg, 1<<16)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i & (1<<16 - 1)
				_ = t.Update(hashes[k], digests[k], digests[k]^uint64(i))
				i++
			}
		})
	}
}

// BenchmarkDigest is the per-key digest of a write (key hash and set
// digest already known).
func BenchmarkDigest(b *testing.B) {
	for _, n := range []int{16, 64, 1024} {
		b.Run(fmt.Sprintf("keyLen=%d", n), func(b *testing.B) {
			key := make([]byte, n)
			b.ReportAllocs()
			for b.Loop() {
				_ = Digest(12345, key, 67890)
			}
		})
	}
}

// BenchmarkRootAfterUpdates is the cost of reading the root after k random
// writes (the lazy recomputation of the dirty inner nodes); the writes
// themselves are not timed.
func BenchmarkRootAfterUpdates(b *testing.B) {
	for _, k := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("k=%d", k), func(b *testing.B) {
			cfg := DefaultTreeConfig()
			t := mustTree(b, cfg)
			hashes, digests := randomHashes(cfg, 1<<16)
			for i := range hashes {
				_ = t.Update(hashes[i], 0, digests[i])
			}
			_ = t.Root()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				b.StopTimer()
				for range k {
					j := i & (1<<16 - 1)
					_ = t.Update(hashes[j], 0, uint64(i)+1)
					i++
				}
				b.StartTimer()
				_ = t.Root()
			}
		})
	}
}

// BenchmarkBuild builds trees for 1,000,000 keys from precomputed hashes and
// digests, then reads the root(s): the in-memory part of rebuilding the trees
// from a scan at start-up. "trees=256" spreads the keys over the 256
// partitions of the default ring, one tree each, visited in random hash
// order (a scan in key order) or partition by partition (a scan of a store
// keyed by partition).
func BenchmarkBuild(b *testing.B) {
	const n = 1_000_000
	for _, bc := range []struct {
		name   string
		parts  int
		sorted bool
	}{
		{"keys=1M/trees=1", 1, false},
		{"keys=1M/trees=256/order=random", 256, false},
		{"keys=1M/trees=256/order=partition", 256, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := DefaultTreeConfig()
			if bc.parts == 1 {
				cfg.PartitionBits = 0
			}
			all := TreeConfig{LeafBits: 1, FanoutBits: 1} // whole hash space
			hashes, digests := randomHashes(all, n)
			if bc.sorted {
				sortByPartition(hashes, digests)
			}
			trees := make([]*Tree, bc.parts)
			for p := range trees {
				c := cfg
				c.Partition = uint32(p)
				trees[p] = mustTree(b, c)
			}
			b.ReportAllocs()
			for b.Loop() {
				for _, t := range trees {
					t.Reset()
				}
				for i, h := range hashes {
					t := trees[0]
					if bc.parts > 1 {
						t = trees[h>>(64-cfg.PartitionBits)]
					}
					_ = t.Update(h, 0, digests[i])
				}
				for _, t := range trees {
					_ = t.Root()
				}
			}
		})
	}
}

// sortByPartition orders hashes (and their digests) by their top 8 bits,
// keeping the random order within a partition.
func sortByPartition(hashes, digests []uint64) {
	idx := make([]int, len(hashes))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(hashes[a]>>56, hashes[b]>>56) })
	h2, d2 := make([]uint64, len(hashes)), make([]uint64, len(hashes))
	for i, j := range idx {
		h2[i], d2[i] = hashes[j], digests[j]
	}
	copy(hashes, h2)
	copy(digests, d2)
}

// BenchmarkRebuildHashing is the CPU of rebuilding from a scan, short of the
// scan itself: for each of 1,000,000 keys already read (16-byte key, one
// sibling of vlen bytes), hash the key, digest the set (xxhash of the value
// standing in for a canonical set encoding), digest the key and update one
// of 256 trees, partition by partition. The store scan is measured by
// package store.
func BenchmarkRebuildHashing(b *testing.B) {
	const n = 1_000_000
	for _, vlen := range []int{100, 1024} {
		b.Run(fmt.Sprintf("keys=1M/value=%d", vlen), func(b *testing.B) {
			cfg := DefaultTreeConfig()
			trees := make([]*Tree, 256)
			for p := range trees {
				c := cfg
				c.Partition = uint32(p)
				trees[p] = mustTree(b, c)
			}
			keys := make([][]byte, n)
			for i := range keys {
				keys[i] = []byte(benchKey(i))
			}
			slices.SortFunc(keys, func(a, b []byte) int { return cmp.Compare(xxhash.Sum64(a)>>56, xxhash.Sum64(b)>>56) })
			// Lay the keys out in scan order, as an iterator's buffer would.
			buf := make([]byte, 0, n*len(keys[0]))
			for i, k := range keys {
				buf = append(buf, k...)
				keys[i] = buf[len(buf)-len(k):]
			}
			value := make([]byte, vlen)
			b.ReportAllocs()
			for b.Loop() {
				for _, t := range trees {
					t.Reset()
				}
				for i, k := range keys {
					h := xxhash.Sum64(k)
					value[0] = byte(i)
					sd := xxhash.Sum64(value)
					_ = trees[h>>56].Update(h, 0, Digest(h, k, sd))
				}
				for _, t := range trees {
					_ = t.Root()
				}
			}
		})
	}
}

// BenchmarkSnapshot is the persist-the-trees alternative: encoding and
// decoding one tree of the default shape (multiply by the partitions held).
func BenchmarkSnapshot(b *testing.B) {
	cfg := DefaultTreeConfig()
	t := mustTree(b, cfg)
	hashes, digests := randomHashes(cfg, 100_000)
	for i := range hashes {
		_ = t.Update(hashes[i], 0, digests[i])
	}
	buf := mustMarshal(b, t)
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			_, _ = t.MarshalBinary()
		}
	})
	b.Run("decode+root", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(buf)))
		for b.Loop() {
			t, err := DecodeTree(buf)
			if err != nil {
				b.Fatal(err)
			}
			_ = t.Root()
		}
	})
}

// BenchmarkCompare is one exchange between two replicas of a partition of
// 100,000 keys with d differing, through the wire codec (encode and decode
// of every message included, no network). bytes/exchange counts requests
// and responses.
func BenchmarkCompare(b *testing.B) {
	for _, d := range []int{0, 10, 1000} {
		b.Run(fmt.Sprintf("n=100000/d=%d", d), func(b *testing.B) {
			benchCompare(b, DefaultTreeConfig(), 100_000, d)
		})
	}
}

func benchCompare(b *testing.B, cfg TreeConfig, n, d int) {
	local, remote := divergedPair(b, cfg, n, d)
	w := &wirePeer{asker: cfg, r: remote}
	_, _ = local.list(nil) // build the bucket indexes outside the timing
	_, _ = remote.list(nil)
	var st ExchangeStats
	b.ReportAllocs()
	for b.Loop() {
		w.bytes = 0
		diff, err := Compare(b.Context(), cfg.Partition, local.tree, w, local.list)
		if err != nil {
			b.Fatal(err)
		}
		if len(diff.Keys) != d {
			b.Fatalf("%d differing keys, want %d", len(diff.Keys), d)
		}
		st = diff.Stats
	}
	b.ReportMetric(float64(w.bytes), "bytes/exchange")
	b.ReportMetric(float64(st.Rounds), "rounds")
}

// BenchmarkCompareShapes compares tree shapes by bytes and round trips of
// one exchange (n = 100,000, d = 10 and 1000) and by memory per tree: the
// measurement behind DefaultTreeConfig.
func BenchmarkCompareShapes(b *testing.B) {
	for _, lb := range []int{12, 14, 16} {
		for _, fb := range []int{3, 4, 5} {
			cfg := TreeConfig{PartitionBits: 8, Partition: 3, LeafBits: lb, FanoutBits: fb}
			for _, d := range []int{10, 1000} {
				b.Run(fmt.Sprintf("leafBits=%d/fanoutBits=%d/d=%d", lb, fb, d), func(b *testing.B) {
					benchCompare(b, cfg, 100_000, d)
					b.ReportMetric(float64(mustTree(b, cfg).SizeBytes()), "tree-bytes")
				})
			}
		}
	}
}

func BenchmarkCodec(b *testing.B) {
	keys := make([]KeyDigest, 1000)
	for i := range keys {
		keys[i] = KeyDigest{Key: []byte(benchKey(i)), Hash: uint64(i) * 0x9e3779b97f4a7c15, Digest: uint64(i) + 1}
	}
	kb, _ := KeysResponse{Keys: keys}.Encode()
	hashes := make([]uint64, 4096)
	for i := range hashes {
		hashes[i] = uint64(i) * 0x9e3779b97f4a7c15
	}
	hb, _ := HashesResponse{Hashes: hashes}.Encode()
	for _, bc := range []struct {
		name string
		size int
		op   func()
	}{
		{"KeysResponse/keys=1000/encode", len(kb), func() { _, _ = KeysResponse{Keys: keys}.Encode() }},
		{"KeysResponse/keys=1000/decode", len(kb), func() { _, _ = DecodeKeysResponse(kb) }},
		{"HashesResponse/hashes=4096/encode", len(hb), func() { _, _ = HashesResponse{Hashes: hashes}.Encode() }},
		{"HashesResponse/hashes=4096/decode", len(hb), func() { _, _ = DecodeHashesResponse(hb) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(bc.size))
			for b.Loop() {
				bc.op()
			}
		})
	}
}
