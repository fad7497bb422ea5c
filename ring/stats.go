package ring

import (
	"fmt"
	"strings"
)

// ZoneStatus tells how a ring's primaries spread over zones, for the ring
// output of the CLI and for the log.
type ZoneStatus struct {
	// N is the replication factor checked.
	N int
	// Zones is the number of distinct zones among the members ("" is one).
	Zones int
	// Held is the zone guarantee: there are at least N members in at
	// least N zones and every partition's first N primaries are in N
	// distinct zones.
	Held bool
	// MinZones is the fewest distinct zones among one partition's first
	// min(N, members) primaries, and MaxPerZone the most of them in one
	// zone. With fewer zones than N, ModeClaim keeps MaxPerZone as low as
	// the zones allow.
	MinZones, MaxPerZone int
	// Below counts the partitions whose primaries span fewer than
	// min(N, Zones, members) zones: zero in ModeClaim, which spreads every
	// partition as widely as the zones allow.
	Below int
	// Reason says why the guarantee does not hold; "" when it does.
	Reason string
}

// ZoneStatus checks every partition's first n primaries against the
// zones of their members.
func (r *Ring) ZoneStatus(n int) ZoneStatus {
	st := ZoneStatus{N: n, Zones: r.nzones}
	m := len(r.ids)
	if m == 0 || n <= 0 {
		st.Reason = "the ring has no members"
		if n <= 0 {
			st.Reason = fmt.Sprintf("replication factor %d", n)
		}
		return st
	}
	k := min(n, m)
	want := min(k, r.nzones)
	count := make([]int, r.nzones)
	st.MinZones = k
	for p := range uint32(r.cfg.Partitions) {
		clear(count)
		distinct := 0
		for _, id := range r.Primaries(p, k) {
			z := r.zoneIdx[r.index(id)]
			if count[z] == 0 {
				distinct++
			}
			count[z]++
			st.MaxPerZone = max(st.MaxPerZone, count[z])
		}
		st.MinZones = min(st.MinZones, distinct)
		if distinct < want {
			st.Below++
		}
	}
	switch {
	case m < n:
		st.Reason = fmt.Sprintf("%d members for N=%d: partitions have %d replicas", m, n, m)
	case r.nzones < n:
		st.Reason = fmt.Sprintf("%d zone(s) for N=%d: replicas cannot all be in distinct zones (at most %d of a partition in one zone)", r.nzones, n, st.MaxPerZone)
	case st.Below > 0:
		st.Reason = fmt.Sprintf("%d of %d partitions have replicas in fewer than %d zones (mode %s)", st.Below, r.cfg.Partitions, n, r.cfg.Mode)
	default:
		st.Held = true
	}
	return st
}

// MemberLoad is one member's load on a ring for a replication factor.
type MemberLoad struct {
	ID     NodeID
	Zone   string
	Weight int
	// Replicas is how many partitions the member is one of the first N
	// primaries of; IdealReplicas its ideal share (see Plan: weight
	// proportional, water-filled under the zone bounds).
	Replicas      int
	IdealReplicas float64
	// First is how many partitions the member is the first primary
	// (coordinator) of; IdealFirst its weight's share of Q.
	First      int
	IdealFirst float64
}

// Balance summarizes one kind of load over the members.
type Balance struct {
	// MaxOverMean is the largest load over the mean load (1 is perfect
	// for members of equal weight and no zone constraint).
	MaxOverMean float64
	// MaxOverIdeal is the largest load over that member's ideal: the
	// measure that accounts for weights and zones.
	MaxOverIdeal float64
}

// Stats describes a ring's placement for replication factor N: per member
// loads against their ideals, balance, and zone spread. It is what `ring`
// and `ring plan` print.
type Stats struct {
	Mode       Mode
	Members    int
	Partitions int
	N          int
	// Replicas is the balance of replica loads, First of first primaries.
	Replicas, First Balance
	Zones           ZoneStatus
	// Loads has one entry per member, ids ascending.
	Loads []MemberLoad
}

// Stats computes the ring's Stats for replication factor n. It costs
// O(Q*n + members) time.
func (r *Ring) Stats(n int) Stats {
	st := Stats{Mode: r.cfg.Mode, Members: len(r.ids), Partitions: r.cfg.Partitions, N: n, Zones: r.ZoneStatus(n)}
	m := len(r.ids)
	if m == 0 || n <= 0 {
		return st
	}
	sh := computeShares(r.cfg.Partitions, min(n, m), r.weights, r.zoneIdx, r.nzones)
	st.Loads = make([]MemberLoad, m)
	for i, id := range r.ids {
		st.Loads[i] = MemberLoad{ID: id, Zone: r.zones[i], Weight: r.weights[i], IdealReplicas: sh.replica[i], IdealFirst: sh.first[i]}
	}
	for p := range uint32(r.cfg.Partitions) {
		for j, id := range r.Primaries(p, n) {
			l := &st.Loads[r.index(id)]
			l.Replicas++
			if j == 0 {
				l.First++
			}
		}
	}
	st.Replicas = balanceOf(st.Loads, func(l MemberLoad) (int, float64) { return l.Replicas, l.IdealReplicas })
	st.First = balanceOf(st.Loads, func(l MemberLoad) (int, float64) { return l.First, l.IdealFirst })
	return st
}

func balanceOf(loads []MemberLoad, f func(MemberLoad) (int, float64)) Balance {
	var b Balance
	total, hi := 0, 0
	for _, l := range loads {
		v, ideal := f(l)
		total += v
		hi = max(hi, v)
		if ideal > 0 {
			b.MaxOverIdeal = max(b.MaxOverIdeal, float64(v)/ideal)
		}
	}
	if total > 0 {
		b.MaxOverMean = float64(hi) * float64(len(loads)) / float64(total)
	}
	return b
}

// Explanation is what a ring change does: the moves and the placement
// before and after. It is what `ring plan` shows before `ring commit`.
type Explanation struct {
	// Before and After are the rings' Stats (Before is zero when there
	// was no ring before).
	Before, After Stats
	// Moves is Diff(before, after, N): per partition, who gains and who
	// loses a replica.
	Moves []Move
	// Moved is the number of replicas that change hands (the sum of the
	// Gained lists): each is one partition's data copied to one member.
	Moved int
	// IdealMoved is a lower bound on the replica moves of any change from
	// Before to a placement with After's ideal loads and zone bounds: the
	// larger of two bounds. Per member, what members lack:
	// sum(max(0, ideal after - replicas before)). Per partition (see
	// partitionBound): every replica of a departed member is placed again,
	// a partition lacking a zone's required owners changes that many
	// slots, a member whose ideal after is Q is placed in every partition
	// it did not own, and refills that the zone bounds force into a zone
	// beyond its members' ceilings must be moved out again.
	// Moved/IdealMoved is the movement overhead (1 is ideal).
	IdealMoved float64
	// FirstChanged counts partitions whose first primary (coordinator)
	// changes; such a change alone moves no data.
	FirstChanged int
}

// Explain describes the change from before to after for replication factor
// n. before may be nil (cluster birth); after must not be. Both rings must
// have the same Q, as for Diff. It costs O(Q*n*M) time for M members.
func Explain(before, after *Ring, n int) Explanation {
	e := Explanation{After: after.Stats(n), Moves: Diff(before, after, n)}
	if before != nil {
		e.Before = before.Stats(n)
	}
	for _, mv := range e.Moves {
		e.Moved += len(mv.Gained)
	}
	had := map[NodeID]int{}
	for _, l := range e.Before.Loads {
		had[l.ID] = l.Replicas
	}
	for _, l := range e.After.Loads {
		e.IdealMoved += max(0, l.IdealReplicas-float64(had[l.ID]))
	}
	e.IdealMoved = max(e.IdealMoved, float64(partitionBound(before, after, n)))
	for p := range uint32(after.Partitions()) {
		var a, b NodeID
		if pr := after.Primaries(p, 1); len(pr) > 0 {
			a = pr[0]
		}
		if before != nil {
			if pr := before.Primaries(p, 1); len(pr) > 0 {
				b = pr[0]
			}
		}
		if a != b {
			e.FirstChanged++
		}
	}
	return e
}

// String is a short human summary of e, for `ring plan` and the log.
func (e Explanation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d members -> %d, %d partitions, N=%d, mode %s\n", e.Before.Members, e.After.Members, e.After.Partitions, e.After.N, e.After.Mode)
	ratio := 0.0
	if e.IdealMoved > 0 {
		ratio = float64(e.Moved) / e.IdealMoved
	}
	fmt.Fprintf(&b, "moves: %d replicas in %d partitions (ideal %.1f, x%.2f); %d coordinators change\n", e.Moved, len(e.Moves), e.IdealMoved, ratio, e.FirstChanged)
	fmt.Fprintf(&b, "balance after: replicas max/mean %.3f (max/ideal %.3f), first primaries max/mean %.3f (max/ideal %.3f)\n",
		e.After.Replicas.MaxOverMean, e.After.Replicas.MaxOverIdeal, e.After.First.MaxOverMean, e.After.First.MaxOverIdeal)
	z := e.After.Zones
	if z.Held {
		fmt.Fprintf(&b, "zones: %d, every partition's %d replicas in %d distinct zones", z.Zones, z.N, z.N)
	} else {
		fmt.Fprintf(&b, "zones: %d, guarantee does not hold: %s", z.Zones, z.Reason)
	}
	return b.String()
}

// partitionBound is the per-partition lower bound of
// Explanation.IdealMoved. In each partition, the slots of departed members
// must be refilled (free slots), and each zone must end with at least its
// lower bound of owners (its upper bound if its share is saturated): a
// partition needs max(free, lack) slot changes. Where the free slots are
// exactly what the lacking zones need, the refills are forced into those
// zones; a zone forced to gain more than its members' ceilings allow must
// shed the surplus by further moves, of which only the slot changes already
// counted beyond the free slots may be part.
//
// A member whose ideal after is Q (saturated: its zone's share forces it
// into every partition, as for a zone's only member when every partition
// needs an owner there, or a heavy member of a zone that holds two owners of
// every partition) owns every partition after, so each partition it did not
// own before gains it: a zone lacks at least as many owners of a partition
// as it has saturated members missing there, whatever its count. The
// per-member bound counts only a saturated member's total gain, which the
// refills of a leaver's slots seem to cover; but where it already co-owned
// the leaver's partitions, those refills go to other members and each
// partition it lacked needs a slot change of its own (two heavy members of
// a zone always together: the leave of one moves Q replicas, not its share;
// TestPlanMovementSaturatedMember).
//
// More generally, a member that must gain (its floor after less what it held
// before) can take a free slot only in a partition it does not own whose
// zone count leaves room for it; call those its reach. Each gain beyond its
// reach is made in a partition with no free slot or none its zone may
// take, so it displaces a kept owner: a slot change beyond the free ones.
// The stranded gains, summed over members, bound those changes as beyond
// and surplus do, and the largest of the three counts
// (TestPlanMovementStrandedGains; on that case and the one above, a
// min-cost-flow search over every assignment within the ideal ranges and
// zone bounds finds no fewer moves than this bound).
//
// Total: sum(free) + max(beyond, surplus, stranded), where free is the
// room the kept owners leave in a row of min(N, M) owners after: the slots
// of departed members, fewer or more where min(N, M) changes.
func partitionBound(before, after *Ring, n int) int {
	if before == nil || after.Len() == 0 || n <= 0 {
		return 0
	}
	r := min(n, after.Len())
	sizes := make([]int, after.nzones)
	for _, z := range after.zoneIdx {
		sizes[z]++
	}
	zlo, zhi := zoneBounds(r, sizes)
	sh := computeShares(after.cfg.Partitions, r, after.weights, after.zoneIdx, after.nzones)
	need := make([]int, after.nzones)
	for z := range need {
		need[z] = zlo[z]
		if sh.zoneLo[z] == after.cfg.Partitions*zhi[z] {
			need[z] = zhi[z]
		}
	}
	// How much each zone may still gain: its members' ceilings after,
	// less what those of them present before held.
	gain := make([]int, after.nzones)
	held := before.Load(n) // once: a scan per member costs M*Q*N
	for i, id := range after.ids {
		z := after.zoneIdx[i]
		gain[z] += sh.repHi[i] - held[id]
	}
	var saturated []int // members after that must own every partition
	for i := range after.ids {
		if sh.repLo[i] == after.cfg.Partitions {
			saturated = append(saturated, i)
		}
	}
	owned := make([]bool, len(after.ids)) // kept owners of the partition
	var kept []int
	forced := make([]int, after.nzones)
	count := make([]int, after.nzones)
	missing := make([]int, after.nzones) // saturated members not owners
	reach := make([]int, len(after.ids)) // free slots each member may take
	lacks := func(z int) int { return max(need[z]-count[z], missing[z], 0) }
	bound, beyond := 0, 0
	for p := range uint32(before.cfg.Partitions) {
		clear(count)
		clear(missing)
		kept = kept[:0]
		for _, id := range before.Primaries(p, n) {
			if !after.Has(id) {
				continue
			}
			i := after.index(id)
			kept = append(kept, i)
			owned[i] = true
			count[after.zoneIdx[i]]++
		}
		// The slots the kept owners leave: those of departed members, less
		// any the row loses (a leave with at most N members), plus any it
		// gains (a join with fewer than N).
		free := r - len(kept)
		for _, i := range saturated {
			if !owned[i] {
				missing[after.zoneIdx[i]]++
			}
		}
		if free > 0 {
			for i, z := range after.zoneIdx {
				if !owned[i] && count[z] < zhi[z] {
					reach[i]++
				}
			}
		}
		for _, i := range kept {
			owned[i] = false
		}
		lack := 0
		for z := range count {
			lack += lacks(z)
		}
		bound += max(free, lack)
		beyond += max(0, lack-free)
		if free > 0 && free == lack {
			for z := range count {
				forced[z] += lacks(z)
			}
		}
	}
	surplus := 0
	for z := range forced {
		surplus += max(0, forced[z]-max(0, gain[z]))
	}
	stranded := 0
	for i, id := range after.ids {
		stranded += max(0, sh.repLo[i]-held[id]-reach[i])
	}
	return bound + max(0, surplus-beyond, stranded-beyond)
}
