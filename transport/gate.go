package transport

import (
	"net"
	"slices"
	"sync"
)

// gate admits connections into the handshake. Unauthenticated
// connections cost the server a goroutine and a slot until they prove the
// secret or HandshakeTimeout passes, so a flood of silent sockets could
// otherwise keep every slot busy and a real peer out. The gate bounds them
// in total (MaxHandshakes) and per source IP (MaxHandshakesPerSource), and
// when a newcomer finds its source's share or all slots taken it evicts
// the oldest connection that has not yet sent its whole client hello
// (from its own source, or from the source holding the most slots), rather
// than refusing the newcomer. A real peer sends its hello within one round
// trip of connecting, after which it is no longer evictable; a silent
// flood only ever evicts itself. Safe for concurrent use.
type gate struct {
	max, perSource int

	mu    sync.Mutex
	slots []*gateEntry // in admission order, oldest first
}

// gateEntry is one connection in the handshake.
type gateEntry struct {
	nc      net.Conn
	source  string
	heard   bool // its client hello arrived: no longer evictable
	evicted bool // closed by the gate to make room
}

// admit registers nc from source. It returns the entry, or nil if there
// is no room (every slot in the way holds a connection that has spoken);
// victim, if not nil, was evicted for it and the caller must close it.
func (g *gate) admit(nc net.Conn, source string) (e, victim *gateEntry) {
	g.mu.Lock()
	defer g.mu.Unlock()
	same := 0
	for _, s := range g.slots {
		if s.source == source {
			same++
		}
	}
	switch {
	case same >= g.perSource:
		victim = g.oldestSilentLocked(func(s *gateEntry) bool { return s.source == source })
		if victim == nil {
			return nil, nil
		}
	case len(g.slots) >= g.max:
		victim = g.oldestSilentLocked(g.busiestSourceLocked())
		if victim == nil {
			victim = g.oldestSilentLocked(func(*gateEntry) bool { return true })
		}
		if victim == nil {
			return nil, nil
		}
	}
	if victim != nil {
		victim.evicted = true
		g.removeLocked(victim)
	}
	e = &gateEntry{nc: nc, source: source}
	g.slots = append(g.slots, e)
	return e, victim
}

// heard marks e as having sent its hello.
func (g *gate) heard(e *gateEntry) {
	g.mu.Lock()
	e.heard = true
	g.mu.Unlock()
}

// done releases e's slot (a no-op if it was evicted) and reports whether
// it was evicted.
func (g *gate) done(e *gateEntry) (evicted bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !e.evicted {
		g.removeLocked(e)
	}
	return e.evicted
}

func (g *gate) count() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.slots)
}

func (g *gate) removeLocked(e *gateEntry) {
	for i, s := range g.slots {
		if s == e {
			g.slots = slices.Delete(g.slots, i, i+1)
			return
		}
	}
}

func (g *gate) oldestSilentLocked(match func(*gateEntry) bool) *gateEntry {
	for _, s := range g.slots {
		if !s.heard && match(s) {
			return s
		}
	}
	return nil
}

// busiestSourceLocked matches the connections of the source with the
// most silent connections (on a tie, the first to reach that count).
func (g *gate) busiestSourceLocked() func(*gateEntry) bool {
	counts := make(map[string]int)
	best, bestN := "", 0
	for _, s := range g.slots {
		if s.heard {
			continue
		}
		counts[s.source]++
		if n := counts[s.source]; n > bestN {
			best, bestN = s.source, n
		}
	}
	return func(s *gateEntry) bool { return s.source == best }
}
