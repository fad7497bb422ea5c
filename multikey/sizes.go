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
//
// A key it does not know is read by one read at a time until its cost is
// known (Reserve): a flood of reads of a huge key not seen before reads
// it once, then the others reserve what it cost.
type Sizes struct {
	mu sync.Mutex
	m  map[string]int64
	// reading are the keys of unknown cost being read, each with the
	// read the others wait for (Read.End).
	reading map[string]*flight
}

// flight is a read of a key of unknown cost: done is closed when it
// ends, after learned is set if it read the key (Charge) rather than
// failed. done is made by the first read that waits for it (under
// Sizes.mu), not by the lead: reads of one small key rarely meet, and a
// channel per GET was one of its three allocations.
type flight struct {
	done    chan struct{}
	learned bool
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

// Read is one read's reservation, from Reserve; End it when the read is
// over (after Charge, or on failure).
type Read struct {
	s        *Sizes
	key      string
	reserved int64
	lead     *flight // the read others of its key wait for, ended by End
}

// Reserve adds to hold, before a read of key, what the read is expected
// to cost: the cost last observed for key, at least ReadReserve (cut to
// the whole budget: see Charge). It waits as membudget.Budget.Take does,
// so many reads of a key known to be huge wait for the budget before
// reading, not after. When key's cost is unknown and another read of it
// is under way, it first waits for that read to end (or ctx), so that
// reads of a huge key not seen before, started at once, read it once
// before the others reserve its cost: without that wait each would read
// it before the budget knew its size. Without a budget (hold's is nil)
// it reserves nothing and never waits.
func (s *Sizes) Reserve(ctx context.Context, hold *membudget.Hold, key []byte) (Read, error) {
	r := Read{s: s}
	if hold.Limit() == 0 {
		return r, nil
	}
	for s != nil {
		s.mu.Lock()
		cost, known := s.m[string(key)]
		f, reading := s.reading[string(key)]
		if known || !reading {
			if !known { // lead: the others of key wait for this read
				if s.reading == nil {
					s.reading = make(map[string]*flight)
				}
				r.key, r.lead = string(key), &flight{}
				s.reading[r.key] = r.lead
			}
			s.mu.Unlock()
			r.reserved = cost
			break
		}
		if f.done == nil {
			f.done = make(chan struct{})
		}
		done := f.done
		s.mu.Unlock()
		select {
		case <-done: // its cost is known now if it read a large set
		case <-ctx.Done():
			return Read{}, ctx.Err()
		}
		// A small key stays unknown: read it beside the next reader
		// rather than queue behind each in turn. A read that failed
		// taught nothing: wait for (or be) the next one.
		if f.learned && s.Get(key) == 0 {
			break
		}
	}
	r.reserved = max(ReadReserve, r.reserved)
	if limit := hold.Limit(); limit > 0 {
		r.reserved = min(r.reserved, limit) // see Charge
	}
	if err := hold.Resize(ctx, hold.Size()+r.reserved); err != nil {
		r.End()
		return Read{}, err
	}
	return r, nil
}

// End ends the read: reads of its key that waited for it go on. It may
// be called more than once.
func (r *Read) End() {
	if r.lead == nil {
		return
	}
	r.s.mu.Lock()
	delete(r.s.reading, r.key)
	done := r.lead.done
	r.s.mu.Unlock()
	if done != nil {
		close(done)
	}
	r.lead = nil
}

// Charge turns what Reserve added to hold for a read of key into what
// the read really holds: size bytes that exist already (the set read:
// charged without waiting), then cost, the peak of answering it (the set
// and the reply's copies of its values), waiting as Take does before
// those copies are made. It remembers cost for the next Reserve of key
// and ends the read. An error (busy) means the reply must not be built.
// A cost past the whole budget is cut to it (a key is never refused for
// its size: it is answered when it has the budget to itself).
func (r *Read) Charge(ctx context.Context, hold *membudget.Hold, key []byte, size, cost int64) error {
	if limit := hold.Limit(); limit > 0 {
		cost = min(cost, limit)
	}
	r.s.Observe(key, cost)
	if r.lead != nil {
		r.lead.learned = true
	}
	r.End()
	base := hold.Size() - r.reserved
	hold.ForceResize(base + size)
	return hold.Resize(ctx, max(base+size, base+cost))
}
