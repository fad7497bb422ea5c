package siblings

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/vclock"
)

// The model: replicas of one key, each an actor that coordinates client
// writes (blind, with its own context, or with a context read earlier,
// possibly stale) under the client caps, and replicas merging each
// other's sets under the policy, in any order. Small caps make trimming
// frequent. Values carry skewed wall clocks.

type sim struct {
	t       *rapid.T
	p       Policy
	reps    []vclock.Set
	actors  []vclock.Actor
	acked   map[vclock.Dot]vclock.Vector // acknowledged writes and their client contexts
	trimmed map[vclock.Dot]bool          // reported by some merge
	reads   []vclock.Vector
	clock   int64
}

func newSim(t *rapid.T, p Policy) *sim {
	n := rapid.IntRange(2, 4).Draw(t, "replicas")
	s := &sim{t: t, p: p, reps: make([]vclock.Set, n), acked: map[vclock.Dot]vclock.Vector{}, trimmed: map[vclock.Dot]bool{}}
	for i := range n {
		s.actors = append(s.actors, vclock.Actor{Node: fmt.Sprintf("n%d", i), Epoch: 1})
	}
	return s
}

func (s *sim) write(t *rapid.T) {
	r := rapid.IntRange(0, len(s.reps)-1).Draw(t, "coordinator")
	var ctx vclock.Vector
	switch rapid.IntRange(0, 2).Draw(t, "context") {
	case 1:
		ctx = s.reps[r].Context
	case 2:
		if len(s.reads) > 0 {
			ctx = s.reads[rapid.IntRange(0, len(s.reads)-1).Draw(t, "read")]
		}
	}
	s.clock += 10
	v := vclock.Value{
		Data:      make([]byte, rapid.SampledFrom([]int{0, 10, 200, 700}).Draw(t, "size")),
		Deleted:   rapid.IntRange(0, 9).Draw(t, "delete") == 0,
		Timestamp: s.clock + int64(rapid.IntRange(-30, 30).Draw(t, "skew")),
	}
	if v.Deleted {
		v.Data = nil
	}
	next, dot := vclock.Update(s.reps[r], ctx, s.actors[r], v)
	if s.p.CheckWrite(next) != nil {
		return // refused: not acknowledged
	}
	s.reps[r] = next
	s.acked[dot] = ctx
}

func (s *sim) read(t *rapid.T) {
	r := rapid.IntRange(0, len(s.reps)-1).Draw(t, "replica")
	s.reads = append(s.reads, s.reps[r].Context)
}

func (s *sim) merge(t *rapid.T) {
	from := rapid.IntRange(0, len(s.reps)-1).Draw(t, "from")
	to := rapid.IntRange(0, len(s.reps)-1).Draw(t, "to")
	s.apply(from, to)
}

// apply merges replica from into replica to and checks the result.
func (s *sim) apply(from, to int) bool {
	m := s.p.Merge(s.reps[to], s.reps[from])
	if err := m.Set.Validate(); err != nil {
		s.t.Fatalf("merged set invalid: %v", err)
	}
	for _, sib := range m.Trimmed {
		s.trimmed[sib.Dot] = true
		if !m.Set.Context.Covers(sib.Dot) {
			s.t.Fatalf("trimmed %v is not covered by the context", sib.Dot)
		}
	}
	// Commutative whatever the caps.
	if back := s.p.Merge(s.reps[from], s.reps[to]); !back.Set.Equal(m.Set) {
		s.t.Fatalf("Merge(a, b) != Merge(b, a)")
	}
	changed := !m.Set.Equal(s.reps[to])
	s.reps[to] = m.Set
	return changed
}

func (s *sim) checkCaps() {
	p := s.p.withDefaults()
	for i, r := range s.reps {
		if len(r.Siblings) > p.MergeCount || Bytes(r) > p.MergeBytes {
			s.t.Fatalf("replica %d holds %d siblings, %d bytes: over the merge caps", i, len(r.Siblings), Bytes(r))
		}
	}
}

// converge runs anti-entropy (every replica merges every other) until
// nothing changes, and returns the rounds it took.
func (s *sim) converge() int {
	for round := 1; ; round++ {
		changed := false
		for to := range s.reps {
			for from := range s.reps {
				if from != to && s.apply(from, to) {
					changed = true
				}
			}
		}
		if !changed {
			return round
		}
		if round > 50 {
			s.t.Fatal("no fixpoint after 50 rounds of anti-entropy")
		}
	}
}

// checkNoSilentLoss: every acknowledged write is in the converged set,
// or was superseded by an acknowledged write whose context covered it,
// or was reported as trimmed.
func (s *sim) checkNoSilentLoss() {
	final := s.reps[0]
	for dot := range s.acked {
		if _, ok := final.Find(dot); ok {
			continue
		}
		if s.trimmed[dot] {
			continue
		}
		superseded := false
		for _, ctx := range s.acked {
			if ctx.Covers(dot) {
				superseded = true
				break
			}
		}
		if !superseded {
			s.t.Fatalf("acknowledged write %v vanished: not superseded, not reported as trimmed", dot)
		}
	}
}

func smallPolicy() Policy {
	return Policy{MaxCount: 4, MaxBytes: 1500, MergeCount: 5, MergeBytes: 1800, Warn: 3}
}

// TestPropertyReplicasConverge: whatever the writes and the order of
// merges, anti-entropy reaches a fixpoint where every replica holds the
// same set, within the merge caps at every step, and no acknowledged
// write is lost without a report.
func TestPropertyReplicasConverge(t *testing.T) {
	var cases, trimming, multiRound int
	rapid.Check(t, func(t *rapid.T) {
		cases++
		s := newSim(t, smallPolicy())
		t.Repeat(map[string]func(*rapid.T){
			"write": s.write,
			"read":  s.read,
			"merge": s.merge,
			"":      func(*rapid.T) { s.checkCaps() },
		})
		rounds := s.converge()
		if len(s.trimmed) > 0 {
			trimming++
		}
		if rounds > 2 {
			multiRound++
		}
		for i := range s.reps {
			if !s.reps[i].Equal(s.reps[0]) {
				t.Fatalf("replica %d differs after %d rounds of anti-entropy", i, rounds)
			}
		}
		s.checkCaps()
		s.checkNoSilentLoss()
	})
	t.Logf("%d histories, %d trimmed something, %d needed more than two rounds to converge", cases, trimming, multiRound)
	if trimming == 0 {
		t.Fatal("no history trimmed: the test does not exercise the policy")
	}
}

// TestPropertyOrderFreeWithinCaps: two (or more) replicas that apply the
// same inputs in any order end equal. Inputs are replica states built by
// writes and merges under generous caps; as long as no merge trims, every
// order of merging them gives the same set (the merge is vclock.Sync).
func TestPropertyOrderFreeWithinCaps(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := newSim(t, Policy{MaxCount: 5, MaxBytes: 1500, MergeCount: 100, MergeBytes: 1 << 20})
		t.Repeat(map[string]func(*rapid.T){"write": s.write, "read": s.read, "merge": s.merge})
		inputs := slices.Clone(s.reps)
		perm := rapid.Permutation(inputs).Draw(t, "order")
		// Replica X applies the inputs in their order, replica Y in a
		// random one, each starting from its own (empty) state.
		var x, y vclock.Set
		for _, in := range inputs {
			m := s.p.Merge(x, in)
			if m.Trimmed != nil {
				t.Fatal("trimmed within generous caps")
			}
			x = m.Set
		}
		for _, in := range perm {
			y = s.p.Merge(y, in).Set
		}
		if !x.Equal(y) {
			t.Fatal("the same inputs in two orders gave different sets")
		}
		// Grouping does not matter either.
		if len(inputs) >= 3 {
			left := s.p.Merge(s.p.Merge(inputs[0], inputs[1]).Set, inputs[2]).Set
			right := s.p.Merge(inputs[0], s.p.Merge(inputs[1], inputs[2]).Set).Set
			if !left.Equal(right) {
				t.Fatal("merge not associative within the caps")
			}
		}
	})
}

// TestPropertyTrimmedSetsAreNewerInSyncOrder: Fit only moves a set up in
// the order vclock.Sync joins in (Sync(s, Fit(s)) == Fit(s)), which is
// why merging under the policy converges.
func TestPropertyTrimmedSetsAreNewerInSyncOrder(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := newSim(t, Policy{MaxCount: 5, MaxBytes: 1500, MergeCount: 100, MergeBytes: 1 << 20})
		t.Repeat(map[string]func(*rapid.T){"write": s.write, "read": s.read, "merge": s.merge})
		var all vclock.Set
		for _, r := range s.reps {
			all = vclock.Sync(all, r)
		}
		tight := Policy{MaxCount: 1, MaxBytes: 1, MergeCount: rapid.IntRange(1, 6).Draw(t, "count"), MergeBytes: int64(rapid.IntRange(1, 3000).Draw(t, "bytes"))}
		f := tight.Fit(all)
		if !vclock.Sync(all, f.Set).Equal(f.Set) || !vclock.Sync(f.Set, all).Equal(f.Set) {
			t.Fatal("Fit(s) is not above s in the Sync order")
		}
		if len(f.Trimmed)+len(f.Set.Siblings) != len(all.Siblings) {
			t.Fatal("siblings neither kept nor reported")
		}
		if !tight.Fit(f.Set).Set.Equal(f.Set) {
			t.Fatal("Fit not idempotent")
		}
	})
}
