// Package ownership decides the steps of a ring change with pending
// owners, for a cluster placed by an agreed ring.Assignment (ModeClaim).
//
// A cluster routes reads with its committed assignment. When the member set
// changes, every node plans the same target (ring.Plan of the committed one
// and the new members): a member that gains a partition in the target is
// its pending owner. Writes go to the committed owners, counted toward W,
// and to the pending ones; during the change a write must reach W of the
// target's owners too (joint quorums). Once every live node routes with the
// target, each pending owner pulls its partitions from their committed
// owners and says so (Progress.Ready). When every pending owner is ready,
// every node commits the target by itself (CanCommit is a function of the
// gossiped progress, so they agree), and an old owner drops a partition
// only once every live node reports the new commit (AllReport).
//
// The package is pure: it decides from values; the node gossips Progress,
// runs the transfers and keeps the clock.
package ownership

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/quorumkv/quorumkv/ring"
)

// ID names one assignment: its version and the checksum that ends its
// encoding, so two assignments planned concurrently from the same one
// (same version, other contents) have different IDs. The zero ID is "none".
type ID struct {
	Version uint64 `msgpack:"v"`
	Sum     uint64 `msgpack:"h"`
}

// IDOf returns the ID of a, or the zero ID for nil.
func IDOf(a *ring.Assignment) ID {
	if a == nil {
		return ID{}
	}
	return IDOfEncoded(a.Encode())
}

// IDOfEncoded returns the ID of an encoded assignment without decoding it
// whole: the version after the format byte and the checksum at the end. It
// returns the zero ID for bytes too short to hold them.
func IDOfEncoded(b []byte) ID {
	if len(b) < 10 {
		return ID{}
	}
	v, n := binary.Uvarint(b[1:])
	if n <= 0 {
		return ID{}
	}
	return ID{Version: v, Sum: binary.BigEndian.Uint64(b[len(b)-8:])}
}

// IsZero reports whether id names no assignment.
func (id ID) IsZero() bool { return id == ID{} }

// String is "v<version>/<sum in hex>".
func (id ID) String() string { return fmt.Sprintf("v%d/%016x", id.Version, id.Sum) }

// Newer reports whether the encoded assignment a should replace b in the
// cluster state: a higher version wins, and at equal versions the larger
// checksum (then the larger encoding), so every node settles on the same
// one. Empty bytes lose to anything.
func Newer(a, b []byte) bool {
	ia, ib := IDOfEncoded(a), IDOfEncoded(b)
	switch {
	case ia.Version != ib.Version:
		return ia.Version > ib.Version
	case ia.Sum != ib.Sum:
		return ia.Sum > ib.Sum
	}
	return len(a) > len(b)
}

// Progress is what one member publishes about the ring change in course:
// a last-writer-wins register that only the member itself changes, ordered
// by Seq.
type Progress struct {
	// Seq orders the member's progress records.
	Seq uint64 `msgpack:"s"`
	// Committed is the assignment the member routes reads with.
	Committed ID `msgpack:"c"`
	// Target is the assignment the member moves to (zero: none): it sends
	// writes to Target's pending owners too.
	Target ID `msgpack:"t"`
	// Ready says the member holds every partition it gains in Target.
	Ready bool `msgpack:"r,omitempty"`
	// Done and Total count the partitions it gains in Target and how many
	// of them it has received.
	Done  int `msgpack:"d,omitempty"`
	Total int `msgpack:"n,omitempty"`
	// WritesPrev says the member still sends writes to the owners of the
	// commit before Committed (it has not seen every live member report
	// Committed yet): an old owner drops a partition it lost only once no
	// live member does, so no write it acknowledged lands after the drop.
	// Absent from older members' records, whose writes never went there.
	WritesPrev bool `msgpack:"w,omitempty"`
}

// After reports whether p should replace q (Seq, then the other fields,
// so that the order is total and merges converge).
func (p Progress) After(q Progress) bool {
	if p.Seq != q.Seq {
		return p.Seq > q.Seq
	}
	a := []uint64{p.Committed.Version, p.Committed.Sum, p.Target.Version, p.Target.Sum, b2u(p.Ready), uint64(p.Done), uint64(p.Total), b2u(p.WritesPrev)}
	b := []uint64{q.Committed.Version, q.Committed.Sum, q.Target.Version, q.Target.Sum, b2u(q.Ready), uint64(q.Done), uint64(q.Total), b2u(q.WritesPrev)}
	return slices.Compare(a, b) > 0
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// Gains returns, ascending, the partitions where id gains an owner slot
// among moves (ring.Diff of the committed and the target ring).
func Gains(moves []ring.Move, id ring.NodeID) []uint32 {
	var out []uint32
	for _, m := range moves {
		if slices.Contains(m.Gained, id) {
			out = append(out, m.Partition)
		}
	}
	return out
}

// Gainers returns the members that gain a partition among moves, sorted.
func Gainers(moves []ring.Move) []ring.NodeID {
	var out []ring.NodeID
	for _, m := range moves {
		for _, id := range m.Gained {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
	}
	slices.Sort(out)
	return out
}

// CanCommit reports whether target may become the committed assignment:
// every member that gains a partition in moves reports Ready for target,
// or some member already reports target committed (it saw them ready; a
// member's ready record may be overtaken by its next one before everyone
// saw it). With no gains (a change of order only, or of members owning
// nothing) it is true at once.
func CanCommit(moves []ring.Move, target ID, progress map[string]Progress) bool {
	if target.IsZero() {
		return false
	}
	for _, p := range progress {
		if p.Committed == target {
			return true
		}
	}
	for _, id := range Gainers(moves) {
		p, ok := progress[string(id)]
		if !ok || p.Target != target || !p.Ready {
			return false
		}
	}
	return true
}

// Settled reports whether every member in live routes reads with the
// committed assignment and none still writes the previous one's owners:
// an old owner may then drop the partitions it lost.
func Settled(live []string, committed ID, progress map[string]Progress) bool {
	return AllReport(live, progress, func(p Progress) bool { return p.Committed == committed && !p.WritesPrev })
}

// AllReport reports whether every member in live has a progress record
// for which ok holds (live members without a record do not).
func AllReport(live []string, progress map[string]Progress, ok func(Progress) bool) bool {
	for _, id := range live {
		p, found := progress[id]
		if !found || !ok(p) {
			return false
		}
	}
	return true
}

// Source is how a pending owner may use one committed owner of a
// partition as the source of its copy.
type Source int

// Source states.
const (
	// SourceUp: alive; the pending owner must pull from it.
	SourceUp Source = iota + 1
	// SourceGone: off the ring (left or removed) and not alive; its copy
	// is lost and the partition is rebuilt from the others.
	SourceGone
	// SourceDown: on the ring but not alive; it may hold acknowledged
	// writes no other owner has, so the transfer waits for it (or for its
	// removal).
	SourceDown
)

// Sources returns the committed owners of a partition that a pending
// owner self must pull from, in order; blocked is true when one of them is
// down but still on the ring, so the partition cannot be completed yet.
func Sources(owners []ring.NodeID, self ring.NodeID, state func(ring.NodeID) Source) (pull []ring.NodeID, blocked bool) {
	for _, id := range owners {
		if id == self {
			continue
		}
		switch state(id) {
		case SourceUp:
			pull = append(pull, id)
		case SourceDown:
			blocked = true
		}
	}
	return pull, blocked
}
