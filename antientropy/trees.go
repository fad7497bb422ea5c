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
// empties). Each tree has its own lock, held for one Update or one read.
type Trees struct {
	shape TreeConfig // Partition 0; set per tree
	trees []partTree
}

type partTree struct {
	mu sync.Mutex
	t  *Tree
}

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
	ts := &Trees{shape: shape, trees: make([]partTree, partitions)}
	for p := range ts.trees {
		c := shape
		c.Partition = uint32(p)
		t, err := NewTree(c)
		if err != nil {
			return nil, fmt.Errorf("tree of partition %d: %w", p, err)
		}
		ts.trees[p].t = t
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
// observed out of order; XOR makes that harmless.
func (ts *Trees) Observe(k ring.Key, oldSet, newSet uint64) {
	if !ts.has(k.Partition) {
		return
	}
	old, nw := keyDigest(k.Hash, k.Key, oldSet), keyDigest(k.Hash, k.Key, newSet)
	t := &ts.trees[k.Partition]
	t.mu.Lock()
	_ = t.t.Update(k.Hash, old, nw) // the hash is in the partition: the ring put it there
	t.mu.Unlock()
}

// Root returns partition p's root hash.
func (ts *Trees) Root(p uint32) uint64 {
	t := &ts.trees[p]
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.t.Root()
}

// reset empties partition p's tree (after its records were dropped).
func (ts *Trees) reset(p uint32) {
	t := &ts.trees[p]
	t.mu.Lock()
	t.t.Reset()
	t.mu.Unlock()
}

// local returns partition p's tree as Compare and ServeHashes want it: each
// call takes the tree's lock, none holds it between calls.
func (ts *Trees) local(p uint32) LocalTree { return lockedTree{&ts.trees[p]} }

type lockedTree struct{ t *partTree }

func (l lockedTree) Config() TreeConfig {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	return l.t.t.Config()
}

func (l lockedTree) Hashes(level int, nodes []uint32) ([]uint64, error) {
	l.t.mu.Lock()
	defer l.t.mu.Unlock()
	return l.t.t.Hashes(level, nodes)
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
		t := &ts.trees[p]
		t.mu.Lock()
		err := rep.Scan(p, 0, math.MaxUint64, func(k ring.Key, val []byte) error {
			set := replica.SetBytes(val)
			if set == nil {
				return nil
			}
			d := keyDigest(k.Hash, k.Key, replica.SetBytesDigest(set))
			if t.t.Update(k.Hash, 0, d) == nil {
				keys++
			}
			return nil
		})
		t.mu.Unlock()
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
