package ring

import (
	"fmt"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"pgregory.net/rapid"
)

// coarseHash puts every token within a hash or two of one of 16 points
// that are partition edges for Q <= 16: tokens of different members collide
// often (exercising the tie-break by id) and land on a partition's first or
// last hash (exercising the walk's boundaries, wrap included).
func coarseHash(b []byte) uint64 {
	h := xxhash.Sum64(b)
	return h&(0xf<<60) + h&3 - 1
}

func genConfig() *rapid.Generator[Config] {
	return rapid.Custom(func(t *rapid.T) Config {
		cfg := Config{
			Partitions: 1 << rapid.IntRange(0, 6).Draw(t, "log2Q"),
			Tokens:     rapid.IntRange(1, 8).Draw(t, "tokens"),
		}
		if rapid.Bool().Draw(t, "coarse") {
			cfg.Hash = coarseHash
		}
		return cfg
	})
}

func genMembers(maxLen int) *rapid.Generator[[]Member] {
	m := rapid.Custom(func(t *rapid.T) Member {
		return Member{
			ID:     NodeID(rapid.StringMatching(`[a-z]{1,3}`).Draw(t, "id")),
			Weight: rapid.IntRange(0, 3).Draw(t, "weight"),
		}
	})
	return rapid.SliceOfNDistinct(m, 0, maxLen, func(m Member) NodeID { return m.ID })
}

// genIDs draws n distinct random-looking member ids, as real node ids are.
func genIDs(t *rapid.T, n int, label string) []Member {
	g := rapid.SliceOfNDistinct(rapid.Uint64(), n, n, rapid.ID[uint64])
	ms := make([]Member, n)
	for i, v := range g.Draw(t, label) {
		ms[i] = Member{ID: NodeID(fmt.Sprintf("node-%016x", v))}
	}
	return ms
}

func TestPropPreferenceIsDefinitionAndOrderFree(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := genConfig().Draw(t, "cfg")
		ms := genMembers(8).Draw(t, "members")
		r, err := New(cfg, ms)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		shuffled := rapid.Permutation(ms).Draw(t, "shuffled")
		r2, err := New(cfg, shuffled)
		if err != nil {
			t.Fatalf("New(shuffled): %v", err)
		}
		if !r.Equal(r2) {
			t.Fatal("same members in another order gave another ring")
		}
		want := make([]NodeID, len(ms))
		for i, m := range ms {
			want[i] = m.ID
		}
		slices.Sort(want)
		for p := range uint32(cfg.Partitions) {
			pl := r.Preference(p)
			if len(ms) == 0 {
				if pl != nil {
					t.Fatalf("Preference(%d) of empty ring = %v", p, pl)
				}
				continue
			}
			if got := slices.Sorted(slices.Values(pl)); !slices.Equal(got, want) {
				t.Fatalf("Preference(%d) = %v is not every member once", p, pl)
			}
			if naive := naivePreference(cfg, ms, p); !slices.Equal(pl, naive) {
				t.Fatalf("Preference(%d) = %v, definition gives %v", p, pl, naive)
			}
			if !slices.Equal(pl, r2.Preference(p)) {
				t.Fatalf("Preference(%d) differs with input order", p)
			}
		}
	})
}

func TestPropPrimariesDistinct(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := genConfig().Draw(t, "cfg")
		ms := genMembers(8).Draw(t, "members")
		n := rapid.IntRange(1, 10).Draw(t, "n")
		r := mustNew(t, cfg, ms)
		for p := range uint32(cfg.Partitions) {
			pr := r.Primaries(p, n)
			seen := map[NodeID]bool{}
			for _, id := range pr {
				seen[id] = true
			}
			if want := min(n, len(ms)); len(pr) != want || len(seen) != want {
				t.Fatalf("partition %d: primaries %v, want %d distinct", p, pr, want)
			}
		}
	})
}

func TestPropTargets(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := genConfig().Draw(t, "cfg")
		ms := genMembers(8).Draw(t, "members")
		r := mustNew(t, cfg, ms)
		n := rapid.IntRange(0, 10).Draw(t, "n")
		p := uint32(rapid.IntRange(0, cfg.Partitions-1).Draw(t, "p"))
		live := map[NodeID]bool{}
		for _, m := range ms {
			live[m.ID] = rapid.Bool().Draw(t, "alive "+string(m.ID))
		}
		alive := func(id NodeID) bool { return live[id] }
		got := r.Targets(p, n, alive)

		pl := r.Preference(p)
		prim := r.Primaries(p, n)
		var livePrim, deadPrim, liveRest []NodeID
		for _, id := range prim {
			if live[id] {
				livePrim = append(livePrim, id)
			} else {
				deadPrim = append(deadPrim, id)
			}
		}
		for _, id := range pl[len(prim):] {
			if live[id] {
				liveRest = append(liveRest, id)
			}
		}
		nFall := min(len(deadPrim), len(liveRest))
		if len(got) != len(livePrim)+nFall {
			t.Fatalf("Targets = %v, want %d live primaries and %d fallbacks", got, len(livePrim), nFall)
		}
		seen := map[NodeID]bool{}
		hinted := map[NodeID]bool{}
		for i, tg := range got {
			if !live[tg.Node] || seen[tg.Node] {
				t.Fatalf("target %v is dead or repeated in %v", tg, got)
			}
			seen[tg.Node] = true
			if i < len(livePrim) {
				// Primaries first, in preference order.
				if tg.Node != livePrim[i] || tg.HintFor != "" {
					t.Fatalf("target %d = %v, want primary %s", i, tg, livePrim[i])
				}
				continue
			}
			// Then the nearest live non-primaries, each for a distinct
			// dead primary, in preference order.
			j := i - len(livePrim)
			if tg.Node != liveRest[j] || tg.HintFor != deadPrim[j] || hinted[tg.HintFor] {
				t.Fatalf("fallback %d = %v, want %s for %s", j, tg, liveRest[j], deadPrim[j])
			}
			hinted[tg.HintFor] = true
		}
	})
}

// Dynamo paper §4.2: adding a member moves only what the new member takes
// over, and about its fair share of it.
func TestPropMinimalMovementOnAdd(t *testing.T) {
	const nrep = 3
	rapid.Check(t, func(t *rapid.T) {
		// Up to 24 members: beyond ~30, Q=256 leaves each member so few
		// assignments that the 1.5x bound fails for some id sets (see
		// docs/bench/ring.md); the bound is then limited by Q, not by
		// the scheme.
		n := rapid.IntRange(1, 24).Draw(t, "n")
		ms := genIDs(t, n+1, "ids")
		before := mustNew(t, LegacyConfig(), ms[:n])
		after := mustNew(t, LegacyConfig(), ms)
		added := ms[n].ID
		moved := 0
		for _, mv := range Diff(before, after, nrep) {
			if !slices.Equal(mv.Gained, []NodeID{added}) {
				t.Fatalf("partition %d gained %v, want only %s", mv.Partition, mv.Gained, added)
			}
			if len(mv.Lost) > 1 || (n < nrep && len(mv.Lost) != 0) {
				t.Fatalf("partition %d lost %v", mv.Partition, mv.Lost)
			}
			moved += len(mv.Gained)
		}
		q := float64(LegacyPartitions)
		ideal := q * float64(min(nrep, n+1)) / float64(n+1)
		if float64(moved) > 1.5*ideal {
			t.Fatalf("adding a member to %d moved %d assignments, ideal %.1f", n, moved, ideal)
		}
	})
}

func TestPropMinimalMovementOnRemove(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 30).Draw(t, "n")
		nrep := rapid.IntRange(1, 5).Draw(t, "N")
		ms := genIDs(t, n, "ids")
		i := rapid.IntRange(0, n-1).Draw(t, "removed")
		removed := ms[i].ID
		before := mustNew(t, LegacyConfig(), ms)
		after := mustNew(t, LegacyConfig(), slices.Delete(slices.Clone(ms), i, i+1))
		moved := 0
		for _, mv := range Diff(before, after, nrep) {
			if !slices.Equal(mv.Lost, []NodeID{removed}) {
				t.Fatalf("partition %d lost %v, want only %s", mv.Partition, mv.Lost, removed)
			}
			moved += len(mv.Lost)
		}
		if held := before.Load(nrep)[removed]; moved != held {
			t.Fatalf("removing %s moved %d assignments, it held %d", removed, moved, held)
		}
	})
}

func TestPropDiffMatchesBruteForce(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg := genConfig().Draw(t, "cfg")
		pool := genMembers(8).Draw(t, "pool")
		pick := func(label string) ([]Member, *Ring) {
			var ms []Member
			for _, m := range pool {
				if rapid.Bool().Draw(t, label+" "+string(m.ID)) {
					ms = append(ms, m)
				}
			}
			return ms, mustNew(t, cfg, ms)
		}
		msA, a := pick("a")
		msB, b := pick("b")
		n := rapid.IntRange(0, 5).Draw(t, "n")

		var want []Move
		for p := range uint32(cfg.Partitions) {
			pa := naivePreference(cfg, msA, p)[:min(max(n, 0), len(msA))]
			pb := naivePreference(cfg, msB, p)[:min(max(n, 0), len(msB))]
			inA, inB := map[NodeID]bool{}, map[NodeID]bool{}
			for _, id := range pa {
				inA[id] = true
			}
			for _, id := range pb {
				inB[id] = true
			}
			var mv Move
			for _, id := range pb {
				if !inA[id] {
					mv.Gained = append(mv.Gained, id)
				}
			}
			for _, id := range pa {
				if !inB[id] {
					mv.Lost = append(mv.Lost, id)
				}
			}
			if mv.Gained != nil || mv.Lost != nil {
				mv.Partition = p
				want = append(want, mv)
			}
		}
		if got := Diff(a, b, n); !movesEqual(got, want) {
			t.Fatalf("Diff = %v, brute force = %v", got, want)
		}
	})
}

func TestPropPartitionOfIsTopBits(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		log2q := rapid.IntRange(0, 16).Draw(t, "log2Q")
		r := mustNew(t, Config{Partitions: 1 << log2q}, nil)
		key := rapid.SliceOf(rapid.Byte()).Draw(t, "key")
		h := xxhash.Sum64(key)
		want := uint32(0)
		if log2q > 0 {
			want = uint32(h >> (64 - log2q))
		}
		if r.Hash(key) != h {
			t.Fatalf("Hash = %#x, want xxhash %#x", r.Hash(key), h)
		}
		if got := r.PartitionOf(key); got != want || got != r.PartitionOfHash(h) || int(got) >= r.Partitions() {
			t.Fatalf("PartitionOf = %d, PartitionOfHash = %d, want %d", got, r.PartitionOfHash(h), want)
		}
		if r.PartitionStart(want) > h || (log2q > 0 && h-r.PartitionStart(want) >= 1<<(64-log2q)) {
			t.Fatalf("hash %#x outside partition %d starting at %#x", h, want, r.PartitionStart(want))
		}
	})
}
