package ring_test

import (
	"fmt"
	"testing"

	"github.com/quorumkv/quorumkv/antientropy"
)

// BenchmarkPartitionTree measures what one partition costs every node in
// memory: the node keeps one Merkle tree per partition of the ring (see
// docs/ARCHITECTURE.md), so B/op here times Q is a node's tree memory. The
// shape is the node's (LeafBits 10, FanoutBits 4).
func BenchmarkPartitionTree(b *testing.B) {
	for _, leafBits := range []int{10} {
		cfg := antientropy.TreeConfig{PartitionBits: 10, LeafBits: leafBits, FanoutBits: 4}
		b.Run(fmt.Sprintf("LeafBits=%d", leafBits), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := antientropy.NewTree(cfg); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
