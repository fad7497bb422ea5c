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

// TestBalanceTable prints the tables of docs/bench/ring.md. It takes about a
// minute, so it runs only with RING_BALANCE_TABLE=1.
func TestBalanceTable(t *testing.T) {
	if os.Getenv("RING_BALANCE_TABLE") == "" {
		t.Skip("set RING_BALANCE_TABLE=1 to print the balance tables")
	}
	sizes := []int{3, 5, 10, 50, 100}
	var sb strings.Builder
	sb.WriteString("\nDefaults (Q=256, T=64), max/mean primary load at N=3\n\n")
	sb.WriteString("| members | assignments/member | node-01..node-NN | random ids: median | p99 | max (1000 sets) |\n|---|---|---|---|---|---|\n")
	for _, n := range sizes {
		s := balanceSample(t, LegacyConfig(), n, 1000)
		fmt.Fprintf(&sb, "| %d | %.1f | %.3f | %.3f | %.3f | %.3f |\n", n, 768/float64(n),
			maxOverMean(mustNew(t, LegacyConfig(), names(n)), 3), quantile(s, .5), quantile(s, .99), s[len(s)-1])
	}
	sb.WriteString("\nTuning: median / p99 of max/mean over 200 random id sets, N=3\n\n| Q | T |")
	for _, n := range sizes {
		fmt.Fprintf(&sb, " %d |", n)
	}
	sb.WriteString("\n|---|---|---|---|---|---|---|\n")
	for _, q := range []int{64, 256, 1024} {
		for _, tk := range []int{16, 32, 64, 128, 256, 1024} {
			fmt.Fprintf(&sb, "| %d | %d |", q, tk)
			for _, n := range sizes {
				s := balanceSample(t, Config{Partitions: q, Tokens: tk}, n, 200)
				fmt.Fprintf(&sb, " %.2f / %.2f |", quantile(s, .5), quantile(s, .99))
			}
			sb.WriteString("\n")
		}
	}
	sb.WriteString("\nMovement on adding one member (defaults, N=3): moved assignments / ideal Q*N/(n+1), 1000 random id sets\n\n")
	sb.WriteString("| members before | median | p99 | max | sets above 1.5 |\n|---|---|---|---|---|\n")
	for _, n := range []int{3, 5, 10, 20, 30, 50, 100} {
		rng := rand.New(rand.NewPCG(2, uint64(n)))
		s := make([]float64, 1000)
		over := 0
		for i := range s {
			ms := randomMembers(rng, n+1)
			moved := 0
			for _, mv := range Diff(mustNew(t, LegacyConfig(), ms[:n]), mustNew(t, LegacyConfig(), ms), 3) {
				moved += len(mv.Gained)
			}
			s[i] = float64(moved) / (256 * 3 / float64(n+1))
			if s[i] > 1.5 {
				over++
			}
		}
		slices.Sort(s)
		fmt.Fprintf(&sb, "| %d | %.2f | %.2f | %.2f | %d |\n", n, quantile(s, .5), quantile(s, .99), s[len(s)-1], over)
	}
	t.Log(sb.String())
}
