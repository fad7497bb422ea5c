package nodetest

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/clock"
	"github.com/quorumkv/quorumkv/node"
)

// Gossip is a scripted node.Membership hub: members that Join see each
// other at once and exchange ring state synchronously; the test marks
// members dead or alive. It has no failure detector of its own.
type Gossip struct {
	mu      sync.Mutex
	members map[string]*member
	// dead holds ids the test declared dead; they stay dead to others even
	// if their node object is still running (a one-sided view, as after a
	// partition that gossip has noticed).
	dead map[string]bool
	// held maps the members whose incoming gossip is held back (Hold) to
	// the messages kept for them, in order.
	held map[string][][]byte
	// seq, when set (a cluster in a synctest bubble, before any member
	// joins), carries every call the hub makes into a member as an event
	// of its own (clock.Sequencer), so that the member's reaction has
	// settled before the next call and concurrent broadcasts land in one
	// order.
	seq *clock.Sequencer
}

type member struct {
	g       *Gossip
	id      string
	d       node.MembershipDelegate
	running bool
}

// NewGossip returns an empty hub.
func NewGossip() *Gossip {
	return &Gossip{members: map[string]*member{}, dead: map[string]bool{}, held: map[string][][]byte{}}
}

// Factory returns a node.Config.NewMembership for member id.
func (g *Gossip) Factory(id string) func(d node.MembershipDelegate) (node.Membership, error) {
	return func(d node.MembershipDelegate) (node.Membership, error) {
		g.mu.Lock()
		if m, ok := g.members[id]; ok && m.running {
			g.mu.Unlock()
			return nil, fmt.Errorf("nodetest gossip: %s is already running", id)
		}
		m := &member{g: g, id: id, d: d, running: true}
		g.members[id] = m
		g.mu.Unlock()
		return m, nil
	}
}

func (g *Gossip) snapshot() []*member {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

func (g *Gossip) visible(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.members[id]
	return ok && m.running && !g.dead[id]
}

func (g *Gossip) state(id string) node.PeerState {
	if g.visible(id) {
		return node.PeerAlive
	}
	return node.PeerDead
}

// notifyAll tells every running member about about's current state.
func (g *Gossip) notifyAll(about *member) {
	meta := about.d.LocalMeta()
	for _, m := range g.snapshot() {
		if m.id == about.id || !g.visible(m.id) {
			continue
		}
		g.peerChanged(m, about.id, meta, g.state(about.id))
	}
}

// Join makes m and every visible member see each other and exchange ring
// state. Seeds are ignored: the hub is one fully connected gossip pool.
// With a Sequencer, m too learns of the others by events, after Join
// returns (its node then joins on a later attempt): otherwise the loops
// that m's first merge wakes would race with its next ones.
func (m *member) Join([]string) (int, error) {
	g := m.g
	if !g.visible(m.id) {
		return 0, fmt.Errorf("nodetest gossip: %s is dead", m.id)
	}
	n := 0
	for _, o := range g.snapshot() {
		if o.id == m.id || !g.visible(o.id) {
			continue
		}
		n++
		st := m.d.LocalState()
		g.call(o, "state", m.id, st, func() { o.d.MergeRemoteState(st) })
		ost := o.d.LocalState()
		g.call(m, "state", o.id, ost, func() { m.d.MergeRemoteState(ost) })
		g.peerChanged(o, m.id, m.d.LocalMeta(), node.PeerAlive)
		g.peerChanged(m, o.id, o.d.LocalMeta(), node.PeerAlive)
	}
	if n == 0 {
		return 0, fmt.Errorf("nodetest gossip: no other member alive")
	}
	return n, nil
}

func (m *member) Broadcast(msg []byte) {
	for _, o := range m.g.snapshot() {
		if o.id != m.id && m.g.visible(o.id) && !m.g.keep(o.id, msg) {
			m.g.call(o, "state", m.id, msg, func() { o.d.MergeRemoteState(msg) })
		}
	}
}

// keep holds msg back for id if its incoming gossip is held.
func (g *Gossip) keep(id string, msg []byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	q, ok := g.held[id]
	if ok {
		g.held[id] = append(q, msg)
	}
	return ok
}

// Hold holds back the state broadcasts sent to id, as a slow gossip path
// would (id's own broadcasts still go out, and it stays alive): it keeps
// routing with the ring it has while the others move on. Release delivers
// them.
func (g *Gossip) Hold(id string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.held[id]; !ok {
		g.held[id] = nil
	}
}

// Release delivers to id, in order, the broadcasts held for it, and ends
// the hold.
func (g *Gossip) Release(id string) {
	g.mu.Lock()
	q := g.held[id]
	delete(g.held, id)
	m := g.members[id]
	g.mu.Unlock()
	if m == nil || !g.visible(id) {
		return
	}
	for _, msg := range q {
		g.call(m, "state", id, msg, func() { m.d.MergeRemoteState(msg) })
	}
}

func (m *member) Leave(time.Duration) error { return nil }

func (m *member) Shutdown() error {
	g := m.g
	g.mu.Lock()
	if cur, ok := g.members[m.id]; !ok || cur != m || !m.running {
		g.mu.Unlock()
		return nil
	}
	m.running = false
	g.mu.Unlock()
	g.notifyAll(m)
	return nil
}

// SetDead declares id dead (true) or alive again (false) to every other
// member, whatever its node is doing.
func (g *Gossip) SetDead(id string, dead bool) {
	g.mu.Lock()
	g.dead[id] = dead
	m := g.members[id]
	g.mu.Unlock()
	if m != nil {
		g.notifyAll(m)
		if !dead && g.visible(id) {
			// A member coming back also relearns who is alive.
			_, _ = m.Join(nil)
		}
	}
}

// peerChanged tells member to about peer id: that it is in state, at once;
// with a Sequencer, as an event that reports id's state when it runs
// (events due at once run in the order of their keys, not of their
// sending, so a report made later must not carry an older state).
func (g *Gossip) peerChanged(to *member, id string, meta []byte, state node.PeerState) {
	g.call(to, "peer", id, nil, func() {
		st := state
		if g.seq != nil {
			st = g.state(id)
		}
		to.d.PeerChanged(node.Peer{ID: id, Addr: "mem:" + id, Meta: meta, State: st})
	})
}

// call runs f, a call from member `from` into member to: at once, or with
// a Sequencer as an event keyed by what it carries (as a bag of bytes:
// node state encodes maps in iteration order), run only if to is still
// running then.
func (g *Gossip) call(to *member, kind, from string, payload []byte, f func()) {
	if g.seq == nil {
		f()
		return
	}
	g.seq.AfterFunc(0, clock.Key([]byte(kind), []byte(from), []byte(to.id), clock.Bag(payload)), func() {
		g.mu.Lock()
		running := to.running
		g.mu.Unlock()
		if running {
			f()
		}
	})
}
