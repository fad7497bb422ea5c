package ownership

import (
	"slices"
	"testing"

	"github.com/quorumkv/quorumkv/ring"
)

func plan(t *testing.T, prev *ring.Assignment, ids ...ring.NodeID) (*ring.Assignment, *ring.Ring) {
	t.Helper()
	cfg := ring.DefaultConfig()
	cfg.Partitions = 64
	var ms []ring.Member
	for _, id := range ids {
		ms = append(ms, ring.Member{ID: id})
	}
	a, err := ring.Plan(cfg, prev, ms)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ring.FromAssignment(cfg, a)
	if err != nil {
		t.Fatal(err)
	}
	return a, r
}

func TestIDAndNewer(t *testing.T) {
	a1, _ := plan(t, nil, "a", "b", "c")
	a2, _ := plan(t, a1, "a", "b", "c", "d")
	b2, _ := plan(t, a1, "a", "b", "c", "e")
	if IDOf(a1) != IDOfEncoded(a1.Encode()) || IDOf(a1).Version != 1 || IDOf(a2).Version != 2 {
		t.Fatalf("ids: %v %v", IDOf(a1), IDOf(a2))
	}
	if !IDOf(nil).IsZero() || !IDOfEncoded([]byte{1, 2}).IsZero() || !IDOfEncoded([]byte{1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80}).IsZero() {
		t.Fatal("a short or malformed encoding must have the zero id")
	}
	if !Newer(a2.Encode(), a1.Encode()) || Newer(a1.Encode(), a2.Encode()) || !Newer(a1.Encode(), nil) || Newer(nil, a1.Encode()) {
		t.Fatal("a higher version must win, and anything over nothing")
	}
	// Two assignments of one version: exactly one wins, whichever side
	// compares.
	if Newer(a2.Encode(), b2.Encode()) == Newer(b2.Encode(), a2.Encode()) {
		t.Fatal("equal versions must be ordered one way")
	}
}

func TestProgressAfterIsTotal(t *testing.T) {
	base := Progress{Seq: 3, Target: ID{2, 7}}
	cases := []Progress{
		{Seq: 4},
		{Seq: 3, Target: ID{2, 7}, Ready: true},
		{Seq: 3, Target: ID{2, 8}},
		{Seq: 3, Committed: ID{1, 1}, Target: ID{2, 7}},
		{Seq: 3, Target: ID{2, 7}, Done: 1},
	}
	for _, c := range cases {
		if !c.After(base) || base.After(c) {
			t.Errorf("%+v vs %+v: want the first after", c, base)
		}
	}
	if base.After(base) {
		t.Error("a record is not after itself")
	}
}

func TestCanCommit(t *testing.T) {
	a1, r1 := plan(t, nil, "a", "b", "c")
	a2, r2 := plan(t, a1, "a", "b", "c", "d")
	moves := ring.Diff(r1, r2, 3)
	if g := Gainers(moves); !slices.Equal(g, []ring.NodeID{"d"}) {
		t.Fatalf("gainers %v, want [d]", g)
	}
	if len(Gains(moves, "d")) == 0 || len(Gains(moves, "a")) != 0 {
		t.Fatal("d gains partitions; a gains none")
	}
	t2 := IDOf(a2)
	for _, c := range []struct {
		name string
		pg   map[string]Progress
		want bool
	}{
		{"no progress", nil, false},
		{"d not ready", map[string]Progress{"d": {Target: t2}}, false},
		{"d ready for another target", map[string]Progress{"d": {Target: ID{2, 1}, Ready: true}}, false},
		{"d ready", map[string]Progress{"d": {Target: t2, Ready: true}}, true},
		{"someone committed it", map[string]Progress{"a": {Committed: t2}}, true},
	} {
		if got := CanCommit(moves, t2, c.pg); got != c.want {
			t.Errorf("%s: CanCommit = %v, want %v", c.name, got, c.want)
		}
	}
	if CanCommit(nil, ID{}, nil) {
		t.Error("no target: nothing to commit")
	}
	if !CanCommit(nil, t2, nil) {
		t.Error("a target that moves nothing commits at once")
	}
}

func TestAllReport(t *testing.T) {
	pg := map[string]Progress{"a": {Committed: ID{1, 1}}, "b": {Committed: ID{1, 1}}}
	is := func(p Progress) bool { return p.Committed == ID{1, 1} }
	if !AllReport([]string{"a", "b"}, pg, is) {
		t.Error("both report it")
	}
	if AllReport([]string{"a", "b", "c"}, pg, is) {
		t.Error("c has no record: it does not report it")
	}
}

func TestSources(t *testing.T) {
	st := map[ring.NodeID]Source{"a": SourceUp, "b": SourceGone, "c": SourceDown, "d": SourceUp}
	f := func(id ring.NodeID) Source { return st[id] }
	for _, c := range []struct {
		owners  []ring.NodeID
		pull    []ring.NodeID
		blocked bool
	}{
		{[]ring.NodeID{"a", "b", "d"}, []ring.NodeID{"a", "d"}, false}, // removed b: rebuilt from a and d
		{[]ring.NodeID{"a", "c", "d"}, []ring.NodeID{"a", "d"}, true},  // c down, not removed: wait
		{[]ring.NodeID{"x", "a"}, []ring.NodeID{"a"}, false},           // self skipped
		{[]ring.NodeID{"b"}, nil, false},                               // every old copy gone
	} {
		pull, blocked := Sources(c.owners, "x", f)
		if !slices.Equal(pull, c.pull) || blocked != c.blocked {
			t.Errorf("Sources(%v) = %v, %v; want %v, %v", c.owners, pull, blocked, c.pull, c.blocked)
		}
	}
}

// An old owner drops what it lost only once every live member routes
// with the commit and none still writes to the previous owners.
func TestSettled(t *testing.T) {
	c := ID{Version: 3, Sum: 9}
	live := []string{"a", "b"}
	progress := map[string]Progress{"a": {Seq: 1, Committed: c}, "b": {Seq: 1, Committed: c, WritesPrev: true}}
	if Settled(live, c, progress) {
		t.Fatal("settled while b still writes the previous owners")
	}
	progress["b"] = Progress{Seq: 2, Committed: c}
	if !Settled(live, c, progress) {
		t.Fatal("not settled once every live member stopped")
	}
	if Settled(append(live, "c"), c, progress) {
		t.Fatal("settled with a live member that reported nothing")
	}
	if (Progress{Seq: 2, WritesPrev: true}).After(Progress{Seq: 2}) == (Progress{Seq: 2}).After(Progress{Seq: 2, WritesPrev: true}) {
		t.Fatal("After does not order records that differ in WritesPrev only")
	}
}
