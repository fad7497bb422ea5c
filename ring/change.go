package ring

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalidChange means a staged Change does not fit the member set it is
// applied to: a join of a member already there, a leave or removal of one
// that is not, a member named twice, or a change that leaves no member.
var ErrInvalidChange = errors.New("ring: invalid change")

// Change is a set of staged membership changes: what `ring plan` shows and
// `ring commit` applies at once, so that one ring change (one round of
// transfers) serves them all.
type Change struct {
	// Joins are members to admit, with their zones and weights.
	Joins []Member
	// Leaves are members that hand their partitions over and go.
	Leaves []NodeID
	// Removes are members down for good: their partitions are rebuilt
	// on the new owners from the surviving replicas.
	Removes []NodeID
}

// Empty reports whether c changes nothing.
func (c Change) Empty() bool { return len(c.Joins) == 0 && len(c.Leaves) == 0 && len(c.Removes) == 0 }

// ZoneLoad is one zone's share of a placement.
type ZoneLoad struct {
	Zone     string
	Members  int
	Replicas int // partition replicas (first N primaries) held by its members
	First    int // partitions one of its members coordinates
}

// ChangePlan is what applying a Change to a committed assignment does:
// the assignment it leads to, what moves, and the balance and zone spread
// after. It is the body of `ring plan`.
type ChangePlan struct {
	// Change is the change planned, ids sorted.
	Change Change
	// Members is the member set after the change, ids ascending.
	Members []Member
	// Next is the assignment the cluster moves to: ring.Plan of the
	// committed one and Members, which is what every node computes once
	// the change is committed.
	Next *Assignment
	// Explanation has the moves (per partition, who gains and who loses a
	// replica), the replica count moved against the ideal, and the Stats
	// before and after (per member loads, max/mean, zone guarantee).
	Explanation
	// Bytes estimates the data copied: for each move, the partition's
	// size once per member that gains it. Known is false when no size was
	// given for some moved partition (those count as 0).
	Bytes      int64
	BytesKnown bool
	// Rebuilt counts the replicas of removed members that new owners
	// rebuild from the surviving replicas (no old owner hands them over).
	Rebuilt int
	// ZonesBefore and ZonesAfter are per zone loads, zones ascending.
	ZonesBefore, ZonesAfter []ZoneLoad
}

// PlanChange computes what change ch does to a cluster that routes with the
// committed assignment (nil at cluster birth) and whose member set is
// members (the ring members before ch: committed.Members() unless a change
// is already in course). cfg gives Q and N as for Plan. partBytes, when
// not nil, has one size per partition (estimated bytes of one replica);
// it is only read. PlanChange is pure and deterministic: the same inputs
// give an equal plan. Errors wrap ErrInvalidChange or Plan's errors.
//
// It costs one Plan and one Explain: O(Q*N*M) for M members (see
// BenchmarkPlanChange); the rings it explains hold owners only (ownersRing).
func PlanChange(cfg Config, committed *Assignment, members []Member, ch Change, partBytes []int64) (*ChangePlan, error) {
	after, norm, err := applyChange(members, ch)
	if err != nil {
		return nil, err
	}
	if len(after) == 0 {
		return nil, fmt.Errorf("%w: it leaves the ring without members", ErrInvalidChange)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Mode = ModeClaim
	next, err := Plan(cfg, committed, after)
	if err != nil {
		return nil, err
	}
	nextRing, err := ownersRing(cfg, next)
	if err != nil {
		return nil, err
	}
	var before *Ring
	if committed != nil {
		if before, err = ownersRing(cfg, committed); err != nil {
			return nil, err
		}
	}
	n := next.Replicas()
	cp := &ChangePlan{Change: norm, Members: after, Next: next, Explanation: Explain(before, nextRing, n), BytesKnown: true}
	for _, mv := range cp.Moves {
		if int64(mv.Partition) < int64(len(partBytes)) {
			cp.Bytes += partBytes[mv.Partition] * int64(len(mv.Gained))
		} else {
			cp.BytesKnown = false
		}
		for _, id := range mv.Lost {
			if slices.Contains(norm.Removes, id) {
				cp.Rebuilt++
			}
		}
	}
	cp.ZonesBefore, cp.ZonesAfter = zoneLoads(cp.Before), zoneLoads(cp.After)
	return cp, nil
}

// ownersRing is the ring of assignment a with its owners and no
// fallbacks: row p of the preference table is p's owners, then empty ids.
// Explain reads primaries only, and this skips what makes FromAssignment
// cost (the fallback order: Q*M hashes and sorts). Such a ring must never
// route a request, so it stays in this file.
func ownersRing(cfg Config, a *Assignment) (*Ring, error) {
	if cfg.Partitions != 0 && cfg.Partitions != a.q {
		return nil, fmt.Errorf("%w: %d partitions, config says %d", ErrInvalidAssignment, a.q, cfg.Partitions)
	}
	cfg.Mode, cfg.Partitions, cfg.Replicas = ModeClaim, a.q, a.n
	r, err := newRing(cfg.withDefaults(), a.members)
	if err != nil {
		return nil, err
	}
	r.assign = a
	m := len(r.ids)
	r.pref = make([]NodeID, a.q*m)
	for p := range a.q {
		for j, o := range a.owners[p*a.rowWidth : (p+1)*a.rowWidth] {
			r.pref[p*m+j] = r.ids[o]
		}
	}
	return r, nil
}

// applyChange returns members with ch applied (ids ascending) and ch with
// its lists sorted, or an ErrInvalidChange.
func applyChange(members []Member, ch Change) ([]Member, Change, error) {
	norm := Change{Joins: slices.Clone(ch.Joins), Leaves: slices.Clone(ch.Leaves), Removes: slices.Clone(ch.Removes)}
	slices.SortFunc(norm.Joins, func(a, b Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
	slices.Sort(norm.Leaves)
	slices.Sort(norm.Removes)
	cur := map[NodeID]bool{}
	for _, m := range members {
		cur[m.ID] = true
	}
	named := map[NodeID]string{}
	name := func(id NodeID, what string) error {
		if prev, ok := named[id]; ok {
			return fmt.Errorf("%w: %q is staged twice (%s and %s)", ErrInvalidChange, id, prev, what)
		}
		named[id] = what
		return nil
	}
	for _, j := range norm.Joins {
		if err := name(j.ID, "join"); err != nil {
			return nil, norm, err
		}
		if cur[j.ID] {
			return nil, norm, fmt.Errorf("%w: %q joins but is already a member", ErrInvalidChange, j.ID)
		}
	}
	for _, lists := range []struct {
		what string
		ids  []NodeID
	}{{"leave", norm.Leaves}, {"remove", norm.Removes}} {
		for _, id := range lists.ids {
			if err := name(id, lists.what); err != nil {
				return nil, norm, err
			}
			if !cur[id] {
				return nil, norm, fmt.Errorf("%w: %s of %q, which is not a member", ErrInvalidChange, lists.what, id)
			}
		}
	}
	out := make([]Member, 0, len(members)+len(norm.Joins))
	for _, m := range members {
		if _, gone := named[m.ID]; !gone {
			out = append(out, m)
		}
	}
	out = append(out, norm.Joins...)
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return out, norm, nil
}

// zoneLoads sums a placement's member loads per zone, zones ascending.
func zoneLoads(st Stats) []ZoneLoad {
	var out []ZoneLoad
	for _, l := range st.Loads {
		i, found := slices.BinarySearchFunc(out, l.Zone, func(z ZoneLoad, name string) int { return strings.Compare(z.Zone, name) })
		if !found {
			out = slices.Insert(out, i, ZoneLoad{Zone: l.Zone})
		}
		out[i].Members++
		out[i].Replicas += l.Replicas
		out[i].First += l.First
	}
	return out
}
