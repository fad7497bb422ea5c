package node_test

import (
	"fmt"
	"testing"

	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/node/nodetest"
	"github.com/quorumkv/quorumkv/transport"
)

// BenchmarkAEExchange times one repair round of a node (every partition, one
// exchange each, with its one peer) through the in-memory network, with n =
// 100,000 keys (15-byte keys, 100-byte values) on both nodes and d keys
// differing (made before each round, untimed); it reports the bytes on the
// wire both ways (wire-B/op) and the tree memory of one node (tree-B). The
// leaf count is a sub-benchmark: it is what the node's LeafBits default was
// chosen with.
func BenchmarkAEExchange(b *testing.B) {
	const n, valLen = 100000, 100
	for _, leafBits := range []int{8, 10, 12} {
		b.Run(fmt.Sprintf("leafBits=%d", leafBits), func(b *testing.B) {
			c := nodetest.NewCluster(b, 2, aeOpts(true, aeTwoNodes(func(cfg *node.Config) {
				cfg.AntiEntropy.LeafBits = leafBits
			})))
			aeSettle(b, c)
			loadBoth(b, c, n, valLen)
			a, p := c.ID(0), c.ID(1)
			round := 0
			for _, d := range []int{0, 10, 1000} {
				b.Run(fmt.Sprintf("d=%d", d), func(b *testing.B) {
					b.ReportAllocs()
					var bytes uint64
					for b.Loop() {
						b.StopTimer()
						round++
						diverge(b, c, fmt.Sprintf("r%d", round), d, valLen)
						c.Net.ResetStats()
						b.StartTimer()
						rep := aeRepair(b, c.Node(0), -1)
						b.StopTimer()
						if rep.KeysDiffering != d {
							b.Fatalf("%d differing, want %d", rep.KeysDiffering, d)
						}
						st := c.Net.Stats()
						bytes += st[transport.Link{From: a, To: p}].Bytes + st[transport.Link{From: p, To: a}].Bytes
						b.StartTimer()
					}
					b.ReportMetric(float64(bytes)/float64(b.N), "wire-B/op")
					b.ReportMetric(float64(c.Node(0).Status().AntiEntropy.TreeBytes), "tree-B")
				})
			}
		})
	}
}
