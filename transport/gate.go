package transport

import (
	"net"
	"slices"
	"sync"
	"time"
)

// evictGrace is how long an evicted connection may still send its hello.
// The hello of a real peer may be on its way, or already in the socket's
// buffer and unread because the handshake goroutine has not run yet (a
// flood keeps the scheduler busy); closing at once would throw it away and
// let a fast enough flood from the peer's own address evict it before it
// is ever read. The slot is freed at once either way.
const evictGrace = 100 * time.Millisecond

// gate admits connections into the handshake. Unauthenticated
// connections cost the server a goroutine and a slot until they prove the
// secret or HandshakeTimeout passes, so a flood of silent sockets could
// otherwise keep every slot busy and a real peer out. The gate bounds them
// in total (MaxHandshakes) and per source IP (MaxHandshakesPerSource), and
// when a newcomer finds its source's share or all slots taken it evicts
// the oldest connection that has not yet sent its whole client hello (from
// its own source, or from the source holding the most slots) rather than
// refusing the newcomer. An evicted connection gets evictGrace to send its
// hello (at most maxEvicting of them at once; beyond, they are closed at
// once). A real peer sends its hello within a round trip of connecting,
// after which it is no longer evictable; a silent flood only ever evicts
// itself. Safe for concurrent use.
type gate struct {
	max, perSource int

	mu       sync.Mutex
	slots    []*gateEntry // in admission order, oldest first
	evicting int          // evicted entries still in their grace
}

// maxEvictingFactor bounds the evicted connections in their grace, as a
// multiple of MaxHandshakes (1024 by default, a goroutine and a socket
// each). A flood from a peer's own address with more connections open at
// once than that evicts without grace and can keep the peer out again;
// floods from other addresses cannot (see gate).
const maxEvictingFactor = 16

// gateEntry is one connection in the handshake.
type gateEntry struct {
	nc      net.Conn
	source  string
	heard   bool // its client hello arrived: no longer evictable
	evicted bool // out of the slots to make room
	graced  bool // evicted, and counted in evicting until done
}

// admit registers nc from source. It returns the entry, or nil if there
// is no room (every slot in the way holds a connection that has spoken).
// When it evicted a connection for the newcomer, it has already cut that
// connection's read deadline to the grace, or closed it.
func (g *gate) admit(nc net.Conn, source string) *gateEntry {
	g.mu.Lock()
	var victim *gateEntry
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
			g.mu.Unlock()
			return nil
		}
	case len(g.slots) >= g.max:
		victim = g.oldestSilentLocked(g.busiestSourceLocked())
		if victim == nil {
			g.mu.Unlock()
			return nil
		}
	}
	if victim != nil {
		victim.evicted = true
		g.removeLocked(victim)
		if g.evicting < maxEvictingFactor*g.max {
			victim.graced = true
			g.evicting++
		}
	}
	if victim != nil && victim.nc != nil {
		// Its handshake goroutine then ends with an error (its deadline or
		// the closed socket), unless its hello arrives within the grace.
		// Under the lock: a victim's goroutine marks its hello heard under
		// it too, and clears its deadline only after that, so the grace
		// can never land on a connection that completed its handshake.
		if victim.graced {
			_ = victim.nc.SetReadDeadline(time.Now().Add(evictGrace))
		} else {
			abortClose(victim.nc)
		}
	}
	e := &gateEntry{nc: nc, source: source}
	g.slots = append(g.slots, e)
	g.mu.Unlock()
	return e
}

// heard marks e as having sent its hello.
func (g *gate) heard(e *gateEntry) {
	g.mu.Lock()
	e.heard = true
	g.mu.Unlock()
}

// done releases e's slot (or its grace) and reports whether it was
// evicted and whether its hello was heard.
func (g *gate) done(e *gateEntry) (evicted, heard bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !e.evicted {
		g.removeLocked(e)
	} else if e.graced {
		e.graced = false
		g.evicting--
	}
	return e.evicted, e.heard
}

// abortClose closes a connection evicted before it spoke with a reset
// rather than a FIN, so that it leaves no TIME_WAIT on the server's port.
// A flood from a peer's own address would otherwise fill the server's
// side with TIME_WAITs of that address's ports (tens of thousands in a
// minute): a real peer's SYN that lands on one is answered with an ACK
// instead of a SYN-ACK when its timestamp is not newer, and waits out a
// SYN retransmission (1 s, then 3 s more) before it even reaches the gate.
// A silent connection has nothing in flight to lose.
func abortClose(nc net.Conn) {
	if l, ok := nc.(interface{ SetLinger(int) error }); ok {
		_ = l.SetLinger(0)
	}
	_ = nc.Close()
}

// count returns the connections holding slots and those evicted but still
// in their grace.
func (g *gate) count() (slots, evicting int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.slots), g.evicting
}

func (g *gate) removeLocked(e *gateEntry) {
	if i := slices.Index(g.slots, e); i >= 0 {
		g.slots = slices.Delete(g.slots, i, i+1)
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
