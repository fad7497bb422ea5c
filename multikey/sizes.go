package multikey

import (
	"context"
	"sync"

	"github.com/quorumkv/quorumkv/membudget"
)

// Sizes remembers the sizes of the large sets recently read or written,
// by key, so that a read of a key known to be large can reserve its size
// before the read instead of after it: many reads of one huge key started
// at once then wait for the budget instead of all reading first. Only
// sizes of at least LargeSet are kept (a smaller one forgets the key), at
// most MaxSizes keys (one is dropped, arbitrarily, to make room). The zero
// value is ready; a nil *Sizes remembers nothing. Safe for concurrent use.
type Sizes struct {
	mu sync.Mutex
	m  map[string]int64
}

const (
	// LargeSet is the smallest size Sizes keeps: below it a read's default
	// reservation is close enough.
	LargeSet = 1 << 20
	// MaxSizes bounds the keys remembered (about 100 KiB with short keys).
	MaxSizes = 1024
)

// Observe records that key's set is size bytes.
func (s *Sizes) Observe(key []byte, size int64) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if size < LargeSet {
		delete(s.m, string(key)) // no allocation: the compiler converts in place
		return
	}
	if s.m == nil {
		s.m = make(map[string]int64)
	}
	if _, ok := s.m[string(key)]; !ok && len(s.m) >= MaxSizes {
		for k := range s.m {
			delete(s.m, k)
			break
		}
	}
	s.m[string(key)] = size
}

// Get returns the last size observed for key, or 0.
func (s *Sizes) Get(key []byte) int64 {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[string(key)]
}

// ReadReserve is what a read of a key not known to be large reserves
// before its set's size is known.
const ReadReserve = 64 << 10

// Reserve adds to hold, before a read of key, what the read is expected
// to cost: the cost last observed for key, at least ReadReserve, and
// returns it for Charge. It waits as membudget.Budget.Take does, so many
// reads of a key known to be huge wait for the budget before reading,
// not after.
func (s *Sizes) Reserve(ctx context.Context, hold *membudget.Hold, key []byte) (reserved int64, err error) {
	reserved = max(ReadReserve, s.Get(key))
	if limit := hold.Limit(); limit > 0 {
		reserved = min(reserved, limit) // see Charge
	}
	if err := hold.Resize(ctx, hold.Size()+reserved); err != nil {
		return 0, err
	}
	return reserved, nil
}

// Charge turns what Reserve added to hold for a read of key into what
// the read really holds: size bytes that exist already (the set read:
// charged without waiting), then cost, the peak of answering it (the set
// and the reply's copies of its values), waiting as Take does before
// those copies are made. It remembers cost for the next Reserve of key.
// An error (busy) means the reply must not be built. A cost past the
// whole budget is cut to it (a key is never refused for its size: it is
// answered when it has the budget to itself).
func (s *Sizes) Charge(ctx context.Context, hold *membudget.Hold, key []byte, reserved, size, cost int64) error {
	if limit := hold.Limit(); limit > 0 {
		cost = min(cost, limit)
	}
	s.Observe(key, cost)
	base := hold.Size() - reserved
	hold.ForceResize(base + size)
	return hold.Resize(ctx, max(base+size, base+cost))
}
