package listing

import (
	"testing"

	"github.com/quorumkv/quorumkv/vclock"
)

// A key whose values have all passed their deadline is not listed, as a
// read answers it absent; one copy already turned into the tombstone wins
// over a replica still holding the value; a value without a deadline
// among expired ones keeps the key listed.
func TestMergeExpired(t *testing.T) {
	exp, _ := vclock.Update(vclock.Set{}, nil, actorA, vclock.Value{Data: []byte("v"), Expires: 100})
	converted, _ := vclock.Expire(exp, 100)
	mixed := put(exp, actorB, "forever")
	for _, tc := range []struct {
		name  string
		pages []Page
		now   int64
		want  int
	}{
		{"before the deadline", []Page{{Entries: []Entry{{1, []byte("k"), exp}}, Done: true}}, 99, 1},
		{"at the deadline", []Page{{Entries: []Entry{{1, []byte("k"), exp}}, Done: true}}, 100, 0},
		{"one replica converted, read early", []Page{{Entries: []Entry{{1, []byte("k"), exp}}, Done: true}, {Entries: []Entry{{1, []byte("k"), converted}}, Done: true}}, 50, 0},
		{"a value without a deadline stays", []Page{{Entries: []Entry{{1, []byte("k"), mixed}}, Done: true}}, 1000, 1},
	} {
		if got := len(Merge(tc.pages, tc.now).Keys); got != tc.want {
			t.Errorf("%s: %d keys listed, want %d", tc.name, got, tc.want)
		}
	}
}
