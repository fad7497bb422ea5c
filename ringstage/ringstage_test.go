package ringstage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/httpapi"
	"github.com/quorumkv/quorumkv/ownership"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/ringstate"
)

// fakeHost is a ring state of six members in three zones (n1..n6, zone
// az((i-1)%3+1)) and a staged joiner n7 in az1; self is n1.
type fakeHost struct {
	snap    Snapshot
	merges  []ownership.Stage
	removed []string
	failRm  string
}

func newFakeHost(t *testing.T) *fakeHost {
	t.Helper()
	cfg := ring.Config{Mode: ring.ModeClaim, Partitions: 64, Replicas: 3}
	h := &fakeHost{snap: Snapshot{Self: "n1", Claim: true, Config: cfg, Records: map[string]Record{}}}
	for i := 1; i <= 6; i++ {
		id, zone := fmt.Sprintf("n%d", i), fmt.Sprintf("az%d", (i-1)%3+1)
		h.snap.Members = append(h.snap.Members, ring.Member{ID: ring.NodeID(id), Zone: zone})
		h.snap.Records[id] = Record{Zone: zone, Incarnation: uint64(i)}
	}
	h.snap.Records["n7"] = Record{Zone: "az1", Incarnation: 70, Staged: true}
	a, err := ring.Plan(cfg, nil, h.snap.Members)
	if err != nil {
		t.Fatal(err)
	}
	h.snap.Committed = a
	return h
}

func (h *fakeHost) Snapshot() Snapshot {
	s := h.snap
	s.Stage = h.snap.Stage.Clone()
	return s
}
func (h *fakeHost) MergeStage(e ownership.Stage) {
	h.merges = append(h.merges, e)
	h.snap.Stage.Merge(e)
}
func (h *fakeHost) Remove(id, by string) error {
	if id == h.failRm {
		return errors.New("seen alive 3s ago")
	}
	h.removed = append(h.removed, id+" by "+by)
	return nil
}

// Staging, planning, committing and clearing through a Stager: what each
// step plans, what it writes to the ring state, and what the members then
// do by themselves (SelfAction).
func TestStagerLifecycle(t *testing.T) {
	h := newFakeHost(t)
	s := Stager{H: h, Store: fakeScanner{3: {99}}, Ctx: context.Background()}
	p, err := s.RingPlan()
	if err != nil || len(p.Joins) != 1 || p.Joins[0].ID != "n7" || p.Joins[0].Zone != "az1" || p.Joins[0].By != "n7" || p.MovedReplicas == 0 ||
		p.Bytes != 100*int64(p.MovedReplicas) || p.BytesNote != "mean of 1 of the 1 partitions n1 holds: 100 bytes per replica" || p.Before.Members != 6 || p.After.Members != 7 || !p.After.ZoneGuarantee {
		t.Fatalf("plan of the staged joiner: %+v %v", p, err)
	}
	if SelfAction(snapOf(h, "n7")) != Nothing || Admitted(h.snap.Stage, "n7", h.snap.Records["n7"]) {
		t.Fatal("a staged joiner waits off the ring")
	}

	// Refused stagings write nothing.
	for _, tc := range []struct{ op, id, want string }{
		{"leave", "zz", `leave of "zz", which is not a member`},
		{"remove", "n7", `"n7" is staged twice (join and remove)`},
		{"remove", "n9", `remove of "n9", which is not a member`},
		{"join", "n1", `"n1" is not an agent waiting to join`},
		{"evict", "n1", `op "evict"`},
	} {
		if _, err := s.StageRing(tc.op, tc.id, "ops"); !errors.Is(err, ring.ErrInvalidChange) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s %s: %v, want %q", tc.op, tc.id, err, tc.want)
		}
	}
	if len(h.merges) != 0 {
		t.Fatalf("refused stagings wrote %v", h.merges)
	}

	if p, err = s.StageRing("leave", "n2", "ops"); err != nil || !slices.Equal(p.Leaves, []string{"n2"}) || len(p.Joins) != 1 || p.After.Members != 6 {
		t.Fatalf("stage leave: %+v %v", p, err)
	}
	if p, err = s.StageRing("remove", "n3", "ops"); err != nil || !slices.Equal(p.Removes, []string{"n3"}) || p.Rebuilt == 0 || p.After.Members != 5 {
		t.Fatalf("stage remove: %+v %v", p, err)
	}
	again, err := s.StageRing("leave", "n2", "ops")
	if err != nil || len(h.merges) != 2 || again.MovedReplicas != p.MovedReplicas {
		t.Fatalf("staging a leave twice: %d merges, %v", len(h.merges), err)
	}

	// A removal that fails stops the commit before anything else.
	h.failRm = "n3"
	if _, err := s.CommitRing("ops"); err == nil || !strings.Contains(err.Error(), "remove n3: seen alive 3s ago") {
		t.Fatalf("commit with a failing remove: %v", err)
	}
	if got := h.snap.Stage.Pending(); len(got.Leaves) != 1 || len(got.Removes) != 1 || Admitted(h.snap.Stage, "n7", h.snap.Records["n7"]) {
		t.Fatalf("a failed commit committed %+v", h.snap.Stage)
	}
	h.failRm = ""
	p, err = s.CommitRing("ops")
	if err != nil || !strings.HasPrefix(p.Status, "committed 1 join, 1 leave, 1 remove") || !slices.Equal(h.removed, []string{"n3 by ops"}) {
		t.Fatalf("commit: %+v %v, removed %v", p, err, h.removed)
	}
	if !h.snap.Stage.Pending().Empty() || !Admitted(h.snap.Stage, "n7", h.snap.Records["n7"]) {
		t.Fatalf("after the commit: stage %+v", h.snap.Stage)
	}
	if SelfAction(snapOf(h, "n7")) != Unstage || SelfAction(snapOf(h, "n2")) != Leave || SelfAction(snapOf(h, "n4")) != Nothing {
		t.Fatal("after the commit the joiner unstages itself, the leaver leaves, and nobody else acts")
	}
	if _, err := s.CommitRing("ops"); !errors.Is(err, httpapi.ErrNothingStaged) {
		t.Fatalf("a second commit: %v", err)
	}
}

// ring clear keeps staged joiners off the ring and forgets leaves; ring
// join stages a cleared joiner again; a commit of this node's own leave
// makes it leave.
func TestStagerClearAndOwnLeave(t *testing.T) {
	h := newFakeHost(t)
	s := Stager{H: h, Store: fakeScanner{}, Ctx: context.Background()}
	if _, err := s.StageRing("leave", "n1", "ops"); err != nil {
		t.Fatal(err)
	}
	p, err := s.ClearRing("ops")
	if err != nil || !strings.HasPrefix(p.Status, "cleared 1 join, 1 leave") {
		t.Fatalf("clear: %+v %v", p, err)
	}
	if p, err = s.RingPlan(); err != nil || len(p.Joins)+len(p.Leaves) != 0 || Admitted(h.snap.Stage, "n7", h.snap.Records["n7"]) {
		t.Fatalf("after clear: %+v %v", p, err)
	}
	if _, err := s.ClearRing("ops"); !errors.Is(err, httpapi.ErrNothingStaged) {
		t.Fatalf("clear of nothing: %v", err)
	}
	if p, err = s.StageRing("join", "n7", "ops"); err != nil || len(p.Joins) != 1 || p.Joins[0].By != "ops" {
		t.Fatalf("join staged again: %+v %v", p, err)
	}
	if _, err := s.StageRing("leave", "n1", "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CommitRing("ops"); err != nil || SelfAction(snapOf(h, "n1")) != Leave {
		t.Fatalf("commit of this node's leave: %v", err)
	}
	// A token ring stages nothing.
	h.snap.Claim = false
	if _, err := s.RingPlan(); !errors.Is(err, httpapi.ErrNoStaging) {
		t.Fatalf("token ring: %v", err)
	}
}

func snapOf(h *fakeHost, self string) Snapshot {
	s := h.Snapshot()
	s.Self = self
	return s
}

type fakeScanner map[uint32][]int // partition -> value sizes of its keys "k"

func (f fakeScanner) Partitions() ([]uint32, error) {
	var ps []uint32
	for p := range f {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	return ps, nil
}

func (f fakeScanner) Scan(p uint32, _, _ uint64, fn func(k ring.Key, val []byte) error) error {
	for _, n := range f[p] {
		if err := fn(ring.Key{Key: []byte("k")}, make([]byte, n)); err != nil {
			return err
		}
	}
	return nil
}

func TestEstimateBytes(t *testing.T) {
	sizes, note := EstimateBytes(context.Background(), fakeScanner{1: {9, 19}, 5: {29}}, 8, "n1")
	// (1+9 + 1+19) and (1+29): mean 30.
	if len(sizes) != 8 || sizes[0] != 30 || sizes[7] != 30 || note != "mean of 2 of the 2 partitions n1 holds: 30 bytes per replica" {
		t.Fatalf("%v %q", sizes, note)
	}
	big := fakeScanner{}
	for p := range uint32(100) {
		big[p] = []int{int(p)}
	}
	if _, note := EstimateBytes(context.Background(), big, 128, "n1"); !strings.HasPrefix(note, "mean of 16 of the 100 partitions") {
		t.Fatalf("sampled: %q", note)
	}
	if sizes, note := EstimateBytes(context.Background(), fakeScanner{}, 4, "n1"); sizes[3] != 0 || !strings.Contains(note, "holds no data") {
		t.Fatalf("empty: %v %q", sizes, note)
	}
}

// selfHost records what Self asks of it; its actions block until release.
type selfHost struct {
	calls   chan string
	release chan struct{}
}

func (h *selfHost) Unstage()         { h.calls <- "unstage"; <-h.release }
func (h *selfHost) LeaveRing() error { h.calls <- "leave"; <-h.release; return nil }

// Self.Check acts on this member's own record and entry only, once at a
// time: an admitted staged joiner unstages, a committed leaver leaves,
// anyone else does nothing.
func TestSelfCheck(t *testing.T) {
	h := &selfHost{calls: make(chan string, 4), release: make(chan struct{})}
	var s Self
	run := func(f func()) { go f() }
	st := ringstate.State{Members: map[string]ringstate.MemberRecord{
		"j": {ID: "j", Incarnation: 7, Staged: true}, "l": {ID: "l", Incarnation: 1}, "x": {ID: "x", Incarnation: 2, Staged: true}}}
	st.Stage = ownership.Stage{
		"j": {Kind: ownership.StageJoin, State: ownership.StateCommitted, Inc: 7, Seq: 2},
		"l": {Kind: ownership.StageLeave, State: ownership.StateCommitted, Seq: 1},
	}
	s.Check("x", st, h, run, nil) // staged, not admitted: nothing
	s.Check("j", st, h, run, nil)
	s.Check("j", st, h, run, nil) // busy: not twice
	if got := <-h.calls; got != "unstage" {
		t.Fatalf("admitted joiner: %s", got)
	}
	h.release <- struct{}{}
	var l Self
	l.Check("l", st, h, run, nil)
	if got := <-h.calls; got != "leave" {
		t.Fatalf("committed leaver: %s", got)
	}
	h.release <- struct{}{}
	select {
	case got := <-h.calls:
		t.Fatalf("unexpected action %s", got)
	default:
	}
}

// A leave needs the leaving member itself: staging one of a member that is
// down is refused, pointing at ring remove; a member that went down after
// its leave was staged makes plan warn and commit refuse, and ring remove
// is staged and committed instead.
func TestLeaveOfDownMember(t *testing.T) {
	h := newFakeHost(t)
	s := Stager{H: h, Store: fakeScanner{3: {99}}, Ctx: context.Background()}
	h.snap.Live = []string{"n1", "n2", "n4", "n5", "n6"} // n3 down
	_, err := s.StageRing("leave", "n3", "admin")
	if !errors.Is(err, ring.ErrInvalidChange) || !strings.Contains(err.Error(), "n3 is down") || !strings.Contains(err.Error(), "quorumkv ring remove n3") {
		t.Fatalf("leave of a down member: %v", err)
	}
	if len(h.merges) != 0 {
		t.Fatalf("a refused leave was staged: %v", h.merges)
	}
	if _, err := s.StageRing("leave", "n2", "admin"); err != nil {
		t.Fatalf("leave of a live member: %v", err)
	}
	h.snap.Live = []string{"n1", "n4", "n5", "n6"} // n2 goes down too
	p, err := s.RingPlan()
	if err != nil || len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "quorumkv ring remove n2") {
		t.Fatalf("plan with a staged leave of a down member: %+v, %v", p.Warnings, err)
	}
	merges := len(h.merges)
	if _, err := s.CommitRing("admin"); !errors.Is(err, ring.ErrInvalidChange) || !strings.Contains(err.Error(), "nothing committed: n2 is down") {
		t.Fatalf("commit with a staged leave of a down member: %v", err)
	}
	if len(h.merges) != merges || len(h.removed) != 0 {
		t.Fatalf("a refused commit changed the stage: %v, removed %v", h.merges[merges:], h.removed)
	}
	if _, err := s.ClearRing("admin"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StageRing("remove", "n2", "admin"); err != nil {
		t.Fatalf("remove of a down member: %v", err)
	}
	if _, err := s.CommitRing("admin"); err != nil || !slices.Equal(h.removed, []string{"n2 by admin"}) {
		t.Fatalf("commit of the remove: %v, removed %v", err, h.removed)
	}
}

// A commit that names a plan's version applies that plan or nothing: a
// change staged or cleared by someone else after the plan was shown, or a
// ring that moved, makes the version stale and the commit is refused
// without writing anything (Riak's cluster plan/commit).
func TestCommitPlanRefusesAStalePlan(t *testing.T) {
	h := newFakeHost(t)
	s := Stager{H: h, Store: fakeScanner{}, Ctx: context.Background()}
	seen, err := s.StageRing("leave", "n2", "alice")
	if err != nil || !httpapi.ValidPlanVersion(seen.Version) {
		t.Fatalf("stage: version %q, %v", seen.Version, err)
	}
	if p, err := s.RingPlan(); err != nil || p.Version != seen.Version {
		t.Fatalf("the same staged state planned again: version %q, want %q (%v)", p.Version, seen.Version, err)
	}
	// bob stages a remove meanwhile: alice's version no longer describes
	// what is staged.
	if _, err := s.StageRing("remove", "n3", "bob"); err != nil {
		t.Fatal(err)
	}
	merges := len(h.merges)
	if _, err := s.CommitPlan(seen.Version, "alice"); !errors.Is(err, httpapi.ErrStalePlan) || !strings.Contains(err.Error(), "nothing committed") {
		t.Fatalf("commit of a stale plan: %v", err)
	}
	if len(h.merges) != merges || len(h.removed) != 0 || Admitted(h.snap.Stage, "n7", h.snap.Records["n7"]) {
		t.Fatalf("a refused commit wrote: merges %v, removed %v", h.merges[merges:], h.removed)
	}
	now, err := s.RingPlan()
	if err != nil || now.Version == seen.Version {
		t.Fatalf("plan after bob's remove: version %q (was %q), %v", now.Version, seen.Version, err)
	}

	// The ring moves (a member's zone, here) under an unchanged stage:
	// stale too.
	moved := *h
	moved.snap.Members = slices.Clone(h.snap.Members)
	moved.snap.Members[5].Zone = "az9"
	if p, err := (Stager{H: &moved, Store: fakeScanner{}, Ctx: context.Background()}).RingPlan(); err != nil || p.Version == now.Version {
		t.Fatalf("plan on a moved ring: version %q, %v", p.Version, err)
	}
	// The order members are listed in does not matter: any node that sees
	// the same state gives the same version.
	moved.snap.Members = slices.Clone(h.snap.Members)
	slices.Reverse(moved.snap.Members)
	if p, err := (Stager{H: &moved, Store: fakeScanner{}, Ctx: context.Background()}).RingPlan(); err != nil || p.Version != now.Version {
		t.Fatalf("plan with members listed in another order: version %q, want %q (%v)", p.Version, now.Version, err)
	}

	p, err := s.CommitPlan(now.Version, "alice")
	if err != nil || !strings.HasPrefix(p.Status, "committed 1 join, 1 leave, 1 remove") || !slices.Equal(h.removed, []string{"n3 by alice"}) {
		t.Fatalf("commit of the current plan: %+v %v", p, err)
	}
	if _, err := s.CommitPlan(now.Version, "alice"); !errors.Is(err, httpapi.ErrNothingStaged) {
		t.Fatalf("the same commit again: %v", err)
	}
}
