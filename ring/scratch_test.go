package ring

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

func TestScratchZones(t *testing.T) {
	worstRep, worstFirst := 0.0, 0.0
	outside := 0
	total := 0
	for trial := range 300 {
		rng := rand.New(rand.NewPCG(uint64(trial), 7))
		m := 1 + rng.IntN(100)
		nz := rng.IntN(7)
		ms := randomMembers(rng, m)
		for i := range ms {
			if nz > 0 {
				ms[i].Zone = fmt.Sprintf("z%d", rng.IntN(nz))
			}
			if rng.IntN(4) == 0 {
				ms[i].Weight = 1 + rng.IntN(4)
			}
		}
		n := 1 + rng.IntN(5)
		q := []int{64, 256, 1024}[rng.IntN(3)]
		cfg := Config{Mode: ModeClaim, Partitions: q, Replicas: n}
		a, err := Plan(cfg, nil, ms)
		if err != nil {
			t.Fatal(err)
		}
		r, _ := FromAssignment(cfg, a)
		st := r.Stats(n)
		for _, l := range st.Loads {
			total++
			fr := float64(l.Replicas) / math.Max(1.3*l.IdealReplicas, math.Ceil(l.IdealReplicas))
			ff := float64(l.First) / math.Max(1.3*l.IdealFirst, math.Ceil(l.IdealFirst))
			if l.Replicas < int(math.Floor(l.IdealReplicas)) || l.Replicas > int(math.Ceil(l.IdealReplicas)) {
				outside++
			}
			if fr > worstRep {
				worstRep = fr
				fmt.Printf("trial %d m=%d nz=%d n=%d q=%d: rep %d ideal %.2f zone %q w %d\n", trial, m, nz, n, q, l.Replicas, l.IdealReplicas, l.Zone, l.Weight)
			}
			if ff > worstFirst {
				worstFirst = ff
				fmt.Printf("trial %d m=%d nz=%d n=%d q=%d: first %d ideal %.2f\n", trial, m, nz, n, q, l.First, l.IdealFirst)
			}
		}
		if nz >= n && !st.Zones.Held && m >= n {
			// count distinct actual zones
			zs := map[string]bool{}
			for _, x := range ms {
				zs[x.Zone] = true
			}
			if len(zs) >= n {
				t.Errorf("trial %d: zones %d n %d not held: %s", trial, len(zs), n, st.Zones.Reason)
			}
		}
	}
	fmt.Printf("worst rep/bound %.3f first/bound %.3f; outside [floor,ceil]: %d of %d\n", worstRep, worstFirst, outside, total)
}
