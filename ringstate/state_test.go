package ringstate

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/memberauth"
)

func genState(t *rapid.T, label string) State {
	s := State{Partitions: 256, Tokens: 64, Members: map[string]MemberRecord{}}
	for i := range rapid.IntRange(0, 5).Draw(t, label+"-n") {
		id := fmt.Sprintf("n%d", rapid.IntRange(1, 4).Draw(t, fmt.Sprintf("%s-id%d", label, i)))
		s.Members[id] = MemberRecord{
			ID:          id,
			RPC:         rapid.SampledFrom([]string{"a:1", "b:2"}).Draw(t, fmt.Sprintf("%s-rpc%d", label, i)),
			Version:     rapid.SampledFrom([]uint64{1, 2, 3, 1 + memberauth.LeaveJump}).Draw(t, fmt.Sprintf("%s-v%d", label, i)),
			Incarnation: rapid.Uint64Range(1, 2).Draw(t, fmt.Sprintf("%s-inc%d", label, i)),
			Left:        rapid.Bool().Draw(t, fmt.Sprintf("%s-left%d", label, i)),
		}
	}
	return s
}

func merged(a, b State) State {
	out := a.Clone()
	if _, err := out.Merge(b.Clone()); err != nil {
		panic(err)
	}
	return out
}

func sameState(a, b State) bool {
	if len(a.Members) != len(b.Members) {
		return false
	}
	for id, r := range a.Members {
		if b.Members[id] != r {
			return false
		}
	}
	return true
}

// The ring state is a state-based CRDT: merging is commutative,
// associative and idempotent, so gossip in any order converges.
func TestStateMergeIsASemilattice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genState(t, "a"), genState(t, "b"), genState(t, "c")
		if !sameState(merged(a, b), merged(b, a)) {
			t.Fatalf("not commutative")
		}
		if !sameState(merged(merged(a, b), c), merged(a, merged(b, c))) {
			t.Fatalf("not associative")
		}
		if !sameState(merged(a, a), a) {
			t.Fatalf("not idempotent")
		}
	})
}

func TestStateRefusesOtherRingSettings(t *testing.T) {
	a := State{Partitions: 256, Tokens: 64}
	if _, err := a.Merge(State{Partitions: 512, Tokens: 64}); err == nil {
		t.Fatal("merged a state with other ring settings")
	}
}

func FuzzDecode(f *testing.F) {
	s := State{Partitions: 256, Tokens: 64, Members: map[string]MemberRecord{"n1": {ID: "n1", RPC: "127.0.0.1:1", Version: 3}}}
	b, _ := s.Encode()
	f.Add(b)
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := s.Encode()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		s2, err := Decode(enc)
		if err != nil || !sameState(s, s2) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
