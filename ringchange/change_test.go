package ringchange

import (
	"slices"
	"testing"

	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
)

// fakeState is a State of fixed members with no assignment yet.
type fakeState struct {
	members  []ring.Member
	assign   []byte
	progress map[string]ownership.Progress
	r        *ring.Ring
	live     []string
}

func (s *fakeState) Config() ring.Config {
	c := ring.DefaultConfig()
	c.Partitions = 64
	return c
}
func (s *fakeState) Members() []ring.Member                  { return s.members }
func (s *fakeState) Live() []string                          { return s.live }
func (s *fakeState) Source(ring.NodeID) ownership.Source     { return ownership.SourceUp }
func (s *fakeState) Assign() []byte                          { return s.assign }
func (s *fakeState) SetAssign(b []byte)                      { s.assign = b }
func (s *fakeState) Progress() map[string]ownership.Progress { return s.progress }
func (s *fakeState) SetOwnProgress(p ownership.Progress) {
	if s.progress == nil {
		s.progress = map[string]ownership.Progress{}
	}
	s.progress["n4"] = p
}
func (s *fakeState) MayFound() bool       { return false }
func (s *fakeState) Ring() *ring.Ring     { return s.r }
func (s *fakeState) Install(r *ring.Ring) { s.r = r }

// A node that knows members from gossip but not yet its cluster's
// assignment routes with a ring of itself alone: a ring planned from the
// members it knows would name owners nobody else uses.
func TestProvisionalRingIsSelfAlone(t *testing.T) {
	st := &fakeState{members: []ring.Member{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}, {ID: "n4"}}}
	c := New("n4", nil)
	if err := c.RebuildLocked(st); err != nil {
		t.Fatal(err)
	}
	if st.r == nil {
		t.Fatal("no provisional ring installed")
	}
	if st.r.Len() != 1 || !st.r.Has("n4") {
		t.Fatalf("provisional ring of %d members, want n4 alone", st.r.Len())
	}
	if st.assign != nil {
		t.Fatalf("a node that may not found its cluster's assignment made one")
	}
}

// joining returns node n4's Change and state, rebuilt, on a committed ring
// of n1..n3 whose target adds n4; live lists the live members.
func joining(t *testing.T, live ...string) (*Change, *fakeState, *ring.Assignment) {
	t.Helper()
	three := []ring.Member{{ID: "n1"}, {ID: "n2"}, {ID: "n3"}}
	st := &fakeState{members: append(slices.Clone(three), ring.Member{ID: "n4"}), live: live}
	a, err := ring.Plan(st.Config(), nil, three)
	if err != nil {
		t.Fatal(err)
	}
	st.assign = a.Encode()
	c := New("n4", nil)
	if err := c.RebuildLocked(st); err != nil {
		t.Fatal(err)
	}
	if c.Target() == nil {
		t.Fatal("no target")
	}
	return c, st, a
}

// A commit learnt from gossip (a merged state carrying the newer
// assignment, before the progress that lets this node commit by itself)
// keeps the previous owners in the writes' joint quorums, as a commit made
// here does, until every live member routes with it.
func TestCommitLearntFromGossipKeepsPrevious(t *testing.T) {
	c, st, _ := joining(t, "n1", "n2", "n3", "n4")
	old, target := st.r, c.Target()
	if target == nil || c.prev.Load() != nil {
		t.Fatalf("before the commit: target %v, prev %v", target, c.prev.Load())
	}
	st.assign = target.Assignment().Encode() // another member committed it
	if err := c.RebuildLocked(st); err != nil {
		t.Fatal(err)
	}
	if !st.r.Equal(target) {
		t.Fatal("the gossiped commit was not installed")
	}
	for p := range uint32(old.Partitions()) {
		sets := c.JointOwners(st.r, p, 3)
		if len(sets) != 1 || !slices.Equal(sets[0], old.Primaries(p, 3)) {
			t.Fatalf("partition %d: joint owners %v after a gossiped commit, want the previous owners %v", p, sets, old.Primaries(p, 3))
		}
	}
	if !st.progress["n4"].WritesPrev {
		t.Fatalf("progress does not say writes still reach the previous owners: %+v", st.progress["n4"])
	}
}

// The last live member to learn a commit (every other one already reports
// it) stops writing the previous owners in the rebuild that installs it:
// nothing else may arrive to close its window (the 2-node e2e cluster
// kept it open), and its own record then says so at once. A dead member
// that never reported the commit does not hold it open.
func TestLastToLearnCommitClosesWindow(t *testing.T) {
	c, st, a := joining(t, "n1", "n2", "n4")
	st.assign = c.Target().Assignment().Encode()
	cid := ownership.IDOfEncoded(st.assign)
	st.progress["n1"] = ownership.Progress{Seq: 3, Committed: cid, WritesPrev: true}
	st.progress["n2"] = ownership.Progress{Seq: 3, Committed: ownership.IDOf(a)} // has not learnt it
	if err := c.RebuildLocked(st); err != nil {
		t.Fatal(err)
	}
	if c.prev.Load() == nil || !st.progress["n4"].WritesPrev {
		t.Fatalf("n2 does not report the commit yet, the window closed: prev %v, progress %+v", c.prev.Load(), st.progress["n4"])
	}
	st.progress["n2"] = ownership.Progress{Seq: 4, Committed: cid, WritesPrev: true}
	if err := c.RebuildLocked(st); err != nil {
		t.Fatal(err)
	}
	if c.prev.Load() != nil || len(c.JointOwners(st.r, 0, 3)) != 0 {
		t.Fatalf("every live member reports the commit, writes still reach previous owners: %v", c.JointOwners(st.r, 0, 3))
	}
	if p := st.progress["n4"]; p.Committed != cid || p.WritesPrev {
		t.Fatalf("own progress %+v, want the commit %v and no writes to the previous owners", p, cid)
	}
	if !ownership.Settled([]string{"n1", "n2", "n4"}, cid, map[string]ownership.Progress{"n1": {Committed: cid}, "n2": {Committed: cid}, "n4": st.progress["n4"]}) {
		t.Fatal("not settled once the others stopped writing the previous owners")
	}
}

// The last to learn, in one rebuild: its peers' records arrived first.
func TestLastToLearnInOneRebuild(t *testing.T) {
	c, st, _ := joining(t, "n1", "n4")
	st.assign = c.Target().Assignment().Encode()
	cid := ownership.IDOfEncoded(st.assign)
	st.progress["n1"] = ownership.Progress{Seq: 3, Committed: cid, WritesPrev: true}
	if err := c.RebuildLocked(st); err != nil {
		t.Fatal(err)
	}
	if c.prev.Load() != nil || st.progress["n4"].WritesPrev {
		t.Fatalf("the only other live member reports the commit, the window stays open: progress %+v", st.progress["n4"])
	}
}
