package ring

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Plan computes the assignment a ModeClaim cluster should move to when its
// member set (with zones and weights) becomes members, given the assignment
// prev it agreed on (nil at cluster birth). Q and N come from cfg
// (Partitions, Replicas; cfg.Mode is ignored); prev must have the same Q.
// It is pure and deterministic: the same inputs give an equal assignment.
// Errors wrap ErrInvalidConfig, ErrInvalidMember, ErrDuplicateMember,
// ErrTooLarge or ErrInvalidAssignment.
//
// Guarantees, for every result:
//   - every partition has min(N, len(members)) distinct owners;
//   - owners' zones are spread as evenly as the zones allow (zoneBounds):
//     with at least N zones, every partition's owners are in N distinct
//     zones; with fewer, every zone holds k-1 or k owners of every
//     partition for the least possible k (or all its members if fewer);
//   - a member of prev keeps every partition it owned unless it left, its
//     zone changed, or balancing needs to move it: moves go from members
//     (or zones) above their ideal range toward ones below it.
//
// Aims, checked by the property tests and measured in docs/bench/ring.md:
// every member's replica load within [floor, ceil] of its ideal (see
// shares: weight-proportional, water-filled under the zone bounds), and
// likewise its count of first positions (coordinators) against its weight's
// share of Q; later positions balanced the same way. Where a member's
// first-primary ideal is below 2 (Q below twice the member count), owner
// sets can make that range unreachable and a count may be one off. Zone
// totals, too, end within [floor, ceil] of their shares, so that the next
// change does not pay for this one's rounding. A join or leave moves close
// to the ideal number of replicas (what the joining member must take or the
// leaving one held; with zones, also what zone shares shift).
//
// How: owners of prev that are still members are kept in place; owners that
// break the zone bounds (a zone change, a new N) are evicted, most loaded
// first; empty slots are filled with the eligible member whose zone, then
// itself, is furthest below its ideal; then replicas move along shortest
// chains of valid single moves (breadth-first over members) from members
// above their range to members below it, first between zones that can
// afford it, then until zone totals are in range too. The order of each
// partition's owners is then chosen position by position the same way
// (chains of swaps within partitions, which move no data), starting from
// prev's order; where no reordering can balance first primaries, two
// replicas swap partitions. Cost: each pass is O(Q*N*M); 12 ms for 100
// members at Q=1024 and 165 ms at Q=4096 from nothing (docs/bench/ring.md),
// seconds or more near the size limits, so a node runs it off the request
// path.
func Plan(cfg Config, prev *Assignment, members []Member) (*Assignment, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if prev != nil && prev.q != cfg.Partitions {
		return nil, fmt.Errorf("%w: previous assignment has %d partitions, config says %d", ErrInvalidAssignment, prev.q, cfg.Partitions)
	}
	sorted, err := sortMembers(members)
	if err != nil {
		return nil, err
	}
	if len(sorted) > MaxAssignmentMembers {
		return nil, fmt.Errorf("%w: %d members, limit %d", ErrTooLarge, len(sorted), MaxAssignmentMembers)
	}
	if len(sorted) > MaxPlacements/cfg.Partitions {
		return nil, fmt.Errorf("%w: %d partitions x %d members exceeds %d", ErrTooLarge, cfg.Partitions, len(sorted), MaxPlacements)
	}
	pl := newPlanner(cfg.Partitions, cfg.Replicas, sorted)
	pl.seed(prev)
	pl.enforceZones()
	pl.fill()
	pl.balanceReplicas()
	pl.order()

	next := &Assignment{q: pl.q, n: cfg.Replicas, members: sorted, rowWidth: pl.r, owners: make([]uint16, len(pl.own))}
	for j, o := range pl.own {
		next.owners[j] = uint16(o)
	}
	switch {
	case prev == nil:
		next.version = 1
	case next.sameTable(prev):
		return prev, nil
	default:
		next.version = prev.version + 1
	}
	return next, nil
}

// planner is the working state of one Plan.
type planner struct {
	q, r, m int
	members []Member
	zone    []int32 // zone number per member
	zlo     []int   // per zone: fewest owners of one partition
	zhi     []int   // per zone: most owners of one partition
	sh      shares
	own     []int32 // q rows of r slots; -1 is empty
	load    []int   // owned slots per member
	zload   []int   // owned slots per zone
	perm    []int32 // order partitions are visited in

	// order's state: the position being chosen, how many partitions have
	// each member there, and its ideal count
	k        int
	posCount []int
	posIdeal []float64

	// augment's buffers; exFn orders its candidates
	exFn    func(int32) float64
	visited []bool
	inFront []bool
	parent  []step
	cands   []int32
}

// step is one edge of an augmenting chain: member to took slot of partition
// p from member from (a replica move, or a swap of positions).
type step struct {
	from int32
	p    int32
	slot int32
}

func newPlanner(q, n int, ms []Member) *planner {
	m := len(ms)
	pl := &planner{q: q, r: min(n, m), m: m, members: ms, zone: make([]int32, m), load: make([]int, m)}
	zones := map[string]int32{}
	weights := make([]int, m)
	for i, mb := range ms {
		z, ok := zones[mb.Zone]
		if !ok {
			z = int32(len(zones))
			zones[mb.Zone] = z
		}
		pl.zone[i] = z
		weights[i] = mb.Weight
	}
	sizes := make([]int, len(zones))
	for _, z := range pl.zone {
		sizes[z]++
	}
	pl.zload = make([]int, len(zones))
	pl.zlo, pl.zhi = zoneBounds(pl.r, sizes)
	pl.sh = computeShares(q, pl.r, weights, pl.zone, len(zones))
	pl.own = make([]int32, q*pl.r)
	for j := range pl.own {
		pl.own[j] = -1
	}
	// Visit partitions in a fixed scattered order (an odd multiplier is a
	// bijection modulo a power of two), so that the partitions a change
	// moves are spread over the hash space rather than bunched at its
	// start.
	pl.perm = make([]int32, q)
	for i := range q {
		pl.perm[i] = int32((uint64(i) * 0x9E3779B97F4A7C15) & uint64(q-1))
	}
	pl.posCount = make([]int, m)
	pl.posIdeal = make([]float64, m)
	pl.exFn = pl.excess
	pl.visited = make([]bool, m)
	pl.inFront = make([]bool, m)
	pl.parent = make([]step, m)
	pl.cands = make([]int32, m)
	return pl
}

func (pl *planner) row(p int32) []int32 { return pl.own[int(p)*pl.r : (int(p)+1)*pl.r] }

// seed copies prev's owners that are still members, in prev's order, into
// the table; duplicates (which no valid assignment has) are dropped, and
// slots beyond prev's row stay empty.
func (pl *planner) seed(prev *Assignment) {
	if prev == nil || pl.r == 0 {
		return
	}
	idx := make([]int32, len(prev.members))
	for i, mb := range prev.members {
		idx[i] = -1
		if k, ok := memberIndex(pl.members, mb.ID); ok {
			idx[i] = int32(k)
		}
	}
	for p := range int32(pl.q) {
		row := pl.row(p)
		k := 0
		for _, o := range prev.owners[int(p)*prev.rowWidth : (int(p)+1)*prev.rowWidth] {
			i := idx[o]
			if i < 0 || k == pl.r || slices.Contains(row[:k], i) {
				continue
			}
			row[k] = i
			pl.load[i]++
			pl.zload[pl.zone[i]]++
			k++
		}
	}
}

// excess is how far member i is above its ideal replica load.
func (pl *planner) excess(i int32) float64 { return float64(pl.load[i]) - pl.sh.replica[i] }

// posExcess is how far member i is above its ideal count of the position
// being ordered.
func (pl *planner) posExcess(i int32) float64 { return float64(pl.posCount[i]) - pl.posIdeal[i] }

// zoneCount returns how many of row's owners are in zone z.
func (pl *planner) zoneCount(row []int32, z int32) int {
	c := 0
	for _, o := range row {
		if o >= 0 && pl.zone[o] == z {
			c++
		}
	}
	return c
}

// enforceZones empties slots until every partition can be completed within
// the zone bounds: no zone above its upper bound, and no more missing
// owners of zones below their lower bound than there are empty slots. It
// evicts the most loaded (relative to its ideal) owner of an eligible zone.
func (pl *planner) enforceZones() {
	for p := range int32(pl.q) {
		row := pl.row(p)
		for {
			victim := int32(-1)
			empty, deficit := 0, 0
			for z := range int32(len(pl.zlo)) {
				deficit += max(0, pl.zlo[z]-pl.zoneCount(row, z))
			}
			for _, o := range row {
				if o < 0 {
					empty++
				}
			}
			for s, o := range row {
				if o < 0 {
					continue
				}
				c := pl.zoneCount(row, pl.zone[o])
				// Over the upper bound: must go. Short of slots for the
				// zones below their lower bound: any zone above its
				// lower bound may give one.
				if c > pl.zhi[pl.zone[o]] || (deficit > empty && c > pl.zlo[pl.zone[o]]) {
					if victim < 0 || pl.excess(o) > pl.excess(row[victim]) {
						victim = int32(s)
					}
				}
			}
			if victim < 0 {
				break
			}
			pl.load[row[victim]]--
			pl.zload[pl.zone[row[victim]]]--
			row[victim] = -1
		}
	}
}

// fill gives every empty slot an owner: the member furthest below its ideal
// among those that keep the partition within the zone bounds, ties broken
// by a hash of (partition, member) so that co-owners vary between
// partitions.
func (pl *planner) fill() {
	for _, p := range pl.perm {
		row := pl.row(p)
		for s := range row {
			if row[s] >= 0 {
				continue
			}
			empty, deficit := 0, 0
			for _, o := range row {
				if o < 0 {
					empty++
				}
			}
			for z := range int32(len(pl.zlo)) {
				deficit += max(0, pl.zlo[z]-pl.zoneCount(row, z))
			}
			best, bestEx, bestTie := int32(-1), 0.0, uint64(0)
			for i := range int32(pl.m) {
				if slices.Contains(row, i) {
					continue
				}
				c := pl.zoneCount(row, pl.zone[i])
				if c >= pl.zhi[pl.zone[i]] || (deficit == empty && c >= pl.zlo[pl.zone[i]]) {
					continue
				}
				// The zone furthest below its share first, then the
				// member furthest below its own.
				z := pl.zone[i]
				ex, tie := pl.excess(i), mix(uint64(p), uint64(i))
				ex += 4 * (float64(pl.zload[z]) - pl.sh.zoneShare[z])

				if best < 0 || ex < bestEx || (ex == bestEx && tie < bestTie) {
					best, bestEx, bestTie = i, ex, tie
				}
			}
			if best < 0 {
				// zoneBounds guarantees a zone below its upper bound
				// with a member not in the row, and enforceZones that
				// the lower bounds fit in the empty slots.
				panic("ring: Plan found no eligible owner (broken zone bounds invariant)")
			}
			row[s] = best
			pl.load[best]++
			pl.zload[pl.zone[best]]++
		}
	}
}

// mix is a fixed 64-bit hash of two integers, for deterministic tie breaks.
func mix(a, b uint64) uint64 {
	var buf [16]byte
	binary.LittleEndian.PutUint64(buf[:8], a)
	binary.LittleEndian.PutUint64(buf[8:], b)
	return xxhash.Sum64(buf[:])
}

// balanceReplicas moves replicas along chains until every member's load is
// within [repLo, repHi], or no chain can improve it: first from members
// above their ceiling to members below it, then from members above their
// floor to members below it. Each chain changes the load of its two ends
// only, by one, so each phase ends.
func (pl *planner) balanceReplicas() {
	lo, hi := pl.sh.repLo, pl.sh.repHi
	zlo, zhi := pl.sh.zoneLo, pl.sh.zoneHi
	// Zone totals: whether member i's zone can give a replica away or take
	// one without leaving the floor and ceiling of its share.
	canGive := func(i int32) bool { return pl.zload[pl.zone[i]] > zlo[pl.zone[i]] }
	canTake := func(i int32) bool { return pl.zload[pl.zone[i]] < zhi[pl.zone[i]] }
	// Each member phase runs first between ends whose zones can afford the
	// move, then between any ends: a join or leave then draws on the zones
	// that the change left above their share, rather than moving a replica
	// out of a zone at its share and another one back later.
	for _, bound := range [][]int{hi, lo} {
		for _, zoneAware := range []bool{true, false} {
			ok := func(f func(int32) bool, i int32) bool { return !zoneAware || f(i) }
			pl.balance(
				func(i int32) bool { return pl.load[i] > bound[i] && ok(canGive, i) },
				func(i int32) bool { return pl.load[i] < bound[i] && ok(canTake, i) },
				pl.replicaEdges)
		}
	}
	// Members in range can still leave a zone's total off its share (all
	// of a big zone's members at their floor): move between zones, keeping
	// every member in range, until each zone total is within the floor and
	// ceiling of its share. Otherwise the next change pays for it.
	zt := func(i int32) int { return pl.zload[pl.zone[i]] }
	pl.balance(
		func(i int32) bool { return zt(i) > zhi[pl.zone[i]] && pl.load[i] > lo[i] },
		func(i int32) bool { return zt(i) < zhi[pl.zone[i]] && pl.load[i] < hi[i] },
		pl.replicaEdges)
	pl.balance(
		func(i int32) bool { return zt(i) > zlo[pl.zone[i]] && pl.load[i] > lo[i] },
		func(i int32) bool { return zt(i) < zlo[pl.zone[i]] && pl.load[i] < hi[i] },
		pl.replicaEdges)
}

// balance moves slots from sources to sinks until no source or no sink
// is left or no chain joins them: direct moves first, in passes over the
// partitions (cheap, and most of the work when a member joins or leaves),
// then chains through other members found by augment.
func (pl *planner) balance(isSrc, isSink func(int32) bool, edges edgeFunc) {
	for pl.directPass(isSrc, isSink, edges) {
	}
	for pl.augmentWhile(isSrc, isSink, edges) {
	}
}

// directPass visits every partition once and, where a source holds a slot
// that a sink may take, gives it to the neediest such sink. It reports
// whether it moved anything.
func (pl *planner) directPass(isSrc, isSink func(int32) bool, edges edgeFunc) bool {
	pl.sortCands()
	for i := range int32(pl.m) {
		pl.parent[i] = step{from: -1, p: -1, slot: -1}
		pl.inFront[i] = isSrc(i)
		pl.visited[i] = !isSink(i)
	}
	moved := false
	var p int32 // the partition being visited; one closure serves them all
	visit := func(slot, to int32) bool {
		from := pl.row(p)[slot]
		// A move changes zone totals, on which the flags of other
		// members may depend: check the two ends afresh.
		if !isSrc(from) || !isSink(to) {
			pl.inFront[from], pl.visited[from] = isSrc(from), !isSink(from)
			pl.inFront[to], pl.visited[to] = isSrc(to), !isSink(to)
			return true
		}
		pl.give(p, slot, to)
		pl.inFront[from], pl.visited[from] = isSrc(from), !isSink(from)
		pl.inFront[to], pl.visited[to] = isSrc(to), !isSink(to)
		moved = true
		return false // the row changed
	}
	for _, p = range pl.perm {
		edges(p, visit)
	}
	return moved
}

// sortCands orders the candidates neediest first (lowest exFn), ties by
// index.
func (pl *planner) sortCands() {
	for i := range pl.cands {
		pl.cands[i] = int32(i)
	}
	slices.SortStableFunc(pl.cands, func(a, b int32) int {
		ea, eb := pl.exFn(a), pl.exFn(b)
		switch {
		case ea < eb:
			return -1
		case ea > eb:
			return 1
		}
		return 0
	})
}

// augmentWhile runs one augmentation if some member needs one (a source
// above its bound in the first phase, a sink below in the second: the
// phase's violators) and reports whether it found a chain.
func (pl *planner) augmentWhile(isSrc, isSink func(int32) bool, edges edgeFunc) bool {
	anySrc, anySink := false, false
	for i := range int32(pl.m) {
		anySrc = anySrc || isSrc(i)
		anySink = anySink || isSink(i)
	}
	if !anySrc || !anySink {
		return false
	}
	return pl.augment(isSrc, isSink, edges)
}

// edgeFunc calls visit(slot, to) for every member to that may take slot
// of partition p from its current holder; visit returns false to stop.
type edgeFunc func(p int32, visit func(slot int32, to int32) bool)

// replicaEdges lists the valid single replica moves out of partition p: the
// owner in a slot replaced by a non-owner, keeping the zone bounds.
func (pl *planner) replicaEdges(p int32, visit func(slot, to int32) bool) {
	row := pl.row(p)
	for s, a := range row {
		if !pl.inFront[a] || pl.onPath(a, p) {
			continue
		}
		for _, b := range pl.cands {
			if pl.visited[b] || slices.Contains(row, b) {
				continue
			}
			if !pl.replaceOK(row, s, b) {
				continue
			}
			if !visit(int32(s), b) {
				return
			}
		}
	}
}

// onPath reports whether the chain that reached a already uses partition p.
func (pl *planner) onPath(a, p int32) bool {
	for pl.parent[a].p >= 0 {
		if pl.parent[a].p == p {
			return true
		}
		a = pl.parent[a].from
	}
	return false
}

// augment searches breadth first, from every source at once, for a
// shortest chain of edges ending at a sink, and applies it: the source
// loses a slot, the sink gains one, members in between swap one for
// another. Candidates are tried neediest first (lowest excess), so a
// direct move to the member furthest below its ideal is preferred.
func (pl *planner) augment(isSrc, isSink func(int32) bool, edges edgeFunc) bool {
	clear(pl.visited)
	clear(pl.inFront)
	pl.sortCands()
	var front []int32
	seen := 0
	for i := range int32(pl.m) {
		pl.parent[i] = step{from: -1, p: -1, slot: -1}
		if isSrc(i) {
			pl.visited[i], pl.inFront[i] = true, true
			front = append(front, i)
			seen++
		}
	}
	var next []int32
	found := int32(-1)
	var p int32 // the partition being visited; one closure serves them all
	visit := func(slot, to int32) bool {
		pl.visited[to] = true
		pl.parent[to] = step{from: pl.row(p)[slot], p: p, slot: slot}
		seen++
		if isSink(to) {
			found = to
			return false
		}
		next = append(next, to)
		return true
	}
	for len(front) > 0 && seen < pl.m {
		next = nil
		for _, p = range pl.perm {
			edges(p, visit)
			if found >= 0 {
				pl.apply(found)
				return true
			}
		}
		for _, a := range front {
			pl.inFront[a] = false
		}
		for _, b := range next {
			pl.inFront[b] = true
		}
		front = next
	}
	return false
}

// apply walks the chain ending at sink back to its source, giving each
// step's slot to its new holder.
func (pl *planner) apply(sink int32) {
	for b := sink; pl.parent[b].p >= 0; {
		st := pl.parent[b]
		pl.give(st.p, st.slot, b)
		b = st.from
	}
}

// give hands slot of partition p to member b. In the replica phase b is not
// an owner of p (a move); in the order phase it is (a swap of positions),
// and its old slot gets the previous holder.
func (pl *planner) give(p, slot, b int32) {
	row := pl.row(p)
	a := row[slot]
	if j := slices.Index(row, b); j >= 0 {
		row[j], row[slot] = a, b
		pl.posCount[a]--
		pl.posCount[b]++
		return
	}
	row[slot] = b
	pl.load[a]--
	pl.load[b]++
	pl.zload[pl.zone[a]]--
	pl.zload[pl.zone[b]]++
}

// order chooses the order of every partition's owners, one position at a
// time from the first: for position k, each partition picks one of its
// owners not placed before k, starting from the current order (prev's, with
// a replacement in the slot of the owner it replaced) and changing it along
// chains of swaps until every member's count at k is within the floor and
// ceiling of its ideal. For k = 0 (first primaries: who coordinates) the
// ideal is the member's weight share of Q; for later positions it is the
// member's remaining slots spread evenly over the remaining positions, so
// that a request with n below N also spreads evenly. The last position is
// what remains.
func (pl *planner) order() {
	pl.exFn = pl.posExcess
	lo, hi := make([]int, pl.m), make([]int, pl.m)
	for k := 0; k < pl.r-1; k++ {
		pl.k = k
		clear(pl.posCount)
		rem := make([]int, pl.m)
		for p := range int32(pl.q) {
			row := pl.row(p)
			pl.posCount[row[k]]++
			for _, o := range row[k:] {
				rem[o]++
			}
		}
		for i := range pl.m {
			if k == 0 {
				pl.posIdeal[i], lo[i], hi[i] = pl.sh.first[i], pl.sh.firstLo[i], pl.sh.firstHi[i]
				continue
			}
			left := pl.r - k
			pl.posIdeal[i] = float64(rem[i]) / float64(left)
			lo[i], hi[i] = rem[i]/left, (rem[i]+left-1)/left
		}
		pl.balancePositions(lo, hi)
		if k == 0 && pl.crossSwaps(lo, hi) {
			pl.balancePositions(lo, hi)
		}
	}
	pl.exFn = pl.excess
}

// balancePositions brings every member's count at the position being
// ordered within [lo, hi]: first down from above the ceilings, then up
// from below the floors.
func (pl *planner) balancePositions(lo, hi []int) {
	for _, bound := range [][]int{hi, lo} {
		pl.balance(
			func(i int32) bool { return pl.posCount[i] > bound[i] },
			func(i int32) bool { return pl.posCount[i] < bound[i] },
			pl.positionEdges)
	}
}

// positionEdges lists the swaps of partition p at position k: its owner
// there replaced by one of its owners after k.
func (pl *planner) positionEdges(p int32, visit func(slot, to int32) bool) {
	row := pl.row(p)
	if !pl.inFront[row[pl.k]] {
		return
	}
	for _, b := range row[pl.k+1:] {
		if !pl.visited[b] && !visit(int32(pl.k), b) {
			return
		}
	}
}

// crossSwaps fixes first-primary counts that no reordering can: when the
// partitions a member owns all have first primaries that cannot move
// elsewhere (small ideals, few partitions per member), it swaps two
// replicas between partitions. Member x below its range takes the first
// slot of a partition p from a member a above it, and a takes x's later
// slot in another partition q. Replica loads and zone totals stay as they
// are; two replicas move, which is why this runs only after reordering
// alone has failed. It reports whether it swapped anything.
func (pl *planner) crossSwaps(lo, hi []int) bool {
	swapped := false
	for {
		over := false
		for i := range pl.m {
			over = over || pl.posCount[i] > hi[i]
		}
		fixed := false
		for x := range int32(pl.m) {
			var srcOK func(a int32) bool
			switch {
			case pl.posCount[x] < lo[x]:
				srcOK = func(a int32) bool { return pl.posCount[a] > lo[a] }
			case over && pl.posCount[x] < hi[x]:
				srcOK = func(a int32) bool { return pl.posCount[a] > hi[a] }
			default:
				continue
			}
			if pl.crossSwap(x, srcOK) {
				fixed, swapped = true, true
				break
			}
		}
		if !fixed {
			return swapped
		}
	}
}

// crossSwap makes one cross swap for member x with a source srcOK accepts.
func (pl *planner) crossSwap(x int32, srcOK func(int32) bool) bool {
	for _, p := range pl.perm {
		row := pl.row(p)
		a := row[0]
		if !srcOK(a) || slices.Contains(row, x) || !pl.replaceOK(row, 0, x) {
			continue
		}
		for _, q := range pl.perm {
			rq := pl.row(q)
			j := slices.Index(rq, x)
			if j < 1 || slices.Contains(rq, a) || !pl.replaceOK(rq, j, a) {
				continue
			}
			row[0], rq[j] = x, a
			pl.posCount[a]--
			pl.posCount[x]++
			return true
		}
	}
	return false
}

// replaceOK reports whether row's owner in slot may be replaced by b (not
// an owner) within the zone bounds.
func (pl *planner) replaceOK(row []int32, slot int, b int32) bool {
	za, zb := pl.zone[row[slot]], pl.zone[b]
	return za == zb || (pl.zoneCount(row, zb) < pl.zhi[zb] && pl.zoneCount(row, za) > pl.zlo[za])
}
