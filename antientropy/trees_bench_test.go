package antientropy

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"

	"github.com/quorumkv/quorumkv/ring"
)

// BenchmarkAEObserveSpread is BenchmarkAEObserve over keys drawn at
// random from a large set spread over a default ring's 256 trees: with
// 1,048,576 keys the leaves, trees and keys a write touches are mostly
// not in the CPU's caches, as in an agent under load (4,096 keys stay in
// them).
func BenchmarkAEObserveSpread(b *testing.B) {
	for _, n := range []int{4096, 1 << 20} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			ts, err := NewTrees(256, 10)
			if err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(3, 4))
			keys := make([]ring.Key, n)
			for i := range keys {
				k := fmt.Appendf(nil, "key-%011d", rng.Uint64()%1e11)
				h := xxhash.Sum64(k)
				keys[i] = ring.Key{Partition: uint32(h >> 56), Hash: h, Key: k}
			}
			order := make([]int32, 1<<20)
			for i := range order {
				order[i] = int32(rng.IntN(n))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ts.Observe(keys[order[i&(1<<20-1)]], uint64(i), uint64(i+1))
				i++
			}
		})
	}
}
