package ring

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
)

// randomMembers returns n member ids drawn from rng, shaped like the random
// node ids a real cluster would use.
func randomMembers(rng *rand.Rand, n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{ID: NodeID(fmt.Sprintf("node-%016x", rng.Uint64()))}
	}
	return ms
}

// balanceSample returns max/mean primary load at N=3 for sets random member
// sets of size n, ascending. The seed is fixed, so the result is too.
func balanceSample(t testing.TB, cfg Config, n, sets int) []float64 {
	rng := rand.New(rand.NewPCG(1, uint64(n)))
	out := make([]float64, sets)
	for i := range out {
		out[i] = maxOverMean(mustNew(t, cfg, randomMembers(rng, n)), 3)
	}
	slices.Sort(out)
	return out
}

func quantile(sorted []float64, q float64) float64 {
	return sorted[int(q*float64(len(sorted)-1)+0.5)]
}

// Dynamo paper §6.2 (uniform load distribution): with the defaults, the
// primary-replica load of 10 members at N=3 stays within 1.3x the mean.
func TestPaper6_2_BalanceDefaults(t *testing.T) {
	for _, n := range []int{3, 5, 10, 50, 100} {
		got := maxOverMean(mustNew(t, LegacyConfig(), names(n)), 3)
		t.Logf("members=%d (node-01..): max/mean %.3f", n, got)
		if n == 3 && got != 1 {
			t.Errorf("3 members at N=3 must each hold every partition, max/mean %.3f", got)
		}
		if n == 10 && got > 1.3 {
			t.Errorf("10 members: max/mean %.3f > 1.3", got)
		}
	}
	// Not only for one lucky set of names: 100 random 10-member clusters.
	s := balanceSample(t, LegacyConfig(), 10, 100)
	t.Logf("10 random members x100: median %.3f, p90 %.3f, max %.3f", quantile(s, .5), quantile(s, .9), s[len(s)-1])
	if quantile(s, .5) > 1.2 || quantile(s, .9) > 1.3 {
		t.Errorf("10 random members: median %.3f, p90 %.3f; want <= 1.2, <= 1.3", quantile(s, .5), quantile(s, .9))
	}
}

// Weight scales load: a member of weight 2 among weight-1 members holds
// about twice the mean of the others.
func TestBalanceWeight(t *testing.T) {
	ms := names(8)
	ms[3].Weight = 2
	r := mustNew(t, LegacyConfig(), ms)
	load := r.Load(3)
	others := 0
	for id, v := range load {
		if id != ms[3].ID {
			others += v
		}
	}
	ratio := float64(load[ms[3].ID]) / (float64(others) / 7)
	t.Logf("weight 2 holds %.2fx the mean of weight 1", ratio)
	if ratio < 1.5 || ratio > 2.5 {
		t.Errorf("weight-2 member holds %.2fx the others' mean, want about 2", ratio)
	}
}

// TestBalanceTable prints the tables of docs/bench/ring.md, old ring and
// new assignment in one run. It takes a few minutes, so it runs only with
// RING_BALANCE_TABLE=1.
func TestBalanceTable(t *testing.T) {
	if os.Getenv("RING_BALANCE_TABLE") == "" {
		t.Skip("set RING_BALANCE_TABLE=1 to print the balance tables")
	}
	var sb strings.Builder
	sizes := []int{3, 4, 5, 6, 8, 10, 15, 20, 30, 40, 50, 60, 70, 80, 84, 90, 100}
	const sets = 100
	type scheme struct {
		name string
		cfg  Config
	}
	schemes := []scheme{
		{"tokens Q=256 (legacy)", LegacyConfig()},
		{"tokens Q=1024", Config{Mode: ModeTokens, Partitions: 1024}},
		{"claim Q=1024 (default)", DefaultConfig()},
	}
	stats := func(cfg Config, ms []Member) Stats { return mustNew(t, cfg, ms).Stats(3) }
	fmt.Fprintf(&sb, "\nBalance at N=3, no zones: max/mean of replicas | of first primaries, median / p99 / max over %d random id sets\n\n| members |", sets)
	for _, sc := range schemes {
		fmt.Fprintf(&sb, " %s: replicas | first |", sc.name)
	}
	sb.WriteString("\n|---|---|---|---|---|---|---|\n")
	for _, n := range sizes {
		fmt.Fprintf(&sb, "| %d |", n)
		for _, sc := range schemes {
			rng := rand.New(rand.NewPCG(1, uint64(n)))
			var rep, first []float64
			for range sets {
				st := stats(sc.cfg, randomMembers(rng, n))
				rep, first = append(rep, st.Replicas.MaxOverMean), append(first, st.First.MaxOverMean)
			}
			slices.Sort(rep)
			slices.Sort(first)
			fmt.Fprintf(&sb, " %.2f / %.2f / %.2f | %.2f / %.2f / %.2f |", quantile(rep, .5), quantile(rep, .99), rep[len(rep)-1], quantile(first, .5), quantile(first, .99), first[len(first)-1])
		}
		sb.WriteString("\n")
	}

	sb.WriteString("\nClaim, worst max/mean over every member count 3..100 (one random id set each), N=3, no zones\n\n| Q | replicas: worst (at members) | first primaries: worst (at members) | Plan of 100 members from nothing |\n|---|---|---|---|\n")
	for _, q := range []int{256, 512, 1024, 2048, 4096} {
		cfg := Config{Mode: ModeClaim, Partitions: q}
		wr, wf, atR, atF := 0.0, 0.0, 0, 0
		for n := 3; n <= 100; n++ {
			st := stats(cfg, randomMembers(rand.New(rand.NewPCG(3, uint64(n))), n))
			if st.Replicas.MaxOverMean > wr {
				wr, atR = st.Replicas.MaxOverMean, n
			}
			if st.First.MaxOverMean > wf {
				wf, atF = st.First.MaxOverMean, n
			}
		}
		ms := randomMembers(rand.New(rand.NewPCG(4, 100)), 100)
		res := testing.Benchmark(func(b *testing.B) {
			for b.Loop() {
				if _, err := Plan(cfg, nil, ms); err != nil {
					b.Fatal(err)
				}
			}
		})
		fmt.Fprintf(&sb, "| %d | %.3f (%d) | %.3f (%d) | %.1f ms |\n", q, wr, atR, wf, atF, float64(res.NsPerOp())/1e6)
	}

	sb.WriteString("\nClaim Q=1024 with zones, N=3: max over members of load/ideal (ideal: water-filled share), replicas | first primaries, median / max over 50 random id sets; zone guarantee\n\n| members | zones | replicas | first | guarantee held |\n|---|---|---|---|---|\n")
	layouts := []struct {
		name string
		zone func(i, n int, rng *rand.Rand) string
	}{
		{"3 even", func(i, n int, _ *rand.Rand) string { return fmt.Sprint("z", i%3) }},
		{"45% / 45% / 10%", func(i, n int, _ *rand.Rand) string {
			switch {
			case i < n*45/100:
				return "a"
			case i < n*90/100:
				return "b"
			}
			return "c"
		}},
		{"n-1 / 1 / 1... (lone members)", func(i, n int, _ *rand.Rand) string {
			if i < n-2 {
				return "big"
			}
			return fmt.Sprint("lone", i)
		}},
		{"2 even (fewer than N)", func(i, n int, _ *rand.Rand) string { return fmt.Sprint("z", i%2) }},
		{"random among 5", func(i, n int, rng *rand.Rand) string { return fmt.Sprint("z", rng.IntN(5)) }},
	}
	for _, n := range []int{6, 10, 30, 100} {
		for _, lay := range layouts {
			rng := rand.New(rand.NewPCG(5, uint64(n)))
			var rep, first []float64
			held := 0
			for range 50 {
				ms := randomMembers(rng, n)
				for i := range ms {
					ms[i].Zone = lay.zone(i, n, rng)
				}
				st := stats(DefaultConfig(), ms)
				rep, first = append(rep, st.Replicas.MaxOverIdeal), append(first, st.First.MaxOverIdeal)
				if st.Zones.Held {
					held++
				}
			}
			slices.Sort(rep)
			slices.Sort(first)
			fmt.Fprintf(&sb, "| %d | %s | %.3f / %.3f | %.3f / %.3f | %d/50 |\n", n, lay.name, quantile(rep, .5), rep[len(rep)-1], quantile(first, .5), first[len(first)-1], held)
		}
	}

	sb.WriteString("\nWeights, claim Q=1024, N=3, 20 members of which 5 have weight 2 and 1 weight 4: replicas held / ideal\n\n| weight | ideal replicas | held (min-max) |\n|---|---|---|\n")
	ms := randomMembers(rand.New(rand.NewPCG(6, 20)), 20)
	for i := range 5 {
		ms[i].Weight = 2
	}
	ms[5].Weight = 4
	byW := map[int][]int{}
	idealW := map[int]float64{}
	for _, l := range stats(DefaultConfig(), ms).Loads {
		byW[l.Weight] = append(byW[l.Weight], l.Replicas)
		idealW[l.Weight] = l.IdealReplicas
	}
	for _, w := range []int{1, 2, 4} {
		fmt.Fprintf(&sb, "| %d | %.1f | %d-%d |\n", w, idealW[w], slices.Min(byW[w]), slices.Max(byW[w]))
	}
	t.Log(sb.String())
}

// TestMovementTable prints the movement table of docs/bench/ring.md
// (RING_BALANCE_TABLE=1, about two minutes).
func TestMovementTable(t *testing.T) {
	if os.Getenv("RING_BALANCE_TABLE") == "" {
		t.Skip("set RING_BALANCE_TABLE=1 to print the movement table")
	}
	var sb strings.Builder
	sb.WriteString("\nMovement of one join and one leave, N=3: moved replicas / the change's share (the joiner's ideal replicas, or the leaver's replicas), median / p99 / max (cases above 1.5) over 100 random id sets x (join, leave); last column: moved / Explanation.IdealMoved\n\n| members before | tokens Q=256 | claim Q=1024 | claim, 3 zones | claim, random zones (0-8, some none) | same, / IdealMoved |\n|---|---|---|---|---|---|\n")
	for _, n := range []int{3, 5, 10, 20, 30, 50, 70, 100} {
		fmt.Fprintf(&sb, "| %d |", n)
		for _, col := range []struct {
			cfg     Config
			zones   int
			toBound bool
		}{{LegacyConfig(), 0, false}, {DefaultConfig(), 0, false}, {DefaultConfig(), 3, false}, {DefaultConfig(), -1, false}, {DefaultConfig(), -1, true}} {
			var rs []float64
			over := 0
			for s := range 100 {
				rng := rand.New(rand.NewPCG(uint64(s), uint64(n)))
				ms := randomMembers(rng, n+1)
				nz := 1 + rng.IntN(8)
				for i := range ms {
					switch {
					case col.zones > 0:
						ms[i].Zone = fmt.Sprint("z", i%col.zones)
					case col.zones < 0:
						if z := rng.IntN(nz + 1); z < nz {
							ms[i].Zone = fmt.Sprint("z", z)
						}
					}
				}
				leaver := ms[s%n].ID
				leave := slices.Delete(slices.Clone(ms[:n]), s%n, s%n+1)
				for _, change := range [][2][]Member{{ms[:n], ms}, {ms[:n], leave}} {
					var before, after *Ring
					if col.cfg.Mode == ModeClaim {
						a, err := Plan(col.cfg, nil, change[0])
						if err != nil {
							t.Fatal(err)
						}
						b, err := Plan(col.cfg, a, change[1])
						if err != nil {
							t.Fatal(err)
						}
						before, _ = FromAssignment(col.cfg, a)
						after, _ = FromAssignment(col.cfg, b)
					} else {
						before, after = mustNew(t, col.cfg, change[0]), mustNew(t, col.cfg, change[1])
					}
					e := Explain(before, after, 3)
					share := 0.0
					if len(change[1]) > len(change[0]) {
						share = e.After.Loads[after.index(ms[n].ID)].IdealReplicas
					} else {
						share = float64(e.Before.Loads[before.index(leaver)].Replicas)
					}
					if col.toBound {
						share = e.IdealMoved
					}
					x := float64(e.Moved) / share
					rs = append(rs, x)
					if x > 1.5 {
						over++
					}
				}
			}
			slices.Sort(rs)
			fmt.Fprintf(&sb, " %.2f / %.2f / %.2f (%d) |", quantile(rs, .5), quantile(rs, .99), rs[len(rs)-1], over)
		}
		sb.WriteString("\n")
	}
	t.Log(sb.String())
}
