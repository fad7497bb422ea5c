package quorum

import (
	"errors"
	"slices"
	"testing"

	"github.com/quorumkv/quorumkv/ring"
)

// In the tables below members are named by their place in the key's
// preference list: 0 is the first primary, and at replication factor n the
// members n, n+1, ... are the fallbacks, nearest first.

// tgt is a target: member i, standing in for member hintFor (-1: none).
type tgt struct{ node, hintFor int }

func targetsOf(pref []ring.NodeID, ts []tgt) []ring.Target {
	var out []ring.Target
	for _, t := range ts {
		rt := ring.Target{Node: pref[t.node]}
		if t.hintFor >= 0 {
			rt.HintFor = pref[t.hintFor]
		}
		out = append(out, rt)
	}
	return out
}

func idsOf(pref []ring.NodeID, is []int) []ring.NodeID {
	var out []ring.NodeID
	for _, i := range is {
		out = append(out, pref[i])
	}
	return out
}

// aliveExcept says every member is alive but the dead ones.
func aliveExcept(pref []ring.NodeID, dead ...int) func(ring.NodeID) bool {
	ids := idsOf(pref, dead)
	return func(id ring.NodeID) bool { return !slices.Contains(ids, id) }
}

// shape is a cluster as a write plan sees it: its members, self (by its
// place in the preference list; -1 for a node off the ring), the dead
// members and the request's resolved params.
type shape struct {
	members, self int
	dead          []int
	p             Params
}

// plan plans a write of key "k" in shape s; it returns the preference list
// too.
func (s shape) plan(t testing.TB) (writePlan, []ring.NodeID) {
	t.Helper()
	r, pref := testRing(t, s.members)
	self := ring.NodeID("off-the-ring")
	if s.self >= 0 {
		self = pref[s.self]
	}
	return planWrite(r, aliveExcept(pref, s.dead...), self, "put", ring.Key{Key: []byte("k")}, s.p, nil), pref
}

// Dynamo §4.6 (sloppy quorum and hinted handoff): the targets of a write are
// the live primaries and, for each dead one, the next live member with a hint
// naming it; a primary nobody stands in for gets a hint of last resort at the
// coordinator; the coordinator must be a target; an impossible quorum is
// refused before anything is written.
func TestPlanWrite(t *testing.T) {
	type want struct {
		targets    []tgt
		local      int // -1: forwarded
		lastResort []int
		refused    bool
	}
	for _, tc := range []struct {
		name string
		shape
		want want
	}{
		{"all alive, first primary coordinates", shape{5, 0, nil, Params{N: 3, W: 2}},
			want{targets: []tgt{{0, -1}, {1, -1}, {2, -1}}, local: 0}},
		{"all alive, a later primary coordinates", shape{5, 2, nil, Params{N: 3, W: 2}},
			want{targets: []tgt{{0, -1}, {1, -1}, {2, -1}}, local: 2}},
		{"n=1", shape{3, 0, nil, Params{N: 1, W: 1}},
			want{targets: []tgt{{0, -1}}, local: 0}},
		{"a dead primary gets the first fallback", shape{5, 0, []int{1}, Params{N: 3, W: 3}},
			want{targets: []tgt{{0, -1}, {2, -1}, {3, 1}}, local: 0}},
		{"dead primaries get fallbacks in order, skipping dead spares", shape{6, 2, []int{0, 1, 3}, Params{N: 3, W: 3}},
			want{targets: []tgt{{2, -1}, {4, 0}, {5, 1}}, local: 0}},
		{"self counts as alive whatever gossip says", shape{3, 0, []int{0}, Params{N: 3, W: 3}},
			want{targets: []tgt{{0, -1}, {1, -1}, {2, -1}}, local: 0}},
		{"n = ring size: a dead primary has no fallback and gets a hint of last resort", shape{3, 0, []int{2}, Params{N: 3, W: 2}},
			want{targets: []tgt{{0, -1}, {1, -1}}, local: 0, lastResort: []int{2}}},
		{"n = ring size, w unreachable: refused", shape{3, 1, []int{2}, Params{N: 3, W: 3}},
			want{targets: []tgt{{0, -1}, {1, -1}}, local: 1, lastResort: []int{2}, refused: true}},
		{"fallbacks run out: the later dead primary gets a hint of last resort", shape{4, 2, []int{0, 1}, Params{N: 3, W: 2}},
			want{targets: []tgt{{2, -1}, {3, 0}}, local: 0, lastResort: []int{1}}},
		{"pw counts primaries only", shape{5, 0, []int{1}, Params{N: 3, W: 3, PW: 3}},
			want{targets: []tgt{{0, -1}, {2, -1}, {3, 1}}, local: 0, refused: true}},
		{"pw met", shape{5, 0, []int{1}, Params{N: 3, W: 3, PW: 2}},
			want{targets: []tgt{{0, -1}, {2, -1}, {3, 1}}, local: 0}},
		{"dw does not refuse up front", shape{3, 0, nil, Params{N: 3, W: 3, DW: 3}},
			want{targets: []tgt{{0, -1}, {1, -1}, {2, -1}}, local: 0}},
		{"self is a fallback for a dead primary", shape{4, 3, []int{0}, Params{N: 3, W: 2}},
			want{targets: []tgt{{1, -1}, {2, -1}, {3, 0}}, local: 2}},
		{"self is not a target: forwarded", shape{5, 4, nil, Params{N: 3, W: 2}},
			want{targets: []tgt{{0, -1}, {1, -1}, {2, -1}}, local: -1}},
		{"self is a spare but not needed: forwarded", shape{6, 5, []int{0, 1}, Params{N: 3, W: 3}},
			want{targets: []tgt{{2, -1}, {3, 0}, {4, 1}}, local: -1}},
		{"self is a spare and needed: coordinates as a fallback", shape{5, 4, []int{0, 1}, Params{N: 3, W: 3}},
			want{targets: []tgt{{2, -1}, {3, 0}, {4, 1}}, local: 2}},
		// A node off the ring (joining, or removed) forwards even a write
		// that cannot meet its quorum: the coordinator judges.
		{"self off the ring: forwarded, not refused", shape{3, -1, []int{1, 2}, Params{N: 3, W: 3}},
			want{targets: []tgt{{0, -1}}, local: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, pref := tc.plan(t)
			self := pl.self
			if got, want := pl.targets, targetsOf(pref, tc.want.targets); !slices.Equal(got, want) {
				t.Errorf("targets %v, want %v", got, want)
			}
			if pl.local != tc.want.local || pl.forwarded() != (tc.want.local < 0) {
				t.Errorf("local %d (forwarded %v), want %d", pl.local, pl.forwarded(), tc.want.local)
			}
			if got, want := pl.lastResort, idsOf(pref, tc.want.lastResort); !slices.Equal(got, want) {
				t.Errorf("hints of last resort %v, want %v", got, want)
			}
			if (pl.refused != nil) != tc.want.refused {
				t.Fatalf("refused = %v, want refused %v", pl.refused, tc.want.refused)
			}
			if pl.refused != nil {
				var qe *QuorumError
				if !errors.As(pl.refused, &qe) || !errors.Is(pl.refused, ErrQuorumNotMet) {
					t.Fatalf("refusal %T %v is not a QuorumError", pl.refused, pl.refused)
				}
				if qe.Op != "put" || qe.Required != tc.p.W || qe.RequiredPrimary != tc.p.PW || qe.RequiredDurable != tc.p.DW ||
					qe.Targets != len(pl.targets) || qe.Acks != 0 {
					t.Errorf("refusal counts %+v for params %+v and %d targets", qe, tc.p, len(pl.targets))
				}
			}
			if !pl.forwarded() && pl.coordinator().Node != self {
				t.Errorf("coordinator %v, want %s", pl.coordinator(), self)
			}
		})
	}
}

// A fallback coordinator that cannot keep the write hands it to the other
// targets; a primary coordinator that cannot has failed.
func TestPlanWriteForwardOnLocalFailure(t *testing.T) {
	for _, tc := range []struct {
		name string
		shape
		want []tgt
	}{
		{"primary coordinator", shape{4, 1, []int{0}, Params{N: 3, W: 2}}, nil},
		{"fallback coordinator", shape{4, 3, []int{0}, Params{N: 3, W: 2}}, []tgt{{1, -1}, {2, -1}}},
		{"fallback coordinator alone", shape{4, 3, []int{0, 1, 2}, Params{N: 3, W: 1}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, pref := tc.plan(t)
			if got, want := pl.forwardOnLocalFailure(), targetsOf(pref, tc.want); !slices.Equal(got, want) {
				t.Errorf("forward to %v, want %v", got, want)
			}
		})
	}
}

// Dynamo §4.6: when a target fails, the next live member that holds no copy
// of the write yet stands in for the primary the failed target stood for; when
// none is left (or the request has no time left), the coordinator keeps a hint
// for that primary itself.
func TestPlanWriteOnFailure(t *testing.T) {
	type step struct {
		failed   tgt
		replace  bool
		dead     []int // dead at the time of the failure
		fallback tgt   // node -1: none
		hintFor  int   // -1: none
	}
	none := tgt{-1, -1}
	for _, tc := range []struct {
		name  string
		shape // dead at plan time
		steps []step
	}{
		{"spares in order, then a hint", shape{5, 0, nil, Params{N: 3, W: 2}}, []step{
			{failed: tgt{1, -1}, replace: true, fallback: tgt{3, 1}, hintFor: -1},
			{failed: tgt{3, 1}, replace: true, fallback: tgt{4, 1}, hintFor: -1},
			{failed: tgt{4, 1}, replace: true, fallback: none, hintFor: 1},
		}},
		{"no time left: a hint at once", shape{5, 0, nil, Params{N: 3, W: 2}}, []step{
			{failed: tgt{2, -1}, replace: false, fallback: none, hintFor: 2},
		}},
		{"a spare that died since the plan is skipped", shape{6, 0, nil, Params{N: 3, W: 2}}, []step{
			{failed: tgt{1, -1}, replace: true, dead: []int{3}, fallback: tgt{4, 1}, hintFor: -1},
		}},
		{"a spare already a target is not used twice", shape{5, 0, []int{1}, Params{N: 3, W: 2}}, []step{
			{failed: tgt{2, -1}, replace: true, fallback: tgt{4, 2}, hintFor: -1},
			{failed: tgt{3, 1}, replace: true, fallback: none, hintFor: 1},
		}},
		{"a spare back alive since the plan is used", shape{4, 0, []int{3}, Params{N: 3, W: 2}}, []step{
			{failed: tgt{1, -1}, replace: true, fallback: tgt{3, 1}, hintFor: -1},
		}},
		{"no spare at n = ring size", shape{3, 1, nil, Params{N: 3, W: 2}}, []step{
			{failed: tgt{0, -1}, replace: true, fallback: none, hintFor: 0},
		}},
		{"never a hint for self", shape{3, 0, nil, Params{N: 3, W: 2}}, []step{
			{failed: tgt{0, -1}, replace: false, fallback: none, hintFor: -1},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pl, pref := tc.plan(t)
			for i, s := range tc.steps {
				alive := aliveExcept(pref, s.dead...)
				if !s.replace {
					alive = nil // must not be consulted
				}
				got := pl.onFailure(targetsOf(pref, []tgt{s.failed})[0], s.replace, alive)
				want := recovery{}
				if s.fallback.node >= 0 {
					want.fallback = targetsOf(pref, []tgt{s.fallback})[0]
				}
				if s.hintFor >= 0 {
					want.hintFor = pref[s.hintFor]
				}
				if got != want {
					t.Fatalf("step %d: failure of %v gives %+v, want %+v", i, s.failed, got, want)
				}
			}
		})
	}
}

// Reads go to every live primary and to fallbacks for dead ones, and are
// refused up front when R or PR cannot be met.
func TestPlanRead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members int
		dead    []int
		p       Params
		want    []tgt
		refused bool
	}{
		{"all alive", 4, nil, Params{N: 3, R: 2}, []tgt{{0, -1}, {1, -1}, {2, -1}}, false},
		{"a dead primary read at its fallback", 4, []int{0}, Params{N: 3, R: 3}, []tgt{{1, -1}, {2, -1}, {3, 0}}, false},
		{"pr counts primaries only", 4, []int{0}, Params{N: 3, R: 2, PR: 3}, []tgt{{1, -1}, {2, -1}, {3, 0}}, true},
		{"r unreachable", 3, []int{0, 1}, Params{N: 3, R: 2}, []tgt{{2, -1}}, true},
		// The coordinator of a read need not be a replica (self is member 3).
		{"self outside the targets", 4, nil, Params{N: 2, R: 2}, []tgt{{0, -1}, {1, -1}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, pref := testRing(t, tc.members)
			pl := planRead(r, aliveExcept(pref, tc.dead...), pref[len(pref)-1], ring.Key{}, tc.p)
			if got, want := pl.targets, targetsOf(pref, tc.want); !slices.Equal(got, want) {
				t.Errorf("targets %v, want %v", got, want)
			}
			if (pl.refused != nil) != tc.refused {
				t.Fatalf("refused = %v, want refused %v", pl.refused, tc.refused)
			}
			var qe *QuorumError
			if pl.refused != nil && (!errors.As(pl.refused, &qe) || qe.Op != "get" || qe.Required != tc.p.R ||
				qe.RequiredPrimary != tc.p.PR || qe.Targets != len(tc.want)) {
				t.Errorf("refusal %v has the wrong counts", pl.refused)
			}
		})
	}
}

// BenchmarkPlanWrite measures planning alone, per cluster shape.
func BenchmarkPlanWrite(b *testing.B) {
	for _, bc := range benchCases {
		b.Run(bc.name, func(b *testing.B) {
			r, pref := testRing(b, bc.members)
			alive := aliveExcept(pref, bc.dead...)
			k := ring.Key{Key: []byte("user:42")}
			p := Params{N: 3, R: 2, W: 2}
			b.ReportAllocs()
			for b.Loop() {
				pl := planWrite(r, alive, pref[0], "put", k, p, nil)
				if pl.refused != nil {
					b.Fatal(pl.refused)
				}
			}
		})
	}
}
