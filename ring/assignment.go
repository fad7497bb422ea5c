package ring

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// Assignment is an explicit placement: for each of Q partitions, its owners
// in order (the first coordinates), as indexes into a member table that
// also carries every member's weight and zone. It is what a ModeClaim
// cluster agrees on: Plan computes the next one from the current one, the
// cluster gossips and persists it (Encode, DecodeAssignment), and every node
// builds its Ring from it with FromAssignment.
//
// An Assignment is immutable once made; its methods are safe for concurrent
// use and return fresh slices.
type Assignment struct {
	version  uint64
	q        int
	n        int      // replicas asked for; each partition has min(n, len(members)) owners
	members  []Member // ascending ids, weights >= 1
	owners   []uint16 // q rows of rows() entries: indexes into members
	rowWidth int      // min(n, len(members))
}

// Version orders the assignments of one cluster: Plan returns
// prev.Version()+1 when anything changed, and prev itself otherwise. Two
// different assignments of one version were planned concurrently from the
// same one; a cluster settles on one of them by a total order (for example
// the larger Encode bytes), as it does for member records.
func (a *Assignment) Version() uint64 { return a.version }

// Partitions returns Q.
func (a *Assignment) Partitions() int { return a.q }

// Replicas returns the N it was planned for. Each partition has
// min(Replicas(), len(Members())) owners.
func (a *Assignment) Replicas() int { return a.n }

// Members returns the member table: ids ascending, with weights (>= 1) and
// zones.
func (a *Assignment) Members() []Member { return slices.Clone(a.members) }

// Owners returns partition p's owners in order, or nil if p >= Partitions().
func (a *Assignment) Owners(p uint32) []NodeID {
	if int64(p) >= int64(a.q) {
		return nil
	}
	row := a.owners[int(p)*a.rowWidth : (int(p)+1)*a.rowWidth]
	out := make([]NodeID, len(row))
	for i, o := range row {
		out[i] = a.members[o].ID
	}
	return out
}

// Equal reports whether a and b are the same assignment, version included.
// Two nil assignments are equal.
func (a *Assignment) Equal(b *Assignment) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.version == b.version && a.sameTable(b)
}

// sameTable is Equal without the version.
func (a *Assignment) sameTable(b *Assignment) bool {
	return a.q == b.q && a.n == b.n && slices.Equal(a.members, b.members) && slices.Equal(a.owners, b.owners)
}

// String summarizes a for logs: version, Q, N and member count.
func (a *Assignment) String() string {
	if a == nil {
		return "assignment(nil)"
	}
	return fmt.Sprintf("assignment v%d q=%d n=%d members=%d", a.version, a.q, a.n, len(a.members))
}

// FromAssignment builds the ring of assignment a: Mode ModeClaim, Q and N
// from a, Hash from cfg (nil: xxhash). cfg.Mode is ignored; cfg.Partitions,
// when set, must equal a.Partitions(), since Q is fixed at cluster birth.
// Errors wrap ErrInvalidConfig, ErrInvalidAssignment or ErrTooLarge.
//
// It costs O(Q*M*log M) time for M members (each partition's fallbacks are
// sorted) and Q*M string headers of memory, like New.
func FromAssignment(cfg Config, a *Assignment) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if a == nil {
		return nil, fmt.Errorf("%w: nil", ErrInvalidAssignment)
	}
	if cfg.Partitions != 0 && cfg.Partitions != a.q {
		return nil, fmt.Errorf("%w: %d partitions, config says %d", ErrInvalidAssignment, a.q, cfg.Partitions)
	}
	cfg.Mode, cfg.Partitions, cfg.Replicas = ModeClaim, a.q, a.n
	cfg = cfg.withDefaults()
	r, err := newRing(cfg, a.members)
	if err != nil {
		return nil, err
	}
	r.assign = a
	r.pref = r.claimPreferences()
	return r, nil
}

// Assignment returns the ring's placement as an Assignment: in ModeClaim the
// one it was built from; in ModeTokens the first min(Config().Replicas,
// Len()) entries of every preference list, version 0. Plan from the latter
// moves a token-ring cluster to ModeClaim with as few moves as balancing it
// takes.
func (r *Ring) Assignment() *Assignment {
	if r.assign != nil {
		return r.assign
	}
	a := &Assignment{q: r.cfg.Partitions, n: r.cfg.Replicas, members: r.MemberList()}
	a.rowWidth = min(a.n, len(a.members))
	a.owners = make([]uint16, 0, a.q*a.rowWidth)
	for p := range uint32(a.q) {
		for _, id := range r.Primaries(p, a.rowWidth) {
			i, _ := slices.BinarySearch(r.ids, id)
			a.owners = append(a.owners, uint16(i))
		}
	}
	return a
}

// claimPreferences computes the preference table of a ModeClaim ring: row p
// is p's owners, then fallbackOrder of the others.
func (r *Ring) claimPreferences() []NodeID {
	a, m := r.assign, len(r.ids)
	if m == 0 {
		return nil
	}
	pref := make([]NodeID, a.q*m)
	f := fallbackOrderer{
		r:       r,
		isOwner: make([]bool, m),
		inZone:  make([]int, r.nzones),
		cand:    make([]fallbackCand, 0, m),
		buf:     make([]byte, 0, MaxIDLen+4),
	}
	for p := range a.q {
		row := pref[p*m : (p+1)*m]
		owners := a.owners[p*a.rowWidth : (p+1)*a.rowWidth]
		for j, o := range owners {
			row[j] = r.ids[o]
		}
		f.order(uint32(p), owners, row[len(owners):])
	}
	return pref
}

// fallbackOrderer orders a partition's non-owners, reusing its buffers.
type fallbackOrderer struct {
	r       *Ring
	isOwner []bool
	inZone  []int
	cand    []fallbackCand
	buf     []byte
}

type fallbackCand struct {
	rank  int // owners and better-scored fallbacks of its zone before it
	score uint64
	idx   int32
}

// order writes into out the members that do not own p, in fallback order:
// by rank, then by fallbackScore, then by id, where a member's rank is the
// number of p's owners in its zone plus the number of members of its zone
// with a lower score. This is the round robin that repeatedly takes the
// best-scored member of the zone holding the fewest entries so far: zones
// holding no replica of p come first, one member each, then every zone's
// next member, and so on. Scores make the fallbacks of different partitions
// independent draws, so a dead member's partitions fall back on many
// members rather than on its ring neighbours.
//
// The order is a compatibility promise like tokenInput: every node computes
// it from the assignment, and they must agree on which fallback holds which
// hint. TestGoldenClaimPreference pins it.
func (f *fallbackOrderer) order(p uint32, owners []uint16, out []NodeID) {
	r := f.r
	clear(f.isOwner)
	clear(f.inZone)
	for _, o := range owners {
		f.isOwner[o] = true
		f.inZone[r.zoneIdx[o]]++
	}
	f.cand = f.cand[:0]
	for i := range r.ids {
		if !f.isOwner[i] {
			f.cand = append(f.cand, fallbackCand{score: f.score(p, i), idx: int32(i)})
		}
	}
	if r.nzones > 1 {
		// Rank within each zone: sort by (zone, score), count.
		slices.SortFunc(f.cand, func(a, b fallbackCand) int {
			if za, zb := r.zoneIdx[a.idx], r.zoneIdx[b.idx]; za != zb {
				return int(za - zb)
			}
			return compareScore(a, b)
		})
		for j := range f.cand {
			z := r.zoneIdx[f.cand[j].idx]
			f.cand[j].rank = f.inZone[z]
			f.inZone[z]++
		}
	}
	slices.SortFunc(f.cand, func(a, b fallbackCand) int {
		if a.rank != b.rank {
			return a.rank - b.rank
		}
		return compareScore(a, b)
	})
	for j, c := range f.cand {
		out[j] = r.ids[c.idx]
	}
}

// score is fallbackScore(p, member i).
func (f *fallbackOrderer) score(p uint32, i int) uint64 {
	f.buf = fallbackInput(f.buf, f.r.ids[i], p)
	return f.r.hash(f.buf)
}

// fallbackInput writes into buf the bytes hashed to score member id as a
// fallback of partition p, and returns them:
//
//	"f" || id bytes || uint32(p) big-endian
//
// The leading byte keeps the input apart from tokenInput's, so a member's
// fallback order is not correlated with its tokens. Like tokenInput, the
// layout is a compatibility promise.
func fallbackInput(buf []byte, id NodeID, p uint32) []byte {
	buf = append(append(buf[:0], 'f'), id...)
	return binary.BigEndian.AppendUint32(buf, p)
}

func compareScore(a, b fallbackCand) int {
	switch {
	case a.score < b.score:
		return -1
	case a.score > b.score:
		return 1
	}
	return int(a.idx - b.idx) // ids ascending
}

// memberIndex returns the index of id in the ascending table ms.
func memberIndex(ms []Member, id NodeID) (int, bool) {
	return slices.BinarySearchFunc(ms, id, func(m Member, id NodeID) int { return strings.Compare(string(m.ID), string(id)) })
}
