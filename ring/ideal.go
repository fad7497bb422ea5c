package ring

import (
	"math/big"
)

// shares are the ideal loads of a member set under Plan's constraints, and
// the integer ranges Plan aims for.
//
// Replica loads: every partition has r = min(N, M) owners, and the zones of
// its owners are bounded (zoneBounds): zone z holds between zlo[z] and
// zhi[z] of them. A zone's ideal total is its weight's share of Q*r,
// water-filled into [Q*zlo[z], Q*zhi[z]] (zones that cannot hold their
// share are capped and the rest is spread over the others in proportion to
// weight); a member's ideal is its weight's share of its zone's total,
// water-filled into [0, Q] (a member holds at most one replica of a
// partition). This is the "ideal" of the zone balance bounds: with zones of
// 5, 5 and 1 members at N=3 the lone member's ideal is Q, every partition.
//
// First primaries: every member's ideal is its weight's share of Q. A
// member can be first only where it is an owner, and its replica ideal is
// never below this share, so the ideal is reachable fractionally.
type shares struct {
	replica          []float64 // ideal replica load per member
	repLo, repHi     []int     // floor and ceiling of replica
	first            []float64 // ideal first-primary load per member
	firstLo, firstHi []int
	zoneLo, zoneHi   []int // floor and ceiling of each zone's replica total
	zoneShare        []float64
}

// zoneBounds returns, for r owners per partition over zones of the given
// sizes, how many owners each zone holds at least and at most: the most
// even spread. k is the least integer with sum(min(size, k)) >= r; a zone
// holds min(size, k-1) to min(size, k). With at least r zones (of any
// sizes) k is 1: at most one owner per zone, r distinct zones. With fewer,
// every zone holds k-1 or k owners (or all its members if it has fewer),
// which keeps every zone present whenever r allows it.
func zoneBounds(r int, sizes []int) (lo, hi []int) {
	lo, hi = make([]int, len(sizes)), make([]int, len(sizes))
	if r == 0 {
		return lo, hi
	}
	k := 1
	for {
		sum := 0
		for _, s := range sizes {
			sum += min(s, k)
		}
		if sum >= r {
			break
		}
		k++
	}
	for z, s := range sizes {
		lo[z], hi[z] = min(s, k-1), min(s, k)
	}
	return lo, hi
}

// computeShares returns the shares of members (effective weights, zone
// numbers in [0, nz)) for Q partitions and r owners each.
func computeShares(q, r int, weights []int, zone []int32, nz int) shares {
	m := len(weights)
	sh := shares{
		replica: make([]float64, m), repLo: make([]int, m), repHi: make([]int, m),
		first: make([]float64, m), firstLo: make([]int, m), firstHi: make([]int, m),
	}
	if m == 0 {
		return sh
	}
	sizes := make([]int, nz)
	zw := make([]int64, nz)
	total := int64(0)
	for i, w := range weights {
		sizes[zone[i]]++
		zw[zone[i]] += int64(w)
		total += int64(w)
	}
	zlo, zhi := zoneBounds(r, sizes)
	lo, hi := make([]*big.Rat, nz), make([]*big.Rat, nz)
	for z := range nz {
		lo[z] = new(big.Rat).SetInt64(int64(q * zlo[z]))
		hi[z] = new(big.Rat).SetInt64(int64(q * zhi[z]))
	}
	zoneShare := waterfill(new(big.Rat).SetInt64(int64(q*r)), zw, lo, hi)
	sh.zoneLo, sh.zoneHi = make([]int, nz), make([]int, nz)
	sh.zoneShare = make([]float64, nz)
	for z, x := range zoneShare {
		sh.zoneShare[z], _ = x.Float64()
		sh.zoneLo[z], sh.zoneHi[z] = floorCeil(x)
	}

	for z := range nz {
		var idx []int
		var w []int64
		for i := range m {
			if int(zone[i]) == z {
				idx = append(idx, i)
				w = append(w, int64(weights[i]))
			}
		}
		mlo, mhi := make([]*big.Rat, len(idx)), make([]*big.Rat, len(idx))
		for j := range idx {
			mlo[j], mhi[j] = new(big.Rat), new(big.Rat).SetInt64(int64(q))
		}
		for j, x := range waterfill(zoneShare[z], w, mlo, mhi) {
			i := idx[j]
			sh.replica[i], _ = x.Float64()
			sh.repLo[i], sh.repHi[i] = floorCeil(x)
		}
	}
	for i, w := range weights {
		x := new(big.Rat).SetFrac64(int64(q)*int64(w), total)
		sh.first[i], _ = x.Float64()
		sh.firstLo[i], sh.firstHi[i] = floorCeil(x)
	}
	return sh
}

// waterfill returns x with x[j] = clamp(lambda*w[j], lo[j], hi[j]) and
// sum(x) = total, for the lambda that makes it so. It requires
// sum(lo) <= total <= sum(hi) and w > 0. Each round computes lambda for
// the items not yet clamped and clamps one side's violators: those below
// their lower bound if they fall short by at least as much as the others
// exceed their upper bound (then the final lambda is no larger, and they
// stay clamped), else those above. At most len(w) rounds, exact rational
// arithmetic.
func waterfill(total *big.Rat, w []int64, lo, hi []*big.Rat) []*big.Rat {
	n := len(w)
	x := make([]*big.Rat, n)
	state := make([]int8, n) // 0 free, -1 at lo, +1 at hi
	for {
		fixed, wf := new(big.Rat), int64(0)
		for j := range n {
			switch state[j] {
			case -1:
				fixed.Add(fixed, lo[j])
			case 1:
				fixed.Add(fixed, hi[j])
			default:
				wf += w[j]
			}
		}
		if wf == 0 {
			break
		}
		lambda := new(big.Rat).Sub(total, fixed)
		lambda.Quo(lambda, new(big.Rat).SetInt64(wf))
		under, over := new(big.Rat), new(big.Rat)
		v := new(big.Rat)
		for j := range n {
			if state[j] != 0 {
				continue
			}
			v.Mul(lambda, new(big.Rat).SetInt64(w[j]))
			if v.Cmp(lo[j]) < 0 {
				under.Add(under, new(big.Rat).Sub(lo[j], v))
			} else if v.Cmp(hi[j]) > 0 {
				over.Add(over, new(big.Rat).Sub(v, hi[j]))
			}
		}
		if under.Sign() == 0 && over.Sign() == 0 {
			for j := range n {
				if state[j] == 0 {
					x[j] = new(big.Rat).Mul(lambda, new(big.Rat).SetInt64(w[j]))
				}
			}
			break
		}
		clampUnder := under.Cmp(over) >= 0
		for j := range n {
			if state[j] != 0 {
				continue
			}
			v.Mul(lambda, new(big.Rat).SetInt64(w[j]))
			if clampUnder && v.Cmp(lo[j]) < 0 {
				state[j] = -1
			} else if !clampUnder && v.Cmp(hi[j]) > 0 {
				state[j] = 1
			}
		}
	}
	for j := range n {
		switch state[j] {
		case -1:
			x[j] = new(big.Rat).Set(lo[j])
		case 1:
			x[j] = new(big.Rat).Set(hi[j])
		}
	}
	return x
}

// floorCeil returns the floor and ceiling of a non-negative rational.
func floorCeil(x *big.Rat) (int, int) {
	f := new(big.Int).Quo(x.Num(), x.Denom())
	lo := int(f.Int64())
	if x.IsInt() {
		return lo, lo
	}
	return lo, lo + 1
}
