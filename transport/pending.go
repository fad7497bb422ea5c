package transport

// pendingTable holds a calling conn's calls waiting for their replies, by
// request id: an open table indexed by id&mask in which a new call takes
// the next id whose entry is free (ids stay unique and increasing; the
// ones skipped are never used). It replaces a map[uint64]*call, whose
// insert, lookup and delete were 2% of a coordinator's CPU under GET
// (docs/bench/tport2.md). Guarded by conn.mu.
//
// The table holds at most twice as many entries as calls can be pending
// (MaxInflight, as every pending call holds a slot), rounded up to a
// power of two, and grows to that by doubling from minPending, so it is
// at most half full and a free id is a probe or two away. Growing keeps
// every call's place free of others: ids that differ in their low bits
// under the old mask still differ under the new one.
type pendingTable struct {
	slots []pendingSlot
	n     int // calls in the table
}

type pendingSlot struct {
	id uint64
	cl *call
}

// minPending is the table's first size.
const minPending = 64

// add enters cl under the first id after *next whose entry is free, sets
// *next to it and returns it. The caller keeps fewer calls pending than
// MaxInflight, so the table stops growing at twice that.
func (p *pendingTable) add(next *uint64, cl *call) uint64 {
	if 2*(p.n+1) > len(p.slots) {
		p.grow()
	}
	mask := uint64(len(p.slots) - 1)
	for {
		*next++
		id := *next
		if s := &p.slots[id&mask]; s.cl == nil {
			s.id, s.cl = id, cl
			p.n++
			return id
		}
	}
}

// grow doubles the table.
func (p *pendingTable) grow() {
	old := p.slots
	p.slots = make([]pendingSlot, max(minPending, 2*len(old)))
	mask := uint64(len(p.slots) - 1)
	for _, s := range old {
		if s.cl != nil {
			p.slots[s.id&mask] = s
		}
	}
}

// take removes and returns the call pending under id, if any.
func (p *pendingTable) take(id uint64) *call {
	if len(p.slots) == 0 {
		return nil
	}
	s := &p.slots[id&uint64(len(p.slots)-1)]
	if s.cl == nil || s.id != id {
		return nil
	}
	cl := s.cl
	*s = pendingSlot{}
	p.n--
	return cl
}

// takeIf removes and returns the calls for which due returns true.
func (p *pendingTable) takeIf(due func(*call) bool, out []*call) []*call {
	for i := range p.slots {
		s := &p.slots[i]
		if s.cl != nil && due(s.cl) {
			out = append(out, s.cl)
			*s = pendingSlot{}
			p.n--
		}
	}
	return out
}
