package ring

import (
	"fmt"
	"math/bits"
)

// Defaults and hard limits. The limits exist because member lists and
// assignments arrive by gossip: a ring is built from bytes another process
// sent, so every size that drives an allocation is capped here first.
const (
	// DefaultPartitions is Q when Config.Partitions is zero. 1024 keeps
	// replica and first-primary balance within 1.3x the ideal up to 100
	// members and beyond, for about 10 KiB of Merkle tree and one
	// anti-entropy exchange per interval per partition: docs/bench/ring.md
	// has the measurements behind it.
	DefaultPartitions = 1024

	// LegacyPartitions is the Q every cluster born before ModeClaim used
	// (the default then).
	LegacyPartitions = 256

	// DefaultTokens is T when Config.Tokens is zero (ModeTokens only). See
	// docs/bench/ring.md.
	DefaultTokens = 64

	// DefaultReplicas is Config.Replicas when zero: the N that Plan places
	// with zone guarantees.
	DefaultReplicas = 3

	// MaxPartitions caps Config.Partitions. Every partition has its own
	// Merkle tree and preference list, so far more than this is a
	// misconfiguration rather than a tuning choice.
	MaxPartitions = 1 << 16

	// MaxTokens caps Config.Tokens (tokens per unit of weight).
	MaxTokens = 1 << 12

	// MaxReplicas caps Config.Replicas and the owners per partition of an
	// Assignment.
	MaxReplicas = 16

	// MaxWeight caps Member.Weight.
	MaxWeight = 1 << 10

	// MaxIDLen caps the length of a member id in bytes.
	MaxIDLen = 256

	// MaxZoneLen caps the length of a member's zone in bytes.
	MaxZoneLen = 64

	// MaxRingTokens caps the total number of tokens of a ring (the sum of
	// Tokens*Weight over all members): New holds two 16-byte copies of
	// each while building, so 128 MiB at the cap.
	MaxRingTokens = 1 << 22

	// MaxPlacements caps Partitions*len(members), the size of the
	// precomputed preference table (one 16-byte string header per entry,
	// so 256 MiB at the cap).
	MaxPlacements = 1 << 24

	// MaxAssignmentMembers caps the members of an Assignment, so that an
	// owner is a 1- or 2-byte index into its member table.
	MaxAssignmentMembers = 4096
)

// Mode chooses how a ring places partitions on members. It is part of a
// cluster's ring settings, fixed at birth like Partitions, and must be
// persisted with them. Values are a wire and disk enum: ONLY APPEND.
type Mode uint8

const (
	// ModeTokens is the token ring: each member places Tokens*Weight
	// tokens at Hash(id || index) and a partition's preference list is
	// the members met walking them clockwise. A pure function of the
	// member set; see docs/bench/ring.md for its balance. Every cluster
	// born before modes existed uses it, which is why the zero Mode means
	// ModeTokens: ring settings persisted without a mode keep their
	// placement.
	ModeTokens Mode = iota + 1

	// ModeClaim is an explicit, agreed Assignment (partition -> ordered
	// owners) computed by Plan from the previous assignment and the new
	// member set: balanced, zone-aware and moving little on each change.
	// It is what DefaultConfig gives new clusters.
	ModeClaim
)

// String returns "tokens" or "claim".
func (m Mode) String() string {
	switch m {
	case 0, ModeTokens:
		return "tokens"
	case ModeClaim:
		return "claim"
	}
	return fmt.Sprintf("Mode(%d)", m)
}

// Config chooses how the hash space is cut and how members are placed on it.
// Every peer of a cluster must use the same Config, or they will disagree
// about who owns what.
type Config struct {
	// Mode is the placement scheme. Zero means ModeTokens (the scheme of
	// clusters born before modes existed), not the default for new
	// clusters: DefaultConfig sets ModeClaim.
	Mode Mode

	// Partitions is Q, the number of equal, fixed partitions of the 64-bit
	// hash space: partition p holds hashes [p<<(64-log2 Q), (p+1)<<(64-log2 Q)).
	// It must be a power of two in [1, MaxPartitions]. Zero means
	// DefaultPartitions (1024). It is fixed at cluster birth: changing it
	// moves almost every key to another partition. More partitions balance
	// load better on large clusters (each member holds more, smaller
	// pieces) but cost one Merkle tree, one hint stream, one handoff unit
	// and one anti-entropy exchange per interval each.
	Partitions int

	// Tokens is T, the number of tokens a member of weight 1 places on the
	// ring in ModeTokens; a member of weight w places Tokens*w. ModeClaim
	// ignores it. It must be in [1, MaxTokens]. Zero means DefaultTokens
	// (64). More tokens make each member's share of the hash space closer
	// to its weight, but load is counted in whole partitions: at Q=256 the
	// balance stops improving past about 64-128 tokens while build time
	// and memory keep growing linearly (docs/bench/ring.md has the
	// measurements). Like Partitions, it is fixed for the life of a
	// cluster: changing it moves data.
	Tokens int

	// Replicas is the N that Plan (ModeClaim) places: how many owners each
	// partition has, in distinct zones when there are at least that many
	// zones. Requests may still ask for another n: the preference list
	// continues past the owners with fallbacks. It must be in
	// [1, MaxReplicas]; zero means DefaultReplicas (3). It should be the
	// cluster's default N. ModeTokens uses it only for Ring.Assignment.
	Replicas int

	// Hash maps bytes to the 64-bit ring; it hashes keys, token inputs
	// (see tokenInput) and the fallback order of ModeClaim (see
	// fallbackScore). It must be deterministic, must not retain or modify
	// its argument, and must be safe for concurrent use. nil means
	// xxhash.Sum64 (github.com/cespare/xxhash/v2), which is what every
	// real cluster uses; other functions exist so tests can use a hash
	// computed by hand.
	Hash func([]byte) uint64
}

// DefaultConfig returns the configuration every new cluster should use
// unless it has measured a reason not to: ModeClaim, Q=DefaultPartitions,
// N=DefaultReplicas, xxhash. Tokens is set to DefaultTokens for callers
// that switch the mode to ModeTokens.
func DefaultConfig() Config {
	return Config{
		Mode:       ModeClaim,
		Partitions: DefaultPartitions,
		Tokens:     DefaultTokens,
		Replicas:   DefaultReplicas,
	}
}

// LegacyConfig returns the ring settings of clusters born before modes
// existed: ModeTokens, Q=LegacyPartitions (256), T=DefaultTokens (64). A
// node that finds persisted settings without a mode reads them as these
// (with its persisted Q and T), which keeps their placement byte for byte.
func LegacyConfig() Config {
	return Config{
		Mode:       ModeTokens,
		Partitions: LegacyPartitions,
		Tokens:     DefaultTokens,
		Replicas:   DefaultReplicas,
	}
}

// Validate reports whether c is usable, wrapping ErrInvalidConfig. It does not
// change c; zero fields are valid and mean their defaults.
func (c Config) Validate() error {
	if c.Mode > ModeClaim {
		return fmt.Errorf("%w: unknown mode %d", ErrInvalidConfig, c.Mode)
	}
	switch q := c.Partitions; {
	case q < 0 || q > MaxPartitions:
		return fmt.Errorf("%w: partitions %d out of range [1, %d]", ErrInvalidConfig, q, MaxPartitions)
	case q != 0 && bits.OnesCount(uint(q)) != 1:
		return fmt.Errorf("%w: partitions %d is not a power of two", ErrInvalidConfig, q)
	}
	if t := c.Tokens; t < 0 || t > MaxTokens {
		return fmt.Errorf("%w: tokens %d out of range [1, %d]", ErrInvalidConfig, t, MaxTokens)
	}
	if n := c.Replicas; n < 0 || n > MaxReplicas {
		return fmt.Errorf("%w: replicas %d out of range [1, %d]", ErrInvalidConfig, n, MaxReplicas)
	}
	return nil
}

// withDefaults returns a copy of c with zero fields replaced by defaults.
// Hash stays as given so that Config() reports whether the default was used.
func (c Config) withDefaults() Config {
	if c.Mode == 0 {
		c.Mode = ModeTokens
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.Tokens == 0 {
		c.Tokens = DefaultTokens
	}
	if c.Replicas == 0 {
		c.Replicas = DefaultReplicas
	}
	return c
}
