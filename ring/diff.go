package ring

import (
	"fmt"
	"slices"
)

// Move is the change of one partition's primary set between two rings: what
// ownership handoff has to act on.
type Move struct {
	// Partition is the partition whose primaries changed.
	Partition uint32
	// Gained are the members that become primaries, in the new ring's
	// preference order; each must receive the partition's data.
	Gained []NodeID
	// Lost are the members that stop being primaries, in the old ring's
	// preference order; each may drop the data once handoff is done.
	Lost []NodeID
}

// Diff returns, in ascending partition order, the partitions whose set of
// primaries for replication factor n differs between before and after, with
// who gains and who loses a replica. A change of order within the primaries
// is not a move. A nil ring counts as a ring with no members, so
// Diff(nil, r, n) lists every initial assignment of r.
//
// Both rings must have the same number of partitions: Q is fixed at cluster
// birth, so a mismatch is a programming error and Diff panics.
func Diff(before, after *Ring, n int) []Move {
	if before == nil && after == nil {
		return nil
	}
	q := 0
	switch {
	case before == nil:
		q = after.Partitions()
	case after == nil:
		q = before.Partitions()
	case before.Partitions() != after.Partitions():
		panic(fmt.Sprintf("ring: Diff of rings with %d and %d partitions", before.Partitions(), after.Partitions()))
	default:
		q = before.Partitions()
	}
	var moves []Move
	for p := range uint32(q) {
		var old, cur []NodeID
		if before != nil {
			old = before.Primaries(p, n)
		}
		if after != nil {
			cur = after.Primaries(p, n)
		}
		var gained, lost []NodeID
		for _, id := range cur {
			if !slices.Contains(old, id) {
				gained = append(gained, id)
			}
		}
		for _, id := range old {
			if !slices.Contains(cur, id) {
				lost = append(lost, id)
			}
		}
		if gained != nil || lost != nil {
			moves = append(moves, Move{Partition: p, Gained: gained, Lost: lost})
		}
	}
	return moves
}
