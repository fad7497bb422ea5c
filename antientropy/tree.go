package antientropy

import (
	"encoding/binary"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Tree is the Merkle tree of one partition. Leaves (buckets) hold the XOR of
// the digests (see Digest) of the keys whose hash falls in them; an inner
// node holds a hash of its children's hashes, or 0 if they are all 0, so an
// empty subtree hashes to 0 and two empty partitions compare equal at the
// root.
//
// Leaves combine with XOR rather than a sum mod 2^64: both are
// order-independent and O(1) to update, but XOR is its own inverse, so an
// update is the same operation whichever way the caller orders the old and
// new digests, and a scan-built tree equals an incrementally kept one bit
// for bit. XOR cancels two equal digests; digests mix in the key, so that
// takes a 64-bit collision between distinct keys.
//
// Update changes one leaf and marks its ancestors dirty; inner hashes are
// recomputed when read (Root, Hashes), once per dirty node. A write therefore
// costs tens of nanoseconds and no allocation however often the tree is
// read.
//
// A Tree is not safe for concurrent use: the caller serializes all calls
// (including the reads, which recompute dirty nodes). Its zero value is not
// usable; make one with NewTree.
type Tree struct {
	cfg   TreeConfig
	depth int
	// off[l] is the index in nodes of the first node of level l; off[depth+1]
	// is len(nodes).
	off [MaxDepth + 2]int
	// shift[l] is log2 of the fanout of level l (l < depth).
	shift [MaxDepth]uint8
	// nodes holds every level, root first, each level left to right.
	nodes []uint64
	// dirty has one bit per inner node (index as in nodes, < off[depth]).
	// Invariant: a dirty node's ancestors are all dirty. Update relies on it
	// to stop early; fresh keeps it by cleaning children before parents.
	dirty []uint64
	// Update's arithmetic, precomputed from cfg: keyHash >> pshift must equal
	// part (pshift 64 and part 0 when there is one partition), and the
	// bucket is (keyHash << pbits) >> bshift.
	pshift, pbits, bshift uint
	part                  uint64
}

// NewTree returns an empty tree of the given shape. It fails only if cfg is
// invalid.
func NewTree(cfg TreeConfig) (*Tree, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tree{
		cfg:    cfg,
		depth:  cfg.Depth(),
		pshift: uint(64 - cfg.PartitionBits),
		pbits:  uint(cfg.PartitionBits),
		bshift: uint(64 - cfg.LeafBits),
		part:   uint64(cfg.Partition),
	}
	n := 0
	for l := 0; l <= t.depth; l++ {
		t.off[l] = n
		n += int(cfg.LevelWidth(l))
		if l < t.depth {
			t.shift[l] = uint8(cfg.levelBits(l+1) - cfg.levelBits(l))
		}
	}
	t.off[t.depth+1] = n
	t.nodes = make([]uint64, n)
	t.dirty = make([]uint64, (t.off[t.depth]+63)/64)
	return t, nil
}

// Config returns the tree's shape.
func (t *Tree) Config() TreeConfig { return t.cfg }

// Depth is the level of the leaves (the root is level 0).
func (t *Tree) Depth() int { return t.depth }

// Bucket returns the leaf bucket of a key hash (see TreeConfig.Bucket).
func (t *Tree) Bucket(keyHash uint64) uint32 { return t.cfg.Bucket(keyHash) }

// BucketRange returns the inclusive key-hash range of bucket b
// (see TreeConfig.BucketRange).
func (t *Tree) BucketRange(b uint32) (lo, hi uint64) { return t.cfg.BucketRange(b) }

// SizeBytes is the memory held by the tree's node and dirty arrays.
func (t *Tree) SizeBytes() int { return 8*len(t.nodes) + 8*len(t.dirty) }

// Update records that the key with hash keyHash changed from digest
// oldDigest to newDigest (0 = absent: oldDigest=0 inserts, newDigest=0
// deletes). Building from a scan is Update(h, 0, d) for every key, in any
// order.
//
// The caller must pass the digest the tree last saw for that key as
// oldDigest; because XOR is its own inverse, swapping the two digests gives
// the same result, so the caller cannot get the direction wrong.
// It returns ErrWrongPartition, changing nothing, if keyHash is not in the
// tree's partition.
func (t *Tree) Update(keyHash, oldDigest, newDigest uint64) error {
	if keyHash>>t.pshift != t.part { // Go: a shift by 64 gives 0
		return ErrWrongPartition
	}
	if oldDigest == newDigest {
		return nil
	}
	i := uint32((keyHash << t.pbits) >> t.bshift)
	t.nodes[t.off[t.depth]+int(i)] ^= oldDigest ^ newDigest
	for l := t.depth - 1; l >= 0; l-- {
		i >>= t.shift[l]
		k := t.off[l] + int(i)
		w, m := &t.dirty[k>>6], uint64(1)<<(k&63)
		if *w&m != 0 {
			break // ancestors are dirty already (invariant)
		}
		*w |= m
	}
	return nil
}

// Root returns the root hash; 0 means the partition is empty.
func (t *Tree) Root() uint64 { return t.fresh(0, 0) }

// Hashes returns the hashes of the given nodes at level l (level 0 is the
// root, level Depth the leaves), in the order asked. It returns
// ErrOutOfRange if l or a node does not exist. nodes is not retained.
func (t *Tree) Hashes(l int, nodes []uint32) ([]uint64, error) {
	if l < 0 || l > t.depth {
		return nil, fmt.Errorf("level %d of %d: %w", l, t.depth, ErrOutOfRange)
	}
	w := t.cfg.LevelWidth(l)
	for _, i := range nodes {
		if i >= w {
			return nil, fmt.Errorf("node %d of %d at level %d: %w", i, w, l, ErrOutOfRange)
		}
	}
	out := make([]uint64, len(nodes))
	for k, i := range nodes {
		out[k] = t.fresh(l, i)
	}
	return out, nil
}

// Reset empties the tree, as after NewTree.
func (t *Tree) Reset() {
	clear(t.nodes)
	clear(t.dirty)
}

// fresh returns the hash of node i at level l, recomputing it (and any dirty
// descendants) first. i must exist.
func (t *Tree) fresh(l int, i uint32) uint64 {
	k := t.off[l] + int(i)
	if l == t.depth || t.dirty[k>>6]&(uint64(1)<<(k&63)) == 0 {
		return t.nodes[k]
	}
	h := t.combine(l+1, i<<t.shift[l], 1<<t.shift[l])
	t.nodes[k] = h
	t.dirty[k>>6] &^= uint64(1) << (k & 63)
	return h
}

// combine hashes the n nodes of level l starting at first (after making them
// fresh): xxhash of their little-endian hashes, so that order and position
// matter; 0 if they are all 0. The encoding is fixed so that machines of any
// endianness agree.
func (t *Tree) combine(l int, first, n uint32) uint64 {
	const chunk = 32 // children per buffer: 256 bytes on the stack
	var buf [8 * chunk]byte
	var or uint64
	if n <= chunk {
		for c := range n {
			h := t.fresh(l, first+c)
			or |= h
			binary.LittleEndian.PutUint64(buf[8*c:], h)
		}
		if or == 0 {
			return 0
		}
		return nonzero(xxhash.Sum64(buf[:8*n]))
	}
	// Wide fanouts stream through a Digest: same result as one Sum64.
	var d xxhash.Digest
	d.Reset()
	for c := uint32(0); c < n; c += chunk {
		for j := range uint32(chunk) {
			h := t.fresh(l, first+c+j)
			or |= h
			binary.LittleEndian.PutUint64(buf[8*j:], h)
		}
		_, _ = d.Write(buf[:]) // never fails
	}
	if or == 0 {
		return 0
	}
	return nonzero(d.Sum64())
}

// nonzero maps 0 to 1, keeping 0 free to mean "empty" or "absent".
func nonzero(h uint64) uint64 {
	if h == 0 {
		return 1
	}
	return h
}

// Digest returns the per-key digest of a key present in a partition:
// a hash of the key's hash, the key itself and setDigest, the digest of the
// key's sibling set. setDigest must be a function of the set's logical
// content only (for example xxhash of a canonical encoding), so that replicas
// holding the same set agree; otherwise exchanges never converge.
//
// Mixing the key in means two keys that swap sets still change their leaf.
// The result is never 0, which stands for "absent".
func Digest(keyHash uint64, key []byte, setDigest uint64) uint64 {
	var buf [24]byte
	binary.LittleEndian.PutUint64(buf[0:], keyHash)
	binary.LittleEndian.PutUint64(buf[8:], setDigest)
	binary.LittleEndian.PutUint64(buf[16:], xxhash.Sum64(key))
	return nonzero(xxhash.Sum64(buf[:]))
}
