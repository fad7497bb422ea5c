package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func sample(c KeyChooser, n, draws int, seed uint64) []int {
	r := rand.New(rand.NewPCG(seed, 0))
	counts := make([]int, n)
	for range draws {
		counts[c.Next(r)]++
	}
	return counts
}

func zetaN(n int, theta float64) float64 {
	z := 0.0
	for i := 1; i <= n; i++ {
		z += 1 / math.Pow(float64(i), theta)
	}
	return z
}

func TestUniformChiSquare(t *testing.T) {
	const n, draws = 100, 200_000
	u, err := NewUniform(n)
	if err != nil {
		t.Fatal(err)
	}
	counts := sample(u, n, draws, 1)
	exp := float64(draws) / n
	chi := 0.0
	for _, c := range counts {
		chi += (float64(c) - exp) * (float64(c) - exp) / exp
	}
	// 99 degrees of freedom: mean 99, sd 14. A fixed seed makes this
	// deterministic; the band is ±5 sd so a different but valid generator
	// would also pass, and a broken one (constant, or far too even) not.
	if chi < 99-5*14 || chi > 99+5*14 {
		t.Errorf("chi-square = %.1f, want within 99 ± 70", chi)
	}
}

func TestZipfianHeadShare(t *testing.T) {
	const n, draws, theta = 1000, 100_000, 0.99
	z := zetaN(n, theta)
	for _, scrambled := range []bool{false, true} {
		zc, err := NewZipfian(n, theta, scrambled)
		if err != nil {
			t.Fatal(err)
		}
		counts := sample(zc, n, draws, 2)
		if !scrambled {
			// Ranks 0 and 1 are exact in Gray's method.
			for rank := range 2 {
				want := 1 / math.Pow(float64(rank+1), theta) / z
				got := float64(counts[rank]) / draws
				if math.Abs(got-want) > 0.05*want {
					t.Errorf("rank %d share = %.4f, want %.4f ± 5%%", rank, got, want)
				}
			}
		}
		// The hottest 10% of keys, by observed count, carry about the
		// exact Zipf head mass.
		slices.Sort(counts)
		slices.Reverse(counts)
		head := 0
		for _, c := range counts[:n/10] {
			head += c
		}
		want := zetaN(n/10, theta) / z
		if got := float64(head) / draws; math.Abs(got-want) > 0.05 {
			t.Errorf("scrambled=%v: top 10%% share = %.3f, want %.3f ± 0.05", scrambled, got, want)
		}
	}
}

func TestZipfianScrambleIsPermutation(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 97, 1000, 1024} {
		z, err := NewZipfian(n, DefaultTheta, true)
		if err != nil {
			t.Fatal(err)
		}
		seen := make([]bool, n)
		for rank := range n {
			idx := rank
			if z.mul != 0 {
				idx = int(uint64(rank) * z.mul % uint64(n))
			}
			if seen[idx] {
				t.Fatalf("n=%d: index %d hit twice", n, idx)
			}
			seen[idx] = true
		}
	}
}

func TestZipfianRejects(t *testing.T) {
	for _, tc := range []struct {
		n     int
		theta float64
	}{{0, 0.5}, {MaxKeys + 1, 0.5}, {10, 1}, {10, -0.1}, {10, math.NaN()}} {
		if _, err := NewZipfian(tc.n, tc.theta, false); err == nil {
			t.Errorf("NewZipfian(%d, %v) accepted", tc.n, tc.theta)
		}
	}
}

func TestZipfianSmallAndInRange(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for _, n := range []int{1, 2, 3, 5} {
		z, err := NewZipfian(n, 0.5, false)
		if err != nil {
			t.Fatal(err)
		}
		for range 10_000 {
			if k := z.Next(r); k < 0 || k >= n {
				t.Fatalf("n=%d: key %d out of range", n, k)
			}
		}
	}
}

func TestLatestFavoursRecent(t *testing.T) {
	const n, draws = 1000, 100_000
	l, err := NewLatest(n, DefaultTheta)
	if err != nil {
		t.Fatal(err)
	}
	counts := sample(l, n, draws, 4)
	if top := slices.Index(counts, slices.Max(counts)); top != n-1 {
		t.Errorf("hottest key = %d, want %d (the newest)", top, n-1)
	}
	recent := 0
	for _, c := range counts[n-n/10:] {
		recent += c
	}
	if share := float64(recent) / draws; share < 0.6 {
		t.Errorf("newest 10%% of keys drew %.2f of requests, want > 0.6", share)
	}
	// Inserting moves the head: the inserted slot (the oldest, 0) becomes
	// the hottest key.
	if slot := l.Insert(); slot != 0 {
		t.Fatalf("Insert = %d, want 0 (the oldest slot)", slot)
	}
	counts = sample(l, n, draws, 5)
	if top := slices.Index(counts, slices.Max(counts)); top != 0 {
		t.Errorf("after insert hottest key = %d, want 0", top)
	}
	if counts[n-1] < counts[n/2] {
		t.Errorf("previous newest key %d drew %d, less than a middle key's %d", n-1, counts[n-1], counts[n/2])
	}
}

func TestChoosersDeterministic(t *testing.T) {
	mk := func() []KeyChooser {
		u, _ := NewUniform(500)
		z, _ := NewZipfian(500, 0.9, true)
		l, _ := NewLatest(500, 0.9)
		return []KeyChooser{u, z, l}
	}
	a, b := mk(), mk()
	for i := range a {
		if !slices.Equal(sample(a[i], 500, 1000, 9), sample(b[i], 500, 1000, 9)) {
			t.Errorf("chooser %d: same seed, different keys", i)
		}
	}
}
