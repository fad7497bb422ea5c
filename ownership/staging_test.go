package ownership

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/ring"
)

// Staged leaves and removes are listed by Pending until resolved; a join
// entry says whether that incarnation's join was committed or cleared, and
// a new Put stages it again.
func TestStageLifecycle(t *testing.T) {
	var s Stage
	if !s.Pending().Empty() || s.Joined("d", 7) || s.Cleared("d", 7) {
		t.Fatal("an empty stage stages nothing")
	}
	s.Merge(Stage{"b": s.Put("b", StageLeave, 0, "ops")})
	s.Merge(Stage{"c": s.Put("c", StageRemove, 0, "ops")})
	s.Merge(Stage{"d": s.Put("d", StageJoin, 7, "ops")})
	want := ring.Change{Leaves: []ring.NodeID{"b"}, Removes: []ring.NodeID{"c"}}
	if got := s.Pending(); !slices.Equal(got.Leaves, want.Leaves) || !slices.Equal(got.Removes, want.Removes) || got.Joins != nil {
		t.Fatalf("pending %+v, want %+v", got, want)
	}

	cleared := s.Clone()
	cleared.Merge(resolve(cleared, StateCleared))
	if !cleared.Pending().Empty() || !cleared.Cleared("d", 7) || cleared.Cleared("d", 8) || cleared.Joined("d", 7) {
		t.Fatal("a clear drops leaves and removes and marks the join cleared, for its incarnation only")
	}
	cleared.Merge(Stage{"d": cleared.Put("d", StageJoin, 7, "ops")})
	if cleared.Cleared("d", 7) {
		t.Fatal("a cleared join staged again is not cleared")
	}

	res := resolve(s, StateCommitted)
	if len(res) != 3 || res["d"].Seq != s["d"].Seq+1 || res["d"].By != "ops" {
		t.Fatalf("commit entries %+v", res)
	}
	if !s.Merge(res) || !s.Joined("d", 7) || s.Joined("d", 8) || !s.Pending().Empty() || s.Merge(res) {
		t.Fatal("a committed join is joined for its incarnation only, nothing stays staged, and merging again changes nothing")
	}
	if e := s.Put("a", StageLeave, 0, strings.Repeat("é", 100)); len(e.By) > MaxStageBy || !strings.HasPrefix(e.By, "é") {
		t.Fatalf("By of %d bytes", len(e.By))
	}
}

// resolve moves every staged entry of s to state, as ringstage's commit
// and clear do.
func resolve(s Stage, state uint8) Stage {
	out := Stage{}
	for id, e := range s {
		if e.State == StateStaged {
			e = s.Put(id, e.Kind, e.Inc, "ops")
			e.State = state
			out[id] = e
		}
	}
	return out
}

func TestCheckJoinMode(t *testing.T) {
	for _, m := range []string{"", JoinAuto, JoinStaged} {
		if err := CheckJoinMode(m); err != nil {
			t.Errorf("%q: %v", m, err)
		}
	}
	if err := CheckJoinMode("later"); err == nil || !strings.Contains(err.Error(), `join mode "later": want auto`) {
		t.Errorf("later: %v", err)
	}
}

// Merges converge: in any order, applied any number of times, replicas of
// a stage that saw the same entries hold the same stage.
func TestPropStageMergeConverges(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		gen := rapid.Custom(func(t *rapid.T) Stage {
			s := Stage{}
			for range rapid.IntRange(0, 6).Draw(t, "entries") {
				id := fmt.Sprint("n", rapid.IntRange(0, 3).Draw(t, "id"))
				s[id] = StageEntry{Kind: uint8(rapid.IntRange(1, 3).Draw(t, "kind")), State: uint8(rapid.IntRange(1, 3).Draw(t, "state")),
					Inc: rapid.Uint64Range(0, 2).Draw(t, "inc"), Seq: rapid.Uint64Range(0, 3).Draw(t, "seq"), By: rapid.SampledFrom([]string{"", "a", "b"}).Draw(t, "by")}
			}
			return s
		})
		parts := rapid.SliceOfN(gen, 1, 4).Draw(t, "parts")
		var a, b Stage
		for _, p := range parts {
			a.Merge(p)
		}
		for _, i := range rapid.Permutation([]int{0, 1, 2, 3}[:len(parts)]).Draw(t, "order") {
			b.Merge(parts[i])
			b.Merge(parts[i])
		}
		if !maps.Equal(a, b) {
			t.Fatalf("merge order changed the result:\n%v\n%v", a, b)
		}
	})
}

func TestStageCheck(t *testing.T) {
	ok := Stage{"a": {Kind: StageJoin, State: StateStaged, Seq: 1}}
	if err := ok.Check(10); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]Stage{
		"kind 0":    {"a": {Kind: 0, State: StateStaged}},
		"kind 4":    {"a": {Kind: 4, State: StateStaged}},
		"state 9":   {"a": {Kind: StageLeave, State: 9}},
		"long by":   {"a": {Kind: StageLeave, State: StateStaged, By: strings.Repeat("x", MaxStageBy+1)}},
		"too many":  {"a": ok["a"], "b": ok["a"]},
		"no state":  {"a": {Kind: StageRemove}},
		"state 4th": {"a": {Kind: StageRemove, State: 4}},
	} {
		limit := 10
		if name == "too many" {
			limit = 1
		}
		if err := s.Check(limit); !errors.Is(err, ErrBadStage) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
