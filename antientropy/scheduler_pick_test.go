package antientropy

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// sortedPick is Next's order as it was written before the linear pass: every
// candidate collected and sorted (the comparison as it was), then tried in
// turn with start. The property test below holds Next to it.
func sortedPick[P comparable](s *Scheduler[P], now time.Time, alive func(P) bool) (Job[P], bool) {
	if s.running {
		return Job[P]{}, false
	}
	paced := s.lastStart.IsZero() || !now.Before(s.lastStart.Add(s.pace()))
	var cands []candidate
	for p, sp := range s.parts {
		if len(sp.peers) == 0 || now.Before(sp.retryAt) {
			continue
		}
		if sp.mark != 0 {
			cands = append(cands, candidate{p: p, repair: true, key: sp.mark})
			continue
		}
		due := sp.last.Add(s.interval)
		if sp.last.IsZero() {
			due = time.Time{}
		}
		if paced && !now.Before(due) {
			cands = append(cands, candidate{p: p, due: due})
		}
	}
	slices.SortFunc(cands, func(a, b candidate) int {
		switch {
		case a.repair != b.repair:
			if a.repair {
				return -1
			}
			return 1
		case a.repair:
			return cmp.Compare(a.key, b.key)
		}
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return cmp.Compare(a.p, b.p)
	})
	for _, c := range cands {
		if s.start(c, now, alive) {
			return s.job, true
		}
	}
	return Job[P]{}, false
}

// cloneSched copies a scheduler's state deeply enough for the two picks to
// run on equal copies.
func cloneSched(s *Scheduler[string]) *Scheduler[string] {
	c := *s
	c.parts = make(map[uint32]*schedPart[string], len(s.parts))
	for p, sp := range s.parts {
		x := *sp
		x.peers = slices.Clone(sp.peers)
		c.parts[p] = &x
	}
	return &c
}

// TestNextPicksInSortedOrder drives random schedules (marks, failures, dead
// peers, peerless partitions, ties of due times) and checks at every step
// that Next picks what sorting every candidate picks, and leaves the same
// state (the postponed partitions, the rotation of peers).
func TestNextPicksInSortedOrder(t *testing.T) {
	peers := []string{"a", "b", "c"}
	for seed := range uint64(200) {
		rng := rand.New(rand.NewPCG(seed, 7))
		s, err := NewScheduler[string](time.Duration(1+rng.IntN(10))*time.Second, time.Duration(1+rng.IntN(3))*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		for p := range uint32(1 + rng.IntN(40)) {
			var ps []string
			for _, id := range peers {
				if rng.IntN(4) > 0 {
					ps = append(ps, id)
				}
			}
			last := time.Time{}
			if rng.IntN(3) > 0 {
				last = now.Add(-time.Duration(rng.IntN(4)) * time.Second) // ties on purpose
			}
			s.SetPartition(p, ps, last)
		}
		for step := range 300 {
			now = now.Add(time.Duration(rng.IntN(1500)) * time.Millisecond)
			if rng.IntN(5) == 0 {
				s.MarkNeedsRepair(uint32(rng.IntN(45)))
			}
			if s.running && rng.IntN(5) > 0 {
				var err error
				if rng.IntN(3) == 0 {
					err = errTest
				}
				s.Done(now, err)
			}
			dead := map[string]bool{}
			for _, id := range peers {
				dead[id] = rng.IntN(4) == 0
			}
			alive := func(id string) bool { return !dead[id] }
			ref := cloneSched(s)
			want, wok := sortedPick(ref, now, alive)
			got, gok := s.Next(now, alive)
			if got != want || gok != wok {
				t.Fatalf("seed %d step %d: Next = %+v %v, sorted order picks %+v %v", seed, step, got, gok, want, wok)
			}
			for p, sp := range s.parts {
				r := ref.parts[p]
				if sp.next != r.next || !sp.retryAt.Equal(r.retryAt) {
					t.Fatalf("seed %d step %d: partition %d state %+v, sorted order leaves %+v", seed, step, p, *sp, *r)
				}
			}
			if s.lastStart != ref.lastStart || s.running != ref.running {
				t.Fatalf("seed %d step %d: scheduler state differs", seed, step)
			}
		}
	}
}

type testErr struct{}

func (testErr) Error() string { return "exchange failed" }

var errTest error = testErr{}

// BenchmarkSchedulerNext: one pick and its Done with every partition of a
// Q=1024 ring due (an interval shorter than the exchanges take), as in a
// node with --profile local under load.
func BenchmarkSchedulerNext(b *testing.B) {
	for _, q := range []int{256, 1024} {
		b.Run("q="+strconv.Itoa(q), func(b *testing.B) {
			s, err := NewScheduler[string](5*time.Second, time.Second)
			if err != nil {
				b.Fatal(err)
			}
			now := t0
			for p := range uint32(q) {
				s.SetPartition(p, []string{"a", "b"}, now.Add(-time.Duration(p)*time.Millisecond))
			}
			now = now.Add(time.Minute) // all due
			b.ReportAllocs()
			for b.Loop() {
				now = now.Add(s.pace()) // the next paced slot
				if _, ok := s.Next(now, nil); !ok {
					b.Fatal("nothing due")
				}
				s.Done(now.Add(-time.Minute), nil) // stays due
			}
		})
	}
}
