package antientropy

import (
	"math/rand/v2"
	"testing"

	"github.com/quorumkv/quorumkv/ring"
)

// TestTreesObserveMatchesTrees: whatever the number of observed writes
// still waiting to be applied, every read (Root, Hashes) and reset of
// the trees sees exactly what updating a tree per partition at once
// gives, including writes with a hash outside their partition (ignored)
// and to partitions outside the ring (ignored).
func TestTreesObserveMatchesTrees(t *testing.T) {
	const parts, leafBits = 8, 6
	ts, err := NewTrees(parts, leafBits)
	if err != nil {
		t.Fatal(err)
	}
	ref := make([]*Tree, parts)
	for p := range ref {
		ref[p] = mustTree(t, ts.Shape(uint32(p)))
	}
	rng := rand.New(rand.NewPCG(7, 8))
	keys := make([]ring.Key, 50)
	digest := make([]uint64, len(keys)) // the set digest each key last had
	for i := range keys {
		h := rng.Uint64()
		keys[i] = ring.Key{Partition: uint32(h >> 61), Hash: h, Key: []byte{byte(i), 'k'}}
	}
	for step := range 5000 {
		switch r := rng.IntN(100); {
		case r < 85:
			i := rng.IntN(len(keys))
			k := keys[i]
			nd := uint64(rng.IntN(4)) // 0: absent
			ts.Observe(k, digest[i], nd)
			_ = ref[k.Partition].Update(k.Hash, keyDigest(k.Hash, k.Key, digest[i]), keyDigest(k.Hash, k.Key, nd))
			digest[i] = nd
		case r < 88:
			// Ignored: a hash outside the partition, a partition outside the ring.
			h := rng.Uint64()
			ts.Observe(ring.Key{Partition: uint32(h>>61) ^ 1, Hash: h, Key: []byte("x")}, 0, 1)
			ts.Observe(ring.Key{Partition: parts, Hash: h, Key: []byte("x")}, 0, 1)
		case r < 89:
			p := uint32(rng.IntN(parts))
			ts.reset(p)
			ref[p].Reset()
			for i, k := range keys {
				if k.Partition == p {
					digest[i] = 0
				}
			}
		case r < 95:
			p := uint32(rng.IntN(parts))
			if got, want := ts.Root(p), ref[p].Root(); got != want {
				t.Fatalf("step %d: root of %d = %x, want %x", step, p, got, want)
			}
		default:
			p := uint32(rng.IntN(parts))
			nodes := []uint32{0, 1, 2, 3}
			got, err := ts.local(p).Hashes(1, nodes)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ref[p].Hashes(1, nodes)
			for j := range got {
				if got[j] != want[j] {
					t.Fatalf("step %d: level-1 hashes of %d = %x, want %x", step, p, got, want)
				}
			}
		}
	}
	for p := range uint32(parts) {
		if got, want := ts.Root(p), ref[p].Root(); got != want {
			t.Fatalf("root of %d = %x, want %x", p, got, want)
		}
	}
}
