package antientropy

import (
	"testing"

	"github.com/quorumkv/quorumkv/vclock"
)

// The repair decision table: what an exchange does with a key whose
// digests differ, by what each side holds.
func TestDecideRepair(t *testing.T) {
	var (
		none      = keyCopy{}
		live      = keyCopy{Found: true}
		confirmed = keyCopy{Found: true, Confirmed: true}
	)
	tests := []struct {
		name          string
		local, remote keyCopy
		want          keyAction
	}{
		{"gone on both sides meanwhile", none, none, actNone},
		{"only the peer holds it", none, live, actPull},
		{"only this node holds it", live, none, actPush},
		{"both hold it", live, live, actSync},
		{"the peer holds a confirmed tombstone, this node nothing", none, confirmed, actLeaveToReaper},
		{"this node holds a confirmed tombstone, the peer nothing", confirmed, none, actLeaveToReaper},
		{"confirmed here, a copy there: merged like any set", confirmed, live, actSync},
		{"a copy here, confirmed there: merged like any set", live, confirmed, actSync},
		{"both confirmed (different sets)", confirmed, confirmed, actSync},
		// Confirmed without Found cannot be read from a store; a side with
		// nothing is nothing.
		{"a claim of confirmation without a record", keyCopy{Confirmed: true}, live, actPull},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideRepair(tc.local, tc.remote); got != tc.want {
				t.Fatalf("decideRepair(%+v, %+v) = %v, want %v", tc.local, tc.remote, got, tc.want)
			}
		})
	}
}

// When both sides hold the key, the merge goes where a side is behind.
func TestSyncSides(t *testing.T) {
	write := func(s vclock.Set, actor, v string) vclock.Set {
		out, _ := vclock.Update(s, s.Context, vclock.Actor{Node: actor, Epoch: 1}, vclock.Value{Data: []byte(v)})
		return out
	}
	older := write(vclock.Set{}, "a", "1")
	newer := write(older, "a", "2")
	concurrent := write(vclock.Set{}, "b", "x")
	tests := []struct {
		name          string
		local, remote vclock.Set
		push, pull    bool
	}{
		{"the peer is behind", newer, older, true, false},
		{"this node is behind", older, newer, false, true},
		{"concurrent writes: both are behind", older, concurrent, true, true},
		{"the same set: nobody is", newer, newer, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, push, pull := syncSides(tc.local, tc.remote)
			if push != tc.push || pull != tc.pull {
				t.Fatalf("push %v pull %v, want %v %v", push, pull, tc.push, tc.pull)
			}
			if !m.Equal(vclock.Sync(tc.remote, tc.local)) {
				t.Fatal("merge differs from vclock.Sync")
			}
		})
	}
}
