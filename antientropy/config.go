package antientropy

import (
	"fmt"
	"time"
)

// Limits on TreeConfig. They bound the memory of one tree (2^MaxLeafBits
// leaves of 8 bytes is 8 MiB) and the stack buffer used to hash one inner
// node (2^MaxFanoutBits children of 8 bytes is 2 KiB).
const (
	MaxPartitionBits = 32
	MaxLeafBits      = 20
	MaxFanoutBits    = 8
	// MaxDepth is the largest Depth of a valid tree (LeafBits=20, FanoutBits=1).
	MaxDepth = MaxLeafBits
)

// TreeConfig fixes the shape of one partition's Merkle tree. Both sides of an
// exchange must use the same shape (messages carry it and handlers check it).
//
// The 64-bit key-hash space is cut into 2^PartitionBits partitions by the top
// PartitionBits bits of the hash; this tree covers partition Partition, and
// its 2^LeafBits leaves (buckets) are cut by the next LeafBits bits. Levels
// are numbered from the root (level 0, one node) down to the leaves (level
// Depth). Going down one level multiplies the width by 2^FanoutBits, except
// that the last level takes whatever LeafBits has left.
type TreeConfig struct {
	// PartitionBits is log2 of the number of partitions of the ring (Q).
	// The ring must put a key in partition keyHash>>(64-PartitionBits).
	// Default 8 (Q=256). Zero means one partition covering all hashes.
	// Range 0..MaxPartitionBits.
	PartitionBits int

	// Partition is the partition this tree covers, < 2^PartitionBits.
	// Default 0; the node sets it per tree.
	Partition uint32

	// LeafBits is log2 of the number of leaf buckets. More leaves mean fewer
	// keys traded per differing leaf (bytes per exchange fall) and more
	// memory (8 bytes per leaf, always allocated). Default 14: 16384 leaves,
	// 166,576 bytes per tree with FanoutBits 4, ~6 keys per bucket at
	// 100,000 keys per partition; docs/bench/antientropy.md has the
	// measurements behind it. Range 1..MaxLeafBits; zero is invalid.
	LeafBits int

	// FanoutBits is log2 of the inner nodes' fanout. Larger fanouts mean fewer
	// round trips per exchange (Depth+2 at most) but more hashes sent for
	// each differing node. Default 4 (fanout 16, Depth 4 with LeafBits 14).
	// Range 1..MaxFanoutBits; zero is invalid.
	FanoutBits int
}

// DefaultTreeConfig returns the tree shape for a ring of 256 partitions,
// with Partition 0.
func DefaultTreeConfig() TreeConfig {
	return TreeConfig{
		PartitionBits: 8,  // Q = 256, the ring's default
		Partition:     0,  // set per tree
		LeafBits:      14, // 16384 buckets: ~6 keys per bucket at 100k keys per partition
		FanoutBits:    4,  // fanout 16: 4 levels below the root, at most 6 round trips
	}
}

// Validate reports whether c describes a tree; it changes nothing.
func (c TreeConfig) Validate() error {
	switch {
	case c.PartitionBits < 0 || c.PartitionBits > MaxPartitionBits:
		return fmt.Errorf("%w: PartitionBits %d not in 0..%d", ErrInvalidConfig, c.PartitionBits, MaxPartitionBits)
	case uint64(c.Partition) >= uint64(1)<<c.PartitionBits:
		return fmt.Errorf("%w: Partition %d not below 2^%d", ErrInvalidConfig, c.Partition, c.PartitionBits)
	case c.LeafBits < 1 || c.LeafBits > MaxLeafBits:
		return fmt.Errorf("%w: LeafBits %d not in 1..%d", ErrInvalidConfig, c.LeafBits, MaxLeafBits)
	case c.FanoutBits < 1 || c.FanoutBits > MaxFanoutBits:
		return fmt.Errorf("%w: FanoutBits %d not in 1..%d", ErrInvalidConfig, c.FanoutBits, MaxFanoutBits)
	}
	return nil
}

// SameShape reports whether trees of c and o can be compared: same partition,
// same partitioning and the same tree shape.
func (c TreeConfig) SameShape(o TreeConfig) bool { return c == o }

// The geometry methods below are meaningful only for a valid config; for an
// invalid one they return arbitrary values but never panic.

// Depth is the level of the leaves; the root is level 0.
func (c TreeConfig) Depth() int {
	if c.FanoutBits <= 0 || c.LeafBits <= 0 {
		return 0
	}
	return (c.LeafBits + c.FanoutBits - 1) / c.FanoutBits
}

// levelBits is log2 of the width of level l (0 <= l <= Depth).
func (c TreeConfig) levelBits(l int) uint { return uint(max(0, min(l*c.FanoutBits, c.LeafBits))) }

// LevelWidth is the number of nodes at level l, or 0 if l is not a level.
func (c TreeConfig) LevelWidth(l int) uint32 {
	if l < 0 || l > c.Depth() {
		return 0
	}
	return 1 << c.levelBits(l)
}

// Children returns the children of node i at level l: the nodes first,
// first+1, ..., first+n-1 at level l+1. It returns n == 0 for a leaf or for
// a node that does not exist.
func (c TreeConfig) Children(l int, i uint32) (first, n uint32) {
	if l < 0 || l >= c.Depth() || i >= c.LevelWidth(l) {
		return 0, 0
	}
	shift := c.levelBits(l+1) - c.levelBits(l)
	return i << shift, 1 << shift
}

// Contains reports whether a key hash falls in this tree's partition.
func (c TreeConfig) Contains(keyHash uint64) bool {
	if c.PartitionBits == 0 {
		return true
	}
	return keyHash>>uint(64-c.PartitionBits) == uint64(c.Partition)
}

// Bucket returns the leaf bucket of a key hash: the LeafBits bits after the
// partition bits. It does not check the partition; see Contains.
func (c TreeConfig) Bucket(keyHash uint64) uint32 {
	return uint32((keyHash << uint(c.PartitionBits)) >> uint(64-c.LeafBits))
}

// BucketRange returns the key hashes of bucket b as the inclusive range
// [lo, hi], for a store scan ordered by key hash. For b outside the tree it
// returns lo > hi (an empty range).
func (c TreeConfig) BucketRange(b uint32) (lo, hi uint64) {
	if b >= c.LevelWidth(c.Depth()) {
		return 1, 0
	}
	var prefix uint64
	if c.PartitionBits > 0 {
		prefix = uint64(c.Partition) << uint(64-c.PartitionBits)
	}
	shift := uint(64 - c.PartitionBits - c.LeafBits) // bits of hash below the bucket, >= 12
	lo = prefix | uint64(b)<<shift
	return lo, lo | (uint64(1)<<shift - 1)
}

// Config is the anti-entropy configuration of a node: the tree shape and the
// schedule the node drives.
type Config struct {
	// Tree is the shape of every partition tree; Tree.Partition is ignored
	// here (the node sets it per tree). Default DefaultTreeConfig().
	Tree TreeConfig

	// Interval is the target time between two exchanges of the same
	// partition (with one of its peers, in turn). The Scheduler spreads the
	// partitions' exchanges evenly over it. Shorter finds divergence sooner
	// and costs more tree walks. Default 10 minutes; must be > 0.
	Interval time.Duration

	// RetryBackoff is how long a partition waits after a failed exchange
	// before it is tried again (with its next peer). Default 30 s; must be
	// > 0.
	RetryBackoff time.Duration

	// RepairKeysPerSecond caps the differing keys a node fetches, merges and
	// writes back per second, across all exchanges, so repair after a long
	// partition does not starve client traffic (the node enforces it, e.g.
	// with golang.org/x/time/rate). Default 1000; must be > 0.
	RepairKeysPerSecond int
}

// DefaultConfig returns the configuration for a LAN cluster.
func DefaultConfig() Config {
	return Config{
		Tree:                DefaultTreeConfig(),
		Interval:            10 * time.Minute, // 256 partitions: one exchange every ~2.3 s
		RetryBackoff:        30 * time.Second, // a failed peer is typically down for longer
		RepairKeysPerSecond: 1000,             // ~1 MB/s of repair traffic at 1 KiB values
	}
}

// DefaultLocalConfig is DefaultConfig with short intervals, for loopback
// clusters and tests.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	c.Interval = 2 * time.Second
	c.RetryBackoff = 200 * time.Millisecond
	c.RepairKeysPerSecond = 100000
	return c
}

// Validate reports whether c is usable; it changes nothing.
func (c Config) Validate() error {
	t := c.Tree
	t.Partition = 0
	if err := t.Validate(); err != nil {
		return fmt.Errorf("tree: %w", err)
	}
	switch {
	case c.Interval <= 0:
		return fmt.Errorf("%w: Interval %v must be > 0", ErrInvalidConfig, c.Interval)
	case c.RetryBackoff <= 0:
		return fmt.Errorf("%w: RetryBackoff %v must be > 0", ErrInvalidConfig, c.RetryBackoff)
	case c.RepairKeysPerSecond <= 0:
		return fmt.Errorf("%w: RepairKeysPerSecond %d must be > 0", ErrInvalidConfig, c.RepairKeysPerSecond)
	}
	return nil
}
