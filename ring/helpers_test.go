package ring

import (
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// names returns n canonical member ids: node-01, node-02, ...
func names(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: NodeID(fmt.Sprintf("node-%02d", i+1))}
	}
	return ms
}

// fataler is what testing.TB and *rapid.T have in common.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

func mustNew(t fataler, cfg Config, ms []Member) *Ring {
	t.Helper()
	r, err := New(cfg, ms)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// naivePreference is the definition of a preference list, computed the slow
// way: for each member, the clockwise distance from the partition start to
// its nearest token at or after it; sort by (distance, id).
func naivePreference(cfg Config, ms []Member, p uint32) []NodeID {
	cfg = cfg.withDefaults()
	hash := cfg.Hash
	if hash == nil {
		hash = xxhash.Sum64
	}
	shift := uint(64)
	for q := cfg.Partitions; q > 1; q >>= 1 {
		shift--
	}
	start := uint64(p) << shift
	type cand struct {
		id   NodeID
		dist uint64
	}
	var cs []cand
	for _, m := range ms {
		best := ^uint64(0)
		for i := range cfg.Tokens * max(m.Weight, 1) {
			d := hash(tokenInput(nil, m.ID, i)) - start
			best = min(best, d)
		}
		cs = append(cs, cand{m.ID, best})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		switch {
		case a.dist < b.dist:
			return -1
		case a.dist > b.dist:
			return 1
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	out := make([]NodeID, len(cs))
	for i, c := range cs {
		out[i] = c.id
	}
	return out
}

// maxOverMean returns max/mean of the primary-replica load for n.
func maxOverMean(r *Ring, n int) float64 {
	load := r.Load(n)
	total, hi := 0, 0
	for _, v := range load {
		total += v
		hi = max(hi, v)
	}
	return float64(hi) * float64(len(load)) / float64(total)
}

func reversed(ms []Member) []Member {
	out := slices.Clone(ms)
	slices.Reverse(out)
	return out
}
