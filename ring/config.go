package ring

import (
	"fmt"
	"math/bits"
)

// Defaults and hard limits. The limits exist because member lists arrive by
// gossip: a ring is built from bytes another process sent, so every size
// that drives an allocation in New is capped here first.
const (
	// DefaultPartitions is Q when Config.Partitions is zero. See
	// docs/bench/ring.md for the balance measurements behind it.
	DefaultPartitions = 256

	// DefaultTokens is T when Config.Tokens is zero. See docs/bench/ring.md.
	DefaultTokens = 64

	// MaxPartitions caps Config.Partitions. Every partition has its own
	// Merkle tree and preference list, so far more than this is a
	// misconfiguration rather than a tuning choice.
	MaxPartitions = 1 << 16

	// MaxTokens caps Config.Tokens (tokens per unit of weight).
	MaxTokens = 1 << 12

	// MaxWeight caps Member.Weight.
	MaxWeight = 1 << 10

	// MaxIDLen caps the length of a member id in bytes.
	MaxIDLen = 256

	// MaxRingTokens caps the total number of tokens of a ring (the sum of
	// Tokens*Weight over all members): New holds two 16-byte copies of
	// each while building, so 128 MiB at the cap.
	MaxRingTokens = 1 << 22

	// MaxPlacements caps Partitions*len(members), the size of the
	// precomputed preference table (one 16-byte string header per entry,
	// so 256 MiB at the cap).
	MaxPlacements = 1 << 24
)

// Config chooses how the hash space is cut and how members are placed on it.
// Every peer of a cluster must use the same Config, or they will disagree
// about who owns what.
type Config struct {
	// Partitions is Q, the number of equal, fixed partitions of the 64-bit
	// hash space: partition p holds hashes [p<<(64-log2 Q), (p+1)<<(64-log2 Q)).
	// It must be a power of two in [1, MaxPartitions]. Zero means
	// DefaultPartitions (256). It is fixed at cluster birth: changing it
	// moves almost every key to another partition. More partitions balance
	// load better on large clusters (each member holds more, smaller
	// pieces) but cost one Merkle tree, one hint stream and one handoff
	// unit each.
	Partitions int

	// Tokens is T, the number of tokens a member of weight 1 places on the
	// ring; a member of weight w places Tokens*w. It must be in
	// [1, MaxTokens]. Zero means DefaultTokens (64). More tokens make each
	// member's share of the hash space closer to its weight, but load is
	// counted in whole partitions: at Q=256 the balance stops improving
	// past about 64-128 tokens while build time and memory keep growing
	// linearly (docs/bench/ring.md has the measurements). Like Partitions,
	// it is fixed for the life of a cluster: changing it moves data.
	Tokens int

	// Hash maps bytes to the 64-bit ring; it hashes both keys and token
	// inputs (see tokenInput). It must be deterministic, must not retain or
	// modify its argument, and must be safe for concurrent use. nil means
	// xxhash.Sum64 (github.com/cespare/xxhash/v2), which is what every real
	// cluster uses; other functions exist so tests can use a hash computed
	// by hand.
	Hash func([]byte) uint64
}

// DefaultConfig returns the configuration every cluster should use unless it
// has measured a reason not to: Q=DefaultPartitions, T=DefaultTokens, xxhash.
func DefaultConfig() Config {
	return Config{
		Partitions: DefaultPartitions,
		Tokens:     DefaultTokens,
	}
}

// Validate reports whether c is usable, wrapping ErrInvalidConfig. It does not
// change c; zero fields are valid and mean their defaults.
func (c Config) Validate() error {
	switch q := c.Partitions; {
	case q < 0 || q > MaxPartitions:
		return fmt.Errorf("%w: partitions %d out of range [1, %d]", ErrInvalidConfig, q, MaxPartitions)
	case q != 0 && bits.OnesCount(uint(q)) != 1:
		return fmt.Errorf("%w: partitions %d is not a power of two", ErrInvalidConfig, q)
	}
	if t := c.Tokens; t < 0 || t > MaxTokens {
		return fmt.Errorf("%w: tokens %d out of range [1, %d]", ErrInvalidConfig, t, MaxTokens)
	}
	return nil
}

// withDefaults returns a copy of c with zero fields replaced by defaults.
// Hash stays as given so that Config() reports whether the default was used.
func (c Config) withDefaults() Config {
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Tokens == 0 {
		c.Tokens = DefaultTokens
	}
	return c
}
