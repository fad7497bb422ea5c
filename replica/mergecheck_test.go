package replica

import (
	"context"
	"fmt"
	"testing"

	"github.com/quorumkv/quorumkv/store/storetest"
	"github.com/quorumkv/quorumkv/vclock"
	"pgregory.net/rapid"
)

// checkMerge runs MergeSetChecked of in on k and checks that it merged
// (the stored set is Sync of before and in) and that its report matches
// vclock: clean when in's context descends the stored one, else the
// stored context as prior.
func (f *fixture) checkMerge(t interface {
	Helper()
	Fatalf(string, ...any)
}, k string, before, in vclock.Set, found bool) bool {
	t.Helper()
	clean, prior, err := f.rep.MergeSetChecked(context.Background(), "", key(k), in, false)
	if err != nil {
		t.Fatalf("merge: %v", err)
	}
	want := !found || in.Context.Descends(before.Context)
	if clean != want {
		t.Fatalf("clean %v, want %v (stored context %v, incoming %v)", clean, want, before.Context, in.Context)
	}
	switch {
	case clean && prior != nil:
		t.Fatalf("clean with a prior context %x", prior)
	case !clean:
		p, err := vclock.DecodeSet(prior)
		if err != nil || len(p.Siblings) != 0 || !p.Context.Equal(before.Context) {
			t.Fatalf("prior %v (%v), want the stored context %v and no sibling", p, err, before.Context)
		}
	}
	got, _, err := f.rep.ReadLocal("", key(k))
	if w := vclock.Sync(before, in); err != nil || !got.Equal(w) {
		t.Fatalf("stored %v, %v; want the merge %v", got, err, w)
	}
	return clean
}

func TestMergeSetCheckedReport(t *testing.T) {
	f := newFixture(t, storetest.Open(t))
	n2, n3 := vclock.Actor{Node: "n2", Epoch: 1}, vclock.Actor{Node: "n3", Epoch: 1}
	base, _ := vclock.Update(vclock.Set{}, nil, n2, val("base"))
	newer, _ := vclock.Update(base, base.Context, n2, val("newer"))
	beside, _ := vclock.Update(base, nil, n3, val("beside")) // concurrent with newer
	for _, tc := range []struct {
		name      string
		stored    *vclock.Set // nil: no record
		in        vclock.Set
		wantClean bool
	}{
		{"empty record", nil, base, true},
		{"equal", &base, base, true},
		{"behind (outright)", &base, newer, true},
		{"ahead", &newer, base, false},
		{"concurrent", &beside, newer, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := "k-" + tc.name
			var before vclock.Set
			if tc.stored != nil {
				if _, err := f.rep.MergeSet(t.Context(), "", key(k), *tc.stored, false); err != nil {
					t.Fatal(err)
				}
				before = *tc.stored
			}
			if got := f.checkMerge(t, k, before, tc.in, tc.stored != nil); got != tc.wantClean {
				t.Fatalf("clean %v, want %v", got, tc.wantClean)
			}
		})
	}
}

// Property: for random histories of a key's stored copy and an incoming
// set, the report is vclock's Descends and the merge is Sync.
func TestMergeSetCheckedProperty(t *testing.T) {
	f := newFixture(t, storetest.Open(t))
	actors := []vclock.Actor{{Node: "n1", Epoch: 1}, {Node: "n2", Epoch: 1}, {Node: "n3", Epoch: 2}}
	history := func(t *rapid.T, label string, from vclock.Set) vclock.Set {
		return drawHistory(t, label, from, 4, actors, func(_ *rapid.T, label string) vclock.Value { return val(label) })
	}
	n := 0
	rapid.Check(t, func(t *rapid.T) {
		common := history(t, "common", vclock.Set{})
		stored := history(t, "stored", common)
		in := history(t, "in", common)
		if len(in.Siblings) == 0 {
			in, _ = vclock.Update(in, in.Context, actors[0], val("in"))
		}
		n++
		k := fmt.Sprint("p", n)
		found := len(stored.Context) > 0
		if found {
			if _, err := f.rep.MergeSet(context.Background(), "", key(k), stored, false); err != nil {
				t.Fatal(err)
			}
		}
		f.checkMerge(t, k, stored, in, found)
	})
}

// drawHistory draws up to max writes over from by actors, each with or
// without from's context (blind), of the value value draws.
func drawHistory(t *rapid.T, label string, from vclock.Set, max int, actors []vclock.Actor, value func(t *rapid.T, label string) vclock.Value) vclock.Set {
	s := from
	for i := range rapid.IntRange(0, max).Draw(t, label+"-len") {
		a := actors[rapid.IntRange(0, len(actors)-1).Draw(t, fmt.Sprint(label, "-actor-", i))]
		ctx := s.Context
		if rapid.Bool().Draw(t, fmt.Sprint(label, "-blind-", i)) {
			ctx = nil
		}
		s, _ = vclock.Update(s, ctx, a, value(t, fmt.Sprint(label, i)))
	}
	return s
}

// TestMergeSetCheckedPriorOutlivesRecycling: the prior context a merge
// reports stays as it was while later merges reuse the merge's update
// (recordUpdates are pooled).
func TestMergeSetCheckedPriorOutlivesRecycling(t *testing.T) {
	f := newFixture(t, storetest.Open(t))
	n2, n3 := vclock.Actor{Node: "n2", Epoch: 1}, vclock.Actor{Node: "n3", Epoch: 1}
	base, _ := vclock.Update(vclock.Set{}, nil, n2, val("base"))
	ahead, _ := vclock.Update(base, base.Context, n2, val("ahead"))
	if _, err := f.rep.MergeSet(t.Context(), "", key("a"), ahead, false); err != nil {
		t.Fatal(err)
	}
	clean, prior, err := f.rep.MergeSetChecked(t.Context(), "", key("a"), base, false)
	if err != nil || clean {
		t.Fatalf("clean %v, %v; want a prior context", clean, err)
	}
	want := append([]byte(nil), prior...)
	for i := range 20 {
		s, _ := vclock.Update(vclock.Set{}, nil, n3, val(fmt.Sprint("other", i)))
		other := key(fmt.Sprint("b", i%3))
		if _, err := f.rep.MergeSet(t.Context(), "", other, ahead, false); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.rep.MergeSetChecked(t.Context(), "", other, s, false); err != nil {
			t.Fatal(err)
		}
	}
	if string(prior) != string(want) {
		t.Fatalf("prior changed by later merges: %x, was %x", prior, want)
	}
}
