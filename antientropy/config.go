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

// Config configures a node's anti-entropy and the reaping of tombstones
// (docs/ARCHITECTURE.md, "Deletes that stay deleted"). Build it from
// DefaultConfig or DefaultLocalConfig; node.Config holds it as its
// AntiEntropy field.
type Config struct {
	// Interval is how often each partition this node replicates is compared
	// with one of its other replicas (they take turns). Exchanges run one at
	// a time, spread evenly over the interval: with 256 partitions and 1m,
	// one every 234ms, each one round trip when nothing differs. Shorter
	// finds divergence sooner for more tree walks. 0 disables the schedule
	// (exchanges still run on demand and for partitions marked for repair).
	// Default 1m (5s in DefaultLocalConfig).
	Interval time.Duration
	// KeysPerSecond caps the differing keys this node repairs per second,
	// all exchanges together, so a wiped node's refill does not starve
	// client traffic. 0 means no cap. Default 20000.
	KeysPerSecond int
	// MinKeysPerSecond is the floor of the repair rate: between it and
	// KeysPerSecond the rate adapts to the latency of the repair RPCs
	// (halving when they queue), so repairs take the capacity clients
	// leave. 0, or a floor at or above KeysPerSecond, means a fixed rate of
	// KeysPerSecond. Default 1000.
	MinKeysPerSecond int
	// TombstoneGrace is how long a tombstone is kept after this replica
	// first learned that every primary of its partition holds it; then it
	// is reaped (deleted from the store) if they still do. It must exceed
	// everything that can carry a value written before the delete: it must
	// be at least twice the hints' MaxAge (node.Config checks it). 0
	// disables reaping (tombstones are
	// kept forever). Default 7 days.
	TombstoneGrace time.Duration
	// MaxDowntime is how long a primary must have been dead, as this node
	// saw it in gossip, before this node may reap a tombstone without that
	// primary's confirmation (only while it sees a majority of the ring
	// alive). A node that comes back after being down longer than
	// MaxDowntime/2 by its own clock asks its peers whether they reaped
	// without it and, if so, drops its data and refills it through
	// anti-entropy. Must be at least TombstoneGrace when reaping is on.
	// Default 10 days.
	MaxDowntime time.Duration
	// RetryBackoff is how long a partition waits after a failed exchange
	// before it is tried again (with its next peer). 0 means Interval/8,
	// kept between 200ms and 30s (30s with no schedule).
	RetryBackoff time.Duration
	// LeafBits is log2 of the leaves of each partition's Merkle tree. Every
	// node of a cluster must use the same value (exchanges between
	// different shapes fail). More leaves send fewer keys per difference and
	// cost 8 bytes each per partition. 1 to 20. Default 10 (1024 leaves;
	// docs/bench/antientropy-node.md has the measurements).
	LeafBits int
}

// DefaultConfig returns the settings for a LAN cluster of 3 to 50 nodes.
func DefaultConfig() Config {
	return Config{
		Interval:         time.Minute,         // 256 partitions: one exchange every 234ms
		KeysPerSecond:    20000,               // a refill at ~20 MB/s of 1 KiB values
		MinKeysPerSecond: 1000,                // the floor the repair rate adapts from
		TombstoneGrace:   7 * 24 * time.Hour,  // >= 2x the hints' MaxAge (72h)
		MaxDowntime:      10 * 24 * time.Hour, // a node away > 5 days checks before serving
		LeafBits:         10,                  // 1024 leaves: ~4 keys per leaf at 1M keys per 256 partitions
	}
}

// DefaultLocalConfig is DefaultConfig with a short interval, for clusters
// on one machine (loopback) and tests.
func DefaultLocalConfig() Config {
	c := DefaultConfig()
	c.Interval = 5 * time.Second
	return c
}

// Validate reports the first problem with c. It never changes c.
func (c Config) Validate() error {
	if c.MinKeysPerSecond < 0 {
		return fmt.Errorf("%w: min keys per second %d cannot be negative", ErrInvalidConfig, c.MinKeysPerSecond)
	}
	if c.Interval < 0 || c.KeysPerSecond < 0 || c.TombstoneGrace < 0 || c.MaxDowntime < 0 || c.RetryBackoff < 0 {
		return fmt.Errorf("%w: interval, rate, grace, max downtime and retry backoff cannot be negative", ErrInvalidConfig)
	}
	if c.LeafBits < 1 || c.LeafBits > MaxLeafBits {
		return fmt.Errorf("%w: leaf bits %d: want 1 to %d", ErrInvalidConfig, c.LeafBits, MaxLeafBits)
	}
	if c.TombstoneGrace > 0 && c.MaxDowntime < c.TombstoneGrace {
		return fmt.Errorf("%w: max downtime %v must be at least the tombstone grace %v", ErrInvalidConfig, c.MaxDowntime, c.TombstoneGrace)
	}
	return nil
}

// neverInterval stands for "no schedule" in the Scheduler, which needs a
// positive interval (100 years).
const neverInterval = 100 * 365 * 24 * time.Hour

// scheduleInterval is the Scheduler's interval: Interval, or never.
func (c Config) scheduleInterval() time.Duration {
	if c.Interval <= 0 {
		return neverInterval
	}
	return c.Interval
}

// retryBackoff is RetryBackoff, or derived from Interval when 0.
func (c Config) retryBackoff() time.Duration {
	if c.RetryBackoff > 0 {
		return c.RetryBackoff
	}
	return min(max(c.Interval/8, 200*time.Millisecond), 30*time.Second)
}
