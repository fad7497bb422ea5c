package quorum

import (
	"fmt"
	"slices"

	"github.com/quorumkv/quorumkv/ring"
)

// JointTracker counts, for a write made while the cluster moves partitions
// (package ownership), the acknowledgements of the owners of each other
// assignment in use: the target, and the previous commit until every
// member routes with the current one. The write succeeds only when W
// replicas of each set (at most the set's size) acknowledged it, besides
// the WriteTracker's W among the current owners: a read at R from any of
// these sets then meets it, whichever assignment its coordinator reads
// with (joint quorums). Pure and not safe for concurrent use.
type JointTracker struct {
	sets []jointSet
}

type jointSet struct {
	owners      []ring.NodeID
	need        int
	acks        int
	outstanding int
}

// NewJointTracker returns a tracker of w acknowledgements in each of sets.
func NewJointTracker(w int, sets [][]ring.NodeID) *JointTracker {
	t := &JointTracker{}
	for _, s := range sets {
		if len(s) > 0 {
			t.sets = append(t.sets, jointSet{owners: s, need: min(w, len(s))})
		}
	}
	return t
}

// Add records that the write was sent to replica id (as itself, not as a
// fallback standing in for another).
func (t *JointTracker) Add(id ring.NodeID) {
	for i := range t.sets {
		if slices.Contains(t.sets[i].owners, id) {
			t.sets[i].outstanding++
		}
	}
}

// Record counts replica id's answer.
func (t *JointTracker) Record(id ring.NodeID, err error) {
	for i := range t.sets {
		s := &t.sets[i]
		if !slices.Contains(s.owners, id) {
			continue
		}
		s.outstanding--
		if err == nil {
			s.acks++
		}
	}
}

// Decision is Succeeded when every set has its acknowledgements, Failed
// when one can no longer get them, else Pending.
func (t *JointTracker) Decision() Decision {
	d := Succeeded
	for _, s := range t.sets {
		switch {
		case s.acks >= s.need:
		case s.acks+s.outstanding < s.need:
			return Failed
		default:
			d = Pending
		}
	}
	return d
}

// Err explains a Failed decision.
func (t *JointTracker) Err(op string) error {
	for _, s := range t.sets {
		if s.acks < s.need {
			return &QuorumError{Op: op, Required: s.need, Acks: s.acks, Targets: len(s.owners),
				Errs: []error{fmt.Errorf("during a ring change a write must also reach %d of the owners %v; %d acknowledged", s.need, s.owners, s.acks)}}
		}
	}
	return nil
}
