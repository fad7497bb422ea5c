package ring

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// Errors returned by New and Config.Validate. They are wrapped with details;
// test for them with errors.Is.
var (
	// ErrInvalidConfig means a Config field is out of range.
	ErrInvalidConfig = errors.New("ring: invalid config")
	// ErrInvalidMember means a member id is empty or longer than MaxIDLen,
	// its weight is negative or above MaxWeight, or its zone is longer
	// than MaxZoneLen.
	ErrInvalidMember = errors.New("ring: invalid member")
	// ErrDuplicateMember means the same id was given twice.
	ErrDuplicateMember = errors.New("ring: duplicate member")
	// ErrTooLarge means the ring would exceed MaxRingTokens or
	// MaxPlacements, or an assignment MaxAssignmentMembers.
	ErrTooLarge = errors.New("ring: too large")
	// ErrInvalidAssignment means bytes given to DecodeAssignment are not an
	// assignment, or an assignment does not fit the config it is used
	// with (another partition count).
	ErrInvalidAssignment = errors.New("ring: invalid assignment")
)

// NodeID names a ring member. It is opaque to the ring except that its bytes
// are hashed to place the member's tokens.
type NodeID string

// Member is one entry of the member list a Ring is built from.
type Member struct {
	// ID names the member; it must be non-empty and at most MaxIDLen bytes.
	ID NodeID
	// Weight scales the member's token count: it places Config.Tokens*Weight
	// tokens, so a member of weight 2 owns about twice the hash space of
	// one of weight 1. Its replica load grows somewhat less than that,
	// because a member holds at most one replica of a partition. Zero
	// means 1; at most MaxWeight. In ModeClaim a member's ideal share is
	// proportional to its weight (bounded by its zone, see Plan), and its
	// load follows it closely.
	Weight int
	// Zone names the member's failure domain (rack, availability zone),
	// at most MaxZoneLen bytes. Members with the same zone may fail
	// together; "" is a zone like any other (the zone of members that
	// did not name one), so a cluster where nobody names a zone has one
	// zone. ModeClaim places each partition's owners in distinct zones
	// when there are enough zones (see Plan); Targets prefers fallbacks in
	// zones holding no replica yet in both modes.
	Zone string
}

// Ring is an immutable placement of a member set on Q partitions. All methods
// are safe for concurrent use; a membership change builds a new Ring with New.
type Ring struct {
	cfg     Config // with defaults filled in; Hash as given
	hash    func([]byte) uint64
	shift   uint // 64 - log2(Q); PartitionOfHash is h >> shift
	ids     []NodeID
	weights []int    // effective weights (>= 1), parallel to ids
	zones   []string // parallel to ids
	zoneIdx []int32  // parallel to ids: zone number, by first appearance in id order
	nzones  int      // distinct zones
	pref    []NodeID // Q rows of len(ids): row p is Preference(p)
	// assign is, in ModeClaim, the assignment the ring was built from;
	// nil in ModeTokens.
	assign *Assignment
}

// New builds the ring of members under cfg. The order of members does not
// matter: the same set gives an equal ring. An empty member list is allowed
// and gives a ring whose lookups return nothing. Empty, overlong or duplicate
// ids, bad weights or zones and an invalid cfg are errors, as is a ring
// beyond MaxRingTokens or MaxPlacements.
//
// In ModeTokens, New costs O(K*log(K/Q) + Q*M) time for K tokens and M
// members, and Q*M string headers of memory, which is what makes every
// lookup afterwards a slice index.
//
// In ModeClaim, New is FromAssignment(cfg, Plan(cfg, nil, members)): the
// assignment Plan makes for these members with no history. That is a pure
// function of the member set, balanced and zone-aware, but two member sets
// that differ by one member can get very different assignments. A cluster in
// ModeClaim must agree on its Assignment, derive each next one with Plan
// from the current one, and build its rings with FromAssignment; New is for
// tests and for callers without history.
func New(cfg Config, members []Member) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Mode == ModeClaim {
		a, err := Plan(cfg, nil, members)
		if err != nil {
			return nil, err
		}
		return FromAssignment(cfg, a)
	}
	sorted, err := sortMembers(members)
	if err != nil {
		return nil, err
	}
	total := 0
	for _, m := range sorted {
		total += cfg.Tokens * m.Weight
		if total > MaxRingTokens {
			return nil, fmt.Errorf("%w: more than %d tokens", ErrTooLarge, MaxRingTokens)
		}
	}
	r, err := newRing(cfg, sorted)
	if err != nil {
		return nil, err
	}
	r.pref = r.build(total)
	return r, nil
}

// sortMembers validates members and returns them sorted by id, with weight
// 0 replaced by 1.
func sortMembers(members []Member) ([]Member, error) {
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
	for i := range sorted {
		m := &sorted[i]
		if m.ID == "" || len(m.ID) > MaxIDLen {
			return nil, fmt.Errorf("%w: id of %d bytes, want 1 to %d", ErrInvalidMember, len(m.ID), MaxIDLen)
		}
		if m.Weight < 0 || m.Weight > MaxWeight {
			return nil, fmt.Errorf("%w: %q has weight %d, want 0 to %d", ErrInvalidMember, m.ID, m.Weight, MaxWeight)
		}
		if len(m.Zone) > MaxZoneLen {
			return nil, fmt.Errorf("%w: %q has a zone of %d bytes, limit %d", ErrInvalidMember, m.ID, len(m.Zone), MaxZoneLen)
		}
		if i > 0 && sorted[i-1].ID == m.ID {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateMember, m.ID)
		}
		m.Weight = max(m.Weight, 1)
	}
	return sorted, nil
}

// newRing returns a ring of the sorted, validated members with no
// preference table yet.
func newRing(cfg Config, sorted []Member) (*Ring, error) {
	r := &Ring{
		cfg:   cfg,
		hash:  cfg.Hash,
		shift: uint(64 - bits.TrailingZeros(uint(cfg.Partitions))),
	}
	if r.hash == nil {
		r.hash = xxhash.Sum64
	}
	if len(sorted) > MaxPlacements/cfg.Partitions {
		return nil, fmt.Errorf("%w: %d partitions x %d members exceeds %d", ErrTooLarge, cfg.Partitions, len(sorted), MaxPlacements)
	}
	r.ids = make([]NodeID, len(sorted))
	r.weights = make([]int, len(sorted))
	r.zones = make([]string, len(sorted))
	r.zoneIdx = make([]int32, len(sorted))
	seen := map[string]int32{}
	for i, m := range sorted {
		r.ids[i], r.weights[i], r.zones[i] = m.ID, m.Weight, m.Zone
		z, ok := seen[m.Zone]
		if !ok {
			z = int32(len(seen))
			seen[m.Zone] = z
		}
		r.zoneIdx[i] = z
	}
	r.nzones = len(seen)
	return r, nil
}

// Config returns the configuration the ring was built with, zero fields
// replaced by their defaults. Hash is returned as given (nil means xxhash).
func (r *Ring) Config() Config { return r.cfg }

// Partitions returns Q.
func (r *Ring) Partitions() int { return r.cfg.Partitions }

// PartitionOf returns the partition holding key: the top log2(Q) bits of
// Hash(key). PartitionOf(key) == PartitionOfHash(Hash(key)) always, and for
// the default hash the result for a given key and Q never changes across
// processes or versions (a compatibility promise pinned by a golden test).
// It does not allocate, but key escapes through the injectable Hash, so a
// key built in a stack buffer moves to the heap; such hot paths can call
// PartitionOfHash(xxhash.Sum64(key)) instead.
func (r *Ring) PartitionOf(key []byte) uint32 {
	return r.PartitionOfHash(r.hash(key))
}

// Hash returns the ring position of key under the ring's Config.Hash
// (xxhash.Sum64 by default), for callers that keep the key hash, e.g. for
// Merkle leaves: PartitionOf(key) == PartitionOfHash(r.Hash(key)).
func (r *Ring) Hash(key []byte) uint64 { return r.hash(key) }

// PartitionOfHash returns the partition holding the 64-bit ring position h,
// for callers that already hashed the key with the ring's Hash.
func (r *Ring) PartitionOfHash(h uint64) uint32 {
	// In Go a shift by 64 yields 0, which is right for Q=1.
	return uint32(h >> r.shift)
}

// PartitionStart returns the lowest hash of partition p, where its walk over
// the tokens starts. p must be below Partitions().
func (r *Ring) PartitionStart(p uint32) uint64 {
	return uint64(p) << r.shift
}

// Members returns the member ids in ascending order, as a fresh slice.
func (r *Ring) Members() []NodeID { return slices.Clone(r.ids) }

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.ids) }

// Mode returns the ring's placement scheme.
func (r *Ring) Mode() Mode { return r.cfg.Mode }

// Zone returns the zone of member id ("" also when id is not a member).
func (r *Ring) Zone(id NodeID) string {
	if i, ok := slices.BinarySearch(r.ids, id); ok {
		return r.zones[i]
	}
	return ""
}

// ZoneIndex returns the number of member id's zone, in [0, ZoneCount()):
// zones are numbered by first appearance in id order, so two rings of the
// same members agree. -1 when id is not a member.
func (r *Ring) ZoneIndex(id NodeID) int {
	if i, ok := slices.BinarySearch(r.ids, id); ok {
		return int(r.zoneIdx[i])
	}
	return -1
}

// ZoneCount returns the number of distinct zones among the members ("" is
// one zone); 0 for an empty ring.
func (r *Ring) ZoneCount() int { return r.nzones }

// MemberList returns the members with their effective weights and zones,
// in ascending id order, as a fresh slice.
func (r *Ring) MemberList() []Member {
	out := make([]Member, len(r.ids))
	for i, id := range r.ids {
		out[i] = Member{ID: id, Weight: r.weights[i], Zone: r.zones[i]}
	}
	return out
}

// Has reports whether id is a member.
func (r *Ring) Has(id NodeID) bool {
	_, ok := slices.BinarySearch(r.ids, id)
	return ok
}

// Weight returns the effective weight of id (Member.Weight, with 0 read as
// 1), or 0 if id is not a member.
func (r *Ring) Weight(id NodeID) int {
	if i, ok := slices.BinarySearch(r.ids, id); ok {
		return r.weights[i]
	}
	return 0
}

// Preference returns every member once: the first N are p's primaries for
// replication factor N and the rest are its fallbacks, nearest first.
//
// In ModeTokens it is the order met walking the tokens clockwise from
// partition p's start (wrapping past 2^64-1 to 0). Formally, members are
// ordered by the clockwise distance from the partition's start to their
// nearest token at or after it, ties (equal tokens of two members) by id.
//
// In ModeClaim it is p's owners in the assignment's order, then every other
// member in the fallback order of fallbackOrder: zones holding fewer of the
// entries before it first (so zones holding no replica yet come first), and
// within that a per-partition hash order that spreads the fallbacks of one
// member's partitions over many members.
//
// The slice is shared by every caller and precomputed by New: the caller must
// not modify it (its capacity is clipped, so append copies). It returns nil
// for an empty ring or when p >= Partitions().
func (r *Ring) Preference(p uint32) []NodeID {
	m := len(r.ids)
	if m == 0 || int64(p) >= int64(r.cfg.Partitions) {
		return nil
	}
	lo, hi := int(p)*m, int(p+1)*m
	return r.pref[lo:hi:hi]
}

// Primaries returns partition p's first min(n, Len()) preference entries: the
// members that hold its replicas when nobody is down. It shares memory with
// Preference and must not be modified; n <= 0 gives nil.
func (r *Ring) Primaries(p uint32, n int) []NodeID {
	pl := r.Preference(p)
	if n <= 0 || pl == nil {
		return nil
	}
	return pl[:min(n, len(pl)):min(n, len(pl))]
}

// IsPrimary reports whether id is among Primaries(p, n).
func (r *Ring) IsPrimary(p uint32, n int, id NodeID) bool {
	return slices.Contains(r.Primaries(p, n), id)
}

// Load returns, for replication factor n, how many partitions each member is
// a primary of (its number of (partition, replica) assignments). Members with
// no assignment are present with 0. The sum is Q*min(n, Len()).
func (r *Ring) Load(n int) map[NodeID]int {
	load := make(map[NodeID]int, len(r.ids))
	for _, id := range r.ids {
		load[id] = 0
	}
	for p := range r.cfg.Partitions {
		for _, id := range r.Primaries(uint32(p), n) {
			load[id]++
		}
	}
	return load
}

// Equal reports whether r and o place every partition identically: same
// mode, Q and T (Tokens only in ModeTokens), same members with the same
// weights and zones, and the same preference lists.
// Hash functions cannot be compared in Go; rings built with different hashes
// differ in their preference lists in practice, which this does compare.
// Two nil rings are equal; nil and non-nil are not.
func (r *Ring) Equal(o *Ring) bool {
	if r == nil || o == nil {
		return r == o
	}
	return r.cfg.Mode == o.cfg.Mode &&
		r.cfg.Partitions == o.cfg.Partitions &&
		(r.cfg.Mode == ModeClaim || r.cfg.Tokens == o.cfg.Tokens) &&
		slices.Equal(r.ids, o.ids) &&
		slices.Equal(r.weights, o.weights) &&
		slices.Equal(r.zones, o.zones) &&
		slices.Equal(r.pref, o.pref)
}
