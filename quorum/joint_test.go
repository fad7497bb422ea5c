package quorum

import (
	"errors"
	"testing"

	"github.com/quorumkv/quorumkv/ring"
)

func TestJointTracker(t *testing.T) {
	target := []ring.NodeID{"a", "b", "d"}
	jt := NewJointTracker(2, [][]ring.NodeID{target, nil})
	for _, id := range []ring.NodeID{"a", "b", "c", "d"} {
		jt.Add(id)
	}
	if d := jt.Decision(); d != Pending {
		t.Fatalf("nothing answered: %v", d)
	}
	jt.Record("c", nil) // not an owner of the target: does not count
	jt.Record("a", nil)
	if d := jt.Decision(); d != Pending {
		t.Fatalf("one of two: %v", d)
	}
	jt.Record("b", errors.New("timeout"))
	if d := jt.Decision(); d != Pending {
		t.Fatalf("d still outstanding: %v", d)
	}
	jt.Record("d", errors.New("timeout"))
	if d := jt.Decision(); d != Failed || jt.Err("put") == nil {
		t.Fatalf("one ack of the target's owners, none outstanding: %v", d)
	}

	jt = NewJointTracker(2, [][]ring.NodeID{{"a", "d"}, {"a", "b", "c"}})
	for _, id := range []ring.NodeID{"a", "b", "d"} {
		jt.Add(id)
		jt.Record(id, nil)
	}
	if d := jt.Decision(); d != Succeeded || jt.Err("put") != nil {
		t.Fatalf("two of each set: %v", d)
	}
	if d := NewJointTracker(2, nil).Decision(); d != Succeeded {
		t.Fatalf("no change in course: %v", d)
	}
	// A set smaller than W needs all of it.
	jt = NewJointTracker(3, [][]ring.NodeID{{"a"}})
	jt.Add("a")
	jt.Record("a", nil)
	if d := jt.Decision(); d != Succeeded {
		t.Fatalf("a one-owner set: %v", d)
	}
}
