package antientropy

import (
	"bytes"
	"fmt"
	"math"
	"math/bits"
	"sync"

	"github.com/quorumkv/quorumkv/replica"
	"github.com/quorumkv/quorumkv/ring"
)

// fanoutBits is log2 of the inner nodes' fanout of the node's trees. With
// the default LeafBits 10 the levels are 1, 16, 256, 1024: three round trips
// below the root when a partition differs.
const fanoutBits = 4

// Trees holds one Merkle tree per partition of the ring, whether or not
// this node replicates it: at LeafBits 10 a tree is 10 KiB, so the 256 trees
// of a default ring take 2.6 MiB, and keeping them all means the record
// observer never needs to know the ring (a record written for a partition
// this node no longer owns still lands in a tree, which the handoff then
// empties).
//
// One mutex guards every tree, and the updates Observe records but has not
// applied yet (pend). Observe appends a write's leaf change to pend and
// applies the whole of pend once it holds pendMax of them; every read of a
// tree (Root, Hashes, a reset, a size) applies it first, so a reader sees
// every write observed before it started. The trees of a node's 256
// partitions are 2.6 MiB that no CPU cache keeps between two writes, so an
// update's cost is the few lines it misses (the tree, its leaf, its dirty
// bits): a batch applied in one loop, with no lock taken per update,
// waits for those of many updates at once (issue 16: Observe was 4.7 % of
// a replica's CPU under SET load, Tree.Update flat most of it). XOR makes
// the order of the updates irrelevant.
type Trees struct {
	shape TreeConfig // Partition 0; set per tree
	mu    sync.Mutex
	trees []Tree
	pend  []leafXOR // cap pendMax
}

// leafXOR is a change Observe recorded: the key hash (which names the
// partition and the leaf) and the XOR of its old and new key digests.
type leafXOR struct {
	hash, x uint64
}

// pendMax is how many observed updates wait before Observe applies them:
// enough for the misses of a batch to overlap, few enough (1 KiB) to stay
// in the CPU's cache.
const pendMax = 64

// NewTrees returns empty trees for a ring of partitions partitions (a
// power of two), of 2^leafBits leaves each.
func NewTrees(partitions, leafBits int) (*Trees, error) {
	if partitions < 1 || partitions&(partitions-1) != 0 {
		return nil, fmt.Errorf("anti-entropy needs a power-of-two partition count, got %d", partitions)
	}
	shape := TreeConfig{
		PartitionBits: bits.TrailingZeros(uint(partitions)),
		LeafBits:      leafBits,
		FanoutBits:    fanoutBits,
	}
	ts := &Trees{shape: shape, trees: make([]Tree, partitions), pend: make([]leafXOR, 0, pendMax)}
	for p := range ts.trees {
		c := shape
		c.Partition = uint32(p)
		t, err := NewTree(c)
		if err != nil {
			return nil, fmt.Errorf("tree of partition %d: %w", p, err)
		}
		ts.trees[p] = *t
	}
	return ts, nil
}

// Shape returns the tree shape of partition p.
func (ts *Trees) Shape(p uint32) TreeConfig {
	c := ts.shape
	c.Partition = p
	return c
}

// Len is the number of partitions, and of trees.
func (ts *Trees) Len() int { return len(ts.trees) }

func (ts *Trees) leafBits() int { return ts.shape.LeafBits }

// has reports whether p is a partition of the ring.
func (ts *Trees) has(p uint32) bool { return uint64(p) < uint64(len(ts.trees)) }

// keyDigest is the per-key digest of the trees: 0 for an absent key.
func keyDigest(hash uint64, key []byte, setDigest uint64) uint64 {
	if setDigest == 0 {
		return 0
	}
	return Digest(hash, key, setDigest)
}

// Observe is the replica's Observer (replica.Config.Observer): it keeps partition k's tree
// current on every committed record write. Writes of one key may be
// observed out of order; XOR makes that harmless. The update may wait in
// pend (see Trees) until the next read of any tree.
func (ts *Trees) Observe(k ring.Key, oldSet, newSet uint64) {
	if !ts.has(k.Partition) {
		return
	}
	x := keyDigest(k.Hash, k.Key, oldSet) ^ keyDigest(k.Hash, k.Key, newSet)
	if x == 0 || !ts.Shape(k.Partition).Contains(k.Hash) {
		return // no change, or a hash outside the partition: Tree.Update would do nothing
	}
	ts.mu.Lock()
	ts.pend = append(ts.pend, leafXOR{hash: k.Hash, x: x})
	if len(ts.pend) == pendMax {
		ts.flush()
	}
	ts.mu.Unlock()
}

// flush applies the observed updates waiting in pend. The caller holds mu.
func (ts *Trees) flush() {
	shift := uint(64 - ts.shape.PartitionBits) // a shift by 64 gives 0: one partition
	for _, u := range ts.pend {
		_ = ts.trees[u.hash>>shift].Update(u.hash, 0, u.x) // in the partition: Observe checked
	}
	ts.pend = ts.pend[:0]
}

// tree returns partition p's tree with every observed update applied. The
// caller holds mu.
func (ts *Trees) tree(p uint32) *Tree {
	if len(ts.pend) > 0 {
		ts.flush()
	}
	return &ts.trees[p]
}

// Root returns partition p's root hash.
func (ts *Trees) Root(p uint32) uint64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.tree(p).Root()
}

// SizeBytes is the memory of the trees' node and dirty arrays.
func (ts *Trees) SizeBytes() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := 0
	for p := range ts.trees {
		n += ts.trees[p].SizeBytes()
	}
	return n
}

// reset empties partition p's tree (after its records were dropped).
func (ts *Trees) reset(p uint32) {
	ts.mu.Lock()
	ts.tree(p).Reset()
	ts.mu.Unlock()
}

// local returns partition p's tree as Compare and ServeHashes want it: each
// call takes the trees' lock, none holds it between calls.
func (ts *Trees) local(p uint32) LocalTree { return lockedTree{ts, p} }

type lockedTree struct {
	ts *Trees
	p  uint32
}

func (l lockedTree) Config() TreeConfig {
	return l.ts.Shape(l.p)
}

func (l lockedTree) Hashes(level int, nodes []uint32) ([]uint64, error) {
	l.ts.mu.Lock()
	defer l.ts.mu.Unlock()
	return l.ts.tree(l.p).Hashes(level, nodes)
}

// Build fills the trees from one scan of the store's records. It runs before
// the node takes writes. Each record's digest comes from its bytes (see
// replica.SetBytesDigest), without decoding its set; records whose envelope does not
// parse are left out, as the replica treats them as absent.
func (ts *Trees) Build(rep *replica.Replica) (keys int, err error) {
	parts, err := rep.Partitions()
	if err != nil {
		return 0, err
	}
	for _, p := range parts {
		if !ts.has(p) {
			continue // not a partition of this ring: corrupt, or another ring's
		}
		ts.mu.Lock()
		t := ts.tree(p)
		err := rep.Scan(p, 0, math.MaxUint64, func(k ring.Key, val []byte) error {
			set := replica.SetBytes(val)
			if set == nil {
				return nil
			}
			d := keyDigest(k.Hash, k.Key, replica.SetBytesDigest(set))
			if t.Update(k.Hash, 0, d) == nil {
				keys++
			}
			return nil
		})
		ts.mu.Unlock()
		if err != nil {
			return keys, fmt.Errorf("scan partition %d: %w", p, err)
		}
	}
	return keys, nil
}

// listKeys returns the keys and per-key digests of the given buckets of
// partition p from the store, as ServeKeys and Compare's local side want
// them. Consecutive buckets are read with one scan. With limit > 0 it stops
// after limit+1 keys (ServeKeys answers TooMany for more than the limit);
// limit 0 lists them all.
func listKeys(rep *replica.Replica, shape TreeConfig, buckets []uint32, limit int) ([]KeyDigest, error) {
	var out []KeyDigest
	for i := 0; i < len(buckets); {
		j := i + 1
		for j < len(buckets) && buckets[j] == buckets[j-1]+1 {
			j++
		}
		lo, _ := shape.BucketRange(buckets[i])
		_, hi := shape.BucketRange(buckets[j-1])
		err := rep.Scan(shape.Partition, lo, hi, func(k ring.Key, val []byte) error {
			set := replica.SetBytes(val)
			if set == nil {
				return nil
			}
			out = append(out, KeyDigest{
				Key:    bytes.Clone(k.Key),
				Hash:   k.Hash,
				Digest: keyDigest(k.Hash, k.Key, replica.SetBytesDigest(set)),
			})
			if limit > 0 && len(out) > limit {
				return errTooManyKeys
			}
			return nil
		})
		if err == errTooManyKeys {
			return out, nil // ServeKeys turns more than the limit into TooMany
		}
		if err != nil {
			return nil, err
		}
		i = j
	}
	return out, nil
}

// errTooManyKeys stops a key listing early: the answer would be over the
// limit anyway.
var errTooManyKeys = fmt.Errorf("too many keys: %w", ErrTooManyKeys)
