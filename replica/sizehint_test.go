package replica

import (
	"fmt"
	"testing"

	"github.com/quorumkv/quorumkv/vclock"
)

// The record of an overwrite is built in the buffer UpdateAppend leaves
// after the key (AppendTo asks for envelopeMax+setSizeHint of the new set):
// a merge that supersedes the stored set, and a superseding mint of a key
// written by up to three coordinators, each with one sibling left.
func TestSizeHintFitsOverwrite(t *testing.T) {
	v := vclock.Value{Data: make([]byte, 100), ContentType: "text/plain", Timestamp: 1}
	for actors := 1; actors <= 3; actors++ {
		var cur vclock.Set
		for a := range actors {
			cur, _ = vclock.Update(cur, cur.Context, vclock.Actor{Node: fmt.Sprintf("n%d", a+1), Epoch: 1}, v)
		}
		if len(cur.Siblings) != 1 || len(cur.Context) != actors {
			t.Fatalf("setup: %d siblings, %d actors", len(cur.Siblings), len(cur.Context))
		}
		next, _ := vclock.Update(cur, cur.Context, vclock.Actor{Node: "n1", Epoch: 1}, v)
		for _, tc := range []struct {
			name string
			u    *recordUpdate
		}{
			{"merge", &recordUpdate{in: next}},
			{"mint", &recordUpdate{mint: &mintArgs{v: v, supersede: true}}},
		} {
			need := envelopeMax + setSizeHint(next)
			if got := tc.u.sizeHint(); got < need {
				t.Errorf("%s, %d actors: hint %d < %d needed", tc.name, actors, got, need)
			}
			rec, err := appendRecord(nil, 1<<40, next)
			if err != nil || len(rec) > need {
				t.Errorf("%s, %d actors: record of %d bytes, %d asked for (%v)", tc.name, actors, len(rec), need, err)
			}
		}
	}
}
