package bench

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync/atomic"
)

// MaxKeys caps Config.Keys and every chooser's key count. Building a
// zipfian chooser is O(n) (the zeta sum), and the Checker keeps state per
// written key, so the cap keeps both to well under a second and a few GiB.
const MaxKeys = 1 << 24

// DefaultTheta is YCSB's zipfian constant: the most popular of 10,000 keys
// draws about 10% of requests.
const DefaultTheta = 0.99

// KeyChooser picks key indexes in [0, n). Next is safe for concurrent use as
// long as each goroutine passes its own *rand.Rand; with a seeded source
// the sequence of indexes is deterministic.
type KeyChooser interface {
	Next(r *rand.Rand) int
}

// Uniform picks every key with equal probability.
type Uniform struct{ n int }

// NewUniform returns a uniform chooser over [0, n).
func NewUniform(n int) (*Uniform, error) {
	if err := checkKeyCount(n); err != nil {
		return nil, err
	}
	return &Uniform{n: n}, nil
}

// Next returns a key index in [0, n).
func (u *Uniform) Next(r *rand.Rand) int { return r.IntN(u.n) }

// Zipfian picks key ranks with P(rank i) proportional to 1/(i+1)^theta,
// using the rejection-free method of Gray et al., "Quickly Generating
// Billion-Record Synthetic Databases" (SIGMOD 1994), as YCSB does: ranks 0
// and 1 are exact, the tail is a close approximation.
//
// A scrambled Zipfian (YCSB's default request distribution) maps ranks to
// indexes with a fixed affine permutation, so the hot keys are spread over
// the key space, hence over ring partitions, instead of being 0, 1, 2...
// Unlike YCSB's hash-based scrambling it is a bijection: no key is dropped
// and none doubled.
type Zipfian struct {
	n                  int
	theta, alpha, eta  float64
	zetan, rank1Cutoff float64
	mul                uint64 // affine scramble multiplier, coprime to n; 0 = not scrambled
}

// NewZipfian returns a Zipfian chooser over [0, n) with skew theta in
// [0, 1): 0 is uniform, DefaultTheta (0.99) is YCSB's skew. Gray's formula
// diverges at theta >= 1, so those are rejected.
func NewZipfian(n int, theta float64, scrambled bool) (*Zipfian, error) {
	if err := checkKeyCount(n); err != nil {
		return nil, err
	}
	if !(theta >= 0 && theta < 1) { // also rejects NaN
		return nil, fmt.Errorf("zipfian theta %v: must be in [0, 1): %w", theta, ErrInvalidConfig)
	}
	z := &Zipfian{n: n, theta: theta, alpha: 1 / (1 - theta)}
	for i := 1; i <= n; i++ {
		z.zetan += 1 / math.Pow(float64(i), theta)
	}
	zeta2 := 1 + math.Pow(0.5, theta)
	z.rank1Cutoff = zeta2
	if n > 2 {
		z.eta = (1 - math.Pow(2/float64(n), 1-theta)) / (1 - zeta2/z.zetan)
	}
	if scrambled && n > 1 {
		z.mul = coprimeNear(uint64(n), uint64(float64(n)*0.6180339887498949))
	}
	return z, nil
}

// coprimeNear returns the smallest m >= start, m >= 1, with gcd(m, n) = 1.
// The golden-ratio start spreads consecutive ranks far apart.
func coprimeNear(n, start uint64) uint64 {
	m := max(start, 1)
	for gcd(m, n) != 1 {
		m++
	}
	return m
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Rank returns a popularity rank in [0, n): 0 is the most popular.
func (z *Zipfian) Rank(r *rand.Rand) int {
	u := r.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < z.rank1Cutoff || z.n <= 2 {
		return min(1, z.n-1)
	}
	rank := int(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return max(0, min(rank, z.n-1))
}

// Next returns a key index in [0, n): the rank itself, or its scrambled
// image when the chooser was built scrambled.
func (z *Zipfian) Next(r *rand.Rand) int {
	rank := z.Rank(r)
	if z.mul == 0 {
		return rank
	}
	// n <= MaxKeys = 2^24, so the product stays below 2^48.
	return int(uint64(rank) * z.mul % uint64(z.n))
}

// Latest favours recently inserted keys (YCSB's "latest", used by workload
// D): the key Zipfian-rank r positions behind the newest. The key space is a
// ring of n slots; Insert claims the next slot, overwriting the oldest, so
// the number of keys (and the memory the Checker needs) stays bounded
// however long the run. Next and Insert are safe for concurrent use.
type Latest struct {
	z      *Zipfian
	cursor atomic.Uint64 // slots inserted so far, starting at n: slot n-1 is the newest
}

// NewLatest returns a Latest chooser over [0, n) with Zipfian skew theta.
// Before any Insert the newest key is n-1.
func NewLatest(n int, theta float64) (*Latest, error) {
	z, err := NewZipfian(n, theta, false)
	if err != nil {
		return nil, err
	}
	l := &Latest{z: z}
	l.cursor.Store(uint64(n))
	return l, nil
}

// Next returns a key index, most likely the newest.
func (l *Latest) Next(r *rand.Rand) int {
	c := l.cursor.Load()
	back := uint64(l.z.Rank(r))
	n := uint64(l.z.n)
	return int((c - 1 - back) % n) // c >= n > back, so no underflow
}

// Insert claims the next slot and makes it the newest key.
func (l *Latest) Insert() int {
	return int((l.cursor.Add(1) - 1) % uint64(l.z.n))
}

func checkKeyCount(n int) error {
	if n < 1 || n > MaxKeys {
		return fmt.Errorf("key count %d: must be in [1, %d]: %w", n, MaxKeys, ErrInvalidConfig)
	}
	return nil
}
