package plant

import (
	"testing"

	"github.com/quorumkv/quorumkv/vclock"
)

func val(s string, ts int64) vclock.Value { return vclock.Value{Data: []byte(s), Timestamp: ts} }

func TestMergeBugs(t *testing.T) {
	a1 := vclock.Actor{Node: "n1", Epoch: 1}
	a2 := vclock.Actor{Node: "n2", Epoch: 1}
	// x and y concurrent; z supersedes x on n1's copy.
	x, _ := vclock.Update(vclock.Set{}, nil, a1, val("x", 1))
	both, _ := vclock.Update(x, nil, a2, val("y", 2))
	z, _ := vclock.Update(x, x.Context, a1, val("z", 3))

	if got := Merge(z, x, vclock.Sync(z, x)); !got.Equal(vclock.Sync(z, x)) {
		t.Fatalf("no bug planted, merge changed: %v", got)
	}

	undo := Plant(MergeKeepsNewest)
	got := Merge(x, both, vclock.Sync(x, both))
	undo()
	if len(got.Siblings) != 1 || string(got.Siblings[0].Value.Data) != "y" || !got.Context.Equal(both.Context) {
		t.Fatalf("keep newest: %v", got)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("keep newest made an invalid set: %v", err)
	}

	undo = Plant(MergeResurrects)
	// z's copy receives the stale x: the correct merge drops x.
	got = Merge(z, x, vclock.Sync(z, x))
	undo()
	if len(got.Siblings) != 2 {
		t.Fatalf("resurrect: %v", got)
	}
	if err := got.Validate(); err != nil {
		t.Fatalf("resurrect made an invalid set: %v", err)
	}
	if On(MergeResurrects) || On(MergeKeepsNewest) {
		t.Fatal("undo left a bug planted")
	}
}

func TestLenAndParse(t *testing.T) {
	if Len(HandoffPushesNothing, 5) != 5 {
		t.Fatal("Len with the bug off")
	}
	defer Plant(HandoffPushesNothing)()
	if Len(HandoffPushesNothing, 5) != 0 {
		t.Fatal("Len with the bug on")
	}
	for b := MergeKeepsNewest; b < numBugs; b++ {
		if p, err := Parse(b.String()); err != nil || p != b {
			t.Errorf("Parse(%q) = %v, %v", b, p, err)
		}
	}
	if _, err := Parse("nope"); err == nil {
		t.Error("Parse accepted an unknown name")
	}
}
