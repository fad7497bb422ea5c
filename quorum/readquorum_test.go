package quorum

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/vclock"
)

// Config.ReadQuorumOnly: a read asks R replicas, this node's own first,
// and the others only when one fails or readHedge passes.
func TestGetReadQuorumOnly(t *testing.T) {
	set, _ := vclock.Update(vclock.Set{}, nil, vclock.Actor{Node: "w", Epoch: 1}, vclock.Value{Data: []byte("v")})
	for _, tc := range []struct {
		name  string
		on    bool
		r     int
		b     map[int]behaviour // by preference index
		read  []int             // replicas read, by preference index
		after time.Duration     // when the read answers
	}{
		{"off: every replica", false, 2, nil, []int{0, 1, 2}, 0},
		{"this node and the next", true, 2, nil, []int{0, 1}, 0},
		{"R of N is every replica", true, 3, nil, []int{0, 1, 2}, 0},
		{"a failure asks the third", true, 2, map[int]behaviour{0: {err: errReplica}}, []int{0, 1, 2}, 0},
		{"a silent one: the hedge asks the third", true, 2, map[int]behaviour{0: {hang: true}}, []int{0, 1, 2}, readHedge},
		{"a slow one within the hedge is waited for", true, 2, map[int]behaviour{0: {delay: readHedge / 2}}, []int{0, 1}, readHedge / 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// This node is the second in preference order: it is one
				// of the R read all the same, the third is not.
				c := newTestCoord(t, 3, 1, Params{N: 3, R: 2, W: 2}, nil)
				c.cfg.ReadQuorumOnly = tc.on
				for _, id := range c.pref {
					c.reps.sets[id] = set
				}
				for i, b := range tc.b {
					c.reps.set(c.pref[i], b)
				}
				start := time.Now()
				res, err := c.Get(t.Context(), GetRequest{Key: []byte("k"), Params: Params{R: tc.r}})
				if err != nil {
					t.Fatal(err)
				}
				if took := time.Since(start); took != tc.after {
					t.Errorf("answered after %v, want %v", took, tc.after)
				}
				if !res.Set.Equal(set) {
					t.Errorf("answer %v, want %v", res.Set, set)
				}
				c.Close() // ends the hanging call
				calls := c.reps.recorded("read")
				var got []ring.NodeID
				for _, rc := range calls {
					got = append(got, rc.target.Node)
				}
				slices.Sort(got)
				want := idsOf(c.pref, tc.read)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("read %v, want %v", got, want)
				}
			})
		})
	}
}

func TestSelfFirst(t *testing.T) {
	a, b, c := ring.Target{Node: "a"}, ring.Target{Node: "b"}, ring.Target{Node: "c"}
	fb := ring.Target{Node: "c", HintFor: "x"}
	for _, tc := range []struct {
		in   []ring.Target
		want []ring.Target
	}{
		{[]ring.Target{a, b, c}, []ring.Target{c, a, b}},
		{[]ring.Target{c, a, b}, []ring.Target{c, a, b}},
		{[]ring.Target{a, c, b}, []ring.Target{c, a, b}},
		{[]ring.Target{a, b, fb}, []ring.Target{a, b, fb}}, // a fallback stays last
		{[]ring.Target{a, b}, []ring.Target{a, b}},
	} {
		if got := selfFirst(slices.Clone(tc.in), "c"); !slices.Equal(got, tc.want) {
			t.Errorf("selfFirst(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
