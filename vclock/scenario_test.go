package vclock

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBlindWritesSameCoordinator(t *testing.T) {
	a := act("n1", 1)
	s, d1 := Update(Set{}, nil, a, val("x"))
	s, d2 := Update(s, nil, a, val("y"))
	if !slices.Equal(data(s), []string{"x", "y"}) || d1 == d2 {
		t.Fatalf("two blind writes through one coordinator: %q (dots %v %v)", data(s), d1, d2)
	}
	ctx, err := DecodeContext(EncodeContext(s.Context)) // what the client read
	if err != nil {
		t.Fatal(err)
	}
	s, _ = Update(s, ctx, a, val("z"))
	if !slices.Equal(data(s), []string{"z"}) {
		t.Fatalf("a write with the context of a read that saw both: %q", data(s))
	}
}

// kv679 plays Riak's KV679: replica A's write x reaches B; B then replaces x
// with y; A loses its disk and takes a blind write z. It returns the sets of
// A and B after they exchange them, for A coming back under actor back.
func kv679(back Actor) (a, b Set, z Dot) {
	n1 := act("A", 1)
	a, _ = Update(Set{}, nil, n1, val("x"))
	b = Sync(Set{}, a)                                 // replication
	b, _ = Update(b, b.Context, act("B", 1), val("y")) // y supersedes x
	a = Set{}                                          // A's disk is gone
	a, z = Update(a, nil, back, val("z"))
	ab := Sync(a, b)
	return ab, Sync(b, a), z
}

// TestKV679NewEpoch: A comes back under a new epoch, so z is a new dot that
// nobody has seen, and it survives next to y everywhere.
func TestKV679NewEpoch(t *testing.T) {
	a, b, z := kv679(act("A", 1).NextEpoch())
	for _, s := range []Set{a, b} {
		if _, ok := s.Find(z); !ok || !slices.Equal(data(s), []string{"z", "y"}) {
			t.Fatalf("after the merge: %q, want z kept next to y", data(s))
		}
	}
}

// TestKV679ReusedEpochLosesWrite is the negative check that shows why the
// epoch rule exists: if A reuses its old actor after losing its disk, its
// blind write z gets the dot A#1:1, which B has already seen (as x, since
// replaced by y), and B silently discards z. This test asserts the LOSS; it
// documents the failure, not a wanted behaviour.
func TestKV679ReusedEpochLosesWrite(t *testing.T) {
	a, b, z := kv679(act("A", 1))
	if z != (Dot{act("A", 1), 1}) {
		t.Fatalf("reused actor minted %v", z)
	}
	for _, s := range []Set{a, b} {
		if _, ok := s.Find(z); ok {
			t.Fatalf("expected the write to be lost with a reused epoch: %q", data(s))
		}
		if !slices.Equal(data(s), []string{"y"}) {
			t.Fatalf("got %q", data(s))
		}
	}
}

// TestNoSiblingExplosion plays the interleaving that makes Riak's per-vnode
// clocks grow siblings without bound: k clients write through one
// coordinator in turn, each with the context its own previous write
// returned. With dots, siblings never outnumber the k clients, and the
// survivors are each client's latest write.
func TestNoSiblingExplosion(t *testing.T) {
	for _, k := range []int{2, 3, 5} {
		t.Run(fmt.Sprintf("clients=%d", k), func(t *testing.T) {
			a := act("n1", 1)
			var s Set
			ctx := make([]Vector, k)
			last := make([]string, k)
			for i := range 1000 {
				c := i % k
				last[c] = fmt.Sprintf("c%d-%d", c, i)
				s, _ = Update(s, ctx[c], a, val(last[c]))
				ctx[c] = s.Context // the PUT response
				if len(s.Siblings) > k {
					t.Fatalf("write %d: %d siblings for %d clients", i, len(s.Siblings), k)
				}
			}
			got := data(s)
			slices.Sort(got)
			want := slices.Clone(last)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("siblings %q, want the latest write of each client %q", got, want)
			}
		})
	}
}

// TestContextGrowth: 10,000 writes through 5 coordinators, with stale, fresh
// and no contexts and random replication. The context grows with the number
// of coordinators, not with the number of writes.
func TestContextGrowth(t *testing.T) {
	const coordinators, writes = 5, 10000
	rng := rand.New(rand.NewPCG(1, 2))
	reps := make([]Set, coordinators)
	actors := make([]Actor, coordinators)
	for i := range actors {
		actors[i] = act(fmt.Sprintf("node-%d", i), 1)
	}
	var stale []Vector
	maxLen, maxSiblings := 0, 0
	for w := range writes {
		i := rng.IntN(coordinators)
		var ctx Vector
		switch rng.IntN(3) {
		case 0: // blind
		case 1:
			ctx = reps[i].Context
		case 2:
			if len(stale) > 0 {
				ctx = stale[rng.IntN(len(stale))]
			}
		}
		reps[i], _ = Update(reps[i], ctx, actors[i], val("v"))
		j := rng.IntN(coordinators)
		reps[j] = Sync(reps[j], reps[i])
		if w%50 == 0 {
			stale = append(stale, reps[rng.IntN(coordinators)].Context)
		}
		maxLen = max(maxLen, len(EncodeContext(reps[i].Context)))
		maxSiblings = max(maxSiblings, len(reps[i].Siblings))
	}
	var all Set
	for _, r := range reps {
		all = Sync(all, r)
	}
	tok := EncodeContext(all.Context)
	// One entry here is at most 1 (array) + 7 (node) + 1 (epoch) + 3
	// (counter <= 65535) bytes: 5 of them and 2 header bytes, in base64.
	const bound = ((2+coordinators*12)*8 + 5) / 6
	if len(all.Context) != coordinators || len(tok) > bound || maxLen > bound {
		t.Fatalf("after %d writes: %d actors, token %d characters (max seen %d), bound %d",
			writes, len(all.Context), len(tok), maxLen, bound)
	}
	var total uint64
	for _, e := range all.Context {
		total += e.Counter
	}
	if total != writes {
		t.Fatalf("context counts %d writes, want %d", total, writes)
	}
	t.Logf("%d writes: context token %d characters, at most %d siblings", writes, len(tok), maxSiblings)
}
