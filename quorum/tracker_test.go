package quorum

import (
	"errors"
	"testing"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/siblings"
	"github.com/quorumkv/quorumkv/vclock"
)

var errDown = errors.New("down")

type ans struct {
	primary, durable bool
	err              error
}

func TestWriteTracker(t *testing.T) {
	for _, tc := range []struct {
		name      string
		w, pw, dw int
		targets   []bool // primary?
		answers   []ans
		want      []Decision
	}{
		{"w2 two acks", 2, 0, 0, []bool{true, true, true},
			[]ans{{true, false, nil}, {true, false, nil}}, []Decision{Pending, Succeeded}},
		{"w2 two failures", 2, 0, 0, []bool{true, true, true},
			[]ans{{true, false, errDown}, {true, false, errDown}}, []Decision{Pending, Failed}},
		{"w3 one failure fails at once", 3, 0, 0, []bool{true, true, true},
			[]ans{{true, false, nil}, {true, false, errDown}}, []Decision{Pending, Failed}},
		{"fallback acks count for w", 3, 0, 0, []bool{true, true, false},
			[]ans{{true, false, nil}, {true, false, nil}, {false, false, nil}}, []Decision{Pending, Pending, Succeeded}},
		{"pw3 fallback cannot help", 3, 3, 0, []bool{true, true, false},
			[]ans{{true, false, nil}}, []Decision{Failed}},
		{"pw2 met by primaries", 2, 2, 0, []bool{true, false, true},
			[]ans{{false, false, nil}, {true, false, nil}, {true, false, nil}}, []Decision{Pending, Pending, Succeeded}},
		{"dw needs durable acks", 2, 0, 2, []bool{true, true, true},
			[]ans{{true, false, nil}, {true, true, nil}, {true, true, nil}}, []Decision{Pending, Pending, Succeeded}},
		{"dw unreachable", 2, 0, 2, []bool{true, true},
			[]ans{{true, false, nil}}, []Decision{Failed}},
		{"decision is sticky", 1, 0, 0, []bool{true, true},
			[]ans{{true, false, nil}, {true, false, errDown}}, []Decision{Succeeded, Succeeded}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewWriteTracker(tc.w, tc.pw, tc.dw)
			for _, p := range tc.targets {
				tr.Add(p)
			}
			for i, a := range tc.answers {
				if got := tr.Record(a.primary, a.durable, a.err); got != tc.want[i] {
					t.Fatalf("answer %d: %v, want %v", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestWriteTrackerFallbackAddedBeforeFailure(t *testing.T) {
	// W=3 over three targets; one fails, a fallback is added before the
	// failure is recorded: the write must stay pending, then succeed.
	tr := NewWriteTracker(3, 0, 0)
	tr.Add(true)
	tr.Add(true)
	tr.Add(true)
	if d := tr.Record(true, false, nil); d != Pending {
		t.Fatal(d)
	}
	tr.Add(false)
	if d := tr.Record(true, false, errDown); d != Pending {
		t.Fatalf("after failure with fallback in flight: %v", d)
	}
	tr.Record(true, false, nil)
	if d := tr.Record(false, false, nil); d != Succeeded {
		t.Fatalf("fallback ack: %v", d)
	}
	if a := tr.Acks(); a.Primary != 2 || a.Fallback != 1 {
		t.Fatalf("acks %+v", a)
	}
	qe := NewWriteTracker(3, 0, 0)
	qe.Add(true)
	qe.Record(true, false, errDown)
	err := qe.Err("put")
	if !errors.Is(err, ErrQuorumNotMet) || !errors.Is(err, errDown) || err.Required != 3 || err.Acks != 0 {
		t.Fatalf("error %v (%+v)", err, err)
	}
}

func TestReadTracker(t *testing.T) {
	for _, tc := range []struct {
		name    string
		r, pr   int
		targets []bool
		answers []ans
		want    []Decision
	}{
		{"r2", 2, 0, []bool{true, true, true}, []ans{{true, false, nil}, {true, false, nil}}, []Decision{Pending, Succeeded}},
		{"r3 one down", 3, 0, []bool{true, true, true}, []ans{{true, false, nil}, {true, false, errDown}}, []Decision{Pending, Failed}},
		{"pr2 with a fallback", 2, 2, []bool{true, false, true},
			[]ans{{false, false, nil}, {true, false, nil}, {true, false, nil}}, []Decision{Pending, Pending, Succeeded}},
		{"pr2 primaries down", 2, 2, []bool{true, true, false},
			[]ans{{true, false, errDown}}, []Decision{Failed}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewReadTracker(tc.r, tc.pr)
			for _, p := range tc.targets {
				tr.Add(p)
			}
			for i, a := range tc.answers {
				if got := tr.Record(a.primary, a.err); got != tc.want[i] {
					t.Fatalf("answer %d: %v, want %v", i, got, tc.want[i])
				}
			}
		})
	}
}

func TestRepairTargets(t *testing.T) {
	a := vclock.Actor{Node: "n1", Epoch: 1}
	s1, _ := vclock.Update(vclock.Set{}, nil, a, vclock.Value{Data: []byte("1")})
	s2, _ := vclock.Update(s1, s1.Context, a, vclock.Value{Data: []byte("2")})
	merged := vclock.Sync(s1, s2)
	got := RepairTargets(merged, []Reply{
		{Target: ring.Target{Node: "up"}, Set: s2},
		{Target: ring.Target{Node: "behind"}, Set: s1},
		{Target: ring.Target{Node: "empty"}},
		{Target: ring.Target{Node: "fallback", HintFor: "x"}},
	})
	if len(got) != 2 || got[0].Node != "behind" || got[1].Node != "empty" {
		t.Fatalf("repair targets %v, want behind and empty", got)
	}
}

func TestParamsValidate(t *testing.T) {
	d := Params{N: 3, R: 2, W: 2, Timeout: 1}
	for _, tc := range []struct {
		name  string
		p     Params
		param string // "" = valid
	}{
		{"defaults", Params{}, ""},
		{"n1 caps r and w", Params{N: 1}, ""},
		{"r above n", Params{N: 3, R: 4}, "r"},
		{"w above n", Params{W: 4}, "w"},
		{"n above ring", Params{N: 4}, "n"},
		{"n zero negative", Params{N: -1}, "n"},
		{"pr above r", Params{R: 1, PR: 2}, "pr"},
		{"pw above w", Params{W: 2, PW: 3}, "pw"},
		{"dw above w", Params{W: 2, DW: 3}, "dw"},
		{"negative pw", Params{PW: -1}, "pw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.WithDefaults(d).Validate(3, 5)
			if tc.param == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var pe *ParamError
			if !errors.As(err, &pe) || pe.Param != tc.param || !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want a ParamError for %s", err, tc.param)
			}
		})
	}
}

func TestParseCount(t *testing.T) {
	for in, want := range map[string]int{"one": 1, "quorum": 3, "ALL": 5, " 2 ": 2} {
		if got, err := ParseCount(in, 5); err != nil || got != want {
			t.Errorf("ParseCount(%q, 5) = %d, %v; want %d", in, got, err, want)
		}
	}
	if _, err := ParseCount("abc", 3); err == nil {
		t.Error("ParseCount(abc) succeeded")
	}
}

// readSet.add skips the merge for a first answer and for an answer equal
// to what was gathered; the result must still be the merge of every
// answer, in any order, with the same siblings dropped.
func TestReadSetAddIsTheMergeOfEveryAnswer(t *testing.T) {
	blind := func(s vclock.Set, node, val string) vclock.Set {
		out, _ := vclock.Update(s, nil, vclock.Actor{Node: node, Epoch: 1}, vclock.Value{Data: []byte(val)})
		return out
	}
	old := blind(vclock.Set{}, "w1", "old")
	cur := blind(old, "w2", "new")
	other := blind(vclock.Set{}, "w3", "x")
	dead, _ := vclock.Update(cur, cur.Context, vclock.Actor{Node: "w4", Epoch: 1}, vclock.Value{Deleted: true})
	fail := readReply{err: errors.New("down")}
	capped := siblings.Policy{MergeCount: 1}
	for _, tc := range []struct {
		name    string
		p       siblings.Policy
		replies []readReply
	}{
		{"all equal", siblings.Policy{}, []readReply{{set: cur}, {set: cur}, {set: cur}}},
		{"one behind, last", siblings.Policy{}, []readReply{{set: cur}, {set: cur}, {set: old}}},
		{"one behind, first", siblings.Policy{}, []readReply{{set: old}, {set: cur}, {set: cur}}},
		{"concurrent", siblings.Policy{}, []readReply{{set: cur}, {set: other}, {set: cur}}},
		{"a failure first", siblings.Policy{}, []readReply{fail, {set: cur}, {set: cur}}},
		{"empty and a delete", siblings.Policy{}, []readReply{{set: vclock.Set{}}, {set: dead}, {set: dead}}},
		{"capped: first trimmed, then equal", capped, []readReply{{set: cur}, {set: cur}, {set: other}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s readSet
			want, wantDropped, answered := vclock.Set{}, 0, 0
			for _, rep := range tc.replies {
				s.add(rep, tc.p)
				if rep.err == nil {
					m := tc.p.Merge(want, rep.set)
					want, wantDropped, answered = m.Set, wantDropped+len(m.Trimmed), answered+1
				}
			}
			if !s.merged.Equal(want) {
				t.Errorf("merged %v, want %v", s.merged, want)
			}
			if len(s.dropped) != wantDropped {
				t.Errorf("%d siblings dropped, want %d", len(s.dropped), wantDropped)
			}
			if len(s.got) != answered {
				t.Errorf("%d replies kept, want %d", len(s.got), answered)
			}
		})
	}
}
